"""A first run without a camera coaches: the demo runner overstrides, is told, fixes it
(scripted) and is praised within the first minute; stopping says the summary and where the
session was saved."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from daemon_harness import require_synthetic, start_daemon, wait_until
from landmark_streams import landmark_run

from coachd.capture.camera import video_devices
from coachd.capture.open import DEMO_FIX_AT_S, DEMO_REACTION_S, DEMO_SOURCE
from coachd.coach import CueEngine, load_packs
from coachd.coach.coaching import Coaching
from coachd.coach.sessions import SessionTracker
from coachd.gait.analyzer import GaitAnalyzer
from coachd.messages import Cue
from coachd.service.daemon import DEMO_WARMUP_S
from coachd.settings import EngineSettings, GaitSettings, ServiceSettings

FIRST_MINUTE_S = 60.0


def _coach_demo(spec: str) -> list[tuple[str, str, float]]:
    """(kind, cue id, seconds from the first frame) of what the demo's frames are told, at
    every frame (so it holds on a busy machine too: `coachd run` may track fewer of them;
    README 'What you see and hear' shows a real run)."""
    settings = EngineSettings(warmup_s=DEMO_WARMUP_S)
    engine = CueEngine(settings, load_packs(settings))
    coaching = Coaching(engine, SessionTracker(ServiceSettings()))
    gait = GaitAnalyzer(GaitSettings(), 30.0)
    run = landmark_run(spec, noise_px=2.0)
    start = run.frames[0].t
    cues: list[Cue] = []
    for frame in run.frames:
        cues += coaching.update(gait.update(frame)).cues
    return [(c.kind, c.cue_id, c.t_emit - start) for c in cues if c.kind != "greeting"]


def test_the_demo_runner_is_told_fixes_it_and_is_praised_in_the_first_minute() -> None:
    seconds = f"&seconds={FIRST_MINUTE_S:g}"
    untold = _coach_demo(DEMO_SOURCE + seconds)
    told = [t for kind, cue_id, t in untold if (kind, cue_id) == ("correction", "overstride")]
    assert told and told[0] + DEMO_REACTION_S < DEMO_FIX_AT_S, untold
    # The daemon has the runner fix it DEMO_REACTION_S after the correction: the same here.
    fix_at = told[0] + DEMO_REACTION_S
    said = _coach_demo(re.sub(r"fix_at=[\d.]+", f"fix_at={fix_at:.2f}", DEMO_SOURCE) + seconds)
    assert [(kind, cue_id) for kind, cue_id, _ in said] == [
        ("correction", "overstride"),
        ("praise", "overstride"),
    ], said
    assert said[0][2] == told[0] and fix_at < said[1][2] < FIRST_MINUTE_S, said


@pytest.mark.timeout(240)
def test_coachd_run_without_a_camera_coaches_the_demo_runner_and_says_where_it_saved(
    tmp_path: Path,
) -> None:
    if video_devices():
        pytest.skip("this machine has a camera: auto would open it")
    require_synthetic()
    daemon = start_daemon(tmp_path, "auto", quiet=False)
    try:
        daemon.wait_ready()
        assert wait_until(lambda: "greeting" in daemon.output(), 120), daemon.output()[-3000:]
        out = daemon.output()
        assert "demo: no camera found, so this is the demo runner" in out
        assert f"Demo warm-up: {DEMO_WARMUP_S:.0f} s" in out
        assert re.search(r"greeting .*This is a demo, with a 10 second warm-up", out)
        # The session is on the live server's sessions page while it runs.
        assert wait_until(lambda: daemon.http("/sessions/1")[0] == 200, 60)
        assert b"Session 1" in daemon.http("/sessions/1")[1]
        assert daemon.stop(signal.SIGINT, timeout=60) == 0
    finally:
        daemon.cleanup()
    out = daemon.stdout_path.read_text()
    summary = out.index(" summary ")
    saved = f"session 1 saved: coachd report 1, or open http://127.0.0.1:{daemon.port}/sessions/1"
    assert saved in out and out.index(saved) > summary, out
    assert "frames tracked" not in out, "the operator's figures go to the log, not the runner"


def test_the_demo_source_fixes_its_runner_after_being_told() -> None:
    require_synthetic()
    from coachd.capture.open import open_synthetic
    from coachd.capture.synthetic import SyntheticSource

    source = open_synthetic(DEMO_SOURCE, realtime=False)
    assert isinstance(source, SyntheticSource)
    with source:
        for _ in range(30):
            source.read()
        source.fix_after(DEMO_REACTION_S)
        assert source.params.fix_at == pytest.approx(1.0 + DEMO_REACTION_S)
        source.fix_after(30.0)  # told again later: the earlier fix stands
        assert source.params.fix_at == pytest.approx(1.0 + DEMO_REACTION_S)
        assert source.model.params.at(5.0).overstride < source.params.overstride
