"""The live pipeline: capture thread -> newest-frame slot -> tracker thread -> downstream stages.

Frames that arrive while the tracker is busy replace the waiting one and are counted as
dropped, never queued: the runner is coached on what they are doing now, not a second ago.
A live source's fault never ends the pipeline: the capture thread reconnects with back-off,
cut short when a cheap probe sees the source back. A finite source (a file) that fails ends
it, with the error kept in `failure`. An unexpected exception in either thread restarts that
stage (supervised: logged once with its traceback, counted, paced by its own back-off).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from coachd.capture import FrameSource
from coachd.errors import SourceError
from coachd.messages import Frame, TrackedFrame
from coachd.pose.tracker import PoseTracker

log = logging.getLogger(__name__)

SourceOpener = Callable[[], FrameSource]
SourceProbe = Callable[[], bool]
TrackedConsumer = Callable[[Frame, TrackedFrame], None]

STAGES = ("capture", "tracker")
PROBE_EVERY_S = 0.5  # a source that comes back is reopened within about this long
RETURN_GRACE_S = 2.0
RESTART_FIRST_S = 0.1  # pause before restarting a failed stage, doubling while it keeps failing
RESTART_MAX_S = 5.0
STAGE_STABLE_S = 30.0  # a stage that ran this long before failing starts its pauses afresh
TRACEBACKS_KEPT = 32


class FrameSlot:
    """Holds only the newest frame; a frame replaced before it was taken counts as dropped."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def take(self, timeout: float) -> Optional[Frame]:
        """The newest frame, waiting up to `timeout`; None on timeout or once closed and empty."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed_and_empty(self) -> bool:
        with self._cond:
            return self._closed and self._frame is None


class RollingWindow:
    """The last `size` samples, for medians and percentiles of recent timings."""

    def __init__(self, size: int = 600) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)

    def percentile(self, q: float) -> float:
        with self._lock:
            if not self._values:
                return float("nan")
            return float(np.percentile(np.fromiter(self._values, float), q))


@dataclass(frozen=True)
class PipelineSnapshot:
    """What the pipeline has done so far: for the status line, /metrics and the summary."""

    state: str
    frames_captured: int
    frames_tracked: int
    frames_dropped: int
    fps: float
    pose_ms_p50: float
    latency_ms_p50: float
    latency_ms_p95: float
    reconnects: int
    last_error: str
    stage_restarts: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_fraction(self) -> float:
        return self.frames_dropped / self.frames_captured if self.frames_captured else 0.0


class ReturnWatch:
    """Tells, from a cheap probe, when a lost source seems back, to cut a long back-off short.

    Only a change from down to up counts: a source that answers yet fails to open keeps its
    back-off. For RETURN_GRACE_S after that change the reopen itself is the probe, as a
    server may accept a connection a moment before it serves (or, serving one client, be
    used up by the probe's connection and start afresh for the next).
    """

    def __init__(self, probe: SourceProbe) -> None:
        self._probe = probe
        self._down_seen = False
        self._grace_until = 0.0

    def back(self) -> bool:
        now = time.monotonic()
        if now < self._grace_until:
            return True
        if not self._probe():
            self._down_seen = True
            return False
        if not self._down_seen:
            return False
        self._down_seen = False
        self._grace_until = now + RETURN_GRACE_S
        return True

    def reset(self) -> None:
        self._down_seen = False
        self._grace_until = 0.0


class LivePipeline:
    """Runs capture and tracking on their own threads and hands each TrackedFrame on."""

    def __init__(
        self,
        source: Optional[FrameSource],
        reopen: SourceOpener,
        tracker: PoseTracker,
        consume: TrackedConsumer,
        reconnect_max_s: float = 30.0,
        on_source_fault: Optional[Callable[[str, float], None]] = None,
        probe: Optional[SourceProbe] = None,
    ) -> None:
        """`probe` (see capture.source_probe) cheaply tells that a lost source may be back."""
        self._source = source
        self._reopen = reopen
        self._tracker = tracker
        self._consume = consume
        self._reconnect_max_s = reconnect_max_s
        self._on_source_fault = on_source_fault
        self._return_watch = ReturnWatch(probe) if probe is not None else None
        self._slot = FrameSlot()
        self._stop = threading.Event()
        self.ended = threading.Event()  # a finite source ran out and every frame was handled
        self.failure: Optional[SourceError] = None  # why a finite source ended early
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._state = "starting"
        self._last_error = ""
        self._frames_captured = 0
        self._frames_tracked = 0
        self._source_dropped_before = 0
        self._reconnects = 0
        self._restarts = dict.fromkeys(STAGES, 0)
        self._tracebacks_logged: set[tuple[str, str, str]] = set()
        self._tracked_times: deque[float] = deque(maxlen=90)
        self.pose_ms = RollingWindow()
        self.latency_ms = RollingWindow()
        # Heartbeats: each thread stamps them every loop; a thread stuck in a call stops them.
        self.capture_heartbeat = time.monotonic()
        self.tracker_heartbeat = time.monotonic()
        self.last_frame_tracked_at = 0.0
        self._retry_at = 0.0

    def start(self) -> None:
        for name, loop in (("capture", self._capture_loop), ("tracker", self._tracker_loop)):
            thread = threading.Thread(
                target=self._supervise, args=(name, loop), name=f"coachd-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._slot.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.name == "coachd-capture" and thread.is_alive() for thread in self._threads):
            # Still stuck in a read: closing the device under it is unsafe; the process exits.
            return
        with self._lock:
            source, self._source = self._source, None
        if source is not None:
            source.close()

    def healthy(self, within_s: float) -> bool:
        """Both threads made progress within `within_s`: neither is wedged in a call."""
        now = time.monotonic()
        return now - self.capture_heartbeat < within_s and now - self.tracker_heartbeat < within_s

    def frames_flowing(self, within_s: float) -> bool:
        return time.monotonic() - self.last_frame_tracked_at < within_s

    def snapshot(self) -> PipelineSnapshot:
        with self._lock:
            times = list(self._tracked_times)
            source = self._source
            # Frames a live source skipped (newer ones arrived first) were captured and dropped.
            skipped = self._source_dropped_before + (source.frames_dropped if source else 0)
            dropped = self._slot.dropped + skipped
            captured = self._frames_captured + skipped
            state, error = self._state, self._last_error
            tracked, reconnects, retry_at = self._frames_tracked, self._reconnects, self._retry_at
            restarts = dict(self._restarts)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        if times and time.monotonic() - times[-1] > 2.0:
            fps = 0.0
        if state == "reconnecting":
            state = f"reconnecting in {max(0.0, retry_at - time.monotonic()):.0f} s"
        return PipelineSnapshot(
            state=state,
            frames_captured=captured,
            frames_tracked=tracked,
            frames_dropped=dropped,
            fps=fps,
            pose_ms_p50=self.pose_ms.percentile(50),
            latency_ms_p50=self.latency_ms.percentile(50),
            latency_ms_p95=self.latency_ms.percentile(95),
            reconnects=reconnects,
            last_error=error,
            stage_restarts=restarts,
        )

    def _set_state(self, state: str, error: str = "") -> None:
        with self._lock:
            self._state = state
            if error:
                self._last_error = error

    def _beat(self, stage: str) -> None:
        if stage == "capture":
            self.capture_heartbeat = time.monotonic()
        else:
            self.tracker_heartbeat = time.monotonic()

    def _supervise(self, stage: str, loop: Callable[[], None]) -> None:
        """Run one stage's loop until it returns; restart it when it raises.

        A stage that fails on every frame must neither flood the log (each distinct failure
        is logged once with its traceback, then only counted) nor spin the CPU (the pause
        before each restart doubles, up to RESTART_MAX_S).
        """
        pause = RESTART_FIRST_S
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                loop()
                return
            except Exception as exc:
                with self._lock:
                    self._restarts[stage] += 1
                    count = self._restarts[stage]
                self._log_failure(stage, exc, count)
            if time.monotonic() - started > STAGE_STABLE_S:
                pause = RESTART_FIRST_S
            deadline = time.monotonic() + pause
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._beat(stage)  # restarting is progress, not a wedge
                self._stop.wait(min(0.25, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2.0, RESTART_MAX_S)

    def _log_failure(self, stage: str, exc: Exception, count: int) -> None:
        where = traceback.extract_tb(exc.__traceback__)[-1:]
        key = (stage, type(exc).__name__, f"{where[0].filename}:{where[0].lineno}" if where else "")
        if key not in self._tracebacks_logged and len(self._tracebacks_logged) < TRACEBACKS_KEPT:
            self._tracebacks_logged.add(key)
            log.error("%s stage failed (restart %d), restarting it", stage, count, exc_info=exc)
        else:
            log.debug("%s stage failed again (restart %d): %r", stage, count, exc)

    def _capture_loop(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            self.capture_heartbeat = time.monotonic()
            source = self._source
            if source is None:
                try:
                    source = self._reopen()
                except SourceError as exc:
                    backoff = self._wait_before_retry(str(exc), backoff)
                    continue
                with self._lock:
                    self._source = source
                    self._reconnects += 1
                log.info("source %s reopened", source.name)
                if self._return_watch is not None:
                    self._return_watch.reset()
                backoff = 1.0
            self._set_state("running")
            try:
                frame = source.read()
            except SourceError as exc:
                with self._lock:
                    self._source = None
                    self._source_dropped_before += source.frames_dropped
                source.close()
                if source.finite:
                    # A truncated file will not heal by reopening: end the run, and leave
                    # the error to the caller to report once.
                    self.failure = exc
                    self._set_state("ended", str(exc))
                    self._slot.close()
                    return
                backoff = self._wait_before_retry(str(exc), backoff)
                continue
            if frame is None:
                self._set_state("ended")
                self._slot.close()
                return
            with self._lock:
                self._frames_captured += 1
            self._slot.put(frame)

    def _wait_before_retry(self, error: str, backoff: float) -> float:
        """Report the fault, wait `backoff` seconds (heartbeat kept), return the next back-off."""
        with self._lock:
            self._retry_at = time.monotonic() + backoff
        self._set_state("reconnecting", error)
        watch = self._return_watch
        sooner = " (sooner if it comes back)" if watch is not None else ""
        log.warning("%s; retrying in %.0f s%s", error, backoff, sooner)
        if self._on_source_fault is not None:
            self._on_source_fault(error, backoff)
        deadline = time.monotonic() + backoff
        next_probe = time.monotonic() + PROBE_EVERY_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.capture_heartbeat = time.monotonic()
            self._stop.wait(min(0.25, max(0.0, deadline - time.monotonic())))
            if watch is not None and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + PROBE_EVERY_S
                if watch.back():
                    log.debug("source answers again: reconnecting now")
                    break
        return min(backoff * 2.0, self._reconnect_max_s)

    def _tracker_loop(self) -> None:
        while not self._stop.is_set():
            self.tracker_heartbeat = time.monotonic()
            frame = self._slot.take(timeout=0.25)
            if frame is None:
                if self._slot.closed_and_empty:
                    break
                continue
            tracked = self._tracker.track(frame)
            self.tracker_heartbeat = self.last_frame_tracked_at = time.monotonic()
            self.pose_ms.add(tracked.pose_ms)
            self.latency_ms.add(1000.0 * (tracked.t_ready - frame.t))
            with self._lock:
                self._frames_tracked += 1
                self._tracked_times.append(tracked.t_ready)
            self._consume(frame, tracked)
        if not self._stop.is_set():
            self.ended.set()
