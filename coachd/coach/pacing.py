"""How often the cue engine may speak: a global gap between cues, a cap per minute and a
cooldown per cue, all fading (growing longer) while good form holds and the session goes on.
Time comes from the caller's `now` only.
"""

from __future__ import annotations

import math
from collections import deque

from coachd.coach.pack import CueRule
from coachd.settings import EngineSettings

SESSION_FADE_WEIGHT = 0.25  # running time with faults fades feedback at a quarter the rate
REPEAT_GROWTH = 1.5  # each repeat of a cue the runner has not fixed waits this much longer
MAX_REPEAT_STEPS = 3


class Pacing:
    """One session's speaking rhythm; the engine adds the running time it counts."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.good_form_s = 0.0  # running time after the warm-up with no fault on
        self.post_warmup_s = 0.0
        self._last_spoken_t = -math.inf
        self._spoken: deque[float] = deque()

    def fade_factor(self) -> float:
        """How much longer gaps and cooldowns are now: grows with good form held, and more
        slowly with session time, up to engine.fade_max_factor."""
        if not self.settings.fade:
            return 1.0
        progress = self.good_form_s + SESSION_FADE_WEIGHT * self.post_warmup_s
        share = min(1.0, progress / self.settings.fade_full_s)
        return 1.0 + (self.settings.fade_max_factor - 1.0) * share

    def current_gap_s(self) -> float:
        return self.settings.min_gap_s * self.fade_factor()

    def cooldown_s(self, rule: CueRule, repeats: int) -> float:
        """Before `rule` may be said again, after `repeats` times this fault episode."""
        base = self.settings.cooldown_s if rule.cooldown_s is None else rule.cooldown_s
        grown = min(max(repeats - 1, 0), MAX_REPEAT_STEPS) if self.settings.fade else 0
        return base * self.fade_factor() * REPEAT_GROWTH**grown

    def may_speak(self, now: float) -> bool:
        """The gap since the last cue has passed and the minute's cap is not reached."""
        if now - self._last_spoken_t < self.current_gap_s():
            return False
        while self._spoken and now - self._spoken[0] >= 60.0:
            self._spoken.popleft()
        return len(self._spoken) < self.settings.max_per_minute

    def mark_spoken(self, now: float) -> None:
        self._last_spoken_t = now
        self._spoken.append(now)
