#!/usr/bin/env bash
# Installs everything aiconfig, its jobs and its tests need on Debian (run as root) with
# Python 3.11. Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  git openssh-client            # real ssh-keygen / ssh-agent for signature interop; git for diff --git
  xvfb xdotool x11-utils        # a real X server for capture tests and the demo
  ffmpeg                        # ffprobe checks outputs; x11grab is the benchmark peer
  pulseaudio pulseaudio-utils libasound2-plugins sox libportaudio2   # system-audio capture
  python3-tk                    # the test window titled "League of Legends"
  chromium                      # renders the session report headless in the tests
  util-linux iproute2           # taskset, prlimit, unshare -n for budget and offline tests
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  [[ "$pkg" == \#* ]] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# PyTorch first and pinned: the CPU build is available locally; an unpinned torch would pull
# several GB of CUDA packages.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
fi
"$PY" -m pip install -q --disable-pip-version-check -e ".[capture,monitoring,sessions,ray,dev]"
