"""Speaker: the non-blocking front the pipeline calls with each Cue.

say() only records the cue and returns. A render thread (with the TTS engine in a process of
its own) turns text into audio; a player thread plays one cue at a time through PyAudio. A
newer cue waiting behind a playing one replaces the older waiting one. Without a device or a
voice the cue is printed instead, and the device is retried every few seconds.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

import numpy as np

from coachd.messages import Cue
from coachd.settings import SpeechSettings
from coachd.speech import tones
from coachd.speech.player import AudioOutput, DeviceFailure
from coachd.speech.render import Renderer

log = logging.getLogger("coachd.speech")

_POLL_S = 0.25  # the player thread looks at retries and idle time this often
_DIGITS = re.compile(r"\d")
_CLAUSE_END = re.compile(r"(?<=[.!?;,])\s+")


def spoken_text(text: str, speak_numbers: bool) -> str:
    """What to say for a cue's text: without speak_numbers, clauses holding numbers are left out."""
    text = text.strip()
    if speak_numbers or not _DIGITS.search(text):
        return text
    kept = [part for part in _CLAUSE_END.split(text) if not _DIGITS.search(part)]
    return " ".join(kept).strip(" ,;")


def is_template_free(text: str) -> bool:
    """A phrase fixed enough to pre-render: no numbers, no {placeholders}."""
    return not _DIGITS.search(text) and "{" not in text


@dataclass(frozen=True)
class SpeechStats:
    """A snapshot of what the speaker did."""

    played: int
    dropped_stale: int
    failures: int
    printed: int
    rendered: int
    cache_hits: int
    device_state: str  # "ok" | "missing" | "retrying" | "hung" | "disabled"
    device_name: str
    latencies_ms: tuple[float, ...]  # Speaker.say() to the first buffer handed to the device
    last_error: str = ""  # why the last cue was printed instead of spoken
    cache_bytes: int = 0  # rendered phrases on disk (bounded by speech.cache_max_mb)


@dataclass(frozen=True)
class _Waiting:
    cue: Cue
    text: str  # what will be spoken
    t_said: float  # monotonic time of the say() call


class CueLog:
    """JSON lines of every cue emitted, played, printed or dropped; written off the hot path."""

    def __init__(self, path: Optional[Path]) -> None:
        self._queue: queue.SimpleQueue[Optional[dict[str, Any]]] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a", encoding="utf-8")
            self._thread = threading.Thread(
                target=self._write, args=(handle,), name="coachd-speech-log", daemon=True
            )
            self._thread.start()

    def record(self, event: str, waiting: _Waiting, **extra: Any) -> None:
        if self._thread is None:
            return
        cue = waiting.cue
        entry = {
            "event": event,
            "t": round(time.monotonic(), 6),
            "time": round(time.time(), 6),
            "t_said": round(waiting.t_said, 6),
            "cue_id": cue.cue_id,
            "kind": cue.kind,
            "text": cue.text,
            **extra,
        }
        self._queue.put(entry)

    def close(self, timeout: float = 1.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _write(self, handle: TextIO) -> None:
        with handle:
            while (entry := self._queue.get()) is not None:
                handle.write(json.dumps(entry) + "\n")
                if self._queue.empty():
                    handle.flush()


def print_cue(text: str) -> None:
    """The fallback when nothing can be spoken: the cue on stdout."""
    print(f"[coach] {text}", file=sys.stdout, flush=True)


class Speaker:
    """Speaks cues without ever blocking the caller; prints them when it cannot speak."""

    def __init__(
        self,
        settings: SpeechSettings,
        cache_dir: Path,
        log_path: Optional[Path] = None,
        printer: Callable[[str], None] = print_cue,
        on_outcome: Optional[Callable[[str, Cue, str], None]] = None,
    ) -> None:
        """`on_outcome(event, cue, reason)` hears how each cue ended, from the speaker's
        threads: "played" (all of it reached the device), "printed" or "dropped"."""
        self._settings = settings
        self._printer = printer
        self._on_outcome = on_outcome
        self._cond = threading.Condition()
        self._waiting: Optional[_Waiting] = None
        self._closing = False
        self._abort = threading.Event()
        self._log = CueLog(log_path)
        self._output = AudioOutput(settings.device, settings.write_timeout_s)
        self._renderer = Renderer(settings, cache_dir, on_change=self._rendered)
        self._played = 0
        self._dropped_stale = 0
        self._device_failures = 0
        self._printed = 0
        self._latencies: deque[float] = deque(maxlen=1000)
        self._next_retry = 0.0
        self._device_reported = False
        self._last_sound = time.monotonic()
        self._tones: dict[tuple[str, int], np.ndarray] = {}
        self._busy = False  # a cue is being played or printed
        self._metronome_spm: Optional[float] = None
        self._next_beat = 0.0
        self._thread = threading.Thread(target=self._run, name="coachd-speech-play", daemon=True)
        self._thread.start()

    # -- the pipeline's side -------------------------------------------------------------

    def start(self, phrases: Iterable[str]) -> None:
        """Pre-render the fixed phrases in the background (phrases with numbers: on first use)."""
        if not self._settings.enabled:
            return
        texts = [spoken_text(p, self._settings.speak_numbers) for p in phrases]
        self._renderer.request(dict.fromkeys(t for t in texts if t and is_template_free(t)))

    def say(self, cue: Cue) -> None:
        """Queue a cue and return at once; never raises."""
        t_said = time.monotonic()
        try:
            waiting = _Waiting(cue, spoken_text(cue.text, self._settings.speak_numbers), t_said)
            self._log.record("emitted", waiting)
            with self._cond:
                if self._closing:
                    self._ended("dropped", waiting, reason="closing")
                    return
                replaced, self._waiting = self._waiting, waiting
                if replaced is not None:
                    self._dropped_stale += 1
                    self._ended("dropped", replaced, reason="replaced")
                self._cond.notify_all()
            if self._settings.enabled and waiting.text:
                self._renderer.request([waiting.text], urgent=True)
        except Exception:  # the pipeline must never see a speech fault
            log.exception("speech: cue %r could not be queued", getattr(cue, "cue_id", "?"))

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until every requested phrase is rendered (or failed); False on timeout."""
        return self._renderer.wait_idle(timeout)

    def wait_quiet(self, timeout: float = 10.0) -> bool:
        """Wait until no cue is waiting or playing; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._waiting is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def stats(self) -> SpeechStats:
        with self._cond:
            state = self._output.state if self._settings.enabled else "disabled"
            return SpeechStats(
                played=self._played,
                dropped_stale=self._dropped_stale,
                failures=self._device_failures + self._renderer.failures,
                printed=self._printed,
                rendered=self._renderer.rendered,
                cache_hits=self._renderer.cache_hits,
                device_state=state,
                device_name=self._output.device.name if self._output.device else "",
                latencies_ms=tuple(self._latencies),
                last_error=self._output.last_error or self._renderer.last_error,
                cache_bytes=self._renderer.cache_bytes,
            )

    def close(self, finish_current: bool = True, timeout: float = 2.0) -> None:
        """Stop within `timeout`. finish_current: the cue playing ends, and one already waiting
        (a session summary said just before stopping) is still spoken if time allows."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            if self._waiting is not None and not finish_current:
                self._ended("dropped", self._waiting, reason="closing")
                self._waiting = None
            self._cond.notify_all()
        if not finish_current:
            self._abort.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._abort.set()
            with self._cond:
                self._cond.notify_all()
            self._thread.join(0.2)
        with self._cond:
            if self._waiting is not None:  # never got its turn
                self._ended("dropped", self._waiting, reason="closing")
                self._waiting = None
        self._renderer.close(timeout=max(0.1, deadline - time.monotonic()))
        self._log.close()

    def __enter__(self) -> Speaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_metronome(self, spm: Optional[float]) -> None:
        """Click at `spm` beats per minute between cues (cadence program); None stops it."""
        with self._cond:
            self._metronome_spm = spm if spm and spm > 0 else None
            self._next_beat = time.monotonic()
            self._cond.notify_all()

    # -- the player thread ---------------------------------------------------------------

    def _rendered(self, text: str) -> None:
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            if self._settings.enabled:
                self._try_device(time.monotonic())
            while True:
                waiting = self._next_cue()
                if waiting is None:
                    break
                try:
                    self._deliver(waiting)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        except Exception:
            log.exception("speech: the player stopped; cues are printed from now on")
            self._printer("(speech stopped: see the log)")
        finally:
            self._output.reset()

    def _next_cue(self) -> Optional[_Waiting]:
        """The next cue ready to deliver, doing housekeeping (and metronome clicks) while none
        is; None when closing."""
        while True:
            now = time.monotonic()
            self._housekeeping(now)
            with self._cond:
                waiting = self._waiting
                if self._closing and (waiting is None or self._abort.is_set()):
                    return None
                if waiting is not None and self._ready(waiting, now):
                    self._waiting = None
                    self._busy = True
                    return waiting
                spm = self._metronome_spm
                click_due = spm is not None and now >= self._next_beat
                if spm is not None and not click_due:
                    self._cond.wait(min(_POLL_S, self._next_beat - now))
                elif spm is None:
                    self._cond.wait(_POLL_S)
            if click_due and spm is not None:
                self._click(now, spm)

    def _click(self, now: float, spm: float) -> None:
        period = 60.0 / spm
        # A late beat (after a cue) restarts the count rather than rushing to catch up.
        self._next_beat = max(self._next_beat + period, now + 0.5 * period)
        if not self._settings.enabled or self._output.state != "ok":
            return
        key = ("click", self._sample_rate())
        if key not in self._tones:
            self._tones[key] = tones.click(self._sample_rate(), self._settings.volume)
        try:
            self._output.play(self._tones[key], self._sample_rate(), self._abort, lambda: None)
        except DeviceFailure as exc:
            self._device_lost(exc)
            return
        self._last_sound = time.monotonic()

    def _ready(self, waiting: _Waiting, now: float) -> bool:
        if not self._settings.enabled or not waiting.text:
            return True
        if now - waiting.t_said > self._settings.max_delay_s:
            return True
        if self._output.state != "ok" and now < self._next_retry:
            return True  # no device for now: print it without waiting for the voice
        state = self._renderer.state(waiting.text)
        if state == "unknown":  # e.g. a failed render whose retry pause has passed
            self._renderer.request([waiting.text], urgent=True)
        return state in ("ready", "failed")

    def _housekeeping(self, now: float) -> None:
        if not self._settings.enabled:
            return
        if self._output.state != "ok" and now >= self._next_retry:
            self._try_device(now)
        idle = self._settings.idle_close_s
        if idle > 0 and self._output.is_open and now - self._last_sound > idle:
            # Lets PipeWire/PulseAudio suspend the sink and frees a hardware device for others.
            self._output.close_stream()

    def _try_device(self, now: float) -> bool:
        try:
            self._output.reset()
            self._output.open(self._sample_rate(), verify=True)
        except DeviceFailure as exc:
            self._next_retry = now + self._settings.retry_s
            if not self._device_reported:
                log.warning(
                    "speech: %s; cues are printed, retrying every %.0f s",
                    exc,
                    self._settings.retry_s,
                )
                self._device_reported = True
            return False
        if self._device_reported:
            name = self._output.device.name if self._output.device else "default"
            log.info("speech: output device %r is back", name)
            self._device_reported = False
        self._last_sound = now
        return True

    def _sample_rate(self) -> int:
        return 22050  # espeak-ng's rate; a clip at another rate reopens the stream

    def _deliver(self, waiting: _Waiting) -> None:
        now = time.monotonic()
        if self._abort.is_set():
            self._ended("dropped", waiting, reason="closing")
            return
        if now - waiting.t_said > self._settings.max_delay_s:
            with self._cond:
                self._dropped_stale += 1
            self._ended("dropped", waiting, reason="late")
            return
        if not self._settings.enabled:
            self._print(waiting, "disabled")
            return
        if not waiting.text:
            self._ended("dropped", waiting, reason="numbers")
            return
        clip = self._renderer.clip(waiting.text)
        if clip is None:
            self._print(waiting, "tts")
            return
        if self._output.state != "ok":
            self._print(waiting, "device-hung" if self._output.state == "hung" else "no-device")
            return
        audio = np.concatenate([self._tone_for(waiting.cue, clip.rate), clip.samples])
        for attempt in (1, 2):
            try:
                self._output.play(audio, clip.rate, self._abort, lambda: self._first(waiting))
            except DeviceFailure as exc:
                retry = not exc.started and exc.state != "hung" and attempt == 1
                if retry and self._try_device(time.monotonic()):
                    continue  # the device came back under a new index: play it now
                self._device_lost(exc)
                self._print(waiting, "device-hung" if exc.state == "hung" else "device-lost")
                return
            break
        self._last_sound = time.monotonic()
        with self._cond:
            self._played += 1
        self._ended(
            "played",
            waiting,
            seconds=round(len(audio) / clip.rate, 3),
            latency_ms=round(self._latencies[-1], 3) if self._latencies else None,
        )

    def _device_lost(self, exc: DeviceFailure) -> None:
        with self._cond:
            self._device_failures += 1
        if self._output.state == "ok":
            self._output.state = "retrying"
        self._next_retry = time.monotonic() + self._settings.retry_s
        if not self._device_reported:
            log.warning("speech: %s; cues are printed until it is back", exc)
            self._device_reported = True

    def _first(self, waiting: _Waiting) -> None:
        latency_ms = (time.monotonic() - waiting.t_said) * 1000.0
        with self._cond:
            self._latencies.append(latency_ms)
        self._log.record("started", waiting, latency_ms=round(latency_ms, 3))

    def _tone_for(self, cue: Cue, rate: int) -> np.ndarray:
        name = ""
        if cue.kind == "praise":
            name = "chime" if self._settings.praise_chime else ""
        elif cue.kind == "correction" or cue.chime:
            name = "earcon" if self._settings.earcon else ""
        if not name:
            return np.zeros(0, dtype=np.int16)
        key = (name, rate)
        if key not in self._tones:
            make = tones.praise_chime if name == "chime" else tones.earcon
            self._tones[key] = make(rate, self._settings.volume)
        return self._tones[key]

    def _ended(self, event: str, waiting: _Waiting, reason: str = "", **extra: Any) -> None:
        """Log how a cue ended and tell on_outcome (which must be quick: callers may hold
        the speaker's lock)."""
        self._log.record(event, waiting, **({"reason": reason} if reason else {}), **extra)
        if self._on_outcome is None:
            return
        try:
            self._on_outcome(event, waiting.cue, reason)
        except Exception:  # a metrics fault must not stop speech
            log.exception("speech: on_outcome failed for %r", waiting.cue.cue_id)

    def _print(self, waiting: _Waiting, reason: str) -> None:
        self._printer(waiting.cue.text)
        with self._cond:
            self._printed += 1
        self._ended("printed", waiting, reason=reason)
