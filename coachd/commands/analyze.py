"""`coachd analyze SOURCE`: run a recording (or any source) through pose and gait, write JSON.

Reads as fast as the machine allows (not paced like a camera), shows progress on stderr, and
writes what coachd saw: the view, every foot contact and toe-off, one object per step with its
metrics, the median of each metric, and the cues coachd would have spoken.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TextIO

import numpy as np

from coachd.capture import FrameSource
from coachd.catalog import METRIC_NAMES
from coachd.chain import ChainListener, CoachingChain
from coachd.coach.coaching import Coaching
from coachd.commands import Command, settings_from_args
from coachd.errors import UsageError
from coachd.gait import GaitAnalyzer
from coachd.gait.analyzer import MIN_COUNTED
from coachd.gait.metrics import foot_strike
from coachd.gait.plausible import MAX_STEP_S
from coachd.messages import VIEWS, Cue, GaitEvent, GaitUpdate, Stride, TrackedFrame, View
from coachd.redact import redact
from coachd.settings import Settings

if TYPE_CHECKING:
    from coachd.gait.overlay import OverlayWriter

ROUND = 4
MIN_FPS = 15.0  # below this a frame is too long to time a foot contact (60-100 ms of 250)


@dataclass
class Analysis(ChainListener):
    """Everything one analysis run produced, collected from the coaching chain's events."""

    source: str
    fps: float
    frames: int = 0
    stored_fps: Optional[float] = None  # the rate the file plays at, when not `fps`
    t0: Optional[float] = None
    updates: list[GaitUpdate] = field(default_factory=list)
    events: list[GaitEvent] = field(default_factory=list)
    strides: list[Stride] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)

    @property
    def view(self) -> Optional[View]:
        """The view the steps were measured in most (else the one seen most)."""
        views = [s.view for s in self.strides] or [u.view for u in self.updates if u.view]
        return Counter(views).most_common(1)[0][0] if views else None

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        if self.t0 is None:
            self.t0 = tracked.t
        self.frames += 1
        self.updates.append(update)
        self.events.extend(update.events)
        self.strides.extend(update.strides)

    def cue_decided(self, cue: Cue) -> None:
        self.cues.append(cue)


class OverlayListener(ChainListener):
    """Draws each frame's skeleton, contacts, metrics and the cues said at it into the overlay
    video. A frame is written once its cues are known (the chain decides them after measuring
    it), so call `flush` after the last one."""

    def __init__(self, writer: OverlayWriter) -> None:
        self._writer = writer
        self._pending: Optional[tuple[np.ndarray, TrackedFrame, GaitUpdate]] = None
        self._cues: list[Cue] = []

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        self.flush()
        if image is not None:
            self._pending = (image, tracked, update)

    def cue_decided(self, cue: Cue) -> None:
        self._cues.append(cue)

    def flush(self) -> None:
        if self._pending is not None:
            image, tracked, update = self._pending
            self._writer.write(image, tracked.pose, update, self._cues)
        self._pending = None
        self._cues = []


def cues_from_analysis(updates: Sequence[GaitUpdate], settings: Settings) -> list[Cue]:
    """What the live daemon would have said over these updates: the same session logic, cue
    packs and engine rules, replayed in order (a broken pack is a ConfigError, as in `run`)."""
    coaching = Coaching.from_settings(settings)
    cues: list[Cue] = []
    for update in updates:
        cues.extend(coaching.update(update).cues)
    if updates:
        cues.extend(coaching.finish(updates[-1].t).cues)
    return cues


def capture_rate(source: FrameSource, capture_fps: Optional[float]) -> Optional[float]:
    """Put a file's times on the clock its frames were captured at: `capture_fps` when given
    (else what the file's tags say); the rate it plays at, when that differs, else None."""
    from coachd.capture.file import FileSource

    if not isinstance(source, FileSource):
        if capture_fps is not None:
            raise UsageError(
                f"--capture-fps {capture_fps:g}: only for video files (the source is "
                f"{redact(source.name)}, whose frames carry their own times)"
            )
        return None
    rate = capture_fps if capture_fps is not None else source.capture_fps
    if rate is None or rate == source.stored_fps:
        return None
    source.set_capture_rate(rate)
    return source.stored_fps


def analysis_chain(settings: Settings, fps: float) -> CoachingChain:
    """Gait and coaching as an analysis runs them: not live, so the contacts of the warm-up
    are worth finding late."""
    gait = GaitAnalyzer(settings.gait, fps, warm_up_events=True)
    return CoachingChain(gait, Coaching.from_settings(settings))


def analyze(
    spec: str,
    settings: Settings,
    overlay: Optional[Path] = None,
    progress: Optional[TextIO] = None,
    capture_fps: Optional[float] = None,
) -> Analysis:
    """Run SOURCE -> pose tracker -> the coaching chain over a whole source, unpaced."""
    from coachd.capture.open import open_source
    from coachd.gait.overlay import OverlayWriter
    from coachd.pose.tracker import create_tracker

    source = open_source(spec, settings.camera, realtime=False)
    try:
        stored_fps = capture_rate(source, capture_fps)
    except UsageError:
        source.close()
        raise
    fps = float(source.nominal_fps)
    if fps < MIN_FPS:
        source.close()
        raise UsageError(
            f"{redact(spec)}: {fps:g} fps is too slow to time foot contacts "
            f"(at least {MIN_FPS:g} fps; a re-timed clip: give --capture-fps)"
        )
    tracker = create_tracker(settings.pose)
    result = Analysis(source=spec, fps=fps, stored_fps=stored_fps)
    # The overlay plays at the file's own rate: slow motion stays slow.
    writer = OverlayWriter(overlay, stored_fps or fps) if overlay is not None else None
    bar = ProgressBar(progress, getattr(source, "frame_count", None))
    try:
        chain = analysis_chain(settings, fps)
        chain.add_listener(result)
        drawing = OverlayListener(writer) if writer is not None else None
        if drawing is not None:
            chain.add_listener(drawing)
        for frame in source:
            chain.feed(tracker.track(frame), frame.image)
            bar.tick(result.frames)
        if result.updates:
            chain.finish(result.updates[-1].t)
        if drawing is not None:
            drawing.flush()
    finally:
        bar.done(result.frames)
        if writer is not None:
            writer.close()
        tracker.close()
        source.close()
    return result


def summary(strides: Sequence[Stride]) -> dict[str, Any]:
    """Median of each metric over the steps (same key names), and the commonest strike."""
    out: dict[str, Any] = {}
    for name in METRIC_NAMES:
        values = [s.metrics[name] for s in strides if name in s.metrics]
        if values:
            out[name] = round(float(np.median(values)), ROUND)
    angles = [s.metrics["foot_angle_deg"] for s in strides if "foot_angle_deg" in s.metrics]
    if angles:
        # The commonest strike; a tie goes to the median landing's (not to the first step's).
        counted = Counter(foot_strike(a) for a in angles).most_common()
        tied = len(counted) > 1 and counted[0][1] == counted[1][1]
        out["foot_strike"] = foot_strike(float(np.median(angles))) if tied else counted[0][0]
    out["steps"] = len(strides)
    return out


def why_no_steps(result: Analysis) -> Optional[str]:
    """One line on why no step was measured (None when some were)."""
    if result.strides:
        return None
    if not result.frames:
        return "the source gave no frames"
    seen = sum(1 for u in result.updates if u.activity != "absent")
    if not seen:
        return "no runner was seen in any frame (the whole body, head to feet, must be in view)"
    if result.view is None:
        return "the camera view never settled (side, front or rear view of the runner)"
    contacts = sorted(e.t for e in result.events if e.kind == "contact")
    if len(contacts) < MIN_COUNTED:
        found = f"only {len(contacts)} foot contacts were found"
        stored = result.stored_fps
        if stored is not None and result.fps > stored:
            # Steps this many times slower than they were run: no step rhythm to find.
            return (
                f"{found} with the clip timed as slow motion (captured at {result.fps:g} fps, "
                f"plays at {stored:g}); if it is not slow motion, give --capture-fps {stored:g}"
            )
        return f"{found} (feet hidden or out of frame?)"
    step_s = float(np.median(np.diff(contacts)))
    if step_s > MAX_STEP_S:
        return (
            f"contacts came {step_s:.2f} s apart, slower than anyone runs "
            "(slow motion? give --capture-fps)"
        )
    activities = Counter(u.activity for u in result.updates if u.activity != "absent")
    if activities.get("running", 0) == 0:
        return f"the person was {activities.most_common(1)[0][0]}, not running"
    rejected = result.updates[-1].steps_rejected if result.updates else 0
    return f"no step passed the checks ({rejected} failed what a runner can do)"


def to_json(result: Analysis) -> dict[str, Any]:
    t0 = result.t0 or 0.0

    def rel(t: float) -> float:
        return round(t - t0, ROUND)

    strides = []
    for s in result.strides:
        item: dict[str, Any] = {
            "t": rel(s.t),
            "side": s.side,
            "duration_s": round(s.duration_s, ROUND),
        }
        item.update({k: round(v, ROUND) for k, v in s.metrics.items() if math.isfinite(v)})
        if "foot_angle_deg" in s.metrics:
            item["foot_strike"] = foot_strike(s.metrics["foot_angle_deg"])
        item["confidence"] = dict(s.confidence)
        strides.append(item)
    last = result.updates[-1] if result.updates else None
    checks: dict[str, Any] = {
        "label_repairs": last.label_repairs if last else 0,
        "steps_rejected": last.steps_rejected if last else 0,
        "why_no_steps": why_no_steps(result),
    }
    if result.stored_fps is not None:
        checks["stored_fps"] = result.stored_fps
    return {
        "source": redact(result.source),
        "fps": result.fps,
        "frames": result.frames,
        "checks": checks,
        "view": result.view,
        "summary": summary(result.strides),
        "strides": strides,
        "events": [
            {"t": rel(e.t), "side": e.side, "kind": e.kind}
            for e in sorted(result.events, key=lambda e: e.t)
        ],
        "cues": [
            {"t": rel(c.t_emit), "id": c.cue_id, "kind": c.kind, "text": c.text}
            for c in result.cues
        ],
    }


class ProgressBar:
    """A tqdm bar on a terminal; nothing at all on a pipe or file, so logs get no redraws."""

    def __init__(self, stream: Optional[TextIO], total: Optional[int]) -> None:
        from tqdm import tqdm

        shown = stream is not None and stream.isatty()
        self._bar = tqdm(
            total=total or None, desc="analyze", unit="frame", file=stream, disable=not shown
        )

    def tick(self, done: int) -> None:
        self._bar.update(done - self._bar.n)

    def done(self, done: int) -> None:
        self.tick(done)
        self._bar.close()


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", metavar="SOURCE", help="video file, camera, URL or synthetic:?..."
    )
    parser.add_argument(
        "--json", metavar="PATH", default="-", help="where to write the JSON ('-': stdout)"
    )
    parser.add_argument(
        "--overlay",
        metavar="OUT.mp4",
        default=None,
        help="also write the video with the skeleton, contacts and metrics drawn on it",
    )
    parser.add_argument(
        "--view", choices=("auto", *VIEWS), default=None, help="camera view (default: detect)"
    )
    parser.add_argument(
        "--capture-fps",
        metavar="FPS",
        type=_capture_fps,
        default=None,
        help="the rate a video file's frames were captured at, when it plays at another "
        "(phone slow motion: 120, 240); default: what the file's tags say, else its own rate",
    )


def _capture_fps(text: str) -> float:
    from coachd.capture.file import MAX_CAPTURE_FPS

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 1.0 <= value <= MAX_CAPTURE_FPS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give frames per second, 1 to {MAX_CAPTURE_FPS:.0f}"
        )
    return value


def _run(args: argparse.Namespace) -> int:
    loaded = settings_from_args(args, {"gait.view": args.view})
    overlay = Path(args.overlay) if args.overlay else None
    if overlay is not None and overlay.suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov"):
        raise UsageError(f"--overlay {overlay}: give a video file name ending in .mp4")
    output: Optional[Path] = None if args.json == "-" else Path(args.json)
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"--json {output}: the folder {output.parent} does not exist")
    result = analyze(
        args.source, loaded.settings, overlay, progress=sys.stderr, capture_fps=args.capture_fps
    )
    text = json.dumps(to_json(result), indent=1)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n")
    # What it did and wrote goes to stderr: stdout may be the JSON itself.
    steps, cues = len(result.strides), len(result.cues)
    print(f"analysed {result.frames} frames: {steps} steps, {cues} cues", file=sys.stderr)
    if result.stored_fps is not None:
        print(
            f"timed at the capture rate, {result.fps:g} fps (the file plays at "
            f"{result.stored_fps:g})",
            file=sys.stderr,
        )
    why = why_no_steps(result)
    if why is not None:
        print(f"no steps measured: {why}", file=sys.stderr)
    for path, what in ((output, "the analysis JSON"), (overlay, "the overlay video, H.264")):
        if path is not None:
            print(f"wrote {path} ({what})", file=sys.stderr)
    return 0


COMMAND = Command(
    "analyze",
    "analyse a recording: foot contacts, per-step metrics and cues as JSON",
    _add_arguments,
    _run,
    30,
)
