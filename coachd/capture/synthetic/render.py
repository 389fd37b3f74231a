"""Drawing the synthetic scene with OpenCV: room, treadmill and shaded people.

People are shaded capsules (rim, body, highlight) drawn far-to-near; the head carries hair,
eyes, nose and mouth because BlazePose's person detector looks for a face-like head. The room
and the treadmill's static parts are drawn once; a frame costs a copy plus the people.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from coachd.capture.synthetic.kinematics import (
    ANKLE_IDX,
    ELBOW_IDX,
    HEEL_IDX,
    HIP_IDX,
    INDEX_IDX,
    KNEE_IDX,
    PINKY_IDX,
    RUNNER_X,
    SHOULDER_IDX,
    TOE_IDX,
    WRIST_IDX,
    Body,
    Skeleton,
)
from coachd.capture.synthetic.params import (
    Colour,
    Footwear,
    HairStyle,
    Legwear,
    Occluder,
    Room,
    Style,
)
from coachd.capture.synthetic.projection import FLOOR_Z, Camera

SHIFT = 4  # sub-pixel bits for OpenCV's anti-aliased drawing
SCALE = float(1 << SHIFT)
LIGHT = np.array([-0.45, -0.89])  # light from the upper left, in image coordinates
BELT_HALF_WIDTH = 0.25
DECK_X = (-0.95, 0.75)
RAIL_HALF_SPACING = 0.4
RAIL_Z = 0.95
STRIPE_SPACING = 0.3
BELT: Colour = (45, 45, 48)
SLAT: Colour = (62, 62, 66)


# Shoe side profiles in foot lengths (heel landmark at (0, 0), foot_index at (1, 0)): a
# ~27 cm shoe ~9 cm high at the heel collar and ~5 cm at the toe box, on a sole ~3.6 cm thick
# at the heel and ~2.3 cm at the toe. Each piece is convex; together they give the collar dip
# below the ankle bone.
_SHOE_HEEL_UPPER = np.array(
    [
        [0.0, 0.13],
        [0.005, 0.2],
        [0.02, 0.28],
        [0.04, 0.34],
        [0.07, 0.355],
        [0.14, 0.3],
        [0.2, 0.13],
    ]
)
_SHOE_MID_UPPER = np.array(
    [
        [0.1, 0.12],
        [0.12, 0.235],
        [0.3, 0.24],
        [0.48, 0.29],
        [0.55, 0.2],
        [0.52, 0.11],
    ]
)
_SHOE_TOE_UPPER = np.array(
    [
        [0.42, 0.11],
        [0.45, 0.29],
        [0.58, 0.27],
        [0.75, 0.215],
        [0.88, 0.18],
        [0.955, 0.14],
        [0.99, 0.1],
        [0.985, 0.085],
        [0.9, 0.088],
    ]
)
_SHOE_MIDSOLE = np.array(
    [
        [-0.018, 0.04],
        [-0.01, 0.1],
        [0.005, 0.14],
        [0.3, 0.13],
        [0.7, 0.1],
        [0.96, 0.09],
        [0.995, 0.06],
        [0.98, 0.04],
    ]
)
_SHOE_OUTSOLE = np.array(
    [
        [0.01, 0.0],
        [-0.012, 0.012],
        [-0.018, 0.045],
        [0.6, 0.045],
        [0.985, 0.045],
        [1.0, 0.012],
        [0.985, 0.0],
    ]
)
SHOE_UPPER: Colour = (110, 60, 35)  # dark blue, unlike the skin, the belt, the rails and the wall
SHOE_MIDSOLE: Colour = (215, 215, 215)
SHOE_OUTSOLE: Colour = (30, 30, 32)


def _shoe_width(profile: np.ndarray) -> np.ndarray:
    """Half width of the shoe along its length (foot lengths): narrow heel, wide forefoot."""
    return np.interp(profile[:, 0], [0.0, 0.3, 0.7, 1.0], [0.13, 0.15, 0.19, 0.1])


# Bottom up: each piece's near side wall then hides the top face of the one below it.
_SHOE_PIECES = (
    (_SHOE_OUTSOLE, 1.04),
    (_SHOE_MIDSOLE, 1.04),
    (_SHOE_HEEL_UPPER, 1.0),
    (_SHOE_MID_UPPER, 1.0),
    (_SHOE_TOE_UPPER, 1.0),
)
_SHOE_POINTS = np.concatenate([profile for profile, _ in _SHOE_PIECES])
_SHOE_HALF_WIDTHS = np.concatenate([_shoe_width(p) * k for p, k in _SHOE_PIECES])
_SHOE_SLICES: tuple[tuple[int, int], ...] = tuple(
    (int(start), int(start) + len(p))
    for start, (p, _) in zip(np.cumsum([0] + [len(p) for p, _ in _SHOE_PIECES]), _SHOE_PIECES)
)
# The plain style's foot: a flat block from heel to toe, a quarter of its length high.
_BLOCK_POINTS = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.2], [0.0, 0.28]])
_BLOCK_HALF_WIDTHS = np.full(4, 0.16)
_BLOCK_SLICES: tuple[tuple[int, int], ...] = ((0, 4),)


@dataclass(frozen=True)
class Palette:
    shirt: Colour
    shorts: Colour
    skin: Colour
    hair: Colour
    shoes: Colour
    legwear: Legwear = "shorts"
    footwear: Footwear = "shoes"
    hair_style: HairStyle = "short"
    style: Style = "shaded"
    build: float = 1.0  # thickness of limbs and trunk

    @property
    def covered_legs(self) -> bool:
        """Legs in the shorts colour down to the ankle."""
        return self.legwear in _LEGWEAR_FIT


# How far down the thigh the shorts reach, and how much wider than the leg they are.
_SHORTS_LENGTH = {"shorts": 0.45, "long_shorts": 0.95}
# Legwear to the ankle, and the legs' thickness in it (thigh, shank): tights hug, baggy
# trousers hang wide.
_LEGWEAR_FIT = {"tights": (1.0, 1.0), "trousers": (1.12, 1.2), "baggy": (1.3, 1.7)}


@functools.lru_cache(maxsize=512)
def _shade(colour: Colour, factor: float) -> tuple[int, int, int]:
    return (
        int(min(255, colour[0] * factor)),
        int(min(255, colour[1] * factor)),
        int(min(255, colour[2] * factor)),
    )


def _pts(uv: np.ndarray) -> np.ndarray:
    return np.round(uv * SCALE).astype(np.int32)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return (round(float(float(p[0]) * SCALE)), round(float(float(p[1]) * SCALE)))


def _circle(img: np.ndarray, centre: np.ndarray, radius: float, colour: Colour) -> None:
    cv2.circle(
        img,
        (round(float(centre[0] * SCALE)), round(float(centre[1] * SCALE))),
        max(round(float(radius * SCALE)), 1),
        colour,
        -1,
        cv2.LINE_AA,
        SHIFT,
    )


def _poly(img: np.ndarray, uv: np.ndarray, colour: Colour) -> None:
    cv2.fillConvexPoly(img, _pts(uv), colour, cv2.LINE_AA, SHIFT)


def _capsule_layer(
    img: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    r0: float,
    r1: float,
    colour: Colour,
) -> None:
    # Plain floats: this runs ~150 times a frame and numpy's per-call cost would dominate.
    cv2.circle(
        img,
        (int(x0 * SCALE), int(y0 * SCALE)),
        max(int(r0 * SCALE), 1),
        colour,
        -1,
        cv2.LINE_AA,
        SHIFT,
    )
    cv2.circle(
        img,
        (int(x1 * SCALE), int(y1 * SCALE)),
        max(int(r1 * SCALE), 1),
        colour,
        -1,
        cv2.LINE_AA,
        SHIFT,
    )
    dx, dy = x1 - x0, y1 - y0
    n = math.hypot(dx, dy)
    if n > 1e-3:
        px, py = -dy / n * SCALE, dx / n * SCALE
        ax, ay, bx, by = x0 * SCALE, y0 * SCALE, x1 * SCALE, y1 * SCALE
        quad = np.array(
            [
                [ax + px * r0, ay + py * r0],
                [bx + px * r1, by + py * r1],
                [bx - px * r1, by - py * r1],
                [ax - px * r0, ay - py * r0],
            ],
            dtype=np.int32,
        )
        cv2.fillConvexPoly(img, quad, colour, cv2.LINE_AA, SHIFT)


def capsule(
    img: np.ndarray, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, colour: Colour
) -> None:
    """A limb: dark rim, body shifted towards the light, small highlight."""
    x0, y0, x1, y1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
    lx, ly = float(LIGHT[0]), float(LIGHT[1])
    _capsule_layer(img, x0, y0, x1, y1, r0, r1, _shade(colour, 0.55))
    a, b = 0.15 * r0, 0.15 * r1
    _capsule_layer(
        img, x0 + lx * a, y0 + ly * a, x1 + lx * b, y1 + ly * b, r0 * 0.8, r1 * 0.8, colour
    )
    a, b = 0.38 * r0, 0.38 * r1
    _capsule_layer(
        img,
        x0 + lx * a,
        y0 + ly * a,
        x1 + lx * b,
        y1 + ly * b,
        r0 * 0.35,
        r1 * 0.35,
        _shade(colour, 1.25),
    )


def flat_capsule(
    img: np.ndarray, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, colour: Colour
) -> None:
    """A limb in one flat colour (the plain style)."""
    x0, y0, x1, y1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
    _capsule_layer(img, x0, y0, x1, y1, r0, r1, colour)


def _hull(uv: np.ndarray) -> np.ndarray:
    """The convex hull of image points, as (n, 2) points."""
    return np.asarray(cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2))


def flat_hull(img: np.ndarray, uv: np.ndarray, colour: Colour) -> None:
    """The points' convex hull filled in one colour."""
    _poly(img, _hull(uv), colour)


def shaded_hull(img: np.ndarray, uv: np.ndarray, colour: Colour) -> None:
    """A convex body part with a darker edge and a lit centre."""
    hull = _hull(uv)
    _poly(img, hull, _shade(colour, 0.55))
    centre = hull.mean(axis=0)
    size = float(np.ptp(hull, axis=0).max())
    for scale, factor, shift in ((0.88, 1.0, 0.04), (0.5, 1.18, 0.12)):
        inner = centre + (hull - centre) * scale + LIGHT * shift * size
        _poly(img, inner, _shade(colour, factor))


def _fibonacci_sphere(count: int) -> np.ndarray:
    i = np.arange(count) + 0.5
    z = 1.0 - 2.0 * i / count
    r = np.sqrt(1.0 - z * z)
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


_SPHERE = _fibonacci_sphere(220)
# Hair covers the top and the back of the head (head frame: x forward, z up).
_HAIR_DIRS = _SPHERE[
    (_SPHERE[:, 2] > 0.5 - 0.4 * np.clip(-_SPHERE[:, 0], 0.0, 1.0) * 2.2)
    | ((_SPHERE[:, 0] < -0.25) & (_SPHERE[:, 2] > -0.45))
]


def _ellipse_ring(half_width: float, half_depth: float, z: float, n: int = 10) -> np.ndarray:
    a = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([half_depth * np.cos(a), half_width * np.sin(a), np.full(n, z)], axis=1)


class PersonPainter:
    """Draws one person (skeleton + palette) through a camera."""

    def __init__(self, body: Body, palette: Palette, camera: Camera) -> None:
        self.body = body
        self.palette = palette
        self.camera = camera
        self.plain = palette.style == "plain"
        self.limb = flat_capsule if self.plain else capsule
        self.hull = flat_hull if self.plain else shaded_hull
        h = body.height
        torso = body.torso
        if palette.build != 1.0:
            h *= palette.build  # cross-sections only: lengths come from the body
        # Torso cross-sections in the torso frame (x forward, y left, z up from hip_mid).
        self.shirt_rings = np.concatenate(
            [
                _ellipse_ring(0.085 * h, 0.06 * h, 0.12 * torso),
                _ellipse_ring(0.08 * h, 0.058 * h, 0.45 * torso),
                _ellipse_ring(0.095 * h, 0.065 * h, 0.78 * torso),
                _ellipse_ring(0.1 * h, 0.045 * h, 0.97 * torso),
            ]
        )
        # The hip joints sit in the front part of the pelvis: the seat reaches further back.
        seat = np.array([-0.02 * h, 0.0, 0.0])
        self.shorts_rings = np.concatenate(
            [
                _ellipse_ring(0.09 * h, 0.062 * h, -0.1 * torso) + seat,
                _ellipse_ring(0.087 * h, 0.06 * h, 0.2 * torso) + 0.5 * seat,
            ]
        )

    def parts(self, sk: Skeleton) -> list[tuple[float, Callable[[np.ndarray], None]]]:  # noqa: C901 (a branch per part)
        """(depth, draw) for every part; the caller sorts all people's parts far to near."""
        cam = self.camera
        body = self.body
        pal = self.palette
        h = body.height
        f = cam.focal
        uv, depth = cam.project(sk.joints)
        out: list[tuple[float, Callable[[np.ndarray], None]]] = []
        limb = self.limb
        thick = pal.build

        def px(radius_m: float, d: float) -> float:
            if thick != 1.0:
                radius_m *= thick
            return f * radius_m / max(d, 0.1)

        thigh_fit, shank_fit = _LEGWEAR_FIT.get(pal.legwear, (1.0, 1.0))
        shorts_length = _SHORTS_LENGTH.get(pal.legwear, 0.45)

        bias = 0.06  # limbs win ties against the trunk they hang from
        for s in (0, 1):
            far = 0.82 if self._is_far(sk, s) else 1.0
            hip, knee, ankle = HIP_IDX[s], KNEE_IDX[s], ANKLE_IDX[s]
            heel, toe = HEEL_IDX[s], TOE_IDX[s]
            leg_colour = pal.shorts if pal.covered_legs else pal.skin
            thigh_r = (px(0.042 * h, depth[hip]), px(0.032 * h, depth[knee]))
            shank_r = (px(0.03 * h, depth[knee]), px(0.02 * h, depth[ankle]))
            if pal.legwear in _LEGWEAR_FIT:
                thigh_r = (thigh_r[0] * thigh_fit, thigh_r[1] * thigh_fit)
                shank_r = (shank_r[0] * thigh_fit, shank_r[1] * shank_fit)
            shorts_end = uv[hip] + shorts_length * (uv[knee] - uv[hip])

            def thigh(
                img: np.ndarray,
                a: int = hip,
                b: int = knee,
                r: tuple[float, float] = thigh_r,
                e: np.ndarray = shorts_end,
                k: float = far,
                c: Colour = leg_colour,
            ) -> None:
                limb(img, uv[a], uv[b], r[0], r[1], _shade(c, k))
                limb(img, uv[a], e, r[0] * 1.12, r[0] * 1.05, _shade(pal.shorts, k))

            shoe_parts = self._shoe_parts(sk, s)

            def foot(
                img: np.ndarray,
                pieces: list[tuple[np.ndarray, Colour]] = shoe_parts,
                k: float = far * far,  # the far shoe stands in the legs' shadow
            ) -> None:
                for outline, colour in pieces[:2]:  # sole: flat, thin pieces
                    flat_hull(img, outline, _shade(colour, k))
                for outline, colour in pieces[2:]:
                    self.hull(img, outline, _shade(colour, k))

            def shank(
                img: np.ndarray,
                a: int = knee,
                b: int = ankle,
                r: tuple[float, float] = shank_r,
                k: float = far,
                c: Colour = leg_colour,
            ) -> None:
                limb(img, uv[a], uv[b], r[0], r[1], _shade(c, k))

            out.append((float(depth[[hip, knee]].mean()) - bias, thigh))
            out.append((float(depth[[knee, ankle]].mean()) - bias, shank))
            out.append((float(depth[[heel, toe]].mean()) - bias, foot))

            sh, el, wr = SHOULDER_IDX[s], ELBOW_IDX[s], WRIST_IDX[s]
            upper_r = (px(0.027 * h, depth[sh]), px(0.022 * h, depth[el]))
            fore_r = (px(0.021 * h, depth[el]), px(0.017 * h, depth[wr]))
            hand_c = 0.5 * (uv[wr] + 0.5 * (uv[INDEX_IDX[s]] + uv[PINKY_IDX[s]]))
            hand_r = px(0.027 * h, depth[wr])
            sleeve_end = uv[sh] + 0.45 * (uv[el] - uv[sh])

            def upper_arm(
                img: np.ndarray,
                a: int = sh,
                b: int = el,
                r: tuple[float, float] = upper_r,
                e: np.ndarray = sleeve_end,
                k: float = far,
            ) -> None:
                limb(img, uv[a], uv[b], r[0], r[1], _shade(pal.skin, k))
                limb(img, uv[a], e, r[0] * 1.2, r[0] * 1.1, _shade(pal.shirt, k))

            def forearm(
                img: np.ndarray,
                a: int = el,
                b: int = wr,
                r: tuple[float, float] = fore_r,
                c: np.ndarray = hand_c,
                rh: float = hand_r,
                k: float = far,
            ) -> None:
                limb(img, uv[a], uv[b], r[0], r[1], _shade(pal.skin, k))
                limb(img, uv[b], c, rh * 0.8, rh, _shade(pal.skin, k * 0.95))

            out.append((float(depth[[sh, el]].mean()) - bias, upper_arm))
            out.append((float(depth[[el, wr]].mean()) - bias, forearm))

        # Trunk: shorts and shirt hulls from the torso frame's cross-sections.
        rot = sk.torso_rotation
        shirt_world = sk.hip_mid + self.shirt_rings @ rot.T
        shirt_top = 0.5 * (sk.joints[SHOULDER_IDX[0]] + sk.joints[SHOULDER_IDX[1]])
        shoulder_pts = np.stack([sk.joints[SHOULDER_IDX[0]], sk.joints[SHOULDER_IDX[1]], shirt_top])
        shirt_uv, shirt_d = cam.project(np.concatenate([shirt_world, shoulder_pts]))
        shorts_uv, _ = cam.project(sk.hip_mid + self.shorts_rings @ rot.T)
        neck_uv, neck_d = cam.project(np.stack([sk.neck_base, sk.head_centre]))
        neck_r = px(0.036 * h, float(neck_d[0]))

        # A round neckline shows which way the chest faces.
        to_cam = cam.position - sk.neck_base
        neckline = None
        if float(np.dot(rot[:, 0], to_cam)) > 0.3 * float(np.linalg.norm(to_cam)):
            ring = _ellipse_ring(0.04 * h, 0.035 * h, 0.0, 12)
            ring = ring[ring[:, 0] > -0.2 * h * 0.035]
            ring[:, 2] = -0.05 * h * np.clip(ring[:, 0] / (0.035 * h), 0.0, 1.0) - 0.01 * h
            neckline, _ = cam.project(sk.neck_base + ring @ rot.T)

        def trunk(img: np.ndarray) -> None:
            limb(img, neck_uv[0], 0.5 * (neck_uv[0] + neck_uv[1]), neck_r, neck_r, pal.skin)
            self.hull(img, shorts_uv, pal.shorts)
            self.hull(img, shirt_uv, pal.shirt)
            if neckline is not None:
                flat_hull(img, neckline, _shade(pal.skin, 0.9))

        trunk_depth = float(shirt_d.mean())
        out.append((trunk_depth, trunk))
        head_depth = float(cam.project(sk.head_centre)[1])
        out.append((min(head_depth, trunk_depth) - 0.12, lambda img: self._head(img, sk)))
        return out

    def _is_far(self, sk: Skeleton, side: int) -> bool:
        """The limb on the side away from the camera (drawn a little darker)."""
        lateral = sk.joints[SHOULDER_IDX[side]] - sk.joints[SHOULDER_IDX[1 - side]]
        return float(np.dot(lateral, self.camera.viewing_direction)) > 0.05

    def _shoe_parts(self, sk: Skeleton, side: int) -> list[tuple[np.ndarray, Colour]]:
        """A running shoe as image outlines in drawing order: outsole, midsole, upper.

        The heel landmark is the back-bottom of the heel and foot_index the front tip of the
        toe box, both on the sole's underside, as BlazePose marks them on people.
        """
        j = sk.joints
        heel, toe = j[HEEL_IDX[side]], j[TOE_IDX[side]]
        along = toe - heel
        length = max(float(np.linalg.norm(along)), 1e-6)
        along = along / length
        lateral = np.array([-along[1], along[0], 0.0])
        if float(np.linalg.norm(lateral)) < 1e-6:
            lateral = np.array([0.0, 1.0, 0.0])
        lateral /= np.linalg.norm(lateral)
        up = np.cross(lateral, along)
        if up[2] < 0:
            up = -up

        pal = self.palette
        if self.plain:
            points, half_widths, slices = _BLOCK_POINTS, _BLOCK_HALF_WIDTHS, _BLOCK_SLICES
        else:
            points, half_widths, slices = _SHOE_POINTS, _SHOE_HALF_WIDTHS, _SHOE_SLICES
        # Every piece's outline at both side walls, projected in one call.
        base = heel + np.outer(points[:, 0] * length, along)
        base += np.outer(points[:, 1] * length, up)
        side_off = np.outer(half_widths * length, lateral)
        uv, _ = self.camera.project(np.concatenate([base + side_off, base - side_off]))
        wall_a, wall_b = uv[: len(base)], uv[len(base) :]
        if pal.footwear == "barefoot":
            colours: tuple[Colour, ...] = (_shade(pal.skin, 0.8),) + (pal.skin,) * 4
        elif self.plain:
            colours = (pal.shoes,)
        else:
            dark_shoes = sum(pal.shoes) < 3 * 128
            upper = pal.shoes if dark_shoes else SHOE_UPPER
            midsole = SHOE_MIDSOLE if dark_shoes else pal.shoes
            colours = (SHOE_OUTSOLE, midsole, upper, upper, upper)
        return [
            (np.concatenate([wall_a[i:j], wall_b[i:j]]), colour)
            for (i, j), colour in zip(slices, colours)
        ]

    def _head(self, img: np.ndarray, sk: Skeleton) -> None:
        cam = self.camera
        pal = self.palette
        body = self.body
        centre = sk.head_centre
        rot = sk.head_rotation
        radius = body.head_radius
        to_cam = cam.position - centre
        to_cam /= np.linalg.norm(to_cam)
        c_uv, c_d = cam.project(centre)
        r_px = cam.focal * radius / float(c_d)
        ax = (round(float(r_px * 0.9 * SCALE)), round(float(r_px * 1.12 * SCALE)))
        centre_px = (round(float(c_uv[0] * SCALE)), round(float(c_uv[1] * SCALE)))
        if pal.hair_style == "long":
            # Hair down to the shoulders, behind the head.
            back, up = -rot[:, 0], rot[:, 2]
            ends, _ = cam.project(
                np.stack([centre + back * 0.4 * radius, centre + (back * 0.7 - up * 2.0) * radius])
            )
            self.limb(img, ends[0], ends[1], r_px * 0.95, r_px * 0.6, pal.hair)
        # Jaw line leans with the face, so shape the head as an ellipse tilted like it.
        up_uv = cam.project(centre + rot[:, 2] * radius)[0] - c_uv
        angle = math.degrees(math.atan2(up_uv[0], -up_uv[1]))
        cv2.ellipse(
            img,
            centre_px,
            (ax[0] + 16, ax[1] + 16),
            -angle,
            0,
            360,
            _shade(pal.skin, 0.55),
            -1,
            cv2.LINE_AA,
            SHIFT,
        )
        cv2.ellipse(img, centre_px, ax, -angle, 0, 360, pal.skin, -1, cv2.LINE_AA, SHIFT)
        lit = (
            centre_px[0] + int(LIGHT[0] * r_px * 0.3 * SCALE),
            centre_px[1] + int(LIGHT[1] * r_px * 0.3 * SCALE),
        )
        cv2.ellipse(
            img,
            lit,
            (ax[0] // 2, ax[1] // 2),
            -angle,
            0,
            360,
            _shade(pal.skin, 1.12),
            -1,
            cv2.LINE_AA,
            SHIFT,
        )
        # Hair: the part of the scalp cap that faces the camera.
        dirs = _HAIR_DIRS @ rot.T
        visible = dirs @ to_cam > -0.05
        if pal.hair_style != "none" and visible.sum() >= 3:
            hair_uv, _ = cam.project(centre + dirs[visible] * radius * 1.08)
            flat_hull(img, hair_uv, pal.hair)
        forward = rot[:, 0]
        left = rot[:, 1]
        up = rot[:, 2]
        unit = cam.focal * radius / float(c_d)

        def on_face(fx: float, fy: float, fz: float) -> tuple[np.ndarray, float]:
            d = forward * fx + left * fy + up * fz
            d = d / np.linalg.norm(d)
            return centre + d * radius, float(np.dot(d, to_cam))

        # Ears at eye level, a little behind the middle of the head.
        for sign in (1.0, -1.0):
            ear, facing = on_face(-0.1, sign * 1.0, 0.05)
            if facing > -0.1:
                e_uv, e_d = cam.project(ear)
                er = cam.focal * radius * 0.2 / float(e_d)
                cv2.ellipse(
                    img,
                    _pt(e_uv),
                    (int(er * 0.7 * SCALE), int(er * SCALE)),
                    -angle,
                    0,
                    360,
                    _shade(pal.skin, 0.8),
                    -1,
                    cv2.LINE_AA,
                    SHIFT,
                )
        if float(np.dot(forward, to_cam)) < -0.15:
            return  # seen from behind: hair and ears only
        dark = (35, 28, 25)
        for sign in (1.0, -1.0):
            eye, facing = on_face(0.82, sign * 0.4, 0.02)
            if facing < 0.12:
                continue
            e_uv, _ = cam.project(eye)
            brow, _ = on_face(0.8, sign * 0.42, 0.24)
            b_uv, _ = cam.project(brow)
            w = max(unit * 0.24 * math.sqrt(facing), 1.2)
            cv2.ellipse(
                img,
                _pt(e_uv),
                (int(w * SCALE), int(w * 0.6 * SCALE)),
                -angle,
                0,
                360,
                (240, 240, 240),
                -1,
                cv2.LINE_AA,
                SHIFT,
            )
            _circle(img, e_uv, w * 0.5, dark)
            cv2.ellipse(
                img,
                _pt(b_uv),
                (int(w * 1.2 * SCALE), int(w * 0.35 * SCALE)),
                -angle,
                180,
                360,
                pal.hair,
                max(int(unit * 0.08), 1),
                cv2.LINE_AA,
                SHIFT,
            )
        # Nose: a wedge standing off the face, nostrils beneath.
        root, _ = on_face(0.95, 0.0, 0.0)
        tip = centre + (forward * 1.16 - up * 0.22) * radius
        base_l, _ = on_face(0.95, 0.14, -0.3)
        base_r, _ = on_face(0.95, -0.14, -0.3)
        n_uv, _ = cam.project(np.stack([root, tip, base_l, base_r]))
        flat_hull(img, n_uv, _shade(pal.skin, 0.78))
        _circle(
            img, 0.5 * (n_uv[1] + 0.5 * (n_uv[2] + n_uv[3])), unit * 0.06, _shade(pal.skin, 0.45)
        )
        # Mouth: lips below the nose.
        lips = []
        for fy in (0.3, 0.15, 0.0, -0.15, -0.3):
            point, facing = on_face(0.9, fy, -0.55)
            if facing > 0.05:
                lips.append(point)
        if len(lips) >= 2:
            m_uv, _ = cam.project(np.stack(lips))
            cv2.polylines(
                img, [_pts(m_uv)], False, (70, 60, 165), max(int(unit * 0.1), 1), cv2.LINE_AA, SHIFT
            )


class Scene:
    """The room and the treadmill for one camera: a static background and near parts."""

    def __init__(
        self,
        camera: Camera,
        background: Colour,
        belt_speed: float,
        belt: Colour = BELT,
        room: Room = "plain",
        occluder: Occluder = "none",
        seed: int = 0,
    ) -> None:
        self.camera = camera
        self.belt_speed = belt_speed
        self.belt = belt
        self.room = room
        self.occluder = occluder
        self.seed = seed
        self.slat: Colour = SLAT if belt == BELT else _shade(belt, 1.3 if sum(belt) < 384 else 0.8)
        self.near_parts: list[tuple[float, np.ndarray, Colour]] = []  # (depth, outline, colour)
        self.image = self._draw_static(background)

    def _draw_static(self, background: Colour) -> np.ndarray:
        cam = self.camera
        w, h = cam.width, cam.height
        wall = np.asarray(background, dtype=np.float32)
        rows = np.linspace(1.05, 0.85, h, dtype=np.float32)[:, None, None]
        img = np.clip(wall[None, None, :] * rows, 0, 255).astype(np.uint8)
        img = np.ascontiguousarray(np.repeat(img, w, axis=1))
        # Floor: the floor plane out to the back wall, 4 m beyond the treadmill.
        back = cam.position + cam.viewing_direction * (np.linalg.norm(cam.position[:2]) + 4.0)
        side = cam.rotation[0]
        floor_line = np.array([back + side * 20.0, back - side * 20.0], dtype=float)
        floor_line[:, 2] = FLOOR_Z
        near = cam.position + cam.viewing_direction * 0.6 + np.array([0.0, 0.0, 0.0])
        near_line = np.array([near + side * 20.0, near - side * 20.0])
        near_line[:, 2] = FLOOR_Z
        quad_uv, _ = cam.project(np.concatenate([floor_line, near_line[::-1]]))
        floor_colour = _shade(background, 0.72)
        _poly(
            img, quad_uv, (floor_colour[0], int(floor_colour[1] * 0.95), int(floor_colour[2] * 0.9))
        )
        base_uv, _ = cam.project(floor_line + np.array([0.0, 0.0, 0.1]))
        cv2.line(
            img, _pt(base_uv[0]), _pt(base_uv[1]), _shade(background, 0.6), 3, cv2.LINE_AA, SHIFT
        )
        if self.room == "clutter":
            self._clutter(img, float(min(base_uv[:, 1])))
        for box, colour in self._treadmill_boxes():
            self._box(img, box, colour)
        return img

    def _treadmill_boxes(self) -> list[tuple[np.ndarray, Colour]]:
        x0, x1 = DECK_X
        boxes: list[tuple[np.ndarray, Colour]] = [
            (np.array([[x0, -0.42, FLOOR_Z], [x1, 0.42, -0.03]]), (70, 70, 75)),
            (
                np.array([[x0 + 0.02, -BELT_HALF_WIDTH, -0.03], [x1 - 0.02, BELT_HALF_WIDTH, 0.0]]),
                self.belt,
            ),
        ]
        boxes.extend(self._occluder_boxes())
        for sign in (1.0, -1.0):
            y = sign * RAIL_HALF_SPACING
            boxes.append(
                (
                    np.array(
                        [[x0, y - 0.12 * sign - 0.05, -0.03], [x1, y - 0.12 * sign + 0.05, 0.005]]
                    ),
                    (150, 150, 155),
                )
            )
            boxes.append(
                (
                    np.array([[x1 - 0.08, y - 0.03, -0.03], [x1 - 0.02, y + 0.03, 1.25]]),
                    (120, 120, 128),
                )
            )
            boxes.append(
                (
                    np.array(
                        [[0.1, y - 0.025, RAIL_Z - 0.025], [x1 - 0.02, y + 0.025, RAIL_Z + 0.025]]
                    ),
                    (185, 185, 190),
                )
            )
        if self.camera.viewing_direction[0] > -0.5:  # the console would hide a front view
            boxes.append(
                (np.array([[x1 - 0.12, -0.38, 1.05], [x1 + 0.05, 0.38, 1.35]]), (60, 62, 70))
            )
        return boxes

    def _occluder_boxes(self) -> list[tuple[np.ndarray, Colour]]:
        """A low handrail or an upright of the frame on the camera's side of the treadmill."""
        if self.occluder == "none":
            return []
        near = 1.0 if self.camera.position[1] >= 0 else -1.0
        y = near * (RAIL_HALF_SPACING + 0.05)
        colour: Colour = (150, 150, 158)
        if self.occluder == "rail":
            x0, x1 = DECK_X
            return [
                (np.array([[x0, y - 0.02, 0.5], [x1, y + 0.02, 0.54]]), colour),
                (np.array([[x0, y - 0.02, -0.03], [x0 + 0.04, y + 0.02, 0.54]]), colour),
            ]
        upright = np.array([[RUNNER_X + 0.15, y - 0.03, -0.03], [RUNNER_X + 0.27, y + 0.03, 1.0]])
        return [(upright, colour)]

    def _clutter(self, img: np.ndarray, floor_v: float) -> None:
        """Furniture, posters and a bright window on the wall, from the scene's seed."""
        rng = np.random.default_rng([self.seed, 7])
        w = self.camera.width
        for _ in range(int(rng.integers(3, 7))):
            bw, bh = rng.uniform(0.05, 0.25) * w, rng.uniform(0.08, 0.4) * floor_v
            x, y = rng.uniform(-0.1, 1.0) * w, rng.uniform(0.05, 0.9) * floor_v
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.rectangle(img, (int(x), int(y)), (int(x + bw), int(y + bh)), colour, -1)
        x = rng.uniform(0.0, 0.8) * w
        window = (int(x + 0.15 * w), int(0.4 * floor_v))
        cv2.rectangle(img, (int(x), 0), window, (250, 250, 250), -1)

    def _box(self, img: np.ndarray, box: np.ndarray, colour: Colour) -> None:
        cam = self.camera
        lo, hi = box
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        centre = corners.mean(axis=0)
        runner_depth = float(cam.to_camera(np.array([-0.15, 0.0, 0.9]))[2])
        depth = float(cam.to_camera(centre)[2])
        uv, _ = cam.project(corners)
        faces = [
            ([0, 1, 3, 2], np.array([-1.0, 0, 0])),
            ([4, 5, 7, 6], np.array([1.0, 0, 0])),
            ([0, 1, 5, 4], np.array([0, -1.0, 0])),
            ([2, 3, 7, 6], np.array([0, 1.0, 0])),
            ([0, 2, 6, 4], np.array([0, 0, -1.0])),
            ([1, 3, 7, 5], np.array([0, 0, 1.0])),
        ]
        to_cam = cam.position - centre
        shades = {0: 0.8, 1: 0.9, 2: 1.0}
        for idx, normal in faces:
            if float(np.dot(normal, to_cam)) <= 0:
                continue
            axis = int(np.argmax(np.abs(normal)))
            factor = 1.15 if (axis == 2 and normal[2] > 0) else shades[axis]
            face_uv = uv[idx]
            shade = _shade(colour, factor)
            if depth < runner_depth - 0.25 and box[1][2] > 0.05:
                self.near_parts.append((depth, face_uv, shade))
            else:
                _poly(img, face_uv, shade)

    def draw_moving(self, img: np.ndarray, t: float) -> None:
        """Belt slats sliding backwards at belt speed."""
        cam = self.camera
        x0, x1 = DECK_X
        offset = (-self.belt_speed * t) % STRIPE_SPACING
        xs = np.arange(x0 + offset, x1, STRIPE_SPACING)
        if len(xs) == 0:
            return
        ends = np.zeros((len(xs), 2, 3))
        ends[:, 0, 0] = ends[:, 1, 0] = xs
        ends[:, 0, 1], ends[:, 1, 1] = -BELT_HALF_WIDTH, BELT_HALF_WIDTH
        uv, _ = cam.project(ends)
        for a, b in uv:
            cv2.line(img, _pt(a), _pt(b), self.slat, 1, cv2.LINE_AA, SHIFT)

    def near(self) -> list[tuple[float, Callable[[np.ndarray], None]]]:
        """Treadmill parts nearer the camera than the runner, to sort in with the people."""
        return [
            (depth, functools.partial(_poly, uv=uv, colour=colour))
            for depth, uv, colour in self.near_parts
        ]
