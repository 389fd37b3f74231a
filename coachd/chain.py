"""The coaching chain: TrackedFrame -> gait -> sessions and cue engine, shared by `coachd run`
and `coachd analyze`.

What it measures and decides reaches its consumers (the store, the speaker, metrics, a
recording, an analysis's JSON) as events to listeners, so adding a consumer touches no stage.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from coachd.coach.coaching import Coaching, CoachingState, CoachingStep, Stopped
from coachd.coach.engine import CueEngine
from coachd.coach.pack import CuePack
from coachd.coach.programs import RetroProgress
from coachd.gait import GaitAnalyzer
from coachd.messages import Cue, GaitUpdate, Stride, TrackedFrame, View
from coachd.settings import EngineSettings

STATE_EVERY_S = 0.2  # coaching_state at most this often, and at once after a cue


class ChainListener:
    """One consumer of the chain: override the events it needs (each is a no-op here).

    Called in registration order on the thread that drove the chain, with the chain's lock
    held: return at once (queue slow work) and never call back into the chain."""

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        """One frame through pose and gait; `image` is None when replaying landmarks."""

    def session_started(self, t0: float, program: str) -> None:
        """A runner settled in; the session counts from `t0`, when their running began."""

    def strides_joined(self, strides: Sequence[Stride]) -> None:
        """Steps that belong to the current session (at its start, its run-in's too)."""

    def cue_decided(self, cue: Cue) -> None:
        """Something to say: a greeting, correction, praise, program line or summary."""

    def cues_dropped(self, reason: str, count: int) -> None:
        """Cues the engine gave up on (reason "stale_evidence")."""

    def metronome_changed(self, cadence_spm: Optional[float]) -> None:
        """Clicks at this cadence from now on (None: stop clicking)."""

    def session_ended(self, summary: Mapping[str, Any], retro: Optional[RetroProgress]) -> None:
        """The session is over: its summary and, in the retro program, the progress to keep."""

    def coaching_state(self, t: float, state: CoachingState) -> None:
        """Where coaching stands at `t` (program step, thresholds), every STATE_EVERY_S."""


class CoachingChain:
    """Feeds each tracked frame through gait and coaching and tells the listeners.

    Thread-safe: the tracker thread feeds frames while the main thread ticks, reloads and
    reports problems."""

    def __init__(self, gait: GaitAnalyzer, coaching: Coaching) -> None:
        self._gait = gait
        self._coaching = coaching
        self._listeners: list[ChainListener] = []
        self._lock = threading.Lock()
        self._in_session = False
        self._metronome_spm: Optional[float] = None
        self._view: Optional[View] = None
        self._state_t = -math.inf

    @property
    def engine(self) -> CueEngine:
        return self._coaching.engine

    @property
    def in_session(self) -> bool:
        return self._in_session

    def add_listener(self, listener: ChainListener) -> None:
        """Listeners hear events in the order they were added (add them before feeding)."""
        self._listeners.append(listener)

    def retime(self, gait: GaitAnalyzer) -> None:
        """A gait stage for a new frame rate (it counts its windows in frames)."""
        with self._lock:
            self._gait = gait

    def feed(self, tracked: TrackedFrame, image: Optional[np.ndarray] = None) -> None:
        """One tracked frame (with its picture, for recordings and overlays)."""
        update = self._gait.update(tracked)
        with self._lock:
            for listener in self._listeners:
                listener.frame_measured(tracked, update, image)
            self._emit(self._coaching.update(update))
            self._follow_metronome(tracked.t)
            self._view = update.view or self._view
            self._tell_state(tracked.t)

    def tick(self, t: float) -> None:
        """Call now and then: a session still ends while no frames arrive (camera lost)."""
        with self._lock:
            self._emit(self._coaching.tick(t))
            self._tell_state(t)

    def finish(self, t: float) -> None:
        """End the current session with its spoken summary (the source ended)."""
        with self._lock:
            self._emit(self._coaching.finish(t))

    def abandon(self) -> None:
        """Stopping mid-session: the session so far ends without a word said."""
        with self._lock:
            if self._in_session:
                self._end_session()

    def report_problem(self, t: float) -> None:
        """The runner reports pain or lost balance: a retro drill stops at once."""
        with self._lock:
            self._emit(self._coaching.report_problem(t))

    def stop(self, t: float) -> Stopped:
        """The runner's STOP (a page button, a key): ends a retro drill if one is on, else
        the session; what it ended."""
        with self._lock:
            stopped, step = self._coaching.stop(t)
            self._emit(step)
            self._tell_state(t)
            return stopped

    def reload(self, settings: EngineSettings, pack: CuePack) -> None:
        """New engine settings and cue packs, mid-session."""
        with self._lock:
            self._coaching.engine.reload(settings, pack)

    def _emit(self, step: CoachingStep) -> None:
        if step.started:
            self._in_session = True
            t0 = self._coaching.sessions.started_at
            program = self._coaching.engine.settings.program
            for listener in self._listeners:
                listener.session_started(step.cues[0].t_emit if t0 is None else t0, program)
        if step.strides:
            for listener in self._listeners:
                listener.strides_joined(step.strides)
        if step.dropped_stale:
            for listener in self._listeners:
                listener.cues_dropped("stale_evidence", step.dropped_stale)
        for cue in step.cues:
            for listener in self._listeners:
                listener.cue_decided(cue)
        if step.ended:
            self._end_session()
        if step.cues:
            self._state_t = -math.inf  # the program may have moved on: tell it now

    def _tell_state(self, t: float) -> None:
        if t - self._state_t < STATE_EVERY_S:
            return
        self._state_t = t
        state = self._coaching.state(t, self._view)
        for listener in self._listeners:
            listener.coaching_state(t, state)

    def _end_session(self) -> None:
        self._in_session = False
        summary = self._coaching.sessions.summary()
        retro = self._coaching.engine.retro_result()
        for listener in self._listeners:
            listener.session_ended(summary, retro)

    def _follow_metronome(self, now: float) -> None:
        engine = self._coaching.engine
        metronome = engine.metronome() if engine.settings.metronome else None
        spm = None
        if metronome is not None and metronome.start_t <= now < metronome.end_t:
            spm = metronome.cadence_spm
        if spm != self._metronome_spm:
            self._metronome_spm = spm
            for listener in self._listeners:
                listener.metronome_changed(spm)
