//! DLP scan throughput with the whole default catalogue, natively, next to
//! the baseline the issue names: a naive `regex::bytes::RegexSet` of the
//! same patterns over the same bytes, measured in the same run.
//!
//! Inputs: ~1 MiB of realistic clean JSON (the negative corpus's API
//! responses, logs and base64 images) and a digit-dense worst case (JSON
//! full of long numeric ids). Each is scanned whole (`warden-scanner`: with
//! the AVX2 loop where the CPU has it) and streamed in 16 KiB chunks as a
//! filter sees a body (`warden-stream-16KiB`, which rescans what the stream
//! keeps before each chunk), and whole with the portable loop alone
//! (`warden-scanner-portable`: sixteen bytes at a time with SSE2, as on a
//! CPU without AVX2) and without SIMD (`warden-scanner-no-simd`: digits
//! found eight bytes at a time in 64-bit words).
//! `cargo bench --bench dlp`.
//!
//! Note: the root package's `regex` dev-dependency turns on the regex
//! crate's default (`perf`) features, which the filter builds without; the
//! scanner runs a regex only on candidates, so its figures hardly depend on
//! them, but the baseline's do.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use regex::bytes::RegexSet;
use std::hint::black_box;
use warden::engine::dlp::scanner::{Scanner, StreamState};
use warden::engine::dlp::CATALOGUE;

#[path = "support/inputs.rs"]
mod inputs;
use inputs::{corpus, digit_dense};

fn scan(c: &mut Criterion) {
    let all: Vec<_> = CATALOGUE.iter().collect();
    let scanner = Scanner::new(&all, Vec::new()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let portable = Scanner::new(&all, Vec::new()).map(Scanner::portable).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let scalar = Scanner::new(&all, Vec::new()).map(Scanner::scalar).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let baseline = RegexSet::new(CATALOGUE.iter().map(|d| d.pattern)).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    for (name, data) in [("clean-json-1MiB", corpus()), ("digit-dense-1MiB", digit_dense(1 << 20))] {
        let mut group = c.benchmark_group(format!("dlp/{name}"));
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.sample_size(20);
        group.bench_function("warden-scanner", |b| b.iter(|| black_box(scanner.scan(black_box(&data))).len()));
        group
            .bench_function("warden-scanner-portable", |b| b.iter(|| black_box(portable.scan(black_box(&data))).len()));
        group.bench_function("warden-scanner-no-simd", |b| b.iter(|| black_box(scalar.scan(black_box(&data))).len()));
        group.bench_function("warden-stream-16KiB", |b| {
            b.iter(|| {
                let mut state = StreamState::new();
                let chunks: Vec<&[u8]> = data.chunks(16 * 1024).collect();
                let mut found = 0;
                for (n, chunk) in chunks.iter().enumerate() {
                    found += state.feed(&scanner, black_box(chunk), n + 1 == chunks.len()).len();
                }
                found
            })
        });
        group.bench_function("regexset-baseline", |b| {
            b.iter(|| black_box(baseline.matches(black_box(&data))).matched_any())
        });
        group.finish();
    }
}

criterion_group!(benches, scan);
criterion_main!(benches);
