"""Backend `litert`: MediaPipe's pose models, shipped in `models/`, run through LiteRT (XNNPACK).

The detector runs only while nobody is tracked; otherwise the crop follows the previous
frame's alignment landmarks (33: hip centre, 34: body scale point), as MediaPipe's graph does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from coachd.body import HIPS, midpoint
from coachd.errors import ConfigError
from coachd.messages import Pose
from coachd.pose import roi as geometry
from coachd.pose.roi import Roi
from coachd.pose.selection import (
    SAMPLE_S,
    MotionGauge,
    RunnerAnchor,
    choose_runner,
    in_region_point,
    motion_between,
)
from coachd.pose.smoothing import OneEuroFilter
from coachd.pose.tracker import make_pose
from coachd.settings import PoseSettings

MODEL_DIR = Path(__file__).resolve().parent / "models"
DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"
# As they come in the mediapipe 0.10.21 wheel (models/NOTICE).
MODEL_SHA256 = {
    DETECTOR_FILE: "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    LANDMARK_FILE: "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
NUM_MODEL_LANDMARKS = 39
HEATMAP_SIZE = 64
# Half the side of the heatmap window. The wheel's graph says kernel_size 7, yet its output
# matches a 9x9 window (to 0.1 px on the real clip; 7x7 is off by up to 5 px).
HEATMAP_HALF_WINDOW = 4
HEATMAP_MIN_CONFIDENCE = 0.5
# MediaPipe always smooths the two alignment landmarks that place the next crop (even with
# smooth_landmarks off): heavily at rest, responsive when they move. Values as in the
# wheel's PoseLandmarkFiltering graph, speed measured in alignment-box sizes per second.
ALIGNMENT_MIN_CUTOFF_HZ = 0.01
ALIGNMENT_BETA = 10.0
ALIGNMENT_DERIVATIVE_CUTOFF_HZ = 1.0


def model_paths(folder: Path = MODEL_DIR) -> tuple[Path, Path]:
    """The detector and full landmark model: shipped with coachd, or in `folder`."""
    return folder / DETECTOR_FILE, folder / LANDMARK_FILE


def read_model(path: Path) -> bytes:
    """The model file's bytes, once they prove to be the file coachd was made with (sha256)."""
    fix = "reinstall coachd"
    try:
        model = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config error: pose model {path}: {exc.strerror}; {fix}") from exc
    expected = MODEL_SHA256.get(path.name)
    actual = hashlib.sha256(model).hexdigest()
    if actual != expected:
        raise ConfigError(
            f"config error: pose model {path} is not the expected file (sha256 {actual}, "
            f"expected {expected or f'one of {sorted(MODEL_SHA256)}'}); {fix}"
        )
    return model


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def without_segmentation(model: bytes) -> bytes:
    """The landmark model minus its segmentation head, which coachd never reads.

    Only the operators the other outputs depend on are kept, so those outputs are unchanged
    bit for bit while a quarter of the work (the full-resolution mask) is skipped.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    graph = tree.subgraphs[0]
    outputs = [
        index
        for index in graph.outputs
        if tuple(graph.tensors[index].shape)
        != (1, geometry.LANDMARK_SIZE, geometry.LANDMARK_SIZE, 1)
    ]
    producer = {out: i for i, op in enumerate(graph.operators) for out in op.outputs}
    needed: set[int] = set()
    pending = list(outputs)
    while pending:
        op_index = producer.get(pending.pop())
        if op_index is not None and op_index not in needed:
            needed.add(op_index)
            pending.extend(int(t) for t in graph.operators[op_index].inputs if t >= 0)
    graph.operators = [op for i, op in enumerate(graph.operators) if i in needed]
    graph.outputs = np.array(outputs, dtype=np.int32)
    builder = flatbuffers.Builder(len(model))
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _Model:
    """One LiteRT interpreter with its input and output tensor indices."""

    def __init__(self, model: bytes, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from coachd.native_output import LITERT_BANNER, stderr_without

        self.interpreter: Any = Interpreter(model_content=model, num_threads=threads)
        with stderr_without(LITERT_BANNER):  # printed by the first allocation in a process
            self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        details = self.interpreter.get_output_details()
        self.outputs = [d["index"] for d in details]
        self.output_sizes = [int(np.prod(d["shape"])) for d in details]

    def output_by_size(self, size: int) -> int:
        """Position of the output with `size` values (the models' outputs differ in size)."""
        return self.output_sizes.index(size)

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Output views (no copies): valid until the next run."""
        self.interpreter.tensor(self.input_index)()[0] = tensor
        self.interpreter.invoke()
        return [self.interpreter.tensor(i)() for i in self.outputs]


def refine_with_heatmap(local: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """RefineLandmarksFromHeatmap: confidence-weighted mean position around each landmark.

    `local` is (39, >=2) normalised to the crop; `heatmap` is (64, 64, 39) logits. Landmarks
    whose window's best confidence is under 0.5 keep the regressed position.
    """
    rows, cols, channels = heatmap.shape
    count = min(channels, local.shape[0])
    centre_col = np.trunc(local[:count, 0] * cols).astype(int)
    centre_row = np.trunc(local[:count, 1] * rows).astype(int)
    offsets = np.arange(-HEATMAP_HALF_WINDOW, HEATMAP_HALF_WINDOW + 1)
    window_cols = centre_col[:, None] + offsets  # (count, k)
    window_rows = centre_row[:, None] + offsets
    col_ok = (window_cols >= 0) & (window_cols < cols)
    row_ok = (window_rows >= 0) & (window_rows < rows)
    logits = heatmap[
        np.clip(window_rows, 0, rows - 1)[:, :, None],
        np.clip(window_cols, 0, cols - 1)[:, None, :],
        np.arange(count)[:, None, None],
    ]
    confidence = _sigmoid(logits.astype(np.float64)) * (row_ok[:, :, None] & col_ok[:, None, :])
    total = confidence.sum(axis=(1, 2))
    best = confidence.max(axis=(1, 2))
    mean_col = (confidence.sum(axis=1) * window_cols).sum(axis=1) / np.maximum(total, 1e-12)
    mean_row = (confidence.sum(axis=2) * window_rows).sum(axis=1) / np.maximum(total, 1e-12)
    # MediaPipe leaves points left of, above or right of the heatmap alone (not below it).
    inside = (centre_col >= 0) & (centre_col < cols) & (centre_row >= 0)
    refine = inside & (best >= HEATMAP_MIN_CONFIDENCE) & (total > 0.0)
    refined = local.copy()
    refined[:count, 0] = np.where(refine, mean_col / cols, local[:count, 0])
    refined[:count, 1] = np.where(refine, mean_row / rows, local[:count, 1])
    return refined


def in_region(pose: Pose, settings: PoseSettings) -> bool:
    """Whether the pose's hip centre lies in the treadmill region (always, when unset)."""
    return in_region_point(midpoint(pose.norm[:, :2], HIPS), settings.treadmill_region)


# While the followed person is not running or walking on the belt, look this often for someone
# who is (the tracker may have started on a bystander before the runner stepped on).
RECHECK_S = 1.0


@dataclass(frozen=True)
class _Probe:
    """Another person's landmarks at one instant, to compare with a moment later."""

    roi: Roi
    t: float
    xy: np.ndarray
    body: float


class LiteRTBackend:
    """Detector when lost, landmark model on the tracked crop otherwise."""

    name = "litert"

    def __init__(self, settings: PoseSettings, threads: Optional[int] = None) -> None:
        """`threads` per interpreter (default settings.threads)."""
        detector_path, landmark_path = model_paths()
        self._settings = settings
        threads = threads or settings.threads
        self._detector = _Model(read_model(detector_path), threads)
        self._landmark_model = without_segmentation(read_model(landmark_path))
        self._landmarks = _Model(self._landmark_model, threads)
        self._outputs = [
            self._landmarks.output_by_size(size)
            for size in (
                NUM_MODEL_LANDMARKS * 5,
                1,
                HEATMAP_SIZE * HEATMAP_SIZE * NUM_MODEL_LANDMARKS,
                NUM_MODEL_LANDMARKS * 3,
            )
        ]
        self._anchors = geometry.ssd_anchors()
        self._roi: Optional[Roi] = None
        self._anchor = RunnerAnchor()
        self._motion = MotionGauge()
        self._last_recheck = -math.inf
        self._probes: list[_Probe] = []
        self.switches = 0  # times the crop moved to someone else on the belt
        self._alignment_filter = OneEuroFilter(
            ALIGNMENT_MIN_CUTOFF_HZ, ALIGNMENT_BETA, ALIGNMENT_DERIVATIVE_CUTOFF_HZ
        )

    @property
    def roi(self) -> Optional[Roi]:
        """Where the next frame's landmarks will be looked for (None: the detector runs)."""
        return self._roi

    def landmark_interpreter(self, threads: int) -> _Model:
        """Another interpreter of the landmark model, for a worker of its own."""
        return _Model(self._landmark_model, threads)

    def reset(self) -> None:
        self._roi = None
        self._anchor.reset()
        self._alignment_filter.reset()
        self._motion.reset()
        self._probes = []

    def close(self) -> None:
        self._roi = None

    def detect(self, image: np.ndarray) -> list[geometry.Detection]:
        """Every person the detector finds, normalised to the image."""
        height, width = image.shape[:2]
        matrix, pad_x, pad_y = geometry.letterbox_matrix(width, height, geometry.DETECTOR_SIZE)
        size = geometry.DETECTOR_SIZE
        boxed = cv2.warpAffine(
            image,
            matrix,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        rgb = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)
        tensor = rgb.astype(np.float32) * (2.0 / 255.0) - 1.0
        outputs = self._detector.run(tensor)
        boxes = outputs[self._detector.output_by_size(len(self._anchors) * 12)]
        scores = outputs[self._detector.output_by_size(len(self._anchors))]
        return geometry.decode_detections(
            boxes, scores, self._anchors, self._settings.min_detection_confidence, pad_x, pad_y
        )

    def estimate(self, image: np.ndarray, t: float) -> Optional[Pose]:
        height, width = image.shape[:2]
        if self._roi is None:
            self._alignment_filter.reset()
            self._motion.reset()
            self._probes = []
            candidates = self._anchor.choose(self.detect(image), width, height, t)
            runner = choose_runner(candidates, self._settings.treadmill_region, width, height)
            if runner is None:
                return None
            self._roi = geometry.roi_from_alignment(
                runner.keypoints[0], runner.keypoints[1], width, height
            )
        elif self.needs_full_frame(t):
            self._recheck(image, t)
        return self.follow(self.landmarks_in(image, self._roi), (width, height), t)

    def needs_full_frame(self, t: float) -> bool:
        """Whether the frame at t is due a look beyond the followed person's crop."""
        if self._roi is None or self._probes:
            return True
        if t - self._last_recheck < RECHECK_S:
            return False
        motion = self._motion.motion()
        return motion is not None and not motion.on_the_belt

    def _recheck(self, image: np.ndarray, t: float) -> None:
        """Find others in the frame, then a moment later take the first one running or walking
        in place (on the belt) instead of the followed person, who is not."""
        height, width = image.shape[:2]
        if self._probes:
            if t - self._probes[0].t < SAMPLE_S:
                return
            probes, self._probes = self._probes, []
            for probe in probes:
                pose, alignment = self.landmarks_in(image, probe.roi)
                if pose is None or alignment is None:
                    continue
                if motion_between(probe.xy, pose.xy, t - probe.t, probe.body).on_the_belt:
                    self._roi = geometry.roi_from_alignment(
                        alignment[0], alignment[1], width, height
                    )
                    self._anchor.reset()
                    self._motion.reset()
                    self._alignment_filter.reset()
                    self.switches += 1
                    return
            return
        self._last_recheck = t
        for person in self.detect(image):
            hips = (float(person.keypoints[0, 0]) * width, float(person.keypoints[0, 1]) * height)
            if self._anchor.near(hips) or not in_region_point(
                person.keypoints[0], self._settings.treadmill_region
            ):
                continue
            roi = geometry.roi_from_alignment(
                person.keypoints[0], person.keypoints[1], width, height
            )
            pose, alignment = self.landmarks_in(image, roi)
            if pose is None or alignment is None:
                continue
            points = alignment * np.array([width, height])
            body = float(np.linalg.norm(points[1] - points[0]))
            crop = geometry.roi_from_alignment(alignment[0], alignment[1], width, height)
            self._probes.append(_Probe(crop, t, pose.xy.copy(), body))

    def follow(
        self, found: tuple[Optional[Pose], Optional[np.ndarray]], size: tuple[int, int], t: float
    ) -> Optional[Pose]:
        """Accept what `landmarks_in` found at time t and place the next crop from it."""
        width, height = size
        pose, alignment = found
        if pose is None or alignment is None or not in_region(pose, self._settings):
            # Lost, or the crop drifted onto someone off the treadmill: detect afresh.
            self._roi = None
            return None
        # Filtered in pixels; the box is twice the hip-centre to scale-point distance.
        points = alignment * np.array([width, height])
        body = float(np.linalg.norm(points[1] - points[0]))
        hips = (float(points[0, 0]), float(points[0, 1]))
        if not self._anchor.fits(hips, body, t):
            # The crop slid onto someone else (a person passing in front): not the runner.
            self._roi = None
            return None
        self._anchor.update(hips, body, t)
        self._motion.update(pose.xy, body, t)
        object_scale = max(2.0 * body, 1e-6)
        points = self._alignment_filter(points, t, 1.0 / object_scale)
        self._roi = geometry.roi_from_alignment(
            points[0] / (width, height), points[1] / (width, height), width, height
        )
        return pose

    def landmarks_in(
        self, image: np.ndarray, roi: Roi, interpreter: Optional[_Model] = None
    ) -> tuple[Optional[Pose], Optional[np.ndarray]]:
        """Landmarks inside `roi` and the two alignment landmarks (normalised), or None.

        Reads no tracking state: workers call it at once, each with its own interpreter.
        """
        height, width = image.shape[:2]
        size = geometry.LANDMARK_SIZE
        patch = geometry.crop(image, roi, size, replicate=True)
        tensor = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB).astype(np.float32) * (1.0 / 255.0)
        outputs = (interpreter or self._landmarks).run(tensor)
        raw, flag, heatmap, raw_world = (outputs[i] for i in self._outputs)
        score = float(flag.reshape(-1)[0])
        if score < self._settings.min_tracking_confidence:
            return None, None
        values = raw.reshape(NUM_MODEL_LANDMARKS, 5)
        local = values[:, :3] / size
        local = refine_with_heatmap(local, heatmap[0])
        pixels = roi.project(local)
        norm = np.empty((NUM_MODEL_LANDMARKS, 3), dtype=np.float64)
        norm[:, 0] = pixels[:, 0] / width
        norm[:, 1] = pixels[:, 1] / height
        norm[:, 2] = local[:, 2] * (roi.size / width)
        visibility = _sigmoid(values[:, 3])
        presence = _sigmoid(values[:, 4])
        world = raw_world.reshape(NUM_MODEL_LANDMARKS, 3).astype(np.float64)
        cos, sin = np.cos(roi.rotation), np.sin(roi.rotation)
        world_rotated = world.copy()
        world_rotated[:, 0] = cos * world[:, 0] - sin * world[:, 1]
        world_rotated[:, 1] = sin * world[:, 0] + cos * world[:, 1]
        pose = make_pose(norm, visibility, presence, world_rotated, (width, height), score)
        return pose, norm[33:35, :2]
