"""The PyAudio output device: find it by name or index, open it, play, reopen after a loss.

Used from one thread only (the speaker's player thread): PortAudio streams are not shared.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

import numpy as np

from coachd.errors import AudioError

FRAMES_PER_BUFFER = 512
FIRST_WRITE_FRAMES = 1024  # small, so the first buffer reaches the device early
WRITE_FRAMES = 4096  # then fewer, larger writes (PyAudio releases the GIL while writing)
VERIFY_SECONDS = 0.2  # of silence played to check a newly opened device


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
    """Send fd 2 to /dev/null: ALSA, JACK and PortAudio print probing noise straight to it."""
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


def new_portaudio() -> Any:
    """A fresh PyAudio instance (enumerates devices now), with the start-up chatter hidden."""
    # Without this, libjack may try to launch a JACK server just because we looked for one.
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import pyaudio

    with quiet_stderr():
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


class AudioOutput:
    """One output stream on the configured device; `state` is "ok", "missing" or "retrying"."""

    def __init__(self, device: str) -> None:
        self._wanted = device
        self._pa: Any = None
        self._stream: Any = None
        self._rate = 0  # rate the caller's audio comes at
        self._out_rate = 0
        self._channels = 1
        self.device: Optional[OutputDevice] = None
        self.state = "missing"
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def open(self, rate: int, verify: bool = False) -> None:
        """Open the stream for mono audio at `rate`; DeviceFailure naming what failed.

        `verify` also plays a few milliseconds of silence: some devices open fine and fail
        only when written to (a vanished file sink, a half-connected Bluetooth headset).
        """
        if self._stream is not None and self._rate == rate:
            return
        self.close_stream()
        if self._wanted.lower().startswith("plughw"):
            # PortAudio then opens hardware through ALSA's plug layer: any rate, any channels.
            os.environ.setdefault("PA_ALSA_PLUGHW", "1")
        try:
            if self._pa is None:
                self._pa = new_portaudio()
            devices = list_output_devices(self._pa)
        except (ImportError, OSError) as exc:
            self._fail("missing", f"PortAudio is unusable: {exc}")
        device = find_device(devices, self._wanted)
        if device is None:
            names = ", ".join(f"{d.index}: {d.name}" for d in devices) or "none"
            wanted = repr(self._wanted) if self._wanted else "the system default"
            self._fail("missing", f"no output device matches {wanted} (devices: {names})")
        assert device is not None
        import pyaudio

        errors = []
        for out_rate, channels in dict.fromkeys(
            [(rate, 1), (rate, 2), (device.default_rate, 1), (device.default_rate, 2)]
        ):
            if channels > device.channels:
                continue
            try:
                with quiet_stderr():
                    self._stream = self._pa.open(
                        format=pyaudio.paInt16,
                        channels=channels,
                        rate=out_rate,
                        output=True,
                        output_device_index=device.index,
                        frames_per_buffer=FRAMES_PER_BUFFER,
                        start=False,
                    )
            except (OSError, ValueError) as exc:
                errors.append(f"{out_rate} Hz x{channels}: {exc}")
                continue
            self.device, self._rate = device, rate
            self._out_rate, self._channels = out_rate, channels
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
        Raises AudioError when the device fails; `started` tells whether a word may be cut.
        """
        self.open(rate)
        data = convert(samples, rate, self._out_rate, self._channels)
        first, step = FIRST_WRITE_FRAMES * self._channels, WRITE_FRAMES * self._channels
        started_at = 0.0
        try:
            if self._stream.is_stopped():
                with quiet_stderr():
                    self._stream.start_stream()
            for offset in [0, *range(first, len(data), step)]:
                if abort.is_set():
                    break
                end = first if offset == 0 else offset + step
                self._stream.write(data[offset:end].tobytes())
                if offset == 0:
                    started_at = time.monotonic()
                    on_first_buffer()
            self._stream.stop_stream()  # drains what the device still holds
        except (OSError, ValueError, AttributeError) as exc:
            self.close_stream()
            self._fail("retrying", f"output device failed: {exc}", started=started_at > 0)
        if started_at:
            # Some devices (files, network sinks) swallow audio faster than real time.
            end = started_at + len(samples) / float(rate)
            abort.wait(max(0.0, end - time.monotonic()))
        return started_at > 0

    def _verify(self) -> None:
        # More than the device buffer holds: some sinks report a failure only once it is full.
        frames = int(VERIFY_SECONDS * self._out_rate)
        silence = np.zeros(frames * self._channels, dtype=np.int16).tobytes()
        try:
            with quiet_stderr():
                self._stream.start_stream()
                self._stream.write(silence)
                self._stream.stop_stream()
        except (OSError, ValueError) as exc:
            self.close_stream()
            name = self.device.name if self.device else "?"
            self._fail("retrying", f"output device {name!r} fails when written to: {exc}")

    def close_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._rate = 0
        if stream is None:
            return
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.close()

    def reset(self) -> None:
        """Forget PortAudio's device list so the next open finds devices that appeared since."""
        self.close_stream()
        pa, self._pa = self._pa, None
        if pa is not None:
            with contextlib.suppress(OSError, ValueError), quiet_stderr():
                pa.terminate()

    def _fail(self, state: str, message: str, started: bool = False) -> NoReturn:
        self.state, self.last_error = state, message
        raise DeviceFailure(message, started)


class DeviceFailure(AudioError):
    """The output device could not be opened or stopped working; `started`: mid-sound."""

    def __init__(self, message: str, started: bool = False) -> None:
        super().__init__(message)
        self.started = started
