"""The HTML report, looked at in a real browser: headless Chromium renders it to a PNG, every
plot decoded and drawn, and the pixels where each plot sits are not blank."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aiconfig.sessions._report import render_session

from .conftest import Recorded, session_dirs
from .reads import count_event_reads
from .test_catalog import cli

pytestmark = [pytest.mark.x11, pytest.mark.audio, pytest.mark.slow]

WIDTH, HEIGHT = 1280, 7000


def _chromium(page: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed (scripts/setup.sh installs it)"
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}",
         f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=5000", *mode,
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HOME": str(tmp)},
    )  # fmt: skip


def _figures(dom: str) -> dict[str, tuple[str, tuple[int, int, int, int]]]:
    found = {}
    for tag in re.findall(r"<img[^>]*data-figure[^>]*>", dom):
        name = re.search(r'data-figure="([^"]+)"', tag)
        rendered = re.search(r'data-rendered="([^"]+)"', tag)
        rect = re.search(r'data-rect="([^"]+)"', tag)
        assert name and rendered and rect, tag[:200]
        x, y, w, h = (int(v) for v in rect.group(1).split(","))
        found[name.group(1)] = (rendered.group(1), (x, y, w, h))
    return found


def _look(page: Path, tmp: Path) -> dict[str, tuple[str, tuple[int, int, int, int]]]:
    """Render ``page``; assert every figure decoded and its pixels are not blank."""
    dom = _chromium(page, tmp, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="yes"' in dom.stdout  # the page's load handler ran
    figures = _figures(dom.stdout)
    png = tmp / "shot.png"
    shot = _chromium(page, tmp, f"--screenshot={png}")
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    thumbs = []
    for name, (rendered, (x, y, w, h)) in figures.items():
        assert rendered == "yes", f"{name} did not decode in the browser"
        assert w > 50 and h > 40 and y + h <= HEIGHT, (name, (x, y, w, h))
        crop = pixels[y : y + h, x : x + w].reshape(-1, 3)
        if name.startswith("thumb-"):
            # A frame of the stand-in window: one solid palette colour, never the page's white.
            assert np.abs(crop - 255).max() > 100, f"{name} is blank"
            thumbs.append(tuple(np.median(crop, axis=0).astype(int)))
            continue
        colours = len(np.unique(crop, axis=0))
        assert crop.std() > 8 and colours > 30, f"{name} looks blank ({colours} colours)"
    if thumbs:  # the window changes colour on every key press: the strip shows that
        assert len(set(thumbs)) > 2, thumbs
    return figures


def _self_contained(text: str) -> None:
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)
    assert "<link" not in text


def test_session_report_in_chromium(recorded: Recorded, tmp_path: Path) -> None:
    played = session_dirs(recorded.root / "played")[0]
    out = tmp_path / "played.html"
    res = cli("report", str(played), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    text = out.read_text()
    _self_contained(text)
    figures = _look(out, tmp_path)
    assert {"delay", "inputs", "heatmap", "audio"} <= set(figures)
    assert sum(1 for n in figures if n.startswith("thumb-")) == 8
    for words in ("valid", "capture delay", "Streams", "Provenance", "audio", "complete"):
        assert words.lower() in text.lower()


def test_root_report_in_chromium(recorded: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "root.html"
    res = cli("report", str(recorded.root), "-o", str(out))
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    _self_contained(text)
    figures = _look(out, tmp_path)
    assert set(figures) == {"hist-fps", "hist-padded", "hist-duration"}
    for session in session_dirs(recorded.root):
        assert session.name in text


def test_report_of_a_broken_session_is_written_not_a_traceback(
    recorded: Recorded, tmp_path: Path
) -> None:
    killed = tmp_path / "killed"
    shutil.copytree(recorded.killed, killed)
    res = cli("report", str(killed), "-o", str(tmp_path / "k.html"))
    assert res.returncode == 0, res.stderr
    assert "INVALID" in (tmp_path / "k.html").read_text()
    missing = cli("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_a_session_report_reads_its_events_once(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validator, the capture-delay plot, the input timeline and the heatmap all use the
    one table the report reads."""
    sessions = session_dirs(recorded.root)
    reads = count_event_reads(monkeypatch)
    for session in sessions:
        text = render_session(session)
        assert "Capture delay" in text and "Input timeline" in text and "valid &middot;" in text
    assert reads == {s.resolve(): 1 for s in sessions}
