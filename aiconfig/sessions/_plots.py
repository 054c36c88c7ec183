"""The report's pictures: matplotlib (Agg backend) figures and video thumbnails, as PNG bytes."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

from ._format import row_meta

__all__ = [
    "audio_levels",
    "delay_plot",
    "histogram",
    "input_timeline",
    "mouse_heatmap",
    "thumbnails",
]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _array_png(rgb: Any) -> bytes:
    import matplotlib.image as mpimg

    buf = io.BytesIO()
    mpimg.imsave(buf, rgb, format="png")
    return buf.getvalue()


def decode_frames(video: Path, indices: list[int], fps: float, width: int) -> dict[int, Any]:
    """RGB arrays (``width`` wide) of the frames at PTS ``indices``: one keyframe seek each,
    then decoding forward to the exact PTS (PTS = frame index)."""
    import av

    out: dict[int, Any] = {}
    try:
        container: Any = av.open(str(video))
    except (av.error.FFmpegError, OSError):
        return out
    try:
        stream = container.streams.video[0]
        stream.thread_count = 1
        tb = stream.time_base
        for index in sorted(set(indices)):
            target = round(index / fps / tb) if tb else index
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is None or frame.pts < target:
                        continue
                    h = max(2, round(frame.height * width / max(frame.width, 1)) // 2 * 2)
                    out[index] = frame.reformat(width=width, height=h, format="rgb24").to_ndarray()
                    break
            except (av.error.FFmpegError, OSError):
                break  # a damaged tail: keep what was decoded
    finally:
        container.close()
    return out


def thumbnails(video: Path, frame_count: int, fps: float, n: int = 8) -> list[tuple[int, bytes]]:
    """``(frame index, PNG)`` for ``n`` frames at regular times."""
    if frame_count <= 0:
        return []
    step = max(1, frame_count // n)
    picks = list(range(0, frame_count, step))[:n]
    frames = decode_frames(video, picks, fps, 240)
    return [(i, _array_png(frames[i])) for i in picks if i in frames]


def delay_plot(frames: Any, fps: float) -> bytes:
    """Per-frame capture delay (``t_capture_ns - t_ns``), padded and dropped frames marked."""
    import numpy as np

    plt = _plt()
    idx = frames["frame_ref"].to_numpy(zero_copy_only=False).astype(float)
    delay = (
        frames["t_capture_ns"].to_numpy(zero_copy_only=False).astype(float)
        - frames["t_ns"].to_numpy(zero_copy_only=False).astype(float)
    ) / 1e6
    dup = frames["is_duplicate"].to_numpy(zero_copy_only=False).astype(bool)
    kind = np.array(
        [
            row_meta(m).get("duplicate", "padded") if m else ""
            for m in frames["metadata"].to_pylist()
        ]
    )
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.plot(idx[~dup], delay[~dup], lw=0.8, color="#1f77b4", label="fresh frame")
    for name, color in (("padded", "#ff7f0e"), ("dropped", "#d62728")):
        sel = dup & (kind == name)
        if sel.any():
            ax.scatter(
                idx[sel], delay[sel], s=14, marker="x", color=color, label=f"{name} ({sel.sum()})"
            )
    if fps > 0:
        ax.axhline(1000.0 / fps, color="#999", ls="--", lw=0.8, label="one frame period")
    ax.set_xlabel("frame index")
    ax.set_ylabel("capture delay (ms)")
    ax.set_title("Capture delay per frame (t_capture_ns - t_ns)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def _label(event_type: str, key_code: Any, button: Any, meta: Any) -> str:
    if event_type.startswith("mouse"):
        return f"mouse {button or '?'}"
    return f"key {row_meta(meta).get('key') or key_code}"


def input_timeline(inputs: Any, frame_count: int) -> bytes:
    """Key presses and mouse-button presses against frame index, one lane per key/button."""
    plt = _plt()
    rows = inputs.select(["event_type", "frame_ref", "key_code", "mouse_button", "metadata"])
    lanes: dict[str, list[int]] = {}
    for r in rows.to_pylist():
        if r["event_type"] not in ("key_press", "mouse_press") or r["frame_ref"] is None:
            continue
        label = _label(r["event_type"], r["key_code"], r["mouse_button"], r["metadata"])
        lanes.setdefault(label, []).append(int(r["frame_ref"]))
    names = sorted(lanes, key=lambda k: (not k.startswith("mouse"), k))[:24]
    fig, ax = plt.subplots(figsize=(11, max(2.0, 0.32 * len(names) + 1.2)))
    for y, name in enumerate(names):
        color = "#2ca02c" if name.startswith("mouse") else "#9467bd"
        ax.scatter(lanes[name], [y] * len(lanes[name]), marker="|", s=120, color=color)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlim(0, max(frame_count, 1))
    ax.set_xlabel("frame index")
    ax.set_title(f"Input timeline ({sum(len(v) for v in lanes.values())} presses)")
    ax.grid(axis="x", alpha=0.3)
    if not names:
        ax.text(0.5, 0.5, "no key or button presses", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    return _png(fig)


def mouse_heatmap(inputs: Any, background: Any, size: tuple[int, int]) -> bytes:
    """Where the mouse was (every event with coordinates), over one frame of the video."""
    import numpy as np

    plt = _plt()
    w, h = size
    x = inputs["mouse_x"].to_numpy(zero_copy_only=False).astype(float)
    y = inputs["mouse_y"].to_numpy(zero_copy_only=False).astype(float)
    ok = ~(np.isnan(x) | np.isnan(y))
    fig, ax = plt.subplots(figsize=(8, 8 * h / max(w, 1) + 0.6))
    if background is not None:
        ax.imshow(background, extent=(0, w, h, 0), alpha=0.75)
    if ok.any():
        bins = (max(8, w // 24), max(6, h // 24))
        hist, xe, ye = np.histogram2d(x[ok], y[ok], bins=bins, range=[[0, w], [0, h]])
        masked = np.ma.masked_equal(hist.T, 0)
        mesh = ax.pcolormesh(xe, ye, masked, cmap="inferno", alpha=0.7)
        fig.colorbar(mesh, ax=ax, label="mouse events", fraction=0.04)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_title(f"Mouse position heatmap ({int(ok.sum())} events, window pixels)")
    return _png(fig)


def audio_levels(path: Path, window_s: float = 0.05) -> tuple[bytes | None, dict[str, Any]]:
    """Level (dBFS, RMS per ``window_s``) over time, read in chunks; and a summary."""
    import numpy as np

    plt = _plt()
    try:
        w = wave.open(str(path), "rb")  # noqa: SIM115 - closed by the with block below
    except (OSError, wave.Error, EOFError) as exc:
        return None, {"error": str(exc)}
    with w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        if width != 2 or rate <= 0:
            return None, {"error": f"{width * 8}-bit audio is not plotted"}
        per = max(1, int(rate * window_s))
        levels = []
        while True:
            data = w.readframes(per * 64)
            if not data:
                break
            a = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
            a = a[: len(a) // ch * ch].reshape(-1, ch).mean(axis=1)
            for chunk in np.array_split(a, max(1, len(a) // per)):
                rms = float(np.sqrt(np.mean(chunk**2))) if len(chunk) else 0.0
                levels.append(20 * np.log10(max(rms, 1e-6)))
    t = np.arange(len(levels)) * window_s
    fig, ax = plt.subplots(figsize=(11, 2.6))
    ax.plot(t, levels, lw=0.8, color="#17becf")
    ax.set_ylim(-120, 0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("level (dBFS)")
    ax.set_title("Audio level over time")
    ax.grid(alpha=0.3)
    summary = {
        "sample_rate": rate,
        "channels": ch,
        "duration_s": round(len(levels) * window_s, 2),
        "peak_dbfs": round(max(levels), 1) if levels else None,
        "median_dbfs": round(float(np.median(levels)), 1) if levels else None,
    }
    return _png(fig), summary


def histogram(values: list[float], title: str, xlabel: str) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(values or [0.0], bins=min(30, max(5, len(values))), color="#1f77b4", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("sessions")
    ax.grid(alpha=0.3)
    return _png(fig)
