"""`coachd run`: live coaching from a camera, a stream, a file or the synthetic runner."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from coachd.commands import Command, settings_from_args
from coachd.redact import RedactingFormatter
from coachd.settings import LoadedSettings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        help="camera index, /dev/videoN, video file, rtsp:// or http:// URL, synthetic:?..., "
        "or auto (default: camera.source)",
    )
    parser.add_argument("--backend", choices=["litert", "mediapipe"], help="pose backend")
    parser.add_argument(
        "--view", choices=["auto", "side-left", "side-right", "front", "rear"], help="camera view"
    )
    parser.add_argument("--program", choices=["free", "retro", "cadence"], help="coaching program")
    parser.add_argument("--device", help="audio output device name or index")
    parser.add_argument("--no-speech", action="store_true", help="print cues instead of speaking")
    parser.add_argument("--speech-log", metavar="PATH", help="JSON lines of every cue")
    parser.add_argument("--quiet", action="store_true", help="no status line on the terminal")
    parser.add_argument(
        "--open", action="store_true", help="open the live page in the desktop's browser"
    )


def _run(args: argparse.Namespace) -> int:
    from coachd.service.daemon import Daemon, RunOptions

    def load() -> LoadedSettings:
        return settings_from_args(
            args,
            {
                "camera.source": args.source,
                "pose.backend": args.backend,
                "gait.view": args.view,
                "engine.program": args.program,
                "speech.device": args.device,
                "speech.enabled": False if args.no_speech else None,
            },
        )

    level = load().settings.service.log_level
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if args.debug else getattr(logging, level.upper()),
        handlers=[handler],
    )
    options = RunOptions(
        speech_log=Path(args.speech_log) if args.speech_log else None,
        quiet=args.quiet,
        open_page=args.open,
    )
    return Daemon(load, options).run()


COMMAND = Command(
    "run", "coach live (Ctrl-C ends; s or space: STOP a drill)", _add_arguments, _run, order=10
)
