"""Online initial contact and toe-off detection for one foot.

Side views: a foot is on the belt while its lowest seen point (heel or toe; the ankle when
neither is seen) is within a small height of where that point sits when planted, and it is not
swinging forwards.  The planted height of each point is a low percentile of its recent
heights, so it follows the camera and copes with the far foot standing higher in the image.
The exact contact frame is the first whose low point moves on with the belt.  Front and rear
views: a planted foot drifts slowly up (front) or down (rear) the image as the belt carries it.
Heights go through a median over MEDIAN_S (3 frames at 30 fps, 7 at 90); a landing must hold
CONTACT_HOLD_S (2 frames at 30 fps), a lift-off TOE_OFF_HOLD_S (3 frames): every duration is in
seconds, so the detector reads a 90 fps camera as it reads a 30 fps one (a median over 3 frames
at 90 fps lets through the two-frame glitches that 3 frames at 30 fps never see).  An event is
known at most MAX_DELAY_S after it happened: at a low frame rate the lift-off hold shrinks, down
to one frame at 15 fps.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.messages import EventKind, Side, View
from coachd.robust import median_and_spread

HEEL, TOE, ANKLE = 0, 1, 2
MIN_LIMIT = 0.012  # leg lengths: the tightest contact height limit
MIN_TIGHT_LIMIT = 0.006
FRONTAL_MAX_SPEED = 1.8  # leg lengths per second
FRONTAL_SLACK = 0.25  # leg lengths per second of landmark noise
REFRESH_S = 0.15  # the planted heights (percentiles of seconds of history) are refreshed this often
MEDIAN_S = 2 / 30  # heights are median-filtered over this span (whole frames either side)
CONTACT_HOLD_S = 2 / 30  # a new contact must hold this long
TOE_OFF_HOLD_S = 3 / 30  # ... and a toe-off: a planted foot's landmarks now and then jump away
READY_S = 0.8  # a foot's heights over this long show where it stands on the belt
CONFIDENCE_S = 0.2  # an event's confidence: the foot's visibility over this long
MAX_DELAY_S = 0.15  # every event is reported at most this long after it happened
DISSENT_S = 1 / 30  # frames against a change under way cancel it once they last this long
MIN_SWING_S = 0.2  # a foot back down sooner than this after a toe-off never left the belt
RELANDING_SHARE = 0.25  # ... when it is back within this many leg lengths of where it was
MIN_DESCENT = 0.018  # leg lengths a frame: a landing foot's descent read off its heights


@dataclass(frozen=True)
class FootEvent:
    """A contact or toe-off with the sub-frame time used for timing metrics."""

    t: float  # capture time of the event's frame
    t_fine: float  # interpolated crossing time of the height limit (for the cadence)
    side: Side
    kind: EventKind
    t_detected: float
    confidence: float
    # Side views, between frames: a contact's instant of touchdown read off the foot's
    # descent (the at-contact angles are read there), a toe-off's instant of lift-off read off
    # its rise; None when the fit gave no clear answer.  The contact time runs between them.
    t_touchdown: Optional[float] = None
    t_lift_off: Optional[float] = None
    # Found in the warm-up's frames, timed against a ground known from under a second.
    warm_up: bool = False


@dataclass(frozen=True)
class FootSample:
    """One frame of one foot in view coordinates (x forward or sideways, y up), pixels."""

    t: float
    points: np.ndarray  # (3, 2) heel, toe, ankle
    seen: np.ndarray  # (3,) bool
    visibility: float  # mean visibility of the seen foot points
    raw_points: Optional[np.ndarray] = None  # before smoothing, when `points` are smoothed
    filled: bool = False  # drawn in for a frame that was dropped (fill_gap), not seen

    @property
    def unsmoothed(self) -> np.ndarray:
        return self.points if self.raw_points is None else self.raw_points


MAX_FILLED_GAP_S = 0.2  # frames missing for longer are not filled in


def fill_gap(previous: Optional[FootSample], sample: FootSample, fps: float) -> list[FootSample]:
    """`sample`, preceded by the frames missing since `previous` (dropped by a busy machine),
    drawn on the straight line between the two at the detector's frame interval.

    The detector counts its holds and filters in frames: filled in, a run that lost a quarter
    or half of its frames keeps its timing, and every event stays on the capture clock.
    """
    if previous is None:
        return [sample]
    gap = sample.t - previous.t
    missing = round(gap * fps) - 1
    if missing < 1 or gap > MAX_FILLED_GAP_S:
        return [sample]
    seen = previous.seen & sample.seen
    filled = []
    for k in range(1, missing + 1):
        w = k / (missing + 1)
        raw = None
        if previous.raw_points is not None and sample.raw_points is not None:
            raw = (1 - w) * previous.raw_points + w * sample.raw_points
        filled.append(
            FootSample(
                previous.t + w * gap,
                (1 - w) * previous.points + w * sample.points,
                seen,
                min(previous.visibility, sample.visibility),
                raw,
                filled=True,
            )
        )
    return [*filled, sample]


class FootContactDetector:
    """Streams FootSamples, returns the events it has become sure of."""

    def __init__(
        self,
        side: Side,
        fps: float,
        contact_height: float,
        frontal_contact_height: float,
        ground_seconds: float = 3.0,
        warm_up_events: bool = False,
    ) -> None:
        self.side = side
        self.fps = fps
        # Offline analysis: the warm-up's contacts too, found late.  Live, every event is
        # known within MAX_DELAY_S, and those would come up to a second late.
        self._warm_up_events = warm_up_events
        self._contact_frames = _frames(CONTACT_HOLD_S, fps)
        # Frames either side of the median's middle one.
        self._half_median = max(1, round(MEDIAN_S * fps / 2.0))
        # At a low frame rate a toe-off held 3 frames would be known too late (4 frames is
        # 267 ms at 15 fps): the hold shrinks to what MAX_DELAY_S leaves after the median.
        self._toe_off_frames = min(
            _frames(TOE_OFF_HOLD_S, fps), max(1, int(MAX_DELAY_S * fps) - self._half_median)
        )
        self._refresh_frames = _frames(REFRESH_S, fps)
        self._ready_frames = max(10, _frames(READY_S, fps))
        self.contact_height = contact_height
        self.frontal_contact_height = frontal_contact_height
        self._heights: list[deque[float]] = [
            deque(maxlen=max(10, int(ground_seconds * fps))) for _ in range(3)
        ]
        self._raw: deque[FootSample] = deque(maxlen=2 * self._half_median + 1)
        # Samples before the planted heights are known, evaluated once they are.
        self._backlog: deque[FootSample] = deque(maxlen=self._heights[0].maxlen)
        self._live_from = -math.inf  # frames before this were evaluated late (the warm-up)
        self._recent: deque[FootSample] = deque(maxlen=max(12, int(0.7 * fps)))
        # The planted foot's forward speed (px/s, negative: with the belt) and its noise.
        self._belt: deque[float] = deque(maxlen=6)
        self._belt_noise: deque[float] = deque(maxlen=6)
        self._contact_start_t: Optional[float] = None
        self._seen_from_front = False
        self._last_toe_off_t: Optional[float] = None
        self._ignoring = False  # inside a touch too soon after a toe-off to be a step
        # Evaluated frames: (t, height over ground / L or None, candidate contact)
        self._evaluated: deque[tuple[float, Optional[float], Optional[bool]]] = deque(
            maxlen=max(self._contact_frames, self._toe_off_frames) + 2
        )
        self.in_contact: Optional[bool] = None
        self._last_contact_t: Optional[float] = None
        self._last_contact_h: Optional[float] = None
        self._pending: Optional[tuple[float, float]] = None  # first frame of a new state
        self._pending_frames = 0
        self._dissent = 0  # frames in a row against the pending change
        # At a high frame rate a frame or two against a change are a glitch shorter than any
        # frame at 30 fps: only as long a stretch against it cancels it.
        self._dissent_frames = _frames(DISSENT_S, fps)
        self._contact_run: list[tuple[float, float]] = []  # (t, height) of the current contact
        self._confidence: deque[float] = deque(maxlen=max(6, _frames(CONFIDENCE_S, fps)))
        # Heights of the planted foot: their spread sets how tight the contact limit can be.
        self._planted: deque[float] = deque(maxlen=max(20, int(2 * fps)))
        # Percentiles over seconds of history move slowly: refreshed every few frames.
        self._grounds: list[Optional[float]] = [None, None, None]
        self._limits: dict[bool, tuple[float, float]] = {}
        self._age = 0

    def reset(self) -> None:
        for heights in self._heights:
            heights.clear()
        self._raw.clear()
        self._backlog.clear()
        self._live_from = -math.inf
        self._recent.clear()
        self._belt.clear()
        self._belt_noise.clear()
        self._evaluated.clear()
        self.in_contact = None
        self._last_contact_t = None
        self._last_contact_h = None
        self._pending = None
        self._last_toe_off_t = None
        self._ignoring = False
        self._planted.clear()
        self._contact_run.clear()
        self._grounds = [None, None, None]
        self._limits = {}

    @property
    def ready(self) -> bool:
        return max(len(h) for h in self._heights) >= self._ready_frames

    def update(
        self, sample: FootSample, leg_px: Optional[float], view: View, t_now: float
    ) -> list[FootEvent]:
        frontal = view in ("front", "rear")
        self._seen_from_front = view == "front"
        self._learn_ground(sample)
        if leg_px is None or not self.ready:
            if self._warm_up_events:
                self._backlog.append(sample)
            return []
        events = self._replay(leg_px, frontal, t_now) if self._backlog else []
        return events + self._evaluate(sample, leg_px, frontal, t_now)

    def _learn_ground(self, sample: FootSample) -> None:
        for k in range(3):
            if sample.seen[k]:
                self._heights[k].append(float(sample.points[k, 1]))
        self._age += 1
        if self._age >= self._refresh_frames:
            self._age = 0
            self._grounds = [
                float(np.percentile(np.array(h), 10)) if len(h) >= 5 else None
                for h in self._heights
            ]
            self._limits = {}

    def _replay(self, leg_px: float, frontal: bool, t_now: float) -> list[FootEvent]:
        """The samples seen before the planted heights were known, evaluated now that they
        are: the contacts of the first second are found, reported late."""
        backlog = list(self._backlog)
        self._backlog.clear()
        self._raw.clear()
        self._recent.clear()
        events = []
        for old in backlog:
            for event in self._evaluate(old, leg_px, frontal, old.t):
                events.append(dataclasses.replace(event, t_detected=t_now, warm_up=True))
        # What the foot's noise and the belt's speed are is learnt from the live frames
        # only: the first ones are judged against a ground known from less than a second.
        self._planted.clear()
        self._belt.clear()
        self._belt_noise.clear()
        self._limits = {}
        self._live_from = t_now
        return events

    def _evaluate(
        self, sample: FootSample, leg_px: float, frontal: bool, t_now: float
    ) -> list[FootEvent]:
        """Whether the middle one of the median's samples is on the belt, and what that
        changes."""
        self._raw.append(sample)
        self._recent.append(sample)
        if len(self._raw) < 2 * self._half_median + 1:
            return []
        middle = self._middle
        height = self._height(leg_px)
        candidate: Optional[bool] = None
        if height is not None:
            limit = self.limit(frontal)
            candidate = height < limit and self._not_swinging(leg_px, frontal)
        self._evaluated.append((middle.t, height, candidate))
        self._confidence.append(middle.visibility if height is not None else 0.0)
        return self._step(t_now, leg_px, frontal)

    @property
    def _middle(self) -> FootSample:
        return self._raw[self._half_median]

    def limit(self, frontal: bool) -> float:
        """Contact height limit in leg lengths: the setting, tightened to 4 spreads of the
        planted foot's height noise when the landmarks are steady (a sharper contact time)."""
        return self._limit_pair(frontal)[0]

    def tight_limit(self, frontal: bool) -> float:
        """The planted height plus 2 spreads: the contact frames' own band, for choosing
        exactly which frame a contact starts and ends on."""
        return self._limit_pair(frontal)[1]

    def _limit_pair(self, frontal: bool) -> tuple[float, float]:
        cached = self._limits.get(frontal)
        if cached is not None:
            return cached
        ceiling = self.frontal_contact_height if frontal else self.contact_height
        pair = (ceiling, ceiling)
        if not frontal and len(self._planted) >= 10:
            centre, spread = median_and_spread(self._planted)
            loose = float(np.clip(centre + 4.0 * spread, MIN_LIMIT, ceiling))
            tight = float(np.clip(centre + 2.0 * spread, MIN_TIGHT_LIMIT, loose))
            pair = (loose, tight)
        self._limits[frontal] = pair
        return pair

    def _height(self, leg_px: float) -> Optional[float]:
        """Median-filtered height over the ground of the middle raw frame, in leg lengths."""
        best: Optional[float] = None
        for k in (HEEL, TOE, ANKLE):
            if k == ANKLE and best is not None:
                break
            ground = self._grounds[k]
            if ground is None or not self._middle.seen[k]:
                continue
            values = [float(s.points[k, 1]) for s in self._raw if s.seen[k]]
            if 2 * len(values) <= len(self._raw):
                continue  # too few to outvote a glitch
            height = (float(np.median(values)) - ground) / leg_px
            best = height if best is None else min(best, height)
        return best

    def _not_swinging(self, leg_px: float, frontal: bool) -> bool:
        first, middle, last = self._raw[0], self._middle, self._raw[-1]
        dt = last.t - first.t
        if dt <= 0:
            return True
        if frontal:
            # The belt carries a planted foot away from a camera in front (it rises slowly in
            # the image) or towards one behind (it sinks slowly); a swinging foot moves fast,
            # and a landing foot in front view still comes towards the camera (sinks).
            both = [k for k in (HEEL, TOE) if first.seen[k] and last.seen[k] and middle.seen[k]]
            if not both:
                return True
            lowest = min(both, key=lambda k: middle.points[k, 1])
            rising = (last.points[lowest, 1] - first.points[lowest, 1]) / dt / leg_px
            if not self._seen_from_front:
                rising = -rising
            return bool(-FRONTAL_SLACK <= rising <= FRONTAL_MAX_SPEED)
        if not (first.seen[ANKLE] and last.seen[ANKLE]):
            return True
        # A planted foot goes backwards with the belt; a swinging one comes forwards.
        forward_speed = (last.points[ANKLE, 0] - first.points[ANKLE, 0]) / dt / leg_px
        return bool(forward_speed < 0.5)

    def _step(self, t_now: float, leg_px: float, frontal: bool) -> list[FootEvent]:
        """The newest evaluated frame: a contact or toe-off once a change of state held."""
        t, height, candidate = self._evaluated[-1]
        if candidate is None:
            return []  # a frame without the foot neither confirms nor cancels a change
        if self.in_contact is None or candidate == self.in_contact:
            if self._pending is not None and self._dissent + 1 < self._dissent_frames:
                self._dissent += 1  # a moment against a change under way does not cancel it
                return []
            self._stay(t, height, candidate)
            return []
        self._dissent = 0
        first = self._held_change(t, height, candidate)
        if first is None:
            return []
        self.in_contact = candidate
        if candidate:
            return self._landed(first, t, t_now, leg_px, frontal)
        return self._lifted(first, t_now, leg_px, frontal)

    def _stay(self, t: float, height: Optional[float], down: bool) -> None:
        """The foot is as it was (or in its first known state)."""
        first = self.in_contact is None
        self.in_contact = down
        self._pending = None
        if down and height is not None:
            self._last_contact_t, self._last_contact_h = t, height
            if not first:
                self._contact_run.append((t, height))

    def _held_change(
        self, t: float, height: Optional[float], down: bool
    ) -> Optional[tuple[float, float]]:
        """The first frame (time, height) of a change of state once it has held long
        enough, else None.  A lifted foot must stay up longer than a landed one stays down:
        a planted foot's landmarks now and then jump away for two frames (onto the other leg).
        """
        if self._pending is None:
            self._pending = (t, height if height is not None else 0.0)
            self._pending_frames = 0
        self._pending_frames += 1
        if self._pending_frames < (self._contact_frames if down else self._toe_off_frames):
            return None
        first, self._pending = self._pending, None
        return first

    def _landed(
        self, first: tuple[float, float], t: float, t_now: float, leg_px: float, frontal: bool
    ) -> list[FootEvent]:
        """The contact whose first frame down was `first`, unless it was a touch too soon
        after the foot left the belt to be a step."""
        first_t = first[0]
        limit, tight = self._limit_pair(frontal)
        t_fine = _crossing(self._before(first_t), first, limit, 1.5 / self.fps)
        new_run = [(et, h) for et, h, _ in self._evaluated if et >= first_t and h is not None]
        # The first frame down in the planted band (else the first under the limit),
        # or better, the first that moves with the belt.
        start = next((et for et, h in new_run if h <= tight), first_t)
        if not frontal:
            start = self._moving_with_belt(first_t, start, leg_px, limit)
        if t_now - start > MAX_DELAY_S:
            start = first_t  # at a low frame rate an earlier frame would be known too late
        touchdown = None if frontal else self._touchdown(start, leg_px)
        self._contact_start_t = start
        lifted = self._last_toe_off_t
        if (
            lifted is not None
            and start - lifted < MIN_SWING_S
            and (frontal or self._back_where_it_lifted(lifted, start, leg_px))
        ):
            self._ignoring = True
            return []
        self._contact_run = [(et, h) for et, h in new_run if et >= start]
        self._last_contact_t, self._last_contact_h = new_run[-1] if new_run else (t, 0.0)
        confidence = self._event_confidence()
        return [FootEvent(start, t_fine, self.side, "contact", t_now, confidence, touchdown)]

    def _lifted(
        self, first: tuple[float, float], t_now: float, leg_px: float, frontal: bool
    ) -> list[FootEvent]:
        """The toe-off ending the contact, `first` being the first frame up."""
        if self._last_contact_t is None or self._last_contact_h is None:
            return []
        limit, tight = self._limit_pair(frontal)
        last = (self._last_contact_t, self._last_contact_h)
        t_fine = _crossing(last, first, limit, 1.5 / self.fps)
        run = list(self._contact_run)
        # The middle of the contact (not its first and last frames) shows the height noise.
        self._planted.extend(h for et, h in run[1:-1] if et >= self._live_from)
        if self._ignoring:
            self._ignoring = False
            return []
        if not frontal and self._contact_start_t is not None:
            self._learn_belt(max(self._contact_start_t, self._live_from), last[0])
        self._contact_run = []
        # The last frame still in the planted band (else the last under the limit).
        end = last[0]
        for _ in range(2):
            if len(run) < 2 or run[-1][1] <= tight or t_now - run[-2][0] > MAX_DELAY_S:
                break
            run.pop()
            end = run[-1][0]
        self._last_toe_off_t = end
        lift_off = None if frontal else self._lift_off(end, leg_px)
        confidence = self._event_confidence()
        return [FootEvent(end, t_fine, self.side, "toe_off", t_now, confidence, None, lift_off)]

    def _back_where_it_lifted(self, lifted_t: float, landed_t: float, leg_px: float) -> bool:
        """Side views: whether a foot down again soon after lifting is where the belt has
        carried the spot it left (its landmarks were away for a moment: the same contact), not
        a step ahead of it (a new landing, the lift-off before it the other foot's, read on
        this foot's labels).  Unknown counts as the same spot."""
        lifted = min(self._recent, key=lambda s: abs(s.t - lifted_t))
        landed = min(self._recent, key=lambda s: abs(s.t - landed_t))
        if not (self._belt and lifted.seen[ANKLE] and landed.seen[ANKLE]):
            return True
        belt = float(np.median(np.array(self._belt)))
        carried = lifted.points[ANKLE, 0] + belt * (landed.t - lifted.t)
        return bool(abs(landed.points[ANKLE, 0] - carried) < RELANDING_SHARE * leg_px)

    def _event_confidence(self) -> float:
        return float(np.mean(self._confidence)) if self._confidence else 0.0

    def _lower_point(self, sample: FootSample, other: FootSample) -> Optional[int]:
        """Heel or toe, whichever is lower in `sample` relative to its planted height."""
        usable = [
            k
            for k in (HEEL, TOE)
            if sample.seen[k] and other.seen[k] and self._grounds[k] is not None
        ]
        if not usable:
            return None
        return min(usable, key=lambda k: sample.points[k, 1] - (self._grounds[k] or 0.0))

    def _is_low(self, sample: FootSample, k: int, leg_px: float, limit: float) -> bool:
        ground = self._grounds[k]
        return ground is not None and (sample.points[k, 1] - ground) / leg_px <= limit

    def _learn_belt(self, start: float, end: float) -> None:
        """The planted point's forward speed over the middle of a contact."""
        frames = [s for s in self._recent if start < s.t < end and not s.filled]
        speeds = []
        for a, b in zip(frames, frames[1:]):
            k = self._lower_point(b, a)
            if k is not None and b.t > a.t:
                speeds.append((b.points[k, 0] - a.points[k, 0]) / (b.t - a.t))
        if len(speeds) >= 2:
            centre, spread = median_and_spread(speeds)
            self._belt.append(centre)
            self._belt_noise.append(spread)

    def _moving_with_belt(
        self, first_t: float, fallback: float, leg_px: float, limit: float
    ) -> float:
        """The first frame near `first_t` whose low point, low enough, moves on with the belt.

        The frame before a landing is often within the height noise of the belt, but its foot
        still moves at its own speed: one frame later it is carried by the belt.
        """
        if len(self._belt) < 2:
            return fallback
        belt = float(np.median(np.array(self._belt)))
        noise = float(np.median(np.array(self._belt_noise)))
        tolerance = float(np.clip(2.0 * noise, 0.08 * abs(belt), 0.2 * abs(belt)))
        window = 1.5 / self.fps
        frames = list(self._recent)
        for a, b in zip(frames, frames[1:]):
            if not first_t - window <= a.t <= first_t + window or b.t <= a.t:
                continue
            k = self._lower_point(b, a)
            ground = self._grounds[k] if k is not None else None
            if k is None or ground is None or (a.points[k, 1] - ground) / leg_px > limit:
                continue
            # Every planted point (heel and toe of a flat foot) moves with the belt: average.
            planted = [
                j
                for j in (HEEL, TOE)
                if a.seen[j] and b.seen[j] and self._is_low(b, j, leg_px, limit)
            ] or [k]
            moved = float(np.mean([b.points[j, 0] - a.points[j, 0] for j in planted]))
            if abs(moved / (b.t - a.t) - belt) <= tolerance:
                return a.t
        return fallback

    def _touchdown(self, start: float, leg_px: float) -> Optional[float]:
        """The instant of touchdown read off the foot's descent onto the belt, or None.

        The frames just before a landing are within a few pixels of the belt, inside the
        landmark noise, so when the foot landed is settled by the descent: the lowest point's
        heights around `start` (the event's frame) are fitted with a line falling onto a flat
        floor, h = floor + rate * max(0, t_touch - t); None when the fit finds no clear
        descent.  The event keeps its own frame: this instant is where the at-contact angles
        are read (they change by up to ten degrees a frame around a landing) and where the
        contact time starts.
        """
        return self._ground_crossing(start, leg_px, landing=True)

    def _lift_off(self, end: float, leg_px: float) -> Optional[float]:
        """The instant the foot left the belt, read off its rise as `_touchdown` reads the
        descent, but h = floor + a * max(0, t - t_lift) ** 1.5 around `end` (the last frame
        down): a toe rolling off starts from rest, and a straight line read it late."""
        return self._ground_crossing(end, leg_px, landing=False)

    def _ground_crossing(self, frame_t: float, leg_px: float, landing: bool) -> Optional[float]:
        """When the lowest foot point's unsmoothed height left or reached the floor near
        `frame_t`, by a least-squares ramp on one side of it; None without a clear one."""
        away = -1.0 if landing else 1.0  # the side of `frame_t` where the foot is in the air
        # A landing foot comes down at speed; a lifting toe starts from rest as it rolls off.
        power = 1.0 if landing else 1.5
        frame_s = 1.0 / self.fps
        # Offsets from `frame_t` counted towards the air: frames from 2.5 on the belt to 3.5 in
        # the air, the crossing searched from 1 frame on the belt to 2 in the air.
        frames = [
            f
            for f in self._recent
            if -2.5 <= away * (f.t - frame_t) / frame_s <= 3.5 and not f.filled
        ]
        heights = []
        for f in frames:
            values = [
                f.unsmoothed[k, 1] - ground
                for k in (HEEL, TOE)
                if f.seen[k] and (ground := self._grounds[k]) is not None
            ]
            if values:
                heights.append((f.t, float(min(values))))
        down = [h for t, h in heights if away * (t - frame_t) <= 1e-6]
        up = [h for t, h in heights if away * (t - frame_t) > 1e-6]
        if len(heights) < 5 or len(down) < 2 or not up:
            return None
        t = np.array([x for x, _ in heights])
        h = np.array([y for _, y in heights])
        best: Optional[tuple[float, float, float]] = None  # (residual, t_cross, rate)
        for t_cross in np.sort(frame_t + away * frame_s * np.linspace(-1.0, 2.0, 61)):
            ramp = np.maximum(0.0, away * (t - t_cross)) ** power
            basis = np.stack([np.ones_like(t), ramp], axis=1)
            coef, *_ = np.linalg.lstsq(basis, h, rcond=None)
            residual = float(np.sum((basis @ coef - h) ** 2))
            if coef[1] > 0 and (best is None or residual < best[0]):
                best = (residual, float(t_cross), float(coef[1]))
        if best is None:
            return None
        _, t_cross, rate = best
        # A clear descent or rise only: faster than the landmarks' own frame-to-frame noise
        # (what it covers in its first two frames).
        if rate * (2.0 * frame_s) ** power < 2.0 * MIN_DESCENT * leg_px:
            return None
        return t_cross

    def _before(self, t: float) -> Optional[tuple[float, float]]:
        earlier = [(et, h) for et, h, _ in self._evaluated if et < t and h is not None]
        return earlier[-1] if earlier else None


def _frames(seconds: float, fps: float) -> int:
    """How many frames at `fps` cover `seconds` (at least one)."""
    return max(1, math.ceil(seconds * fps - 1e-6))


def _crossing(
    before: Optional[tuple[float, float]],
    after: tuple[float, float],
    limit: float,
    max_gap_s: float,
) -> float:
    """When the height crossed the contact limit between two frames (linear), for timing;
    across a longer gap (frames dropped and not filled in, or the foot unseen) the line says
    nothing, and the later frame's time stands."""
    if before is None or after[0] - before[0] > max_gap_s:
        return after[0]
    (t0, h0), (t1, h1) = before, after
    if h1 == h0:
        return t1
    frac = float(np.clip((limit - h0) / (h1 - h0), 0.0, 1.0))
    return t0 + frac * (t1 - t0)
