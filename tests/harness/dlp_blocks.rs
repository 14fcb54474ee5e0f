//! The compiled filter's scanner finds digits sixteen bytes at a time with
//! wasm SIMD128: numbers of every numeric detector at every offset of a
//! block, and across blocks, are masked exactly where the reference scan
//! (every pattern over the whole body, natively) finds them, and nowhere
//! else. `e2e::dlp` sends the same body through Envoy.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use warden::harness::{Host, HostOptions, Request};
use warden_engine::dlp::reference_scan;

/// A REDACT policy of the whole catalogue for [`numbers_body`].
pub(crate) fn redact_policy() -> Value {
    json!({
        "name": "blocks",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "dlp": [{"name": "mask", "action": "REDACT", "maxBodyBytes": 4 << 20}]
    })
}

/// Lines of numbers of the numeric detectors (and a near miss) after 0 to
/// 16 bytes of padding, between digits, capitals, spaces and letters.
pub(crate) fn numbers_body() -> Vec<u8> {
    let numbers = [
        "4111 1111 1111 1111",
        "5555555555554444",
        "GB82 WEST 1234 5698 7654 32",
        "AB 12 34 56 C",
        "AB123456C",
        "078-05-1120",
        "078.05.1120",
        "11010519491231002X",
        "2345 6789 0124",
        "2345:6789:0124",
        "+86 138 1234 5678",
        "12 34",
    ];
    let fillers = ["", "x", "AB", "Q ", "12", "1 ", " ", "ZZ1"];
    let mut body = Vec::new();
    for number in numbers {
        for before in fillers {
            for after in fillers {
                for offset in 0..17 {
                    body.extend(format!("{}{before}{number}{after} 99\n", "a".repeat(offset)).into_bytes());
                }
            }
        }
    }
    body
}

/// `masked` is `body` with every reference finding masked and nothing
/// else changed, and `record` lists the reference's detectors.
pub(crate) fn assert_masked_as_the_reference(body: &[u8], masked: &[u8], record: &Value) {
    let want = reference_scan(body);
    let ids: BTreeSet<&str> = want.iter().map(|f| f.id).collect();
    assert!(ids.len() >= 6, "the body must hold findings of the numeric detectors: {ids:?}");
    let found: BTreeSet<&str> =
        record["findings"].as_array().expect("findings").iter().filter_map(Value::as_str).collect();
    assert_eq!(found, ids, "{record}");
    assert_eq!(masked.len(), body.len());
    let mut covered = vec![false; body.len()];
    for f in &want {
        covered[f.start..f.end].iter_mut().for_each(|c| *c = true);
        let line = body[..f.start].iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1);
        assert!(
            masked[f.start..f.end] != body[f.start..f.end],
            "{} not masked in {:?}",
            f.id,
            String::from_utf8_lossy(&body[line..f.end + 4])
        );
    }
    for (at, (a, b)) in body.iter().zip(masked).enumerate() {
        assert!(
            a == b || covered[at],
            "byte {at} changed outside every finding: {:?}",
            String::from_utf8_lossy(&masked[at.saturating_sub(30)..at + 10])
        );
    }
}

#[test]
fn numbers_at_every_offset_are_masked_where_the_reference_finds_them() {
    let body = numbers_body();
    let host = Host::new(warden::FILTER_WASM, HostOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut vm = host.vm(redact_policy().to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut request = Request::new("POST", "api.example.com", "/v1/notes").header("content-type", "text/plain");
    request.body_chunks = body.chunks(64 << 10).map(<[u8]>::to_vec).collect();
    let outcome = vm.run(&request);
    assert_eq!(outcome.status, 200, "logs: {:?}", outcome.logs);
    let record: Value =
        serde_json::from_str(&outcome.filter_state_str("wasm.warden.decision").expect("a record")).expect("JSON");
    let masked = &outcome.forwarded.as_ref().expect("forwarded").body;
    assert_masked_as_the_reference(&body, masked, &record);
}

/// The compiled filter finds the next escape of a JSON or form body sixteen
/// bytes at a time with wasm SIMD128: a card number whose first digit is
/// escaped (`\u0034`, `%34`), or a JSON string with an escaped quote
/// before it, is blocked wherever in a block the escape falls, and in one
/// chunk or cut right after the escape's first byte; the same text whose
/// escape is not one (`\\u0034`: an escaped backslash) or makes a letter
/// goes through.
#[test]
fn escapes_at_every_offset_are_decoded_before_the_scan() {
    let options = HostOptions { allow_on_headers_stop_iteration: true, ..HostOptions::default() };
    let host = Host::new(warden::FILTER_WASM, options).unwrap_or_else(|e| panic!("{e}"));
    let policy = json!({
        "name": "escapes",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "dlp": [{"name": "cards", "action": "BLOCK", "detectors": ["credit_card"]}]
    });
    let mut vm = host.vm(policy.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        ("application/json", r#"{"n": "PAD\u0034111 1111 1111 1111"}"#, 403),
        ("application/json", r#"{"n": "PAD\"\t4111 1111 1111 1111"}"#, 403),
        ("application/json", r#"{"n": "PAD\\u0034111 1111 1111 1111"}"#, 200),
        ("application/json", r#"{"n": "PAD\u0041111 1111 1111 1111"}"#, 200),
        ("application/x-www-form-urlencoded", "n=PAD%34111+1111+1111+1111", 403),
        ("application/x-www-form-urlencoded", "n=PAD%41111+1111+1111+1111", 200),
    ];
    for (content_type, template, want) in cases {
        for offset in 0..33 {
            let body = template.replace("PAD", &".".repeat(offset)).into_bytes();
            let escape = body.iter().position(|&b| b == b'\\' || b == b'%').expect("an escape");
            for cut in [None, Some(escape + 1)] {
                let mut request =
                    Request::new("POST", "api.example.com", "/v1/pay").header("content-type", content_type);
                request.body_chunks = match cut {
                    None => vec![body.clone()],
                    Some(cut) => vec![body[..cut].to_vec(), body[cut..].to_vec()],
                };
                let outcome = vm.run(&request);
                assert_eq!(
                    outcome.status,
                    want,
                    "{content_type} {:?} cut at {cut:?}: logs {:?}",
                    String::from_utf8_lossy(&body),
                    outcome.logs
                );
            }
        }
    }
}

/// The DLP negative corpus (`engine/tests/data/dlp/corpus`: API responses,
/// logs, base64 images, prose, form bodies, Kubernetes manifests, an npm
/// lockfile) sent through the compiled filter as the bodies they are, with
/// an AUDIT policy of the whole catalogue: no finding, with the JSON and
/// form bodies decoded as the filter decodes them (the engine's corpus test
/// scans the raw bytes). The same manifests with a Datadog key assigned in
/// them are found, so the policy does scan these bodies.
#[test]
fn the_negative_corpus_raises_no_finding_through_the_filter() {
    let host = Host::new(warden::FILTER_WASM, HostOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let policy = json!({
        "name": "corpus",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "dlp": [{"name": "audit", "action": "AUDIT", "maxBodyBytes": 4 << 20}]
    });
    let mut vm = host.vm(policy.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/engine/tests/data/dlp/corpus");
    let mut findings = |body: &[u8], content_type: &str| -> Vec<Value> {
        let mut request = Request::new("POST", "api.example.com", "/v1/upload").header("content-type", content_type);
        request.body_chunks = body.chunks(64 << 10).map(<[u8]>::to_vec).collect();
        let outcome = vm.run(&request);
        assert_eq!(outcome.status, 200, "logs: {:?}", outcome.logs);
        assert_eq!(outcome.forwarded.as_ref().expect("forwarded").body, body);
        let record: Value =
            serde_json::from_str(&outcome.filter_state_str("wasm.warden.decision").expect("a record")).expect("JSON");
        record["findings"].as_array().expect("findings").clone()
    };
    let files = [
        ("orders.json", "application/json"),
        ("events.jsonl", "application/x-ndjson"),
        ("images.json", "application/json"),
        ("prose.md", "text/markdown"),
        ("form.txt", "application/x-www-form-urlencoded"),
        ("manifests.yaml", "application/yaml"),
        ("package-lock.json", "application/json"),
    ];
    let mut bytes = 0;
    for (name, content_type) in files {
        let body = std::fs::read(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        bytes += body.len();
        assert_eq!(findings(&body, content_type), Vec::<Value>::new(), "{name}");
    }
    let listed = std::fs::read_dir(dir).expect("the corpus").count();
    assert_eq!(listed, files.len() + 1, "every corpus file but the README is sent");
    assert!(bytes > 1 << 20, "{bytes}");
    let mut planted = std::fs::read(format!("{dir}/manifests.yaml")).expect("manifests");
    planted.extend_from_slice(b"---\nenv:\n  DD_API_KEY: 3f9c2a7d1b8e4f60a5c9d2e7b1f4a8c3\n");
    assert_eq!(findings(&planted, "application/yaml"), vec![json!("datadog_api_key")]);
}
