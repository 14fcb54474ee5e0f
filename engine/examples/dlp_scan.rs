//! The DLP scanner alone, built as the filter builds it (the engine's own
//! `regex` features, no `perf`), over the benchmark inputs: a probe for
//! `scripts/dlp-scan-cost.sh`, which counts its instructions per scan with
//! callgrind (exact and repeatable on a shared machine, where timings are
//! not), and a quick wall-clock figure.
//!
//! ```sh
//! cargo run -p warden-engine --features internals --release --example dlp_scan -- \
//!     [--input clean|digits|form|manifests|lockfile|headers] [--reps N] [--portable] [--no-simd] [--only ID...] [--without ID...]
//! ```
//!
//! The inputs are the bytes of `benches/support/inputs.rs`: the negative
//! corpus's orders, logs and base64 images (0.92 MiB), and 1 MiB of JSON of
//! long numeric ids and timestamps. The other three are payloads of other
//! kinds from the corpus, each scanned whole: `form` its form bodies
//! (98 KiB of `application/x-www-form-urlencoded`, a body a line, not
//! decoded), `manifests` its Kubernetes manifests, Helm values and CI
//! workflows (148 KiB of YAML), `lockfile` its npm lockfile (257 KiB of
//! JSON, a URL and an integrity hash every few lines). `headers` is a
//! request's twelve header lines, each scanned alone as the policy scans
//! them, a thousand times a scan: the cost of a scan's set-up, which a
//! body amortizes and a header line does not.

use std::path::Path;
use std::time::Instant;
use warden_engine::dlp::classes;
use warden_engine::dlp::scanner::Scanner;
use warden_engine::dlp::CATALOGUE;

#[path = "../../benches/support/digits.rs"]
mod digits;

fn corpus() -> Result<Vec<u8>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dlp/corpus");
    let mut data = Vec::new();
    for name in ["orders.json", "events.jsonl", "images.json"] {
        data.extend(std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?);
    }
    data.truncate(1 << 20);
    Ok(data)
}

/// One file of the negative corpus: `form.txt` (`csrf_token=…&…`),
/// `manifests.yaml`, `package-lock.json`.
fn corpus_file(name: &str) -> Result<Vec<u8>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dlp/corpus").join(name);
    std::fs::read(&path).map_err(|e| format!("{name}: {e}"))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("dlp_scan: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let (mut input, mut reps, mut only, mut without) = (None, 20usize, Vec::new(), Vec::new());
    let mut args = std::env::args().skip(1);
    let mut list: Option<bool> = None;
    let (mut simd, mut portable) = (classes::SIMD, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = args.next(),
            "--no-simd" => simd = false,
            "--portable" => portable = true,
            "--reps" => reps = args.next().and_then(|n| n.parse().ok()).ok_or("--reps takes a number")?,
            "--only" => list = Some(true),
            "--without" => list = Some(false),
            id if list == Some(true) => only.push(id.to_owned()),
            id if list == Some(false) => without.push(id.to_owned()),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    for id in only.iter().chain(&without) {
        if !CATALOGUE.iter().any(|d| d.id == id) {
            return Err(format!("no detector {id}"));
        }
    }
    let chosen: Vec<_> = CATALOGUE
        .iter()
        .filter(|d| (only.is_empty() || only.iter().any(|o| o == d.id)) && !without.iter().any(|w| w == d.id))
        .collect();
    let scanner = Scanner::new(&chosen, Vec::new()).map_err(|e| e.to_string())?;
    let scanner = match (simd, portable) {
        (false, _) => scanner.scalar(),
        (true, true) => scanner.portable(),
        (true, false) => scanner,
    };
    // Each input is the pieces scanned one at a time: a body whole, or
    // header lines.
    let inputs: [(&str, Vec<Vec<u8>>); 6] = [
        ("clean", vec![corpus()?]),
        ("digits", vec![digits::digit_dense(1 << 20)]),
        ("form", vec![corpus_file("form.txt")?]),
        ("manifests", vec![corpus_file("manifests.yaml")?]),
        ("lockfile", vec![corpus_file("package-lock.json")?]),
        ("headers", HEADERS.iter().cycle().take(HEADERS.len() * 1000).map(|l| l.as_bytes().to_vec()).collect()),
    ];
    for (name, pieces) in inputs.iter().filter(|(n, _)| input.as_deref().is_none_or(|i| i == *n)) {
        let mut times = Vec::with_capacity(reps);
        let mut found = 0;
        for _ in 0..reps {
            let start = Instant::now();
            found =
                pieces.iter().map(|data| std::hint::black_box(scanner.scan(std::hint::black_box(data))).len()).sum();
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let (best, median) =
            (times.first().copied().unwrap_or(f64::MAX), times.get(reps / 2).copied().unwrap_or(f64::MAX));
        let mib = pieces.iter().map(Vec::len).sum::<usize>() as f64 / (1 << 20) as f64;
        let digits = match (simd, portable) {
            (false, _) => "no SIMD",
            (true, true) => "SIMD, portable loop",
            (true, false) => "SIMD",
        };
        println!(
            "{name}: {:.0} MiB/s best of {reps}, {:.0} MiB/s median ({found} findings, {} detectors, {digits})",
            mib / best,
            mib / median,
            chosen.len()
        );
        if *name == "headers" {
            println!("headers: {:.0} ns a request of {} lines, best", best / 1000.0 * 1e9, HEADERS.len());
        }
    }
    Ok(())
}

/// A request's header lines, as the policy scans them (`name: value`).
const HEADERS: [&str; 12] = [
    "host: api.stripe.com",
    "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    "accept: application/json",
    "content-type: application/json",
    "authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
    "x-request-id: 5f2b1c9e-8d7a-4b3f-9e2d-1a6c4b8f0e3d",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "accept-encoding: gzip, deflate, br",
    "x-forwarded-for: 10.1.2.3",
    "content-length: 1234",
    "x-envoy-attempt-count: 1",
    "cookie: session=abc123; theme=dark",
];
