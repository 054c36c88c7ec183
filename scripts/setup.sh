#!/usr/bin/env bash
# Installs everything aiconfig, its jobs and its tests need on Debian 12 (run as root):
# the Debian packages, then a project virtual environment (.venv/) holding PyTorch (pinned)
# and the package itself with every extra in pyproject.toml, editable.
#
# Debian's python3 is "externally managed" (PEP 668): pip refuses to install into it. So
# nothing here installs into the interpreter: it only creates the venv. Use the venv with
#   . .venv/bin/activate          (then `aiconfig ...`, `python -m capture ...` work)
# or call .venv/bin/python / .venv/bin/aiconfig directly, as scripts/test.sh and demo.sh do.
#
# Environment: PYTHON   the interpreter the venv is created from (default: python3)
#              AICONFIG_VENV  where the venv lives (default: .venv in the checkout)
# Idempotent: a second run installs nothing new and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  git openssh-client            # real ssh-keygen / ssh-agent for signature interop; git for diff --git
  xvfb xdotool x11-utils        # a real X server for capture tests and the demo
  ffmpeg                        # ffprobe checks outputs; x11grab is the benchmark peer
  pulseaudio pulseaudio-utils libasound2-plugins sox libportaudio2   # system-audio capture
  python3-tk                    # the test window titled "League of Legends"
  python3-venv                  # `python3 -m venv` (Debian ships venv/ensurepip separately)
  chromium                      # renders the session report headless in the tests
  util-linux iproute2           # taskset, prlimit, unshare -n for budget and offline tests
)
# Node.js runs yaml-language-server, the editor backend the JSON Schema tests drive; a
# machine that already has node and npm (e.g. from NodeSource) keeps them.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

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

YAML_LS_VERSION=1.25.0
if [[ "$(yaml-language-server --version 2>/dev/null)" != "$YAML_LS_VERSION" ]]; then
  npm install -g --silent "yaml-language-server@$YAML_LS_VERSION" >/dev/null
fi

PY=${PYTHON:-python3}
VENV=${AICONFIG_VENV:-.venv}
# A venv whose interpreter is gone (base Python removed or moved) is rebuilt from scratch.
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c "import sys" >/dev/null 2>&1; then
  echo "setup: $VENV is broken; recreating it" >&2
  rm -rf "$VENV"
fi
if [ ! -e "$VENV/bin/python" ]; then
  echo "setup: creating the virtual environment $VENV (from $("$PY" -c 'import sys; print(sys.executable)'))" >&2
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install -q --disable-pip-version-check)

# PyTorch first and pinned: the CPU build is available locally; an unpinned torch would pull
# several GB of CUDA packages.
TORCH_OK='import importlib.metadata as m, sys; sys.exit(m.version("torch").split("+")[0] != "2.13.0")'
if ! "$VPY" -I -c "$TORCH_OK" >/dev/null 2>&1; then
  echo "setup: installing torch==2.13.0 into $VENV" >&2
  "${PIP[@]}" "torch==2.13.0"
fi

# Every extra pyproject.toml declares (capture, monitoring, dev, ...), so each test finds what
# it imports. Reinstalled only when pyproject.toml changes (its digest is kept in the venv).
EXTRAS=$("$VPY" -c '
import tomllib
with open("pyproject.toml", "rb") as f:
    print(",".join(sorted(tomllib.load(f)["project"].get("optional-dependencies", {}))))
')
# editable_mode=compat: the checkout goes on sys.path through a plain .pth line. The default
# mode installs an import-hook finder that every interpreter start imports (pathlib, fnmatch,
# importlib.util, urllib.parse): about 16 ms more for each `aiconfig` command on this machine.
STAMP="$VENV/.aiconfig-setup"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1) $(pwd) [$EXTRAS] compat"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! "$VPY" -I -c "import aiconfig" >/dev/null 2>&1; then
  echo "setup: pip install -e \".[$EXTRAS]\" into $VENV" >&2
  "${PIP[@]}" -e ".[$EXTRAS]" --config-settings editable_mode=compat
  echo "$WANT" >"$STAMP"
fi
