#!/usr/bin/env bash
# bench/kernels.sh: the CPU reference convolutions (the oracle) against PyTorch
# on xresnet18's conv shapes, forward + both backward passes, same threads.
#   ./run.sh bench kernels [--bs N] [--size S] [--reps R]
# Prints one JSON object: ours, the peer's, and the ratio. The peer needs
# /opt/venv/bin/python with torch (else "peer": null with the reason).
set -euo pipefail
BIN="${NF_BIN_DIR:?run through ./run.sh bench kernels}"
ROOT="${NF_ROOT:?run through ./run.sh bench kernels}"
bs=8 size=64 reps=3
while [ $# -gt 0 ]; do
  case "$1" in
    --bs) bs="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    *) echo "usage: ./run.sh bench kernels [--bs N] [--size S] [--reps R]" >&2; exit 2 ;;
  esac
done
threads="${OMP_NUM_THREADS:-$(nproc)}"
ours=$(OMP_NUM_THREADS="$threads" "$BIN/nf_bench_kernels" --bs "$bs" --size "$size" --reps "$reps")
py="${NF_PYTHON:-/opt/venv/bin/python}"
if [ -x "$py" ]; then
  peer=$("$py" "$ROOT/bench/kernels_peer.py" --bs "$bs" --size "$size" --threads "$threads" --reps "$reps" 2>/dev/null \
         || echo '{"peer": null, "reason": "peer script failed"}')
else
  peer='{"peer": null, "reason": "no python at '"$py"'"}'
fi
python3 - "$ours" "$peer" <<'PY' 2>/dev/null || printf '{"ours": %s, "peer": %s}\n' "$ours" "$peer"
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = {"ours": o, "peer": p}
if p.get("gflops"):
    r["ours_vs_peer"] = round(o["gflops"] / p["gflops"], 3)
print(json.dumps(r))
PY
