"""aiconfig: signed, typed, forkable, diffable experiment configs.

Public API (everything else is private)::

    from aiconfig import load, AIConfig, Provenance
    cfg = load("experiments/baseline.yaml")       # verify -> parse -> interpolate -> validate
    cfg.training.lr                                # typed, immutable
    cfg.provenance.sha256                          # what was loaded, from where, signed by whom
    exp = fork_for_experiment(cfg, "try-lr", {"training.lr": 1e-3})   # new validated config
"""

from __future__ import annotations

from ._tracking import flatten, log_to_mlflow
from .errors import (
    AiconfigError,
    BadSignatureError,
    CaptureDeviceError,
    ConfigFileError,
    ConfigParseError,
    ConfigValidationError,
    ContentError,
    ExpiredConfigError,
    ForkError,
    InferenceServerError,
    InterpolationError,
    KeyValidityError,
    NamespaceError,
    Problem,
    ResourceError,
    RevokedKeyError,
    RollbackError,
    SignatureFormatError,
    ThresholdError,
    TrustError,
    UnsignedConfigError,
    UntrustedKeyError,
)
from .fork import fork_for_experiment
from .schema import (
    AIConfig,
    CaptureConfig,
    InferenceConfig,
    MetaConfig,
    ModelConfig,
    MonitoringConfig,
    TrainingConfig,
)

__version__ = "0.1.0"

__all__ = [
    "AIConfig",
    "AiconfigError",
    "BadSignatureError",
    "CaptureConfig",
    "CaptureDeviceError",
    "ConfigFileError",
    "ConfigParseError",
    "ConfigValidationError",
    "ContentError",
    "ExpiredConfigError",
    "ForkError",
    "InferenceConfig",
    "InferenceServerError",
    "InterpolationError",
    "KeyValidityError",
    "MetaConfig",
    "ModelConfig",
    "MonitoringConfig",
    "NamespaceError",
    "Problem",
    "ResourceError",
    "RevokedKeyError",
    "RollbackError",
    "SignatureFormatError",
    "ThresholdError",
    "TrainingConfig",
    "TrustError",
    "UnsignedConfigError",
    "UntrustedKeyError",
    "__version__",
    "flatten",
    "fork_for_experiment",
    "log_to_mlflow",
]
