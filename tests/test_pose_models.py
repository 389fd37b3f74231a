"""The pose models ship inside coachd, with their licence and origin, and are checked by sha256."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import needs_stock

from coachd.errors import ConfigError
from coachd.pose.litert_backend import MODEL_DIR, MODEL_SHA256, model_paths, read_model


def test_shipped_models_are_the_expected_files() -> None:
    for path in model_paths():
        assert path.parent == MODEL_DIR
        assert read_model(path) == path.read_bytes()
    assert sorted(p.name for p in MODEL_DIR.glob("*.tflite")) == sorted(MODEL_SHA256)


def test_notice_and_licence_name_origin_version_and_hashes() -> None:
    notice = (MODEL_DIR / "NOTICE").read_text()
    assert "mediapipe 0.10.21" in notice and "Apache License, Version 2.0" in notice
    for name, digest in MODEL_SHA256.items():
        assert name in notice and digest in notice
    licence = (MODEL_DIR / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence


@needs_stock
def test_shipped_models_equal_the_mediapipe_wheels() -> None:
    import mediapipe

    modules = Path(mediapipe.__file__).resolve().parent / "modules"
    wheel = {
        "pose_detection.tflite": modules / "pose_detection" / "pose_detection.tflite",
        "pose_landmark_full.tflite": modules / "pose_landmark" / "pose_landmark_full.tflite",
    }
    for path in model_paths():
        assert path.read_bytes() == wheel[path.name].read_bytes()


def test_a_changed_model_is_refused_with_its_hash(tmp_path: Path) -> None:
    detector, _ = model_paths()
    changed = tmp_path / detector.name
    data = bytearray(detector.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as caught:
        read_model(changed)
    message = str(caught.value)
    assert str(changed) in message and "is not the expected file" in message
    assert MODEL_SHA256[detector.name] in message and "reinstall coachd" in message
    with pytest.raises(ConfigError, match="No such file"):
        read_model(tmp_path / "pose_landmark_full.tflite")
