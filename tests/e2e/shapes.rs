//! The harness hands the filter what Envoy hands it: the same requests go
//! through a real Envoy 1.40 and through the harness's model of it
//! (`warden::testing::envoy`), each to the probe filter, which answers
//! with every header pair and property it was given. The two dumps must be
//! equal byte for byte — under each HTTP connection manager set-up a
//! gateway meets (Istio's, Envoy's defaults, trusted proxies in front,
//! XFCC forwarded or appended), for repeated and joined headers, a second
//! Host line, whitespace, forged `x-forwarded-*` and `x-envoy-*` headers,
//! TLS with and without a certificate of several SANs, and source
//! addresses and ports of their own, and `CONNECT` (forward-proxy tunnels,
//! with and without tunnel bytes, and the targets and framing Envoy's
//! codec refuses). Requests Envoy answers itself must be ones the model
//! says Envoy answers, with the same status.
//!
//! Masked: the random parts (`x-request-id` Envoy generates, the client's
//! ephemeral port).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use warden::harness::{Host, HostOptions};
use warden::testing::envoy::{self, ClientCertificate, Connection, ForwardClientCert, Hcm, Wire};

use super::bootstrap;
use super::client::{Request, Tls};
use super::gateway::Gateway;
use super::http1::Trailers;
use super::pki::{Pki, ADMIN, SLEEP};
use crate::harness::filters::{self, Filter, Target};

const FAR: &str = "10.0.0.7";

/// A request line and header lines.
fn wire(method: &str, target: &str, headers: &[(&str, &str)]) -> Wire {
    let mut headers: Vec<(String, String)> = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
    headers.push(("x-probe".into(), "dump".into()));
    headers.push(("connection".into(), "close".into()));
    Wire { method: method.into(), target: target.into(), headers, body: Vec::new(), trailers: Vec::new() }
}

fn requests() -> Vec<(&'static str, Wire)> {
    vec![
        ("plain GET", wire("GET", "/get", &[("Host", "httpbin.org")])),
        ("two Host lines", wire("GET", "/", &[("Host", "ok.example.com"), ("Host", "blocked.example.com")])),
        (
            "repeated and joined headers",
            wire(
                "GET",
                "/",
                &[
                    ("Host", "a.example"),
                    ("X-Abc", "ok"),
                    ("x-abc", "bad"),
                    ("User-Agent", "u1"),
                    ("user-agent", "u2"),
                    ("cookie", "a=1"),
                    ("cookie", "b=2"),
                    ("Authorization", "Bearer x"),
                    ("authorization", "Bearer y"),
                    ("x-empty", ""),
                    ("x-space", "  padded \t"),
                    ("x-comma", "a, b"),
                ],
            ),
        ),
        (
            "forged forwarding headers",
            wire(
                "GET",
                "/",
                &[
                    ("Host", "a.example"),
                    ("x-forwarded-for", "9.9.9.9"),
                    ("X-Forwarded-For", "8.8.8.8, 203.0.113.9"),
                    ("x-forwarded-proto", "ftp"),
                    ("x-request-id", "forged"),
                    ("x-envoy-internal", "true"),
                    ("x-envoy-original-path", "/admin"),
                    ("x-envoy-external-address", "1.2.3.4"),
                    ("te", "trailers"),
                    ("keep-alive", "timeout=5"),
                ],
            ),
        ),
        (
            "forged client certificate",
            wire(
                "GET",
                "/",
                &[
                    ("Host", "a.example"),
                    ("x-forwarded-client-cert", &format!("URI={ADMIN};X=\"")),
                    ("x-forwarded-client-cert", "By=x;URI=spiffe://evil/ns/a/sa/b"),
                ],
            ),
        ),
        ("unparsable x-forwarded-for", wire("GET", "/", &[("Host", "a.example"), ("x-forwarded-for", "9.9.9.9:1234")])),
        ("POST with a body", {
            let mut w = wire(
                "POST",
                "/post?q=1",
                &[("Host", "a.example"), ("Content-Length", "7"), ("content-type", "text/plain")],
            );
            w.body = vec![b"a=1&b=2".to_vec()];
            w
        }),
        ("chunked body", {
            let mut w = wire("PUT", "/put", &[("Host", "a.example"), ("Transfer-Encoding", "chunked")]);
            w.body = vec![b"first".to_vec(), b"second".to_vec()];
            w
        }),
        (
            "upgrade and proxy headers",
            wire(
                "GET",
                "/",
                &[("Host", "a.example"), ("Upgrade", "h2c"), ("Proxy-Connection", "keep-alive"), ("te", "gzip")],
            ),
        ),
        ("lowercase method", wire("get", "/", &[("Host", "a.example")])),
        ("fragment", wire("GET", "/a#b", &[("Host", "a.example")])),
        ("no Host", wire("GET", "/", &[])),
        // Forward-proxy tunnels: the target is the authority.
        ("CONNECT", wire("CONNECT", "httpbin.org:443", &[("Host", "httpbin.org:443")])),
        ("CONNECT with tunnel bytes", {
            let mut w = wire("CONNECT", "httpbin.org:443", &[("Host", "httpbin.org:443")]);
            w.body = vec![b"\x16\x03\x01 a ClientHello".to_vec()];
            w
        }),
        (
            "CONNECT with other Host lines",
            wire("CONNECT", "HTTPBIN.org:8443", &[("Host", "other.example"), ("host", "x.example:80")]),
        ),
        ("CONNECT without Host", wire("CONNECT", "203.0.113.9:0443", &[("Content-Length", "0")])),
        ("CONNECT to IPv6", wire("CONNECT", "[::1]:443", &[("Host", "[::1]:443"), ("User-Agent", "curl")])),
        ("CONNECT to an IPv6 zone", wire("CONNECT", "[fe80::1%25eth0]:443", &[])),
        ("CONNECT to IPv4 in brackets", wire("CONNECT", "[1.2.3.4]:443", &[])),
        ("CONNECT to no address in brackets", wire("CONNECT", "[abcd]:443", &[])),
        ("CONNECT without a port", wire("CONNECT", "httpbin.org", &[("Host", "httpbin.org")])),
        ("CONNECT without a host", wire("CONNECT", ":443", &[])),
        ("CONNECT with an empty port", wire("CONNECT", "httpbin.org:", &[])),
        ("CONNECT to port 65536", wire("CONNECT", "httpbin.org:65536", &[])),
        ("CONNECT to a path", wire("CONNECT", "httpbin.org:443/get", &[])),
        ("CONNECT to an absolute URL", wire("CONNECT", "http://httpbin.org:443", &[])),
        ("CONNECT with user info", wire("CONNECT", "user@httpbin.org:443", &[])),
        ("CONNECT to a host with _", wire("CONNECT", "a_b.example:443", &[])),
        ("CONNECT with a body length", wire("CONNECT", "httpbin.org:443", &[("Content-Length", "5")])),
        ("CONNECT chunked", wire("CONNECT", "httpbin.org:443", &[("Transfer-Encoding", "chunked")])),
    ]
}

/// The ways a gateway's HCM is set up.
fn managers() -> Vec<(&'static str, Hcm)> {
    vec![
        ("istio gateway", Hcm::default()),
        (
            "envoy defaults",
            Hcm {
                use_remote_address: false,
                xff_num_trusted_hops: 0,
                forward_client_cert: ForwardClientCert::Sanitize,
            },
        ),
        (
            "one trusted proxy, append",
            Hcm {
                use_remote_address: true,
                xff_num_trusted_hops: 1,
                forward_client_cert: ForwardClientCert::AppendForward,
            },
        ),
        (
            "xff trusted, forward only",
            Hcm {
                use_remote_address: false,
                xff_num_trusted_hops: 1,
                forward_client_cert: ForwardClientCert::ForwardOnly,
            },
        ),
    ]
}

/// How the client connects.
#[derive(Clone, Copy)]
enum Via {
    Plain,
    TlsAnonymous,
    TlsWithCertificate,
}

/// The dump, parsed: header pairs in order and properties.
#[derive(Debug, PartialEq, Eq)]
struct Dump {
    headers: Vec<(String, String)>,
    properties: BTreeMap<String, Option<String>>,
}

fn parse_dump(body: &[u8]) -> Dump {
    let text = String::from_utf8_lossy(body);
    let unhex = |h: &str| {
        let bytes: Vec<u8> =
            (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex")).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let mut dump = Dump { headers: Vec::new(), properties: BTreeMap::new() };
    for line in text.lines() {
        let (kind, rest) = line.split_once(' ').expect("dump line");
        match (kind, rest.split_once('=')) {
            ("h" | "t", Some((n, v))) => dump.headers.push((unhex(n), unhex(v))),
            ("p", Some((p, v))) => {
                dump.properties.insert(p.to_owned(), Some(unhex(v)));
            }
            ("p", None) => {
                dump.properties.insert(rest.trim_end_matches(" absent").to_owned(), None);
            }
            _ => panic!("dump line {line:?}"),
        }
    }
    dump
}

/// The random parts replaced: a generated request id, the client's port.
fn masked(mut dump: Dump) -> Dump {
    for (name, value) in &mut dump.headers {
        let generated = value.len() == 36 && value.bytes().filter(|b| *b == b'-').count() == 4;
        if name == "x-request-id" && (generated || value == envoy::REQUEST_ID) {
            *value = "<generated>".into();
        }
    }
    for (key, value) in &mut dump.properties {
        if let Some(v) = value {
            if key == "source.address" && !v.ends_with(":0") {
                *v = v.rsplit_once(':').map(|(ip, _)| format!("{ip}:<client>")).unwrap_or_default();
            }
            if key == "source.port" && v.bytes().any(|b| b != 0) {
                *v = "<client>".into();
            }
        }
    }
    dump
}

/// Where two dumps differ, short.
fn difference(envoy: &Dump, harness: &Dump) -> String {
    let short = |v: &str| if v.len() > 80 { format!("{}…", &v[..80]) } else { v.to_owned() };
    let mut out = String::new();
    if envoy.headers != harness.headers {
        let names = |d: &Dump| d.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(" ");
        out.push_str(&format!(
            "    header order: envoy   {}\n                  harness {}\n",
            names(envoy),
            names(harness)
        ));
        for (e, h) in envoy.headers.iter().zip(&harness.headers) {
            if e != h {
                out.push_str(&format!("    envoy {}: {}  /  harness {}: {}\n", e.0, short(&e.1), h.0, short(&h.1)));
            }
        }
    }
    for (key, value) in &envoy.properties {
        let other = harness.properties.get(key).cloned().flatten();
        if value != &other {
            out.push_str(&format!("    property {key}: envoy {value:?} / harness {other:?}\n"));
        }
    }
    out
}

#[test]
fn the_harness_hands_the_filter_what_envoy_hands_it() {
    let probe = filters::path(Filter::Probe, Target::Wasip1);
    let host = Host::new(&std::fs::read(&probe).expect("the probe"), HostOptions::default()).expect("probe host");
    let pki = Pki::shared();
    let two_sans = pki.identity_with(&[SLEEP.to_owned(), ADMIN.to_owned()], &["dns.example"]);
    let far: IpAddr = FAR.parse().unwrap();
    let mut problems = Vec::new();
    let mut compared = 0;
    for (hcm_name, hcm) in managers() {
        let gw = Gateway::launch(vec![bootstrap::probe(&probe)], &[80, 8443], hcm.clone(), &[far], 200);
        let mut vm = host.vm(b"").expect("probe VM");
        for (name, request) in requests() {
            for (via, port, source) in [
                (Via::Plain, 80, "127.0.0.1"),
                (Via::TlsWithCertificate, 8443, FAR),
                (Via::TlsAnonymous, 80, FAR),
                (Via::Plain, 8443, FAR),
            ] {
                let label = format!("{hcm_name} / {name} / port {port} from {source}");
                let source_ip: IpAddr = source.parse().unwrap();
                let tls = match via {
                    Via::Plain => None,
                    Via::TlsAnonymous => Some(Tls::Anonymous),
                    Via::TlsWithCertificate => Some(Tls::As(&two_sans)),
                };
                let dial = match tls {
                    Some(tls) => gw.envoy.tls(port, tls),
                    None => gw.envoy.plain(port),
                }
                .source_ip(source_ip);
                let mut raw = Request::raw(&request.method, &request.target, request.headers.clone());
                let chunked = request.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
                if chunked {
                    raw = raw.chunked(request.body.clone(), std::time::Duration::ZERO);
                } else if let Some(body) = request.body.first() {
                    raw = raw.body(body.clone());
                }
                let response = dial.send(&raw).unwrap_or_else(|e| panic!("{label}: {e}"));

                let connection = Connection {
                    source: SocketAddr::new(source_ip, 40000),
                    listener: SocketAddr::from(([127, 0, 0, 1], port)),
                    tls: tls.map(|t| match t {
                        Tls::As(id) => {
                            Some(ClientCertificate { pem: id.cert_pem.clone(), subject: format!("CN={SLEEP}") })
                        }
                        Tls::Anonymous => None,
                    }),
                    sni: None,
                    // The namespace's one address that is not loopback.
                    node: far,
                };
                let modelled = envoy::request(&request, &connection, &hcm);
                compared += 1;
                match (response.header("x-probe-dump"), modelled) {
                    (Some(_), Ok(model)) => {
                        let outcome = vm.run(&model);
                        let Some(local) = outcome.local_response else {
                            problems.push(format!("{label}: the probe did not answer in the harness"));
                            continue;
                        };
                        let envoy_dump = masked(parse_dump(&response.body));
                        let harness_dump = masked(parse_dump(&local.body));
                        if envoy_dump != harness_dump {
                            problems.push(format!("{label}:\n{}", difference(&envoy_dump, &harness_dump)));
                        }
                    }
                    (None, Err(refused)) if response.status == refused.status => {}
                    (None, model) => problems.push(format!(
                        "{label}: Envoy answered {} itself, the model says {:?}",
                        response.status,
                        model.map(|_| "the filter runs")
                    )),
                    (Some(_), Err(refused)) => problems.push(format!(
                        "{label}: Envoy ran the filter, the model says Envoy answers {} ({})",
                        refused.status, refused.reason
                    )),
                }
            }
        }
    }
    assert!(compared >= 100, "compared only {compared} requests");
    assert!(problems.is_empty(), "{} of {compared} requests differ:\n{}", problems.len(), problems.join("\n"));
}

/// A plain connection from 127.0.0.1 to port 80, as the tests below make
/// it.
fn plain_connection() -> Connection {
    Connection {
        source: SocketAddr::new([127, 0, 0, 1].into(), 40000),
        listener: SocketAddr::from(([127, 0, 0, 1], 80)),
        tls: None,
        sni: None,
        node: FAR.parse().unwrap_or_else(|e| panic!("{FAR}: {e}")),
    }
}

/// Trailers after a chunked body reach the filter as the harness hands
/// them over (Envoy with `enable_trailers`, as the test gateways run): the
/// probe answers with the trailers it was handed, in Envoy and in the
/// harness, and the two must be equal, for repeated names, names Envoy
/// joins among headers, mixed case and padded values, with and without a
/// body before them.
#[test]
fn trailers_reach_the_filter_as_the_harness_hands_them() {
    let probe = filters::path(Filter::Probe, Target::Wasip1);
    let host = Host::new(&std::fs::read(&probe).expect("the probe"), HostOptions::default()).expect("probe host");
    let gw = Gateway::launch(vec![bootstrap::probe(&probe)], &[80], Hcm::default(), &[], 200);
    let mut vm = host.vm(b"").expect("probe VM");
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    };
    let cases: Vec<(&str, Vec<Vec<u8>>, Trailers)> = vec![
        ("one trailer", vec![b"abc".to_vec()], pairs(&[("x-checksum", "sha256=1")])),
        ("no body", Vec::new(), pairs(&[("x-checksum", "sha256=1")])),
        (
            "repeated, joined and padded",
            vec![b"ab".to_vec(), b"c".to_vec()],
            pairs(&[
                ("X-Api-Key", "first"),
                ("x-api-key", "second"),
                ("User-Agent", "u1"),
                ("user-agent", "u2"),
                ("Authorization", "Bearer x"),
                ("authorization", "Bearer y"),
                ("x-space", "  padded \t"),
                ("x-empty", ""),
                ("grpc-status", "0"),
            ]),
        ),
    ];
    let mut problems = Vec::new();
    for (name, body, trailers) in cases {
        let headers = pairs(&[("Host", "a.example"), ("Transfer-Encoding", "chunked"), ("x-probe", "dump-trailers")]);
        let mut request = Wire { method: "POST".into(), target: "/post".into(), headers, body, trailers };
        let raw = Request::raw(&request.method, &request.target, request.headers.clone())
            .chunked(request.body.clone(), std::time::Duration::ZERO)
            .trailers(request.trailers.clone());
        let response = gw.envoy.plain(80).send(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        request.headers.push(("connection".into(), "close".into()));
        let connection = plain_connection();
        let model = envoy::request(&request, &connection, &Hcm::default()).expect("the filter runs");
        let outcome = vm.run(&model);
        let (Some(_), Some(local)) = (response.header("x-probe-dump"), outcome.local_response) else {
            problems.push(format!("{name}: the probe did not answer in both (Envoy: {})", response.status));
            continue;
        };
        let (in_envoy, in_harness) = (parse_dump(&response.body), parse_dump(&local.body));
        if in_envoy != in_harness {
            problems.push(format!("{name}:\n    envoy   {:?}\n    harness {:?}", in_envoy.headers, in_harness.headers));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A filter's changes to the request headers land where Envoy puts them:
/// the probe's `headers` op replaces a name that came on two lines, sets a
/// new one, adds one, removes two; the headers the upstream receives from
/// Envoy and those the harness forwards must be the same lines in the
/// same order (Envoy's own additions aside).
#[test]
fn header_map_changes_land_where_envoy_puts_them() {
    let probe = filters::path(Filter::Probe, Target::Wasip1);
    let host = Host::new(&std::fs::read(&probe).expect("the probe"), HostOptions::default()).expect("probe host");
    let gw = Gateway::launch(vec![bootstrap::probe(&probe)], &[80], Hcm::default(), &[], 200);
    let mut vm = host.vm(b"").expect("probe VM");
    let lines = [
        ("Host", "a.example"),
        ("x-probe", "headers"),
        ("x-replace", "a"),
        ("x-dup", "first"),
        ("x-replace", "b"),
        ("x-dup", "second"),
        ("x-remove", "gone"),
        ("x-remove-too", "gone"),
        ("x-last", "z"),
        ("connection", "close"),
    ];
    let headers: Vec<(String, String)> = lines.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
    let response = gw.envoy.plain(80).send(&Request::raw("GET", "/orig", headers.clone())).expect("a response");
    assert_eq!(response.status, 200, "{}", response.text());
    let ours = |name: &str| {
        ["x-probe", "x-replace", "x-dup", "x-remove", "x-remove-too", "x-last", "x-set", "x-multi"].contains(&name)
    };
    let received = gw.upstream.received();
    let in_envoy: Vec<(String, String)> = received[0]
        .headers
        .0
        .iter()
        .filter(|(n, _)| ours(n))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();

    let wire = Wire { method: "GET".into(), target: "/orig".into(), headers, body: Vec::new(), trailers: Vec::new() };
    let connection = plain_connection();
    let model = envoy::request(&wire, &connection, &Hcm::default()).expect("the filter runs");
    let forwarded = vm.run(&model).forwarded.expect("the harness forwards it");
    let in_harness: Vec<(String, String)> = forwarded
        .headers
        .iter()
        .filter(|(n, _)| ours(n))
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    assert_eq!(in_harness, in_envoy);
}
