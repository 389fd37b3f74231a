"""`vary=SEED`: a random but reproducible runner, room and camera for the synthetic source.

Draws only what a camera or a body changes (proportions, clothes, light, lens, frame rate,
noise ...) and the runner's pace; never a form fault, so a drawn runner runs clean unless the
source string asks for a fault. Keys the source string gives win over drawn ones.
"""

from __future__ import annotations

import numpy as np

from coachd.capture.synthetic.params import NAMED_COLOURS, Colour

FRAME_RATES = (24.0, 25.0, 30.0, 30.0, 50.0, 60.0, 60.0, 90.0, 120.0, 240.0)
# (width, height): landscape webcams and phones held either way, kept small to draw fast.
FRAME_SIZES = ((640, 480), (640, 360), (480, 640), (360, 640), (800, 450))
SHIRTS = ("red", "blue", "navy", "green", "yellow", "orange", "purple", "black", "grey", "white")
SKINS = ("light", "fair", "medium", "brown", "dark", "beige")
BOTTOMS = ("black", "navy", "grey", "dark", "blue", "beige", "white")
WALLS = ((200, 205, 210), (235, 235, 235), (120, 130, 140), (60, 65, 70), (170, 200, 220))
BELTS = ((45, 45, 48), (30, 30, 30), (90, 90, 95), (225, 225, 225))


def _pick(rng: np.random.Generator, options: tuple[object, ...]) -> object:
    return options[int(rng.integers(len(options)))]


def _colour(rng: np.random.Generator, names: tuple[str, ...]) -> Colour:
    return NAMED_COLOURS[str(_pick(rng, names))]


def draw_variety(seed: int) -> dict[str, object]:
    """Parsed `synthetic:` values for one random runner, room and camera (same seed, same draw)."""
    rng = np.random.default_rng([seed, 19])
    width, height = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    skin = _colour(rng, SKINS)
    legwear = str(_pick(rng, ("shorts", "shorts", "long_shorts", "tights", "trousers", "baggy")))
    # Skin-coloured legwear: tights or shorts in the skin's own tone.
    bottoms = skin if rng.random() < 0.15 else _colour(rng, BOTTOMS)
    wide = rng.random() < 0.3
    values: dict[str, object] = {
        "view": _pick(rng, ("side-left", "side-right")),
        "cadence": round(float(rng.uniform(150.0, 190.0)), 1),
        "speed": round(float(rng.uniform(8.0, 14.0)), 1),
        "strike": _pick(rng, ("heel", "midfoot", "midfoot", "forefoot")),
        "duty": round(float(rng.uniform(0.28, 0.4)), 3),
        "jitter": round(float(rng.uniform(0.0, 0.03)), 3),
        "fps": _pick(rng, FRAME_RATES),
        "width": width,
        "height": height,
        "runner_height": round(float(rng.uniform(1.5, 2.0)), 2),
        "leg_ratio": round(float(rng.uniform(0.9, 1.1)), 3),
        "build": round(float(rng.uniform(0.8, 1.35)), 2),
        "style": _pick(rng, ("shaded", "plain")),
        "shirt": _colour(rng, SHIRTS),
        "shorts": bottoms,
        "skin": skin,
        "hair": _colour(rng, ("black", "brown", "dark", "beige", "grey")),
        "hair_style": _pick(rng, ("short", "long", "none")),
        "legwear": legwear,
        "footwear": "barefoot" if rng.random() < 0.1 else "shoes",
        "shoes": _colour(rng, ("white", "black", "grey", "red", "blue", "white")),
        "belt": _pick(rng, BELTS),
        "background": _pick(rng, WALLS),
        "room": _pick(rng, ("plain", "clutter")),
        "light": round(float(rng.uniform(0.6, 1.3)), 2),
        "distance": round(float(rng.uniform(1.8, 2.6) if wide else rng.uniform(2.5, 4.0)), 2),
        "lens": round(float(rng.uniform(0.6, 0.8) if wide else rng.uniform(0.9, 1.2)), 2),
        "camera_height": round(float(rng.uniform(0.3, 1.5)), 2),
        "camera_tilt": round(float(rng.uniform(-5.0, 5.0)), 1),
        "camera_roll": round(float(rng.uniform(-4.0, 4.0)), 1),
        "noise": round(float(rng.uniform(0.0, 8.0)), 1),
        "jpeg": int(_pick(rng, (0, 0, 40, 60, 80))),  # type: ignore[call-overload]
        "shutter": round(float(_pick(rng, (0.0, 0.0, 0.004, 0.008, 0.016))), 3),  # type: ignore[arg-type]
        "occluder": _pick(rng, ("none", "none", "rail", "panel")),
    }
    return values
