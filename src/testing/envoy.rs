//! What Envoy 1.40 hands an HTTP filter for an HTTP/1.1 request: the
//! header map after its codec and its HTTP connection manager (HCM) have
//! had their say, and the properties of the connection.
//!
//! Every rule here was measured against Envoy 1.40 (the end-to-end test
//! `e2e::shapes` sends the same requests to Envoy and to this model through
//! a probe filter and requires byte-equal results), not taken from docs:
//!
//! - names are lowercased and values trimmed of spaces and tabs;
//! - `Host` becomes `:authority`; two `Host` lines become one value joined
//!   with `,` (which Warden then refuses as not a host name);
//! - the headers Envoy knows (its "inline" headers: `user-agent`,
//!   `x-forwarded-for`, `authorization`, `content-type`, …, see
//!   [`JOINED`]) arriving on several lines become one value joined with
//!   `,`; every other header stays one entry per line, in order;
//! - hop-by-hop headers go (`connection`, `keep-alive`, `upgrade`, …), and
//!   so do Envoy's internal `x-envoy-*` headers from an external client;
//! - the HCM then adds or rewrites `x-forwarded-for`,
//!   `x-envoy-external-address`, `x-forwarded-proto`, `x-request-id` and
//!   `x-forwarded-client-cert` as its settings ([`Hcm`]) say, and derives
//!   `source.address` from `x-forwarded-for` when it trusts it (then with
//!   port 0).

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use warden_engine::request::{encode_port, property};
use warden_harness::{Headers, Request};

/// The HTTP connection manager settings that change what a filter sees.
/// The defaults are an Istio egress gateway's (`use_remote_address`, no
/// trusted proxies in front, `SANITIZE_SET` with subject, certificate, DNS
/// and URI SANs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hcm {
    /// Envoy's `use_remote_address`: the peer is the client (and is
    /// appended to `x-forwarded-for`); false: the last `x-forwarded-for`
    /// entry is.
    #[serde(default = "yes")]
    pub use_remote_address: bool,
    /// `xff_num_trusted_hops` (Istio: `gatewayTopology.numTrustedProxies`).
    #[serde(default)]
    pub xff_num_trusted_hops: u32,
    /// `forward_client_cert_details` (Istio:
    /// `gatewayTopology.forwardClientCertDetails`).
    #[serde(default)]
    pub forward_client_cert: ForwardClientCert,
}

fn yes() -> bool {
    true
}

impl Default for Hcm {
    fn default() -> Self {
        Hcm { use_remote_address: true, xff_num_trusted_hops: 0, forward_client_cert: ForwardClientCert::default() }
    }
}

/// Envoy's `forward_client_cert_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ForwardClientCert {
    /// Remove the client's `x-forwarded-client-cert` (Envoy's default).
    Sanitize,
    /// Pass the client's on.
    ForwardOnly,
    /// Pass it on and append an element for the client's certificate.
    AppendForward,
    /// Replace it with an element for the client's certificate (Istio's
    /// gateways).
    #[default]
    SanitizeSet,
    /// Pass it on, TLS or not.
    AlwaysForwardOnly,
}

impl ForwardClientCert {
    /// Envoy's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardClientCert::Sanitize => "SANITIZE",
            ForwardClientCert::ForwardOnly => "FORWARD_ONLY",
            ForwardClientCert::AppendForward => "APPEND_FORWARD",
            ForwardClientCert::SanitizeSet => "SANITIZE_SET",
            ForwardClientCert::AlwaysForwardOnly => "ALWAYS_FORWARD_ONLY",
        }
    }
}

/// A client certificate as Envoy describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate, PEM.
    pub pem: String,
    /// Its subject as Envoy prints it (RFC 2253), e.g. `CN=sleep`.
    pub subject: String,
}

/// The connection a request arrives on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The client's address (the direct peer).
    pub source: SocketAddr,
    /// The listener's address.
    pub listener: SocketAddr,
    /// TLS, and the client certificate if one was presented.
    pub tls: Option<Option<ClientCertificate>>,
    /// Envoy's own address (its first address that is not loopback): what
    /// it appends to `x-forwarded-for` for a client on 127.0.0.1.
    pub node: IpAddr,
}

/// An HTTP/1.1 request as the client writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wire {
    /// The method, as sent.
    pub method: String,
    /// The request target (origin form: path and query).
    pub target: String,
    /// The header lines in order, `Host` included, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, chunk by chunk as it arrives.
    pub body: Vec<Vec<u8>>,
}

/// Envoy answers the request itself, before any filter runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The status Envoy answers with.
    pub status: u16,
    /// Why (Envoy's response code details, roughly).
    pub reason: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envoy answers {} itself ({}): the request never reaches the filter", self.status, self.reason)
    }
}

impl std::error::Error for Refused {}

/// Headers Envoy 1.40 keeps as one entry, joining repeated lines with
/// `,` (measured: its inline request headers).
pub const JOINED: &[&str] = &[
    "accept",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "authorization",
    "cache-control",
    "cdn-loop",
    "content-encoding",
    "content-type",
    "expect",
    "grpc-accept-encoding",
    "grpc-timeout",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "origin",
    "pragma",
    "referer",
    "user-agent",
    "via",
    "x-client-trace-id",
    "x-envoy-attempt-count",
    "x-envoy-decorator-operation",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-external-address",
    "x-envoy-is-timeout-retry",
    "x-envoy-original-path",
    "x-forwarded-client-cert",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-request-id",
];

/// Hop-by-hop headers the codec and the HCM remove (`te` stays when it is
/// `trailers`).
const HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "proxy-connection", "upgrade", "transfer-encoding"];

/// `x-envoy-*` headers Envoy removes from an external client's request
/// (measured; with `use_remote_address` more go, see [`internal_headers`]).
const ENVOY_INTERNAL: &[&str] = &[
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-force-trace",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-internal",
    "x-envoy-ip-tags",
    "x-envoy-max-retries",
    "x-envoy-original-url",
    "x-envoy-retriable-header-names",
    "x-envoy-retriable-status-codes",
    "x-envoy-retry-grpc-on",
    "x-envoy-retry-on",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-stream-duration-ms",
];

/// The request id Envoy would generate (a UUID v4); the harness uses a
/// fixed one so runs are repeatable.
pub const REQUEST_ID: &str = "00000000-0000-4000-8000-000000000000";

/// The request a filter sees, or Envoy's own answer.
pub fn request(wire: &Wire, connection: &Connection, hcm: &Hcm) -> Result<Request, Refused> {
    let bad = |reason| Err(Refused { status: 400, reason });
    if !is_method(&wire.method) {
        return bad("invalid method");
    }
    if wire.target.contains('#') {
        return bad("fragment in the path");
    }
    let tls = connection.tls.is_some();

    // The codec: lowercased names, trimmed values, Host into :authority,
    // known headers joined.
    let mut authority: Option<String> = None;
    let mut headers: Headers = Vec::new();
    for (name, value) in &wire.headers {
        let name = name.to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']);
        if name == "host" {
            match &mut authority {
                Some(a) => {
                    a.push(',');
                    a.push_str(value);
                }
                None => authority = Some(value.to_owned()),
            }
            continue;
        }
        if JOINED.contains(&name.as_str()) {
            if let Some((_, existing)) = headers.iter_mut().find(|(n, _)| *n == name) {
                existing.push(b',');
                existing.extend_from_slice(value.as_bytes());
                continue;
            }
        }
        headers.push((name, value.as_bytes().to_vec()));
    }
    let Some(authority) = authority else { return bad("no Host") };

    // The HCM.
    headers.retain(|(n, v)| {
        !(HOP_BY_HOP.contains(&n.as_str())
            || (n == "te" && v.as_slice() != b"trailers")
            || internal_headers(hcm).contains(&n.as_str()))
    });
    let peer = connection.source;
    let mut forwarded_for = value(&headers, "x-forwarded-for");
    if hcm.use_remote_address {
        let appended = if peer.ip() == IpAddr::from([127, 0, 0, 1]) { connection.node } else { peer.ip() };
        let appended = appended.to_string();
        forwarded_for = Some(match forwarded_for {
            Some(existing) => format!("{existing},{appended}"),
            None => appended,
        });
    }
    let remote = remote_address(forwarded_for.as_deref(), peer, hcm);
    if let Some(xff) = &forwarded_for {
        put(&mut headers, "x-forwarded-for", xff);
    }
    let scheme = if tls { "https" } else { "http" };
    // A client's x-forwarded-proto is believed unless Envoy is the edge.
    let edge = hcm.use_remote_address && hcm.xff_num_trusted_hops == 0;
    if edge || value(&headers, "x-forwarded-proto").is_none() {
        put(&mut headers, "x-forwarded-proto", scheme);
    }
    if hcm.use_remote_address {
        put(&mut headers, "x-envoy-external-address", &remote.ip().to_string());
    }
    if hcm.use_remote_address || value(&headers, "x-request-id").is_none() {
        put(&mut headers, "x-request-id", REQUEST_ID);
    }
    forward_client_cert(&mut headers, connection, hcm);

    let mut all: Headers = vec![
        (":authority".into(), authority.into_bytes()),
        (":path".into(), wire.target.clone().into_bytes()),
        (":method".into(), wire.method.clone().into_bytes()),
        (":scheme".into(), scheme.into()),
    ];
    all.extend(headers);

    let mut request = Request { headers: all, body_chunks: wire.body.clone(), ..Request::default() };
    let source = if remote == peer { peer.to_string() } else { SocketAddr::new(remote.ip(), 0).to_string() };
    request = request
        .property(property::SOURCE_ADDRESS, source)
        .property(&["source", "port"], u64::from(remote.port()).to_le_bytes().to_vec())
        .property(&["destination", "address"], connection.listener.to_string())
        .property(property::DESTINATION_PORT, encode_port(connection.listener.port()))
        .property(&["connection", "mtls"], vec![u8::from(matches!(connection.tls, Some(Some(_))))]);
    if let Some(Some(cert)) = &connection.tls {
        request = with_certificate(request, cert);
    }
    Ok(request)
}

/// The `x-envoy-*` headers removed from an external client's request.
fn internal_headers(hcm: &Hcm) -> Vec<&'static str> {
    let mut list = ENVOY_INTERNAL.to_vec();
    if hcm.use_remote_address {
        list.extend([
            "x-envoy-original-path",
            "x-envoy-attempt-count",
            "x-envoy-decorator-operation",
            "x-envoy-downstream-service-cluster",
            "x-envoy-downstream-service-node",
            "x-envoy-is-timeout-retry",
        ]);
    }
    list
}

/// The peer certificate's properties, as Envoy shows them.
fn with_certificate(request: Request, cert: &ClientCertificate) -> Request {
    let names = warden_engine::identity::x509::pem_subject_alt_names(cert.pem.as_bytes()).unwrap_or_default();
    let mut request = request
        .property(property::PEER_CERTIFICATE, cert.pem.clone())
        .property(property::PEER_SUBJECT, cert.subject.clone());
    if let Some(uri) = names.uris.first() {
        request = request.property(property::PEER_URI_SAN, uri.clone());
    }
    if let Some(dns) = names.dns.first() {
        request = request.property(&["connection", "dns_san_peer_certificate"], dns.clone());
    }
    request
}

/// The HCM's address for the client: the peer, or the entry of
/// `x-forwarded-for` it trusts (`xff_num_trusted_hops` from the right,
/// after appending the peer with `use_remote_address`), with port 0.
fn remote_address(forwarded_for: Option<&str>, peer: SocketAddr, hcm: &Hcm) -> SocketAddr {
    if hcm.use_remote_address && hcm.xff_num_trusted_hops == 0 {
        return peer;
    }
    let Some(xff) = forwarded_for else { return peer };
    let entries: Vec<&str> = xff.split(',').map(str::trim).collect();
    let skip = hcm.xff_num_trusted_hops as usize;
    let Some(index) = entries.len().checked_sub(1 + skip) else { return peer };
    match entries.get(index).and_then(|e| e.parse::<IpAddr>().ok()) {
        Some(ip) => SocketAddr::new(ip, 0),
        None => peer,
    }
}

/// `x-forwarded-client-cert` as `forward_client_cert_details` leaves it.
fn forward_client_cert(headers: &mut Headers, connection: &Connection, hcm: &Hcm) {
    const XFCC: &str = "x-forwarded-client-cert";
    let cert = match &connection.tls {
        Some(Some(cert)) => Some(cert),
        _ => None,
    };
    match (hcm.forward_client_cert, cert) {
        (ForwardClientCert::AlwaysForwardOnly, _) => {}
        // Forwarding and appending apply to mTLS connections only.
        (_, None) | (ForwardClientCert::Sanitize, _) => {
            take(headers, XFCC);
        }
        (ForwardClientCert::ForwardOnly, Some(_)) => {}
        (ForwardClientCert::AppendForward, Some(cert)) => {
            let element = xfcc_element(cert);
            let value = match value(headers, XFCC) {
                Some(existing) => format!("{existing},{element}"),
                None => element,
            };
            put(headers, XFCC, &value);
        }
        (ForwardClientCert::SanitizeSet, Some(cert)) => put(headers, XFCC, &xfcc_element(cert)),
    }
}

/// The element Envoy writes for a client certificate with Istio's
/// `set_current_client_cert_details` (subject, cert, DNS, URI):
/// `Hash=…;Cert="…";Subject="…";URI=…;DNS=…`.
pub fn xfcc_element(cert: &ClientCertificate) -> String {
    let names = warden_engine::identity::x509::pem_subject_alt_names(cert.pem.as_bytes()).unwrap_or_default();
    let der = pem_der(&cert.pem).unwrap_or_default();
    let hash: String = Sha256::digest(&der).iter().map(|b| format!("{b:02x}")).collect();
    let mut element = format!("Hash={hash};Cert=\"{}\";Subject=\"{}\"", url_encode(&cert.pem), cert.subject);
    for uri in &names.uris {
        element.push_str(";URI=");
        element.push_str(uri);
    }
    for dns in &names.dns {
        element.push_str(";DNS=");
        element.push_str(dns);
    }
    element
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Percent-encoding of everything but RFC 3986 unreserved characters, as
/// Envoy encodes the certificate in `x-forwarded-client-cert`.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An uppercase token (Envoy's codec refuses anything else).
fn is_method(method: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn value(headers: &Headers, name: &str) -> Option<String> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// Removes a header, returning its (first) value.
fn take(headers: &mut Headers, name: &str) -> Option<String> {
    let found = value(headers, name);
    headers.retain(|(n, _)| n != name);
    found
}

/// Sets a header in place, or appends it.
fn put(headers: &mut Headers, name: &str, value: &str) {
    match headers.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value.as_bytes().to_vec(),
        None => headers.push((name.to_owned(), value.as_bytes().to_vec())),
    }
}
