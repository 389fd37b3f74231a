"""Which detected person is the runner: inside the treadmill region, else largest and central;
once followed, the one who stays in place and moves their legs (runs or walks on the belt).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.body import HIPS, LEFT_LEG, RIGHT_LEG, midpoint
from coachd.pose.roi import Detection

Region = tuple[float, float, float, float]


def body_size(person: Detection, width: int, height: int) -> float:
    """Pixels from the hip centre to the detector's full-body scale point (about half a body).

    The detector's box is the face, so the keypoints say more about how big a person is.
    """
    dx = (person.keypoints[1, 0] - person.keypoints[0, 0]) * width
    dy = (person.keypoints[1, 1] - person.keypoints[0, 1]) * height
    return math.hypot(dx, dy)


def in_region_point(point: np.ndarray, region: Optional[Region]) -> bool:
    """Whether a normalised image point lies in the treadmill region (always, when unset)."""
    if region is None:
        return True
    x0, y0, x1, y1 = region
    return bool(x0 <= point[0] <= x1 and y0 <= point[1] <= y1)


def choose_runner(
    people: Sequence[Detection], region: Optional[Region], width: int, height: int
) -> Optional[Detection]:
    """The runner among `people` (normalised coordinates), or None when nobody qualifies.

    With a region, only a person whose hip centre lies inside it qualifies; among those (or
    everyone, without a region) the biggest person nearest the region's (image's) centre wins.
    """
    if region is not None:
        x0, y0, x1, y1 = region
        people = [p for p in people if in_region_point(p.keypoints[0], region)]
        centre = ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
    else:
        centre = (0.5, 0.5)
    if not people:
        return None
    long_side = float(max(width, height))

    def merit(person: Detection) -> float:
        # Size and offset both in pixels, so they trade fairly: a person twice as tall wins
        # unless they stand much farther from the centre.
        dx = (person.keypoints[0, 0] - centre[0]) * width
        dy = (person.keypoints[0, 1] - centre[1]) * height
        return (body_size(person, width, height) - math.hypot(dx, dy)) / long_side

    return max(people, key=merit)


class RunnerAnchor:
    """Where the runner has been standing and how big they look, updated slowly.

    On a treadmill the runner stays in place: a tracked body whose hips jump away or whose
    size changes suddenly is someone else (a person walking past between runner and camera),
    and re-detection then prefers whoever fits where the runner was. It holds only once the
    person has been followed for `confirm_s` (one frame's bystander holds nobody back), and is
    forgotten once nobody has fitted for `forget_s`, so the next runner is chosen afresh.
    """

    def __init__(
        self,
        follow_s: float = 2.0,
        forget_s: float = 5.0,
        max_shift: float = 0.6,
        max_scale_change: float = 0.3,
        confirm_s: float = 0.5,
    ) -> None:
        self._follow_s = follow_s
        self._forget_s = forget_s
        self._max_shift = max_shift  # hip travel allowed, in body scales
        self._max_scale_change = max_scale_change  # relative size change allowed
        # A person glimpsed for less than this (a bystander found in one frame) anchors nobody.
        self._confirm_s = confirm_s
        self._centre: Optional[tuple[float, float]] = None
        self._scale = 0.0
        self._t_seen = -math.inf
        self._since = math.inf

    def reset(self) -> None:
        self._centre = None
        self._t_seen = -math.inf
        self._since = math.inf

    def known(self, t: float) -> bool:
        return (
            self._centre is not None
            and t - self._t_seen <= self._forget_s
            and self._t_seen - self._since >= self._confirm_s
        )

    def near(self, centre: tuple[float, float]) -> bool:
        """Whether hips at `centre` (pixels) are where the followed person is (never, when
        nobody is followed)."""
        if self._centre is None:
            return False
        shift = math.hypot(centre[0] - self._centre[0], centre[1] - self._centre[1])
        return shift <= self._max_shift * self._scale

    def fits(self, centre: tuple[float, float], scale: float, t: float) -> bool:
        """Whether a body with hip centre `centre` and size `scale` (pixels) is the runner."""
        return not self.known(t) or self._matches(centre, scale)

    def _matches(self, centre: tuple[float, float], scale: float) -> bool:
        change = abs(scale - self._scale) / max(self._scale, 1e-6)
        return self.near(centre) and change <= self._max_scale_change

    def update(self, centre: tuple[float, float], scale: float, t: float) -> None:
        if self._centre is None or t - self._t_seen > self._forget_s:
            self._centre, self._scale = centre, scale
            self._since = t
        elif not self.known(t) and not self._matches(centre, scale):
            self._centre, self._scale = centre, scale  # someone else while still unconfirmed
            self._since = t
        else:
            weight = 1.0 - math.exp(-max(t - self._t_seen, 0.0) / self._follow_s)
            self._centre = (
                self._centre[0] + weight * (centre[0] - self._centre[0]),
                self._centre[1] + weight * (centre[1] - self._centre[1]),
            )
            self._scale += weight * (scale - self._scale)
        self._t_seen = t

    def choose(
        self, people: Sequence[Detection], width: int, height: int, t: float
    ) -> Sequence[Detection]:
        """The detections that fit the runner (all of them while no runner is known)."""
        if not self.known(t):
            return people
        return [
            person
            for person in people
            if self.fits(
                (person.keypoints[0, 0] * width, person.keypoints[0, 1] * height),
                body_size(person, width, height),
                t,
            )
        ]


# Knees, ankles, heels and toes: what moves when someone runs or walks, hips or not.
LEG_LANDMARKS = [int(m) for m in LEFT_LEG + RIGHT_LEG]
SAMPLE_S = 0.1  # motion is read between samples this far apart, whatever the frame rate
# Body sizes (hip centre to the detector's scale point) per second. Standing still the legs
# move ~0.02 relative to the hips through the pose model; walking ~1.4, running ~2.
LEGS_MOVING = 0.5
# The hips of someone on a belt travel little in a second (bounce and sway); someone crossing
# the room at a walk covers more than a body size.
HIPS_IN_PLACE = 0.6


@dataclass(frozen=True)
class Motion:
    """How a person moved, in body sizes per second."""

    legs: float  # legs relative to the hips
    hips: float  # hips across the image

    @property
    def on_the_belt(self) -> bool:
        """Legs moving while the hips stay in place: running or walking on a treadmill."""
        return self.legs >= LEGS_MOVING and self.hips <= HIPS_IN_PLACE


def motion_between(before: np.ndarray, after: np.ndarray, dt: float, body: float) -> Motion:
    """Motion between two landmark sets (pixels, (33, 2)) `dt` seconds apart."""
    hips_before, hips_after = midpoint(before, HIPS), midpoint(after, HIPS)
    legs = (after[LEG_LANDMARKS] - hips_after) - (before[LEG_LANDMARKS] - hips_before)
    scale = max(body, 1e-6) * max(dt, 1e-6)
    return Motion(
        legs=float(np.median(np.linalg.norm(legs, axis=1))) / scale,
        hips=float(np.linalg.norm(hips_after - hips_before)) / scale,
    )


class MotionGauge:
    """The followed person's motion over the last `window_s`, sampled every SAMPLE_S."""

    def __init__(self, window_s: float = 1.5) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, np.ndarray, float]] = deque()
        self._motion: Optional[Motion] = None  # of the samples held; asked for every frame

    def reset(self) -> None:
        self._samples.clear()
        self._motion = None

    def update(self, xy: np.ndarray, body: float, t: float) -> None:
        if self._samples and t - self._samples[-1][0] < SAMPLE_S:
            return
        self._samples.append((t, np.array(xy[:, :2], dtype=np.float64), body))
        while t - self._samples[0][0] > self._window_s:
            self._samples.popleft()
        self._motion = self._measure()

    def motion(self) -> Optional[Motion]:
        """The median leg motion and the net hip travel; None until most of a window is seen."""
        return self._motion

    def _measure(self) -> Optional[Motion]:
        samples = list(self._samples)
        if len(samples) < 3 or samples[-1][0] - samples[0][0] < 0.6 * self._window_s:
            return None
        legs = [
            motion_between(a[1], b[1], b[0] - a[0], b[2]).legs for a, b in zip(samples, samples[1:])
        ]
        span = motion_between(
            samples[0][1], samples[-1][1], samples[-1][0] - samples[0][0], samples[-1][2]
        )
        return Motion(legs=float(np.median(legs)), hips=span.hips)
