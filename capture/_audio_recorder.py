"""System audio (never a microphone) streamed to ``audio.wav`` with its timing recorded.

Linux: the PulseAudio/PipeWire *monitor* source of an output sink (``<sink>.monitor``), reached
through PortAudio's ALSA ``pulse`` device with ``PULSE_SOURCE`` naming the monitor. Sources that
are not monitors are refused: the recorder only ever hears what the machine plays. (BlackHole on
macOS and WASAPI loopback on Windows are not supported yet.)

``audio.wav`` is 16-bit PCM written as blocks arrive; its header is rewritten about once a second,
so a killed recorder leaves a playable file up to the last second, and ``capture recover`` fixes
the header from the file size. Timing: every PortAudio callback records (sample index, monotonic
time); a least-squares line through those points gives the monotonic time of the first sample and
the audio clock's drift against the monotonic clock (reported in ppm in ``audio_info``). Input
overflows and silent gaps in delivery are counted.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiconfig import CaptureDeviceError

__all__ = [
    "AudioRecorder",
    "fix_wav_header",
    "list_sources",
    "pick_monitor",
    "wav_header",
]

_SETUP_HINT = (
    "set up a monitor source, e.g. 'pactl load-module module-null-sink sink_name=capsink' and "
    "route the game's output to it (its monitor is capsink.monitor)"
)


def wav_header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    """A 44-byte canonical PCM s16le WAV header."""
    block = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        16,
        b"data",
        data_bytes,
    )


def fix_wav_header(path: Path) -> int:
    """Rewrite the sizes in ``path``'s header from the file size; returns the sample frames."""
    with path.open("r+b") as fh:
        head = fh.read(44)
        if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise CaptureDeviceError(f"{path}: not a WAV file written by capture")
        channels, sample_rate = struct.unpack("<HI", head[22:28])
        size = path.stat().st_size - 44
        size -= size % (channels * 2)
        fh.truncate(44 + size)
        fh.seek(0)
        fh.write(wav_header(sample_rate, channels, size))
    return int(size // (channels * 2))


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    is_monitor: bool


def list_sources() -> list[Source]:
    """PulseAudio/PipeWire sources (through ``pactl``), monitors flagged."""
    if shutil.which("pactl") is None:
        raise CaptureDeviceError(
            "no PulseAudio/PipeWire client tools (pactl); install pulseaudio-utils, then "
            + _SETUP_HINT
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
            f"{proc.stderr.strip() or proc.returncode}); start one, then {_SETUP_HINT}"
        )
    sources = []
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            sources.append(Source(parts[1], parts[1].endswith(".monitor")))
    return sources


def _default_sink() -> str | None:
    proc = subprocess.run(
        ["pactl", "get-default-sink"], capture_output=True, text=True, check=False, timeout=10
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def pick_monitor(requested: str | None) -> tuple[str, str]:
    """``(source, why)``: the monitor source to record, or a one-line error saying what to do."""
    sources = list_sources()
    names = {s.name: s for s in sources}
    if requested is not None:
        if requested not in names:
            raise CaptureDeviceError(
                f"audio device {requested!r} does not exist (sources: "
                f"{', '.join(names) or 'none'}); {_SETUP_HINT}"
            )
        if not names[requested].is_monitor:
            raise CaptureDeviceError(
                f"audio device {requested!r} is not a monitor/loopback source; capture never "
                f"records a microphone: {_SETUP_HINT}"
            )
        return requested, "requested in the config"
    sink = _default_sink()
    if sink and f"{sink}.monitor" in names:
        return f"{sink}.monitor", f"monitor of the default output sink {sink!r}"
    monitors = [s.name for s in sources if s.is_monitor]
    if monitors:
        return monitors[0], "first monitor source (no default sink monitor)"
    raise CaptureDeviceError(f"no monitor/loopback audio source exists; {_SETUP_HINT}")


@dataclass(slots=True)
class AudioStats:
    frames: int = 0
    blocks: int = 0
    overflows: int = 0
    queue_drops: int = 0
    points: list[tuple[int, int]] = field(default_factory=list)
    error: str | None = None
    failed_at_ns: int | None = None


class AudioRecorder:
    """Records one monitor source to a WAV file on a writer thread."""

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int = 44100,
        channels: int = 2,
        device: str | None = None,
        blocksize: int = 441,
    ) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.source, self.why = pick_monitor(device)
        self.blocksize = blocksize
        self.stats = AudioStats()
        self._q: queue.Queue[Any] = queue.Queue(maxsize=2000)
        self._stream: Any = None
        self._writer = threading.Thread(target=self._write_loop, name="capture-audio", daemon=True)
        self._fh = path.open("wb")
        self._fh.write(wav_header(sample_rate, channels, 0))
        self._fh.flush()
        self._latency_s = 0.0
        self._t0_ns: int | None = None
        self._end_ns: int | None = None
        self._aligned = threading.Event()
        self._first_data = threading.Event()

    def open(self) -> None:
        """Open the device (slow: PortAudio initialisation); :meth:`start` is then quick."""
        os.environ["PULSE_SOURCE"] = self.source  # read by libpulse when the stream opens
        import sounddevice as sd

        try:
            self._stream = sd.InputStream(
                device="pulse",
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype="int16",
                blocksize=self.blocksize,
                latency="low",
                callback=self._callback,
            )
            self._latency_s = float(self._stream.latency)
        except (sd.PortAudioError, ValueError) as exc:
            self._fh.close()
            raise CaptureDeviceError(
                f"cannot open audio source {self.source!r} ({exc}); {_SETUP_HINT}"
            ) from exc

    def start(self) -> None:
        import sounddevice as sd

        self._writer.start()
        try:
            self._stream.start()
        except sd.PortAudioError as exc:
            raise CaptureDeviceError(f"cannot start audio from {self.source!r} ({exc})") from exc

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic_ns()
        self._first_data.set()
        if status.input_overflow:
            self.stats.overflows += 1
        try:
            self._q.put_nowait((now, frames, bytes(indata)))
        except queue.Full:
            self.stats.queue_drops += 1

    def align(self, t0_ns: int) -> None:
        """Samples before ``t0_ns`` (the video's first frame) are discarded: sample 0 of
        ``audio.wav`` is then the sound at the first frame's presentation time."""
        self._t0_ns = t0_ns
        self._aligned.set()

    def wait_for_data(self, timeout_s: float) -> bool:
        return self._first_data.wait(timeout_s)

    def _block_start_ns(self, callback_ns: int, frames: int) -> float:
        """Estimated capture time of a block's first sample."""
        return callback_ns - self._latency_s * 1e9 - frames * 1e9 / self.sample_rate

    def _write_loop(self) -> None:
        last_header = time.monotonic()
        bytes_per_frame = self.channels * 2
        self._aligned.wait()
        while True:
            item = self._q.get()
            if item is None:
                break
            now, frames, data = item
            start = self._block_start_ns(now, frames)
            skip = 0
            if self.stats.frames == 0 and self._t0_ns is not None:
                # Trim the lead-in so that the file starts at the video's first frame.
                skip = max(0, min(frames, round((self._t0_ns - start) * self.sample_rate / 1e9)))
            keep = frames - skip
            if self._end_ns is not None:
                end_keep = round((self._end_ns - start) * self.sample_rate / 1e9) - skip
                keep = max(0, min(keep, end_keep))
            if keep <= 0:
                continue
            self._fh.write(data[skip * bytes_per_frame : (skip + keep) * bytes_per_frame])
            self.stats.frames += keep
            self.stats.blocks += 1
            self.stats.points.append((self.stats.frames, now))
            if time.monotonic() - last_header >= 1.0:
                self._rewrite_header()
                last_header = time.monotonic()
        self._rewrite_header()

    def _rewrite_header(self) -> None:
        pos = self._fh.tell()
        self._fh.seek(0)
        self._fh.write(
            wav_header(self.sample_rate, self.channels, self.stats.frames * self.channels * 2)
        )
        self._fh.seek(pos)
        self._fh.flush()

    def source_present(self) -> bool:
        """Whether the monitor source still exists. PulseAudio silently moves a stream whose
        source vanished to the default source, which may be a microphone: never follow it."""
        try:
            return any(s.name == self.source for s in list_sources())
        except CaptureDeviceError:
            return False

    def fail(self, reason: str) -> None:
        """Stop listening now (the file keeps what was recorded) and record why."""
        self.stats.error = reason
        self.stats.failed_at_ns = time.monotonic_ns()
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.abort()

    def seconds_since_data(self) -> float:
        if not self.stats.points:
            return 0.0
        return (time.monotonic_ns() - self.stats.points[-1][1]) / 1e9

    def stop(self, end_ns: int | None = None) -> None:
        """Stop; with ``end_ns``, wait until the sound up to then has arrived and cut there."""
        if end_ns is not None and self._stream is not None:
            self._end_ns = end_ns
            ready = end_ns + int((self._latency_s + 0.05) * 1e9)
            delay = (ready - time.monotonic_ns()) / 1e9
            if 0 < delay < 2:
                time.sleep(delay)
        if self._stream is not None:
            with contextlib.suppress(Exception):  # the device may already be gone
                self._stream.stop()
                self._stream.close()
        self._aligned.set()
        if self._writer.is_alive():
            self._q.put(None)
            self._writer.join(timeout=10)
        if end_ns is not None and self._t0_ns is not None and not self._fh.closed:
            # Cut at the video's end: the file then spans exactly the video's timeline.
            wanted = max(0, round((end_ns - self._t0_ns) * self.sample_rate / 1e9))
            if self.stats.frames > wanted:
                self.stats.frames = wanted
                self._fh.truncate(44 + wanted * self.channels * 2)
                self._fh.seek(0, os.SEEK_END)
                self._rewrite_header()
        if not self._fh.closed:
            self._fh.close()

    def info(self, video_t0_ns: int | None = None) -> dict[str, Any]:
        """``audio_info`` for metadata.json: device, format, timing fit, drift, problems."""
        import numpy as np

        st = self.stats
        info: dict[str, Any] = {
            "device": self.source,
            "why": self.why,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "sample_format": "s16le",
            "file": self.path.name,
            "frames": st.frames,
            "duration_s": round(st.frames / self.sample_rate, 6),
            "input_overflows": st.overflows,
            "dropped_blocks": st.queue_drops,
            "stream_latency_s": self._latency_s,
        }
        if len(st.points) >= 2:
            idx = np.array([p[0] for p in st.points], dtype=np.float64)
            t = np.array([p[1] for p in st.points], dtype=np.float64)
            slope, intercept = np.polyfit(idx, t, 1)
            residual = t - (slope * idx + intercept)
            nominal = 1e9 / self.sample_rate
            latency_ns = self._latency_s * 1e9
            first = float(intercept - latency_ns)
            info.update(
                {
                    "first_sample_monotonic_ns": int(first),
                    "clock_drift_ppm": round(float(slope / nominal - 1.0) * 1e6, 2),
                    "fit_residual_p99_ms": round(
                        float(np.percentile(np.abs(residual), 99)) / 1e6, 3
                    ),
                    "max_delivery_gap_ms": round(float(np.diff(t).max()) / 1e6, 3),
                    "first_sample_after_video_start_ms": None
                    if video_t0_ns is None
                    else round((first - video_t0_ns) / 1e6, 3),
                    "timing": "first sample = sample-index->monotonic least-squares fit over "
                    "callback times, minus the stream's input latency",
                }
            )
        if st.error:
            info["error"] = st.error
            info["failed_at_ns"] = st.failed_at_ns
        return info


def check_audio(
    device: str | None, seconds: float = 1.0, sample_rate: int = 44100
) -> dict[str, Any]:
    """``--check-audio``: the sources, which one would be used and why, and a 1 s level test."""
    import numpy as np
    import sounddevice as sd

    sources = list_sources()
    source, why = pick_monitor(device)
    os.environ["PULSE_SOURCE"] = source
    try:
        data = sd.rec(
            int(sample_rate * seconds),
            samplerate=sample_rate,
            channels=2,
            dtype="int16",
            device="pulse",
        )
        sd.wait()
    except (sd.PortAudioError, ValueError) as exc:
        raise CaptureDeviceError(f"cannot record from {source!r} ({exc}); {_SETUP_HINT}") from exc
    samples = np.asarray(data, dtype=np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    return {
        "sources": [{"name": s.name, "monitor": s.is_monitor} for s in sources],
        "selected": source,
        "why": why,
        "seconds": seconds,
        "rms_dbfs": round(20 * np.log10(rms), 1) if rms > 0 else None,
        "peak": round(float(np.abs(samples).max()), 4) if samples.size else 0.0,
    }
