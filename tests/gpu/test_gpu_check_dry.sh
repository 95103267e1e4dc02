#!/usr/bin/env bash
# test_gpu_check_dry.sh: `./run.sh gpu-check --dry` runs the whole GPU-check
# sequence on the CPU at tiny sizes (label integration): every step ends ok
# (or skipped for a stated reason: no GPU, the build reused), summary.json
# records each step with its figure and the benchmarks' JSON, the chapter run
# wrote its table (metrics.csv, one row per epoch), and the short table is
# printed last. Skips (77) without Imagenette (NF_DATA_DIR) or python3.
set -uo pipefail
ROOT="${NF_SOURCE_DIR:?run through ctest}"
BIN="${NF_BIN_DIR:?run through ctest}"
[ -d "${NF_DATA_DIR:-/nonexistent}/train" ] || { echo "SKIP: no Imagenette at NF_DATA_DIR"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3 (the check writes its summary with it)"; exit 77; }
OUTD="$(mktemp -d)"
trap 'rm -rf "$OUTD"' EXIT
"$ROOT/gpu/check.sh" --dry --out "$OUTD" --build-dir "$(dirname "$BIN")" >"$OUTD/stdout" 2>"$OUTD/stderr"
rc=$?
tail -12 "$OUTD/stdout"
[ "$rc" -eq 0 ] || { echo "FAIL: gpu-check --dry exited $rc"; tail -40 "$OUTD/check.log"; exit 1; }
python3 - "$OUTD" <<'PY' || exit 1
import csv, json, os, sys
out = sys.argv[1]
s = json.load(open(os.path.join(out, "summary.json")))
want = {"env": "ok", "build": "skipped", "gpu_tests": "skipped", "trainer50": "ok",
        "trainer18": "ok", "data": "ok", "loader": "ok", "chapter": "ok"}
got = {st["step"]: st for st in s["steps"]}
bad = [f"{k}: {got.get(k, {}).get('status')} (want {v})" for k, v in want.items()
       if got.get(k, {}).get("status") != v]
assert not bad, "steps: " + "; ".join(bad)
assert s["ok"] and s["mode"] == "dry", s
assert "7 of 7" in got["gpu_tests"]["figure"] or "of" in got["gpu_tests"]["figure"], got["gpu_tests"]
for k in ("trainer50", "trainer18"):
    r = got[k]["result"]
    assert r["netteflow"]["img_per_s"] > 0, r
ld = got["loader"]["result"]
assert ld["images"] > 0 and ld["bad_files"] == 0, ld
ch = got["chapter"]["result"]
assert ch["ok"] and len(ch["rows"]) == 1 and ch["tta_passes"] == 1, ch
assert ch["rows"][0]["train_loss"] > 0 and 0 <= ch["rows"][0]["accuracy"] <= 1, ch
rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
assert len(rows) == 1 and rows[0]["epoch"] == "0", rows
for f in ("check.log", "chapter.log", "ctest.log"):
    assert os.path.getsize(os.path.join(out, f)) > 0, f
print("OK: every step as expected;", ch["wall_s"], "s chapter run")
PY
grep -q "^step  *status" "$OUTD/stdout" || { echo "FAIL: no table printed"; exit 1; }
exit 0
