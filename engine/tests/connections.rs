//! Connections (the network filter), `CONNECT` tunnels and SNI/Host
//! agreement: Istio's TCP semantics for every kind of field, the registry
//! by server name and port, and what cannot be read.

use crate::*;
use serde_json::json;
use warden_engine::normalize::BadRequest;
use warden_engine::{FakeAttributes, Outcome, Reason};

const SLEEP: &str = "cluster.local/ns/default/sa/sleep";
const ADMIN: &str = "cluster.local/ns/default/sa/admin";

/// A connection to httpbin.org:443 with server name `httpbin.org`.
fn tls() -> FakeAttributes {
    FakeAttributes::connection(Some("httpbin.org"), 443)
}

fn connection_outcome(p: &warden_engine::Policy, c: &FakeAttributes) -> Outcome {
    p.decide_connection(c).outcome
}

#[test]
fn the_registry_is_looked_up_by_server_name_and_port() {
    let p = with_authz(json!([]));
    for (sni, port, want) in [
        (Some("httpbin.org"), 443, Outcome::Allow),
        (Some("HTTPBIN.org."), 443, Outcome::Allow),
        (Some("httpbin.org"), 8443, Outcome::Unregistered),
        (Some("api.example.com"), 443, Outcome::Allow),
        (Some("example.com"), 9999, Outcome::Allow),
        (Some("aliyun.com"), 443, Outcome::Unregistered),
        (Some("notexample.com"), 443, Outcome::Unregistered),
        (None, 443, Outcome::Unregistered),
    ] {
        let d = p.decide_connection(&FakeAttributes::connection(sni, port));
        assert_eq!(d.outcome, want, "{sni:?}:{port}");
    }
    let d = p.decide_connection(&FakeAttributes::connection(None, 443));
    assert_eq!(d.reason, Reason::NoServerName);
    assert!(d.record().contains(r#""reason":"no-sni""#), "{}", d.record());
    assert_eq!(p.decide_connection(&tls()).service, Some("httpbin.org"));
}

#[test]
fn a_server_name_that_is_not_a_host_name_is_refused() {
    let p = with_authz(json!([]));
    for sni in ["httpbin.org:443", "a..b", "http bin.org", "outbound_.443_._.httpbin.org", "[::1]"] {
        let d = p.decide_connection(&FakeAttributes::connection(Some(sni), 443));
        assert_eq!((d.outcome, d.reason), (Outcome::BadRequest, Reason::BadRequest(BadRequest::InvalidSni)), "{sni}");
    }
    let bad_utf8 = FakeAttributes::connection(None, 443).property(&["connection", "requested_server_name"], vec![0xff]);
    assert_eq!(connection_outcome(&p, &bad_utf8), Outcome::BadRequest);
}

#[test]
fn a_connection_without_a_destination_port_is_refused() {
    let p = with_authz(json!([]));
    let d = p.decide_connection(&FakeAttributes::new().sni("httpbin.org"));
    assert_eq!(d.reason, Reason::BadRequest(BadRequest::MissingPort));
}

#[test]
fn allow_any_lets_connections_without_a_service_through_unscoped_policies_only() {
    let p = policy(json!({
        "name": "t",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [443]}],
        "authorization": [
            {"name": "scoped", "action": "ALLOW", "services": ["httpbin.org"], "rules": [{"from": [{"source": {"principals": [ADMIN]}}]}]},
            {"name": "no-sleep", "action": "DENY", "rules": [{"from": [{"source": {"principals": [SLEEP]}}]}]}
        ]
    }));
    assert_eq!(connection_outcome(&p, &FakeAttributes::connection(None, 443)), Outcome::Allow);
    assert_eq!(connection_outcome(&p, &FakeAttributes::connection(Some("aliyun.com"), 443)), Outcome::Allow);
    assert_eq!(connection_outcome(&p, &FakeAttributes::connection(None, 443).principal(SLEEP)), Outcome::Denied);
    assert_eq!(connection_outcome(&p, &tls()), Outcome::Denied);
    assert_eq!(connection_outcome(&p, &tls().principal(ADMIN)), Outcome::Allow);
}

/// Each HTTP-only field, positive and negated, in one rule of an ALLOW
/// policy: the rule never matches a connection, whatever the connection.
#[test]
fn an_allow_rule_with_an_http_only_field_never_matches_a_connection() {
    let http_only = [
        json!({"to": [{"operation": {"hosts": ["httpbin.org"]}}]}),
        json!({"to": [{"operation": {"notHosts": ["evil.com"]}}]}),
        json!({"to": [{"operation": {"methods": ["GET"]}}]}),
        json!({"to": [{"operation": {"notMethods": ["POST"]}}]}),
        json!({"to": [{"operation": {"paths": ["/get"]}}]}),
        json!({"to": [{"operation": {"notPaths": ["/admin"]}}]}),
        json!({"when": [{"key": "request.headers[x-team]", "values": ["*"]}]}),
        json!({"when": [{"key": "request.headers[x-team]", "notValues": ["blue"]}]}),
        // One TCP alternative beside an HTTP one does not save the rule:
        // Istio drops the whole rule from the TCP filter chain.
        json!({"to": [{"operation": {"ports": ["443"]}}, {"operation": {"methods": ["GET"]}}]}),
        json!({"from": [{"source": {"principals": [ADMIN]}}], "to": [{"operation": {"ports": ["443"], "paths": ["/x"]}}]}),
    ];
    for rule in http_only {
        let p = allow(json!([rule]));
        let d = p.decide_connection(&tls().principal(ADMIN));
        assert_eq!((d.outcome, d.reason), (Outcome::Denied, Reason::NoAllowMatch), "{rule}");
    }
    // The control: the same policy with a rule of TCP fields only lets the
    // connection through, so the refusals above are the HTTP fields'.
    let p = allow(json!([{"from": [{"source": {"principals": [ADMIN]}}], "to": [{"operation": {"ports": ["443"]}}]}]));
    assert_eq!(connection_outcome(&p, &tls().principal(ADMIN)), Outcome::Allow);
}

/// The TCP fields of an ALLOW rule match a connection as they match a
/// request.
#[test]
fn an_allow_rule_of_tcp_fields_matches_connections() {
    let p = allow(json!([{
        "from": [{"source": {"principals": [ADMIN], "ipBlocks": ["10.0.0.0/8"]}}],
        "to": [{"operation": {"ports": ["443"]}}],
        "when": [{"key": "connection.sni", "values": ["*.org"]}]
    }]));
    let admin = tls().principal(ADMIN).source_ip("10.1.2.3");
    let d = p.decide_connection(&admin);
    assert_eq!((d.outcome, d.reason, d.policy, d.rule), (Outcome::Allow, Reason::AllowPolicy, Some("p"), Some(0)));
    assert_eq!(d.principal.as_deref(), Some(ADMIN));
    assert_eq!(connection_outcome(&p, &tls().principal(SLEEP).source_ip("10.1.2.3")), Outcome::Denied);
    assert_eq!(connection_outcome(&p, &tls().principal(ADMIN).source_ip("192.168.1.1")), Outcome::Denied);
    assert_eq!(connection_outcome(&p, &tls().source_ip("10.1.2.3")), Outcome::Denied, "no principal");
    let example = FakeAttributes::connection(Some("api.example.com"), 443).principal(ADMIN).source_ip("10.1.2.3");
    assert_eq!(connection_outcome(&p, &example), Outcome::Denied, "SNI not *.org");
    let p = allow(
        json!([{"to": [{"operation": {"notPorts": ["443"]}}], "from": [{"source": {"namespaces": ["default"]}}]}]),
    );
    assert_eq!(
        connection_outcome(&p, &FakeAttributes::connection(Some("httpbin.org"), 80).principal(SLEEP)),
        Outcome::Allow
    );
    assert_eq!(connection_outcome(&p, &tls().principal(SLEEP)), Outcome::Denied);
}

/// In a DENY rule the HTTP-only fields are dropped: the rule denies every
/// connection its other fields describe, as Istio's TCP filter chain does.
#[test]
fn a_deny_rule_ignores_http_only_fields_on_a_connection() {
    for rule in [
        json!({"to": [{"operation": {"methods": ["POST"]}}]}),
        json!({"to": [{"operation": {"hosts": ["evil.com"]}}]}),
        json!({"to": [{"operation": {"notPaths": ["/public/*"]}}]}),
        json!({"when": [{"key": "request.headers[x-debug]", "values": ["1"]}]}),
    ] {
        let p = deny(json!([rule]));
        let d = p.decide_connection(&tls());
        assert_eq!((d.outcome, d.reason, d.policy), (Outcome::Denied, Reason::DenyPolicy, Some("p")), "{rule}");
        // An HTTP GET is not caught by the same rule.
        assert_eq!(outcome(&p, &FakeAttributes::get("httpbin.org", "/public/x")), Outcome::Allow, "{rule}");
    }
    // The TCP fields beside them still narrow the rule.
    let p =
        deny(json!([{"from": [{"source": {"principals": [SLEEP]}}], "to": [{"operation": {"methods": ["POST"]}}]}]));
    assert_eq!(connection_outcome(&p, &tls().principal(SLEEP)), Outcome::Denied);
    assert_eq!(connection_outcome(&p, &tls().principal(ADMIN)), Outcome::Allow);
}

#[test]
fn audit_and_dry_run_follow_the_same_semantics() {
    let p = with_authz(json!([
        {"name": "audit-posts", "action": "AUDIT", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]},
        {"name": "dry-deny", "action": "DENY", "dryRun": true, "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]},
        {"name": "dry-allow", "action": "ALLOW", "dryRun": true, "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]}
    ]));
    let d = p.decide_connection(&tls());
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.audit, ["audit-posts"]);
    assert_eq!(d.dry_run, ["dry-deny", "dry-allow"]);
}

#[test]
fn scoped_policies_apply_to_their_service_only() {
    let p = with_authz(json!([
        {"name": "httpbin-admin", "action": "ALLOW", "services": ["httpbin.org"], "rules": [{"from": [{"source": {"principals": [ADMIN]}}]}]}
    ]));
    assert_eq!(connection_outcome(&p, &tls().principal(SLEEP)), Outcome::Denied);
    assert_eq!(connection_outcome(&p, &tls().principal(ADMIN)), Outcome::Allow);
    let other = FakeAttributes::connection(Some("api.example.com"), 443).principal(SLEEP);
    assert_eq!(connection_outcome(&p, &other), Outcome::Allow);
}

#[test]
fn gateway_ports_map_the_listener_port() {
    let p = policy(json!({
        "name": "t",
        "gatewayPorts": {"8443": 443},
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [443]}],
        "authorization": [{"name": "p", "action": "ALLOW", "rules": [{"to": [{"operation": {"ports": ["443"]}}]}]}]
    }));
    let d = p.decide_connection(&FakeAttributes::connection(Some("httpbin.org"), 8443));
    assert_eq!((d.outcome, d.service), (Outcome::Allow, Some("httpbin.org")));
}

#[test]
fn what_enforced_rules_need_and_cannot_read_refuses_the_connection() {
    let p = allow(json!([{"from": [{"source": {"principals": [ADMIN]}}]}]));
    let unreadable = tls().property(
        &["connection", "peer_certificate"],
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let d = p.decide_connection(&unreadable);
    assert_eq!((d.outcome, d.reason), (Outcome::Denied, Reason::UnverifiableIdentity));
    let p = allow(json!([{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]));
    let d = p.decide_connection(&tls());
    assert_eq!((d.outcome, d.reason), (Outcome::Denied, Reason::UnknownAddress));
}

/// Counts the properties a decision reads: each is a host call in Envoy.
struct Reads<'a> {
    inner: &'a FakeAttributes,
    paths: std::cell::RefCell<Vec<String>>,
}

impl<'a> Reads<'a> {
    fn of(inner: &'a FakeAttributes) -> Self {
        Reads { inner, paths: std::cell::RefCell::new(Vec::new()) }
    }

    fn read(&self, path: &[&str]) -> bool {
        self.paths.borrow().contains(&path.join("."))
    }
}

impl warden_engine::Attributes for Reads<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.inner.header(name)
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str)) {
        self.inner.for_each_header(visit);
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.paths.borrow_mut().push(path.join("."));
        self.inner.property(path)
    }
}

/// Whether a certificate was presented that Envoy cannot show (its first
/// URI SAN without the certificate) is asked only where it would change
/// the decision: when the rules read the caller.
#[test]
fn an_unshown_certificate_is_asked_about_only_when_the_rules_need_the_caller() {
    let uri_san = ["connection", "uri_san_peer_certificate"];
    let unshown = tls().property(&uri_san, format!("spiffe://{ADMIN}"));

    let p = allow(json!([{"from": [{"source": {"principals": [ADMIN]}}]}]));
    let reads = Reads::of(&unshown);
    let d = p.decide_connection(&reads);
    assert_eq!((d.outcome, d.reason), (Outcome::Denied, Reason::UnverifiableIdentity));
    assert!(reads.read(&uri_san), "{:?}", reads.paths.borrow());

    // No rule reads the caller: the connection is decided without asking,
    // as it would be if the answer were known (no identity either way).
    let p = allow(json!([{"to": [{"operation": {"ports": ["443"]}}]}]));
    let reads = Reads::of(&unshown);
    let d = p.decide_connection(&reads);
    assert_eq!((d.outcome, d.principal), (Outcome::Allow, None));
    assert!(!reads.read(&uri_san), "{:?}", reads.paths.borrow());
    assert!(reads.read(&["connection", "peer_certificate"]), "the record's principal is still looked for");

    // A certificate Envoy shows names the caller in the record either way.
    let shown = tls().peer_certificate(&[&format!("spiffe://{SLEEP}")], &[]);
    let d = p.decide_connection(&shown);
    assert_eq!((d.outcome, d.principal.as_deref()), (Outcome::Allow, Some(SLEEP)));
}

#[test]
fn explain_shows_each_rule_under_tcp_semantics() {
    let p = allow(json!([
        {"to": [{"operation": {"methods": ["GET"]}}]},
        {"from": [{"source": {"principals": [ADMIN]}}]}
    ]));
    let (d, trace) = p.explain_connection(&tls().principal(ADMIN));
    assert_eq!((d.outcome, d.rule), (Outcome::Allow, Some(1)));
    assert_eq!((trace.host.as_str(), trace.port, trace.service), ("httpbin.org", 443, Some("httpbin.org")));
    assert_eq!(trace.steps.len(), 1);
    assert_eq!(trace.steps[0].rules, [false, true]);
}

// CONNECT.

fn connect(authority: &str) -> FakeAttributes {
    FakeAttributes::new().header(":method", "CONNECT").header(":authority", authority)
}

#[test]
fn connect_is_decided_on_its_authority() {
    let p = with_authz(json!([
        {"name": "admin-only", "action": "ALLOW", "rules": [{"from": [{"source": {"principals": [ADMIN]}}], "to": [{"operation": {"methods": ["CONNECT"], "ports": ["443"]}}]}]}
    ]));
    let d = decide(&p, &connect("httpbin.org:443").principal(ADMIN));
    assert_eq!((d.outcome, d.service, d.forward_path.as_deref()), (Outcome::Allow, Some("httpbin.org"), None));
    assert_eq!(outcome(&p, &connect("httpbin.org:443").principal(SLEEP)), Outcome::Denied);
    assert_eq!(outcome(&p, &connect("aliyun.com:443").principal(ADMIN)), Outcome::Unregistered);
    assert_eq!(outcome(&p, &connect("httpbin.org:8443").principal(ADMIN)), Outcome::Unregistered);
    let d = decide(&p, &connect("httpbin.org").principal(ADMIN));
    assert_eq!(d.reason, Reason::BadRequest(BadRequest::MissingPort));
    // Without `:path`, a rule on paths does not match a tunnel, and
    // `notPaths` does, as in Istio (the path is absent).
    let p = allow(json!([{"to": [{"operation": {"paths": ["*"]}}]}]));
    assert_eq!(outcome(&p, &connect("httpbin.org:443")), Outcome::Denied);
    let p = deny(json!([{"to": [{"operation": {"notPaths": ["/get"]}}]}]));
    assert_eq!(outcome(&p, &connect("httpbin.org:443")), Outcome::Denied);
}

#[test]
fn only_a_classic_connect_goes_without_a_path() {
    let p = with_authz(json!([]));
    let d = decide(&p, &FakeAttributes::new().header(":method", "GET").header(":authority", "httpbin.org:443"));
    assert_eq!(d.reason, Reason::BadRequest(BadRequest::MissingPath));
    // Extended CONNECT (RFC 8441, websockets over HTTP/2) has a path.
    let ws = connect("httpbin.org:443").header(":protocol", "websocket");
    assert_eq!(decide(&p, &ws).reason, Reason::BadRequest(BadRequest::MissingPath));
    assert_eq!(outcome(&p, &ws.header(":path", "/chat")), Outcome::Allow);
}

#[test]
fn a_tunnel_body_is_not_scanned() {
    let p = policy(json!({
        "name": "t",
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [443]}],
        "dlp": [{"name": "cards", "action": "BLOCK", "detectors": ["credit_card"], "scan": ["body"]}]
    }));
    let mut d = decide(&p, &connect("httpbin.org:443"));
    assert_eq!(d.outcome, Outcome::Allow);
    assert!(d.take_body().is_none(), "the tunnel's bytes must not be held for DLP");
    let mut post = decide(&p, &FakeAttributes::request("POST", "httpbin.org:443", "/post"));
    assert!(post.take_body().is_some(), "an ordinary body is scanned");
}

// SNI and Host.

#[test]
fn a_host_that_differs_from_the_server_name_is_refused() {
    let p = with_authz(json!([]));
    let fronted = FakeAttributes::get("httpbin.org", "/get").sni("api.example.com");
    let d = decide(&p, &fronted);
    assert_eq!((d.outcome, d.reason), (Outcome::BadRequest, Reason::BadRequest(BadRequest::SniMismatch)));
    for (host, sni) in [
        ("httpbin.org", "httpbin.org"),
        ("HttpBin.org:443", "httpbin.org."),
        ("httpbin.org", ""),
        // Istio's own names between a sidecar and its gateway name a
        // route, not a destination.
        ("httpbin.org", "outbound_.443_._.istio-egressgateway.istio-system.svc.cluster.local"),
    ] {
        let req = FakeAttributes::get(host, "/get").sni(sni);
        assert_eq!(outcome(&p, &req), Outcome::Allow, "{host} over {sni:?}");
    }
    assert_eq!(outcome(&p, &get()), Outcome::Allow, "no TLS: nothing to compare");
}

#[test]
fn require_sni_match_can_be_turned_off() {
    let p = policy(json!({
        "name": "t",
        "requireSniMatch": false,
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}]
    }));
    assert_eq!(outcome(&p, &get().sni("api.example.com")), Outcome::Allow);
}

#[test]
fn a_connection_waits_for_the_peer_only_where_a_certificate_can_come() {
    let p = allow(json!([{"from": [{"source": {"principals": [ADMIN]}}]}]));
    let terminated = tls().property(&["connection", "tls_version"], "TLSv1.3");
    assert!(p.connection_awaits_peer(&terminated), "identity rules, TLS ended here, no certificate yet");
    assert!(!p.connection_awaits_peer(&tls()), "passthrough: no certificate will ever come");
    assert!(!p.connection_awaits_peer(&terminated.clone().principal(ADMIN)), "the certificate is there");
    let other =
        FakeAttributes::connection(Some("api.example.com"), 443).property(&["connection", "tls_version"], "TLSv1.3");
    let scoped = with_authz(json!([
        {"name": "httpbin-admin", "action": "ALLOW", "services": ["httpbin.org"], "rules": [{"from": [{"source": {"principals": [ADMIN]}}]}]}
    ]));
    assert!(!scoped.connection_awaits_peer(&other), "no identity rule applies to this service");
    assert!(scoped.connection_awaits_peer(&terminated));
    let by_address = allow(json!([{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]));
    assert!(!by_address.connection_awaits_peer(&terminated), "the rules do not read the identity");
}
