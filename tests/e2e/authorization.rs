//! Scenario 2 (SPEC §8): an ambient egress waypoint with authorization.
//! `policies/ambient-waypoint` lets `cluster.local/ns/default/sa/admin` do
//! anything on httpbin.org and everyone else only `GET /get`. Callers are
//! identified by the URI SAN of their client certificate on the mTLS
//! listener.

use super::client::{Dial, Request, Tls};
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

/// The mTLS listener is where principals come from: a client that shows
/// no certificate must not get through it (Envoy refuses the handshake).
#[test]
fn mtls_listener_requires_a_client_certificate() {
    let gw = gateway();
    let result = Dial::tls(gw.envoy.mtls_addr(), Tls::Anonymous).original_port(WORKLOAD_PORT).send(&get_get());

    assert!(result.is_err(), "a request without a client certificate was answered: {result:?}");
    assert!(gw.upstream.paths().is_empty(), "nothing may reach the upstream: {:?}", gw.upstream.paths());
}
