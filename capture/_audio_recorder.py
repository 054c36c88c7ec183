"""System audio (never a microphone) streamed to ``audio.wav`` with its timing recorded.

The source is this platform's loopback (:mod:`capture.platforms.loopback`): a PulseAudio/PipeWire
monitor on Linux, a WASAPI loopback endpoint on Windows, a loopback driver such as BlackHole on
macOS. Sources that are not loopbacks are refused: the recorder only hears what the machine plays.

``audio.wav`` is 16-bit PCM written as blocks arrive; its header is rewritten about once a second,
so a killed recorder leaves a playable file up to the last second, and ``capture recover`` fixes
the header from the file size. Timing: every block records (sample index, capture time of its
first sample: the backend's own figure where it reports one, else the callback time less the
stream's input latency); a least-squares line through those points gives the first sample's time
on the frame clock and the audio clock's drift (ppm, in ``audio_info``). Input
overflows and silent gaps in delivery are counted.
"""

from __future__ import annotations

import contextlib
import os
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiconfig import CaptureDeviceError

from .platforms.loopback import Source

__all__ = [
    "AudioRecorder",
    "fix_wav_header",
    "list_sources",
    "pick_monitor",
    "wav_header",
]


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
    # O_NOFOLLOW: a planted link to a victim must not be truncated and rewritten
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "r+b") as fh:
        head = fh.read(44)
        if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise CaptureDeviceError(f"{path}: not a WAV file written by capture")
        channels, sample_rate = struct.unpack("<HI", head[22:28])
        size = os.fstat(fh.fileno()).st_size - 44
        size -= size % (channels * 2)
        fh.truncate(44 + size)
        fh.seek(0)
        fh.write(wav_header(sample_rate, channels, size))
    return int(size // (channels * 2))


def _loopback() -> Any:
    from .platforms import audio_loopback

    return audio_loopback()


def list_sources() -> list[Source]:
    """This platform's capture sources, loopback/monitor ones flagged."""
    return list(_loopback().sources())


def pick_monitor(requested: str | None, loop: Any = None) -> tuple[str, str]:
    """``(source, why)``: the loopback source to record, or a one-line error saying what to do."""
    loop = loop if loop is not None else _loopback()
    sources = loop.sources()
    names = {s.name: s for s in sources}
    if requested is not None:
        if requested not in names:
            raise CaptureDeviceError(
                f"audio device {requested!r} does not exist (sources: "
                f"{', '.join(names) or 'none'}); {loop.hint}"
            )
        if not names[requested].is_monitor:
            raise CaptureDeviceError(
                f"audio device {requested!r} is not a monitor/loopback source; capture never "
                f"records a microphone: {loop.hint}"
            )
        return requested, "requested in the config"
    default = loop.default(names)
    if default is not None:
        return default  # type: ignore[no-any-return]
    monitors = [s.name for s in sources if s.is_monitor]
    if monitors:
        return monitors[0], "first monitor/loopback source (no default output's)"
    raise CaptureDeviceError(f"no monitor/loopback audio source exists; {loop.hint}")


@dataclass(slots=True)
class AudioStats:
    frames: int = 0
    blocks: int = 0
    overflows: int = 0
    queue_drops: int = 0
    points: list[tuple[int, int, int]] = field(default_factory=list)
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
        on_write_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.path = path
        self._on_write_error = on_write_error
        self.sample_rate = sample_rate
        self.channels = channels
        self._loop = _loopback()
        self.source, self.why = pick_monitor(device, self._loop)
        self._adc_blocks = 0
        self._first_ns: int | None = None
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
        self._write_error: BaseException | None = None

    def open(self) -> None:
        """Open the device (slow: PortAudio initialisation); :meth:`start` is then quick."""
        try:
            self._stream = self._loop.open_stream(
                self.source,
                rate=self.sample_rate,
                channels=self.channels,
                blocksize=self.blocksize,
                callback=self._on_block,
            )
            self._latency_s = float(self._stream.latency)
        except CaptureDeviceError:
            self._fh.close()
            raise
        except Exception as exc:
            self._fh.close()
            raise CaptureDeviceError(
                f"cannot open audio source {self.source!r} ({exc}); {self._loop.hint}"
            ) from exc

    def start(self) -> None:
        self._writer.start()
        try:
            self._stream.start()
        except Exception as exc:
            raise CaptureDeviceError(f"cannot start audio from {self.source!r} ({exc})") from exc

    def _on_block(self, data: bytes, frames: int, adc_ns: int | None, overflow: bool) -> None:
        now = time.monotonic_ns()
        self._first_data.set()
        if overflow:
            self.stats.overflows += 1
        if adc_ns is not None:
            self._adc_blocks += 1
        try:
            self._q.put_nowait((now, frames, data, adc_ns))
        except queue.Full:
            self.stats.queue_drops += 1

    def align(self, t0_ns: int) -> None:
        """Samples before ``t0_ns`` (the video's first frame) are discarded: sample 0 of
        ``audio.wav`` is then the sound at the first frame's presentation time."""
        self._t0_ns = t0_ns
        self._aligned.set()

    def wait_for_data(self, timeout_s: float) -> bool:
        return self._first_data.wait(timeout_s)

    def _block_start_ns(self, callback_ns: int, frames: int, adc_ns: int | None = None) -> float:
        """Capture time of a block's first sample: the backend's own figure where it reports
        one, else the callback time less the stream's input latency and the block's length."""
        if adc_ns is not None:
            return float(adc_ns)
        return callback_ns - self._latency_s * 1e9 - frames * 1e9 / self.sample_rate

    def _write_loop(self) -> None:
        try:
            self._write()
        except OSError as exc:  # a full disk: audio.wav keeps what was written
            self._write_failed(exc)
            while self._q.get() is not None:  # the callback never blocks; drain until stop
                pass

    def _write_failed(self, exc: BaseException) -> None:
        if self.stats.error is None:
            self.stats.error = f"audio write failed: {exc}"
            self.stats.failed_at_ns = time.monotonic_ns()
        self._write_error = exc
        if self._on_write_error is not None:
            self._on_write_error(exc)

    def _write(self) -> None:
        last_header = time.monotonic()
        bytes_per_frame = self.channels * 2
        ns_per_sample = 1e9 / self.sample_rate
        received = 0  # samples delivered since the stream started, lead-in included
        base: float | None = None  # when the stream's sample 0 was captured (low percentile)
        estimates: list[float] = []
        self._aligned.wait()  # the lead-in queued meanwhile sharpens the envelope
        while True:
            item = self._q.get()
            if item is None:
                break
            now, frames, data, adc_ns = item
            start = self._block_start_ns(now, frames, adc_ns)
            # A block is never delivered before it was captured, only late (scheduling,
            # bursts): the low end of the estimates so far is the least delayed. The 10th
            # percentile, not the minimum: a block that came sooner than the stream's stated
            # latency would pull the minimum early.
            if self.stats.frames == 0:
                estimates.append(start - received * ns_per_sample)
                estimates.sort()
                base = estimates[len(estimates) // 10]
            aligned_start = (base or start) + received * ns_per_sample
            received += frames
            skip = 0
            if self.stats.frames == 0 and self._t0_ns is not None:
                # Trim the lead-in so that the file starts at the video's first frame.
                skip = max(0, min(frames, round((self._t0_ns - aligned_start) / ns_per_sample)))
            keep = frames - skip
            if self._end_ns is not None:
                end_keep = round((self._end_ns - start) / ns_per_sample) - skip
                keep = max(0, min(keep, end_keep))
            if keep <= 0:
                continue
            if self.stats.frames == 0:
                self._first_ns = round(aligned_start + skip * ns_per_sample)
            self._fh.write(data[skip * bytes_per_frame : (skip + keep) * bytes_per_frame])
            # (index of the block's first kept sample, its capture time, the callback time)
            first_kept = round(start + skip * ns_per_sample)
            self.stats.points.append((self.stats.frames, first_kept, now))
            self.stats.frames += keep
            self.stats.blocks += 1
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
        return (time.monotonic_ns() - self.stats.points[-1][2]) / 1e9

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
        try:
            if self._write_error is None:
                self._cut(end_ns)
        except OSError as exc:
            self._write_failed(exc)
        finally:
            if not self._fh.closed:
                try:
                    self._fh.close()
                except OSError as exc:  # the buffered tail could not be written
                    if self._write_error is None:
                        self._write_failed(exc)

    def _cut(self, end_ns: int | None) -> None:
        if end_ns is not None and self._t0_ns is not None and not self._fh.closed:
            # Cut at the video's end: the file then spans exactly the video's timeline.
            wanted = max(0, round((end_ns - self._t0_ns) * self.sample_rate / 1e9))
            if self.stats.frames > wanted:
                self.stats.frames = wanted
                self._fh.truncate(44 + wanted * self.channels * 2)
                self._fh.seek(0, os.SEEK_END)
                self._rewrite_header()

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
            delivered = np.array([p[2] for p in st.points], dtype=np.float64)
            slope, intercept = np.polyfit(idx, t, 1)
            residual = t - (slope * idx + intercept)
            nominal = 1e9 / self.sample_rate
            first = float(intercept if self._first_ns is None else self._first_ns)
            backend_times = self._adc_blocks > 0
            info.update(
                {
                    "first_sample_monotonic_ns": int(first),
                    "clock_drift_ppm": round(float(slope / nominal - 1.0) * 1e6, 2),
                    "fit_residual_p99_ms": round(
                        float(np.percentile(np.abs(residual), 99)) / 1e6, 3
                    ),
                    "max_delivery_gap_ms": round(float(np.diff(delivered).max()) / 1e6, 3),
                    "first_sample_after_video_start_ms": None
                    if video_t0_ns is None
                    else round((first - video_t0_ns) / 1e6, 3),
                    "backend": self._loop.name,
                    "latency_source": "backend capture time (PortAudio inputBufferAdcTime)"
                    if backend_times
                    else "callback time minus the stream's input latency "
                    f"({round(self._latency_s * 1e3, 3)} ms)",
                    "first_sample_fit_ns": int(intercept),
                    "timing": "first sample = the 10th percentile (least delayed) of the estimates "
                    "over every block up to it, lead-in included, of when the stream's samples "
                    "were captured: the "
                    "capture time the backend reports, or the callback time less the input "
                    "latency; drift = least-squares fit of sample index -> capture time",
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

    loop = _loopback()
    sources = loop.sources()
    source, why = pick_monitor(device, loop)
    chunks: list[bytes] = []
    done = threading.Event()
    wanted = int(sample_rate * seconds)

    def on_block(data: bytes, frames: int, adc_ns: int | None, overflow: bool) -> None:
        chunks.append(data)
        if sum(len(c) for c in chunks) >= wanted * 4:
            done.set()

    try:
        stream = loop.open_stream(
            source, rate=sample_rate, channels=2, blocksize=441, callback=on_block
        )
        stream.start()
        done.wait(seconds + 4.0)
        stream.stop()
        stream.close()
    except CaptureDeviceError:
        raise
    except Exception as exc:
        raise CaptureDeviceError(f"cannot record from {source!r} ({exc}); {loop.hint}") from exc
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")[: wanted * 2]
    samples = pcm.astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    return {
        "sources": [{"name": s.name, "monitor": s.is_monitor} for s in sources],
        "selected": source,
        "why": why,
        "seconds": seconds,
        "rms_dbfs": round(20 * np.log10(rms), 1) if rms > 0 else None,
        "peak": round(float(np.abs(samples).max()), 4) if samples.size else 0.0,
    }
