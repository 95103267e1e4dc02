#!/usr/bin/env bash
# netns_hosts.sh: loader workers on other hosts, simulated on one machine with
# network namespaces (Debian iproute2) joined by veth pairs to a bridge:
#
#   h0 10.231.0.1   coordinator (CURVE, allow-list) + consumer (CURVE sink)
#   h1 10.231.0.2   a worker from the start; SIGKILLed mid-epoch 2, replaced
#   h2 10.231.0.3   a worker that joins mid-epoch 1
#   sw              the bridge (its own namespace: the host's network is untouched)
#
# Everything crosses the veth links over TCP with CURVE (an endpoint other
# hosts reach must use it). Asserts: both epochs exact (every sample once, 0
# lost, 0 duplicated, the 6 bad files exact), the h2 worker took tasks after
# joining, and the h1 replacement too. Prints the delivery rate before and
# after h2 joined (informative; a contended 2-core box need not speed up).
# Exit 77 (skipped) with a reason when namespaces cannot be made (not root,
# no CAP_NET_ADMIN, no veth/bridge support). Namespaces and processes are
# cleaned up on any exit.
#
# usage: netns_hosts.sh [--valid N] [--epochs N]     (NF_BIN_DIR: build/bin)
set -uo pipefail

VALID=300
EPOCHS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --valid) VALID="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    *) echo "usage: $0 [--valid N] [--epochs N]" >&2; exit 2 ;;
  esac
done

BIN="${NF_BIN_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}"
TOOL="$BIN/../tests/rel_tool"
LOADER="$BIN/loader"
skip() { echo "netns_hosts: skipped: $*"; exit 77; }
fail() { echo "netns_hosts: FAIL: $*"; FAILED=1; }
[ -x "$LOADER" ] && [ -x "$TOOL" ] || { echo "netns_hosts: build first ($LOADER, $TOOL)"; exit 1; }
command -v ip >/dev/null 2>&1 || skip "no ip command (Debian iproute2)"
[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need CAP_NET_ADMIN)"

ID=$(( $$ % 100000 ))
NS_SW="nfr${ID}sw"
HOSTS=("nfr${ID}h0" "nfr${ID}h1" "nfr${ID}h2")
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nfnetns.XXXXXX")"
PIDS=()
FAILED=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for ns in "${HOSTS[@]}" "$NS_SW"; do ip netns del "$ns" 2>/dev/null; done
  [ "${NF_KEEP_TMP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- the hosts
ip netns add "$NS_SW" 2>/dev/null || skip "ip netns add failed (no CAP_NET_ADMIN?)"
ip -n "$NS_SW" link set lo up
ip -n "$NS_SW" link add br0 type bridge 2>/dev/null || skip "no bridge support in this kernel"
ip -n "$NS_SW" link set br0 up
for k in 0 1 2; do
  ns="${HOSTS[$k]}"
  ip netns add "$ns" || skip "ip netns add $ns failed"
  ip link add "nfv${ID}x$k" type veth peer name "nfp${ID}x$k" 2>/dev/null || skip "no veth support"
  ip link set "nfv${ID}x$k" netns "$ns"
  ip link set "nfp${ID}x$k" netns "$NS_SW"
  ip -n "$ns" link set "nfv${ID}x$k" name eth0
  ip -n "$ns" addr add "10.231.0.$((k + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$NS_SW" link set "nfp${ID}x$k" master br0
  ip -n "$NS_SW" link set "nfp${ID}x$k" up
done

# --- data and keys (the "shared storage" every host reads the dataset from)
DATA="$WORK/data"
"$TOOL" dataset "$DATA" --classes 4 --train 2 --valid "$VALID" --min-side 400 --max-side 640 --bad >/dev/null
KEYS="$WORK/keys"
mkdir -p "$KEYS/allow"
"$LOADER" keygen "$KEYS/coordinator" "$KEYS/consumer" "$KEYS/w1" "$KEYS/w1b" "$KEYS/w2" >/dev/null
cp "$KEYS/consumer.key" "$KEYS/w1.key" "$KEYS/w1b.key" "$KEYS/w2.key" "$KEYS/allow/"

# (started with `ip netns exec ... &` directly: it execs the program, so $! is its pid)
EP="tcp://10.231.0.1:5555"

ip netns exec "${HOSTS[0]}" "$LOADER" coordinator --data "$DATA" --split folders --bind "$EP" --heartbeat-ms 200 \
  --worker-timeout-ms 1500 --curve-secret "$KEYS/coordinator.key_secret" \
  --curve-allow "$KEYS/allow" >"$WORK/coordinator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "^coordinator tcp" "$WORK/coordinator.log" && break; sleep 0.05; done
grep -q "^coordinator tcp://10.231.0.1:5555 (CURVE" "$WORK/coordinator.log" \
  || { cat "$WORK/coordinator.log"; fail "coordinator did not start"; exit 1; }

worker() {  # worker HOST NAME: starts it, its pid in LAST
  ip netns exec "${HOSTS[$1]}" "$LOADER" worker --connect "$EP" --id "$2" --slots 2 --heartbeat-ms 200 \
    --timeout-ms 4000 --curve-secret "$KEYS/$2.key_secret" \
    --curve-server "$KEYS/coordinator.key" >"$WORK/$2.log" 2>&1 &
  LAST=$!
  PIDS+=($LAST)
}
worker 1 w1
W1=$LAST

LOG="$WORK/delivery.log"
ip netns exec "${HOSTS[0]}" "$LOADER" consume --connect "$EP" --sink "tcp://10.231.0.1:*" --split valid --shuffle \
  --batch-size 8 --presize 448 --exact --epochs "$EPOCHS" --log "$LOG" --json --timeout-ms 60000 \
  --curve-secret "$KEYS/consumer.key_secret" --curve-server "$KEYS/coordinator.key" \
  --curve-allow "$KEYS/allow" >"$WORK/consumer.log" 2>&1 &
CON=$!
PIDS+=($CON)

batches() { local n; n=$(grep -c '^batch ' "$LOG" 2>/dev/null); echo "${n:-0}"; }
wait_batches() {  # wait until at least N batches were delivered (or the consumer ended)
  for _ in $(seq 1200); do
    [ "$(batches)" -ge "$1" ] && return 0
    kill -0 "$CON" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
PER_EPOCH=$(( (VALID * 4 + 8 + 7) / 8 ))   # 4 classes x VALID + 8 bad-kind files, batches of 8
# rate with one worker host, then with two: h2 joins a third into epoch 1
wait_batches 2
T0=$(date +%s.%N); B0=$(batches)
wait_batches $(( PER_EPOCH / 3 ))
T1=$(date +%s.%N); B1=$(batches)
worker 2 w2
wait_batches $(( B1 + 2 ))
T2=$(date +%s.%N); B2=$(batches)
wait_batches $(( B2 + PER_EPOCH / 3 ))
T3=$(date +%s.%N); B3=$(batches)
# h1's worker dies mid-epoch 2; a replacement on h1 joins
if [ "$EPOCHS" -ge 2 ]; then
  wait_batches $(( PER_EPOCH + PER_EPOCH / 3 ))
  kill -KILL "$W1" 2>/dev/null
  worker 1 w1b
fi
wait "$CON"
RC=$?
[ "$RC" -eq 0 ] || { tail -5 "$WORK/consumer.log"; fail "consumer exit code $RC"; }

# --- exact accounting, and who did the work
ACCOUNT=$("$TOOL" account --data "$DATA" --log "$LOG" --split valid --batch-size 8 \
  --epochs "$EPOCHS" --bad 6 2>&1) || fail "accounting: $ACCOUNT"
tasks_of() { sed -n 's/.*worker: \([0-9]*\) tasks.*/\1/p' "$WORK/$1.log" | tail -1; }
for p in "${PIDS[@]}"; do [ "$p" = "$CON" ] || kill -TERM "$p" 2>/dev/null; done
sleep 1
T_W2=$(tasks_of w2); T_W1B=$( [ "$EPOCHS" -ge 2 ] && tasks_of w1b || echo 1)
[ "${T_W2:-0}" -gt 0 ] || fail "the h2 worker took no tasks after joining (${T_W2:-none})"
[ "${T_W1B:-0}" -gt 0 ] || fail "the h1 replacement took no tasks (${T_W1B:-none})"
grep -q "joined" "$WORK/coordinator.log" || fail "coordinator log has no joins"
RATE1=$(echo "$B1 $B0 $T1 $T0" | awk '{ printf "%.1f", ($1 - $2) * 8 / ($3 - $4) }')
RATE2=$(echo "$B3 $B2 $T3 $T2" | awk '{ printf "%.1f", ($1 - $2) * 8 / ($3 - $4) }')
FIG=$(echo "$ACCOUNT" | sed -n 's/^REL {\(.*\)}$/\1/p')
echo "REL {\"test\": \"netns_hosts\", \"hosts\": 3, ${FIG}, \"img_per_s_one_worker_host\": $RATE1, \"img_per_s_two_worker_hosts\": $RATE2, \"tasks_h2_worker\": ${T_W2:-0}, \"tasks_h1_replacement\": ${T_W1B:-0}}"
if [ "$FAILED" -ne 0 ]; then
  for f in coordinator consumer w1 w2; do echo "--- $f"; tail -5 "$WORK/$f.log"; done
  exit 1
fi
echo "netns_hosts: PASSED"
