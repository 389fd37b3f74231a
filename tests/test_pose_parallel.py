"""The frame-parallel pose tracker: capture order kept, landmarks as the serial tracker's."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from coachd.capture.open import open_synthetic
from coachd.messages import TrackedFrame
from coachd.pose.compare import landmark_errors
from coachd.pose.parallel import FrameParallelTracker, Layout, Turnstile, choose_layout
from coachd.pose.tracker import Tracker, create_tracker
from coachd.settings import PoseSettings

AGREEMENT_PCT_TORSO = 1.0


def test_tickets_pass_the_turnstile_in_number_order_whatever_order_they_arrive_in() -> None:
    turnstile = Turnstile()
    first, second = turnstile.issue(), turnstile.issue()
    passed: list[int] = []
    waiting = threading.Event()

    def late_ticket_arrives_first() -> None:
        waiting.set()
        with turnstile.turn(second):
            passed.append(second)

    thread = threading.Thread(target=late_ticket_arrives_first)
    thread.start()
    assert waiting.wait(5.0)
    with turnstile.turn(first):
        passed.append(first)
    thread.join(5.0)
    assert passed == [first, second]


@pytest.mark.parametrize(
    ("cores", "fps", "workers", "expected"),
    [
        (2, 60.0, 0, Layout(2, 1)),  # one interpreter a core
        (2, 30.0, 0, Layout(2, 1, active=1)),  # one keeps up alone; the other joins if not
        (8, 30.0, 0, Layout(2, 1, active=1)),
        (4, 10.0, 0, Layout(2, 1, active=1)),
        (8, 60.0, 0, Layout(2, 4)),  # more cores: more threads each
        (1, 60.0, 0, Layout(1, 1)),  # one core: one interpreter
        (2, 60.0, 1, Layout(1, 2)),  # asked for the serial tracker
        (2, 10.0, 2, Layout(2, 1)),  # asked for two workers
    ],
)
def test_the_layout_follows_the_cores_and_the_frame_rate(
    cores: int, fps: float, workers: int, expected: Layout
) -> None:
    assert choose_layout(cores, fps, workers, threads=2) == expected


def test_a_live_rate_on_two_cores_gets_the_frame_parallel_tracker() -> None:
    settings = PoseSettings(workers=2)
    tracker = create_tracker(settings, fps=60.0)
    try:
        assert isinstance(tracker, FrameParallelTracker) and tracker.workers == 2
    finally:
        tracker.close()
    serial = create_tracker(settings)  # analysis: frame by frame, as before
    assert isinstance(serial, Tracker) and not isinstance(serial, FrameParallelTracker)
    serial.close()


def test_frames_in_flight_come_back_in_capture_order_agreeing_with_the_serial_tracker() -> None:
    """Frames submitted as fast as two workers take them (each seeded one frame earlier than
    the serial tracker would be): delivered in capture order, landmarks within 1% of torso."""
    with open_synthetic("synthetic:?fps=60&seconds=4&view=side-right", realtime=False) as source:
        frames = list(source)
    settings = PoseSettings()
    serial = create_tracker(settings)
    parallel = FrameParallelTracker(settings, Layout(2, 1))
    try:
        expected = [serial.track(frame) for frame in frames]
        delivered: list[TrackedFrame] = []
        for frame in frames:
            parallel.submit(frame, delivered.append)
        assert parallel.drain(timeout=120.0)
    finally:
        serial.close()
        parallel.close()

    assert [tracked.seq for tracked in delivered] == [frame.seq for frame in frames]
    assert [tracked.t for tracked in delivered] == sorted(tracked.t for tracked in delivered)
    both = [
        landmark_errors(a.pose, b.pose)
        for a, b in zip(expected, delivered)
        if a.pose is not None and b.pose is not None
    ]
    assert len(both) >= 0.95 * len(frames)
    assert float(np.median(np.concatenate(both))) < AGREEMENT_PCT_TORSO


def test_one_working_worker_tracks_frame_by_frame_as_the_serial_tracker_until_two_work() -> None:
    with open_synthetic("synthetic:?fps=30&seconds=2&view=side-right", realtime=False) as source:
        frames = list(source)
    settings = PoseSettings()
    serial = create_tracker(settings)
    parallel = FrameParallelTracker(settings, Layout(2, 1, active=1))
    try:
        errors = []
        for frame in frames:
            expected, tracked = serial.track(frame), parallel.track(frame)
            assert tracked.seq == frame.seq
            if expected.pose is not None and tracked.pose is not None:
                errors.append(landmark_errors(expected.pose, tracked.pose))
        assert len(errors) >= 0.95 * len(frames)
        assert float(np.median(np.concatenate(errors))) < AGREEMENT_PCT_TORSO

        # One working: the next frame is taken only once the one in flight was delivered.
        events: list[str] = []

        def deliver(tracked: TrackedFrame) -> None:
            events.append(f"delivered {tracked.seq}")

        for frame in frames[:2]:
            parallel.submit(frame, deliver)
            events.append(f"submitted {frame.seq}")
        parallel.set_active(2)
        for frame in frames[2:4]:
            parallel.submit(frame, deliver)
        assert parallel.drain(timeout=60.0)
        seqs = [frame.seq for frame in frames[:4]]
        assert events.index(f"delivered {seqs[0]}") < events.index(f"submitted {seqs[1]}")
        delivered = [int(e.split()[1]) for e in events if e.startswith("delivered")]
        assert delivered == seqs
    finally:
        serial.close()
        parallel.close()
