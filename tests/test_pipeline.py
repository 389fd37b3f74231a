"""The live pipeline's newest-frame slot: frames are dropped and counted, never queued."""

from __future__ import annotations

import threading
import time

import numpy as np

from coachd.capture import FrameSource
from coachd.messages import Frame
from coachd.pipeline import (
    RATE_WINDOW_S,
    RETRY_HIGHER_S,
    WARMUP_WINDOWS,
    FrameSlot,
    RateGovernor,
    RollingWindow,
    every_nth,
)


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
    """A consumer far slower than the 30 fps source: most frames are dropped (or left out by a
    lower steady rate) and counted, each frame tracked is a fresh one (a queue would make the
    frames ever older), and the consumer is told each lower rate chosen."""
    from coachd.capture import open_source
    from coachd.messages import TrackedFrame
    from coachd.pipeline import LivePipeline
    from coachd.pose import create_tracker
    from coachd.settings import CameraSettings, PoseSettings

    spec = "synthetic:?view=side-right&seconds=9"
    source = open_source(spec, CameraSettings(), realtime=True)
    tracker = create_tracker(PoseSettings())
    ages: list[float] = []

    def slow_consumer(frame: Frame, tracked: TrackedFrame) -> None:
        ages.append(time.monotonic() - frame.t)
        time.sleep(0.12)

    def reopen() -> FrameSource:
        raise AssertionError("a finite source that ends is not reopened")

    rates: list[float] = []
    pipeline = LivePipeline(source, reopen, tracker, slow_consumer, on_rate=rates.append)
    pipeline.start()
    assert pipeline.ended.wait(30.0)
    snapshot = pipeline.snapshot()
    pipeline.stop()
    tracker.close()

    assert snapshot.frames_captured == 270
    assert snapshot.frames_tracked == len(ages)
    left_out = snapshot.frames_dropped + snapshot.frames_skipped
    assert snapshot.frames_tracked + left_out == snapshot.frames_captured
    assert left_out > snapshot.frames_captured / 2
    # About 8 frames a second get through: every 2nd frame, then every 3rd (10 fps, the least).
    assert rates == [15.0, 10.0]
    assert snapshot.rate_divisor == 3 and snapshot.tracked_rate_fps == 10.0
    # Fresh frames all along: the last ones are no older than the first ones were.
    quarter = max(1, len(ages) // 4)
    assert np.median(ages[-quarter:]) <= np.median(ages[:quarter]) + 0.1, ages


def _windows(
    governor: RateGovernor,
    start: float,
    count: int,
    dropped: float,
    busy: float,
    downstream_busy: float = 0.05,
) -> float:
    """`count` rate windows of frames at the governor's rate; returns the time after them."""
    t = start
    step = 1.0 / governor.fps
    for _ in range(count):
        frames = round(RATE_WINDOW_S * governor.fps)
        for i in range(frames):
            t += step
            lost = 1 if i < dropped * frames else 0
            if not lost:
                governor.observe_pose(busy * governor.workers / governor.fps)
                governor.observe_downstream(downstream_busy / governor.fps)
            governor.observe(t, 1, lost)
    return t


def test_an_overloaded_tracker_gets_a_steady_lower_rate_and_the_higher_one_back_later() -> None:
    governor = RateGovernor(nominal_fps=60.0, workers=2)
    assert governor.divisor == 1 and all(governor.keep(i) for i in range(5))
    t = _windows(governor, 0.0, WARMUP_WINDOWS, dropped=0.5, busy=1.0)  # models warming up
    assert governor.divisor == 1
    t = _windows(governor, t, 1, dropped=0.3, busy=1.0)
    assert governor.divisor == 2 and governor.fps == 30.0
    assert [i for i in range(6) if governor.keep(i)] == [0, 2, 4]
    # Keeping up, but busy enough that every frame would overload it again: stays.
    t = _windows(governor, t, 20, dropped=0.0, busy=0.6)
    assert governor.divisor == 2
    # Keeping up with room to spare: back to every frame once calm for RETRY_HIGHER_S.
    t = _windows(governor, t, int(RETRY_HIGHER_S / RATE_WINDOW_S) + 2, dropped=0.0, busy=0.2)
    assert governor.divisor == 1


def test_the_lowest_steady_rate_keeps_ten_frames_a_second() -> None:
    governor = RateGovernor(nominal_fps=30.0)
    _windows(governor, 0.0, 10, dropped=0.5, busy=1.0)
    assert governor.divisor == 3 and governor.fps == 10.0
    assert every_nth(1) == "every frame" and every_nth(3) == "every 3rd frame"


def test_an_overloaded_tracker_first_gets_its_waiting_worker_then_a_lower_rate() -> None:
    """The second pose worker joins before any frame is left out, and is sent back to wait
    last, once one worker would have room to spare."""
    governor = RateGovernor(nominal_fps=30.0, workers=1, max_workers=2)
    t = _windows(governor, 0.0, WARMUP_WINDOWS, dropped=0.5, busy=1.0)
    assert (governor.workers, governor.divisor) == (1, 1)
    t = _windows(governor, t, 1, dropped=0.3, busy=1.0)
    assert (governor.workers, governor.divisor) == (2, 1)
    t = _windows(governor, t, 1, dropped=0.3, busy=1.0)
    assert (governor.workers, governor.divisor) == (2, 2)
    calm = int(RETRY_HIGHER_S / RATE_WINDOW_S) + 2
    t = _windows(governor, t, calm, dropped=0.0, busy=0.2)
    assert (governor.workers, governor.divisor) == (2, 1)
    # Two workers each 45% busy: one alone would be 90% busy, so both stay.
    t = _windows(governor, t, 2 * calm, dropped=0.0, busy=0.45)
    assert (governor.workers, governor.divisor) == (2, 1)
    _windows(governor, t, calm, dropped=0.0, busy=0.2)
    assert (governor.workers, governor.divisor) == (1, 1)
    # Frames dropped while the stages after the pose stage were busy most of the time: another
    # pose worker would not help, a lower rate does.
    governor = RateGovernor(nominal_fps=30.0, workers=1, max_workers=2)
    t = _windows(governor, 0.0, WARMUP_WINDOWS + 1, dropped=0.3, busy=0.2, downstream_busy=0.9)
    assert (governor.workers, governor.divisor) == (1, 2)
