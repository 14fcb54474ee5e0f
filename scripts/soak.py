#!/usr/bin/env python3
"""Soak: a million requests through a real Envoy with Warden, memory sampled.

Drives one Envoy gateway with ``--concurrency 2`` (two workers, so two VMs
of the filter, connections spread evenly over them) loaded with the HTTP
benchmark's gateway-sized policy (bench-envoy.py: 100 services, 20
authorization policies, the principal from a header) plus DLP on headers,
query strings and bodies, until N requests (default 1,000,000) have been
answered. The client checks every answer against what its request must get,
so a wrong answer anywhere in the run is counted and shown.

The mix (weights out of 100; every request on a keep-alive connection):

  30  GET httpbin.org/get as sleep                   200, forwarded
  10  POST httpbin.org/post as admin, a clean body    200 (body 1 B - 1 MiB, log-uniform, scanned)
  10  GET httpbin.org/admin/... as admin              403 denied (a DENY policy)
   5  POST httpbin.org/get as sleep                   403 denied (no ALLOW rule matches)
  10  GET unregistered-N.example.org                  502 unregistered
  10  POST httpbin.org/post, an AWS key in the body   403 dlp
   5  GET httpbin.org/get?token=<GitHub token>        403 dlp (query)
   5  GET httpbin.org/get, an AWS key in a header     403 dlp (header)
  15  POST svc-20.example.com/api/..., email + card   200, forwarded redacted

Every few seconds it samples the gateway Envoy: its resident memory (VmRSS
from /proc, which holds both VMs' linear memories and V8's heaps), Envoy's
own allocator (server.memory_allocated, server.memory_heap_size), the
filter's own gauges (warden.vm_heap_bytes: bytes its allocators have out;
warden.vm_memory_bytes: the VMs' linear memory; both summed over the VMs),
the filter's counters and V8's VM counts (wasm.envoy.wasm.runtime.v8.created /
active: a VM that crashed and was replaced shows as one more created).
After a warm-up (the first 10% of requests) it fits a line to RSS against
requests answered (and to the filter's heap and memory) and reports the
growth the line predicts over a million requests, against the spread of the
samples around it.

Results: a summary on stdout, and with --output, bench-results/soak-<time>.json
(the samples and the summary); with --plot FILE a PNG of memory over the run
(needs matplotlib: .venv/bin/pip install matplotlib).

    python3 scripts/soak.py                           # 1,000,000 requests
    python3 scripts/soak.py --requests 50000          # a short run
    python3 scripts/soak.py --output --plot docs/soak-memory.png

Envoy is found as bench-envoy.py finds it; every process listens on
loopback ports chosen at run time, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


def _load_http_benchmark():
    spec = importlib.util.spec_from_file_location("bench_envoy", SCRIPTS / "bench-envoy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_envoy"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_http_benchmark()
REPO = bench.REPO
WARDEN_WASM = bench.WARDEN_WASM
SLEEP, ADMIN, PRINCIPAL_HEADER = bench.SLEEP, bench.ADMIN, bench.PRINCIPAL_HEADER

AWS_KEY = "AKIAZ7VQ2XK4MHL3RWTN"
GITHUB_TOKEN = "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"
EMAIL = "alice@example.com"
CARD = "4111 1111 1111 1111"
MAX_BODY = 1024 * 1024
# Envoy's per-connection buffer must exceed the largest body held for DLP
# (docs/POLICY.md): the gateway's listener and cluster get 4 MiB.
BUFFER_LIMIT = 4 * 1024 * 1024
WARMUP_SHARE = 0.10


def log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def soak_policy(port: int) -> dict:
    policy = bench.bench_policy(port)
    policy["name"] = "soak-gateway"
    policy["dlp"] = [
        {"name": "no-credentials", "detectors": ["cloud", "source"], "action": "BLOCK",
         "maxBodyBytes": 2 * MAX_BODY},
        {"name": "mask-personal-data", "services": ["svc-20"], "detectors": ["email", "credit_card"],
         "scan": ["query", "body"], "action": "REDACT", "maxBodyBytes": 2 * MAX_BODY},
    ]
    return policy


# --------------------------------------------------------------------------
# The mix
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int
    status: int
    decision: str | None  # x-warden-decision of a refusal; None: forwarded


KINDS = [
    Kind("allowed", 30, 200, None),
    Kind("allowed-body", 10, 200, None),
    Kind("denied-deny-policy", 10, 403, "denied"),
    Kind("denied-no-allow-match", 5, 403, "denied"),
    Kind("unregistered", 10, 502, "unregistered"),
    Kind("dlp-body", 10, 403, "dlp"),
    Kind("dlp-query", 5, 403, "dlp"),
    Kind("dlp-header", 5, 403, "dlp"),
    Kind("redacted", 15, 200, None),
]


def body_size(rng: random.Random) -> int:
    """1 B to 1 MiB, log-uniform (median about 1 KiB)."""
    return min(MAX_BODY, int(math.exp(rng.uniform(0.0, math.log(MAX_BODY)))))


FILLER = (b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
          b"incididunt ut labore et dolore magna aliqua ") * 16


def clean_body(size: int) -> bytes:
    return (FILLER * (size // len(FILLER) + 1))[:size]


def build_request(kind: Kind, n: int, rng: random.Random) -> bytes:
    headers = {"host": "httpbin.org"}
    method, path, body = "GET", f"/get?n={n}", b""
    if kind.name == "allowed":
        headers[PRINCIPAL_HEADER] = SLEEP
    elif kind.name == "allowed-body":
        headers[PRINCIPAL_HEADER] = ADMIN
        method, path, body = "POST", f"/post?n={n}", clean_body(body_size(rng))
        headers["content-type"] = "text/plain"
    elif kind.name == "denied-deny-policy":
        headers[PRINCIPAL_HEADER] = ADMIN
        path = f"/admin/users?n={n}"
    elif kind.name == "denied-no-allow-match":
        headers[PRINCIPAL_HEADER] = SLEEP
        method = "POST"
    elif kind.name == "unregistered":
        headers["host"] = f"unregistered-{n % 1000}.example.org"
    elif kind.name == "dlp-body":
        headers[PRINCIPAL_HEADER] = ADMIN
        headers["content-type"] = "application/json"
        method, path = "POST", f"/post?n={n}"
        body = json.dumps({"n": n, "profile": "ci", "aws_access_key_id": AWS_KEY}).encode()
    elif kind.name == "dlp-query":
        headers[PRINCIPAL_HEADER] = SLEEP
        path = f"/get?n={n}&token={GITHUB_TOKEN}"
    elif kind.name == "dlp-header":
        headers[PRINCIPAL_HEADER] = SLEEP
        headers["x-api-key"] = AWS_KEY
    elif kind.name == "redacted":
        headers["host"] = "svc-20.example.com"
        headers["content-type"] = "application/json"
        method, path = "POST", f"/api/events?n={n}"
        body = json.dumps({"n": n, "email": EMAIL, "card": CARD, "note": "checkout"}).encode()
    else:
        raise ValueError(kind.name)
    if method == "POST":
        headers["content-length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


# --------------------------------------------------------------------------
# Envoy configurations
# --------------------------------------------------------------------------


def gateway_config(port: int, admin_port: int, upstream_port: int, policy: dict) -> dict:
    warden = bench.wasm_filter("warden", WARDEN_WASM, json.dumps(policy, separators=(",", ":")))
    # Request headers wait while a held body is scanned (docs/POLICY.md).
    warden["typed_config"]["config"]["allow_on_headers_stop_iteration"] = True
    route = {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "30s"}}
    listener = bench._http_listener("gateway", port, [warden], route)
    listener["per_connection_buffer_limit_bytes"] = BUFFER_LIMIT
    listener["connection_balance_config"] = {"exact_balance": {}}
    cluster = {
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "2s",
        "per_connection_buffer_limit_bytes": BUFFER_LIMIT,
        "load_assignment": {"cluster_name": "upstream", "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": bench._address(upstream_port)}}]}]},
    }
    return bench._bootstrap(admin_port, listener, [cluster])


def upstream_config(port: int, admin_port: int) -> dict:
    """Reads each request's whole body (the buffer filter), then answers 200."""
    buffer = {
        "name": "envoy.filters.http.buffer",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                         "max_request_bytes": BUFFER_LIMIT},
    }
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}
    listener = bench._http_listener("upstream", port, [buffer], route)
    listener["per_connection_buffer_limit_bytes"] = BUFFER_LIMIT
    return bench._bootstrap(admin_port, listener, [])


def start(processes, envoy_bin: Path, name: str, config: dict, port: int, admin: int, workdir: Path,
          workers: int) -> bench.Envoy:
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config, indent=1))
    log_path = workdir / f"{name}.log"
    command = [str(envoy_bin), "-c", str(path), "--concurrency", str(workers), "--disable-hot-restart",
               "--log-level", "warning"]
    envoy = bench.Envoy(name, port, admin, processes.start(command, log_path), log_path)
    bench.wait_ready(envoy)
    return envoy


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


@dataclass
class Tally:
    answered: int = 0
    by_kind: dict = field(default_factory=dict)
    wrong: int = 0
    wrong_examples: list = field(default_factory=list)
    reconnects: int = 0


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def client(port: int, next_n, total: int, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    weights = [k.weight for k in KINDS]
    reader = writer = None
    while True:
        n = next_n()
        if n >= total:
            break
        kind = rng.choices(KINDS, weights)[0]
        request = build_request(kind, n, rng)
        for attempt in range(2):
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
                writer.write(request)
                await writer.drain()
                status, headers, _ = await read_response(reader)
                break
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as err:
                if writer is not None:
                    writer.close()
                reader = writer = None
                tally.reconnects += 1
                if attempt == 1:
                    status, headers = 0, {"error": str(err)}
        decision = headers.get("x-warden-decision")
        ok = status == kind.status and (decision == kind.decision)
        tally.answered += 1
        tally.by_kind[kind.name] = tally.by_kind.get(kind.name, 0) + 1
        if not ok:
            tally.wrong += 1
            if len(tally.wrong_examples) < 10:
                tally.wrong_examples.append(f"request {n} ({kind.name}): {status} {decision!r}, "
                                            f"expected {kind.status} {kind.decision!r}; {headers}")
        if headers.get("connection", "").lower() == "close" and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def stats(envoy: bench.Envoy) -> dict[str, int]:
    _, _, body = bench.http_request(envoy.admin_port, "GET", "/stats?filter=(server.memory|warden|wasm)", {},
                                    timeout=5.0)
    out = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(": ")
        try:
            out[name] = int(value)
        except ValueError:
            pass
    return out


def sample(gateway: bench.Envoy, tally: Tally, started: float) -> dict:
    s = stats(gateway)
    return {
        "t_s": round(time.monotonic() - started, 2),
        "answered": tally.answered,
        "rss_bytes": rss_bytes(gateway.process.pid),
        "memory_allocated": s.get("server.memory_allocated", 0),
        "memory_heap_size": s.get("server.memory_heap_size", 0),
        "vms_created": s.get("wasm.envoy.wasm.runtime.v8.created", 0),
        "vms_active": s.get("wasm.envoy.wasm.runtime.v8.active", 0),
        "warden_requests": s.get("wasmcustom.warden.requests", 0),
        "config_errors": s.get("wasmcustom.warden.config_errors", 0),
        "vm_heap_bytes": s.get("wasmcustom.warden.vm_heap_bytes", 0),
        "vm_memory_bytes": s.get("wasmcustom.warden.vm_memory_bytes", 0),
    }


def trend(samples: list[dict], total: int, key: str = "rss_bytes") -> dict:
    """A least-squares line of one memory figure (RSS by default) against
    requests answered, after the warm-up."""
    kept = [s for s in samples if s["answered"] >= WARMUP_SHARE * total]
    if len(kept) < 3:
        return {"samples": len(kept)}
    xs = [s["answered"] for s in kept]
    ys = [s[key] for s in kept]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    residuals = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys)]
    spread = (sum(r * r for r in residuals) / len(residuals)) ** 0.5
    half = [y for x, y in zip(xs, ys) if x >= total / 2]
    return {
        "rss_growth_second_half_bytes": (half[-1] - half[0]) if half else None,
        "samples": len(kept),
        "rss_after_warmup_bytes": ys[0],
        "rss_last_bytes": ys[-1],
        "rss_min_bytes": min(ys),
        "rss_max_bytes": max(ys),
        "slope_bytes_per_million_requests": slope * 1_000_000,
        "residual_spread_bytes": spread,
    }


def plot(samples: list[dict], total: int, path: Path, title: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise bench.BenchError("--plot needs matplotlib: .venv/bin/pip install matplotlib, "
                               "then run this script with .venv/bin/python")
    xs = [s["answered"] / 1000 for s in samples]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    ax.plot(xs, [s["rss_bytes"] / 2**20 for s in samples], label="Envoy resident memory (RSS)")
    ax.plot(xs, [s["memory_allocated"] / 2**20 for s in samples], label="Envoy's own allocations (tcmalloc)")
    ax.plot(xs, [s["vm_memory_bytes"] / 2**20 for s in samples], label="Warden VMs' linear memory (gauge)")
    ax.plot(xs, [s["vm_heap_bytes"] / 2**20 for s in samples], label="Warden VMs' heap in use (gauge)")
    ax.axvline(WARMUP_SHARE * total / 1000, color="grey", linestyle=":", label="end of warm-up")
    ax.set_xlabel("requests answered (thousands)")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="center right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to answer (default 1,000,000)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="the gateway Envoy's --concurrency (default 2)")
    parser.add_argument("--sample-every", type=float, default=2.0, metavar="SECONDS", help="default 2")
    parser.add_argument("--seed", type=int, default=1, help="the mix's random seed (default 1)")
    parser.add_argument("--output", nargs="?", const="", default=None, metavar="FILE",
                        help="also write samples and summary as JSON (no FILE: bench-results/soak-<time>.json)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="plot memory over the run")
    parser.add_argument("--no-build", action="store_true", help="use the warden_filter.wasm already built")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.connections < 1 or args.workers < 1 or args.sample_every <= 0:
        parser.error("counts and the sampling period must be positive")
    return args


async def drive(args, gateway: bench.Envoy) -> tuple[Tally, list[dict], float]:
    tally = Tally()
    counter = iter(range(args.requests + args.connections))
    samples: list[dict] = []
    started = time.monotonic()
    clients = [asyncio.create_task(client(gateway.port, lambda: next(counter), args.requests, args.seed * 1000 + i,
                                          tally))
               for i in range(args.connections)]
    last_log = started
    while not all(c.done() for c in clients):
        samples.append(sample(gateway, tally, started))
        if gateway.process.poll() is not None:
            raise bench.BenchError(f"the gateway Envoy exited:\n{gateway.log_tail()}")
        if time.monotonic() - last_log >= 30:
            last_log = time.monotonic()
            s = samples[-1]
            log(f"{s['answered']:,} answered, {s['answered'] / max(s['t_s'], 1e-9):,.0f}/s, "
                f"RSS {s['rss_bytes'] / 2**20:.1f} MiB, {tally.wrong} wrong")
        await asyncio.wait(clients, timeout=args.sample_every)
    for c in clients:
        c.result()
    elapsed = time.monotonic() - started
    samples.append(sample(gateway, tally, started))
    return tally, samples, elapsed


def run(args: argparse.Namespace, processes, workdir: Path) -> int:
    envoy_bin = bench.find_envoy()
    if not args.no_build:
        bench.build_filters()
    ports = bench.free_ports(4)
    upstream = start(processes, envoy_bin, "upstream", upstream_config(ports[0], ports[1]), ports[0], ports[1],
                     workdir, 1)
    policy = soak_policy(ports[2])
    gateway = start(processes, envoy_bin, "gateway", gateway_config(ports[2], ports[3], ports[0], policy),
                    ports[2], ports[3], workdir, args.workers)
    del upstream
    log(f"gateway Envoy {envoy_bin} with {args.workers} workers on port {ports[2]}; "
        f"{args.requests:,} requests over {args.connections} connections")
    tally, samples, elapsed = asyncio.run(drive(args, gateway))
    final = samples[-1]
    first = samples[0]
    counted = final["warden_requests"]
    summary = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {os.uname().release}",
        "envoy": bench.tool_version([str(envoy_bin), "--version"]),
        "warden_wasm_bytes": WARDEN_WASM.stat().st_size,
        "workers": args.workers,
        "connections": args.connections,
        "requests": args.requests,
        "answered": tally.answered,
        "by_kind": tally.by_kind,
        "wrong_answers": tally.wrong,
        "wrong_examples": tally.wrong_examples,
        "reconnects": tally.reconnects,
        "elapsed_s": round(elapsed, 1),
        "requests_per_s": round(tally.answered / elapsed, 1),
        "warden_requests_counted": counted,
        "vms_created_during_run": final["vms_created"] - first["vms_created"],
        "vms_active": final["vms_active"],
        "config_errors": final["config_errors"],
        "panics_in_log": gateway.log_path.read_text(errors="replace").count("panicked"),
        "rss_trend": trend(samples, args.requests),
        "vm_heap_trend": trend(samples, args.requests, "vm_heap_bytes"),
        "vm_memory_trend": trend(samples, args.requests, "vm_memory_bytes"),
    }
    t = summary["rss_trend"]
    print(f"### Soak, {summary['date']}\n")
    print(f"{summary['envoy']}; {args.workers} workers; {tally.answered:,} requests over {args.connections} "
          f"connections in {elapsed:,.0f} s ({summary['requests_per_s']:,.0f}/s); warden.requests counted "
          f"{counted:,}; wrong answers {tally.wrong}; reconnects {tally.reconnects}; VMs created during the run "
          f"{summary['vms_created_during_run']} (active {summary['vms_active']}); config errors "
          f"{summary['config_errors']}; 'panicked' in the log {summary['panics_in_log']}.")
    if "slope_bytes_per_million_requests" in t:
        print(f"RSS after warm-up {t['rss_after_warmup_bytes'] / 2**20:.1f} MiB, last {t['rss_last_bytes'] / 2**20:.1f} "
              f"MiB (min {t['rss_min_bytes'] / 2**20:.1f}, max {t['rss_max_bytes'] / 2**20:.1f}); fitted growth "
              f"{t['slope_bytes_per_million_requests'] / 2**20:+.2f} MiB per million requests, samples spread "
              f"{t['residual_spread_bytes'] / 2**20:.2f} MiB around the line; over the second half of the run "
              f"{(t['rss_growth_second_half_bytes'] or 0) / 2**20:+.2f} MiB.")
    for name, key in (("Warden's heap (all VMs)", "vm_heap_trend"), ("Warden's linear memory", "vm_memory_trend")):
        v = summary[key]
        if "slope_bytes_per_million_requests" in v:
            print(f"{name} after warm-up {v['rss_after_warmup_bytes'] / 2**20:.2f} MiB, last "
                  f"{v['rss_last_bytes'] / 2**20:.2f} MiB (min {v['rss_min_bytes'] / 2**20:.2f}, max "
                  f"{v['rss_max_bytes'] / 2**20:.2f}); fitted growth {v['slope_bytes_per_million_requests'] / 2**20:+.2f} "
                  f"MiB per million requests; over the second half {(v['rss_growth_second_half_bytes'] or 0) / 2**20:+.2f} MiB.")
    for line in tally.wrong_examples:
        print(f"  wrong: {line}")
    if args.output is not None:
        out = Path(args.output) if args.output else REPO / "bench-results" / (
            "soak-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))
        log(f"wrote {out}")
    if args.plot:
        plot(samples, args.requests, args.plot,
             f"Envoy with Warden, {args.workers} workers: {tally.answered:,} requests ({summary['date'][:10]})")
        log(f"wrote {args.plot}")
    healthy = (tally.wrong == 0 and counted == tally.answered and summary["vms_created_during_run"] == 0
               and summary["config_errors"] == 0 and summary["panics_in_log"] == 0)
    return bench.EXIT_OK if healthy else bench.EXIT_FAILED


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    processes = bench.Processes()
    workdir = Path(tempfile.mkdtemp(prefix="warden-soak-"))
    try:
        return run(args, processes, workdir)
    except bench.BenchError as err:
        log(f"error: {err}")
        return bench.EXIT_FAILED
    finally:
        processes.stop_all()
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
