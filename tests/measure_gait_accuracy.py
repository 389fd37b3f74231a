"""Prints the landmark-stream accuracy table of docs/metrics.md (test support, not a test).

`PYTHONPATH=.:tests .venv/bin/python tests/measure_gait_accuracy.py`: the six side-view cases,
9 s each with 1 px of landmark noise: our median minus the truth's over the steps matched
within a frame, the cadence against the truth's contacts, and the share of contacts found.
"""

from __future__ import annotations

from landmark_streams import landmark_run, run_gait
from test_gait_legs import found_share
from test_gait_metrics import matched, median_error, summary, truth_cadence

from coachd.settings import GaitSettings

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


if __name__ == "__main__":
    main()
