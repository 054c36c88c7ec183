"""List-item overrides: ``path[N]=v`` sets, ``path[+]=v`` appends, ``~path[N]`` removes.

Through the real CLI (fork, sweep, diff, lineage), in fork files written by hand, in memory,
and against the shipped fork schema with check-jsonschema.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aiconfig import ForkError, fork_for_experiment
from aiconfig._yamlsafe import parse_yaml
from aiconfig.cli import main
from tests.conftest import REPO
from tests.fork.conftest import Project

FORK_SCHEMA = REPO / "aiconfig" / "schemas" / "fork.schema.json"
ACTIONS = ("move", "attack", "q", "w", "e", "r", "d", "f")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fork_sets_appends_and_removes_items(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        *project.cli(
            "fork",
            str(project.baseline),
            "--name",
            "items",
            "--set",
            "model.action_space[2]=flash",
            "--set",
            "model.action_space[+]=recall",
            "--set",
            "model.action_space[+]=ward",
            "--set",
            "~model.action_space[0]",
            "--set",
            "training.optimizer.betas[1]=0.99",
            "--sign-key",
            str(project.lead),
        ),
    )
    assert code == 0, err
    fork = project.exp / "items.yaml"
    # The file records concrete indexes and what a removal removes, in the order applied.
    overrides = parse_yaml(fork.read_bytes(), str(fork)).data["overrides"]
    assert list(overrides.items()) == [
        ("model.action_space[2]", "flash"),
        ("model.action_space[8]", "recall"),
        ("model.action_space[9]", "ward"),
        ("~model.action_space[0]", "move"),
        ("training.optimizer.betas[1]", 0.99),
    ]
    cfg = project.load(fork)
    assert cfg.model.action_space == ("attack", "flash", "w", "e", "r", "d", "f", "recall", "ward")
    assert cfg.training.optimizer.betas == (0.9, 0.99)
    assert cfg.provenance.lineage[-1]["overrides"]["~model.action_space[0]"] == "move"

    keys = ["--keys", str(project.root / "keys")]
    code, out, _ = run(capsys, "diff", str(project.baseline), str(fork), *keys)
    assert code == 1
    for line in (
        "model.action_space[0]",
        "model.action_space[2]",
        "model.action_space[7]",
        "model.action_space[8]",
        "training.optimizer.betas[1]: 0.999 -> 0.99",
    ):
        assert line in out, out
    code, out, _ = run(capsys, "diff", str(project.baseline), str(fork), "--format", "json", *keys)
    changes = {c["path"]: c for c in json.loads(out)["files"][0]["changes"]}
    assert changes["model.action_space[0]"] == {
        "path": "model.action_space[0]",
        "kind": "removed",
        "old": "move",
    }
    assert changes["training.optimizer.betas[1]"]["new"] == 0.99

    code, out, _ = run(capsys, *project.cli("lineage", str(fork)))
    assert code == 0 and 'model.action_space[8] = "recall"' in out


def test_sweep_over_an_item(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        *project.cli(
            "fork",
            str(project.baseline),
            "--name",
            "beta",
            "--sweep",
            "training.optimizer.betas[1]=0.99,0.995",
            "--sign-key",
            str(project.lead),
        ),
    )
    assert code == 0, err
    written = sorted(p.name for p in project.exp.glob("beta-*.yaml"))
    assert written == ["beta-betas1_0.99.yaml", "beta-betas1_0.995.yaml"]
    betas = sorted(project.load(project.exp / name).training.optimizer.betas[1] for name in written)
    assert betas == [0.99, 0.995]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("model.action_space[12]=x", "index 12 is out of range: 'model.action_space' has 8 items"),
        ("training.optimizer.betas[+]=0.5", "has exactly 2 items: items can be set, not appended"),
        ("~training.optimizer.betas[0]", "has exactly 2 items: items can be set, not removed"),
        ("training.optimizer.betas[2]=0.5", "index 2 is out of range"),
        ("training.optimizer.betas[1]=1.5", "less than or equal to 1"),
        ("~model.action_space[1]=q", "item 1 of 'model.action_space' is 'attack', not 'q'"),
        ("training.lr[0]=1", "'training.lr' is not a list"),
        ("capture.resolution[0]=1280", "locked"),
        ("model.action_space[x]=1", "list index must be [N]"),
        ("model.action_space[2]", "is not path=value"),
    ],
)
def test_bad_item_edits_are_one_line_and_write_nothing(
    project: Project, capsys: pytest.CaptureFixture[str], setting: str, message: str
) -> None:
    text = project.baseline.read_text(encoding="utf-8")
    seed = "    - training.seed\n"
    locked = text.replace(seed, seed + "    - capture.resolution\n")
    project.baseline.write_text(locked, encoding="utf-8")
    project.baseline.with_name("baseline.yaml.sig").unlink()
    project.sign(project.baseline, project.lead, project.research)
    before = sorted(project.exp.iterdir())
    code, _, err = run(
        capsys,
        *project.cli("fork", str(project.baseline), "--name", "bad", "--set", setting),
    )
    assert code == 1
    assert message in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert sorted(project.exp.iterdir()) == before


def test_removing_the_same_index_twice_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        *project.cli(
            "fork",
            str(project.baseline),
            "--name",
            "twice",
            "--set",
            "~model.action_space[3]",
            "--set",
            "~model.action_space[3]",
        ),
    )
    assert code == 1 and "two edits of 'model.action_space[3]'" in err
    assert "highest index down" in err


def test_hand_written_fork_with_append_key(project: Project) -> None:
    base_sha = project.load(project.baseline).provenance.sha256
    fork = project.exp / "hand.yaml"
    fork.write_text(
        "fork:\n  base: baseline.yaml\n"
        f"  sha256: {base_sha}\n"
        "meta:\n  name: hand\n  version: 1\n"
        "overrides:\n"
        "  model.action_space[+]: flash\n"
        "  ~model.action_space[0]: move\n"
        "  model.action_space[8]: ward\n",
        encoding="utf-8",
    )
    project.sign(fork)
    cfg = project.load(fork)
    assert cfg.model.action_space == (*ACTIONS[1:], "flash", "ward")
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(FORK_SCHEMA), str(fork)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


def test_out_of_range_in_a_fork_file_names_its_line(project: Project) -> None:
    base_sha = project.load(project.baseline).provenance.sha256
    fork = project.exp / "far.yaml"
    fork.write_text(
        "fork:\n  base: baseline.yaml\n"
        f"  sha256: {base_sha}\n"
        "meta:\n  name: far\n  version: 1\n"
        "overrides:\n"
        "  training.epochs: 3\n"
        "  model.action_space[20]: flash\n",
        encoding="utf-8",
    )
    project.sign(fork)
    with pytest.raises(ForkError) as exc:
        project.load(fork)
    (problem,) = exc.value.problems
    assert problem.line == 9 and problem.path == "model.action_space[20]"
    assert "has 8 items (0-7)" in problem.message


def test_in_memory_fork_with_items(project: Project) -> None:
    base = project.load(project.baseline)
    exp = fork_for_experiment(
        base,
        "mem",
        {
            "model.action_space[+]": "flash",
            "~model.action_space[0]": None,
            "model.input_resolution[1]": "180",
        },
    )
    assert exp.model.action_space == (*ACTIONS[1:], "flash")
    assert exp.model.input_resolution == (256, 180)
    assert exp.provenance.lineage[-1]["overrides"] == {
        "model.action_space[8]": "flash",
        "~model.action_space[0]": "move",
        "model.input_resolution[1]": 180,
    }
    assert base.model.action_space == ACTIONS  # the base is unchanged
