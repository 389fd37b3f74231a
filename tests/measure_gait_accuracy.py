"""Prints the gait accuracy tables of docs/metrics.md and docs/benchmarks.md (test support).

`PYTHONPATH=.:tests .venv/bin/python tests/measure_gait_accuracy.py`: the six side-view cases,
9 s each with 1 px of landmark noise: our median minus the truth's over the steps matched
within a frame, the cadence against the truth's contacts, and the share of contacts found.

`... tests/measure_gait_accuracy.py --rendered 'synthetic:?fps=60&seconds=15'`: the runner
rendered and tracked by the pose model once, then the gait stage over its tracked frames with
0, 25 and 50% of them dropped at random (seed 0): steps measured, the truth's landings after
the first second found within 1.5 frames of the rate the frames came at (live: no warm-up
events), spurious contacts, the gait stage's
checks, and its CPU time per frame.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from landmark_streams import landmark_run, run_gait
from synthetic_truth import simulate_truth
from test_gait_legs import found_share
from test_gait_metrics import matched, median_error, summary, truth_cadence

from coachd.capture.open import open_source
from coachd.capture.synthetic.params import parse_spec
from coachd.gait import GaitAnalyzer
from coachd.pose.tracker import create_tracker
from coachd.settings import GaitSettings, Settings

CASES = [
    "view=side-left&cadence=170&strike=midfoot",
    "view=side-right&cadence=165&overstride=0.3&strike=heel",
    "view=side-left&cadence=180&overstride=0.0&strike=forefoot&trunk_lean=12",
    "view=side-right&cadence=160&overstride=0.2&strike=midfoot",
    "view=side-left&cadence=175&overstride=0.15&strike=heel&trunk_lean=3",
    "view=side-right&cadence=185&strike=forefoot",
]
KEYS = ("trunk_lean_deg", "overstride_ratio", "shank_angle_deg", "contact_time_ms")


def main() -> None:
    print("| case | found | steps | cadence | trunk lean | overstride | shank | contact ms |")
    print("|---|---|---|---|---|---|---|---|")
    for query in CASES:
        run = landmark_run(f"synthetic:?{query}&seconds=9", noise_px=1.0)
        record = run_gait(run.frames, GaitSettings(runner_height_cm=175.0), run.params.fps)
        pairs = matched(run, record)
        errors = [f"{median_error(pairs, key):+.3g}" for key in KEYS]
        cadence = summary(record, "cadence_spm") - truth_cadence(run)
        found = found_share(record.events, run.truth.events, 1.5 / run.params.fps)
        steps = f"{len(record.strides)}/{len(run.truth.steps)}"
        print(f"| {query} | {100 * found:.0f}% | {steps} | {cadence:+.2f} | " + " | ".join(errors))


def rendered(spec: str) -> None:
    settings = Settings()
    source = open_source(spec, settings.camera, realtime=False)
    tracker = create_tracker(settings.pose)
    try:
        frames = [tracker.track(frame) for frame in source]
    finally:
        tracker.close()
        source.close()
    params = parse_spec(spec)
    truth = simulate_truth(params)
    print(f"{spec}: {len(truth.steps)} steps in the truth")
    print(
        "| dropped | steps | landings found | within 100 ms | median error ms | rejected "
        "| repairs | CPU ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for dropped in (0.0, 0.25, 0.5):
        rng = np.random.default_rng(0)
        kept = [f for f in frames if not dropped or rng.random() >= dropped]
        analyzer = GaitAnalyzer(settings.gait, params.fps)
        start = time.process_time()
        updates = [analyzer.update(f) for f in kept]
        cpu_ms = (time.process_time() - start) * 1000.0 / len(kept)
        events = [e for u in updates for e in u.events]
        found = found_share(events, truth.events, 1.5 / (params.fps * (1 - dropped)))
        loose = found_share(events, truth.events, 0.1)
        landings = [e for e in truth.events if e.kind == "contact" and e.t >= 1.0]
        errors = [
            min((c.t - e.t for c in events if c.kind == "contact" and c.side == e.side), key=abs)
            for e in landings
        ]
        error_ms = 1000.0 * float(np.median([x for x in errors if abs(x) <= 0.1]))
        steps = sum(len(u.strides) for u in updates)
        last = updates[-1]
        print(
            f"| {dropped:.0%} | {steps} | {found:.0%} of {len(landings)} | {loose:.0%} | "
            f"{error_ms:+.0f} | {last.steps_rejected} | {last.label_repairs} | {cpu_ms:.2f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rendered":
        rendered(sys.argv[2])
    else:
        main()
