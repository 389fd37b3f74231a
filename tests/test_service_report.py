"""`coachd report`, the live server's /sessions pages and `coachd sessions list` on a real
sessions database."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Optional

import pytest
from support import run_coachd

from coachd.cli import main
from coachd.messages import Cue, Stride
from coachd.service.health import HealthServer, Metrics
from coachd.service.report import session_page, session_routes
from coachd.service.store import SessionStore
from coachd.settings import ServiceSettings

CADENCE_BLOCK_WORDS = "Cadence block: 178 steps a minute, slightly quicker, lighter steps."


def _session(
    store: SessionStore,
    runner: str,
    days_ago: float,
    metrics: dict[str, float],
    cues: int,
    summary: Optional[dict[str, object]] = None,
    view: str = "side-left",
) -> int:
    t0 = 1000.0
    started = time.time() - days_ago * 86400.0
    sid = store.start_session(runner=runner, program="free", t0=t0, started=started)
    for i in range(120):
        t = t0 + 5.0 + i * 0.36
        values = {k: v * (1.0 + 0.02 * ((i * 7) % 5 - 2)) for k, v in metrics.items()}
        store.add_stride(sid, Stride(t, "left" if i % 2 else "right", view, 0.36, values))  # type: ignore[arg-type]
    for k in range(cues):
        store.add_cue(
            sid, Cue(t0 + 10.0 + 15 * k, "overstride", "Land <under> your hips", "correction")
        )
    store.add_cue(sid, Cue(t0 + 4.0, "session_greeting", "Hi!", "greeting"))
    store.end_session(
        sid,
        {
            "duration_s": 50.0,
            "cadence_spm": metrics.get("cadence_spm"),
            "text": "Well done: a short run.",
            **(summary or {}),
        },
    )
    return sid


@pytest.fixture()
def db(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    path = tmp_path / "sessions.sqlite"
    store = SessionStore(path)
    ids = {
        "ana_old": _session(store, "ana", 8, {"cadence_spm": 160.0, "overstride_ratio": 0.3}, 1),
        "ana_new": _session(
            store,
            "ana",
            1,
            # trunk lean measured well, contact time out of range-free, shoulder sway from a
            # side view: a front-view metric the side view cannot see
            {
                "cadence_spm": 168.0,
                "overstride_ratio": 0.22,
                "trunk_lean_deg": 18.0,
                "contact_time_ms": 250.0,
                "shoulder_sway_ratio": 0.4,
            },
            2,
            {
                "improved": ["overstride_ratio"],
                "work_on": "overstride",
                "work_on_text": "Land <under> your hips",
            },
        ),
        "anon": _session(
            store, "", 0.5, {"cadence_spm": 172.0, "shoulder_sway_ratio": 0.1}, 0, view="front"
        ),
    }
    store.close()
    return path, ids


def _figures(page: str) -> list[str]:
    """The ids of the page's figures, in order."""
    return re.findall(r'<figure id="([^"]+)">', page)


def _figure(page: str, fig_id: str) -> str:
    match = re.search(rf'<figure id="{re.escape(fig_id)}">(.*?)</figure>', page, re.S)
    assert match, f"no figure {fig_id}"
    return match.group(1)


def _self_contained(page: str) -> None:
    """One file a phone can open offline: no script, nothing fetched, sized to the screen."""
    assert "<script" not in page and "<img" not in page and "<link" not in page
    assert not re.findall(r"(?:src|href)=\"https?://", page)
    assert 'name="viewport" content="width=device-width' in page


def test_report_leads_with_the_headline_and_plots_what_the_view_saw(
    db: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = db
    out = tmp_path / "report.html"
    assert main(["report", str(ids["ana_new"]), "--html", str(out), "--db", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = out.read_text()
    _self_contained(page)
    headline = page[: page.index("<figure")]
    assert "50 s" in headline and "168" in headline and "steps a minute" in headline
    assert "The one thing to work on" in headline and "Land &lt;under&gt; your hips" in headline
    assert "<under>" not in page
    # What improved, with its evidence: the first and last thirds' means.
    assert "What improved" in headline and "You landed closer under your hips" in headline
    assert re.search(
        r"0\.2\d+ &rarr; 0\.2\d+ of leg length, mean of the first and last 40", headline
    )
    assert "Well done: a short run." in headline
    # The cued metric first, then the one outside its good range, then the rest; nothing the
    # side view cannot see (shoulder sway is measured from the front).
    plotted = [f for f in _figures(page) if not f.endswith("-trend")]
    assert plotted == ["overstride_ratio", "trunk_lean_deg", "cadence_spm", "contact_time_ms"]
    overstride = _figure(page, "overstride_ratio")
    assert 'fill="#d7f0dc"' in overstride and "good range up to 0.25 of leg length" in overstride
    # Each cue marked on the metric it is about, with its words, not its id.
    assert overstride.count("Land &lt;under&gt; your hips") == 2 * 2  # the mark's title, the list
    assert ">overstride<" not in page and "session_greeting" not in page
    assert "Land &lt;under&gt; your hips" not in _figure(page, "cadence_spm")
    # Earlier sessions of the same runner: a trend where both sessions have the metric.
    assert "ana: this session and earlier ones" in page
    trends = [f for f in _figures(page) if f.endswith("-trend")]
    assert trends == ["overstride_ratio-trend", "cadence_spm-trend"]


def test_a_cadence_block_target_is_drawn(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    store = SessionStore(path)
    sid = _session(store, "", 0, {"cadence_spm": 172.0}, 0)
    store.add_cue(sid, Cue(1020.0, "cadence_start", CADENCE_BLOCK_WORDS, "program"))
    store.add_cue(sid, Cue(1040.0, "cadence_end", "Block done: run easy and relaxed.", "program"))
    store.close()
    status, page = session_page(path, f"/sessions/{sid}") or (0, "")
    assert status == 200
    cadence = _figure(page, "cadence_spm")
    assert "target 178" in cadence and "stroke-dasharray" in cadence
    assert "Cadence block: 178 steps a minute" in cadence  # its words marked there


def test_anonymous_session_has_no_trend(db: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, _ = db
    out = tmp_path / "anon.html"
    assert main(["report", "last", "--html", str(out), "--db", str(path)]) == 0
    page = out.read_text()
    assert _figures(page) == ["cadence_spm", "shoulder_sway_ratio"]
    assert "earlier ones" not in page


def test_report_without_html_writes_session_n_here(
    db: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    path, ids = db
    done = run_coachd("report", str(ids["ana_old"]), "--db", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / f"session-{ids['ana_old']}.html").read_text().startswith("<!DOCTYPE html>")


def test_no_praise_in_a_report_without_measured_steps(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    store = SessionStore(path)
    sid = store.start_session(runner="", program="free", t0=10.0, started=time.time())
    store.end_session(sid, {"duration_s": 30.0, "text": "That was a short run."})
    store.close()
    _, page = session_page(path, f"/sessions/{sid}") or (0, "")
    assert "Too few steps were measured" in page and "No steps were measured" in page
    assert "Nothing stood out" not in page


def test_the_live_server_serves_the_sessions_pages(db: tuple[Path, dict[str, int]]) -> None:
    path, ids = db
    server = HealthServer(ServiceSettings(), Metrics(), port=0)
    for route_path, route in session_routes(path, dict).items():
        server.add_route("GET", route_path, route)
    server.start()
    base = f"http://127.0.0.1:{server.address[1]}"
    try:
        with urllib.request.urlopen(base + "/sessions", timeout=30) as reply:
            listing = reply.read().decode()
            assert reply.headers["Content-Type"].startswith("text/html")
        for sid in ids.values():
            assert f'href="/sessions/{sid}"' in listing
        assert "Land &lt;under&gt; your hips" in listing and ">overstride<" not in listing
        with urllib.request.urlopen(f"{base}/sessions/{ids['ana_new']}", timeout=30) as reply:
            page = reply.read().decode()
        _self_contained(page)
        assert f"Session {ids['ana_new']}" in page and 'href="/sessions"' in page
        for missing in ("/sessions/999", "/sessions/abc"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(base + missing, timeout=30)
            assert caught.value.code == 404
    finally:
        server.stop()


def test_report_errors_are_one_clear_line(
    db: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = db
    assert main(["report", "999", "--html", str(tmp_path / "x.html"), "--db", str(path)]) == 2
    assert "no session 999" in capsys.readouterr().err
    assert main(["report", "abc", "--html", str(tmp_path / "x.html"), "--db", str(path)]) == 2
    missing = tmp_path / "nothing.sqlite"
    assert main(["sessions", "list", "--db", str(missing)]) == 2
    assert "no sessions database at" in capsys.readouterr().err
    assert not missing.exists()


def test_sessions_list_is_a_table(
    db: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = db
    assert main(["sessions", "list", "--db", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["ID", "STARTED", "MINUTES", "RUNNER"]
    assert [int(line.split()[0]) for line in lines[1:]] == [
        ids["anon"],
        ids["ana_new"],
        ids["ana_old"],
    ]
    assert "168" in lines[2] and "0.8" in lines[2]  # cadence, minutes
    assert main(["sessions", "list", "--runner", "ana", "--db", str(path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_commands_find_the_database_through_the_settings(
    db: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = db
    assert main(["sessions", "list", "--set", f"service.state_dir={path.parent}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(ids)


def test_sessions_list_json_has_every_session(db: tuple[Path, dict[str, int]]) -> None:
    path, ids = db
    done = run_coachd("sessions", "list", "--db", str(path), "--json")
    assert done.returncode == 0, done.stderr
    sessions = json.loads(done.stdout)
    assert [s["id"] for s in sessions] == [ids["anon"], ids["ana_new"], ids["ana_old"]]
    newest = sessions[1]
    assert newest["runner"] == "ana" and newest["program"] == "free"
    assert newest["strides"] == 120 and newest["cues"] == 3
    assert newest["summary"]["cadence_spm"] == 168.0
    assert datetime.fromisoformat(newest["started"]).tzinfo is not None
