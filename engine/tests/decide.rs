//! Decision order: bad request, registry, DENY → ALLOW → AUDIT,
//! dry-run, service scoping, and what the decision carries.

use crate::*;
use serde_json::json;
use warden_engine::{FakeAttributes, Outcome, Reason};

#[test]
fn no_policies_allow_registered_hosts() {
    let p = with_authz(json!([]));
    let d = decide(&p, &get());
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.reason, Reason::NoPolicy);
    assert_eq!(d.service, Some("httpbin.org"));
}

#[test]
fn registry_only_refuses_unregistered_hosts_and_ports() {
    let p = with_authz(json!([]));
    for (authority, want) in [
        ("httpbin.org", Outcome::Allow),
        ("httpbin.org:443", Outcome::Allow),
        ("httpbin.org:8080", Outcome::Unregistered),
        ("aliyun.com", Outcome::Unregistered),
        ("api.example.com:9999", Outcome::Allow),
        ("deep.api.example.com", Outcome::Allow),
        ("example.com", Outcome::Allow),
        ("notexample.com", Outcome::Unregistered),
    ] {
        assert_eq!(outcome(&p, &FakeAttributes::get(authority, "/")), want, "{authority}");
    }
}

#[test]
fn allow_any_lets_unregistered_hosts_through_unscoped_policies_only() {
    let p = policy(json!({
        "name": "t",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}],
        "authorization": [
            {"name": "scoped", "action": "ALLOW", "services": ["httpbin.org"], "rules": [{"to": [{"operation": {"paths": ["/get"]}}]}]},
            {"name": "global-deny", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/forbidden"]}}]}]}
        ]
    }));
    assert_eq!(outcome(&p, &FakeAttributes::get("aliyun.com", "/anything")), Outcome::Allow);
    assert_eq!(outcome(&p, &FakeAttributes::get("aliyun.com", "/forbidden")), Outcome::Denied);
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", "/anything")), Outcome::Denied);
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", "/get")), Outcome::Allow);
    assert_eq!(decide(&p, &FakeAttributes::get("aliyun.com", "/")).service, None);
}

#[test]
fn deny_wins_over_allow() {
    let p = with_authz(json!([
        {"name": "allow-all", "action": "ALLOW", "rules": [{}]},
        {"name": "no-post", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}, {"to": [{"operation": {"methods": ["POST"]}}]}]}
    ]));
    let d = decide(&p, &FakeAttributes::request("POST", "httpbin.org", "/post"));
    assert_eq!(d.outcome, Outcome::Denied);
    assert_eq!(d.reason, Reason::DenyPolicy);
    assert_eq!(d.policy, Some("no-post"));
    assert_eq!(d.rule, Some(1));
    let d = decide(&p, &get());
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.policy, Some("allow-all"));
    assert_eq!(d.rule, Some(0));
}

#[test]
fn any_applicable_allow_must_match() {
    let p = with_authz(json!([
        {"name": "gets", "action": "ALLOW", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]},
        {"name": "posts", "action": "ALLOW", "rules": [{"to": [{"operation": {"methods": ["POST"], "paths": ["/post"]}}]}]}
    ]));
    assert_eq!(decide(&p, &FakeAttributes::request("POST", "httpbin.org", "/post")).policy, Some("posts"));
    let d = decide(&p, &FakeAttributes::request("PUT", "httpbin.org", "/put"));
    assert_eq!(d.outcome, Outcome::Denied);
    assert_eq!(d.reason, Reason::NoAllowMatch);
    assert_eq!(d.policy, None);
}

#[test]
fn empty_rules_never_match_and_empty_rule_always_matches() {
    // ALLOW with no rules: deny everything (Istio's deny-all).
    assert_eq!(outcome(&allow(json!([])), &get()), Outcome::Denied);
    // ALLOW with one empty rule: allow everything.
    assert_eq!(outcome(&allow(json!([{}])), &get()), Outcome::Allow);
    // DENY with no rules never denies; DENY with an empty rule denies all.
    assert_eq!(outcome(&deny(json!([])), &get()), Outcome::Allow);
    assert_eq!(outcome(&deny(json!([{}])), &get()), Outcome::Denied);
}

#[test]
fn audit_never_changes_the_decision() {
    let p = with_authz(json!([
        {"name": "audit-gets", "action": "AUDIT", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}
    ]));
    let d = decide(&p, &get());
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.audit, vec!["audit-gets"]);
    let d = decide(&p, &FakeAttributes::request("POST", "httpbin.org", "/post"));
    assert_eq!(d.outcome, Outcome::Allow);
    assert!(d.audit.is_empty());
    // AUDIT is recorded on denied requests too.
    let p = with_authz(json!([
        {"name": "audit-all", "action": "AUDIT", "rules": [{}]},
        {"name": "deny-all", "action": "DENY", "rules": [{}]}
    ]));
    let d = decide(&p, &get());
    assert_eq!((d.outcome, d.audit), (Outcome::Denied, vec!["audit-all"]));
}

#[test]
fn dry_run_records_but_never_enforces() {
    let p = with_authz(json!([
        {"name": "would-deny-posts", "action": "DENY", "dryRun": true, "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]},
        {"name": "would-allow-gets", "action": "ALLOW", "dryRun": true, "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}
    ]));
    let post = decide(&p, &FakeAttributes::request("POST", "httpbin.org", "/post"));
    assert_eq!(post.outcome, Outcome::Allow, "dry-run must not enforce");
    assert_eq!(post.dry_run, vec!["would-deny-posts", "would-allow-gets"]);
    let get = decide(&p, &get());
    assert_eq!(get.outcome, Outcome::Allow);
    assert!(get.dry_run.is_empty(), "{:?}", get.dry_run);
    // A dry-run ALLOW does not make enforced ALLOW policies apply.
    assert_eq!(get.reason, Reason::NoPolicy);
}

#[test]
fn scoped_policies_apply_to_their_services_only() {
    let p = with_authz(json!([
        {"name": "httpbin-only-get", "action": "ALLOW", "services": ["httpbin.org"], "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]},
        {"name": "example-deny-admin", "action": "DENY", "services": ["example"], "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]}
    ]));
    assert_eq!(outcome(&p, &FakeAttributes::request("POST", "httpbin.org", "/post")), Outcome::Denied);
    assert_eq!(outcome(&p, &FakeAttributes::request("POST", "api.example.com", "/post")), Outcome::Allow);
    assert_eq!(outcome(&p, &FakeAttributes::get("api.example.com", "/admin/x")), Outcome::Denied);
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", "/admin/x")), Outcome::Allow);
}

#[test]
fn unscoped_and_scoped_policies_keep_document_order() {
    let p = with_authz(json!([
        {"name": "first", "action": "DENY", "services": ["httpbin.org"], "rules": [{}]},
        {"name": "second", "action": "DENY", "rules": [{}]},
        {"name": "third", "action": "DENY", "services": ["httpbin.org"], "rules": [{}]}
    ]));
    assert_eq!(decide(&p, &get()).policy, Some("first"));
    assert_eq!(decide(&p, &FakeAttributes::get("example.com", "/")).policy, Some("second"));
}

#[test]
fn principal_sources_first_hit_wins() {
    let doc = |identity: serde_json::Value| {
        policy(json!({
            "name": "t",
            "identity": identity,
            "services": [{"name": "h", "hosts": ["httpbin.org"]}]
        }))
    };
    let req = get()
        .principal("cluster.local/ns/a/sa/from-cert")
        .property(&["filter_state", "io.istio.peer_principal"], "spiffe://cluster.local/ns/b/sa/from-state")
        .header("x-forwarded-client-cert", "Hash=1;URI=spiffe://cluster.local/ns/c/sa/from-xfcc")
        .header("x-warden-principal", "cluster.local/ns/d/sa/from-header");
    let cases = [
        (json!([{"peerCertificate": {}}]), "cluster.local/ns/a/sa/from-cert"),
        (json!([{"filterState": "io.istio.peer_principal"}]), "cluster.local/ns/b/sa/from-state"),
        (json!([{"xfcc": {}}]), "cluster.local/ns/c/sa/from-xfcc"),
        (json!([{"header": "X-Warden-Principal"}]), "cluster.local/ns/d/sa/from-header"),
        (json!([{"filterState": "missing"}, {"xfcc": {}}]), "cluster.local/ns/c/sa/from-xfcc"),
    ];
    for (identity, want) in cases {
        let p = doc(identity.clone());
        assert_eq!(decide(&p, &req).principal.as_deref(), Some(want), "{identity}");
    }
    // Default: the peer certificate only; headers are never trusted by default.
    let p = policy(json!({"name": "t", "services": [{"name": "h", "hosts": ["httpbin.org"]}]}));
    let only_header = get().header("x-warden-principal", "cluster.local/ns/d/sa/from-header");
    assert_eq!(decide(&p, &only_header).principal, None);
}

#[test]
fn forwarded_path_is_the_normalized_one_with_query() {
    let p = allow(json!([{}]));
    let cases = [
        ("/get", None),
        ("/get?a=1&b=%2F", None),
        ("//get", Some("/get")),
        ("/a/../get?x=1", Some("/get?x=1")),
        ("/%67et", Some("/get")),
    ];
    for (raw, want) in cases {
        let d = decide(&p, &FakeAttributes::get("httpbin.org", raw));
        assert_eq!(d.outcome, Outcome::Allow, "{raw}");
        assert_eq!(d.forward_path.as_deref(), want, "{raw}");
    }
}

#[test]
fn malformed_requests_are_bad_requests() {
    let p = allow(json!([{}]));
    let cases = [
        ("no authority", get().without(":authority")),
        ("empty authority", get().header(":authority", "")),
        ("bad port", get().header(":authority", "httpbin.org:http")),
        ("no method", get().without(":method")),
        ("no path", get().without(":path")),
        ("lowercase method", get().header(":method", "get")),
        ("relative path", get().header(":path", "get")),
    ];
    for (name, req) in cases {
        assert_eq!(outcome(&p, &req), Outcome::BadRequest, "{name}");
    }
    // `Host` stands in for a missing `:authority`.
    let host_only = get().without(":authority").header("host", "httpbin.org");
    assert_eq!(outcome(&p, &host_only), Outcome::Allow);
}

#[test]
fn the_record_is_one_line_of_json_with_the_spec_fields() {
    let p = with_authz(
        json!([{"name": "deny-post", "action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}]),
    );
    let d = decide(
        &p,
        &FakeAttributes::request("POST", "httpbin.org", "/post?token=s3cr3t")
            .principal("cluster.local/ns/default/sa/sleep"),
    );
    let record = d.record();
    assert!(!record.contains('\n'));
    assert!(!record.contains("s3cr3t"), "request data must not leak into the record: {record}");
    let v: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(v["decision"], "denied");
    assert_eq!(v["policy"], "deny-post");
    assert_eq!(v["rule"], 0);
    assert_eq!(v["service"], "httpbin.org");
    assert_eq!(v["principal"], "cluster.local/ns/default/sa/sleep");
    assert_eq!(v["findings"], json!([]));
    assert_eq!(v["dryRun"], json!([]));
}

#[test]
fn responses_are_configurable() {
    let p = policy(json!({
        "name": "t",
        "services": [],
        "responses": {"unregistered": {"status": 403, "body": "not registered"}, "denied": {"body": "no"}}
    }));
    let d = decide(&p, &get());
    let r = p.response_for(&d).unwrap();
    assert_eq!((r.status, r.body.as_str()), (403, "not registered"));
    assert_eq!(p.responses().denied.status, 403);
    assert_eq!(p.responses().denied.body, "no");
    assert_eq!(p.responses().bad_request.status, 400);
}

#[test]
fn gateway_ports_map_the_listener_port_to_the_service_port() {
    let p = policy(json!({
        "name": "t",
        "gatewayPorts": {"8080": 80, "8443": 443},
        "services": [{"name": "cnn", "hosts": ["edition.cnn.com"], "ports": [80, 443]}]
    }));
    let req = |port: u16| FakeAttributes::get("edition.cnn.com", "/politics").destination_port(port);
    assert_eq!(outcome(&p, &req(8080)), Outcome::Allow);
    assert_eq!(outcome(&p, &req(8443)), Outcome::Allow);
    assert_eq!(outcome(&p, &req(80)), Outcome::Allow);
    assert_eq!(outcome(&p, &req(9090)), Outcome::Unregistered);
    // An explicit port in the authority is what the workload called.
    assert_eq!(
        outcome(&p, &FakeAttributes::get("edition.cnn.com:8080", "/").destination_port(8080)),
        Outcome::Unregistered
    );
}

#[test]
fn explain_shows_every_applicable_policy_and_rule() {
    let p = with_authz(json!([
        {"name": "deny-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]},
        {"name": "httpbin", "action": "ALLOW", "services": ["httpbin.org"], "rules": [
            {"to": [{"operation": {"methods": ["POST"]}}]},
            {"to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]}
        ]},
        {"name": "other-service", "action": "ALLOW", "services": ["example"], "rules": [{}]}
    ]));
    let (d, trace) = p.explain(&FakeAttributes::get("HTTPBIN.org.", "//get"));
    assert_eq!(d, decide(&p, &FakeAttributes::get("HTTPBIN.org.", "//get")));
    assert_eq!((trace.host.as_str(), trace.port, trace.path.as_str()), ("httpbin.org", 80, "/get"));
    assert_eq!(trace.service, Some("httpbin.org"));
    let steps: Vec<(&str, Vec<bool>)> = trace.steps.iter().map(|s| (s.policy, s.rules.clone())).collect();
    assert_eq!(steps, vec![("deny-admin", vec![false]), ("httpbin", vec![false, true])]);
}
