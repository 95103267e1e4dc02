#!/usr/bin/env bash
# bench/loader.sh: loader throughput against its physical floor and its peer,
# measured in the same run on the same machine. Run as
#   ./run.sh bench loader [--data DIR] [--workers N] [--presize S] [--batch-size B]
#                         [--max-batches M] [--exact] [--no-peer] [--json]
# and prints one JSON object (with --json; otherwise the same object, pretty):
#   img_per_s              decoded + presized images per second delivered to a
#                          consumer over the sockets (`loader consume`), with N
#                          `loader worker` processes under one coordinator
#   steady_img_per_s       the same from the first batch on
#   raw_decode_img_per_s   plain TurboJPEG decode of the same files on one core
#                          (`loader bench-decode`): the floor a worker can reach
#   per_worker_vs_raw      img_per_s / workers / raw_decode_img_per_s (target >= 0.8)
#   peer                   PyTorch DataLoader + PIL doing the same decode + crop +
#                          resize with N workers (bench/loader_peer.py), or null
#   per_core_vs_peer       our images/s per worker over the peer's (target >= 2)
# The data set is the training split of DIR (default: NF_DATA_DIR, Imagenette),
# a folder or a pack (`loader pack`; the peer reads it through bench/nfpack.py).
set -euo pipefail

BIN="${NF_BIN_DIR:?run through ./run.sh bench loader}"
ROOT="${NF_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}"
DATA="${NF_DATA_DIR:-$ROOT/../shared/data/imagenette2-224}"
WORKERS=2 PRESIZE=224 BS=64 MAX_BATCHES=0 EXACT="" PEER=1 JSON=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --presize) PRESIZE="$2"; shift 2 ;;
    --batch-size) BS="$2"; shift 2 ;;
    --max-batches) MAX_BATCHES="$2"; shift 2 ;;
    --exact) EXACT="--exact"; shift ;;
    --no-peer) PEER=0; shift ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench loader: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -d "$DATA/train" ] || [ -f "$DATA/nfpack.idx" ] \
  || { echo "bench loader: no dataset (folder or pack) at $DATA (--data DIR)" >&2; exit 2; }

TMP="$(mktemp -d)"
COORD_PID=""
cleanup() {
  if [ -n "$COORD_PID" ] && kill -0 "$COORD_PID" 2>/dev/null; then
    kill -TERM "$COORD_PID" 2>/dev/null || true
    wait "$COORD_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# field NAME JSON -> the number after "NAME":
field() { printf '%s' "$2" | sed -n "s/.*\"$1\": *\([-0-9.e]*\).*/\1/p"; }

# 1. the floor: plain decode on one core, and decode + presize in one process
LIMIT=2000
[ "$MAX_BATCHES" -gt 0 ] && LIMIT=$(( MAX_BATCHES * BS < 2000 ? MAX_BATCHES * BS : 2000 ))
FLOOR="$("$BIN/loader" bench-decode --data "$DATA" --limit "$LIMIT" --presize "$PRESIZE" $EXACT)"
RAW="$(field raw_decode_img_per_s "$FLOOR")"
ONE_CORE="$(field decode_presize_img_per_s "$FLOOR")"

# 2. the pipeline: coordinator + N workers + a consumer, one training epoch
EP="ipc://$TMP/coord.ipc"
NF_LOG_LEVEL=warn "$BIN/loader" coordinator --data "$DATA" --bind "$EP" \
  --spawn-workers "$WORKERS" >"$TMP/coord.out" 2>"$TMP/coord.log" &
COORD_PID=$!
CONSUME_ARGS=(--connect "$EP" --sink "ipc://$TMP/sink.ipc" --split train --batch-size "$BS"
  --presize "$PRESIZE" --credits 8 --json $EXACT)
[ "$MAX_BATCHES" -gt 0 ] && CONSUME_ARGS+=(--max-batches "$MAX_BATCHES")
OURS="$(NF_LOG_LEVEL=warn "$BIN/loader" consume "${CONSUME_ARGS[@]}")" \
  || { cat "$TMP/coord.log" >&2; echo "bench loader: consume failed" >&2; exit 1; }
kill -TERM "$COORD_PID"; wait "$COORD_PID" || true; COORD_PID=""
IMG_PER_S="$(field img_per_s "$OURS")"
STEADY="$(field steady_img_per_s "$OURS")"
IMAGES="$(field images "$OURS")"
BAD="$(field bad_files "$OURS")"

# 3. the peer: PyTorch DataLoader + PIL, same files, same work, same worker count
PY=""
for cand in /opt/venv/bin/python python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch, torchvision, PIL' 2>/dev/null; then
    PY="$cand"; break
  fi
done
PEER_JSON="null" PEER_REASON="" PEER_RATE=""
if [ "$PEER" = 0 ]; then
  PEER_REASON="disabled with --no-peer"
elif [ -z "$PY" ]; then
  PEER_REASON="no python with torch, torchvision and Pillow (pip install torch torchvision pillow)"
else
  PEER_ARGS=(--data "$DATA" --workers "$WORKERS" --presize "$PRESIZE" --batch-size "$BS")
  [ "$MAX_BATCHES" -gt 0 ] && PEER_ARGS+=(--max-batches "$MAX_BATCHES")
  if P="$("$PY" "$ROOT/bench/loader_peer.py" "${PEER_ARGS[@]}" 2>"$TMP/peer.log")"; then
    PEER_JSON="$P"
    PEER_RATE="$(field img_per_s "$P")"
  else
    PEER_REASON="peer failed: $(tail -1 "$TMP/peer.log")"
  fi
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "null" }'; }
PER_WORKER="$(ratio "$IMG_PER_S" "$WORKERS")"
VS_RAW="$(ratio "$PER_WORKER" "$RAW")"
VS_PEER="null"
[ -n "$PEER_RATE" ] && VS_PEER="$(ratio "$IMG_PER_S" "$PEER_RATE")"
CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
OUT="{\"bench\": \"loader\", \"machine\": \"$CPU\", \"cores\": $(nproc), \"workers\": $WORKERS, \
\"presize\": $PRESIZE, \"batch_size\": $BS, \"exact\": $([ -n "$EXACT" ] && echo true || echo false), \
\"images\": $IMAGES, \"img_per_s\": $IMG_PER_S, \"steady_img_per_s\": $STEADY, \
\"img_per_s_per_worker\": $PER_WORKER, \"raw_decode_img_per_s\": $RAW, \
\"decode_presize_one_core_img_per_s\": $ONE_CORE, \"per_worker_vs_raw\": $VS_RAW, \
\"bad_files\": $BAD, \"peer\": $PEER_JSON, \"peer_reason\": \"$PEER_REASON\", \
\"per_core_vs_peer\": $VS_PEER}"
if [ "$JSON" = 1 ]; then
  printf '%s\n' "$OUT"
else
  printf '%s\n' "$OUT" | sed 's/, "/,\n  "/g; s/^{/{\n  /; s/}$/\n}/'
fi
