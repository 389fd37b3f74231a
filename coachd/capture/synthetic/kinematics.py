"""The synthetic runner's 3-D skeleton over the gait cycle, in BlazePose landmark order.

World frame, metres: x forward (the running direction), y the runner's left, z up; the belt
surface is z = 0 and moves towards -x at belt speed. Each stance foot is placed on the belt
(heel, foot-flat and toe rockers) and the knee solved from hip and ankle; each swing leg is a
smooth curve of thigh angle, knee flexion and ankle angle from the toe-off pose (matching its
velocity) through the back kick and the knee lift to the next contact pose. Contact is
therefore a property of the drawn joints: the heel or the toe is on z = 0 exactly in stance
and above it in swing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from coachd.capture.synthetic.params import SyntheticParams
from coachd.messages import NUM_LANDMARKS, Landmark

LEFT, RIGHT = 0, 1
SIDE_SIGN = (1.0, -1.0)  # +y is the runner's left
RUNNER_X = -0.15  # where on the belt the runner holds position
SWING_CLEARANCE_M = 0.012  # least heel/toe height in mid-swing
LOW_AT = 0.45  # share of the contact time at which the pelvis is lowest when running
HIP_IDX = (int(Landmark.LEFT_HIP), int(Landmark.RIGHT_HIP))
KNEE_IDX = (int(Landmark.LEFT_KNEE), int(Landmark.RIGHT_KNEE))
ANKLE_IDX = (int(Landmark.LEFT_ANKLE), int(Landmark.RIGHT_ANKLE))
HEEL_IDX = (int(Landmark.LEFT_HEEL), int(Landmark.RIGHT_HEEL))
TOE_IDX = (int(Landmark.LEFT_FOOT_INDEX), int(Landmark.RIGHT_FOOT_INDEX))
SHOULDER_IDX = (int(Landmark.LEFT_SHOULDER), int(Landmark.RIGHT_SHOULDER))
ELBOW_IDX = (int(Landmark.LEFT_ELBOW), int(Landmark.RIGHT_ELBOW))
WRIST_IDX = (int(Landmark.LEFT_WRIST), int(Landmark.RIGHT_WRIST))
PINKY_IDX = (int(Landmark.LEFT_PINKY), int(Landmark.RIGHT_PINKY))
INDEX_IDX = (int(Landmark.LEFT_INDEX), int(Landmark.RIGHT_INDEX))
THUMB_IDX = (int(Landmark.LEFT_THUMB), int(Landmark.RIGHT_THUMB))


@dataclass(frozen=True)
class Body:
    """Segment lengths scaled from standing height (Winter's anthropometric fractions)."""

    height: float
    thigh: float
    shank: float
    ankle_height: float  # ankle joint above the sole
    heel_back: float  # heel behind the ankle
    toe_front: float  # toe tip ahead of the ankle
    hip_half: float
    foot_half: float  # stance foot's distance from the midline
    torso: float  # hip_mid to shoulder_mid
    shoulder_half: float
    neck: float  # shoulder_mid to the head centre
    head_radius: float
    upper_arm: float
    forearm: float
    hand: float

    @classmethod
    def of_height(cls, height: float, leg_ratio: float = 1.0) -> Body:
        """Winter's fractions; `leg_ratio` lengthens the legs and shortens the trunk to match."""
        extra = (leg_ratio - 1.0) * 0.491 * height
        return cls(
            height=height,
            thigh=0.245 * height * leg_ratio,
            shank=0.246 * height * leg_ratio,
            ankle_height=0.039 * height,
            heel_back=0.03 * height,
            toe_front=0.115 * height,
            hip_half=0.05 * height,
            foot_half=0.035 * height,
            torso=0.288 * height - extra,
            shoulder_half=0.1 * height,
            neck=0.117 * height,
            head_radius=0.062 * height,
            upper_arm=0.186 * height,
            forearm=0.146 * height,
            hand=0.06 * height,
        )

    @property
    def leg(self) -> float:
        return self.thigh + self.shank

    @property
    def foot_length(self) -> float:
        return self.heel_back + self.toe_front

    def reach(self, knee_flexion: float) -> float:
        """Hip-to-ankle distance with the knee flexed by this many radians."""
        a, b = self.thigh, self.shank
        return math.sqrt(a * a + b * b + 2.0 * a * b * math.cos(knee_flexion))


@dataclass(frozen=True)
class LegState:
    """A leg in its own plane (through the hip, containing the x axis), tilted by `tilt`."""

    thigh: float  # thigh angle from vertical, radians, positive forward
    knee: float  # knee flexion, radians
    tilt: float  # the leg plane's roll about the x axis (adduction), radians
    ankle: float  # foot angle relative to perpendicular-to-shank, radians (dorsiflexion +)

    def as_array(self) -> np.ndarray:
        return np.array([self.thigh, self.knee, self.tilt, self.ankle])


@dataclass(frozen=True)
class Posture:
    contact_s: float  # contact time the legs can reach
    hip_drop: float  # pelvis lowered so the leg reaches the landing point, metres


@dataclass(frozen=True)
class StepPlan:
    """One foot's contact: when it lands and leaves, and where on the belt."""

    index: int
    side: int
    t_ic: float
    t_to: float
    heel_x0: float  # x of the heel-flat belt point at contact
    strike: float  # foot angle at contact, radians
    hold: float  # s the strike angle holds before the foot rolls flat
    roll: float  # s to roll flat
    heel_off: float  # s after contact the heel lifts
    toe_off_angle: float  # foot angle at toe-off, radians (negative: toe down)
    knee_peak: float  # swing knee flexion peak, radians (back kick)
    thigh_peak: float  # swing thigh angle peak, radians (knee lift)


class Pchip:
    """Monotone piecewise-cubic interpolation (Fritsch-Carlson) with optional end slopes."""

    def __init__(
        self,
        xs: np.ndarray,
        ys: np.ndarray,
        start_slope: Optional[np.ndarray] = None,
        end_slope: Optional[np.ndarray] = None,
    ) -> None:
        self.xs = np.asarray(xs, dtype=float)
        self.ys = np.asarray(ys, dtype=float)  # (n, channels)
        h = np.diff(self.xs)
        delta = np.diff(self.ys, axis=0) / h[:, None]
        slopes = np.zeros_like(self.ys)
        for i in range(1, len(self.xs) - 1):
            d0, d1 = delta[i - 1], delta[i]
            w0, w1 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            same = d0 * d1 > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                harmonic = (w0 + w1) / (w0 / d0 + w1 / d1)
            slopes[i] = np.where(same, harmonic, 0.0)
        slopes[0] = delta[0] if start_slope is None else start_slope
        slopes[-1] = 0.0 if end_slope is None else end_slope
        self.slopes = slopes
        self.h = h

    def __call__(self, x: float) -> np.ndarray:
        i = int(np.clip(np.searchsorted(self.xs, x, side="right") - 1, 0, len(self.h) - 1))
        h = self.h[i]
        s = (x - self.xs[i]) / h
        s2, s3 = s * s, s * s * s
        return (
            (2 * s3 - 3 * s2 + 1) * self.ys[i]
            + (s3 - 2 * s2 + s) * h * self.slopes[i]
            + (-2 * s3 + 3 * s2) * self.ys[i + 1]
            + (s3 - s2) * h * self.slopes[i + 1]
        )


def smoothstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3-vector cross product (np.cross costs ~100x more on single vectors)."""
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """Rotation about y; positive tips +z towards +x (a forward lean)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Skeleton:
    """The body at one instant: landmarks plus the extra points the renderer needs."""

    joints: np.ndarray  # (33, 3)
    head_centre: np.ndarray  # (3,)
    head_rotation: np.ndarray  # (3, 3) head frame: columns forward, left, up
    torso_rotation: np.ndarray  # (3, 3)
    hip_mid: np.ndarray
    neck_base: np.ndarray
    stance: tuple[bool, bool]  # the model's own idea of contact (truth measures it instead)

    def moved(self, rotation: np.ndarray, offset: np.ndarray) -> Skeleton:
        """The same pose turned by `rotation` about the origin, then shifted by `offset`."""
        return Skeleton(
            joints=self.joints @ rotation.T + offset,
            head_centre=rotation @ self.head_centre + offset,
            head_rotation=rotation @ self.head_rotation,
            torso_rotation=rotation @ self.torso_rotation,
            hip_mid=rotation @ self.hip_mid + offset,
            neck_base=rotation @ self.neck_base + offset,
            stance=self.stance,
        )


class GaitModel:
    """Deterministic parametric gait (run, walk or stand) of one person on a treadmill."""

    def __init__(self, params: SyntheticParams) -> None:
        self.params = params
        self.body = Body.of_height(params.runner_height, params.leg_ratio)
        self.gait = params.gait
        self.speed = params.belt_speed_ms
        self.step_s = 60.0 / params.cadence if params.gait != "stand" else 1.0
        self.t0 = 0.05
        self._jitter_blocks: dict[int, np.ndarray] = {}
        self._steps: OrderedDict[int, StepPlan] = OrderedDict()
        self._swings: OrderedDict[int, Pchip] = OrderedDict()
        self._knee_peaks: dict[float, float] = {}
        self._postures: dict[tuple[object, ...], Posture] = {}
        # Knee flexion at midstance sets the pelvis height: a walker's leg is nearly straight.
        mid_knee = math.radians(12.0 if self.gait == "walk" else 44.0)
        self.z_mid_hip = self.body.ankle_height + self.body.reach(mid_knee)

    # -- schedule -------------------------------------------------------------------------
    def _jitter(self, k: int) -> np.ndarray:
        block = k // 1024
        if block not in self._jitter_blocks:
            rng = np.random.default_rng([self.params.seed, block + 2**20])
            self._jitter_blocks[block] = rng.uniform(-1.0, 1.0, size=(1024, 4))
        return self._jitter_blocks[block][k % 1024]

    def ic_time(self, k: int) -> float:
        return self.t0 + k * self.step_s + self.params.jitter * self.step_s * self._jitter(k)[0]

    def step_at(self, t: float) -> int:
        """The step whose initial contact is the last one at or before t."""
        k = math.floor((t - self.t0) / self.step_s)
        while self.ic_time(k) > t:
            k -= 1
        while self.ic_time(k + 1) <= t:
            k += 1
        return k

    def step_phase(self, t: float) -> float:
        """Continuous step count: k at step k's contact, k + 1 at the next."""
        k = self.step_at(t)
        t_a, t_b = self.ic_time(k), self.ic_time(k + 1)
        return k + (t - t_a) / (t_b - t_a)

    def plan(
        self, k: int, p: Optional[SyntheticParams] = None, contact_s: Optional[float] = None
    ) -> StepPlan:
        """Step k's contact (k even: left foot); explicit p/contact_s build a probe, uncached."""
        probe = p is not None
        cached = None if probe else self._steps.get(k)
        if cached is not None:
            return cached
        t_ic = self.ic_time(k)
        if p is None or contact_s is None:
            p, contact_s, _ = self._posture_at(t_ic)
        side = k % 2
        jit = self._jitter(k) if not probe else np.zeros(4)
        if side == RIGHT:
            contact_s = min(contact_s * (1.0 + p.asym), 0.49 * 2.0 * self.step_s)
        strike = math.radians(p.strike_angle_deg + 1.0 * jit[1])
        hold = min(1.05 / p.fps, 0.25 * contact_s)
        roll = 0.2 * contact_s if abs(strike) > 1e-6 else 0.0
        heel_off = max(hold + roll, (0.5 if self.gait == "run" else 0.6) * contact_s)
        toe_off = math.radians(-40.0)
        body = self.body
        ankle_x = RUNNER_X + (p.overstride + 0.01 * jit[2]) * body.leg
        heel_x0 = ankle_x - self._ankle_offset(strike)[0]
        thigh_peak = math.radians(p.knee_lift + 1.0 * jit[3])
        recovery = p.heel_recovery * (1.0 + p.asym if side == RIGHT else 1.0)
        plan = StepPlan(
            index=k,
            side=side,
            t_ic=t_ic,
            t_to=t_ic + contact_s,
            heel_x0=heel_x0,
            strike=strike,
            hold=hold,
            roll=roll,
            heel_off=heel_off,
            toe_off_angle=toe_off,
            knee_peak=self._knee_peak_for(recovery),
            thigh_peak=thigh_peak,
        )
        if not probe:
            self._steps[k] = plan
            if len(self._steps) > 64:
                self._steps.popitem(last=False)
        return plan

    def _knee_peak_for(self, recovery: float) -> float:
        """Back-kick knee flexion whose smallest heel-hip distance is `recovery` x leg.

        Solved on the leg alone (thigh near vertical at the back-kick peak), so the truth,
        measured later on the whole swing, lands close to the request.
        """
        key = recovery
        if key in self._knee_peaks:
            return self._knee_peaks[key]
        body = self.body
        # -0.03: the measured swing minimum lands that much above this leg-only estimate.
        target = (recovery - 0.03) * body.leg
        thigh = math.radians(8.0)

        def heel_distance(knee: float) -> float:
            knee_pos = np.array([math.sin(thigh), -math.cos(thigh)]) * body.thigh
            shank = thigh - knee
            ankle = knee_pos + body.shank * np.array([math.sin(shank), -math.cos(shank)])
            # foot roughly perpendicular to the shank, plantarflexed a little in swing
            foot = shank + math.radians(-10.0)
            u = np.array([math.cos(foot), math.sin(foot)])
            w = np.array([-math.sin(foot), math.cos(foot)])
            heel = ankle - body.heel_back * u - body.ankle_height * w
            return float(np.hypot(*heel))

        lo, hi = math.radians(30.0), math.radians(150.0)
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if heel_distance(mid) > target:
                lo = mid
            else:
                hi = mid
        self._knee_peaks[key] = 0.5 * (lo + hi)
        return self._knee_peaks[key]

    # -- feet -----------------------------------------------------------------------------
    def _ankle_offset(self, angle: float) -> tuple[float, float]:
        """Ankle relative to the heel-flat belt point with the foot at `angle` on the belt."""
        body = self.body
        c, s = math.cos(angle), math.sin(angle)
        if angle >= 0.0:  # heel on the belt
            return (
                body.heel_back * c - body.ankle_height * s,
                body.heel_back * s + body.ankle_height * c,
            )
        x = body.foot_length - body.toe_front * c - body.ankle_height * s
        return (x, -body.toe_front * s + body.ankle_height * c)

    def stance_foot(self, plan: StepPlan, t: float) -> tuple[np.ndarray, float]:
        """Ankle position and foot angle of a foot on the belt, tau = t - contact."""
        tau = t - plan.t_ic
        contact_s = plan.t_to - plan.t_ic
        if tau < plan.hold:
            angle = plan.strike
        elif tau < plan.hold + plan.roll:
            angle = plan.strike * (1.0 - smoothstep((tau - plan.hold) / plan.roll))
        elif tau < plan.heel_off:
            angle = 0.0
        else:
            u = (tau - plan.heel_off) / max(contact_s - plan.heel_off, 1e-6)
            angle = plan.toe_off_angle * min(max(u, 0.0), 1.0) ** 1.5
        heel_x = plan.heel_x0 - self.speed * tau
        dx, dz = self._ankle_offset(angle)
        y = SIDE_SIGN[plan.side] * self.body.foot_half
        return np.array([heel_x + dx, y, dz]), angle

    def last_contact(self, side: int, t: float) -> StepPlan:
        k = self.step_at(t)
        if k % 2 != side:
            k -= 1
        return self.plan(k)

    # -- pelvis ---------------------------------------------------------------------------
    def posture(self, p: SyntheticParams) -> Posture:
        """Contact time and pelvis height that the legs can reach, for one parameter set."""
        key = (p.duty, p.overstride, p.bounce, p.strike, p.asym)
        cached = self._postures.get(key)
        if cached is not None:
            return cached
        body = self.body
        stride_s = 2.0 * self.step_s
        contact_s = min(p.duty, 0.47 if self.gait == "run" else 0.8) * stride_s
        comfortable = body.reach(math.radians(5.0))
        probe = replace(self.plan(0, p, contact_s), t_ic=0.0)
        if self.gait == "run":
            # Shorten the contact until the leg reaches the toe-off point with a bent knee.
            for _ in range(40):
                probe = replace(
                    probe, t_to=contact_s, heel_off=max(probe.hold + probe.roll, 0.5 * contact_s)
                )
                ankle, _ = self.stance_foot(probe, contact_s)
                z = self._nominal_hip_z(contact_s / self.step_s, p, contact_s, 0.0)
                if math.hypot(ankle[0] - RUNNER_X, z - ankle[2]) <= comfortable:
                    break
                contact_s *= 0.98
        ankle, _ = self.stance_foot(probe, 0.0)
        z = self._nominal_hip_z(0.0, p, contact_s, 0.0)
        reach_z = ankle[2] + math.sqrt(max(comfortable**2 - (ankle[0] - RUNNER_X) ** 2, 0.0))
        drop = max(0.0, z - reach_z)
        posture = Posture(contact_s=contact_s, hip_drop=drop)
        self._postures[key] = posture
        return posture

    def _nominal_hip_z(
        self, phase: float, p: SyntheticParams, contact_s: float, drop: float
    ) -> float:
        """hip_mid height at a step phase (0 at contact): lowest in midstance when running."""
        b = p.bounce * self.body.leg
        low_at = LOW_AT * contact_s / self.step_s
        shape = 1.0 - math.cos(2 * math.pi * (phase - low_at))
        if self.gait == "walk":
            return self.z_mid_hip + b - b * 0.5 * shape - drop
        return self.z_mid_hip + b * 0.5 * shape - drop

    def _posture_at(self, t: float) -> tuple[SyntheticParams, float, float]:
        """Parameters, contact time and pelvis drop at t, eased over 1 s after fix_at."""
        p = self.params
        posture = self.posture(p)
        if p.fix_at is None or t < p.fix_at:
            return p, posture.contact_s, posture.hip_drop
        clean = p.clean()
        fixed = self.posture(clean)
        w = smoothstep(t - p.fix_at)
        return (
            clean,
            fixed.contact_s,
            posture.hip_drop + w * (fixed.hip_drop - posture.hip_drop),
        )

    def pelvis(
        self, t: float, stance_feet: Optional[list[Optional[np.ndarray]]] = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """hip_mid, the two hip joints (2, 3) and the step phase at time t."""
        body = self.body
        phase = self.step_phase(t)
        p, contact_s, drop = self._posture_at(t)
        z = self._nominal_hip_z(phase, p, contact_s, drop)
        low_at = LOW_AT * contact_s / self.step_s
        stride_wave = math.cos(math.pi * (phase - low_at))  # +1 at left midstance
        x = RUNNER_X + 0.01 * math.sin(2 * math.pi * phase)
        y = 0.012 * stride_wave
        yaw = -math.radians(5.0) * math.cos(math.pi * phase)  # left hip forward at left contact
        tilt = math.radians(3.0) * stride_wave  # the swing side hip drops at midstance
        hip_mid = np.array([x, y, z])
        rot = rot_z(yaw) @ rot_x(tilt)
        offsets = [rot @ np.array([0.0, SIDE_SIGN[s] * body.hip_half, 0.0]) for s in (0, 1)]
        if stance_feet is None:
            stance_feet = self._stance_ankles(t)
        # Safety net: a stance leg cannot be longer than itself.
        longest = body.reach(math.radians(3.0))
        for s in (0, 1):
            ankle = stance_feet[s]
            if ankle is None:
                continue
            dx = hip_mid[0] + offsets[s][0] - ankle[0]
            dy = hip_mid[1] + offsets[s][1] - ankle[1]
            cap = ankle[2] + math.sqrt(max(longest**2 - dx * dx - dy * dy, 0.0)) - offsets[s][2]
            hip_mid[2] = min(hip_mid[2], cap)
        hips = np.stack([hip_mid + offsets[0], hip_mid + offsets[1]])
        return hip_mid, hips, phase

    def _stance_ankles(self, t: float) -> list[Optional[np.ndarray]]:
        out: list[Optional[np.ndarray]] = [None, None]
        for s in (0, 1):
            plan = self.last_contact(s, t)
            if t < plan.t_to:
                out[s] = self.stance_foot(plan, t)[0]
        return out

    # -- legs -----------------------------------------------------------------------------
    def leg_ik(self, hip: np.ndarray, ankle: np.ndarray, foot_angle: float) -> LegState:
        body = self.body
        a, b = body.thigh, body.shank
        v = ankle - hip
        tilt = math.atan2(v[1], -v[2])
        down = math.hypot(v[1], v[2])
        c = min(max(math.hypot(v[0], down), abs(a - b) + 1e-6), a + b - 1e-9)
        line = math.atan2(v[0], down)
        at_hip = math.acos(min(max((a * a + c * c - b * b) / (2 * a * c), -1.0), 1.0))
        at_knee = math.acos(min(max((a * a + b * b - c * c) / (2 * a * b), -1.0), 1.0))
        thigh = line + at_hip
        knee = math.pi - at_knee
        return LegState(thigh, knee, tilt, foot_angle - (thigh - knee))

    def leg_fk(self, hip: np.ndarray, state: LegState) -> tuple[np.ndarray, np.ndarray, float]:
        """Knee, ankle and the world foot angle of a leg state."""
        body = self.body
        down = np.array([0.0, math.sin(state.tilt), -math.cos(state.tilt)])
        fwd = np.array([1.0, 0.0, 0.0])
        shank = state.thigh - state.knee
        knee = hip + body.thigh * (math.sin(state.thigh) * fwd + math.cos(state.thigh) * down)
        ankle = knee + body.shank * (math.sin(shank) * fwd + math.cos(shank) * down)
        return knee, ankle, shank + state.ankle

    def _stance_state(self, plan: StepPlan, t: float) -> LegState:
        ankle, angle = self.stance_foot(plan, t)
        _, hips, _ = self.pelvis(t)
        return self.leg_ik(hips[plan.side], ankle, angle)

    def swing_curve(self, plan: StepPlan) -> Pchip:
        """Leg angles from this plan's toe-off to the same foot's next contact (s in 0..1)."""
        cached = self._swings.get(plan.index)
        if cached is not None:
            return cached
        nxt = self.plan(plan.index + 2)
        duration = nxt.t_ic - plan.t_to
        eps = 0.004
        end = self._stance_state(plan, plan.t_to - 1e-9).as_array()
        before = self._stance_state(plan, plan.t_to - eps).as_array()
        start_slope = (end - before) / eps * duration
        arrive = self._stance_state(nxt, nxt.t_ic).as_array()
        walk = self.gait == "walk"
        knee_peak = nxt.knee_peak
        # The thigh reaches forward past its landing angle and retracts onto the belt.
        thigh_peak = max(nxt.thigh_peak, arrive[0] + math.radians(4.0))
        late_knee = max(arrive[1] + math.radians(10.0 if walk else 30.0), math.radians(20.0))
        mid_knee = 0.5 * (knee_peak + late_knee)
        mid_tilt = 0.5 * (end[2] + arrive[2])
        lift = math.radians(12.0 if walk else 5.0)
        early_thigh = end[0] + (0.55 if walk else 0.3) * (thigh_peak - end[0])
        xs = np.array([0.0, 0.38, 0.62, 0.82, 1.0])
        # Bend the knee more until the foot clears the belt all through the swing.
        for _ in range(12):
            keys = np.array(
                [
                    end,
                    [early_thigh, knee_peak, mid_tilt, lift],
                    [0.8 * thigh_peak, max(mid_knee, late_knee), mid_tilt, lift],
                    [thigh_peak, late_knee, arrive[2], lift],
                    arrive,
                ]
            )
            curve = Pchip(xs, keys, start_slope=start_slope)
            if self._swing_clearance(plan, curve, nxt.t_ic) >= 0.02:
                break
            late_knee += math.radians(6.0)
            mid_knee += math.radians(8.0)
            lift += math.radians(2.0)
        self._swings[plan.index] = curve
        if len(self._swings) > 32:
            self._swings.popitem(last=False)
        return curve

    def _swing_clearance(self, plan: StepPlan, curve: Pchip, t_next: float) -> float:
        """Lowest heel or toe height over the swing, leaving out its first and last 8 %."""
        lowest = math.inf
        for u in np.linspace(0.08, 0.92, 22):
            t = plan.t_to + u * (t_next - plan.t_to)
            _, hips, _ = self.pelvis(t)
            _, ankle, angle = self.leg_fk(hips[plan.side], LegState(*curve(float(u))))
            heel, toe = self.foot_points(ankle, angle)
            lowest = min(lowest, heel[2], toe[2])
        return lowest

    # -- whole body -----------------------------------------------------------------------
    def skeleton(self, t: float) -> Skeleton:
        if self.gait == "stand":
            return self._standing(t)
        plans = [self.last_contact(s, t) for s in (0, 1)]
        stance_feet: list[Optional[tuple[np.ndarray, float]]] = [
            self.stance_foot(plans[s], t) if t < plans[s].t_to else None for s in (0, 1)
        ]
        hip_mid, hips, phase = self.pelvis(t, [None if f is None else f[0] for f in stance_feet])
        joints = np.zeros((NUM_LANDMARKS, 3))
        for s in (0, 1):
            foot = stance_feet[s]
            if foot is not None:
                state = self.leg_ik(hips[s], foot[0], foot[1])
            else:
                plan = plans[s]
                nxt_ic = self.ic_time(plan.index + 2)
                u = (t - plan.t_to) / (nxt_ic - plan.t_to)
                state = LegState(*self.swing_curve(plan)(u))
            knee, ankle, foot_angle = self.leg_fk(hips[s], state)
            if foot is None:
                knee, ankle = self._clear_belt(hips[s], knee, ankle, foot_angle, u)
            joints[HIP_IDX[s]] = hips[s]
            joints[KNEE_IDX[s]] = knee
            joints[ANKLE_IDX[s]] = ankle
            heel, toe = self.foot_points(ankle, foot_angle)
            joints[HEEL_IDX[s]] = heel
            joints[TOE_IDX[s]] = toe
        stance = (stance_feet[0] is not None, stance_feet[1] is not None)
        low_at = LOW_AT * self._posture_at(t)[1] / self.step_s
        return self._upper_body(t, joints, hip_mid, phase, low_at, stance)

    def _clear_belt(
        self, hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, foot_angle: float, u: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raise a swing foot that would touch the belt (bending the knee), smoothly in u."""
        floor = SWING_CLEARANCE_M * smoothstep(min(u / 0.12, (1.0 - u) / 0.12, 1.0))
        heel, toe = self.foot_points(ankle, foot_angle)
        low = min(heel[2], toe[2])
        if low >= floor:
            return knee, ankle
        raised = ankle + np.array([0.0, 0.0, floor - low])
        knee, ankle, _ = self.leg_fk(hip, self.leg_ik(hip, raised, foot_angle))
        return knee, ankle

    def foot_points(self, ankle: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
        """Heel and toe tip (foot_index) at sole level: on the belt they are at z = 0."""
        body = self.body
        u = np.array([math.cos(angle), 0.0, math.sin(angle)])
        w = np.array([-math.sin(angle), 0.0, math.cos(angle)])
        heel = ankle - body.heel_back * u - body.ankle_height * w
        toe = ankle + body.toe_front * u - body.ankle_height * w
        return heel, toe

    def _trunk_values(self, t: float) -> tuple[float, float, float]:
        """Trunk lean, shoulder roll amplitude and shoulder elevation, eased over 1 s at fix_at."""
        p = self.params
        if p.fix_at is None:
            return p.trunk_lean, p.shoulder_sway, p.shoulder_elevation
        clean = p.clean()
        w = smoothstep(t - p.fix_at)
        return (
            p.trunk_lean + w * (clean.trunk_lean - p.trunk_lean),
            p.shoulder_sway + w * (clean.shoulder_sway - p.shoulder_sway),
            p.shoulder_elevation + w * (clean.shoulder_elevation - p.shoulder_elevation),
        )

    def _upper_body(
        self,
        t: float,
        joints: np.ndarray,
        hip_mid: np.ndarray,
        phase: float,
        low_at: float,
        stance: tuple[bool, bool],
        arm_swing: Optional[float] = None,
    ) -> Skeleton:
        body = self.body
        lean_deg, sway_deg, elevation = self._trunk_values(t)
        stride_wave = math.cos(math.pi * (phase - low_at))
        lean = math.radians(lean_deg) + math.radians(1.0) * math.cos(2 * math.pi * phase)
        roll = math.radians(sway_deg) * 0.5 * stride_wave
        yaw = math.radians(7.0 if self.gait == "run" else 4.0) * math.cos(math.pi * phase)
        torso_rot = rot_z(yaw) @ rot_y(lean) @ rot_x(roll)
        neck_base = hip_mid + torso_rot @ np.array([0.0, 0.0, body.torso])
        lift = elevation * 0.04 * body.height
        shoulder_mid = neck_base + torso_rot @ np.array([0.0, 0.0, lift])
        for s in (0, 1):
            joints[SHOULDER_IDX[s]] = shoulder_mid + torso_rot @ np.array(
                [0.0, SIDE_SIGN[s] * body.shoulder_half * (1.0 - 0.12 * elevation), 0.0]
            )
        # Arms swing against the legs: the left arm is back when the left leg is forward.
        if arm_swing is None:
            arm_swing = math.radians(32.0 if self.gait == "run" else 18.0)
        elbow_base = math.radians(85.0 if self.gait == "run" else 25.0)
        for s in (0, 1):
            leg_forward = math.cos(math.pi * (phase - s - 0.15))
            swing = -math.radians(8.0) - arm_swing * leg_forward
            elbow = elbow_base + math.radians(12.0 if self.gait == "run" else 10.0) * -leg_forward
            inward = -SIDE_SIGN[s]
            upper = np.array([math.sin(swing), inward * 0.08, -math.cos(swing)])
            upper /= np.linalg.norm(upper)
            fore_angle = swing + elbow
            fore = np.array(
                [
                    math.sin(fore_angle),
                    inward * (0.35 if self.gait == "run" else 0.1),
                    -math.cos(fore_angle),
                ]
            )
            fore /= np.linalg.norm(fore)
            shoulder = joints[SHOULDER_IDX[s]]
            elbow_pos = shoulder + torso_rot @ (upper * body.upper_arm)
            wrist = elbow_pos + torso_rot @ (fore * body.forearm)
            fore_w = torso_rot @ fore
            side_w = torso_rot @ np.array([0.0, SIDE_SIGN[s], 0.0])
            up_w = cross(fore_w, side_w)
            joints[ELBOW_IDX[s]] = elbow_pos
            joints[WRIST_IDX[s]] = wrist
            joints[INDEX_IDX[s]] = wrist + body.hand * (0.9 * fore_w - 0.35 * side_w)
            joints[PINKY_IDX[s]] = wrist + body.hand * (0.75 * fore_w + 0.3 * side_w)
            joints[THUMB_IDX[s]] = wrist + body.hand * (0.6 * fore_w - 0.45 * side_w + 0.2 * up_w)
        # The head stays nearly upright whatever the trunk does.
        head_rot = rot_z(yaw * 0.3) @ rot_y(0.25 * lean) @ rot_x(0.3 * roll)
        head_centre = (
            neck_base
            + torso_rot @ np.array([0.02 * body.height, 0.0, 0.0])
            + head_rot @ np.array([0.0, 0.0, body.neck])
        )
        face = _FACE_POINTS * body.height
        face_world = head_centre + face @ head_rot.T
        joints[: len(_FACE_POINTS)] = face_world
        return Skeleton(
            joints=joints,
            head_centre=head_centre,
            head_rotation=head_rot,
            torso_rotation=torso_rot,
            hip_mid=hip_mid,
            neck_base=neck_base,
            stance=stance,
        )

    def _standing(self, t: float) -> Skeleton:
        body = self.body
        sway = 0.01 * math.sin(2 * math.pi * 0.23 * t)
        hip_mid = np.array([RUNNER_X + sway, 0.004 * math.sin(2 * math.pi * 0.11 * t), 0.0])
        hip_mid[2] = body.ankle_height + body.reach(math.radians(4.0))
        joints = np.zeros((NUM_LANDMARKS, 3))
        for s in (0, 1):
            hip = hip_mid + np.array([0.0, SIDE_SIGN[s] * body.hip_half, 0.0])
            ankle = np.array(
                [RUNNER_X + 0.01, SIDE_SIGN[s] * body.foot_half * 1.4, body.ankle_height]
            )
            state = self.leg_ik(hip, ankle, 0.0)
            knee, ankle, angle = self.leg_fk(hip, state)
            heel, toe = self.foot_points(ankle, angle)
            joints[HIP_IDX[s]], joints[KNEE_IDX[s]], joints[ANKLE_IDX[s]] = hip, knee, ankle
            joints[HEEL_IDX[s]], joints[TOE_IDX[s]] = heel, toe
        return self._upper_body(t, joints, hip_mid, 0.5, 0.0, (True, True), arm_swing=0.02)


# Face landmarks in the head frame (x forward, y left, z up) as fractions of body height,
# BlazePose order 0..10: nose, left eye inner/centre/outer, right eye inner/centre/outer,
# left ear, right ear, mouth left, mouth right.
_FACE_POINTS = np.array(
    [
        [0.062, 0.0, -0.008],
        [0.052, 0.010, 0.010],
        [0.050, 0.019, 0.010],
        [0.046, 0.028, 0.010],
        [0.052, -0.010, 0.010],
        [0.050, -0.019, 0.010],
        [0.046, -0.028, 0.010],
        [0.0, 0.044, 0.0],
        [0.0, -0.044, 0.0],
        [0.051, 0.014, -0.030],
        [0.051, -0.014, -0.030],
    ]
)
