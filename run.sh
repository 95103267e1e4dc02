#!/usr/bin/env bash
# run.sh: the front door of netteflow.
#
# Sets up what is missing (Debian packages when run as root, otherwise it
# prints the exact command; CMake configure + build), then runs a verb.
#
#   ./run.sh test [ctest args]    build, then the whole CPU test suite (ctest)
#   ./run.sh test --asan          same, in an ASan+UBSan build (build-asan/)
#   ./run.sh bench NAME [args]    a benchmark from bench/ (loader, trainer, augment, ...)
#   ./run.sh gpu-check [--prepare|--dry] [--out DIR]   the GPU check (docs/gpu.md)
#   ./run.sh build                configure and build only
#   ./run.sh fuzz [TARGET..] [--seconds N]   libFuzzer targets (clang, build-fuzz/) for N
#                                 seconds each (default 60): executions and crashes
#   ./run.sh reliability [--long] the reliability tests (ctest -L reliability); --long:
#                                 the long run on real data whose figures docs/reliability.md records
#   ./run.sh keygen NAME [NAME..] CURVE key pairs (NAME.key, NAME.key_secret) for exposed sockets
#   ./run.sh setup                install missing packages only
#   ./run.sh help                 this text, and the verbs the stages add
#
# Environment: NF_BUILD_DIR (default ./build), NF_JOBS (parallel build jobs),
# NF_DATA_DIR (Imagenette for tests/benchmarks, default ../shared/data/imagenette2-224).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="${NF_BUILD_DIR:-$ROOT/build}"
JOBS="${NF_JOBS:-$(nproc 2>/dev/null || echo 2)}"
export NF_DATA_DIR="${NF_DATA_DIR:-$(cd "$ROOT/.." && pwd)/shared/data/imagenette2-224}"

# Debian packages the product builds against (CUDA comes from /usr/local/cuda when present).
DEB_PACKAGES=(cmake make gcc pkg-config protobuf-c-compiler libprotobuf-c-dev libzmq3-dev
  libturbojpeg0-dev libpng-dev libcjson-dev libdnnl-dev zlib1g-dev
  libstb-dev)  # libstb-dev: stb_image, an independent JPEG decoder for the loader tests

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

setup_packages() {
  command -v dpkg-query >/dev/null 2>&1 || return 0   # not Debian: CMake will name what is missing
  local missing=() p
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    say "run.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } \
      || die "apt-get install failed for: ${missing[*]}"
  else
    die "missing packages; run: sudo apt-get install -y ${missing[*]}"
  fi
}

# configure_and_build BUILD_DIR [extra cmake args...]
configure_and_build() {
  local dir="$1"; shift
  # nvcc lives in /usr/local/cuda/bin on the development and GPU machines
  if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
  if [ ! -f "$dir/CMakeCache.txt" ] || [ $# -gt 0 ]; then
    cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.configure.log" 2>&1 \
      || { cat "$dir.configure.log" >&2; die "cmake configure failed (log: $dir.configure.log)"; }
  fi
  if ! cmake --build "$dir" -j "$JOBS" >"$dir.build.log" 2>&1; then
    grep -E -B2 -A6 'error|Error' "$dir.build.log" | head -80 >&2 || tail -40 "$dir.build.log" >&2
    die "build failed (log: $dir.build.log)"
  fi
  grep -E 'warning:' "$dir.build.log" | sort -u | head -20 >&2 || true
}

verb_test() {
  local dir="$BUILD" extra=()
  if [ "${1:-}" = "--asan" ]; then
    shift
    dir="${NF_BUILD_DIR:-$ROOT/build-asan}"
    extra=(-DNF_SANITIZE="address;undefined" -DNF_CUDA=OFF)
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  fi
  configure_and_build "$dir" "${extra[@]}"
  cd "$dir"
  ctest --output-on-failure -j "$JOBS" "$@"
}

verb_bench() {
  local name="${1:-}"
  [ -n "$name" ] || die "usage: ./run.sh bench NAME [args]; available: $(ls "$ROOT/bench"/*.sh 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.sh$//' | tr '\n' ' ')"
  shift
  [ -x "$ROOT/bench/$name.sh" ] || die "no benchmark '$name' (bench/$name.sh)"
  configure_and_build "$BUILD"
  NF_BIN_DIR="$BUILD/bin" NF_ROOT="$ROOT" exec "$ROOT/bench/$name.sh" "$@"
}

FUZZ_TARGETS=(wire safetensors jpeg pack coordinator consumer worker)

verb_fuzz() {
  local secs=60 targets=() t
  while [ $# -gt 0 ]; do
    case "$1" in
      --seconds) secs="${2:?--seconds N}"; shift 2 ;;
      -*) die "fuzz: unknown option $1 (./run.sh fuzz [TARGET..] [--seconds N])" ;;
      *) targets+=("$1"); shift ;;
    esac
  done
  [ ${#targets[@]} -gt 0 ] || targets=("${FUZZ_TARGETS[@]}")
  for t in "${targets[@]}"; do
    [[ " ${FUZZ_TARGETS[*]} " == *" $t "* ]] || die "fuzz: no target '$t' (${FUZZ_TARGETS[*]})"
  done
  local cc
  cc="$(command -v clang-14 || command -v clang || true)"
  [ -n "$cc" ] || die "fuzz: needs clang with libFuzzer: apt-get install -y clang-14 libclang-rt-14-dev"
  local dir="${NF_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
  mkdir -p "$dir"
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    CC="$cc" cmake -S "$ROOT" -B "$dir" -DNF_FUZZ=ON -DNF_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log" >&2; die "fuzz: configure failed"; }
  fi
  cmake --build "$dir" -j "$JOBS" --target fuzz_all >"$dir.build.log" 2>&1 \
    || { grep -E -A6 'error' "$dir.build.log" | head -40 >&2; die "fuzz: build failed (log: $dir.build.log)"; }
  local seeds="$dir/fuzz/seeds" data=()
  [ -d "$NF_DATA_DIR/val" ] && data=(--data "$NF_DATA_DIR")
  rm -rf "$seeds"
  "$dir/fuzz/fuzz_seeds" "$seeds" "${data[@]}" >/dev/null
  local json="" found=0
  say "fuzzing ${targets[*]} for ${secs} s each (corpus kept in $dir/fuzz/corpus)"
  printf '%-12s %12s %10s %8s %8s\n' target executions exec/s corpus crashes >&2
  for t in "${targets[@]}"; do
    local corpus="$dir/fuzz/corpus/$t" crashes="$dir/fuzz/crashes/$t" log="$dir/fuzz/$t.log"
    mkdir -p "$corpus" "$crashes"
    local before
    before=$(find "$crashes" -type f | wc -l)
    "$dir/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
      -artifact_prefix="$crashes/" "$corpus" "$seeds/$t" >"$log" 2>&1 || true
    local execs rate n_corpus n_crashes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    n_corpus=$(find "$corpus" -type f | wc -l)
    n_crashes=$(( $(find "$crashes" -type f | wc -l) - before ))
    [ "$n_crashes" -gt 0 ] && found=1
    printf '%-12s %12s %10s %8s %8s\n' "$t" "${execs:-0}" "${rate:-0}" "$n_corpus" "$n_crashes" >&2
    json+="${json:+, }\"$t\": {\"executions\": ${execs:-0}, \"exec_per_s\": ${rate:-0}, \"corpus\": $n_corpus, \"new_crashes\": $n_crashes}"
  done
  echo "{\"seconds_per_target\": $secs, \"targets\": {$json}}"
  if [ "$found" -ne 0 ]; then
    say "run.sh: new crashes under $dir/fuzz/crashes/ (logs: $dir/fuzz/<target>.log); commit small"
    say "        ones to fuzz/regress/<target>/ with the fix"
    return 1
  fi
}

verb_reliability() {
  configure_and_build "$BUILD"
  if [ "${1:-}" = "--long" ]; then
    shift
    NF_BIN_DIR="$BUILD/bin" NF_ROOT="$ROOT" "$ROOT/tests/reliability/long_run.sh" "$@"
  else
    cd "$BUILD"
    ctest --output-on-failure -j "$JOBS" -L reliability "$@"
  fi
}

verb_help() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

main() {
  local verb="${1:-help}"
  [ $# -gt 0 ] && shift
  case "$verb" in
    help|-h|--help) verb_help ;;
    setup) setup_packages ;;
    build) setup_packages; configure_and_build "$BUILD" ;;
    test) setup_packages; verb_test "$@" ;;
    bench) setup_packages; verb_bench "$@" ;;
    fuzz) setup_packages; verb_fuzz "$@" ;;
    reliability) setup_packages; verb_reliability "$@" ;;
    keygen) setup_packages; configure_and_build "$BUILD"; exec "$BUILD/bin/loader" keygen "$@" ;;
    gpu-check) exec "$ROOT/gpu/check.sh" "$@" ;;
    *) die "unknown verb '$verb' (./run.sh help)" ;;
  esac
}

main "$@"
