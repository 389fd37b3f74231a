"""The live pipeline's newest-frame slot: frames are dropped and counted, never queued."""

from __future__ import annotations

import threading
import time

import numpy as np

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
