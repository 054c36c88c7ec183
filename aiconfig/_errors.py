"""Exceptions raised by aiconfig.

Every error is an :class:`AiconfigError`. The tree has three branches, following python-tuf's
split between untrustworthy content and transport, and :class:`UsageError` for command lines::

    AiconfigError
    ├── ContentError                 the bytes are not a valid config
    │   ├── ConfigParseError         not well-formed or hostile YAML (tags, bombs, duplicates)
    │   ├── InterpolationError       ${oc.env:...} could not be resolved
    │   ├── ConfigValidationError    the values do not fit the schema
    │   ├── ForkError                a fork file is stale, touches locked paths, or is malformed
    │   ├── RunSettingError          a run flag or AP_* variable has an invalid value
    │   ├── ManifestError            a run manifest is malformed or does not match its files
    │   └── SessionError             a persisted capture session is incomplete or inconsistent
    ├── TrustError                   the config is not trusted to run
    │   ├── UnsignedConfigError      no signature at all
    │   ├── SignatureFormatError     truncated or garbage signature file
    │   ├── BadSignatureError        signature does not match the bytes
    │   ├── UntrustedKeyError        signed by a key not in allowed_signers
    │   ├── RevokedKeyError          signed by a revoked key
    │   ├── KeyValidityError         key used outside valid-after/valid-before
    │   ├── NamespaceError           signature made for another namespace (e.g. git)
    │   ├── ThresholdError           fewer distinct reviewers than the policy asks
    │   ├── RollbackError            meta.version lower than one already accepted
    │   ├── ExpiredConfigError       meta.expires is in the past
    │   ├── EmergencyOverrideError   an emergency override is unsigned, foreign, stale or unlisted
    │   └── PluginRefusedError       a plugin is not allowlisted, not pinned, or its hash differs
    ├── ResourceError                the outside world failed
    │   ├── ConfigFileError          a file cannot be read or written
    │   ├── CaptureDeviceError       a capture device is missing or refused
    │   │   ├── DeviceLockedError    another run holds the device's lock file
    │   │   └── StreamFailedError    a requested stream failed during a --strict capture (exit 3)
    │   ├── InferenceServerError     the inference server is down or misconfigured
    │   ├── NetworkDeniedError       offline mode (--no-network) refused a connection
    │   ├── BudgetError              the job cannot fit in AP_CPU_LIMIT / AP_MEM_LIMIT_MB
    │   ├── RunStateError            the run's own files (ready file, output dir) are in the way
    │   └── TrackingError            the experiment tracker (MLflow) refused or is unreachable
    └── UsageError                   flags that contradict each other or the config (exit 2)

:class:`Terminated` stands outside the tree (a ``SystemExit`` with code 143, so a
``BaseException`` like ``KeyboardInterrupt``): a run raises it in its main thread on SIGTERM so
that ``with`` blocks unwind and clean up, and the process then exits 143 without a traceback.

Each error carries one or more :class:`Problem` records; ``str(error)`` renders one line per
problem, naming the file, line, key path and what to do. Secret values are never part of a
message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AiconfigError",
    "BadSignatureError",
    "BudgetError",
    "CaptureDeviceError",
    "ConfigFileError",
    "ConfigParseError",
    "ConfigValidationError",
    "ContentError",
    "DeviceLockedError",
    "EmergencyOverrideError",
    "ExpiredConfigError",
    "ForkError",
    "InferenceServerError",
    "InterpolationError",
    "KeyValidityError",
    "ManifestError",
    "NamespaceError",
    "NetworkDeniedError",
    "PluginRefusedError",
    "Problem",
    "ResourceError",
    "RevokedKeyError",
    "RollbackError",
    "RunSettingError",
    "RunStateError",
    "SessionError",
    "SignatureFormatError",
    "StreamFailedError",
    "Terminated",
    "ThresholdError",
    "TrackingError",
    "TrustError",
    "UnsignedConfigError",
    "UntrustedKeyError",
    "UsageError",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one place in one file."""

    message: str
    file: str | None = None
    line: int | None = None
    path: str | None = None
    expected: str | None = None
    got: str | None = None
    source: str | None = None
    hint: str | None = None

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        head = ": ".join(p for p in (where, self.path) if p)
        text = f"{head}: {self.message}" if head else self.message
        details = []
        if self.expected is not None:
            details.append(f"expected {self.expected}")
        if self.got is not None:
            details.append(f"got {self.got}")
        if self.source is not None:
            details.append(f"from {self.source}")
        if details:
            text += f" ({', '.join(details)})"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class AiconfigError(Exception):
    """Root of every error aiconfig raises."""

    problems: list[Problem]
    exit_code: int = 1  # the CLI's exit status for this error (a handled error: 1)

    def __init__(self, message: str | Problem | list[Problem], **where: Any) -> None:
        if isinstance(message, list):
            problems = message
        elif isinstance(message, Problem):
            problems = [message]
        else:
            problems = [Problem(message, **where)]
        self.problems = problems
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "problems": [p.to_dict() for p in self.problems]}


class ContentError(AiconfigError):
    """The bytes do not form a valid config."""


class ConfigParseError(ContentError):
    """The file is not well-formed YAML, or uses a construct the hardened profile refuses."""


class InterpolationError(ContentError):
    """An ``${oc.env:...}`` interpolation could not be resolved."""


class ConfigValidationError(ContentError):
    """Values do not fit the schema."""


class ForkError(ContentError):
    """A fork file is stale, overrides a locked path, or is malformed."""


class TrustError(AiconfigError):
    """The config is not trusted to run."""


class UnsignedConfigError(TrustError):
    """No signature exists for the config."""


class SignatureFormatError(TrustError):
    """A signature file is truncated, garbage, or not SSHSIG."""


class BadSignatureError(TrustError):
    """A signature does not match the file bytes (tampered file or swapped signature)."""


class UntrustedKeyError(TrustError):
    """The signing key is not listed in allowed_signers."""


class RevokedKeyError(TrustError):
    """The signing key has been revoked."""


class KeyValidityError(TrustError):
    """The signing key is used outside its valid-after/valid-before window."""


class NamespaceError(TrustError):
    """The signature was made for another namespace."""


class ThresholdError(TrustError):
    """Fewer distinct trusted principals signed than the policy requires."""


class RollbackError(TrustError):
    """``meta.version`` is lower than a version already accepted for this config name."""


class ExpiredConfigError(TrustError):
    """``meta.expires`` is in the past."""


class EmergencyOverrideError(TrustError):
    """An emergency override is refused: not signed by an on-call principal, made for another
    version of its config, too long-lived, or changing a path the config does not list."""


class ResourceError(AiconfigError):
    """Something outside the config failed: files, devices, servers."""


class ConfigFileError(ResourceError):
    """A file cannot be read or written."""


class CaptureDeviceError(ResourceError):
    """A capture device is missing, busy or refused."""


class InferenceServerError(ResourceError):
    """The inference server is down, loading, or does not serve the configured model."""


class RunSettingError(ContentError):
    """A run flag or ``AP_*`` variable has an invalid value (refused before any work)."""


class ManifestError(ContentError):
    """A run manifest is malformed, or its artifacts do not match the files on disk."""


class SessionError(ContentError):
    """A persisted capture session is incomplete or inconsistent with its own metadata."""


class PluginRefusedError(TrustError):
    """A plugin is not allowlisted, not pinned in the plugin lock, or its files changed."""


class DeviceLockedError(CaptureDeviceError):
    """Another run holds the lock file of a capture device."""


class StreamFailedError(CaptureDeviceError):
    """``--strict``: a requested capture stream (audio, webcam, input...) failed. The session
    was still recorded and kept (each stream degrades alone); the exit status is 3."""

    exit_code = 3


class NetworkDeniedError(ResourceError):
    """Offline mode (``--no-network`` / ``AP_NO_NETWORK=1``) refused a non-loopback connection."""


class BudgetError(ResourceError):
    """The job cannot fit in its ``AP_CPU_LIMIT`` / ``AP_MEM_LIMIT_MB`` budget."""


class RunStateError(ResourceError):
    """The run's own files are in the way: a live ready file, an unwritable output directory."""


class TrackingError(ResourceError):
    """The experiment tracker (MLflow) is unreachable or refused what was logged."""


class UsageError(AiconfigError):
    """A command line contradicts itself or the config (a flag the config's backend cannot use).

    Outside the three branches: the CLI exits 2 for it, as for any usage error, with the one
    line hint the problem carries.
    """


class Terminated(SystemExit):
    """Raised in a run's main thread on SIGTERM, so ``with`` blocks unwind and clean up.

    A :class:`SystemExit` with code ``128 + signum`` (143): a job that does not catch it ends
    exactly as the CLI does, with status 143 and no traceback, its manifest saying
    ``interrupted``. ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"terminated by signal {self.signum}"
