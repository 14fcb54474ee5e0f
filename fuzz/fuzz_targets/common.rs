//! What several targets share: requests that exercise every attribute.

#![allow(dead_code)]

use warden_engine::FakeAttributes;

/// A spread of requests: principals, hosts with ports, repeated headers,
/// forwarded and direct addresses, XFCC.
pub fn requests() -> Vec<FakeAttributes> {
    vec![
        FakeAttributes::get("httpbin.org", "/get"),
        FakeAttributes::request("POST", "httpbin.org:443", "/post?x=1").principal("cluster.local/ns/default/sa/admin"),
        FakeAttributes::get("api.example.com", "/v1/a/../b").principal("td1/ns/dev/sa/x").source_ip("10.1.2.3"),
        FakeAttributes::get("evil.com:8080", "//admin").forwarded_source_ip("203.0.113.9").destination_port(8080),
        FakeAttributes::request("DELETE", "a.example.com", "/x")
            .peer_certificate(&["spiffe://cluster.local/ns/a/sa/b", "spiffe://old/ns/c/sa/d"], &["d.example"])
            .add_header("x-abc", "ok")
            .add_header("x-abc", "bad")
            .header("x-forwarded-client-cert", "Hash=1;URI=spiffe://cluster.local/ns/x/sa/y")
            .header("x-principal", "cluster.local/ns/z/sa/w"),
    ]
}
