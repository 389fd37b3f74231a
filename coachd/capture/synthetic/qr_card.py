"""The synthetic runner holds up a QR code (`qr=TEXT` for the first `qr_seconds`): a white card
with the code, as a member shows the gym's app to the camera to sign in."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import segno

# The card's corner in the frame, as a fraction of its height; modules this many pixels per
# 100 frame rows (5 px at 480 rows: a phone's code at arm's length).
MARGIN = 0.04
MODULE_PER_100_ROWS = 1.05
QUIET_ZONE = 4  # modules of white around the code, as the QR standard asks


@lru_cache(maxsize=8)
def card(text: str, module_px: int) -> np.ndarray:
    """The code as a BGR image: black modules on white with its quiet zone."""
    code = segno.make(text, error="m", micro=False)
    rows = np.array(list(code.matrix_iter(scale=1, border=QUIET_ZONE)), dtype=bool)
    grey = np.where(rows, 0, 255).astype(np.uint8)
    grey = np.kron(grey, np.ones((module_px, module_px), dtype=np.uint8))
    return np.repeat(grey[:, :, None], 3, axis=2)


def draw_qr_card(img: np.ndarray, text: str) -> None:
    """Paint the card into the frame's top left corner (clipped to the frame)."""
    height, width = img.shape[:2]
    module_px = max(2, round(height * MODULE_PER_100_ROWS / 100.0))
    image = card(text, module_px)
    top = left = round(height * MARGIN)
    h = min(image.shape[0], height - top)
    w = min(image.shape[1], width - left)
    img[top : top + h, left : left + w] = image[:h, :w]
