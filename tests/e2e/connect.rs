//! Forward-proxy tunnels (`CONNECT host:port`, what applications using
//! `HTTPS_PROXY` send) and the SNI/Host check, through Warden in a real
//! Envoy 1.40, each case also run through the harness on the request the
//! model (`warden::testing::envoy`) says Envoy hands the filter: the two
//! must decide alike (status, `x-warden-decision`, the whole decision
//! record).
//!
//! What Envoy 1.40 does with `CONNECT allowed.example:443 HTTP/1.1`
//! (measured with the probe filter, see `e2e::shapes`, and Envoy's trace
//! log):
//!
//! - the HTTP filter gets `:authority` (the request target as sent, case
//!   kept; `Host` lines are ignored and dropped), `:method` and `:scheme`
//!   (`http`, or `https` over TLS), and no `:path`; the HCM adds its
//!   `x-forwarded-*` headers as for any request;
//! - the headers callback does not end the stream: an empty body callback
//!   follows it, then one per read of tunnel bytes (a filter that pauses
//!   the body holds the tunnel). An HTTP/1.1 client's close resets the
//!   stream: the body never ends;
//! - a local response from the headers callback reaches the client (with
//!   `connection: close`) and no upstream connection is made;
//! - Envoy refuses, before any filter, a target that is not `host:port`
//!   (400, so a CONNECT without a port never reaches Warden over
//!   HTTP/1.1), a `content-length` other than 0 (400) and any
//!   `transfer-encoding` (501);
//! - the filter sees a CONNECT whatever the routes say; for the router to
//!   end the tunnel and relay bytes over TCP, the route needs
//!   `upgrade_configs: [{upgrade_type: CONNECT, connect_config: {}}]`
//!   (without `connect_config` Envoy sends the CONNECT on to the upstream
//!   as an HTTP request; without a `connect_matcher` route it answers 404).
//!   The router answers 200 once the upstream connection is up, before the
//!   upstream sends anything.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use warden::engine::record::{DECISION_HEADER, FILTER_STATE_KEY};
use warden::harness::{Host, HostOptions, Outcome, Vm};
use warden::testing::envoy::{self, ClientCertificate, Connection, Hcm, Wire};
use warden::testing::runner::{CLIENT_PORT, NODE};

use super::bootstrap;
use super::client::{Dial, Request, Response, Tls};
use super::echo::Echo;
use super::envoy::{Envoy, Options};
use super::gateway::{namespace, Gateway};
use super::pki::{Identity, Pki, ADMIN, SLEEP};

/// The registered host.
const ALLOWED: &str = "allowed.example";
/// The port the gateway listens on, and the service's.
const PORT: u16 = 443;
/// What a denied CONNECT gets (not the default 403, to see the policy's).
const DENIED_STATUS: u16 = 451;

/// `allowed.example:443` registered; the admin may open tunnels to it,
/// anyone may `GET` it.
fn policy() -> Value {
    json!({
        "name": "forward-proxy",
        "services": [{"name": ALLOWED, "hosts": [ALLOWED], "ports": [PORT]}],
        "authorization": [{
            "name": "tunnels",
            "action": "ALLOW",
            "services": [ALLOWED],
            "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"]}}], "to": [{"operation": {"methods": ["CONNECT"]}}]},
                {"to": [{"operation": {"methods": ["GET"]}}]},
            ],
        }],
        "responses": {"denied": {"status": DENIED_STATUS, "body": "tunnel refused"}},
    })
}

/// Envoy with Warden as a forward proxy whose upstream is an echo server:
/// an opened tunnel reaches it.
struct Proxy {
    envoy: Envoy,
    echo: Echo,
}

impl Proxy {
    fn start() -> Proxy {
        let netns = namespace(&[]);
        let echo = Echo::start(&netns);
        let options = Options {
            filters: vec![bootstrap::warden(&policy())],
            upstream: echo.addr(),
            ports: vec![PORT],
            hcm: Hcm::default(),
            netns: Arc::clone(&netns),
        };
        let envoy = Envoy::launch(options).unwrap_or_else(|failure| panic!("{failure}"));
        Proxy { envoy, echo }
    }
}

/// Who connects, and how: TLS (with a client certificate or none), and
/// the server name the ClientHello asks for.
#[derive(Clone, Copy)]
struct Client {
    identity: Option<&'static Identity>,
    principal: &'static str,
    sni: Option<&'static str>,
}

impl Client {
    fn mtls(identity: &'static Identity, principal: &'static str) -> Client {
        Client { identity: Some(identity), principal, sni: None }
    }

    fn dial<'a>(&self, envoy: &'a Envoy) -> Dial<'a> {
        let tls = match self.identity {
            Some(identity) => Tls::As(identity),
            None => Tls::Anonymous,
        };
        let dial = envoy.tls(PORT, tls);
        match self.sni {
            Some(name) => dial.server_name(name),
            None => dial,
        }
    }

    /// The connection as the model describes it.
    fn connection(&self) -> Connection {
        Connection {
            source: SocketAddr::from(([127, 0, 0, 1], CLIENT_PORT)),
            listener: SocketAddr::from(([127, 0, 0, 1], PORT)),
            tls: Some(
                self.identity.map(|id| ClientCertificate {
                    pem: id.cert_pem.clone(),
                    subject: format!("CN={}", self.principal),
                }),
            ),
            sni: self.sni.map(str::to_owned),
            node: NODE,
        }
    }
}

/// `CONNECT target` with `Host: target`, as curl sends it, and `tunnel`
/// written right after the head.
fn connect(target: &str, tunnel: &[u8]) -> Request {
    Request::raw("CONNECT", target, vec![("Host".into(), target.into())]).body(tunnel.to_vec())
}

/// The request as the wire model has it: its `Host` line and `tunnel`.
fn wire(request: &Request, tunnel: &[u8]) -> Wire {
    let headers = request.authority().map(|host| vec![("Host".to_owned(), host.to_owned())]).unwrap_or_default();
    Wire {
        method: request.method().to_owned(),
        target: request.target().to_owned(),
        headers,
        body: if tunnel.is_empty() { Vec::new() } else { vec![tunnel.to_vec()] },
        trailers: Vec::new(),
    }
}

/// A VM of the filter in the harness, configured with [`policy`].
fn harness() -> Vm {
    let wasm = std::fs::read(warden::FILTER_WASM_PATH).expect("the filter was built");
    let host = Host::new(&wasm, HostOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    host.vm(policy().to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the modelled request in the harness; `Err`: the model says Envoy
/// answers it itself, with this status.
fn in_harness(vm: &mut Vm, wire: &Wire, client: &Client) -> Result<Outcome, u16> {
    envoy::request(wire, &client.connection(), &Hcm::default()).map(|request| vm.run(&request)).map_err(|r| r.status)
}

/// The decision record of the access-log line for `authority` and `method`.
fn logged_record(envoy: &Envoy, lines: usize, authority: &str, method: &str) -> Value {
    let entries = envoy.access_log(lines);
    let entry = entries
        .iter()
        .find(|e| e["authority"] == authority && e["method"] == method)
        .unwrap_or_else(|| panic!("no access-log line for {method} {authority}: {entries:#?}"));
    entry["warden"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| panic!("the access-log line has no decision record: {entry}"))
}

fn harness_record(outcome: &Outcome) -> Value {
    let text = outcome.filter_state_str(FILTER_STATE_KEY).expect("the harness run left a decision record");
    serde_json::from_str(&text).expect("the record is JSON")
}

/// Envoy's answer and the harness's agree: status, `x-warden-decision`.
fn assert_agree(what: &str, response: &Response, outcome: &Outcome) {
    assert_eq!(u32::from(response.status), outcome.status, "{what}: status in Envoy and in the harness");
    let harness_decision = outcome.local_response.as_ref().and_then(|local| {
        local.headers.iter().find(|(n, _)| n == DECISION_HEADER).map(|(_, v)| String::from_utf8_lossy(v))
    });
    assert_eq!(
        response.header(DECISION_HEADER),
        harness_decision.as_deref(),
        "{what}: x-warden-decision in Envoy and in the harness"
    );
}

#[test]
fn an_allowed_connect_opens_a_tunnel_that_carries_bytes_both_ways() {
    let proxy = Proxy::start();
    let admin = Client::mtls(&Pki::shared().admin, ADMIN);
    let target = format!("{ALLOWED}:{PORT}");
    let early = b"sent with the CONNECT\n";
    let request = connect(&target, early);

    let (response, tunnel) = admin
        .dial(&proxy.envoy)
        .open_tunnel(&request)
        .unwrap_or_else(|e| panic!("{request}: {e}\n{}", proxy.envoy.log_tail()));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("x-warden-decision"), None, "{response:?}");
    let mut tunnel = tunnel.expect("a 200 opens the tunnel");
    assert_eq!(tunnel.receive(early.len()).expect("the echo of the early bytes"), early);
    let later = b"\x16\x03\x01 and a ClientHello after the 200\n";
    tunnel.send(later).expect("write into the tunnel");
    assert_eq!(tunnel.receive(later.len()).expect("the echo"), later, "the upstream's bytes come back");
    drop(tunnel);

    let accepted = proxy.echo.accepted();
    assert_eq!(accepted.len(), 1, "one upstream connection: {accepted:?}");
    let upstream_bytes = [early.as_slice(), later].concat();
    assert_eq!(accepted[0].bytes, upstream_bytes, "the tunnel's bytes, and only they, reach the upstream");

    let mut vm = harness();
    let outcome = in_harness(&mut vm, &wire(&request, early), &admin).expect("the model hands the filter the CONNECT");
    assert_agree("allowed CONNECT", &response, &outcome);
    let forwarded = outcome.forwarded.as_ref().expect("the harness forwards it");
    assert_eq!(forwarded.body, early, "the filter holds none of the tunnel's bytes in the harness either");
    let record = logged_record(&proxy.envoy, 1, &target, "CONNECT");
    assert_eq!(record["decision"], "allow", "{record}");
    assert_eq!(record["rule"], 0, "{record}");
    assert_eq!(record, harness_record(&outcome), "the decision record in Envoy and in the harness");
}

#[test]
fn a_refused_connect_gets_the_policys_response_and_no_upstream_connection() {
    let proxy = Proxy::start();
    let pki = Pki::shared();
    let admin = Client::mtls(&pki.admin, ADMIN);
    let sleep = Client::mtls(&pki.sleep, SLEEP);
    let cases = [
        ("unregistered host", admin, "other.example:443", 502, "unregistered", "unregistered"),
        ("unregistered port", admin, "allowed.example:8443", 502, "unregistered", "unregistered"),
        ("wrong principal", sleep, "allowed.example:443", DENIED_STATUS, "denied", "no-allow-match"),
    ];
    let mut vm = harness();
    let tunnel = b"must not reach the upstream";
    for (i, (what, client, target, status, decision, reason)) in cases.iter().enumerate() {
        let request = connect(target, tunnel);
        let (response, opened) = client
            .dial(&proxy.envoy)
            .open_tunnel(&request)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", proxy.envoy.log_tail()));
        assert_eq!(response.status, *status, "{what}: {response:?}");
        assert_eq!(response.header("x-warden-decision"), Some(*decision), "{what}: {response:?}");
        assert!(opened.is_none(), "{what}: no tunnel");
        assert!(proxy.echo.accepted().is_empty(), "{what}: the upstream saw a connection: {:?}", proxy.echo.accepted());

        let outcome =
            in_harness(&mut vm, &wire(&request, tunnel), client).expect("the model hands the filter the CONNECT");
        assert_agree(what, &response, &outcome);
        assert!(outcome.forwarded.is_none(), "{what}: the harness forwards nothing");
        let record = logged_record(&proxy.envoy, i + 1, target, "CONNECT");
        assert_eq!(record["reason"], *reason, "{what}: {record}");
        assert_eq!(record, harness_record(&outcome), "{what}: the decision record in Envoy and in the harness");
    }
}

#[test]
fn a_connect_without_a_port_is_answered_by_envoy_before_the_filter() {
    let proxy = Proxy::start();
    let admin = Client::mtls(&Pki::shared().admin, ADMIN);
    let request = connect(ALLOWED, b"");

    let (response, opened) = admin
        .dial(&proxy.envoy)
        .open_tunnel(&request)
        .unwrap_or_else(|e| panic!("{request}: {e}\n{}", proxy.envoy.log_tail()));
    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(response.header("x-warden-decision"), None, "Envoy's codec answers, not Warden: {response:?}");
    assert!(opened.is_none());
    assert!(proxy.echo.accepted().is_empty(), "the upstream saw a connection: {:?}", proxy.echo.accepted());
    let entries = proxy.envoy.access_log(1);
    assert!(entries[0]["warden"].is_null(), "the filter decided nothing: {}", entries[0]);

    let mut vm = harness();
    assert_eq!(in_harness(&mut vm, &wire(&request, b""), &admin).err(), Some(400), "the model: Envoy answers 400");
    // Should a CONNECT without a port reach the filter (another codec),
    // Warden refuses it itself.
    let bare = warden::harness::Request::default()
        .header(":method", "CONNECT")
        .header(":authority", ALLOWED)
        .header(":scheme", "https");
    let outcome = vm.run(&bare);
    assert_eq!(outcome.status, 400);
    assert_eq!(harness_record(&outcome)["reason"], "missing-port");
}

#[test]
fn over_tls_a_host_that_is_not_the_server_name_is_refused() {
    let gw = Gateway::launch(vec![bootstrap::warden(&policy())], &[PORT], Hcm::default(), &[], 200);
    let pki = Pki::shared();
    let anonymous = Client { identity: None, principal: "", sni: Some(ALLOWED) };
    let admin = Client { identity: Some(&pki.admin), principal: ADMIN, sni: Some(ALLOWED) };
    let get = |host: &str| Request::get("/get").host(host);
    let cases = [
        ("Host other.example", anonymous, get("other.example"), 400, Some("bad-request"), "sni-mismatch"),
        ("Host allowed.example", anonymous, get(ALLOWED), 200, None, "allow-policy"),
        ("Host with the port", anonymous, get("allowed.example:443"), 200, None, "allow-policy"),
        ("CONNECT other.example", admin, connect("other.example:443", b""), 400, Some("bad-request"), "sni-mismatch"),
    ];
    let mut vm = harness();
    for (i, (what, client, request, status, decision, reason)) in cases.iter().enumerate() {
        let dial = client.dial(&gw.envoy);
        let response = if request.method() == "CONNECT" {
            dial.open_tunnel(request).map(|(response, _)| response)
        } else {
            dial.send(request)
        }
        .unwrap_or_else(|e| panic!("{what}: {e}\n{}", gw.envoy.log_tail()));
        assert_eq!(response.status, *status, "{what}: {response:?}");
        assert_eq!(response.header("x-warden-decision"), *decision, "{what}: {response:?}");

        let mut model = wire(request, b"");
        if request.method() != "CONNECT" {
            model.headers.push(("connection".into(), "close".into()));
        }
        let outcome = in_harness(&mut vm, &model, client).expect("the model hands the filter the request");
        assert_agree(what, &response, &outcome);
        let authority =
            if request.method() == "CONNECT" { request.target() } else { request.authority().unwrap_or_default() };
        let record = logged_record(&gw.envoy, i + 1, authority, request.method());
        assert_eq!(record["reason"], *reason, "{what}: {record}");
        assert_eq!(record, harness_record(&outcome), "{what}: the decision record in Envoy and in the harness");
    }
    let paths = gw.upstream.paths();
    assert_eq!(paths, ["/get", "/get"], "only the requests for the server name went upstream");
}
