"""The daemon's consumers of the coaching chain: the sessions database, the recorder, the
Prometheus metrics and the speaker. Each returns at once: the chain runs on the tracker thread.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, Callable, Optional

import numpy as np

from coachd.chain import ChainListener
from coachd.coach.programs import RetroProgress
from coachd.messages import Cue, GaitUpdate, Stride, TrackedFrame
from coachd.service.health import HealthServer, Metrics
from coachd.service.recording import SessionRecorder
from coachd.service.runners import BASELINE_STATE
from coachd.service.store_writer import StoreWriter
from coachd.speech import Speaker


class StoreListener(ChainListener):
    """Sessions, their strides, cues and summaries into the store writer's queue; the
    runner's retro progress after each session."""

    def __init__(
        self,
        store: StoreWriter,
        runner: Callable[[], str],
        baseline: Callable[[], Mapping[str, float]] = dict,
    ) -> None:
        """`runner` says whom a session starting now is filed under; `baseline` what the
        session settled on, kept for the runner's next session."""
        self._store = store
        self._runner = runner
        self._baseline = baseline
        self._session_runner = ""
        self.session_key: Optional[int] = None

    def session_started(self, t0: float, program: str) -> None:
        self._session_runner = self._runner()
        self.session_key = self._store.start_session(
            runner=self._session_runner, program=program, t0=t0
        )

    def strides_joined(self, strides: Sequence[Stride]) -> None:
        if self.session_key is not None:
            for stride in strides:
                self._store.add_stride(self.session_key, stride)

    def cue_decided(self, cue: Cue) -> None:
        if self.session_key is not None:
            self._store.add_cue(self.session_key, cue)

    def session_ended(self, summary: Mapping[str, Any], retro: Optional[RetroProgress]) -> None:
        if self.session_key is None:
            return
        self._store.end_session(self.session_key, summary)
        runner = self._runner() or self._session_runner
        if runner and retro is not None:
            self._store.set_program_state(runner, "retro", asdict(retro))
        baseline = self._baseline()
        if runner and baseline:
            self._store.set_program_state(runner, BASELINE_STATE, baseline)
        self.session_key = None


class SessionSavedNotice(ChainListener):
    """After a session's summary, one line saying where it was saved and how to see it
    (add it after the StoreListener whose `session_key` it reads)."""

    def __init__(self, session_key: Callable[[], Optional[int]], page_url: Optional[str]):
        self._session_key = session_key
        self._page_url = page_url  # the live server's address, None when it is off
        self._key: Optional[int] = None

    def session_started(self, t0: float, program: str) -> None:
        self._key = self._session_key()

    def session_ended(self, summary: Mapping[str, Any], retro: Optional[RetroProgress]) -> None:
        if self._key is not None:
            print(saved_notice(self._key, self._page_url), flush=True)
        self._key = None


def saved_notice(session: int, page_url: Optional[str]) -> str:
    """ "session N saved: ..." with the command that writes its report and its page."""
    line = f"session {session} saved: coachd report {session}"
    if page_url:
        line += f", or open {page_url.rstrip('/')}/sessions/{session}"
    return line


class DemoRunnerListener(ChainListener):
    """The demo runner (no camera) fixes its form `reaction_s` after the coach's first
    correction: scripted, so a first run shows a cue and its praise."""

    def __init__(self, fix_after: Callable[[float], None], reaction_s: float) -> None:
        self._fix_after = fix_after
        self._reaction_s = reaction_s
        self._told = False

    def cue_decided(self, cue: Cue) -> None:
        if cue.kind == "correction" and not self._told:
            self._told = True
            self._fix_after(self._reaction_s)


class RecorderListener(ChainListener):
    """A video per session, named by the session's key in the store (so add it after the
    StoreListener that `session_key` reads)."""

    def __init__(self, recorder: SessionRecorder, session_key: Callable[[], Optional[int]]):
        self._recorder = recorder
        self._session_key = session_key

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        if image is not None:
            self._recorder.add(image, tracked.t, tracked.pose, update)

    def session_started(self, t0: float, program: str) -> None:
        key = self._session_key()
        if key is not None:
            self._recorder.start_session(key)

    def session_ended(self, summary: Mapping[str, Any], retro: Optional[RetroProgress]) -> None:
        self._recorder.end_session()


class MetricsListener(ChainListener):
    """Per-frame timings, runner presence and session and drop counts for /metrics; each
    frame also marks /healthz's frame clock."""

    def __init__(self, metrics: Metrics, health: Optional[HealthServer]) -> None:
        self._metrics = metrics
        self._health = health

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        self._metrics.set_runner_present(tracked.pose is not None)
        self._metrics.observe_pose_ms(tracked.pose_ms)
        self._metrics.observe_latency_ms(1000.0 * (tracked.t_ready - tracked.t))
        if self._health is not None:
            self._health.mark_frame(tracked.t_ready)

    def session_started(self, t0: float, program: str) -> None:
        self._metrics.inc_sessions()

    def cues_dropped(self, reason: str, count: int) -> None:
        self._metrics.inc_cue_dropped(reason, count)


class SpeakerListener(ChainListener):
    """Hands each cue to the speaker (which queues it) and prints it with the time of day;
    follows the cadence block's metronome."""

    def __init__(self, speaker: Speaker, print_cues: bool) -> None:
        self._speaker = speaker
        self._print_cues = print_cues
        self.cues_said = 0

    def cue_decided(self, cue: Cue) -> None:
        self._speaker.say(cue)
        self.cues_said += 1
        if self._print_cues:
            clock = time.strftime("%H:%M:%S")
            line = f"{clock}  {cue.kind:<10} {cue.text}"
            if sys.stdout.isatty() and sys.stderr.isatty():
                line = "\r" + line.ljust(79)  # over the daemon's status line
            print(line, flush=True)

    def metronome_changed(self, cadence_spm: Optional[float]) -> None:
        self._speaker.set_metronome(cadence_spm)
