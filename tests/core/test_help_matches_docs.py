"""What ``--help`` says is what the commands do and what the README says."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from aiconfig import ConfigValidationError
from tests.conftest import REPO


def _help(*argv: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", *argv, "--help"], capture_output=True, text=True, check=True,
        cwd=REPO,
    )  # fmt: skip
    return " ".join(proc.stdout.split())  # argparse wraps lines: compare words


def _option_help(text: str, flag: str) -> str:
    m = re.search(rf"(?:^| ){re.escape(flag)}(?: [A-Z_]+)? (.*?)(?= --[a-z]|$)", text)
    assert m, flag
    return m.group(1)


def test_data_root_default_is_the_readmes() -> None:
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert "by default `~/.local/state/aiconfig`" in readme
    for argv in (("aiconfig", "validate"), ("aiconfig", "verify"), ("aiconfig", "capture")):
        assert "~/.local/state/aiconfig" in _option_help(_help(*argv), "--data-root"), argv


@pytest.mark.parametrize(
    ("argv", "out_default"),
    [
        (("capture",), "default: ./sessions"),
        (("aiconfig", "capture"), "default: the config's capture.output_dir"),
        (("aiconfig", "infer"), "default: runs/infer"),
        (("aiconfig", "pipeline"), "required"),
    ],
)
def test_run_flags_name_their_variables_and_defaults(
    argv: tuple[str, ...], out_default: str
) -> None:
    text = _help(*argv)
    assert "AP_READY_FILE" in _option_help(text, "--ready-file")
    out = _option_help(text, "--out")
    assert "AP_OUT_DIR" in out and out_default in out


def test_capture_help_marks_exactly_the_flags_the_config_refuses() -> None:
    from aiconfig.commands.capture import checked_overrides
    from capture._cli import FLAG_OF

    text = _help("aiconfig", "capture")
    marked = {f for f in set(FLAG_OF.values()) if "[refused" in _option_help(text, f)}
    cfg = SimpleNamespace(meta=SimpleNamespace(locked=()))
    refused = set()
    for field, flag in FLAG_OF.items():
        head, _, leaf = field.rpartition(".")
        over = {head: {leaf: 1}} if head else {leaf: 1}
        try:
            checked_overrides(cfg, over, "x.yaml")
        except ConfigValidationError:
            refused.add(flag)
    assert marked == refused
    assert {"--duration", "--webcam-device", "--audio-device"}.isdisjoint(marked)
    # and the plain recorder marks nothing
    assert "[refused" not in _help("capture")


@pytest.mark.parametrize(
    "argv",
    [["verify", "x.yaml", "--nope"], ["capture", "--config", "x", "--nope"],
     ["plugins", "list", "--nope"], ["manifest", "verify", "d", "--nope"]],
)  # fmt: skip
def test_unknown_arguments_print_the_subcommands_usage(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aiconfig", *argv], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    command = " ".join(a for a in argv[:2] if not a.startswith("-") and "." not in a)
    command = command if argv[0] in ("plugins", "manifest") else argv[0]
    assert proc.stderr.startswith(f"usage: aiconfig {command} ")
    assert (
        proc.stderr.splitlines()[-1] == f"aiconfig {command}: error: unrecognized arguments: --nope"
    )


def test_the_parser_helper_finds_nested_subcommands() -> None:
    from aiconfig.cli import _innermost, build_parser

    parser = build_parser()
    args, _ = parser.parse_known_args(["plugins", "list"])
    assert isinstance(_innermost(parser, args), argparse.ArgumentParser)
    assert _innermost(parser, args).prog == "aiconfig plugins list"
