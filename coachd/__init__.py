"""coachd: a real-time treadmill running-form coach that watches through a camera and speaks."""

from __future__ import annotations

import sys

__version__ = "0.1.0"

SUPPORTED_PYTHONS = "3.9, 3.10, 3.11 or 3.12"

if not ((3, 9) <= sys.version_info[:2] <= (3, 12)):  # pragma: no cover - depends on interpreter
    raise SystemExit(
        f"coachd needs Python {SUPPORTED_PYTHONS} (mediapipe 0.10.21 has no wheel for newer); "
        f"this is Python {sys.version_info[0]}.{sys.version_info[1]}"
    )
