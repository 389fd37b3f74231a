"""Benchmark support: the synthetic runner's ground truth and the field gait benchmark.

Imported by `coachd bench` and the tests only; no pipeline stage imports it, so nothing a
runner's session produces can carry the truth.
"""
