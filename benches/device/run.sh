#!/usr/bin/env bash
# The device check of issues 8 and 17: `gmm info`, then `gmm bench --json` for every standard case
# in each arithmetic (fast, exact, exact two-float: --precision fast, exact, exact --no-f64), and
# case A again with `--kernels split` (the split kernels the fused pass replaces), then the PyTorch
# peer (benches/peers/torch_em.py) on the same card in the same call.
#
# Run on the device machine from the repo root, with OUT set to a folder whose files come back
# (at most 8 files; this script writes 7):
#     bash benches/device/run.sh
# Environment: GMM_BENCH_SCALE (default 1) is passed to both sides as --scale (N times scale);
# GMM_CASE_TIMEOUT (default 90 s) bounds each `gmm bench --json` case, TORCH_TIMEOUT (default
# 150 s) the whole peer run, and the script keeps to a deadline of RUN_DEADLINE (default 450 s):
# the gmm cases stop starting at deadline - 180 s (what remains goes to the peer). The tables are
# printed from the JSON by compare.py (no second, device-time-costing pass). So the total stays
# under 8 minutes.
#
# Preparing it here: `bash benches/device/prepare.sh` (the Vulkan loader package in .gl/,
# target/release/gmm, and the release GPU tests in .device-tests/; none of it committed), and the
# device call carries all three:
#   run(command="bash benches/device/run.sh", carry=[".gl", "target/release/gmm", ".device-tests"],
#       timeout_s=540)
# Afterwards, here: python3 benches/device/compare.py <files_at folder>
set -uo pipefail

OUT=${OUT:?set OUT to the folder whose files come back}
SCALE=${GMM_BENCH_SCALE:-1}
CASE_TIMEOUT=${GMM_CASE_TIMEOUT:-90}
TORCH_TIMEOUT=${TORCH_TIMEOUT:-150}
DEADLINE=${RUN_DEADLINE:-450}
SECONDS=0
# the timeout for a step: min(cap, until - elapsed), at least 1
budget() { local left=$(($2 - SECONDS)); [ "$left" -lt "$1" ] && echo $((left > 1 ? left : 1)) || echo "$1"; }
GMM=target/release/gmm
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
log() { echo "[run.sh $(date +%T)] $*" | tee -a "$OUT/run.log"; }

# --- Vulkan loader (the image has the NVIDIA driver's ICD but no libvulkan) ---------------------
if ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
ldconfig -p | grep -q libvulkan || log "warning: no libvulkan after unpacking .gl (was .gl carried?)"
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    # `gmm info` is the detection: if it sees no hardware adapter, point the loader at the driver.
    if ! "$GMM" info 2>&1 | grep -qi nvidia; then
        export VK_DRIVER_FILES=$icd
        log "no NVIDIA adapter found by default; VK_DRIVER_FILES=$icd"
    fi
fi

# --- gmm info, nvidia-smi --------------------------------------------------------------------------
if [ ! -x "$GMM" ]; then
    log "error: $GMM missing (carry target/release/gmm)"
else
    log "gmm info"
    timeout 60 "$GMM" info >"$OUT/info.txt" 2>&1
    echo "rc=$?" >>"$OUT/info.txt"
fi
if command -v nvidia-smi >/dev/null; then
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
fi

# --- the GPU tests that need this device: its subgroups and fma against the fallbacks, bitwise,
# and the fused pass against the split kernels and the CPU (CI=true: a missing adapter fails) ------
if ls .device-tests/* >/dev/null 2>&1; then
    for t in .device-tests/*; do
        case "$(basename "$t")" in bench_*) continue ;; esac
        log "test $(basename "$t")"
        CI=true timeout 60 "$t" --nocapture >>"$OUT/device_tests.txt" 2>&1
        echo "rc=$? ($(basename "$t"))" >>"$OUT/device_tests.txt"
    done
else
    log "no .device-tests (run benches/device/prepare.sh and carry .device-tests)"
fi

# --- gmm bench, one case at a time so a slow case cannot eat the lease -----------------------------
: >"$OUT/gmm_bench.jsonl"
: >"$OUT/gmm_bench.txt"
if [ -x "$GMM" ]; then
        for run in "A fast" "A exact" "A exact --no-f64" "B fast" "B exact" "B exact --no-f64" \
        "C fast" "C exact" "D fast" "D exact" "E fast" "E exact" "E exact --no-f64" \
        "F fast" "F exact" "F exact --no-f64"; do
        set -- $run
        c=$1
        shift
        if [ $SECONDS -ge $((DEADLINE - 180)) ]; then
            log "gmm bench --case $c --precision $* skipped: past the gmm share of the deadline"
            printf '{"case":"%s","error":"skipped (deadline)"}\n' "$c" >>"$OUT/gmm_bench.jsonl"
            continue
        fi
        log "gmm bench --case $c --precision $* --scale $SCALE"
        err=$(mktemp)
        timeout "$(budget "$CASE_TIMEOUT" $((DEADLINE - 150)))" "$GMM" bench --json --case "$c" --scale "$SCALE" --precision "$@" >>"$OUT/gmm_bench.jsonl" 2>"$err"
        rc=$?
        # whatever gmm said on stderr (warnings, or a table) goes to the readable file as well
        [ -s "$err" ] && { echo "--- case $c (stderr of --json)"; cat "$err"; } >>"$OUT/gmm_bench.txt"
        if [ $rc -ne 0 ]; then
            log "gmm bench --case $c: rc=$rc$([ $rc -eq 124 ] && echo ' (timed out)')"
            tail -n 20 "$err" | sed "s/^/[gmm $c] /" | tee -a "$OUT/run.log"
            printf '{"case":"%s","error":"rc=%s"}\n' "$c" "$rc" >>"$OUT/gmm_bench.jsonl"
        fi
        rm -f "$err"
    done
    # Case A again with the split kernels: the fused pass against what it replaces, same card.
    if [ $SECONDS -lt $((DEADLINE - 170)) ]; then
        log "gmm bench --case A --kernels split --scale $SCALE"
                timeout "$(budget "$CASE_TIMEOUT" $((DEADLINE - 150)))" "$GMM" bench --json --case A --kernels split \
            --precision fast --scale "$SCALE" >>"$OUT/gmm_bench.jsonl" 2>>"$OUT/gmm_bench.txt" || log "gmm bench --case A --kernels split failed"
    fi
fi

# --- inference throughput (issue 26): the encode path, predict_on and the CPU, and the copy
# bandwidth they are measured against -------------------------------------------------------------
if [ -x .device-tests/bench_infer ] && [ $SECONDS -lt $((DEADLINE - 200)) ]; then
    log "bench_infer --scale $SCALE --iters 3"
    timeout "$(budget 60 $((DEADLINE - 150)))" .device-tests/bench_infer --scale "$SCALE" --iters 3 \
        >"$OUT/infer.txt" 2>>"$OUT/run.log" || log "bench_infer failed or timed out"
fi

# --- the PyTorch peer ---------------------------------------------------------------------------
log "torch_em.py --case all --scale $SCALE"
timeout "$(budget "$TORCH_TIMEOUT" "$DEADLINE")" python3 benches/peers/torch_em.py --case all --scale "$SCALE" --json \
    >"$OUT/torch.json" 2>>"$OUT/run.log"
rc=$?
[ $rc -ne 0 ] && log "torch_em.py: rc=$rc$([ $rc -eq 124 ] && echo ' (timed out)')"

# --- summary --------------------------------------------------------------------------------------
echo "===== info"; cat "$OUT/info.txt" 2>/dev/null
echo "===== device tests"; grep -E "^test |rc=|width|panicked" "$OUT/device_tests.txt" 2>/dev/null
echo "===== gmm bench"; cat "$OUT/gmm_bench.txt" 2>/dev/null
echo "===== inference"; cat "$OUT/infer.txt" 2>/dev/null
echo "===== side by side"
python3 benches/device/compare.py "$OUT" 2>&1 || cat "$OUT/torch.json"
log "done"
