#!/usr/bin/env bash
# The main job on a built-in default: verify the signed baseline config, then record short capture
# sessions of a "League of Legends" window (a stand-in window on a private virtual X display)
# while keyboard and mouse input is injected into it (XTEST, through xdotool), one driven by that
# config and one with system audio (a tone played into a PulseAudio null sink); validate them,
# list and query them as a catalog, and end by writing the session report (HTML) and printing its
# path. Everything lands in runs/demo/.
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

PIDS=()
cleanup() {  # newest first: the window and the player before the servers they talk to
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
if [ -z "${DISPLAY:-}" ]; then
  echo "== 2. start a private virtual display (Xvfb)"
  # Xvfb picks a free display and writes its number to fd 3 once it accepts clients; $! is
  # the pid of exactly the server started here (never looked up by name: another user's
  # Xvfb may start at the same moment).
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$OUT/display" 2>/dev/null &
  XVFB_PID=$!
  PIDS+=("$XVFB_PID")
  for _ in $(seq 200); do
    [ -s "$OUT/display" ] && break
    kill -0 "$XVFB_PID" 2>/dev/null || { echo "demo: Xvfb exited before it was ready" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$OUT/display" ] || { echo "demo: Xvfb did not start within 20 s" >&2; exit 1; }
  export DISPLAY=":$(cat "$OUT/display")"
  echo "   Xvfb pid $XVFB_PID on DISPLAY=$DISPLAY"
fi
echo "   DISPLAY=$DISPLAY; opening a stand-in 'League of Legends' window"
"$PY" tests/capture/testwin.py "League of Legends" 100 100 1280 720 >"$OUT/window.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q READY "$OUT/window.log" 2>/dev/null && break; sleep 0.1; done
WID=$(awk '/READY/ {print $2; exit}' "$OUT/window.log")

echo "   a private PulseAudio daemon with a null sink (capsink) playing a 997 Hz tone"
PULSE_HOME="$OUT/pulse"
mkdir -p "$PULSE_HOME/run" && chmod 700 "$PULSE_HOME/run"
export XDG_RUNTIME_DIR="$PULSE_HOME/run" PULSE_COOKIE="$PULSE_HOME/cookie"
HOME="$PULSE_HOME" pulseaudio -n --daemonize=no --exit-idle-time=-1 --disallow-exit \
  --load=module-native-protocol-unix --load="module-null-sink sink_name=capsink" \
  >"$PULSE_HOME/daemon.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
sox -q -n -r 44100 -c 2 -b 16 "$OUT/tone.wav" synth 60 sine 997 vol 0.4
paplay --device=capsink "$OUT/tone.wav" &
PIDS+=($!)

# Keys and clicks into the stand-in window while it records (xdotool sends them through XTEST;
# input is logged only while the target window has focus, so focus it first).
play() {
  xdotool windowfocus --sync "$WID" 2>/dev/null || xdotool windowfocus "$WID"
  sleep 1
  local i=0
  while :; do  # until the recording ends (the caller stops it)
    i=$((i + 1))
    xdotool mousemove --window "$WID" $((100 + i * 37 % 1000)) $((80 + i * 53 % 560)) \
      click --delay 0 1 key --delay 20 q w e r
    sleep 0.2
  done
}

RUN_ID="demo-$(date -u +%Y%m%dT%H%M%S)"
echo "== 3. record ${DURATION}s with the baseline's capture settings (run $RUN_ID), with input"
play & PLAYER=$!
"$PY" -m aiconfig capture --config experiments/baseline.yaml --duration "$DURATION" \
  --run-id "$RUN_ID" --out "$OUT/$RUN_ID" --lock-dir "$OUT/locks" --quiet
kill "$PLAYER" 2>/dev/null || true; wait "$PLAYER" 2>/dev/null || true
SESSION=$(ls -d "$OUT/$RUN_ID"/session_* | tail -n 1)
"$PY" -m aiconfig manifest verify "$OUT/$RUN_ID"

echo "== 4. record ${DURATION}s more with system audio (python -m capture --audio), with input"
play & PLAYER=$!
AUDIO_SESSION=$("$PY" -m capture --duration "$DURATION" --audio --quiet --out "$OUT/audio")
kill "$PLAYER" 2>/dev/null || true; wait "$PLAYER" 2>/dev/null || true

echo "== 5. validate $SESSION and $AUDIO_SESSION"
"$PY" -m capture validate "$SESSION"
"$PY" -m capture validate "$AUDIO_SESSION"
"$PY" - "$SESSION" <<'PYEOF'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metadata.json"))
keys = ["session_id", "fps", "actual_fps", "capture_fps", "dropped_frames", "padded_frames",
        "screen_resolution", "window_id", "duration_s", "event_counts"]
print(json.dumps({k: m.get(k) for k in keys}, indent=2))
PYEOF

echo "== 6. the sessions as a catalog"
"$PY" -m aiconfig sessions index "$OUT"
"$PY" -m aiconfig sessions list "$OUT"
"$PY" -m aiconfig sessions query "$OUT" "SELECT session_id, count(*) FILTER (WHERE event_type = 'key_press') AS keys, count(*) FILTER (WHERE event_type = 'mouse_press') AS clicks FROM inputs GROUP BY session_id ORDER BY session_id"

echo "== 7. the session report"
REPORT="$OUT/$(basename "$AUDIO_SESSION")-report.html"
"$PY" -m aiconfig sessions report "$OUT" -o "$OUT/sessions-report.html" >/dev/null
"$PY" -m aiconfig sessions report "$AUDIO_SESSION" -o "$REPORT" >/dev/null
echo "report: $REPORT (all sessions: $OUT/sessions-report.html)"
