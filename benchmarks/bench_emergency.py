"""What emergency overrides cost a trusted load, against the same load without them.

Three in-process loads of a signed baseline (fresh ssh-keygen keys in a temp dir): no
``emergency/`` directory (the common case: one ``stat``), one active signed override (verified
before parsing, merged, re-validated), and the same with an expired one beside it. Prints JSON
with medians and ratios to the plain load.

    python -m benchmarks.bench_emergency
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiconfig import EmergencyOverrideWarning, load
from aiconfig._emergency import override_path, render_override
from aiconfig._trust.signing import allowed_signers_line, generate_keypair, sign_file
from benchmarks._util import time_ms

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-emergency-") as tmp:
        root = Path(tmp)
        (root / "keys").mkdir()
        (root / "experiments").mkdir()
        lines = []
        for who in ("lead", "research"):
            pub = generate_keypair(root / "private" / who, comment=who)
            lines.append(allowed_signers_line(f"{who}@bench", pub))
        (root / "keys" / "allowed_signers").write_text("\n".join(lines) + "\n", encoding="utf-8")
        policy = (REPO / "keys" / "policy.yaml").read_text(encoding="utf-8")
        policy = policy.replace("lead@aiconfig.dev", "lead@bench")
        (root / "keys" / "policy.yaml").write_text(policy, encoding="utf-8")
        base = root / "experiments" / "baseline.yaml"
        text = (REPO / "experiments" / "baseline.yaml").read_text(encoding="utf-8")
        listed = "  emergency: [inference.latency_budget_ms]\n  locked:"
        base.write_text(text.replace("  locked:", listed, 1), encoding="utf-8")
        for who in ("lead", "research"):
            sign_file(base, root / "private" / who)
        state = root / "state"

        def run() -> None:
            load(base, data_root=state, env={}, record=False)

        results = {"plain": time_ms(run, repeat=60)}
        now = datetime.now(UTC).replace(microsecond=0)
        sha = hashlib.sha256(base.read_bytes()).hexdigest()
        stale = now - timedelta(days=2)
        for label, created in (("one_active", now), ("active_and_expired", stale)):
            path = override_path(base, created)
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(
                render_override(
                    base_rel="../baseline.yaml",
                    base_sha256=sha,
                    reason="benchmark",
                    created=created,
                    expires=created + timedelta(hours=2),
                    overrides={"inference.latency_budget_ms": 120},
                )
            )
            sign_file(path, root / "private" / "lead")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EmergencyOverrideWarning)
                results[label] = time_ms(run, repeat=60)
        shutil.rmtree(root / "experiments" / "emergency")
        plain = results["plain"]["median_ms"]
        report = {
            "benchmark": "emergency_override_load",
            "peer": "the same signed load with no emergency directory",
            "results": results,
            "ratio_to_plain": {
                k: round(v["median_ms"] / plain, 2) for k, v in results.items() if k != "plain"
            },
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
