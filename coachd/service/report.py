"""A session report a runner can read: what to work on and what improved first, then the form
the camera could see, each metric against its good range with the coach's words marked, and
the runner's trend over their earlier sessions.

One self-contained HTML page (inline SVG, no script, nothing fetched), sized for a phone as
well as a desk, so it can be mailed, copied or served by the live server (`/sessions/N`).
No image of the runner exists to be shown: only the numbers the gait stage measured.
"""

from __future__ import annotations

import dataclasses
import html
import math
import sqlite3
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Callable, Optional

from coachd.catalog import METRICS, Metric, label, visible
from coachd.coach.programs import CADENCE_TOLERANCE, cadence_target
from coachd.coach.sessions import MIN_JUDGED_STRIDES
from coachd.service.health import Request, Response, Route
from coachd.service.store import (
    HistoryReader,
    SessionRecord,
    SessionStore,
    StoredCue,
    StoredStride,
)

# Earlier sessions of the same runner in the trend.
HISTORY_SESSIONS = 10
# Trend charts for this many metrics at most (the cued and out-of-range ones first).
TREND_METRICS = 4
SIDE_COLOURS = {"left": "#1f77b4", "right": "#e8710a"}
CUE_COLOURS = {"correction": "#c5221f", "praise": "#188038", "program": "#7b1fa2"}
CUE_WORDS = {"correction": "told", "praise": "praised", "program": "program", "greeting": "hello"}
GOOD_FILL = "#d7f0dc"
POINTS_PER_SIDE = 400  # dots drawn per side at most; the trend line uses every stride
TREND_WINDOW = 15  # strides in the rolling median

# Plot geometry in SVG units; the page scales it to the screen's width.
_W, _H = 480.0, 210.0
_LEFT, _RIGHT, _TOP, _BOTTOM = 46.0, 10.0, 10.0, 30.0

_STYLE = (
    "body{font:16px/1.45 system-ui,sans-serif;max-width:44em;margin:0 auto;padding:0 .8em;"
    "color:#202124}h1{font-size:1.4em;margin:.6em 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .3em}"
    ".head{background:#f1f3f4;border-radius:.6em;padding:.6em .9em}.head dt{font-weight:600}"
    ".head dd{margin:0 0 .5em}.big{font-size:1.6em;font-weight:600}"
    "figure{margin:.8em 0 1.4em}figcaption{font-size:.9em;color:#5f6368}"
    "svg{width:100%;height:auto;display:block}"
    "ol.cues{font-size:.9em;padding-left:1.4em;margin:.2em 0}"
    "table{border-collapse:collapse;width:100%;font-size:.95em}td,th{padding:.3em .4em;"
    "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}.muted{color:#5f6368}"
    "a{color:#1a73e8}"
)


@dataclass(frozen=True)
class Target:
    """A program's target drawn on a metric: `value` between two session times."""

    metric: str
    t0: float
    t1: float
    value: float
    tolerance: float  # fraction of value that counts as on it


def load_report(store: HistoryReader, session_id: int) -> tuple[SessionRecord, list[SessionRecord]]:
    """The session and, for a named runner, up to HISTORY_SESSIONS earlier ones, oldest first;
    LookupError when there is no such session. A runner known by QR code shows by name."""
    record = store.load_session(session_id)
    history: list[SessionRecord] = []
    if record.row.runner:
        earlier = [
            r
            for r in store.list_sessions(runner=record.row.runner)
            if r.started < record.row.started
        ][:HISTORY_SESSIONS]
        history = [store.load_session(r.id) for r in reversed(earlier)]
        runner = store.find_runner(record.row.runner)
        if runner is not None:  # their name, never the code's hash
            named = dataclasses.replace(record.row, runner=runner.name)
            record = dataclasses.replace(record, row=named)
    return record, history


def render_session_html(
    store: HistoryReader, session_id: int, cue_metrics: Optional[Mapping[str, Sequence[str]]] = None
) -> str:
    """The report page of one session, for the live server's /sessions/N (LookupError: none)."""
    record, history = load_report(store, session_id)
    return render_report(record, history, cue_metrics, links=True)


def render_sessions_html(store: Optional[SessionStore], limit: int = 100) -> str:
    """The live server's /sessions: the newest sessions, each linking to its report."""
    rows = []
    for row in store.list_sessions(limit=limit) if store is not None else []:
        summary = row.summary
        cadence = summary.get("cadence_spm")
        rows.append(
            f'<tr><td><a href="/sessions/{row.id}">{row.id}</a></td>'
            f"<td>{time.strftime('%d %b %H:%M', time.localtime(row.started))}</td>"
            f"<td>{html.escape(_duration(row.duration_s) if row.ended else 'unfinished')}</td>"
            f"<td>{html.escape(row.runner or '')}</td>"
            f"<td>{'' if not cadence else f'{float(cadence):.0f}'}</td>"
            f"<td>{html.escape(_work_on_words(row.summary, ()) or '')}</td></tr>"
        )
    table = (
        "<table><tr><th>#</th><th>When</th><th>How long</th><th>Runner</th>"
        "<th>Steps/min</th><th>Work on</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p>No sessions yet: start running in front of the camera.</p>"
    )
    return _page("coachd sessions", "<h1>Sessions</h1>" + table)


def session_page(
    database: Path, path: str, cue_metrics: Optional[Mapping[str, Sequence[str]]] = None
) -> Optional[tuple[int, str]]:
    """The live server's answer to `path` when it is /sessions or /sessions/N: (HTTP status,
    HTML page); None for any other path. Reads the database afresh for each request."""
    parts = path.rstrip("/").split("/")
    if parts[:2] != ["", "sessions"] or len(parts) > 3:
        return None
    if not database.exists():
        return 200, render_sessions_html(None)
    if len(parts) == 3 and not parts[2].isdigit():
        return 404, _page("not found", f"<p>No session {html.escape(parts[2])}.</p>")
    try:
        return _read_page(database, parts[2] if len(parts) == 3 else None, cue_metrics)
    except sqlite3.Error as exc:  # busy, moved aside: the page says so, the server goes on
        return 503, _page("unavailable", f"<p>The sessions database: {html.escape(str(exc))}</p>")


def session_routes(
    database: Path, cue_metrics: Callable[[], Mapping[str, Sequence[str]]]
) -> dict[str, Route]:
    """/sessions and /sessions/N for the live server (GET), read from `database`."""

    def answer(request: Request) -> Response:
        page = session_page(database, request.path, cue_metrics())
        if page is None:
            return Response.text(HTTPStatus.NOT_FOUND, "not found")
        status, body = page
        return Response(HTTPStatus(status), body.encode(), "text/html; charset=utf-8")

    route = Route(handler=answer)
    return {"/sessions": route, "/sessions/*": route}


def _read_page(
    database: Path, session: Optional[str], cue_metrics: Optional[Mapping[str, Sequence[str]]]
) -> tuple[int, str]:
    store = SessionStore(database, readonly=True)
    try:
        if session is None:
            return 200, render_sessions_html(store)
        try:
            return 200, render_session_html(store, int(session), cue_metrics)
        except LookupError:
            return 404, _page(
                "not found", f'<p>No session {session}. <a href="/sessions">All sessions</a></p>'
            )
    finally:
        store.close()


def render_report(
    record: SessionRecord,
    history: Sequence[SessionRecord] = (),
    cue_metrics: Optional[Mapping[str, Sequence[str]]] = None,
    links: bool = False,
) -> str:
    """The page for `record`; `history` are the runner's earlier sessions, oldest first;
    `cue_metrics` says which metrics each cue id is about (its rule's), to mark it there."""
    about = _cue_metrics(record.cues, cue_metrics or {})
    names = metric_names(record, about)
    targets = program_targets(record)
    parts = [f"<h1>Session {record.row.id}</h1>"]
    if links:
        parts.append('<p><a href="/sessions">All sessions</a></p>')
    parts.append(_headline(record))
    if names:
        parts.append("<h2>Your form, step by step</h2>")
        parts += [_metric_figure(record, name, about, targets) for name in names]
    else:
        parts.append("<p>No steps were measured in this session.</p>")
    earlier = [h for h in history if h.row.id != record.row.id]
    trend = [n for n in names if any(_mean_of(h.strides, n) is not None for h in earlier)]
    if record.row.runner and trend:
        parts.append(f"<h2>{html.escape(record.row.runner)}: this session and earlier ones</h2>")
        sessions = [*earlier, record]
        parts += [_trend_figure(sessions, name) for name in trend[:TREND_METRICS]]
    said = [c for c in record.cues if c.kind != "summary"]
    if said:
        parts.append("<h2>What the coach said</h2>")
        parts.append(_cue_table(record, said))
    return _page(f"coachd session {record.row.id}", "\n".join(parts))


# --- what to show ------------------------------------------------------------------------


def metric_names(record: SessionRecord, about: Mapping[str, Sequence[str]]) -> list[str]:
    """The catalogued metrics measured in a view that can see them: cued ones first, then
    those whose median is outside the good range, then the rest, in catalogue order."""
    seen = {
        name
        for s in record.strides
        for name in s.metrics
        if visible(name, s.view)  # type: ignore[arg-type]
    }
    cued = {m for c in record.cues if c.kind in ("correction", "praise") for m in about[c.cue_id]}

    def rank(name: str) -> int:
        if name in cued:
            return 0
        median = _median_of(record.strides, name)
        return 1 if median is not None and not METRICS[name].is_good(median) else 2

    ordered = [name for name in METRICS if name in seen]
    return sorted(ordered, key=rank)


def program_targets(record: SessionRecord) -> list[Target]:
    """The cadence blocks' targets, from the words that started each block to its end."""
    targets = []
    end = _session_end(record)
    for i, cue in enumerate(record.cues):
        value = cadence_target(cue.text) if cue.cue_id == "cadence_start" else None
        if value is None:
            continue
        stop = next(
            (c.t for c in record.cues[i + 1 :] if c.cue_id in ("cadence_end", "session_summary")),
            end,
        )
        targets.append(Target("cadence_spm", cue.t, stop, value, CADENCE_TOLERANCE))
    return targets


def _cue_metrics(
    cues: Sequence[StoredCue], known: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    about: dict[str, tuple[str, ...]] = {}
    for cue in cues:
        if cue.cue_id in known:
            about[cue.cue_id] = tuple(known[cue.cue_id])
        elif cue.cue_id.startswith("cadence_"):
            about[cue.cue_id] = ("cadence_spm",)
        else:
            about.setdefault(cue.cue_id, ())
    return about


# --- the headline ------------------------------------------------------------------------


def _headline(record: SessionRecord) -> str:
    row = record.row
    summary = row.summary
    cadence = summary.get("cadence_spm") or _median_of(record.strides, "cadence_spm")
    items = [
        ("When", html.escape(_when(row.started))),
        (
            "How long",
            f'<span class="big">{html.escape(_duration(row.duration_s))}</span>'
            if row.ended
            else "unfinished",
        ),
    ]
    if cadence:
        items.append(("Cadence", f'<span class="big">{float(cadence):.0f}</span> steps a minute'))
    work_on = _work_on_words(summary, record.cues)
    if work_on:
        items.append(("The one thing to work on", html.escape(_sentence(work_on))))
    elif len(record.strides) < MIN_JUDGED_STRIDES:
        items.append(("Form", "Too few steps were measured to judge it."))
    else:
        items.append(("The one thing to work on", "Nothing stood out: keep the same easy form."))
    improved = [m for m in summary.get("improved", []) if m in METRICS]
    if improved:
        items.append(("What improved", "<br>".join(_evidence(record, m) for m in improved)))
    if row.program and row.program != "free":
        items.append(("Program", html.escape(row.program)))
    if row.runner:
        items.append(("Runner", html.escape(row.runner)))
    said = summary.get("text")
    if said:
        items.append(("The coach's summary", f"<em>{html.escape(str(said))}</em>"))
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return f'<dl class="head">{rows}</dl>'


def _work_on_words(summary: Mapping[str, object], cues: Sequence[StoredCue]) -> Optional[str]:
    work_on = summary.get("work_on")
    if not work_on:
        return None
    if summary.get("work_on_text"):
        return str(summary["work_on_text"])
    said = [c.text for c in cues if c.cue_id == work_on and c.kind == "correction"]
    if said:
        return said[-1]
    metric = METRICS.get(str(work_on))
    return metric.advice if metric else None  # never a bare cue id


def _evidence(record: SessionRecord, name: str) -> str:
    """The improvement's words with its numbers: the first and last thirds' means."""
    metric = METRICS[name]
    values = _values(record.strides, name)
    words = html.escape(_sentence(metric.improved or label(name)))
    n = len(values) // 3
    if n == 0:
        return words
    early, late = statistics.fmean(values[:n]), statistics.fmean(values[-n:])
    unit = html.escape(metric.unit)
    return (
        f'{words} <span class="muted">({_number(early)} &rarr; {_number(late)} {unit}, '
        f"mean of the first and last {n} steps)</span>"
    )


# --- plots -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axes:
    """Data to SVG coordinates for one plot."""

    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, value: float) -> float:
        return _LEFT + (value - self.x0) / (self.x1 - self.x0) * (_W - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        span = _H - _TOP - _BOTTOM
        return _TOP + span - (value - self.y0) / (self.y1 - self.y0) * span


def _metric_figure(
    record: SessionRecord,
    name: str,
    about: Mapping[str, Sequence[str]],
    targets: Sequence[Target],
) -> str:
    metric = METRICS[name]
    start = record.row.started
    mine = [t for t in targets if t.metric == name]
    cues = [c for c in record.cues if name in about.get(c.cue_id, ()) and c.kind != "summary"]
    values = _values(record.strides, name)
    axes = _Axes(
        0.0, max(_session_end(record) - start, 1.0) / 60.0, *_y_range(values, metric, mine)
    )
    body = [_good_band(axes, metric)]
    for target in mine:
        body.append(_target_band(axes, target, start))
    body.append(_dots(axes, record.strides, name, start))
    body.append(_trend_line(axes, record.strides, name, start))
    for number, cue in enumerate(cues, 1):
        body.append(_cue_mark(axes, cue, number, start))
    body.append(_frame(axes, "minutes"))
    notes = [f"good range {_good_text(metric)}"] if _has_good(metric) else []
    notes += [f"target {t.value:.0f} {html.escape(metric.unit)}" for t in mine]
    legend = " &middot; ".join(
        [
            f'<span style="color:{SIDE_COLOURS["left"]}">&#9679; left</span>',
            f'<span style="color:{SIDE_COLOURS["right"]}">&#9679; right</span>',
            "&#9644; typical (rolling median)",
            *notes,
        ]
    )
    listed = "".join(
        f'<li><span style="color:{CUE_COLOURS.get(c.kind, "#5f6368")}">'
        f"{_clock(c.t - start)} {CUE_WORDS.get(c.kind, c.kind)}</span>: {html.escape(c.text)}</li>"
        for c in cues
    )
    cue_list = f'<ol class="cues">{listed}</ol>' if listed else ""
    return (
        f'<figure id="{html.escape(name)}">'
        f"<figcaption><b>{html.escape(label(name))}</b></figcaption>"
        f"{_svg(body, label(name))}<figcaption>{legend}</figcaption>{cue_list}</figure>"
    )


def _trend_figure(sessions: Sequence[SessionRecord], name: str) -> str:
    metric = METRICS[name]
    means = [_mean_of(s.strides, name) for s in sessions]
    known = [m for m in means if m is not None]
    axes = _Axes(-0.5, len(sessions) - 0.5, *_y_range(known, metric, ()))
    body = [_good_band(axes, metric)]
    points = [(axes.x(i), axes.y(m)) for i, m in enumerate(means) if m is not None]
    body.append(
        '<polyline fill="none" stroke="#1a73e8" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        + '"/>'
    )
    for i, (x, y) in enumerate(points):
        last = i == len(points) - 1 and means[-1] is not None
        colour, radius = ("#c5221f", 6) if last else ("#1a73e8", 4)
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}"/>')
    for i, session in enumerate(sessions):
        day = time.strftime("%d %b", time.localtime(session.row.started))
        body.append(_text(axes.x(i), _H - 10, day, anchor="middle", size=11))
    body.append(_frame(axes, None))
    return (
        f'<figure id="{html.escape(name)}-trend"><figcaption><b>{html.escape(label(name))}</b>: '
        "mean of each session (this one in red)</figcaption>"
        f"{_svg(body, label(name) + ' by session')}</figure>"
    )


def _y_range(
    values: Sequence[float], metric: Metric, targets: Sequence[Target]
) -> tuple[float, float]:
    """Most of the readings (2nd to 98th percentile, so one glitch does not flatten the rest),
    the good range's edge and any target, inside what is plausible."""
    ordered = sorted(values)
    if ordered:
        lo = ordered[int(0.02 * (len(ordered) - 1))]
        hi = ordered[math.ceil(0.98 * (len(ordered) - 1))]
    else:
        lo, hi = metric.plausible
    edges = [e for e in metric.good if math.isfinite(e)] + [t.value for t in targets]
    lo, hi = min([lo, *edges]), max([hi, *edges])
    pad = max((hi - lo) * 0.12, abs(hi) * 0.02, 1e-3)
    return max(metric.plausible[0], lo - pad), min(metric.plausible[1], hi + pad)


def _good_band(axes: _Axes, metric: Metric) -> str:
    if not _has_good(metric):
        return ""
    top = axes.y(min(metric.good[1], axes.y1))
    bottom = axes.y(max(metric.good[0], axes.y0))
    if bottom <= top:
        return ""
    return (
        f'<rect x="{_LEFT}" y="{top:.1f}" width="{_W - _LEFT - _RIGHT}" '
        f'height="{bottom - top:.1f}" fill="{GOOD_FILL}"/>'
        + _text(_W - _RIGHT - 4, top + 14, "good", anchor="end", size=12, colour="#188038")
    )


def _target_band(axes: _Axes, target: Target, start: float) -> str:
    x0, x1 = axes.x((target.t0 - start) / 60.0), axes.x((target.t1 - start) / 60.0)
    y = axes.y(target.value)
    low = axes.y(target.value * (1.0 - target.tolerance))
    return (
        f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 1):.1f}" height="{low - y:.1f}" '
        f'fill="#ead7f5"/><line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="{CUE_COLOURS["program"]}" stroke-width="2" stroke-dasharray="6 3"/>'
        + _text(x0 + 3, y - 4, f"target {target.value:.0f}", size=12, colour="#7b1fa2")
    )


def _dots(axes: _Axes, strides: Sequence[StoredStride], name: str, start: float) -> str:
    out = []
    for side, colour in SIDE_COLOURS.items():
        points = [
            ((s.t - start) / 60.0, s.metrics[name])
            for s in strides
            if s.side == side and name in s.metrics and math.isfinite(s.metrics[name])
        ]
        step = max(1, math.ceil(len(points) / POINTS_PER_SIDE))
        out += [
            f'<circle cx="{axes.x(x):.1f}" cy="{axes.y(_clamp(y, axes)):.1f}" r="1.8" '
            f'fill="{colour}" fill-opacity=".55"/>'
            for x, y in points[::step]
        ]
    return "".join(out)


def _trend_line(axes: _Axes, strides: Sequence[StoredStride], name: str, start: float) -> str:
    points = [((s.t - start) / 60.0, s.metrics[name]) for s in strides if name in s.metrics]
    if len(points) < TREND_WINDOW:
        return ""
    values = [v for _, v in points]
    line = [
        (
            axes.x(points[i][0]),
            axes.y(_clamp(statistics.median(values[i - TREND_WINDOW + 1 : i + 1]), axes)),
        )
        for i in range(TREND_WINDOW - 1, len(points))
    ]
    step = max(1, len(line) // 600)
    return (
        '<polyline fill="none" stroke="#202124" stroke-width="2.2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in line[::step])
        + '"/>'
    )


def _cue_mark(axes: _Axes, cue: StoredCue, number: int, start: float) -> str:
    x = axes.x((cue.t - start) / 60.0)
    colour = CUE_COLOURS.get(cue.kind, "#5f6368")
    return (
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_H - _BOTTOM}" stroke="{colour}" '
        f'stroke-width="1.5" stroke-dasharray="4 3"><title>{html.escape(cue.text)}</title></line>'
        f'<circle cx="{x:.1f}" cy="{_TOP + 9}" r="9" fill="{colour}"/>'
        + _text(x, _TOP + 13.5, str(number), anchor="middle", size=12, colour="#fff")
    )


def _frame(axes: _Axes, x_label: Optional[str]) -> str:
    bottom, right = _H - _BOTTOM, _W - _RIGHT
    out = [
        f'<rect x="{_LEFT}" y="{_TOP}" width="{right - _LEFT}" height="{bottom - _TOP}" '
        'fill="none" stroke="#9aa0a6"/>'
    ]
    for value in _ticks(axes.y0, axes.y1):
        y = axes.y(value)
        out.append(f'<line x1="{_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e8eaed"/>')
        out.append(_text(_LEFT - 4, y + 4, _number(value), anchor="end", size=12))
    if x_label:
        for value in _ticks(axes.x0, axes.x1):
            out.append(_text(axes.x(value), bottom + 15, _number(value), anchor="middle", size=12))
        out.append(_text(right, _H - 2, x_label, anchor="end", size=12, colour="#5f6368"))
    return "".join(out)


def _ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round values between lo and hi, about `count` of them."""
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _svg(body: Sequence[str], title: str) -> str:
    return (
        f'<svg viewBox="0 0 {_W:.0f} {_H:.0f}" role="img" aria-label="{html.escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui,sans-serif">'
        + "".join(body)
        + "</svg>"
    )


def _text(
    x: float, y: float, text: str, anchor: str = "start", size: int = 12, colour: str = "#3c4043"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{colour}">{html.escape(text)}</text>'
    )


# --- the cue table and small helpers -----------------------------------------------------


def _cue_table(record: SessionRecord, cues: Sequence[StoredCue]) -> str:
    start = record.row.started
    rows = "".join(
        f'<tr><td>{_clock(c.t - start)}</td><td style="color:{CUE_COLOURS.get(c.kind, "#5f6368")}">'
        f"{CUE_WORDS.get(c.kind, html.escape(c.kind))}</td><td>{html.escape(c.text)}</td></tr>"
        for c in cues
    )
    return f"<table><tr><th>At</th><th></th><th>Words</th></tr>{rows}</table>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _values(strides: Sequence[StoredStride], name: str) -> list[float]:
    return [
        float(s.metrics[name])
        for s in strides
        if name in s.metrics and math.isfinite(s.metrics[name])
    ]


def _median_of(strides: Sequence[StoredStride], name: str) -> Optional[float]:
    values = _values(strides, name)
    return statistics.median(values) if values else None


def _mean_of(strides: Sequence[StoredStride], name: str) -> Optional[float]:
    values = _values(strides, name)
    return statistics.fmean(values) if values else None


def _session_end(record: SessionRecord) -> float:
    last = max([record.row.started, *(s.t for s in record.strides), *(c.t for c in record.cues)])
    return record.row.ended if record.row.ended is not None else last


def _has_good(metric: Metric) -> bool:
    return any(math.isfinite(e) for e in metric.good)


def _good_text(metric: Metric) -> str:
    lo, hi = metric.good
    if not math.isfinite(lo):
        return f"up to {_number(hi)} {metric.unit}"
    if not math.isfinite(hi):
        return f"from {_number(lo)} {metric.unit}"
    return f"{_number(lo)} to {_number(hi)} {metric.unit}"


def _clamp(value: float, axes: _Axes) -> float:
    return min(max(value, axes.y0), axes.y1)


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _when(started: float) -> str:
    return time.strftime("%a %d %b %Y, %H:%M", time.localtime(started))


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
