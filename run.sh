#!/usr/bin/env bash
# run.sh: the front door of netteflow.
#
# Sets up what is missing (Debian packages when run as root, otherwise it
# prints the exact command; CMake configure + build), then runs a verb.
#
#   ./run.sh                      the main job: find (or download, or generate) the data,
#                                 then train with the chapter's recipe (CPU: preset quick,
#                                 GPU: preset tta) through all four stages
#   ./run.sh train [options]      loader + augment + trainer + evaluator with a recipe:
#                                 --data DIR --preset NAME --arch A --epochs 4,5 --sizes 128,224
#                                 --lr .. --bs .. --presize .. --normalize imagenet|none|computed
#                                 --mixup A --label-smoothing E --tta --seed N --workers N
#                                 --device cpu|cuda --out DIR ...   (./run.sh train --help)
#   ./run.sh eval CKPT [--tta] [--n 4] [--beta 0.25] [--data DIR]   evaluate a checkpoint
#   ./run.sh predict CKPT IMAGE...                                  class + probabilities
#   ./run.sh lr-find [options]    fastai's learning-rate range test (suggestion + plot)
#   ./run.sh data [--data DIR]    find, download or generate the dataset; print its folder
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
# NF_DATA_DIR (Imagenette for tests/benchmarks, default ../shared/data/imagenette2-224),
# NF_BIN_DIR (use these built programs, skip the build), NF_CACHE_DIR (downloads and
# generated data, default ~/.cache/netteflow), NF_IMAGENETTE_URL (the archive to fetch).
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

# ---------------------------------------------------------------------------
# the pipeline: data, devices, stages and their supervision (docs/usage.md)

CACHE="${NF_CACHE_DIR:-${HOME:-/tmp}/.cache/netteflow}"
# Four stages share the cores: OpenMP threads that spin at barriers steal them
# from the others (measured: training 2-4x slower while an evaluation runs; see
# docs/results.md). Waiting threads sleep instead, unless the user says otherwise.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
# The trainer uses every core; the augment stage and the evaluator half of them.
SIDE_THREADS=$(( $(nproc 2>/dev/null || echo 2) / 2 ))
[ "$SIDE_THREADS" -ge 1 ] || SIDE_THREADS=1
IMAGENETTE_URL="${NF_IMAGENETTE_URL:-https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz}"
BIN=""

# Builds (unless NF_BIN_DIR names ready programs) and sets BIN.
need_programs() {
  if [ -n "${NF_BIN_DIR:-}" ]; then
    BIN="$NF_BIN_DIR"
  else
    setup_packages
    configure_and_build "$BUILD"
    BIN="$BUILD/bin"
  fi
  local p
  for p in loader augment trainer evaluator; do
    [ -x "$BIN/$p" ] || die "no $p program in $BIN"
  done
}

# True when DIR looks like an ImageFolder dataset with a training folder, or a
# loader pack (docs/gpu.md).
is_dataset() { [ -d "$1" ] && { [ -d "$1/train" ] || [ -f "$1/nfpack.idx" ]; }; }

# Downloads and unpacks the Imagenette archive into CACHE; prints the folder.
# Returns 1 (after one line on stderr) when the download or the archive fails.
fetch_imagenette() {
  command -v curl >/dev/null 2>&1 || { say "run.sh: curl not found"; return 1; }
  mkdir -p "$CACHE" || return 1
  local name tgz tmp top
  name="$(basename "${IMAGENETTE_URL%%\?*}")"
  name="${name%.tgz}"; name="${name%.tar.gz}"
  tgz="$CACHE/$name.tgz"
  if [ ! -s "$tgz" ]; then
    say "run.sh: downloading $IMAGENETTE_URL"
    curl -fL --retry 2 --connect-timeout 10 --max-time 3600 -sS -o "$tgz.part" "$IMAGENETTE_URL" \
      2>"$CACHE/download.log" || { rm -f "$tgz.part"; return 1; }
    mv "$tgz.part" "$tgz"
  fi
  tmp="$(mktemp -d "$CACHE/.unpack.XXXXXX")" || return 1
  if ! tar -xzf "$tgz" -C "$tmp" --no-same-owner 2>"$CACHE/download.log"; then
    say "run.sh: $tgz is not a readable .tgz archive (removed; see $CACHE/download.log)"
    rm -rf "$tmp" "$tgz"
    return 1
  fi
  top="$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -1)"
  if [ -z "$top" ] || ! is_dataset "$top"; then
    say "run.sh: the archive $tgz has no <folder>/train/ inside (removed)"
    rm -rf "$tmp" "$tgz"
    return 1
  fi
  rm -rf "$CACHE/$(basename "$top")"
  mv "$top" "$CACHE/" && rm -rf "$tmp"
  printf '%s\n' "$CACHE/$(basename "$top")"
}

# Sets DATA (and SYNTHETIC=1 for generated data) from --data, a local cache,
# a download, or the generator.
DATA=""
SYNTHETIC=0
resolve_data() {
  local given="$1" c
  if [ -n "$given" ]; then
    is_dataset "$given" || die "--data $given: no such dataset folder (expected $given/train/<class>/...)"
    DATA="$(cd "$given" && pwd)"
    return
  fi
  for c in "$NF_DATA_DIR" "$CACHE/imagenette2-160" "$CACHE/imagenette2-320" \
           "$CACHE/imagenette2"; do
    if is_dataset "$c"; then DATA="$(cd "$c" && pwd)"; return; fi
  done
  if DATA="$(fetch_imagenette)"; then
    say "run.sh: Imagenette is in $DATA"
    return
  fi
  say "run.sh: no Imagenette here and none could be downloaded from $IMAGENETTE_URL: training on a small generated dataset instead, to show the pipeline working"
  DATA="$CACHE/synthetic"
  SYNTHETIC=1
  if ! is_dataset "$DATA"; then
    rm -rf "$DATA"
    "$BIN/loader" gen-synthetic --out "$DATA" >/dev/null || die "cannot generate $DATA"
  fi
}

# The value of option $1 in the remaining arguments (the last one wins), or "".
opt_value() {
  local name="$1" v="" prev="" a; shift
  for a in "$@"; do
    [ "$prev" = "$name" ] && v="$a"
    prev="$a"
  done
  printf '%s' "$v"
}
has_opt() { local name="$1" a; shift; for a in "$@"; do [ "$a" = "$name" ] && return 0; done; return 1; }

# DEVICE (cpu|cuda) from --device or what is usable, said in one line.
choose_device() {
  local want="$1" gpus
  gpus="$("$BIN/augment" devices 2>/dev/null || echo 0)"
  case "$want" in
    cuda) [ "$gpus" -gt 0 ] || die "--device cuda, but no usable GPU (or a build without CUDA)"; DEVICE=cuda ;;
    cpu) DEVICE=cpu ;;
    *) if [ "$gpus" -gt 0 ]; then DEVICE=cuda; else DEVICE=cpu; fi ;;
  esac
  if [ "$DEVICE" = cuda ]; then say "run.sh: device: CUDA ($gpus GPU(s) usable)"
  elif [ "$want" = cpu ]; then say "run.sh: device: CPU (oneDNN, $(nproc) cores), as asked"
  else say "run.sh: device: CPU (oneDNN, $(nproc) cores): no usable GPU"; fi
}

# Stages run in the background, supervised: the first to stop decides.
declare -A STAGE_NAME=()
STAGE_PIDS=()
MAIN_PID=""
STOPPING=0

# start_stage NAME LOGFILE cmd...: output to the log file.
start_stage() {
  local name="$1" log="$2"; shift 2
  "$@" >>"$log" 2>&1 &
  STAGE_NAME[$!]="$name"
  STAGE_PIDS+=("$!")
}

# start_main NAME cmd...: the stage whose end is the end of the job (terminal output).
start_main() {
  local name="$1"; shift
  "$@" &
  MAIN_PID=$!
  STAGE_NAME[$MAIN_PID]="$name"
  STAGE_PIDS+=("$MAIN_PID")
}

stop_stages() {
  local p t
  STOPPING=1
  for p in "${STAGE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for t in $(seq 1 100); do
    local alive=0
    for p in "${STAGE_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for p in "${STAGE_PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      say "run.sh: ${STAGE_NAME[$p]} did not stop within 10 s: killing it"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
}

IPC_DIR=""
remove_sockets() {
  [ -n "$IPC_DIR" ] || return 0
  rm -f "$IPC_DIR"/*.ipc
  [ "$IPC_DIR" = "${RUN:-}" ] || rm -rf "$IPC_DIR"
}

on_interrupt() {
  trap '' INT TERM
  say ""
  say "run.sh: interrupted: stopping every stage"
  stop_stages
  remove_sockets
  exit 130
}

# Describes an exit status: "exit status N" or "signal NAME".
status_text() {
  if [ "$1" -gt 128 ]; then printf 'signal %s' "$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"
  else printf 'exit status %s' "$1"; fi
}

# Waits until the main stage ends (returns its status) or another stage
# fails (one line, the others are stopped, returns 1).
supervise() {
  local pid rc
  while :; do
    pid=""; rc=0
    wait -n -p pid 2>/dev/null || rc=$?   # (the stage is named below, not by bash)
    [ -n "$pid" ] || { say "run.sh: lost track of the stages"; stop_stages; return 1; }
    if [ "$pid" = "$MAIN_PID" ]; then
      stop_stages
      return "$rc"
    fi
    [ "$rc" -eq 0 ] && continue   # a stage that finished its part (an evaluator told to stop)
    say "run.sh: the ${STAGE_NAME[$pid]} stage stopped ($(status_text "$rc")); stopping the others. Its log: ${STAGE_LOG[$pid]:-?}"
    stop_stages
    return 1
  done
}
declare -A STAGE_LOG=()

# Starts loader (coordinator + workers) and augment for RUN, DATA; sets LOADER_EP, AUGMENT_EP.
start_data_stages() {
  local loader_args="$1" workers="$2" ipc="$3"
  LOADER_EP="ipc://$ipc/loader.ipc"
  AUGMENT_EP="ipc://$ipc/augment.ipc"
  # shellcheck disable=SC2086  # loader_args is a list of options
  start_stage loader "$RUN/loader.log" "$BIN/loader" coordinator --data "$DATA" --bind "$LOADER_EP" \
    --spawn-workers "$workers" $loader_args
  STAGE_LOG[$!]="$RUN/loader.log"
  start_stage augment "$RUN/augment.log" "$BIN/augment" serve --connect "$LOADER_EP" \
    --bind "$AUGMENT_EP" --sink "ipc://$ipc/sink.ipc" --device "$DEVICE" --threads "$SIDE_THREADS"
  STAGE_LOG[$!]="$RUN/augment.log"
}

# A folder for the ipc sockets: the run folder, or a short one when its path
# is too long for a unix socket address.
ipc_dir() {
  if [ ${#RUN} -le 80 ]; then printf '%s' "$RUN"; return; fi
  mktemp -d "${TMPDIR:-/tmp}/nf-ipc.XXXXXX"
}

# ./run.sh train [options], ./run.sh lr-find [options], and the main job.
verb_train() {
  local mode="$1"; shift
  local tmode=train
  [ "$mode" = lr-find ] && tmode=lr-find
  if has_opt --help "$@" || has_opt -h "$@"; then
    need_programs
    "$BIN/trainer" "$tmode" --help
    echo "run.sh adds: --out DIR (default runs/<date>-<time>-<preset>), --workers N (loader workers)"
    return 0
  fi
  need_programs
  local preset data_arg workers device_arg out bind resume curve_secret
  preset="$(opt_value --preset "$@")"
  resume="$(opt_value --resume "$@")"
  bind="$(opt_value --bind "$@")"
  # --curve-secret/--curve-allow go to the trainer (a CURVE --bind for evaluators elsewhere);
  # the evaluator started here then follows with the trainer's own key pair
  curve_secret="$(opt_value --curve-secret "$@")"
  has_opt --curve-server "$@" && die "--curve-server: augment runs here, on ipc (start the stages by hand for a remote one: docs/reliability.md)"
  data_arg="$(opt_value --data "$@")"
  workers="$(opt_value --workers "$@")"
  device_arg="$(opt_value --device "$@")"
  out="$(opt_value --out "$@")"
  if [ -n "$resume" ]; then
    # a resumed run: the recipe, the data and the run folder come from the checkpoint
    [ -n "$data_arg" ] || data_arg="$("$BIN/trainer" train --resume "$resume" --print-data)" || exit 2
    if [ -z "$out" ]; then
      if [ -d "$resume" ]; then out="$resume"; else out="$(dirname "$(dirname "$resume")")"; fi
    fi
  fi
  resolve_data "$data_arg"
  if [ -n "$resume" ]; then
    preset=""
  elif [ -z "$preset" ]; then
    if [ "$SYNTHETIC" -eq 1 ]; then preset=tiny
    elif [ "$mode" = main ] && [ "$("$BIN/augment" devices 2>/dev/null || echo 0)" -gt 0 ]; then preset=tta
    else preset=quick; fi
    say "run.sh: preset $preset$([ "$SYNTHETIC" -eq 1 ] && echo " (generated data)")"
  fi
  choose_device "$device_arg"
  [ -n "$workers" ] || workers="$(nproc 2>/dev/null || echo 2)"
  local targs=("$@" ${preset:+--preset "$preset"} --data "$DATA" --device "$DEVICE")
  local loader_args   # also checks every recipe option before anything starts
  loader_args="$("$BIN/trainer" train "${targs[@]}" --print-loader-args)" || exit 2
  RUN="${out:-$ROOT/runs/$(date +%Y%m%d-%H%M%S)-$preset}"
  mkdir -p "$RUN" || die "cannot create the run folder $RUN"
  RUN="$(cd "$RUN" && pwd)"
  targs+=(--out "$RUN")
  local ipc; ipc="$(ipc_dir)"
  IPC_DIR="$ipc"
  trap on_interrupt INT TERM
  start_data_stages "$loader_args" "$workers" "$ipc"
  if [ "$mode" = lr-find ]; then
    start_main trainer "$BIN/trainer" lr-find "${targs[@]}" --augment "$AUGMENT_EP"
  else
    local ecurve=()
    [ -n "$curve_secret" ] && ecurve=(--curve-secret "$curve_secret" --curve-trainer "$curve_secret")
    start_stage evaluator "$RUN/evaluator.log" "$BIN/evaluator" --augment "$AUGMENT_EP" \
      --follow "ipc://$ipc/trainer.ipc" --device "$DEVICE" --threads "$SIDE_THREADS" "${ecurve[@]}"
    STAGE_LOG[$!]="$RUN/evaluator.log"
    start_main trainer "$BIN/trainer" train "${targs[@]}" --augment "$AUGMENT_EP" \
      --bind "ipc://$ipc/trainer.ipc${bind:+,$bind}"
  fi
  STAGE_LOG[$MAIN_PID]="$RUN/trainer.log"
  local rc=0
  supervise || rc=$?
  remove_sockets
  return "$rc"
}

# ./run.sh eval CKPT [--data DIR] [--workers N] [--device D] [evaluator options]
verb_eval() {
  local ckpt="${1:-}"
  [ -n "$ckpt" ] && [ "${ckpt#-}" = "$ckpt" ] || die "usage: ./run.sh eval CHECKPOINT [--tta] [--n 4] [--beta 0.25] [--data DIR] [--json]"
  shift
  [ -f "$ckpt" ] || die "no checkpoint file $ckpt"
  need_programs
  local data_arg workers device_arg rest=() a skip=""
  data_arg="$(opt_value --data "$@")"
  workers="$(opt_value --workers "$@")"
  device_arg="$(opt_value --device "$@")"
  for a in "$@"; do   # the evaluator gets the rest
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$a" in --data|--workers|--device) skip=1 ;; *) rest+=("$a") ;; esac
  done
  [ -n "$data_arg" ] || data_arg="$("$BIN/evaluator" --checkpoint "$ckpt" --print-data)" || exit 2
  resolve_data "$data_arg"
  choose_device "$device_arg"
  [ -n "$workers" ] || workers="$(nproc 2>/dev/null || echo 2)"
  RUN="$(mktemp -d "${TMPDIR:-/tmp}/nf-eval.XXXXXX")"
  local loader_args
  loader_args="$("$BIN/evaluator" --checkpoint "$ckpt" --print-loader-args)" || exit 2
  IPC_DIR="$RUN"
  trap on_interrupt INT TERM
  start_data_stages "$loader_args" "$workers" "$RUN"
  start_main evaluator "$BIN/evaluator" --augment "$AUGMENT_EP" --checkpoint "$ckpt" \
    --device "$DEVICE" --log "$RUN/evaluator.log" "${rest[@]}"
  STAGE_LOG[$MAIN_PID]="$RUN/evaluator.log"
  local rc=0
  supervise || rc=$?
  if [ "$rc" -eq 0 ]; then rm -rf "$RUN"; else say "run.sh: logs kept in $RUN"; fi
  return "$rc"
}

verb_predict() {
  [ $# -ge 2 ] || die "usage: ./run.sh predict CHECKPOINT IMAGE... [--top K] [--json]"
  local ckpt="$1"; shift
  need_programs
  exec "$BIN/evaluator" predict --checkpoint "$ckpt" "$@"
}

verb_data() {
  need_programs
  resolve_data "$(opt_value --data "$@")"
  printf '%s\n' "$DATA"
}


FUZZ_TARGETS=(wire safetensors jpeg pack coordinator consumer worker augment_server augment_client announce eval_announce)

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
  local verb="${1:-main}"
  [ $# -gt 0 ] && shift
  case "$verb" in
    main) verb_train main "$@" ;;
    train) verb_train train "$@" ;;
    lr-find) verb_train lr-find "$@" ;;
    eval) verb_eval "$@" ;;
    predict) verb_predict "$@" ;;
    data) verb_data "$@" ;;
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
