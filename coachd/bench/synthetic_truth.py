"""Ground truth measured on the skeleton the synthetic runner draws (docs: metrics.md).

Benchmark and test support, read by `coachd bench gait` and the tests, never by a pipeline
stage: the synthetic source only draws; this re-simulates its skeleton from the same
parameters (the kinematics are a pure function of the parameters and the time) and measures it.
Nothing here reads the gait parameters: contacts come from the heel and toe landmarks on the
belt plane, and every metric from the 3-D joints of the frames, with exactly the definitions
the gait stage uses. `simulate_truth` computes the whole run without rendering;
`simulate_skeletons` only the joints, for streams that need no events or steps.

Conventions where metrics.md leaves a choice:
- a Stride is one step, from an IC of `side` to the next IC of either foot; its at-IC metrics
  are the landing foot's, its stride-long metrics (shoulder tilt/sway, contact time, duty
  factor) run to the same foot's next IC and are absent for the last steps of a run;
- knee_lift_deg and heel_recovery_ratio describe the swing of `side` that ended at this IC;
- vertical_oscillation_ratio divides by the mean of both legs' L;
- the at-contact metrics (overstride, shank and foot angle) are read on the skeleton at the
  instant of touchdown, found between frames by bisection, not on the first frame down;
- foot_strike (a word, not a number) is not in `metrics`: the gait stage's own
  `coachd.gait.foot_strike(foot_angle_deg)` classifies the truth's foot angle too;
- belt_speed_kmh is the median frame-to-frame backward speed of the heel or toe resting on
  the belt during the step's contact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from coachd.capture.synthetic.kinematics import (
    ANKLE_IDX,
    HEEL_IDX,
    HIP_IDX,
    KNEE_IDX,
    SHOULDER_IDX,
    TOE_IDX,
    GaitModel,
)
from coachd.capture.synthetic.params import SyntheticParams
from coachd.messages import GaitEvent, Landmark, Side, Stride, View

CONTACT_EPS_M = 1e-3  # a heel or toe this close to the belt plane is on it
# Halvings of the frame interval that find the instant of a contact: 1/30 s / 2**12 < 0.01 ms.
TOUCHDOWN_BISECTIONS = 12
SIDES: tuple[Side, Side] = ("left", "right")
EAR_IDX = (int(Landmark.LEFT_EAR), int(Landmark.RIGHT_EAR))


def contact_flags(joints: np.ndarray) -> tuple[bool, bool]:
    """(left, right) foot on the belt: its heel or toe at the belt plane z = 0."""
    flags = []
    for s in (0, 1):
        low = min(joints[HEEL_IDX[s], 2], joints[TOE_IDX[s], 2])
        flags.append(bool(low <= CONTACT_EPS_M))
    return (flags[0], flags[1])


@dataclass(frozen=True)
class SyntheticTruth:
    """Every frame's skeleton and contacts, the events and the per-step metrics of a run."""

    t: np.ndarray  # (N,) seconds since start
    joints: np.ndarray  # (N, 33, 3); NaN while the runner is away
    contact: np.ndarray  # (N, 2) bool
    present: np.ndarray  # (N,) bool
    events: list[GaitEvent]
    steps: list[Stride]


@dataclass(frozen=True)
class Skeletons:
    """Every frame's joints of a run, as the synthetic source draws them."""

    params: SyntheticParams
    t: np.ndarray  # (N,) seconds since start
    joints: np.ndarray  # (N, 33, 3); NaN while the runner is away
    present: np.ndarray  # (N,) bool


def simulate_skeletons(params: SyntheticParams, seconds: Optional[float] = None) -> Skeletons:
    """The run's joints frame by frame; `seconds` defaults to the run's own duration."""
    duration = seconds if seconds is not None else params.seconds
    if duration is None:
        raise ValueError("an endless synthetic run needs a duration for its truth")
    model = GaitModel(params)
    count = round(float(duration * params.fps))
    times = np.arange(count) / params.fps
    joints = np.full((count, 33, 3), np.nan)
    present = np.array([params.runner_present(float(t)) for t in times], dtype=bool)
    for i, t in enumerate(times):
        if present[i]:
            joints[i] = model.skeleton(float(t)).joints
    return Skeletons(params, times, joints, present)


def simulate_truth(params: SyntheticParams, seconds: Optional[float] = None) -> SyntheticTruth:
    """The run's truth without rendering; `seconds` defaults to the run's own duration."""
    return measure_skeletons(simulate_skeletons(params, seconds))


def measure_skeletons(run: Skeletons) -> SyntheticTruth:
    """Contacts, the instants between frames they began and ended, events and steps."""
    model = GaitModel(run.params)
    times, joints, present = run.t, run.joints, run.present
    count = len(times)
    contact = np.zeros((count, 2), dtype=bool)
    for i in range(count):
        if present[i]:
            contact[i] = contact_flags(joints[i])
    instants = ContactInstants()
    for i in range(1, count):
        if not (present[i - 1] and present[i]):
            continue
        for side in (0, 1):
            if contact[i, side] and not contact[i - 1, side]:
                t = _instant(model, float(times[i - 1]), float(times[i]), side)
                instants.touchdown[(i, side)] = t
                instants.touchdown_joints[(i, side)] = model.skeleton(t).joints
            if contact[i - 1, side] and not contact[i, side]:
                instants.lift_off[(i - 1, side)] = _instant(
                    model, float(times[i - 1]), float(times[i]), side
                )
    events, steps = measure(times, joints, contact, present, run.params.view, instants)
    return SyntheticTruth(times, joints, contact, present, events, steps)


@dataclass
class ContactInstants:
    """The instants between frames when each foot reached or left the belt, keyed by (the
    first frame down or the last, side), and the skeleton at each touchdown."""

    touchdown: dict[tuple[int, int], float] = field(default_factory=dict)
    touchdown_joints: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    lift_off: dict[tuple[int, int], float] = field(default_factory=dict)


def _instant(model: GaitModel, t_before: float, t_after: float, side: int) -> float:
    """When foot `side` reached or left the belt between two frames that disagree on it
    (bisection on the drawn skeleton itself)."""
    down_before = bool(contact_flags(model.skeleton(t_before).joints)[side])
    for _ in range(TOUCHDOWN_BISECTIONS):
        middle = 0.5 * (t_before + t_after)
        if bool(contact_flags(model.skeleton(middle).joints)[side]) == down_before:
            t_before = middle
        else:
            t_after = middle
    return t_after if not down_before else t_before


def _leg_length(joints: np.ndarray, s: int) -> float:
    hip, knee, ankle = joints[HIP_IDX[s]], joints[KNEE_IDX[s]], joints[ANKLE_IDX[s]]
    return float(np.linalg.norm(hip - knee) + np.linalg.norm(knee - ankle))


def _hip_mid(joints: np.ndarray) -> np.ndarray:
    return 0.5 * (joints[..., HIP_IDX[0], :] + joints[..., HIP_IDX[1], :])


def _shoulder_mid(joints: np.ndarray) -> np.ndarray:
    return 0.5 * (joints[..., SHOULDER_IDX[0], :] + joints[..., SHOULDER_IDX[1], :])


def _from_vertical_deg(dx: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Angle of (dx, up dz) from vertical in the sagittal plane, positive forward."""
    return np.degrees(np.arctan2(dx, dz))


def measure(
    times: np.ndarray,
    joints: np.ndarray,
    contact: np.ndarray,
    present: np.ndarray,
    view: View,
    instants: Optional[ContactInstants] = None,
) -> tuple[list[GaitEvent], list[Stride]]:
    """Contacts, toe-offs and per-step metrics from per-frame joints (metrics.md).

    `instants` holds when each foot reached and left the belt, between frames, and the
    skeleton at each touchdown: the at-contact metrics are read there, not on the frame after,
    because an overstriding shank turns ten degrees and more in one frame around a landing;
    the contact time runs from instant to instant, not from frame to frame (which reads it a
    frame short on average: the first and last frames down are inside the contact).
    """
    events: list[GaitEvent] = []
    ics: list[tuple[int, int]] = []  # (frame, side)
    tos: list[tuple[int, int]] = []
    for i in range(1, len(times)):
        if not (present[i] and present[i - 1]):
            continue
        for s in (0, 1):
            if contact[i, s] and not contact[i - 1, s]:
                ics.append((i, s))
                events.append(GaitEvent(float(times[i]), SIDES[s], "contact", float(times[i])))
            if contact[i - 1, s] and not contact[i, s]:
                tos.append((i - 1, s))
                events.append(GaitEvent(float(times[i - 1]), SIDES[s], "toe_off", float(times[i])))
    events.sort(key=lambda e: (e.t, e.kind != "toe_off"))
    ics.sort()
    instants = instants or ContactInstants()
    steps: list[Stride] = []
    for n in range(len(ics) - 1):
        i0, s = ics[n]
        i1, _ = ics[n + 1]
        if not present[i0 : i1 + 1].all():
            continue
        metrics = _step_metrics(times, joints, contact, ics, tos, n, instants)
        steps.append(
            Stride(
                t=float(times[i0]),
                side=SIDES[s],
                view=view,
                duration_s=float(times[i1] - times[i0]),
                metrics=metrics,
                t_detected=float(times[i1]),
            )
        )
    return events, steps


def _step_metrics(
    times: np.ndarray,
    joints: np.ndarray,
    contact: np.ndarray,
    ics: list[tuple[int, int]],
    tos: list[tuple[int, int]],
    n: int,
    instants: ContactInstants,
) -> dict[str, float]:
    i0, s = ics[n]
    i1, _ = ics[n + 1]
    at_ic = instants.touchdown_joints.get((i0, s), joints[i0])
    leg = _leg_length(at_ic, s)
    legs = 0.5 * (_leg_length(at_ic, 0) + _leg_length(at_ic, 1))
    hip_mid = _hip_mid(at_ic)
    ankle, knee = at_ic[ANKLE_IDX[s]], at_ic[KNEE_IDX[s]]
    heel, toe = at_ic[HEEL_IDX[s]], at_ic[TOE_IDX[s]]
    step = joints[i0:i1]
    hips_step = _hip_mid(step)
    trunk = _shoulder_mid(step) - hips_step
    torso_len = np.linalg.norm(trunk, axis=1)
    ear_mid = 0.5 * (step[:, EAR_IDX[0]] + step[:, EAR_IDX[1]])
    m: dict[str, float] = {
        "cadence_spm": 60.0 / float(times[i1] - times[i0]),
        "overstride_ratio": float((ankle[0] - hip_mid[0]) / leg),
        "shank_angle_deg": float(_from_vertical_deg(ankle[0] - knee[0], knee[2] - ankle[2])),
        "trunk_lean_deg": float(np.mean(_from_vertical_deg(trunk[:, 0], trunk[:, 2]))),
        "shoulder_elevation_ratio": float(
            np.median((ear_mid[:, 2] - _shoulder_mid(step)[:, 2]) / torso_len)
        ),
        "foot_angle_deg": float(math.degrees(math.atan2(toe[2] - heel[2], toe[0] - heel[0]))),
        "vertical_oscillation_ratio": float(np.ptp(hips_step[:, 2]) / legs),
    }
    # Stride-long metrics: this IC to the same foot's next IC.
    same = [i for i, side in ics[n + 1 :] if side == s]
    if same:
        i2 = same[0]
        stride = joints[i0:i2]
        sh_l, sh_r = stride[:, SHOULDER_IDX[0]], stride[:, SHOULDER_IDX[1]]
        line = sh_r - sh_l
        tilt = np.degrees(np.arctan2(line[:, 2], -line[:, 1]))
        width = float(np.mean(np.linalg.norm(line, axis=1)))
        sideways = _shoulder_mid(stride)[:, 1] - _hip_mid(stride)[:, 1]
        m["shoulder_tilt_p2p_deg"] = float(np.ptp(tilt))
        m["shoulder_sway_ratio"] = float(np.ptp(sideways) / width)
        offs = [i for i, side in tos if side == s and i0 <= i < i2]
        if offs:
            landed = instants.touchdown.get((i0, s), float(times[i0]))
            left = instants.lift_off.get((offs[0], s), float(times[offs[0]]))
            contact_s = left - landed
            m["contact_time_ms"] = 1000.0 * contact_s
            m["duty_factor"] = contact_s / float(times[i2] - times[i0])
    # Belt speed: the belt-touching heel or toe of this foot, frame to frame.
    speeds = []
    i = i0
    while i + 1 < len(times) and contact[i + 1, s]:
        for idx in (HEEL_IDX[s], TOE_IDX[s]):
            if joints[i, idx, 2] <= 1e-3 and joints[i + 1, idx, 2] <= 1e-3:
                dt = float(times[i + 1] - times[i])
                speeds.append(-(joints[i + 1, idx, 0] - joints[i, idx, 0]) / dt)
                break
        i += 1
    if speeds:
        m["belt_speed_kmh"] = float(np.median(speeds) * 3.6)
    # The swing that brought this foot to this contact: last toe-off of this side before it.
    offs_before = [i for i, side in tos if side == s and i < i0]
    if offs_before:
        swing = joints[offs_before[-1] + 1 : i0]
        if len(swing):
            thigh = swing[:, KNEE_IDX[s]] - swing[:, HIP_IDX[s]]
            m["knee_lift_deg"] = float(np.max(_from_vertical_deg(thigh[:, 0], -thigh[:, 2])))
            heel_hip = np.linalg.norm(swing[:, HEEL_IDX[s]] - swing[:, HIP_IDX[s]], axis=1)
            m["heel_recovery_ratio"] = float(np.min(heel_hip) / leg)
    return m
