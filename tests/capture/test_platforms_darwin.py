"""The macOS backend's own cases over fake pyobjc modules (tests/capture/platform_fakes.py):
Screen Recording / Input Monitoring refused, CGEvent timestamps on the recorder's clock,
ScreenCaptureKit frames on change and its refusals, loopback drivers vs microphones."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from aiconfig import CaptureDeviceError
from capture._audio_recorder import pick_monitor
from capture.platforms import AccessDeniedError, Rect, WindowGoneError
from capture.platforms import darwin as d
from capture.platforms.darwin import sck_available
from capture.platforms.loopback import CoreAudioLoopback
from capture.platforms.sck import SckGrabber
from tests.capture.platform_fakes import FakeAppKit, FakeQuartz


def test_without_screen_recording_titles_are_hidden_and_doctor_says_so() -> None:
    q = FakeQuartz()
    q.open("League of Legends", (0, 0, 1280, 720))
    q.screen_recording = False
    backend = d.DarwinBackend(q, FakeAppKit())
    assert backend.find("League of Legends") is None  # kCGWindowName withheld
    checks = {c.name: c for c in d.permission_checks(None, {"Quartz": q}, "14.5")}
    rec = checks["screen-recording"]
    assert rec.status == "fail" and rec.stream == "screen"
    assert "Privacy & Security > Screen Recording" in (rec.fix or "")
    assert checks["screencapturekit"].status == "warn"  # no SCK module: mss fallback said
    q.screen_recording = True
    assert backend.find("League of Legends") is not None


def test_input_monitoring_and_accessibility_refused() -> None:
    q = FakeQuartz()
    q.listen_access = False
    hiservices = SimpleNamespace(AXIsProcessTrusted=lambda: False)
    mods = {"Quartz": q, "ApplicationServices": hiservices, "ScreenCaptureKit": object()}
    checks = {c.name: c for c in d.permission_checks(None, mods, "14.5")}
    assert checks["input-monitoring"].status == "fail"
    assert checks["input-monitoring"].stream == "input"
    assert checks["accessibility"].status == "fail"
    assert checks["screencapturekit"].status == "ok"
    none = d.permission_checks(None, {}, "14.5")
    assert none[0].name == "pyobjc" and none[0].status == "fail"


def test_owner_must_match_when_asked_and_off_screen_is_zero_size() -> None:
    q = FakeQuartz()
    wid = q.open("League of Legends", (200, 100, 1280, 720))
    assert d.DarwinBackend(q, FakeAppKit(), owner="Safari").find("League of Legends") is None
    backend = d.DarwinBackend(q, FakeAppKit(), owner="League of Legends")
    assert backend.find("League of Legends") is not None
    q.find(wid)[q.kCGWindowIsOnscreen] = False  # minimised: still listed with IncludingWindow
    assert backend.geometry(wid) == Rect(200, 100, 0, 0)
    assert backend.scale(wid) == 2.0


def test_cg_event_timestamps_map_onto_the_recorder_clock() -> None:
    q = FakeQuartz()
    hooks = d.DarwinInput(q, numer_denom=(125, 3))  # Apple silicon: 41.67 ns per tick
    assert "darwin_intercept" in hooks.listener_options()
    now = time.monotonic_ns()
    event = SimpleNamespace(timestamp=(now - 2_000_000) * 3 // 125)  # 2 ms ago, in ticks
    assert hooks._intercept(1, event) is event  # passed on unchanged
    t = hooks.event_time_ns(now)
    assert now - 2_000_100 <= t <= now - 1_999_900
    assert hooks.event_time_ns(now, 5) == now  # a timestamp from another clock: ignored
    assert hooks.to_pixels(100.0, 50.5) == (200.0, 101.0)  # points -> Retina pixels


class _FakeSck:
    """ScreenCaptureKit / CoreMedia / CoreVideo as pyobjc exposes them."""

    SCStreamOutputTypeScreen = 0

    def __init__(self, windows: list[int], refuse: str | None = None) -> None:
        self.windows = windows
        self.refuse = refuse
        self.config: dict[str, Any] = {}
        self.stopped = False
        self.output: Any = None
        outer = self

        class Content:
            def windows(self) -> list[Any]:
                return [SimpleNamespace(windowID=lambda i=i: i) for i in outer.windows]

        class SCShareableContent:
            @staticmethod
            def getShareableContentWithCompletionHandler_(handler: Any) -> None:
                if outer.refuse:
                    handler(None, outer.refuse)
                else:
                    handler(Content(), None)

        class Config:
            def __getattr__(self, name: str) -> Any:
                return lambda value: outer.config.__setitem__(name, value)

        class Stream:
            def addStreamOutput_type_sampleHandlerQueue_error_(
                self, output: Any, kind: int, queue: Any, error: Any
            ) -> tuple[bool, Any]:
                outer.output = output
                return True, None

            def startCaptureWithCompletionHandler_(self, handler: Any) -> None:
                handler(None)

            def stopCaptureWithCompletionHandler_(self, handler: Any) -> None:
                outer.stopped = True

        def alloc(cls: Any) -> Any:
            return SimpleNamespace(
                init=cls,
                initWithDesktopIndependentWindow_=lambda window: ("filter", window),
                initWithFilter_configuration_delegate_=lambda f, c, dlg: Stream(),
            )

        self.SCShareableContent = SCShareableContent
        self.SCContentFilter = SimpleNamespace(alloc=lambda: alloc(object))
        self.SCStreamConfiguration = SimpleNamespace(alloc=lambda: alloc(Config))
        self.SCStream = SimpleNamespace(alloc=lambda: alloc(object))

    # CoreMedia
    def CMTimeMake(self, value: int, scale: int) -> tuple[int, int]:
        return (value, scale)

    def CMSampleBufferGetImageBuffer(self, sample: Any) -> Any:
        return sample.get("pixels")

    # CoreVideo (through Quartz)
    def CVPixelBufferLockBaseAddress(self, buf: Any, flags: int) -> int:
        assert flags == 1
        return 0

    def CVPixelBufferUnlockBaseAddress(self, buf: Any, flags: int) -> int:
        return 0

    def CVPixelBufferGetHeight(self, buf: Any) -> int:
        return int(buf.shape[0])

    def CVPixelBufferGetWidth(self, buf: Any) -> int:
        return int(buf.shape[1])

    def CVPixelBufferGetBytesPerRow(self, buf: Any) -> int:
        return int(buf.shape[1] * 4 + 16)  # rows are padded, as CoreVideo aligns them

    def CVPixelBufferGetBaseAddress(self, buf: Any) -> Any:
        padded = np.zeros((buf.shape[0], buf.shape[1] * 4 + 16), dtype=np.uint8)
        padded[:, : buf.shape[1] * 4] = buf.reshape(buf.shape[0], -1)
        return SimpleNamespace(as_buffer=lambda n: padded.tobytes()[:n])


def _grabber(fake: _FakeSck, handle: int = 7) -> SckGrabber:
    return SckGrabber(
        handle,
        Rect(0, 0, 4, 2),
        fps=60,
        modules={"ScreenCaptureKit": fake, "CoreMedia": fake, "Quartz": fake},
        make_output=lambda handler: SimpleNamespace(handler=handler),
    )


def test_sck_frames_on_change_in_pixels() -> None:
    fake = _FakeSck([3, 7])
    grabber = _grabber(fake)
    assert fake.config["setWidth_"] == 4 and fake.config["setPixelFormat_"] == 0x42475241
    assert fake.config["setMinimumFrameInterval_"] == (1, 60)
    assert grabber.grab(Rect(0, 0, 4, 2)) is None
    fake.output.handler({"pixels": None}, 0)  # idle frame: no image buffer
    assert grabber.grab(Rect(0, 0, 4, 2)) is None
    fake.output.handler({"pixels": np.full((2, 4, 4), 5, dtype=np.uint8)}, 0)
    got = grabber.grab(Rect(0, 0, 4, 2))
    assert got is not None and bytes(got) == bytes([5]) * 32  # row padding removed
    assert grabber.grab(Rect(0, 0, 4, 2)) is None
    grabber.close()
    assert fake.stopped


def test_sck_refusals() -> None:
    with pytest.raises(AccessDeniedError, match="declined"):
        _grabber(_FakeSck([7], refuse="The user declined TCCs"))
    with pytest.raises(WindowGoneError):
        _grabber(_FakeSck([3]))
    assert not sck_available("12.2") and not sck_available("garbage")


def test_loopback_drivers_only() -> None:
    devices = [
        {"name": "MacBook Pro Microphone", "max_input_channels": 1},
        {"name": "BlackHole 2ch", "max_input_channels": 2},
        {"name": "MacBook Pro Speakers", "max_input_channels": 0},
    ]
    loop = CoreAudioLoopback(SimpleNamespace(query_devices=lambda: devices))
    assert pick_monitor(None, loop) == (
        "BlackHole 2ch",
        "first monitor/loopback source (no default output's)",
    )
    with pytest.raises(CaptureDeviceError, match="never records a microphone"):
        pick_monitor("MacBook Pro Microphone", loop)
    empty = CoreAudioLoopback(SimpleNamespace(query_devices=lambda: devices[:1]))
    with pytest.raises(CaptureDeviceError, match="BlackHole"):
        pick_monitor(None, empty)
