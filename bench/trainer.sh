#!/usr/bin/env bash
# bench/trainer.sh: full training steps (forward, loss, backward, fastai Adam)
# of the CPU backend against PyTorch on the same machine, in the same run.
#
#   ./run.sh bench trainer [--arch xresnet18] [--size 128] [--bs 64] [--threads T]
#                          [--steps 5] [--warmup 2] [--rounds 3] [--no-winograd] [--json]
#                          [--backend onednn|cuda] [--dtype bf16|f32] [--no-graphs]
#
# Ours: `trainer --bench` (onednn executor by default, synthetic batch). The
# peer: bench/trainer_peer.py (the same xresnet in PyTorch, channels_last,
# AdamW with fastai's hyper-parameters, same batch shape and threads), when
# /opt/venv/bin/python (or NF_PYTHON, else python3) has torch; else "peer":
# null with the reason. With --backend cuda both run on the GPU: ours in bf16
# with graphs and autotuning, the peer with bf16 autocast, cudnn.benchmark
# and the fused AdamW, each batch resident on the device. The two alternate for --rounds rounds so that load from other
# processes hits both alike; each side reports its best round (the least
# disturbed) and its median. Peak memory is each process's ru_maxrss.
# Prints one JSON object (with --json, else the same object pretty-printed).
set -euo pipefail
BIN="${NF_BIN_DIR:?run through ./run.sh bench trainer}"
ROOT="${NF_ROOT:?run through ./run.sh bench trainer}"
arch=xresnet18 size=128 bs=64 steps=5 warmup=2 rounds=3 threads="" wino="" json=0
backend=onednn dtype=bf16 graphs=""
usage() {
  echo "usage: ./run.sh bench trainer [--arch A] [--size S] [--bs B] [--threads T] [--steps N] [--warmup N] [--rounds R] [--no-winograd] [--json]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --bs) bs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --no-winograd) wino="--no-winograd"; shift ;;
    --backend) backend="$2"; shift 2 ;;
    --dtype) dtype="$2"; shift 2 ;;
    --no-graphs) graphs="--no-graphs"; shift ;;
    --json) json=1; shift ;;
    *) usage ;;
  esac
done
threads="${threads:-${OMP_NUM_THREADS:-$(nproc)}}"
py="${NF_PYTHON:-/opt/venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3 || echo python3)"
peer_ok=0
peer_args=()
if [ "$backend" = cuda ]; then
  peer_args=(--device cuda --amp "$([ "$dtype" = bf16 ] && echo bf16 || echo none)")
  if "$py" -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then peer_ok=1; fi
elif "$py" -c "import torch" >/dev/null 2>&1; then
  peer_ok=1
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

ours_runs=() peer_runs=()
for _ in $(seq "$rounds"); do
  ours_runs+=("$(OMP_NUM_THREADS="$threads" "$BIN/trainer" --bench --json --arch "$arch" \
      --size "$size" --bs "$bs" --threads "$threads" --steps "$steps" --warmup "$warmup" $wino \
      --backend "$backend" --dtype "$dtype" $graphs)")
  if [ "$peer_ok" = 1 ]; then
    peer_runs+=("$(OMP_NUM_THREADS="$threads" "$py" "$ROOT/bench/trainer_peer.py" --arch "$arch" \
        --size "$size" --bs "$bs" --threads "$threads" --steps "$steps" --warmup "$warmup" \
        "${peer_args[@]}" 2>/dev/null || echo '{"failed": true}')")
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
if [ "$backend" = cuda ] && command -v nvidia-smi >/dev/null 2>&1; then
  cpu="$cpu; GPU $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
fi

python3 - "$json" "$peer_ok" "$py" "$cpu" "$load_before" "$load_after" \
    "$(printf '%s\n' "${ours_runs[@]}")" "$(printf '%s\n' "${peer_runs[@]:-}")" <<'PY'
import json, statistics, sys
as_json, peer_ok, py, cpu, load0, load1, ours_s, peer_s = sys.argv[1:9]
ours = [json.loads(l) for l in ours_s.splitlines() if l.strip()]
peer = [json.loads(l) for l in peer_s.splitlines() if l.strip()]

def summary(runs):
    ok = [r for r in runs if "img_per_s" in r]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["img_per_s"])
    out = dict(best)
    out["img_per_s_median"] = round(statistics.median(r["img_per_s"] for r in ok), 2)
    out["img_per_s_rounds"] = [r["img_per_s"] for r in ok]
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ok)
    return out

o = summary(ours)
res = {"bench": "trainer", "machine": {"cpu": cpu, "load_before": load0, "load_after": load1},
       "img_per_s": o["img_per_s"] if o else None,
       "peak_rss_mb": o["peak_rss_mb"] if o else None, "netteflow": o}
if peer_ok != "1":
    res["peer"] = None
    res["peer_reason"] = f"no torch at {py}"
else:
    p = summary(peer)
    res["peer"] = p
    if p is None:
        res["peer_reason"] = "peer script failed"
    elif o:
        res["speedup_vs_peer"] = round(o["img_per_s"] / p["img_per_s"], 3)
        res["speedup_vs_peer_median"] = round(o["img_per_s_median"] / p["img_per_s_median"], 3)
        if p.get("device") == "cuda":
            # GPU: the target is throughput (at least PyTorch's, aim 1.3x);
            # memory is device memory held (ours: plans + model state)
            if p.get("device_peak_mb") and o.get("device_mb"):
                res["device_memory_vs_peer"] = round(o["device_mb"] / p["device_peak_mb"], 3)
            res["target_met"] = res["speedup_vs_peer"] >= 1.0
            res["aim_1_3x_met"] = res["speedup_vs_peer"] >= 1.3
        else:
            res["memory_vs_peer"] = round(o["peak_rss_mb"] / p["peak_rss_mb"], 3)
            res["target_met"] = res["speedup_vs_peer"] >= 1.0 and res["memory_vs_peer"] <= 1.0
print(json.dumps(res) if as_json == "1" else json.dumps(res, indent=2))
PY
