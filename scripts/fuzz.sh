#!/usr/bin/env bash
# Fuzzes Warden's parsers with cargo-fuzz (libFuzzer), each target for
# FUZZ_SECONDS (default 600), in FUZZ_JOBS parallel runs (default 1).
#
#   scripts/fuzz.sh                     # every target, 10 minutes each
#   FUZZ_SECONDS=60 scripts/fuzz.sh normalize identity
#
# Needs `cargo install cargo-fuzz`. Runs on the stable toolchain without a
# sanitizer (-s none): the code is safe Rust (the DLP scanner's SSE2
# intrinsics read no memory), so what the fuzzer looks for
# is panics (overflow checks are on), failed properties, hangs (-timeout)
# and runaway memory (-rss_limit_mb). The corpus grows in fuzz/corpus/
# (not committed); the small seeds in fuzz/seeds/ are. A finding is saved
# under fuzz/artifacts/<target>/ and the run stops with its name.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-600}
jobs=${FUZZ_JOBS:-1}
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

# Build every target up front (one cargo run) so the timed runs do not
# start with a build.
cargo fuzz build -s none 2>&1 | tail -n 1
run() {
    local target=$1
    mkdir -p "corpus/$target" "artifacts/$target"
    # Inputs past a few KiB only slow the search; the YAML reader gets
    # more room (documents nest).
    local max_len=4096
    [ "$target" = policy_yaml ] && max_len=16384
    cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 >"artifacts/$target/log" 2>&1
    local status=$?
    local runs
    runs=$(grep -E '^stat::number_of_executed_units' "artifacts/$target/log" | awk '{print $2}')
    local cov
    cov=$(grep -E '^#[0-9]+.*(DONE|pulse)' "artifacts/$target/log" | tail -n 1 | grep -oE 'cov: [0-9]+' || true)
    printf '%-14s %s  %s runs in %ss, %s\n' "$target" "$([ $status -eq 0 ] && echo ok || echo FAILED)" \
        "${runs:-?}" "$seconds" "${cov:-cov: ?}"
    return $status
}
export -f run
export seconds
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run "$@"' _ {}
