//! Reference scenario 1: registry only. `policies/registry-only` registers
//! `aliyun.com` on port 80; everything else gets Istio's `502`.

use super::client::Request;
use super::gateway::Gateway;
use super::policy;

/// The upstream plays aliyun.com, which redirects to HTTPS.
fn gateway() -> Gateway {
    Gateway::start(Some(&policy::example("registry-only")), 301)
}

#[test]
fn registered_host_reaches_the_site() {
    let gw = gateway();
    // `curl aliyun.com -I`
    let response = gw.send(&Request::new("HEAD", "/").host("aliyun.com"));

    assert_eq!(response.status, 301, "the site's own answer should come back: {response:?}");
    assert_eq!(response.header("x-warden-decision"), None, "an allowed request carries no decision header");
    let received = gw.upstream.received();
    assert_eq!(received.len(), 1, "exactly one request upstream: {received:?}");
    let forwarded = received.first().expect("one request");
    assert_eq!((forwarded.method.as_str(), forwarded.path.as_str()), ("HEAD", "/"));
    assert_eq!(forwarded.headers.get("host"), Some("aliyun.com"));

    // The gateway's access log shows the request, as in the Istio task.
    let entries = gw.envoy.access_log(1);
    let entry = entries.first().expect("one access-log entry");
    assert_eq!(entry["authority"], "aliyun.com", "{entry}");
    assert_eq!(entry["method"], "HEAD", "{entry}");
    assert_eq!(entry["path"], "/", "{entry}");
    assert_eq!(entry["response_code"], 301, "{entry}");
    assert_eq!(entry["upstream_host"], gw.upstream.addr().to_string(), "{entry}");
}

#[test]
fn unregistered_host_gets_502() {
    let gw = gateway();
    let response = gw.send(&Request::get("/").host("example.com"));

    assert_eq!(response.status, 502, "{response:?}");
    assert_eq!(response.header("x-warden-decision"), Some("unregistered"), "{response:?}");
    assert_eq!(response.text(), "", "the default unregistered body is empty");
    assert!(gw.upstream.paths().is_empty(), "nothing may reach the upstream: {:?}", gw.upstream.paths());
}

#[test]
fn registered_host_on_another_port_gets_502() {
    let gw = gateway();
    let response = gw.send(&Request::get("/").host("aliyun.com:8080"));

    assert_eq!(response.status, 502, "aliyun.com is registered on port 80 only: {response:?}");
    assert_eq!(response.header("x-warden-decision"), Some("unregistered"), "{response:?}");
    assert!(gw.upstream.paths().is_empty(), "nothing may reach the upstream: {:?}", gw.upstream.paths());
}
