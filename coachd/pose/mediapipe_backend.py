"""Backend `mediapipe`: stock mediapipe.solutions.pose, full model (the one in the wheel).

mediapipe is optional (the extra coachd[stock]): only this backend and `coachd bench pose`'s
comparison use it. The default backend runs the same models through LiteRT without it.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Optional

import cv2
import numpy as np

from coachd.errors import ConfigError
from coachd.messages import Pose
from coachd.pose.tracker import make_pose
from coachd.settings import PoseSettings

# The full model ships inside the mediapipe wheel; lite (0) and heavy (2) would be downloaded.
MODEL_COMPLEXITY = 1
INSTALL_STOCK = "pip install 'coachd[stock]' adds it (mediapipe 0.10.21: Python 3.9 to 3.12)"


def stock_missing() -> Optional[str]:
    """Why the stock backend cannot run here, with how to install it; None when it can."""
    if importlib.util.find_spec("mediapipe") is None:
        return f"mediapipe is not installed; {INSTALL_STOCK}"
    return None


class MediaPipeBackend:
    """solutions.pose with its own smoothing off (coachd smooths every backend alike).

    With a treadmill region set, only that part of the image is shown to the graph, so
    someone walking past elsewhere cannot take over.
    """

    name = "mediapipe"

    def __init__(self, settings: PoseSettings) -> None:
        missing = stock_missing()
        if missing:
            raise ConfigError(f'config error: pose.backend = "mediapipe": {missing}')
        from mediapipe.python.solutions import pose as mp_pose

        self._settings = settings
        self._graph: Any = mp_pose.Pose(
            static_image_mode=False,
            model_complexity=MODEL_COMPLEXITY,
            smooth_landmarks=False,
            enable_segmentation=False,
            min_detection_confidence=settings.min_detection_confidence,
            min_tracking_confidence=settings.min_tracking_confidence,
        )

    def estimate(self, image: np.ndarray, t: float) -> Optional[Pose]:
        # The graph keeps its own 30 fps clock; its landmark smoothing is off.
        from mediapipe.python.solution_base import SolutionBase

        height, width = image.shape[:2]
        x0, y0, x1, y1 = 0, 0, width, height
        region = self._settings.treadmill_region
        if region is not None:
            x0, x1 = (round(min(max(v, 0.0), 1.0) * width) for v in (region[0], region[2]))
            y0, y1 = (round(min(max(v, 0.0), 1.0) * height) for v in (region[1], region[3]))
            if x1 - x0 < 16 or y1 - y0 < 16:
                x0, y0, x1, y1 = 0, 0, width, height
        rgb = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
        # SolutionBase.process, not Pose.process: the latter clears the presence scores.
        result = SolutionBase.process(self._graph, {"image": rgb})
        if not result.pose_landmarks:
            return None
        marks = result.pose_landmarks.landmark
        crop = np.array([[m.x, m.y, m.z] for m in marks], dtype=np.float64)
        scale = np.array([(x1 - x0) / width, (y1 - y0) / height, (x1 - x0) / width])
        norm = crop * scale + np.array([x0 / width, y0 / height, 0.0])
        visibility = np.array([m.visibility for m in marks])
        presence = np.array([m.presence for m in marks])
        world = np.array([[m.x, m.y, m.z] for m in result.pose_world_landmarks.landmark])
        return make_pose(norm, visibility, presence, world, (width, height))

    def reset(self) -> None:
        self._graph.reset()

    def close(self) -> None:
        self._graph.close()
