"""The command line itself: version, usage errors (exit 2), --debug tracebacks."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from support import run_coachd

from coachd import __version__
from coachd.errors import EXIT_CONFIG, EXIT_USAGE

REPO = Path(__file__).resolve().parent.parent
MISSING_CONFIG = "/nonexistent/coachd-test.toml"


coachd = run_coachd


def test_version_names_coachd_and_its_libraries() -> None:
    import cv2

    try:
        mediapipe = version("mediapipe")
    except PackageNotFoundError:
        mediapipe = "not installed"
    done = coachd("version")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"coachd {__version__}"
    assert f"mediapipe {mediapipe}" in lines[1]
    assert f"opencv {cv2.__version__}" in lines[1]


def test_version_flag() -> None:
    done = coachd("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"coachd {__version__}"


def test_help_lists_the_commands() -> None:
    done = coachd("--help")
    assert done.returncode == 0
    for name in ("check", "config", "version"):
        assert name in done.stdout


@pytest.mark.parametrize(
    "args",
    [[], ["frobnicate"], ["--no-such-flag", "version"], ["version", "--no-such-flag"]],
    ids=["no command", "unknown command", "unknown global flag", "unknown command flag"],
)
def test_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    done = coachd(*args)
    assert done.returncode == EXIT_USAGE
    assert "usage: coachd" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_user_error_is_one_line_without_debug() -> None:
    done = coachd("config", "show", "--config", MISSING_CONFIG)
    assert done.returncode == EXIT_CONFIG
    assert done.stderr.strip().splitlines() == [
        f"coachd: config error: config file {MISSING_CONFIG} "
        "(--config or COACHD_CONFIG): no such file"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "config", "show", "--config", MISSING_CONFIG],
        ["config", "show", "--debug", "--config", MISSING_CONFIG],
    ],
    ids=["before the command", "after the command"],
)
def test_debug_adds_the_traceback(args: list[str]) -> None:
    done = coachd(*args)
    assert done.returncode == EXIT_CONFIG  # the same exit status as without --debug
    assert "Traceback (most recent call last)" in done.stderr
    assert "ConfigError" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"coachd: config error: config file {MISSING_CONFIG} "
        "(--config or COACHD_CONFIG): no such file"
    )
