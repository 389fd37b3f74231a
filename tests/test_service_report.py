"""`coachd report` and `coachd sessions list` on a real sessions database."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from support import run_coachd

from coachd.cli import main
from coachd.messages import Cue, Stride
from coachd.service.store import SessionStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _session(
    store: SessionStore, runner: str, days_ago: float, metrics: dict[str, float], cues: int
) -> int:
    t0 = 1000.0
    started = time.time() - days_ago * 86400.0
    sid = store.start_session(runner=runner, program="free", t0=t0, started=started)
    for i in range(120):
        t = t0 + 5.0 + i * 0.36
        values = {k: v * (1.0 + 0.02 * ((i * 7) % 5 - 2)) for k, v in metrics.items()}
        store.add_stride(sid, Stride(t, "left" if i % 2 else "right", "side-left", 0.36, values))
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
            {"cadence_spm": 168.0, "overstride_ratio": 0.22, "trunk_lean_deg": 8.0},
            2,
        ),
        "anon": _session(store, "", 0.5, {"cadence_spm": 172.0, "shoulder_sway_ratio": 0.1}, 0),
    }
    store.close()
    return path, ids


def _images(page: str) -> dict[str, bytes]:
    found = {}
    for fig_id, data in re.findall(
        r'<figure id="([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
        page,
    ):
        found[fig_id] = base64.b64decode(data, validate=True)
    return found


def test_report_plots_each_metric_and_compares_with_earlier_sessions(
    db: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = db
    out = tmp_path / "report.html"
    assert main(["report", str(ids["ana_new"]), "--html", str(out), "--db", str(path)]) == 0
    page = out.read_text()
    images = _images(page)
    for name in ("cadence_spm", "overstride_ratio", "trunk_lean_deg"):
        assert images[name].startswith(PNG_MAGIC), name
    assert "shoulder_sway_ratio" not in images  # not measured in this session
    # Earlier sessions of the same runner: medians by session, plotted where both have it.
    assert "ana: this session and earlier ones" in page
    assert images["cadence_spm-history"].startswith(PNG_MAGIC)
    assert images["overstride_ratio-history"].startswith(PNG_MAGIC)
    assert "trunk_lean_deg-history" not in images
    assert "Land &lt;under&gt; your hips" in page and "<under>" not in page
    assert "Well done: a short run." in page
    assert "wrote" in capsys.readouterr().out


def test_anonymous_session_has_no_comparison(
    db: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    path, _ = db
    out = tmp_path / "anon.html"
    assert main(["report", "last", "--html", str(out), "--db", str(path)]) == 0
    page = out.read_text()
    images = _images(page)
    assert set(images) == {"cadence_spm", "shoulder_sway_ratio"}
    assert "earlier ones" not in page


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
