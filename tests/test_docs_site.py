"""The documentation site builds with `--strict`, offline, with every page and generated table.

`make docs` runs the same build (mkdocs.yml); a broken link or anchor, a page left out of the
navigation or a generated section that fails stops it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mkdocs import config as mkdocs_config
from mkdocs.commands.build import build
from mkdocs.exceptions import Abort

from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mkdocs.yml"
PUBLISHED = ROOT / "docs" / "performance" / "runs"


def _build(site: Path, config_file: Path = CONFIG) -> None:
    config = mkdocs_config.load_config(config_file=str(config_file), site_dir=str(site))
    config.strict = True
    build(config)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The site as `make docs` builds it, from the published benchmark run only."""
    path = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DOCS_BENCH_RESULTS", "docs/performance/runs")
        _build(path)
    yield path


def _nav_pages(nav: list) -> Iterator[str]:
    for item in nav:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for value in item.values():
                yield from ([value] if isinstance(value, str) else _nav_pages(value))


def _text(page: Path) -> str:
    """A built page's visible text, tags removed, entities decoded, spaces collapsed."""
    raw = page.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def _words(text: str) -> str:
    """Only the words and numbers of a text, one space apart (markup and punctuation differ)."""
    return " ".join(re.findall(r"[A-Za-z0-9_]+", text))


def _built(site: Path, source: str) -> Path:
    return site / (source.removesuffix(".md") + ".html")


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    config = mkdocs_config.load_config(config_file=str(CONFIG))
    pages = list(_nav_pages(config["nav"]))
    for expected in ("index.md", "configuration.md", "architecture.md", "testing.md",
                     "performance/index.md", "decisions/0001-sqlite-group-commit.md",
                     "integrating/webhooks.md", "threat-model.md"):  # fmt: skip
        assert expected in pages
    for source in pages:
        page = _built(site, source)
        assert page.is_file(), f"{source} was not built"
        assert len(_text(page)) > 500, f"{source} is nearly empty"
    # Every Markdown page under docs/ is in the nav (a page left out would be unreachable).
    written = {
        str(p.relative_to(ROOT / "docs"))
        for p in (ROOT / "docs").rglob("*.md")
        if "hooks" not in p.parts
    }
    assert written | {"index.md"} == set(pages)


def test_home_page_is_the_readme_with_its_links_into_the_site(site: Path) -> None:
    home = _text(site / "index.html")
    assert "Walk-through with curl" in home
    assert "BASE=http://127.0.0.1:8000" in home
    raw = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="referral.html"' in raw
    assert 'href="docs/' not in raw


def test_configuration_lists_every_setting_with_its_default_and_description(site: Path) -> None:
    page = _text(site / "configuration.html")
    words = _words(page)
    prefix = Settings.model_config["env_prefix"]
    for name, field in Settings.model_fields.items():
        variable = f"{prefix}{name}".upper()
        assert variable in page, f"{variable} is missing from the configuration page"
        assert field.description, f"{name} has no description in service/config.py"
        assert _words(field.description) in words, f"the description of {variable} is missing"
    row = re.search(r"RUJUKAN_TOKEN_TTL_SECONDS (.*?) RUJUKAN_", page)
    assert row is not None and "900" in row.group(1) and ">= 60" in row.group(1)
    # The variables read by `rujukan serve`, written by hand, stay.
    for variable in ("RUJUKAN_WORKERS", "RUJUKAN_GRACEFUL_TIMEOUT", "PROMETHEUS_MULTIPROC_DIR"):
        assert variable in page


def _newest_published() -> dict:
    """The newest run kept in docs/performance/runs/."""
    return max(
        (json.loads(path.read_text()) for path in PUBLISHED.glob("*.json")),
        key=lambda run: run["started_at"],
    )


def test_performance_shows_the_published_run(site: Path) -> None:
    page = _text(site / "performance" / "index.html")
    published = _newest_published()
    sqlite_get = published["databases"]["sqlite"]["ops"]["get"]
    assert f"sqlite get {sqlite_get['rujukan']['rps']:.0f}" in page
    assert f"{sqlite_get['ratio']:.2f}x" in page
    assert (site / "performance" / "chart.png").is_file()


def _run(started_at: str, rows: int, sqlite_get_rps: list[float]) -> dict:
    """A results file as `make bench` writes it (the fields the page reads)."""

    def figures(rps: float) -> dict:
        return {"rps": rps, "p50_ms": 10.0, "p90_ms": 15.0, "p99_ms": 20.0}

    def measured(runs: list[float]) -> dict:
        return {**figures(sorted(runs)[len(runs) // 2]), "runs": [figures(r) for r in runs]}

    ops = {}
    for op in ("get", "list", "create", "assess"):
        ruj = measured(sqlite_get_rps if op == "get" else [300.0, 310.0, 320.0])
        base = measured([500.0, 500.0, 500.0] if op == "get" else [250.0, 250.0, 250.0])
        ops[op] = {"rujukan": ruj, "baseline": base, "ratio": round(ruj["rps"] / base["rps"], 2),
                   "ceiling_share": 0.1}  # fmt: skip
    unloaded = {op: {"rujukan": figures(1), "baseline": figures(1)} for op in ops}
    return {
        "started_at": started_at,
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "memory_gib": 1.0,
            "python": "3.11",
            "sqlite": "3",
            "load_average_at_start": [0.1, 0.1, 0.1],
        },
        "config": {
            "rows": rows,
            "rounds": 3,
            "seconds_per_run": 10.0,
            "connections": 32,
            "workers": 2,
        },
        "databases": {
            "sqlite": {"rows": rows, "ceiling": figures(9000.0), "ops": ops, "unloaded": unloaded}
        },
        "minutes": 1.0,
        "goals": [{"goal": "sqlite get >= 1.0x baseline req/s", "value": 1.0, "met": True}],
    }


def test_performance_is_generated_from_the_newest_full_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "latest.json").write_text(
        json.dumps(_run("2030-01-02T03:04:05+00:00", 1_000_000, [600.0, 700.0, 650.0]))
    )
    # Newer, but a `make bench-quick` run: not a full one.
    (results / "quick.json").write_text(
        json.dumps(_run("2030-02-01T00:00:00+00:00", 100_000, [9999.0, 9999.0, 9999.0]))
    )
    monkeypatch.setenv("DOCS_BENCH_RESULTS", os.pathsep.join([str(results), str(PUBLISHED)]))
    _build(tmp_path / "site")
    page = _text(tmp_path / "site" / "performance" / "index.html")
    assert "Run of 2030-01-02 03:04 UTC" in page
    # 650 req/s against 500: 1.30x; its rounds 600/500, 700/500, 650/500.
    assert "sqlite get 650 10.0 / 20.0 500 10.0 / 20.0 1.30x 1.20-1.40x" in page
    assert "9999" not in page
    # Beside the newest published run, the one before it, operation by operation.
    published = _newest_published()
    started = published["started_at"].replace("T", " ")[:16]
    ratio = published["databases"]["sqlite"]["ops"]["get"]["ratio"]
    assert f"Against the run before it ({started} UTC" in page
    assert f"sqlite get {ratio:.2f}x " in page
    assert " 1.30x 1.20-1.40x" in page
    assert "Test CPU" in page


def _build_with_link(folder: Path, link: str) -> None:
    """Build a copy of docs/ whose testing page ends with `link`."""
    docs = folder / "docs"
    shutil.copytree(ROOT / "docs", docs)
    page = docs / "testing.md"
    page.write_text(page.read_text() + f"\n\nSee {link}.\n")
    config = folder / "mkdocs.yml"
    hooks = ROOT / "docs" / "hooks" / "generated.py"
    config.write_text(f"INHERIT: {CONFIG}\ndocs_dir: {docs}\nhooks: [{hooks}]\n")
    _build(folder / "site", config)


def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    _build_with_link(tmp_path / "sound", "[the referral](referral.md#the-referral)")
    for n, broken in enumerate(("[gone](no-such-page.md)", "[gone](referral.md#no-such-part)")):
        with pytest.raises(Abort):
            _build_with_link(tmp_path / str(n), broken)


class _Assets(HTMLParser):
    """What a page makes the browser fetch: scripts, stylesheets, images, fonts, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in {"script", "img", "iframe", "source", "audio", "video"} and values.get("src"):
            self.fetched.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.fetched.append(values["href"] or "")


def test_pages_fetch_nothing_from_another_host(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        for url in parser.fetched:
            assert not urlsplit(url).netloc, f"{page.relative_to(site)} fetches {url}"
    for stylesheet in site.rglob("*.css"):
        css = stylesheet.read_text(encoding="utf-8")
        assert not re.findall(r"@import\s+url\(\s*['\"]?(?:https?:)?//", css), stylesheet
