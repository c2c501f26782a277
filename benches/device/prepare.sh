#!/usr/bin/env bash
# Prepares the device check of issue 8 here (x86-64, as the device machine), so that the run there
# is one call:
#     run(command="bash benches/device/run.sh", carry=[".gl", "target/release/gmm", ".device-tests"],
#         timeout_s=540)
# It builds target/release/gmm, copies the release builds of the GPU tests that compare the
# device's own fast paths with their fallbacks (tests/gpu_fallbacks.rs), the fused pass with the
# split kernels (tests/gpu_fused.rs) and the arithmetics with the CPU (tests/gpu_precision.rs: on
# an H100 the f64 kernels, where its f64 rate passes the probe) into .device-tests/, and downloads the Vulkan loader package
# into .gl/ (the device image has the NVIDIA driver's ICD but no libvulkan). Both folders are kept
# out of git through .git/info/exclude.
set -euo pipefail
cd "$(dirname "$0")/../.."
for d in /.gl/ /.device-tests/; do
    grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude
done
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update >/dev/null
    (cd .gl && apt-get $o download libvulkan1)
fi
cargo build --release
rm -rf .device-tests && mkdir -p .device-tests
cargo test --release --no-run --message-format=json --test gpu_fallbacks --test gpu_fused --test gpu_precision 2>/dev/null |
    python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("gpu_fallbacks", "gpu_fused", "gpu_precision"):
        shutil.copy(m["executable"], ".device-tests/" + m["target"]["name"])
'
# The inference throughput bench (benches/infer.rs), which run.sh runs apart from the tests.
cargo bench --no-run --message-format=json --bench infer 2>/dev/null |
    python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "infer":
        shutil.copy(m["executable"], ".device-tests/bench_infer")
'
ls -la .device-tests target/release/gmm .gl
du -shc .device-tests target/release/gmm .gl | tail -1
