"""Sessions and the cue engine run together: what `coachd run` says live and what
`coachd analyze` reports it would have said, from the same rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from coachd.coach.engine import CueEngine
from coachd.coach.sessions import SessionTracker
from coachd.messages import Cue, GaitUpdate, Stride


@dataclass(frozen=True)
class CoachingStep:
    """What one update brought: cues in speaking order, whether a session began or ended,
    and the strides that joined the session (at its start, those of its run-in too)."""

    cues: list[Cue] = field(default_factory=list)
    strides: list[Stride] = field(default_factory=list)
    started: bool = False
    ended: bool = False


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

    @property
    def active(self) -> bool:
        return self.sessions.active

    def update(self, update: GaitUpdate) -> CoachingStep:
        step = self._session_step(self.sessions.update(update))
        step.strides.extend(self.sessions.joined)
        if self.sessions.active and not step.ended:
            corrections = self.engine.update(update, now=update.t)
            for cue in corrections:
                self.sessions.note_cue(cue)
            step.cues.extend(corrections)
        return step

    def tick(self, t: float) -> CoachingStep:
        """Call now and then: a session still ends while no frames arrive (camera lost)."""
        return self._session_step(self.sessions.tick(t))

    def finish(self, t: float) -> CoachingStep:
        """End the current session now (the source ended or the daemon stops)."""
        summary = self.sessions.finish(t)
        return self._session_step([summary] if summary is not None else [])

    def _session_step(self, cues: list[Cue]) -> CoachingStep:
        started = any(cue.kind == "greeting" for cue in cues)
        if started:
            self._on_start()
        return CoachingStep(
            cues=list(cues), started=started, ended=any(cue.kind == "summary" for cue in cues)
        )
