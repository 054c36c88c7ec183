#!/usr/bin/env bash
# Long fuzzing runs: every target (or those named) for FUZZ_SECONDS each (default 600), with
# new inputs merged into a working corpus under fuzz-out/ and crashes saved beside it.
#   bash scripts/fuzz.sh                     # all targets, 10 min each
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh signature yaml_loader
# A crash prints the input's path; reproduce it with
#   python -m tests.fuzz.run TARGET fuzz-out/crashes/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
SECONDS_EACH=${FUZZ_SECONDS:-600}
mapfile -t ALL < <("$PY" -c 'from tests.fuzz.targets import TARGETS; print("\n".join(TARGETS))')
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
status=0
for t in "${TARGETS[@]}"; do
  work="fuzz-out/corpus/$t"; crashes="fuzz-out/crashes/$t"
  mkdir -p "$work" "$crashes"
  cp -n tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  echo "== $t (${SECONDS_EACH}s)"
  if ! PYTHONPATH=. "$PY" -m tests.fuzz.run "$t" "$work" -max_total_time="$SECONDS_EACH" \
      -artifact_prefix="$crashes/" -print_final_stats=1 2> "fuzz-out/$t.log"; then
    echo "   CRASH: see fuzz-out/$t.log and $crashes/" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|Done" "fuzz-out/$t.log" | tail -2 | sed 's/^/   /'
done
exit "$status"
