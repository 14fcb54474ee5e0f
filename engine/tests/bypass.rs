//! The request shapes Istio has had CVEs for (CVE-2021-31920 and friends):
//! each must be caught by a DENY written the obvious way, or refused.

use crate::*;
use serde_json::json;
use warden_engine::{FakeAttributes, Outcome};

fn deny_admin() -> warden_engine::Policy {
    deny(json!([{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]))
}

#[test]
fn path_tricks_do_not_dodge_a_deny() {
    let p = deny_admin();
    let cases = [
        ("/admin", Outcome::Denied),
        ("//admin", Outcome::Denied),
        ("/./admin", Outcome::Denied),
        ("/a/../admin", Outcome::Denied),
        ("/a/%2e%2e/admin", Outcome::Denied),
        ("/%61dmin", Outcome::Denied),
        ("/admin/", Outcome::Denied),
        ("/admin//users", Outcome::Denied),
        ("/../../admin", Outcome::Denied),
        // Ambiguous: refused before matching.
        ("/%2Fadmin", Outcome::BadRequest),
        ("/%2fadmin", Outcome::BadRequest),
        ("/a%5C..%5Cadmin", Outcome::BadRequest),
        ("/a\\..\\admin", Outcome::BadRequest),
        ("/admin%00", Outcome::BadRequest),
        ("/admin#frag", Outcome::BadRequest),
        ("/%zzadmin", Outcome::BadRequest),
        // Not the admin path.
        ("/administrator", Outcome::Allow),
        ("/get", Outcome::Allow),
    ];
    for (path, want) in cases {
        assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", path)), want, "{path}");
    }
}

#[test]
fn without_ambiguity_rejection_the_strictest_normalization_still_catches_them() {
    let p = policy(json!({
        "name": "t",
        "pathNormalization": "DECODE_AND_MERGE_SLASHES",
        "rejectAmbiguousPaths": false,
        "services": [{"name": "h", "hosts": ["httpbin.org"]}],
        "authorization": [{"name": "p", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]}]
    }));
    for path in ["/%2Fadmin", "/a%5C..%5Cadmin", "/a\\..\\admin", "/admin#frag", "//admin"] {
        let d = decide(&p, &FakeAttributes::get("httpbin.org", path));
        assert_eq!(d.outcome, Outcome::Denied, "{path}");
    }
}

#[test]
fn with_normalization_none_the_raw_path_is_matched() {
    // The hazard `warden check` warns about: DENY on paths without normalization.
    let p = policy(json!({
        "name": "t",
        "pathNormalization": "NONE",
        "services": [{"name": "h", "hosts": ["httpbin.org"]}],
        "authorization": [{"name": "p", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}]
    }));
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", "/admin")), Outcome::Denied);
    let d = decide(&p, &FakeAttributes::get("httpbin.org", "//admin"));
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.forward_path, None, "NONE forwards the path untouched");
}

#[test]
fn host_tricks_do_not_dodge_a_deny_on_the_host() {
    let p = policy(json!({
        "name": "t",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "authorization": [{"name": "no-evil", "action": "DENY", "rules": [{"to": [{"operation": {"hosts": ["evil.com"]}}]}]}]
    }));
    for authority in ["evil.com", "EVIL.com", "Evil.Com", "evil.com.", "evil.com:8080", "evil.com.:443", "EVIL.COM.:80"]
    {
        assert_eq!(outcome(&p, &FakeAttributes::get(authority, "/")), Outcome::Denied, "{authority}");
    }
    assert_eq!(outcome(&p, &FakeAttributes::get("notevil.com", "/")), Outcome::Allow);
    // A malformed authority is refused rather than guessed at.
    for authority in ["evil.com:", "evil.com:80:80", "evil.com..", "user@evil.com"] {
        assert_eq!(outcome(&p, &FakeAttributes::get(authority, "/")), Outcome::BadRequest, "{authority}");
    }
}

#[test]
fn registry_is_not_dodged_by_case_dot_or_port() {
    let p = with_authz(json!([]));
    assert_eq!(outcome(&p, &FakeAttributes::get("HTTPBIN.ORG.", "/")), Outcome::Allow);
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org.evil.com", "/")), Outcome::Unregistered);
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org:8443", "/")), Outcome::Unregistered);
}

#[test]
fn lowercase_method_does_not_dodge_a_deny_on_the_method() {
    let p = deny(json!([{"to": [{"operation": {"methods": ["POST"]}}]}]));
    assert_eq!(outcome(&p, &FakeAttributes::request("POST", "httpbin.org", "/post")), Outcome::Denied);
    assert_eq!(outcome(&p, &FakeAttributes::request("post", "httpbin.org", "/post")), Outcome::BadRequest);
    assert_eq!(outcome(&p, &FakeAttributes::request("Post", "httpbin.org", "/post")), Outcome::BadRequest);
}

#[test]
fn allow_with_not_paths_is_the_hazard_istio_documents() {
    // ALLOW + notPaths: normalization keeps `/admin` variants out.
    let p = allow(json!([{"to": [{"operation": {"notPaths": ["/admin*"]}}]}]));
    for path in ["/admin", "//admin", "/x/../admin", "/%61dmin"] {
        assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", path)), Outcome::Denied, "{path}");
    }
    assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", "/get")), Outcome::Allow);
}
