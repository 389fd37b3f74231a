"""Variety in the synthetic runner: each option parses, draws, and leaves the default alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from synthetic_truth import simulate_skeletons

from coachd.capture.synthetic import SyntheticSource, parse_spec
from coachd.capture.synthetic.kinematics import ANKLE_IDX, HIP_IDX, KNEE_IDX
from coachd.capture.synthetic.params import KEYS
from coachd.capture.synthetic.variety import draw_variety
from coachd.errors import SourceError

SMALL = "width=320&height=240"
# Each new option at a value other than its default.
OPTIONS = (
    "leg_ratio=1.12",
    "build=1.4",
    "style=plain",
    "legwear=long_shorts",
    "legwear=tights",
    "legwear=trousers",
    "legwear=baggy",
    "footwear=barefoot",
    "hair_style=long",
    "hair_style=none",
    "belt=white",
    "room=clutter",
    "light=0.5",
    "camera_tilt=8",
    "camera_roll=-6",
    "lens=0.6",
    "noise=6",
    "jpeg=40",
    "shutter=0.016",
    "occluder=rail",
    "occluder=panel",
    "bystander=left",
    "bystander=right",
)
# The same options at their defaults, spelled out.
DEFAULTS = (
    "leg_ratio=1&build=1&style=shaded&legwear=shorts&footwear=shoes&hair_style=short"
    "&belt=302d2d&room=plain&light=1&camera_tilt=0&camera_roll=0&lens=1&noise=0&jpeg=0"
    "&shutter=0&occluder=none&bystander=none"
)


def frame(query: str, t: float = 1.0) -> np.ndarray:
    return SyntheticSource.from_spec(f"synthetic:?{SMALL}&{query}", False).render(t)


def test_the_defaults_spelled_out_draw_the_same_runner() -> None:
    for t in (0.0, 0.4, 1.3):
        assert np.array_equal(frame("seed=0", t), frame(DEFAULTS, t))


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_changes_the_picture_and_draws_the_same_twice(option: str) -> None:
    image = frame(option)
    assert not np.array_equal(image, frame("seed=0"))
    assert np.array_equal(image, frame(option))


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("synthetic:?leg_ratio=2", "leg_ratio"),
        ("synthetic:?build=thin", "build"),
        ("synthetic:?style=cartoon", "plain"),
        ("synthetic:?legwear=kilt", "baggy"),
        ("synthetic:?footwear=boots", "barefoot"),
        ("synthetic:?hair_style=mohawk", "long"),
        ("synthetic:?belt=zebra", "belt"),
        ("synthetic:?room=garden", "clutter"),
        ("synthetic:?light=3", "light"),
        ("synthetic:?camera_tilt=45", "camera_tilt"),
        ("synthetic:?camera_roll=90", "camera_roll"),
        ("synthetic:?lens=5", "lens"),
        ("synthetic:?noise=-1", "noise"),
        ("synthetic:?jpeg=5", "quality from 10 to 95"),
        ("synthetic:?shutter=1", "shutter"),
        ("synthetic:?occluder=wall", "panel"),
        ("synthetic:?bystander=2", "left"),
        ("synthetic:?vary=-3", "vary"),
    ],
)
def test_bad_variety_values_are_one_clear_line(spec: str, named: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_spec(spec)
    message = str(caught.value)
    assert named in message and "\n" not in message


def test_vary_draws_the_same_runner_from_the_same_seed_and_given_keys_win() -> None:
    assert parse_spec("synthetic:?vary=5") == parse_spec("synthetic:?vary=5")
    assert parse_spec("synthetic:?vary=5") != parse_spec("synthetic:?vary=6")
    given = parse_spec("synthetic:?vary=5&fps=30&style=plain&overstride=0.3")
    assert (given.fps, given.style, given.overstride) == (30.0, "plain", 0.3)
    assert given.vary == 5


def test_vary_covers_the_range_and_stays_clean() -> None:
    drawn = [parse_spec(f"synthetic:?vary={seed}") for seed in range(60)]
    assert {p.style for p in drawn} == {"shaded", "plain"}
    assert {p.width > p.height for p in drawn} == {True, False}  # landscape and portrait
    assert min(p.fps for p in drawn) <= 25 and max(p.fps for p in drawn) >= 120
    assert {p.occluder for p in drawn} == {"none", "rail", "panel"}
    assert len({p.legwear for p in drawn}) == 5 and "barefoot" in {p.footwear for p in drawn}
    assert all(set(draw_variety(seed)) <= set(KEYS) for seed in range(5))
    # Form faults are never drawn: a varied runner runs clean unless asked otherwise.
    # (A forefoot strike is a style, not a fault; a heel strike the pack corrects.)
    assert all(p.clean() == dataclasses.replace(p, strike="midfoot") for p in drawn)
    assert {p.strike for p in drawn} == {"midfoot", "forefoot"}


def test_longer_legs_keep_the_height_and_show_in_the_truth() -> None:
    def leg(query: str) -> float:
        joints = simulate_skeletons(parse_spec(f"synthetic:?{query}&seconds=0.1")).joints[0]
        return float(
            np.linalg.norm(joints[HIP_IDX[0]] - joints[KNEE_IDX[0]])
            + np.linalg.norm(joints[KNEE_IDX[0]] - joints[ANKLE_IDX[0]])
        )

    assert leg("leg_ratio=1.1") == pytest.approx(1.1 * leg("leg_ratio=1"), rel=1e-6)
    tall = parse_spec("synthetic:?leg_ratio=1.1")
    top = simulate_skeletons(tall, 0.1).joints[0][:, 2].max()
    assert top == pytest.approx(
        simulate_skeletons(parse_spec("synthetic:"), 0.1).joints[0][:, 2].max(), abs=0.03
    )


def test_motion_blur_smears_only_what_moves() -> None:
    sharp, blurred = frame("seed=0"), frame("shutter=0.02")
    moved = np.any(sharp != blurred, axis=2)
    assert 0 < moved.mean() < 0.1  # the runner and the belt, not the room
    assert np.array_equal(sharp[:10], blurred[:10])  # the wall above the runner's head


def test_the_bystander_is_partly_in_view() -> None:
    source = SyntheticSource.from_spec("synthetic:?bystander=left", False)
    assert source.bystander is not None
    uv, depth = source.camera.project(source.bystander.skeleton(1.0).joints)
    inside = source.camera.inside(uv) & (depth > 0)
    assert 0.2 < inside.mean() < 0.9
