"""Which detected person is the runner: inside the treadmill region, else largest and central."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

from coachd.pose.roi import Detection

Region = tuple[float, float, float, float]


def choose_runner(
    people: Sequence[Detection], region: Optional[Region], width: int, height: int
) -> Optional[Detection]:
    """The runner among `people` (normalised coordinates), or None when nobody qualifies.

    With a region, only a person whose hip centre lies inside it qualifies; among those (or
    everyone, without a region) the biggest person nearest the region's (image's) centre wins.
    """
    if region is not None:
        x0, y0, x1, y1 = region
        people = [p for p in people if x0 <= p.keypoints[0, 0] <= x1 and y0 <= p.keypoints[0, 1] <= y1]
        centre = ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
    else:
        centre = (0.5, 0.5)
    if not people:
        return None
    long_side = float(max(width, height))

    def merit(person: Detection) -> float:
        # Size and offset both in units of the image's long side, so they trade fairly.
        box = person.box
        size = math.sqrt(max(box[2] - box[0], 0.0) * width * max(box[3] - box[1], 0.0) * height)
        dx = (person.keypoints[0, 0] - centre[0]) * width
        dy = (person.keypoints[0, 1] - centre[1]) * height
        return (size - math.hypot(dx, dy)) / long_side

    return max(people, key=merit)
