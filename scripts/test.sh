#!/usr/bin/env bash
# The whole test suite: set-up, lint, types, then every test (real Xvfb, PulseAudio, ssh-keygen,
# ffprobe and git are started or called by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The project venv that setup.sh made, first on PATH (so `aiconfig`, `python3` are its own).
. "${AICONFIG_VENV:-.venv}/bin/activate"
PY="$VIRTUAL_ENV/bin/python"
echo "== ruff"; "$PY" -m ruff check . && "$PY" -m ruff format --check .
echo "== mypy"; "$PY" -m mypy
# The capture package type-checks for the other platforms' code paths too (their backends run
# over fakes here, for real in .github/workflows/capture-os.yml).
for platform in win32 darwin; do
  echo "== mypy --platform $platform capture"; "$PY" -m mypy --platform "$platform" capture
done
echo "== pytest"
set +e
"$PY" -m pytest -p no:cacheprovider --cov --cov-report=term:skip-covered "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
