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

pub use digits::digit_dense;

#[path = "digits.rs"]
mod digits;
