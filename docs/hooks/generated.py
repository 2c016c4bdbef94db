"""MkDocs hooks: the pages whose content comes from the code and the benchmark's results.

- the home page is README.md, its links into docs/ made relative to the site;
- `<!-- generated: settings -->` becomes the table of every `RUJUKAN_*` setting, read from
  `service.config.Settings` (name, type, default, description);
- `<!-- generated: benchmark -->` becomes the figures of the newest full `make bench` run found
  in the results directories (`DOCS_BENCH_RESULTS`, directories separated by `os.pathsep`;
  by default bench/results/, where `make bench` writes, then docs/performance/runs/, where
  the published runs are kept).
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEFAULT_RESULTS = ("bench/results", "docs/performance/runs")
# A run of `make bench` (1,000,000 referrals); `make bench-quick` runs are left out.
FULL_RUN_ROWS = 1_000_000
OPS = ("get", "list", "create", "assess")
SETTINGS_MARK = "<!-- generated: settings -->"
BENCHMARK_MARK = "<!-- generated: benchmark -->"
CHART = "performance/chart.png"


# ---- the home page ---------------------------------------------------------------------------


def home_page() -> str:
    """README.md as the site's home page: links into docs/ point at the pages themselves."""
    return re.sub(r"\]\(docs/", "](", README.read_text(encoding="utf-8"))


# ---- the settings ------------------------------------------------------------------------------


def _type_name(annotation: Any) -> tuple[str, bool]:
    """A reader's name for a setting's type, and whether it may be left unset."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        kept = [a for a in args if a is not type(None)]
        name, _ = _type_name(kept[0])
        return name, len(kept) < len(args)
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(f"`{a}`" for a in args), False
    if typing.get_origin(annotation) is list:
        return "JSON list", False
    names = {str: "text", int: "integer", float: "number", bool: "boolean", Path: "path",
             SecretStr: "text (secret)"}  # fmt: skip
    return names.get(annotation, getattr(annotation, "__name__", str(annotation))), False


def _bounds(metadata: list[Any]) -> str:
    signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    parts = []
    for item in metadata:
        for attr, sign in signs.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {_number(value)}")
    return ", ".join(parts)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is None:
        return "unset"
    if value == []:
        return "none"
    return f"`{_number(value)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def settings_table() -> str:
    """Every field of the settings class as a row: variable, type, default, description."""
    from service.config import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    rows = [
        "| variable | type | default | what it is |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        kind, optional = _type_name(field.annotation)
        bounds = _bounds(field.metadata)
        if bounds:
            kind = f"{kind}, {bounds}"
        if optional:
            kind = f"{kind}, optional"
        variable = f"{prefix}{name}".upper()
        rows.append(
            f"| `{variable}` | {_cell(kind)} | {_default(field)} | "
            f"{_cell(field.description or '')} |"
        )
    return "\n".join(rows)


# ---- the benchmark ---------------------------------------------------------------------------


def results_dirs() -> list[Path]:
    """Where runs are looked for, newest first among all of them."""
    raw = os.environ.get("DOCS_BENCH_RESULTS")
    names = raw.split(os.pathsep) if raw else DEFAULT_RESULTS
    return [ROOT / name for name in names if name]


def _full(run: dict[str, Any]) -> bool:
    databases = run.get("databases") or {}
    return run.get("config", {}).get("rows", 0) >= FULL_RUN_ROWS and any(
        "ops" in r for r in databases.values()
    )


def full_runs() -> list[tuple[dict[str, Any], Path]]:
    """The full runs in the results directories with their files, newest first."""
    found = []
    for folder in results_dirs():
        for path in sorted(folder.glob("*.json")):
            try:
                run = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(run, dict) and _full(run):
                found.append((str(run.get("started_at", "")), path, run))
    found.sort(key=lambda item: item[0], reverse=True)
    return [(run, path) for _, path, run in found]


def _rounds(op: dict[str, Any]) -> list[float]:
    """Rujukan over baseline in each round (their runs paired in order)."""
    ruj = [r["rps"] for r in op["rujukan"].get("runs", [])]
    base = [r["rps"] for r in op["baseline"].get("runs", [])]
    return [a / b for a, b in zip(ruj, base, strict=False) if b]


def _round_ratios(op: dict[str, Any]) -> str:
    """The range of Rujukan/baseline over the rounds, where the run recorded them."""
    ratios = _rounds(op)
    if len(ratios) < 2:
        return ""
    return f"{min(ratios):.2f}-{max(ratios):.2f}x"


def _source(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def comparison(run: dict[str, Any], before: dict[str, Any], before_source: str) -> str:
    """Each operation's ratio in the run before and in this one, with the rounds' ranges."""
    started = before.get("started_at", "?").replace("T", " ")[:16]
    lines = [
        f"Against the run before it ({started} UTC, `{before_source}`):",
        "",
        "| database | operation | Rujukan/baseline before | in each round | now | in each round |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, r in run["databases"].items():
        then = before.get("databases", {}).get(kind, {})
        if "ops" not in r or "ops" not in then:
            continue
        for name in OPS:
            old, new = then["ops"][name], r["ops"][name]
            lines.append(
                f"| {kind} | {name} | {old['ratio']:.2f}x | {_round_ratios(old)} "
                f"| {new['ratio']:.2f}x | {_round_ratios(new)} |"
            )
    return "\n".join(lines) if len(lines) > 4 else ""


def _ms(figures: dict[str, Any]) -> str:
    return f"{figures['p50_ms']:.1f} / {figures['p99_ms']:.1f}"


def _header(run: dict[str, Any], source: str) -> str:
    m, c = run.get("machine", {}), run.get("config", {})
    started = run.get("started_at", "?").replace("T", " ")[:16]
    pg = m.get("postgresql")
    pg_text = f", PostgreSQL {pg // 10000}.{pg % 10000}" if isinstance(pg, int) else ""
    load = m.get("load_average_at_start") or ["?"]
    return (
        f"Run of {started} UTC ({run.get('minutes', '?')} minutes), read from `{source}`: "
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB, "
        f"Python {m.get('python', '?')}, SQLite {m.get('sqlite', '?')}{pg_text}; "
        f"{c.get('rows', 0):,} referrals, {c.get('rounds', '?')} rounds of "
        f"{_number(c.get('seconds_per_run', '?'))} s at {c.get('connections', '?')} connections, "
        f"{c.get('workers', '?')} workers a server (load average {load[0]} at the start)."
    )


def benchmark_section(run: dict[str, Any], source: str, chart: bool) -> str:
    """The run's figures: each operation against the baseline, unloaded latency, the inbox
    read while secrets are guessed, and each goal."""
    full = {kind: r for kind, r in run["databases"].items() if "ops" in r}
    lines = [_header(run, source), ""]
    lines += [
        "| database | operation | Rujukan req/s | p50 / p99 ms | baseline req/s | p50 / p99 ms "
        "| Rujukan/baseline | in each round | share of ceiling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, r in full.items():
        for name in OPS:
            op = r["ops"][name]
            ruj, base = op["rujukan"], op["baseline"]
            ratio = f"**{op['ratio']:.2f}x**" if op.get("ratio") is not None else ""
            share = op.get("ceiling_share")
            lines.append(
                f"| {kind} | {name} | {ruj['rps']:.0f} | {_ms(ruj)} | {base['rps']:.0f} "
                f"| {_ms(base)} | {ratio} | {_round_ratios(op)} "
                f"| {'' if share is None else f'{share:.1%}'} |"
            )
        ceiling = r["ceiling"]
        lines.append(
            f"| {kind} | ceiling (bare FastAPI) | {ceiling['rps']:.0f} | {_ms(ceiling)} "
            "| | | | | 100% |"
        )
    lines += ["", "| database | operation | unloaded p50 / p99 ms, Rujukan | baseline |"]
    lines.append("| --- | --- | ---: | ---: |")
    for kind, r in full.items():
        for name in OPS:
            u = r.get("unloaded", {}).get(name)
            if u:
                lines.append(f"| {kind} | {name} | {_ms(u['rujukan'])} | {_ms(u['baseline'])} |")
    guessing = {kind: r["guessing"] for kind, r in run["databases"].items() if "guessing" in r}
    if guessing:
        lines += [
            "",
            "| database | inbox read | p50 / p99 ms | req/s | guesses/s |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for kind, g in guessing.items():
            lines.append(
                f"| {kind} | alone ({g['readers']} connections) | {_ms(g['read_alone'])} "
                f"| {g['read_alone']['rps']:.0f} | |"
            )
            lines.append(
                f"| {kind} | while {g['guessers']} connections guess | "
                f"{_ms(g['read_while_guessing'])} | {g['read_while_guessing']['rps']:.0f} "
                f"| {g['guesses']['rps']:.0f} |"
            )
    goals = run.get("goals") or []
    if goals:
        lines += ["", "| goal | measured | met |", "| --- | --- | --- |"]
        lines += [
            f"| {_cell(g['goal'])} | {_cell(str(g['value']))} | {'yes' if g['met'] else 'NO'} |"
            for g in goals
        ]
    rss = [
        f"{kind}: Rujukan {r['peak_rss_mib'].get('rujukan')}, baseline "
        f"{r['peak_rss_mib'].get('baseline')}"
        for kind, r in full.items()
        if r.get("peak_rss_mib")
    ]
    if rss:
        lines += ["", "Peak resident memory per worker (MiB): " + "; ".join(rss) + "."]
    if chart:
        lines += [
            "",
            "![Requests/s per operation, Rujukan beside the tutorial baseline, with the bare "
            "FastAPI ceiling](chart.png)",
        ]
    return "\n".join(lines)


def no_run_section() -> str:
    """What the page says when no full run is found."""
    folders = [f"`{p.relative_to(ROOT)}`" for p in results_dirs() if p.is_relative_to(ROOT)]
    where = ", ".join(folders) or "the results directories"
    return f"No full run of `make bench` was found in {where}: run `make bench`."


# ---- the hooks -------------------------------------------------------------------------------

_runs: list[tuple[dict[str, Any], Path]] = []


def on_files(files: Any, config: Any) -> Any:
    """Add the home page (README.md) and the chart of the chosen run, if it has one."""
    from mkdocs.structure.files import File

    _runs[:] = full_runs()
    files.append(File.generated(config, "index.md", content=home_page()))
    if _runs:
        chart = _runs[0][1].with_suffix(".png")
        if chart.is_file():
            files.append(File.generated(config, CHART, abs_src_path=str(chart)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the generated sections of a page."""
    if SETTINGS_MARK in markdown:
        markdown = markdown.replace(SETTINGS_MARK, settings_table())
    if BENCHMARK_MARK in markdown:
        if not _runs:
            section = no_run_section()
        else:
            run, path = _runs[0]
            chart = files.get_file_from_path(CHART) is not None
            section = benchmark_section(run, _source(path), chart)
            if len(_runs) > 1:
                before, before_path = _runs[1]
                section += "\n\n" + comparison(run, before, _source(before_path))
        markdown = markdown.replace(BENCHMARK_MARK, section)
    return markdown


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """`mkdocs serve` rebuilds when the generated pages' sources change."""
    server.watch(str(README))
    server.watch(str(ROOT / "service" / "config.py"))
    for folder in results_dirs():
        if folder.is_dir():
            server.watch(str(folder))
    return server
