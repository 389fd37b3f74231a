"""Per-step form metrics, exactly as docs/metrics.md defines them (JSON key names).

Each function takes the step's landmark samples in view coordinates (x forward in side views,
sideways in front/rear views; y up; pixels) and returns (value, confidence) or None when the
landmarks it needs were not seen: a metric is absent rather than guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from coachd.body import EARS, HIPS, SHOULDERS, torso_length
from coachd.catalog import FRONTAL_VIEWS, visible
from coachd.gait.signals import LEG_LENGTH_PER_HEIGHT, BodySample, to_view_coords
from coachd.messages import Landmark, Side, View

# Foot strike classes from the foot angle at contact, degrees (docs/metrics.md).
HEEL_STRIKE_ABOVE_DEG = 5.0
FOREFOOT_STRIKE_BELOW_DEG = -5.0
# How much a far-side (partly hidden) leg's values are trusted relative to the near leg's.
FAR_LEG_TRUST = 0.5
# A window metric needs its landmarks seen in at least this share of the window's frames.
MIN_SEEN_SHARE = 0.8
# A foot angle this far from the median of the frames around a contact is a landmark glitch.
FOOT_ANGLE_OUTLIER_DEG = 15.0
# A frontal shoulder line narrower than this share of its usual width is a pose-model glitch.
COLLAPSED_SHOULDER_SHARE = 0.7

Measured = Optional[tuple[float, float]]  # (value, confidence)


def foot_strike(foot_angle_deg: float) -> str:
    """heel, midfoot or forefoot from the foot angle at initial contact."""
    if foot_angle_deg > HEEL_STRIKE_ABOVE_DEG:
        return "heel"
    if foot_angle_deg < FOREFOOT_STRIKE_BELOW_DEG:
        return "forefoot"
    return "midfoot"


def leg_landmarks(side: Side) -> dict[str, int]:
    if side == "left":
        return {
            "hip": Landmark.LEFT_HIP,
            "knee": Landmark.LEFT_KNEE,
            "ankle": Landmark.LEFT_ANKLE,
            "heel": Landmark.LEFT_HEEL,
            "toe": Landmark.LEFT_FOOT_INDEX,
        }
    return {
        "hip": Landmark.RIGHT_HIP,
        "knee": Landmark.RIGHT_KNEE,
        "ankle": Landmark.RIGHT_ANKLE,
        "heel": Landmark.RIGHT_HEEL,
        "toe": Landmark.RIGHT_FOOT_INDEX,
    }


@dataclass
class Window:
    """A run of samples in view coordinates."""

    t: np.ndarray  # (n,)
    p: np.ndarray  # (n, 33, 2) x forward/sideways, y up
    seen: np.ndarray  # (n, 33)
    vis: np.ndarray  # (n, 33)
    raw: np.ndarray  # (n, 33, 2) as p, before smoothing (the angles read at one instant)

    @classmethod
    def of(cls, samples: list[BodySample], view: Optional[View]) -> Window:
        if not samples:
            empty = np.zeros((0, 33, 2))
            return cls(np.zeros(0), empty, np.zeros((0, 33), bool), np.zeros((0, 33)), empty)
        return cls(
            np.array([s.t for s in samples]),
            to_view_coords(np.stack([s.xy for s in samples]), view),
            np.stack([s.seen for s in samples]),
            np.stack([s.visibility for s in samples]),
            to_view_coords(np.stack([s.unsmoothed for s in samples]), view),
        )

    def __len__(self) -> int:
        return len(self.t)

    def all_seen(self, landmarks: tuple[int, ...]) -> np.ndarray:
        return np.asarray(self.seen[:, list(landmarks)].all(axis=1))

    def frame(self, t: float) -> int:
        return int(np.argmin(np.abs(self.t - t)))

    def mid(self, pair: tuple[int, int]) -> np.ndarray:
        return np.asarray((self.p[:, pair[0]] + self.p[:, pair[1]]) / 2.0)

    def confidence(self, rows: np.ndarray, landmarks: tuple[int, ...]) -> float:
        if rows.size == 0:
            return 0.0
        picked = self.vis[rows][:, list(landmarks)]
        return float(np.clip(np.mean(picked), 0.0, 1.0))


@dataclass
class StepInput:
    """What one step's metrics are computed from (built by the analyzer)."""

    side: Side  # the foot that landed at the start of the step
    view: View
    t_start: float
    t_end: float
    step: Window  # samples from this IC to the next
    stride: Window  # the two steps (one stride) ending at the step's end
    swing: Optional[Window]  # this leg's swing before its contact
    stance: Optional[Window]  # this foot's contact, IC to TO
    leg_px: float
    near: bool  # side views: this is the leg nearer the camera
    cadence_spm: Optional[float]
    contact_ms: Optional[float]
    stride_s: Optional[float]
    event_confidence: float = 1.0
    # The last frame in the air to the third on the belt (the foot angle's frames).
    around_contact: Optional[Window] = None
    runner_height_cm: Optional[float] = None
    contact_by_side: dict[str, list[float]] = field(default_factory=dict)
    heel_recovery_by_side: dict[str, list[float]] = field(default_factory=dict)
    # Side views: the at-contact instant (between frames) and the flight frames up to it.
    t_at_contact: Optional[float] = None
    approach: Optional[Window] = None


def fitted_p2p(t: np.ndarray, values: np.ndarray, period: float, harmonics: int = 2) -> float:
    """Peak-to-peak of a periodic signal over one period, read off a least-squares fit of its
    first harmonics: the raw peak-to-peak would add the landmark noise's own spread."""
    if len(values) >= 5:
        # A 3-frame median first: one frame's landmark glitch must not make a peak.  The end
        # frames take the median of their own three (repeating an end frame would keep a glitch
        # that falls on it).
        filtered = np.median(np.stack([values[:-2], values[1:-1], values[2:]]), axis=0)
        values = np.concatenate([[np.median(values[:3])], filtered, [np.median(values[-3:])]])
    if period <= 0 or len(values) < 2 * harmonics + 3:
        return float(np.ptp(values))
    phase = 2.0 * np.pi * (t - t[0]) / period
    columns = [np.ones_like(phase)]
    for k in range(1, harmonics + 1):
        columns += [np.cos(k * phase), np.sin(k * phase)]
    basis = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(basis, values, rcond=None)
    dense = np.linspace(0.0, 2.0 * np.pi, 200)
    fine = [np.ones_like(dense)]
    for k in range(1, harmonics + 1):
        fine += [np.cos(k * dense), np.sin(k * dense)]
    return float(np.ptp(np.stack(fine, axis=1) @ coef))


def _period(w: Window, rows: np.ndarray) -> float:
    """A window runs from one contact to the next (one period) inclusive of both ends."""
    return float(w.t[-1] - w.t[0]) if len(w) > 1 else 0.0


def _angle_from_vertical(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Degrees from vertical, positive when dx > 0 (forward); dy is the upward extent."""
    return np.asarray(np.degrees(np.arctan2(dx, dy)))


def _at_contact(step: StepInput, landmarks: tuple[int, ...]) -> Optional[tuple[np.ndarray, float]]:
    """The landmarks (33, 2) at the instant of contact and how sure the model was of them, if
    all `landmarks` were seen.  An overstriding shank turns ten degrees and more in the frame
    after a landing, but little in the last frames of flight: the unsmoothed landmarks of the
    last two flight frames are carried on to `t_at_contact`, a moment between frames.  Without
    them, the contact event's own frame."""
    a, t = step.approach, step.t_at_contact
    if a is not None and t is not None:
        rows = np.flatnonzero(a.all_seen(landmarks))[-2:]
        if len(rows) == 2:
            before, last = a.t[rows]
            frame_s = float(np.median(np.diff(a.t)))
            if 0 < last - before <= 1.5 * frame_s and t - last <= frame_s + 1e-6:
                ahead = (t - last) / (last - before)
                points = a.raw[rows[1]] + ahead * (a.raw[rows[1]] - a.raw[rows[0]])
                return points, a.confidence(rows, landmarks)
    w = step.step
    if len(w) == 0:
        return None
    row = w.frame(step.t_start)
    if abs(w.t[row] - step.t_start) > 1e-3 or not w.all_seen(landmarks)[row]:
        return None
    return w.raw[row], w.confidence(np.array([row]), landmarks)


def _near_contact(
    step: StepInput, landmarks: tuple[int, ...]
) -> Optional[tuple[np.ndarray, float]]:
    """The landmarks at contact for the at-contact angles, near leg only: the far leg is half
    hidden behind the near one at landing and the pose model places it tens of pixels off
    (its knee, ankle and foot), so its at-contact angles are left out, not guessed."""
    return _at_contact(step, landmarks) if step.near else None


def _trust(step: StepInput) -> float:
    return step.event_confidence * (1.0 if step.near else FAR_LEG_TRUST)


def overstride_ratio(step: StepInput) -> Measured:
    leg = leg_landmarks(step.side)
    need = (leg["ankle"], *HIPS)
    found = _near_contact(step, need)
    if found is None:
        return None
    p, confidence = found
    ahead = p[leg["ankle"], 0] - 0.5 * (p[HIPS[0], 0] + p[HIPS[1], 0])
    return float(ahead / step.leg_px), confidence * _trust(step)


def shank_angle_deg(step: StepInput) -> Measured:
    leg = leg_landmarks(step.side)
    need = (leg["knee"], leg["ankle"])
    found = _near_contact(step, need)
    if found is None:
        return None
    p, confidence = found
    knee, ankle = p[leg["knee"]], p[leg["ankle"]]
    angle = float(_angle_from_vertical(ankle[0] - knee[0], knee[1] - ankle[1]))
    return angle, confidence * _trust(step)


def _foot_angles(w: Window, side: Side) -> np.ndarray:
    """Heel->toe angle from horizontal in every frame where both are seen (NaN elsewhere)."""
    leg = leg_landmarks(side)
    angles = _heel_to_toe_deg(w.p, side)
    return np.where(w.all_seen((leg["heel"], leg["toe"])), angles, np.nan)


def _heel_to_toe_deg(p: np.ndarray, side: Side) -> np.ndarray:
    """Heel->toe angle from horizontal, positive toe up, for landmarks (..., 33, 2)."""
    leg = leg_landmarks(side)
    line = p[..., leg["toe"], :] - p[..., leg["heel"], :]
    return np.asarray(np.degrees(np.arctan2(line[..., 1], line[..., 0])))


def foot_angle_deg(step: StepInput) -> Measured:
    """Heel->toe angle at contact, averaged with the frames either side where seen (the foot
    is short in the image: one frame's landmark noise is worth several degrees)."""
    leg = leg_landmarks(step.side)
    need = (leg["heel"], leg["toe"])
    found = _near_contact(step, need)
    if found is None:
        return None
    p, confidence = found
    angles = np.zeros(0)
    if step.around_contact is not None:
        around = _foot_angles(step.around_contact, step.side)
        angles = around[np.isfinite(around)]
    if not angles.size:
        angles = np.atleast_1d(_heel_to_toe_deg(p, step.side))
    # A frame whose heel and toe sit on different feet (a leg-label mix-up the fixer missed)
    # reads tens of degrees off its neighbours: left out.
    middle = float(np.median(angles))
    steady = angles[np.abs(angles - middle) <= FOOT_ANGLE_OUTLIER_DEG]
    angle = float(np.mean(steady)) if steady.size else middle  # two frames far apart: between
    return angle, confidence * _trust(step)


def _seen_rows(w: Window, landmarks: tuple[int, ...]) -> Optional[np.ndarray]:
    if len(w) == 0:
        return None
    rows = np.flatnonzero(w.all_seen(landmarks))
    if rows.size < max(2, MIN_SEEN_SHARE * len(w)):
        return None
    return rows


def trunk_lean_deg(step: StepInput) -> Measured:
    need = (*HIPS, *SHOULDERS)
    w = step.step
    rows = _seen_rows(w, need)
    if rows is None:
        return None
    torso = w.mid(SHOULDERS)[rows] - w.mid(HIPS)[rows]
    lean = _angle_from_vertical(torso[:, 0], torso[:, 1])
    return float(np.mean(lean)), w.confidence(rows, need) * step.event_confidence


def vertical_oscillation_ratio(step: StepInput) -> Measured:
    w = step.step
    # Seen head-on, the pose model's hip points ride up and down with the swinging thigh;
    # the shoulders sit on the same trunk and are placed well from the front or behind.
    points = SHOULDERS if step.view in FRONTAL_VIEWS else HIPS
    rows = _seen_rows(w, points)
    if rows is None:
        return None
    height = w.mid(points)[rows, 1]
    value = fitted_p2p(w.t[rows], height, _period(w, rows)) / step.leg_px
    return value, w.confidence(rows, points) * step.event_confidence


def _swing_rows(step: StepInput, landmarks: tuple[int, ...]) -> Optional[tuple[Window, np.ndarray]]:
    if step.swing is None or len(step.swing) < 3:
        return None
    rows = _seen_rows(step.swing, landmarks)
    return None if rows is None else (step.swing, rows)


def knee_lift_deg(step: StepInput) -> Measured:
    leg = leg_landmarks(step.side)
    need = (leg["hip"], leg["knee"])
    found = _swing_rows(step, need)
    if found is None:
        return None
    w, rows = found
    thigh = w.p[rows, leg["knee"]] - w.p[rows, leg["hip"]]
    flexion = _angle_from_vertical(thigh[:, 0], -thigh[:, 1])
    return float(np.max(flexion)), w.confidence(rows, need) * _trust(step)


def heel_recovery_ratio(step: StepInput) -> Measured:
    leg = leg_landmarks(step.side)
    need = (leg["hip"], leg["heel"])
    found = _swing_rows(step, need)
    if found is None:
        return None
    w, rows = found
    distance = np.linalg.norm(w.p[rows, leg["heel"]] - w.p[rows, leg["hip"]], axis=1)
    return float(np.min(distance) / step.leg_px), w.confidence(rows, need) * _trust(step)


def _whole_shoulder_rows(w: Window, rows: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Rows whose shoulder line has its usual width: now and then the pose model collapses
    both shoulders onto one point for a frame, and the line's roll is then meaningless."""
    if rows is None:
        return None
    width = np.linalg.norm(w.p[rows, SHOULDERS[0]] - w.p[rows, SHOULDERS[1]], axis=1)
    whole = rows[width >= COLLAPSED_SHOULDER_SHARE * np.median(width)]
    return whole if len(whole) >= MIN_SEEN_SHARE * len(rows) else None


def shoulder_tilt_p2p_deg(step: StepInput) -> Measured:
    w = step.stride
    rows = _whole_shoulder_rows(w, _seen_rows(w, SHOULDERS))
    if rows is None:
        return None
    line = w.p[rows, Landmark.RIGHT_SHOULDER] - w.p[rows, Landmark.LEFT_SHOULDER]
    # Roll from horizontal, folded so that the left-right order of the view does not matter.
    roll = np.degrees(np.arctan2(line[:, 1], np.abs(line[:, 0])))
    return fitted_p2p(w.t[rows], roll, _period(w, rows), harmonics=1), w.confidence(
        rows, SHOULDERS
    ) * step.event_confidence


def shoulder_sway_ratio(step: StepInput) -> Measured:
    need = (*SHOULDERS, *HIPS)
    w = step.stride
    rows = _whole_shoulder_rows(w, _seen_rows(w, need))
    if rows is None:
        return None
    sideways = w.mid(SHOULDERS)[rows, 0] - w.mid(HIPS)[rows, 0]
    width = np.median(np.abs(w.p[rows, SHOULDERS[0], 0] - w.p[rows, SHOULDERS[1], 0]))
    if width < 1.0:
        return None
    return fitted_p2p(w.t[rows], sideways, _period(w, rows)) / float(width), w.confidence(
        rows, need
    ) * step.event_confidence


def shoulder_elevation_ratio(step: StepInput) -> Measured:
    need = (*SHOULDERS, *HIPS, *EARS)
    w = step.step
    rows = _seen_rows(w, need)
    if rows is None:
        return None
    shoulder_mid = w.mid(SHOULDERS)[rows]
    neck = w.mid(EARS)[rows, 1] - shoulder_mid[:, 1]
    torso = np.asarray(torso_length(w.p[rows]))
    ratio = neck[torso > 1.0] / torso[torso > 1.0]
    if ratio.size == 0:
        return None
    return float(np.median(ratio)), w.confidence(rows, need) * step.event_confidence


def belt_speed_px_s(step: StepInput) -> Measured:
    """Backward speed of the planted foot (its lower point, heel or toe), pixels per second."""
    if step.stance is None or len(step.stance) < 3:
        return None
    leg = leg_landmarks(step.side)
    w = step.stance
    points = (leg["heel"], leg["toe"])
    speeds = []
    for i in range(len(w) - 1):
        pair = w.p[i : i + 2][:, list(points)]  # (2 frames, 2 points, xy)
        if not (w.seen[i : i + 2][:, list(points)].all()):
            continue
        lower = int(np.argmin(pair[:, :, 1].sum(axis=0)))
        dt = w.t[i + 1] - w.t[i]
        if dt > 0:
            speeds.append(-(pair[1, lower, 0] - pair[0, lower, 0]) / dt)
    if len(speeds) < 2:
        return None
    rows = np.arange(len(w))
    return float(np.median(speeds)), w.confidence(rows, points) * _trust(step)


def asymmetry_pct(by_side: dict[str, list[float]]) -> Optional[float]:
    """|left - right| / mean * 100 of the sides' trimmed means over the recent steps (a mean,
    not a median: contact times come in whole frames, and a median keeps that coarseness)."""
    left, right = by_side.get("left", []), by_side.get("right", [])
    if len(left) < 2 or len(right) < 2:
        return None
    a, b = _trimmed_mean(left), _trimmed_mean(right)
    mean = (a + b) / 2.0
    return None if mean <= 0 else abs(a - b) / mean * 100.0


def _trimmed_mean(values: list[float]) -> float:
    ordered = sorted(values)
    if len(ordered) >= 5:
        ordered = ordered[1:-1]
    return float(np.mean(ordered))


def step_metrics(step: StepInput) -> tuple[dict[str, float], dict[str, float]]:
    """All the metrics valid in the step's view that its landmarks allow."""
    values: dict[str, float] = {}
    trust: dict[str, float] = {}

    def put(name: str, measured: Measured) -> None:
        if measured is not None and visible(name, step.view) and math.isfinite(measured[0]):
            values[name] = measured[0]
            trust[name] = round(float(np.clip(measured[1], 0.0, 1.0)), 3)

    if step.cadence_spm is not None:
        put("cadence_spm", (step.cadence_spm, step.event_confidence))
    put("overstride_ratio", overstride_ratio(step))
    put("shank_angle_deg", shank_angle_deg(step))
    put("trunk_lean_deg", trunk_lean_deg(step))
    put("foot_angle_deg", foot_angle_deg(step))
    put("vertical_oscillation_ratio", vertical_oscillation_ratio(step))
    put("knee_lift_deg", knee_lift_deg(step))
    put("heel_recovery_ratio", heel_recovery_ratio(step))
    # Timed off the near foot only: the far foot's touchdown and lift-off, half hidden behind
    # the near leg, came out up to three frames early on some synthetic clips (the near foot's
    # within 0.6 of a frame), which no confidence weighting undoes in a median.
    if step.contact_ms is not None and step.near:
        put("contact_time_ms", (step.contact_ms, _trust(step)))
        if step.stride_s:
            put("duty_factor", (step.contact_ms / 1000.0 / step.stride_s, _trust(step)))
    put("shoulder_tilt_p2p_deg", shoulder_tilt_p2p_deg(step))
    put("shoulder_sway_ratio", shoulder_sway_ratio(step))
    put("shoulder_elevation_ratio", shoulder_elevation_ratio(step))
    contact_asym = asymmetry_pct(step.contact_by_side)
    if contact_asym is not None:
        put("contact_time_asymmetry_pct", (contact_asym, 0.5))
    heel_asym = asymmetry_pct(step.heel_recovery_by_side)
    if heel_asym is not None:
        put("heel_recovery_asymmetry_pct", (heel_asym, FAR_LEG_TRUST))
    if step.runner_height_cm is not None:
        leg_cm = LEG_LENGTH_PER_HEIGHT * step.runner_height_cm
        for ratio, cm in (
            ("overstride_ratio", "overstride_cm"),
            ("vertical_oscillation_ratio", "vertical_oscillation_cm"),
        ):
            if ratio in values:
                put(cm, (values[ratio] * leg_cm, trust[ratio]))
        speed = belt_speed_px_s(step)
        if speed is not None:
            metres_per_s = speed[0] / step.leg_px * leg_cm / 100.0
            put("belt_speed_kmh", (metres_per_s * 3.6, speed[1]))
    return values, trust
