//! The fast scanner against the reference scan: the same findings on every
//! detector sample, on the negative corpus, and when the data arrives in
//! chunks split anywhere.

use std::path::PathBuf;
use warden_engine::dlp::scanner::{Hit, Scanner, Stream};
use warden_engine::dlp::{reference_scan, CATALOGUE};

fn scanner() -> Scanner {
    let all: Vec<_> = CATALOGUE.iter().collect();
    Scanner::new(&all, Vec::new()).unwrap()
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dlp")
}

/// (id, start, end) triples, sorted.
fn fast(s: &Scanner, hits: &[Hit]) -> Vec<(String, usize, usize)> {
    let mut v: Vec<_> = hits.iter().map(|h| (s.detectors()[h.detector].id.clone(), h.span.start, h.span.end)).collect();
    v.sort();
    v
}

fn reference(data: &[u8]) -> Vec<(String, usize, usize)> {
    let mut v: Vec<_> = reference_scan(data).into_iter().map(|f| (f.id.to_owned(), f.start, f.end)).collect();
    v.sort();
    v
}

/// Every sample line of the detector data files, in three contexts.
fn samples() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let Some(sample) = line.strip_prefix("+ ").or_else(|| line.strip_prefix("- ")) else { continue };
            let sample = sample.replace("[[", "").replace("]]", "").replace('⏎', "\n");
            out.push(sample.clone().into_bytes());
            out.push(format!("{{\"note\": \"{sample}\"}}").into_bytes());
            out.push(format!("x {sample} y").into_bytes());
        }
    }
    assert!(out.len() > 28 * 30, "expected the detector data files, found {} samples", out.len());
    out
}

#[test]
fn scan_equals_the_reference_on_every_sample() {
    let s = scanner();
    let mut found = 0;
    for sample in samples() {
        let want = reference(&sample);
        found += want.len();
        assert_eq!(fast(&s, &s.scan(&sample)), want, "{}", String::from_utf8_lossy(&sample));
    }
    assert!(found > 28 * 5 * 3, "the samples must contain positives: {found}");
}

#[test]
fn streaming_finds_a_secret_split_anywhere() {
    let s = scanner();
    for sample in samples().iter().step_by(3) {
        let want = reference(sample);
        // Every cut for short samples; long ones (PEM keys, JWTs) every
        // few bytes, or the test takes minutes in a debug build.
        let step = if sample.len() > 300 { 37 } else { 1 };
        for cut in (0..=sample.len()).step_by(step) {
            let mut stream = Stream::new(&s);
            let (a, b) = sample.split_at(cut);
            let mut hits = stream.feed(a, false);
            hits.extend(stream.feed(b, true));
            assert_eq!(fast(&s, &hits), want, "cut at {cut}: {}", String::from_utf8_lossy(sample));
        }
    }
}

#[test]
fn the_negative_corpus_is_clean_whole_and_in_chunks() {
    let s = scanner();
    let corpus = data_dir().join("corpus");
    let mut bytes = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().and_then(|n| n.to_str()) == Some("README.md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        bytes += data.len();
        let whole = s.scan(&data);
        assert_eq!(fast(&s, &whole), vec![], "{}: findings on clean data", path.display());
        let mut stream = Stream::new(&s);
        let mut max_retained = 0;
        for chunk in data.chunks(4096) {
            assert!(stream.feed(chunk, false).is_empty(), "{}", path.display());
            max_retained = max_retained.max(stream.retained());
        }
        assert!(stream.feed(&[], true).is_empty());
        // Memory is bounded by the window, not by the body.
        assert!(max_retained <= 2 * 13_000, "{}: kept {max_retained} bytes", path.display());
    }
    assert!(bytes >= 1 << 20, "the corpus must be at least 1 MiB, is {bytes}");
}
