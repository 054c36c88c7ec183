"""Helpers for the capture tests: test windows, XTEST injection, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@dataclass
class XWindow:
    proc: subprocess.Popen[str]
    handle: int
    rect: tuple[int, int, int, int]
    paints: list[tuple[int, int]] = field(default_factory=list)
    reader: threading.Thread | None = None

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def open_window(title: str, rect: tuple[int, int, int, int]) -> XWindow:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "testwin.py"), title, *(str(v) for v in rect)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line and line[0] == "READY", f"test window failed: {line}"
    win = XWindow(proc, int(line[1]), rect)

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            parts = raw.split()
            if parts and parts[0] == "PAINT":
                win.paints.append((int(parts[1]), int(parts[2])))

    win.reader = threading.Thread(target=read, daemon=True)
    win.reader.start()
    deadline = time.monotonic() + 5
    while not win.paints and time.monotonic() < deadline:
        time.sleep(0.01)
    return win


class Injector:
    """XTEST input on its own connection; every call returns the monotonic time bracket."""

    def __init__(self) -> None:
        from Xlib import display
        from Xlib.ext import xtest

        self.d: Any = display.Display()
        self._xtest = xtest

    def _fake(self, kind: int, detail: int, x: int = 0, y: int = 0) -> tuple[int, int]:
        before = time.monotonic_ns()
        self._xtest.fake_input(self.d, kind, detail, x=x, y=y)
        self.d.sync()
        return before, time.monotonic_ns()

    def keycode(self, keysym_name: str) -> int:
        from Xlib import XK

        return int(self.d.keysym_to_keycode(XK.string_to_keysym(keysym_name)))

    def key_press(self, code: int) -> tuple[int, int]:
        from Xlib import X

        return self._fake(X.KeyPress, code)

    def key_release(self, code: int) -> tuple[int, int]:
        from Xlib import X

        return self._fake(X.KeyRelease, code)

    def move(self, x: int, y: int) -> tuple[int, int]:
        from Xlib import X

        return self._fake(X.MotionNotify, 0, x, y)

    def button(self, number: int, pressed: bool) -> tuple[int, int]:
        from Xlib import X

        return self._fake(X.ButtonPress if pressed else X.ButtonRelease, number)

    def focus(self, handle: int) -> None:
        from Xlib import X

        win = self.d.create_resource_object("window", handle)
        win.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.d.sync()

    def close(self) -> None:
        self.d.close()


def capture_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "capture", *args]


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_recording(
    out: Path, *args: str, output: int = subprocess.PIPE, timeout: float = 20
) -> subprocess.Popen[str]:
    """Start ``python -m capture --out OUT ARGS`` (stdin closed) and return once it records: its
    ``session_*/metadata.json`` exists (written when frame 0's clock starts)."""
    proc = subprocess.Popen(
        capture_cmd("--out", str(out), *args),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        text=True,
        env=run_env(),
    )
    deadline = time.monotonic() + timeout
    while not list(out.glob("session_*/metadata.json")):
        assert time.monotonic() < deadline and proc.poll() is None, "capture did not start"
        time.sleep(0.05)
    return proc


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m capture ARGS`` to completion, output captured, exit code not checked."""
    return subprocess.run(
        capture_cmd(*args), check=False, capture_output=True, text=True, env=run_env()
    )


def record_session(out: Path, display: str, seconds: int = 4) -> Path:
    """A finished ``seconds``-long recording of ``display`` under ``out`` (no game state)."""
    os.environ["DISPLAY"] = display
    proc = run_cli(
        "--allow-any", "--quiet", "--duration", str(seconds), "--no-game-state", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def cut_journal(session: Path, keep: float = 1.0) -> None:
    """``session`` as a killed recorder leaves it: manifest 'recording', the events in a
    journal cut mid-record (about ``keep`` of it kept: 1.0 cuts the last batch only), no
    events.parquet."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(session / "events.parquet")
    journal = session / "events.journal.arrows"
    with pa.OSFile(str(journal), "wb") as sink:
        writer = pa.ipc.new_stream(sink, table.schema)
        for batch in table.to_batches(max_chunksize=40):
            writer.write_batch(batch)
        writer.close()
    data = journal.read_bytes()
    journal.write_bytes(data[: int(len(data) * keep) - 700])
    (session / "events.parquet").unlink()
    manifest = json.loads((session / "manifest.json").read_text())
    manifest["status"] = "recording"
    (session / "manifest.json").write_text(json.dumps(manifest))


def start_xvfb(size: str = "1920x1080x24") -> tuple[subprocess.Popen[bytes], str]:
    """A private Xvfb; the server picks a free display number (-displayfd)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start (is the xvfb package installed?)")
    return proc, f":{number}"
