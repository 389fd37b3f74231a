"""Is the runner running, walking, standing still, or gone?

Running has a flight phase: each foot is down for less than half the stride (duty factor
< ~0.5) and steps come at 130+ a minute.  Walking has double support (duty factor > 0.5) or
a slow step rate.  Standing is a visible person who has not stepped for a while; absent is
nobody in view.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np

from coachd.messages import Activity

ABSENT_AFTER_S = 0.5  # no pose this long: absent
STILL_AFTER_S = 1.5  # no initial contact this long: standing
RUNNING_MAX_DUTY = 0.55
RUNNING_MIN_CADENCE = 130.0
RUNNING_MIN_CADENCE_NO_DUTY = 140.0
HOLD_S = 0.6  # a new activity must hold this long before it is reported


class ActivityClassifier:
    def __init__(self) -> None:
        self._contacts: deque[float] = deque(maxlen=8)  # recent IC times, either foot
        self._duty: deque[float] = deque(maxlen=6)
        self._last_pose_t: Optional[float] = None
        self.activity: Activity = "absent"
        self._candidate: Optional[tuple[Activity, float]] = None

    def reset(self) -> None:
        self._contacts.clear()
        self._duty.clear()
        self._candidate = None

    def add_contact(self, t: float) -> None:
        self._contacts.append(t)

    def add_duty(self, duty: float) -> None:
        self._duty.append(duty)

    @property
    def cadence_spm(self) -> Optional[float]:
        if len(self._contacts) < 3:
            return None
        gaps = np.diff(np.array(self._contacts))
        step = float(np.median(gaps))
        return 60.0 / step if step > 0 else None

    def update(self, t: float, pose_present: bool) -> Activity:
        if pose_present:
            self._last_pose_t = t
        raw = self._classify(t, pose_present)
        if raw == "absent" or raw == self.activity:
            self._candidate = None
            if raw == "absent" and self.activity != "absent":
                self.reset()
            self.activity = raw
            return raw
        if self._candidate is None or self._candidate[0] != raw:
            self._candidate = (raw, t)
        if t - self._candidate[1] >= HOLD_S or self.activity == "absent":
            self.activity = raw
            self._candidate = None
        return self.activity

    def would_run(self, t: float) -> bool:
        """Whether the latest steps look like running (used before the hold has passed)."""
        return self._classify(t, True) == "running"

    def _classify(self, t: float, pose_present: bool) -> Activity:
        if self._last_pose_t is None or t - self._last_pose_t >= ABSENT_AFTER_S:
            return "absent"
        if not pose_present:
            return self.activity
        recent = [c for c in self._contacts if t - c <= 3.0]
        if len(recent) < 3 or t - recent[-1] > STILL_AFTER_S:
            return "standing"
        cadence = self.cadence_spm or 0.0
        if self._duty:
            duty = float(np.median(np.array(self._duty)))
            running = duty < RUNNING_MAX_DUTY and cadence >= RUNNING_MIN_CADENCE
        else:
            running = cadence >= RUNNING_MIN_CADENCE_NO_DUTY
        return "running" if running else "walking"
