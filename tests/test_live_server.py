"""The live page's routes on the real HTTP server, read with real sockets: the files, the
event stream (retry, snapshot, pushed changes, bounded), STOP's guard, the picture; and what
the page is told: the status line and the range bars."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Optional

import pytest
from daemon_harness import wait_until

from coachd.coach import CueEngine, load_packs
from coachd.coach.coaching import Coaching, Stopped
from coachd.messages import GaitUpdate, Stride, TrackedFrame
from coachd.service.health import ComponentHealth, HealthServer, HttpLimits, Metrics
from coachd.service.live import (
    RETRY_MS,
    LiveHub,
    LiveListener,
    LivePage,
    Subscriber,
    band_json,
    live_status,
    page_info,
)
from coachd.settings import ServiceSettings, Settings

SEEN_WITHIN_S = 10.0


class Served:
    def __init__(self, show_video: bool = False, limits: Optional[HttpLimits] = None) -> None:
        self.hub = LiveHub(page_info(show_video))
        self.stops: list[str] = []
        self.server = HealthServer(
            ServiceSettings(), Metrics(), port=0, limits=limits or HttpLimits()
        )
        for (method, path), route in LivePage(self.hub, self._stop, show_video).routes().items():
            self.server.add_route(method, path, route)
        self.server.start()
        self.port = self.server.address[1]

    def _stop(self) -> Stopped:
        self.stops.append("stop")
        return "drill"

    def request(
        self, path: str, method: str = "GET", headers: Optional[dict[str, str]] = None
    ) -> tuple[int, dict[str, str], bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        req = urllib.request.Request(url, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


@pytest.fixture()
def served() -> Iterator[Served]:
    s = Served()
    yield s
    s.server.stop()


class EventStream:
    """A raw-socket reader of /events."""

    def __init__(self, port: int, path: str = "/events") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SEEN_WITHIN_S)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        self.data = b""

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before {marker!r}: {self.data[-500:]!r}")
            self.data += chunk
        return self.data

    def events(self) -> list[tuple[str, object]]:
        out = []
        for block in self.data.split(b"\n\n"):
            lines = dict(
                line.split(": ", 1) for line in block.decode().splitlines() if ": " in line
            )
            if "event" in lines:
                out.append((lines["event"], json.loads(lines["data"])))
        return out

    def close(self) -> None:
        self.sock.close()


def test_the_page_and_its_files_are_served_under_a_strict_policy(served: Served) -> None:
    status, headers, body = served.request("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script src="/live.js"' in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, headers, _ = served.request("/live.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert served.request("/healthz")[0] == 503  # still the server's own routes
    assert served.request("/nothing-here")[0] == 404
    assert served.request("/video.mjpg")[0] == 404  # no picture unless ui.show_video


def test_a_page_gets_retry_and_the_whole_state_then_each_change(served: Served) -> None:
    served.hub.publish("status", {"state": "coaching", "text": "Coaching"})
    stream = EventStream(served.port)
    try:
        head = stream.read_until(b"event: snapshot").decode()
        assert head.startswith("HTTP/1.0 200") and "text/event-stream" in head
        assert f"retry: {RETRY_MS}" in head
        stream.read_until(b'"Coaching"}')
        snapshot = dict(stream.events())["snapshot"]
        assert isinstance(snapshot, dict)
        assert snapshot["status"] == {"state": "coaching", "text": "Coaching"}
        assert [11, 12] in snapshot["bones"] and snapshot["show_video"] is False

        served.hub.publish("cue", {"seq": 1, "text": "Land under your hips.", "kind": "correction"})
        stream.read_until(b"Land under your hips.")
        assert ("cue", {"seq": 1, "text": "Land under your hips.", "kind": "correction"}) in (
            stream.events()
        )
    finally:
        stream.close()
    assert wait_until(lambda: not served.hub.watched, SEEN_WITHIN_S)  # the page left


def test_streams_have_their_own_cap_and_take_no_worker() -> None:
    served = Served(limits=HttpLimits(workers=1, max_streams=2))
    streams = [EventStream(served.port) for _ in range(2)]
    try:
        for stream in streams:
            stream.read_until(b"event: snapshot")
        assert served.request("/healthz")[0] == 503  # answered: no frames yet
        status, _, body = served.request("/events")
        assert status == 503 and b"too many streams" in body
    finally:
        for stream in streams:
            stream.close()
        served.server.stop()


def test_a_page_that_falls_behind_is_let_go() -> None:
    woken = threading.Event()
    subscriber = Subscriber(woken.set, limit=3)
    for n in range(3):
        subscriber.put(b"cue %d" % n)
    subscriber.put(b"pose a", latest_of="pose")
    subscriber.put(b"pose b", latest_of="pose")  # only the newest skeleton is kept
    assert not subscriber.overflowed and woken.is_set()
    assert subscriber.take() == [b"cue 0", b"cue 1", b"cue 2", b"pose b"]
    for n in range(4):
        subscriber.put(b"cue %d" % n)
    assert subscriber.overflowed


def test_stop_is_refused_to_other_sites(served: Served) -> None:
    status, _, body = served.request("/stop", "POST")
    assert status == 403 and b"x-coachd-stop" in body
    other = {"X-Coachd-Stop": "1", "Origin": "http://gym-ads.example"}
    assert served.request("/stop", "POST", other)[0] == 403
    fetched = {"X-Coachd-Stop": "1", "Sec-Fetch-Site": "cross-site"}
    assert served.request("/stop", "POST", fetched)[0] == 403
    assert served.request("/stop")[0] == 405
    assert served.stops == []
    own = {"X-Coachd-Stop": "1", "Origin": f"http://127.0.0.1:{served.port}"}
    status, _, body = served.request("/stop", "POST", own)
    assert status == 200 and json.loads(body) == {"stopped": "drill"}
    assert served.stops == ["stop"]


def test_the_picture_is_served_only_with_show_video() -> None:
    served = Served(show_video=True)
    stream = EventStream(served.port, "/video.mjpg")
    try:
        stream.read_until(b"multipart/x-mixed-replace")
        assert wait_until(lambda: served.hub.video_watched, SEEN_WITHIN_S)
        served.hub.publish_picture(b"\xff\xd8jpeg\xff\xd9")
        stream.read_until(b"\xff\xd8jpeg\xff\xd9")
        assert b"Content-Type: image/jpeg" in stream.data
    finally:
        stream.close()
        served.server.stop()


def test_the_status_line_follows_the_component_health() -> None:
    ok, lost = ComponentHealth(), ComponentHealth("reconnecting", "no frames from /dev/video0")
    silent = ComponentHealth("missing", "audio output missing")
    assert live_status(False, {"camera": ok, "audio": ok})["state"] == "waiting"
    assert live_status(True, {"camera": ok, "audio": ok})["state"] == "coaching"
    assert live_status(True, {"camera": lost, "audio": silent})["state"] == "camera_lost"
    degraded = live_status(True, {"camera": ok, "audio": silent})
    assert degraded["state"] == "audio_degraded" and "on screen" in degraded["text"]


def test_the_bands_are_the_packs_thresholds_for_what_the_view_sees() -> None:
    settings = Settings()
    engine = CueEngine(settings.engine, load_packs(settings.engine))
    side = {band.metric: band for band in engine.form_bands("side-right")}
    rule = next(r for r in engine.pack.enabled if r.id == "overstride")
    condition = rule.when[0]
    band = side[condition.metric]
    assert (band.start, band.clear, band.fault_above) == (condition.start, condition.clear, True)
    assert "overstride_ratio" not in {b.metric for b in engine.form_bands("front")}
    # Before the runner's baseline is known, cadence's band is the pack's absolute threshold.
    absolute = [
        c
        for r in engine.pack.enabled
        for c in r.when
        if c.metric == "cadence_spm" and c.relative == "absolute"
    ]
    assert absolute, "the default pack judges cadence against an absolute floor"
    assert (side["cadence_spm"].start, side["cadence_spm"].clear) == (
        absolute[0].start,
        absolute[0].clear,
    )
    shown = band_json(band, 0.30)
    low, high = shown["scale"]
    assert low < band.clear < band.start < 0.30 < high and shown["text"] == "0.30 L"


def test_the_page_shows_the_cadence_the_engine_judges() -> None:
    coaching = Coaching.from_settings(Settings(service=ServiceSettings(session_start_s=1.0)))
    hub = LiveHub(page_info(False))
    listener = LiveListener(hub)
    t = 0.0
    for i in range(40):
        t += 0.35
        # The last three steps quicker: a median of the last five would already say so.
        spm = 160.0 if i < 37 else 185.0
        stride = Stride(
            t, "left" if i % 2 else "right", "side-right", 60.0 / spm, {"cadence_spm": spm}
        )
        update = GaitUpdate(t, "running", "side-right", strides=(stride,))
        coaching.update(update)
        listener.frame_measured(TrackedFrame(i, t, t, None), update, None)
    state = coaching.state(t, "side-right")
    assert state.in_session and coaching.engine.cadence_spm() == 160.0
    listener.coaching_state(t, state)
    assert hub.get("cadence")["spm"] == 160
