"""Frame sources: the real clip, a real MJPEG stream served by ffmpeg on loopback, bad inputs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

from coachd.capture import FrameSource, open_source
from coachd.capture.camera import fourcc_text, video_devices
from coachd.capture.file import FileSource
from coachd.capture.live import NewestFrameGrabber
from coachd.capture.open import NO_CAMERA_NOTICE, is_camera_spec
from coachd.capture.url import redact
from coachd.errors import SourceError
from coachd.messages import Frame
from coachd.settings import CameraSettings

CLIP_FRAMES = 360
CLIP_SIZE = (720, 1280)  # width, height

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def read_all(source: FrameSource) -> list[Frame]:
    with source:
        return list(source)


# --- video files ---------------------------------------------------------------------------


def test_real_clip_fast_mode_reads_every_frame_with_file_time(real_clip: Path) -> None:
    source = open_source(str(real_clip), CameraSettings(), realtime=False)
    assert isinstance(source, FileSource)
    assert source.finite and not source.live
    assert source.nominal_fps == pytest.approx(30.0)
    frames = read_all(source)
    assert len(frames) == CLIP_FRAMES
    assert {f.size for f in frames} == {CLIP_SIZE}
    assert [f.seq for f in frames] == list(range(CLIP_FRAMES))
    times = np.array([f.t for f in frames])
    assert times[0] == 0.0
    np.testing.assert_allclose(np.diff(times), 1 / 30)
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape[2] == 3
    assert source.read() is None  # stays ended
    assert source.frames_dropped == 0


def test_two_fast_reads_of_the_clip_are_identical(real_clip: Path) -> None:
    with open_source(str(real_clip), CameraSettings(), realtime=False) as a:
        first = [a.read() for _ in range(5)]
    with open_source(str(real_clip), CameraSettings(), realtime=False) as b:
        second = [b.read() for _ in range(5)]
    for x, y in zip(first, second):
        assert x is not None and y is not None
        assert (x.seq, x.t) == (y.seq, y.t)
        assert np.array_equal(x.image, y.image)


def test_paced_mode_takes_real_time_and_stamps_monotonic_time(real_clip: Path) -> None:
    count = 24  # 0.8 s of video
    span = (count - 1) / 30

    def read_cut(realtime: bool) -> tuple[float, list[Frame]]:
        with open_source(str(real_clip), CameraSettings(), realtime=realtime) as source:
            started = time.monotonic()
            frames = [source.read() for _ in range(count)]
            return time.monotonic() - started, [f for f in frames if f is not None]

    fast_s, fast = read_cut(False)
    before = time.monotonic()
    paced_s, paced = read_cut(True)
    after = time.monotonic()
    assert len(fast) == len(paced) == count
    # Sleeping to each due time cannot finish early; decoding alone is quicker.
    assert paced_s >= 0.95 * span
    assert paced_s > 1.3 * fast_s, (paced_s, fast_s)
    times = [f.t for f in paced]
    assert all(before <= t <= after for t in times)
    assert all(b > a for a, b in zip(times, times[1:]))
    seqs = [f.seq for f in paced]
    assert seqs[0] == 0 and all(b > a for a, b in zip(seqs, seqs[1:]))


def test_paced_mode_skips_to_the_newest_frame_for_a_slow_reader(real_clip: Path) -> None:
    with open_source(str(real_clip), CameraSettings(), realtime=True) as source:
        first = source.read()
        time.sleep(0.5)  # 15 frames fall due meanwhile
        second = source.read()
    assert first is not None and second is not None
    assert second.seq - first.seq >= 10
    assert source.frames_dropped == second.seq - first.seq - 1


@pytest.mark.parametrize(
    ("rotation", "mirror", "expected"),
    [
        (90, False, lambda im: np.rot90(im, k=-1)),
        (180, False, lambda im: np.rot90(im, k=2)),
        (270, False, lambda im: np.rot90(im, k=1)),
        (0, True, lambda im: im[:, ::-1]),
        (90, True, lambda im: np.rot90(im, k=-1)[:, ::-1]),
    ],
)
def test_rotation_and_mirror_on_real_frames(
    real_clip: Path,
    rotation: int,
    mirror: bool,
    expected: Callable[[np.ndarray], np.ndarray],
) -> None:
    with open_source(str(real_clip), CameraSettings(), realtime=False) as plain:
        upright = [plain.read() for _ in range(2)]
    turned_settings = CameraSettings(rotation=rotation, mirror=mirror)
    with open_source(str(real_clip), turned_settings, realtime=False) as turned_source:
        turned = [turned_source.read() for _ in range(2)]
    for a, b in zip(upright, turned):
        assert a is not None and b is not None
        assert np.array_equal(b.image, expected(a.image))
        assert (a.seq, a.t) == (b.seq, b.t)
    assert turned[0] is not None
    width, height = CLIP_SIZE
    assert turned[0].size == ((height, width) if rotation in (90, 270) else (width, height))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=str(missing)) as err:
        open_source(str(missing), CameraSettings(), realtime=False)
    assert "no such file" in str(err.value)
    assert "\n" not in str(err.value)


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="directory"):
        open_source(str(tmp_path), CameraSettings(), realtime=False)


def test_text_file_named_mp4_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are not video frames\n" * 100)
    with pytest.raises(SourceError, match=str(fake)) as err:
        open_source(str(fake), CameraSettings(), realtime=False)
    assert "\n" not in str(err.value)


def test_truncated_mp4_is_rejected(real_clip: Path, tmp_path: Path) -> None:
    # moov atom at the end: cutting the file loses the index, it cannot be opened at all
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(real_clip.read_bytes()[:200_000])
    with pytest.raises(SourceError, match=str(cut)):
        open_source(str(cut), CameraSettings(), realtime=False)


@needs_ffmpeg
def test_mp4_truncated_mid_stream_fails_where_the_data_ends(
    real_clip: Path, tmp_path: Path
) -> None:
    # faststart puts the index first: the file opens, then decoding stops part way
    faststart = tmp_path / "faststart.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(real_clip)),
            *("-c", "copy", "-movflags", "+faststart", str(faststart)),
        ],
        check=True,
        timeout=60,
    )
    cut = tmp_path / "half.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    source = open_source(str(cut), CameraSettings(), realtime=False)
    count = 0
    with pytest.raises(SourceError, match=f"{cut}.*truncated or corrupt"), source:
        for _ in source:
            count += 1
    assert 0 < count < CLIP_FRAMES


# --- cameras -------------------------------------------------------------------------------


def _absent_camera_index() -> int:
    present = {d.name for d in video_devices()}
    return next(i for i in range(40, 100) if f"video{i}" not in present)


@pytest.mark.timeout(15)
def test_camera_index_that_does_not_exist_fails_quickly() -> None:
    index = _absent_camera_index()
    with pytest.raises(SourceError, match=rf"camera {index}: no such device /dev/video{index}"):
        open_source(str(index), CameraSettings(), realtime=True)


@pytest.mark.timeout(15)
def test_missing_by_id_camera_link_is_named() -> None:
    link = "/dev/v4l/by-id/usb-Nobody_No_Camera-video-index0"
    with pytest.raises(SourceError, match=link):
        open_source(link, CameraSettings(), realtime=True)


@pytest.mark.timeout(30)
def test_auto_without_camera_falls_back_to_the_synthetic_runner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if video_devices():
        pytest.skip("this machine has a camera: auto would open it")
    try:
        source = open_source("auto", CameraSettings(), realtime=False)
    except SourceError as exc:  # the synthetic runner package is not there
        assert "synthetic" in str(exc)
    else:
        with source:
            frame = source.read()
        assert frame is not None and frame.image.ndim == 3
    assert NO_CAMERA_NOTICE in caplog.text


def test_source_kinds_and_helpers() -> None:
    assert is_camera_spec("0") and is_camera_spec("/dev/video2")
    assert is_camera_spec("/dev/v4l/by-id/usb-Logitech-video-index0")
    assert not is_camera_spec("run.mp4") and not is_camera_spec("10.mp4")
    assert fourcc_text(float(0x47504A4D)) == "MJPG"
    assert redact("rtsp://admin:secret@10.0.0.5/stream") == "rtsp://***@10.0.0.5/stream"
    with pytest.raises(SourceError, match="empty source"):
        open_source("  ", CameraSettings(), realtime=True)


# --- the newest-frame grab thread ------------------------------------------------------------


def test_grabber_reports_a_stall_and_stops() -> None:
    release = threading.Event()
    produced = 0
    blocker = threading.Event()

    def read_image() -> Optional[np.ndarray]:
        nonlocal produced
        if produced >= 3:
            blocker.wait(10)  # a driver that stops delivering and blocks
            return None
        produced += 1
        return np.full((4, 4, 3), produced, np.uint8)

    grabber = NewestFrameGrabber("camera test", read_image, release.set, 0.3, 0.3)
    grabber.start()
    seen = []
    with pytest.raises(SourceError, match=r"camera test stalled: no frame for 0\.3 s"):
        for _ in range(10):
            seen.append(grabber.wait_newer().seq)
    assert seen and seen == sorted(set(seen)) and seen[-1] <= 2
    blocker.set()
    grabber.stop(2.0)
    assert release.wait(2.0)  # the thread released the device on its way out


def test_grabber_passes_on_a_driver_failure() -> None:
    def read_image() -> Optional[np.ndarray]:
        raise OSError("device vanished")

    grabber = NewestFrameGrabber("camera test", read_image, lambda: None, 5.0, 5.0)
    grabber.start()
    with pytest.raises(SourceError, match="camera test failed: OSError: device vanished"):
        grabber.wait_newer()


# --- a real MJPEG network camera: ffmpeg serving on loopback -------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MjpegServer:
    """ffmpeg serving a 320x240 30 fps test pattern as multipart JPEG to one client."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
        self.process = subprocess.Popen(
            [
                *("ffmpeg", "-nostdin", "-loglevel", "error", "-re"),
                *("-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"),
                *("-f", "mpjpeg", "-q:v", "5", "-listen", "1", self.url),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def connect(self, camera: CameraSettings) -> FrameSource:
        # ffmpeg serves a single client, so a probe connection would use it up: retry the open
        # itself until ffmpeg listens (a refused connect fails at once).
        deadline = time.monotonic() + 15
        while True:
            try:
                return open_source(self.url, camera, realtime=True)
            except SourceError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    server = MjpegServer()
    yield server
    server.stop()


LIVE = CameraSettings(read_timeout_s=1.0, open_timeout_s=3.0)


@pytest.mark.timeout(60)
def test_mjpeg_stream_frames_arrive_fresh(mjpeg_server: MjpegServer) -> None:
    with mjpeg_server.connect(LIVE) as source:
        assert source.live and not source.finite
        frames = [source.read() for _ in range(15)]
        now = time.monotonic()
    got = [f for f in frames if f is not None]
    assert len(got) == 15
    assert {f.size for f in got} == {(320, 240)}
    seqs = [f.seq for f in got]
    times = [f.t for f in got]
    assert all(b > a for a, b in zip(seqs, seqs[1:]))
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[-1] <= now
    assert "320x240" in source.describe()


@pytest.mark.timeout(60)
def test_slow_reader_gets_the_newest_frame_and_drops_are_counted(
    mjpeg_server: MjpegServer,
) -> None:
    period = 0.3  # the consumer is 9 source frames slow
    ages = []
    frames = []
    with mjpeg_server.connect(LIVE) as source:
        source.read()
        for _ in range(6):
            time.sleep(period)
            frame = source.read()
            assert frame is not None
            ages.append(time.monotonic() - frame.t)
            frames.append(frame)
        dropped = source.frames_dropped
    # A queue would hand out frames ever older (about 0.27 s more per read).
    assert float(np.median(ages)) < period / 2, ages
    seqs = [f.seq for f in frames]
    assert dropped > 0
    # every frame grabbed but never handed out was counted
    assert dropped == seqs[-1] + 1 - (len(frames) + 1)


@pytest.mark.timeout(60)
def test_killed_server_raises_source_error_promptly(mjpeg_server: MjpegServer) -> None:
    with mjpeg_server.connect(LIVE) as source:
        for _ in range(5):
            assert source.read() is not None
        mjpeg_server.stop()
        killed = time.monotonic()
        with pytest.raises(SourceError, match=mjpeg_server.url) as err:
            for _ in range(200):
                assert source.read() is not None  # never None for a fault
        elapsed = time.monotonic() - killed
    assert "\n" not in str(err.value)
    assert elapsed < LIVE.read_timeout_s + 3.0, elapsed


@pytest.mark.timeout(60)
def test_stalled_server_raises_stalled(mjpeg_server: MjpegServer) -> None:
    with mjpeg_server.connect(LIVE) as source:
        assert source.read() is not None
        os.kill(mjpeg_server.process.pid, signal.SIGSTOP)
        stalled = time.monotonic()
        with pytest.raises(SourceError, match=mjpeg_server.url):
            for _ in range(200):
                source.read()
        elapsed = time.monotonic() - stalled
    assert elapsed < LIVE.read_timeout_s + 3.0, elapsed


@pytest.mark.timeout(30)
def test_unreachable_url_fails_quickly_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    with pytest.raises(SourceError, match=f"stream {url}: cannot connect"):
        open_source(url, LIVE, realtime=True)


@pytest.mark.timeout(30)
def test_silent_server_times_out_instead_of_hanging() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/cam.mjpg"
        started = time.monotonic()
        with pytest.raises(SourceError, match="cannot connect"):
            open_source(url, CameraSettings(open_timeout_s=1.0), realtime=True)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 3.0, elapsed


def test_reading_a_closed_live_source_raises_at_once(mjpeg_server: MjpegServer) -> None:
    source = mjpeg_server.connect(LIVE)
    assert source.read() is not None
    source.close()
    with pytest.raises(SourceError, match="is closed"):
        source.read()
