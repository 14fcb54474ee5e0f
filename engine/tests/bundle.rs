//! The postcard bundle decides exactly like the JSON it was compiled from.

use crate::*;
use serde_json::json;
use warden_engine::{bundle, compile, FakeAttributes};

fn rich_policy_json() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "name": "bundle-test",
        "identity": [{"peerCertificate": {}}, {"header": "x-warden-principal"}],
        "pathNormalization": "DECODE_AND_MERGE_SLASHES",
        "rejectAmbiguousPaths": false,
        "services": [
            {"name": "httpbin.org", "hosts": ["httpbin.org", "*.httpbin.org"], "ports": [80, 443]},
            {"name": "example", "hosts": ["*.example.com"]}
        ],
        "authorization": [
            {"name": "deny-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin/{**}"]}}]}]},
            {"name": "httpbin", "action": "ALLOW", "services": ["httpbin.org"], "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"], "notIpBlocks": ["10.9.0.0/16"]}}]},
                {"to": [{"operation": {"methods": ["GET"], "paths": ["/get", "/status/{*}"]}}],
                 "when": [{"key": "request.headers[x-team]", "notValues": ["blocked"]}]}
            ]},
            {"name": "audit", "action": "AUDIT", "rules": [{}]},
            {"name": "dry", "action": "DENY", "dryRun": true, "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}
        ],
        "responses": {"denied": {"status": 401, "body": "nope"}}
    }))
    .unwrap()
}

#[test]
fn bundle_and_json_decide_identically() {
    let from_json = compile::load(&rich_policy_json()).unwrap();
    let bytes = bundle::encode(&from_json).unwrap();
    assert!(bytes.starts_with(bundle::MAGIC));
    let from_bundle = compile::load(&bytes).unwrap();
    assert_eq!(from_bundle.responses(), from_json.responses());

    let admin = "cluster.local/ns/default/sa/admin";
    let requests = vec![
        FakeAttributes::request("POST", "httpbin.org", "/post").principal(admin),
        FakeAttributes::request("POST", "httpbin.org", "/post").principal(admin).source_ip("10.9.1.1"),
        FakeAttributes::request("POST", "api.httpbin.org", "/post"),
        FakeAttributes::get("httpbin.org", "/get"),
        FakeAttributes::get("httpbin.org", "/get").header("x-team", "blocked"),
        FakeAttributes::get("httpbin.org", "/status/418"),
        FakeAttributes::get("httpbin.org", "/admin/x"),
        FakeAttributes::get("httpbin.org", "/%2Fadmin%2Fx"),
        FakeAttributes::request("DELETE", "a.example.com", "/x"),
        FakeAttributes::get("aliyun.com", "/"),
        FakeAttributes::get("httpbin.org:8080", "/get"),
        FakeAttributes::get("httpbin.org", "/get").header("x-warden-principal", admin),
    ];
    for req in &requests {
        let a = from_json.decide(req);
        let b = from_bundle.decide(req);
        assert_eq!(a, b, "{req:?}");
        assert_eq!(a.record(), b.record());
    }
}

#[test]
fn damaged_bundles_are_refused() {
    let p = compile::load(&rich_policy_json()).unwrap();
    let bytes = bundle::encode(&p).unwrap();
    // Another format version.
    let mut other = bytes.clone();
    other[bundle::MAGIC.len()] = other[bundle::MAGIC.len()].wrapping_add(1);
    let err = compile::load(&other).unwrap_err().to_string();
    assert!(err.contains("format version"), "{err}");
    // Truncated at every length: an error, never a panic or a partial policy.
    for len in bundle::MAGIC.len()..bytes.len() {
        assert!(compile::load(&bytes[..len]).is_err(), "truncated to {len} bytes");
    }
    // Trailing garbage.
    let mut long = bytes.clone();
    long.push(0);
    assert!(compile::load(&long).is_err());
    // Flipped bytes: never a panic (errors or, rarely, a different but
    // consistent policy).
    for i in (bundle::MAGIC.len() + 2..bytes.len()).step_by(7) {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x5a;
        if let Ok(p) = compile::load(&flipped) {
            let _ = p.decide(&get());
        }
    }
}
