"""The report screenshot in the README (docs/figures/report.png), run from the repository root:

    .venv/bin/python docs/figures/report_example.py     # needs Debian's chromium

The demo runner's first 70 s as `coachd run` stores them (the daemon's own chain and store
writer), but tracked at every frame, so the machine's load does not change the session: a first
pass finds the coach's first correction, the second has the runner fix it DEMO_REACTION_S later,
as the daemon makes it. Then `coachd report` writes the page and headless Chromium photographs
it at a phone's width.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from coachd.capture.open import DEMO_REACTION_S, DEMO_SOURCE, open_source
from coachd.chain import ChainListener, CoachingChain
from coachd.coach import CueEngine, load_packs
from coachd.coach.coaching import Coaching
from coachd.coach.sessions import SessionTracker
from coachd.gait import GaitAnalyzer
from coachd.messages import Cue
from coachd.pose import create_tracker
from coachd.service.daemon import DEMO_GREETING, DEMO_WARMUP_S
from coachd.service.listeners import StoreListener
from coachd.service.store_writer import StoreWriter
from coachd.settings import Settings, load_settings

OUT = Path(__file__).resolve().parent / "report.png"
SECONDS = 70.0
PHONE = "412,2900"  # CSS pixels: a common phone's width, long enough for the whole page


class Said(ChainListener):
    def __init__(self) -> None:
        self.cues: list[Cue] = []

    def cue_decided(self, cue: Cue) -> None:
        self.cues.append(cue)


def coach_demo(settings: Settings, spec: str, db: Optional[Path], stop_at_first: bool) -> Said:
    source = open_source(spec, settings.camera, realtime=False)
    tracker = create_tracker(settings.pose)
    engine = CueEngine(settings.engine, load_packs(settings.engine))
    sessions = SessionTracker(settings.service, DEMO_GREETING)
    chain = CoachingChain(
        GaitAnalyzer(settings.gait, source.nominal_fps), Coaching(engine, sessions)
    )
    said = Said()
    chain.add_listener(said)
    writer = StoreWriter(db, runner="") if db is not None else None
    if writer is not None:
        writer.start()
        chain.add_listener(StoreListener(writer, ""))
    t = 0.0
    try:
        for frame in source:
            chain.feed(tracker.track(frame), frame.image)
            t = frame.t
            if stop_at_first and any(c.kind == "correction" for c in said.cues):
                break
        chain.finish(t)
    finally:
        tracker.close()
        source.close()
        if writer is not None:
            writer.close(timeout=10.0)
    return said


def main() -> int:
    settings = load_settings(overrides={"engine": {"warmup_s": DEMO_WARMUP_S}}).settings
    spec = f"{DEMO_SOURCE}&seconds={SECONDS:g}"
    first = coach_demo(settings, spec, None, stop_at_first=True)
    told = next(c.t_emit for c in first.cues if c.kind == "correction")
    fixed = re.sub(r"fix_at=[\d.]+", f"fix_at={told + DEMO_REACTION_S:.2f}", spec)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sessions.sqlite"
        said = coach_demo(settings, fixed, db, stop_at_first=False)
        for cue in said.cues:
            print(f"{cue.t_emit:5.1f} s  {cue.kind:<10} {cue.text}")
        page = Path(tmp) / "session.html"
        coachd = [sys.executable, "-m", "coachd", "report", "last", "--db", str(db)]
        subprocess.run([*coachd, "--html", str(page)], check=True)
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                f"--window-size={PHONE}",
                f"--screenshot={OUT}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
