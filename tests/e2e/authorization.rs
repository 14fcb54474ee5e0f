//! Reference scenario 2: an ambient egress waypoint with authorization.
//! `policies/ambient-waypoint` lets `cluster.local/ns/default/sa/admin` do
//! anything on httpbin.org and everyone else only `GET /get`. Callers are
//! identified by the URI SAN of their client certificate on the mTLS
//! listener.

use super::client::{Request, Tls};
use super::gateway::{Gateway, WORKLOAD_PORT};
use super::pki::Pki;

fn gateway() -> Gateway {
    Gateway::example("ambient-waypoint")
}

fn post_post() -> Request {
    Request::post("/post").host("httpbin.org").header("content-type", "application/json").body(r#"{"a": 1}"#)
}

fn get_get() -> Request {
    Request::get("/get").host("httpbin.org")
}

#[test]
fn admin_may_post() {
    let gw = gateway();
    let response = gw.send_as(&Pki::shared().admin, &post_post());

    assert_eq!(response.status, 200, "{response:?}");
    let received = gw.upstream.received();
    assert_eq!(received.len(), 1, "exactly one request upstream: {received:?}");
    let forwarded = received.first().expect("one request");
    assert_eq!((forwarded.method.as_str(), forwarded.path.as_str()), ("POST", "/post"));
    assert_eq!(forwarded.body, br#"{"a": 1}"#, "the body goes upstream unchanged");
}

#[test]
fn others_may_get_get() {
    let gw = gateway();
    let response = gw.send_as(&Pki::shared().sleep, &get_get());

    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(gw.upstream.paths(), ["/get"]);
}

#[test]
fn others_may_not_post() {
    let gw = gateway();
    let response = gw.send_as(&Pki::shared().sleep, &post_post());

    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(response.text(), "RBAC: access denied", "Istio's body, and nothing about the policy");
    assert_eq!(response.header("x-warden-decision"), Some("denied"), "{response:?}");
    assert!(gw.upstream.paths().is_empty(), "nothing may reach the upstream: {:?}", gw.upstream.paths());
}

#[test]
fn without_a_client_certificate_only_get_get_is_allowed() {
    let gw = gateway();

    let get = gw.send(&get_get());
    assert_eq!(get.status, 200, "GET /get is open to everyone: {get:?}");

    let post = gw.send(&post_post());
    assert_eq!(post.status, 403, "POST /post needs the admin principal: {post:?}");
    assert_eq!(post.header("x-warden-decision"), Some("denied"), "{post:?}");

    assert_eq!(gw.upstream.paths(), ["/get"], "only the GET may reach the upstream");
}

/// A TLS client without a certificate has no principal: it gets what any
/// anonymous caller gets.
#[test]
fn tls_without_a_client_certificate_is_anonymous() {
    let gw = gateway();
    let dial = gw.envoy.tls(WORKLOAD_PORT, Tls::Anonymous);
    let get = dial.send(&get_get()).expect("GET /get");
    assert_eq!(get.status, 200, "{get:?}");
    let post = dial.send(&post_post()).expect("POST /post");
    assert_eq!(post.status, 403, "{post:?}");
    assert_eq!(gw.upstream.paths(), ["/get"]);
}

/// In an ambient waypoint the caller's identity is the filter state
/// `io.istio.peer_principal`, which the example policy reads after the
/// (absent) peer certificate.
#[test]
fn waypoint_principal_comes_from_filter_state() {
    use super::bootstrap;

    let policy = super::policy::example("ambient-waypoint");
    let filters = vec![bootstrap::set_peer_principal("x-test-hbone-peer"), bootstrap::warden(&policy)];
    let gw = Gateway::launch(filters, &[WORKLOAD_PORT], Default::default(), &[], 200);
    let (envoy, upstream) = (&gw.envoy, &gw.upstream);
    let dial = envoy.plain(WORKLOAD_PORT);
    let as_peer = |peer: &str| post_post().header("x-test-hbone-peer", peer);

    let admin = dial.send(&as_peer("spiffe://cluster.local/ns/default/sa/admin")).expect("admin request");
    assert_eq!(admin.status, 200, "the admin's POST is allowed: {admin:?}\n{}", envoy.log_tail());
    let sleep = dial.send(&as_peer("spiffe://cluster.local/ns/default/sa/sleep")).expect("sleep request");
    assert_eq!(sleep.status, 403, "sleep's POST is denied: {sleep:?}");
    let nobody = dial.send(&post_post()).expect("anonymous request");
    assert_eq!(nobody.status, 403, "without a peer, POST is denied: {nobody:?}");
    assert_eq!(upstream.received().len(), 1, "only the admin's request went upstream");

    let log = envoy.access_log(3);
    let principal = |i: usize| -> Option<String> {
        let record: serde_json::Value = serde_json::from_str(log[i]["warden"].as_str()?).ok()?;
        record["principal"].as_str().map(str::to_owned)
    };
    assert_eq!(principal(0).as_deref(), Some("cluster.local/ns/default/sa/admin"));
    assert_eq!(principal(1).as_deref(), Some("cluster.local/ns/default/sa/sleep"));
    assert_eq!(principal(2), None);

    // Denials are logged at info level, with the record and without the path.
    let denials: Vec<String> =
        envoy.log().lines().filter(|l| l.contains("warden: denied")).map(str::to_owned).collect();
    assert_eq!(denials.len(), 2, "one log line per denial: {denials:#?}");
    assert!(
        denials.iter().all(|l| l.contains("[info]") && l.contains("POST httpbin.org") && !l.contains("/post")),
        "{denials:#?}"
    );
}
