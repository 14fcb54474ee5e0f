//! The examples of Istio's AuthorizationPolicy reference, with the
//! decisions Istio documents for them.

use crate::*;
use serde_json::json;
use warden_engine::{FakeAttributes, Outcome};

const SLEEP: &str = "cluster.local/ns/default/sa/sleep";

/// "It allows requests from service account sleep or namespace test to
/// access the workload with GET at paths of prefix /info or POST at /data."
#[test]
fn allow_read_example() {
    let p = allow(json!([{
        "from": [
            {"source": {"principals": [SLEEP]}},
            {"source": {"namespaces": ["test"]}}
        ],
        "to": [
            {"operation": {"methods": ["GET"], "paths": ["/info*"]}},
            {"operation": {"methods": ["POST"], "paths": ["/data"]}}
        ]
    }]));
    let req = |m: &str, path: &str, who: &str| FakeAttributes::request(m, "httpbin.org", path).principal(who);
    assert_eq!(outcome(&p, &req("GET", "/info/x", SLEEP)), Outcome::Allow);
    assert_eq!(outcome(&p, &req("POST", "/data", "cluster.local/ns/test/sa/any")), Outcome::Allow);
    assert_eq!(outcome(&p, &req("POST", "/info", SLEEP)), Outcome::Denied);
    assert_eq!(outcome(&p, &req("GET", "/info", "cluster.local/ns/prod/sa/x")), Outcome::Denied);
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", "/info")), Outcome::Denied);
}

/// `spec: {}` with action ALLOW: deny all.
#[test]
fn deny_all_example() {
    let p = with_authz(json!([{"name": "deny-all"}]));
    assert_eq!(outcome(&p, &get().principal(SLEEP)), Outcome::Denied);
}

/// `rules: [{}]`: allow all.
#[test]
fn allow_all_example() {
    let p = with_authz(json!([{"name": "allow-all", "rules": [{}]}]));
    assert_eq!(outcome(&p, &FakeAttributes::request("DELETE", "httpbin.org", "/x")), Outcome::Allow);
}

/// "Deny requests not from namespace foo" (DENY with notNamespaces).
#[test]
fn deny_not_namespace_example() {
    let p = deny(json!([{"from": [{"source": {"notNamespaces": ["foo"]}}]}]));
    assert_eq!(outcome(&p, &get().principal("cluster.local/ns/foo/sa/a")), Outcome::Allow);
    assert_eq!(outcome(&p, &get().principal("cluster.local/ns/bar/sa/a")), Outcome::Denied);
    assert_eq!(outcome(&p, &get()), Outcome::Denied, "plaintext callers have no namespace");
}

/// The Operation example: host suffix `.example.com`, GET or HEAD, path not
/// prefixed by `/admin`.
#[test]
fn operation_example() {
    let p = allow(json!([{"to": [{"operation": {
        "hosts": ["*.example.com"], "methods": ["GET", "HEAD"], "notPaths": ["/admin*"]
    }}]}]));
    let req = |m: &str, host: &str, path: &str| FakeAttributes::request(m, host, path);
    assert_eq!(outcome(&p, &req("HEAD", "www.example.com", "/index")), Outcome::Allow);
    assert_eq!(outcome(&p, &req("GET", "www.example.com", "/admin/x")), Outcome::Denied);
    assert_eq!(outcome(&p, &req("POST", "www.example.com", "/index")), Outcome::Denied);
    assert_eq!(outcome(&p, &req("GET", "httpbin.org", "/index")), Outcome::Denied);
}

/// The Source example: principal admin or dev, namespace prod or test, IP
/// not 203.0.113.4.
#[test]
fn source_example() {
    let p = allow(json!([{"from": [{"source": {
        "principals": ["admin", "dev"], "namespaces": ["prod", "test"], "notIpBlocks": ["203.0.113.4"]
    }}]}]));
    // Istio's example uses bare names; a principal "admin" has no namespace,
    // so the example as written can never match. Istio behaves the same.
    assert_eq!(outcome(&p, &get().principal("admin").source_ip("10.0.0.1")), Outcome::Denied);
    let p = allow(json!([{"from": [{"source": {
        "principals": ["*/sa/admin", "*/sa/dev"], "namespaces": ["prod", "test"], "notIpBlocks": ["203.0.113.4"]
    }}]}]));
    let admin_prod = "cluster.local/ns/prod/sa/admin";
    assert_eq!(outcome(&p, &get().principal(admin_prod).source_ip("10.0.0.1")), Outcome::Allow);
    assert_eq!(outcome(&p, &get().principal(admin_prod).source_ip("203.0.113.4")), Outcome::Denied);
    assert_eq!(outcome(&p, &get().principal("cluster.local/ns/dev/sa/admin").source_ip("10.0.0.1")), Outcome::Denied);
}

/// The httpbin waypoint scenario: admin may do anything, others GET /get.
#[test]
fn httpbin_waypoint_scenario() {
    let p = policy(json!({
        "name": "httpbin-egress",
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [80]}],
        "authorization": [{
            "name": "httpbin", "action": "ALLOW", "services": ["httpbin.org"],
            "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"]}}]},
                {"to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]}
            ]
        }]
    }));
    let admin = "cluster.local/ns/default/sa/admin";
    let post = |who: Option<&str>| {
        let r = FakeAttributes::request("POST", "httpbin.org", "/post");
        match who {
            Some(w) => r.principal(w),
            None => r,
        }
    };
    assert_eq!(outcome(&p, &post(Some(admin))), Outcome::Allow);
    assert_eq!(outcome(&p, &post(Some(SLEEP))), Outcome::Denied);
    assert_eq!(outcome(&p, &post(None)), Outcome::Denied);
    assert_eq!(outcome(&p, &get().principal(SLEEP)), Outcome::Allow);
    assert_eq!(outcome(&p, &FakeAttributes::get("aliyun.com", "/")), Outcome::Unregistered);
    assert_eq!(p.response_for(&decide(&p, &post(Some(SLEEP)))).unwrap().body, "RBAC: access denied");
}
