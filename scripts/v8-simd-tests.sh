#!/usr/bin/env bash
# The engine's tests of the DLP scanner's SIMD paths, built for
# wasm32-wasip1 (with `+simd128`, as the filter is) and run in V8 through
# Node's WASI: the wasm SIMD128 code the filter runs in Envoy, held to the
# scalar path byte for byte. Natively `cargo test` checks the SSE2 path;
# the harness's tests reach the wasm path only through findings.
#
#   scripts/v8-simd-tests.sh [TEST-FILTER...]   # default: the SIMD tests
#
# Needs Node 20 or later. A panic in the test binary aborts it (wasm has no
# unwinding): the failing test is the one it was running.
set -euo pipefail
cd "$(dirname "$0")/.."
filters=("$@")
if [ ${#filters[@]} -eq 0 ]; then filters=(simd_and_scalar runs_are_read_only); fi
out=$(cargo test -q -p warden-engine --features internals --target wasm32-wasip1 --target-dir target/wasm-test \
    --test engine --no-run --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "engine" and m.get("executable"):
        print(m["executable"])')
node --no-warnings scripts/wasi-run.mjs "$out" "${filters[@]}"
