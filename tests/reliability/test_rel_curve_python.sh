#!/usr/bin/env bash
# test_rel_curve_python.sh: the Python client of the augment stage
# (examples/python/nf_tensor_client.py) over CURVE: `augment serve` bound with
# keys (loader key files loaded by pyzmq's zmq.auth.load_certificate); the
# allow-listed Python client trains an epoch on the tensor stream, every sample
# once; a plain-text and an unlisted Python client get nothing (they time out)
# and augment logs each refusal under its kind. Skips (77) without a Python
# that has pyzmq (with CURVE), protobuf, numpy, torch and torchvision.
set -u
PY=""
for cand in /opt/venv/bin/python python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import zmq, zmq.auth, google.protobuf, numpy, torch, torchvision; assert zmq.has("curve")' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || { echo "SKIP: no python with pyzmq (CURVE), protobuf, numpy, torch and torchvision"; exit 77; }
BIN="${NF_BIN_DIR:?}"; DESC="$1"; CLIENT="$NF_SOURCE_DIR/examples/python/nf_tensor_client.py"
TMP="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait; rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; tail -5 "$TMP/augment.log"; exit 1; }
mkdir -p "$TMP/keys/allow"
"$BIN/loader" keygen "$TMP/keys/augment" "$TMP/keys/client" "$TMP/keys/stranger" >/dev/null \
  || fail "keygen"
cp "$TMP/keys/client.key" "$TMP/keys/allow/"
"$BIN/loader" gen-synthetic --out "$TMP/data" --classes 4 --train 16 --valid 4 >/dev/null \
  || fail "gen-synthetic"
"$BIN/loader" coordinator --data "$TMP/data" --bind "ipc://$TMP/loader.ipc" --spawn-workers 1 \
  >/dev/null 2>"$TMP/loader.log" &
PIDS+=($!)
"$BIN/augment" serve --connect "ipc://$TMP/loader.ipc" --bind "tcp://127.0.0.1:0" --device cpu \
  --threads 1 --curve-secret "$TMP/keys/augment.key_secret" --curve-allow "$TMP/keys/allow" \
  >"$TMP/augment.log" 2>&1 &
PIDS+=($!)
EP=""
for _ in $(seq 100); do
  EP="$(sed -n 's/^augment \(tcp:[^ ]*\) (CURVE.*/\1/p' "$TMP/augment.log")"
  [ -n "$EP" ] && break
  sleep 0.1
done
[ -n "$EP" ] || fail "augment did not start with CURVE"
run_client() {
  OMP_NUM_THREADS=1 "$PY" "$CLIENT" --connect "$EP" --desc "$DESC" --epochs 1 --size 32 \
    --presize 48 --batch-size 32 --json "$@"
}
OUT="$(run_client --curve-secret "$TMP/keys/client.key_secret" --curve-server "$TMP/keys/augment.key")" \
  || fail "the allow-listed client exited: $OUT"
echo "$OUT"
"$PY" - "$OUT" <<'PYEOF' || fail "the allow-listed client's stream"
import json, sys
o = json.loads(sys.argv[1])
sys.exit(0 if o["batches"] == 2 and o["images"] == 64 and o["distinct_per_epoch"] == [64]
         and o["duplicates"] == 0 else 1)
PYEOF
# the refused clients, side by side: each must fail (time out) and be logged under its kind
run_client --timeout 2 >"$TMP/plain.out" 2>&1 &
PLAIN=$!
run_client --timeout 2 --curve-secret "$TMP/keys/stranger.key_secret" \
  --curve-server "$TMP/keys/augment.key" >"$TMP/stranger.out" 2>&1 &
STRANGER=$!
if wait "$PLAIN"; then fail "a plain-text client got the dataset"; fi
if wait "$STRANGER"; then fail "an unlisted client got the dataset"; fi
grep -q "no dataset_info" "$TMP/plain.out" || fail "plain-text client: $(tail -1 "$TMP/plain.out")"
grep -q "no dataset_info" "$TMP/stranger.out" || fail "unlisted client: $(tail -1 "$TMP/stranger.out")"
grep -q "plain text" "$TMP/augment.log" || fail "augment did not log the plain-text refusal"
grep -q "not allowed" "$TMP/augment.log" || fail "augment did not log the unlisted key's refusal"
echo "PASSED: the allow-listed Python client got every sample once over CURVE; plain-text and unlisted clients were refused"
