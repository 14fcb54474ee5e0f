//! The ways around a policy that come from reading the request differently
//! from Envoy and Istio: forged or ambiguous identity, addresses Envoy took
//! from a header, repeated headers, hosts that are not host names, and
//! where Istio's own translation reads an attribute with its port. Each
//! test is written from the attacker's side: the request that used to get
//! through, and what must happen to it now.

use crate::*;
use serde_json::{json, Value};
use warden_engine::{FakeAttributes, Outcome, Reason};

const ADMIN: &str = "spiffe://cluster.local/ns/default/sa/admin";
const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";

fn with_identity(identity: Value, authorization: Value) -> warden_engine::Policy {
    policy(json!({
        "name": "t",
        "identity": identity,
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}],
        "authorization": authorization
    }))
}

fn admin_only() -> Value {
    json!([{"name": "admin-only", "action": "ALLOW", "rules": [{"from": [{"source": {"principals": [ADMIN]}}]}]}])
}

fn deny_admin() -> Value {
    json!([{"name": "no-admin", "action": "DENY", "rules": [{"from": [{"source": {"principals": [ADMIN]}}]}]}])
}

#[test]
fn xfcc_quote_injection_is_a_bad_request_never_a_principal() {
    let p = with_identity(json!([{"xfcc": {}}]), admin_only());
    // The caller's header with an open quote, then the element the nearest
    // proxy appended (APPEND_FORWARD) for the caller's real certificate.
    let attack = format!("URI={ADMIN};X=\",Hash=abc;URI={SLEEP}");
    let d = decide(&p, &get().header("x-forwarded-client-cert", &attack));
    assert_eq!(d.outcome, Outcome::BadRequest);
    assert_eq!(d.reason.as_str(), "invalid-xfcc");
    assert_eq!(d.principal, None);

    for malformed in ["URI", "URI=a;;URI=b", "URI=\"unterminated", "URI=a\"b", ",URI=a", "URI=a,"] {
        let d = decide(&p, &get().header("x-forwarded-client-cert", malformed));
        assert_eq!(d.outcome, Outcome::BadRequest, "{malformed}");
    }
}

#[test]
fn xfcc_takes_the_nearest_proxys_element_and_all_its_uris() {
    let allow = with_identity(json!([{"xfcc": {}}]), admin_only());
    // An element the caller wrote first, then the proxy's: only the
    // proxy's counts.
    let forged = format!("URI={ADMIN},Hash=1;URI={SLEEP}");
    assert_eq!(outcome(&allow, &get().header("x-forwarded-client-cert", &forged)), Outcome::Denied);
    // A quoted subject with `,` and `;` does not split the element.
    let quoted = format!(r#"Hash=1;Subject="CN=a, O=b; c";URI={ADMIN}"#);
    let d = decide(&allow, &get().header("x-forwarded-client-cert", &quoted));
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.principal.as_deref(), Some("cluster.local/ns/default/sa/admin"));

    // Every URI of the element is a name: a second one does not dodge a
    // DENY on it.
    let deny = with_identity(json!([{"xfcc": {}}]), deny_admin());
    let two = format!("Hash=1;URI={SLEEP};URI={ADMIN}");
    assert_eq!(outcome(&deny, &get().header("x-forwarded-client-cert", &two)), Outcome::Denied);
    // Two header lines are one list, as Envoy joins them.
    let lines = get()
        .add_header("x-forwarded-client-cert", &format!("URI={SLEEP}"))
        .add_header("x-forwarded-client-cert", &format!("Hash=2;URI={ADMIN}"));
    assert_eq!(outcome(&deny, &lines), Outcome::Denied);
}

#[test]
fn a_repeated_identity_header_is_a_bad_request() {
    let p = with_identity(json!([{"header": "x-principal"}]), admin_only());
    let one = get().header("x-principal", "cluster.local/ns/default/sa/admin");
    assert_eq!(outcome(&p, &one), Outcome::Allow);
    let twice = get()
        .add_header("x-principal", "cluster.local/ns/default/sa/sleep")
        .add_header("x-principal", "cluster.local/ns/default/sa/admin");
    let d = decide(&p, &twice);
    assert_eq!(d.outcome, Outcome::BadRequest);
    assert_eq!(d.reason.as_str(), "repeated-identity-header");
}

#[test]
fn every_uri_san_counts_and_only_spiffe_ids_are_principals() {
    let deny = with_identity(json!([{"peerCertificate": {}}]), deny_admin());
    // A second SAN naming the denied principal is found.
    let two = get().peer_certificate(&[SLEEP, ADMIN], &[]);
    assert_eq!(outcome(&deny, &two), Outcome::Denied);

    let allow = with_identity(json!([{"peerCertificate": {}}]), admin_only());
    assert_eq!(outcome(&allow, &two), Outcome::Allow, "Envoy's RBAC allows on any SAN too");
    // A URI SAN without the SPIFFE scheme is not that principal.
    let bare = get().peer_certificate(&["cluster.local/ns/default/sa/admin"], &[]);
    let d = decide(&allow, &bare);
    assert_eq!(d.outcome, Outcome::Denied);
    assert_eq!(d.principal, None, "no SPIFFE ID, no principal in the record");
    let https = get().peer_certificate(&["https://cluster.local/ns/default/sa/admin"], &[]);
    assert_eq!(outcome(&allow, &https), Outcome::Denied);
    // The record shows the first SPIFFE ID.
    assert_eq!(decide(&allow, &two).principal.as_deref(), Some("cluster.local/ns/default/sa/sleep"));
}

#[test]
fn namespaces_match_as_istios_regex() {
    let deny_dev = with_identity(
        json!([{"peerCertificate": {}}]),
        json!([{"name": "no-dev", "action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["dev"]}}]}]}]),
    );
    let cases = [
        ("spiffe://cluster.local/ns/dev/sa/x", Outcome::Denied),
        // `.*/ns/dev/.*` finds a later `ns/dev` too.
        ("spiffe://cluster.local/ns/payments/sa/ns/dev/sa/x", Outcome::Denied),
        // Nothing after the namespace: not in it.
        ("spiffe://cluster.local/ns/dev", Outcome::Allow),
        ("spiffe://cluster.local/ns/development/sa/x", Outcome::Allow),
        ("spiffe://cluster.local/ns/prod/sa/dev", Outcome::Allow),
    ];
    for (san, want) in cases {
        assert_eq!(outcome(&deny_dev, &get().peer_certificate(&[san], &[])), want, "{san}");
    }
    // Any SAN in the namespace is enough for a DENY.
    let two =
        get().peer_certificate(&["spiffe://cluster.local/ns/prod/sa/x", "spiffe://cluster.local/ns/dev/sa/y"], &[]);
    assert_eq!(outcome(&deny_dev, &two), Outcome::Denied);
    // Wildcards inside the namespace, as Istio allows.
    let allow_team = with_identity(
        json!([{"peerCertificate": {}}]),
        json!([{"name": "teams", "action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["team-*"]}}]}]}]),
    );
    assert_eq!(outcome(&allow_team, &get().peer_certificate(&["spiffe://td/ns/team-a/sa/x"], &[])), Outcome::Allow);
    assert_eq!(outcome(&allow_team, &get().peer_certificate(&["spiffe://td/ns/teams/sa/x"], &[])), Outcome::Denied);
}

#[test]
fn an_unreadable_certificate_refuses_what_needs_the_identity() {
    // Envoy shows a URI SAN but not the certificate: the other SANs are
    // unknown.
    let partial = get().property(&["connection", "uri_san_peer_certificate"], SLEEP);
    let garbled = get()
        .property(&["connection", "peer_certificate"], "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .property(&["connection", "uri_san_peer_certificate"], SLEEP);
    let deny = with_identity(json!([{"peerCertificate": {}}]), deny_admin());
    for req in [&partial, &garbled] {
        let d = decide(&deny, req);
        assert_eq!(d.outcome, Outcome::Denied);
        assert_eq!(d.reason, Reason::UnverifiableIdentity);
    }
    // Rules that do not look at the identity do not care.
    let by_path = with_identity(
        json!([{"peerCertificate": {}}]),
        json!([{"name": "p", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}]),
    );
    assert_eq!(outcome(&by_path, &partial), Outcome::Allow);
}

#[test]
fn principal_presence_matches_any_authenticated_name() {
    // Istio's `principals: ["*"]` is `.+` on every SAN and the subject.
    let p = with_identity(
        json!([{"peerCertificate": {}}]),
        json!([{"name": "any-peer", "action": "ALLOW", "rules": [{"from": [{"source": {"principals": ["*"]}}]}]}]),
    );
    assert_eq!(outcome(&p, &get().peer_certificate(&[], &["dns.example"])), Outcome::Allow);
    assert_eq!(outcome(&p, &get()), Outcome::Denied, "plaintext: no names");
}

#[test]
fn trust_domain_aliases_stand_for_each_other() {
    let p = policy(json!({
        "name": "t",
        "trustDomain": "td1",
        "trustDomainAliases": ["cluster.local", "old-td"],
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}],
        "authorization": [{"name": "a", "action": "ALLOW",
                           "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}]}]
    }));
    for td in ["td1", "cluster.local", "old-td"] {
        let req = get().principal(&format!("{td}/ns/a/sa/b"));
        assert_eq!(outcome(&p, &req), Outcome::Allow, "{td}");
    }
    assert_eq!(outcome(&p, &get().principal("other-td/ns/a/sa/b")), Outcome::Denied);

    // Without the mesh's trust domain, a principal is matched as written.
    let plain = allow(json!([{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}]));
    assert_eq!(outcome(&plain, &get().principal("td1/ns/a/sa/b")), Outcome::Denied);
}

#[test]
fn trust_domains_and_service_accounts_fields() {
    let p = policy(json!({
        "name": "t",
        "trustDomain": "new-td",
        "trustDomainAliases": ["old-td"],
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}],
        "authorization": [
            {"name": "no-bad", "action": "DENY", "rules": [{"from": [{"source": {"trustDomains": ["bad*"]}}]}]},
            {"name": "mesh", "action": "ALLOW", "rules": [
                {"from": [{"source": {"trustDomains": ["old-td"], "notServiceAccounts": ["ns1/blocked"]}}]}
            ]}
        ]
    }));
    let cases = [
        ("new-td/ns/ns1/sa/ok", Outcome::Allow),
        ("old-td/ns/ns1/sa/ok", Outcome::Allow),
        ("new-td/ns/ns1/sa/blocked", Outcome::Denied),
        ("new-td/ns/ns1/k/v/sa/blocked", Outcome::Denied),
        ("other/ns/ns1/sa/ok", Outcome::Denied),
        ("bad-td/ns/ns1/sa/ok", Outcome::Denied),
    ];
    for (principal, want) in cases {
        assert_eq!(outcome(&p, &get().principal(principal)), want, "{principal}");
    }
}

#[test]
fn ip_blocks_read_the_direct_peer_never_a_forwarded_address() {
    let allow_office = allow(json!([{"from": [{"source": {"ipBlocks": ["203.0.113.0/24"]}}]}]));
    assert_eq!(outcome(&allow_office, &get().source_ip("203.0.113.7")), Outcome::Allow);
    // Envoy took source.address from X-Forwarded-For (port 0): the direct
    // peer is unknown, so a request that needs it is refused.
    let spoofed = get().forwarded_source_ip("203.0.113.7");
    let d = decide(&allow_office, &spoofed);
    assert_eq!(d.outcome, Outcome::Denied);
    assert_eq!(d.reason, Reason::UnknownAddress);
    let deny_office = deny(json!([{"from": [{"source": {"notIpBlocks": ["10.0.0.0/8"]}}]}]));
    assert_eq!(decide(&deny_office, &get().forwarded_source_ip("10.1.1.1")).reason, Reason::UnknownAddress);

    // remoteIpBlocks is exactly that forwarded address.
    let remote = allow(json!([{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}]));
    assert_eq!(outcome(&remote, &spoofed), Outcome::Allow);
    assert_eq!(outcome(&remote, &get().source_ip("203.0.113.7")), Outcome::Allow);

    // The direct peer from filter state (Envoy's
    // %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%, set by an earlier filter).
    let from_state = policy(json!({
        "name": "t",
        "peerAddress": {"filterState": "warden.direct_peer"},
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}],
        "authorization": [{"name": "office", "action": "ALLOW",
                           "rules": [{"from": [{"source": {"ipBlocks": ["198.51.100.0/24"]}}]}]}]
    }));
    let behind_lb =
        get().forwarded_source_ip("203.0.113.7").property(&["filter_state", "warden.direct_peer"], "198.51.100.9:4444");
    assert_eq!(outcome(&from_state, &behind_lb), Outcome::Allow);
    assert_eq!(decide(&from_state, &spoofed).reason, Reason::UnknownAddress);
    // Only the policies that apply to the request count.
    let scoped = with_authz(json!([{"name": "office", "action": "ALLOW", "services": ["httpbin.org"],
                                    "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}]));
    assert_eq!(decide(&scoped, &spoofed).reason, Reason::UnknownAddress);
    let elsewhere = FakeAttributes::get("a.example.com", "/").forwarded_source_ip("203.0.113.7");
    assert_eq!(outcome(&scoped, &elsewhere), Outcome::Allow);
    // Dry-run and AUDIT policies never refuse for it.
    let dry = with_authz(json!([{"name": "d", "action": "DENY", "dryRun": true,
                                 "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}]));
    assert_eq!(outcome(&dry, &spoofed), Outcome::Allow);
}

#[test]
fn repeated_headers_match_on_any_value_both_ways() {
    let deny_bad = deny(json!([{"when": [{"key": "request.headers[x-abc]", "values": ["bad"]}]}]));
    for lines in [["ok", "bad"], ["bad", "ok"]] {
        let req = get().add_header("x-abc", lines[0]).add_header("x-abc", lines[1]);
        assert_eq!(outcome(&deny_bad, &req), Outcome::Denied, "{lines:?}");
    }
    // A value Envoy joined is one value, as Envoy's RBAC reads it.
    assert_eq!(outcome(&deny_bad, &get().header("x-abc", "ok,bad")), Outcome::Allow);

    // notValues: the condition holds only when no value is listed.
    let allow_not_bad = allow(json!([{"when": [{"key": "request.headers[x-abc]", "notValues": ["bad"]}]}]));
    let mixed = get().add_header("x-abc", "ok").add_header("x-abc", "bad");
    assert_eq!(outcome(&allow_not_bad, &mixed), Outcome::Denied);
    assert_eq!(outcome(&allow_not_bad, &get().add_header("x-abc", "ok").add_header("x-abc", "fine")), Outcome::Allow);
    // ALLOW on a value: one line with it is enough, as in Envoy.
    let allow_ok = allow(json!([{"when": [{"key": "request.headers[x-abc]", "values": ["ok"]}]}]));
    assert_eq!(outcome(&allow_ok, &mixed), Outcome::Allow);
}

#[test]
fn presence_includes_an_empty_value() {
    let deny_debug = deny(json!([{"when": [{"key": "request.headers[x-debug]", "values": ["*"]}]}]));
    assert_eq!(outcome(&deny_debug, &get().header("x-debug", "")), Outcome::Denied);
    assert_eq!(outcome(&deny_debug, &get().header("x-debug", "1")), Outcome::Denied);
    assert_eq!(outcome(&deny_debug, &get()), Outcome::Allow);
    let allow_absent = allow(json!([{"when": [{"key": "request.headers[x-debug]", "notValues": ["*"]}]}]));
    assert_eq!(outcome(&allow_absent, &get().header("x-debug", "")), Outcome::Denied);
}

#[test]
fn hosts_that_are_not_host_names_are_bad_requests() {
    let p = policy(json!({
        "name": "t",
        "services": [{"name": "example", "hosts": ["*.example.com"]}],
        "authorization": [{"name": "no-blocked", "action": "DENY",
                           "rules": [{"to": [{"operation": {"hosts": ["blocked.example.com"]}}]}]}]
    }));
    for authority in [
        ".example.com",
        "blocked..example.com",
        "ok.example.com,blocked.example.com",
        "blocked.example.com%2e",
        "user@blocked.example.com",
        "blocked_x.example.com",
        "blocked.example.com:80:80",
        "blocked.example.com ",
    ] {
        let d = decide(&p, &FakeAttributes::get(authority, "/"));
        assert_eq!(d.outcome, Outcome::BadRequest, "{authority:?}");
    }
    assert_eq!(outcome(&p, &FakeAttributes::get("blocked.example.com", "/")), Outcome::Denied);
    assert_eq!(outcome(&p, &FakeAttributes::get("ok.example.com", "/")), Outcome::Allow);
    // HTTP/2: a Host header that disagrees with :authority, or a second
    // :authority.
    let h2 = FakeAttributes::get("ok.example.com", "/").header("host", "blocked.example.com");
    assert_eq!(outcome(&p, &h2), Outcome::BadRequest);
    let two = FakeAttributes::get("ok.example.com", "/").add_header(":authority", "blocked.example.com");
    assert_eq!(outcome(&p, &two), Outcome::BadRequest);
}

#[test]
fn hosts_and_ports_are_never_looser_than_istios_reading() {
    let allow_google = with_authz(json!([{"name": "g", "action": "ALLOW",
                                           "rules": [{"to": [{"operation": {"hosts": ["httpbin.org"]}}]}]}]));
    // Istio compares `httpbin.org:8080` with `httpbin.org` and denies.
    assert_eq!(outcome(&allow_google, &FakeAttributes::get("httpbin.org:80", "/")), Outcome::Denied);
    assert_eq!(outcome(&allow_google, &FakeAttributes::get("HTTPBIN.ORG", "/")), Outcome::Allow);

    // A DENY also catches the port-less reading (Istio would not).
    let deny_host = with_authz(json!([{"name": "d", "action": "DENY",
                                        "rules": [{"to": [{"operation": {"hosts": ["httpbin.org"]}}]}]}]));
    assert_eq!(outcome(&deny_host, &FakeAttributes::get("httpbin.org:443", "/")), Outcome::Denied);
    // notHosts in an ALLOW: a match on either reading excludes.
    let allow_not = with_authz(json!([{"name": "a", "action": "ALLOW",
                                        "rules": [{"to": [{"operation": {"notHosts": ["httpbin.org"]}}]}]}]));
    assert_eq!(outcome(&allow_not, &FakeAttributes::get("httpbin.org:443", "/")), Outcome::Denied);
    // notHosts in a DENY: only a match on both readings spares the request.
    let deny_not = with_authz(json!([{"name": "d", "action": "DENY",
                                       "rules": [{"to": [{"operation": {"notHosts": ["httpbin.org"]}}]}]}]));
    assert_eq!(outcome(&deny_not, &FakeAttributes::get("httpbin.org:443", "/")), Outcome::Denied);
    assert_eq!(outcome(&deny_not, &FakeAttributes::get("httpbin.org", "/")), Outcome::Allow);

    // Ports: Istio reads the listener's, Warden the one the request names.
    let deny_8080 = with_authz(json!([{"name": "d", "action": "DENY",
                                        "rules": [{"to": [{"operation": {"ports": [8080]}}]}]}]));
    let sneaky = FakeAttributes::get("httpbin.org:443", "/").destination_port(8080);
    assert_eq!(outcome(&deny_8080, &sneaky), Outcome::Denied);
}
