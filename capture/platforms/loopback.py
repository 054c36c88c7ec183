"""System-audio loopback per platform; never a microphone.

=========  ==========================================================================
Linux      the PulseAudio/PipeWire *monitor* source of an output sink (``<sink>.monitor``),
           through PortAudio's ALSA ``pulse`` device with ``PULSE_SOURCE`` naming it
Windows    the WASAPI loopback endpoint of an output device (PyAudioWPatch, a maintained
           PortAudio fork that exposes WASAPI loopback)
macOS      a loopback driver's input device (BlackHole, Loopback Audio, Soundflower,
           Background Music) through PortAudio's CoreAudio host
=========  ==========================================================================

Every source that is not a loopback is refused. Each stream hands its blocks to
``callback(data, frames, adc_ns, overflow)``: ``adc_ns`` is when the block's first sample was
captured, on the recorder's clock, where the backend reports it (PortAudio's
``inputBufferAdcTime``, which WASAPI derives from the device position and its QPC time and
CoreAudio from the buffer's host time), mapped through PortAudio's ``currentTime`` read in the
same callback; ``None`` where the backend's figure cannot be trusted (ALSA's ``pulse`` plugin
reports a delay of the whole buffer, about 400 ms, measured here), and the recorder falls back
to the callback time minus the stream's input latency.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiconfig import CaptureDeviceError

__all__ = [
    "LOOPBACK_DRIVERS",
    "CoreAudioLoopback",
    "PulseLoopback",
    "Source",
    "WasapiLoopback",
    "for_platform",
]

Callback = Callable[[bytes, int, "int | None", bool], None]

PULSE_HINT = (
    "set up a monitor source, e.g. 'pactl load-module module-null-sink sink_name=capsink' and "
    "route the game's output to it (its monitor is capsink.monitor)"
)
WASAPI_HINT = (
    "install PyAudioWPatch (pip install 'aiconfig[capture-windows]') and check that an output "
    "device is enabled in Sound settings: its '[Loopback]' endpoint is what gets recorded"
)
COREAUDIO_HINT = (
    "install a loopback driver such as BlackHole (brew install blackhole-2ch), and send the "
    "game's output to it (a Multi-Output Device keeps your speakers on)"
)
LOOPBACK_DRIVERS = ("BlackHole", "Loopback Audio", "Soundflower", "Background Music")


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    is_monitor: bool


def _adc_ns(now_ns: int, current: float, adc: float) -> int | None:
    """The block's capture time on the recorder's clock from PortAudio's own two readings."""
    if not current or not adc or not 0.0 <= current - adc < 0.5:
        return None
    return now_ns - round((current - adc) * 1e9)


class PulseLoopback:
    name = "pulse"
    hint = PULSE_HINT
    trusts_adc_time = False

    def sources(self) -> list[Source]:
        if shutil.which("pactl") is None:
            raise CaptureDeviceError(
                "no PulseAudio/PipeWire client tools (pactl); install pulseaudio-utils, then "
                + PULSE_HINT
            )
        proc = subprocess.run(
            ["pactl", "list", "short", "sources"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if proc.returncode != 0:
            raise CaptureDeviceError(
                "no PulseAudio/PipeWire server answers (pactl failed: "
                f"{proc.stderr.strip() or proc.returncode}); start one, then {PULSE_HINT}"
            )
        out = []
        for line in proc.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                out.append(Source(parts[1], parts[1].endswith(".monitor")))
        return out

    def default(self, names: dict[str, Source]) -> tuple[str, str] | None:
        proc = subprocess.run(
            ["pactl", "get-default-sink"], capture_output=True, text=True, check=False, timeout=10
        )
        sink = proc.stdout.strip() if proc.returncode == 0 else ""
        if sink and f"{sink}.monitor" in names:
            return f"{sink}.monitor", f"monitor of the default output sink {sink!r}"
        return None

    def open_stream(
        self, source: str, *, rate: int, channels: int, blocksize: int, callback: Callback
    ) -> Any:
        os.environ["PULSE_SOURCE"] = source  # read by libpulse when the stream opens
        import sounddevice as sd

        def cb(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            callback(bytes(indata), frames, None, bool(status.input_overflow))

        return sd.InputStream(
            device="pulse",
            samplerate=rate,
            channels=channels,
            dtype="int16",
            blocksize=blocksize,
            latency="low",
            callback=cb,
        )


class CoreAudioLoopback:
    """A loopback driver's input device on macOS (sounddevice / PortAudio CoreAudio)."""

    name = "coreaudio"
    hint = COREAUDIO_HINT
    trusts_adc_time = True

    def __init__(self, sd: Any = None) -> None:
        self._sd = sd

    def _lib(self) -> Any:
        return self._sd if self._sd is not None else importlib.import_module("sounddevice")

    def sources(self) -> list[Source]:
        devices = self._lib().query_devices()
        return [
            Source(d["name"], any(d["name"].startswith(p) for p in LOOPBACK_DRIVERS))
            for d in devices
            if int(d.get("max_input_channels", 0)) > 0
        ]

    def default(self, names: dict[str, Source]) -> tuple[str, str] | None:
        return None

    def open_stream(
        self, source: str, *, rate: int, channels: int, blocksize: int, callback: Callback
    ) -> Any:
        sd = self._lib()

        def cb(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            now = time.monotonic_ns()
            adc = _adc_ns(now, time_info.currentTime, time_info.inputBufferAdcTime)
            callback(bytes(indata), frames, adc, bool(status.input_overflow))

        return sd.InputStream(
            device=source,
            samplerate=rate,
            channels=channels,
            dtype="int16",
            blocksize=blocksize,
            latency="low",
            callback=cb,
        )


class _PyAudioStream:
    """PyAudio's stream under sounddevice's names (start/stop/abort/close/latency)."""

    def __init__(self, stream: Any, pa: Any) -> None:
        self._s = stream
        self._pa = pa
        self.latency = float(stream.get_input_latency())

    def start(self) -> None:
        self._s.start_stream()

    def stop(self) -> None:
        self._s.stop_stream()

    def abort(self) -> None:
        self._s.stop_stream()

    def close(self) -> None:
        self._s.close()
        self._pa.terminate()


class WasapiLoopback:
    """WASAPI loopback endpoints through PyAudioWPatch (``pyaudiowpatch``)."""

    name = "wasapi"
    hint = WASAPI_HINT
    trusts_adc_time = True

    def __init__(self, pyaudio: Any = None) -> None:
        self._mod = pyaudio

    def _lib(self) -> Any:
        if self._mod is None:
            try:
                self._mod = importlib.import_module("pyaudiowpatch")
            except ImportError as exc:
                raise CaptureDeviceError(f"no WASAPI loopback binding; {WASAPI_HINT}") from exc
        return self._mod

    def _devices(self) -> tuple[Any, list[dict[str, Any]], dict[str, Any] | None]:
        mod = self._lib()
        pa = mod.PyAudio()
        try:
            wasapi = pa.get_host_api_info_by_type(mod.paWASAPI)
        except OSError as exc:
            pa.terminate()
            raise CaptureDeviceError(f"WASAPI is not available ({exc}); {WASAPI_HINT}") from exc
        default_out = None
        if int(wasapi.get("defaultOutputDevice", -1)) >= 0:
            default_out = pa.get_device_info_by_index(wasapi["defaultOutputDevice"])
        devices = [
            pa.get_device_info_by_index(i)
            for i in range(pa.get_device_count())
            if pa.get_device_info_by_index(i).get("hostApi") == wasapi["index"]
        ]
        return pa, devices, default_out

    def sources(self) -> list[Source]:
        pa, devices, _ = self._devices()
        pa.terminate()
        return [
            Source(d["name"], bool(d.get("isLoopbackDevice")))
            for d in devices
            if int(d.get("maxInputChannels", 0)) > 0
        ]

    def default(self, names: dict[str, Source]) -> tuple[str, str] | None:
        pa, devices, default_out = self._devices()
        pa.terminate()
        if default_out is None:
            return None
        if default_out.get("isLoopbackDevice"):
            return default_out["name"], "the default output's loopback"
        for d in devices:
            if d.get("isLoopbackDevice") and default_out["name"] in d["name"]:
                return d["name"], f"loopback of the default output {default_out['name']!r}"
        return None

    def open_stream(
        self, source: str, *, rate: int, channels: int, blocksize: int, callback: Callback
    ) -> Any:
        mod = self._lib()
        pa, devices, _ = self._devices()
        dev = next((d for d in devices if d["name"] == source), None)
        if dev is None:
            pa.terminate()
            raise CaptureDeviceError(f"WASAPI loopback {source!r} vanished; {WASAPI_HINT}")
        if int(dev.get("defaultSampleRate", rate)) != rate:
            pa.terminate()
            raise CaptureDeviceError(
                f"{source!r} mixes at {int(dev['defaultSampleRate'])} Hz and WASAPI shared mode "
                f"does not resample: set capture.audio.sample_rate={int(dev['defaultSampleRate'])}"
            )

        def cb(in_data: bytes, frame_count: int, time_info: dict[str, float], status: int) -> Any:
            now = time.monotonic_ns()
            adc = _adc_ns(
                now, time_info.get("current_time", 0.0), time_info.get("input_buffer_adc_time", 0.0)
            )
            callback(bytes(in_data), frame_count, adc, bool(status & mod.paInputOverflow))
            return (None, mod.paContinue)

        stream = pa.open(
            format=mod.paInt16,
            channels=channels,
            rate=rate,
            input=True,
            input_device_index=int(dev["index"]),
            frames_per_buffer=blocksize,
            stream_callback=cb,
            start=False,
        )
        return _PyAudioStream(stream, pa)


def for_platform(name: str) -> Any:
    return {"x11": PulseLoopback, "win32": WasapiLoopback, "darwin": CoreAudioLoopback}[name]()
