#!/usr/bin/env python3
"""New TLS connections through a real Envoy: what does Warden's network filter cost?

Drives one Envoy gateway (one worker: ``--concurrency 1 --disable-hot-restart``)
with ``wrk`` opening a new TLS connection for every request, and reports new
connections/s and the gateway's CPU time per connection for three
configurations of the same TLS passthrough listener (``tls_inspector``, then
the filter under test, then ``tcp_proxy`` to the upstream):

  none     tcp_proxy only
  rbac     Envoy's native network RBAC (``envoy.filters.network.rbac``, a DENY
           and an ALLOW filter, as Istio generates them) expressing the
           benchmark policy on server names, ports and source addresses
  warden   Warden's network filter (``envoy.filters.network.wasm``, V8,
           ``root_id: warden.network``) with the benchmark policy

``--breakdown`` adds ``trivial``, a wasm network filter that reads the
server name and lets the connection through (benches/trivial-filter with
``network``, same V8 runtime): the cost of being a wasm network filter at all
(the VM's context and Envoy's calls into it for every connection's opening,
data and close); ``trivial-calls``: the same filter making, when a connection
opens, the host calls Warden makes for the benchmarked one (the server name,
``destination.port``, ``connection.peer_certificate`` which a passthrough
connection does not have, ``source.address``, a filter-state record and two
counters), without any of Warden's work inside the VM; and ``warden-empty``:
Warden with an empty ``ALLOW_ANY`` policy, Warden's cost per connection without
a registry or rules (its property reads, the record and counters on top).

The gateway passes TLS through: it never decrypts. The upstream is a second
Envoy that terminates TLS (a self-signed ECDSA certificate for ``localhost``,
made at run time with the ``openssl`` command) and answers every request
with a ``direct_response`` 200. wrk asks for ``https://localhost:PORT/`` with
``Connection: close``: one request per connection, SNI ``localhost``.

Before measuring, every configuration must pass the benchmarked connection
(200 through the tunnel), and Warden and RBAC must agree on six more
connections the policy allows or refuses by server name, service and source
address (a refused connection is closed: the client's handshake fails and no
HTTP answer comes); the ``none`` configuration must pass all of them, so a
refusal is the filter's. Warden must close a refused connection before
``tcp_proxy`` connects upstream (the gateway's upstream connection count must
not move); RBAC, which decides on the first bytes, does connect.

The measuring procedure is bench-envoy.py's, and so is the code, loaded from
that file: rounds interleaved in rotating order, a warm-up before each
measurement, the proxy's CPU time from /proc, waiting for the machine to go
quiet and redoing a measurement during which other processes used more than
5% of it. Results: a markdown table on stdout (medians; ratios warden/none,
rbac/none, warden/rbac) and, with ``--output [FILE]``, a JSON file with the
raw numbers (default bench-results/envoy-tls-<time>.json).

The goal is Warden's new connections/s at least 0.9 × native RBAC's. The
measured connections/s answer it only when the proxy is the bottleneck. On a
2-core machine it is not: per connection, wrk's TLS handshake and the
upstream's cost more CPU than the proxy's passthrough, and they share a core.
The table therefore also gives connections per proxy CPU-second (the inverse
of the proxy's CPU time per connection): what one saturated worker would
serve, the figure that decides when the proxy was not saturated.

    python3 scripts/bench-envoy-tls.py               # 3 rounds of 10 s measurements
    python3 scripts/bench-envoy-tls.py --quick       # 1 round of 3 s: smoke run
    python3 scripts/bench-envoy-tls.py --breakdown   # + Warden with an empty policy

Envoy, wrk and the build are found as bench-envoy.py finds them. The
certificate needs the ``openssl`` command (Python's standard library cannot
sign one). Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def _load_http_benchmark():
    """bench-envoy.py as a module: its process handling, CPU accounting,
    quiet-waiting and wrk parsing are this benchmark's too."""
    path = Path(__file__).resolve().parent / "bench-envoy.py"
    spec = importlib.util.spec_from_file_location("bench_envoy", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bench = _load_http_benchmark()
BenchError = bench.BenchError

REPO = bench.REPO
WARDEN_WASM = bench.WARDEN_WASM
TRIVIAL_WASM = bench.TRIVIAL_WASM
NETWORK_ROOT_ID = "warden.network"
SERVER_NAME = "localhost"  # the benchmarked connection's SNI, and the URL's host
RBAC_RPS_GOAL = 0.90  # Warden's new connections/s at least 0.9 × native RBAC's

EXIT_OK = bench.EXIT_OK
EXIT_FAILED = bench.EXIT_FAILED


def log(message: str) -> None:
    print(f"[bench-envoy-tls] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The benchmark policy, and the same policy as network RBAC
# --------------------------------------------------------------------------


def tls_policy(port: int) -> dict:
    """A gateway's TLS passthrough policy: 101 services, 19 authorization policies.

    The registry is the HTTP benchmark's 100 services (95 exact names, 5 with
    wildcards) plus `localhost`, all on the gateway's listener `port`. The
    rules use only what a connection shows: the server name, the port and the
    source address (no principals: the gateway does not terminate TLS, so
    there is no peer certificate and Warden decides when the connection
    opens). The benchmarked connection (SNI `localhost`, from 127.0.0.1) goes
    through the unscoped DENY (source address not blocked) and the `local`
    service's ALLOW, keyed on port and SNI.
    """
    services = [{"name": "local", "hosts": [SERVER_NAME], "ports": [port]}]
    services += bench.bench_policy(port)["services"]
    authorization = [
        {
            "name": "deny-blocked-networks",
            "action": "DENY",
            "rules": [{"from": [{"source": {"ipBlocks": ["192.0.2.0/24", "198.51.100.0/24", "10.66.0.0/16"]}}]}],
        },
        {
            "name": "local-tls",
            "action": "ALLOW",
            "services": ["local"],
            "rules": [
                {
                    "to": [{"operation": {"ports": [str(port)]}}],
                    "when": [{"key": "connection.sni", "values": [SERVER_NAME]}],
                }
            ],
        },
        {
            "name": "httpbin-from-office",
            "action": "ALLOW",
            "services": ["httpbin.org"],
            "rules": [{"from": [{"source": {"ipBlocks": ["10.1.0.0/16", "10.2.0.0/16"]}}]}],
        },
    ]
    authorization += [
        {
            "name": f"svc-{n}-team",
            "action": "ALLOW",
            "services": [f"svc-{n}"],
            "rules": [{"from": [{"source": {"ipBlocks": [f"10.{n}.0.0/16"]}}]}],
        }
        for n in range(1, 13)
    ]
    authorization += [
        {
            "name": f"svc-{n}-internal-only",
            "action": "DENY",
            "services": [f"svc-{n}"],
            "rules": [{"from": [{"source": {"notIpBlocks": ["10.0.0.0/8"]}}]}],
        }
        for n in range(13, 16)
    ]
    authorization.append(
        {
            "name": "wild-edge",
            "action": "ALLOW",
            "services": ["wild-1", "wild-2"],
            "rules": [{"from": [{"source": {"ipBlocks": ["10.20.0.0/16"]}}]}],
        }
    )
    return {
        "name": "bench-tls-gateway",
        "outboundTrafficPolicy": "REGISTRY_ONLY",
        "peerAddress": {"sourceAddress": {}},  # a connection's source address is the direct peer
        "services": services,
        "authorization": authorization,
    }


# Warden's fixed cost (`--breakdown`): no registry, no rules, every connection allowed.
EMPTY_POLICY = {"name": "empty", "outboundTrafficPolicy": "ALLOW_ANY"}


class Untranslatable(BenchError):
    """The policy uses a feature the network RBAC translation below does not cover."""


def _server_name(host: str) -> dict:
    """A registry host as RBAC's `requested_server_name` matcher (`*.x`: suffix `.x`)."""
    if host.startswith("*."):
        return {"requested_server_name": {"suffix": host[1:], "ignore_case": True}}
    return {"requested_server_name": {"exact": host, "ignore_case": True}}


def _ports(ports: list) -> dict:
    return bench._or_rules([{"destination_port": int(p)} for p in ports])


def _service_permission(service: dict) -> dict:
    """The connection is for this service: one of its server names, on one of its ports."""
    if not service.get("ports"):
        raise Untranslatable(f"service {service['name']}: a service without ports")
    return bench._or_rules([bench._and_rules([_server_name(h), _ports(service["ports"])]) for h in service["hosts"]])


def _cidrs(blocks: list[str]) -> dict:
    ids = []
    for block in blocks:
        address, _, length = block.partition("/")
        ids.append({"direct_remote_ip": {"address_prefix": address, "prefix_len": int(length or 32)}})
    return bench._or_ids(ids)


def _source_id(source: dict) -> dict:
    ids = []
    for key, values in source.items():
        if key == "ipBlocks":
            ids.append(_cidrs(values))
        elif key == "notIpBlocks":
            ids.append({"not_id": _cidrs(values)})
        else:
            raise Untranslatable(f"source.{key}")
    return bench._and_ids(ids) if ids else {"any": True}


def _operation_permission(operation: dict) -> dict:
    rules = []
    for key, values in operation.items():
        if key == "ports":
            rules.append(_ports(values))
        else:
            raise Untranslatable(f"operation.{key}")
    return bench._and_rules(rules) if rules else {"any": True}


def _condition_permission(condition: dict) -> dict:
    if condition["key"] != "connection.sni" or "notValues" in condition:
        raise Untranslatable(f"when {condition['key']}")
    return bench._or_rules([{"requested_server_name": {"exact": v}} for v in condition["values"]])


def rbac_network_filters(policy: dict) -> list[dict]:
    """The policy as two network RBAC filters, DENY then ALLOW.

    The HTTP benchmark's translation (bench-envoy.py's rbac_filters) with the
    server name in place of `:authority`: each rule is an RBAC policy whose
    permission is its scope (its services' server names and ports) AND its
    `to` AND its `when`, and whose principal is its `from`; registered
    services no ALLOW policy applies to get one more ALLOW policy, so an
    unregistered server name matches no ALLOW policy and is refused.
    """
    if policy.get("outboundTrafficPolicy", "REGISTRY_ONLY") != "REGISTRY_ONLY":
        raise Untranslatable("outboundTrafficPolicy other than REGISTRY_ONLY")
    services = {s["name"]: s for s in policy["services"]}
    deny: dict[str, dict] = {}
    allow: dict[str, dict] = {}
    allow_scoped: set[str] = set()
    for index, authz in enumerate(policy.get("authorization", [])):
        action = authz.get("action", "ALLOW")
        if action not in ("ALLOW", "DENY") or authz.get("dryRun"):
            raise Untranslatable(f"authorization {authz['name']}: action {action} / dryRun")
        scoped = authz.get("services")
        if scoped is None:
            if action == "ALLOW":
                raise Untranslatable(f"authorization {authz['name']}: an unscoped ALLOW")
            scope = []
        else:
            scope = [bench._or_rules([_service_permission(services[name]) for name in scoped])]
            if action == "ALLOW":
                allow_scoped.update(scoped)
        for rule_index, rule in enumerate(authz.get("rules", [])):
            to = [bench._or_rules([_operation_permission(t["operation"]) for t in rule["to"]])] if "to" in rule else []
            when = [_condition_permission(c) for c in rule.get("when", [])]
            conditions = scope + to + when
            target = deny if action == "DENY" else allow
            target[f"{index:02d}-{authz['name']}-rule{rule_index}"] = {
                "permissions": [bench._and_rules(conditions) if conditions else {"any": True}],
                "principals": [bench._or_ids([_source_id(f["source"]) for f in rule["from"]])
                               if "from" in rule else {"any": True}],
            }
    open_services = [s for name, s in services.items() if name not in allow_scoped]
    if open_services:
        allow["99-registered-services-without-allow-policy"] = {
            "permissions": [bench._or_rules([_service_permission(s) for s in open_services])],
            "principals": [{"any": True}],
        }

    def rbac(action: str, policies: dict) -> dict:
        return {
            "name": "envoy.filters.network.rbac",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
                "stat_prefix": f"tls_{action.lower()}.",
                "rules": {"action": action, "policies": policies},
            },
        }

    return ([rbac("DENY", deny)] if deny else []) + [rbac("ALLOW", allow)]


# --------------------------------------------------------------------------
# Certificate and Envoy configurations
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert_pem: str
    key_pem: str


def make_certificate(workdir: Path) -> Certificate:
    """A self-signed ECDSA P-256 certificate for `localhost`, valid two days.

    ECDSA rather than RSA keeps the upstream's handshakes cheap: the upstream
    shares a core with wrk and must not become the bottleneck.
    """
    openssl = shutil.which("openssl")
    if not openssl:
        raise BenchError("the openssl command is needed to make the upstream's certificate: "
                         "install it (e.g. `apt-get install openssl`)")
    cert, key = workdir / "upstream-cert.pem", workdir / "upstream-key.pem"
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={SERVER_NAME}",
               "-addext", f"subjectAltName=DNS:{SERVER_NAME}"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise BenchError(f"openssl could not make a certificate:\n{out.stderr}")
    return Certificate(cert.read_text(), key.read_text())


def upstream_config(port: int, admin_port: int, certificate: Certificate, tls_max: str) -> dict:
    """The upstream: terminates TLS (up to version `tls_max`), answers every request with a 200."""
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}
    listener = bench._http_listener("upstream", port, [], route)
    listener["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "tls_params": {"tls_maximum_protocol_version": "TLSv" + tls_max.replace(".", "_")},
                "tls_certificates": [{
                    "certificate_chain": {"inline_string": certificate.cert_pem},
                    "private_key": {"inline_string": certificate.key_pem},
                }],
            },
        },
    }
    return bench._bootstrap(admin_port, listener, [])


def warden_network_filter(policy: dict) -> dict:
    return {
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": "warden",
                "root_id": NETWORK_ROOT_ID,
                "fail_open": False,
                "vm_config": {"vm_id": "warden", "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": str(WARDEN_WASM)}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": json.dumps(policy, separators=(",", ":"))},
            },
        },
    }


# Warden's host calls for the benchmarked connection (benches/trivial-filter's steps).
WARDEN_CONNECTION_CALLS = "network,destination-port,missing-property,source-address,set-property,metrics"


def trivial_network_filter(steps: str = "network") -> dict:
    """The wasm floor: benches/trivial-filter as a network filter, making the calls `steps` name."""
    return {
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": "trivial",
                "root_id": "trivial",
                "fail_open": False,
                "vm_config": {"vm_id": "trivial", "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": str(TRIVIAL_WASM)}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": steps},
            },
        },
    }


def gateway_config(kind: str, port: int, admin_port: int, upstream_port: int) -> dict:
    """The gateway under test: the same TLS passthrough listener, `kind` decides the filters."""
    if kind == "none":
        filters: list[dict] = []
    elif kind == "rbac":
        filters = rbac_network_filters(tls_policy(port))
    elif kind == "warden":
        filters = [warden_network_filter(tls_policy(port))]
    elif kind == "warden-empty":
        filters = [warden_network_filter(EMPTY_POLICY)]
    elif kind == "trivial":
        filters = [trivial_network_filter()]
    elif kind == "trivial-calls":
        filters = [trivial_network_filter(WARDEN_CONNECTION_CALLS)]
    else:
        raise ValueError(kind)
    tcp_proxy = {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": f"gateway_{kind}",
            "cluster": "upstream",
        },
    }
    listener = {
        "name": f"gateway_{kind}",
        "address": bench._address(port),
        "listener_filters": [{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
        }],
        "filter_chains": [{"filters": filters + [tcp_proxy]}],
    }
    cluster = {
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": bench._address(upstream_port)}}]}],
        },
    }
    return bench._bootstrap(admin_port, listener, [cluster])


@dataclass(frozen=True)
class Configuration:
    kind: str
    label: str


CONFIGURATIONS = [
    Configuration("none", "no filter (tcp_proxy only)"),
    Configuration("rbac", "native network RBAC"),
    Configuration("warden", "Warden network filter"),
]
BREAKDOWN = [
    Configuration("trivial", "trivial wasm network filter"),
    Configuration("trivial-calls", "trivial wasm + Warden's host calls"),
    Configuration("warden-empty", "Warden, empty ALLOW_ANY policy"),
]


def configurations(breakdown: bool) -> list[Configuration]:
    return CONFIGURATIONS[:2] + BREAKDOWN + CONFIGURATIONS[2:] if breakdown else CONFIGURATIONS


# --------------------------------------------------------------------------
# Checks before measuring
# --------------------------------------------------------------------------

PASSED = "200"
CLOSED = "closed"


def tls_exchange(port: int, server_name: str, timeout: float = 5.0) -> tuple[str, str]:
    """One connection with SNI `server_name`, one GET with `Connection: close`.

    Returns the response's status code, or `closed` when the connection
    ended without an HTTP answer (the handshake failed: the gateway closed
    or reset it), and how it ended."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the certificate is self-signed; the upstream is ours
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
                response = b""
                while chunk := tls.recv(4096):
                    response += chunk
    except ConnectionResetError:
        return CLOSED, "reset during the handshake"
    except ssl.SSLEOFError:
        return CLOSED, "closed during the handshake"
    except (ssl.SSLError, ConnectionError) as err:
        return CLOSED, f"{type(err).__name__}: {err}"
    status_line = response.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/"):
        return parts[1], status_line
    return CLOSED, f"no HTTP answer ({len(response)} bytes)"


@dataclass(frozen=True)
class Probe:
    """A connection's server name and what each configuration must do with it."""

    description: str
    server_name: str
    expect_filtered: str  # rbac, warden (and 200 for none and warden-empty, always)


PROBES = [
    Probe("the benchmarked connection", SERVER_NAME, PASSED),
    Probe("unregistered server name", "other.example", CLOSED),
    Probe("registered, no ALLOW policy", "svc-50.example.com", PASSED),
    Probe("wildcard service, no ALLOW policy", "eu.wild-3.example.net", PASSED),
    Probe("scoped ALLOW, source outside its ipBlocks", "svc-3.example.com", CLOSED),
    Probe("scoped DENY, source outside 10.0.0.0/8", "svc-14.example.com", CLOSED),
    Probe("wildcard service, scoped ALLOW, source outside", "a.b.wild-1.example.net", CLOSED),
]


def admin_stats(envoy, pattern: str) -> dict[str, int]:
    url = f"http://127.0.0.1:{envoy.admin_port}/stats?format=json&filter={pattern}"
    with urllib.request.urlopen(url, timeout=5) as response:
        stats = json.load(response).get("stats", [])
    return {s["name"]: s["value"] for s in stats if "value" in s}


def upstream_connections(gateway) -> int:
    """Connections the gateway opened to the upstream so far."""
    return sum(admin_stats(gateway, r"^cluster\.upstream\.upstream_cx_total$").values())


def check(envoys: dict) -> list[str]:
    """Every configuration passes the allowed connections; Warden and RBAC
    close the refused ones, which the unfiltered gateway passes."""
    lines, failures = [], []
    for probe in PROBES:
        for kind, envoy in envoys.items():
            expected = probe.expect_filtered if kind in ("rbac", "warden") else PASSED
            before = upstream_connections(envoy)
            got, how = tls_exchange(envoy.port, probe.server_name)
            opened = 0
            if got == CLOSED:  # did the gateway connect upstream before it closed the client's connection?
                opened = upstream_connections(envoy) - before
                how += f", {'an' if opened else 'no'} upstream connection opened"
            line = f"{kind:12} SNI {probe.server_name}: {got} ({how}), expected {expected}"
            lines.append(line)
            if got != expected:
                failures.append(f"{line}  <- {probe.description}")
            elif got == CLOSED and kind == "warden" and opened:
                failures.append(f"{line}  <- Warden refuses when the connection opens, before tcp_proxy connects")
    if "warden" in envoys:
        counters = admin_stats(envoys["warden"], r"warden\.connections")
        lines.append("warden counters: " + ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in sorted(counters.items())))
        decided = sum(v for k, v in counters.items() if k.endswith("warden.connections"))
        if decided < len(PROBES):
            failures.append(f"Warden counted {decided} connections for {len(PROBES)} probes: is it the network filter?")
    if "rbac" in envoys:
        counters = admin_stats(envoys["rbac"], r"rbac\.(allowed|denied)")
        lines.append("rbac counters: " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())))
    if failures:
        raise BenchError("pre-flight checks failed:\n  " + "\n  ".join(failures))
    return lines


# --------------------------------------------------------------------------
# Load and report
# --------------------------------------------------------------------------


@dataclass
class TlsLoad:
    """wrk opening a new TLS connection (SNI `localhost`) for every request;
    runs as bench-envoy.py's Load does, so its `measure` takes it."""

    wrk: str
    threads: int
    connections: int
    cpu: str | None

    def run(self, port: int, seconds: float):
        command = bench.pinned([self.wrk, f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds:g}s",
                                "--latency", "-H", "Connection: close", f"https://{SERVER_NAME}:{port}/"], self.cpu)
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        except subprocess.TimeoutExpired as err:
            raise BenchError(f"wrk did not finish: {' '.join(command)}") from err
        if out.returncode != 0:
            raise BenchError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return bench.parse_wrk(out.stdout), out.stdout


def upstream_tls_counts(upstream) -> dict[str, int]:
    """Handshakes the upstream completed, and how many resumed a session."""
    stats = admin_stats(upstream, r"^listener\..*ssl\.(handshake|session_reused)$")
    return {
        "handshakes": sum(v for k, v in stats.items() if k.endswith("ssl.handshake")),
        "session_reused": sum(v for k, v in stats.items() if k.endswith("ssl.session_reused")),
    }


def ratios(a, b) -> dict[str, float]:
    return {"connections_per_s": a.rps / b.rps, "cpu_us_per_connection": a.cpu_us / b.cpu_us}


def render(summaries: dict, meta: dict, configs: list[Configuration]) -> str:
    base, rbac, warden = summaries["none"], summaries["rbac"], summaries["warden"]
    rounds = meta["rounds"]
    lines = [
        f"### Envoy TLS passthrough benchmark, {meta['date']}",
        "",
        f"{meta['envoy_version']}; wrk -t{meta['wrk_threads']} -c{meta['wrk_connections']} -d{meta['duration_s']:g}s "
        f"-H 'Connection: close' https://localhost (warm-up {meta['warmup_s']:g}s); {rounds} round(s)"
        f"{', medians' if rounds > 1 else ''}; {meta['cpu_plan']}.",
        "",
        "| Configuration | new connections/s | proxy CPU/connection | proxy busy | conn/s vs none | CPU/conn vs none |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in configs:
        s = summaries[c.kind]
        r = ratios(s, base)
        spread = f" ({s.rps_min:,.0f}–{s.rps_max:,.0f})" if rounds > 1 else ""
        lines.append(f"| {c.label} | {s.rps:,.0f}{spread} | {s.cpu_us:.1f} µs | {s.cpu_share:.0%} | "
                     f"{r['connections_per_s']:.3f} | {r['cpu_us_per_connection']:.2f} |")
    vs_none, rbac_none, vs_rbac = ratios(warden, base), ratios(rbac, base), ratios(warden, rbac)

    def row(name: str, r: dict) -> str:
        return (f"| {name} | {r['connections_per_s']:.3f} | {r['cpu_us_per_connection']:.2f} | "
                f"{1 / r['cpu_us_per_connection']:.3f} |")

    saturated = min(s.cpu_share for s in summaries.values()) >= 0.9
    measured_met = vs_rbac["connections_per_s"] >= RBAC_RPS_GOAL
    capacity_met = 1 / vs_rbac["cpu_us_per_connection"] >= RBAC_RPS_GOAL
    load = meta["load_us_per_connection"]
    lines += [
        "",
        "| Ratio | new connections/s | proxy CPU/connection | connections per proxy CPU-second |",
        "|---|---:|---:|---:|",
        row("Warden / none", vs_none),
        row("RBAC / none", rbac_none),
        row("**Warden / RBAC**", vs_rbac),
    ]
    if "trivial" in summaries:
        trivial = summaries["trivial"]
        lines += [
            row("trivial wasm / RBAC", ratios(trivial, rbac)),
            row("Warden / trivial wasm", ratios(warden, trivial)),
        ]
    if "trivial-calls" in summaries:
        lines.append(row("Warden / trivial wasm + Warden's host calls", ratios(warden, summaries["trivial-calls"])))
    lines += [
        "",
        f"Goal, Warden's new connections/s ≥ {RBAC_RPS_GOAL} × native RBAC's: measured connections/s "
        f"{'met' if measured_met else 'NOT met'} ({vs_rbac['connections_per_s']:.3f}); per proxy CPU-second, "
        f"what one saturated worker would serve, {'met' if capacity_met else 'NOT met'} "
        f"({1 / vs_rbac['cpu_us_per_connection']:.3f})"
        + ("." if saturated else
           ": the proxy was not saturated, so the measured ratio is the load's, and the CPU one decides."),
        "",
        f"Proxy CPU time added per connection vs no filter: RBAC {rbac.cpu_us - base.cpu_us:+.1f} µs, "
        f"Warden {warden.cpu_us - base.cpu_us:+.1f} µs"
        + (f" (with an empty policy {summaries['warden-empty'].cpu_us - base.cpu_us:+.1f} µs)"
           if "warden-empty" in summaries else "")
        + (f"; the trivial wasm network filter {summaries['trivial'].cpu_us - base.cpu_us:+.1f} µs"
           if "trivial" in summaries else "")
        + (f", with Warden's host calls {summaries['trivial-calls'].cpu_us - base.cpu_us:+.1f} µs"
           if "trivial-calls" in summaries else "")
        + ".",
        f"Proxy Envoy busy: {', '.join(f'{c.kind} {summaries[c.kind].cpu_share:.0%}' for c in configs)} of one core"
        + ("" if saturated else
           f" (below 90%: the load side was the bottleneck: per connection the upstream's TLS took "
           f"{load['upstream']:.0f} µs and wrk's {load['wrk']:.0f} µs of CPU, on one core)")
        + f". Other processes used at most {max(s.foreign_cpu_share for s in summaries.values()):.0%} "
        f"of the machine during a kept measurement ({meta['redone_measurements']} redone because of other load, "
        f"{meta['noisy_measurements']} kept although noisy).",
        f"Upstream TLS handshakes: {meta['upstream_tls']['handshakes']:,}, "
        f"{meta['upstream_tls']['session_reused']:,} of them resumed a session (wrk keeps its TLS session).",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds before each measurement (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one round, 3 s measurements, 1 s warm-ups")
    parser.add_argument("--rounds", type=int, default=None,
                        help="measure every configuration this many times, interleaved, and report medians "
                             "(default 3; --quick: 1)")
    parser.add_argument("--connections", type=int, default=16, help="wrk's concurrent connections (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--output", nargs="?", const="", default=None, metavar="FILE",
                        help="also write the raw numbers as JSON (no FILE: bench-results/envoy-tls-<time>.json)")
    parser.add_argument("--upstream-cpu", choices=["load", "proxy"], default="load",
                        help="on a 2-core machine, the core the upstream Envoy shares: wrk's (default) or the proxy's")
    parser.add_argument("--wait-quiet", type=float, default=60.0, metavar="SECONDS",
                        help="before each measurement wait up to this long for other processes to go quiet "
                             "(default 60; 0: do not wait)")
    parser.add_argument("--retries", type=int, default=3,
                        help="redo a measurement during which other processes used more than "
                             f"{bench.NOISY_THRESHOLD * 100:.0f}%% of the machine, up to this many times (default 3)")
    parser.add_argument("--tls-max", choices=["1.2", "1.3"], default="1.3",
                        help="the highest TLS version the upstream accepts (default 1.3)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also measure a trivial wasm network filter (alone, and making Warden's host calls) "
                             "and Warden with an empty ALLOW_ANY policy")
    parser.add_argument("--no-build", action="store_true", help="use the warden_filter.wasm already in target/wasm")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the Envoy configs and logs")
    parser.add_argument("--print-policy", type=int, metavar="PORT",
                        help="print the benchmark's Warden policy (services on PORT) as JSON and exit")
    parser.add_argument("--print-rbac", type=int, metavar="PORT",
                        help="print the network RBAC filters for that policy as JSON and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 3.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 3.0
    if (args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.connections < 1 or args.threads < 1
            or args.retries < 0 or args.wait_quiet < 0):
        parser.error("durations, rounds, connections and threads must be positive")
    return args


def run(args: argparse.Namespace, processes, workdir: Path) -> int:
    envoy_bin = bench.find_envoy()
    wrk = bench.find_wrk()
    if not args.no_build:
        bench.build_filters()
    for path in (WARDEN_WASM, TRIVIAL_WASM):
        if not path.exists():
            raise BenchError(f"{path} is missing: run without --no-build")
    certificate = make_certificate(workdir)
    cpus = bench.CpuPlan.detect(args.upstream_cpu)
    log(f"Envoy {envoy_bin}; wrk {wrk}; {cpus.note}; work dir {workdir}")

    configs = configurations(args.breakdown)
    ports = bench.free_ports(2 + 2 * len(configs))
    upstream_port, upstream_admin = ports[0], ports[1]
    upstream = bench.start_envoy(processes, envoy_bin, "upstream",
                                 upstream_config(upstream_port, upstream_admin, certificate, args.tls_max),
                                 upstream_port, upstream_admin, workdir, cpus.upstream)
    envoys = {}
    for i, c in enumerate(configs):
        port, admin = ports[2 + 2 * i], ports[3 + 2 * i]
        envoys[c.kind] = bench.start_envoy(processes, envoy_bin, c.kind,
                                           gateway_config(c.kind, port, admin, upstream_port),
                                           port, admin, workdir, cpus.proxy)
    for envoy in [upstream, *envoys.values()]:
        bench.wait_ready(envoy)
    log("all Envoys ready; checking connections")
    for line in check(envoys):
        log("  " + line)

    load = TlsLoad(wrk, args.threads, args.connections, cpus.load)
    measurements = []
    order = [c.kind for c in configs]
    for round_index in range(args.rounds):
        shift = round_index % len(order)  # rotate the order: no configuration always first
        for kind in order[shift:] + order[:shift]:
            log(f"round {round_index + 1}/{args.rounds}: {kind} ({args.warmup:g}s warm-up, {args.duration:g}s)")
            for attempt in range(args.retries + 1):
                if args.wait_quiet > 0:
                    bench.wait_quiet(args.wait_quiet, bench.QUIET_THRESHOLD)
                m = bench.measure(load, envoys[kind], upstream, args.duration, args.warmup, round_index)
                m.attempts = attempt + 1
                if m.foreign_cpu_share <= bench.NOISY_THRESHOLD:
                    break
                log(f"  other processes used {m.foreign_cpu_share:.0%} of the machine meanwhile "
                    f"({m.wrk.rps:,.0f} conn/s): "
                    + ("measuring again" if attempt < args.retries else "keeping it, marked noisy"))
            log(f"  {m.wrk.rps:,.0f} conn/s; proxy {m.cpu_us_per_request:.1f} µs CPU/conn, "
                f"busy {m.proxy_cpu_share:.0%}; upstream {m.upstream_cpu_seconds / max(1, m.wrk.requests) * 1e6:.1f} "
                f"µs/conn, wrk {m.wrk_cpu_seconds / max(1, m.wrk.requests) * 1e6:.1f} µs/conn; "
                f"other processes {m.foreign_cpu_share:.0%} of the machine")
            measurements.append(m)
        for envoy in [upstream, *envoys.values()]:
            if envoy.process.poll() is not None:
                raise BenchError(f"Envoy '{envoy.name}' died:\n{envoy.log_tail()}")

    summaries = {c.kind: bench.Summary.of(c.kind, [m for m in measurements if m.kind == c.kind]) for c in configs}
    meta = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "cpu_model": bench._cpu_model(), "kernel": platform.release(),
                 "load_average_at_end": os.getloadavg()},
        "envoy": str(envoy_bin),
        "envoy_version": bench.tool_version([str(envoy_bin), "--version"]).replace(f"{envoy_bin}  ", "envoy "),
        "wrk_version": bench.tool_version([wrk, "-v"]),
        "wrk_threads": args.threads,
        "wrk_connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "cpu_plan": cpus.note,
        "redone_measurements": sum(m.attempts - 1 for m in measurements),
        "noisy_measurements": sum(m.foreign_cpu_share > bench.NOISY_THRESHOLD for m in measurements),
        "upstream_tls": upstream_tls_counts(upstream),
        "load_us_per_connection": {
            "upstream": statistics.median(m.upstream_cpu_seconds / max(1, m.wrk.requests) * 1e6 for m in measurements),
            "wrk": statistics.median(m.wrk_cpu_seconds / max(1, m.wrk.requests) * 1e6 for m in measurements),
        },
        "warden_wasm_bytes": WARDEN_WASM.stat().st_size,
        "trivial_wasm_bytes": TRIVIAL_WASM.stat().st_size,
    }
    print(render(summaries, meta, configs))

    if args.output is not None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_path = Path(args.output) if args.output else REPO / "bench-results" / f"envoy-tls-{stamp}.json"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "meta": meta,
            "summary": {k: vars(s) for k, s in summaries.items()},
            "ratios": {
                "warden_vs_none": ratios(summaries["warden"], summaries["none"]),
                "rbac_vs_none": ratios(summaries["rbac"], summaries["none"]),
                "warden_vs_rbac": ratios(summaries["warden"], summaries["rbac"]),
            },
            "goals": {
                "warden_connections_at_least_0.9_of_rbac":
                    ratios(summaries["warden"], summaries["rbac"])["connections_per_s"] >= RBAC_RPS_GOAL,
            },
            "measurements": [
                {"kind": m.kind, "round": m.round, **vars(m.wrk), "proxy_cpu_seconds": m.proxy_cpu_seconds,
                 "cpu_us_per_connection": m.cpu_us_per_request, "upstream_cpu_seconds": m.upstream_cpu_seconds,
                 "wrk_cpu_seconds": m.wrk_cpu_seconds, "foreign_cpu_share": m.foreign_cpu_share,
                 "attempts": m.attempts}
                for m in measurements
            ],
            "policy": tls_policy(0),
        }
        out_path.write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {out_path}")
    return EXIT_OK


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.print_policy is not None:
        print(json.dumps(tls_policy(args.print_policy)))
        return EXIT_OK
    if args.print_rbac is not None:
        print(json.dumps(rbac_network_filters(tls_policy(args.print_rbac)), indent=1))
        return EXIT_OK

    def on_sigterm(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C ends the run cleanly, even under `cmd &`
    processes = bench.Processes()
    workdir = Path(tempfile.mkdtemp(prefix="warden-bench-envoy-tls-"))
    keep = args.keep_workdir
    try:
        return run(args, processes, workdir)
    except BenchError as err:
        keep = True
        log(f"error: {err}")
        log(f"Envoy configs and logs kept in {workdir}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        processes.stop_all()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
