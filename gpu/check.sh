#!/usr/bin/env bash
# gpu/check.sh: the GPU check, one command for one short GPU window
# (`./run.sh gpu-check`; docs/gpu.md has the exact device call).
#
#   ./run.sh gpu-check --prepare        on a development machine: gathers what the
#                                       GPU machine lacks into .gpu/ (git-ignored):
#                                       our Debian libraries and headers as one
#                                       tarball, Imagenette packed at 128 px
#   ./run.sh gpu-check [--out DIR]      on the GPU machine: unpacks the libraries into
#                                       a private prefix, finds cuDNN/cuBLAS (system
#                                       CUDA or the PyTorch install), builds for sm_90,
#                                       runs every `gpu` test, the trainer benchmark
#                                       (xresnet50 @224 and xresnet18 @128 against
#                                       PyTorch on the same GPU), the loader benchmark
#                                       with 16 workers and a 5-epoch chapter run
#   ./run.sh gpu-check --dry [--out DIR]  the same sequence on the CPU at tiny sizes
#                                       (GPU parts skipped), for CI and development
#
# Output (--out DIR, else $OUT, else ./gpu-check-out): summary.json (every step's
# status, time and figures), check.log (everything), build.log, ctest.log,
# chapter.log, metrics.csv; a short table is printed last. Each step has its own
# time limit and a failed step never stops the others; no step starts after
# NF_CHECK_BUDGET_S (default 420) seconds and every step is stopped by
# NF_CHECK_DEADLINE_S (480): the check fits 8 minutes.
# Options: --build-dir DIR (default build-gpu; --dry: NF_BUILD_DIR or build),
# --data DIR (a dataset folder or pack; default .gpu/imagenette-128).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPU_DIR="$ROOT/.gpu"
PACK_SIZE=128 PACK_QUALITY=70
PACK="$GPU_DIR/imagenette-$PACK_SIZE"
MODE=device OUTDIR="" BUILD="" DATA=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare; shift ;;
    --dry) MODE=dry; shift ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown option $1 (./run.sh gpu-check --help)" >&2; exit 2 ;;
  esac
done

# Debian packages the GPU machine lacks: development files of what we link,
# their run-time libraries, and their run-time dependencies (libzmq5's,
# libdnnl2's OpenCL loader, protoc-c's protobuf libraries), plus pkgconf.
DEPS_PKGS=(libzmq3-dev libzmq5 libsodium23 libpgm-5.3-0 libnorm1 libbsd0 libmd0
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2
  libturbojpeg0-dev libturbojpeg0 libprotobuf-c-dev libprotobuf-c1 protobuf-c-compiler
  libprotoc32 libprotobuf32 libpng-dev libpng16-16 libcjson-dev libcjson1 libdnnl-dev libdnnl2
  ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers zlib1g-dev zlib1g
  pkgconf pkgconf-bin libpkgconf3)

say() { printf '%s\n' "$*" >&2; }
die() { say "gpu-check: $*"; exit 1; }

# ---------------------------------------------------------------------------
# prepare (development machine)

prepare() {
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "--prepare needs apt-get and dpkg"
  mkdir -p "$GPU_DIR"
  if [ ! -f "$GPU_DIR/deps.tar.xz" ]; then
    local tmp; tmp="$(mktemp -d)"
    say "gpu-check: downloading ${#DEPS_PKGS[@]} Debian packages"
    (cd "$tmp" && apt-get download "${DEPS_PKGS[@]}" >/dev/null 2>"$tmp/apt.err") \
      || { cat "$tmp/apt.err" >&2; rm -rf "$tmp"; die "apt-get download failed"; }
    mkdir -p "$tmp/prefix"
    for f in "$tmp"/*.deb; do dpkg -x "$f" "$tmp/prefix"; done
    # documentation and static libraries are not needed to build or run
    rm -rf "$tmp/prefix/usr/share/doc" "$tmp/prefix/usr/share/man" "$tmp/prefix/usr/share/lintian" \
      "$tmp/prefix/usr/share/bug"
    find "$tmp/prefix" -name '*.a' -delete
    # we link shared: libzmq's private requirements would ask for five more -dev packages
    sed -i '/^Requires.private/d' "$tmp/prefix/usr/lib/x86_64-linux-gnu/pkgconfig/libzmq.pc"
    (cd "$tmp" && for f in *.deb; do dpkg-deb -f "$f" Package Version | paste -sd' '; done) \
      >"$GPU_DIR/deps.txt"
    XZ_OPT=-9e tar -cJf "$GPU_DIR/deps.tar.xz" -C "$tmp/prefix" .
    rm -rf "$tmp"
  fi
  say "gpu-check: libraries $(du -h "$GPU_DIR/deps.tar.xz" | cut -f1) ($(wc -l <"$GPU_DIR/deps.txt") packages)"
  local data="${NF_DATA_DIR:-$ROOT/../shared/data/imagenette2-224}"
  if [ ! -f "$PACK/nfpack.idx" ]; then
    [ -d "$data/train" ] || die "no Imagenette at $data (NF_DATA_DIR) to pack"
    "$ROOT/run.sh" build >/dev/null || die "build failed"
    rm -rf "$PACK"
    "${NF_BUILD_DIR:-$ROOT/build}/bin/loader" pack --data "$data" --out "$PACK" \
      --size "$PACK_SIZE" --quality "$PACK_QUALITY" >"$GPU_DIR/pack.json" || die "loader pack failed"
  fi
  say "gpu-check: Imagenette packed at $PACK_SIZE px: $(du -sh "$PACK" | cut -f1) ($(cat "$GPU_DIR/pack.json"))"
  # what travels to the device: tracked and untracked-not-ignored files, and .gpu (carried)
  local tree gpu total
  tree=$(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  gpu=$(du -sb "$GPU_DIR" | cut -f1)
  total=$((tree + gpu))
  say "gpu-check: the device transfer is $((total / 1048576)) MiB (tree $((tree / 1048576)) MiB + .gpu $((gpu / 1048576)) MiB) of 64 MiB"
  [ "$total" -lt $((64 * 1048576)) ] || die "over the 64 MiB transfer limit"
  say "gpu-check: ready; on the GPU machine run ./run.sh gpu-check with .gpu carried (docs/gpu.md)"
}

if [ "$MODE" = prepare ]; then prepare; exit $?; fi

# ---------------------------------------------------------------------------
# the check (device or dry)

OUTDIR="${OUTDIR:-${OUT:-$ROOT/gpu-check-out}}"
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
WORK="$(mktemp -d /tmp/nfgpucheck.XXXXXX)"
LOG="$OUTDIR/check.log"
: >"$LOG"
STEPS="$WORK/steps.tsv"
: >"$STEPS"
BUDGET="${NF_CHECK_BUDGET_S:-420}"      # no step starts after this many seconds
DEADLINE="${NF_CHECK_DEADLINE_S:-480}"  # and every step is stopped by this one
T_START=$(date +%s)
trap 'rm -rf "$WORK"' EXIT
if [ "$MODE" = dry ]; then
  BUILD="${BUILD:-${NF_BUILD_DIR:-$ROOT/build}}"
else
  BUILD="${BUILD:-$ROOT/build-gpu}"
fi
BIN="$BUILD/bin"
NPROC=$(nproc 2>/dev/null || echo 2)

log() { printf '%s\n' "$*" | tee -a "$LOG" >&2; }

# step NAME TIMEOUT_S FUNCTION: runs FUNCTION with a time limit, its output in
# check.log; records status (ok, failed, timeout, skipped), seconds and the
# one-line figure the function wrote to $WORK/NAME.fig.
step() {
  local name="$1" limit="$2" fn="$3" t0 rc status
  local elapsed=$(( $(date +%s) - T_START ))
  if [ "$elapsed" -ge "$BUDGET" ]; then
    printf '%s\tskipped\t0\tout of time (%s s used of %s)\n' "$name" "$elapsed" "$BUDGET" >>"$STEPS"
    log "== $name: skipped, out of time"
    return
  fi
  [ "$limit" -gt $((DEADLINE - elapsed)) ] && limit=$((DEADLINE - elapsed))
  log "== $name (limit ${limit} s)"
  t0=$(date +%s.%N)
  # job control: the step runs in its own process group, so the watchdog can
  # stop it with everything it started (cmake, ctest, benchmarks)
  set -m
  ( "$fn" ) >>"$LOG" 2>&1 &
  local pid=$!
  set +m
  ( sleep "$limit" && kill -TERM -- "-$pid" 2>/dev/null && sleep 5 && kill -KILL -- "-$pid" 2>/dev/null
  ) >/dev/null 2>&1 &
  local watchdog=$!
  wait "$pid"; rc=$?
  # The watchdog goes with SIGKILL (its sleep first), never SIGTERM: a subshell
  # signalled before it has reset this shell's traps runs the EXIT trap above
  # and removed WORK under load (seen with strace in the parallel test suite).
  pkill -KILL -P "$watchdog" 2>/dev/null; kill -KILL "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  local secs; secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ -f "$WORK/$name.skip" ]; then status=skipped
  elif [ "$rc" -eq 0 ]; then status=ok
  elif [ "$rc" -eq 143 ] || [ "$rc" -eq 137 ]; then status=timeout
  else status=failed; fi
  local fig=""
  [ -f "$WORK/$name.fig" ] && fig="$(head -c 300 "$WORK/$name.fig" | tr '\t\n' '  ')"
  [ -f "$WORK/$name.skip" ] && fig="$(head -c 300 "$WORK/$name.skip" | tr '\t\n' '  ')"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "$fig" >>"$STEPS"
  log "== $name: $status in ${secs} s${fig:+: $fig}"
}

skip() { printf '%s\n' "$2" >"$WORK/$1.skip"; }
fig() { printf '%s\n' "$2" >"$WORK/$1.fig"; }
have_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# --- env --------------------------------------------------------------------
s_env() {
  echo "mode $MODE, root $ROOT, out $OUTDIR, build $BUILD, $NPROC cores"
  uname -a; grep -m1 'model name' /proc/cpuinfo || true
  if have_gpu; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    echo "GPU $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" >"$WORK/gpu_name"
  else
    echo "no GPU (nvidia-smi absent or sees none)"
  fi
  command -v nvcc && nvcc --version | tail -2 || echo "no nvcc on PATH"
  [ -x /usr/local/cuda/bin/nvcc ] && /usr/local/cuda/bin/nvcc --version | tail -1
  cmake --version | head -1 || echo "no cmake"
  gcc --version | head -1 || echo "no gcc"
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.is_available())' 2>&1 || true
  fig env "$(cat "$WORK/gpu_name" 2>/dev/null || echo 'no GPU'); $NPROC cores"
}

# --- deps: the prefix, the paths, cuDNN and cuBLAS --------------------------
DEPS=/tmp/nfdeps
s_deps() {
  [ -f "$GPU_DIR/deps.tar.xz" ] || { echo "no $GPU_DIR/deps.tar.xz: run ./run.sh gpu-check --prepare first and carry .gpu"; return 1; }
  rm -rf "$DEPS"; mkdir -p "$DEPS/bin" "$DEPS/cudnn/lib" "$DEPS/cudnn/include"
  tar -xJf "$GPU_DIR/deps.tar.xz" -C "$DEPS" || return 1
  local lib="$DEPS/usr/lib/x86_64-linux-gnu" lib2="$DEPS/lib/x86_64-linux-gnu"
  # Debian's absolute symlinks (libz.so -> /lib/...) point into the prefix instead
  find "$DEPS/usr" "$DEPS/lib" -type l -lname '/*' 2>/dev/null | while read -r l; do
    local t; t="$(readlink "$l")"
    [ -e "$DEPS$t" ] && ln -sfn "$DEPS$t" "$l"
  done
  # .pc files say prefix=/usr: point them at the private prefix
  sed -i "s#^prefix=/usr\$#prefix=$DEPS/usr#" "$lib"/pkgconfig/*.pc "$DEPS"/usr/share/pkgconfig/*.pc 2>/dev/null
  # the Debian programs run with the prefix's libraries
  for prog in protoc-c pkgconf; do
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s:%s exec %s/usr/bin/%s "$@"\n' "$lib" "$lib2" "$DEPS" "$prog" \
      >"$DEPS/bin/$prog"
    chmod +x "$DEPS/bin/$prog"
  done
  ln -sf pkgconf "$DEPS/bin/pkg-config"
  # cuDNN: the system CUDA's, or the one inside the PyTorch install
  local cuda_home="" inc="" cudnn_lib=""
  local nvcc_path; nvcc_path="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
  [ -x "$nvcc_path" ] && cuda_home="$(cd "$(dirname "$nvcc_path")/.." && pwd)"
  echo "nvcc: $nvcc_path (CUDA home $cuda_home)"
  for d in "$cuda_home/include" /usr/include /usr/include/x86_64-linux-gnu; do
    [ -f "$d/cudnn.h" ] && { inc="$d"; break; }
  done
  for d in "$cuda_home/lib64" "$cuda_home/lib" /usr/lib/x86_64-linux-gnu; do
    ls "$d"/libcudnn.so* >/dev/null 2>&1 && { cudnn_lib="$d"; break; }
  done
  if [ -z "$inc" ] || [ -z "$cudnn_lib" ]; then
    local pyd; pyd="$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)"
    [ -n "$pyd" ] && [ -f "$pyd/include/cudnn.h" ] && inc="$pyd/include" && cudnn_lib="$pyd/lib"
  fi
  [ -n "$inc" ] && [ -n "$cudnn_lib" ] || { echo "cuDNN not found (system CUDA or python3's nvidia.cudnn)"; return 1; }
  ln -sf "$inc"/cudnn*.h "$DEPS/cudnn/include/"
  local so; so="$(ls "$cudnn_lib"/libcudnn.so* | sort | head -1)"
  ln -sf "$so" "$DEPS/cudnn/lib/libcudnn.so"
  echo "cuDNN: headers $inc, library $so ($(grep -m1 'define CUDNN_MAJOR' "$inc/cudnn_version.h" 2>/dev/null))"
  # cuBLAS: the toolkit's, else the PyTorch install's
  local cublas_dir="" extra_inc=""
  ls "$cuda_home"/lib64/libcublas.so* >/dev/null 2>&1 && cublas_dir="$cuda_home/lib64"
  if [ -z "$cublas_dir" ]; then
    local pyb; pyb="$(python3 -c 'import nvidia.cublas as m; print(list(m.__path__)[0])' 2>/dev/null)"
    [ -n "$pyb" ] && cublas_dir="$pyb/lib" && extra_inc="$pyb/include"
  fi
  echo "cuBLAS: $cublas_dir"
  {
    echo "export PATH=$DEPS/bin:$DEPS/usr/bin:${cuda_home:+$cuda_home/bin:}\$PATH"
    echo "export PKG_CONFIG_PATH=$lib/pkgconfig:$DEPS/usr/share/pkgconfig"
    echo "export CUDNN_LIB_DIR=$DEPS/cudnn/lib CUDNN_INCLUDE_DIR=$DEPS/cudnn/include"
    echo "export NF_RPATH=$lib:$lib2:$cudnn_lib${cublas_dir:+:$cublas_dir}"
    echo "export NF_EXTRA_INC=$extra_inc"
    echo "export NF_CUBLAS_DIR=$cublas_dir"
  } >"$DEPS/env.sh"
  cat "$DEPS/env.sh"
  fig deps "cuDNN $(basename "$so") from $cudnn_lib"
}

# --- build --------------------------------------------------------------------
s_build() {
  if [ "$MODE" = dry ]; then
    [ -x "$BIN/nf_chapter" ] && [ -x "$BIN/trainer" ] && [ -x "$BIN/loader" ] \
      || { echo "dry: no build at $BUILD (./run.sh build first)"; return 1; }
    skip build "dry: reusing the build at $BUILD"
    return 0
  fi
  [ -f "$DEPS/env.sh" ] || { echo "no dependencies (the deps step failed)"; return 1; }
  # shellcheck disable=SC1091
  . "$DEPS/env.sh"
  local flags="-Wl,--disable-new-dtags -Wl,-rpath,$NF_RPATH" extra=()
  if [ -n "$NF_EXTRA_INC" ]; then
    extra+=(-DCMAKE_C_FLAGS="-I$NF_EXTRA_INC" -DCMAKE_CUDA_FLAGS="-I$NF_EXTRA_INC"
      -DCUDA_cublas_LIBRARY="$(ls "$NF_CUBLAS_DIR"/libcublas.so* | sort | head -1)")
  fi
  local t0; t0=$(date +%s)
  # the RPATH (not RUNPATH) of our programs finds the prefix's libraries and
  # their dependencies, without an LD_LIBRARY_PATH that python3 would inherit
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNF_CUDA_ARCHS=90 \
    -DCMAKE_PREFIX_PATH="$DEPS/usr" -DCMAKE_EXE_LINKER_FLAGS="$flags" "${extra[@]}" \
    >"$OUTDIR/build.log" 2>&1 || { tail -40 "$OUTDIR/build.log"; return 1; }
  grep -E "netteflow|cuDNN|CUDA" "$OUTDIR/build.log" | head -5
  cmake --build "$BUILD" -j "$NPROC" >>"$OUTDIR/build.log" 2>&1 \
    || { grep -E -B2 -A6 'error' "$OUTDIR/build.log" | head -60; return 1; }
  fig build "sm_90 build in $(( $(date +%s) - t0 )) s"
}

# --- gpu tests ------------------------------------------------------------------
s_gpu_tests() {
  [ -d "$BUILD" ] || return 1
  if [ "$MODE" = dry ]; then
    # no nested ctest (this may itself run under ctest): each gpu test program
    # directly; without a GPU each must skip (exit 77) with its reason
    local n=0 skipped=0 t rc
    for t in "$BUILD"/tests/test_*cuda "$BUILD"/tests/test_augment_device; do
      [ -x "$t" ] || continue
      n=$((n + 1))
      "$t" cuda >>"$OUTDIR/ctest.log" 2>&1; rc=$?  # test_exec_cuda is test_exec with `cuda`
      echo "$(basename "$t"): exit $rc" | tee -a "$OUTDIR/ctest.log"
      [ "$rc" -eq 77 ] && skipped=$((skipped + 1))
    done
    skip gpu_tests "no GPU: $skipped of $n gpu test programs skipped with their reason"
    [ "$n" -gt 0 ] && [ "$skipped" -eq "$n" ]
    return
  fi
  (cd "$BUILD" && ctest -L gpu --output-on-failure -j 4 --timeout 300) >"$OUTDIR/ctest.log" 2>&1
  local rc=$?
  tail -30 "$OUTDIR/ctest.log"
  local line; line="$(grep -E 'tests passed|tests failed' "$OUTDIR/ctest.log" | tail -1)"
  local skipped; skipped="$(grep -c '\*\*\*Skipped' "$OUTDIR/ctest.log")"
  fig gpu_tests "$line; $skipped skipped"
  return $rc
}

# --- trainer benchmark ------------------------------------------------------------
s_trainer_bench() {  # ARCH SIZE BS NAME
  local arch="$1" size="$2" bs="$3" name="$4" args=()
  if [ "$MODE" = dry ]; then
    args=(--backend onednn --arch xresnet18 --size 32 --bs 2 --steps 1 --warmup 0 --rounds 1)
  else
    have_gpu || { skip "$name" "no GPU"; return 0; }
    args=(--backend cuda --dtype bf16 --arch "$arch" --size "$size" --bs "$bs" --steps 40 --warmup 8 --rounds 1)
    export NF_PYTHON="${NF_PYTHON:-python3}"  # the GPU machine's python3 holds torch
  fi
  NF_BIN_DIR="$BIN" NF_ROOT="$ROOT" "$ROOT/bench/trainer.sh" "${args[@]}" --json \
    >"$WORK/$name.json" || return 1
  cat "$WORK/$name.json"
  fig "$name" "$(python3 - "$WORK/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
o, p = d.get("netteflow") or {}, d.get("peer") or {}
s = f"ours {o.get('img_per_s')} img/s"
if p:
    s += f", PyTorch {p.get('img_per_s')} img/s, x{d.get('speedup_vs_peer')}"
else:
    s += f", no peer ({d.get('peer_reason')})"
print(s)
PY
)"
}
s_trainer50() { s_trainer_bench xresnet50 224 64 trainer50; }
s_trainer18() { s_trainer_bench xresnet18 128 64 trainer18; }

# --- data for the loader benchmark and the chapter run ---------------------------
dataset() {
  if [ -n "$DATA" ]; then echo "$DATA"; return; fi
  if [ "$MODE" = dry ]; then echo "$WORK/dry-pack"; else echo "$PACK"; fi
}

s_data() {
  local d; d="$(dataset)"
  if [ "$MODE" = dry ] && [ -z "$DATA" ]; then
    # a small pack of real images: 10 classes x (8 train + 4 valid), 48 px
    local src="${NF_DATA_DIR:-$ROOT/../shared/data/imagenette2-224}" tree="$WORK/dry-src"
    [ -d "$src/train" ] || { skip data "no Imagenette (NF_DATA_DIR) for the dry run"; return 0; }
    for split in train val; do
      local per=8; [ "$split" = val ] && per=4
      for c in "$src/$split"/*/; do
        c="$(basename "$c")"; mkdir -p "$tree/$split/$c"
        ls "$src/$split/$c" | head -"$per" | while read -r f; do ln -s "$src/$split/$c/$f" "$tree/$split/$c/$f"; done
      done
    done
    "$BIN/loader" pack --data "$tree" --out "$d" --size 48 --quality 80 --threads 2 || return 1
  fi
  [ -f "$d/nfpack.idx" ] || [ -d "$d/train" ] || { echo "no dataset at $d"; return 1; }
  fig data "$d ($(du -sh "$d" | cut -f1))"
}

have_data() { [ -f "$(dataset)/nfpack.idx" ] || [ -d "$(dataset)/train" ]; }

# --- loader benchmark -----------------------------------------------------------------
s_loader() {
  have_data || { skip loader "no dataset"; return 0; }
  local args=(--data "$(dataset)" --json)
  if [ "$MODE" = dry ]; then args+=(--workers 2 --presize 32 --batch-size 8 --max-batches 8)
  else args+=(--workers 16 --presize "$PACK_SIZE" --batch-size 128); fi
  NF_BIN_DIR="$BIN" NF_ROOT="$ROOT" "$ROOT/bench/loader.sh" "${args[@]}" >"$WORK/loader.json" || return 1
  cat "$WORK/loader.json"
  fig loader "$(python3 - "$WORK/loader.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d.get("peer") or {}
print(f"{d['img_per_s']} img/s with {d['workers']} workers ({d['img_per_s_per_worker']}/worker, "
      f"raw decode {d['raw_decode_img_per_s']}/core); PyTorch DataLoader {p.get('img_per_s')} img/s")
PY
)"
}

# --- the chapter run --------------------------------------------------------------------
s_chapter() {
  have_data || { skip chapter "no dataset"; return 0; }
  local args=(--data "$(dataset)" --out "$WORK/chapter")
  if [ "$MODE" = dry ]; then
    args+=(--backend onednn --arch xresnet18 --epochs 1 --bs 8 --size 32 --presize 40 --workers 2
      --max-batches 2 --tta 1)
  else
    args+=(--arch xresnet50 --epochs 5 --bs 128 --size "$PACK_SIZE" --workers 16 --tta 4)
  fi
  local sampler=""
  if have_gpu; then
    # GPU utilisation every 200 ms, with Unix timestamps
    ( while :; do
        printf '%s %s\n' "$(date +%s.%N)" "$(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits | head -1)"
        sleep 0.2
      done ) >"$WORK/util.txt" 2>/dev/null &
    sampler=$!
  fi
  NF_LOG_LEVEL=warn NF_BIN_DIR="$BIN" "$BIN/nf_chapter" "${args[@]}" 2>&1 | tee "$OUTDIR/chapter.log"
  local rc=${PIPESTATUS[0]}
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  cp "$WORK/chapter/metrics.csv" "$OUTDIR/metrics.csv" 2>/dev/null
  [ -f "$WORK/chapter/summary.json" ] || return 1
  fig chapter "$(python3 - "$WORK/chapter/summary.json" "$WORK/util.txt" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
rows = d.get("rows", [])
s = f"{len(rows)} epochs, {d['wall_s']:.1f} s first decode to final accuracy, acc {d['accuracy']:.4f}"
if d.get("tta_passes"):
    s += f", TTA {d['tta_accuracy']:.4f}"
s += f", {d['train_img_per_s']:.0f} img/s training, data wait {100 * d['data_wait_frac']:.1f}%"
util = sys.argv[2]
if os.path.exists(util) and len(rows) > 1:
    # after warm-up: from the end of epoch 0 to the end of the last epoch
    t0 = d["t0_unix"] + rows[0]["t_end_s"]
    t1 = d["t0_unix"] + rows[-1]["t_end_s"]
    v = []
    for line in open(util):
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and t0 <= float(parts[0]) <= t1:
            v.append(int(parts[1]))
    if v:
        d["gpu_busy_pct_after_warmup"] = sum(v) / len(v)
        s += f", GPU busy {sum(v) / len(v):.0f}% after warm-up ({len(v)} samples)"
    json.dump(d, open(sys.argv[1], "w"))
print(s)
PY
)"
  return "$rc"
}

# ---------------------------------------------------------------------------

log "gpu-check ($MODE) started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
step env 60 s_env
if [ "$MODE" = device ]; then step deps 120 s_deps; fi
step build 300 s_build
step gpu_tests 300 s_gpu_tests
step trainer50 180 s_trainer50
step trainer18 120 s_trainer18
step data 120 s_data
step loader 180 s_loader
step chapter 300 s_chapter

# summary.json and the table
python3 - "$STEPS" "$WORK" "$OUTDIR" "$MODE" "$T_START" <<'PY'
import json, os, sys, time
steps_tsv, work, out, mode, t_start = sys.argv[1:6]
steps = []
for line in open(steps_tsv):
    name, status, secs, fig = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
    s = {"step": name, "status": status, "seconds": float(secs), "figure": fig}
    for f in (f"{name}.json", f"{name}/summary.json"):
        p = os.path.join(work, f)
        if os.path.exists(p):
            try:
                s["result"] = json.load(open(p))
            except ValueError:
                pass
    steps.append(s)
gpu = open(os.path.join(work, "gpu_name")).read().strip() if os.path.exists(os.path.join(work, "gpu_name")) else None
summary = {"check": "netteflow gpu-check", "mode": mode, "gpu": gpu,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "total_s": round(time.time() - float(t_start), 1),
           "ok": all(s["status"] in ("ok", "skipped") for s in steps), "steps": steps}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print()
print(f"gpu-check ({mode}) {'OK' if summary['ok'] else 'FAILED'} in {summary['total_s']} s on {gpu or 'no GPU'}; {out}/summary.json")
print(f"{'step':<10} {'status':<8} {'secs':>6}  figure")
for s in steps:
    print(f"{s['step']:<10} {s['status']:<8} {s['seconds']:>6.1f}  {s['figure']}")
PY
