"""Config load cost against OmegaConf and Hydra, and `aiconfig validate` start-up vs a Hydra app.

Prints one JSON object. Every comparison runs in the same process/run, so ratios are meaningful
on a noisy machine. Run: ``python -m benchmarks.bench_config`` (``--quick`` for fewer repeats).

Child processes run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed, one warm-up
run writes the caches), as an installed package would: otherwise every run of ours recompiles
this checkout's modules from source while Hydra's installed modules are already compiled.
``cold_start_breakdown`` is ``python -X importtime`` of the same command (median of 5 runs,
cumulative ms of the top-level imports) and the CPU time each load step takes in-process.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import process_ms, python, time_ms

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "experiments" / "baseline.yaml"


def generated(leaves: int) -> str:
    """A valid config with ``leaves`` scalar leaves (free-form maps hold most of them)."""
    half = leaves // 2
    lines = ["meta:", "  name: generated", "  version: 1", "monitoring:"]
    lines.append("  latency_thresholds_ms:")
    lines += [f"    model_{i}: {i + 1}.5" for i in range(half)]
    lines.append("  resource_attributes:")
    lines += [f"    attr_{i}: value-{i}" for i in range(leaves - half - 2)]
    lines += ["training:", "  lr: 3e-4", "  batch_size: ${oc.env:BS,64}"]
    return "\n".join(lines) + "\n"


TARGETS = {"validate_signed_ms": 150.0, "validate_over_hydra": 0.4, "load_signed_ms": 1.5}


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)  # this checkout, not an installed copy
    return env


def bench_signed_load(data_root: Path) -> dict[str, Any]:
    """The real thing: strict load of the signed baseline (two signatures, anti-rollback)."""
    from aiconfig import load

    ours = time_ms(lambda: load(BASELINE, data_root=data_root), repeat=200, warmup=10)
    return {
        "aiconfig_load_signed_2_signatures": ours,
        "target_median_ms": TARGETS["load_signed_ms"],
        "meets_target": ours["median_ms"] <= TARGETS["load_signed_ms"],
    }


def load_steps(data_root: Path, repeat: int = 200) -> dict[str, float]:
    """Median ms per trusted-load step (verify, parse, interpolate, validate, freshness)."""
    from aiconfig._loader import TrustedLoad, _Options

    data = BASELINE.read_bytes()
    steps = ("verify", "parse", "interpolate", "validate", "check_freshness")
    samples: dict[str, list[float]] = {s: [] for s in steps}
    for _ in range(repeat):
        trusted = TrustedLoad(BASELINE, data, _Options(data_root=data_root))
        for step in steps:
            t0 = time.perf_counter()
            getattr(trusted, step)()
            samples[step].append((time.perf_counter() - t0) * 1e3)
    return {s: round(statistics.median(v), 4) for s, v in samples.items()}


def import_breakdown(argv: list[str], runs: int = 5) -> dict[str, float]:
    """``-X importtime``: cumulative ms of each top-level import, median over ``runs``."""
    per: dict[str, list[float]] = {}
    for _ in range(runs):
        proc = subprocess.run(
            [python(), "-X", "importtime", *argv],
            capture_output=True,
            text=True,
            cwd=str(REPO),
            env=child_env(),
            check=False,
        )
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line)
            if m:  # top level only (no indentation before the name)
                per.setdefault(m.group(2), []).append(int(m.group(1)) / 1e3)
    ranked = sorted(((statistics.median(v), k) for k, v in per.items()), reverse=True)
    return {k: round(v, 1) for v, k in ranked[:15]}


def bench_in_process(path: Path) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from aiconfig import AIConfig, load

    ours = time_ms(lambda: load(path, allow_unsigned=True))

    def omegaconf_load() -> None:
        cfg = OmegaConf.load(path)
        AIConfig.model_validate(OmegaConf.to_container(cfg, resolve=True))

    peer = time_ms(omegaconf_load, repeat=20)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(path.parent), version_base=None):
        hydra = time_ms(
            lambda: AIConfig.model_validate(
                OmegaConf.to_container(compose(config_name=path.stem), resolve=True)
            ),
            repeat=20,
        )
    return {
        "aiconfig_load": ours,
        "omegaconf_load_resolve_validate": peer,
        "hydra_compose_validate": hydra,
        "speedup_vs_omegaconf": round(peer["median_ms"] / ours["median_ms"], 2),
        "speedup_vs_hydra": round(hydra["median_ms"] / ours["median_ms"], 2),
    }


HYDRA_APP = """
import hydra
from omegaconf import DictConfig

@hydra.main(config_path={dir!r}, config_name={name!r}, version_base=None)
def main(cfg: DictConfig) -> None:
    print(cfg.capture.fps)

main()
"""


# What `aiconfig validate` cannot start without, in one process: the interpreter, pydantic with
# one model built (its first build imports importlib.metadata for the plugin loader, even with
# plugins disabled), PyYAML and cryptography's Ed25519. aiconfig's own share is the rest.
THIRD_PARTY_FLOOR = """
import os
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

class One(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x: int = 1

One.model_validate(yaml.load("x: 2", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
"""


def bench_cli(tmp: Path, repeat: int = 10) -> dict[str, Any]:
    app = tmp / "hydra_app.py"
    app.write_text(HYDRA_APP.format(dir=str(BASELINE.parent), name=BASELINE.stem))
    env = child_env()
    env_argv = [python(), "-m", "aiconfig", "validate"]
    strict = process_ms([*env_argv, str(BASELINE)], repeat=repeat, cwd=str(REPO), env=env)
    unsigned = process_ms(
        [*env_argv, "--allow-unsigned", str(BASELINE)], repeat=repeat, cwd=str(REPO), env=env
    )
    hydra = process_ms(
        [python(), str(app), f"hydra.run.dir={tmp}/out", "hydra.output_subdir=null"],
        repeat=repeat,
        cwd=str(tmp),
        env=env,
    )
    bare = process_ms([python(), "-c", "pass"], repeat=repeat, env=env)
    floor = process_ms([python(), "-c", THIRD_PARTY_FLOOR], repeat=repeat, env=env)
    ratio = round(strict["median_ms"] / hydra["median_ms"], 3)
    return {
        "python_startup": bare,
        "third_party_floor": floor,
        "aiconfig_own_median_ms": round(strict["median_ms"] - floor["median_ms"], 1),
        "aiconfig_validate_signed": strict,
        "aiconfig_validate_unsigned": unsigned,
        "hydra_app_print_one_value": hydra,
        "validate_over_hydra_ratio": ratio,
        "targets": {
            "validate_signed_median_ms": TARGETS["validate_signed_ms"],
            "validate_over_hydra_ratio": TARGETS["validate_over_hydra"],
        },
        "meets_targets": strict["median_ms"] <= TARGETS["validate_signed_ms"]
        and ratio <= TARGETS["validate_over_hydra"],
    }


def bench_verify(tmp: Path) -> dict[str, Any]:
    import subprocess

    from aiconfig._trust import verify_signatures

    data = BASELINE.read_bytes()
    ours = time_ms(lambda: verify_signatures(BASELINE, data, keys=REPO / "keys"), repeat=200)
    sig = BASELINE.with_name(BASELINE.name + ".sig")
    argv = [
        "ssh-keygen",
        "-Y",
        "verify",
        "-f",
        str(REPO / "keys" / "allowed_signers"),
        "-I",
        "lead@aiconfig.dev",
        "-n",
        "aiconfig",
        "-s",
        str(sig),
    ]

    def ssh() -> None:
        subprocess.run(argv, input=data, check=True, capture_output=True)

    peer = time_ms(ssh, repeat=20)
    return {
        "aiconfig_verify_2_signatures": ours,
        "ssh_keygen_verify_1_signature_process": peer,
        "ratio": round(peer["median_ms"] / ours["median_ms"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("AP_DATA_ROOT", tempfile.mkdtemp(prefix="aiconfig-bench-"))
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results["baseline_signed"] = bench_signed_load(tmp / "state")
        results["baseline"] = bench_in_process(BASELINE)
        if not quick:
            for leaves in (200, 2000):
                path = tmp / f"gen{leaves}.yaml"
                path.write_text(generated(leaves))
                results[f"generated_{leaves}_leaves"] = bench_in_process(path)
        results["cli_cold_start"] = bench_cli(tmp, repeat=5 if quick else 15)
        results["cold_start_breakdown"] = {
            "importtime_validate_signed_ms": import_breakdown(
                ["-m", "aiconfig", "validate", str(BASELINE)], runs=3 if quick else 5
            ),
            "load_step_ms": load_steps(tmp / "state"),
        }
        results["verify"] = bench_verify(tmp)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
