"""The synthetic runner's source string, parsed into a frozen SyntheticParams.

`synthetic:` optionally followed by `?key=value&...`; every key is optional and an unknown
key or a bad value is a SourceSpecError naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, get_args
from urllib.parse import unquote

from coachd.errors import SourceSpecError
from coachd.messages import View

PREFIX = "synthetic:"
FRONT_CAMERA_HEIGHT_M = 1.5

Gait = Literal["run", "walk", "stand"]
Strike = Literal["heel", "midfoot", "forefoot"]
Style = Literal["shaded", "plain"]
Legwear = Literal["shorts", "long_shorts", "tights", "trousers", "baggy"]
Footwear = Literal["shoes", "barefoot"]
HairStyle = Literal["short", "long", "none"]
Room = Literal["plain", "clutter"]
Occluder = Literal["none", "rail", "panel"]
Bystander = Literal["none", "left", "right"]
Colour = tuple[int, int, int]  # BGR, as OpenCV draws

# Foot angle at initial contact for each strike pattern, degrees (positive toe up).
STRIKE_ANGLE_DEG: dict[str, float] = {"heel": 15.0, "midfoot": 0.0, "forefoot": -12.0}

NAMED_COLOURS: dict[str, Colour] = {
    "red": (40, 40, 200),
    "blue": (190, 90, 30),
    "navy": (90, 40, 20),
    "green": (60, 150, 50),
    "yellow": (40, 200, 230),
    "orange": (30, 130, 240),
    "purple": (140, 50, 120),
    "black": (30, 30, 30),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "white": (235, 235, 235),
    "teal": (140, 140, 30),
    "pink": (170, 120, 240),
    "beige": (170, 200, 220),
    "light": (205, 215, 225),
    "dark": (60, 60, 70),
    "fair": (170, 195, 235),
    "medium": (110, 150, 200),
    "brown": (60, 95, 140),
}


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that shapes the synthetic run; defaults are a clean recreational runner."""

    view: View = "side-left"
    gait: Gait = "run"
    cadence: float = 170.0  # steps per minute
    speed: float = 10.0  # belt, km/h
    overstride: float = 0.10  # overstride_ratio at initial contact
    trunk_lean: float = 6.0  # degrees forward
    shoulder_sway: float = 1.5  # degrees peak-to-peak roll of the shoulder line per stride
    shoulder_elevation: float = 0.0  # 0 relaxed .. 1 shoulders drawn up to the ears
    strike: Strike = "midfoot"
    heel_recovery: float = 0.55  # smallest heel-hip distance in swing / leg length
    knee_lift: float = 40.0  # peak thigh angle from vertical in swing, degrees
    bounce: float = 0.08  # vertical_oscillation_ratio of hip_mid per step
    duty: float = 0.34  # contact time / stride time
    asym: float = 0.0  # right leg: longer contact and lower back kick by this fraction
    jitter: float = 0.01  # step-to-step variability, fraction of the step time
    seconds: Optional[float] = None  # None: endless
    fps: float = 30.0
    width: int = 640
    height: int = 480
    distance: float = 3.0  # camera to the runner, metres
    camera_height: float = 1.1  # above the floor, metres (front/rear default 1.5)
    runner_height: float = 1.75  # metres
    seed: int = 0
    shirt: Colour = NAMED_COLOURS["blue"]
    shorts: Colour = NAMED_COLOURS["black"]
    skin: Colour = NAMED_COLOURS["medium"]
    hair: Colour = (35, 45, 60)
    shoes: Colour = (225, 225, 225)
    background: Colour = (200, 205, 210)
    absent: Optional[tuple[float, float]] = None  # runner off the treadmill between A and B s
    walker: bool = False  # a second person walks through the frame now and then
    fix_at: Optional[float] = None  # from this time on every fault returns to clean
    qr: str = ""  # a QR code with this text held up to the camera (qr_card.py)
    qr_seconds: float = 4.0  # ... for the first this many seconds
    # Variety: bodies, clothes, rooms and cameras the gait stage was not tuned on. The
    # defaults draw the original runner, byte for byte.
    leg_ratio: float = 1.0  # leg length against the standard fractions (the trunk gives way)
    build: float = 1.0  # limb and trunk thickness
    style: Style = "shaded"  # plain: flat capsule limbs and flat block feet
    legwear: Legwear = "shorts"  # long_shorts to the knee; tights, trousers, baggy to the ankle
    footwear: Footwear = "shoes"
    hair_style: HairStyle = "short"
    belt: Colour = (45, 45, 48)
    room: Room = "plain"  # clutter: furniture and posters on the wall
    light: float = 1.0  # exposure: image brightness factor
    camera_tilt: float = 0.0  # degrees, camera pitched further down (+) or up (-)
    camera_roll: float = 0.0  # degrees, camera turned about its axis
    lens: float = 1.0  # focal length against the standard framing (0.6: a wide phone lens)
    noise: float = 0.0  # sensor noise, standard deviation in grey levels
    jpeg: int = 0  # JPEG quality each frame is compressed at (0: none)
    shutter: float = 0.0  # exposure time, seconds (motion blur; 0: sharp)
    occluder: Occluder = "none"  # rail: a low near handrail; panel: a near side panel
    bystander: Bystander = "none"  # a person standing at the image's edge, partly in view
    vary: Optional[int] = None  # the seed that drew this combination (informational)

    @property
    def belt_speed_ms(self) -> float:
        return self.speed / 3.6

    @property
    def strike_angle_deg(self) -> float:
        return STRIKE_ANGLE_DEG[self.strike]

    def runner_present(self, t: float) -> bool:
        """Whether the runner is on the treadmill at t (away during `absent`)."""
        return self.absent is None or not self.absent[0] <= t < self.absent[1]

    def clean(self) -> SyntheticParams:
        """The same runner with every form fault set back to a clean value."""
        base = default_params(self.gait)
        return dataclasses.replace(
            self,
            overstride=base.overstride,
            trunk_lean=base.trunk_lean,
            shoulder_sway=base.shoulder_sway,
            shoulder_elevation=base.shoulder_elevation,
            strike=base.strike,
            heel_recovery=base.heel_recovery,
            knee_lift=base.knee_lift,
            bounce=base.bounce,
            asym=0.0,
        )

    def at(self, t: float) -> SyntheticParams:
        """The parameters in force at time t (fix_at switches the faults off)."""
        if self.fix_at is not None and t >= self.fix_at:
            return self.clean()
        return self


# Defaults that differ by gait; applied only to keys the source string leaves out.
_GAIT_DEFAULTS: dict[str, dict[str, object]] = {
    "run": {},
    "walk": {
        "cadence": 110.0,
        "speed": 5.0,
        "overstride": 0.32,
        "trunk_lean": 3.0,
        "strike": "heel",
        "heel_recovery": 0.9,
        "knee_lift": 25.0,
        "bounce": 0.04,
        "duty": 0.62,
    },
    "stand": {"cadence": 0.0, "speed": 0.0, "bounce": 0.0, "duty": 1.0, "trunk_lean": 2.0},
}


def default_params(gait: str = "run") -> SyntheticParams:
    return dataclasses.replace(SyntheticParams(), gait=gait, **_GAIT_DEFAULTS[gait])  # type: ignore[arg-type]


def _number(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not lo <= value <= hi:
            raise ValueError
        return value

    parse.allowed = f"a number from {lo:g} to {hi:g}"  # type: ignore[attr-defined]
    return parse


def _integer(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError
        return value

    parse.allowed = f"a whole number from {lo} to {hi}"  # type: ignore[attr-defined]
    return parse


def _choice(kind: Any) -> Callable[[str], str]:
    """A parser for one of a Literal type's values."""
    options: tuple[str, ...] = get_args(kind)

    def parse(text: str) -> str:
        if text not in options:
            raise ValueError
        return text

    parse.allowed = "one of " + ", ".join(options)  # type: ignore[attr-defined]
    return parse


def _flag(text: str) -> bool:
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError


_flag.allowed = "1 or 0"  # type: ignore[attr-defined]


def _colour(text: str) -> Colour:
    if text.lower() in NAMED_COLOURS:
        return NAMED_COLOURS[text.lower()]
    hex_text = text.lstrip("#")
    if len(hex_text) != 6:
        raise ValueError
    red, green, blue = (int(hex_text[i : i + 2], 16) for i in (0, 2, 4))
    return (blue, green, red)


_colour.allowed = "rrggbb hex or one of " + ", ".join(NAMED_COLOURS)  # type: ignore[attr-defined]


def _span(text: str) -> tuple[float, float]:
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise ValueError
    start, end = float(start_text), float(end_text)
    if not 0.0 <= start < end:
        raise ValueError
    return (start, end)


_span.allowed = "A-B seconds with 0 <= A < B"  # type: ignore[attr-defined]


def _text(longest: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not 0 < len(text) <= longest:
            raise ValueError
        return text

    parse.allowed = f"1 to {longest} characters (URL-encoded)"  # type: ignore[attr-defined]
    return parse


def _jpeg_quality(text: str) -> int:
    value = int(text)
    if value != 0 and not 10 <= value <= 95:
        raise ValueError
    return value


_jpeg_quality.allowed = "0 (no compression) or a quality from 10 to 95"  # type: ignore[attr-defined]

_PARSERS: dict[str, Callable[[str], object]] = {
    "view": _choice(View),
    "gait": _choice(Gait),
    "cadence": _number(60.0, 240.0),
    "speed": _number(0.0, 30.0),
    "overstride": _number(-0.2, 0.7),
    "trunk_lean": _number(-15.0, 45.0),
    "shoulder_sway": _number(0.0, 30.0),
    "shoulder_elevation": _number(0.0, 1.0),
    "strike": _choice(Strike),
    "heel_recovery": _number(0.2, 1.0),
    "knee_lift": _number(10.0, 80.0),
    "bounce": _number(0.0, 0.2),
    "duty": _number(0.2, 0.75),
    "asym": _number(0.0, 0.4),
    "jitter": _number(0.0, 0.05),
    "seconds": _number(0.04, 86400.0),
    "fps": _number(5.0, 240.0),
    "width": _integer(160, 3840),
    "height": _integer(120, 2160),
    "distance": _number(1.0, 20.0),
    "camera_height": _number(0.2, 3.0),
    "runner_height": _number(1.0, 2.3),
    "seed": _integer(0, 2**31 - 1),
    "shirt": _colour,
    "shorts": _colour,
    "skin": _colour,
    "hair": _colour,
    "shoes": _colour,
    "background": _colour,
    "absent": _span,
    "walker": _flag,
    "fix_at": _number(0.0, 86400.0),
    "qr": _text(200),
    "qr_seconds": _number(0.0, 86400.0),
    "leg_ratio": _number(0.85, 1.15),
    "build": _number(0.7, 1.5),
    "style": _choice(Style),
    "legwear": _choice(Legwear),
    "footwear": _choice(Footwear),
    "hair_style": _choice(HairStyle),
    "belt": _colour,
    "room": _choice(Room),
    "light": _number(0.3, 1.6),
    "camera_tilt": _number(-20.0, 20.0),
    "camera_roll": _number(-15.0, 15.0),
    "lens": _number(0.4, 2.0),
    "noise": _number(0.0, 30.0),
    "jpeg": _jpeg_quality,
    "shutter": _number(0.0, 0.05),
    "occluder": _choice(Occluder),
    "bystander": _choice(Bystander),
    "vary": _integer(0, 2**31 - 1),
}

KEYS: tuple[str, ...] = tuple(_PARSERS)


def parse_spec(spec: str) -> SyntheticParams:  # noqa: C901 (a check per kind)
    """SyntheticParams from `synthetic:?key=value&...`; SourceSpecError on anything bad."""
    text = spec.strip()
    if not text.startswith(PREFIX):
        raise SourceSpecError(f"source {spec!r}: a synthetic source starts with {PREFIX!r}")
    query = text[len(PREFIX) :]
    if query.startswith("?"):
        query = query[1:]
    elif query:
        raise SourceSpecError(f"source {spec!r}: write options as synthetic:?key=value&key=value")
    values: dict[str, object] = {}
    for item in query.split("&"):
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key, raw = unquote(key).strip(), unquote(raw)
        if key not in _PARSERS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SourceSpecError(
                f"synthetic source: unknown option {key!r}; {hint}allowed: {', '.join(KEYS)}"
            )
        parser = _PARSERS[key]
        allowed = getattr(parser, "allowed", "a valid value")
        if not sep:
            raise SourceSpecError(f"synthetic source: {key} needs a value ({key}=...): {allowed}")
        if key in values:
            raise SourceSpecError(f"synthetic source: {key} is given twice; give it once")
        try:
            values[key] = parser(raw.strip())
        except (ValueError, OverflowError):
            raise SourceSpecError(
                f"synthetic source: {key}={raw!r} is not allowed; {key} must be {allowed}"
            ) from None
    if "vary" in values:
        from coachd.capture.synthetic.variety import draw_variety

        drawn = draw_variety(int(values["vary"]))  # type: ignore[call-overload]
        values = {**{k: v for k, v in drawn.items() if k not in values}, **values}
    if "camera_height" not in values and values.get("view") in ("front", "rear"):
        # A front or rear camera sits on the console or a shelf, looking down a little.
        values["camera_height"] = FRONT_CAMERA_HEIGHT_M
    gait = str(values.get("gait", "run"))
    params = dataclasses.replace(default_params(gait), **values)  # type: ignore[arg-type]
    if params.gait == "run" and params.speed < 4.0:
        raise SourceSpecError(
            f"synthetic source: speed={params.speed:g} is too slow to run; "
            "give speed >= 4 km/h or gait=walk"
        )
    if params.gait == "walk" and params.speed > 8.0:
        raise SourceSpecError(
            f"synthetic source: speed={params.speed:g} is too fast to walk; "
            "give speed <= 8 km/h or gait=run"
        )
    return params
