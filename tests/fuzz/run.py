"""Coverage-guided fuzzing of one target with atheris (libFuzzer for Python).

    python -m tests.fuzz.run TARGET [CORPUS_DIR ...] [libFuzzer flags, e.g. -runs=2000]

The product's own modules (``aiconfig``, ``capture``) are instrumented for coverage. An input
that makes the target raise anything but ``AiconfigError`` is a crash: libFuzzer prints the
traceback, saves the input (``-artifact_prefix``) and exits non-zero. A hang is an input that
takes over 1 s (``-timeout=1``); a memory blow-up is RSS growing by more than 256 MB over what
the warmed-up process holds (``-rss_limit_mb`` is set from that). ``scripts/fuzz.sh`` runs every
target for a long time; the test suite runs each one briefly on ``tests/fuzz/corpus/``.
"""

from __future__ import annotations

import importlib
import resource
import sys

import atheris

_REACHED = (
    "aiconfig._fork",
    "aiconfig._interpolate",
    "aiconfig._loader",
    "aiconfig._schema",
    "aiconfig._trust.sshsig",
    "aiconfig._trust.store",
    "aiconfig._yamlsafe",
    "aiconfig.harness.manifest",
    "capture._events",
    "capture._validate",
    "aiconfig.sessions._catalog",
    "aiconfig.sessions._format",
    "aiconfig.sessions._manifest",
    "aiconfig.sessions._scan",
    "aiconfig.sessions._session",
    "aiconfig.sessions._validate",
    "aiconfig.sessions._video",
)
HANG_S = 1
GROWTH_MB = 256


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.stderr.write(
            "usage: python -m tests.fuzz.run TARGET [CORPUS_DIR ...] [-flag=value ...]\n"
        )
        raise SystemExit(2)
    name = argv[1]
    with atheris.instrument_imports(include=["aiconfig", "capture"]):
        from tests.fuzz import targets

        # Load the modules each target reaches lazily, so they are instrumented too.
        for module in _REACHED:
            importlib.import_module(module)
    if name not in targets.TARGETS and name != "_planted_bug":
        sys.stderr.write(f"unknown target {name!r}; one of: {', '.join(targets.TARGETS)}\n")
        raise SystemExit(2)
    # Warm up on every committed seed (lazy imports, caches) before the limits start counting.
    corpus = targets.CORPUS / name
    for seed in sorted(corpus.iterdir()) if corpus.is_dir() else ():
        targets.call(name, seed.read_bytes())
    limit = _rss_mb() + GROWTH_MB
    flags = [a for a in argv[2:] if a.startswith("-")]
    dirs = [a for a in argv[2:] if not a.startswith("-")]
    defaults = {"-timeout": str(HANG_S), "-rss_limit_mb": str(limit), "-max_len": "65536"}
    given = {f.split("=", 1)[0] for f in flags}
    flags += [f"{k}={v}" for k, v in defaults.items() if k not in given]

    def one_input(data: bytes) -> None:
        targets.call(name, data)

    atheris.Setup([argv[0], *flags, *dirs], one_input)
    try:
        atheris.Fuzz()
    finally:
        if targets._SCRATCH is not None:
            targets._SCRATCH.close()


if __name__ == "__main__":
    main(sys.argv)
