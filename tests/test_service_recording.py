"""Recordings: none unless asked for; when asked, a skeleton-overlay video with faces blurred."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from daemon_harness import DaemonProcess, newest_session, start_daemon, wait_until

from coachd.capture.synthetic import SyntheticSource
from coachd.gait.overlay import FACE_LANDMARKS, blur_face
from coachd.pose import create_tracker
from coachd.service.store import DB_NAME
from coachd.settings import PoseSettings

# Generous: a machine busy with other work tracks the runner slowly.
DEADLINE_S = 240.0


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_blur_face_hides_the_face_and_leaves_the_body() -> None:
    source = SyntheticSource.from_spec("synthetic:?view=front&seconds=1", realtime=False)
    tracker = create_tracker(PoseSettings())
    try:
        frame = next(iter(source))
        pose = tracker.track(frame).pose
    finally:
        tracker.close()
    assert pose is not None
    blurred = frame.image.copy()
    blur_face(blurred, pose)
    cx, cy = (int(v) for v in pose.xy[FACE_LANDMARKS].mean(axis=0))
    face = (slice(cy - 12, cy + 12), slice(cx - 12, cx + 12))
    assert sharpness(blurred[face]) < 0.2 * sharpness(frame.image[face])
    knee_x, knee_y = (int(v) for v in pose.xy[25])
    knee = (slice(knee_y - 15, knee_y + 15), slice(knee_x - 15, knee_x + 15))
    assert np.array_equal(blurred[knee], frame.image[knee])


def run_daemon(workdir: Path, record: bool, strides: int = 10) -> DaemonProcess:
    """The daemon on an endless synthetic runner, stopped (SIGTERM) once its session holds
    `strides` strides, however slowly a busy machine gets there."""
    daemon = start_daemon(
        workdir,
        "synthetic:?view=side-right",
        settings=(
            "service.session_start_s=2",
            f"service.record={'true' if record else 'false'}",
        ),
    )
    try:
        db = daemon.state_dir / DB_NAME
        enough = wait_until(
            lambda: len(getattr(newest_session(db), "strides", ())) >= strides, DEADLINE_S
        )
        assert enough, daemon.output()[-2000:]
        assert daemon.stop(timeout=30.0) == 0, daemon.output()[-2000:]
    finally:
        daemon.cleanup()
    return daemon


@pytest.mark.parametrize("record", [True, False], ids=["record", "default"])
def test_daemon_keeps_images_only_when_asked(tmp_path: Path, record: bool) -> None:
    daemon = run_daemon(tmp_path, record)
    recordings = daemon.state_dir / "recordings"
    if not record:
        assert not recordings.exists()
        return
    videos = sorted(recordings.glob("session-*.mp4"))
    assert len(videos) == 1, daemon.output()[-2000:]
    capture = cv2.VideoCapture(str(videos[0]))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape[:2] == (480, 640)
    # Every frame the recorder took is in the file (how many it took depends on the load).
    written = re.search(r"recorded session \d+: (\d+) frames", daemon.output())
    assert written is not None, daemon.output()[-2000:]
    assert frames == int(written.group(1)) > 0, (frames, written.group(0))


def test_a_recordings_folder_that_cannot_be_written_stops_no_coaching(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "recordings").write_text("a file where the folder should be")
    daemon = run_daemon(tmp_path, record=True)
    assert "cannot record session" in daemon.output(), daemon.output()[-2000:]
