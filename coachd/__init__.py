"""coachd: a real-time treadmill running-form coach that watches through a camera and speaks."""

from __future__ import annotations

import sys

__version__ = "0.1.0"

SUPPORTED_PYTHONS = "3.9 to 3.14"

if not ((3, 9) <= sys.version_info[:2] <= (3, 14)):  # pragma: no cover - depends on interpreter
    raise SystemExit(
        f"coachd needs Python {SUPPORTED_PYTHONS} (the versions its wheels are checked for); "
        f"this is Python {sys.version_info[0]}.{sys.version_info[1]}"
    )
