//! DLP over a body that arrives in pieces: whatever the chunk boundaries,
//! the scan finds exactly what one pass over the whole body finds (the
//! same detectors at the same offsets), and REDACT forwards the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warden_engine::{compile, FakeAttributes, Policy};

/// The policies, compiled once: compiling the detector catalogue costs
/// far more than one input.
fn policies() -> &'static [(&'static str, Policy); 2] {
    static POLICIES: OnceLock<[(&str, Policy); 2]> = OnceLock::new();
    POLICIES.get_or_init(|| [("AUDIT", policy("AUDIT")), ("REDACT", policy("REDACT"))])
}

fn policy(action: &str) -> Policy {
    let doc = format!(
        r#"{{"name": "d", "outboundTrafficPolicy": "ALLOW_ANY",
            "dlp": [{{"name": "all", "action": "{action}", "scan": ["body"], "onOversize": "ALLOW"}}]}}"#
    );
    compile::load(doc.as_bytes()).expect("the fuzz policy compiles")
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else { return };
    let Some((&splits, body)) = rest.split_first() else { return };
    if body.is_empty() {
        return;
    }
    let content_type = ["application/json", "application/x-www-form-urlencoded", "text/plain"][usize::from(shape % 3)];
    let request = FakeAttributes::request("POST", "api.example.com", "/").header("content-type", content_type);
    // Up to 8 boundaries, from the split byte's bits and the body length.
    let mut cuts: Vec<usize> = (0..8).filter(|b| splits & (1 << b) != 0).map(|b| (body.len() * (b + 1)) / 9).collect();
    cuts.dedup();
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain([body.len()]) {
        if cut > from {
            chunks.push(&body[from..cut]);
            from = cut;
        }
    }
    for (action, p) in policies() {
        let whole = p.process(&request, &[body]);
        let pieces = p.process(&request, &chunks);
        assert_eq!(whole.record, pieces.record, "{action}: {} chunks", chunks.len());
        assert_eq!(whole.forwarded_body, pieces.forwarded_body, "{action}: {} chunks", chunks.len());
    }
});
