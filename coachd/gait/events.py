"""Online initial contact and toe-off detection for one foot.

A foot is on the belt while its lowest seen point (heel or toe; the ankle when neither is seen)
is within a small height of where that point sits when planted, and (side views) it is not
swinging forwards.  The planted height of each point is a low percentile of its recent
heights, so it follows the camera and copes with the far foot standing higher in the image.
Heights go through a 3-frame median and a state change must hold for 2 frames: an initial
contact is known 2 frames after it happened, a toe-off 3 frames after.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.messages import EventKind, Side

HEEL, TOE, ANKLE = 0, 1, 2
MIN_LIMIT = 0.012  # leg lengths: the tightest contact height limit
MIN_TIGHT_LIMIT = 0.006
FRONTAL_MAX_SPEED = 1.4  # leg lengths per second


@dataclass(frozen=True)
class FootEvent:
    """A contact or toe-off with the sub-frame time used for timing metrics."""

    t: float  # capture time of the event's frame
    t_fine: float  # interpolated crossing time (cadence, contact time)
    side: Side
    kind: EventKind
    t_detected: float
    confidence: float


@dataclass(frozen=True)
class FootSample:
    """One frame of one foot in view coordinates (x forward or sideways, y up), pixels."""

    t: float
    points: np.ndarray  # (3, 2) heel, toe, ankle
    seen: np.ndarray  # (3,) bool
    visibility: float  # mean visibility of the seen foot points


class FootContactDetector:
    """Streams FootSamples, returns the events it has become sure of."""

    def __init__(
        self,
        side: Side,
        fps: float,
        contact_height: float,
        frontal_contact_height: float,
        ground_seconds: float = 3.0,
    ) -> None:
        self.side = side
        self.fps = fps
        self.contact_height = contact_height
        self.frontal_contact_height = frontal_contact_height
        self._heights: list[deque[float]] = [
            deque(maxlen=max(10, int(ground_seconds * fps))) for _ in range(3)
        ]
        self._raw: deque[FootSample] = deque(maxlen=3)
        # Evaluated frames: (t, height over ground / L or None, candidate contact)
        self._evaluated: deque[tuple[float, Optional[float], Optional[bool]]] = deque(maxlen=4)
        self.in_contact: Optional[bool] = None
        self._last_contact_t: Optional[float] = None
        self._last_contact_h: Optional[float] = None
        self._pending: Optional[tuple[float, float]] = None  # first frame of a new state
        self._contact_run: deque[tuple[float, float]] = deque(maxlen=3)  # its last frames
        self._confidence: deque[float] = deque(maxlen=6)
        # Heights of the planted foot: their spread sets how tight the contact limit can be.
        self._planted: deque[float] = deque(maxlen=max(20, int(2 * fps)))

    def reset(self) -> None:
        for heights in self._heights:
            heights.clear()
        self._raw.clear()
        self._evaluated.clear()
        self.in_contact = None
        self._last_contact_t = None
        self._pending = None

    @property
    def ready(self) -> bool:
        return max(len(h) for h in self._heights) >= max(10, int(0.8 * self.fps))

    def update(
        self, sample: FootSample, leg_px: Optional[float], frontal: bool, t_now: float
    ) -> list[FootEvent]:
        for k in range(3):
            if sample.seen[k]:
                self._heights[k].append(float(sample.points[k, 1]))
        self._raw.append(sample)
        if len(self._raw) < 3 or leg_px is None or not self.ready:
            return []
        middle = self._raw[1]
        height = self._height(leg_px)
        candidate: Optional[bool] = None
        if height is not None:
            limit = self.limit(frontal)
            candidate = height < limit and self._not_swinging(leg_px, frontal)
            if self.in_contact and candidate:
                self._planted.append(height)
        self._evaluated.append((middle.t, height, candidate))
        self._confidence.append(middle.visibility if height is not None else 0.0)
        return self._step(t_now, leg_px, frontal)

    def limit(self, frontal: bool) -> float:
        """Contact height limit in leg lengths: the setting, tightened to 4 spreads of the
        planted foot's height noise when the landmarks are steady (a sharper contact time)."""
        ceiling = self.frontal_contact_height if frontal else self.contact_height
        if frontal or len(self._planted) < 10:
            return ceiling
        values = np.array(self._planted)
        spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
        return float(np.clip(float(np.median(values)) + 4.0 * spread, MIN_LIMIT, ceiling))

    def tight_limit(self, frontal: bool) -> float:
        """The planted height plus 2 spreads: the contact frames' own band, for choosing
        exactly which frame a contact starts and ends on."""
        loose = self.limit(frontal)
        if frontal or len(self._planted) < 10:
            return loose
        values = np.array(self._planted)
        spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
        return float(np.clip(float(np.median(values)) + 2.0 * spread, MIN_TIGHT_LIMIT, loose))

    def _height(self, leg_px: float) -> Optional[float]:
        """Median-filtered height over the ground of the middle raw frame, in leg lengths."""
        best: Optional[float] = None
        for k in (HEEL, TOE, ANKLE):
            if k == ANKLE and best is not None:
                break
            values = [s.points[k, 1] for s in self._raw if s.seen[k]]
            if len(values) < 2 or not self._raw[1].seen[k] or len(self._heights[k]) < 5:
                continue
            ground = float(np.percentile(np.array(self._heights[k]), 10))
            height = (float(np.median(values)) - ground) / leg_px
            best = height if best is None else min(best, height)
        return best

    def _not_swinging(self, leg_px: float, frontal: bool) -> bool:
        first, middle, last = self._raw[0], self._raw[1], self._raw[2]
        dt = last.t - first.t
        if dt <= 0:
            return True
        if frontal:
            # The belt carries a planted foot away from (or towards) the camera: its lowest
            # point drifts slowly in the image, where a swinging foot rises or drops fast.
            both = [k for k in (HEEL, TOE) if first.seen[k] and last.seen[k] and middle.seen[k]]
            if not both:
                return True
            lowest = min(both, key=lambda k: middle.points[k, 1])
            # The slower side of the frame: a landing stops the drop at once.
            before = abs(middle.points[lowest, 1] - first.points[lowest, 1])
            after = abs(last.points[lowest, 1] - middle.points[lowest, 1])
            speed = 2.0 * min(before, after) / dt / leg_px
            return bool(speed < FRONTAL_MAX_SPEED)
        if not (first.seen[ANKLE] and last.seen[ANKLE]):
            return True
        # A planted foot goes backwards with the belt; a swinging one comes forwards.
        forward_speed = (last.points[ANKLE, 0] - first.points[ANKLE, 0]) / dt / leg_px
        return bool(forward_speed < 0.5)

    def _step(self, t_now: float, leg_px: float, frontal: bool) -> list[FootEvent]:
        t, height, candidate = self._evaluated[-1]
        if candidate is None:
            self._pending = None
            return []
        if self.in_contact is None:
            self.in_contact = candidate
            if candidate:
                self._last_contact_t, self._last_contact_h = t, height
            return []
        if candidate == self.in_contact:
            self._pending = None
            if candidate and height is not None:
                self._last_contact_t, self._last_contact_h = t, height
                self._contact_run.append((t, height))
            return []
        if self._pending is None:
            self._pending = (t, height if height is not None else 0.0)
            return []
        # The new state held for two evaluated frames: it is real.
        first_t, first_h = self._pending
        self._pending = None
        self.in_contact = candidate
        limit = self.limit(frontal)
        confidence = float(np.mean(self._confidence)) if self._confidence else 0.0
        tight = self.tight_limit(frontal)
        if candidate:
            previous = self._before(first_t)
            t_fine = _crossing(previous, (first_t, first_h), limit)
            new_run = [(et, h) for et, h, _ in self._evaluated if et >= first_t and h is not None]
            # The first frame down in the planted band (else the first under the limit).
            start = next((et for et, h in new_run if h <= tight), first_t)
            self._contact_run.clear()
            self._contact_run.extend((et, h) for et, h in new_run if et >= start)
            self._last_contact_t, self._last_contact_h = new_run[-1] if new_run else (t, 0.0)
            return [FootEvent(start, t_fine, self.side, "contact", t_now, confidence)]
        if self._last_contact_t is None or self._last_contact_h is None:
            return []
        last = (self._last_contact_t, self._last_contact_h)
        t_fine = _crossing(last, (first_t, first_h), limit)
        # The last frame still in the planted band (else the last under the limit).
        run = list(self._contact_run)
        end = last[0]
        while len(run) > 1 and run[-1][1] > tight:
            run.pop()
            end = run[-1][0]
        return [FootEvent(end, t_fine, self.side, "toe_off", t_now, confidence)]

    def _before(self, t: float) -> Optional[tuple[float, float]]:
        earlier = [(et, h) for et, h, _ in self._evaluated if et < t and h is not None]
        return earlier[-1] if earlier else None


def _crossing(
    before: Optional[tuple[float, float]], after: tuple[float, float], limit: float
) -> float:
    """When the height crossed the contact limit between two frames (linear), for timing."""
    if before is None:
        return after[0]
    (t0, h0), (t1, h1) = before, after
    if h1 == h0:
        return t1
    frac = float(np.clip((limit - h0) / (h1 - h0), 0.0, 1.0))
    return t0 + frac * (t1 - t0)
