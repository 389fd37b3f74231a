"""The synthetic runner: its source string, determinism, the truth it measures, the pose model."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_truth import CONTACT_EPS_M, FrameTruths, SyntheticTruth, occlusion, simulate_truth

from coachd.capture.synthetic import SyntheticSource, parse_spec
from coachd.capture.synthetic.kinematics import HEEL_IDX, TOE_IDX
from coachd.capture.synthetic.params import SyntheticParams
from coachd.errors import SourceError
from coachd.gait import foot_strike
from coachd.messages import BODY_LANDMARKS, VIEWS, Stride

TRUTH_SECONDS = 12


def truth_of(query: str, seconds: float = TRUTH_SECONDS) -> SyntheticTruth:
    return simulate_truth(parse_spec(f"synthetic:?{query}&seconds={seconds:g}"))


def values(steps: list[Stride], key: str, side: str = "") -> np.ndarray:
    return np.array(
        [s.metrics[key] for s in steps if key in s.metrics and (not side or s.side == side)]
    )


# -- the source string ------------------------------------------------------------------


def test_defaults_are_a_clean_runner() -> None:
    params = parse_spec("synthetic:")
    assert params == parse_spec("synthetic:?")
    assert params.gait == "run" and params.cadence == 170 and params.speed == 10
    assert params.strike == "midfoot" and params.seconds is None and params.fps == 30
    assert (params.width, params.height) == (640, 480)


def test_every_option_parses() -> None:
    params = parse_spec(
        "synthetic:?view=side-right&cadence=165&speed=11.5&overstride=0.3&trunk_lean=15"
        "&shoulder_sway=8&shoulder_elevation=0.5&strike=heel&heel_recovery=0.4&knee_lift=50"
        "&bounce=0.1&duty=0.3&asym=0.2&jitter=0&seconds=60&fps=60&width=800&height=600"
        "&distance=4&camera_height=1.2&runner_height=1.8&seed=7&shirt=ff0000&shorts=navy"
        "&skin=fair&hair=black&shoes=white&background=%23808080&absent=10-20&walker=1&fix_at=30"
    )
    assert params.view == "side-right" and params.cadence == 165 and params.speed == 11.5
    assert params.overstride == 0.3 and params.strike == "heel" and params.seconds == 60
    assert params.shirt == (0, 0, 255)  # BGR
    assert params.absent == (10.0, 20.0) and params.walker and params.fix_at == 30


def test_walking_gets_walking_defaults_and_keeps_what_is_given() -> None:
    walk = parse_spec("synthetic:?gait=walk")
    assert walk.cadence < 130 and walk.speed <= 6 and walk.strike == "heel"
    assert parse_spec("synthetic:?gait=walk&cadence=120").cadence == 120


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("synthetic:?colour=red", "colour"),
        ("synthetic:?cadence=fast", "cadence"),
        ("synthetic:?cadence=400", "400"),
        ("synthetic:?view=top", "side-left"),
        ("synthetic:?strike=toe", "forefoot"),
        ("synthetic:?shirt=zzzzzz", "shirt"),
        ("synthetic:?absent=5-2", "absent"),
        ("synthetic:?absent=5", "A-B"),
        ("synthetic:?seconds", "seconds"),
        ("synthetic:?seed=1&seed=2", "twice"),
        ("synthetic:?width=12", "width"),
        ("synthetic:?walker=maybe", "walker"),
        ("synthetic:?speed=2", "gait=walk"),
        ("synthetic:?gait=walk&speed=12", "gait=run"),
        ("synthetic:view=front", "synthetic:?key=value"),
        ("synthetics:?view=front", "synthetic:"),
    ],
)
def test_bad_options_are_one_clear_line(spec: str, named: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_spec(spec)
    message = str(caught.value)
    assert named in message and "\n" not in message


def test_from_spec_reports_bad_options_too() -> None:
    with pytest.raises(SourceError, match="overstride"):
        SyntheticSource.from_spec("synthetic:?overstride=2", False)


# -- frames and determinism --------------------------------------------------------------


def test_same_spec_same_images_and_truth_other_seed_other_run() -> None:
    spec = "synthetic:?view=front&seconds=0.5&walker=1&seed=4"
    source = SyntheticSource.from_spec(spec, False)
    first = list(source)
    second = list(SyntheticSource.from_spec(spec, False))
    assert len(first) == len(second) == 15
    # The truth is simulated again from the parameters: it is the skeleton the source drew.
    truths = FrameTruths(source.params)
    for a, b in zip(first, second):
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(truths.at(a.t).joints_3d, source.model.skeleton(a.t).joints)
    other = simulate_truth(parse_spec("synthetic:?seconds=3&seed=5"))
    same = simulate_truth(parse_spec("synthetic:?seconds=3&seed=4"))
    assert not np.allclose(other.joints, same.joints)


def test_frames_carry_simulation_time() -> None:
    with SyntheticSource.from_spec(
        "synthetic:?seconds=1&fps=25&width=320&height=240", False
    ) as src:
        assert src.finite and not src.live and src.nominal_fps == 25
        frames = list(src)
    assert [f.seq for f in frames] == list(range(25))
    assert [f.t for f in frames] == [i / 25 for i in range(25)]
    assert frames[0].size == (320, 240) and frames[0].image.dtype == np.uint8


def test_endless_without_seconds_and_realtime_paces_frames() -> None:
    endless = SyntheticSource.from_spec("synthetic:?width=320&height=240", False)
    assert not endless.finite
    assert all(endless.read() is not None for _ in range(3))
    paced = SyntheticSource.from_spec("synthetic:?seconds=0.3&fps=30&width=320&height=240", True)
    times = [f.t for f in paced]
    assert len(times) == 9
    # Released no earlier than due: the run takes at least its own length.
    assert times[-1] - times[0] >= 8 / 30 - 1e-3
    assert all(b > a for a, b in zip(times, times[1:]))


def test_in_frame_is_false_exactly_for_joints_outside_the_image() -> None:
    # A close camera cuts off the head and the feet.
    src = SyntheticSource.from_spec("synthetic:?distance=1.3&seconds=1", False)
    frame = src.read()
    assert frame is not None
    truth = FrameTruths(src.params).at(frame.t)
    xy = truth.joints_2d
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < 640) & (xy[:, 1] >= 0) & (xy[:, 1] < 480)
    assert np.array_equal(truth.in_frame, inside)
    assert not inside.all() and inside.any()


def test_runner_away_between_absent_times() -> None:
    spec = "synthetic:?absent=1-2&seconds=3"
    truth = simulate_truth(parse_spec(spec))
    away = (truth.t >= 1) & (truth.t < 2)
    assert not truth.present[away].any() and truth.present[~away].all()
    assert not truth.contact[away].any()
    assert not [e for e in truth.events if 1.0 <= e.t <= 2.0]
    src = SyntheticSource.from_spec(spec, False)
    frames = list(src)
    empty = frames[45]
    assert not FrameTruths(src.params).at(empty.t).in_frame.any()
    # Nobody drawn: the frame differs from the scene only by the moving belt.
    assert not np.array_equal(frames[15].image, empty.image)


# -- truth measured on the skeleton ------------------------------------------------------


def test_contact_is_the_foot_on_the_belt_moving_back_at_belt_speed() -> None:
    truth = truth_of("speed=12&cadence=175", 6)
    dt = 1 / 30
    for s in (0, 1):
        low = np.minimum(truth.joints[:, HEEL_IDX[s], 2], truth.joints[:, TOE_IDX[s], 2])
        assert (low[truth.contact[:, s]] <= CONTACT_EPS_M).all()
        assert (low[~truth.contact[:, s]] > CONTACT_EPS_M).all()
        assert (low > -1e-6).all()  # never through the belt
        for idx in (HEEL_IDX[s], TOE_IDX[s]):
            z = truth.joints[:, idx, 2]
            both = (z[:-1] <= 1e-6) & (z[1:] <= 1e-6)
            speed = -np.diff(truth.joints[:, idx, 0])[both] / dt
            assert len(speed) > 5
            assert speed == pytest.approx(12 / 3.6, abs=1e-3)
    contacts = [e for e in truth.events if e.kind == "contact"]
    for event in contacts:
        i = round(float(event.t * 30))
        side = 0 if event.side == "left" else 1
        assert truth.contact[i, side] and not truth.contact[i - 1, side]
    assert values(truth.steps, "belt_speed_kmh") == pytest.approx(12.0, abs=0.01)


@pytest.mark.parametrize("cadence", [150, 170, 182])
def test_cadence_truth_matches_the_parameter(cadence: int) -> None:
    truth = truth_of(f"cadence={cadence}", 20)
    contacts = [e.t for e in truth.events if e.kind == "contact"]
    measured = 60 * (len(contacts) - 1) / (contacts[-1] - contacts[0])
    assert measured == pytest.approx(cadence, abs=0.5)
    sides = [s.side for s in truth.steps]
    assert all(a != b for a, b in zip(sides, sides[1:]))  # left and right alternate


def test_running_has_flight_and_walking_double_support() -> None:
    run = truth_of("gait=run", 6)
    walk = truth_of("gait=walk", 6)
    assert not (run.contact[:, 0] & run.contact[:, 1]).any()
    assert (~run.contact[:, 0] & ~run.contact[:, 1]).mean() > 0.15
    assert (walk.contact[:, 0] & walk.contact[:, 1]).mean() > 0.05
    assert not (~walk.contact[:, 0] & ~walk.contact[:, 1]).any()
    duty = values(run.steps, "duty_factor")
    assert 0.25 <= duty.mean() <= 0.42
    assert values(walk.steps, "duty_factor").mean() > 0.5
    stand = truth_of("gait=stand", 3)
    assert stand.contact.all() and not stand.events and not stand.steps


def test_at_contact_truth_is_read_at_the_instant_of_contact() -> None:
    # An overstriding shank turns ~15 deg in the frame after a heel landing: read on the first
    # frame down, the truth would move with the frame rate; read at the instant, it does not.
    query = "overstride=0.3&strike=heel"
    coarse = truth_of(f"{query}&fps=30", 4)
    fine = truth_of(f"{query}&fps=240", 4)
    compared = 0
    for step in coarse.steps:
        same = [s for s in fine.steps if s.side == step.side and abs(s.t - step.t) < 1 / 30]
        for key in ("shank_angle_deg", "foot_angle_deg"):
            assert step.metrics[key] == pytest.approx(same[0].metrics[key], abs=1.0), key
        assert step.metrics["overstride_ratio"] == pytest.approx(
            same[0].metrics["overstride_ratio"], abs=0.01
        )
        if "contact_time_ms" in step.metrics:
            # From touchdown to lift-off: frame to frame it would read up to a frame short.
            assert step.metrics["contact_time_ms"] == pytest.approx(
                same[0].metrics["contact_time_ms"], abs=1.0
            )
        compared += 1
    assert compared >= 8


def test_overstride_trunk_lean_and_strike_follow_the_parameters() -> None:
    clean = truth_of("")
    faulty = truth_of("overstride=0.3&trunk_lean=15&strike=heel")
    assert values(clean.steps, "overstride_ratio").mean() == pytest.approx(0.10, abs=0.03)
    assert values(faulty.steps, "overstride_ratio").mean() == pytest.approx(0.30, abs=0.03)
    assert values(faulty.steps, "shank_angle_deg").mean() > (
        values(clean.steps, "shank_angle_deg").mean() + 5
    )
    assert values(clean.steps, "trunk_lean_deg").mean() == pytest.approx(6.0, abs=1.0)
    assert values(faulty.steps, "trunk_lean_deg").mean() == pytest.approx(15.0, abs=1.0)
    assert (values(faulty.steps, "foot_angle_deg") > 5).all()
    assert {foot_strike(a) for a in values(faulty.steps, "foot_angle_deg")} == {"heel"}
    assert {foot_strike(a) for a in values(clean.steps, "foot_angle_deg")} == {"midfoot"}
    forefoot = truth_of("strike=forefoot", 6)
    assert (values(forefoot.steps, "foot_angle_deg") < -5).all()


def test_shoulders_knees_heels_and_bounce_follow_the_parameters() -> None:
    clean = truth_of("", 8)
    changed = truth_of(
        "shoulder_sway=8&shoulder_elevation=1&knee_lift=55&heel_recovery=0.4&bounce=0.12", 8
    )
    assert values(clean.steps, "shoulder_tilt_p2p_deg").mean() < 3
    assert values(changed.steps, "shoulder_tilt_p2p_deg").mean() == pytest.approx(8, abs=1.0)
    assert (
        values(changed.steps, "shoulder_sway_ratio").mean()
        > 2 * values(clean.steps, "shoulder_sway_ratio").mean()
    )
    assert (
        values(changed.steps, "shoulder_elevation_ratio").mean()
        < 0.8 * values(clean.steps, "shoulder_elevation_ratio").mean()
    )
    assert values(changed.steps, "knee_lift_deg").mean() == pytest.approx(55, abs=3)
    assert values(clean.steps, "knee_lift_deg").mean() == pytest.approx(40, abs=3)
    assert values(changed.steps, "heel_recovery_ratio").mean() == pytest.approx(0.4, abs=0.05)
    assert values(clean.steps, "heel_recovery_ratio").mean() == pytest.approx(0.55, abs=0.05)
    assert values(changed.steps, "vertical_oscillation_ratio").mean() == pytest.approx(
        0.12, abs=0.015
    )
    assert values(clean.steps, "vertical_oscillation_ratio").mean() == pytest.approx(
        0.08, abs=0.015
    )


def test_asymmetry_lengthens_one_contact() -> None:
    truth = truth_of("asym=0.25", 10)
    left = values(truth.steps, "contact_time_ms", "left").mean()
    right = values(truth.steps, "contact_time_ms", "right").mean()
    assert right > 1.12 * left


def test_fix_at_returns_faults_to_clean() -> None:
    truth = truth_of("overstride=0.35&trunk_lean=16&strike=heel&fix_at=6", 12)
    before = [s for s in truth.steps if s.t < 5.5]
    after = [s for s in truth.steps if s.t > 7.5]
    assert values(before, "overstride_ratio").mean() > 0.3
    assert values(after, "overstride_ratio").mean() < 0.15
    assert values(before, "trunk_lean_deg").mean() > 14
    assert values(after, "trunk_lean_deg").mean() < 8
    assert {foot_strike(a) for a in values(after, "foot_angle_deg")} == {"midfoot"}


def test_each_frames_truth_is_the_runs_truth() -> None:
    src = SyntheticSource.from_spec("synthetic:?seconds=4", False)
    run = simulate_truth(src.params)
    assert len(run.steps) >= 10
    truths = FrameTruths(src.params)
    flags = [truths.at(f.t).in_contact for f in src]
    assert [tuple(c) for c in run.contact.tolist()] == flags
    with pytest.raises(ValueError):
        simulate_truth(SyntheticParams())


def test_the_drawn_shoe_runs_from_the_truth_heel_to_the_truth_toe_on_the_sole() -> None:
    # Side view, near (right) foot at its contacts: the shoe's upper (the only saturated blue
    # near the foot) fills its back and front thirds above the heel->toe line, with a sole
    # beneath it, and nothing of the shoe hangs below that line, which is where the truth
    # heel and foot_index sit.
    src = SyntheticSource.from_spec("synthetic:?view=side-right&seconds=3", False)
    events = simulate_truth(src.params).events
    contacts = {round(e.t, 6) for e in events if e.side == "right" and e.kind == "contact"}
    truths = FrameTruths(src.params)
    checked = 0
    for frame in src:
        if round(frame.t, 6) not in contacts:
            continue
        truth = truths.at(frame.t)
        heel, toe = truth.joints_2d[HEEL_IDX[1]], truth.joints_2d[TOE_IDX[1]]
        span = float(toe[0] - heel[0])
        assert span > 30  # the runner faces image-right; a shoe tens of pixels long
        img = frame.image.astype(int)
        upper = (img[..., 0] > img[..., 2] + 40) & (img[..., 0] > img[..., 1] + 25)
        cols = np.arange(int(heel[0]), int(toe[0]) + 1)
        line_y = heel[1] + (cols - heel[0]) * (toe[1] - heel[1]) / span
        above = [
            upper[int(y) - int(0.45 * span) : int(y) - 2, c].any() for c, y in zip(cols, line_y)
        ]
        third = len(cols) // 3
        assert np.mean(above[:third]) > 0.8 and np.mean(above[-third:]) > 0.6
        below = [upper[int(y) + 2 : int(y) + 8, c].any() for c, y in zip(cols, line_y)]
        assert not any(below)
        # A sole of visible thickness under the upper: no upper colour just above the line.
        for frac in (0.15, 0.5, 0.85):
            c = int(heel[0] + frac * span)
            y = int(heel[1] + frac * (toe[1] - heel[1]))
            assert not upper[y - 1 : y + 2, c].any()
        checked += 1
    assert checked >= 2


# -- the real pose model finds the drawn runner ------------------------------------------


@pytest.mark.parametrize("view", VIEWS)
def test_blazepose_finds_the_runner_in_every_view(view: str) -> None:
    from coachd.pose import create_tracker
    from coachd.settings import PoseSettings

    src = SyntheticSource.from_spec(f"synthetic:?view={view}&seconds=3", False)
    tracker = create_tracker(PoseSettings(smoothing=False))
    found = 0
    errors = []
    frames = list(src)
    truths = FrameTruths(src.params)
    try:
        for frame in frames:
            tracked = tracker.track(frame)
            if tracked.pose is None:
                continue
            found += 1
            truth = truths.at(frame.t)
            body = np.array(BODY_LANDMARKS)
            seen = truth.in_frame[body]
            gap = np.linalg.norm(tracked.pose.xy[body] - truth.joints_2d[body], axis=1)
            errors.append(float(np.median(gap[seen])))
    finally:
        tracker.close()
    assert found >= 0.99 * len(frames)
    # Median landmark error well under a tenth of the runner's height in the image.
    runner_px = 0.84 * 480
    assert float(np.median(errors)) < 0.06 * runner_px


def test_walker_passes_behind_then_in_front_and_hides_the_runner_only_in_front() -> None:
    src = SyntheticSource.from_spec("synthetic:?walker=1&seconds=24", False)
    behind = [occlusion(src, i / 10) for i in range(20, 100)]  # the first pass, behind
    in_front = [occlusion(src, i / 10) for i in range(160, 240)]
    assert max(behind) == 0.0
    assert max(in_front) > 0.5
    alone = SyntheticSource.from_spec("synthetic:?seconds=24", False)
    assert occlusion(alone, 19.0) == 0.0
    # The walker is drawn: the same moment differs from the run without it.
    assert not np.array_equal(src.render(5.0), alone.render(5.0))
