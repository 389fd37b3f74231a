"""coachd's HTTP server: /healthz and /metrics for the gym's monitoring, and whatever else
is routed to it (the live page, its event stream, its STOP button).

/healthz answers 200 while frames flow and 503 (with the reason) otherwise; /metrics is the
Prometheus text format from this process's own CollectorRegistry. The server runs in its own
threads, so a slow scraper never holds up the pipeline, and within HttpLimits, so no number
of idle, slow or simultaneous clients can take more than a bounded set of threads and sockets.
Every path is one entry in the server's route table (`HealthServer.add_route`).
"""

from __future__ import annotations

import asyncio
import errno
import io
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from coachd import __version__
from coachd.errors import ConfigError
from coachd.settings import ServiceSettings

if TYPE_CHECKING:
    from coachd.pipeline import PipelineSnapshot

log = logging.getLogger(__name__)

# Seconds. The pose stage takes ~10-60 ms on a kiosk CPU; glass-to-landmarks adds the camera's
# own exposure and transfer time, so its buckets reach further.
POSE_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
LATENCY_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0)
# The speech stage's device states (SpeakerStats.device_state); others are added as they appear.
AUDIO_STATES = ("ok", "missing", "retrying", "hung", "disabled")
# The sessions database's writer states (coachd.service.store_writer.STORE_STATES).
STORE_STATES = ("ok", "locked", "full", "unavailable", "corrupt")
# At stop, connections' tasks are cancelled this many times, 0.1 s apart, until none is left.
STOP_CANCEL_ROUNDS = 10


@dataclass(frozen=True)
class ComponentHealth:
    """One part of the kiosk as /healthz reports it: "ok", or what is wrong and why."""

    state: str = "ok"  # "ok", or a fault state such as "reconnecting", "hung", "locked"
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def as_json(self) -> dict[str, str]:
        return {"state": self.state, **({"reason": self.reason} if self.reason else {})}


ComponentsReader = Callable[[], Mapping[str, ComponentHealth]]


class StateGauge:
    """A gauge with a series per state: the current state's 1, every other 0 (a state not
    known yet is added)."""

    def __init__(
        self, name: str, documentation: str, states: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._gauge = Gauge(name, documentation, ["state"], registry=registry)
        self._states = list(states)
        self._lock = threading.Lock()

    def set(self, state: str) -> None:
        with self._lock:
            if state not in self._states:
                self._states.append(state)
            for known in self._states:
                self._gauge.labels(state=known).set(1 if known == state else 0)


class Metrics:
    """coachd's Prometheus metrics, each behind a typed method the daemon calls."""

    def __init__(self, kiosk: str = "") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        Info("coachd", "coachd version", registry=r).info({"version": __version__})
        # A gym's dashboard joins every series of a kiosk on this (kiosk.id, else hostname).
        Info("coachd_kiosk", "this kiosk's id", registry=r).info({"kiosk": kiosk})
        self._fps = Gauge("coachd_fps", "frames tracked per second, recent average", registry=r)
        self._pose = Histogram(
            "coachd_pose_stage_seconds",
            "time the pose stage took per frame",
            buckets=POSE_BUCKETS,
            registry=r,
        )
        self._latency = Histogram(
            "coachd_glass_to_landmarks_seconds",
            "from frame capture to its landmarks being ready",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._frames = Counter("coachd_frames_tracked", "frames through the pose stage", registry=r)
        self._dropped = Counter(
            "coachd_frames_dropped", "frames skipped to keep up with the camera", registry=r
        )
        self._rate_divisor = Gauge(
            "coachd_frame_rate_divisor",
            "tracking every n-th camera frame because the CPU cannot keep up (1: every frame)",
            registry=r,
        )
        self._rate_fps = Gauge(
            "coachd_tracked_rate_fps", "the steady rate frames are given to the tracker", registry=r
        )
        self._skipped = Counter(
            "coachd_frames_skipped",
            "frames left out on purpose by the lower steady rate (not dropped)",
            registry=r,
        )
        self._skipped_seen = 0
        self._runner = Gauge(
            "coachd_runner_present", "1 while a person is tracked in view", registry=r
        )
        self._sessions = Counter("coachd_sessions", "coaching sessions started", registry=r)
        self._cues = Counter(
            "coachd_cues_spoken", "cues that reached the audio device", ["cue_id"], registry=r
        )
        self._cues_printed = Counter(
            "coachd_cues_printed",
            "cues printed instead of spoken (no device, hung device, no voice, speech off)",
            ["reason"],
            registry=r,
        )
        self._cues_dropped = Counter(
            "coachd_cues_dropped", "cues decided but not spoken", ["reason"], registry=r
        )
        self._reconnects = Counter(
            "coachd_camera_reconnects", "times the camera was lost and reopened", registry=r
        )
        self._stage_restarts = Counter(
            "coachd_stage_restarts",
            "times a pipeline stage (thread) failed and was restarted",
            ["stage"],
            registry=r,
        )
        self._restarts_seen: dict[str, int] = {}
        self._audio = StateGauge(
            "coachd_audio_state", "1 for the audio output's current state", AUDIO_STATES, r
        )
        self._last_frame_age = Gauge(
            "coachd_last_frame_age_seconds",
            "seconds since the last tracked frame (-1 before the first)",
            registry=r,
        )
        self._last_frame_age.set(-1)
        self._voice_cache = Gauge(
            "coachd_voice_cache_bytes", "rendered phrases kept on disk, bytes", registry=r
        )
        self._http_open = Gauge(
            "coachd_http_connections", "connections open on the health/metrics port", registry=r
        )
        self._http_dropped = Counter(
            "coachd_http_connections_dropped",
            "health/metrics connections closed unanswered: refused, evicted or too slow",
            ["reason"],
            registry=r,
        )
        for reason in HTTP_DROP_REASONS:
            self._http_dropped.labels(reason=reason)  # each series from 0, for rate()
        self._store = StateGauge(
            "coachd_store_state", "1 for the sessions database's current state", STORE_STATES, r
        )
        self._store_pending = Gauge(
            "coachd_store_pending_strides",
            "strides measured but not yet written to the sessions database",
            registry=r,
        )
        self._store_dropped = Counter(
            "coachd_store_dropped",
            "writes dropped because too many waited for the database",
            ["kind"],
            registry=r,
        )
        self._upload_backlog = Gauge(
            "coachd_store_upload_backlog_strides",
            "strides stored on this kiosk and not yet on the gym's server (store.url)",
            registry=r,
        )
        self._last_upload = Gauge(
            "coachd_store_last_upload_timestamp_seconds",
            "when this kiosk's history was last all on the gym's server, Unix time; 0: never",
            registry=r,
        )
        self._server_up = Gauge(
            "coachd_store_server_up", "1 while the gym's sessions server answers", registry=r
        )
        self._dropped_seen = 0
        self._tracked_seen = 0
        self.set_audio_state("ok")
        self.set_store_state("ok")

    def observe_pose_ms(self, ms: float) -> None:
        self._pose.observe(ms / 1000.0)

    def observe_latency_ms(self, ms: float) -> None:
        self._latency.observe(ms / 1000.0)

    def set_fps(self, fps: float) -> None:
        self._fps.set(fps)

    def inc_frames_tracked(self, n: int = 1) -> None:
        if n > 0:
            self._frames.inc(n)

    def inc_frames_dropped(self, n: int = 1) -> None:
        if n > 0:
            self._dropped.inc(n)

    def set_runner_present(self, present: bool) -> None:
        self._runner.set(1 if present else 0)

    def inc_sessions(self) -> None:
        self._sessions.inc()

    def inc_cue(self, cue_id: str) -> None:
        self._cues.labels(cue_id=cue_id).inc()

    def inc_cue_printed(self, reason: str) -> None:
        self._cues_printed.labels(reason=reason).inc()

    def inc_cue_dropped(self, reason: str, count: int = 1) -> None:
        self._cues_dropped.labels(reason=reason).inc(count)

    def inc_camera_reconnects(self, count: int = 1) -> None:
        self._reconnects.inc(count)

    def inc_stage_restarts(self, stage: str, count: int = 1) -> None:
        counter = self._stage_restarts.labels(stage=stage)  # shown at 0 from the first call
        if count > 0:
            counter.inc(count)

    def set_audio_state(self, state: str) -> None:
        self._audio.set(state)

    def set_store_state(self, state: str) -> None:
        self._store.set(state)

    def set_store_pending_strides(self, count: int) -> None:
        self._store_pending.set(count)

    def set_upload(self, server_up: bool, backlog_strides: int, last_upload: float) -> None:
        self._server_up.set(1.0 if server_up else 0.0)
        self._upload_backlog.set(backlog_strides)
        self._last_upload.set(last_upload)

    def inc_store_dropped(self, kind: str, count: int = 1) -> None:
        if count > 0:
            self._store_dropped.labels(kind=kind).inc(count)

    def set_voice_cache_bytes(self, size: int) -> None:
        self._voice_cache.set(size)

    def set_http_connections(self, count: int) -> None:
        self._http_open.set(count)

    def inc_http_dropped(self, reason: str) -> None:
        """One of HTTP_DROP_REASONS."""
        self._http_dropped.labels(reason=reason).inc()

    def set_last_frame_age(self, seconds: Optional[float]) -> None:
        self._last_frame_age.set(-1 if seconds is None else seconds)

    def update_pipeline(self, snapshot: PipelineSnapshot) -> None:
        """fps, the frame counters and stage restarts from the pipeline's cumulative totals."""
        self.set_fps(snapshot.fps)
        self._rate_divisor.set(snapshot.rate_divisor)
        self._rate_fps.set(snapshot.tracked_rate_fps)
        if snapshot.frames_skipped > self._skipped_seen:
            self._skipped.inc(snapshot.frames_skipped - self._skipped_seen)
            self._skipped_seen = snapshot.frames_skipped
        for stage, total in snapshot.stage_restarts.items():
            seen = self._restarts_seen.get(stage, 0)
            self.inc_stage_restarts(stage, total - seen)
            self._restarts_seen[stage] = max(seen, total)
        self.inc_frames_dropped(snapshot.frames_dropped - self._dropped_seen)
        self._dropped_seen = max(self._dropped_seen, snapshot.frames_dropped)
        self.inc_frames_tracked(snapshot.frames_tracked - self._tracked_seen)
        self._tracked_seen = max(self._tracked_seen, snapshot.frames_tracked)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; a host name is never trusted to be local."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_allowed(host: str, allow_remote: bool) -> None:
    """ConfigError unless `host` is loopback or remote access was switched on."""
    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f"config error: service.http_host = {host!r} exposes health and metrics beyond this "
            "machine; set service.allow_remote_http = true to allow it, or use 127.0.0.1"
        )


@dataclass(frozen=True)
class HttpLimits:
    """What the HTTP surface may hold, whatever its clients do.

    Connections are read by one event-loop thread, so an idle or slow client costs a socket,
    never a thread; only a complete request head reaches the `workers` threads, which build
    the answer in memory. `max_connections` counts every open connection: when it is reached
    the oldest one still sending its head is closed (a scraper sends its head at once), or,
    if every connection is being answered, the newcomer gets an immediate 503.

    A stream route (the live page's Server-Sent Events) holds its connection as a task on
    the same loop, no worker thread, and counts against `max_streams` instead: a client that
    does not take a write within `response_deadline_s` is closed.
    """

    max_connections: int = 256
    workers: int = 2
    head_deadline_s: float = 5.0  # from accept to the blank line that ends the head
    response_deadline_s: float = 5.0  # for building the answer, and again for sending it
    max_head_bytes: int = 16 * 1024
    max_streams: int = 8  # a page or two per screen, and some reloads not yet noticed gone


@dataclass(frozen=True)
class Request:
    """One parsed request head (a body, if any, is never read)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # names in lower case
    peer: tuple[str, int]


@dataclass(frozen=True)
class Response:
    """A whole answer, built in memory."""

    status: HTTPStatus
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, status: HTTPStatus, text: str) -> Response:
        return cls(status, f"{text}\n".encode())

    @classmethod
    def json(cls, body: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
        return cls(status, json.dumps(body).encode() + b"\n", "application/json")


class Channel:
    """A stream route's connection, held open: each send must be taken by the client within
    the server's response deadline, else the connection is closed."""

    def __init__(self, writer: asyncio.StreamWriter, deadline_s: float) -> None:
        self._writer = writer
        self._deadline_s = deadline_s
        writer.transport.set_write_buffer_limits(high=0)

    async def send(self, data: bytes) -> bool:
        """False when the client is gone or too slow (the connection is then closed)."""
        if self._writer.transport.is_closing():
            return False
        self._writer.write(data)
        try:
            await asyncio.wait_for(self._writer.drain(), self._deadline_s)
        except (asyncio.TimeoutError, ConnectionError):
            self._writer.transport.abort()
            return False
        return True


# A handler runs on a worker thread and answers at once; a stream runs on the event loop and
# holds the connection until it returns (it must await, never block).
Handler = Callable[[Request], Response]
Stream = Callable[[Request, Channel], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    """What answers one method and path: a `handler` or a `stream`."""

    handler: Optional[Handler] = None
    stream: Optional[Stream] = None


class HealthServer:
    """Serves /healthz and /metrics from its own threads until stop()."""

    def __init__(
        self,
        settings: ServiceSettings,
        metrics: Metrics,
        frames_flowing: Optional[Callable[[], bool]] = None,
        port: Optional[int] = None,
        components: Optional[ComponentsReader] = None,
        limits: HttpLimits = HttpLimits(),
    ) -> None:
        """`frames_flowing` decides /healthz; without it, mark_frame() calls within
        service.health_stale_s do. `components` (camera, pose, audio, store) are reported
        in /healthz; one not ok makes a flowing kiosk "degraded" (still 200: it coaches).
        `port` overrides service.http_port (0: any free port)."""
        check_bind_allowed(settings.http_host, settings.allow_remote_http)
        self.host = settings.http_host.strip("[]")
        self.port = settings.http_port if port is None else port
        self.metrics = metrics
        self.limits = limits
        self._frames_flowing = frames_flowing
        self._components = components
        self._stale_after_s = settings.health_stale_s
        self._started = time.monotonic()
        self._last_frame: Optional[float] = None
        self._stopping = False
        self._serving: Optional[_Serving] = None
        self._routes: dict[tuple[str, str], Route] = {}
        self.add_route("GET", "/healthz", Route(handler=self._healthz))
        self.add_route("GET", "/metrics", Route(handler=self._metrics))
        self.add_route("GET", "/", Route(handler=self._index))

    def add_route(self, method: str, path: str, route: Route) -> None:
        """Serve `method` `path` with `route` (replacing any before it). A path ending in
        "/*" matches everything under it (the longest such prefix wins); add routes before
        start()."""
        self._routes[(method.upper(), path)] = route

    def find_route(self, method: str, path: str) -> Union[Route, HTTPStatus]:
        """The route for a request, or NOT_FOUND / METHOD_NOT_ALLOWED."""
        candidates = [path] + [
            path[: i + 1] + "*" for i in range(len(path) - 1, -1, -1) if path[i] == "/"
        ]
        for candidate in candidates:
            route = self._routes.get((method, candidate))
            if route is not None:
                return route
            if any(known_path == candidate for _, known_path in self._routes):
                return HTTPStatus.METHOD_NOT_ALLOWED
        return HTTPStatus.NOT_FOUND

    def _healthz(self, request: Request) -> Response:
        ok, body = self.check()
        return Response.json(body, HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE)

    def _metrics(self, request: Request) -> Response:
        self.check()  # refreshes coachd_last_frame_age_seconds
        return Response(HTTPStatus.OK, self.metrics.render(), CONTENT_TYPE_LATEST)

    def _index(self, request: Request) -> Response:
        return Response.text(
            HTTPStatus.OK, "coachd: /healthz (200 while frames flow), /metrics (Prometheus)"
        )

    def mark_frame(self, t: Optional[float] = None) -> None:
        """A frame went through the pipeline (t: its time.monotonic(), default now)."""
        self._last_frame = time.monotonic() if t is None else t

    def set_stopping(self) -> None:
        """/healthz answers 503 'stopping' from now on."""
        self._stopping = True

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON body /healthz sends)."""
        now = time.monotonic()
        age = None if self._last_frame is None else round(now - self._last_frame, 3)
        self.metrics.set_last_frame_age(age)
        if self._stopping:
            ok, reason = False, "stopping"
        elif self._frames_flowing is not None:
            ok = bool(self._frames_flowing())
            reason = "" if ok else "no frames are flowing: camera stalled, lost or reconnecting"
        elif age is None:
            ok, reason = False, f"no frame yet, {now - self._started:.0f} s after start"
        else:
            ok = age <= self._stale_after_s
            reason = "" if ok else f"last frame {age:.1f} s ago (limit {self._stale_after_s} s)"
        components = dict(self._components()) if self._components is not None else {}
        faults = [f"{name}: {c.reason or c.state}" for name, c in components.items() if not c.ok]
        status = "unhealthy" if not ok else ("degraded" if faults else "ok")
        if ok and faults:
            reason = "; ".join(faults)
        body: dict[str, Any] = {
            "status": status,
            "uptime_s": round(now - self._started, 1),
            "last_frame_age_s": age,
        }
        if reason:
            body["reason"] = reason
        if components:
            body["components"] = {name: c.as_json() for name, c in components.items()}
        return ok, body

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; the port is known once started."""
        if self._serving is None:
            return self.host, self.port
        return self.host, self._serving.port

    def start(self) -> None:
        """Bind and serve; ConfigError when the address cannot be bound."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            sock = socket.create_server(
                (self.host, self.port), family=family, backlog=self.limits.max_connections
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"config error: port {self.port} on {self.host} is taken (another coachd, "
                    "or the coachd service, serving health/metrics?): give this one another "
                    f"with --set service.http_port={self.port + 1} (any free port), or "
                    "--set service.http_port=0 to serve none"
                ) from None
            raise ConfigError(
                f"config error: cannot serve health/metrics on {self.host}:{self.port} "
                f"({exc.strerror or exc}); change service.http_port or service.http_host, "
                "or set service.http_port = 0 to turn it off"
            ) from None
        self._serving = _Serving(sock, self.limits, self.metrics, self._parse)
        log.info("health and metrics on http://%s:%d/", *self.address)

    def stop(self) -> None:
        """Close the listening socket and every connection, stuck or not; returns promptly."""
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.close()

    def _parse(self, head: bytes, peer: tuple[str, int]) -> Union[tuple[Request, Route], bytes]:
        """The request and its route, or the whole error response (a malformed head, an
        unknown path or method)."""
        parsed = _parse_head(head, peer)
        if isinstance(parsed, bytes):
            return parsed
        route = self.find_route(parsed.method, parsed.path)
        if isinstance(route, HTTPStatus):
            text = "not found" if route == HTTPStatus.NOT_FOUND else "method not allowed"
            return encode_response(Response.text(route, text))
        return parsed, route


_Parser = Callable[[bytes, "tuple[str, int]"], Union["tuple[Request, Route]", bytes]]

# Counted in coachd_http_connections_dropped{reason}: connections closed without an answer
# from the handler.
HTTP_DROP_REASONS = (
    "refused",  # every slot busy answering
    "evicted",  # the oldest head still arriving, closed to make room
    "head_timeout",  # no complete request head within head_deadline_s
    "too_large",  # request head over max_head_bytes
    "response_timeout",  # the handler took longer than response_deadline_s
    "write_timeout",  # the client did not take the response within response_deadline_s
)


@dataclass
class _Connection:
    writer: asyncio.StreamWriter
    task: asyncio.Task[None]
    reading: bool = True  # still receiving its head: the one evicted first


class _Serving:
    """The event loop thread and worker pool behind one started HealthServer."""

    def __init__(
        self, sock: socket.socket, limits: HttpLimits, metrics: Metrics, parse: _Parser
    ) -> None:
        self.port = int(sock.getsockname()[1])
        self._limits = limits
        self._metrics = metrics
        self._parse = parse
        # Insertion order is accept order: the first reading one is the oldest.
        self._connections: dict[asyncio.StreamWriter, _Connection] = {}
        self._streams = 0
        self._workers = ThreadPoolExecutor(limits.workers, thread_name_prefix="coachd-http-worker")
        self._loop = asyncio.new_event_loop()
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(
                    self._serve,
                    sock=sock,
                    limit=limits.max_head_bytes,
                    backlog=limits.max_connections,
                )
            )
        except BaseException:
            sock.close()
            self._loop.close()
            self._workers.shutdown(wait=False)
            raise
        self._thread = threading.Thread(target=self._run, name="coachd-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2.0)
        # A worker stuck in a slow callback is left to finish on its own: shutdown never waits.
        self._workers.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        loop = self._loop
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for connection in list(self._connections.values()):
                connection.writer.transport.abort()
            # Every task, not only known connections: an accept may be half done. Cancelled
            # again while any is left: asyncio.wait_for (Python < 3.12) swallows a cancel that
            # meets its inner future's completion, and the task would wait on.
            tasks = asyncio.all_tasks(loop)
            for _ in range(STOP_CANCEL_ROUNDS):
                if not tasks:
                    break
                for task in tasks:
                    task.cancel()
                _, tasks = loop.run_until_complete(asyncio.wait(tasks, timeout=0.1))
            loop.close()
            self._metrics.set_http_connections(0)

    def _admit(self, connection: _Connection) -> bool:
        """Make room for a new connection; False when there is none (every slot answering)."""
        if len(self._connections) >= self._limits.max_connections:
            oldest = next((c for c in self._connections.values() if c.reading), None)
            if oldest is None:
                return False
            self._drop(oldest, "evicted", HTTPStatus.SERVICE_UNAVAILABLE, "too many connections")
            oldest.task.cancel()
        self._connections[connection.writer] = connection
        self._metrics.set_http_connections(len(self._connections))
        return True

    def _drop(self, connection: _Connection, reason: str, status: HTTPStatus, text: str) -> None:
        """Best-effort `status` to a client that gets no real answer, then close."""
        self._metrics.inc_http_dropped(reason)
        self._forget(connection)
        transport = connection.writer.transport
        if not transport.is_closing():
            # The socket is usually writable at once: the few bytes go out before the abort.
            transport.write(encode_response(Response.text(status, text)))
            transport.abort()

    def _forget(self, connection: _Connection) -> None:
        if self._connections.pop(connection.writer, None) is not None:
            self._metrics.set_http_connections(len(self._connections))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(writer, task)
        if not self._admit(connection):
            self._metrics.inc_http_dropped("refused")
            refusal = Response.text(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections")
            writer.transport.write(encode_response(refusal))
            writer.transport.abort()
            return
        limits = self._limits
        try:
            try:
                head = await asyncio.wait_for(
                    _read_head(reader, limits.max_head_bytes), limits.head_deadline_s
                )
            except asyncio.TimeoutError:
                self._drop(connection, "head_timeout", HTTPStatus.REQUEST_TIMEOUT, "too slow")
                return
            except ValueError:  # a line or the whole head over max_head_bytes
                self._drop(
                    connection,
                    "too_large",
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request head too large",
                )
                return
            if not head:
                return  # closed before sending anything
            connection.reading = False
            peer = writer.get_extra_info("peername") or ("?", 0)
            parsed = self._parse(head, (str(peer[0]), int(peer[1])))
            if isinstance(parsed, bytes):
                response = parsed
            elif parsed[1].stream is not None:
                await self._stream(connection, reader, parsed[0], parsed[1].stream)
                return
            else:
                handler = parsed[1].handler
                assert handler is not None
                work = asyncio.get_running_loop().run_in_executor(
                    self._workers, _answer, handler, parsed[0]
                )
                try:
                    response = await asyncio.wait_for(work, limits.response_deadline_s)
                except asyncio.TimeoutError:
                    self._drop(
                        connection, "response_timeout", HTTPStatus.SERVICE_UNAVAILABLE, "busy"
                    )
                    return
            # No write buffering: drain() then waits for the client to take every byte.
            writer.transport.set_write_buffer_limits(high=0)
            writer.write(response)
            try:
                await asyncio.wait_for(writer.drain(), limits.response_deadline_s)
            except asyncio.TimeoutError:
                self._metrics.inc_http_dropped("write_timeout")
                writer.transport.abort()
                return
            writer.close()
        except ConnectionError:
            pass
        finally:
            self._forget(connection)
            # Whatever ended it early (EOF, reset, cancel): asyncio keeps a half-closed
            # connection open for writing until told otherwise.
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _stream(
        self,
        connection: _Connection,
        reader: asyncio.StreamReader,
        request: Request,
        stream: Stream,
    ) -> None:
        """Hand the connection to a stream route, outside max_connections and within
        max_streams, until the route returns or the client closes its end."""
        self._forget(connection)
        if self._streams >= self._limits.max_streams:
            self._metrics.inc_http_dropped("refused")
            connection.writer.write(
                encode_response(Response.text(HTTPStatus.SERVICE_UNAVAILABLE, "too many streams"))
            )
            return
        self._streams += 1
        channel = Channel(connection.writer, self._limits.response_deadline_s)
        tasks = {
            asyncio.ensure_future(stream(request, channel)),
            asyncio.ensure_future(_eof(reader)),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass  # the server is stopping: a held stream ends quietly, like any other
        finally:
            for task in tasks:
                task.cancel()
            self._streams -= 1


async def _eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client closes its end (what it sends meanwhile is ignored)."""
    while await reader.read(4096):
        pass


def _answer(handler: Handler, request: Request) -> bytes:
    """A handler's whole response, encoded (run on a worker thread)."""
    try:
        response = handler(request)
    except Exception:
        log.exception("http handler for %s %s failed", request.method, request.path)
        response = Response.text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
    return encode_response(response)


def encode_response(response: Response) -> bytes:
    """Status line, headers and body, for a connection closed after it."""
    head = response_head(
        response.status, response.content_type, len(response.body), response.headers
    )
    return head + response.body


def response_head(
    status: HTTPStatus,
    content_type: str,
    length: Optional[int] = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Status line and headers of every answer, on a connection closed after it; without
    `length` the body is a stream that ends with the connection."""
    lines = [
        f"HTTP/1.0 {status.value} {status.phrase}",
        f"Server: coachd/{__version__}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {content_type}",
        *([] if length is None else [f"Content-Length: {length}"]),
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        *(f"{name}: {value}" for name, value in headers),
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    """The request line and headers up to the blank line (or the client's EOF)."""
    head = bytearray()
    while True:
        line = await reader.readline()  # ValueError past the reader's limit
        head += line
        if len(head) > max_bytes:
            raise ValueError("request head too large")
        if line in (b"", b"\r\n", b"\n"):
            return bytes(head)


class _HeadParser(BaseHTTPRequestHandler):
    """http.server's request-line and header parsing on one buffered head, without a socket;
    its error replies (400, 414, 505 ...) are kept as bytes."""

    def __init__(self, head: bytes) -> None:
        # BaseRequestHandler.__init__ would want a socket server: only the parsing steps.
        self.rfile = io.BytesIO(head)
        self.wfile = self.replies = io.BytesIO()
        self.client_address = ("", 0)
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        self.ok = len(self.raw_requestline) <= 65536 and self.parse_request()
        if len(self.raw_requestline) > 65536:
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


def _parse_head(head: bytes, peer: tuple[str, int]) -> Union[Request, bytes]:
    """A Request from a complete head, or the error response to send instead."""
    parser = _HeadParser(head)
    if not parser.ok:
        return parser.replies.getvalue()
    path, _, query = parser.path.partition("?")
    headers = {name.lower(): value for name, value in parser.headers.items()}
    return Request(parser.command, path, query, headers, peer)
