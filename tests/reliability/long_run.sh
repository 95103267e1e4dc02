#!/usr/bin/env bash
# long_run.sh: the reliability long run whose figures docs/reliability.md
# records. One command: ./run.sh reliability --long [options] (it builds first).
#
#   kill storm     test_rel_faults on the real validation split + every bad
#                  kind: workers SIGKILLed / SIGSTOPped every 100-300 ms for
#                  --epochs epochs; exact accounting per epoch
#   backpressure   test_rel_backpressure on the real data (presize 224, batches
#                  of 64, a slow consumer): peak memory per stage vs its bound
#   full disk      test_rel_full_disk; hostile files: test_rel_inputs; hostile
#                  messages: test_loader_reliability (every socket)
#   curve          test_rel_curve: refused peers by kind
#   hosts          netns_hosts.sh with --netns-valid files per class, 3 epochs
#   fuzz           ./run.sh fuzz --seconds --fuzz-seconds (every target)
#   training       test_rel_training on the real data (xresnet18 at 64 px):
#                  trainer_resume (killed in epoch 2 of --train-epochs, resumed:
#                  bit-identical final tensors), augment_restart (augment
#                  SIGKILLed --train-kills times under a running trainer, exact
#                  delivery), evaluator_restart (evaluators killed mid-evaluation)
#
# Writes <build>/reliability/long-run.jsonl (one JSON object per step, the
# machine first) and each step's log beside it; prints a summary. Exit 1 when
# a step failed. Options: --epochs N (30), --fuzz-seconds N (120),
# --netns-valid N (1000), --train-epochs N (3), --train-kills N (6);
# NF_DATA_DIR: Imagenette (synthetic data without it).
set -uo pipefail

EPOCHS=30
FUZZ_SECONDS=120
NETNS_VALID=1000
TRAIN_EPOCHS=3
TRAIN_KILLS=6
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="$2"; shift 2 ;;
    --fuzz-seconds) FUZZ_SECONDS="$2"; shift 2 ;;
    --netns-valid) NETNS_VALID="$2"; shift 2 ;;
    --train-epochs) TRAIN_EPOCHS="$2"; shift 2 ;;
    --train-kills) TRAIN_KILLS="$2"; shift 2 ;;
    *) echo "usage: long_run.sh [--epochs N] [--fuzz-seconds N] [--netns-valid N] [--train-epochs N] [--train-kills N]" >&2; exit 2 ;;
  esac
done

ROOT="${NF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
BIN="${NF_BIN_DIR:-$ROOT/build/bin}"
TESTS="$BIN/../tests"
OUT="$BIN/../reliability"
RESULTS="$OUT/long-run.jsonl"
mkdir -p "$OUT"
: >"$RESULTS"
DATA_ARGS=()
if [ -d "${NF_DATA_DIR:-}/val" ]; then
  DATA_ARGS=(--data "$NF_DATA_DIR")
else
  echo "long_run: no Imagenette at NF_DATA_DIR; the fault and memory steps use generated data" >&2
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "{\"step\": \"machine\", \"cpu\": \"$cpu\", \"cores\": $(nproc), \"kernel\": \"$(uname -r)\", \"date\": \"$(date -u +%FT%TZ)\", \"data\": \"${NF_DATA_DIR:-none}\", \"epochs\": $EPOCHS, \"fuzz_seconds_per_target\": $FUZZ_SECONDS}" >>"$RESULTS"

FAILED=()
# step NAME CMD...: runs CMD with its output in $OUT/NAME.log; appends its
# REL lines (or a pass/fail record) to the results.
step() {
  local name="$1"; shift
  local t0 t1 rc
  t0=$(date +%s)
  echo "long_run: $name ..." >&2
  "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  t1=$(date +%s)
  local rel
  rel=$(sed -n 's/^REL {\(.*\)}$/\1/p' "$OUT/$name.log")
  if [ -n "$rel" ]; then
    while IFS= read -r line; do
      echo "{\"step\": \"$name\", \"rc\": $rc, \"wall_s\": $((t1 - t0)), $line}" >>"$RESULTS"
    done <<<"$rel"
  else
    echo "{\"step\": \"$name\", \"rc\": $rc, \"wall_s\": $((t1 - t0))}" >>"$RESULTS"
  fi
  [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || FAILED+=("$name")
  echo "long_run: $name: exit $rc in $((t1 - t0)) s" >&2
}

step kill_storm "$TESTS/test_rel_faults" "${DATA_ARGS[@]}" --epochs "$EPOCHS" --workers 3
step backpressure "$TESTS/test_rel_backpressure" "${DATA_ARGS[@]}"
step full_disk "$TESTS/test_rel_full_disk"
step hostile_files "$TESTS/test_rel_inputs"
step hostile_messages "$TESTS/test_loader_reliability"
step curve "$TESTS/test_rel_curve"
step netns_hosts env NF_BIN_DIR="$BIN" "$ROOT/tests/reliability/netns_hosts.sh" \
  --valid "$NETNS_VALID" --epochs 3
step trainer_resume env NF_BIN_DIR="$BIN" "$TESTS/test_rel_training" --case resume \
  "${DATA_ARGS[@]}" --epochs "$TRAIN_EPOCHS"
step augment_restart env NF_BIN_DIR="$BIN" "$TESTS/test_rel_training" --case augment \
  "${DATA_ARGS[@]}" --epochs "$TRAIN_EPOCHS" --kills "$TRAIN_KILLS"
step evaluator_restart env NF_BIN_DIR="$BIN" "$TESTS/test_rel_training" --case evaluator \
  "${DATA_ARGS[@]}" --epochs "$TRAIN_EPOCHS" --kills $((TRAIN_EPOCHS - 1))
# the fuzz verb prints one JSON object on stdout
step fuzz bash -c "set -o pipefail; '$ROOT/run.sh' fuzz --seconds '$FUZZ_SECONDS' | sed 's/^{\\(.*\\)}\$/REL {\\1}/'"

echo "long_run: results in $RESULTS" >&2
cat "$RESULTS"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "long_run: FAILED: ${FAILED[*]} (logs in $OUT)" >&2
  exit 1
fi
echo "long_run: every step passed" >&2
