"""Frame-parallel pose: workers with a single-threaded interpreter each take alternate frames.

On two cores the landmark model runs no faster on two threads than on one; two interpreters,
one a core, track twice the frames. Each frame is seeded with the newest region of interest
(that of the last frame committed), and results are committed (crop tracking, facing,
smoothing, then the consumer) strictly in capture order, so every later stage sees the same
stream as from one interpreter. A frame whose seed went stale (the runner lost, the facing
flipped, a reset) is tracked afresh in its turn, as the serial tracker would. At a rate one
single-threaded interpreter keeps up with, it works alone (the least CPU a frame) and the
second joins only while the CPU cannot keep up.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import cv2
import numpy as np

from coachd.messages import Frame, Pose, TrackedFrame
from coachd.pose.facing import mirror_pose
from coachd.pose.litert_backend import LiteRTBackend
from coachd.pose.roi import Roi
from coachd.pose.tracker import Tracker
from coachd.settings import PoseSettings

# At or below this rate one single-threaded interpreter keeps up alone with room to spare
# (about 10 ms a frame here, a third of a 30 fps interval), for the least CPU a frame: a
# second thread of the same interpreter spins in XNNPACK's barriers, and two workers cost
# about as much as that (docs/benchmarks.md, "30 fps: CPU per tracked frame").
ONE_WORKER_MAX_FPS = 40.0
MAX_WORKERS = 2

Deliver = Callable[[TrackedFrame], None]
Found = tuple[Optional[Pose], Optional[np.ndarray]]


@dataclass(frozen=True)
class Layout:
    """How the pose stage uses the cores: interpreters, threads each, and how many of the
    interpreters work from the start (the others join when the CPU cannot keep up)."""

    workers: int
    threads: int
    active: int = 0  # 0: all of them

    @property
    def starting(self) -> int:
        """Workers taking frames from the start."""
        return self.active or self.workers

    def __str__(self) -> str:
        working = f"{self.starting} of {self.workers}" if self.starting < self.workers else ""
        count = working or str(self.workers)
        return f"{count} worker{'s' if self.workers > 1 else ''} x {self.threads} thread"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_layout(cores: int, fps: float, workers: int = 0, threads: int = 2) -> Layout:
    """Workers and threads each for `cores` and the frame rate asked.

    `workers` 0 chooses: one single-threaded interpreter on one core; up to
    ONE_WORKER_MAX_FPS one working and a second ready to join when the CPU cannot keep up
    (the pipeline's RateGovernor asks); above it two working (more threads each with more
    cores). `workers` 1 is the serial tracker with `threads` threads.
    """
    if workers == 1:
        return Layout(1, threads)
    if workers == 0 and cores < 2:
        return Layout(1, 1)
    if workers == 0 and fps <= ONE_WORKER_MAX_FPS:
        return Layout(MAX_WORKERS, 1, active=1)
    count = workers or MAX_WORKERS
    return Layout(count, max(1, cores // count))


class Turnstile:
    """Lets numbered tickets through one at a time, in number order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._issued = 0
        self._next = 0

    def issue(self) -> int:
        with self._cond:
            ticket = self._issued
            self._issued += 1
            return ticket

    @contextmanager
    def turn(self, ticket: int) -> Iterator[None]:
        """Wait until every earlier ticket has passed; the next one waits for this block."""
        with self._cond:
            while self._next != ticket:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._next += 1
                self._cond.notify_all()


@dataclass(frozen=True)
class _Seed:
    """The tracking state a frame was started from."""

    mirrored: bool
    roi: Optional[Roi]
    epoch: int


@dataclass(frozen=True)
class _Job:
    ticket: int
    frame: Frame
    seed: _Seed
    deliver: Deliver


class FrameParallelTracker(Tracker):
    """The LiteRT tracker with up to `layout.workers` frames in flight at once.

    `submit` hands a frame to a free worker and `deliver` gets its TrackedFrame, called in
    capture order from a worker thread. `track` is the same, one frame at a time. `active`
    of the workers take frames (`set_active` changes it); the others wait, models loaded.
    """

    def __init__(self, settings: PoseSettings, layout: Layout) -> None:
        super().__init__(functools.partial(LiteRTBackend, threads=layout.threads), settings)
        self.layout = layout
        self.workers = layout.workers
        self.active = layout.starting
        self._backends: dict[bool, LiteRTBackend] = {}
        for mirrored in (False, True) if settings.mirror_right_facing else (False,):
            backend = self._mirror_backend() if mirrored else self.backend
            assert isinstance(backend, LiteRTBackend)
            self._backends[mirrored] = backend
        self._interpreters = [
            self._backends[False].landmark_interpreter(layout.threads)
            for _ in range(layout.workers)
        ]
        self._cond = threading.Condition()
        self._busy = 0
        self._epoch = 0
        self._failure: Optional[Exception] = None
        self._turnstile = Turnstile()
        self._jobs: queue.SimpleQueue[Optional[_Job]] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"coachd-pose-{i}", daemon=True)
            for i in range(layout.workers)
        ]
        for thread in self._threads:
            thread.start()

    # --- the caller's side -----------------------------------------------------------

    def set_active(self, count: int) -> None:
        """Let `count` workers (1 to all) take frames; frames in flight finish as they are."""
        with self._cond:
            self.active = max(1, min(count, self.workers))
            self._cond.notify_all()

    def wait_free(self, timeout: float) -> bool:
        """Whether a worker is free, waiting up to `timeout`; raises a worker's failure."""
        with self._cond:
            if self._busy >= self.active:
                self._cond.wait(timeout)
            self._raise_failure()
            return self._busy < self.active

    def submit(self, frame: Frame, deliver: Deliver) -> None:
        """Start tracking `frame` (waiting for a free worker); frames must come in capture order."""
        with self._cond:
            while self._busy >= self.active:
                self._cond.wait()
            self._raise_failure()
            self._busy += 1
            mirrored = self.mirrored
            backend = self._backends[mirrored]
            seed = _Seed(mirrored, backend.roi, self._epoch)
            job = _Job(self._turnstile.issue(), frame, seed, deliver)
        self._jobs.put(job)

    def drain(self, timeout: Optional[float] = None) -> bool:
        """Wait (without end when `timeout` is None) until every submitted frame was
        delivered; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            self._raise_failure()
            return True

    def track(self, frame: Frame) -> TrackedFrame:
        results: list[TrackedFrame] = []
        self.submit(frame, results.append)
        self.drain()
        return results[0]

    def reset(self) -> None:
        self.drain()
        with self._cond:
            self._epoch += 1
            super().reset()

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5.0)
        super().close()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    # --- the workers -----------------------------------------------------------------

    def _work(self, worker: int) -> None:
        interpreter = self._interpreters[worker]
        while (job := self._jobs.get()) is not None:
            started = time.monotonic()
            found: Optional[Found] = None
            failure: Optional[Exception] = None
            seed = job.seed
            try:
                if seed.roi is not None:
                    image = cv2.flip(job.frame.image, 1) if seed.mirrored else job.frame.image
                    backend = self._backends[seed.mirrored]
                    found = backend.landmarks_in(image, seed.roi, interpreter)
            except Exception as exc:  # reported to the caller, in turn
                failure = exc
            with self._turnstile.turn(job.ticket):
                try:
                    if failure is not None:
                        raise failure
                    tracked = self._commit(job, found, started)
                    job.deliver(tracked)
                except Exception as exc:  # the caller's supervisor restarts its stage
                    with self._cond:
                        self._failure = exc
                finally:
                    with self._cond:
                        self._busy -= 1
                        self._cond.notify_all()

    def _commit(self, job: _Job, found: Optional[Found], started: float) -> TrackedFrame:
        """The frame's result applied to the tracking state (the caller holds the turn)."""
        frame, seed = job.frame, job.seed
        with self._cond:
            backend = self._backends[seed.mirrored]
            if (
                found is not None
                and seed.epoch == self._epoch
                and seed.mirrored == self.mirrored
                and backend.roi is not None
                and not backend.needs_full_frame(frame.t)
            ):
                pose = backend.follow(found, frame.size, frame.t)
                if pose is not None and seed.mirrored:
                    pose = mirror_pose(pose)
                tracked = self._finish(frame, pose, started)
            else:
                switches = backend.switches
                tracked = Tracker.track(self, frame)
                if backend.switches != switches:
                    self._epoch += 1  # now following someone else: frames in flight are stale
            if tracked.pose is None:
                self._epoch += 1  # the runner is to be found afresh: frames in flight are stale
            return tracked
