"""The live pipeline's newest-frame slot: frames are dropped and counted, never queued."""

from __future__ import annotations

import threading
import time

import numpy as np

from coachd.capture import FrameSource
from coachd.messages import Frame
from coachd.pipeline import FrameSlot, RollingWindow


def _frame(seq: int) -> Frame:
    return Frame(seq=seq, t=time.monotonic(), image=np.zeros((4, 4, 3), np.uint8))


def test_slot_keeps_only_the_newest_frame_and_counts_the_rest() -> None:
    slot = FrameSlot()
    for seq in range(5):
        slot.put(_frame(seq))
    taken = slot.take(timeout=0.1)
    assert taken is not None and taken.seq == 4
    assert slot.dropped == 4
    assert slot.take(timeout=0.01) is None


def test_slot_wakes_a_waiting_taker_and_closes() -> None:
    slot = FrameSlot()
    got: list[int] = []

    def taker() -> None:
        frame = slot.take(timeout=5.0)
        got.append(-1 if frame is None else frame.seq)

    thread = threading.Thread(target=taker)
    thread.start()
    slot.put(_frame(7))
    thread.join(2.0)
    assert got == [7]
    slot.close()
    assert slot.take(timeout=5.0) is None
    assert slot.closed_and_empty


def test_rolling_window_percentiles() -> None:
    window = RollingWindow(size=100)
    assert np.isnan(window.percentile(50))
    for value in range(1, 201):
        window.add(float(value))
    assert window.percentile(50) == np.percentile(np.arange(101, 201), 50)


def test_a_busy_pipeline_drops_frames_and_never_queues_them() -> None:
    """A consumer far slower than the 30 fps source: most frames are dropped and counted, and
    each frame tracked is a fresh one (a queue would make the frames ever older)."""
    from coachd.capture import open_source
    from coachd.messages import TrackedFrame
    from coachd.pipeline import LivePipeline
    from coachd.pose import create_tracker
    from coachd.settings import CameraSettings, PoseSettings

    spec = "synthetic:?view=side-right&seconds=4"
    source = open_source(spec, CameraSettings(), realtime=True)
    tracker = create_tracker(PoseSettings())
    ages: list[float] = []

    def slow_consumer(frame: Frame, tracked: TrackedFrame) -> None:
        ages.append(time.monotonic() - frame.t)
        time.sleep(0.12)

    def reopen() -> FrameSource:
        raise AssertionError("a finite source that ends is not reopened")

    pipeline = LivePipeline(source, reopen, tracker, slow_consumer)
    pipeline.start()
    assert pipeline.ended.wait(30.0)
    snapshot = pipeline.snapshot()
    pipeline.stop()
    tracker.close()

    assert snapshot.frames_captured == 120
    assert snapshot.frames_tracked == len(ages)
    assert snapshot.frames_tracked + snapshot.frames_dropped == snapshot.frames_captured
    assert snapshot.frames_dropped > snapshot.frames_captured / 2
    # Fresh frames all along: the last ones are no older than the first ones were.
    quarter = max(1, len(ages) // 4)
    assert np.median(ages[-quarter:]) <= np.median(ages[:quarter]) + 0.1, ages
