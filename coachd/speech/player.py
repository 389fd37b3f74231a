"""The PyAudio output device: find it by name or index, open it, play, reopen after a loss.

Every PortAudio call on a stream is made on a device thread of its own and waited for with a
deadline: a device that takes no audio (a stuck USB or Bluetooth sink, a stalled sound
server) blocks inside PortAudio's write and may never return. The caller then reports the
device `hung` and leaves that thread behind; it releases its stream if the call ever returns.
AudioOutput itself is used from one thread only (the speaker's player thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, TypeVar

import numpy as np

from coachd.errors import AudioError

FRAMES_PER_BUFFER = 512
FIRST_WRITE_FRAMES = 1024  # small, so the first buffer reaches the device early
WRITE_FRAMES = 4096  # then fewer, larger writes (PyAudio releases the GIL while writing)
VERIFY_SECONDS = 0.2  # of silence played to check a newly opened device
WRITE_TIMEOUT_S = 2.0  # default for speech.write_timeout_s
# Starting PortAudio probes every ALSA and JACK device: slow on a busy kiosk, but it ends.
OPEN_TIMEOUT_S = 15.0
# Streams left blocked in a hung device; at this many no new one is opened until one returns,
# so a device that never recovers costs a bounded number of threads.
MAX_STUCK = 2

T = TypeVar("T")


@dataclass(frozen=True)
class OutputDevice:
    index: int
    name: str
    host_api: str
    channels: int
    default_rate: int
    is_default: bool = False


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send fd 2 to /dev/null: for one-shot commands (coachd check) only.

    fd 2 belongs to the whole process: while redirected, every other thread's log lines and
    crash reports are lost. Audio code uses silence_audio_libraries() instead.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# Called by C with (file, line, function, err, fmt, ...) or (msg): declaring no arguments
# reads none of them, whichever the caller passed.
_IGNORE = ctypes.CFUNCTYPE(None)


@functools.cache
def silence_audio_libraries() -> tuple[Any, ...]:
    """Hand ALSA's and JACK's message hooks a function that ignores them: device probing
    prints dozens of lines otherwise. Process-wide like the hooks themselves, and cached:
    the libraries keep calling these callbacks, so they must live as long as the process."""
    kept: list[Any] = []
    for name, setters in (
        ("asound", ("snd_lib_error_set_handler",)),
        ("jack", ("jack_set_error_function", "jack_set_info_function")),
    ):
        path = ctypes.util.find_library(name)
        if path is None:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter in setters:
            callback = _IGNORE(lambda: None)
            with contextlib.suppress(AttributeError):
                getattr(lib, setter)(callback)
                kept.append(callback)
    return tuple(kept)


def new_portaudio() -> Any:
    """A fresh PyAudio instance (enumerates devices now, unless another instance is alive)."""
    # Without this, libjack may try to launch a JACK server just because we looked for one.
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import pyaudio

    silence_audio_libraries()
    return pyaudio.PyAudio()


def list_output_devices(pa: Any) -> list[OutputDevice]:
    """Every device PortAudio can play to."""
    try:
        default_index = int(pa.get_default_output_device_info()["index"])
    except OSError:
        default_index = -1
    devices = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if int(info.get("maxOutputChannels", 0)) <= 0:
            continue
        host_api = pa.get_host_api_info_by_index(int(info["hostApi"]))["name"]
        devices.append(
            OutputDevice(
                index,
                str(info["name"]),
                str(host_api),
                int(info["maxOutputChannels"]),
                int(info["defaultSampleRate"]),
                index == default_index,
            )
        )
    return devices


def find_device(
    devices: list[OutputDevice], wanted: str, proc_asound: Path = Path("/proc/asound")
) -> Optional[OutputDevice]:
    """The device for speech.device: "" the default, a number an index, else a name part.

    ALSA hardware names as `aplay -L` prints them (hw:1,0, plughw:CARD=Device,DEV=0) find
    the PortAudio device named "... (hw:1,0)".
    """
    wanted = wanted.strip()
    if not wanted:
        defaults = [d for d in devices if d.is_default]
        return defaults[0] if defaults else (devices[0] if devices else None)
    if wanted.isdigit():
        return next((d for d in devices if d.index == int(wanted)), None)
    key = wanted.lower()
    exact = [d for d in devices if d.name.lower() == key]
    if exact:
        return exact[0]
    part = next((d for d in devices if key in d.name.lower()), None)
    if part is not None:
        return part
    hw = alsa_hw_suffix(wanted, proc_asound)
    return next((d for d in devices if hw and d.name.endswith(hw)), None)


_ALSA_HW = re.compile(r"(?:plug)?hw:(?:CARD=)?([^,]+)(?:,(?:DEV=)?(\d+))?", re.IGNORECASE)


def alsa_hw_suffix(wanted: str, proc_asound: Path = Path("/proc/asound")) -> Optional[str]:
    """ "(hw:N,D)" for an ALSA hardware name such as plughw:CARD=PCH,DEV=0, else None."""
    match = _ALSA_HW.fullmatch(wanted.strip())
    if match is None:
        return None
    card, dev = match.group(1), match.group(2) or "0"
    if not card.isdigit():
        try:  # /proc/asound/PCH -> card0
            card = os.readlink(proc_asound / card).rsplit("card", 1)[-1]
        except OSError:
            return None
    return f"(hw:{card},{dev})"


def convert(samples: np.ndarray, rate: int, out_rate: int, channels: int) -> np.ndarray:
    """Mono int16 at `rate` to interleaved int16 at `out_rate` with `channels` channels."""
    if out_rate != rate and len(samples):
        n_out = round(len(samples) * out_rate / rate)
        positions = np.arange(n_out) * (rate / out_rate)
        samples = np.interp(positions, np.arange(len(samples)), samples).astype(np.int16)
    if channels > 1:
        samples = np.repeat(samples, channels)
    return samples


class _Late(Exception):
    """A device call did not return by its deadline."""


class _Call:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed to the caller, who decides
            self.error = exc
        finally:
            self.done.set()


class _DeviceThread:
    """One PyAudio instance with at most one stream, and the thread making every call on them.

    Nothing else may touch them: another thread calling into a stream blocked in ALSA waits
    for ALSA's lock while holding the GIL, which freezes the whole process.
    """

    def __init__(self, pa_lock: threading.Lock) -> None:
        self.pa: Any = None
        self.stream: Any = None
        # PortAudio's initialisation count and open-stream list are not thread-safe: setting
        # up and tearing down (never writing) happen one device thread at a time.
        self.pa_lock = pa_lock
        self._calls: queue.SimpleQueue[Optional[_Call]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="coachd-audio-dev", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, fn: Callable[[], T], timeout: float) -> T:
        """fn() on this thread; its exception as is; _Late when it has not returned in time."""
        call = _Call(fn)
        self._calls.put(call)
        if not call.done.wait(timeout):
            raise _Late()
        if call.error is not None:
            raise call.error
        result: T = call.result
        return result

    def retire(self, timeout: float) -> bool:
        """Close the stream and PortAudio after the call in progress; False when that is
        not done within `timeout` (the thread finishes it on its own, whenever it can)."""
        self._calls.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            call.run()
        self.close_stream()
        pa, self.pa = self.pa, None
        if pa is not None:
            with self.pa_lock, contextlib.suppress(OSError, ValueError):
                pa.terminate()

    # -- run on the device thread, through call() ---------------------------------------

    def devices(self) -> list[OutputDevice]:
        with self.pa_lock:
            if self.pa is None:
                self.pa = new_portaudio()
            return list_output_devices(self.pa)

    def open_stream(self, device: OutputDevice, rate: int, channels: int) -> None:
        import pyaudio

        self.close_stream()
        with self.pa_lock:
            self.stream = self.pa.open(
                format=pyaudio.paInt16,
                channels=channels,
                rate=rate,
                output=True,
                output_device_index=device.index,
                frames_per_buffer=FRAMES_PER_BUFFER,
                start=False,
            )

    def start(self) -> None:
        if self.stream.is_stopped():
            self.stream.start_stream()

    def write(self, data: bytes) -> None:
        self.stream.write(data)

    def stop(self) -> None:
        self.stream.stop_stream()  # drains what the device still holds

    def close_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            with self.pa_lock, contextlib.suppress(OSError, ValueError, AttributeError):
                stream.close()


class AudioOutput:
    """One output stream on the configured device; `state` is "ok", "missing", "retrying" or
    "hung" (the device stopped taking audio: calls into it did not return in time)."""

    def __init__(self, device: str, write_timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self._wanted = device
        self._write_timeout_s = write_timeout_s
        self._pa_lock = threading.Lock()
        self._dev: Optional[_DeviceThread] = None
        self._stuck: list[_DeviceThread] = []  # left behind in calls that never returned
        self._rate = 0  # rate the caller's audio comes at; 0: no stream open
        self._out_rate = 0
        self._channels = 1
        self.device: Optional[OutputDevice] = None
        self.state = "missing"
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        return self._rate != 0

    @property
    def stuck(self) -> int:
        """Device threads still blocked in a call that missed its deadline."""
        self._stuck = [dev for dev in self._stuck if dev.alive]
        return len(self._stuck)

    def open(self, rate: int, verify: bool = False) -> None:
        """Open the stream for mono audio at `rate`; DeviceFailure naming what failed.

        `verify` also plays a few milliseconds of silence: some devices open fine and fail
        only when written to (a vanished file sink, a half-connected Bluetooth headset).
        """
        if self.is_open and self._rate == rate:
            return
        self.close_stream()
        if self.stuck >= MAX_STUCK:
            self._fail("hung", f"{self._name()} still holds {self.stuck} writes it never took")
        if self._wanted.lower().startswith("plughw"):
            # PortAudio then opens hardware through ALSA's plug layer: any rate, any channels.
            os.environ.setdefault("PA_ALSA_PLUGHW", "1")
        dev = self._device_thread()
        try:
            devices = self._call(dev.devices, OPEN_TIMEOUT_S, "list its devices")
        except (ImportError, OSError) as exc:
            self._fail("missing", f"PortAudio is unusable: {exc}")
        device = find_device(devices, self._wanted)
        if device is None:
            names = ", ".join(f"{d.index}: {d.name}" for d in devices) or "none"
            wanted = repr(self._wanted) if self._wanted else "the system default"
            self._fail("missing", f"no output device matches {wanted} (devices: {names})")
        assert device is not None
        self.device = device
        errors = []
        for out_rate, channels in dict.fromkeys(
            [(rate, 1), (rate, 2), (device.default_rate, 1), (device.default_rate, 2)]
        ):
            if channels > device.channels:
                continue
            try:
                self._call(
                    functools.partial(dev.open_stream, device, out_rate, channels),
                    OPEN_TIMEOUT_S,
                    "open",
                )
            except (OSError, ValueError) as exc:
                errors.append(f"{out_rate} Hz x{channels}: {exc}")
                continue
            self._rate, self._out_rate, self._channels = rate, out_rate, channels
            if verify:
                self._verify()
            self.state, self.last_error = "ok", ""
            return
        self._fail("retrying", f"cannot open {device.name!r}: {'; '.join(errors)}")

    def play(
        self,
        samples: np.ndarray,
        rate: int,
        abort: threading.Event,
        on_first_buffer: Callable[[], None],
    ) -> bool:
        """Play mono int16 samples to the end (or until `abort`); True once any audio went out.

        Returns after the sound has had time to play, so one cue never overlaps the next.
        Raises DeviceFailure when the device fails or hangs; `started` tells whether a word
        may be cut.
        """
        self.open(rate)
        dev = self._device_thread()
        data = convert(samples, rate, self._out_rate, self._channels)
        first, step = FIRST_WRITE_FRAMES * self._channels, WRITE_FRAMES * self._channels
        started_at = 0.0
        try:
            self._call(dev.start, self._write_timeout_s, "start")
            for offset in [0, *range(first, len(data), step)]:
                if abort.is_set():
                    break
                chunk = data[offset : first if offset == 0 else offset + step].tobytes()
                self._write(dev, chunk, started_at > 0)
                if offset == 0:
                    started_at = time.monotonic()
                    on_first_buffer()
            self._call(dev.stop, self._write_timeout_s, "drain", started_at > 0)
        except (OSError, ValueError, AttributeError) as exc:
            self.close_stream()
            self._fail("retrying", f"output device failed: {exc}", started=started_at > 0)
        if started_at:
            # Some devices (files, network sinks) swallow audio faster than real time.
            end = started_at + len(samples) / float(rate)
            abort.wait(max(0.0, end - time.monotonic()))
        return started_at > 0

    def _write(self, dev: _DeviceThread, chunk: bytes, started: bool) -> None:
        # A device may first take a whole chunk's worth of time to make room for it.
        seconds = len(chunk) / (2.0 * self._channels * self._out_rate)
        self._call(
            functools.partial(dev.write, chunk),
            self._write_timeout_s + seconds,
            "take audio",
            started,
        )

    def _verify(self) -> None:
        # More than the device buffer holds: some sinks report a failure only once it is full.
        dev = self._device_thread()
        frames = int(VERIFY_SECONDS * self._out_rate)
        silence = np.zeros(frames * self._channels, dtype=np.int16).tobytes()
        try:
            self._call(dev.start, self._write_timeout_s, "start")
            self._write(dev, silence, started=False)
            self._call(dev.stop, self._write_timeout_s, "drain")
        except (OSError, ValueError) as exc:
            self.close_stream()
            self._fail("retrying", f"output device {self._name()} fails when written to: {exc}")

    def close_stream(self) -> None:
        """Release the stream (idle, or before another); a hung device is left behind."""
        dev, self._rate = self._dev, 0
        if dev is None:
            return
        with contextlib.suppress(DeviceFailure, OSError, ValueError, AttributeError):
            self._call(dev.close_stream, self._write_timeout_s, "close")

    def reset(self) -> None:
        """Forget PortAudio's device list so the next open finds devices that appeared since
        (once no stuck stream holds PortAudio)."""
        dev, self._dev, self._rate = self._dev, None, 0
        if dev is not None and not dev.retire(self._write_timeout_s):
            self._stuck.append(dev)

    def _device_thread(self) -> _DeviceThread:
        if self._dev is None:
            self._dev = _DeviceThread(self._pa_lock)
        return self._dev

    def _call(self, fn: Callable[[], T], timeout: float, what: str, started: bool = False) -> T:
        """fn() on the device thread; a call that misses its deadline leaves the thread
        behind and makes the device `hung`."""
        dev = self._device_thread()
        try:
            return dev.call(fn, timeout)
        except _Late:
            self._dev, self._rate = None, 0
            dev.retire(0.0)
            self._stuck.append(dev)
            self._fail(
                "hung",
                f"{self._name()} hung: it did not {what} within {timeout:.1f} s",
                started=started,
            )

    def _name(self) -> str:
        return f"output device {self.device.name!r}" if self.device else "the output device"

    def _fail(self, state: str, message: str, started: bool = False) -> NoReturn:
        stuck = self.stuck
        if stuck and state != "hung":
            # Whatever failed now, the device has not taken the audio it was given.
            state, message = "hung", f"{message}; {stuck} earlier writes still blocked"
        self.state, self.last_error = state, message
        raise DeviceFailure(message, started, state)


class DeviceFailure(AudioError):
    """The output device could not be opened or stopped working; `started`: mid-sound;
    `state`: what the output is now ("missing", "retrying" or "hung")."""

    def __init__(self, message: str, started: bool = False, state: str = "retrying") -> None:
        super().__init__(message)
        self.started = started
        self.state = state
