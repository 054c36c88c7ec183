"""Running aiconfig jobs under an orchestrator (the harness contract).

Public API::

    from aiconfig.harness import RunContext, add_run_arguments
    with RunContext.from_args(args, job="capture", devices=("screen",)) as run:
        run.mark_ready()

One module per concern: :mod:`.settings` (flags and ``AP_*`` variables), :mod:`.context` (the
run lifecycle), :mod:`.budget` (CPU/memory budgets), :mod:`.logs` (JSON logs), :mod:`.ready`
(readiness file), :mod:`.locks` (device locks), :mod:`.plugins` (allowlisted entry-point
plugins), :mod:`.manifest` (run manifest), :mod:`.sessions` and :mod:`.pipeline` (the processing
pipeline over persisted sessions). Offline mode is :mod:`aiconfig._network`, the one network
policy that inference and monitoring share.
"""

from __future__ import annotations

from .._errors import Terminated
from .._network import is_offline, offline, set_offline
from .budget import Budget
from .context import RunContext
from .locks import DEVICES, DeviceLock
from .logs import RunLog
from .manifest import SCHEMA_VERSION, VerifyResult, load_manifest, verify_manifest
from .ready import ReadyState, ready_state
from .settings import RunSettings, add_run_arguments, resolve_settings

__all__ = [
    "DEVICES",
    "SCHEMA_VERSION",
    "Budget",
    "DeviceLock",
    "ReadyState",
    "RunContext",
    "RunLog",
    "RunSettings",
    "Terminated",
    "VerifyResult",
    "add_run_arguments",
    "is_offline",
    "load_manifest",
    "offline",
    "ready_state",
    "resolve_settings",
    "set_offline",
    "verify_manifest",
]
