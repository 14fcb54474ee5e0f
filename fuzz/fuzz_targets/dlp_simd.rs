//! The DLP scanner's three table loops (AVX2 where the CPU has it, the
//! portable one with the target's sixteen-byte SIMD, and without SIMD):
//! on any bytes, the same findings, and exactly those of the reference
//! scan (every catalogue pattern over the whole input).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warden_engine::dlp::scanner::Scanner;
use warden_engine::dlp::{reference_scan, CATALOGUE};

/// The whole catalogue, as built, with the portable loop alone, and
/// without SIMD, built once.
fn scanners() -> &'static (Scanner, Scanner, Scanner) {
    static SCANNERS: OnceLock<(Scanner, Scanner, Scanner)> = OnceLock::new();
    SCANNERS.get_or_init(|| {
        let all: Vec<_> = CATALOGUE.iter().collect();
        let build = || Scanner::new(&all, Vec::new()).expect("the catalogue compiles");
        (build(), build().portable(), build().scalar())
    })
}

fuzz_target!(|data: &[u8]| {
    let (simd, portable, scalar) = scanners();
    let hits = simd.scan(data);
    assert_eq!(hits, portable.scan(data), "the scanner and its portable loop disagree");
    assert_eq!(hits, scalar.scan(data), "SIMD and scalar masks disagree");
    let mut found: Vec<(&str, usize, usize)> =
        hits.iter().map(|h| (simd.detectors()[h.detector].id.as_str(), h.span.start, h.span.end)).collect();
    found.sort_unstable();
    let mut want: Vec<(&str, usize, usize)> = reference_scan(data).into_iter().map(|f| (f.id, f.start, f.end)).collect();
    want.sort_unstable();
    assert_eq!(found, want, "the scanner and the reference scan disagree");
});
