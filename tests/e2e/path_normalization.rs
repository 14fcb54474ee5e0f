//! Paths are decided, and forwarded, in normalized form, with
//! the ambient-waypoint policy's defaults: `MERGE_SLASHES` and
//! `rejectAmbiguousPaths: true`. Envoy's own normalization is off (see the
//! bootstrap), so the filter sees raw paths and the upstream sees exactly
//! what was authorized.

use std::fmt::Write as _;

use super::client::Request;
use super::gateway::Gateway;
use super::pki::{Identity, Pki};

/// One request and what should come of it.
struct Case {
    who: &'static Identity,
    method: &'static str,
    target: &'static str,
    status: u16,
    /// What the upstream should receive; `None`: nothing.
    upstream: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let Pki { admin, sleep, .. } = Pki::shared();
    let case = |who, method, target, status, upstream| Case { who, method, target, status, upstream };
    vec![
        case(sleep, "GET", "//get", 200, Some("/get")),
        // `..` is resolved before matching: this is POST-only /post.
        case(sleep, "GET", "/get/../post", 403, None),
        case(admin, "POST", "/get/../post", 200, Some("/post")),
        // An encoded slash is ambiguous: refused before any rule.
        case(sleep, "GET", "/%2Fpost", 400, None),
        // The query goes upstream untouched.
        case(sleep, "GET", "/get?x=1", 200, Some("/get?x=1")),
        // Percent-encoded dots are decoded, then resolved.
        case(sleep, "GET", "/a/%2e%2e/get", 200, Some("/get")),
    ]
}

#[test]
fn paths_are_normalized_before_the_decision_and_forwarded_normalized() {
    let gw = Gateway::example("ambient-waypoint");
    let mut failures = String::new();
    for case in cases() {
        let request = Request::new(case.method, case.target).host("httpbin.org");
        let before = gw.upstream.paths().len();
        let response = gw.send_as(case.who, &request);
        let forwarded = gw.upstream.paths().split_off(before);
        let expected: Vec<&str> = case.upstream.into_iter().collect();
        let refusal = match case.status {
            403 => Some("denied"),
            400 => Some("bad-request"),
            _ => None,
        };
        if response.status != case.status || forwarded != expected || response.header("x-warden-decision") != refusal {
            let _ = writeln!(
                failures,
                "{request}: expected {} with {refusal:?} and upstream {expected:?}; \
                 got {} with {:?} and upstream {forwarded:?}",
                case.status,
                response.status,
                response.header("x-warden-decision"),
            );
        }
    }
    assert!(failures.is_empty(), "path normalization cases failed:\n{failures}");
}

/// The precondition of the test above: without the filter, this Envoy
/// passes raw paths through unchanged, so any normalization the
/// upstream sees is Warden's doing.
#[test]
fn envoy_alone_forwards_raw_paths() {
    let gw = Gateway::start(None, 200);
    let targets = ["//get", "/get/../post", "/%2Fpost", "/a/%2e%2e/get?x=1"];
    for target in targets {
        let response = gw.send(&Request::get(target).host("httpbin.org"));
        assert_eq!(response.status, 200, "GET {target} without the filter: {response:?}");
    }
    assert_eq!(gw.upstream.paths(), targets, "Envoy must not normalize paths itself");
}
