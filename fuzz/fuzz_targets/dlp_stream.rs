//! DLP over a body that arrives in pieces: whatever the chunk boundaries,
//! the scan finds exactly what one pass over the whole body finds (the
//! same detectors at the same offsets), and REDACT forwards the same bytes.
//! And the same text as a trailer is scanned as it is as a header: the same
//! findings, reported in the trailer, and the same masked value.

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

/// REDACT of the whole catalogue in headers (and so trailers).
fn headers_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let doc = r#"{"name": "h", "outboundTrafficPolicy": "ALLOW_ANY",
            "dlp": [{"name": "all", "action": "REDACT", "scan": ["headers"]}]}"#;
        compile::load(doc.as_bytes()).expect("the fuzz policy compiles")
    })
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

    // The body's text (a line of it) as a header and as a trailer.
    let text = String::from_utf8_lossy(body);
    let Some(value) = text.lines().next().map(str::trim).filter(|v| !v.is_empty() && !v.contains('\0')) else {
        return;
    };
    let p = headers_policy();
    let plain = || FakeAttributes::request("POST", "api.example.com", "/");
    let as_header = p.process(&plain().header("x-t", value), &[b"x"]);
    let as_trailer = p.process_with_trailers(&plain(), &[b"x"], &[("x-t", value)]);
    let at = |record: &str| {
        let v: serde_json::Value = serde_json::from_str(record).expect("a record is JSON");
        v["findingsAt"].to_string()
    };
    let want = at(&as_header.record).replace(r#""in":"header""#, r#""in":"trailer""#);
    assert_eq!(at(&as_trailer.record), want, "{value:?}");
    assert_eq!(as_trailer.trailer_edits, as_header.header_edits, "{value:?}");
});
