#!/usr/bin/env bash
# Load an `aiconfig sessions export --format lerobot` dataset with LeRobot's own loader.
#
#   scripts/check_lerobot.sh OUT
#
# LeRobot 0.4.4 (codebase v3.0) needs torch<2.11, so it lives in a venv of its own:
# LEROBOT_VENV=DIR reuses one that has it (e.g. LEROBOT_VENV=/work/lerobot-venv); otherwise
# .venv-lerobot/ is created and torch 2.9.1, torchvision 0.24.1, lerobot 0.4.4 and torchcodec
# 0.8.1 are installed into it (several GB). Prints what LeRobotDataset(root=OUT) loaded and
# exits 1 if anything disagrees with the export (timestamps, lengths, frames).
set -euo pipefail
OUT=${1:?usage: scripts/check_lerobot.sh OUT}
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${LEROBOT_VENV:-$HERE/.venv-lerobot}
if ! "$VENV/bin/python" -c "import lerobot, torchcodec" 2>/dev/null; then
  echo "creating $VENV with lerobot 0.4.4 (several GB)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.9.1 torchvision==0.24.1 lerobot==0.4.4
  "$VENV/bin/pip" install -q torchcodec==0.8.1
fi
exec "$VENV/bin/python" - "$OUT" <<'PY'
import sys
from importlib.metadata import version

import av
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

root = sys.argv[1]
print(f"lerobot {version('lerobot')}, torch {version('torch')}, torchcodec {version('torchcodec')}")
ds = LeRobotDataset("aiconfig/export", root=root)
meta = ds.meta
print(f"loaded {root}: codebase {meta.info['codebase_version']}, {ds.num_episodes} episodes, "
      f"{ds.num_frames} frames, fps {ds.fps}")
print("features:", {k: (v["dtype"], tuple(v["shape"])) for k, v in ds.features.items()})
problems = []
key = "observation.images.screen"
checked = 0
for e in range(ds.num_episodes):
    ep = meta.episodes[e]
    a, b = ep["dataset_from_index"], ep["dataset_to_index"]
    print(f"episode {e}: {ep['length']} frames, session {ep['aiconfig/session_id']}, "
          f"config {ep['aiconfig/config_name']} {str(ep['aiconfig/config_digest'])[:12]}, "
          f"signers {list(ep['aiconfig/signers'])}, run {ep['aiconfig/run_id']}")
    video = f"{root}/" + meta.video_path.format(
        video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
        file_index=ep[f"videos/{key}/file_index"])
    with av.open(video) as c:
        ours = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for i in sorted({a, (a + b) // 2, b - 1}):
        item = ds[i]
        j = int(item["frame_index"])
        if abs(float(item["timestamp"]) - j / ds.fps) > 1e-4:
            problems.append(f"index {i}: timestamp {float(item['timestamp'])} != {j}/{ds.fps}")
        got = (item[key].numpy().transpose(1, 2, 0) * 255).round()
        diff = float(np.abs(got - ours[j].astype(np.float64)).mean())
        print(f"  index {i}: frame {j} t={float(item['timestamp']):.4f} image {tuple(item[key].shape)} "
              f"action {item['action'].shape} state {item['observation.state'].shape}; "
              f"mean |LeRobot - PyAV| = {diff:.3f}/255")
        if diff > 2.0:
            problems.append(f"index {i}: LeRobot's frame differs from PyAV's (mean {diff:.2f})")
        checked += 1
for p in problems:
    print("problem:", p)
print(("FAILED" if problems else "OK") + f": {checked} items checked")
sys.exit(1 if problems else 0)
PY
