"""``aiconfig infer --config FILE``: run the configured backend over input, with telemetry.

Backends (``inference.backend``):

* ``torch`` -- frames from ``--frames`` (a ``.npy`` of uint8 ``(N, H, W, 3)`` or a video) or
  ``--synthetic N`` seeded random frames, through ``model.checkpoint`` (a ``torch.export``
  ``.pt2``) or the built-in seeded demo policy; one call per frame.
* ``vllm`` -- prompts from ``--prompt`` (repeatable) or ``--prompts FILE`` (one a line) sent to
  the external sidecar after a preflight (``--skip-preflight`` to skip); ``--completion`` uses
  ``/v1/completions`` instead of chat, ``--stream`` streams.

The command parses its flags, loads the config and calls
:func:`aiconfig.inference.run_infer_job` (docs/inference.md describes the run's files, the
ready file and the exit status).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..harness.settings import add_run_arguments
from ._common import add_trust_options, load_from_args


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "infer",
        help="run the configured inference backend over frames or prompts, with telemetry",
        description="Run inference.backend of a config over input under its latency budget, "
        "bounded concurrency and queue, with the config's monitoring. One JSON line per call "
        "on stdout, then a summary line; exit 1 if any call failed.",
    )
    p.add_argument("--config", required=True, metavar="FILE")
    src = p.add_argument_group("input (torch)")
    src.add_argument("--frames", metavar="PATH", help=".npy uint8 (N,H,W,3) or a video file")
    src.add_argument("--synthetic", type=int, metavar="N", help="N seeded random frames")
    llm = p.add_argument_group("input (vllm)")
    llm.add_argument("--prompt", action="append", default=[], metavar="TEXT")
    llm.add_argument("--prompts", metavar="FILE", help="one prompt a line")
    llm.add_argument("--completion", action="store_true", help="use /v1/completions, not chat")
    llm.add_argument("--stream", action="store_true", help="stream tokens (SSE)")
    llm.add_argument("--skip-preflight", action="store_true", help="do not check the sidecar")
    run_g = p.add_argument_group("run")
    run_g.add_argument(
        "--in-flight",
        type=int,
        metavar="K",
        help="calls outstanding at once (default inference.max_concurrency x max_batch_size; "
        "above what the model can hold, max_concurrency + max_queue, the excess is refused, "
        "by design)",
    )
    run_g.add_argument("--budget-ms", type=float, metavar="MS", help="override the budget")
    add_run_arguments(
        p, out_default="runs/infer"
    )  # --run-id --out --no-network --log-json --ready-file ...
    add_trust_options(p, data_root=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ..harness.settings import resolve_settings
    from ..inference import InferRequest, read_prompts, run_infer_job
    from ..monitoring import setup_for_run

    # Bad run settings are refused before anything else; without --out / AP_OUT_DIR each
    # run gets runs/infer/<run id>.
    settings = resolve_settings(
        args, "infer", default_out=Path("runs") / "infer", default_out_per_run=True
    )
    request = InferRequest(
        frames=args.frames,
        synthetic=args.synthetic,
        prompts=read_prompts(args.prompt, args.prompts),
        completion=args.completion,
        stream=args.stream,
        skip_preflight=args.skip_preflight,
        in_flight=args.in_flight,
        budget_ms=args.budget_ms,
    )
    load_start = time.time_ns()
    cfg = load_from_args(args.config, args)
    loaded = (load_start, time.time_ns())
    run_infer_job(
        cfg, settings, request, telemetry=setup_for_run, loaded_ns=loaded, emit=sys.stdout.write
    )
    return 0
