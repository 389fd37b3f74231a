"""/healthz and /metrics served on an ephemeral loopback port, read with a real HTTP client."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from coachd.errors import ConfigError
from coachd.service.health import HealthServer, Metrics
from coachd.settings import ServiceSettings


@pytest.fixture()
def server() -> Iterator[HealthServer]:
    srv = HealthServer(ServiceSettings(health_stale_s=3.0), Metrics(), port=0)
    srv.start()
    yield srv
    srv.stop()


def _get(srv: HealthServer, path: str) -> tuple[int, str, str]:
    host, port = srv.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def test_healthz_follows_the_frames(server: HealthServer) -> None:
    status, ctype, body = _get(server, "/healthz")
    assert status == 503 and ctype == "application/json"
    assert "no frame yet" in json.loads(body)["reason"]

    server.mark_frame()
    status, _, body = _get(server, "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"

    server.mark_frame(time.monotonic() - 60.0)  # the last frame was a minute ago
    status, _, body = _get(server, "/healthz")
    assert status == 503
    reason = json.loads(body)["reason"]
    assert "last frame" in reason and "limit 3.0 s" in reason

    server.mark_frame()
    server.set_stopping()
    status, _, body = _get(server, "/healthz")
    assert status == 503 and json.loads(body)["reason"] == "stopping"


def test_healthz_asks_the_daemons_callable() -> None:
    flowing = [False]
    srv = HealthServer(ServiceSettings(), Metrics(), frames_flowing=lambda: flowing[0], port=0)
    srv.start()
    try:
        assert _get(srv, "/healthz")[0] == 503
        flowing[0] = True
        assert _get(srv, "/healthz")[0] == 200
    finally:
        srv.stop()


def test_metrics_parse_as_prometheus_text(server: HealthServer) -> None:
    m = server.metrics
    m.set_fps(29.5)
    m.observe_pose_ms(18.0)
    m.observe_pose_ms(42.0)
    m.observe_latency_ms(95.0)
    m.inc_frames_dropped(3)
    m.set_runner_present(True)
    m.inc_sessions()
    m.inc_cue("overstride")
    m.inc_cue("overstride")
    m.inc_cue_dropped("stale")
    m.inc_camera_reconnects()
    m.set_audio_state("missing")
    m.set_voice_cache_bytes(123456)
    server.mark_frame()

    status, ctype, text = _get(server, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    for name in (
        "coachd_fps",
        "coachd_pose_stage_seconds",
        "coachd_glass_to_landmarks_seconds",
        "coachd_frames_dropped",
        "coachd_runner_present",
        "coachd_sessions",
        "coachd_cues_spoken",
        "coachd_cues_dropped",
        "coachd_camera_reconnects",
        "coachd_audio_state",
        "coachd_last_frame_age_seconds",
        "coachd_voice_cache_bytes",
    ):
        assert name in families, name
    assert samples[("coachd_fps", ())] == 29.5
    assert samples[("coachd_pose_stage_seconds_count", ())] == 2
    assert samples[("coachd_pose_stage_seconds_sum", ())] == pytest.approx(0.060)
    assert samples[("coachd_pose_stage_seconds_bucket", (("le", "0.02"),))] == 1
    assert samples[("coachd_glass_to_landmarks_seconds_count", ())] == 1
    assert samples[("coachd_frames_dropped_total", ())] == 3
    assert samples[("coachd_runner_present", ())] == 1
    assert samples[("coachd_sessions_total", ())] == 1
    assert samples[("coachd_cues_spoken_total", (("cue_id", "overstride"),))] == 2
    assert samples[("coachd_cues_dropped_total", (("reason", "stale"),))] == 1
    assert samples[("coachd_camera_reconnects_total", ())] == 1
    assert samples[("coachd_audio_state", (("state", "missing"),))] == 1
    assert samples[("coachd_audio_state", (("state", "ok"),))] == 0
    assert 0 <= samples[("coachd_last_frame_age_seconds", ())] < 60
    assert samples[("coachd_voice_cache_bytes", ())] == 123456


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.inc_sessions()
    assert b"coachd_sessions_total 0.0" in b.render()
    assert b"coachd_sessions_total 1.0" in a.render()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "kiosk.local"])
def test_remote_bind_needs_allow_remote_http(host: str) -> None:
    with pytest.raises(ConfigError) as err:
        HealthServer(ServiceSettings(http_host=host), Metrics(), port=0)
    message = str(err.value)
    assert "service.http_host" in message and "service.allow_remote_http" in message
    # Allowed once the setting says so (constructed only: nothing is bound beyond loopback).
    HealthServer(ServiceSettings(http_host=host, allow_remote_http=True), Metrics(), port=0)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_needs_no_permission(host: str) -> None:
    HealthServer(ServiceSettings(http_host=host), Metrics(), port=0)


def test_a_port_in_use_is_a_config_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        srv = HealthServer(ServiceSettings(), Metrics(), port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match=r"service\.http_port"):
            srv.start()
    finally:
        taken.close()


def test_unknown_path_is_404(server: HealthServer) -> None:
    assert _get(server, "/nope")[0] == 404
