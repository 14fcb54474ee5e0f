//! `warden replay` throughput: lines of an Istio-style JSON access log
//! (`tests/cli/replay_log.rs`, ~640 bytes a line, ten request shapes: every
//! outcome, a secret in one query) replayed against
//! `tests/cli/fixtures/replay/policy.yaml` — scanned, built into a request,
//! decided, counted — through the compiled filter in the harness (one VM,
//! reused) and through the native engine, on the same lines in the same run;
//! the same without the policy's DLP (headers and query); and the line
//! scanning alone.
//!
//! `cargo bench --bench replay`. Goal: at least 200,000 lines/s on one core
//! through the filter. Besides criterion's wall-clock figures, each replay
//! is also timed in the thread's own CPU time (Linux
//! `/proc/thread-self/schedstat`), which other processes on a shared
//! machine do not inflate: that is the one-core figure.

use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use warden::harness::{Host, HostOptions};
use warden::replay::{self, Decider, Options, PrincipalSource};

#[path = "../tests/cli/replay_log.rs"]
#[allow(dead_code)]
mod replay_log;

/// Lines per iteration.
const LINES: u64 = 5_000;
/// CPU time each one-core figure is measured over.
const CPU_BUDGET_NS: u64 = 2_000_000_000;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Runs `run` (which handles `items`) for [`CPU_BUDGET_NS`] of this
/// thread's CPU time: (name, items per CPU-second, CPU ns per item).
fn one_core_figure<T>(name: &str, items: u64, run: &mut impl FnMut() -> T) -> Option<(String, f64, f64)> {
    let start = thread_cpu_ns()?;
    let (mut runs, mut used) = (0u64, 0u64);
    while used < CPU_BUDGET_NS || runs < 3 {
        black_box(run());
        runs += 1;
        used = thread_cpu_ns().unwrap_or(start).saturating_sub(start);
    }
    let handled = (runs * items) as f64;
    Some((name.to_owned(), handled / (used as f64 / 1e9), used as f64 / handled))
}

/// The requests `warden replay` builds from the log's lines.
fn built_requests(log: &[u8], config: &[u8], options: &Options) -> Vec<warden::harness::Request> {
    let mut builder = replay::RequestBuilder::for_config(config);
    let mut out = Vec::new();
    for line in log.split(|b| *b == b'\n') {
        let Some(entry) = replay::parse_entry(line, options) else { continue };
        if entry.authority.is_some() && entry.method.is_some() && entry.path.is_some() {
            out.push(builder.build(&entry, entry.principal.as_deref()).clone());
        }
    }
    out
}

/// A policy's configuration, and the same without `dlp`.
fn configs() -> [(&'static str, Vec<u8>); 2] {
    let config = warden::testing::runner::load_policy(&[Path::new(replay_log::POLICY).to_owned()])
        .unwrap_or_else(|e| fail("the policy", e))
        .config;
    let mut doc: serde_json::Value = serde_json::from_slice(&config).unwrap_or_else(|e| fail("the policy", e));
    if let Some(map) = doc.as_object_mut() {
        map.remove("dlp");
    }
    let without = serde_json::to_vec(&doc).unwrap_or_else(|e| fail("the policy", e));
    [("", config), ("-no-dlp", without)]
}

fn bench(c: &mut Criterion) {
    let mut log = Vec::new();
    let expected = replay_log::write(&mut log, LINES, 7).unwrap_or_else(|e| fail("the log", e));
    let host = Host::new(warden::FILTER_WASM, HostOptions::default()).unwrap_or_else(|e| fail("the filter", e));
    let options = Options {
        principal: PrincipalSource::Field(replay_log::PRINCIPAL_FIELD.into()),
        examples: 3,
        ..Options::default()
    };
    let mut one_core = Vec::new();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(expected.lines));
    group.sample_size(20);
    for (suffix, config) in configs() {
        let policy = warden::engine::compile::load(&config).unwrap_or_else(|e| fail("the policy", e));
        let mut filter = Decider::filter(&host, &config).unwrap_or_else(|e| fail("the filter's VM", e));
        let mut native = Decider::Native(Box::new(policy));
        // Both must count the same before either is timed.
        let mut counts = Vec::new();
        for decider in [&mut filter, &mut native] {
            let report = replay::replay(log.as_slice(), decider, &config, &options, &mut |_| {})
                .unwrap_or_else(|e| fail("replay", e));
            if report.requests != expected.requests || report.errors.count != 0 {
                fail("replay", format!("{} requests, {} errors", report.requests, report.errors.count));
            }
            counts.push(warden::engine::Outcome::ALL.map(|k| report.count(k)));
        }
        if counts.first() != counts.last() {
            fail("replay", format!("the filter and the native engine disagree: {counts:?}"));
        }
        for (name, decider) in [("filter", &mut filter), ("native", &mut native)] {
            let mut run = || {
                let report = replay::replay(black_box(log.as_slice()), decider, &config, &options, &mut |_| {});
                black_box(report.map(|r| r.requests).unwrap_or_default())
            };
            group.bench_function(format!("{name}{suffix}"), |b| b.iter(&mut run));
            if let Some(figure) = one_core_figure(&format!("replay/{name}{suffix}"), expected.lines, &mut run) {
                one_core.push(figure);
            }
        }
    }
    // The filter alone on the same requests, built beforehand: what the
    // harness and the filter cost, without scanning lines or counting.
    let (_, config) = configs().into_iter().next().unwrap_or_else(|| fail("the policy", "none"));
    let requests = built_requests(&log, &config, &options);
    let mut vm = host.vm(&config).unwrap_or_else(|e| fail("the filter's VM", e));
    let mut run_only = || {
        for request in &requests {
            black_box(vm.run(black_box(request)).status);
        }
    };
    group.bench_function("filter-decide-only", |b| b.iter(&mut run_only));
    if let Some(figure) = one_core_figure("replay/filter-decide-only", requests.len() as u64, &mut run_only) {
        one_core.push(figure);
    }
    group.bench_function("parse-only", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for line in black_box(log.as_slice()).split(|b| *b == b'\n') {
                if let Some(entry) = replay::parse_entry(line, &options) {
                    found += u64::from(entry.authority.is_some());
                }
            }
            black_box(found)
        })
    });
    group.finish();
    println!("\none core (thread CPU time):");
    for (name, per_second, ns) in one_core {
        println!("  {name:<24} {:>9.0} lines/s  ({:.2} µs a line)", per_second, ns / 1000.0);
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
