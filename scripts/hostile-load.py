#!/usr/bin/env python3
"""Hostile load: held bodies, slow senders, oversize bodies and headers, memory measured.

Runs the soak's gateway (scripts/soak.py: Envoy with two workers, Warden with
the gateway-sized policy and DLP; ``maxBodyBytes`` 2 MiB, Envoy's
per-connection buffer 4 MiB on the listener and the cluster) and sends, phase
by phase, what an attacker or a broken client would, checking every answer and
sampling the gateway's resident memory every 50 ms:

  held-block     64 concurrent POSTs of 1 MiB each, a card number at the
                 end, sent in 64 KiB chunks: every body is held while it is
                 scanned; all must be refused (403 dlp), none forwarded
  held-redact    64 concurrent POSTs of 1 MiB to the REDACT service, an email
                 at the end: all forwarded (200)
  trickle        16 connections each sending a clean body one chunk per
                 second for --trickle-seconds (default 60): all must be
                 answered 200 at the end, with memory flat meanwhile
  over-max-body  16 POSTs of 3 MiB (over maxBodyBytes, under Envoy's
                 buffer): Warden's onOversize (BLOCK: 403 dlp-unscannable)
  over-buffer    8 POSTs of 8 MiB (over Envoy's 4 MiB buffer): Envoy's 413
                 before any upstream byte
  many-headers   a request with 10,000 headers: Envoy's 431 (its limit of
                 100 headers), before the filter
  long-path      a 64 KiB path: Envoy's 431 (60 KiB of headers), before the
                 filter

For each phase it prints the answers (expected and got), the peak resident
memory over the phase's start and the memory after it, so the table in
docs/OPERATIONS.md can give a bound per held stream.

    python3 scripts/hostile-load.py                   # all phases, about 2 minutes
    python3 scripts/hostile-load.py --trickle-seconds 10

Only loopback addresses are used; every phase ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


soak = _load("soak", "soak.py")
bench = soak.bench

MIB = 1024 * 1024
CHUNK = 64 * 1024


def log(message: str) -> None:
    print(f"[hostile] {message}", file=sys.stderr, flush=True)


@dataclass
class Phase:
    name: str
    answers: dict
    expected: list
    baseline: int
    peak: int
    after: int
    seconds: float
    upstream_requests: int
    ok: bool


async def post(port: int, host: str, path: str, body_size: int, tail: bytes, chunk_pause: float,
               chunk: int = CHUNK, headers: dict | None = None) -> tuple[int, str | None]:
    """Sends a POST whose body is `body_size` bytes of filler ending in `tail`,
    in chunks of `chunk` bytes with `chunk_pause` seconds between them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        body = soak.clean_body(body_size - len(tail)) + tail
        head = {"host": host, "content-type": "text/plain", "content-length": str(len(body)),
                soak.PRINCIPAL_HEADER: soak.ADMIN, **(headers or {})}
        writer.write((f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
                      + "\r\n").encode())
        for at in range(0, len(body), chunk):
            writer.write(body[at:at + chunk])
            try:
                await asyncio.wait_for(writer.drain(), timeout=30)
            except (ConnectionError, asyncio.TimeoutError):
                break  # answered (and closed) before the whole body went
            if chunk_pause:
                await asyncio.sleep(chunk_pause)
        status, response_headers, _ = await asyncio.wait_for(soak.read_response(reader), timeout=60)
        return status, response_headers.get("x-warden-decision")
    except (ConnectionError, asyncio.IncompleteReadError):
        return RESET
    finally:
        writer.close()


async def raw(port: int, request: bytes) -> tuple[int, str | None]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        writer.write(request)
        await writer.drain()
        status, headers, _ = await asyncio.wait_for(soak.read_response(reader), timeout=30)
        return status, headers.get("x-warden-decision")
    except (ConnectionError, asyncio.IncompleteReadError):
        return RESET
    finally:
        writer.close()


RESET = (0, "reset")


def upstream_requests(upstream) -> int:
    """Requests the upstream Envoy has answered so far."""
    _, _, body = bench.http_request(upstream.admin_port, "GET", "/stats?filter=^http\\.upstream\\.downstream_rq_total$",
                                    {}, timeout=5.0)
    return sum(int(line.rsplit(": ", 1)[1]) for line in body.decode().splitlines() if ": " in line)


async def measured(gateway, upstream, name: str, expected: list, tasks, forwarded: bool) -> Phase:
    """Runs `tasks` at once; every answer must be one of `expected`
    ((status, decision); RESET: the connection reset while the client was
    still sending, after an early answer), and the upstream must receive
    each request (`forwarded`) or none."""
    pid = gateway.process.pid
    before_upstream = upstream_requests(upstream)
    baseline = soak.rss_bytes(pid)
    peak = baseline
    started = time.monotonic()
    running = [asyncio.ensure_future(t) for t in tasks]
    while not all(t.done() for t in running):
        peak = max(peak, soak.rss_bytes(pid))
        await asyncio.wait(running, timeout=0.05)
    answers: dict = {}
    label = lambda answer: "reset" if answer[0] == 0 else f"{answer[0]} {answer[1] or '-'}"
    for t in running:
        key = label(t.result())
        answers[key] = answers.get(key, 0) + 1
    await asyncio.sleep(1.0)
    after = soak.rss_bytes(pid)
    want = [label(e) for e in expected]
    reached = upstream_requests(upstream) - before_upstream
    ok = set(answers) <= set(want) and reached == (len(running) if forwarded else 0)
    phase = Phase(name, answers, want, baseline, max(peak, after), after, time.monotonic() - started, reached, ok)
    log(f"{name}: {answers} (expected {want}); upstream got {reached}; RSS {baseline / MIB:.1f} -> peak "
        f"{phase.peak / MIB:.1f} -> {after / MIB:.1f} MiB in {phase.seconds:.1f} s{'' if ok else '  <- WRONG'}")
    return phase


async def phases(args, gateway, upstream) -> list[Phase]:
    port = gateway.port
    card = f' "card": "{soak.CARD}"'.encode()
    email = f' "email": "{soak.EMAIL}"'.encode()
    out = []
    for round_ in (1, 2):  # the second round shows whether memory is reused
        out.append(await measured(gateway, upstream, f"held-block #{round_}", [(403, "dlp")], [
            post(port, "httpbin.org", f"/post?held={i}", MIB, card + b" " + soak.AWS_KEY.encode(), 0.02)
            for i in range(64)], forwarded=False))
    for round_ in (1, 2):
        out.append(await measured(gateway, upstream, f"held-redact #{round_}", [(200, None)], [
            post(port, "svc-20.example.com", f"/api/held?{i}", MIB, email, 0.02) for i in range(64)],
            forwarded=True))
    chunks = max(1, int(args.trickle_seconds))
    out.append(await measured(gateway, upstream, "trickle", [(200, None)], [
        post(port, "httpbin.org", f"/post?trickle={i}", chunks * 100, b"", 1.0, chunk=100) for i in range(16)],
        forwarded=True))
    out.append(await measured(gateway, upstream, "over-max-body", [(403, "dlp")], [
        post(port, "httpbin.org", f"/post?big={i}", 3 * MIB, b"", 0.0) for i in range(16)], forwarded=False))
    # Over Envoy's buffer: whichever refuses first (Warden at maxBodyBytes,
    # Envoy's 413 at its buffer), the connection closed on a client still
    # sending; nothing upstream either way.
    out.append(await measured(gateway, upstream, "over-buffer", [(403, "dlp"), (413, None), RESET], [
        post(port, "httpbin.org", f"/post?huge={i}", 8 * MIB, b"", 0.0) for i in range(8)], forwarded=False))
    headers = "".join(f"x-h-{i}: v\r\n" for i in range(10_000))
    out.append(await measured(gateway, upstream, "many-headers", [(431, None)], [
        raw(port, f"GET /get HTTP/1.1\r\nhost: httpbin.org\r\n{headers}\r\n".encode())], forwarded=False))
    out.append(await measured(gateway, upstream, "long-path", [(431, None)], [
        raw(port, f"GET /{'a' * 65536} HTTP/1.1\r\nhost: httpbin.org\r\n\r\n".encode())], forwarded=False))
    return out


async def warm_then(args, gateway, upstream) -> list[Phase]:
    # Warm both VMs up, so the first phase's peak is not V8's start.
    await asyncio.gather(*[post(gateway.port, "httpbin.org", f"/post?warm={i}", 4096, b"", 0.0) for i in range(32)])
    return await phases(args, gateway, upstream)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trickle-seconds", type=float, default=60.0)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--output", type=Path, help="write the phases as JSON")
    args = parser.parse_args(argv)
    processes = bench.Processes()
    workdir = Path(tempfile.mkdtemp(prefix="warden-hostile-"))
    try:
        envoy_bin = bench.find_envoy()
        if not args.no_build:
            bench.build_filters()
        ports = bench.free_ports(4)
        upstream = soak.start(processes, envoy_bin, "upstream", soak.upstream_config(ports[0], ports[1]), ports[0],
                              ports[1], workdir, 1)
        gateway = soak.start(processes, envoy_bin, "gateway",
                             soak.gateway_config(ports[2], ports[3], ports[0], soak.soak_policy(ports[2])),
                             ports[2], ports[3], workdir, 2)
        results = asyncio.run(warm_then(args, gateway, upstream))
    except bench.BenchError as err:
        log(f"error: {err}")
        return bench.EXIT_FAILED
    finally:
        processes.stop_all()
    print("| phase | answers | reached the upstream | RSS before | peak | after | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for p in results:
        answers = ", ".join(f"{n} × {a}" for a, n in sorted(p.answers.items()))
        print(f"| {p.name} | {answers}{'' if p.ok else ' (WRONG)'} | {p.upstream_requests} | {p.baseline / MIB:.1f} MiB | "
              f"{p.peak / MIB:.1f} MiB | {p.after / MIB:.1f} MiB | {p.seconds:.1f} |")
    if args.output:
        args.output.write_text(json.dumps([p.__dict__ for p in results], indent=1))
    return bench.EXIT_OK if all(p.ok for p in results) else bench.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
