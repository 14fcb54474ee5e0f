#!/usr/bin/env bash
# The module graph of every crate, checked for cycles.
#
# cargo-modules (`cargo install cargo-modules@0.27.0 --locked`; 0.28 needs a
# newer Rust than the pinned 1.95) prints, per crate,
# which item uses which (`dependencies`). Its own --acyclic check works on
# items, so it also counts an item that refers to itself (a recursive
# method, a type with a field of its own type) as a cycle; and with items
# filtered out it keeps only module-level `use` lines. And it does not
# record calls: a function that calls `crate::x::y(...)` inline adds no
# edge. So this script reads the item graph, attributes each item to the
# module that holds it, adds the inline `crate::`/`super::` paths of each
# module's source (tests left out), and looks for cycles among modules.
# --verbose prints each crate's module edges; exits 1 on a cycle.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo modules --version >/dev/null 2>&1; then
    echo "cargo-modules is not installed: cargo install cargo-modules@0.27.0 --locked" >&2
    exit 2
fi
verbose=${1:-}
status=0
for entry in warden-engine:engine/src warden-config:config/src warden-harness:harness/src warden:src; do
    package=${entry%%:*}
    src=${entry#*:}
    dot=$(cargo modules dependencies --lib -p "$package" \
        --no-externs --no-sysroot 2>/dev/null)
    if ! printf '%s\n' "$dot" | python3 -c '
import re, sys
import pathlib
package, src, verbose = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3] == "--verbose"
text = sys.stdin.read()
modules = set(re.findall(r"^\s*\"([^\"]+)\" \[label=.*// \"(?:crate|mod)\" node$", text, re.M))
def module_of(path):
    while path not in modules and "::" in path:
        path = path.rsplit("::", 1)[0]
    return path
edges = {}
for a, b in re.findall(r"^\s*\"([^\"]+)\" -> \"([^\"]+)\" \[label=\"uses\"", text, re.M):
    a, b = module_of(a), module_of(b)
    if a != b:
        edges.setdefault(a, set()).add(b)
crate = package.replace("-", "_")
for module in modules:
    parts = module.split("::")[1:]
    candidates = [src.joinpath(*parts).with_suffix(".rs"), src.joinpath(*parts, "mod.rs")] if parts else [src / "lib.rs"]
    file = next((f for f in candidates if f.is_file()), None)
    if file is None:
        continue
    code = file.read_text().split("#[cfg(test)]")[0]
    code = re.sub(r"//.*", "", code)
    parent = module.rsplit("::", 1)[0]
    for kind, path in re.findall(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)", code):
        base = crate if kind == "crate" else parent
        target = module_of(base + path)
        if target != module:
            edges.setdefault(module, set()).add(target)
if not edges:
    sys.exit(f"{package}: cargo-modules printed no module edges")
count = sum(len(v) for v in edges.values())
state, stack, cycle = {}, [], None
def visit(node):
    global cycle
    state[node] = 1
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
        if cycle:
            return
        if state.get(nxt) == 1:
            cycle = stack[stack.index(nxt):] + [nxt]
            return
        if nxt not in state:
            visit(nxt)
    stack.pop()
    state[node] = 2
for node in sorted(edges):
    if node not in state and not cycle:
        visit(node)
if verbose:
    for a in sorted(edges):
        for b in sorted(edges[a]):
            print(f"  {a} -> {b}")
if cycle:
    print(f"{package}: module cycle: " + " -> ".join(cycle))
    sys.exit(1)
print(f"{package}: {len(edges)} modules using others, {count} edges, no cycle")
' "$package" "$src" "$verbose"; then
        status=1
    fi
done
exit $status
