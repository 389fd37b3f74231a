"""Settings: defaults < TOML < environment < command line, and every kind of bad value."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest
from support import run_coachd

from coachd.errors import EXIT_CONFIG, EXIT_USAGE, ConfigError
from coachd.settings import SECTIONS, SYSTEM_CONFIG, Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


coachd = run_coachd


def write_toml(tmp_path: Path, text: str, name: str = "coachd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LAYERED_TOML = """
[camera]
fps = 60
width = 640
[pose]
threads = 3
smoothing = false
"""


def test_defaults_without_any_layer() -> None:
    if SYSTEM_CONFIG.is_file():
        pytest.skip(f"{SYSTEM_CONFIG} exists on this machine and would be loaded")
    loaded = load_settings(None, environ={})
    assert loaded.settings == Settings()
    assert loaded.config_files == ()
    assert set(loaded.origin.values()) == {"default"}
    assert len(loaded.origin) == sum(len(m.model_fields) for m in SECTIONS.values())


def test_precedence_defaults_file_env_command_line(tmp_path: Path) -> None:
    path = write_toml(tmp_path, LAYERED_TOML)
    loaded = load_settings(
        path,
        overrides={"camera": {"fps": 24}},
        environ={"COACHD_CAMERA__FPS": "15", "COACHD_POSE__THREADS": "4", "HOME": "/x"},
    )
    s = loaded.settings
    assert s.camera.fps == 24  # command line beats env and file
    assert s.pose.threads == 4  # env beats file
    assert s.camera.width == 640  # file beats default
    assert s.pose.smoothing is False
    assert s.camera.height == 720  # default
    assert loaded.origin["camera.fps"] == "command line"
    assert loaded.origin["pose.threads"] == "env COACHD_POSE__THREADS"
    assert loaded.origin["camera.width"] == f"file {path}"
    assert loaded.origin["camera.height"] == "default"
    assert loaded.config_files == (path,)


def test_env_values_are_parsed_to_the_field_types(tmp_path: Path) -> None:
    loaded = load_settings(
        None,
        environ={
            "COACHD_CAMERA__MIRROR": "true",
            "COACHD_ENGINE__DISABLE": '["heel_strike", "cadence_low"]',
            "coachd_gait__runner_height_cm": "181.5",  # names are case-insensitive
        },
    )
    assert loaded.settings.camera.mirror is True
    assert loaded.settings.engine.disable == ["heel_strike", "cadence_low"]
    assert loaded.settings.gait.runner_height_cm == pytest.approx(181.5)


def _effective(stdout: str) -> dict[str, tuple[str, str]]:
    """'[section]' + 'key = value  # origin' lines of `config show` -> {section.key: (v, o)}."""
    table: dict[str, tuple[str, str]] = {}
    section = ""
    for line in stdout.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m.group(1)
        elif m := re.fullmatch(r"(\w+) = (.*?)\s+# (.*)", line):
            table[f"{section}.{m.group(1)}"] = (m.group(2), m.group(3))
    return table


def test_config_show_prints_each_value_with_its_origin(tmp_path: Path) -> None:
    path = write_toml(tmp_path, LAYERED_TOML)
    done = coachd(
        "config",
        "show",
        "--config",
        str(path),
        "--set",
        "camera.fps=24",
        "--set",
        "speech.voice=en-gb",
        env={"COACHD_CAMERA__FPS": "15", "COACHD_POSE__THREADS": "4"},
    )
    assert done.returncode == 0, done.stderr
    assert f"# config file: {path}" in done.stdout
    table = _effective(done.stdout)
    assert table["camera.fps"] == ("24", "command line")
    assert table["speech.voice"] == ('"en-gb"', "command line")
    assert table["pose.threads"] == ("4", "env COACHD_POSE__THREADS")
    assert table["camera.width"] == ("640", f"file {path}")
    assert table["pose.smoothing"] == ("false", f"file {path}")
    assert table["camera.height"] == ("720", "default")
    unset = set(re.findall(r"^# (\w+) is unset", done.stdout, flags=re.MULTILINE))
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            assert f"{section}.{key}" in table or key in unset, f"{section}.{key} not shown"


BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown section", {"toml": "[bogus]\nx = 1\n"}, r"unknown section \[bogus\].*sections are"),
    ("unknown key", {"toml": "[camera]\nfsp = 30\n"}, r"unknown key camera\.fsp.*\[camera\] has:"),
    (
        "wrong type",
        {"toml": '[camera]\nfps = "fast"\n'},
        r'camera\.fps = "fast".*allowed: an integer from 1 to 240',
    ),
    ("out of range", {"toml": "[camera]\nfps = 1000\n"}, r"camera\.fps = 1000.*from 1 to 240"),
    ("bad literal", {"toml": "[camera]\nrotation = 45\n"}, r"camera\.rotation = 45.*one of 0"),
    (
        "bad literal text",
        {"toml": '[service]\nlog_level = "loud"\n'},
        r'service\.log_level = "loud".*one of "debug"',
    ),
    ("not a table", {"toml": 'camera = "usb"\n'}, r"\[camera\].*must be a table"),
    ("bad TOML syntax", {"toml": "[camera\nfps = 30\n"}, r"not valid TOML"),
    ("unknown env var", {"env": {"COACHD_BOGUS": "1"}}, r"COACHD_BOGUS is not a setting"),
    ("env without key", {"env": {"COACHD_CAMERA": "1"}}, r"COACHD_CAMERA is not a setting"),
    (
        "bad env value",
        {"env": {"COACHD_CAMERA__MIRROR": "perhaps"}},
        r"camera\.mirror.*env COACHD_CAMERA__MIRROR.*true or false",
    ),
    (
        "bad command line value",
        {"set": {"pose": {"threads": 0}}},
        r"pose\.threads = 0 \(command line\).*from 1 to 16",
    ),
    (
        "live page video not a boolean",
        {"toml": '[ui]\nshow_video = "yes"\n'},
        r"ui\.show_video.*true or false",
    ),
]


@pytest.mark.parametrize(
    ("case", "layers", "pattern"), BAD_VALUES, ids=[c for c, _, _ in BAD_VALUES]
)
def test_bad_values_raise_one_config_error(
    tmp_path: Path, case: str, layers: dict[str, Any], pattern: str
) -> None:
    path = write_toml(tmp_path, layers["toml"]) if "toml" in layers else None
    with pytest.raises(ConfigError) as err:
        load_settings(path, overrides=layers.get("set"), environ=layers.get("env", {}))
    message = str(err.value)
    assert re.search(pattern, message), message
    assert message.startswith("config error:")
    assert err.value.exit_code == EXIT_CONFIG
    if path is not None and case != "bad TOML syntax":
        assert str(path) in message  # names where the bad value came from


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=f"config file {missing} .*: no such file"):
        load_settings(missing, environ={})


def test_coachd_config_names_the_file_when_no_flag_does(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[camera]\nfps = 15\n")
    loaded = load_settings(None, environ={"COACHD_CONFIG": str(path)})
    assert loaded.settings.camera.fps == 15
    assert loaded.origin["camera.fps"] == f"file {path}"
    flag = write_toml(tmp_path, "[camera]\nfps = 20\n", name="flag.toml")
    assert load_settings(flag, environ={"COACHD_CONFIG": str(path)}).settings.camera.fps == 20


def test_list_setting_in_the_environment_must_be_json() -> None:
    with pytest.raises(ConfigError, match="COACHD_ENGINE__DISABLE='heel' is not valid JSON"):
        load_settings(None, environ={"COACHD_ENGINE__DISABLE": "heel"})
    env = {"COACHD_ENGINE__DISABLE": '["heel_strike"]'}
    assert load_settings(None, environ=env).settings.engine.disable == ["heel_strike"]


def test_several_bad_values_are_all_reported(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[camera]\nfps = 0\nwidth = 10\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert "camera.fps" in str(err.value) and "camera.width" in str(err.value)


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("coachd: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "toml", "pattern"),
    [
        (["--set", "camera.fps=999"], {}, None, r"camera\.fps = 999 \(command line\)"),
        ([], {"COACHD_NOPE__X": "1"}, None, r"COACHD_NOPE__X is not a setting"),
        ([], {}, "[camera]\nrotation = 45\n", r"camera\.rotation = 45 \(file "),
        ([], {}, "camera = [\n", r"not valid TOML"),
    ],
    ids=["set out of range", "unknown env", "bad literal in file", "bad syntax"],
)
def test_config_errors_exit_78_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], toml: Optional[str], pattern: str
) -> None:
    if toml is not None:
        args = [*args, "--config", str(write_toml(tmp_path, toml))]
    done = coachd("config", "show", *args, env=env)
    assert done.returncode == EXIT_CONFIG
    assert re.search(pattern, _one_line_error(done))
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["config", "show", "--set", "camera.fps"],  # no =VALUE
        ["config", "frobnicate"],  # not an action
    ],
    ids=["set without value", "bad action"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    done = coachd(*args)
    assert done.returncode == EXIT_USAGE
    assert "Traceback" not in done.stderr
    assert done.stderr.strip()
