//! The diff's promise, tested on random policy pairs drawn from the whole
//! rule vocabulary and random requests and connections drawn from the same
//! constants (and values near them): a request whose decision differs between the two
//! policies always falls in a class the diff found changed, every request
//! falls in a class the diff enumerated (or at a destination it skipped
//! because both policies treat it alike), each class is decided uniformly,
//! and every reported witness reproduces its change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::{json, Value};
use warden_diff::{Diff, Probe};
use warden_engine::{compile, Policy};

const HOSTS: &[&str] = &["api.example.com", "*.example.com", "b.example.org", "*.b.example.org", "svc.test"];
const PORTS: &[u16] = &[80, 443, 8443];
const PRINCIPALS: &[&str] =
    &["cluster.local/ns/pay/sa/api", "cluster.local/ns/pay/*", "*/sa/admin", "cluster.local/ns/data/sa/etl", "*"];
const NAMESPACES: &[&str] = &["pay", "data", "team-*"];
const METHODS: &[&str] = &["GET", "POST", "DELETE", "PO*", "*"];
const PATHS: &[&str] = &["/admin", "/admin/*", "/api/*", "*/refund", "/v1/{*}/items", "/files/{**}", "/"];
const IPS: &[&str] = &["10.0.0.0/8", "10.66.0.0/16", "192.168.1.7"];
const HEADER_VALUES: &[&str] = &["red", "red-*", "*-1", "*"];
const SNIS: &[&str] = &["api.example.com", "*.example.com"];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(pool, 1..=2.min(pool.len()))
}

/// One field of a source, an operation or a condition.
fn source() -> impl Strategy<Value = Value> {
    prop_oneof![
        pick(PRINCIPALS).prop_map(|v| json!({"principals": v})),
        pick(PRINCIPALS).prop_map(|v| json!({"notPrincipals": v})),
        pick(NAMESPACES).prop_map(|v| json!({"namespaces": v})),
        pick(NAMESPACES).prop_map(|v| json!({"notNamespaces": v})),
        pick(IPS).prop_map(|v| json!({"ipBlocks": v})),
        pick(IPS).prop_map(|v| json!({"notIpBlocks": v})),
        Just(json!({"trustDomains": ["cluster.local"]})),
        Just(json!({"notTrustDomains": ["other.*"]})),
        Just(json!({"serviceAccounts": ["pay/api"]})),
        Just(json!({"notServiceAccounts": ["data/etl"]})),
        pick(IPS).prop_map(|v| json!({"remoteIpBlocks": v})),
    ]
}

fn operation() -> impl Strategy<Value = Value> {
    let ports: Vec<String> = PORTS.iter().map(|p| p.to_string()).collect();
    let host_pool: &'static [&'static str] = &["api.example.com", "*.example.com", "b.example.org:443", "*"];
    prop_oneof![
        pick(METHODS).prop_map(|v| json!({"methods": v})),
        pick(METHODS).prop_map(|v| json!({"notMethods": v})),
        pick(PATHS).prop_map(|v| json!({"paths": v})),
        pick(PATHS).prop_map(|v| json!({"notPaths": v})),
        proptest::sample::subsequence(ports.clone(), 1..=2).prop_map(|v| json!({"ports": v})),
        proptest::sample::subsequence(ports, 1..=2).prop_map(|v| json!({"notPorts": v})),
        pick(host_pool).prop_map(|v| json!({"hosts": v})),
        pick(host_pool).prop_map(|v| json!({"notHosts": v})),
    ]
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        pick(HEADER_VALUES).prop_map(|v| json!({"key": "request.headers[x-team]", "values": v})),
        pick(HEADER_VALUES).prop_map(|v| json!({"key": "request.headers[x-team]", "notValues": v})),
        pick(SNIS).prop_map(|v| json!({"key": "connection.sni", "values": v})),
        pick(IPS).prop_map(|v| json!({"key": "source.ip", "values": v})),
        Just(json!({"key": "destination.port", "values": ["443"]})),
    ]
}

fn merge(parts: Vec<Value>) -> Value {
    let mut out = serde_json::Map::new();
    for p in parts {
        if let Value::Object(m) = p {
            out.extend(m);
        }
    }
    Value::Object(out)
}

fn rule() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(proptest::collection::vec(source(), 1..=2)),
        proptest::option::of(proptest::collection::vec(operation(), 1..=2)),
        proptest::option::of(condition()),
    )
        .prop_map(|(from, to, when)| {
            let mut r = serde_json::Map::new();
            if let Some(s) = from {
                r.insert("from".into(), json!([{"source": merge(s)}]));
            }
            if let Some(o) = to {
                r.insert("to".into(), json!([{"operation": merge(o)}]));
            }
            if let Some(w) = when {
                r.insert("when".into(), json!([w]));
            }
            Value::Object(r)
        })
}

fn authz() -> impl Strategy<Value = Value> {
    (
        0usize..3,
        any::<bool>(),
        proptest::option::of(proptest::sample::subsequence(vec!["one", "two", "three"], 1..=2)),
        proptest::collection::vec(rule(), 0..=2),
    )
        .prop_map(|(action, dry, services, rules)| {
            let word = ["ALLOW", "DENY", "AUDIT"].get(action).copied().unwrap_or("ALLOW");
            let mut p = json!({"action": word, "rules": rules});
            if dry && action != 2 {
                p["dryRun"] = json!(true);
            }
            if let Some(s) = services {
                p["services"] = json!(s);
            }
            p
        })
}

fn service(name: &'static str) -> impl Strategy<Value = Value> {
    (pick(HOSTS), proptest::option::of(proptest::sample::subsequence(PORTS, 1..=2))).prop_map(move |(hosts, ports)| {
        match ports {
            Some(p) => json!({"name": name, "hosts": hosts, "ports": p}),
            None => json!({"name": name, "hosts": hosts}),
        }
    })
}

fn policy() -> impl Strategy<Value = Value> {
    (
        service("one"),
        service("two"),
        proptest::option::of(service("three")),
        proptest::collection::vec(authz(), 0..=3),
        any::<bool>(),
        any::<bool>(),
        (0usize..4, any::<bool>(), any::<bool>()),
    )
        .prop_map(|(a, b, c, authz, allow_any, sni, (normalization, gateway, header))| {
            let mut services = vec![a, b];
            services.extend(c);
            let authz: Vec<Value> = authz
                .into_iter()
                .enumerate()
                .map(|(i, mut p)| {
                    p["name"] = json!(format!("p{i}"));
                    p
                })
                .collect();
            let modes = ["NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"];
            let mut doc = json!({
                "name": "random",
                "outboundTrafficPolicy": if allow_any { "ALLOW_ANY" } else { "REGISTRY_ONLY" },
                "requireSniMatch": sni,
                "pathNormalization": modes.get(normalization).copied().unwrap_or("NONE"),
                "identity": if header {
                    json!([{"header": "x-caller"}])
                } else {
                    json!([{"peerCertificate": {}}])
                },
                "services": services,
                "authorization": authz,
            });
            if gateway {
                doc["gatewayPorts"] = json!({"8443": 443});
            }
            doc
        })
}

/// A policy, and often a second one that is the first with one change
/// (the common case in review), else an unrelated one.
fn pair() -> impl Strategy<Value = (Value, Value)> {
    (policy(), policy(), 0usize..4, authz()).prop_map(|(a, b, how, extra)| {
        let b = match how {
            0 => b,
            1 => {
                let mut b = a.clone();
                if let Some(list) = b["authorization"].as_array_mut() {
                    let mut extra = extra;
                    extra["name"] = json!("added");
                    list.push(extra);
                }
                b
            }
            2 => {
                let mut b = a.clone();
                if let Some(list) = b["authorization"].as_array_mut() {
                    list.pop();
                }
                b
            }
            _ => {
                let mut b = a.clone();
                b["services"] = b2_services(&b["services"]);
                b
            }
        };
        (a, b)
    })
}

/// The services with the first one's ports dropped (any port now).
fn b2_services(services: &Value) -> Value {
    let mut s = services.clone();
    if let Some(first) = s.get_mut(0).and_then(Value::as_object_mut) {
        first.remove("ports");
    }
    s
}

fn load(doc: &Value) -> Option<Policy> {
    compile::load(doc.to_string().as_bytes()).ok()
}

fn probe() -> impl Strategy<Value = Probe> {
    let authorities = proptest::sample::select(vec![
        "api.example.com",
        "API.example.com",
        "api.example.com:443",
        "api.example.com.",
        "x.example.com:8443",
        "example.com",
        "b.example.org",
        "c.b.example.org:443",
        "svc.test:80",
        "other.net",
        "api.example.com:9000",
    ]);
    let methods = proptest::sample::select(vec!["GET", "POST", "POSTX", "DELETE", "PATCH", "CONNECT"]);
    let paths = proptest::sample::select(vec![
        "/",
        "/admin",
        "/admin/x",
        "/adminx",
        "/api/v1",
        "/x/refund",
        "/refund",
        "/v1/a/items",
        "/v1/a/b/items",
        "/files",
        "/files/a/b",
        "//admin",
        "/admin/../api/x",
        "/api%2Fx",
    ]);
    let principals = proptest::sample::select(vec![
        None,
        Some("spiffe://cluster.local/ns/pay/sa/api"),
        Some("spiffe://cluster.local/ns/pay/sa/admin"),
        Some("spiffe://cluster.local/ns/data/sa/etl"),
        Some("spiffe://cluster.local/ns/team-x/sa/y"),
        Some("spiffe://other.td/ns/pay/sa/api"),
    ]);
    let teams =
        proptest::sample::select(vec![None, Some(""), Some("red"), Some("red-1"), Some("blue-1"), Some("blue")]);
    let ips = proptest::sample::select(vec![
        "127.0.0.1",
        "10.0.0.1",
        "10.66.3.4",
        "10.255.255.255",
        "192.168.1.7",
        "11.0.0.0",
    ]);
    let snis = proptest::sample::select(vec![
        None,
        Some("="),
        Some("api.example.com"),
        Some("evil.example.com"),
        Some("z.net"),
    ]);
    let shape = (authorities, proptest::sample::select(vec![80u16, 443, 8443, 9000]), methods, paths);
    (shape, principals, teams, ips, snis, proptest::bool::weighted(0.25)).prop_map(
        |((authority, port, method, path), principal, team, ip, sni, connection)| {
            let host = authority.split(':').next().unwrap_or(authority).trim_end_matches('.').to_ascii_lowercase();
            if connection {
                // A connection: its server name, port and caller only.
                return Probe {
                    connection: true,
                    method: String::new(),
                    authority: String::new(),
                    path: None,
                    port,
                    principal: principal.map(str::to_owned),
                    headers: Vec::new(),
                    source_ip: ip.parse().unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
                    sni: sni.map(|s| if s == "=" { host.clone() } else { s.to_owned() }),
                };
            }
            Probe {
                connection: false,
                method: method.to_owned(),
                authority: authority.to_owned(),
                path: (method != "CONNECT").then(|| path.to_owned()),
                port,
                principal: principal.map(str::to_owned),
                headers: team.map(|t| vec![("x-team".to_owned(), t.to_owned())]).unwrap_or_default(),
                source_ip: ip.parse().unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
                sni: sni.map(|s| if s == "=" { host.clone() } else { s.to_owned() }),
            }
        },
    )
}

proptest! {
    // 64 policy pairs × 48 requests by default; PROPTEST_CASES=N for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_changed_request_is_in_a_changed_class(
        (a, b) in pair(),
        probes in proptest::collection::vec(probe(), 48),
    ) {
        let (Some(old), Some(new)) = (load(&a), load(&b)) else { return Ok(()) };
        let diff = Diff::new(&old, &new);
        let (report, classes) = diff.run(true);
        for p in &probes {
            let (o, n) = diff.decide(p);
            let class = diff.class_of(p);
            if class.fields.is_empty() {
                // A destination both policies treat alike.
                prop_assert_eq!(&o, &n, "skipped destination decided differently: {:?}", p);
                continue;
            }
            let found = classes.iter().find(|(k, _, _)| k.contains(&class));
            prop_assert!(found.is_some(), "request in no enumerated class: {:?}\nold {}\nnew {}", p, a, b);
            let (fo, fn_) = found.map(|(_, o, n)| (o.clone(), n.clone())).unwrap_or_else(|| (o.clone(), n.clone()));
            prop_assert_eq!((&fo, &fn_), (&o, &n), "class decided unevenly: {:?}\nold {}\nnew {}", p, a, b);
        }
        // The report holds exactly the changed classes, and each witness
        // reproduces its change.
        let changed = classes.iter().filter(|(_, o, n)| o != n).count();
        prop_assert_eq!(report.stats.changed, changed);
        prop_assert_eq!(report.changes.is_empty(), changed == 0);
        for c in &report.changes {
            let (o, n) = diff.decide(&c.witness);
            prop_assert_eq!((&o, &n), (&c.old, &c.new), "witness does not reproduce: {:?}", c.witness);
        }
    }
}

#[test]
fn identical_policies_have_no_change_and_explore_nothing() {
    let doc = json!({"name": "p", "services": [{"name": "one", "hosts": ["api.example.com"], "ports": [443]}],
        "authorization": [{"name": "a", "action": "ALLOW", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}]});
    let (Some(a), Some(b)) = (load(&doc), load(&doc)) else { panic!("policy does not load") };
    let report = warden_diff::diff(&a, &b);
    assert!(!report.any());
    assert_eq!(report.stats.explored, 0);
    assert_eq!(report.stats.probes, 0);
}
