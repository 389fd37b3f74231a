"""Hands-free sign-in: a runner holds their QR code up to the camera.

A chain listener offers a frame twice a second while it matters (someone in view between
sessions while nobody is signed in, and a session's first seconds) to a one-slot queue; its own
thread runs OpenCV's QR detector and signs the runner in. The tracker thread only hands over a
reference: the detector never delays it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional

import cv2
import numpy as np

from coachd.chain import ChainListener
from coachd.coach.programs import RetroProgress
from coachd.errors import ConfigError
from coachd.messages import GaitUpdate, TrackedFrame
from coachd.service.runners import RunnerDirectory, RunnerProfile, SignedIn, runner_key

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 0.5
# A session's first seconds: a runner who steps on and then shows their code still counts.
SESSION_SIGN_IN_S = 20.0


class QrSignIn(ChainListener):
    """Reads QR codes from the camera's frames and signs their holders in."""

    def __init__(
        self,
        key: Callable[[], bytes],
        directory: RunnerDirectory,
        signed_in: SignedIn,
        on_sign_in: Callable[[RunnerProfile], None],
    ) -> None:
        self._key = key
        self._directory = directory
        self._signed_in = signed_in
        self._on_sign_in = on_sign_in
        self._cond = threading.Condition()
        self._slot: Optional[np.ndarray] = None
        self._closing = False
        self._last_sample = -float("inf")
        self._session_t0: Optional[float] = None
        self._last_code = ""
        self._thread = threading.Thread(target=self._run, name="coachd-qr", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(2.0)

    # --- the tracker thread: return at once ------------------------------------------

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        # Someone holding up a code is someone in view: an empty treadmill costs nothing.
        if image is None or tracked.pose is None or tracked.t - self._last_sample < SAMPLE_EVERY_S:
            return
        if self._session_t0 is None:
            wanted = not self._signed_in.signed_in  # waiting for the next runner
        else:  # a session's first seconds only: later the detector's CPU is the pose's
            wanted = tracked.t - self._session_t0 < SESSION_SIGN_IN_S
        if not wanted:
            return
        self._last_sample = tracked.t
        with self._cond:
            self._slot = image  # the newest wins; frames are not written after capture
            self._cond.notify_all()

    def session_started(self, t0: float, program: str) -> None:
        self._session_t0 = t0

    def session_ended(self, summary: Mapping[str, Any], retro: Optional[RetroProgress]) -> None:
        self._session_t0 = None
        self._last_code = ""
        self._signed_in.clear()

    # --- its own thread ----------------------------------------------------------------

    def _run(self) -> None:
        detector = cv2.QRCodeDetector()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._slot is not None or self._closing)
                if self._closing:
                    return
                image, self._slot = self._slot, None
            assert image is not None
            try:
                text, _, _ = detector.detectAndDecode(image)
            except cv2.error:
                continue
            if text and text != self._last_code:
                self._sign_in(text)

    def _sign_in(self, text: str) -> None:
        try:
            profile = self._directory.sign_in(runner_key(self._key(), text))
        except (sqlite3.Error, OSError, ConfigError) as exc:
            log.error("a runner showed a QR code but could not be signed in: %s", exc)
            return
        self._last_code = text
        self._signed_in.set(profile)
        log.info("signed in by QR: %s", profile.name)
        self._on_sign_in(profile)
