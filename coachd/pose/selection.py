"""Which detected person is the runner: inside the treadmill region, else largest and central."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

from coachd.pose.roi import Detection

Region = tuple[float, float, float, float]


def body_size(person: Detection, width: int, height: int) -> float:
    """Pixels from the hip centre to the detector's full-body scale point (about half a body).

    The detector's box is the face, so the keypoints say more about how big a person is.
    """
    dx = (person.keypoints[1, 0] - person.keypoints[0, 0]) * width
    dy = (person.keypoints[1, 1] - person.keypoints[0, 1]) * height
    return math.hypot(dx, dy)


def choose_runner(
    people: Sequence[Detection], region: Optional[Region], width: int, height: int
) -> Optional[Detection]:
    """The runner among `people` (normalised coordinates), or None when nobody qualifies.

    With a region, only a person whose hip centre lies inside it qualifies; among those (or
    everyone, without a region) the biggest person nearest the region's (image's) centre wins.
    """
    if region is not None:
        x0, y0, x1, y1 = region
        people = [
            p for p in people if x0 <= p.keypoints[0, 0] <= x1 and y0 <= p.keypoints[0, 1] <= y1
        ]
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
    and re-detection then prefers whoever fits where the runner was. Forgotten once nobody has
    fitted for `forget_s`, so the next runner is chosen afresh.
    """

    def __init__(
        self,
        follow_s: float = 2.0,
        forget_s: float = 5.0,
        max_shift: float = 0.6,
        max_scale_change: float = 0.3,
    ) -> None:
        self._follow_s = follow_s
        self._forget_s = forget_s
        self._max_shift = max_shift  # hip travel allowed, in body scales
        self._max_scale_change = max_scale_change  # relative size change allowed
        self._centre: Optional[tuple[float, float]] = None
        self._scale = 0.0
        self._t_seen = -math.inf

    def reset(self) -> None:
        self._centre = None
        self._t_seen = -math.inf

    def known(self, t: float) -> bool:
        return self._centre is not None and t - self._t_seen <= self._forget_s

    def fits(self, centre: tuple[float, float], scale: float, t: float) -> bool:
        """Whether a body with hip centre `centre` and size `scale` (pixels) is the runner."""
        if not self.known(t):
            return True
        assert self._centre is not None
        shift = math.hypot(centre[0] - self._centre[0], centre[1] - self._centre[1])
        change = abs(scale - self._scale) / max(self._scale, 1e-6)
        return shift <= self._max_shift * self._scale and change <= self._max_scale_change

    def update(self, centre: tuple[float, float], scale: float, t: float) -> None:
        if not self.known(t) or self._centre is None:
            self._centre, self._scale = centre, scale
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
