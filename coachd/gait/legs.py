"""Which physical leg is which, by the continuity of each leg's motion through time.

Pose models label legs frame by frame and mix them up in side views: the far leg's points
jump onto the near leg for a few frames, the labels flip for a stretch (some models, on some
bodies, at every crossing), or both labels sit on one leg.  `LegTracker` follows the two
legs as two trajectories instead: each frame the model's two legs are given to the tracks
whose motion (positions moved on by their velocity, in pixels per second, over the real time
since the last frame) they continue best, whatever the labels say.  A leg that continues
neither track coasts on its prediction, unseen.  Which track is called left is the model's
label only by a vote over seconds (so a tracker that followed the wrong leg through a crossing
is put right, while a label flipped for a moment or at every other crossing is not followed).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.body import LEFT_LEG, RIGHT_LEG

LEGS = (list(LEFT_LEG), list(RIGHT_LEG))
# A leg whose points land farther from where its track predicts than this share of the leg
# length, plus the track's own motion since it was last seen (a foot may stop dead on the
# belt), is not that track's leg this frame.
LOST_LEG_SHARE = 0.15
MAX_EXTRAPOLATION_S = 0.1  # a track unseen for longer is predicted where it was this late
COLLAPSED_SHARE = 0.08  # both labels' ankles this close (leg lengths): they sit on one leg
APART_SHARE = 0.3  # ... while the tracks expected the ankles this far apart
MAX_COAST_S = 0.2  # a track unseen this long follows its label again
SWAP_SHARE = 0.6  # labels swapped when that fits the motion this much better
SWAP_MARGIN = 0.1  # ... and by this share of the leg length (per 1/30 s predicted ahead)
VOTE_S = 0.6  # the model's labels win back when the tracks went against them
VOTE_SHARE = 0.9  # ... in this share of the frames over that long
VELOCITY_BLEND = 0.5  # new velocity: this share of the latest motion, the rest the old one


@dataclass(frozen=True)
class LegAssignment:
    """One frame's outcome: whether the model's labels were swapped to follow the legs, and
    which legs (left, right) coast on their prediction because neither label continued them."""

    swapped: bool
    lost: tuple[bool, bool]


class LegTracker:
    """Keeps each leg's landmarks on the same physical leg from frame to frame (side views)."""

    def __init__(self, fps: float) -> None:
        # Frames missing (a busy machine): the motion predicted over the gap is too loose to
        # overrule the labels.
        self._max_gap_s = 1.5 / fps
        self._points: Optional[np.ndarray] = None  # (2, 4, 2) each track's points last seen, px
        self._velocity = np.zeros((2, 4, 2))  # px per second
        self._seen_t = np.zeros(2)  # when each track was last seen
        self._last_t = 0.0  # the last frame's time
        self._votes: deque[tuple[float, bool]] = deque()  # (t, labels swapped)
        self._repairing = False
        self.repairs = 0  # stretches of frames whose labels were put right

    def reset(self) -> None:
        self._points = None
        self._velocity = np.zeros((2, 4, 2))
        self._votes.clear()
        self._repairing = False

    def assign(self, t: float, xy: np.ndarray, leg_px: Optional[float]) -> LegAssignment:
        """Which way round the model's leg labels go this frame (xy is not changed)."""
        observed = np.stack([xy[LEGS[0]], xy[LEGS[1]]])
        if self._points is None or leg_px is None or t <= float(np.max(self._seen_t)):
            self._start(t, observed)
            return LegAssignment(False, (False, False))
        since = t - self._seen_t
        ahead = np.minimum(since, MAX_EXTRAPOLATION_S)[:, None, None]
        predicted = self._points + self._velocity * ahead
        keep = _distance(observed[0], predicted[0]) + _distance(observed[1], predicted[1])
        swap = _distance(observed[0], predicted[1]) + _distance(observed[1], predicted[0])
        # The labels are followed unless the motion clearly says otherwise: where the legs
        # cross, both ways round fit about as well.
        # ... nor where a long wait since the last frame leaves both predictions loose.
        margin = SWAP_MARGIN * leg_px * max(1.0, float(np.max(ahead)) * 30.0)
        swapped = (
            swap < SWAP_SHARE * keep
            and keep - swap > margin
            and t - self._last_t <= self._max_gap_s
        )
        self._last_t = t
        legs = observed[::-1].copy() if swapped else observed
        gates = [
            LOST_LEG_SHARE * leg_px + _distance(self._velocity[i] * since[i], np.zeros(2))
            for i in (0, 1)
        ]
        lost = self._lost(legs, predicted, leg_px, gates)
        # A track unseen for long is taken up again wherever its leg now is.
        lost = (lost[0] and since[0] <= MAX_COAST_S, lost[1] and since[1] <= MAX_COAST_S)
        for i in (0, 1):
            if not lost[i]:
                self._follow(i, t, legs[i])
        if self._outvoted(t, swapped):
            swapped = False
            lost = (False, False)
        if swapped and not self._repairing:
            self.repairs += 1
        self._repairing = swapped
        return LegAssignment(swapped, lost)

    def _start(self, t: float, observed: np.ndarray) -> None:
        self._points = observed.copy()
        self._velocity = np.zeros((2, 4, 2))
        self._seen_t = np.full(2, t)
        self._last_t = t

    def _lost(
        self, tracks: np.ndarray, predicted: np.ndarray, leg_px: float, gates: list[float]
    ) -> tuple[bool, bool]:
        """Per track: its assigned points do not continue it (they belong to no leg, or both
        labels sit on the other leg)."""
        misfit = [_distance(tracks[i], predicted[i]) for i in (0, 1)]
        lost = [misfit[i] > gates[i] for i in (0, 1)]
        apart_now = float(np.linalg.norm(tracks[0, 1] - tracks[1, 1]))
        apart_expected = float(np.linalg.norm(predicted[0, 1] - predicted[1, 1]))
        if apart_now < COLLAPSED_SHARE * leg_px and apart_expected > APART_SHARE * leg_px:
            lost[int(np.argmax(misfit))] = True
        return (lost[0], lost[1])

    def _follow(self, i: int, t: float, points: np.ndarray) -> None:
        """Track i was seen at `points`: its velocity blends in the motion since it was last
        seen (measured afresh after a gap)."""
        assert self._points is not None
        dt = t - float(self._seen_t[i])
        moved = (points - self._points[i]) / dt
        if dt > MAX_EXTRAPOLATION_S:
            self._velocity[i] = moved
        else:
            self._velocity[i] = VELOCITY_BLEND * moved + (1.0 - VELOCITY_BLEND) * self._velocity[i]
        self._points[i] = points
        self._seen_t[i] = t

    def _outvoted(self, t: float, swapped: bool) -> bool:
        """True when the tracks have gone against the model's labels through most of the
        last seconds: the tracker followed the wrong leg, and takes the labels back."""
        self._votes.append((t, swapped))
        while self._votes and self._votes[0][0] < t - VOTE_S:
            self._votes.popleft()
        span = self._votes[-1][0] - self._votes[0][0]
        against = sum(1 for _, vote in self._votes if vote)
        if span < 0.5 * VOTE_S or against < VOTE_SHARE * len(self._votes):
            return False
        assert self._points is not None
        for state in (self._points, self._velocity, self._seen_t):
            state[[0, 1]] = state[[1, 0]]
        self._votes.clear()
        return True


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(a - b, axis=-1)))
