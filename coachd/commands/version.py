from __future__ import annotations

import argparse
import platform

from coachd import __version__
from coachd.commands import Command


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _run(args: argparse.Namespace) -> int:
    from importlib.metadata import PackageNotFoundError, version

    import cv2

    try:
        mediapipe = version("mediapipe")
    except PackageNotFoundError:
        mediapipe = "not installed"
    print(f"coachd {__version__}")
    print(f"python {platform.python_version()}, mediapipe {mediapipe}, opencv {cv2.__version__}")
    return 0


COMMAND = Command(
    "version", "print the versions of coachd and its libraries", _add_arguments, _run, 90
)
