#!/usr/bin/env python3
"""Harness entrypoint named by the orchestrator contract; the same as ``aiconfig pipeline``.

    python3 tools/run_fixture_pipeline.py --manifest M --out DIR --run-id ID --data-root D \
        --no-network --ready-file DIR/ready.json --log-json \
        --config-template tools/fixture_config_template.json --force-idle
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing: the checkout's own package comes first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiconfig.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["pipeline", *sys.argv[1:]]))
