"""The runner's own baseline: each metric's settled value, learned while the warm-up is quiet.

Trends within one runner are more trustworthy than absolute values from 2-D pose, so some
rules compare with this baseline rather than a population number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional


def trimmed_mean(values: Sequence[float], cut: float = 0.2) -> float:
    """Mean of the middle values. Not the median: per-step cadence at 30 fps alternates
    between whole-frame values (180 and 163.6 for 170 spm) and the median picks one of them."""
    ordered = sorted(values)
    drop = int(len(ordered) * cut)
    middle = ordered[drop : len(ordered) - drop] or ordered
    return sum(middle) / len(middle)


@dataclass
class Baseline:
    """Collects per-metric samples with their running time, then freezes a robust mean of each.

    The first `settle_fraction` of the warm-up is left out: the belt is still speeding up and
    the runner settling. A metric with too few samples by the end of the warm-up (a view that
    could not see it) keeps learning from its first strides afterwards until it has enough.
    """

    min_samples: int = 12
    settle_fraction: float = 1.0 / 3.0
    _samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _frozen: dict[str, float] = field(default_factory=dict)
    _warmup_over: bool = False

    def add(self, metric: str, value: float, running_s: float) -> None:
        if metric in self._frozen:
            return
        self._samples.setdefault(metric, []).append((running_s, value))
        if self._warmup_over and len(self._samples[metric]) >= self.min_samples:
            self._freeze(metric, 0.0)

    @classmethod
    def carried(cls, values: Mapping[str, float]) -> Baseline:
        """A runner's usual values from earlier sessions; metrics not among them are learned."""
        return cls(_frozen={k: float(v) for k, v in values.items()})

    def finish_warmup(self, warmup_s: float) -> None:
        """Freeze every metric seen often enough in the settled part of the warm-up."""
        self._warmup_over = True
        for metric in list(self._samples):
            self._freeze(metric, warmup_s * self.settle_fraction)

    def _freeze(self, metric: str, settled_from_s: float) -> None:
        samples = self._samples[metric]
        settled = [v for t, v in samples if t >= settled_from_s]
        if len(settled) < self.min_samples:
            settled = [v for _, v in samples]
        if len(settled) >= self.min_samples:
            self._frozen[metric] = trimmed_mean(settled)
            del self._samples[metric]
        elif self._warmup_over:
            # Too few warm-up strides: start again from what comes next.
            self._samples[metric] = []

    def get(self, metric: str) -> Optional[float]:
        """The runner's settled value, or None while it is still being learned."""
        return self._frozen.get(metric)

    @property
    def values(self) -> dict[str, float]:
        return dict(self._frozen)
