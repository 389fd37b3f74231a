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
