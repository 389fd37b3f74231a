"""`coachd check`: is this machine ready to coach? One line per item, with what to fix.

Essential: valid settings, the pose model, and something to watch (the configured source,
or for "auto" a camera or the synthetic runner). Without a camera coachd coaches the
synthetic runner; without audio or a voice it prints its cues. Exit 0 when coaching can
run, 1 when something essential is missing, 78 when the settings are invalid.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from coachd.commands import Command, add_json_argument, print_json, settings_from_args
from coachd.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, CoachdError, ConfigError
from coachd.redact import redact
from coachd.settings import CameraSettings, LoadedSettings, Settings

MAX_CAMERAS_PROBED = 10  # each open costs up to ~0.5 s on real UVC cameras


@dataclass(frozen=True)
class Finding:
    item: str
    ok: bool
    detail: str
    fix: str = ""
    essential: bool = False
    status: str = ""  # overrides OK/MISSING, e.g. ERROR for invalid settings

    @property
    def label(self) -> str:
        return self.status or ("OK" if self.ok else "MISSING")

    def line(self) -> str:
        # Two spaces at least between the columns: scripts split on them.
        text = f"{self.label:<8} {self.item:<13}  {redact(self.detail)}"
        return text + (f"; fix: {self.fix}" if self.fix and not self.ok else "")

    def as_json(self) -> dict[str, object]:
        return {
            "item": self.item,
            "status": self.label,
            "blocking": self.essential and not self.ok,  # coaching cannot run without it
            "detail": redact(self.detail),
            "fix": self.fix if not self.ok else "",
        }


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pose-models",
        metavar="DIR",
        help="check pose_detection.tflite and pose_landmark_full.tflite in DIR instead of the "
        "ones shipped with coachd",
    )
    add_json_argument(parser)


def _run(args: argparse.Namespace) -> int:
    config, loaded = _config(args)
    # With bad settings the rest is still worth checking, against the defaults.
    settings = loaded.settings if loaded else Settings()
    findings = [config]
    if not args.json:
        print(config.line(), flush=True)
    for finding in _checks(settings, args.pose_models):
        if not args.json:
            print(finding.line(), flush=True)  # as found: probing cameras takes a while
        findings.append(finding)
    verdict, status = _summarise(findings)
    if args.json:
        print_json(
            {
                "ready": status == EXIT_OK,
                "verdict": verdict,
                "findings": [finding.as_json() for finding in findings],
            }
        )
    else:
        print(verdict)
    return status


def _config(args: argparse.Namespace) -> tuple[Finding, Optional[LoadedSettings]]:
    try:
        loaded = settings_from_args(args)
    except ConfigError as exc:
        message = str(exc).replace("\n", " | ")
        fix = "correct the setting named above"
        return Finding("config", False, message, fix, essential=True, status="ERROR"), None
    where = (
        "config files " + ", ".join(str(path) for path in loaded.config_files)
        if loaded.config_files
        else "config file none, defaults (create /etc/coachd/coachd.toml or "
        "~/.config/coachd/coachd.toml, or pass --config)"
    )
    return Finding("config", True, f"{where}; settings valid"), loaded


def _checks(settings: Settings, pose_models: Optional[str]) -> Iterator[Finding]:
    yield _pose_model(pose_models)
    yield _video_backend()
    cameras = list(_cameras(settings.camera))
    yield from cameras
    # Without a camera, "auto" depends on the synthetic runner: then it is essential.
    needed = any(f.item == "camera source" and not f.ok and not f.essential for f in cameras)
    yield _synthetic(needed)
    yield from _audio(settings)
    yield _voices(settings)


def _summarise(findings: list[Finding]) -> tuple[str, int]:
    """The verdict line and the exit status."""
    blocking = [f for f in findings if f.essential and not f.ok]
    if blocking:
        names = ", ".join(dict.fromkeys(f.item for f in blocking))
        verdict = f"NOT READY: coachd cannot coach until this is fixed: {names}"
        if any(f.item == "config" for f in blocking):
            return verdict, EXIT_CONFIG
        return verdict, EXIT_FAILURE
    fallbacks = []
    if any(f.item == "camera source" and not f.ok for f in findings):
        fallbacks.append("coaching the synthetic runner instead of a camera")
    if any(f.item in ("audio output", "tts voices") and not f.ok for f in findings):
        fallbacks.append("cues printed instead of spoken")
    suffix = f" ({'; '.join(fallbacks)})" if fallbacks else ""
    return f"READY: coaching can run{suffix}", EXIT_OK


# --- pose model ------------------------------------------------------------------------------


def _pose_model(pose_models: Optional[str]) -> Finding:
    from coachd.pose.litert_backend import MODEL_DIR, model_paths, read_model

    fix = "reinstall coachd (`make setup`, or `pipx install --force .`)"
    paths = model_paths(Path(pose_models) if pose_models else MODEL_DIR)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        return Finding("pose model", False, f"not found: {', '.join(missing)}", fix, True)
    try:
        models = [read_model(path) for path in paths]
    except CoachdError as exc:
        return Finding("pose model", False, str(exc).removeprefix("config error: "), fix, True)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        return Finding("pose model", False, f"LiteRT not importable: {exc}", fix, True)
    from coachd.speech.player import quiet_stderr

    shapes = []
    for path, model in zip(paths, models):
        try:
            with quiet_stderr():  # LiteRT announces its XNNPACK delegate on stderr
                interpreter = Interpreter(model_content=model, num_threads=1)
                interpreter.allocate_tensors()
            shape = interpreter.get_input_details()[0]["shape"]
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for a bad model
            detail = f"{path} does not load in LiteRT: {str(exc).splitlines()[0]}"
            return Finding("pose model", False, detail, fix, essential=True)
        shapes.append(f"{path.name} {int(shape[1])}x{int(shape[2])}")
    where = paths[0].parent
    return Finding(
        "pose model", True, f"sha256 as expected, loads in LiteRT: {', '.join(shapes)} ({where})"
    )


# --- video -----------------------------------------------------------------------------------


def _video_backend() -> Finding:
    import cv2

    fix = "keep opencv-contrib-python alone (the one coachd and mediapipe require): pip uninstall "
    wheels = opencv_distributions()
    if len(wheels) > 1:
        others = " ".join(w for w in wheels if w != "opencv-contrib-python")
        detail = f"{len(wheels)} OpenCV wheels share one cv2 folder: {', '.join(wheels)}"
        return Finding("video files", False, detail, fix + others)
    if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
        return Finding("video files", True, f"OpenCV {cv2.__version__} reads files and URLs")
    return Finding(
        "video files",
        False,
        f"OpenCV {cv2.__version__} has no FFmpeg backend: no files or network cameras",
        "reinstall opencv-contrib-python from PyPI (its wheel carries FFmpeg)",
    )


def opencv_distributions() -> list[str]:
    """Installed distributions that provide cv2: more than one overwrite each other's files."""
    from importlib.metadata import distributions

    names = set()
    for dist in distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("opencv") and any(f.parts[0] == "cv2" for f in dist.files or ()):
            names.add(name)
    return sorted(names)


def _cameras(camera: CameraSettings) -> Iterator[Finding]:
    from coachd.capture.camera import by_id_links, video_devices
    from coachd.capture.open import SYNTHETIC_PREFIX

    devices = video_devices()
    opening = []
    for device in devices[:MAX_CAMERAS_PROBED]:
        note = _probe_camera(device)
        opens = note.startswith("opens")
        if opens:
            opening.append(device)
        yield Finding(f"camera {device.name}", opens, f"{device}: {note}")
    for link in by_id_links():
        yield Finding("camera link", True, f"{link} -> {os.path.realpath(link)}")

    spec = camera.source.strip()
    if spec == "auto":
        if opening:
            yield Finding("camera source", True, f"auto: will use {opening[0]}")
        else:
            found = "no /dev/video* device" if not devices else "no camera opens"
            yield Finding(
                "camera source",
                False,
                f"auto: {found}, so coachd falls back to the synthetic runner",
                "plug in a USB (UVC) webcam, check `ls /dev/video*`, and add the user to the "
                "'video' group",
            )
    elif spec.startswith(SYNTHETIC_PREFIX):
        yield Finding("camera source", True, f"{spec}: the synthetic runner, by choice")
    else:
        yield _configured_source(spec, camera)


def _probe_camera(device: Path) -> str:
    if not os.access(device, os.R_OK | os.W_OK):
        return "permission denied (add the user to the 'video' group)"
    import cv2

    from coachd.speech.player import quiet_stderr

    with quiet_stderr():  # OpenCV warns on stderr for every node that is not a camera
        capture = cv2.VideoCapture(str(device), cv2.CAP_V4L2)
        try:
            if not capture.isOpened():
                return "does not open (busy, or a metadata node of a camera)"
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            return f"opens ({width}x{height} @ {capture.get(cv2.CAP_PROP_FPS):g} fps now)"
        finally:
            capture.release()


def _configured_source(spec: str, camera: CameraSettings) -> Finding:
    from coachd.capture.open import open_source
    from coachd.errors import SourceError

    # A short connect timeout keeps `check` quick when a network camera is unreachable.
    quick = camera.model_copy(update={"open_timeout_s": min(camera.open_timeout_s, 3.0)})
    try:
        source = open_source(spec, quick, realtime=False)
    except SourceError as exc:
        return Finding(
            "camera source",
            False,
            str(exc),
            "correct camera.source (auto, an index, /dev/videoN, a file, a URL)",
            essential=True,
        )
    try:
        describe = getattr(source, "describe", None)
        detail = describe() if callable(describe) else source.name
    finally:
        source.close()
    return Finding("camera source", True, f"opens: {detail}")


def _synthetic(needed: bool) -> Finding:
    from coachd.capture.open import synthetic_source_class
    from coachd.errors import SourceError

    try:
        synthetic_source_class()
    except SourceError as exc:
        detail = str(exc) + ("; with no camera there is nothing to watch" if needed else "")
        return Finding("synthetic", False, detail, "reinstall coachd (`make setup`)", needed)
    return Finding("synthetic", True, "the synthetic runner is there as a fallback")


# --- sound -----------------------------------------------------------------------------------


def _audio(settings: Settings) -> Iterator[Finding]:
    if not settings.speech.enabled:
        yield Finding("audio output", True, "speech.enabled = false: cues are printed")
        return
    try:
        from coachd.speech.player import find_device, list_output_devices, new_portaudio

        pa = new_portaudio()
    except Exception as exc:  # PortAudio missing or broken
        yield Finding(
            "audio output",
            False,
            f"PortAudio unavailable: {exc}",
            "install libportaudio2 and pyaudio (`make setup`)",
        )
        return
    try:
        devices = list_output_devices(pa)
    finally:
        pa.terminate()
    if not devices:
        yield Finding(
            "audio output",
            False,
            "no audio output device: cues are printed, not spoken",
            "connect speakers or headphones; `aplay -l` must list a card",
        )
        return
    names = ", ".join(
        f"{d.index}: {d.name}" + (" (default)" if d.is_default else "") for d in devices
    )
    yield Finding("audio output", True, f"{len(devices)} output device(s): {names}")
    chosen = find_device(devices, settings.speech.device)
    if chosen is None:
        yield Finding(
            "audio device",
            False,
            f"speech.device = {settings.speech.device!r} matches none of them",
            "set speech.device to a listed name or index, or empty for the default",
        )
    else:
        yield Finding("audio device", True, f"cues play on {chosen.index}: {chosen.name}")


def _voices(settings: Settings) -> Finding:
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    fix = "install espeak-ng (apt install espeak-ng libespeak-ng1)"
    try:
        from coachd.speech.player import quiet_stderr
        from coachd.speech.tts_worker import choose_voice, list_voices

        with quiet_stderr():
            voices = list_voices()
    except Exception as exc:  # pyttsx3 raises many kinds when no engine is installed
        return Finding("tts voices", False, f"pyttsx3 cannot start: {exc}", fix)
    if not voices:
        return Finding("tts voices", False, "pyttsx3 offers no voice", fix)
    try:
        chosen = choose_voice(voices, settings.speech.voice, settings.speech.language)
    except LookupError as exc:
        return Finding("tts voices", False, str(exc), "set speech.voice to a listed voice")
    binary = f"espeak-ng at {espeak}" if espeak else "no espeak-ng command"
    return Finding(
        "tts voices",
        True,
        f"{len(voices)} pyttsx3 voices ({binary}); speaking with {chosen or 'the default'}",
    )


COMMAND = Command(
    "check",
    "diagnose this machine: cameras, audio, voices, pose model, settings",
    _add_arguments,
    _run,
    70,
)
