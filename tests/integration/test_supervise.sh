#!/usr/bin/env bash
# test_supervise.sh: run.sh's supervision of the four stages, on generated data.
#  1. a stage that crashes (augment, SIGKILL mid-training) is reported in one
#     line naming it and how it ended; every other stage is stopped; exit 1;
#  2. an interrupt (SIGTERM to run.sh; at a terminal Ctrl-C takes the same
#     path) stops every stage cleanly: exit 130, the trainer writes its
#     summary (interrupted: true), no process is left;
#  3. user mistakes get one clear line: a missing data folder, an unknown preset.
# Processes are found by the pids in their own logs (stage[pid]).
set -u
BIN="${NF_BIN_DIR:?}"; SRC="${NF_SOURCE_DIR:?}"
TMP="$(mktemp -d)"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
cleanup() { for p in $(stage_pids "$TMP/run1") $(stage_pids "$TMP/run2"); do kill -KILL "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT

# pids of the stages of a run folder, from their logs ("augment[1234] I ...")
stage_pids() {
  cat "$1"/*.log 2>/dev/null | grep -oE '^[^ ]+ (loader|augment|trainer|evaluator)\[[0-9]+\]' \
    | grep -oE '[0-9]+\]$' | tr -d ']' | sort -u
}
# waits up to $2 seconds for a training step in run folder $1
wait_for_steps() {
  for _ in $(seq 1 $(($2 * 5))); do
    grep -q '"type": "step"' "$1/metrics.jsonl" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
# waits up to $2 s for our child $1 to end; sets RC to its exit status (or "timeout")
wait_exit() {
  RC=timeout
  for _ in $(seq 1 $(($2 * 5))); do
    if ! kill -0 "$1" 2>/dev/null; then wait "$1"; RC=$?; return; fi
    sleep 0.2
  done
}

"$BIN/loader" gen-synthetic --out "$TMP/data" --classes 4 --train 60 --valid 20 >/dev/null \
  || { echo "FAIL: gen-synthetic"; exit 1; }
run() {  # run.sh train in the background on the generated data, output in $TMP/$1.{out,err}
  (cd "$SRC" && exec env NF_BIN_DIR="$BIN" NF_NO_BAR=1 ./run.sh train --data "$TMP/data" \
     --preset tiny --epochs 30 --workers 1 --out "$TMP/$1" >"$TMP/$1.out" 2>"$TMP/$1.err") &
}

# 1. a crashed stage
run run1
RUN1=$!
wait_for_steps "$TMP/run1" 120 || fail "no training step within 120 s"
AUG="$(grep -oE 'augment\[[0-9]+\]' "$TMP/run1/augment.log" | head -1 | grep -oE '[0-9]+')"
[ -n "$AUG" ] && kill -KILL "$AUG"
echo "t=${SECONDS}s: augment killed"
wait_exit $RUN1 60
echo "t=${SECONDS}s: run.sh ended"
[ "$RC" = 1 ] || fail "run.sh exit status after a crash: $RC (want 1)"
n="$(grep -c 'run.sh: the augment stage stopped (signal KILL); stopping the others' "$TMP/run1.err")"
[ "$n" = 1 ] || { fail "one line naming the crashed stage (got $n)"; cat "$TMP/run1.err"; }
grep -q 'Killed' "$TMP/run1.err" && fail "bash's own job message leaked"
sleep 0.5
for p in $(stage_pids "$TMP/run1"); do kill -0 "$p" 2>/dev/null && fail "stage pid $p still runs after the crash"; done

# 2. an interrupt
run run2
RUN2=$!
wait_for_steps "$TMP/run2" 120 || fail "no training step within 120 s"
echo "t=${SECONDS}s: interrupting"
kill -TERM $RUN2
wait_exit $RUN2 60
echo "t=${SECONDS}s: run.sh ended"
[ "$RC" = 130 ] || fail "run.sh exit status after an interrupt: $RC (want 130)"
grep -q 'run.sh: interrupted: stopping every stage' "$TMP/run2.err" || fail "interrupt line"
grep -q '"interrupted":[[:space:]]*true' "$TMP/run2/summary.json" 2>/dev/null \
  || fail "summary.json says interrupted"
sleep 0.5
for p in $(stage_pids "$TMP/run2"); do kill -0 "$p" 2>/dev/null && fail "stage pid $p still runs after the interrupt"; done
ls "$TMP/run2"/*.ipc >/dev/null 2>&1 && fail "sockets left in the run folder"

# 3. user mistakes: one line each, non-zero status
out="$(cd "$SRC" && NF_BIN_DIR="$BIN" ./run.sh train --data "$TMP/nowhere" 2>&1)" && fail "missing data accepted"
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s' "$out" | grep -q "no such dataset folder" \
  || fail "missing data: '$out'"
out="$(cd "$SRC" && NF_BIN_DIR="$BIN" ./run.sh train --data "$TMP/data" --preset nope --out "$TMP/run3" 2>&1)" \
  && fail "unknown preset accepted"
printf '%s' "$out" | grep -q "unknown preset 'nope'" || fail "unknown preset: '$out'"

[ $fails -eq 0 ] && echo "PASSED: crash reported in one line, interrupt stops everything, user mistakes in one line"
exit $((fails > 0))
