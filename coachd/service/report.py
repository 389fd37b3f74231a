"""A session report: one self-contained HTML page with a plot of each metric over the session
(cues marked) and, for a named runner, how this session compares with their earlier ones.

Plots are PNGs drawn with matplotlib's Agg canvas (no display, no pyplot state) and embedded
as base64, so the page can be mailed or copied as one file. No image of the runner exists to
be shown: only the numbers the gait stage measured.
"""

from __future__ import annotations

import base64
import html
import io
import statistics
import time
from collections.abc import Sequence
from typing import Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from coachd.catalog import METRICS, label
from coachd.service.store import SessionRecord, StoredStride

SIDE_COLOURS = {"left": "#1f77b4", "right": "#ff7f0e"}
CUE_COLOURS = {"correction": "#d62728", "praise": "#2ca02c", "program": "#9467bd"}
_DPI = 90


def metric_names(strides: Sequence[StoredStride]) -> list[str]:
    """The metrics present in these strides, in the report's order."""
    present = {name for s in strides for name in s.metrics}
    known = [name for name in METRICS if name in present]
    return known + sorted(present - set(known))


def render_report(record: SessionRecord, history: Sequence[SessionRecord] = ()) -> str:
    """The HTML page for `record`; `history` are the runner's earlier sessions, oldest first."""
    row = record.row
    title = f"coachd session {row.id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;"
        "text-align:left}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _overview(record),
    ]
    names = metric_names(record.strides)
    if names:
        parts.append("<h2>Form over the session</h2>")
        for name in names:
            png = _plot_metric(record, name)
            parts.append(_figure(png, label(name), name))
    else:
        parts.append("<p>No strides were measured in this session.</p>")
    if record.cues:
        parts.append("<h2>What the coach said</h2>")
        parts.append(_cue_table(record))
    earlier = [h for h in history if h.row.id != row.id and h.row.started < row.started]
    if row.runner and earlier:
        parts.append(f"<h2>{html.escape(row.runner)}: this session and earlier ones</h2>")
        parts.append(_comparison(record, earlier, names))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _overview(record: SessionRecord) -> str:
    row = record.row
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.started))
    ended = "unfinished" if row.ended is None else f"{row.duration_s / 60:.1f} min"
    items = [
        ("Started", started),
        ("Duration", ended),
        ("Runner", row.runner or "(anonymous)"),
        ("Program", row.program or "free"),
        ("Strides", str(row.strides)),
        ("Cues", str(row.cues)),
    ]
    text = row.summary.get("text")
    rows = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in items)
    said = f"<p><em>{html.escape(str(text))}</em></p>" if text else ""
    return f"<table>{rows}</table>{said}"


def _cue_table(record: SessionRecord) -> str:
    start = record.row.started
    rows = "".join(
        f"<tr><td>{_clock(c.t - start)}</td><td>{html.escape(c.kind)}</td>"
        f"<td>{html.escape(c.cue_id)}</td><td>{html.escape(c.text)}</td></tr>"
        for c in record.cues
    )
    return f"<table><tr><th>At</th><th>Kind</th><th>Cue</th><th>Words</th></tr>{rows}</table>"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _figure(png: bytes, caption: str, name: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="{html.escape(name)}"><img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption>'
        "</figure>"
    )


def _plot_metric(record: SessionRecord, name: str) -> bytes:
    start = record.row.started
    fig = Figure(figsize=(8, 2.6), dpi=_DPI)
    ax = fig.add_subplot()
    for side, colour in SIDE_COLOURS.items():
        points = [
            ((s.t - start) / 60.0, s.metrics[name])
            for s in record.strides
            if s.side == side and name in s.metrics
        ]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, ".", color=colour, markersize=3, label=side)
    trend = _rolling_median(record.strides, name, start)
    if trend:
        xs, ys = zip(*trend)
        ax.plot(xs, ys, "-", color="#333333", linewidth=1.2, label="trend")
    for cue in record.cues:
        if cue.kind in ("greeting", "summary"):
            continue
        x = (cue.t - start) / 60.0
        ax.axvline(x, color=CUE_COLOURS.get(cue.kind, "#7f7f7f"), linestyle="--", linewidth=0.8)
        ax.annotate(
            cue.cue_id,
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=6,
            va="top",
            ha="right",
            bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1},
        )
    ax.set_xlabel("minutes")
    ax.set_title(label(name), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def _rolling_median(
    strides: Sequence[StoredStride], name: str, start: float, window: int = 15
) -> list[tuple[float, float]]:
    points = [((s.t - start) / 60.0, s.metrics[name]) for s in strides if name in s.metrics]
    if len(points) < window:
        return []
    return [
        (points[i][0], statistics.median(v for _, v in points[i - window + 1 : i + 1]))
        for i in range(window - 1, len(points))
    ]


def _comparison(
    record: SessionRecord, earlier: Sequence[SessionRecord], names: Sequence[str]
) -> str:
    sessions = [*earlier, record]
    labels = [time.strftime("%m-%d", time.localtime(s.row.started)) for s in sessions]
    header = "".join(f"<th>{html.escape(lbl)}</th>" for lbl in labels)
    rows = []
    plots = []
    minutes = [s.row.duration_s / 60.0 for s in sessions]
    rows.append("<tr><td>Minutes</td>" + "".join(f"<td>{m:.1f}</td>" for m in minutes) + "</tr>")
    for name in names:
        medians = [_median(s.strides, name) for s in sessions]
        cells = "".join("<td></td>" if m is None else f"<td>{m:.3g}</td>" for m in medians)
        rows.append(f"<tr><td>{html.escape(label(name))}</td>{cells}</tr>")
        if sum(m is not None for m in medians) >= 2:
            plots.append(
                _figure(
                    _plot_history(name, labels, medians), f"{name} by session", name + "-history"
                )
            )
    table = f"<table><tr><th>Session median</th>{header}</tr>{''.join(rows)}</table>"
    return table + "".join(plots)


def _median(strides: Sequence[StoredStride], name: str) -> Optional[float]:
    values = [s.metrics[name] for s in strides if name in s.metrics]
    return statistics.median(values) if values else None


def _plot_history(name: str, labels: Sequence[str], medians: Sequence[Optional[float]]) -> bytes:
    fig = Figure(figsize=(8, 2.2), dpi=_DPI)
    ax = fig.add_subplot()
    xs = [i for i, m in enumerate(medians) if m is not None]
    ys = [m for m in medians if m is not None]
    ax.plot(xs, ys, "o-", color="#1f77b4")
    if medians[-1] is not None:
        ax.plot([xs[-1]], [ys[-1]], "o", color="#d62728", markersize=8)  # this session
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(f"{label(name)}: session medians", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()
