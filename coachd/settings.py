"""All of coachd's settings: one pydantic-settings model grouped by section.

Precedence, lowest first: defaults < TOML files < environment COACHD_<SECTION>__<FIELD>
< command-line flags. The TOML files: --config PATH (else $COACHD_CONFIG) alone when given;
otherwise /etc/coachd/coachd.toml, then the user's $XDG_CONFIG_HOME/coachd/coachd.toml
(~/.config/coachd/coachd.toml) over it. `load_settings` also says where each value came
from, for `coachd config show`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)

from coachd.errors import ConfigError
from coachd.textfile import read_toml

SYSTEM_CONFIG = Path("/etc/coachd/coachd.toml")
USER_CONFIG = Path("coachd") / "coachd.toml"  # under $XDG_CONFIG_HOME, else ~/.config
CONFIG_ENV = "COACHD_CONFIG"  # names the TOML file when --config is not given
ENV_PREFIX = "COACHD_"
ENV_DELIMITER = "__"

REGION_RULE = "needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 (a box inside the image)"

ViewSetting = Literal["auto", "side-left", "side-right", "front", "rear"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CameraSettings(Section):
    source: str = Field(
        "auto",
        description="auto (first camera, else the synthetic runner), a camera index, "
        "/dev/videoN, /dev/v4l/by-id/..., a video file, rtsp:// or http:// URL, or synthetic:?...",
    )
    width: int = Field(1280, ge=160, le=3840, description="requested frame width, pixels")
    height: int = Field(720, ge=120, le=2160, description="requested frame height, pixels")
    fps: int = Field(30, ge=1, le=240, description="requested frames per second")
    fourcc: str = Field(
        "MJPG",
        pattern=r"^([A-Za-z0-9 ]{4})?$",
        description="pixel format asked of a USB camera, 4 characters; empty keeps the driver's",
    )
    rotation: Literal[0, 90, 180, 270] = Field(0, description="clockwise rotation, degrees")
    mirror: StrictBool = Field(False, description="flip left-right after rotation")
    read_timeout_s: float = Field(
        2.0, ge=0.1, le=30.0, description="a read that takes longer is a stalled camera, seconds"
    )
    open_timeout_s: float = Field(
        5.0,
        ge=0.5,
        le=60.0,
        description="longest wait to open a camera or stream and get its first frame, seconds",
    )
    reconnect_max_s: float = Field(
        30.0, ge=1.0, le=600.0, description="longest wait between reconnect attempts, seconds"
    )


class PoseSettings(Section):
    backend: Literal["litert", "mediapipe"] = Field(
        "litert", description="litert (fast, default) or mediapipe (stock solutions.pose)"
    )
    threads: int = Field(2, ge=1, le=16, description="CPU threads for the pose model")
    workers: int = Field(
        0,
        ge=0,
        le=2,
        description="live tracking: 0 chooses from the cores and frame rate; 1 one model with "
        "`threads` threads; 2 two single-threaded models taking alternate frames",
    )
    min_detection_confidence: float = Field(0.5, ge=0.0, le=1.0, description="person detector")
    min_tracking_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="below this the tracked person counts as lost"
    )
    smoothing: StrictBool = Field(True, description="One Euro filter on the landmarks")
    mirror_right_facing: StrictBool = Field(
        True,
        description="give the model the mirrored frame while the runner faces image-right "
        "(BlazePose keeps a left-facing runner's legs apart far better)",
    )
    smoothing_min_cutoff_hz: float = Field(
        1.5, gt=0.0, le=30.0, description="One Euro cut-off at rest, Hz (lower: smoother)"
    )
    smoothing_beta: float = Field(
        20.0,
        ge=0.0,
        le=200.0,
        description="One Euro speed coefficient per body length/s (higher: less lag)",
    )
    treadmill_region: Optional[tuple[float, float, float, float]] = Field(
        None,
        description="x0, y0, x1, y1 as fractions of the image where the treadmill runner is; "
        "unset: the largest, most central person",
    )

    @field_validator("treadmill_region")
    @classmethod
    def _region_inside_image(
        cls, region: Optional[tuple[float, float, float, float]]
    ) -> Optional[tuple[float, float, float, float]]:
        if region is not None:
            x0, y0, x1, y1 = region
            # Written as chained <= so NaN fails too.
            if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
                raise ValueError(REGION_RULE)
        return region


class GaitSettings(Section):
    view: ViewSetting = Field("auto", description="camera view; auto detects it")
    runner_height_cm: Optional[float] = Field(
        None, ge=100.0, le=230.0, description="runner's height, cm: adds centimetres and belt speed"
    )


class EngineSettings(Section):
    packs: list[str] = Field(
        default_factory=lambda: ["default"],
        description="cue packs by name (cues/NAME.toml, /etc/coachd/cues/NAME.toml) or path",
    )
    enable: list[str] = Field(
        default_factory=list, description="cue ids to switch on (e.g. heel_strike)"
    )
    disable: list[str] = Field(default_factory=list, description="cue ids to switch off")
    warmup_s: float = Field(60.0, ge=0.0, le=1800.0, description="quiet baseline, seconds")
    min_gap_s: float = Field(8.0, ge=1.0, le=600.0, description="least time between cues, s")
    cooldown_s: float = Field(45.0, ge=0.0, le=3600.0, description="least time between repeats")
    max_per_minute: int = Field(4, ge=1, le=30, description="cap on cues in any 60 s")
    stale_after_s: float = Field(
        2.0, ge=0.1, le=30.0, description="drop a cue whose evidence is older, seconds"
    )
    fade: StrictBool = Field(True, description="speak less often while form holds")
    program: Literal["free", "retro", "cadence"] = Field("free", description="coaching program")
    retro_first_s: float = Field(
        60.0, ge=0.0, le=3600.0, description="running after the warm-up before the first drill, s"
    )
    metronome: StrictBool = Field(False, description="metronome clicks in the cadence program")
    fade_max_factor: float = Field(
        3.0, ge=1.0, le=10.0, description="gap and cooldown grow up to this many times when faded"
    )
    fade_full_s: float = Field(
        900.0, ge=60.0, le=7200.0, description="seconds of good form that fade feedback fully"
    )
    praise_hold_s: float = Field(
        4.0, ge=0.0, le=60.0, description="a cued fault fixed this long earns a praise, seconds"
    )
    clear_hold_s: float = Field(
        6.0,
        ge=0.0,
        le=120.0,
        description="a fault clears only when its fix held this long (3x if marginal), seconds",
    )
    praise_margin: float = Field(
        0.5,
        ge=0.0,
        le=5.0,
        description="a fix this many start-clear gaps past clear clears fast and earns praise",
    )
    cadence_increase_pct: float = Field(
        5.0, ge=1.0, le=15.0, description="cadence program target above the runner's own, %"
    )


class SpeechSettings(Section):
    enabled: StrictBool = Field(True, description="speak cues; off prints them only")
    voice: str = Field("", description="TTS voice id or name; empty: the engine's default")
    language: str = Field("en", description="voice language (BCP 47)")
    rate_wpm: int = Field(170, ge=80, le=400, description="speaking rate, words per minute")
    volume: float = Field(1.0, ge=0.0, le=1.0, description="cue volume, 0..1")
    device: str = Field("", description="output device name or index; empty: system default")
    earcon: StrictBool = Field(True, description="short tone before a correction")
    praise_chime: StrictBool = Field(True, description="chime with praise")
    speak_numbers: StrictBool = Field(True, description="say numbers such as your cadence")
    cache_dir: str = Field("", description="rendered-phrase cache; empty: state dir/voice-cache")
    cache_max_mb: float = Field(
        64.0,
        ge=1.0,
        le=65536.0,
        description="voice cache size limit, MiB; the least recently used phrases go first",
    )
    max_delay_s: float = Field(
        3.0, ge=0.2, le=30.0, description="drop a cue not started this long after it was emitted"
    )
    retry_s: float = Field(
        3.0, ge=0.1, le=300.0, description="seconds between attempts to reopen a lost device"
    )
    idle_close_s: float = Field(
        60.0, ge=0.0, le=3600.0, description="release the device after this long silent; 0: never"
    )
    render_timeout_s: float = Field(
        10.0, ge=0.5, le=120.0, description="a phrase render taking longer counts as a TTS failure"
    )
    write_timeout_s: float = Field(
        2.0,
        ge=0.1,
        le=60.0,
        description="an output device taking no audio for this long is hung and is reopened",
    )


class ServiceSettings(Section):
    state_dir: str = Field(
        "", description="sessions database and caches; empty: $STATE_DIRECTORY or ~/.local/state"
    )
    http_host: str = Field("127.0.0.1", description="health/metrics address")
    http_port: int = Field(9464, ge=0, le=65535, description="health/metrics port; 0 turns off")
    allow_remote_http: StrictBool = Field(
        False, description="must be true to bind health/metrics to anything but loopback"
    )
    health_stale_s: float = Field(
        3.0, ge=0.5, le=120.0, description="/healthz fails when no frame came for this long, s"
    )
    session_start_s: float = Field(4.0, ge=0.5, le=60.0, description="running this long starts")
    session_end_s: float = Field(20.0, ge=2.0, le=600.0, description="gone this long ends it")
    runner_profile: str = Field("", description="runner name for history comparisons")
    record: StrictBool = Field(False, description="keep a skeleton-overlay video of each session")
    blur_faces: StrictBool = Field(True, description="blur faces in recordings")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")


class StoreSettings(Section):
    url: str = Field(
        "",
        description="a gym's shared history: postgresql://ROLE@HOST/DB?sslmode=verify-full; "
        "empty: the SQLite database in the state directory only",
    )
    upload_interval_s: float = Field(
        2.0, ge=0.1, le=600.0, description="how often queued sessions are shipped to store.url"
    )


class KioskSettings(Section):
    id: str = Field(
        "",
        max_length=64,
        description="this kiosk's name in the shared history and in /metrics; empty: hostname",
    )


class RunnersSettings(Section):
    key: str = Field(
        "",
        description="secret for the keyed hash of runners' QR codes (the same on every kiosk of "
        "a gym); empty: a key file made in the state directory",
    )
    qr_sign_in: StrictBool = Field(
        True,
        description="read runners' QR codes at the camera (never with service.runner_profile: "
        "that runner is the only one)",
    )


class UiSettings(Section):
    show_video: StrictBool = Field(
        False, description="the live page shows the camera picture, not only the skeleton"
    )


class Settings(BaseSettings):
    """Every setting, by section; see config/coachd.toml for each field's documentation."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    camera: CameraSettings = Field(default_factory=CameraSettings)
    pose: PoseSettings = Field(default_factory=PoseSettings)
    gait: GaitSettings = Field(default_factory=GaitSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    kiosk: KioskSettings = Field(default_factory=KioskSettings)
    runners: RunnersSettings = Field(default_factory=RunnersSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges the layers itself (to know where each value came from).
        return (init_settings,)


SECTIONS: dict[str, type[Section]] = {
    name: info.default_factory  # type: ignore[misc]
    for name, info in Settings.model_fields.items()
}


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    origin: dict[str, str]  # "camera.fps" -> "default" | "file PATH" | "env NAME" | "command line"
    config_files: tuple[Path, ...]  # read, lowest first


def load_settings(
    config_path: Optional[Path] = None,
    overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> LoadedSettings:
    """Merge defaults, TOML files, environment and flags; raise ConfigError naming any bad
    value. `environ` also gives $COACHD_CONFIG, $XDG_CONFIG_HOME and $HOME."""
    environ = os.environ if environ is None else environ
    if config_path is None and environ.get(CONFIG_ENV):
        config_path = Path(environ[CONFIG_ENV])
    config_files = _choose_config_files(config_path, environ)
    layers: list[tuple[str, dict[str, Any]]] = [
        (f"file {path}", read_toml(path, "config")) for path in config_files
    ]
    layers.append(("env", _read_env(environ)))
    layers.append(("command line", {k: dict(v) for k, v in (overrides or {}).items()}))

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for label, data in layers:
        for section, values in data.items():
            if section not in SECTIONS:
                raise ConfigError(
                    f"config error: unknown section [{section}] ({_where(label, section)}); "
                    f"sections are: {', '.join(SECTIONS)}"
                )
            if not isinstance(values, Mapping):
                raise ConfigError(
                    f"config error: [{section}] ({_where(label, section)}) must be a table of "
                    f"settings, got {values!r}"
                )
            for key, value in values.items():
                merged.setdefault(section, {})[key] = value
                origin[f"{section}.{key}"] = _where(label, f"{section}.{key}")
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, merged, origin)) from None
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            origin.setdefault(f"{section}.{key}", "default")
    return LoadedSettings(settings, origin, tuple(config_files))


def config_file_candidates(environ: Optional[Mapping[str, str]] = None) -> list[Path]:
    """Where coachd looks for settings without --config, lowest first (present or not)."""
    environ = os.environ if environ is None else environ
    candidates = [SYSTEM_CONFIG]
    if environ.get("XDG_CONFIG_HOME"):
        candidates.append(Path(environ["XDG_CONFIG_HOME"]) / USER_CONFIG)
    elif environ.get("HOME"):
        candidates.append(Path(environ["HOME"]) / ".config" / USER_CONFIG)
    return candidates


def _choose_config_files(config_path: Optional[Path], environ: Mapping[str, str]) -> list[Path]:
    if config_path is not None:
        if not config_path.is_file():
            raise ConfigError(
                f"config error: config file {config_path} (--config or {CONFIG_ENV}): no such file"
            )
        return [config_path]
    return [path for path in config_file_candidates(environ) if path.is_file()]


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    known = {k.upper(): v for k, v in environ.items() if k.upper().startswith(ENV_PREFIX)}
    for name in known:
        section, _, key = name[len(ENV_PREFIX) :].partition(ENV_DELIMITER)
        if name == CONFIG_ENV:
            continue
        if section.lower() not in SECTIONS or not key:
            raise ConfigError(
                f"config error: environment variable {name} is not a setting; use "
                f"COACHD_<SECTION>__<FIELD> with a section of: {', '.join(SECTIONS)}"
            )
    source = EnvSettingsSource(
        Settings,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        case_sensitive=False,
    )
    source.env_vars = {k.lower(): v for k, v in known.items() if k != CONFIG_ENV}
    try:
        return _env_flags(dict(source()))
    except SettingsError as exc:
        # A list or tuple setting given as plain text: pydantic-settings wants JSON there.
        culprit = _unparsable_env_var(known) or f"an environment variable ({exc})"
        raise ConfigError(
            f"config error: {culprit} is not valid JSON; "
            "list settings take JSON, e.g. COACHD_ENGINE__DISABLE='[\"heel_strike\"]'"
        ) from None


def _env_flags(data: dict[str, Any]) -> dict[str, Any]:
    """Environment text "true"/"false" as booleans: flags are strict, and TOML and --set
    already give real booleans; any other text stays text and fails validation."""
    for section, values in data.items():
        model = SECTIONS.get(section)
        if model is None or not isinstance(values, dict):
            continue
        for key, value in values.items():
            info = model.model_fields.get(key)
            if info is not None and info.annotation is bool and value in ("true", "false"):
                values[key] = value == "true"
    return data


def _unparsable_env_var(known: Mapping[str, str]) -> Optional[str]:
    for name, value in known.items():
        section, _, key = name[len(ENV_PREFIX) :].partition(ENV_DELIMITER)
        model = SECTIONS.get(section.lower())
        info = model.model_fields.get(key.lower()) if model else None
        if info is not None and get_origin(info.annotation) in (list, tuple, Union):
            try:
                json.loads(value)
            except ValueError:
                return f"{name}={value!r}"
    return None


def _where(label: str, key: str) -> str:
    if label == "env":
        section, _, field = key.partition(".")
        return f"env {ENV_PREFIX}{section.upper()}{ENV_DELIMITER}{field.upper()}"
    return label


def _describe(exc: ValidationError, merged: Mapping[str, Any], origin: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        key = ".".join(loc[:2])
        section_values = merged.get(loc[0], {}) if loc else {}
        value = None
        if len(loc) > 1 and isinstance(section_values, dict):
            value = section_values.get(loc[1])
        where = origin.get(key, "default")
        if err["type"] == "extra_forbidden":
            section_model = SECTIONS.get(loc[0])
            names = ", ".join(section_model.model_fields) if section_model else ""
            lines.append(f"config error: unknown key {key} ({where}); [{loc[0]}] has: {names}")
            continue
        allowed = allowed_values(key)
        # A validator's own words, without pydantic's "Value error, " in front.
        message = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
        lines.append(
            f"config error: {key} = {json.dumps(value, default=str)} ({where}): "
            f"{message.lower()}; allowed: {allowed}"
        )
    return "\n".join(lines)


def allowed_values(key: str) -> str:
    """Human words for what a setting accepts, e.g. 'an integer from 1 to 240'."""
    section, _, name = key.partition(".")
    model = SECTIONS.get(section)
    if model is None or name not in model.model_fields:
        return "see config/coachd.toml"
    return describe_field(model.model_fields[name])


def describe_field(info: FieldInfo) -> str:  # noqa: C901 (one branch per kind of pydantic constraint)
    annotation = info.annotation
    optional = False
    if get_origin(annotation) is Union:
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is Literal:
        text = "one of " + ", ".join(json.dumps(a) for a in get_args(annotation))
    elif annotation is bool:
        text = "true or false"
    elif annotation in (int, float):
        low = high = None
        for meta in info.metadata:
            if isinstance(meta, (annotated_types.Ge, annotated_types.Gt)):
                low = getattr(meta, "ge", getattr(meta, "gt", None))
            if isinstance(meta, (annotated_types.Le, annotated_types.Lt)):
                high = getattr(meta, "le", getattr(meta, "lt", None))
        kind = "an integer" if annotation is int else "a number"
        if low is not None and high is not None:
            text = f"{kind} from {low} to {high}"
        elif low is not None:
            text = f"{kind} of at least {low}"
        else:
            text = kind
    elif get_origin(annotation) is list:
        text = "a list of strings"
    elif get_origin(annotation) is tuple:
        text = f"a list of {len(get_args(annotation))} numbers"
    else:
        text = "text"
        for meta in info.metadata:
            pattern = getattr(meta, "pattern", None)
            if pattern:
                text = f"text matching {pattern}"
    if info.description:
        text += f" ({info.description})"
    return text + (", or unset" if optional else "")
