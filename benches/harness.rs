//! Requests through Warden's compiled filter in the harness (wasmtime),
//! headers-only, one VM reused like one Envoy worker, next to the native
//! engine deciding the same requests in the same run.
//!
//! `cargo bench --bench harness`. Goals: at least 250,000 requests/s on one
//! core through the harness (under 4 µs a request, host calls included) and
//! under 4× the native engine.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use warden::engine::{compile, FakeAttributes};
use warden::harness::{Host, HostOptions, Request};

const POLICY: &str = r#"{
  "name": "httpbin-egress",
  "services": [
    {"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [80]},
    {"name": "api", "hosts": ["*.example.com"], "ports": [80, 443]}
  ],
  "authorization": [
    {"name": "deny-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]},
    {"name": "httpbin", "action": "ALLOW", "services": ["httpbin.org"], "rules": [
      {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"]}}]},
      {"to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]}
    ]}
  ]
}"#;

/// (name, method, authority, path, principal)
const CASES: [(&str, &str, &str, &str, &str); 3] = [
    ("allow", "GET", "httpbin.org", "/get", "cluster.local/ns/default/sa/sleep"),
    ("deny", "POST", "httpbin.org", "/post", "cluster.local/ns/default/sa/sleep"),
    ("unregistered", "GET", "aliyun.com", "/", "cluster.local/ns/default/sa/sleep"),
];

fn harness(c: &mut Criterion) {
    let wasm = match std::fs::read(warden::FILTER_WASM_PATH) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot read the filter: {e}");
            std::process::exit(1);
        }
    };
    let host = Host::new(&wasm, HostOptions::default()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let mut vm = host.vm(POLICY.as_bytes()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let native = compile::load(POLICY.as_bytes()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });

    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    for (name, method, authority, path, principal) in CASES {
        let request = Request::new(method, authority, path).peer_uri_san(principal).destination_port(80);
        let attrs = FakeAttributes::request(method, authority, path).principal(principal).destination_port(80);
        // Both must decide the same before either is timed.
        let outcome = vm.run(&request);
        let decision = native.decide(&attrs);
        if outcome.forwarded.is_some() != decision.is_allowed() || outcome.fault.is_some() {
            eprintln!("{name}: the harness and the native engine disagree");
            std::process::exit(1);
        }
        group.bench_function(format!("harness/{name}"), |b| b.iter(|| black_box(vm.run(black_box(&request))).status));
        // The native figure includes what the filter does around the
        // decision: the record it stores in filter state.
        group.bench_function(format!("native/{name}"), |b| {
            b.iter(|| {
                let d = native.decide(black_box(&attrs));
                black_box(d.record())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, harness);
criterion_main!(benches);
