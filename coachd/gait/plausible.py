"""What a running human can do: a step that fails is dropped and counted, never averaged in.

Ranges are wider than any runner's (docs/metrics.md, "What a step must pass"): a recreational
runner near 170 steps/min is on the ground 180-320 ms, 25-48% of the stride
(../shared/docs/running-form.md); elite sprinters touch down for about 80-100 ms at top speed,
which no treadmill reaches.  Step times are those of 60 to 240 steps a minute.
"""

from __future__ import annotations

from typing import Optional

MIN_STEP_S = 0.25  # 240 steps a minute
MAX_STEP_S = 1.0  # 60 steps a minute
CONTACT_S = (0.1, 0.6)  # a running foot's time on the belt
MIN_DUTY = 0.15  # contact time over stride time, below which no one runs
STEP_SHARE = (0.7, 1.4)  # a step this much shorter or longer than usual is no step of the run


def step_fault(
    step_s: float,
    usual_step_s: Optional[float],
    contact_s: Optional[float],
    stride_s: Optional[float],
) -> Optional[str]:
    """Why a step between two contacts of alternate feet cannot be one (None: it can)."""
    if not MIN_STEP_S <= step_s <= MAX_STEP_S:
        return "step time"
    if usual_step_s is not None and not STEP_SHARE[0] <= step_s / usual_step_s <= STEP_SHARE[1]:
        return "unlike the other steps"  # a contact missed or mislabelled
    if contact_s is not None and not CONTACT_S[0] <= contact_s <= CONTACT_S[1]:
        return "contact time"
    if contact_s is not None and stride_s and contact_s / stride_s < MIN_DUTY:
        return "duty factor"
    return None
