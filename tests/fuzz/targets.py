"""Fuzz targets: every parser that reads a file a user or a crash can hand us.

Each target takes the fuzzer's bytes, puts them where the product reads them (a file in a
scratch project, or a string argument) and calls the product's own entry point. The contract is
the same for all of them: a result, or an :class:`aiconfig.AiconfigError`. Any other exception,
a hang (over 1 s) or a memory blow-up (over 256 MB) is a bug, and the runner
(``tests/fuzz/run.py``) turns it into a crash report.

Targets are plain functions so the same code runs under atheris (coverage-guided, ``run.py``)
and in the test suite on the committed corpus (``test_fuzz.py``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"

Target = Callable[[bytes], object]


class Scratch:
    """A throwaway project (keys/, experiments/, a data root) shared by the targets of a run."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="aiconfig-fuzz-"))
        self.keys = self.root / "keys"
        self.exp = self.root / "experiments"
        self.data_root = self.root / "state"
        self.keys.mkdir()
        self.exp.mkdir()
        self.data_root.mkdir()
        # The committed trust store and baseline: a fuzzed .sig starts from real signatures.
        shutil.copy(REPO / "keys" / "allowed_signers", self.keys / "allowed_signers")
        shutil.copy(REPO / "keys" / "policy.yaml", self.keys / "policy.yaml")
        for name in ("baseline.yaml", "baseline.yaml.sig", "lr-1e-3.yaml", "lr-1e-3.yaml.sig"):
            shutil.copy(REPO / "experiments" / name, self.exp / name)
        # A second, separately writable trust store for the policy/allowed_signers targets.
        self.keys2 = self.root / "t2" / "keys"
        self.keys2.mkdir(parents=True)
        shutil.copy(REPO / "keys" / "allowed_signers", self.keys2 / "allowed_signers")
        shutil.copy(REPO / "keys" / "policy.yaml", self.keys2 / "policy.yaml")
        self.run_dir = self.root / "run"
        self.run_dir.mkdir()
        (self.run_dir / "a.txt").write_bytes(b"artifact\n")
        self.session = self.root / "sessions" / "session_20261201_092246"  # the seed's id

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_SCRATCH: Scratch | None = None


def scratch() -> Scratch:
    global _SCRATCH  # noqa: PLW0603 - one scratch project per fuzzing process
    if _SCRATCH is None:
        _SCRATCH = Scratch()
    return _SCRATCH


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# -- the config half --------------------------------------------------------------------------


def yaml_loader(data: bytes) -> object:
    """The hardened YAML parser, then the whole unsigned pipeline (interpolate, validate)."""
    from aiconfig._loader import load_unverified_bytes
    from aiconfig._yamlsafe import parse_yaml

    parse_yaml(data, "fuzz.yaml")
    return load_unverified_bytes(data, "fuzz.yaml", env={"CONC": "4", "LR": "1e-3"})


def env_interpolation(data: bytes) -> object:
    """``${oc.env:...}`` templates and hostile environment values, typed by the schema."""
    from aiconfig._loader import load_unverified_bytes

    template, _, value = _text(data).partition("\x00")
    doc = {
        "meta": {"name": "fuzz", "version": 1},
        "model": {"name": template, "dropout": template},
        "training": {"lr": template, "dataset": {"sessions_dir": template}},
        "inference": {"max_concurrency": template},
    }
    raw = json.dumps(doc).encode()  # JSON is YAML: the template reaches the interpolator intact
    return load_unverified_bytes(raw, "fuzz.yaml", env={"V": value, "SECRET_TOKEN": value})


def fork_file(data: bytes) -> object:
    """A fork file beside a real base (unsigned mode, so the bytes reach the fork parser)."""
    from aiconfig._loader import load_trusted

    s = scratch()
    path = s.exp / "fuzz-fork.yaml"
    path.write_bytes(data)
    return load_trusted(path, mode="unsigned", keys=s.keys, data_root=s.data_root)


def signature(data: bytes) -> object:
    """The ``.sig`` of the real baseline: SSHSIG armor, blob parser, verification, policy."""
    from aiconfig._loader import load_trusted

    s = scratch()
    (s.exp / "baseline.yaml.sig").write_bytes(data)
    return load_trusted(s.exp / "baseline.yaml", mode="check", keys=s.keys, data_root=s.data_root)


def policy_file(data: bytes) -> object:
    """``keys/policy.yaml``: thresholds, rules and revocations."""
    from aiconfig._trust.store import TrustStore

    s = scratch()
    (s.keys2 / "policy.yaml").write_bytes(data)
    return TrustStore.load(s.keys2)


def allowed_signers(data: bytes) -> object:
    """``keys/allowed_signers`` in git's format (options, quoted namespaces, key blobs)."""
    from aiconfig._trust.store import TrustStore

    s = scratch()
    (s.keys2 / "allowed_signers").write_bytes(data)
    return TrustStore.load(s.keys2)


def run_manifest(data: bytes) -> object:
    """A run's ``manifest.json``, as ``aiconfig manifest verify`` reads it."""
    from aiconfig.harness.manifest import verify_manifest

    s = scratch()
    (s.run_dir / "manifest.json").write_bytes(data)
    return verify_manifest(s.run_dir)


# -- the data half ----------------------------------------------------------------------------


def _session_with(name: str, data: bytes) -> Path:
    """A copy of the committed seed session with ``name`` replaced by ``data``."""
    s = scratch()
    if s.session.exists():
        shutil.rmtree(s.session)
    shutil.copytree(CORPUS / "_session", s.session)
    (s.session / name).write_bytes(data)
    return s.session


_PROPERTIES = (
    "id",
    "format_version",
    "status",
    "fps",
    "duration_s",
    "resolution",
    "start_t_ns",
    "frame_count",
    "keyframe_interval",
    "window",
    "streams",
    "provenance",
    "run_id",
    "video_path",
    "webcam_path",
    "audio_path",
)


def _read_session(session: Path) -> object:
    """Everything that reads a session: the one validator, the catalog row, the reader API."""
    from aiconfig import AiconfigError
    from aiconfig.sessions import open_session, validate_session
    from aiconfig.sessions._catalog import read_row

    check = validate_session(session)
    read_row(session, session.parent)
    try:
        opened = open_session(session)
    except AiconfigError:
        return check
    for name in _PROPERTIES:
        getattr(opened, name)
    opened.events()
    opened.frames()
    opened.inputs()
    return check


def session_metadata(data: bytes) -> object:
    """``metadata.json`` of a recorded session."""
    return _read_session(_session_with("metadata.json", data))


def session_events(data: bytes) -> object:
    """``events.parquet`` of a recorded session (a crash can leave it without a footer)."""
    return _read_session(_session_with("events.parquet", data))


def session_journal(data: bytes) -> object:
    """The events journal (Arrow IPC stream) that ``capture recover`` reads after a crash."""
    from capture._events import read_journal

    s = scratch()
    path = s.root / "events.journal"
    path.write_bytes(data)
    return read_journal(path)


def session_manifest(data: bytes) -> object:
    """A session's own ``manifest.json``."""
    return _read_session(_session_with("manifest.json", data))


TARGETS: dict[str, Target] = {
    "yaml_loader": yaml_loader,
    "env_interpolation": env_interpolation,
    "fork_file": fork_file,
    "signature": signature,
    "policy_file": policy_file,
    "allowed_signers": allowed_signers,
    "run_manifest": run_manifest,
    "session_metadata": session_metadata,
    "session_events": session_events,
    "session_journal": session_journal,
    "session_manifest": session_manifest,
}


def _planted_bug(data: bytes) -> object:
    """Not a product parser: proves the runner reports a contract breach (``test_fuzz.py``)."""
    if data.startswith(b"PLANTED"):
        empty: dict[str, object] = {}
        return empty["planted"]  # a KeyError, as a careless parser would raise
    return None


def call(name: str, data: bytes) -> Any:
    """Run one target under the contract: a result or an AiconfigError, nothing else."""
    from aiconfig import AiconfigError

    target = _planted_bug if name == "_planted_bug" else TARGETS[name]
    try:
        return target(data)
    except AiconfigError:
        return None
