"""``aiconfig check-sidecar``: preflight the external vLLM sidecar and print the diagnosis.

Exit 0 when the sidecar is ready (``/health`` answers, ``/v1/models`` lists the configured
model, the API key, if any, is accepted); exit 1 otherwise, after printing what was tried, what
answered and how to fix it. It never starts vLLM.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._common import add_trust_options, load_from_args, print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check-sidecar",
        help="preflight the vLLM sidecar (/health, /v1/models, model, key); exit 1 if not ready",
        description="Check the external vLLM sidecar the way a job would before using it, and "
        "print what was tried, what answered and how to fix it. Settings come from "
        "inference.vllm of --config (default: http://127.0.0.1:8000 and the schema's model); "
        "--base-url/--model override them. Exit 1 when the sidecar is not ready.",
    )
    p.add_argument("--config", metavar="FILE", help="take inference.vllm from this config")
    p.add_argument("--base-url", metavar="URL", help="sidecar URL (default http://127.0.0.1:8000)")
    p.add_argument("--model", metavar="NAME", help="model that must be served")
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="read the API key from this environment variable (e.g. VLLM_API_KEY)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep polling this long while the sidecar is down, loading or busy (default 0)",
    )
    p.add_argument(
        "--no-network",
        action="store_true",
        help="offline mode (same as AP_NO_NETWORK=1): only loopback URLs are allowed",
    )
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    add_trust_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from pydantic import SecretStr, ValidationError

    from .._errors import AiconfigError
    from .._network import offline
    from .._schema import VLLMConfig
    from ..inference.sidecar import preflight

    if args.wait < 0:
        raise AiconfigError("--wait must be >= 0 seconds")
    base = (
        load_from_args(args.config, args, record=False).inference.vllm
        if args.config
        else VLLMConfig()
    )
    updates: dict[str, Any] = {}
    if args.base_url:
        updates["base_url"] = args.base_url
    if args.model:
        updates["model"] = args.model
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise AiconfigError(f"--api-key-env: environment variable {args.api_key_env} is unset")
        updates["api_key"] = SecretStr(key)
    try:
        cfg = VLLMConfig.model_validate({**base.model_dump(), **updates})
    except ValidationError as exc:
        from dataclasses import replace

        from .._explain import translate

        problems = translate(
            exc, {**base.model_dump(), **updates}, root=VLLMConfig, default_source=None
        )
        # A flag's problem names the flag (--base-url), not the config key.
        raise AiconfigError(
            [
                replace(p, path=f"--{p.path.replace('_', '-')}" if p.path in updates else p.path)
                for p in problems
            ]
        ) from None
    # --no-network turns the process guard on for the check (and off again after it).
    with offline() if args.no_network else contextlib.nullcontext():
        diagnosis = asyncio.run(preflight(cfg, wait_s=args.wait))
    if args.json:
        print_json(diagnosis.to_dict())
    else:
        sys.stdout.write("\n".join(diagnosis.render()) + "\n")
    return 0 if diagnosis.ready else 1
