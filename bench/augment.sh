#!/usr/bin/env bash
# bench/augment.sh: throughput of the augment stage's batch transform on real
# Imagenette pictures, against torchvision.transforms.v2 on the same cores in
# the same run.
#
#   ./run.sh bench augment [--size 224] [--bs 64] [--presize 460] [--iters 10]
#                          [--threads 0] [--data DIR] [--json]
#
# Runs `augment bench` for the CPU backend in both resample modes (fused,
# reference) on all cores and on one core, the CUDA backend in both modes when
# a GPU is usable (wall time with transfers, and kernel time), and
# bench/augment_peer.py (all cores and one core) with
# /opt/venv/bin/python (or $NF_PYTHON); a missing GPU or peer is reported as
# null with the reason. "fidelity" is `augment fidelity`: the PSNR of each
# resample mode against an 8x8-supersampled rendering of the same geometry. Prints one JSON object (with --json nothing else; without
# it a short table goes to stderr). The headline "img_per_s" is the CPU path
# in the default (fused) mode.
set -euo pipefail

BIN="${NF_BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/bin}"
ROOT="${NF_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}"
DATA="${NF_DATA_DIR:-$ROOT/../shared/data/imagenette2-224}"
PY="${NF_PYTHON:-/opt/venv/bin/python}"
SIZE=224 BS=64 PRESIZE=460 ITERS=10 THREADS=0 JSON=0

while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE="$2"; shift 2 ;;
    --bs) BS="$2"; shift 2 ;;
    --presize) PRESIZE="$2"; shift 2 ;;
    --iters) ITERS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/augment.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$BIN/augment" ] || { echo "bench/augment.sh: $BIN/augment not built (./run.sh build)" >&2; exit 1; }
[ -d "$DATA/train" ] || { echo "bench/augment.sh: no Imagenette at $DATA (set NF_DATA_DIR or --data)" >&2; exit 1; }

CORES=$(nproc 2>/dev/null || echo 1)
[ "$THREADS" -gt 0 ] 2>/dev/null || THREADS=$CORES
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -1)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
COMMON=(--data "$DATA" --size "$SIZE" --bs "$BS" --presize "$PRESIZE" --iters "$ITERS" --threads "$THREADS")

run_tool() {  # prints the tool's JSON line, or null
  local out
  if out=$("$BIN/augment" bench "${COMMON[@]}" "$@" 2>/dev/null) && [ -n "$out" ]; then echo "$out"; else echo null; fi
}
run_peer() {  # THREADS -> the peer's JSON line, or null with the reason
  local out
  if [ ! -x "$PY" ]; then echo "{\"img_per_s\": null, \"reason\": \"no python at $PY\"}"; return; fi
  if out=$("$PY" "$ROOT/bench/augment_peer.py" --data "$DATA" --size "$SIZE" --bs "$BS" \
           --presize "$PRESIZE" --iters "$(( ITERS < 3 ? ITERS : 3 ))" --threads "$1" 2>/dev/null); then
    echo "$out"
  else
    echo '{"img_per_s": null, "reason": "peer script failed"}'
  fi
}

cpu_fused=$(run_tool --backend cpu --resample fused)
cpu_ref=$(run_tool --backend cpu --resample reference)
# one core each: far less sensitive to other load on the machine than all cores
cpu_fused_1=$(run_tool --backend cpu --resample fused --threads 1)
cpu_ref_1=$(run_tool --backend cpu --resample reference --threads 1)
cuda_fused='{"img_per_s": null, "reason": "no usable CUDA device"}'
cuda_ref="$cuda_fused"
if [ "$("$BIN/augment" devices 2>/dev/null || echo 0)" -gt 0 ]; then
  cuda_fused=$(run_tool --backend cuda --resample fused --dtype bf16)
  cuda_ref=$(run_tool --backend cuda --resample reference --dtype bf16)
fi
peer=$(run_peer "$THREADS")
peer_1=$(run_peer 1)
fidelity=$("$BIN/augment" fidelity --data "$DATA" --size "$SIZE" --presize "$PRESIZE" --bs 16 \
           --threads "$THREADS" 2>/dev/null) || fidelity=null
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

num() {  # img_per_s of a JSON fragment, or null
  local v; v=$(printf '%s' "$1" | sed -n 's/.*"img_per_s": \([0-9.]*\).*/\1/p'); echo "${v:-null}"
}
ratio() {  # a / b, or null
  if [ "$1" != null ] && [ "$2" != null ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo null; fi
}
head_ips=$(num "$cpu_fused")
peer_ips=$(num "$peer")
speedup=$(ratio "$head_ips" "$peer_ips")
speedup_1=$(ratio "$(num "$cpu_fused_1")" "$(num "$peer_1")")

printf '{"bench": "augment", "size": %s, "bs": %s, "presize": %s, "threads": %s, ' "$SIZE" "$BS" "$PRESIZE" "$THREADS"
printf '"machine": {"cpu": "%s", "cores": %s, "loadavg_before": "%s", "loadavg_after": "%s"}, ' "$CPU_MODEL" "$CORES" "$LOAD" "$LOAD_AFTER"
printf '"img_per_s": %s, "cpu_fused": %s, "cpu_reference": %s, "cuda_fused": %s, "cuda_reference": %s, ' \
  "$head_ips" "$cpu_fused" "$cpu_ref" "$cuda_fused" "$cuda_ref"
printf '"peer_torchvision_v2": %s, "speedup_vs_peer": %s, ' "$peer" "$speedup"
printf '"one_core": {"cpu_fused": %s, "cpu_reference": %s, "peer_torchvision_v2": %s, "speedup_vs_peer": %s}, ' \
  "$cpu_fused_1" "$cpu_ref_1" "$peer_1" "$speedup_1"
printf '"fidelity": %s}\n' "$fidelity"

if [ "$JSON" = 0 ]; then
  {
    echo "augment bench: size $SIZE from presize $PRESIZE, bs $BS, $THREADS threads on $CORES cores ($CPU_MODEL), load $LOAD -> $LOAD_AFTER"
    printf '  %-26s %10s img/s\n' "cpu fused" "$head_ips" "cpu reference" "$(num "$cpu_ref")" \
      "cuda fused (bf16)" "$(num "$cuda_fused")" "cuda reference (bf16)" "$(num "$cuda_ref")" \
      "torchvision v2 peer" "$peer_ips" "cpu fused, 1 core" "$(num "$cpu_fused_1")" \
      "cpu reference, 1 core" "$(num "$cpu_ref_1")" "torchvision v2, 1 core" "$(num "$peer_1")"
  } >&2
fi
