#!/usr/bin/env bash
# test_python_tensor_client.sh: a client of the augment stage written in Python
# (examples/python/nf_tensor_client.py: pyzmq + protobuf + numpy + torch),
# knowing only docs/augment.md's contract, trains a PyTorch ResNet on the
# tensor stream of a loader coordinator + worker + `augment serve` on a
# generated dataset for two epochs (with Mixup): every batch, every sample of
# each epoch exactly once, no duplicates, and the loss falls. Skips (77)
# without a Python that has those packages (CI has none).
set -u
PY=""
for cand in /opt/venv/bin/python python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import zmq, google.protobuf, numpy, torch, torchvision' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || { echo "SKIP: no python with pyzmq, protobuf, numpy, torch and torchvision"; exit 77; }
BIN="${NF_BIN_DIR:?}"; DESC="$1"
TMP="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait; rm -rf "$TMP"' EXIT
"$BIN/loader" gen-synthetic --out "$TMP/data" --classes 4 --train 64 --valid 8 >/dev/null \
  || { echo "FAIL: gen-synthetic"; exit 1; }
"$BIN/loader" coordinator --data "$TMP/data" --bind "ipc://$TMP/loader.ipc" --spawn-workers 1 \
  >/dev/null 2>"$TMP/loader.log" &
PIDS+=($!)
"$BIN/augment" serve --connect "ipc://$TMP/loader.ipc" --bind "ipc://$TMP/augment.ipc" --device cpu \
  --threads 1 >/dev/null 2>"$TMP/augment.log" &
PIDS+=($!)
OUT="$(OMP_NUM_THREADS=1 "$PY" "$NF_SOURCE_DIR/examples/python/nf_tensor_client.py" \
  --connect "ipc://$TMP/augment.ipc" --desc "$DESC" --epochs 2 --size 32 --presize 48 \
  --batch-size 32 --mixup 0.4 --lr 3e-3 --json)" \
  || { echo "FAIL: client exited: $OUT"; tail -5 "$TMP/augment.log"; exit 1; }
echo "$OUT"
"$PY" - "$OUT" <<'PYEOF' || exit 1
import json, sys
o = json.loads(sys.argv[1])
ok = (o["batches"] == 16 and o["images"] == 512 and o["distinct_per_epoch"] == [256, 256]
      and o["duplicates"] == 0 and o["last_epoch_loss"] < o["first_epoch_loss"])
print("PASSED: every tensor batch and sample once per epoch, the PyTorch loss falls" if ok
      else "FAIL: unexpected result")
sys.exit(0 if ok else 1)
PYEOF
