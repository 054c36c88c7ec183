"""One trusted load order (``TrustedLoad``), and its read-only modes for ``verify`` and ``diff``."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiconfig import BadSignatureError, RollbackError, UnsignedConfigError, load
from aiconfig._loader import TrustedLoad, _Options, load_trusted, read_config_bytes
from aiconfig._trust import sig_path
from aiconfig.cli import main
from tests.conftest import Keyring

CONFIG = "meta:\n  name: exp\n  version: {version}\ntraining:\n  lr: 1e-4\n"


def _signed(ring: Keyring, version: int = 2) -> Path:
    ring.add("alice@x")
    return ring.write("experiments/exp.yaml", CONFIG.format(version=version), "alice@x")


def _state(data_root: Path) -> Path:
    return data_root / "aiconfig-trust"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (("parse",), "PARSED after READ; expected VERIFIED"),
        (("verify", "interpolate"), "INTERPOLATED after VERIFIED; expected PARSED"),
        (("verify", "parse", "validate"), "VALIDATED after PARSED; expected INTERPOLATED"),
        (("verify", "parse", "interpolate", "check_freshness"), "FRESH after INTERPOLATED"),
        (("verify", "verify"), "VERIFIED after VERIFIED; expected PARSED"),
        (("verify", "parse", "interpolate", "validate", "result"), "load not finished"),
    ],
)
def test_steps_are_accepted_only_in_order(
    keyring: Keyring, tmp_path: Path, steps: tuple[str, ...], message: str
) -> None:
    cfg = _signed(keyring)
    trusted = TrustedLoad(cfg, cfg.read_bytes(), _Options(keys=keyring.keys_dir))
    *before, last = steps
    for step in before:
        getattr(trusted, step)()
    with pytest.raises(RuntimeError, match=message):
        getattr(trusted, last)()


def test_parser_never_sees_unverified_bytes(keyring: Keyring) -> None:
    """Strict mode: a tampered file fails at verify, so hostile YAML is never parsed."""
    cfg = _signed(keyring)
    cfg.write_bytes(b"!!python/object/apply:os.system ['echo pwned']\n")
    trusted = TrustedLoad(cfg, cfg.read_bytes(), _Options(keys=keyring.keys_dir))
    with pytest.raises(BadSignatureError, match="does not match the file bytes"):
        trusted.verify()
    with pytest.raises(RuntimeError, match="PARSED after READ"):
        trusted.parse()


def test_check_mode_writes_no_state_but_still_refuses_rollback(
    keyring: Keyring, tmp_path: Path
) -> None:
    cfg = _signed(keyring, version=2)
    root = tmp_path / "state"
    loaded = load_trusted(cfg, mode="check", keys=keyring.keys_dir, data_root=root)
    assert loaded.verification is not None and loaded.verification.principals == ("alice@x",)
    assert not _state(root).exists()  # nothing created: not even the directory or a lock file
    assert (
        main(["verify", str(cfg), "--keys", str(keyring.keys_dir), "--data-root", str(root)]) == 0
    )
    assert not _state(root).exists()

    load(cfg, keys=keyring.keys_dir, data_root=root)  # a real run records v2
    assert (_state(root) / "versions.json").is_file()
    older = keyring.write("experiments/exp.yaml", CONFIG.format(version=1), "alice@x")
    with pytest.raises(RollbackError):
        load_trusted(older, mode="check", keys=keyring.keys_dir, data_root=root)
    before = (_state(root) / "versions.json").read_bytes()
    assert (
        main(["verify", str(older), "--keys", str(keyring.keys_dir), "--data-root", str(root)]) == 1
    )
    assert (_state(root) / "versions.json").read_bytes() == before


def test_review_mode_reports_trust_problems_and_records_nothing(
    keyring: Keyring, tmp_path: Path
) -> None:
    cfg = _signed(keyring)
    sig_path(cfg).unlink()
    root = tmp_path / "state"
    loaded = load_trusted(cfg, mode="review", keys=keyring.keys_dir, data_root=root)
    assert isinstance(loaded.trust_problem, UnsignedConfigError)
    assert loaded.verification is None and loaded.config.meta.version == 2
    assert not loaded.config.provenance.signed
    assert not _state(root).exists()
    with pytest.raises(UnsignedConfigError):
        load_trusted(cfg, mode="check", keys=keyring.keys_dir, data_root=root)


def test_fork_base_goes_through_the_same_mode(keyring: Keyring, tmp_path: Path) -> None:
    """A fork's base is verified too; in check mode neither is recorded."""
    base = _signed(keyring)
    import hashlib

    from aiconfig._fork import render_fork

    fork = keyring.root / "experiments" / "fork.yaml"
    fork.write_bytes(
        render_fork(
            base_rel="exp.yaml",
            base_sha256=hashlib.sha256(base.read_bytes()).hexdigest(),
            name="fork",
            version=1,
            description="",
            overrides={"training.lr": 1e-3},
        )
    )
    keyring.sign(fork, "alice@x")
    root = tmp_path / "state"
    loaded = load_trusted(fork, mode="check", keys=keyring.keys_dir, data_root=root)
    assert loaded.config.training.lr == 1e-3 and not _state(root).exists()
    sig_path(base).unlink()
    with pytest.raises(UnsignedConfigError, match=r"exp\.yaml"):
        load_trusted(fork, mode="check", keys=keyring.keys_dir, data_root=root)
    reviewed = load_trusted(fork, mode="review", keys=keyring.keys_dir, data_root=root)
    assert reviewed.trust_problem is None  # the fork itself is signed; its base was reviewed
    assert reviewed.config.training.lr == 1e-3
    assert read_config_bytes(fork) == fork.read_bytes()


def test_unknown_mode_is_refused(keyring: Keyring) -> None:
    cfg = _signed(keyring)
    with pytest.raises(ValueError, match="mode must be one of"):
        load_trusted(cfg, mode="lenient")  # type: ignore[arg-type]
