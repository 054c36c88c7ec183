"""aiconfig: signed, typed, forkable, diffable experiment configs.

Public API (everything else is private)::

    from aiconfig import load, fork_for_experiment, diff_configs
    cfg = load("experiments/baseline.yaml")       # verify -> parse -> interpolate -> validate
    cfg.training.lr                                # typed, immutable
    cfg.provenance.sha256                          # what was loaded, from where, signed by whom
    exp = fork_for_experiment(cfg, "try-lr", {"training.lr": 1e-3})   # new validated config

Names are resolved lazily (PEP 562): ``import aiconfig`` imports neither pydantic nor PyYAML;
the first use of a name imports the private module that defines it. The implementation lives
in private modules (``aiconfig._loader``, ``aiconfig._schema``, ...) whose layout may change;
import from here.
"""

# No ``from __future__``/``typing`` names at module level: every public attribute is in __all__.
import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

# name -> private module that defines it. The single table the facade, ``__all__`` and
# ``dir(aiconfig)`` are built from.
_WHERE: dict[str, str] = {
    # loading
    "load": "_loader",
    "Limits": "_yamlsafe",
    "KeyPath": "_keypath",
    # the typed config hierarchy
    "AIConfig": "_schema",
    "AlertConfig": "_schema",
    "AudioConfig": "_schema",
    "CaptureConfig": "_schema",
    "DatasetConfig": "_schema",
    "InferenceConfig": "_schema",
    "GameStateConfig": "_schema",
    "InputConfig": "_schema",
    "MetaConfig": "_schema",
    "ModelConfig": "_schema",
    "MonitoringConfig": "_schema",
    "OptimizerConfig": "_schema",
    "TrainingConfig": "_schema",
    "VLLMConfig": "_schema",
    "WebcamConfig": "_schema",
    # where a config came from
    "Provenance": "_provenance",
    "Signer": "_provenance",
    # forks and diffs
    "fork_for_experiment": "_fork",
    "Change": "_diff",
    "ConfigDiff": "_diff",
    "diff_configs": "_diff",
    "diff_files": "_diff",
    # experiment trackers (MLflow is imported only inside log_to_mlflow)
    "TrackedRun": "_tracking",
    "flatten": "_tracking",
    "log_to_mlflow": "_tracking",
    # the error tree (drawn in aiconfig/_errors.py)
    "AiconfigError": "_errors",
    "BadSignatureError": "_errors",
    "BudgetError": "_errors",
    "CaptureDeviceError": "_errors",
    "ConfigFileError": "_errors",
    "ConfigParseError": "_errors",
    "ConfigValidationError": "_errors",
    "ContentError": "_errors",
    "DeviceLockedError": "_errors",
    "EmergencyOverrideError": "_errors",
    "EmergencyOverrideWarning": "_emergency",
    "ExpiredConfigError": "_errors",
    "ForkError": "_errors",
    "InferenceServerError": "_errors",
    "InterpolationError": "_errors",
    "KeyValidityError": "_errors",
    "ManifestError": "_errors",
    "NamespaceError": "_errors",
    "NetworkDeniedError": "_errors",
    "PluginRefusedError": "_errors",
    "Problem": "_errors",
    "ResourceError": "_errors",
    "RevokedKeyError": "_errors",
    "RollbackError": "_errors",
    "RunSettingError": "_errors",
    "RunStateError": "_errors",
    "SessionError": "_errors",
    "SignatureFormatError": "_errors",
    "StreamFailedError": "_errors",
    "Terminated": "_errors",
    "ThresholdError": "_errors",
    "TrackingError": "_errors",
    "TrustError": "_errors",
    "UnsignedConfigError": "_errors",
    "UntrustedKeyError": "_errors",
    "UsageError": "_errors",
}

__all__ = [
    "AIConfig",
    "AiconfigError",
    "AlertConfig",
    "AudioConfig",
    "BadSignatureError",
    "BudgetError",
    "CaptureConfig",
    "CaptureDeviceError",
    "Change",
    "ConfigDiff",
    "ConfigFileError",
    "ConfigParseError",
    "ConfigValidationError",
    "ContentError",
    "DatasetConfig",
    "DeviceLockedError",
    "EmergencyOverrideError",
    "EmergencyOverrideWarning",
    "ExpiredConfigError",
    "ForkError",
    "GameStateConfig",
    "InferenceConfig",
    "InferenceServerError",
    "InputConfig",
    "InterpolationError",
    "KeyPath",
    "KeyValidityError",
    "Limits",
    "ManifestError",
    "MetaConfig",
    "ModelConfig",
    "MonitoringConfig",
    "NamespaceError",
    "NetworkDeniedError",
    "OptimizerConfig",
    "PluginRefusedError",
    "Problem",
    "Provenance",
    "ResourceError",
    "RevokedKeyError",
    "RollbackError",
    "RunSettingError",
    "RunStateError",
    "SessionError",
    "SignatureFormatError",
    "Signer",
    "StreamFailedError",
    "Terminated",
    "ThresholdError",
    "TrackedRun",
    "TrackingError",
    "TrainingConfig",
    "TrustError",
    "UnsignedConfigError",
    "UntrustedKeyError",
    "UsageError",
    "VLLMConfig",
    "WebcamConfig",
    "__version__",
    "diff_configs",
    "diff_files",
    "flatten",
    "fork_for_experiment",
    "load",
    "log_to_mlflow",
]

if _typing.TYPE_CHECKING:  # what mypy and IDEs see; at run time __getattr__ below does the imports
    from ._diff import Change, ConfigDiff, diff_configs, diff_files
    from ._emergency import EmergencyOverrideWarning
    from ._errors import (
        AiconfigError,
        BadSignatureError,
        BudgetError,
        CaptureDeviceError,
        ConfigFileError,
        ConfigParseError,
        ConfigValidationError,
        ContentError,
        DeviceLockedError,
        EmergencyOverrideError,
        ExpiredConfigError,
        ForkError,
        InferenceServerError,
        InterpolationError,
        KeyValidityError,
        ManifestError,
        NamespaceError,
        NetworkDeniedError,
        PluginRefusedError,
        Problem,
        ResourceError,
        RevokedKeyError,
        RollbackError,
        RunSettingError,
        RunStateError,
        SessionError,
        SignatureFormatError,
        StreamFailedError,
        Terminated,
        ThresholdError,
        TrackingError,
        TrustError,
        UnsignedConfigError,
        UntrustedKeyError,
        UsageError,
    )
    from ._fork import fork_for_experiment
    from ._keypath import KeyPath
    from ._loader import load
    from ._provenance import Provenance, Signer
    from ._schema import (
        AIConfig,
        AlertConfig,
        AudioConfig,
        CaptureConfig,
        DatasetConfig,
        GameStateConfig,
        InferenceConfig,
        InputConfig,
        MetaConfig,
        ModelConfig,
        MonitoringConfig,
        OptimizerConfig,
        TrainingConfig,
        VLLMConfig,
        WebcamConfig,
    )
    from ._tracking import TrackedRun, flatten, log_to_mlflow
    from ._yamlsafe import Limits


def __getattr__(name: str) -> _typing.Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'aiconfig' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
