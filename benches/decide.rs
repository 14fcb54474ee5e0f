//! Decision time of the native engine for headers-only requests.
//!
//! Policies of 100 and 10,000 services (mixed exact and wildcard hosts) and
//! 1,000 rules; the benchmarked requests hit services with the same
//! authorization in both, so the ratio between the two sizes measures how
//! decisions scale with the registry. Run: `cargo bench --bench decide`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::{json, Value};
use std::hint::black_box;
use warden::engine::identity::x509;
use warden::engine::{compile, Attributes, Outcome, Policy};

/// Total rules in every generated policy.
const RULES: usize = 1_000;

/// A policy with `services` services, every fourth one a wildcard, and
/// `RULES` rules: three unscoped policies (7 rules) and the rest in
/// two-rule policies scoped to services spread over the registry.
fn generate(services: usize) -> Value {
    let host = |i: usize| {
        if i % 4 == 3 {
            format!("*.tenant-{i}.example.net")
        } else {
            format!("svc-{i}.example.com")
        }
    };
    let svc: Vec<Value> =
        (0..services).map(|i| json!({"name": format!("svc-{i}"), "hosts": [host(i)], "ports": [80, 443]})).collect();
    let mut authz = vec![
        json!({"name": "deny-admin-paths", "action": "DENY", "rules": [
            {"to": [{"operation": {"paths": ["/admin*", "*/.git", "/internal/{**}"]}}]},
            {"to": [{"operation": {"methods": ["TRACE", "CONNECT"]}}]},
            {"from": [{"source": {"namespaces": ["quarantine"]}}]}
        ]}),
        json!({"name": "deny-bad-sources", "action": "DENY", "rules": [
            {"from": [{"source": {"principals": ["*/sa/compromised", "cluster.local/ns/legacy/*"]}}]},
            {"when": [{"key": "request.headers[x-debug]", "values": ["*"]}]}
        ]}),
        json!({"name": "audit-writes", "action": "AUDIT", "rules": [
            {"to": [{"operation": {"methods": ["POST", "PUT", "PATCH", "DELETE"]}}]},
            {"to": [{"operation": {"paths": ["/upload/{*}"]}}]}
        ]}),
    ];
    let mut rules = 7;
    let mut i = 0;
    while rules < RULES {
        // Two-rule policies spread over the registry; services 0 and 3 (the
        // benchmarked exact and wildcard ones) always get one ALLOW and one
        // DENY policy, whatever the registry size.
        let target = if i < 4 { (i / 2) * 3 } else { (i * 7919) % services };
        let team = format!("cluster.local/ns/team-{}/sa/app", i % 50);
        let policy = if i % 2 == 0 {
            json!({"name": format!("allow-{i}"), "action": "ALLOW", "services": [format!("svc-{target}")], "rules": [
                {"from": [{"source": {"principals": [team]}}], "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/v1/*"]}}]},
                {"from": [{"source": {"namespaces": ["platform"]}}], "to": [{"operation": {"paths": ["/health"]}}]}
            ]})
        } else {
            json!({"name": format!("deny-{i}"), "action": "DENY", "services": [format!("svc-{target}")], "rules": [
                {"from": [{"source": {"principals": [team]}}], "to": [{"operation": {"paths": ["/v1/admin*"]}}]},
                {"from": [{"source": {"namespaces": ["contractors"]}}], "to": [{"operation": {"methods": ["DELETE"]}}]}
            ]})
        };
        authz.push(policy);
        rules += 2;
        i += 1;
    }
    json!({"name": format!("bench-{services}"), "services": svc, "authorization": authz})
}

/// A request as the filter sees it: headers already fetched (the filter
/// reads them all with one host call), properties copied per call. The
/// caller's identity is its client certificate, as Envoy shows it
/// (`connection.peer_certificate`, PEM): Warden reads every SAN itself.
struct Request {
    authority: &'static str,
    method: &'static str,
    path: &'static str,
    certificate: &'static str,
}

/// Workload certificates shaped like Istio's (RSA 2048, one SPIFFE URI
/// SAN, about 1.2 KB of PEM); the keys were thrown away.
const TEAM_0: &str = include_str!("certs/team-0.pem");
const PLATFORM: &str = include_str!("certs/platform.pem");

impl Attributes for Request {
    fn header(&self, name: &str) -> Option<&str> {
        match name {
            ":authority" => Some(self.authority),
            ":method" => Some(self.method),
            ":path" => Some(self.path),
            ":scheme" => Some("http"),
            _ => None,
        }
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str)) {
        for name in [":authority", ":method", ":path", ":scheme"] {
            if let Some(value) = self.header(name) {
                visit(name, value);
            }
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        (path == ["connection", "peer_certificate"]).then(|| self.certificate.as_bytes().to_vec())
    }

    /// As the filter: certificates seen before are remembered by the VM
    /// (`peer-certificate-sans` times one read from scratch).
    fn peer_certificate_names(&self, pem: &[u8]) -> Result<x509::SubjectAltNames, x509::CertificateError> {
        CERTIFICATES.with(|cache| cache.borrow_mut().subject_alt_names(pem))
    }
}

thread_local! {
    static CERTIFICATES: std::cell::RefCell<x509::CertificateCache> = Default::default();
}

const REQUESTS: [(&str, Request, Outcome); 4] = [
    (
        "allow-exact",
        Request { authority: "svc-0.example.com", method: "GET", path: "/v1/orders?id=7", certificate: TEAM_0 },
        Outcome::Allow,
    ),
    (
        "allow-wildcard",
        Request { authority: "api.tenant-3.example.net", method: "GET", path: "/health", certificate: PLATFORM },
        Outcome::Allow,
    ),
    (
        "deny",
        Request { authority: "svc-0.example.com", method: "GET", path: "/admin/users", certificate: TEAM_0 },
        Outcome::Denied,
    ),
    (
        "unregistered",
        Request { authority: "aliyun.com", method: "GET", path: "/", certificate: TEAM_0 },
        Outcome::Unregistered,
    ),
];

fn load(services: usize) -> Policy {
    let doc = serde_json::to_vec(&generate(services)).unwrap_or_default();
    match compile::load(&doc) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("benchmark policy does not compile: {e}");
            std::process::exit(1);
        }
    }
}

fn decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for services in [100, 10_000] {
        let policy = load(services);
        for (name, req, want) in &REQUESTS {
            // A benchmark of the wrong decision measures nothing.
            let got = policy.decide(req).outcome;
            if got != *want {
                eprintln!("{name} with {services} services: expected {want:?}, got {got:?}");
                std::process::exit(1);
            }
            group.bench_with_input(BenchmarkId::new(*name, services), req, |b, req| {
                b.iter(|| black_box(policy.decide(black_box(req))).outcome)
            });
        }
    }
    group.finish();
}

fn record(c: &mut Criterion) {
    let policy = load(100);
    let (_, req, _) = &REQUESTS[0];
    c.bench_function("decision-record", |b| b.iter(|| black_box(policy.decide(req).record())));
}

/// What reading the identity costs within a decision: the SANs from the
/// certificate's PEM.
fn peer_certificate(c: &mut Criterion) {
    match x509::pem_subject_alt_names(TEAM_0.as_bytes()) {
        Ok(names) if names.uris == ["spiffe://cluster.local/ns/team-0/sa/app"] => {}
        other => {
            eprintln!("the benchmark certificate reads as {other:?}");
            std::process::exit(1);
        }
    }
    c.bench_function("peer-certificate-sans", |b| {
        b.iter(|| black_box(x509::pem_subject_alt_names(black_box(TEAM_0.as_bytes()))).is_ok())
    });
    // What the filter pays for a certificate it has seen (its VM keeps a
    // cache): the cache full of other certificates, the one looked up last.
    let mut cache = x509::CertificateCache::default();
    for i in 1..x509::CertificateCache::CAPACITY {
        let other = x509::test_certificate_pem(&[&format!("spiffe://td/ns/n{i}/sa/a")], &[], "x");
        let _ = cache.subject_alt_names(other.as_bytes());
    }
    let _ = cache.subject_alt_names(TEAM_0.as_bytes());
    c.bench_function("peer-certificate-sans-cached", |b| {
        b.iter(|| black_box(cache.subject_alt_names(black_box(TEAM_0.as_bytes()))).is_ok())
    });
}

criterion_group!(benches, decide, record, peer_certificate);
criterion_main!(benches);
