"""Sessions and the cue engine run together: what `coachd run` says live and what
`coachd analyze` reports it would have said, from the same rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

from coachd.coach.engine import CueEngine, FormBand
from coachd.coach.pack import load_packs
from coachd.coach.programs import ProgramStep
from coachd.coach.sessions import SessionTracker
from coachd.messages import Cue, GaitUpdate, Stride, View
from coachd.settings import Settings


@dataclass(frozen=True)
class CoachingStep:
    """What one update brought: cues in speaking order, whether a session began or ended,
    the strides that joined the session (at its start, those of its run-in too), and how
    many cues the engine dropped because their evidence had gone stale."""

    cues: list[Cue] = field(default_factory=list)
    strides: list[Stride] = field(default_factory=list)
    started: bool = False
    ended: bool = False
    dropped_stale: int = 0


Stopped = Literal["drill", "session", "nothing"]


@dataclass(frozen=True)
class CoachingState:
    """Where coaching stands now, for a live display: the session's start, the program's
    step, the thresholds the rules judge in the current view (faults that are on first) and
    the cadence they judge."""

    in_session: bool
    session_t0: Optional[float]  # when the session's running began (monotonic)
    warmed_up: bool
    program: str
    step: Optional[ProgramStep]
    bands: tuple[FormBand, ...]
    cadence_spm: Optional[float]  # as the engine judges it (None outside a session)


class Coaching:
    """A greeting once a runner has settled in, corrections only inside a session, a summary
    when they leave. `on_start` prepares the engine for a new runner (default: a plain reset)."""

    def __init__(
        self,
        engine: CueEngine,
        sessions: SessionTracker,
        on_start: Optional[Callable[[], None]] = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self._on_start = on_start or engine.reset
        self._stopped = False  # a STOP ended the session: no new one until the runner stops

    @classmethod
    def from_settings(cls, settings: Settings) -> Coaching:
        """The engine with the configured packs (a broken pack is a ConfigError) and sessions."""
        engine = CueEngine(settings.engine, load_packs(settings.engine))
        return cls(engine, SessionTracker(settings.service))

    @property
    def active(self) -> bool:
        return self.sessions.active

    def update(self, update: GaitUpdate) -> CoachingStep:
        if self._stopped:
            if update.activity == "running":
                return CoachingStep()
            self._stopped = False
        step = self._session_step(self.sessions.update(update))
        step.strides.extend(self.sessions.joined)
        if not self.sessions.active or step.ended:
            return step
        # Counted around the engine's update alone: a session start resets its counters.
        stale_before = self.engine.counters.dropped_stale_total
        corrections = self.engine.update(update, now=update.t)
        for cue in corrections:
            self.sessions.note_cue(cue)
        step.cues.extend(corrections)
        dropped = self.engine.counters.dropped_stale_total - stale_before
        return CoachingStep(step.cues, step.strides, step.started, step.ended, dropped)

    def tick(self, t: float) -> CoachingStep:
        """Call now and then: a session still ends while no frames arrive (camera lost)."""
        return self._session_step(self.sessions.tick(t))

    def finish(self, t: float) -> CoachingStep:
        """End the current session now (the source ended or the daemon stops)."""
        summary = self.sessions.finish(t)
        return self._session_step([summary] if summary is not None else [])

    def report_problem(self, t: float) -> CoachingStep:
        """The runner reports pain or lost balance (a button, SIGUSR1): a drill stops."""
        cues = self.engine.report_problem(t)
        for cue in cues:
            self.sessions.note_cue(cue)
        return CoachingStep(cues=cues)

    def stop(self, t: float) -> tuple[Stopped, CoachingStep]:
        """The runner's STOP: a retro drill stops at once (as a reported problem); with no
        drill on, the session ends with its summary."""
        if self.engine.in_drill:
            return "drill", self.report_problem(t)
        if self.sessions.active:
            self._stopped = True
            return "session", self.finish(t)
        return "nothing", CoachingStep()

    def state(self, now: float, view: Optional[View]) -> CoachingState:
        active = self.sessions.active
        return CoachingState(
            in_session=active,
            session_t0=self.sessions.started_at if active else None,
            warmed_up=active and self.engine.warmed_up,
            program=self.engine.settings.program,
            step=self.engine.program_step(now) if active else None,
            bands=tuple(self.engine.form_bands(view)) if active else (),
            cadence_spm=self.engine.cadence_spm() if active else None,
        )

    def _session_step(self, cues: list[Cue]) -> CoachingStep:
        started = any(cue.kind == "greeting" for cue in cues)
        if started:
            self._on_start()
        return CoachingStep(
            cues=list(cues), started=started, ended=any(cue.kind == "summary" for cue in cues)
        )
