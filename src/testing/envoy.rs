//! What Envoy 1.40 hands an HTTP filter for an HTTP/1.1 request: the
//! header map after its codec and its HTTP connection manager (HCM) have
//! had their say, and the properties of the connection; and what it shows
//! a network filter of a connection ([`connection`]).
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
//!
//! Trailers after a chunked body (which Envoy's HTTP/1.1 codec passes on
//! only with `enable_trailers`) are handed over lowercased and trimmed,
//! one entry per line: none are joined.
//!
//! A `CONNECT host:port` (a forward-proxy tunnel) is handed over as
//! `:authority` (the request target, as sent), `:method` and `:scheme`,
//! with no `:path`; `Host` lines are dropped. The codec answers itself
//! when the target is not `host:port` (400), when a `content-length` other
//! than `0` comes with it (400; `0` is dropped) and for any
//! `transfer-encoding` (501). The headers never end the stream: the codec
//! hands an empty body chunk after them, and then every read of tunnel
//! bytes is a body chunk. Envoy hands the filter this whether or not the
//! gateway's routes can tunnel (`connect_config`); a local response from
//! the headers callback reaches the client and no upstream connection is
//! made.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use warden_engine::request::{encode_port, property};
use warden_harness::{Headers, Request};

/// The HTTP connection manager settings that change what a filter sees.
/// The defaults are an Istio egress gateway's (`use_remote_address`, no
/// trusted proxies in front, `SANITIZE_SET` with subject, certificate, DNS
/// and URI SANs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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
    /// The server name of the client's TLS ClientHello, if it sent one
    /// (with TLS only).
    pub sni: Option<String>,
    /// Envoy's own address (its first address that is not loopback): what
    /// it appends to `x-forwarded-for` for a client on 127.0.0.1.
    pub node: IpAddr,
}

/// An HTTP/1.1 request as the client writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wire {
    /// The method, as sent.
    pub method: String,
    /// The request target: origin form (path and query), or for `CONNECT`
    /// authority form (`host:port`).
    pub target: String,
    /// The header lines in order, `Host` included, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, chunk by chunk as it arrives; for `CONNECT`, the tunnel's
    /// bytes, read by read.
    pub body: Vec<Vec<u8>>,
    /// Trailer lines after a chunked body, names as sent.
    pub trailers: Vec<(String, String)>,
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
    let connect = wire.method == "CONNECT";
    if connect {
        if let Some(refused) = connect_refused(wire) {
            return Err(refused);
        }
    }

    // The codec: lowercased names, trimmed values, Host into :authority
    // (a CONNECT's is its target), known headers joined.
    let mut authority: Option<String> = connect.then(|| wire.target.clone());
    let mut headers: Headers = Vec::new();
    for (name, value) in &wire.headers {
        let name = name.to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']);
        if connect && (name == "host" || (name == "content-length" && value == "0")) {
            continue;
        }
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

    let mut all: Headers = vec![(":authority".into(), authority.into_bytes())];
    if !connect {
        all.push((":path".into(), wire.target.clone().into_bytes()));
    }
    all.push((":method".into(), wire.method.clone().into_bytes()));
    all.push((":scheme".into(), scheme.into()));
    all.extend(headers);

    // A tunnel's headers do not end the stream: an empty chunk follows
    // them, then the tunnel's bytes. (Envoy never ends the stream from an
    // HTTP/1.1 client: its close resets the stream. The harness ends it
    // with the last chunk; the filter decided on the headers.)
    let body_chunks = if connect {
        std::iter::once(Vec::new()).chain(wire.body.iter().cloned()).collect()
    } else {
        wire.body.clone()
    };
    // Trailers (with `enable_trailers`; an HTTP/2 client's always come):
    // names lowercased, values trimmed, one entry per line, even for the
    // names Envoy joins among headers (measured: `e2e::shapes`).
    let trailers = wire
        .trailers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim_matches([' ', '\t']).as_bytes().to_vec()))
        .collect();
    let mut request = Request { headers: all, body_chunks, trailers, ..Request::default() };
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
    if let (Some(_), Some(sni)) = (&connection.tls, &connection.sni) {
        request = request.property(property::SNI, sni.clone());
    }
    Ok(request)
}

/// A connection to a listener whose network filters run Warden before
/// `tcp_proxy`, as its client makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConnection {
    /// The client's address.
    pub source: SocketAddr,
    /// The listener's address.
    pub listener: SocketAddr,
    /// The server name of the client's ClientHello (`tls_inspector`).
    pub sni: Option<String>,
    /// The client certificate, when the listener terminates (mesh) mTLS.
    pub certificate: Option<ClientCertificate>,
    /// What the client sends first.
    pub data: Vec<u8>,
}

/// What Envoy's network filter chain shows a filter of a connection: the
/// addresses, ports and server name when the connection opens; the peer
/// certificate only once the TLS handshake is done, which is after the
/// connection opened (see `warden_harness::Connection`).
pub fn connection(tcp: &TcpConnection) -> warden_harness::Connection {
    let mut c = warden_harness::Connection::new()
        .property(property::SOURCE_ADDRESS, tcp.source.to_string())
        .property(&["source", "port"], u64::from(tcp.source.port()).to_le_bytes().to_vec())
        .property(&["destination", "address"], tcp.listener.to_string())
        .property(property::DESTINATION_PORT, encode_port(tcp.listener.port()))
        .send(tcp.data.clone())
        .end_downstream()
        .answer(b"pong".to_vec())
        .end_upstream();
    if let Some(sni) = &tcp.sni {
        c = c.sni(sni);
    }
    if let Some(cert) = &tcp.certificate {
        // The TLS transport exists from the start; what the handshake
        // yields comes later.
        c = c.property(property::TLS_VERSION, b"TLSv1.3".to_vec());
        for (path, value) in certificate_properties(cert) {
            c = c.handshake_property(path, value);
        }
        c = c.handshake_property(&["connection", "mtls"], vec![1u8]);
    }
    c
}

/// Envoy's own answer to a `CONNECT` its codec refuses: a `content-length`
/// other than `0` (a body has no meaning there), any `transfer-encoding`,
/// a target that is not `host:port`.
fn connect_refused(wire: &Wire) -> Option<Refused> {
    let has = |wanted: &str| wire.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(wanted));
    if has("content-length").is_some_and(|(_, v)| v.trim_matches([' ', '\t']) != "0") {
        return Some(Refused { status: 400, reason: "http1.body_disallowed" });
    }
    if has("transfer-encoding").is_some() {
        return Some(Refused { status: 501, reason: "http1.invalid_transfer_encoding" });
    }
    if !is_connect_target(&wire.target) {
        return Some(Refused { status: 400, reason: "http1.invalid_url" });
    }
    None
}

/// The authority form a `CONNECT` must name, as Envoy reads it (measured,
/// see `e2e::shapes`): a host of letters, digits, `.` and `-` (no `_`, no
/// `%`-escapes), or an IP address in brackets (IPv6, or even IPv4, parsed
/// strictly: no zone, no leading zeros); then `:` and a port of digits up
/// to 65535 (leading zeros allowed). No user info, path or query.
fn is_connect_target(target: &str) -> bool {
    let Some((host, port)) = target.rsplit_once(':') else { return false };
    let port_ok =
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u64>().is_ok_and(|p| p <= 65535);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(address) => address.parse::<IpAddr>().is_ok(),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
    };
    port_ok && host_ok
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
fn with_certificate(mut request: Request, cert: &ClientCertificate) -> Request {
    for (path, value) in certificate_properties(cert) {
        request = request.property(path, value);
    }
    request
}

/// The properties Envoy gives for a peer certificate: the PEM, the
/// subject, the first URI SAN and the first DNS SAN.
fn certificate_properties(cert: &ClientCertificate) -> Vec<(&'static [&'static str], Vec<u8>)> {
    let names = warden_engine::identity::x509::pem_subject_alt_names(cert.pem.as_bytes()).unwrap_or_default();
    let mut out: Vec<(&'static [&'static str], Vec<u8>)> = vec![
        (property::PEER_CERTIFICATE, cert.pem.clone().into_bytes()),
        (property::PEER_SUBJECT, cert.subject.clone().into_bytes()),
    ];
    if let Some(uri) = names.uris.first() {
        out.push((property::PEER_URI_SAN, uri.clone().into_bytes()));
    }
    if let Some(dns) = names.dns.first() {
        out.push((&["connection", "dns_san_peer_certificate"], dns.clone().into_bytes()));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Connection {
        Connection {
            source: SocketAddr::from(([127, 0, 0, 1], 40000)),
            listener: SocketAddr::from(([127, 0, 0, 1], 443)),
            tls: None,
            sni: None,
            node: IpAddr::from([10, 0, 0, 1]),
        }
    }

    fn connect(target: &str, headers: &[(&str, &str)]) -> Wire {
        let headers = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        Wire {
            method: "CONNECT".into(),
            target: target.into(),
            headers,
            body: vec![b"tunnel".to_vec()],
            trailers: Vec::new(),
        }
    }

    #[test]
    fn a_connect_is_handed_over_on_its_target_without_a_path_or_host() {
        let wire = connect("Api.Example:443", &[("Host", "other.example"), ("Content-Length", "0")]);
        let request = request(&wire, &plain(), &Hcm::default()).expect("Envoy hands it to the filter");
        let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..3], [":authority", ":method", ":scheme"]);
        assert!(!names.iter().any(|n| matches!(*n, ":path" | "host" | "content-length")), "{names:?}");
        assert_eq!(request.header_value(":authority").as_deref(), Some("Api.Example:443"));
        assert_eq!(request.body_chunks, [b"".to_vec(), b"tunnel".to_vec()], "the headers do not end the stream");
    }

    #[test]
    fn envoy_answers_a_connect_its_codec_refuses() {
        let status = |wire: &Wire| request(wire, &plain(), &Hcm::default()).err().map(|r| r.status);
        for target in ["[::1]:443", "[1.2.3.4]:443", "1.2.3.4:0443", "a-b.example:65535", "999.1.1.1:1", "-a.:0"] {
            assert_eq!(status(&connect(target, &[])), None, "{target}");
        }
        for target in ["a.example", "a.example:", "a.example:65536", "a.example:443/x", "u@a.example:443", "a_b:443"] {
            assert_eq!(status(&connect(target, &[])), Some(400), "{target}");
        }
        for target in ["http://a.example:443", "%41.example:443", ":443", "[]:443", "[::1]", "a.example:+1"] {
            assert_eq!(status(&connect(target, &[])), Some(400), "{target}");
        }
        for target in ["[fe80::1%25eth0]:443", "[abcd]:443", "[::1.2]:443", "[01.2.3.4]:443", "[::1]x:443"] {
            assert_eq!(status(&connect(target, &[])), Some(400), "{target}");
        }
        assert_eq!(status(&connect("a.example:443", &[("content-length", "5")])), Some(400));
        assert_eq!(status(&connect("a.example:443", &[("Transfer-Encoding", "chunked")])), Some(501));
    }
}
