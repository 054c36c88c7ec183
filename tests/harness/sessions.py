"""Make small but real capture sessions (the System 0 data contract) for the harness tests.

The recorder lives in another package; these sessions are written with the same libraries it
uses: a real H.264 MP4 through PyAV (no B-frames, PTS = frame index), a real ``events.parquet``
through pyarrow with the seed's exact schema, a ``metadata.json`` with the seed's fields, and
optionally ``audio.wav`` and ``webcam.mp4``, committed by a ``manifest.json`` written through the
session format (:func:`aiconfig.sessions.build_manifest`).
"""

from __future__ import annotations

import json
import math
import struct
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aiconfig.sessions import build_manifest, event_schema

EVENT_SCHEMA = event_schema()
START_NS = 1_763_750_000_000_000_000


def write_video(path: Path, frames: int, fps: int, size: tuple[int, int]) -> None:
    """A real H.264 MP4: ``frames`` moving-gradient frames, PTS = index, keyframe every second."""
    w, h = size
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.time_base = Fraction(1, fps)
        st.codec_context.gop_size = fps
        st.codec_context.max_b_frames = 0
        st.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        st.thread_count = 1
        xs = np.arange(w, dtype=np.uint16)
        for i in range(frames):
            row = ((xs + 4 * i) % 256).astype(np.uint8)
            img = np.broadcast_to(row[None, :, None], (h, w, 3)).copy()
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in st.encode(frame):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)


def write_wav(path: Path, seconds: float, rate: int = 44100) -> None:
    n = int(seconds * rate)
    tone = (np.sin(2 * math.pi * 997 * np.arange(n) / rate) * 8000).astype("<i2")
    stereo = np.repeat(tone[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(stereo.tobytes())


class _EventRows:
    """The rows of ``events.parquet`` as they are made, column by column (``None``: not set)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in EVENT_SCHEMA}

    def add(self, **kw: Any) -> None:
        for col, values in self.columns.items():
            values.append(kw.get(col))

    def write(self, path: Path) -> None:
        """In time order (stable: rows at the same ``t_ns`` keep the order they were added)."""
        order = np.argsort(np.asarray(self.columns["t_ns"]), kind="stable")
        table = pa.table(
            {k: [v[i] for i in order] for k, v in self.columns.items()}, schema=EVENT_SCHEMA
        )
        pq.write_table(table, path, compression="snappy")


def _add_screen_frames(
    events: _EventRows,
    name: str,
    n: int,
    period: int,
    pad_every: int,
    dropped: int,
    rng: np.random.Generator,
) -> int:
    """One row per screen frame: every ``pad_every``-th padded, the last ``dropped`` dropped.

    Returns the number of padded frames.
    """
    padded = 0
    drop_at = set(range(n - dropped, n)) if dropped else set()
    for i in range(n):
        dup = (bool(pad_every) and i > 0 and i % pad_every == 0) or i in drop_at
        padded += dup and i not in drop_at
        t = START_NS + i * period
        lag = int(rng.integers(200_000, 3_000_000))
        events.add(
            t_ns=t,
            t_capture_ns=t + lag,
            is_duplicate=dup,
            event_type="frame",
            stream="screen",
            frame_ref=i,
            window_id="League of Legends",
            session_id=name,
            metadata=json.dumps({"duplicate": "dropped" if i in drop_at else "padded"})
            if dup
            else None,
        )
    return padded


def _add_inputs(
    events: _EventRows,
    name: str,
    n: int,
    period: int,
    inputs: int,
    size: tuple[int, int],
    rng: np.random.Generator,
    kinds: tuple[str, ...],
) -> None:
    """``inputs`` key and mouse events at random times within the session, cycling ``kinds``."""
    for j in range(inputs):
        t = START_NS + int(rng.integers(0, n * period))
        kind = kinds[j % len(kinds)]
        events.add(
            t_ns=t,
            t_capture_ns=t,
            is_duplicate=False,
            event_type=kind,
            stream="input",
            key_code=65 + j % 26 if kind.startswith("key") else None,
            mouse_x=float(rng.uniform(0, size[0])) if kind.startswith("mouse") else None,
            mouse_y=float(rng.uniform(0, size[1])) if kind.startswith("mouse") else None,
            mouse_button="left" if kind in ("mouse_press", "mouse_release") else None,
            delta=1.0 if kind == "mouse_scroll" else None,
            frame_ref=(t - START_NS) // period,
            window_id="League of Legends",
            session_id=name,
            metadata="{}",
        )


def _add_webcam_frames(events: _EventRows, name: str, n: int, period: int) -> None:
    for i in range(n):
        t = START_NS + i * period
        events.add(
            t_ns=t,
            t_capture_ns=t,
            is_duplicate=False,
            event_type="frame",
            stream="webcam",
            frame_ref=i,
            window_id="League of Legends",
            session_id=name,
            metadata="{}",
        )


def _metadata(
    name: str,
    *,
    seconds: float,
    fps: int,
    size: tuple[int, int],
    n: int,
    period: int,
    padded: int,
    dropped: int,
    audio: bool,
    webcam: bool,
) -> dict[str, Any]:
    """``metadata.json`` with the seed's fields."""
    return {
        "format_version": "1.0.0",
        "session_id": name,
        "fps": fps,
        "dropped_frames": dropped,
        "padded_frames": padded,
        "actual_fps": float(fps),
        "capture_fps": round((n - padded - dropped) / seconds, 2),
        "screen_resolution": list(size),
        "window_id": "League of Legends",
        "webcam_info": {"device": 0, "resolution": [64, 48]} if webcam else None,
        "audio_info": {"sample_rate": 44100, "channels": 2} if audio else None,
        "start_t_ns": START_NS,
        "end_t_ns": START_NS + n * period,
        "duration_s": n * period / 1e9,
        "validation": {},
        "trajectories": [],
        "frame_count": n,
        "status": "complete",
    }


def make_session(
    parent: Path,
    name: str = "session_20261121_183000",
    *,
    seconds: float = 2.0,
    fps: int = 30,
    size: tuple[int, int] = (160, 120),
    pad_every: int = 0,
    dropped: int = 0,
    inputs: int = 40,
    input_kinds: tuple[str, ...] = ("key_press", "key_release", "mouse_move", "mouse_press"),
    audio: bool = False,
    webcam: bool = False,
    seed: int = 7,
    manifest: bool = True,
) -> Path:
    """Write one session directory under ``parent`` and return it."""
    rng = np.random.default_rng(seed)
    d = parent / name
    d.mkdir(parents=True)
    n = int(seconds * fps)
    period = 1_000_000_000 // fps
    events = _EventRows()
    padded = _add_screen_frames(events, name, n, period, pad_every, dropped, rng)
    _add_inputs(events, name, n, period, inputs, size, rng, input_kinds)
    if webcam:
        _add_webcam_frames(events, name, n, period)
    events.write(d / "events.parquet")
    write_video(d / "frames.mp4", n, fps, size)
    if webcam:
        write_video(d / "webcam.mp4", n, fps, (64, 48))
    if audio:
        write_wav(d / "audio.wav", seconds)
    meta = _metadata(
        name,
        seconds=seconds,
        fps=fps,
        size=size,
        n=n,
        period=period,
        padded=padded,
        dropped=dropped,
        audio=audio,
        webcam=webcam,
    )
    (d / "metadata.json").write_text(json.dumps(meta, indent=2))
    if manifest:
        doc = build_manifest(d, "complete")
        (d / "manifest.json").write_text(json.dumps(doc, indent=2))
    return d


def corrupt_byte(path: Path, offset: int = 64) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def pack_u32(value: int) -> bytes:
    return struct.pack("<I", value)
