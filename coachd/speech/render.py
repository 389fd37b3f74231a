"""Phrase rendering: a TTS worker process, a disk cache keyed by text and voice settings.

The renderer runs in a thread of its own and talks to `tts_worker` in a separate process,
so neither a slow nor a crashing TTS engine can hold up the caller. The disk cache is bounded
in bytes (speech.cache_max_mb): the least recently used phrases are deleted first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
import wave
from collections import OrderedDict, deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Optional

import numpy as np

from coachd.settings import SpeechSettings

log = logging.getLogger("coachd.speech")

CACHE_VERSION = 1  # bump when the rendering itself changes so old files are not reused
_WORKER_START_TIMEOUT_S = 20.0
_CACHE_FILE = re.compile(r"[0-9a-f]{32}\.wav")  # what key_path names; nothing else is ours
# A TTS worker's half-written file (tts_worker.py names it); a worker killed mid-render leaves it.
_PARTIAL_FILE = re.compile(r"\.[0-9a-f]{32}\.wav\.(\d+)\.part")
_MIB = 1 << 20


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


@dataclass(frozen=True)
class Clip:
    """Mono int16 audio."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.rate)


class RenderError(Exception):
    """The TTS engine could not render a phrase."""


def cache_key(text: str, voice: str, language: str, rate_wpm: int, volume: float) -> str:
    """A stable name for one rendering: changes with the text and every voice setting."""
    identity = json.dumps(
        {
            "v": CACHE_VERSION,
            "engine": "pyttsx3",
            "text": text,
            "voice": voice,
            "language": language,
            "rate": int(rate_wpm),
            "volume": round(float(volume), 3),
        },
        sort_keys=True,
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def phrase_key(settings: SpeechSettings, text: str) -> str:
    """The cache key of `text` spoken with `settings`."""
    return cache_key(text, settings.voice, settings.language, settings.rate_wpm, settings.volume)


def key_path(cache_dir: Path, key: str) -> Path:
    """Where the cache keeps the phrase with this key (the names _CACHE_FILE matches)."""
    return cache_dir / f"{key}.wav"


class VoiceCache:
    """A directory of rendered phrases kept under a size limit, least recently used out first.

    Only files named like cache keys (KEY.wav) are counted or deleted. The directory is
    scanned once; after that an index in use order makes each step cheap, whatever the
    directory's size. A file's mtime is its last use, so the order survives a restart.
    Not thread-safe: the render thread alone calls it.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> bytes, least recent first
        self.total_bytes = 0
        self.evicted = 0
        self._reported_undeletable = False

    def path(self, key: str) -> Path:
        return key_path(self.directory, key)

    def scan(self) -> None:
        """Index the cache files already in the directory, least recently used first."""
        found: list[tuple[int, str, int]] = []
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    partial = _PARTIAL_FILE.fullmatch(entry.name)
                    if partial is not None and not _process_alive(int(partial.group(1))):
                        Path(entry.path).unlink(missing_ok=True)  # its writer is gone
                        continue
                    if not _CACHE_FILE.fullmatch(entry.name):
                        continue
                    try:
                        if entry.is_file(follow_symlinks=False):
                            stat = entry.stat(follow_symlinks=False)
                            found.append((stat.st_mtime_ns, entry.name, stat.st_size))
                    except OSError:
                        continue  # gone since it was listed
        except FileNotFoundError:
            pass  # created by the first render
        except OSError as exc:
            log.warning("speech: cannot read the voice cache %s (%s)", self.directory, exc)
        found.sort()
        self._sizes = OrderedDict((name[: -len(".wav")], size) for _, name, size in found)
        self.total_bytes = sum(self._sizes.values())

    def touch(self, key: str) -> bool:
        """Record a use of `key`'s file (just read or written); False when it is not there."""
        path = self.path(key)
        try:
            os.utime(path)
        except PermissionError:
            pass  # another user's file: used all the same, its mtime just stays older
        except OSError:
            self.forget(key)
            return False
        try:
            size = path.stat().st_size
        except OSError:
            self.forget(key)
            return False
        self.total_bytes += size - self._sizes.pop(key, 0)
        self._sizes[key] = size
        return True

    def forget(self, key: str) -> None:
        """Drop `key` from the index (its file was removed)."""
        self.total_bytes -= self._sizes.pop(key, 0)

    def take_victims(self, keep: Collection[str]) -> list[str]:
        """The least recently used keys, besides `keep`, to delete to get under the limit;
        they leave the index at once."""
        victims: list[str] = []
        excess = self.total_bytes - self.max_bytes
        for key, size in self._sizes.items():
            if excess <= 0:
                break
            if key not in keep:
                victims.append(key)
                excess -= size
        for key in victims:
            self.forget(key)
        return victims

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the files of keys take_victims chose."""
        for key in keys:
            try:
                self.path(key).unlink(missing_ok=True)
            except OSError as exc:
                if not self._reported_undeletable:
                    log.warning("speech: cannot trim the voice cache %s (%s)", self.directory, exc)
                    self._reported_undeletable = True
                continue
            self.evicted += 1


def read_wav(path: Path) -> Clip:
    """A 16-bit WAV file as a mono Clip (stereo is averaged)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise RenderError(f"{path}: expected 16-bit samples, got {8 * wav.getsampwidth()}-bit")
        channels = wav.getnchannels()
        rate = wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return Clip(data.copy(), rate)


class RenderWorker:
    """One `tts_worker` process; started on first use, restarted after a failure."""

    def __init__(self, settings: SpeechSettings) -> None:
        self._settings = settings
        self._proc: Optional[subprocess.Popen[str]] = None
        self.voice_id = ""

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coachd.speech.tts_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Not in the terminal's process group: Ctrl-C stops coachd, which still has the
            # summary to say; the worker ends when coachd stops it or its stdin closes.
            start_new_session=True,
        )
        self._proc = proc
        config = {
            "voice": self._settings.voice,
            "language": self._settings.language,
            "rate": self._settings.rate_wpm,
            "volume": self._settings.volume,
        }
        answer = self._exchange(config, _WORKER_START_TIMEOUT_S)
        if not answer.get("ready"):
            self.stop()
            raise RenderError(str(answer.get("error", "the TTS worker did not start")))
        self.voice_id = str(answer.get("voice", ""))
        return proc

    def _exchange(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise RenderError("the TTS worker is not running")
        try:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
        except OSError as exc:
            self.stop()
            raise RenderError(f"the TTS worker exited ({exc.strerror})") from None
        line = _read_line(proc.stdout, timeout)
        if line is None:
            self.stop()
            raise RenderError(f"the TTS engine took longer than {timeout:.1f} s")
        if not line:
            self.stop()
            raise RenderError(f"the TTS worker exited (code {proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def render(self, text: str, path: Path) -> None:
        """Render `text` into the WAV file `path`; RenderError on any failure."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        path.parent.mkdir(parents=True, exist_ok=True)
        answer = self._exchange({"text": text, "path": str(path)}, self._settings.render_timeout_s)
        if not answer.get("ok"):
            raise RenderError(str(answer.get("error", "unknown TTS error")))

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=1.0)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def _read_line(stream: IO[str], timeout: float) -> Optional[str]:
    """One line from a pipe, or None after `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


RenderState = str  # "ready" | "pending" | "failed" | "unknown"


class Renderer:
    """Renders phrases in the background and keeps them in memory, backed by a disk cache.

    Memory holds only phrases whose file is in the cache, so both stay under
    speech.cache_max_mb. Never evicted: the phrase being rendered or just rendered, the one
    last handed out by clip() (playing), and the one last requested as urgent (a waiting cue).
    """

    def __init__(
        self,
        settings: SpeechSettings,
        cache_dir: Path,
        on_change: Optional[Callable[[str], None]] = None,
    ) -> None:
        self._settings = settings
        self._on_change = on_change or (lambda text: None)
        self._worker = RenderWorker(settings)
        self._cache = VoiceCache(cache_dir, int(settings.cache_max_mb * _MIB))
        self._lock = threading.Condition()
        self._queue: deque[str] = deque()
        self._clips: dict[str, Clip] = {}
        self._text_of: dict[str, str] = {}  # cache key -> text, for the clips in memory
        self._used: set[str] = set()  # texts handed out since their files were last touched
        self._playing: Optional[str] = None  # the text clip() handed out last
        self._wanted: Optional[str] = None  # the text a waiting cue needs
        self._trimming = True  # the start-up scan and trim of the disk cache
        self._failed: dict[str, float] = {}  # text -> monotonic time of the failure
        self._busy: Optional[str] = None
        self._urgent: Optional[str] = None
        self._closing = False
        self._worker_down_until = 0.0
        self._reported_failure = False
        self.rendered = 0
        self.cache_hits = 0
        self.failures = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="coachd-speech-render", daemon=True)
        self._thread.start()

    def request(self, texts: Iterable[str], urgent: bool = False) -> None:
        """Queue texts to render in the background; an urgent one (the text a waiting cue
        needs) goes first and replaces the previous urgent one. Never blocks on rendering."""
        with self._lock:
            now = time.monotonic()
            for text in texts:
                if text and urgent:
                    self._wanted = text  # ready or not: kept from eviction until replaced
                if not text or text in self._clips or text == self._busy:
                    continue
                failed_at = self._failed.get(text)
                if failed_at is not None and now - failed_at < self._settings.retry_s:
                    continue
                if urgent:
                    # Only the newest waiting cue matters: an older urgent text is forgotten.
                    self._urgent = text
                elif text not in self._queue and text != self._urgent:
                    self._queue.append(text)
            self._lock.notify_all()

    def state(self, text: str) -> RenderState:
        with self._lock:
            if text in self._clips:
                return "ready"
            if text in (self._busy, self._urgent) or text in self._queue:
                return "pending"
            failed_at = self._failed.get(text)
            if failed_at is not None and time.monotonic() - failed_at < self._settings.retry_s:
                return "failed"
            return "unknown"  # never asked for, or failed long enough ago to try again

    def clip(self, text: str) -> Optional[Clip]:
        """The rendered phrase, counted as a use (it is about to be played)."""
        with self._lock:
            found = self._clips.get(text)
            if found is not None:
                self._playing = text
                self._used.add(text)
                self._lock.notify_all()
            return found

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or rendering and the cache is trimmed; False on
        timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (
                self._trimming or self._queue or self._busy is not None or self._urgent is not None
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    @property
    def voice_id(self) -> str:
        return self._worker.voice_id

    @property
    def cache_bytes(self) -> int:
        """The cache directory's size as this renderer knows it (its own files and those
        there when it started)."""
        return self._cache.total_bytes

    @property
    def evicted(self) -> int:
        """Cache files deleted to stay under speech.cache_max_mb."""
        return self._cache.evicted

    def close(self, timeout: float = 1.0) -> None:
        with self._lock:
            self._closing = True
            self._queue.clear()
            self._urgent = None
            self._lock.notify_all()
        self._thread.join(timeout)
        self._worker.stop()

    def _run(self) -> None:
        try:
            self._cache.scan()
            self._make_room()
        finally:
            with self._lock:
                self._trimming = False
                self._lock.notify_all()
        while True:
            with self._lock:
                while (
                    not self._queue
                    and self._urgent is None
                    and not self._used
                    and not self._closing
                ):
                    self._lock.wait()
                used, self._used = self._used, set()
                closing = self._closing
                text: Optional[str] = None
                if not closing and self._urgent is not None:
                    text, self._urgent = self._urgent, None
                    if text in self._queue:
                        self._queue.remove(text)
                elif not closing and self._queue:
                    text = self._queue.popleft()
                self._busy = text
            self._touch(used)
            if closing:
                return
            if text is None:
                continue
            key = phrase_key(self._settings, text)
            clip, error = self._load_or_render(text, key)
            if clip is not None:
                self._make_room(keep=key)
            with self._lock:
                self._busy = None
                if clip is not None:
                    self._clips[text] = clip
                    self._text_of[key] = text
                    self._failed.pop(text, None)
                    self.last_error = ""
                else:
                    self._failed[text] = time.monotonic()
                    self.failures += 1
                    self.last_error = f"TTS failed: {error}" if error else self.last_error
                self._lock.notify_all()
            if error and not self._reported_failure:
                log.warning("speech: TTS failed (%s); cues are printed until it recovers", error)
                self._reported_failure = True
            elif clip is not None and self._reported_failure:
                log.info("speech: TTS works again")
                self._reported_failure = False
            self._on_change(text)

    def _touch(self, texts: Iterable[str]) -> None:
        """Mark the files of phrases just handed out as recently used."""
        for text in texts:
            key = phrase_key(self._settings, text)
            if not self._cache.touch(key):
                with self._lock:  # the file vanished: render it again when next needed
                    if self._text_of.get(key) == text:
                        del self._text_of[key]
                        self._clips.pop(text, None)

    def _make_room(self, keep: Optional[str] = None) -> None:
        """Delete the least recently used cache files (and their clips) over the limit."""
        with self._lock:
            protected = {phrase_key(self._settings, text) for text in self._in_use()}
            if keep is not None:
                protected.add(keep)
            victims = self._cache.take_victims(protected)
            for key in victims:
                text = self._text_of.pop(key, None)
                if text is not None:
                    self._clips.pop(text, None)
        self._cache.delete(victims)

    def _in_use(self) -> list[str]:
        return [t for t in (self._busy, self._urgent, self._wanted, self._playing) if t]

    def _load_or_render(self, text: str, key: str) -> tuple[Optional[Clip], Optional[str]]:
        path = self._cache.path(key)
        if path.is_file():
            try:
                clip = read_wav(path)
                self.cache_hits += 1
                self._cache.touch(key)
                return clip, None
            except (OSError, EOFError, wave.Error, RenderError):
                path.unlink(missing_ok=True)  # a damaged cache file: render it again
                self._cache.forget(key)
        if time.monotonic() < self._worker_down_until:
            return None, None  # the worker failed moments ago: already reported
        try:
            self._worker.render(text, path)
            clip = read_wav(path)
        except (RenderError, OSError, EOFError, wave.Error, ValueError) as exc:
            if not self._worker.running:
                # The worker died, hung or cannot start: let it rest before the next attempt.
                self._worker_down_until = time.monotonic() + self._settings.retry_s
            return None, str(exc)
        self.rendered += 1
        self._cache.touch(key)
        return clip, None
