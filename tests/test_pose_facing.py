"""The pose stage mirrors a right-facing runner for the model and mirrors the landmarks back."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import run_coachd
from synthetic_truth import FrameTruths

from coachd.body import facing_sign, seen_mask
from coachd.capture.synthetic import SyntheticSource
from coachd.gait.view import frame_view
from coachd.messages import NUM_LANDMARKS, Landmark, Pose
from coachd.pose import create_tracker
from coachd.pose.facing import FacingWatch, mirror_pose
from coachd.pose.tracker import Tracker, mirrored_settings
from coachd.settings import PoseSettings

LEGS = {
    "left": (Landmark.LEFT_KNEE, Landmark.LEFT_ANKLE, Landmark.LEFT_HEEL, Landmark.LEFT_FOOT_INDEX),
    "right": (
        Landmark.RIGHT_KNEE,
        Landmark.RIGHT_ANKLE,
        Landmark.RIGHT_HEEL,
        Landmark.RIGHT_FOOT_INDEX,
    ),
}


def profile_pose(facing: int, width: int = 640) -> Pose:
    """A standing figure in profile (facing +1 image-right, -1 left, 0 towards the camera)."""
    rng = np.random.default_rng(3)
    xy = np.zeros((NUM_LANDMARKS, 2)) + rng.normal(0.0, 0.5, (NUM_LANDMARKS, 2))
    xy[:, 0] += 300.0
    xy[Landmark.LEFT_SHOULDER, 1] = xy[Landmark.RIGHT_SHOULDER, 1] = 150.0
    xy[Landmark.LEFT_HIP, 1] = xy[Landmark.RIGHT_HIP, 1] = 250.0
    xy[Landmark.LEFT_EAR, 1] = xy[Landmark.RIGHT_EAR, 1] = 110.0
    xy[Landmark.NOSE] = (300.0 + 20.0 * facing, 112.0)
    if facing == 0:
        xy[Landmark.LEFT_EAR, 0], xy[Landmark.RIGHT_EAR, 0] = 315.0, 285.0
    norm = np.zeros((NUM_LANDMARKS, 3))
    norm[:, 0], norm[:, 1] = xy[:, 0] / width, xy[:, 1] / 480.0
    return Pose(
        image_size=(width, 480),
        xy=xy.astype(np.float32),
        norm=norm.astype(np.float32),
        visibility=np.linspace(0.5, 1.0, NUM_LANDMARKS, dtype=np.float32),
        presence=np.ones(NUM_LANDMARKS, dtype=np.float32),
        world=np.tile(np.array([0.1, 0.2, 0.3], dtype=np.float32), (NUM_LANDMARKS, 1)),
    )


def test_mirroring_a_pose_flips_x_and_exchanges_the_sides() -> None:
    pose = profile_pose(+1)
    mirrored = mirror_pose(pose)
    assert mirrored.xy[Landmark.NOSE, 0] == pytest.approx(640.0 - pose.xy[Landmark.NOSE, 0])
    assert mirrored.xy[Landmark.LEFT_HIP, 0] == pytest.approx(
        640.0 - pose.xy[Landmark.RIGHT_HIP, 0]
    )
    assert (
        mirrored.visibility[Landmark.LEFT_FOOT_INDEX] == pose.visibility[Landmark.RIGHT_FOOT_INDEX]
    )
    assert mirrored.norm[Landmark.LEFT_EAR, 0] == pytest.approx(
        1.0 - pose.norm[Landmark.RIGHT_EAR, 0]
    )
    assert mirrored.world[Landmark.LEFT_KNEE, 0] == pytest.approx(
        -pose.world[Landmark.RIGHT_KNEE, 0]
    )
    twice = mirror_pose(mirrored)
    for field in ("xy", "norm", "world", "visibility", "presence"):
        np.testing.assert_allclose(getattr(twice, field), getattr(pose, field), atol=1e-4)
    assert facing_sign(pose.xy, seen_mask(pose)) == 1
    assert facing_sign(mirrored.xy, seen_mask(mirrored)) == -1
    assert mirrored.raw_xy is None
    # A smoothed pose's own (unsmoothed) landmarks are mirrored with it.
    smoothed = mirror_pose(replace(pose, raw_xy=pose.xy + 3.0))
    assert smoothed.raw_xy is not None
    np.testing.assert_allclose(smoothed.raw_xy, smoothed.xy - [3.0, -3.0], atol=1e-4)


def test_the_mirroring_and_the_side_view_read_one_facing_rule() -> None:
    for facing, view in ((+1, "side-right"), (-1, "side-left")):
        pose = profile_pose(facing)
        assert facing_sign(pose.xy, seen_mask(pose)) == facing
        assert frame_view(pose.xy, seen_mask(pose)) == view
    # A nose the model is unsure of tells neither stage which way the runner faces.
    pose = profile_pose(+1)
    unsure = pose.visibility.copy()
    unsure[Landmark.NOSE] = 0.2
    hidden = replace(pose, visibility=unsure)
    assert facing_sign(hidden.xy, seen_mask(hidden)) == 0
    assert frame_view(hidden.xy, seen_mask(hidden)) is None


def test_facing_watch_mirrors_a_right_facing_runner_and_not_a_frontal_one() -> None:
    watch = FacingWatch()
    t = 0.0
    for _ in range(40):  # 1.3 s facing the camera: never mirrored
        assert not watch.update(profile_pose(0), t)
        t += 1 / 30
    switched_at = None
    for _ in range(40):
        if watch.update(profile_pose(+1), t):
            switched_at = t
        t += 1 / 30
    assert watch.mirrored and switched_at is not None
    # A few frames the other way (a glance, a misread nose) do not switch it back ...
    for i in range(30):
        watch.update(profile_pose(-1 if i % 5 == 0 else +1), t)
        t += 1 / 30
    assert watch.mirrored
    # ... a runner who turns round does, and frames without a person count for nothing.
    for _ in range(40):
        watch.update(profile_pose(-1), t)
        watch.update(None, t + 1 / 60)
        t += 1 / 30
    assert not watch.mirrored
    watch.update(profile_pose(+1), t)
    watch.reset()
    assert not watch.mirrored


def test_the_treadmill_region_is_mirrored_with_the_image() -> None:
    settings = PoseSettings(treadmill_region=(0.1, 0.2, 0.4, 0.9))
    assert mirrored_settings(settings).treadmill_region == pytest.approx((0.6, 0.2, 0.9, 0.9))
    assert mirrored_settings(PoseSettings()).treadmill_region is None


def leg_on_its_own_side(tracked: list[Pose], truths: list[np.ndarray], side: str) -> float:
    """Share of frames whose `side` leg landmarks lie nearer that truth leg than the other."""
    other = "right" if side == "left" else "left"
    right = 0
    for pose, truth in zip(tracked, truths):
        own = np.linalg.norm(pose.xy[list(LEGS[side])] - truth[list(LEGS[side])], axis=1).mean()
        swapped = np.linalg.norm(pose.xy[list(LEGS[side])] - truth[list(LEGS[other])], axis=1)
        right += own < swapped.mean()
    return right / max(len(tracked), 1)


def test_a_right_facing_runner_is_tracked_on_the_mirrored_frame() -> None:
    # Through the real model: the near (right) leg of an overstriding heel striker facing
    # image-right stays on the right leg far more often once the tracker mirrors (unmirrored,
    # the model puts both legs' labels on the landing foot), and the landmarks come back in the
    # real image's coordinates (they agree with the drawn skeleton).  A midfoot runner's legs
    # are kept apart either way (0.90-0.91 of frames over three seeds).
    spec = "synthetic:?view=side-right&overstride=0.3&strike=heel&seconds=5"
    source = SyntheticSource.from_spec(spec, False)
    frames = list(source)
    frame_truths = FrameTruths(source.params)
    results = {}
    for mirror in (False, True):
        tracker = create_tracker(PoseSettings(mirror_right_facing=mirror))
        try:
            tracked = [tracker.track(frame) for frame in frames]
            assert isinstance(tracker, Tracker) and tracker.mirrored == mirror
        finally:
            tracker.close()
        later = [f for f in tracked[45:] if f.pose is not None]
        poses = [f.pose for f in later if f.pose is not None]
        truths = [frame_truths.at(f.t).joints_2d for f in later]
        assert len(poses) >= 100
        torso = np.median(
            [np.linalg.norm(t[Landmark.LEFT_SHOULDER] - t[Landmark.LEFT_HIP]) for t in truths]
        )
        error = np.median(
            [np.linalg.norm(p.xy[:25] - t[:25], axis=1).mean() for p, t in zip(poses, truths)]
        )
        results[mirror] = (leg_on_its_own_side(poses, truths, "right"), error / torso)
    unmirrored, mirrored = results[False], results[True]
    assert mirrored[1] < 0.08, results  # upper body within 8% of the torso: back in place
    assert mirrored[0] >= 0.9 and mirrored[0] > unmirrored[0], results


def analyze_json(source: Path, out: Path) -> dict[str, Any]:
    done = run_coachd("analyze", str(source), "--json", str(out), timeout=300)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_the_real_clip_mirrored_reads_like_the_real_clip(
    real_clip: Path, analysed_clip: dict[str, Any], tmp_path: Path
) -> None:
    # The same runner filmed from the other side (the clip flipped by ffmpeg) must read like
    # the clip itself: the tracker turns the frames back for the model.  Without that, the
    # flipped clip gave 16 strides instead of 25 and a contact time 33 ms longer.
    flipped = tmp_path / "flipped.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(real_clip), "-vf", "hflip", str(flipped)],
        check=True,
        timeout=120,
    )
    original = analysed_clip["json"]
    mirrored = analyze_json(flipped, tmp_path / "flipped.json")
    assert original["view"] == "side-left" and mirrored["view"] == "side-right"
    assert len(mirrored["strides"]) >= 0.9 * len(original["strides"])
    truth = json.loads(real_clip.with_suffix(".truth.json").read_text())["cadence_spm"]["value"]
    assert abs(mirrored["summary"]["cadence_spm"] - truth) <= 0.01 * truth
    # The mean over the steps: the near foot's contact times here are mostly whole frames
    # (its descent is too slow for the sub-frame fit), and over 9-13 of them the two medians
    # land a whole frame apart (233 and 267 ms) while the means agree within 5 ms.
    contact = [
        float(np.mean([s["contact_time_ms"] for s in run["strides"] if "contact_time_ms" in s]))
        for run in (mirrored, original)
    ]
    assert abs(contact[0] - contact[1]) < 1000.0 / 30.0, contact
