"""GaitAnalyzer: TrackedFrames in, foot events, activity, view and per-step metrics out."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.body import LEFT_LEG, RIGHT_LEG, seen_mask
from coachd.gait.activity import (
    RUNNING_MAX_DUTY,
    RUNNING_MIN_CADENCE,
    RUNNING_MIN_CADENCE_NO_DUTY,
    ActivityClassifier,
)
from coachd.gait.bounce import BounceClock
from coachd.gait.events import FootContactDetector, FootEvent, FootSample, fill_gap
from coachd.gait.legs import LegTracker
from coachd.gait.metrics import (
    StepInput,
    Window,
    leg_landmarks,
    step_metrics,
)
from coachd.gait.period import rhythm
from coachd.gait.plausible import MAX_STEP_S, MIN_STEP_S, STEP_SHARE, step_fault
from coachd.gait.signals import (
    BodySample,
    History,
    LegLengthEstimate,
    to_view_coords,
)
from coachd.gait.view import ViewDetector
from coachd.messages import GaitEvent, GaitUpdate, Pose, Side, Stride, TrackedFrame, View
from coachd.settings import GaitSettings

SIDES: tuple[Side, Side] = ("left", "right")
# A foot's lowest point within this height of its planted height (leg lengths) is on the belt.
CONTACT_HEIGHT = 0.045
# Front/rear views: the planted foot drifts in height as the belt carries it away or closer.
FRONTAL_CONTACT_HEIGHT = 0.35
CADENCE_STEPS = 4  # cadence: step time fitted over up to this many recent steps
ASYMMETRY_STEPS = 8
HISTORY_S = 6.0
TOO_SOON_SHARE = 0.6  # a contact within this share of a usual step time after the last: glitch
USUAL_STEP_MAX_S = 0.6  # longer gaps between contacts never count towards the usual step
MIN_COUNTED = 4  # contacts counted in a row before steps are measured
FOOT_MIN_VISIBILITY = 0.3
GAP_RESET_S = 0.5  # no pose this long: start the foot tracking afresh
MIN_CONTACT_S = 0.08  # front/rear contact times outside these are not counted
MAX_CONTACT_S = 0.5
HIP_LANDMARKS = (23, 24)
READ_EARLY_FRAMES = 0.25  # at-contact landmarks are read this long before the touchdown
LEFT, RIGHT = list(LEFT_LEG), list(RIGHT_LEG)
RHYTHM_S = 4.0  # the hips' rhythm is read over this long
RHYTHM_AGREEMENT = 0.15  # a cadence further than this from it rests on a miscount


@dataclass(frozen=True)
class _StepTiming:
    """When a step's events came, as far as they are known."""

    step_s: float
    toe_off: Optional[FootEvent]  # the first foot's, ending its contact
    contact_ms: Optional[float]
    stride_s: Optional[float]  # from the landing foot's previous contact
    stride_start: Optional[FootEvent]

    @property
    def duty(self) -> Optional[float]:
        if self.contact_ms is None or not self.stride_s:
            return None
        return self.contact_ms / 1000.0 / self.stride_s


@dataclass(frozen=True)
class _PoseFrame:
    """One frame's landmarks as the gait stage reads them (legs on their own legs)."""

    sample: BodySample
    feet_seen: np.ndarray  # placed well enough to time a foot by
    view: Optional[View]
    leg_px: Optional[float]


class GaitAnalyzer:
    """Streaming gait stage: call `update` with every tracked frame, in order."""

    def __init__(self, settings: GaitSettings, fps: float, warm_up_events: bool = False) -> None:
        """`warm_up_events`: also report the contacts of the first 0.8 s, found up to a
        second late (offline analysis; live, every event is known within 150 ms)."""
        self.settings = settings
        self.fps = float(fps) if fps and fps > 0 else 30.0
        pinned: Optional[View] = None if settings.view == "auto" else settings.view
        self._view = ViewDetector(pinned, self.fps)
        self._history = History(HISTORY_S, self.fps)
        self._leg = LegLengthEstimate(self.fps)
        self._legs = LegTracker(self.fps)
        self._feet = {
            side: FootContactDetector(
                side,
                self.fps,
                CONTACT_HEIGHT,
                FRONTAL_CONTACT_HEIGHT,
                warm_up_events=warm_up_events,
            )
            for side in SIDES
        }
        self._activity = ActivityClassifier()
        # Offline, the frames before the view is known go to the feet once it is.
        self._warm_up_events = warm_up_events
        self._viewless: deque[_PoseFrame] = deque(maxlen=max(8, round(HISTORY_S * self.fps)))
        self._last_foot: dict[Side, FootSample] = {}
        self.steps_rejected = 0  # since the start: steps no runner could take (plausible.py)
        self._events: deque[FootEvent] = deque(maxlen=24)
        self._contact_ms: dict[str, deque[float]] = {
            s: deque(maxlen=ASYMMETRY_STEPS) for s in SIDES
        }
        self._heel_recovery: dict[str, deque[float]] = {
            s: deque(maxlen=ASYMMETRY_STEPS) for s in SIDES
        }
        self._last_pose_t: Optional[float] = None
        self._step_times: deque[float] = deque(maxlen=8)
        # (step number, contact time) of the recent contacts, for the cadence.
        self._counted: deque[tuple[int, float]] = deque(maxlen=CADENCE_STEPS + 1)
        self._ignored = {side: False for side in SIDES}
        self._bounce = BounceClock(MIN_STEP_S)
        self._lows: deque[tuple[float, Side]] = deque(maxlen=3)  # hips' low points, stance foot

    @property
    def view(self) -> Optional[View]:
        return self._view.view

    @property
    def leg_px(self) -> Optional[float]:
        return self._leg.value

    def update(self, tracked: TrackedFrame) -> GaitUpdate:
        t = tracked.t
        if tracked.pose is None:
            if self._last_pose_t is not None and t - self._last_pose_t > GAP_RESET_S:
                self._restart()
            return self._update(t, False, self._view.view)
        self._last_pose_t = t
        frame = self._read_pose(t, tracked.pose)
        found = self._foot_events(frame)
        events, strides = self._take_events(found, frame)
        strides.extend(self._bounce_step(frame))
        return self._update(t, True, frame.view, events, strides)

    def _update(
        self,
        t: float,
        seen: bool,
        view: Optional[View],
        events: Sequence[FootEvent] = (),
        strides: Sequence[Stride] = (),
    ) -> GaitUpdate:
        activity = self._activity.update(t, seen)
        if activity != "running" and not self._activity.would_run(t):
            strides = ()
        return GaitUpdate(
            t,
            activity,
            view,
            tuple(
                GaitEvent(e.t, e.side, e.kind, e.t_detected, round(e.confidence, 3)) for e in events
            ),
            tuple(strides),
            self._legs.repairs,
            self.steps_rejected,
        )

    def _read_pose(self, t: float, pose: Pose) -> _PoseFrame:
        """The frame's landmarks with each leg's points on its own leg, into the history."""
        xy = np.array(pose.xy, dtype=np.float64)
        raw_xy = None if pose.raw_xy is None else np.array(pose.raw_xy, dtype=np.float64)
        seen = seen_mask(pose)
        # Foot timing only needs where a foot is, which the model places well even when it
        # doubts a foot is visible (feet seen end-on from the front or behind).
        feet_seen = seen_mask(pose, FOOT_MIN_VISIBILITY)
        visibility = np.array(pose.visibility, dtype=float)
        view = self._view.update(xy, seen)
        if view in ("side-left", "side-right"):
            legs = self._legs.assign(t, xy, self._leg.value)
            if legs.swapped:
                for values in (xy, seen, feet_seen, visibility, raw_xy):
                    if values is not None:
                        values[LEFT + RIGHT] = values[RIGHT + LEFT]
            # A leg whose points continue neither leg is left out of the metrics; the foot
            # detectors ride out such frames with their median and holds.
            for leg, lost in zip((LEFT, RIGHT), legs.lost):
                if lost:
                    seen[leg] = False
        leg_px = self._leg.update(xy, seen)
        sample = BodySample(t, xy, seen, visibility, raw_xy)
        self._history.append(sample)
        return _PoseFrame(sample, feet_seen, view, leg_px)

    def _foot_events(self, frame: _PoseFrame) -> list[FootEvent]:
        """Each foot's detector on this frame, in side views and front/rear ones alike;
        offline, first on the frames seen before the view was known."""
        if frame.view is None:
            if self._warm_up_events:
                self._viewless.append(frame)
            return []
        found: list[FootEvent] = []
        for early in self._viewless:
            found.extend(self._feet_on(early, frame.view, frame.sample.t))
        self._viewless.clear()
        found.extend(self._feet_on(frame, frame.view, frame.sample.t))
        return sorted(found, key=lambda e: e.t)

    def _feet_on(self, frame: _PoseFrame, view: View, now: float) -> list[FootEvent]:
        sample = frame.sample
        p = to_view_coords(sample.xy, view)
        raw_p = None if sample.raw_xy is None else to_view_coords(sample.raw_xy, view)
        found: list[FootEvent] = []
        for side in SIDES:
            leg = leg_landmarks(side)
            points = [leg["heel"], leg["toe"], leg["ankle"]]
            foot = FootSample(
                sample.t,
                p[points],
                frame.feet_seen[points],
                float(np.mean(sample.visibility[points])),
                None if raw_p is None else raw_p[points],
            )
            detector = self._feet[side]
            for filled in fill_gap(self._last_foot.get(side), foot, self.fps):
                found.extend(detector.update(filled, frame.leg_px, view, now))
            self._last_foot[side] = foot
        return found

    def _take_events(
        self, found: list[FootEvent], frame: _PoseFrame
    ) -> tuple[list[FootEvent], list[Stride]]:
        """The events that are steps (a glitch's contact and its toe-off are left out) and
        the steps they close."""
        strides: list[Stride] = []
        kept: list[FootEvent] = []
        for event in found:
            if event.kind == "toe_off" and self._ignored[event.side]:
                self._ignored[event.side] = False  # the end of a touch that was not a step
                continue
            if event.kind == "contact" and self._too_soon(event):
                self._ignored[event.side] = True
                continue
            kept.append(event)
            self._events.append(event)
            if frame.view in ("front", "rear"):
                if event.kind == "toe_off":
                    self._note_contact_time(event)
            elif event.kind == "contact":
                stride = self._close_step(event, frame.view, frame.leg_px, frame.sample.t)
                if stride is not None:
                    strides.append(stride)
        return kept, strides

    def _bounce_step(self, frame: _PoseFrame) -> list[Stride]:
        """Front/rear views: the step closed by the hips' low point, if this frame shows one."""
        if frame.view not in ("front", "rear"):
            return []
        sample = frame.sample
        low = self._bounce.update(sample.t, _hip_height(sample.xy, sample.seen), frame.leg_px)
        if low is None or frame.view is None or frame.leg_px is None:
            return []
        stride = self._close_bounce_step(low, frame.view, frame.leg_px, frame.feet_seen, sample.t)
        return [] if stride is None else [stride]

    def _restart(self) -> None:
        for detector in self._feet.values():
            detector.reset()
        self._legs.reset()
        self._viewless.clear()
        self._last_foot.clear()
        self._leg.reset()
        self._history.clear()
        self._counted.clear()
        self._events.clear()
        self._step_times.clear()
        self._ignored = {side: False for side in SIDES}
        self._bounce.reset()
        self._lows.clear()
        for per_side in (self._contact_ms, self._heel_recovery):
            for values in per_side.values():
                values.clear()
        self._view.reset()

    def _count_step(self, at: float, typical: Optional[float]) -> None:
        """Number this contact (or low point) in the running count of steps; one missed in
        between still counts as the step it was, so one lost foot does not restart the count."""
        counted = self._counted
        if not counted:
            counted.append((0, at))
            return
        last_index, last_t = counted[-1]
        gap = at - last_t
        if gap < MIN_STEP_S:
            return  # too soon to be a step: leave it out of the count
        if gap <= USUAL_STEP_MAX_S:
            self._step_times.append(gap)  # the median of these is the usual step
        ratio = gap / typical if typical else 1.0
        steps = max(1, round(ratio))
        if gap > 3 * MAX_STEP_S or steps > 3 or abs(ratio - steps) > 0.3:
            counted.clear()  # a pause, or no whole number of steps: count afresh
            counted.append((0, at))
            return
        counted.append((last_index + steps, at))

    def _usual_step(self) -> Optional[float]:
        """The runner's usual step time: half the median of two steps in a row, because left
        and right steps alternate long and short when one foot's contacts are read later (the
        far foot, hidden behind the near leg) or the runner limps."""
        gaps = np.array(self._step_times)
        if gaps.size < 2:
            return float(gaps[0]) if gaps.size else None
        return float(np.median(gaps[1:] + gaps[:-1])) / 2.0

    def _cadence(self) -> Optional[float]:
        """Steps per minute over the counted contacts, once a few in a row agree."""
        if len(self._counted) < MIN_COUNTED:
            return None
        index = np.array([i for i, _ in self._counted], dtype=float)
        times = np.array([t for _, t in self._counted])
        return step_rate(index, times)

    def _too_soon(self, contact: FootEvent) -> bool:
        """A contact far sooner after the last one than the runner's steps: a glitch (the far
        foot's landmarks jumping onto the near foot), not a step."""
        last = self._previous("contact", None, contact.t + 1.0)
        typical = self._usual_step()
        if last is None or typical is None or len(self._step_times) < 4:
            return False
        return contact.t_fine - last.t_fine < TOO_SOON_SHARE * typical

    def _previous(self, kind: str, side: Optional[Side], before: float) -> Optional[FootEvent]:
        for e in reversed(self._events):
            if e.kind == kind and e.t < before - 1e-6 and (side is None or e.side == side):
                return e
        return None

    def _close_step(
        self, contact: FootEvent, view: Optional[View], leg_px: Optional[float], now: float
    ) -> Optional[Stride]:
        """The step that this contact ends, as a Stride message (None when it is not a step)."""
        if contact.warm_up:
            # An event only: timed against a ground known from under a second, it neither
            # starts the count of steps nor any step (the limit has not yet tightened).
            return None
        start = self._previous("contact", None, contact.t)
        self._activity.add_contact(contact.t_fine)
        typical = self._usual_step()
        self._count_step(contact.t_fine, typical)
        if start is None:
            return None
        timing = self._step_timing(start, contact, typical, _is_near(view, start.side))
        if timing is None:
            return None
        cadence = self._cadence()
        if view is None or leg_px is None or cadence is None or start.warm_up:
            return None  # measured once a few live steps in a row agree
        if self._off_the_rhythm(cadence):
            self.steps_rejected += 1  # contacts were missed or made up: the count is off
            return None
        duty = timing.duty
        if cadence < RUNNING_MIN_CADENCE or (duty is not None and duty > RUNNING_MAX_DUTY):
            return None  # not a running step (walking, or stepping about)
        step = self._step_input(start, contact, timing, view, leg_px, cadence)
        metrics, confidence = step_metrics(step)
        if timing.contact_ms is not None:
            self._contact_ms[start.side].append(timing.contact_ms)
        if "heel_recovery_ratio" in metrics:
            self._heel_recovery[start.side].append(metrics["heel_recovery_ratio"])
        return Stride(
            t=start.t,
            side=start.side,
            view=view,
            duration_s=timing.step_s,
            metrics=metrics,
            confidence=confidence,
            t_detected=now,
        )

    def _off_the_rhythm(self, cadence: float) -> bool:
        """Whether the contacts' cadence disagrees with the hips' own rhythm over the last
        seconds, where that rhythm is clear (gait/period.py)."""
        t_now = self._history.latest.t if self._history.latest else 0.0
        samples = [
            s
            for s in self._history.between(t_now - RHYTHM_S, t_now)
            if s.seen[HIP_LANDMARKS[0]] and s.seen[HIP_LANDMARKS[1]]
        ]
        if len(samples) < 8:
            return False
        times = np.array([s.t for s in samples])
        heights = np.array([_hip_height(s.xy, s.seen) or 0.0 for s in samples])
        found = rhythm(times, heights, MIN_STEP_S, MAX_STEP_S)
        if found is None:
            return False
        # The hips may repeat once a stride more clearly than once a step (the two steps
        # differ): the rhythm then reads half the cadence.
        return all(
            abs(cadence / (steps * found.cadence_spm) - 1.0) > RHYTHM_AGREEMENT for steps in (1, 2)
        )

    def _step_timing(
        self, start: FootEvent, contact: FootEvent, typical: Optional[float], near: bool
    ) -> Optional[_StepTiming]:
        """The step's times, or None when they are not a step a runner can take (counted)."""
        if start.side == contact.side:
            # The other foot's contact in between was not seen: no step to measure.
            self.steps_rejected += 1
            return None
        step_s = contact.t_fine - start.t_fine
        toe_off = self._next_toe_off(start.side, start.t, contact.t)
        contact_ms = None if toe_off is None else _contact_s(start, toe_off) * 1000.0
        stride_start = self._previous("contact", contact.side, start.t)
        stride_s: Optional[float] = None
        if stride_start is not None and contact.t_fine - stride_start.t_fine <= 2 * MAX_STEP_S:
            stride_s = contact.t_fine - stride_start.t_fine
        # Only the near foot's contact time is measured well enough to judge (the far foot's
        # landing and lift-off are half hidden behind the near leg: docs/metrics.md).
        contact_s = None if contact_ms is None or not near else contact_ms / 1000.0
        if step_fault(step_s, typical, contact_s, stride_s) is not None:
            self.steps_rejected += 1
            return None
        timing = _StepTiming(step_s, toe_off, contact_ms, stride_s, stride_start)
        if timing.duty is not None:
            self._activity.add_duty(timing.duty)
        return timing

    def _step_input(
        self,
        start: FootEvent,
        contact: FootEvent,
        timing: _StepTiming,
        view: View,
        leg_px: float,
        cadence: float,
    ) -> StepInput:
        """The windows of landmarks a step's metrics are read from."""
        swing_from = self._previous("toe_off", start.side, start.t)
        swing = None
        if swing_from is not None and start.t - swing_from.t <= MAX_STEP_S:
            swing = Window.of(self._history.between(swing_from.t, start.t), view)
        stance = None
        if timing.toe_off is not None:
            stance = Window.of(self._history.between(start.t, timing.toe_off.t), view)
        stride_window_from = (
            timing.stride_start.t
            if timing.stride_start is not None and timing.stride_s
            else 2 * start.t - contact.t
        )
        near = _is_near(view, start.side)
        landed, approach, t_at_contact = start.t, None, None
        if start.t_touchdown is not None:
            # The first frame on the belt, and the flight just before the touchdown.
            touchdown = start.t_touchdown
            down = self._history.between(touchdown - 1e-6, touchdown + 1.0 / self.fps)
            landed = down[0].t if down else start.t
            # The descent fit puts a flat or toe landing up to half a frame late (a heel
            # landing a fifth early), and a shank turns fast after a landing but slowly
            # before it: the at-contact landmarks are read a quarter of a frame early.
            t_at_contact = touchdown - READ_EARLY_FRAMES / self.fps
            flight = self._history.between(t_at_contact - 2.5 / self.fps, t_at_contact)
            approach = Window.of(flight, view)
        return StepInput(
            side=start.side,
            view=view,
            t_start=start.t,
            t_end=contact.t,
            step=Window.of(self._history.between(start.t, contact.t), view),
            stride=Window.of(self._history.between(stride_window_from, contact.t), view),
            swing=swing,
            stance=stance,
            leg_px=leg_px,
            near=near,
            cadence_spm=cadence,
            contact_ms=timing.contact_ms,
            stride_s=timing.stride_s,
            event_confidence=min(start.confidence, contact.confidence),
            around_contact=Window.of(
                self._history.between(landed - 1.0 / self.fps, landed + 2.0 / self.fps), view
            ),
            approach=approach,
            t_at_contact=t_at_contact,
            runner_height_cm=self.settings.runner_height_cm,
            contact_by_side={s: list(v) for s, v in self._contact_ms.items()},
            heel_recovery_by_side={s: list(v) for s, v in self._heel_recovery.items()},
        )

    def _note_contact_time(self, toe_off: FootEvent) -> None:
        """Front/rear views: a foot's contact time, for the left/right asymmetry."""
        contact = self._previous("contact", toe_off.side, toe_off.t)
        if contact is not None and MIN_CONTACT_S <= toe_off.t - contact.t <= MAX_CONTACT_S:
            self._contact_ms[toe_off.side].append((toe_off.t - contact.t) * 1000.0)

    def _close_bounce_step(
        self, low: float, view: View, leg_px: float, feet_seen: np.ndarray, now: float
    ) -> Optional[Stride]:
        """Front/rear views: the step from the hips' last low point to this one."""
        typical = self._usual_step()
        self._activity.add_contact(low)
        self._count_step(low, typical)
        side = self._stance_foot(low, view, feet_seen)
        previous = list(self._lows)
        self._lows.append((low, side))
        if not previous:
            return None
        start, start_side = previous[-1]
        step_s = low - start
        if not MIN_STEP_S <= step_s <= MAX_STEP_S:
            return None
        if typical is not None and not STEP_SHARE[0] <= step_s / typical <= STEP_SHARE[1]:
            return None
        cadence = self._cadence()
        if cadence is None or cadence < RUNNING_MIN_CADENCE_NO_DUTY:
            return None
        first = self._history.at(start)
        if first is None:
            return None
        t_start = first.t
        # A stride is two steps: when a low point in between was missed, the one before is
        # too far back (a fit over the wrong period reads a swaying runner as steady).
        stride_from = 2 * start - low
        if len(previous) >= 2 and (low - previous[-2][0]) / step_s < 2.5:
            stride_from = previous[-2][0]
        step_window = Window.of(self._history.between(t_start, low), view)
        hips_seen = step_window.all_seen(HIP_LANDMARKS)
        step = StepInput(
            side=start_side,
            view=view,
            t_start=t_start,
            t_end=low,
            step=step_window,
            stride=Window.of(self._history.between(stride_from, low), view),
            swing=None,
            stance=None,
            leg_px=leg_px,
            near=True,
            cadence_spm=cadence,
            contact_ms=None,
            stride_s=None,
            event_confidence=float(np.mean(hips_seen)) if hips_seen.size else 0.0,
            runner_height_cm=self.settings.runner_height_cm,
            contact_by_side={s: list(v) for s, v in self._contact_ms.items()},
        )
        metrics, confidence = step_metrics(step)
        return Stride(
            t=t_start,
            side=start_side,
            view=view,
            duration_s=step_s,
            metrics=metrics,
            confidence=confidence,
            t_detected=now,
        )

    def _stance_foot(self, t: float, view: View, feet_seen: np.ndarray) -> Side:
        """The foot on the belt at the hips' low point: the lower ankle; else the other foot
        than last time."""
        sample = self._history.at(t)
        if sample is not None:
            up = to_view_coords(sample.xy, view)[:, 1]
            left, right = leg_landmarks("left")["ankle"], leg_landmarks("right")["ankle"]
            seen = sample.seen
            if (seen[left] or feet_seen[left]) and (seen[right] or feet_seen[right]):
                return "left" if up[left] < up[right] else "right"
        if self._lows:
            return "right" if self._lows[-1][1] == "left" else "left"
        return "left"

    def _next_toe_off(self, side: Side, after: float, before: float) -> Optional[FootEvent]:
        for e in self._events:
            if e.kind == "toe_off" and e.side == side and after < e.t < before:
                return e
        return None


def _is_near(view: Optional[View], side: Side) -> bool:
    """Side views: whether `side` is the leg nearer the camera (True in other views)."""
    return view not in ("side-left", "side-right") or ((view == "side-left") == (side == "left"))


def _contact_s(contact: FootEvent, toe_off: FootEvent) -> float:
    """From touchdown to lift-off, between frames, when both were read off the foot's descent
    and rise; else from the contact's frame to the toe-off's (the first frame down tends to
    be the last in the air and the last down the first in the air: on the synthetic runner's
    near foot this reads 5-40 ms long, the instants within 18 ms)."""
    if contact.t_touchdown is not None and toe_off.t_lift_off is not None:
        return toe_off.t_lift_off - contact.t_touchdown
    return toe_off.t - contact.t


def _hip_height(xy: np.ndarray, seen: np.ndarray) -> Optional[float]:
    """hip_mid's up coordinate in pixels, None when a hip is not seen."""
    if not (seen[HIP_LANDMARKS[0]] and seen[HIP_LANDMARKS[1]]):
        return None
    return float(-(xy[HIP_LANDMARKS[0], 1] + xy[HIP_LANDMARKS[1], 1]) / 2.0)


def step_rate(index: np.ndarray, times: np.ndarray) -> float:
    """Steps per minute from contact times and their step numbers: the median over pairs of
    contacts a whole number of strides apart of (time apart / steps apart).  Whole strides,
    because a left and a right step often differ (the far foot's contact is seen later); the
    median, because one mistimed contact must not move it."""
    rates = []
    for i in range(len(index)):
        for j in range(i + 1, len(index)):
            steps = int(index[j] - index[i])
            if steps >= 2 and steps % 2 == 0 and times[j] > times[i]:
                rates.append(steps / (times[j] - times[i]))
    if not rates:
        span = float(times[-1] - times[0])
        return 60.0 * float(index[-1] - index[0]) / span if span > 0 else 0.0
    return 60.0 * float(np.median(rates))
