"""The monthly report: the statistics as CSV or JSON, and a chart drawn with matplotlib."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from service.context import ServiceContext
from service.referrals.workflow import ReferralStatus
from service.stats import repository as repo
from service.stats.schemas import Stats
from service.stats.service import scope_of, zone_for
from service.times import local_day

STATUS_COLOURS = {
    "referred": "#9ecae1",
    "assessed": "#4292c6",
    "served": "#fdae6b",
    "closed": "#74c476",
}


def as_json(stats: Stats) -> str:
    """The figures as one JSON document (the shape of GET /v1/stats)."""
    return json.dumps(stats.model_dump(mode="json", by_alias=True), indent=2)


def as_csv(stats: Stats) -> str:
    """The figures as CSV rows of (section, key, value), one figure per row."""
    data = stats.model_dump(mode="json", by_alias=True)
    rows: list[tuple[str, str, Any]] = [
        ("report", "agency", data["agency"] or "ALL"),
        ("report", "direction", data["direction"] or "both"),
        ("report", "from", data["from"] or ""),
        ("report", "to", data["to"] or ""),
        ("report", "time_zone", data["time_zone"]),
        ("report", "generated_at", data["generated_at"]),
        ("total", "referrals", data["total"]),
    ]
    for section in ("by_status", "by_urgency", "by_outcome", "by_group", "by_case_type"):
        rows += [(section, key, value) for key, value in data[section].items()]
    for step in data["step_times"]:
        for measure in ("count", "median_hours", "p90_hours"):
            value = step[measure]
            rows.append(("step_times", f"{step['step']}.{measure}", "" if value is None else value))
    rate = data["successful_referral_rate"]
    rows += [("successful_referral_rate", key, "" if v is None else v) for key, v in rate.items()]
    rows.append(("overdue", "total", data["overdue"]["total"]))
    rows += [("overdue", key, value) for key, value in data["overdue"]["by_status"].items()]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "value"))
    writer.writerows(rows)
    return out.getvalue()


def _week(at: dt.datetime, zone_name: str) -> dt.date:
    day = local_day(at, zone_name)
    return day - dt.timedelta(days=day.weekday())


def draw_chart(
    ctx: ServiceContext,
    path: Path,
    *,
    agency: str | None,
    direction: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[str, Any]:
    """Draw referrals per week by current status and the time each step took, as a PNG."""
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError("the chart needs matplotlib: pip install 'rujukan[report]'") from exc
    # No display on a server: render to files only.
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    with ctx.db.reader() as session:
        zone_name = zone_for(session, agency)
        scope = scope_of(agency, direction, start, end, zone_name)
        made = repo.created_with_status(session, scope)
        durations = repo.step_seconds(session, scope)
    weeks: dict[dt.date, Counter[str]] = {}
    for created, status in made:
        weeks.setdefault(_week(created, zone_name), Counter())[status] += 1
    if weeks:
        first, last = min(weeks), max(weeks)
        span = (last - first).days // 7 + 1
        labels = [first + dt.timedelta(weeks=i) for i in range(span)]
    else:
        labels = []

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8.5), constrained_layout=True)
    who = agency or "all agencies"
    period = f"{start or 'start'} to {end or 'today'} ({zone_name})"
    figure.suptitle(f"Rujukan: referrals of {who}, {period}", fontsize=14)
    base = [0] * len(labels)
    for status in ReferralStatus:
        counts = [weeks.get(week, Counter())[status] for week in labels]
        top.bar(
            range(len(labels)),
            counts,
            bottom=base,
            label=status,
            color=STATUS_COLOURS[status],
            width=0.85,
        )
        base = [b + c for b, c in zip(base, counts, strict=True)]
    top.set_title("Referrals made per week, by current status")
    top.set_ylabel("referrals")
    step = max(1, len(labels) // 12)
    top.set_xticks(range(0, len(labels), step))
    top.set_xticklabels([w.strftime("%d %b %Y") for w in labels[::step]], rotation=30, ha="right")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="status now")

    names = [name for name, _, _ in repo.STEPS]
    # A log scale needs positive values: a step done within the minute is shown as a minute.
    hours = [[max(s, 60) / 3600 for s in durations[name]] for name in names]
    titles = [
        f"{name.replace('_', ' ')}\n(n={len(h)})" for name, h in zip(names, hours, strict=True)
    ]
    bottom.boxplot([h if h else [float("nan")] for h in hours], vert=False)
    bottom.set_yticks(range(1, len(names) + 1))
    bottom.set_yticklabels(titles)
    bottom.set_xscale("log")
    marks = [
        (1, "1 hour"),
        (24, "1 day"),
        (24 * 7, "1 week"),
        (24 * 30, "30 days"),
        (24 * 180, "180 days"),
    ]
    bottom.set_xticks([m for m, _ in marks])
    bottom.set_xticklabels([label for _, label in marks])
    bottom.set_xlim(0.5, 24 * 365)
    bottom.set_xlabel("time taken (log scale)")
    bottom.set_title("Time per step (box: middle half, orange line: median, circles: outliers)")
    bottom.grid(axis="x", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return {"chart": str(path), "weeks": len(labels), "referrals": len(made)}
