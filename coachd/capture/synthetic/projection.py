"""A pinhole camera looking at the treadmill from one of the four views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coachd.capture.synthetic.kinematics import RUNNER_X
from coachd.capture.synthetic.params import SyntheticParams
from coachd.messages import View

FLOOR_Z = -0.2  # the floor under the treadmill deck; the belt surface is z = 0
DEFAULT_DISTANCE_M = 3.0
FILL = 0.84  # share of the image height the runner fills at the default distance


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    focal: float  # pixels
    position: np.ndarray  # (3,) world metres
    rotation: np.ndarray  # (3, 3) rows: image right, image down, viewing direction

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in camera coordinates (x right, y down, z depth)."""
        return (points - self.position) @ self.rotation.T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (..., 2) and depth (...,) of world points (..., 3)."""
        cam = self.to_camera(points)
        depth = cam[..., 2]
        safe = np.where(depth > 1e-6, depth, 1e-6)
        uv = np.stack(
            [
                self.focal * cam[..., 0] / safe + 0.5 * self.width,
                self.focal * cam[..., 1] / safe + 0.5 * self.height,
            ],
            axis=-1,
        )
        return uv, depth

    def inside(self, uv: np.ndarray) -> np.ndarray:
        return (
            (uv[..., 0] >= 0)
            & (uv[..., 0] < self.width)
            & (uv[..., 1] >= 0)
            & (uv[..., 1] < self.height)
        )

    @property
    def viewing_direction(self) -> np.ndarray:
        return self.rotation[2]


def camera_for(
    view: View,
    width: int,
    height: int,
    distance: float,
    camera_height: float,
    runner_height: float,
    tilt_deg: float = 0.0,
    roll_deg: float = 0.0,
    lens: float = 1.0,
) -> Camera:
    """The camera for a view, aimed at the runner's middle and sized to frame the runner.

    side-left: the camera is at the runner's left, so the runner faces image-left; side-right
    the mirror; front: ahead of the treadmill facing the runner; rear: behind the runner.
    """
    target = np.array([RUNNER_X + 0.05, 0.0, 0.47 * runner_height])
    offsets = {
        "side-left": np.array([0.0, distance, 0.0]),
        "side-right": np.array([0.0, -distance, 0.0]),
        "front": np.array([distance, 0.0, 0.0]),
        "rear": np.array([-distance, 0.0, 0.0]),
    }
    position = np.array([target[0], 0.0, FLOOR_Z + camera_height]) + offsets[view]
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    if tilt_deg or roll_deg:
        rotation = _turned(rotation, tilt_deg, roll_deg)
    # Framing is fixed at the default distance: a farther camera shows a smaller runner.
    span = runner_height + 0.3
    focal = FILL * min(height, 1.25 * width) * DEFAULT_DISTANCE_M / span
    if lens != 1.0:
        focal *= lens
    return Camera(width, height, focal, position, rotation)


def _turned(rotation: np.ndarray, tilt_deg: float, roll_deg: float) -> np.ndarray:
    """The camera pitched down by `tilt_deg` (about image right), then rolled about its axis."""
    tilt, roll = np.radians(tilt_deg), np.radians(roll_deg)
    c, s = float(np.cos(tilt)), float(np.sin(tilt))
    # In camera coordinates (x right, y down, z forward): pitching down turns z towards y.
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    c, s = float(np.cos(roll)), float(np.sin(roll))
    spin = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return spin @ pitch @ rotation


def camera_for_params(params: SyntheticParams) -> Camera:
    """The camera a synthetic run with these parameters is drawn through."""
    return camera_for(
        params.view,
        params.width,
        params.height,
        params.distance,
        params.camera_height,
        params.runner_height,
        params.camera_tilt,
        params.camera_roll,
        params.lens,
    )
