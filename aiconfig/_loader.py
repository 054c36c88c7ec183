"""The trusted load pipeline, assembled in one place.

``read bytes -> verify signatures -> parse (hardened YAML) -> interpolate env -> validate
-> check expiry and rollback -> apply active emergency overrides -> AIConfig``

:class:`TrustedLoad` holds one file's load and accepts those steps only in that order (the
model is python-tuf's ``TrustedMetadataSet``): signatures are checked on the exact file bytes
before the YAML parser sees them, so untrusted bytes never reach the parser in strict mode.
A fork's base goes through the same object, in the same mode.

Modes (:data:`Mode`):

``strict``    signatures required; expiry and rollback checked; the version is recorded
``check``     as strict, but nothing is recorded (``aiconfig verify``: a read-only check)
``review``    signature problems are reported, not fatal; no expiry/rollback (``aiconfig diff``:
              a pull request may carry a change nobody has signed yet)
``unsigned``  development only (``--allow-unsigned``): no signatures, provenance unsigned
"""

from __future__ import annotations

import enum
import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._errors import AiconfigError, ForkError
from ._keypath import KeyPath, Parts
from ._provenance import Provenance, Signer, lineage_step
from ._schema import AIConfig
from ._yamlsafe import Limits, ParsedYaml, parse_yaml

if TYPE_CHECKING:
    from ._fork import PreparedFork
    from ._interpolate import Interpolated
    from ._trust import Verification

__all__ = [
    "MAX_FORK_DEPTH",
    "Loaded",
    "Mode",
    "TrustedLoad",
    "load",
    "load_trusted",
    "load_unverified_bytes",
    "read_config_bytes",
    "validate_data",
]

MAX_FORK_DEPTH = 16
_FORK_KEY = "fork"  # aiconfig._fork.FORK_KEY; a baseline's load never imports the fork module
Mode = Literal["strict", "check", "review", "unsigned"]
_MODES: tuple[Mode, ...] = ("strict", "check", "review", "unsigned")


def read_config_bytes(path: str | os.PathLike[str], limits: Limits | None = None) -> bytes:
    """A config file's bytes, read with the size cap (a bigger file is never read or hashed)."""
    from ._bounded import read_config_capped

    return read_config_capped(path, (limits or Limits()).max_bytes)


@dataclass(frozen=True)
class _Options:
    mode: Mode = "strict"
    keys: str | os.PathLike[str] | None = None
    data_root: str | os.PathLike[str] | None = None
    env: Mapping[str, str] | None = None
    now: datetime | None = None
    limits: Limits | None = None
    depth: int = 0
    warn_unsigned: bool = True
    tree: Path | None = None  # a fork's base must lie in here (the top-level trust tree)
    emergency: bool = True  # apply active emergency overrides (strict and check modes)


@dataclass(frozen=True)
class Loaded:
    """What a trusted load produced: the config and how its trust was decided."""

    config: AIConfig
    verification: Verification | None = None  # None in unsigned mode or a failed review check
    trust_problem: AiconfigError | None = None  # review mode: why the signatures did not pass


class _Step(enum.IntEnum):
    READ = 0
    VERIFIED = 1
    PARSED = 2
    INTERPOLATED = 3
    VALIDATED = 4
    FRESH = 5
    EMERGENCY = 6


_T = TypeVar("_T")
_Method = Callable[["TrustedLoad"], None]


def _step(to: _Step) -> Callable[[_Method], _Method]:
    """Accept the decorated step only right after the one before it; advance only on success."""

    def wrap(method: _Method) -> _Method:
        @functools.wraps(method)
        def run(self: TrustedLoad) -> None:
            if self._step != to - 1:
                raise RuntimeError(
                    f"{self.file}: load step {to.name} after {self._step.name}; "
                    f"expected {_Step(self._step + 1).name}"
                )
            method(self)
            self._step = to

        return run

    return wrap


def _done(value: _T | None) -> _T:
    """The product of an earlier step (the step order guarantees it exists)."""
    if value is None:
        raise RuntimeError("load step product missing")
    return value


class TrustedLoad:
    """One file's trusted load; each step is accepted only after the one before it.

    ``run()`` does every step; the steps are public so that the order is the object's own
    rule rather than a convention of its callers. A step called out of order raises
    ``RuntimeError`` (a programming error, not a bad config).
    """

    def __init__(self, path: Path, data: bytes, opts: _Options) -> None:
        if opts.depth > MAX_FORK_DEPTH:
            raise ForkError(
                f"fork chain deeper than {MAX_FORK_DEPTH} steps",
                file=str(path),
                hint="fork from a baseline instead of a long chain of forks",
            )
        self.path = path
        self.file = str(path)
        self.data = data
        self.opts = opts
        self._step = _Step.READ
        self.verification: Verification | None = None
        self.trust_problem: AiconfigError | None = None
        self._parsed: ParsedYaml | None = None
        self._fork: PreparedFork | None = None
        self._resolved: Interpolated | None = None
        self._config: AIConfig | None = None

    @property
    def signers(self) -> tuple[Signer, ...]:
        return self.verification.signers if self.verification is not None else ()

    @_step(_Step.VERIFIED)
    def verify(self) -> None:
        """Check the signatures on the exact bytes (or note why not, in review mode)."""
        mode = self.opts.mode
        if mode == "unsigned":
            if self.opts.warn_unsigned:
                import logging

                logging.getLogger("aiconfig").warning(
                    "%s: loading WITHOUT signature verification (--allow-unsigned)", self.file
                )
            return
        from ._trust import verify_signatures

        try:
            self.verification = verify_signatures(self.path, self.data, keys=self.opts.keys)
        except AiconfigError as exc:  # review: a trust problem (or no trust store) is reported
            if mode != "review":
                raise
            self.trust_problem = exc

    @_step(_Step.PARSED)
    def parse(self) -> None:
        """Parse the (verified) bytes with the hardened YAML profile."""
        self._parsed = parse_yaml(self.data, self.file, self.opts.limits)

    @_step(_Step.INTERPOLATED)
    def interpolate(self) -> None:
        """Resolve ``${oc.env:...}``; for a fork, load its base (same pipeline) first."""
        parsed = _done(self._parsed)
        if isinstance(parsed.data, dict) and _FORK_KEY in parsed.data:
            from ._fork import prepare_fork

            deeper = self._base_options()

            def load_base(path: Path, data: bytes) -> AIConfig:
                self._check_base_in_tree(path, deeper.tree)
                return TrustedLoad(path, data, deeper).run().config

            self._fork = prepare_fork(parsed, self.file, env=self.opts.env, load_base=load_base)
            return
        from ._interpolate import interpolate

        self._resolved = interpolate(parsed.data, self.file, parsed.lines, self.opts.env)

    def _base_options(self) -> _Options:
        """One trust store for the whole chain: the fork's, never the one next to its base."""
        deeper = replace(self.opts, depth=self.opts.depth + 1)
        if self.opts.mode == "unsigned":
            return deeper
        from ._trust.store import find_keys_dir

        keys = self.opts.keys
        if self.verification is not None and self.verification.keys_dir is not None:
            keys = self.verification.keys_dir
        keys_dir = Path(find_keys_dir(self.path, keys)).resolve()
        tree = self.opts.tree
        if tree is None:
            root = keys_dir.parent
            tree = root if self.path.resolve().is_relative_to(root) else self.path.resolve().parent
        return replace(deeper, keys=keys_dir, tree=tree)

    def _check_base_in_tree(self, base: Path, tree: Path | None) -> None:
        if tree is None or base.resolve().is_relative_to(tree):
            return
        raise ForkError(
            f"base {base} (real path {base.resolve()}) leaves the tree {tree}",
            file=self.file,
            path="fork.base",
            hint="a fork's base must live in the same repository as the fork and its keys/",
        )

    @_step(_Step.VALIDATED)
    def validate(self) -> None:
        """Validate against the schema (every problem at once) and attach the provenance."""
        if self._fork is not None:
            from ._fork import merge_fork

            self._config = merge_fork(self._fork, self.data, self.file, signers=self.signers)
            self._check_identity()
            return
        parsed, resolved = _done(self._parsed), _done(self._resolved)
        self._config = _with_provenance(
            validate_data(
                resolved.data, self.file, parsed.lines, resolved.sources, parsed.yaml11_bools
            ),
            self.data,
            self.file,
            self.signers,
            resolved,
        )
        self._check_identity()

    def _check_identity(self) -> None:
        """The threshold of the config this file claims to be (``meta.name``), not its path's."""
        if self.verification is None:
            return
        from ._trust import check_identity

        try:
            check_identity(_done(self._config), self.verification, self.file)
        except AiconfigError as exc:
            if self.opts.mode != "review":
                raise
            self.trust_problem, self.verification = exc, None
            config = _done(self._config)
            self._config = config.with_provenance(
                replace(config.provenance, signed=False, signers=())
            )

    @_step(_Step.FRESH)
    def check_freshness(self) -> None:
        """Expiry and anti-rollback (strict records the version; check only reads)."""
        if self.opts.mode not in ("strict", "check"):
            return
        from ._trust import check_freshness

        check_freshness(
            _done(self._config),
            self.file,
            data_root=self.opts.data_root,
            now=self.opts.now,
            record=self.opts.mode == "strict",
            verification=self.verification,
        )

    @_step(_Step.EMERGENCY)
    def apply_emergency(self) -> None:
        """Active emergency overrides of this file (``emergency/<stem>@*.yaml`` beside it).

        Only in the trusted modes (strict, check): each override is verified before it is
        parsed (see ``aiconfig/_emergency.py``). Costs one ``stat`` when there is none.
        """
        if self.opts.mode not in ("strict", "check") or not self.opts.emergency:
            return
        if not (self.path.parent / "emergency").is_dir():
            return
        from ._emergency import apply_emergency

        self._config = apply_emergency(
            _done(self._config), self.path, self.data, keys=self.opts.keys, now=self.opts.now
        )

    def result(self) -> Loaded:
        if self._step != _Step.EMERGENCY or self._config is None:
            raise RuntimeError(f"{self.file}: load not finished (at {self._step.name})")
        return Loaded(self._config, self.verification, self.trust_problem)

    def run(self) -> Loaded:
        self.verify()
        self.parse()
        self.interpolate()
        self.validate()
        self.check_freshness()
        self.apply_emergency()
        return self.result()


def load_trusted(
    path: str | os.PathLike[str],
    *,
    mode: Mode = "strict",
    data: bytes | None = None,
    keys: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
    emergency: bool = True,
) -> Loaded:
    """Load one config file (a baseline or a fork) in ``mode``; see the module docstring.

    ``data`` is the file's bytes when the caller already has them (a git revision).
    ``emergency=False`` leaves active emergency overrides out (the reviewed values).
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, not {mode!r}")
    raw = read_config_bytes(path, limits) if data is None else data
    opts = _Options(mode, keys, data_root, env, now, limits, emergency=emergency)
    return TrustedLoad(Path(path), raw, opts).run()


def load(
    path: str | os.PathLike[str],
    *,
    allow_unsigned: bool = False,
    keys: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
    record: bool = True,
    emergency: bool = True,
) -> AIConfig:
    """Load, verify and validate one config file (a baseline or a fork).

    ``allow_unsigned`` is for development only: signatures are not required and the
    provenance is marked unsigned. ``keys`` is the trust store directory (default: ``keys/``
    beside the nearest ancestor of the file, or ``$AICONFIG_KEYS``). ``data_root`` holds the
    anti-rollback state (default ``$AP_DATA_ROOT``); ``record=False`` checks it without
    recording this version.

    A fork file (top-level ``fork:``) is verified, its base is checked against the pinned
    sha256 and loaded through this same pipeline (verified too), the base's locked paths are
    refused, and the merged config is validated; ``provenance.lineage`` lists every step.

    Active emergency overrides of the file (``emergency/<stem>@*.yaml`` beside it, see
    ``aiconfig emergency``) are verified and applied with an :class:`EmergencyOverrideWarning`
    and listed in ``provenance.emergency``; ``emergency=False`` gives the reviewed values.
    """
    mode: Mode = "unsigned" if allow_unsigned else ("strict" if record else "check")
    return load_trusted(
        path,
        mode=mode,
        keys=keys,
        data_root=data_root,
        env=env,
        now=now,
        limits=limits,
        emergency=emergency,
    ).config


def load_unverified_bytes(
    data: bytes,
    file: str,
    *,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
) -> AIConfig:
    """Parse, interpolate and validate bytes without any signature check (tools, benchmarks).

    A fork's base is loaded the same way. Never use this for a real run: use :func:`load`.
    """
    opts = _Options("unsigned", env=env, limits=limits, warn_unsigned=False)
    return TrustedLoad(Path(file), data, opts).run().config


def _with_provenance(
    config: AIConfig, data: bytes, file: str, signers: tuple[Signer, ...], resolved: Interpolated
) -> AIConfig:
    sha = hashlib.sha256(data).hexdigest()
    provenance = Provenance(
        path=file,
        sha256=sha,
        signed=bool(signers),
        signers=signers,
        env_vars=dict(resolved.env_used),
        sources={str(KeyPath(k)): v for k, v in resolved.sources.items()},
        template=data.decode("utf-8", "replace"),
        lineage=(lineage_step(file, sha, config.meta.name, config.meta.version, signers, {}),),
    )
    return config.with_provenance(provenance)


def validate_data(
    data: dict[str, Any],
    file: str,
    lines: Mapping[Parts, int],
    sources: Mapping[Parts, str],
    yaml11_bools: Mapping[Parts, str],
) -> AIConfig:
    """Validate plain data against the schema; every problem explained at once."""
    from pydantic import ValidationError as PydanticValidationError

    try:
        return AIConfig.model_validate(data)
    except PydanticValidationError as exc:
        from ._errors import ConfigValidationError
        from ._explain import explain

        raise ConfigValidationError(
            explain(exc, data, file, lines, sources, yaml11_bools)
        ) from None
