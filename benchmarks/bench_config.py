"""Config load cost against OmegaConf and Hydra, and `aiconfig validate` start-up vs a Hydra app.

Prints one JSON object. Every comparison runs in the same process/run, so ratios are meaningful
on a noisy machine. Run: ``python benchmarks/bench_config.py``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
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


def bench_cli(tmp: Path) -> dict[str, Any]:
    app = tmp / "hydra_app.py"
    app.write_text(HYDRA_APP.format(dir=str(BASELINE.parent), name=BASELINE.stem))
    env_argv = [python(), "-m", "aiconfig", "validate"]
    strict = process_ms([*env_argv, str(BASELINE)], cwd=str(REPO))
    unsigned = process_ms([*env_argv, "--allow-unsigned", str(BASELINE)], cwd=str(REPO))
    hydra = process_ms(
        [python(), str(app), f"hydra.run.dir={tmp}/out", "hydra.output_subdir=null"],
        cwd=str(tmp),
    )
    bare = process_ms([python(), "-c", "pass"])
    return {
        "python_startup": bare,
        "aiconfig_validate_signed": strict,
        "aiconfig_validate_unsigned": unsigned,
        "hydra_app_print_one_value": hydra,
        "validate_over_hydra_ratio": round(strict["median_ms"] / hydra["median_ms"], 3),
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


def main() -> int:
    os.environ.setdefault("AP_DATA_ROOT", tempfile.mkdtemp(prefix="aiconfig-bench-"))
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results["baseline"] = bench_in_process(BASELINE)
        for leaves in (200, 2000):
            path = tmp / f"gen{leaves}.yaml"
            path.write_text(generated(leaves))
            results[f"generated_{leaves}_leaves"] = bench_in_process(path)
        results["cli_cold_start"] = bench_cli(tmp)
        results["verify"] = bench_verify(tmp)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
