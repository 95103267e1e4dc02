#!/usr/bin/env bash
# test_data_fetch.sh: how run.sh finds its data (./run.sh data), against local
# archives instead of the internet:
#  1. no local Imagenette: the archive is downloaded (file:// URL), unpacked into
#     the cache and used; a second call finds it in the cache without fetching;
#  2. the same from a loopback HTTP server (when python3 is there to serve);
#  3. a corrupt archive, and an unreachable server: one line saying so, then a
#     generated dataset (loader gen-synthetic) is used;
#  4. --data DIR wins, and a missing DIR is one clear error.
set -u
BIN="${NF_BIN_DIR:?}"; SRC="${NF_SOURCE_DIR:?}"
TMP="$(mktemp -d)"
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
data() {  # data CACHE URL [args]: runs ./run.sh data; stdout to $TMP/out, stderr to $TMP/err
  local cache="$1" url="$2"; shift 2
  (cd "$SRC" && env NF_BIN_DIR="$BIN" NF_DATA_DIR="$TMP/no-local-data" NF_CACHE_DIR="$cache" \
     NF_IMAGENETTE_URL="$url" ./run.sh data "$@" >"$TMP/out" 2>"$TMP/err")
}

"$BIN/loader" gen-synthetic --out "$TMP/src/imagenette2-160" --classes 3 --train 4 --valid 2 \
  >/dev/null || { echo "FAIL: gen-synthetic"; exit 1; }
tar -czf "$TMP/imagenette2-160.tgz" -C "$TMP/src" imagenette2-160
head -c 5000 /dev/urandom >"$TMP/garbage.tgz"

# 1. download from a file:// URL, then the cache
data "$TMP/c1" "file://$TMP/imagenette2-160.tgz" || fail "run.sh data exited $?: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "$TMP/c1/imagenette2-160" ] || fail "folder: '$(cat "$TMP/out")'"
n="$(find "$TMP/c1/imagenette2-160/train" -name '*.jpg' | wc -l)"
[ "$n" = 12 ] || fail "12 training files unpacked, found $n"
grep -q "downloading file://" "$TMP/err" || fail "the download is said"
data "$TMP/c1" "file://$TMP/nothing-there.tgz" || fail "cached run exited $?"
[ "$(cat "$TMP/out")" = "$TMP/c1/imagenette2-160" ] && ! grep -q downloading "$TMP/err" \
  || fail "second call uses the cache"

# 2. a loopback HTTP server
if command -v python3 >/dev/null 2>&1; then
  PORT=$((20000 + RANDOM % 20000))
  (cd "$TMP" && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
  SERVER=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
  data "$TMP/c2" "http://127.0.0.1:$PORT/imagenette2-160.tgz" || fail "http download exited $?"
  [ "$(cat "$TMP/out")" = "$TMP/c2/imagenette2-160" ] || fail "http folder: '$(cat "$TMP/out")'"
  kill "$SERVER"; SERVER=""
else
  echo "note: no python3 to serve HTTP; the file:// download covers the same code"
fi

# 3. corrupt archive, unreachable server: one line, then generated data
for url in "file://$TMP/garbage.tgz" "http://127.0.0.1:9/imagenette2-160.tgz"; do
  rm -rf "$TMP/c3"
  data "$TMP/c3" "$url" || fail "fallback exited $? for $url"
  [ "$(cat "$TMP/out")" = "$TMP/c3/synthetic" ] || fail "fallback folder for $url: '$(cat "$TMP/out")'"
  [ "$(grep -c 'training on a small generated dataset instead' "$TMP/err")" = 1 ] \
    || { fail "one line saying so for $url"; cat "$TMP/err"; }
  [ -d "$TMP/c3/synthetic/train" ] && [ -d "$TMP/c3/synthetic/val" ] || fail "generated dataset"
done

# 4. --data
data "$TMP/c4" "file://$TMP/none.tgz" --data "$TMP/src/imagenette2-160" || fail "--data exited $?"
[ "$(cat "$TMP/out")" = "$TMP/src/imagenette2-160" ] || fail "--data folder: '$(cat "$TMP/out")'"
data "$TMP/c4" "file://$TMP/none.tgz" --data "$TMP/missing" && fail "a missing --data is accepted"
grep -q "no such dataset folder" "$TMP/err" || fail "missing --data: '$(cat "$TMP/err")'"

[ $fails -eq 0 ] && echo "PASSED: download, cache, HTTP, corrupt/offline fallback to generated data, --data"
exit $((fails > 0))
