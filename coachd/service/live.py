"""The live coaching page: what the chain measures and decides, pushed to a browser on the
console screen as Server-Sent Events, with the page's static files and its STOP button.

`LiveListener` (on the tracker thread) turns chain events into small JSON sections of
`LiveHub`'s state; each change goes to every subscribed page at once, and a page that
(re)connects gets the whole state first. A subscriber's queue is bounded: a page that falls
that far behind is closed and reconnects (EventSource does) to a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from coachd.catalog import METRICS
from coachd.chain import ChainListener
from coachd.coach.coaching import CoachingState, Stopped
from coachd.coach.engine import FormBand
from coachd.coach.faults import usable
from coachd.coach.programs import CADENCE_TOLERANCE, RetroProgress
from coachd.gait.overlay import BONES
from coachd.messages import Cue, GaitUpdate, Stride, TrackedFrame
from coachd.service.health import (
    Channel,
    ComponentHealth,
    Request,
    Response,
    Route,
    response_head,
)

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/live.css": ("live.css", "text/css; charset=utf-8"),
    "/live.js": ("live.js", "text/javascript; charset=utf-8"),
}
# The page loads its own script and style only, and talks to this server only.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
RETRY_MS = 2000  # EventSource's reconnect delay after the daemon went away
KEEPALIVE_S = 15.0  # a comment line this often finds a vanished page and keeps proxies open
SUBSCRIBER_QUEUE = 64  # events one page may fall behind by before it is closed to reconnect
POSE_EVERY_S = 1.0 / 15.0  # the skeleton's update rate: smooth to the eye, cheap to send
VIDEO_EVERY_S = 0.1  # camera pictures, only with ui.show_video
RECENT_STEPS = 5  # a metric's shown value (cadence: the engine's): the median of its last steps
METRICS_SHOWN = 3  # besides cadence: a runner 1-2 m away reads a few numbers at most
STOP_HEADER = "x-coachd-stop"  # a cross-site form or image cannot send it (CORS would preflight)


class Subscriber:
    """One page's pending events: bounded; the skeleton and picture only ever the newest."""

    def __init__(self, wake: Callable[[], None], limit: int = SUBSCRIBER_QUEUE) -> None:
        self._wake = wake
        self._limit = limit
        self._lock = threading.Lock()
        self._pending: deque[bytes] = deque()
        self._latest: dict[str, bytes] = {}
        self._woken = False
        self.overflowed = False

    def put(self, message: bytes, latest_of: Optional[str] = None) -> None:
        """Queue `message`; with `latest_of`, it replaces any unsent one of that kind."""
        with self._lock:
            if latest_of is not None:
                self._latest[latest_of] = message
            elif len(self._pending) >= self._limit:
                self.overflowed = True
            else:
                self._pending.append(message)
            wake, self._woken = not self._woken, True
        if wake:
            self._wake()

    def take(self) -> list[bytes]:
        with self._lock:
            out = [*self._pending, *self._latest.values()]
            self._pending.clear()
            self._latest.clear()
            self._woken = False
            return out


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class LiveHub:
    """The page's state, by section, and the pages subscribed to it. Written from the
    tracker and main threads, read from the HTTP event loop."""

    def __init__(self, page_info: Mapping[str, Any], clock: Callable[[], float] = time.monotonic):
        self._info = dict(page_info)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        self._subscribers: set[Subscriber] = set()
        self._video: Optional[bytes] = None
        self._video_seq = 0
        self._video_waiters: set[Subscriber] = set()

    @property
    def watched(self) -> bool:
        with self._lock:
            return bool(self._subscribers)

    @property
    def video_watched(self) -> bool:
        with self._lock:
            return bool(self._video_waiters)

    def publish(self, section: str, value: Any, latest_only: bool = False) -> None:
        """Set one section and send it to every page (`latest_only`: a page behind gets only
        the newest, for the skeleton)."""
        with self._lock:
            if not latest_only and self._state.get(section) == value:
                return
            self._state[section] = value
            if not self._subscribers:  # a page that comes later gets it in its snapshot
                return
            message = sse(section, self._wire(value))
            for subscriber in self._subscribers:
                subscriber.put(message, section if latest_only else None)

    def get(self, section: str) -> Any:
        with self._lock:
            return self._state.get(section)

    def subscribe(self, wake: Callable[[], None]) -> Subscriber:
        """A new page: its first event is the whole state (with the page's fixed info)."""
        subscriber = Subscriber(wake)
        with self._lock:
            snapshot = {key: self._wire(value) for key, value in self._state.items()}
            subscriber.put(
                f"retry: {RETRY_MS}\n".encode() + sse("snapshot", {**self._info, **snapshot})
            )
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)
            self._video_waiters.discard(subscriber)

    def publish_picture(self, jpeg: bytes) -> None:
        with self._lock:
            self._video = jpeg
            self._video_seq += 1
            for waiter in self._video_waiters:
                waiter.put(b"", "video")

    def watch_video(self, wake: Callable[[], None]) -> Subscriber:
        subscriber = Subscriber(wake)
        with self._lock:
            self._video_waiters.add(subscriber)
        return subscriber

    def picture(self) -> tuple[int, Optional[bytes]]:
        with self._lock:
            return self._video_seq, self._video

    def _wire(self, value: Any) -> Any:
        """Monotonic instants (keys ending in "_at") as seconds from now: the page's own
        clock counts on from there."""
        if not isinstance(value, dict):
            return value
        now = self._clock()
        return {
            (key[:-3] + "_s" if key.endswith("_at") else key): (
                round(item - now, 2) if key.endswith("_at") and item is not None else item
            )
            for key, item in value.items()
        }


def page_info(show_video: bool) -> dict[str, Any]:
    """What the page needs once: the skeleton's bones and whether there is a picture."""
    return {"bones": [[int(a), int(b)] for a, b in BONES], "show_video": show_video}


def live_status(in_session: bool, components: Mapping[str, ComponentHealth]) -> dict[str, str]:
    """The page's status line from the daemon's component health."""
    camera, audio = components.get("camera"), components.get("audio")
    if camera is not None and not camera.ok:
        return {"state": "camera_lost", "text": "Camera lost: reconnecting"}
    coaching = "Coaching" if in_session else "Waiting for a runner"
    if audio is not None and not audio.ok:
        return {"state": "audio_degraded", "text": f"{coaching}: no sound, cues on screen only"}
    return {"state": "coaching" if in_session else "waiting", "text": coaching}


@dataclass(frozen=True)
class _Shown:
    """How one metric reads on the page."""

    label: str
    fmt: str


def _shown(metric: str) -> _Shown:
    spec = METRICS[metric]
    if spec.overlay is not None:
        label, fmt = spec.overlay
        return _Shown(label.capitalize(), fmt)
    return _Shown(spec.label, "{:.2f}")


def band_json(band: FormBand, value: Optional[float]) -> dict[str, Any]:
    """One metric's range bar: good on the `clear` side, fix past `start`, watch between,
    and the stretch of the scale the bar draws (three hysteresis gaps either side)."""
    shown = _shown(band.metric)
    gap = abs(band.start - band.clear) or 0.1 * max(abs(band.start), 1e-6)
    low, high = sorted((band.clear, band.start))
    return {
        "metric": band.metric,
        "label": shown.label,
        "value": None if value is None else round(value, 4),
        "text": "–" if value is None else shown.fmt.format(value),
        "start": band.start,
        "clear": band.clear,
        "fault_above": band.fault_above,
        "active": band.active,
        "scale": [low - 3 * gap, high + 3 * gap],
    }


class LiveListener(ChainListener):
    """Feeds the hub from the chain: cues as they are decided, the cadence and the metrics
    that matter now against their bands, the program's step, session time, the skeleton."""

    def __init__(self, hub: LiveHub, show_video: bool = False) -> None:
        self._hub = hub
        self._show_video = show_video
        self._recent: dict[str, deque[float]] = {}
        self._pose_t = -1e9
        self._video_t = -1e9
        self._cues = 0

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        for stride in update.strides:
            self._note(stride)
        if tracked.t - self._pose_t >= POSE_EVERY_S and self._hub.watched:
            self._pose_t = tracked.t
            self._hub.publish("pose", _pose_json(tracked), latest_only=True)
        if (
            self._show_video
            and image is not None
            and tracked.t - self._video_t >= VIDEO_EVERY_S
            and self._hub.video_watched
        ):
            self._video_t = tracked.t
            jpeg = _jpeg(image)
            if jpeg is not None:
                self._hub.publish_picture(jpeg)

    def session_started(self, t0: float, program: str) -> None:
        self._hub.publish("session", {"active": True, "started_at": t0, "program": program})

    def cue_decided(self, cue: Cue) -> None:
        self._cues += 1
        self._hub.publish(
            "cue", {"seq": self._cues, "text": cue.text, "kind": cue.kind, "id": cue.cue_id}
        )

    def session_ended(self, summary: Mapping[str, Any], retro: Optional[RetroProgress]) -> None:
        self._hub.publish("session", {"active": False, "started_at": None, "program": ""})
        self._hub.publish("program", None)

    def coaching_state(self, t: float, state: CoachingState) -> None:
        bands = {band.metric: band for band in state.bands}
        cadence = state.cadence_spm
        cadence_band = bands.pop("cadence_spm", None)
        step = state.step
        target = step.target_spm if step is not None else None
        self._hub.publish(
            "cadence",
            {
                "spm": None if cadence is None else round(cadence),
                "band": None if cadence_band is None else band_json(cadence_band, cadence),
                "target": None if target is None else round(target),
                "target_band": None
                if target is None
                else [round(target * (1.0 - CADENCE_TOLERANCE)), round(target)],
            },
        )
        shown = list(bands.values())[:METRICS_SHOWN]
        self._hub.publish("metrics", [band_json(b, self._value(b.metric)) for b in shown])
        self._hub.publish(
            "program",
            None
            if step is None
            else {
                "program": step.program,
                "step": step.step,
                "ends_at": None if step.ends_in_s is None else t + step.ends_in_s,
                "target_spm": target,
            },
        )
        self._hub.publish("warm", state.warmed_up)

    def _note(self, stride: Stride) -> None:
        for metric in stride.metrics:
            # Cadence is the engine's (CoachingState.cadence_spm), not a median kept here.
            if metric != "cadence_spm" and metric in METRICS and usable(stride, metric, 0.5):
                recent = self._recent.setdefault(metric, deque(maxlen=RECENT_STEPS))
                recent.append(stride.metrics[metric])

    def _value(self, metric: str) -> Optional[float]:
        recent = self._recent.get(metric)
        return statistics.median(recent) if recent else None


def _pose_json(tracked: TrackedFrame) -> Optional[dict[str, Any]]:
    pose = tracked.pose
    if pose is None:
        return None
    width, height = pose.image_size
    points = np.column_stack([pose.norm[:, :2], pose.visibility]).astype(np.float64).round(3)
    return {"aspect": round(width / max(height, 1), 3), "points": points.tolist()}


def _jpeg(image: np.ndarray) -> Optional[bytes]:
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return bytes(data) if ok else None


# --- the page's routes -------------------------------------------------------------------


class LivePage:
    """The routes of the live page: its files, /events, POST /stop and, with
    ui.show_video, /video.mjpg."""

    def __init__(self, hub: LiveHub, stop: Callable[[], Stopped], show_video: bool = False) -> None:
        self._hub = hub
        self._stop = stop
        self._show_video = show_video
        self._files = {
            path: (WEB_DIR / name).read_bytes() for path, (name, _) in STATIC_FILES.items()
        }

    def routes(self) -> dict[tuple[str, str], Route]:
        routes = {("GET", path): Route(handler=self._static) for path in STATIC_FILES}
        routes[("GET", "/events")] = Route(stream=self._events)
        routes[("POST", "/stop")] = Route(handler=self._stop_request)
        if self._show_video:
            routes[("GET", "/video.mjpg")] = Route(stream=self._video)
        return routes

    def _static(self, request: Request) -> Response:
        _, content_type = STATIC_FILES[request.path]
        headers = (("Content-Security-Policy", PAGE_POLICY), ("X-Frame-Options", "DENY"))
        return Response(HTTPStatus.OK, self._files[request.path], content_type, headers)

    def _stop_request(self, request: Request) -> Response:
        refused = cross_site(request)
        if refused:
            return Response.text(HTTPStatus.FORBIDDEN, refused)
        return Response.json({"stopped": self._stop()})

    async def _events(self, request: Request, channel: Channel) -> None:
        if not await channel.send(response_head(HTTPStatus.OK, "text/event-stream")):
            return
        await self._follow(self._hub.subscribe, channel, lambda sub: sub.take())

    async def _video(self, request: Request, channel: Channel) -> None:
        boundary = "coachdframe"
        head = response_head(HTTPStatus.OK, f"multipart/x-mixed-replace; boundary={boundary}")
        if not await channel.send(head):
            return

        def parts(subscriber: Subscriber) -> list[bytes]:
            subscriber.take()
            _, jpeg = self._hub.picture()
            if jpeg is None:
                return []
            part = (
                f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            )
            return [part.encode("latin-1") + jpeg + b"\r\n"]

        await self._follow(self._hub.watch_video, channel, parts)

    async def _follow(
        self,
        subscribe: Callable[[Callable[[], None]], Subscriber],
        channel: Channel,
        messages: Callable[[Subscriber], Sequence[bytes]],
    ) -> None:
        """Send what the subscriber gets until the page goes or falls too far behind."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the server is stopping: loop closed
                loop.call_soon_threadsafe(ready.set)

        subscriber = subscribe(wake)
        try:
            while not subscriber.overflowed:
                try:
                    await asyncio.wait_for(ready.wait(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    if not await channel.send(b": keep-alive\n\n"):
                        return
                    continue
                ready.clear()
                batch = b"".join(messages(subscriber))
                if batch and not await channel.send(batch):
                    return
        finally:
            self._hub.unsubscribe(subscriber)


def cross_site(request: Request) -> str:
    """Why a state-changing request must be refused as possibly cross-site ("" if it is
    the page's own): the page's custom header, and a same-origin Origin when one is sent."""
    if request.headers.get(STOP_HEADER) != "1":
        return f"refused: send the header {STOP_HEADER}: 1 (the live page does)"
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin != f"http://{host}":
        return f"refused: origin {origin} is not this server (http://{host})"
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"refused: a {fetch_site} request"
    return ""
