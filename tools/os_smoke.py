"""A short desktop recording on the machine it runs on, through the real platform backend.

``python tools/os_smoke.py OUT_DIR`` opens a Tk window titled "League of Legends" (640x360),
checks that this platform's backend finds it by exact title with a plausible pixel size, prints
``python -m capture doctor``, records 3 s of it (no input hooks: a CI runner has no player), and
validates the session. Run by .github/workflows/capture-os.yml on windows-latest and
macos-latest; on Linux it needs an X display.

Exit 0 when the recording is valid; 1 with the reason otherwise. When macOS withholds window
titles (no Screen Recording permission on the runner), the primary monitor is recorded instead
(``--allow-any``) and the script says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tkinter as tk
from pathlib import Path

TITLE = "League of Legends"


def _capture(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capture", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "os-smoke")
    root = tk.Tk()
    root.title(TITLE)
    root.geometry("640x360+100+100")
    root.configure(background="#c81e1e")
    root.update()
    time.sleep(1.0)
    root.update()

    from capture.platforms import open_backend, platform_name

    backend = open_backend()
    info = backend.find(TITLE)
    backend.close()
    print(f"backend {platform_name()}: find({TITLE!r}) -> {info}")
    doctor = _capture("doctor", "--no-input", "--out", str(out))
    print(doctor.stdout + doctor.stderr)
    args = ["--duration", "3", "--no-input", "--quiet", "--no-game-state", "--out", str(out)]
    if info is None:
        if platform_name() == "darwin" and "fail  screen-recording" in doctor.stdout:
            print("Screen Recording is not granted on this machine: recording the screen instead")
            args.append("--allow-any")
        else:
            print(f"error: the {platform_name()} backend did not find the window {TITLE!r}")
            return 1
    elif not (600 <= info.rect.width <= 2 * 640 + 64 and 300 <= info.rect.height <= 2 * 360 + 64):
        print(f"error: implausible pixel size {info.rect}")
        return 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "capture", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        root.update()  # keep the window painting while it is recorded
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=30)
    root.destroy()
    print(stderr)
    if proc.returncode != 0:
        print(f"error: recording exited {proc.returncode}")
        return 1
    session = Path(stdout.strip().splitlines()[-1])
    meta = json.loads((session / "metadata.json").read_text())
    print(json.dumps({k: meta.get(k) for k in ("platform", "frame_count", "streams")}, indent=2))
    check = _capture("validate", str(session))
    print(check.stdout + check.stderr)
    return check.returncode


if __name__ == "__main__":
    raise SystemExit(main())
