"""Health and metrics over HTTP, for the gym's monitoring: /healthz and /metrics.

/healthz answers 200 while frames flow and 503 (with the reason) otherwise; /metrics is the
Prometheus text format from this process's own CollectorRegistry. The server runs in daemon
threads, so a slow scraper never holds up the pipeline.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Optional

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
AUDIO_STATES = ("ok", "missing", "retrying", "disabled")


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


class Metrics:
    """coachd's Prometheus metrics, each behind a typed method the daemon calls."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        Info("coachd", "coachd version", registry=r).info({"version": __version__})
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
        self._runner = Gauge(
            "coachd_runner_present", "1 while a person is tracked in view", registry=r
        )
        self._sessions = Counter("coachd_sessions", "coaching sessions started", registry=r)
        self._cues = Counter("coachd_cues_spoken", "cues spoken", ["cue_id"], registry=r)
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
        self._audio = Gauge(
            "coachd_audio_state", "1 for the audio output's current state", ["state"], registry=r
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
        self._audio_states: list[str] = list(AUDIO_STATES)
        self._audio_lock = threading.Lock()
        self._dropped_seen = 0
        self._tracked_seen = 0
        self.set_audio_state("ok")

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

    def inc_cue_dropped(self, reason: str, count: int = 1) -> None:
        self._cues_dropped.labels(reason=reason).inc(count)

    def inc_camera_reconnects(self, count: int = 1) -> None:
        self._reconnects.inc(count)

    def inc_stage_restarts(self, stage: str, count: int = 1) -> None:
        counter = self._stage_restarts.labels(stage=stage)  # shown at 0 from the first call
        if count > 0:
            counter.inc(count)

    def set_audio_state(self, state: str) -> None:
        """One of AUDIO_STATES (others are added): that series 1, every other 0."""
        with self._audio_lock:
            if state not in self._audio_states:
                self._audio_states.append(state)
            for known in self._audio_states:
                self._audio.labels(state=known).set(1 if known == state else 0)

    def set_voice_cache_bytes(self, size: int) -> None:
        self._voice_cache.set(size)

    def set_last_frame_age(self, seconds: Optional[float]) -> None:
        self._last_frame_age.set(-1 if seconds is None else seconds)

    def update_pipeline(self, snapshot: PipelineSnapshot) -> None:
        """fps, the frame counters and stage restarts from the pipeline's cumulative totals."""
        self.set_fps(snapshot.fps)
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


class HealthServer:
    """Serves /healthz and /metrics from daemon threads until stop()."""

    def __init__(
        self,
        settings: ServiceSettings,
        metrics: Metrics,
        frames_flowing: Optional[Callable[[], bool]] = None,
        port: Optional[int] = None,
        components: Optional[ComponentsReader] = None,
    ) -> None:
        """`frames_flowing` decides /healthz; without it, mark_frame() calls within
        service.health_stale_s do. `components` (camera, pose, audio, store) are reported
        in /healthz; one not ok makes a flowing kiosk "degraded" (still 200: it coaches).
        `port` overrides service.http_port (0: any free port)."""
        check_bind_allowed(settings.http_host, settings.allow_remote_http)
        self.host = settings.http_host.strip("[]")
        self.port = settings.http_port if port is None else port
        self.metrics = metrics
        self._frames_flowing = frames_flowing
        self._components = components
        self._stale_after_s = settings.health_stale_s
        self._started = time.monotonic()
        self._last_frame: Optional[float] = None
        self._stopping = False
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

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
        if self._server is None:
            return self.host, self.port
        return self.host, int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve; ConfigError when the address cannot be bound."""
        handler = _make_handler(self)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_class = type("CoachdHTTPServer", (ThreadingHTTPServer,), {"address_family": family})
        try:
            server = server_class((self.host, self.port), handler)
        except OSError as exc:
            raise ConfigError(
                f"config error: cannot serve health/metrics on {self.host}:{self.port} "
                f"({exc.strerror or exc}); change service.http_port or service.http_host, "
                "or set service.http_port = 0 to turn it off"
            ) from None
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.25}, name="coachd-http"
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("health and metrics on http://%s:%d/", *self.address)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None


def _make_handler(owner: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"coachd/{__version__}"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok, body = owner.check()
                status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, "application/json", json.dumps(body).encode() + b"\n")
            elif path == "/metrics":
                owner.check()  # refreshes coachd_last_frame_age_seconds
                self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, owner.metrics.render())
            elif path == "/":
                text = b"coachd: /healthz (200 while frames flow), /metrics (Prometheus)\n"
                self._send(HTTPStatus.OK, "text/plain; charset=utf-8", text)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http %s: " + format, self.address_string(), *args)

    return Handler
