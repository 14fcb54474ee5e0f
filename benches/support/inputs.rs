//! The DLP benchmarks' inputs, shared by `benches/dlp.rs` and
//! `benches/dlp_filter.rs` (and reproduced by `scripts/v8-dlp-bench.js`):
//! the same bytes everywhere, so figures compare.

use std::path::Path;

/// ~1 MiB of realistic clean JSON: the negative corpus's API responses,
/// logs and base64 images.
pub fn corpus() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("engine/tests/data/dlp/corpus");
    let mut data = Vec::new();
    for name in ["orders.json", "events.jsonl", "images.json"] {
        match std::fs::read(dir.join(name)) {
            Ok(bytes) => data.extend(bytes),
            Err(e) => {
                eprintln!("cannot read the corpus ({name}): {e}");
                std::process::exit(1);
            }
        }
    }
    data.truncate(1 << 20);
    data
}

/// JSON whose values are long digit runs (order ids, timestamps, amounts):
/// every numeric detector's candidate path runs.
pub fn digit_dense(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 128);
    let mut n: u64 = 7_340_123_456_789;
    while out.len() < size {
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let id = 1_000_000_000_000_000 + n % 8_000_000_000_000_000;
        let ts = 1_700_000_000_000 + n % 100_000_000_000;
        out.extend(format!("{{\"order\":{id},\"ts\":{ts},\"amount\":{}.{:02}}},", n % 100_000, n % 100).as_bytes());
    }
    out
}
