"""The Windows backend's own cases over the fake OS boundary (tests/capture/platform_fakes.py):
DPI awareness refused, access denied, zero-size and minimised windows, elevation mismatch,
hook times on the recorder's clock, Windows Graphics Capture frames on change, WASAPI
loopback selection and timing."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from aiconfig import CaptureDeviceError
from capture._audio_recorder import pick_monitor
from capture.platforms import AccessDeniedError, Rect, WindowGoneError
from capture.platforms import win32 as w
from capture.platforms.grabbers import WgcGrabber
from capture.platforms.loopback import WasapiLoopback
from tests.capture.platform_fakes import FakeWin32


def test_awareness_already_set_to_system_is_a_screen_failure() -> None:
    api = FakeWin32(awareness_locked=1)  # e.g. a dpiAware manifest on python.exe
    backend = w.Win32Backend(api)
    assert backend.dpi_awareness == 1
    assert backend.screen() == Rect(0, 0, 1920, 1080)  # virtualised: not pixels
    checks = {c.name: c for c in w.permission_checks(None, api)}
    assert checks["dpi-awareness"].status == "fail"
    assert checks["dpi-awareness"].stream == "screen"


def test_per_monitor_awareness_reads_the_scale() -> None:
    api = FakeWin32()
    backend = w.Win32Backend(api)
    hwnd = api.open("League of Legends", (0, 0, 1920, 1080))
    assert backend.scale(hwnd) == 1.5
    assert backend.scale(0xDEAD) is None  # GetDpiForWindow: 0 for an invalid handle
    checks = {c.name: c for c in w.permission_checks(hwnd, api)}
    assert checks["dpi-awareness"].status == "ok"


def test_access_denied_window_is_skipped_and_said() -> None:
    api = FakeWin32()
    denied = api.open("League of Legends", (0, 0, 640, 360), dwm_denied=True)
    backend = w.Win32Backend(api)
    assert backend.find("League of Legends") is None
    with pytest.raises(AccessDeniedError):
        backend.geometry(denied)
    readable = api.open("League of Legends", (10, 10, 640, 360))
    info = backend.find("League of Legends")
    assert info is not None and info.handle == readable


def test_zero_size_and_minimised_windows() -> None:
    api = FakeWin32()
    backend = w.Win32Backend(api)
    flat = api.open("League of Legends", (100, 100, 0, 0))
    assert backend.find("League of Legends") is None
    assert backend.geometry(flat).width == 0
    game = api.open("League of Legends", (100, 100, 800, 600))
    assert backend.find("League of Legends") is not None
    api.windows[game].iconic = True  # DWM parks it at -32000: reported as zero size
    assert backend.geometry(game) == Rect(-32000, -32000, 0, 0)
    assert backend.find("League of Legends") is None


def test_gone_window_and_null_foreground() -> None:
    api = FakeWin32()
    backend = w.Win32Backend(api)
    hwnd = api.open("League of Legends", (0, 0, 640, 360))
    api.foreground = 0  # NULL while activation moves
    assert not backend.has_focus(hwnd)
    api.close(hwnd)
    with pytest.raises(WindowGoneError):
        backend.geometry(hwnd)
    assert api.GetWindowTextW(hwnd) == "" and api.GetLastError() == w.ERROR_INVALID_WINDOW_HANDLE


def test_dwm_failure_on_a_live_window_is_a_device_error() -> None:
    class Odd(FakeWin32):
        def DwmGetWindowAttribute_RECT(
            self, hwnd: int, attribute: int
        ) -> tuple[int, tuple[int, int, int, int]]:
            return 0x80004005, (0, 0, 0, 0)  # E_FAIL (composition off)

    api = Odd()
    hwnd = api.open("League of Legends", (0, 0, 10, 10))
    with pytest.raises(CaptureDeviceError, match="0x80004005"):
        w.Win32Backend(api).geometry(hwnd)


def test_elevated_game_and_plain_recorder_is_detected() -> None:
    api = FakeWin32()
    game = api.open("League of Legends", (0, 0, 640, 360), pid=777)
    api.elevated = {777}
    info = w.elevation(api, game)
    assert info == {"recorder_elevated": False, "target_elevated": True, "mismatch": True}
    check = next(c for c in w.permission_checks(game, api) if c.name == "elevation")
    assert check.status == "fail" and check.stream == "input"
    assert "administrator" in (check.fix or "") and "elevated" in check.detail
    api.elevated = {777, api.me_pid}  # both elevated: the hooks see the game's input
    assert w.elevation(api, game)["mismatch"] is False
    api.elevated = set()
    assert w.elevation(api, game)["mismatch"] is False
    assert w.elevation(api, None)["target_elevated"] is None


def test_hook_time_maps_onto_the_recorder_clock() -> None:
    api = FakeWin32(tick_base_ms=2**32 - 3000)  # the 32-bit tick count wraps in this test
    hooks = w.Win32Input(api)
    assert hooks.keyed  # the callback finds its stamp by key/position, not per thread
    assert "win32_event_filter" in hooks.listener_options()
    assert api.awareness == w.DPI_AWARENESS_PER_MONITOR  # the listener process too
    now = time.monotonic_ns()
    tick = api.GetTickCount()
    # The hook saw the key at this tick; the callback runs 40 ms later on the loop thread.
    t = hooks.stamp(65, tick, now_ns=now)
    assert now - 16_000_000 <= t <= now
    assert hooks.event_time_ns(now + 40_000_000, 65) == t
    # The filter stamps each event; callbacks take their own stamps back, stale ones dropped.
    data = SimpleNamespace(vkCode=66, time=api.GetTickCount())
    assert hooks._filter(0x100, data) is True
    mouse = SimpleNamespace(pt=SimpleNamespace(x=5, y=7), time=api.GetTickCount())
    hooks._filter(0x200, mouse)
    later = time.monotonic_ns() + 10_000_000
    assert hooks.event_time_ns(later, (5, 7)) < later
    assert hooks.event_time_ns(later, 99) == later  # nothing stamped for it: callback time


class _FakeWgc:
    """windows_capture's documented surface: WindowsCapture(...), @capture.event handlers by
    name (on_frame_arrived(frame, control), on_closed()), start_free_threaded() -> control."""

    def __init__(self) -> None:
        self.instances: list[Any] = []
        outer = self

        class WindowsCapture:
            def __init__(self, **kwargs: Any) -> None:
                self.kwargs = kwargs
                self.handlers: dict[str, Any] = {}
                self.stopped = False
                outer.instances.append(self)

            def event(self, fn: Any) -> Any:
                self.handlers[fn.__name__] = fn
                return fn

            def start_free_threaded(self) -> Any:
                cap = self
                return SimpleNamespace(stop=lambda: setattr(cap, "stopped", True))

        self.WindowsCapture = WindowsCapture

    def deliver(self, pixels: Any) -> None:
        self.instances[-1].handlers["on_frame_arrived"](
            SimpleNamespace(frame_buffer=pixels), SimpleNamespace()
        )


def test_wgc_frames_arrive_on_change_only() -> None:
    wgc = _FakeWgc()
    grabber = WgcGrabber(0x10010, module=wgc)
    cap = wgc.instances[0]
    assert cap.kwargs["window_hwnd"] == 0x10010  # the exact-title match, not a substring
    assert "window_name" not in cap.kwargs
    assert cap.kwargs["cursor_capture"] is False
    rect = Rect(0, 0, 4, 2)
    assert grabber.grab(rect) is None  # nothing delivered yet
    frame = np.full((3, 5, 4), 7, dtype=np.uint8)  # bigger than the rect: cropped
    wgc.deliver(frame)
    got = grabber.grab(rect)
    assert got is not None and len(got) == 4 * 2 * 4 and set(bytes(got)) == {7}
    assert grabber.grab(rect) is None  # unchanged since: the timeline repeats it
    wgc.deliver(np.full((1, 2, 4), 9, dtype=np.uint8))  # smaller: zero-padded
    small = np.frombuffer(bytes(grabber.grab(rect) or b""), dtype=np.uint8).reshape(2, 4, 4)
    assert small[0, :2].min() == 9 and small[1].max() == 0
    cap.handlers["on_closed"]()
    with pytest.raises(WindowGoneError):
        grabber.grab(rect)
    grabber.close()
    grabber.close()
    assert cap.stopped


class _FakePyAudio:
    """pyaudiowpatch's documented surface for WASAPI loopback."""

    paWASAPI = 13
    paInt16 = 8
    paContinue = 0
    paInputOverflow = 2

    def __init__(self, rate: float = 48000.0) -> None:
        self.devices = [
            {"index": 0, "name": "Microphone (USB)", "hostApi": 1, "maxInputChannels": 1},
            {"index": 1, "name": "Speakers (Realtek)", "hostApi": 1, "maxInputChannels": 0},
            {
                "index": 2,
                "name": "Speakers (Realtek) [Loopback]",
                "hostApi": 1,
                "maxInputChannels": 2,
                "isLoopbackDevice": True,
                "defaultSampleRate": rate,
            },
            {"index": 3, "name": "MME mic", "hostApi": 0, "maxInputChannels": 1},
        ]
        self.opened: dict[str, Any] = {}
        mod = self

        class PyAudio:
            def get_host_api_info_by_type(self, kind: int) -> dict[str, Any]:
                assert kind == mod.paWASAPI
                return {"index": 1, "defaultOutputDevice": 1}

            def get_device_count(self) -> int:
                return len(mod.devices)

            def get_device_info_by_index(self, i: int) -> dict[str, Any]:
                return mod.devices[i]

            def open(self, **kwargs: Any) -> Any:
                mod.opened = kwargs
                return SimpleNamespace(
                    get_input_latency=lambda: 0.01,
                    start_stream=lambda: None,
                    stop_stream=lambda: None,
                    close=lambda: None,
                )

            def terminate(self) -> None:
                return None

        self.PyAudio = PyAudio


def test_wasapi_records_the_default_outputs_loopback_never_a_mic() -> None:
    loop = WasapiLoopback(_FakePyAudio())
    source, why = pick_monitor(None, loop)
    assert source == "Speakers (Realtek) [Loopback]" and "default output" in why
    with pytest.raises(CaptureDeviceError, match="not a monitor/loopback"):
        pick_monitor("Microphone (USB)", loop)
    with pytest.raises(CaptureDeviceError, match="does not exist"):
        pick_monitor("MME mic", loop)  # another host API: not a WASAPI source


def test_wasapi_block_times_come_from_the_backend() -> None:
    fake = _FakePyAudio()
    loop = WasapiLoopback(fake)
    blocks: list[tuple[int, int | None, bool]] = []
    with pytest.raises(CaptureDeviceError, match="48000"):
        loop.open_stream(
            "Speakers (Realtek) [Loopback]",
            rate=44100,
            channels=2,
            blocksize=480,
            callback=lambda *a: None,
        )
    stream = loop.open_stream(
        "Speakers (Realtek) [Loopback]",
        rate=48000,
        channels=2,
        blocksize=480,
        callback=lambda data, frames, adc, over: blocks.append((frames, adc, over)),
    )
    assert stream.latency == 0.01
    assert fake.opened["input_device_index"] == 2 and fake.opened["input"] is True
    cb = fake.opened["stream_callback"]
    before = time.monotonic_ns()
    # PortAudio's WASAPI times (QPC seconds): captured 12 ms before "now".
    result = cb(b"\0" * 1920, 480, {"current_time": 500.012, "input_buffer_adc_time": 500.0}, 2)
    after = time.monotonic_ns()
    assert result == (None, fake.paContinue)
    frames, adc, overflow = blocks[0]
    assert frames == 480 and overflow is True and adc is not None
    assert before - 12_000_001 <= adc <= after - 11_999_999
    cb(b"\0" * 1920, 480, {"current_time": 0.0, "input_buffer_adc_time": 0.0}, 0)
    assert blocks[1][1] is None  # no figure from the backend: the recorder's fallback
