#!/usr/bin/env bash
# test_python_consumer.sh: a consumer written in Python with pyzmq + protobuf
# (examples/python/nf_consume.py), knowing only docs/loader.md's contract,
# receives a whole Imagenette validation epoch from a coordinator and two
# workers: every batch, every sample index exactly once. Skips (77) without
# a Python that has zmq, protobuf and numpy (CI has none), or without data.
set -u
PY=""
for cand in /opt/venv/bin/python python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import zmq, google.protobuf, numpy' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || { echo "SKIP: no python with pyzmq, protobuf and numpy"; exit 77; }
[ -d "${NF_DATA_DIR:-}/val" ] || { echo "SKIP: Imagenette not found at ${NF_DATA_DIR:-(unset)}"; exit 77; }
DESC="$1"
TMP="$(mktemp -d)"
trap 'kill -TERM $COORD 2>/dev/null; wait $COORD 2>/dev/null; rm -rf "$TMP"' EXIT
NF_LOG_LEVEL=warn "$NF_BIN_DIR/loader" coordinator --data "$NF_DATA_DIR" --bind "ipc://$TMP/c.ipc" \
  --spawn-workers 2 >/dev/null 2>"$TMP/coord.log" &
COORD=$!
OUT="$("$PY" "$NF_SOURCE_DIR/examples/python/nf_consume.py" --connect "ipc://$TMP/c.ipc" --desc "$DESC" \
  --split valid --presize 64 --batch-size 64 --json)" || { echo "FAIL: consumer exited $?: $OUT"; cat "$TMP/coord.log"; exit 1; }
echo "$OUT"
case "$OUT" in
  *'"batches": 62, "n_batches": 62, "images": 3925, "distinct_indices": 3925, "duplicates": 0'*'"epoch_done": true'*)
    echo "PASSED: python consumer got every batch and every sample once" ;;
  *) echo "FAIL: unexpected result"; exit 1 ;;
esac
