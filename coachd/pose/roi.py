"""Geometry of MediaPipe's pose graph: detector decoding and the rotated region of interest.

Mirrors pose_detection_cpu (SSD anchors, sigmoid scores, box + 4 keypoints, weighted NMS,
letterbox removal), pose_detection_to_roi and pose_landmarks_to_roi (alignment points,
rotation to 90 degrees, square long side, scale 1.25), the ImageToTensor crop (rotated rect
corners onto the tensor's edges) and landmark projection back to the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
ROI_SCALE = 1.25
NMS_IOU = 0.3
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class Detection:
    """One person from the detector, in normalised image coordinates."""

    score: float
    box: np.ndarray  # (4,) x_min, y_min, x_max, y_max
    keypoints: np.ndarray  # (4, 2): hip centre, full-body scale point, shoulders, upper-body

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))


@dataclass(frozen=True)
class Roi:
    """A square rotated crop in image pixels: centre, side length, rotation in radians."""

    cx: float
    cy: float
    size: float
    rotation: float

    def to_tensor(self, tensor_size: int) -> np.ndarray:
        """The 2x3 affine matrix from image pixels to tensor pixels (rect corners to edges)."""
        scale = tensor_size / self.size
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        # Tensor (u, v) = scale * R(-rotation) (p - c) + tensor_size / 2
        linear = scale * np.array([[cos, sin], [-sin, cos]])
        offset = tensor_size / 2.0 - linear @ np.array([self.cx, self.cy])
        return np.hstack([linear, offset[:, None]])

    def project(self, local: np.ndarray) -> np.ndarray:
        """Points normalised to the crop (0..1) -> image pixels."""
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        centred = (local[:, :2] - 0.5) * self.size
        x = cos * centred[:, 0] - sin * centred[:, 1] + self.cx
        y = sin * centred[:, 0] + cos * centred[:, 1] + self.cy
        return np.stack([x, y], axis=1)


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres of pose_detection: strides 8, 16, 32, 32, 32, fixed size.

    Layers of the same stride share one grid; each layer gives two anchors per cell (aspect
    ratio 1 and the interpolated scale), as SsdAnchorsCalculator does.
    """
    strides = (8, 16, 32, 32, 32)
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 2
            last += 1
        cells = math.ceil(DETECTOR_SIZE / strides[layer])
        grid = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
        layer = last
    return np.concatenate(centres).astype(np.float32)


def letterbox_matrix(width: int, height: int, tensor_size: int) -> tuple[np.ndarray, float, float]:
    """Affine for the whole image fitted into a square tensor, and the (x, y) padding fractions."""
    side = float(max(width, height))
    roi = Roi(width / 2.0, height / 2.0, side, 0.0)
    pad_x = (1.0 - width / side) / 2.0
    pad_y = (1.0 - height / side) / 2.0
    return roi.to_tensor(tensor_size), pad_x, pad_y


def decode_detections(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    min_score: float,
    pad_x: float,
    pad_y: float,
) -> list[Detection]:
    """Detector tensors -> people in normalised image coordinates, after weighted NMS."""
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.nonzero(scores >= min_score)[0]
    if keep.size == 0:
        return []
    raw = raw_boxes.reshape(-1, 12)[keep] / DETECTOR_SIZE
    anchor = anchors[keep]
    centre = raw[:, 0:2] + anchor
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anchor[:, None, :]
    merged = _weighted_nms(scores[keep], boxes, keypoints)
    # Undo the letterbox: tensor-normalised -> image-normalised.
    offset = np.array([pad_x, pad_y])
    span = np.array([1.0 - 2.0 * pad_x, 1.0 - 2.0 * pad_y])
    people = []
    for score, box, points in merged:
        box = (box.reshape(2, 2) - offset) / span
        people.append(Detection(score, box.reshape(4), (points - offset) / span))
    return people


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """NonMaxSuppressionCalculator WEIGHTED: overlapping boxes averaged by score."""
    order = np.argsort(-scores, kind="stable")
    remaining = order
    merged = []
    while remaining.size:
        top = remaining[0]
        overlap = _iou(boxes[top], boxes[remaining])
        group = remaining[overlap > NMS_IOU]
        if group.size == 0:
            group = remaining[:1]
        weights = scores[group][:, None]
        total = float(weights.sum())
        box = (boxes[group] * weights).sum(axis=0) / total
        points = (keypoints[group] * weights[:, :, None]).sum(axis=0) / total
        merged.append((float(scores[top]), box, points))
        remaining = remaining[overlap <= NMS_IOU]
        remaining = remaining[remaining != top]
    return merged


def roi_from_alignment(centre: np.ndarray, scale_point: np.ndarray, width: int, height: int) -> Roi:
    """AlignmentPointsRects + RectTransformation: normalised points -> square rotated crop."""
    cx, cy = float(centre[0]) * width, float(centre[1]) * height
    sx, sy = float(scale_point[0]) * width, float(scale_point[1]) * height
    box = 2.0 * math.hypot(sx - cx, sy - cy)
    rotation = math.pi / 2.0 - math.atan2(-(sy - cy), sx - cx)
    rotation = rotation - 2.0 * math.pi * math.floor((rotation + math.pi) / (2.0 * math.pi))
    return Roi(cx, cy, box * ROI_SCALE, rotation)


def crop(image: np.ndarray, roi: Roi, tensor_size: int, replicate: bool) -> np.ndarray:
    """The rotated crop as a tensor_size square, still uint8 BGR."""
    border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT
    return cv2.warpAffine(
        image,
        roi.to_tensor(tensor_size),
        (tensor_size, tensor_size),
        flags=cv2.INTER_LINEAR,
        borderMode=border,
        borderValue=(0, 0, 0),
    )
