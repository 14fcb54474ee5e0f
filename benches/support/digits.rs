//! The digit-dense benchmark input, shared by the root package's
//! benchmarks (through `inputs.rs`) and the engine's `dlp_scan` example.

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
