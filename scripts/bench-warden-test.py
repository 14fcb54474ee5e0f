#!/usr/bin/env python3
"""How long does `warden test` take over 10,000 cases?

Builds the release `warden`, writes a test file of N cases (the multi-team
example's cases, repeated) beside a copy of its policy in a temporary
directory, and times `warden test` twice: cold (an empty module cache, so
Cranelift compiles the filter: "compile included") and warm (the cached
module). Goal: under 5 s wall for 10,000 cases, compile included.

    python3 scripts/bench-warden-test.py [--cases 10000] [--no-build]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "policies" / "multi-team"


def repeat_cases(test_yaml: str, count: int) -> tuple[str, int]:
    """The example's `tests:` list repeated until it has `count` cases."""
    head, _, body = test_yaml.partition("\ntests:\n")
    items = re.split(r"(?m)^(?=  - name: )", body)
    items = [i for i in items if i.startswith("  - name: ")]
    if not items:
        raise SystemExit("no cases found in the example test file")
    out = [head, "\ntests:\n"]
    for n in range(count):
        item = items[n % len(items)]
        # Names stay unique: append the copy number.
        out.append(re.sub(r"^  - name: (.*)$", lambda m: f"  - name: {m.group(1).rstrip()} #{n}", item, count=1,
                          flags=re.M))
    return "".join(out), len(items)


def run(warden: Path, directory: Path, cache: Path) -> tuple[float, str]:
    env = dict(os.environ, WARDEN_CACHE_DIR=str(cache))
    start = time.perf_counter()
    done = subprocess.run([str(warden), "test", str(directory)], env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    closing = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
        raise SystemExit(f"warden test exited {done.returncode}")
    return wall, closing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--no-build", action="store_true", help="use target/release/warden as it is")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "warden"], cwd=REPO, check=True)
    warden = REPO / "target" / "release" / "warden"

    with tempfile.TemporaryDirectory(prefix="warden-bench-test-") as tmp:
        tmp = Path(tmp)
        suite = tmp / "suite"
        suite.mkdir()
        shutil.copy(EXAMPLE / "policy.yaml", suite / "policy.yaml")
        text, distinct = repeat_cases((EXAMPLE / "policy.test.yaml").read_text(), args.cases)
        (suite / "many.test.yaml").write_text(text)
        cache = tmp / "cache"
        cold, closing = run(warden, suite, cache)
        warm, _ = run(warden, suite, cache)

    print(f"warden test over {args.cases:,} cases ({distinct} distinct, repeated) of policies/multi-team")
    print(f"  {closing}")
    print(f"  cold (empty module cache, compile included): {cold:.2f} s wall  ({args.cases / cold:,.0f} cases/s)")
    print(f"  warm (cached module):                         {warm:.2f} s wall  ({args.cases / warm:,.0f} cases/s)")
    print(f"  goal: under 5 s wall, compile included: {'met' if cold < 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
