//! `warden diff` at gateway scale: two policies of 10,000 services and
//! 1,000 authorization policies (each scoped to ten services, one rule of
//! principals, methods and paths), differing in one rule, and two identical
//! ones. Goals (docs/PERFORMANCE.md): under 2 s and under 1 s on one core;
//! compiling the two policies is measured in the same run as the baseline.
//!
//! `cargo bench -p warden-diff`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::time::Duration;
use warden_engine::{compile, Policy};

const SERVICES: usize = 10_000;
const POLICIES: usize = 1_000;

/// The policy; `widen` gives policy 500's rule one more method.
fn document(widen: bool) -> Value {
    let services: Vec<Value> = (0..SERVICES)
        .map(|i| json!({"name": format!("svc-{i}"), "hosts": [format!("svc-{i}.example.com")], "ports": [443]}))
        .collect();
    let authorization: Vec<Value> = (0..POLICIES)
        .map(|p| {
            let scoped: Vec<String> =
                (0..SERVICES / POLICIES).map(|k| format!("svc-{}", p * (SERVICES / POLICIES) + k)).collect();
            let mut methods = vec!["GET", "POST"];
            if widen && p == POLICIES / 2 {
                methods.push("DELETE");
            }
            json!({
                "name": format!("team-{p}"),
                "action": "ALLOW",
                "services": scoped,
                "rules": [{
                    "from": [{"source": {"principals": [format!("cluster.local/ns/team-{}/sa/*", p % 50)]}}],
                    "to": [{"operation": {"methods": methods, "paths": [format!("/api/v{}/*", p % 3), "/health"]}}],
                }],
            })
        })
        .collect();
    json!({"name": "gateway", "services": services, "authorization": authorization})
}

fn load(doc: &Value) -> Policy {
    compile::load(doc.to_string().as_bytes()).expect("the benchmark policy compiles")
}

fn bench(c: &mut Criterion) {
    let (old, new) = (load(&document(false)), load(&document(true)));
    let same = load(&document(false));
    // What the benchmark measures must be what it claims.
    let changed = warden_diff::diff(&old, &new);
    assert!(changed.widens() && changed.changes.iter().all(|c| c.new.policy.as_deref() == Some("team-500")));
    assert!(!warden_diff::diff(&old, &same).any());

    let mut group = c.benchmark_group("diff");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    // The baseline measured in the same run: reading the two policies
    // (what every command does before its work).
    let (a, b) = (document(false).to_string(), document(true).to_string());
    group.bench_function("baseline: compile both policies", |bench| {
        bench.iter(|| (compile::load(a.as_bytes()).is_ok(), compile::load(b.as_bytes()).is_ok()))
    });
    group.bench_function("10k services, 1k policies, one rule changed", |b| b.iter(|| warden_diff::diff(&old, &new)));
    group.bench_function("10k services, 1k policies, identical", |b| b.iter(|| warden_diff::diff(&old, &same)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
