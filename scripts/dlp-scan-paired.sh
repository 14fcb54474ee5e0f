#!/usr/bin/env bash
# Two builds of the DLP scanner timed at once, one on each of two cores,
# swapping cores every round: on a shared machine whose speed moves by a
# fifth between runs a minute apart, both builds see the same moment, and
# the ratio of their bests in a round is steadier than either figure (the
# same build against itself: 0.985, rounds 0.94-1.05). Prints each round's
# ratio B/A and, for each two rounds (each build once on each core), their
# geometric mean: the two cores of these machines can differ by a half
# (one core at 1.2 GiB/s, the other at 0.8 at the same time), and the mean
# of a pair cancels that where a single round's ratio does not. Then the
# median of the pairs' means. Give an even number of rounds.
#
#   scripts/dlp-scan-paired.sh A B [rounds] [dlp_scan arguments...]
#   scripts/dlp-scan-paired.sh base/dlp_scan target/release/examples/dlp_scan 8 --input digits
#
# A and B are dlp_scan binaries (engine/examples/dlp_scan.rs, built with
# `cargo build -p warden-engine --features internals --release --example
# dlp_scan` and copied aside); give the same binary twice with B's options
# after a `--` to compare options (`A A 8 --input clean -- --portable`).
# Needs taskset and two cores.
set -euo pipefail
a=$1 b=$2 rounds=${3:-8}
shift $(($# < 3 ? $# : 3))
args_a=() args_b=()
while (($#)); do
    if [[ $1 == -- ]]; then
        shift
        args_b+=("$@")
        break
    fi
    args_a+=("$1")
    shift
done
best() { grep -o '[0-9]* MiB/s' | head -1 | cut -d' ' -f1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then ca=0 cb=1; else ca=1 cb=0; fi
    taskset -c "$ca" "$a" --reps 40 "${args_a[@]}" > "$out/a" &
    taskset -c "$cb" "$b" --reps 40 "${args_a[@]}" "${args_b[@]}" > "$out/b" &
    wait
    ratio=$(awk -v a="$(best < "$out/a")" -v b="$(best < "$out/b")" 'BEGIN { printf "%.3f", b / a }')
    echo "round $r: A $(best < "$out/a"), B $(best < "$out/b") MiB/s, B/A $ratio"
    echo "$ratio" >> "$out/ratios"
done
awk 'NR % 2 == 0 { printf "rounds %d-%d: B/A %.3f\n", NR - 1, NR, sqrt(last * $1) } { last = $1 }' "$out/ratios" | tee "$out/pairs"
awk '{ print $NF }' "$out/pairs" | sort -n |
    awk '{ r[NR] = $1 } END { if (NR) printf "median B/A: %.3f\n", (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }'
