"""Hands-free sessions: a runner steps on and starts running, a session begins by itself with a
greeting; they stop or leave, it ends with a short spoken summary.

Pure logic: time comes only from the GaitUpdates fed in (time.monotonic() seconds).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from coachd.catalog import METRICS
from coachd.messages import Cue, GaitUpdate, Stride
from coachd.settings import ServiceSettings

GREETING_ID = "session_greeting"
SUMMARY_ID = "session_summary"
# Still "on the treadmill": a walk break or backwards-walking drill does not end a session.
MOVING = ("running", "walking")
# A misread frame or two of "walking" in a run-in does not restart the run-in clock.
RUN_IN_BLIP_S = 1.0
# tick() counts a gap this long without GaitUpdates (camera lost) as nobody there.
NO_FRAMES_S = 1.0
# Fewer strides than this in a window says nothing about change.
MIN_WINDOW = 5
# A change is real when the means differ by more than this many standard errors.
SPREADS = 2.0
# Fewer measured strides than this: nothing is said about form, good or bad.
MIN_JUDGED_STRIDES = 3 * MIN_WINDOW
# The running knowledge's load rule: add no more than about 10% a week.
WEEKLY_INCREASE = 0.10


@dataclass
class _Session:
    t_start: float
    t_last_moving: float
    strides: list[Stride] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)


class SessionTracker:
    """Starts a session after service.session_start_s of running and ends it after
    service.session_end_s without running or walking; greets and sums up with Cues."""

    def __init__(
        self,
        settings: ServiceSettings,
        greeting: Optional[Callable[[], Optional[str]]] = None,
        greeting_note: str = "",
    ) -> None:
        """`greeting` gives the words for a known runner at each session's start (None:
        the plain greeting); `greeting_note` is said after it (the demo's short warm-up)."""
        self._greeting = greeting
        self._greeting_note = greeting_note
        self._start_s = settings.session_start_s
        self._end_s = settings.session_end_s
        self._runner = settings.runner_profile.strip()
        self._run_since: Optional[float] = None
        self._last_running: float = -math.inf
        self._run_in: list[Stride] = []
        self._current: Optional[_Session] = None
        self._last_summary: dict[str, Any] = {}
        self._last_update = -math.inf
        self._joined: list[Stride] = []

    @property
    def joined(self) -> list[Stride]:
        """The strides the last update() added to a session: at its start, all of the
        run-in's (it counts from when the running began); after that, the update's own."""
        return list(self._joined)

    @property
    def active(self) -> bool:
        return self._current is not None

    @property
    def started_at(self) -> Optional[float]:
        """The current session's start (when the run-in began), or None between sessions."""
        return None if self._current is None else self._current.t_start

    def update(self, update: GaitUpdate) -> list[Cue]:
        """Feed one GaitUpdate; a greeting or summary Cue when a session starts or ends."""
        self._last_update = max(self._last_update, update.t)
        self._joined = []
        if self._current is None:
            return self._follow_run_in(update)
        session = self._current
        session.strides.extend(update.strides)
        self._joined = list(update.strides)
        if update.activity in MOVING:
            session.t_last_moving = update.t
            return []
        if update.t - session.t_last_moving >= self._end_s:
            return [self._end(session.t_last_moving, update.t)]
        return []

    def tick(self, t: float) -> list[Cue]:
        """Call now and then with time.monotonic(): while no GaitUpdates arrive (the camera is
        lost), nobody counts as there, so a session still ends and says its summary."""
        if t - self._last_update < NO_FRAMES_S:
            return []
        cues = self.update(GaitUpdate(t, "absent", None))
        self._last_update = t
        return cues

    def note_cue(self, cue: Cue) -> None:
        """A cue was spoken during the session: the summary says what was worked on."""
        if self._current is not None and cue.kind not in ("greeting", "summary"):
            self._current.cues.append(cue)

    def finish(self, t: float) -> Optional[Cue]:
        """End the session now (the daemon is stopping); the summary Cue, or None if idle."""
        if self._current is None:
            return None
        return self._end(min(t, self._current.t_last_moving), t)

    def summary(self) -> dict[str, Any]:
        """The session so far, or the one that just ended: JSON-ready, for the store."""
        if self._current is not None:
            return summarize(
                self._current.strides,
                self._current.cues,
                self._current.t_start,
                self._current.t_last_moving,
            )
        return dict(self._last_summary)

    def _follow_run_in(self, update: GaitUpdate) -> list[Cue]:
        if update.activity == "running":
            if self._run_since is None:
                self._run_since = update.t
            self._last_running = update.t
            self._run_in.extend(update.strides)
        elif self._run_since is not None and update.t - self._last_running > RUN_IN_BLIP_S:
            self._run_since = None
            self._run_in = []
        if (
            update.activity != "running"
            or self._run_since is None
            or update.t - self._run_since < self._start_s
        ):
            return []
        self._current = _Session(self._run_since, update.t, strides=self._run_in)
        self._joined = list(self._run_in)
        self._run_since = None
        self._run_in = []
        text = self._greeting() if self._greeting is not None else None
        if text is None:
            text = f"Hi {self._runner}!" if self._runner else "Hi!"
            text += " I'm your running coach. I'll watch your form and speak up now and then."
        if self._greeting_note:
            text += " " + self._greeting_note
        return [Cue(update.t, GREETING_ID, text, "greeting", priority=100)]

    def _end(self, t_end: float, t_now: float) -> Cue:
        assert self._current is not None
        session, self._current = self._current, None
        self._last_summary = summarize(session.strides, session.cues, session.t_start, t_end)
        self._last_running = -math.inf
        text = str(self._last_summary["text"])
        return Cue(t_now, SUMMARY_ID, text, "summary", priority=100)


@dataclass(frozen=True)
class RunnerRecap:
    """What a known runner's history says at greeting (minutes of running, wall-clock weeks)."""

    sessions: int = 0
    last_minutes: float = 0.0
    last_work_on: Optional[str] = None  # the words of the last session's "work on"
    week_minutes: float = 0.0  # the last 7 days, this session not included
    last_week_minutes: float = 0.0  # the 7 days before those


def runner_greeting(name: str, recap: RunnerRecap) -> str:
    """Hello to a runner the kiosk knows: their last session, what they worked on, and the
    10%-a-week rule when this week's running is already past it."""
    if recap.sessions == 0:
        return (
            f"Hi {name}, welcome! I'm your running coach. "
            "I'll watch your form and speak up now and then."
        )
    count = f"{recap.sessions} session{'s' if recap.sessions != 1 else ''}"
    parts = [f"Welcome back, {name}: {count} so far, {_minutes(recap.week_minutes)} this week."]
    if recap.last_work_on:
        words = recap.last_work_on
        parts.append(f"Last time we worked on this: {words[:1].lower() + words[1:]}.")
    limit = recap.last_week_minutes * (1.0 + WEEKLY_INCREASE)
    if recap.last_week_minutes > 0 and recap.week_minutes > limit:
        parts.append(
            f"That's more than 10% over last week's {_minutes(recap.last_week_minutes)}: "
            "keep today easy."
        )
    return " ".join(parts)


def _minutes(value: float) -> str:
    whole = max(0, round(value))
    return f"{whole} minute{'s' if whole != 1 else ''}"


def summarize(
    strides: Sequence[Stride], cues: Sequence[Cue], t_start: float, t_end: float
) -> dict[str, Any]:
    """What the session was: duration, cadence, per-metric medians early and late, what
    improved and one thing to work on, with the sentence to say."""
    series = _series(strides)
    medians = {name: statistics.median(values) for name, values in series.items()}
    corrections = [c for c in cues if c.kind == "correction"]
    said = Counter(c.cue_id for c in corrections)
    cued_metrics = {m for c in corrections for m in c.metrics}
    improved = _improved(series, cued_metrics)
    work_on = _work_on(corrections, said, improved, medians)
    duration = max(0.0, t_end - t_start)
    summary: dict[str, Any] = {
        "duration_s": round(duration, 1),
        "strides": len(strides),
        "cadence_spm": round(medians["cadence_spm"], 1) if "cadence_spm" in medians else None,
        "medians": {k: round(v, 4) for k, v in sorted(medians.items())},
        "cues": dict(said),
        "improved": improved,
        "work_on": work_on[0] if work_on else None,
        "work_on_text": work_on[1] if work_on else None,  # its words, for reports
    }
    judged = len(strides) >= MIN_JUDGED_STRIDES and any(
        name in medians for name, metric in METRICS.items() if metric.advice
    )
    summary["text"] = _say_summary(duration, summary["cadence_spm"], improved, work_on, judged)
    return summary


def _series(strides: Sequence[Stride]) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {}
    for stride in strides:
        for name, value in stride.metrics.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                series.setdefault(name, []).append(float(value))
    return series


def _improved(series: dict[str, list[float]], cued: set[str]) -> list[str]:
    """Metrics whose last third is better than their first third by more than the measurement's
    own spread (SPREADS standard errors of the difference of means, counting a rolling mean's
    steps once) and more than the metric's resolution; cued ones first."""
    gains: list[tuple[bool, float, str]] = []
    for name, values in series.items():
        n = len(values) // 3
        metric = METRICS.get(name)
        if n < MIN_WINDOW or metric is None:
            continue
        early = [b for v in values[:n] if (b := metric.badness(v, name in cued)) is not None]
        late = [b for v in values[-n:] if (b := metric.badness(v, name in cued)) is not None]
        if len(early) < MIN_WINDOW or len(late) < MIN_WINDOW:
            continue
        gain = statistics.fmean(early) - statistics.fmean(late)
        if gain > max(
            SPREADS * _standard_error(early, late, metric.steps_averaged), metric.resolution
        ):
            gains.append((name in cued, gain / max(metric.resolution, 1e-9), name))
    gains.sort(reverse=True)
    return [name for _, _, name in gains]


def _standard_error(early: Sequence[float], late: Sequence[float], steps_averaged: int) -> float:
    """Of the difference of the two means; a rolling mean's neighbours are one sample."""
    independent = [max(1.0, len(w) / steps_averaged) for w in (early, late)]
    return math.sqrt(
        statistics.variance(early) / independent[0] + statistics.variance(late) / independent[1]
    )


def _work_on(
    corrections: Sequence[Cue],
    said: Counter[str],
    improved: list[str],
    medians: dict[str, float],
) -> Optional[tuple[str, str]]:
    """(id, words) of one thing for next time: the correction said most whose metrics did not
    improve, else the first catalogued metric whose median is not good (a fault that was
    fixed is not named again)."""
    about = {c.cue_id: c.metrics for c in corrections}
    unimproved = [c for c, _ in said.most_common() if not set(about[c]) & set(improved)]
    if unimproved:
        cue_id = unimproved[0]
        text = next(c.text for c in reversed(corrections) if c.cue_id == cue_id)
        return cue_id, text.strip().rstrip(".!")
    for metric in METRICS.values():
        if metric.advice and metric.name in medians and not metric.is_good(medians[metric.name]):
            return metric.name, metric.advice
    return None


def _say_summary(
    duration_s: float,
    cadence: Optional[float],
    improved: list[str],
    work_on: Optional[tuple[str, str]],
    judged: bool,
) -> str:
    """What the summary says; praise only for what was measured (`judged`: enough strides)."""
    length = _minutes(duration_s / 60) if round(duration_s / 60) else "a short run"
    if cadence:
        length += f" at {cadence:.0f} steps a minute"
    if not judged and work_on is None and not improved:
        return f"That was {length}. I could not see enough of your steps to judge your form."
    parts = [f"Well done: {length}."]
    said_improved = [w for m in improved if (w := METRICS[m].improved)][:2]
    if said_improved:
        parts.append("As you went, " + " and ".join(said_improved) + ".")
    if work_on is not None:
        words = work_on[1]
        parts.append(f"Next time, work on this: {words[:1].lower() + words[1:]}.")
    elif judged:
        parts.append("Your form held well; next time, keep that same easy rhythm.")
    return " ".join(parts)
