"""Stopping input logging does not wait for the next X event: pynput's X11 listeners exit as
soon as they are stopped (they used to block until an event arrived, which cost every stop two
2 s join timeouts). No event is injected here, as at the end of a quiet recording."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.x11


def test_stopped_listeners_exit_without_another_x_event(xvfb: str) -> None:
    from pynput import keyboard, mouse

    from capture.platforms.x11 import X11Input

    listeners = [
        X11Input().wrap(keyboard.Listener)(on_press=lambda key: None),
        X11Input().wrap(mouse.Listener)(on_move=lambda x, y: None),
    ]
    for listener in listeners:
        listener.start()
    for listener in listeners:
        listener.wait()
    time.sleep(0.5)  # listening, idle: the end of a recording with no input at the end
    for listener in listeners:
        listener.stop()
    for listener in listeners:
        listener.join(timeout=5)  # generous: the point is that it returns by itself
        assert not listener.is_alive()
