"""System 0 capture: screen video, input events, system audio and webcam, frame-synchronised.

Public API (imported lazily, so ``import capture`` stays cheap)::

    from capture import record_session, run_capture, validate_session, recover_session
    result = run_capture(cfg.capture)            # cfg: a loaded aiconfig.AIConfig
    problems = validate_session(result.path)     # [] when valid

``run_capture`` records one session (the phases of :class:`Recording`: open, run, stop,
finalize); ``record_session`` is the capture job, one session recorded as a run of the
orchestrator contract (:mod:`aiconfig.harness`). The CLI is ``python -m capture`` (see
``capture/__main__.py``) and ``aiconfig capture``. Every other module is private.
"""

# No ``from __future__``/``typing`` names at module level: every public attribute is in __all__.
import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # what mypy and IDEs see; at run time __getattr__ does the imports
    from ._events import InputEvent
    from ._job import record_session
    from ._recording import Recording, SessionResult, Status, run_capture
    from ._recover import recover_session
    from ._timeline import FrameRecord
    from ._validate import validate_session

__all__ = [
    "FrameRecord",
    "InputEvent",
    "Recording",
    "SessionResult",
    "Status",
    "record_session",
    "recover_session",
    "run_capture",
    "validate_session",
]

_WHERE: dict[str, str] = {
    "FrameRecord": "_timeline",
    "InputEvent": "_events",
    "Recording": "_recording",
    "SessionResult": "_recording",
    "Status": "_recording",
    "record_session": "_job",
    "recover_session": "_recover",
    "run_capture": "_recording",
    "validate_session": "_validate",
}


def __getattr__(name: str) -> _typing.Any:
    if name in _WHERE:
        value = getattr(_importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value  # resolved once
        return value
    raise AttributeError(f"module 'capture' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
