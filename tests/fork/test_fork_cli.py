"""``aiconfig fork``, sweeps, ``lineage`` and ``diff`` through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

from aiconfig.cli import main
from tests.fork.conftest import Project


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fork_writes_typed_signed_file_and_keeps_base(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = project.baseline.read_bytes()
    code, _, err = run(
        capsys,
        *project.cli(
            "fork",
            str(project.baseline),
            "--name",
            "exp",
            "--set",
            "training.lr=3e-4",
            "--set",
            "training.epochs=3",
            "--set",
            'model.name="a=b, c d"',
            "--set",
            "model.input_resolution=[320, 180]",
            "--set",
            "training.mixed_precision=yes",
            "--sign-key",
            str(project.lead),
        ),
    )
    assert code == 0, err
    assert project.baseline.read_bytes() == before
    cfg = project.load(project.exp / "exp.yaml")
    assert isinstance(cfg.training.lr, float) and cfg.training.lr == 3e-4
    assert cfg.training.epochs == 3 and cfg.model.name == "a=b, c d"
    assert cfg.model.input_resolution == (320, 180) and cfg.training.mixed_precision is True
    assert cfg.provenance.signers[0].principal == "lead@test"
    assert main(project.cli("validate", str(project.exp / "exp.yaml"))) == 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("training.optimzer.lr=1", "did you mean 'training.optimizer'"),
        ("training.lr=fast", "training.lr"),
        ("training.lr=-1", "greater than 0"),
        ("capture.fps=60", "locked"),
        ("training", "not path=value"),
        ("inference.vllm.api_key=hunter2", "secrets never"),
    ],
)
def test_bad_overrides_write_nothing(
    project: Project, capsys: pytest.CaptureFixture[str], setting: str, message: str
) -> None:
    code, _, err = run(
        capsys, *project.cli("fork", str(project.baseline), "--name", "x", "--set", setting)
    )
    assert code == 1
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in project.exp.iterdir()) == ["baseline.yaml", "baseline.yaml.sig"]


def test_sweep_cartesian_deterministic_and_refuses_overwrite(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    args = project.cli(
        "fork",
        str(project.baseline),
        "--name",
        "sw",
        "--sweep",
        "training.lr=1e-4,3e-4",
        "--sweep",
        "model.input_resolution=[256,144],[320,180]",
    )
    code, _, err = run(capsys, *args)
    assert code == 0, err
    names = sorted(p.name for p in project.exp.glob("sw-*.yaml"))
    assert names == [
        "sw-lr0.0001-input_resolution256_144.yaml",
        "sw-lr0.0001-input_resolution320_180.yaml",
        "sw-lr0.0003-input_resolution256_144.yaml",
        "sw-lr0.0003-input_resolution320_180.yaml",
    ]
    first = project.exp / names[0]
    original = first.read_bytes()
    code, _, err = run(capsys, *args)
    assert code == 1 and "--force" in err
    assert first.read_bytes() == original
    code, _, err = run(capsys, *args, "--force")
    assert code == 0, err
    assert b"version: 2" in first.read_bytes()
    cfg = project.load(first, allow_unsigned=True)
    assert cfg.training.lr == 1e-4 and cfg.model.input_resolution == (256, 144)


@pytest.mark.parametrize(
    ("flags", "written"),
    [
        (("--set", "training.lr=1e-3", "--sign-key"), ["x.yaml"]),
        (("--sweep", "training.lr=1e-3,2e-3", "--sign-key"), ["x-lr0.001.yaml", "x-lr0.002.yaml"]),
    ],
    ids=["set", "sweep"],
)
def test_fork_into_a_directory_that_does_not_exist_yet(
    project: Project, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], written: list[str]
) -> None:
    """--out NEWDIR: the base is read once, not through NEWDIR/../base.yaml before NEWDIR exists."""
    out = project.exp / "new" / "deeper"
    code, stdout, err = run(
        capsys,
        *project.cli(
            "fork",
            str(project.baseline),
            "--name",
            "x",
            "--out",
            str(out),
            *flags,
            str(project.lead),
        ),
    )
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.yaml")) == written
    assert stdout.count("wrote ") == len(written)
    for name in written:
        cfg = project.load(out / name)
        assert cfg.training.lr in (1e-3, 2e-3)
        assert cfg.provenance.lineage[0]["path"] == str(out / "../../baseline.yaml")
        assert b"base: ../../baseline.yaml" in (out / name).read_bytes()


def test_lineage_cli(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            project.cli(
                "fork",
                str(project.baseline),
                "--name",
                "a",
                "--set",
                "training.lr=1e-3",
                "--sign-key",
                str(project.lead),
            )
        )
        == 0
    )
    a = project.exp / "a.yaml"
    assert (
        main(
            project.cli(
                "fork",
                str(a),
                "--name",
                "b",
                "--set",
                "training.epochs=2",
                "--sign-key",
                str(project.research),
            )
        )
        == 0
    )
    capsys.readouterr()
    code, out, _ = run(capsys, *project.cli("lineage", str(project.exp / "b.yaml")))
    assert code == 0
    assert out.index("baseline.yaml") < out.index("a.yaml") < out.index("b.yaml")
    assert "training.lr = 0.001" in out and "training.epochs = 2" in out
    assert "lead@test, research@test" in out
    code, out, _ = run(capsys, *project.cli("lineage", str(project.exp / "b.yaml"), "--json"))
    steps = json.loads(out)["lineage"]
    assert [s["name"] for s in steps] == ["lol-bc-baseline", "a", "b"]
    assert all(len(s["sha256"]) == 64 for s in steps)


def test_diff_cli_formats_and_exit_codes(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    many = "monitoring.resource_attributes={" + ", ".join(f"k{i}: v" for i in range(20)) + "}"
    assert (
        main(
            project.cli(
                "fork",
                str(project.baseline),
                "--name",
                "d",
                "--set",
                "training.lr=0.00031",
                "--set",
                "model.action_space=[move,q]",
                "--set",
                many,
            )
        )
        == 0
    )
    fork = str(project.exp / "d.yaml")
    base = str(project.baseline)
    code, out, _ = run(capsys, "diff", base, base)
    assert code == 0 and "identical" in out
    code, out, _ = run(capsys, "diff", base, fork, "--format", "json")
    assert code == 1
    report = json.loads(out)
    changes = {c["path"]: c for c in report["files"][0]["changes"]}
    assert changes["training.lr"]["old"] == 3e-4 and changes["training.lr"]["new"] == 0.00031
    assert changes["model.action_space[1]"] == {
        "path": "model.action_space[1]",
        "kind": "removed",
        "old": "attack",
    }
    assert changes["model.action_space[7]"]["kind"] == "removed"
    assert changes["monitoring.resource_attributes.k19"] == {
        "path": "monitoring.resource_attributes.k19",
        "kind": "added",
        "new": "v",
    }
    assert changes["monitoring.resource_attributes.team"]["kind"] == "removed"
    assert report["files"][0]["new"]["trust_problem"].count("not signed") == 1
    code, out, _ = run(capsys, "diff", base, fork, "--float-tol", "1e-4", "--format", "json")
    paths = {c["path"] for c in json.loads(out)["files"][0]["changes"]}
    assert "training.lr" not in paths and "model.action_space[1]" in paths
    code, out, _ = run(capsys, "diff", base, fork, "--format", "markdown")
    assert code == 1
    assert "| Path | Change | Old | New |" in out and "<details>" in out
    assert "| `training.lr` | changed | `0.0003` | `0.00031` |" in out
    code, _, err = run(capsys, "diff", base, "missing.yaml")
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "diff", base)
    assert code == 2


def test_markdown_escapes_pipes(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            project.cli("fork", str(project.baseline), "--name", "p", "--set", "model.name='a|b`c'")
        )
        == 0
    )
    code, out, _ = run(
        capsys, "diff", str(project.baseline), str(project.exp / "p.yaml"), "--format", "markdown"
    )
    assert code == 1
    row = next(line for line in out.splitlines() if "model.name" in line)
    assert row.count(" | ") == 3 and "a\\|b`c" in row


def test_every_problem_at_once_each_with_the_right_reason(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        *project.cli(
            "fork", str(project.baseline), "--name", "x",
            "--set", "capture.fps=60", "--set", "meta.version=3",
            "--set", "inference.vllm.api_key=sk-123", "--set", "training=1",
            "--sweep", "model.dropout=0.1,2",
        ),
    )  # fmt: skip
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 5, lines
    fps, meta, secret, section, sweep = lines
    assert fps.startswith("error: capture.fps: ") and "locked by the base" in fps
    assert meta.startswith("error: meta.version: meta cannot be overridden")
    assert "secrets never go into config files" in secret and "sk-123" not in err
    # training is locked only below (training.seed): the problem is that it is a whole section
    assert "'training' is a whole section; a whole section cannot be overridden" in section
    assert "locked" not in section
    assert sweep.startswith("error: model.dropout: bad value '2'")
    assert sorted(p.name for p in project.exp.iterdir()) == ["baseline.yaml", "baseline.yaml.sig"]


def test_every_existing_sweep_point_is_named(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    args = project.cli("fork", str(project.baseline), "--name", "s",
                       "--sweep", "training.batch_size=32,64")  # fmt: skip
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 1
    assert [line.split(": ")[1] for line in err.splitlines()] == [
        str(project.exp / "s-batch_size32.yaml"),
        str(project.exp / "s-batch_size64.yaml"),
    ]
