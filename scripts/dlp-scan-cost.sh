#!/usr/bin/env bash
# Instructions per scan of the DLP scanner (callgrind), on the benchmark
# inputs, for the whole catalogue or a selection: an exact, repeatable
# measure of the scanner's work on a shared, noisy machine, where wall-clock
# figures move by 2x with the load. One-time costs (building the scanner,
# compiling anchored regexes on first use) are left out: the count is the
# difference between 3 scans and 1, halved.
#
#   scripts/dlp-scan-cost.sh [clean|digits|form|manifests|lockfile] [--no-simd] [--only ID... | --without ID...]
#
# Needs valgrind. Builds engine/examples/dlp_scan.rs in release.
set -euo pipefail
cd "$(dirname "$0")/.."
input=${1:-clean}
shift || true
cargo build -q -p warden-engine --features internals --release --example dlp_scan
bin=target/release/examples/dlp_scan
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*Scanner::scan_with_anchors' \
        "$bin" --input "$input" --reps "$@" 2>&1 | awk '/Collected/ {print $4}'
}
one=$(count 1 "$@")
three=$(count 3 "$@")
echo "$input: $(( (three - one) / 2 )) instructions per scan $*"
