//! DLP scan throughput *inside the filter*: request bodies streamed in
//! 64 KiB chunks through Warden's compiled filter in the harness
//! (wasmtime), next to the issue's baseline run the same way on the same
//! bytes in the same run: `benches/regexset-filter`, a proxy-wasm filter
//! that matches each chunk against a naive `regex::bytes::RegexSet` of the
//! whole default catalogue.
//!
//! Filters, per input:
//!
//! - `warden-audit`: Warden with one AUDIT policy of the whole catalogue
//!   (the body streams: each chunk is scanned and let go, nothing held);
//! - `regexset-baseline`: the RegexSet filter (no carry, no validators, no
//!   decoding: the regexes alone), its regex crate with the engine's
//!   features (`std` only, as in Warden's filter);
//! - `regexset-perf-baseline`: the same with the regex crate's `perf`
//!   features (lazy DFA, literal prefilters): the naive set at its fastest;
//! - `warden-audit-one-chunk`, `warden-audit-16KiB-chunks`: Warden's AUDIT
//!   run on the same body in one chunk and in 16 KiB chunks;
//! - `warden-no-dlp`: Warden without DLP, the same request: what a
//!   request with a body costs in the harness without any scanning (hook
//!   calls, the harness copying chunks into and out of its buffers).
//!
//! Inputs, as in `benches/dlp.rs`: the negative corpus's realistic clean
//! JSON (API responses, logs, base64 images; ~0.92 MiB) and a digit-dense
//! worst case (1 MiB of JSON full of long numeric ids and timestamps).
//!
//! `cargo bench --bench dlp_filter`. Builds both baselines first (`cargo
//! build -p regexset-filter --target wasm32-wasip1 --profile wasm
//! --target-dir target/wasm`, and with `--features perf` into
//! `target/wasm-regex-perf`; cached).

#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use warden::engine::dlp::scanner::Scanner;
use warden::engine::dlp::CATALOGUE;
use warden::harness::{Host, HostOptions, Outcome, Request, Vm};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Body chunk size: what Envoy typically hands a filter per data callback.
const CHUNK: usize = 64 << 10;

/// The whole catalogue, AUDIT: the body is scanned as it streams.
const DLP_POLICY: &str =
    r#"{"name":"bench","outboundTrafficPolicy":"ALLOW_ANY","dlp":[{"name":"audit","action":"AUDIT"}]}"#;
const NO_DLP_POLICY: &str = r#"{"name":"bench","outboundTrafficPolicy":"ALLOW_ANY"}"#;

#[path = "support/inputs.rs"]
mod inputs;
use inputs::{corpus, digit_dense};
#[path = "support/wasm_cargo.rs"]
mod wasm_cargo;

/// A JSON POST of `body` in [`CHUNK`]-sized chunks.
fn request(body: &[u8]) -> Request {
    let mut request = Request::new("POST", "api.example.com", "/v1/upload").header("content-type", "application/json");
    for chunk in body.chunks(CHUNK) {
        request = request.chunk(chunk.to_vec());
    }
    request
}

/// Builds the RegexSet filter for wasm32-wasip1 (profile `wasm`: opt-level
/// 3, LTO, like Warden's) into `target/<target_dir>`, as the harness tests
/// build theirs; returns the module. `perf`: with the regex crate's `perf`
/// features, in its own target directory (features are unified per build).
fn regexset_wasm(perf: bool) -> Vec<u8> {
    let root = Path::new(ROOT);
    let target_dir = root.join("target").join(if perf { "wasm-regex-perf" } else { "wasm" });
    let mut cmd = wasm_cargo::wasm_cargo(root);
    cmd.args(["build", "--package", "regexset-filter", "--lib", "--target", "wasm32-wasip1", "--profile", "wasm"])
        .arg("--target-dir")
        .arg(&target_dir);
    if perf {
        cmd.args(["--features", "perf"]);
    }
    let output = cmd.output().expect("running cargo to build the RegexSet filter");
    assert!(
        output.status.success(),
        "building the RegexSet filter failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path: PathBuf = target_dir.join("wasm32-wasip1/wasm/regexset_filter.wasm");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs `request`, which must go through whole.
fn forward(vm: &mut Vm, request: &Request, len: usize) -> Outcome {
    let outcome = vm.run(request);
    assert_eq!(outcome.fault, None, "logs: {:?}", outcome.logs);
    let body = outcome.forwarded.as_ref().map(|f| f.body.len());
    assert_eq!(body, Some(len), "status {}, logs: {:?}", outcome.status, outcome.logs);
    outcome
}

fn dlp_filter(c: &mut Criterion) {
    let options = HostOptions::default;
    let warden = Host::new(warden::FILTER_WASM, options()).unwrap_or_else(|e| panic!("{e}"));
    let regexset = Host::new(&regexset_wasm(false), options()).unwrap_or_else(|e| panic!("{e}"));
    let regexset_perf = Host::new(&regexset_wasm(true), options()).unwrap_or_else(|e| panic!("{e}"));
    let mut audit = warden.vm(DLP_POLICY.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut no_dlp = warden.vm(NO_DLP_POLICY.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut baseline = regexset.vm(b"").unwrap_or_else(|e| panic!("{e}"));
    let mut baseline_perf = regexset_perf.vm(b"").unwrap_or_else(|e| panic!("{e}"));

    // The body path is live: a key in the middle of a chunk is recorded.
    let mut planted = corpus();
    planted.truncate(3 * CHUNK);
    let at = CHUNK + 1000;
    planted.splice(at..at + 22, b"\"AKIAZ7VQ2XK4MHL3RWTN\"".iter().copied());
    let outcome = forward(&mut audit, &request(&planted), planted.len());
    let record = outcome.filter_state_str("wasm.warden.decision").unwrap_or_default();
    assert!(record.contains("aws_access_key_id"), "the AUDIT policy did not scan the body: {record}");

    let all: Vec<_> = CATALOGUE.iter().collect();
    let window = Scanner::new(&all, Vec::new()).map(|s| s.window()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "scan window {window} bytes: each chunk after the first is scanned with the last {} bytes before it",
        2 * window
    );

    for (name, data) in [("clean-json", corpus()), ("digit-dense-1MiB", digit_dense(1 << 20))] {
        let request = request(&data);
        // Check each filter once before timing, and say what each found.
        let record =
            forward(&mut audit, &request, data.len()).filter_state_str("wasm.warden.decision").unwrap_or_default();
        let findings: serde_json::Value = serde_json::from_str(&record).expect("the decision record is JSON");
        forward(&mut no_dlp, &request, data.len());
        let mut matched = [0; 2];
        for (vm, matched) in [&mut baseline, &mut baseline_perf].into_iter().zip(&mut matched) {
            let before = vm.metric("regexset.matches").unwrap_or(0);
            forward(vm, &request, data.len());
            *matched = vm.metric("regexset.matches").unwrap_or(0) - before;
        }
        assert_eq!(matched[0], matched[1], "both RegexSet filters match the same");
        eprintln!(
            "{name}: {} bytes in {} chunks; Warden findings {}; RegexSet patterns matched (summed over chunks) {}",
            data.len(),
            request.body_chunks.len(),
            findings["findings"],
            matched[0]
        );

        let mut group = c.benchmark_group(format!("dlp-filter/{name}"));
        group.throughput(Throughput::Bytes(data.len() as u64));
        // The baseline takes about a second per body: flat sampling, the
        // fewest samples criterion takes.
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.bench_function("warden-audit", |b| b.iter(|| black_box(audit.run(black_box(&request))).status));
        group.bench_function("regexset-baseline", |b| b.iter(|| black_box(baseline.run(black_box(&request))).status));
        group.bench_function("regexset-perf-baseline", |b| {
            b.iter(|| black_box(baseline_perf.run(black_box(&request))).status)
        });
        // The same body in one chunk (no window carried over and scanned
        // again, one hook call) and in 16 KiB chunks (HTTP/2 DATA frames
        // and TLS records are at most 16 KiB): what chunking costs.
        let one_chunk = Request { body_chunks: vec![data.clone()], ..request.clone() };
        let small_chunks =
            Request { body_chunks: data.chunks(16 << 10).map(<[u8]>::to_vec).collect(), ..request.clone() };
        group.bench_function("warden-audit-one-chunk", |b| {
            b.iter(|| black_box(audit.run(black_box(&one_chunk))).status)
        });
        group.bench_function("warden-audit-16KiB-chunks", |b| {
            b.iter(|| black_box(audit.run(black_box(&small_chunks))).status)
        });
        group.bench_function("warden-no-dlp", |b| b.iter(|| black_box(no_dlp.run(black_box(&request))).status));
        group.finish();
    }
}

criterion_group!(benches, dlp_filter);
criterion_main!(benches);
