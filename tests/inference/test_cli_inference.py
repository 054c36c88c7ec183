"""``aiconfig infer`` and ``aiconfig check-sidecar`` run in-process through ``cli.main``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aiconfig.cli import main

from .fake_vllm import Behaviour, FakeVLLM

MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


def write_config(tmp_path: Path, inference: str, monitoring: str = "") -> Path:
    text = "meta:\n  name: infer-test\n  version: 1\n" + inference + monitoring
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def vllm_config(tmp_path: Path, url: str, model: str = MODEL, extra: str = "") -> Path:
    return write_config(
        tmp_path,
        "inference:\n  backend: vllm\n  latency_budget_ms: 5000\n"
        f"  vllm:\n    base_url: {url}\n    model: {model}\n    connect_timeout_s: 1\n",
        "monitoring:\n  exporters: [jsonl]\n  jsonl_path: tel.jsonl\n" + extra,
    )


def torch_config(tmp_path: Path, conc: int = 2, queue: int = 4) -> Path:
    return write_config(
        tmp_path,
        "model:\n  input_resolution: [64, 36]\n"
        f"inference:\n  backend: torch\n  latency_budget_ms: 5000\n  device: cpu\n"
        f"  max_concurrency: {conc}\n  max_queue: {queue}\n",
        "monitoring:\n  exporters: [jsonl]\n  jsonl_path: tel.jsonl\n",
    )


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def test_check_sidecar_ready(fake_vllm: FakeVLLM, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check-sidecar", "--base-url", fake_vllm.base_url, "--model", MODEL])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "ready" in out.splitlines()[0] and "[ok] model" in out


def test_check_sidecar_down(capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeVLLM()  # bound, not listening
    try:
        rc = main(["check-sidecar", "--base-url", server.base_url, "--json"])
    finally:
        server.stop()
    report = json.loads(capsys.readouterr().out)
    assert rc == 1 and report["ready"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed[0]["name"] == "health" and "connection refused" in failed[0]["answered"]
    assert "vllm serve" in failed[0]["hint"]


def test_check_sidecar_wrong_model_from_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeVLLM(Behaviour(models=["served/one"])).start()
    try:
        cfg = vllm_config(tmp_path, server.base_url)
        rc = main(["check-sidecar", "--config", str(cfg), "--allow-unsigned"])
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert rc == 1
    assert "[FAIL] model" in out and "served/one" in out and "fix:" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--base-url", "not a url"], "--base-url"),
        (["--base-url", "http://10.1.2.3:8000", "--no-network"], "offline"),
        (["--wait", "-1"], "--wait"),
        (["--api-key-env", "AICONFIG_TEST_UNSET_VAR"], "unset"),
    ],
)
def test_check_sidecar_bad_input(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # --no-network sets AP_NO_NETWORK in-process; setenv makes monkeypatch restore it after.
    monkeypatch.setenv("AP_NO_NETWORK", "0")
    rc = main(["check-sidecar", *argv])
    captured = capsys.readouterr()
    assert rc == 1
    assert message in captured.out + captured.err
    assert "Traceback" not in captured.err


def test_infer_vllm_prompts(
    tmp_path: Path, fake_vllm: FakeVLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = vllm_config(tmp_path, fake_vllm.base_url)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first one\n\nsecond\n", encoding="utf-8")
    out_dir = tmp_path / "run"
    rc = main(
        [
            "infer", "--config", str(cfg), "--allow-unsigned", "--prompt", "hello",
            "--prompts", str(prompts), "--stream", "--out", str(out_dir), "--run-id", "r-7",
        ]
    )  # fmt: skip
    got = lines(capsys.readouterr().out)
    assert rc == 0
    summary = got[-1]["summary"]
    assert summary["ok"] == 3 and summary["backend"] == "vllm"  # type: ignore[index]
    texts = sorted(str(r["output"]["text"]) for r in got[:-1])  # type: ignore[index]
    assert texts == ["echo first one", "echo hello", "echo second"]
    tel = lines((out_dir / "tel.jsonl").read_text())
    names = [t["name"] for t in tel if t["signal"] == "span"]
    assert names.count(f"chat {MODEL}") == 3 and "aiconfig infer" in names
    assert "aiconfig.config.load" in names
    span = next(t for t in tel if t.get("name") == f"chat {MODEL}")
    assert span["resource"]["attributes"]["aiconfig.run_id"] == "r-7"  # type: ignore[index]
    assert str(span["resource"]["attributes"]["aiconfig.config_digest"]).startswith("sha256:")  # type: ignore[index]
    metric_names = {
        m["name"]
        for t in tel
        if t["signal"] == "metrics"
        for rm in t["resource_metrics"]  # type: ignore[attr-defined]
        for sm in rm["scope_metrics"]
        for m in sm["metrics"]
    }
    assert "gen_ai.client.operation.duration" in metric_names


def test_infer_vllm_sidecar_down_fails_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeVLLM()
    try:
        cfg = vllm_config(tmp_path, server.base_url)
        rc = main(
            ["infer", "--config", str(cfg), "--allow-unsigned", "--prompt", "x",
             "--out", str(tmp_path / "run")]
        )  # fmt: skip
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert rc == 1
    assert "connection refused" in err and "Traceback" not in err


def test_infer_torch_synthetic_and_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = torch_config(tmp_path)
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--synthetic", "4",
               "--out", str(tmp_path / "a")])  # fmt: skip
    got = lines(capsys.readouterr().out)
    assert rc == 0 and got[-1]["summary"]["ok"] == 4  # type: ignore[index]
    assert all(r["output"]["action"] in {"move", "attack", "q", "w", "e", "r", "d", "f"}  # type: ignore[index]
               for r in got[:-1])  # fmt: skip
    frames = np.random.default_rng(1).integers(0, 256, size=(3, 72, 128, 3), dtype=np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--frames",
               str(tmp_path / "frames.npy"), "--out", str(tmp_path / "b")])  # fmt: skip
    got2 = lines(capsys.readouterr().out)
    assert rc == 0 and got2[-1]["summary"]["calls"] == 3  # type: ignore[index]


def test_infer_torch_overload_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = torch_config(tmp_path, conc=1, queue=1)
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--synthetic", "30",
               "--in-flight", "30", "--out", str(tmp_path / "o")])  # fmt: skip
    captured = capsys.readouterr()
    summary = lines(captured.out)[-1]["summary"]
    assert rc == 1
    assert summary["overloaded"] > 0  # type: ignore[index]
    assert summary["ok"] + summary["overloaded"] == 30  # type: ignore[index]
    assert "overloaded" in captured.err


@pytest.mark.parametrize(
    ("extra", "message", "code"),
    [
        # flags that contradict the config (or each other) are usage errors: exit 2
        (["--prompt", "x"], "not prompts", 2),
        ([], "exactly one of --frames", 2),
        (["--synthetic", "0"], "--synthetic", 1),
        (["--frames", "/nonexistent.npy"], "no such frames file", 1),
        (["--frames", "EMPTY"], "no frames: the array is (0, 144, 256, 3)", 1),
    ],
)
def test_infer_bad_input_is_one_line(
    tmp_path: Path,
    extra: list[str],
    message: str,
    code: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = torch_config(tmp_path)
    if "EMPTY" in extra:  # an array of no frames (it once reached warm-up: IndexError)
        import numpy as np

        np.save(tmp_path / "empty.npy", np.zeros((0, 144, 256, 3), np.uint8))
        extra = [str(tmp_path / "empty.npy") if a == "EMPTY" else a for a in extra]
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", *extra, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == code and message in err and "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1, err
    if code == 2:
        assert lines[0].startswith("usage error: ") and "; give" in lines[0]


def test_cli_runs_leave_no_files_in_the_working_tree() -> None:
    """Telemetry of the CLI tests above goes under their --out dirs, never the repo root."""
    root = Path(__file__).resolve().parents[2]
    assert not (root / "tel.jsonl").exists()


def test_infer_torch_over_a_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--frames reads a recorded session's video (PyAV, as the capture recorder writes it)."""
    import av

    video = tmp_path / "frames.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for i in range(5):
            frame = np.full((36, 64, 3), i * 40, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cfg = torch_config(tmp_path)
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--frames", str(video),
               "--out", str(tmp_path / "v")])  # fmt: skip
    got = lines(capsys.readouterr().out)
    assert rc == 0 and got[-1]["summary"]["calls"] == 5  # type: ignore[index]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--frames", str(bad),
               "--out", str(tmp_path / "w")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "cannot decode video" in err and "Traceback" not in err


def test_infer_exported_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    class Head(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))  # (N, 3): one "logit" per colour channel

    ckpt = tmp_path / "policy.pt2"
    torch.export.save(torch.export.export(Head(), (torch.zeros(1, 3, 18, 32),)), str(ckpt))
    cfg = write_config(
        tmp_path,
        f"model:\n  input_resolution: [32, 18]\n  checkpoint: {ckpt}\n"
        "  action_space: [red, green, blue]\n"
        "inference:\n  backend: torch\n  latency_budget_ms: 5000\n  device: cpu\n",
    )
    frames = np.zeros((2, 18, 32, 3), dtype=np.uint8)
    frames[..., 2] = 255
    np.save(tmp_path / "blue.npy", frames)
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--frames",
               str(tmp_path / "blue.npy"), "--out", str(tmp_path / "o")])  # fmt: skip
    got = lines(capsys.readouterr().out)
    assert rc == 0
    assert [r["output"]["action"] for r in got[:-1]] == ["blue", "blue"]  # type: ignore[index]
    ckpt.write_bytes(b"not an exported program")
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--synthetic", "1",
               "--out", str(tmp_path / "p")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "not a torch.export program" in err and "Traceback" not in err


def _infer_proc(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AP_", "HYPERVISOR_"))}
    base["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        [sys.executable, "-m", "aiconfig", "infer", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_infer_runs_under_the_orchestrator_contract(tmp_path: Path, fake_vllm: FakeVLLM) -> None:
    """--log-json: only JSON lines on stdout; calls, summary and telemetry are run artifacts in
    a verified manifest; the ready file names the backend and is gone afterwards."""
    from aiconfig.harness import verify_manifest

    cfg = vllm_config(tmp_path, fake_vllm.base_url)
    out = tmp_path / "hv" / "infer"
    proc = _infer_proc(
        ["--config", str(cfg), "--allow-unsigned", "--prompt", "a", "--prompt", "b",
         "--ready-file", str(out / "ready.json"), "--log-json", "--no-network"],
        tmp_path, AP_RUN_ID="inf-1", AP_OUT_DIR=str(out), AP_CPU_LIMIT="1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = lines(proc.stdout)
    assert all(set(r) == {"ts", "level", "run_id", "job", "event", "fields"} for r in records)
    events = [r["event"] for r in records]
    assert events.count("infer.call") == 2 and "run.ready" in events
    ready = next(r for r in records if r["event"] == "run.ready")["fields"]
    assert ready["backend"] == "vllm" and ready["model"] and ready["calls"] == 2  # type: ignore[index]
    assert not (out / "ready.json").exists()
    calls = lines((out / "calls.jsonl").read_text())
    assert sorted(str(c["output"]["text"]) for c in calls) == ["echo a", "echo b"]  # type: ignore[index]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 2
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["status"] == "succeeded" and doc["job"] == "infer" and doc["infer"]["ok"] == 2
    assert doc["config"]["sha256"] and doc["settings"]["no_network"] is True
    assert {"calls.jsonl", "summary.json", "tel.jsonl"} <= {a["path"] for a in doc["artifacts"]}
    assert verify_manifest(out).ok


def test_infer_default_output_and_failures(tmp_path: Path) -> None:
    """Without --out each run gets runs/infer/<run id>; a failing run's manifest says why; the
    offline flag refuses a non-loopback sidecar before any call."""
    cfg = torch_config(tmp_path)
    ok = _infer_proc(["--config", str(cfg), "--allow-unsigned", "--synthetic", "2"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    (run,) = (tmp_path / "runs" / "infer").iterdir()
    assert json.loads((run / "manifest.json").read_text())["status"] == "succeeded"
    assert len(lines((run / "calls.jsonl").read_text())) == 2

    over = _infer_proc(
        ["--config", str(torch_config(tmp_path, conc=1, queue=1)), "--allow-unsigned",
         "--synthetic", "20", "--in-flight", "20", "--run-id", "over", "--out",
         str(tmp_path / "over")],
        tmp_path,
    )  # fmt: skip
    assert over.returncode == 1 and "error: 18 of 20 calls failed (18 overloaded" in over.stderr
    doc = json.loads((tmp_path / "over" / "manifest.json").read_text())
    assert doc["status"] == "failed" and "overloaded" in doc["error"]

    remote = vllm_config(tmp_path, "http://10.1.2.3:8000")
    off = _infer_proc(
        ["--config", str(remote), "--allow-unsigned", "--prompt", "x", "--run-id", "off",
         "--out", str(tmp_path / "off")],
        tmp_path, AP_NO_NETWORK="1",
    )  # fmt: skip
    assert off.returncode == 1 and "with AP_NO_NETWORK=1, got refused" in off.stderr
    assert json.loads((tmp_path / "off" / "manifest.json").read_text())["status"] == "failed"

    bad = _infer_proc(
        ["--config", str(cfg), "--allow-unsigned", "--synthetic", "1", "--out",
         str(tmp_path / "bad")],
        tmp_path, AP_MEM_LIMIT_MB="twelve",
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("error: AP_MEM_LIMIT_MB: invalid")
    assert not (tmp_path / "bad").exists()
