#!/usr/bin/env bash
# The main job on a built-in default: verify the signed baseline config, then record a short
# capture session of a "League of Legends" window (a stand-in window on a private virtual X
# display) driven by that config, and validate the session. Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The project venv that setup.sh made, first on PATH (so `aiconfig`, `python3` are its own).
. "${AICONFIG_VENV:-.venv}/bin/activate"
PY="$VIRTUAL_ENV/bin/python"
OUT=${OUT:-runs/demo}
DURATION=${DURATION:-5}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)   # relative or absolute, as given
export AP_DATA_ROOT="$OUT/state"   # anti-rollback state for this demo

echo "== 1. verify the signed baseline"
"$PY" -m aiconfig verify experiments/baseline.yaml
"$PY" -m aiconfig lineage experiments/lr-1e-3.yaml

cleanup() {
  kill "${WIN_PID:-}" "${XVFB_PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true   # reap them: no zombie Xvfb left behind
}
trap cleanup EXIT
if [ -z "${DISPLAY:-}" ]; then
  echo "== 2. start a private virtual display (Xvfb)"
  # Xvfb picks a free display and writes its number to fd 3 once it accepts clients; $! is
  # the pid of exactly the server started here (never looked up by name: another user's
  # Xvfb may start at the same moment).
  DISPLAY_FILE="$OUT/xvfb.display"
  : >"$DISPLAY_FILE"
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$DISPLAY_FILE" 2>/dev/null &
  XVFB_PID=$!
  for _ in $(seq 200); do
    [ -s "$DISPLAY_FILE" ] && break
    kill -0 "$XVFB_PID" 2>/dev/null || { echo "demo: Xvfb exited before it was ready" >&2; exit 1; }
    sleep 0.1
  done
  read -r num <"$DISPLAY_FILE" || { echo "demo: Xvfb did not start within 20 s" >&2; exit 1; }
  export DISPLAY=":$num"
  echo "   Xvfb pid $XVFB_PID on DISPLAY=$DISPLAY"
fi
echo "   DISPLAY=$DISPLAY; opening a stand-in 'League of Legends' window"
"$PY" tests/capture/testwin.py "League of Legends" 100 100 1280 720 > "$OUT/window.log" &
WIN_PID=$!
for _ in $(seq 50); do grep -q READY "$OUT/window.log" 2>/dev/null && break; sleep 0.1; done

RUN_ID="demo-$(date -u +%Y%m%dT%H%M%S)"
echo "== 3. record ${DURATION}s with the baseline's capture settings (run $RUN_ID)"
"$PY" -m aiconfig capture --config experiments/baseline.yaml --duration "$DURATION" \
  --run-id "$RUN_ID" --out "$OUT/$RUN_ID" --lock-dir "$OUT/locks" --quiet
SESSION=$(ls -d "$OUT/$RUN_ID"/session_* | tail -n 1)
"$PY" -m aiconfig manifest verify "$OUT/$RUN_ID"

echo "== 4. validate $SESSION"
"$PY" -m capture validate "$SESSION"
"$PY" - "$SESSION" <<'PYEOF'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metadata.json"))
keys = ["session_id", "fps", "actual_fps", "capture_fps", "dropped_frames", "padded_frames",
        "screen_resolution", "window_id", "duration_s"]
print(json.dumps({k: m.get(k) for k in keys}, indent=2))
PYEOF
ls -la "$SESSION"
