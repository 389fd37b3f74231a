"""Recordings: none unless asked for; when asked, a skeleton-overlay video with faces blurred."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from coachd.capture.synthetic import SyntheticSource
from coachd.gait.overlay import FACE_LANDMARKS, blur_face
from coachd.pose import create_tracker
from coachd.service.store import DB_NAME, SessionStore
from coachd.settings import PoseSettings


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


def run_daemon(state: Path, record: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "coachd", "run", "--quiet", "--no-speech",
            "--source", "synthetic:?view=side-right&seconds=9",
            "--set", f"service.state_dir={state}",
            "--set", "service.http_port=0",
            "--set", "service.session_start_s=2",
            "--set", f"service.record={'true' if record else 'false'}",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("record", [True, False], ids=["record", "default"])
def test_daemon_keeps_images_only_when_asked(tmp_path: Path, record: bool) -> None:
    done = run_daemon(tmp_path, record)
    assert done.returncode == 0, done.stderr[-2000:]
    videos = sorted((tmp_path / "recordings").glob("session-*.mp4"))
    if not record:
        assert not (tmp_path / "recordings").exists()
        return
    assert len(videos) == 1, done.stderr[-2000:]
    capture = cv2.VideoCapture(str(videos[0]))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape[:2] == (480, 640)
    assert frames >= 3 * 30, frames  # the session runs from about 3 s to the end at 9 s


def test_a_recordings_folder_that_cannot_be_written_stops_no_coaching(tmp_path: Path) -> None:
    (tmp_path / "recordings").write_text("a file where the folder should be")
    done = run_daemon(tmp_path, record=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cannot record session" in done.stderr, done.stderr[-2000:]
    store = SessionStore(tmp_path / DB_NAME, readonly=True)
    try:
        sessions = store.list_sessions()
    finally:
        store.close()
    assert sessions and sessions[0].strides > 10, sessions
