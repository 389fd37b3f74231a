"""The live pipeline: capture thread -> newest-frame slot -> tracker thread -> downstream stages.

Frames that arrive while the tracker is busy replace the waiting one and are counted as
dropped, never queued: the runner is coached on what they are doing now, not a second ago.
A live source's fault never ends the pipeline: the capture thread reconnects with back-off,
cut short when a cheap probe sees the source back. A finite source (a file) that fails ends
it, with the error kept in `failure`. An unexpected exception in either thread restarts that
stage (supervised: logged once with its traceback, counted, paced by its own back-off).
"""

from __future__ import annotations

import functools
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
from coachd.pose.parallel import FrameParallelTracker
from coachd.pose.tracker import PoseTracker

log = logging.getLogger(__name__)

SourceOpener = Callable[[], FrameSource]
SourceProbe = Callable[[], bool]
TrackedConsumer = Callable[[Frame, TrackedFrame], None]
RateListener = Callable[[float], None]

STAGES = ("capture", "tracker")
PROBE_EVERY_S = 0.5  # a source that comes back is reopened within about this long
RETURN_GRACE_S = 2.0
RESTART_FIRST_S = 0.1  # pause before restarting a failed stage, doubling while it keeps failing
RESTART_MAX_S = 5.0
STAGE_STABLE_S = 30.0  # a stage that ran this long before failing starts its pauses afresh
TRACEBACKS_KEPT = 32
DRAIN_S = 5.0  # at the end of a finite source, longest wait for the frames still in flight
# Overload: judged over windows of this many seconds of frames offered to the tracker.
RATE_WINDOW_S = 2.0
OVERLOADED_DROPPED = 0.10  # more dropped than this in a window: track fewer frames
KEPT_UP_DROPPED = 0.01  # at most this dropped: the rate may be tried higher again
RETRY_HIGHER_S = 10.0  # first wait before trying the higher rate again, doubling per failure
RETRY_HIGHER_MAX_S = 160.0
HIGHER_RATE_BUSY = 0.75  # the pose stage's estimated load at the higher rate must be below this
# A waiting pose worker joins only while the stages after the pose stage (on the tracker
# side, in capture order) were busy less than this share of the window: when they are what
# cannot keep up, a second worker would only hold a second frame waiting for them.
DOWNSTREAM_BOUND_BUSY = 0.5
WARMUP_WINDOWS = 1  # the first window holds the models' first, slow runs: not judged
MIN_RATE_FPS = 10.0  # never slower: the gait stage needs 10 frames a second to find contacts


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


class RateGovernor:
    """Tracks every n-th frame when the CPU cannot keep up with every one.

    Dropping whichever frames arrive while the tracker is busy gives the gait stage uneven
    intervals it cannot know; a steady lower rate (every second frame) gives it a true one.
    A window (RATE_WINDOW_S of frames) with more than OVERLOADED_DROPPED of its frames
    dropped first lets a waiting pose worker join (up to `max_workers`, unless the stages
    after the pose stage are what was busy), then raises n. A window that kept up, with the
    pose stage's load one step back estimated below HIGHER_RATE_BUSY, takes that step back
    (lowers n, then sends the extra worker back to wait) after RETRY_HIGHER_S (doubled each
    time it failed again).
    """

    def __init__(self, nominal_fps: float, workers: int = 1, max_workers: int = 1) -> None:
        self.nominal_fps = nominal_fps if nominal_fps > 0 else 30.0
        self.workers = self.start_workers = max(1, workers)  # pose workers taking frames
        self.max_workers = max(self.workers, max_workers)
        self.divisor = 1
        self._max_divisor = max(1, int(self.nominal_fps // MIN_RATE_FPS))
        self._window_start: Optional[float] = None
        self._offered = 0
        self._dropped = 0
        self._pose_s = 0.0
        self._tracked = 0
        self._downstream_s = 0.0
        self._calm_since: Optional[float] = None
        self._retry_after_s = RETRY_HIGHER_S
        self._lowered_at = -float("inf")
        self._warmup_left = WARMUP_WINDOWS

    @property
    def fps(self) -> float:
        """The rate the tracker is given frames at."""
        return self.nominal_fps / self.divisor

    def keep(self, index: int) -> bool:
        """Whether the index-th frame captured goes to the tracker."""
        return index % self.divisor == 0

    def observe(self, t: float, offered: int, dropped: int) -> None:
        """Frames given to (offered) and lost before (dropped) the tracker, up to time t."""
        if self._window_start is None:
            self._window_start = t
        self._offered += offered
        self._dropped += dropped
        span = t - self._window_start
        if self._offered < RATE_WINDOW_S * self.fps and span < RATE_WINDOW_S:
            return
        if self._offered == 0 or self._warmup_left:
            self._warmup_left = max(0, self._warmup_left - 1)
            self._reset_window()
            return
        dropped_share = self._dropped / self._offered
        if dropped_share > OVERLOADED_DROPPED:
            self._step_up(t, dropped_share, self._downstream_s / max(span, 1e-9))
        elif dropped_share <= KEPT_UP_DROPPED and (
            self.divisor > 1 or self.workers > self.start_workers
        ):
            self._maybe_step_back(t, self._busy(span))
        self._reset_window()

    def _step_up(self, t: float, dropped_share: float, downstream_busy: float) -> None:
        """More of the CPU for the pose stage (another worker), else fewer frames for it."""
        self._calm_since = None
        can_join = (
            self.workers < self.max_workers
            and self.divisor == 1
            and downstream_busy < DOWNSTREAM_BOUND_BUSY
        )
        if not can_join and self.divisor >= self._max_divisor:
            return
        if t - self._lowered_at < 2 * RATE_WINDOW_S:
            # The step back was just tried and failed: wait longer before the next try.
            self._retry_after_s = min(self._retry_after_s * 2.0, RETRY_HIGHER_MAX_S)
        if can_join:
            self.workers += 1
            log.warning(
                "the CPU cannot keep up (%.0f%% of frames dropped): %d pose workers",
                100 * dropped_share,
                self.workers,
            )
            return
        self.divisor += 1
        log.warning(
            "the CPU cannot keep up (%.0f%% of frames dropped): tracking %s (%.0f fps)",
            100 * dropped_share,
            every_nth(self.divisor),
            self.fps,
        )

    def _maybe_step_back(self, t: float, busy: float) -> None:
        """A higher rate, else one worker fewer, once calm long enough with room for it."""
        if self.divisor > 1:
            load_after = busy * self.divisor / (self.divisor - 1)
        else:
            load_after = busy * self.workers / (self.workers - 1)
        if load_after >= HIGHER_RATE_BUSY:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = t
        elif t - self._calm_since >= self._retry_after_s:
            self._lowered_at = t
            self._calm_since = None
            if self.divisor > 1:
                self.divisor -= 1
                log.info("trying a higher rate: %s (%.0f fps)", every_nth(self.divisor), self.fps)
            else:
                self.workers -= 1
                log.info("keeping up: %d pose worker%s", self.workers, "s"[: self.workers - 1])

    def _reset_window(self) -> None:
        self._window_start, self._offered, self._dropped = None, 0, 0
        self._pose_s, self._tracked, self._downstream_s = 0.0, 0, 0.0

    def observe_pose(self, pose_s: float) -> None:
        """One frame's time in the pose stage (from any tracker thread)."""
        self._pose_s += pose_s
        self._tracked += 1

    def observe_downstream(self, seconds: float) -> None:
        """One frame's time in the stages after the pose stage (from the tracker side)."""
        self._downstream_s += seconds

    def _busy(self, span: float) -> float:
        """Share of the pose workers' time spent tracking in the window."""
        return self._pose_s / max(span * self.workers, 1e-9)


def every_nth(divisor: int) -> str:
    """'every frame', 'every 2nd frame', ..."""
    if divisor == 1:
        return "every frame"
    return f"every {divisor}{ {2: 'nd', 3: 'rd'}.get(divisor, 'th') } frame"


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
    rate_divisor: int = 1  # tracking every n-th frame because the CPU cannot keep up with all
    tracked_rate_fps: float = 0.0  # the steady rate frames are given to the tracker
    frames_skipped: int = 0  # left out on purpose by the lower steady rate (not dropped)
    capture_ms_p50: float = float("nan")  # capture thread CPU per frame: decode, resize, render
    pose_workers: int = 1  # pose workers taking frames

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
        on_rate: Optional[RateListener] = None,
    ) -> None:
        """`probe` (see capture.source_probe) cheaply tells that a lost source may be back;
        `on_rate` is told the frame rate the tracker gets when it changes (from the tracker
        side, in order, before the first frame at that rate is consumed)."""
        self._source = source
        self._reopen = reopen
        self._tracker = tracker
        self._consume = consume
        self._reconnect_max_s = reconnect_max_s
        self._on_source_fault = on_source_fault
        self._return_watch = ReturnWatch(probe) if probe is not None else None
        self._on_rate = on_rate
        self._parallel = tracker if isinstance(tracker, FrameParallelTracker) else None
        parallel = self._parallel
        self._governor = RateGovernor(
            source.nominal_fps if source else 30.0,
            parallel.active if parallel is not None else 1,
            parallel.workers if parallel is not None else 1,
        )
        self._rate_told: Optional[float] = None
        self._frames_skipped = 0
        self._captured_index = 0
        self._drops_seen = 0
        self.capture_ms = RollingWindow()
        self.capture_cpu_s = 0.0  # the capture thread's CPU in reads, in all
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
            skipped_on_purpose = self._frames_skipped
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
            rate_divisor=self._governor.divisor,
            tracked_rate_fps=self._governor.fps,
            frames_skipped=skipped_on_purpose,
            capture_ms_p50=self.capture_ms.percentile(50),
            pose_workers=self._governor.workers,
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
                    self._drops_seen = self._source_dropped_before
                log.info("source %s reopened", source.name)
                if self._return_watch is not None:
                    self._return_watch.reset()
                backoff = 1.0
            self._set_state("running")
            cpu_before = time.thread_time()
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
            cpu = time.thread_time() - cpu_before
            self.capture_ms.add(1000.0 * cpu)
            self.capture_cpu_s += cpu
            self._offer(frame, source)

    def _offer(self, frame: Frame, source: FrameSource) -> None:
        """Give the frame to the tracker, unless the steady lower rate leaves it out."""
        governor = self._governor
        if governor.nominal_fps != source.nominal_fps:  # a new source or mode
            self._governor = governor = RateGovernor(
                source.nominal_fps, governor.start_workers, governor.max_workers
            )
        index = self._captured_index
        self._captured_index += 1
        with self._lock:
            self._frames_captured += 1
            kept = governor.keep(index)
            if not kept:
                self._frames_skipped += 1
            dropped = self._slot.dropped + self._source_dropped_before + source.frames_dropped
            new_drops, self._drops_seen = dropped - self._drops_seen, dropped
        if kept:
            self._slot.put(frame)
        if source.live or getattr(source, "realtime", False):
            # A file read as fast as it decodes never overloads: it just waits.
            governor.observe(time.monotonic(), int(kept) + new_drops, new_drops)
            if self._parallel is not None and self._parallel.active != governor.workers:
                self._parallel.set_active(governor.workers)

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
        parallel = self._parallel
        while not self._stop.is_set():
            self.tracker_heartbeat = time.monotonic()
            if parallel is not None and not parallel.wait_free(timeout=0.25):
                continue  # every worker busy: the newest frame waits in the slot
            frame = self._slot.take(timeout=0.25)
            if frame is None:
                if self._slot.closed_and_empty:
                    break
                continue
            if parallel is not None:
                parallel.submit(frame, functools.partial(self._handle, frame))
            else:
                self._handle(frame, self._tracker.track(frame))
        if parallel is not None:
            parallel.drain(DRAIN_S)
        if not self._stop.is_set():
            self.ended.set()

    def _handle(self, frame: Frame, tracked: TrackedFrame) -> None:
        """Statistics, then the downstream stages (called in capture order)."""
        self.tracker_heartbeat = self.last_frame_tracked_at = time.monotonic()
        self.pose_ms.add(tracked.pose_ms)
        self.latency_ms.add(1000.0 * (tracked.t_ready - frame.t))
        self._governor.observe_pose(tracked.pose_ms / 1000.0)
        with self._lock:
            self._frames_tracked += 1
            self._tracked_times.append(tracked.t_ready)
        rate = self._governor.fps
        if rate != self._rate_told:
            if self._on_rate is not None and self._rate_told is not None:
                self._on_rate(rate)
            self._rate_told = rate
        started = time.monotonic()
        self._consume(frame, tracked)
        self._governor.observe_downstream(time.monotonic() - started)
