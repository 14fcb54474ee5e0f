//! Every rule field (docs/POLICY.md), positive and negative, in an ALLOW rule: the
//! request is allowed exactly when the field matches.

use crate::*;
use serde_json::{json, Value};
use warden_engine::{FakeAttributes, Outcome};

struct Case {
    name: &'static str,
    rule: Value,
    request: FakeAttributes,
    matches: bool,
}

fn case(name: &'static str, rule: Value, request: FakeAttributes, matches: bool) -> Case {
    Case { name, rule, request, matches }
}

fn src(source: Value) -> Value {
    json!({"from": [{"source": source}]})
}

fn op(operation: Value) -> Value {
    json!({"to": [{"operation": operation}]})
}

fn when(conditions: Value) -> Value {
    json!({ "when": conditions })
}

const ADMIN: &str = "cluster.local/ns/default/sa/admin";
const SLEEP_PROD: &str = "cluster.local/ns/prod/sa/sleep";

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let p = allow(json!([c.rule]));
        let got = outcome(&p, &c.request);
        let want = if c.matches { Outcome::Allow } else { Outcome::Denied };
        if got != want {
            failures.push(format!("{}: expected {want:?}, got {got:?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn source_fields() {
    run(vec![
        case("principals exact", src(json!({"principals": [ADMIN]})), get().principal(ADMIN), true),
        case("principals exact, other", src(json!({"principals": [ADMIN]})), get().principal(SLEEP_PROD), false),
        case(
            "principals spiffe:// in pattern",
            src(json!({"principals": [format!("spiffe://{ADMIN}")]})),
            get().principal(ADMIN),
            true,
        ),
        case(
            "principals prefix",
            src(json!({"principals": ["cluster.local/ns/default/*"]})),
            get().principal(ADMIN),
            true,
        ),
        case("principals suffix", src(json!({"principals": ["*/sa/admin"]})), get().principal(ADMIN), true),
        case(
            "principals suffix, other",
            src(json!({"principals": ["*/sa/admin"]})),
            get().principal(SLEEP_PROD),
            false,
        ),
        case("principals presence", src(json!({"principals": ["*"]})), get().principal(SLEEP_PROD), true),
        case("principals presence, none", src(json!({"principals": ["*"]})), get(), false),
        case("principals, no principal", src(json!({"principals": [ADMIN]})), get(), false),
        case("principals any of list", src(json!({"principals": ["x", ADMIN]})), get().principal(ADMIN), true),
        case("notPrincipals, other", src(json!({"notPrincipals": [ADMIN]})), get().principal(SLEEP_PROD), true),
        case("notPrincipals, same", src(json!({"notPrincipals": [ADMIN]})), get().principal(ADMIN), false),
        case("notPrincipals, no principal", src(json!({"notPrincipals": [ADMIN]})), get(), true),
        case("notPrincipals presence, none", src(json!({"notPrincipals": ["*"]})), get(), true),
        case("notPrincipals presence, some", src(json!({"notPrincipals": ["*"]})), get().principal(ADMIN), false),
        case("namespaces", src(json!({"namespaces": ["prod"]})), get().principal(SLEEP_PROD), true),
        case("namespaces, other", src(json!({"namespaces": ["prod"]})), get().principal(ADMIN), false),
        case("namespaces prefix", src(json!({"namespaces": ["pr*"]})), get().principal(SLEEP_PROD), true),
        case("namespaces, no principal", src(json!({"namespaces": ["prod"]})), get(), false),
        case("notNamespaces, other", src(json!({"notNamespaces": ["prod"]})), get().principal(ADMIN), true),
        case("notNamespaces, same", src(json!({"notNamespaces": ["prod"]})), get().principal(SLEEP_PROD), false),
        case("notNamespaces, no principal", src(json!({"notNamespaces": ["prod"]})), get(), true),
        case("ipBlocks cidr", src(json!({"ipBlocks": ["10.0.0.0/8"]})), get().source_ip("10.1.2.3"), true),
        case("ipBlocks cidr, outside", src(json!({"ipBlocks": ["10.0.0.0/8"]})), get().source_ip("11.1.2.3"), false),
        case("ipBlocks single", src(json!({"ipBlocks": ["203.0.113.4"]})), get().source_ip("203.0.113.4"), true),
        case("ipBlocks v6", src(json!({"ipBlocks": ["2001:db8::/32"]})), get().source_ip("[2001:db8::7]"), true),
        case("ipBlocks, no address", src(json!({"ipBlocks": ["0.0.0.0/0"]})), get(), false),
        case(
            "notIpBlocks, outside",
            src(json!({"notIpBlocks": ["203.0.113.4"]})),
            get().source_ip("203.0.113.5"),
            true,
        ),
        case(
            "notIpBlocks, inside",
            src(json!({"notIpBlocks": ["203.0.113.4"]})),
            get().source_ip("203.0.113.4"),
            false,
        ),
        case(
            "remoteIpBlocks",
            src(json!({"remoteIpBlocks": ["192.168.0.0/16"]})),
            get().source_ip("192.168.9.9"),
            true,
        ),
        case(
            "remoteIpBlocks, outside",
            src(json!({"remoteIpBlocks": ["192.168.0.0/16"]})),
            get().source_ip("10.0.0.1"),
            false,
        ),
        case(
            "notRemoteIpBlocks, inside",
            src(json!({"notRemoteIpBlocks": ["192.168.0.0/16"]})),
            get().source_ip("192.168.0.1"),
            false,
        ),
        case(
            "notRemoteIpBlocks, outside",
            src(json!({"notRemoteIpBlocks": ["192.168.0.0/16"]})),
            get().source_ip("10.0.0.1"),
            true,
        ),
        case(
            "fields in a source are ANDed",
            src(json!({"principals": ["*"], "namespaces": ["prod"], "notIpBlocks": ["203.0.113.4"]})),
            get().principal(SLEEP_PROD).source_ip("203.0.113.4"),
            false,
        ),
        case(
            "fields in a source are ANDed, all hold",
            src(json!({"principals": ["*"], "namespaces": ["prod"], "notIpBlocks": ["203.0.113.4"]})),
            get().principal(SLEEP_PROD).source_ip("203.0.113.9"),
            true,
        ),
        case(
            "sources are ORed",
            json!({"from": [{"source": {"principals": [ADMIN]}}, {"source": {"namespaces": ["prod"]}}]}),
            get().principal(SLEEP_PROD),
            true,
        ),
    ]);
}

#[test]
fn operation_fields() {
    let req = |m: &str, authority: &str, path: &str| FakeAttributes::request(m, authority, path);
    run(vec![
        case("hosts exact", op(json!({"hosts": ["httpbin.org"]})), get(), true),
        case("hosts case-insensitive pattern", op(json!({"hosts": ["HTTPBIN.org"]})), get(), true),
        case(
            "hosts case-insensitive request",
            op(json!({"hosts": ["httpbin.org"]})),
            req("GET", "HttpBin.Org", "/"),
            true,
        ),
        case("hosts suffix", op(json!({"hosts": ["*.example.com"]})), req("GET", "api.example.com", "/"), true),
        case("hosts suffix, apex", op(json!({"hosts": ["*.example.com"]})), req("GET", "example.com", "/"), false),
        case("hosts prefix", op(json!({"hosts": ["api.*"]})), req("GET", "api.example.com", "/"), true),
        // Istio compares the Host header with its port: an ALLOW on a
        // port-less host does not let `host:port` through.
        case(
            "hosts with a port, as Istio",
            op(json!({"hosts": ["httpbin.org"]})),
            req("GET", "httpbin.org:443", "/"),
            false,
        ),
        case(
            "hosts with a trailing dot, as Istio",
            op(json!({"hosts": ["httpbin.org"]})),
            req("GET", "httpbin.org.", "/"),
            false,
        ),
        case("hosts with port*", op(json!({"hosts": ["httpbin.org*"]})), req("GET", "httpbin.org:443", "/"), true),
        case("hosts, other", op(json!({"hosts": ["api.example.com"]})), get(), false),
        case("notHosts, other", op(json!({"notHosts": ["api.example.com"]})), get(), true),
        case("notHosts, same", op(json!({"notHosts": ["httpbin.org"]})), get(), false),
        case("ports from authority", op(json!({"ports": ["443"]})), req("GET", "httpbin.org:443", "/"), true),
        case("ports as numbers", op(json!({"ports": [443]})), req("GET", "httpbin.org:443", "/"), true),
        case("ports, other", op(json!({"ports": ["443"]})), get(), false),
        case("ports default http", op(json!({"ports": ["80"]})), get(), true),
        case("ports default https", op(json!({"ports": ["443"]})), get().header(":scheme", "https"), true),
        case("ports from destination.port", op(json!({"ports": ["443"]})), get().destination_port(443), true),
        // Istio's `ports` is the listener's; an ALLOW needs the port the
        // request names to agree.
        case(
            "ports: the authority's and the listener's must both match",
            op(json!({"ports": ["80"]})),
            req("GET", "httpbin.org:80", "/").destination_port(443),
            false,
        ),
        case(
            "ports: the authority's and the listener's agree",
            op(json!({"ports": ["443"]})),
            req("GET", "httpbin.org:443", "/").destination_port(443),
            true,
        ),
        case(
            "destination.port wins over scheme (TLS listener, plain app)",
            op(json!({"ports": ["80"]})),
            get().header(":scheme", "https").destination_port(80),
            true,
        ),
        case("notPorts, other", op(json!({"notPorts": ["8080"]})), get(), true),
        case("notPorts, same", op(json!({"notPorts": ["80"]})), get(), false),
        case("methods", op(json!({"methods": ["GET", "HEAD"]})), get(), true),
        case("methods, other", op(json!({"methods": ["POST"]})), get(), false),
        case("methods case-sensitive pattern", op(json!({"methods": ["get"]})), get(), false),
        case("notMethods, other", op(json!({"notMethods": ["POST"]})), get(), true),
        case("notMethods, same", op(json!({"notMethods": ["GET"]})), get(), false),
        case("paths exact", op(json!({"paths": ["/get"]})), get(), true),
        case("paths exact, longer", op(json!({"paths": ["/get"]})), req("GET", "httpbin.org", "/get/x"), false),
        case("paths exact ignores query", op(json!({"paths": ["/get"]})), req("GET", "httpbin.org", "/get?a=1"), true),
        case("paths prefix", op(json!({"paths": ["/api/*"]})), req("GET", "httpbin.org", "/api/v1/x"), true),
        case("paths prefix, other", op(json!({"paths": ["/api/*"]})), req("GET", "httpbin.org", "/apix"), false),
        case("paths suffix", op(json!({"paths": ["*.json"]})), req("GET", "httpbin.org", "/a/b.json"), true),
        case("paths presence", op(json!({"paths": ["*"]})), get(), true),
        case("paths {*}", op(json!({"paths": ["/users/{*}"]})), req("GET", "httpbin.org", "/users/7"), true),
        case(
            "paths {*} one segment",
            op(json!({"paths": ["/users/{*}"]})),
            req("GET", "httpbin.org", "/users/7/x"),
            false,
        ),
        case("paths {**}", op(json!({"paths": ["/users/{**}"]})), req("GET", "httpbin.org", "/users/7/x"), true),
        case(
            "paths match the normalized path",
            op(json!({"paths": ["/get"]})),
            req("GET", "httpbin.org", "//get"),
            true,
        ),
        case("notPaths, other", op(json!({"notPaths": ["/admin*"]})), get(), true),
        case("notPaths, same", op(json!({"notPaths": ["/admin*"]})), req("GET", "httpbin.org", "/admin/x"), false),
        case("fields in an operation are ANDed", op(json!({"methods": ["GET"], "paths": ["/post"]})), get(), false),
        case(
            "operations are ORed",
            json!({"to": [{"operation": {"paths": ["/post"]}}, {"operation": {"paths": ["/get"]}}]}),
            get(),
            true,
        ),
    ]);
}

#[test]
fn when_conditions() {
    run(vec![
        case(
            "header values",
            when(json!([{"key": "request.headers[X-Team]", "values": ["pay*"]}])),
            get().header("x-team", "payments"),
            true,
        ),
        case(
            "header values, other",
            when(json!([{"key": "request.headers[x-team]", "values": ["pay*"]}])),
            get().header("x-team", "ops"),
            false,
        ),
        case("header values, absent", when(json!([{"key": "request.headers[x-team]", "values": ["*"]}])), get(), false),
        case(
            "header notValues, absent",
            when(json!([{"key": "request.headers[x-team]", "notValues": ["ops"]}])),
            get(),
            true,
        ),
        case(
            "header notValues, same",
            when(json!([{"key": "request.headers[x-team]", "notValues": ["ops"]}])),
            get().header("x-team", "ops"),
            false,
        ),
        case(
            "values and notValues together",
            when(json!([{"key": "request.headers[x-team]", "values": ["p*"], "notValues": ["platform"]}])),
            get().header("x-team", "platform"),
            false,
        ),
        case(
            "source.principal",
            when(json!([{"key": "source.principal", "values": [ADMIN]}])),
            get().principal(ADMIN),
            true,
        ),
        case(
            "source.principal, other",
            when(json!([{"key": "source.principal", "values": [ADMIN]}])),
            get().principal(SLEEP_PROD),
            false,
        ),
        case(
            "source.namespace",
            when(json!([{"key": "source.namespace", "values": ["prod"]}])),
            get().principal(SLEEP_PROD),
            true,
        ),
        case(
            "source.ip",
            when(json!([{"key": "source.ip", "values": ["10.0.0.0/8"]}])),
            get().source_ip("10.0.0.1"),
            true,
        ),
        case(
            "source.ip notValues",
            when(json!([{"key": "source.ip", "notValues": ["10.0.0.0/8"]}])),
            get().source_ip("10.0.0.1"),
            false,
        ),
        case(
            "remote.ip",
            when(json!([{"key": "remote.ip", "values": ["10.0.0.1"]}])),
            get().source_ip("10.0.0.1"),
            true,
        ),
        case("destination.port", when(json!([{"key": "destination.port", "values": ["80"]}])), get(), true),
        case("destination.port, other", when(json!([{"key": "destination.port", "values": ["443"]}])), get(), false),
        case(
            "connection.sni",
            when(json!([{"key": "connection.sni", "values": ["*.example.com"]}])),
            FakeAttributes::get("api.example.com", "/get")
                .property(&["connection", "requested_server_name"], "api.example.com"),
            true,
        ),
        case("connection.sni, absent", when(json!([{"key": "connection.sni", "values": ["*"]}])), get(), false),
        case(
            "all conditions must hold",
            when(json!([
                {"key": "request.headers[x-a]", "values": ["1"]},
                {"key": "request.headers[x-b]", "values": ["2"]}
            ])),
            get().header("x-a", "1").header("x-b", "3"),
            false,
        ),
        case(
            "from, to and when together",
            json!({
                "from": [{"source": {"namespaces": ["prod"]}}],
                "to": [{"operation": {"methods": ["GET"]}}],
                "when": [{"key": "request.headers[x-a]", "values": ["1"]}]
            }),
            get().principal(SLEEP_PROD).header("x-a", "1"),
            true,
        ),
    ]);
}

#[test]
fn empty_lists_count_as_unset_like_proto3() {
    run(vec![
        case("empty principals", src(json!({"principals": []})), get(), true),
        case("empty from", json!({"from": []}), get(), true),
        case("empty methods", op(json!({"methods": []})), get(), true),
    ]);
}
