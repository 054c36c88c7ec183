"""A tiny X11 window for the capture tests (run as a subprocess).

``python testwin.py TITLE X Y W H`` maps a window with that exact title, fills it with colour 0
of :data:`PALETTE`, and moves to the next colour on every key press. It prints ``READY <id>`` once
mapped, then ``PAINT <n> <monotonic_ns>`` after each repaint has reached the X server (XSync),
so a test knows exactly when the picture changed.
"""

from __future__ import annotations

import sys
import time

from Xlib import X, Xatom, display

PALETTE: list[tuple[int, int, int]] = [
    (200, 30, 30),
    (30, 200, 30),
    (30, 30, 200),
    (220, 220, 40),
    (40, 220, 220),
    (220, 40, 220),
    (240, 240, 240),
    (20, 20, 20),
]


def main() -> int:
    title, x, y, w, h = sys.argv[1], *(int(v) for v in sys.argv[2:6])
    d = display.Display()
    screen = d.screen()
    win = screen.root.create_window(
        x,
        y,
        w,
        h,
        0,
        screen.root_depth,
        X.InputOutput,
        X.CopyFromParent,
        background_pixel=screen.black_pixel,
        event_mask=X.ExposureMask | X.KeyPressMask | X.StructureNotifyMask,
        override_redirect=False,
    )
    win.set_wm_name(title)
    win.change_property(
        d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"), 8, title.encode()
    )
    win.change_property(Xatom.WM_NORMAL_HINTS, Xatom.WM_SIZE_HINTS, 32, [3, x, y, w, h] + [0] * 13)
    gc = win.create_gc()
    cmap = screen.default_colormap
    pixels = [cmap.alloc_color(r * 257, g * 257, b * 257).pixel for r, g, b in PALETTE]
    win.map()
    d.sync()
    count = 0

    def paint() -> None:
        gc.change(foreground=pixels[count % len(pixels)])
        win.fill_rectangle(gc, 0, 0, w, h)
        d.sync()
        print(f"PAINT {count} {time.monotonic_ns()}", flush=True)

    print(f"READY {win.id}", flush=True)
    while True:
        event = d.next_event()
        if event.type == X.Expose and event.count == 0:
            paint()
        elif event.type == X.KeyPress:
            count += 1
            paint()
        elif event.type == X.DestroyNotify:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
