//! What goes into a stream and what comes out: the harness's public data
//! types.

use std::collections::BTreeMap;
use warden_engine::request::{self, property};

/// Header names and values, in order. Names are lowercase, as Envoy keeps
/// them; values are bytes.
pub type Headers = Vec<(String, Vec<u8>)>;

/// One HTTP request to run through the filter, with everything the host
/// knows about it (properties) and what the upstream will answer.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Request headers, pseudo-headers (`:method`, `:authority`, `:path`,
    /// `:scheme`) included.
    pub headers: Headers,
    /// The body as it arrives, chunk by chunk. Empty: a headers-only
    /// request (`end_of_stream` on the headers).
    pub body_chunks: Vec<Vec<u8>>,
    /// Request trailers.
    pub trailers: Headers,
    /// Host properties by path, e.g. `["source", "address"]`.
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    /// What the upstream answers if the request is forwarded.
    pub upstream: UpstreamResponse,
    /// Answers to `proxy_http_call`, by upstream (cluster) name. A call to
    /// an upstream not listed here is refused with `BadArgument`, as Envoy
    /// refuses an unknown cluster.
    pub http_call_answers: Vec<(String, UpstreamResponse)>,
}

impl Request {
    /// `METHOD http://authority/path`.
    pub fn new(method: &str, authority: &str, path: &str) -> Self {
        Request::default()
            .header(":method", method)
            .header(":scheme", "http")
            .header(":authority", authority)
            .header(":path", path)
    }

    /// Sets a header, replacing one of the same name.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.as_bytes().to_vec()));
        self
    }

    /// Adds a header, keeping others of the same name.
    pub fn add_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        self
    }

    /// Appends a body chunk.
    pub fn chunk(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body_chunks.push(bytes.into());
        self
    }

    /// Sets a property.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.properties.retain(|(p, _)| *p != path);
        self.properties.push((path, value.into()));
        self
    }

    /// A downstream peer certificate whose only URI SAN is `principal`
    /// (`spiffe://` added if absent), as Envoy shows it: the PEM
    /// (`connection.peer_certificate`) and the first URI SAN
    /// (`connection.uri_san_peer_certificate`).
    pub fn peer_uri_san(self, principal: &str) -> Self {
        self.peer_certificate(&[&request::spiffe_uri(principal)], &[])
    }

    /// A downstream peer certificate with these URI and DNS SANs, as Envoy
    /// shows it. The certificate is a structural stand-in (see
    /// [`warden_engine::identity::x509::test_certificate_pem`]).
    pub fn peer_certificate(self, uris: &[&str], dns: &[&str]) -> Self {
        let pem = warden_engine::identity::x509::test_certificate_pem(uris, dns, "workload");
        let this = self.property(property::PEER_CERTIFICATE, pem).property(&["connection", "mtls"], vec![1u8]);
        match uris.first() {
            Some(first) => this.property(property::PEER_URI_SAN, *first),
            None => this,
        }
    }

    /// The downstream address (`source.address`), as `ip:port`.
    pub fn source_ip(self, ip: &str) -> Self {
        self.property(property::SOURCE_ADDRESS, request::socket_address(ip))
    }

    /// The listener port (`destination.port`, 8 little-endian bytes, as
    /// Envoy encodes it).
    pub fn destination_port(self, port: u16) -> Self {
        self.property(property::DESTINATION_PORT, request::encode_port(port))
    }

    /// The first value of a header, as text.
    pub fn header_value(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// An upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (without `:status`).
    pub headers: Headers,
    /// Response body.
    pub body: Vec<u8>,
}

impl Default for UpstreamResponse {
    fn default() -> Self {
        UpstreamResponse { status: 200, headers: Vec::new(), body: Vec::new() }
    }
}

/// A local response the filter sent (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Headers the filter added.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// Envoy's response-code details string, if the filter gave one.
    pub details: String,
}

impl LocalResponse {
    /// A header's value, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// The request as it went upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Forwarded {
    /// Headers after the filter's changes.
    pub headers: Headers,
    /// The body after the filter's changes, all chunks.
    pub body: Vec<u8>,
    /// The trailers after the filter's changes (none when the request had
    /// none).
    pub trailers: Headers,
}

impl Forwarded {
    /// A header's value, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// A trailer's value, as text.
    pub fn trailer(&self, name: &str) -> Option<String> {
        self.trailers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// A log line the filter wrote (`proxy_log`, or WASI stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// `trace`, `debug`, `info`, `warn`, `error`, `critical`, or `stdout`/`stderr`.
    pub level: &'static str,
    /// The message.
    pub message: String,
}

/// An outgoing `proxy_http_call` the filter made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The upstream (cluster) name.
    pub upstream: String,
    /// Request headers.
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// Whether it was answered (`false`: refused with `BadArgument`).
    pub answered: bool,
}

/// Why a stream did not complete normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The guest trapped (panic, unreachable, bad memory access, a bad
    /// pointer given to a host call...). The VM is discarded.
    Trap(String),
    /// A guest call ran past the time limit (an endless loop?).
    Timeout(String),
    /// The guest tried to grow its memory past the limit.
    MemoryLimit(String),
    /// The filter paused the stream and never resumed it or answered.
    Stalled(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Trap(m) => write!(f, "the filter trapped: {m}"),
            Fault::Timeout(m) => write!(f, "the filter ran past the time limit: {m}"),
            Fault::MemoryLimit(m) => write!(f, "the filter exceeded the memory limit: {m}"),
            Fault::Stalled(m) => write!(f, "the stream stalled: {m}"),
        }
    }
}

/// Everything that happened to one stream.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The filter's own answer, if it sent one.
    pub local_response: Option<LocalResponse>,
    /// What went upstream, if anything did.
    pub forwarded: Option<Forwarded>,
    /// The request's headers went upstream (Envoy connected and sent
    /// them): for every forwarded request, and for one refused after its
    /// headers had gone ahead of its body (Envoy then resets the upstream
    /// request). False when nothing of the request left the gateway.
    pub upstream_started: bool,
    /// The status the client got: the local response's or the upstream's.
    pub status: u32,
    /// The body the client got (none for HEAD, as Envoy sends it).
    pub response_body: Vec<u8>,
    /// The upstream's response headers (`:status` first) after the filter's
    /// changes; empty when the filter answered locally (see
    /// `local_response`).
    pub response_headers: Headers,
    /// Filter state the filter set (`proxy_set_property`), by Envoy's key
    /// (`wasm.<path>`).
    pub filter_state: BTreeMap<String, Vec<u8>>,
    /// Log lines written during this stream.
    pub logs: Vec<LogEntry>,
    /// Outgoing HTTP calls.
    pub http_calls: Vec<HttpCall>,
    /// Set when the stream ended in a fault.
    pub fault: Option<Fault>,
}

impl Outcome {
    /// A filter-state value as text (`wasm.warden.decision`, ...).
    pub fn filter_state_str(&self, key: &str) -> Option<String> {
        self.filter_state.get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// A response header's value, as text.
    pub fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// One downstream connection to run through a network filter
/// (`envoy.filters.network.wasm`, the SDK's `StreamContext`) placed before
/// `envoy.filters.network.tcp_proxy`, as a fixed script: the filter sees
/// the connection (`on_new_connection`), then each chunk the client sends,
/// then the upstream's answer, then the client's end and the upstream's
/// end. [`crate::Vm::connect`] describes what Envoy does at each step.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Properties Envoy knows when the connection is accepted, by path:
    /// `source.address`, `destination.port`, and the SNI the TLS inspector
    /// read (`connection.requested_server_name`).
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    /// Properties Envoy learns from the TLS handshake of a listener that
    /// terminates TLS (the peer certificate, `connection.mtls`): absent at
    /// `on_new_connection` (the handshake has not happened yet), present
    /// from the first data callback on.
    pub handshake_properties: Vec<(Vec<String>, Vec<u8>)>,
    /// What the client sends, chunk by chunk; each chunk is one read (one
    /// `on_downstream_data`).
    pub downstream: Vec<Vec<u8>>,
    /// The client closes its side after its chunks (Envoy delivers that
    /// end as one more `on_downstream_data` with `end_of_stream`).
    pub downstream_end: bool,
    /// What the upstream answers once connected, after the client's chunks,
    /// chunk by chunk (one `on_upstream_data` each).
    pub upstream: Vec<Vec<u8>>,
    /// The upstream closes its side after its answer (and after the
    /// client's end, if the client ends).
    pub upstream_end: bool,
}

impl Connection {
    /// A connection with nothing sent yet.
    pub fn new() -> Self {
        Connection::default()
    }

    /// Sets a property known from the start.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        set(&mut self.properties, path, value.into());
        self
    }

    /// Sets a property the TLS handshake yields (see
    /// [`Connection::handshake_properties`]).
    pub fn handshake_property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        set(&mut self.handshake_properties, path, value.into());
        self
    }

    /// The server name of the client's TLS ClientHello, as the TLS
    /// inspector reads it (`connection.requested_server_name`), known from
    /// `on_new_connection` on.
    pub fn sni(self, name: &str) -> Self {
        self.property(property::SNI, name)
    }

    /// The client's address (`source.address`), as `ip:port`.
    pub fn source_ip(self, ip: &str) -> Self {
        self.property(property::SOURCE_ADDRESS, request::socket_address(ip))
    }

    /// The listener port (`destination.port`, 8 little-endian bytes).
    pub fn destination_port(self, port: u16) -> Self {
        self.property(property::DESTINATION_PORT, request::encode_port(port))
    }

    /// A listener that terminates TLS and a client certificate whose only
    /// URI SAN is `principal` (`spiffe://` added if absent); see
    /// [`Connection::peer_certificate`].
    pub fn peer_uri_san(self, principal: &str) -> Self {
        self.peer_certificate(&[&request::spiffe_uri(principal)], &[])
    }

    /// A listener that terminates TLS and a client certificate with these
    /// URI and DNS SANs, as Envoy shows it once the handshake is done: the
    /// PEM (`connection.peer_certificate`), the first URI SAN
    /// (`connection.uri_san_peer_certificate`) and `connection.mtls`, none
    /// of them at `on_new_connection`. The certificate is a structural
    /// stand-in (see [`warden_engine::identity::x509::test_certificate_pem`]).
    pub fn peer_certificate(self, uris: &[&str], dns: &[&str]) -> Self {
        let pem = warden_engine::identity::x509::test_certificate_pem(uris, dns, "workload");
        // The TLS transport is there from the start (`connection.tls_version`
        // is present), the certificate only after the handshake.
        let this = self
            .property(property::TLS_VERSION, b"TLSv1.3".to_vec())
            .handshake_property(property::PEER_CERTIFICATE, pem)
            .handshake_property(MTLS, vec![1u8]);
        match uris.first() {
            Some(first) => this.handshake_property(property::PEER_URI_SAN, *first),
            None => this,
        }
    }

    /// Adds a chunk the client sends.
    pub fn send(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.downstream.push(bytes.into());
        self
    }

    /// The client closes its side after its chunks.
    pub fn end_downstream(mut self) -> Self {
        self.downstream_end = true;
        self
    }

    /// Adds a chunk the upstream answers.
    pub fn answer(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.upstream.push(bytes.into());
        self
    }

    /// The upstream closes its side after its answer.
    pub fn end_upstream(mut self) -> Self {
        self.upstream_end = true;
        self
    }
}

/// `connection.mtls`: one byte, 1 once a client certificate was verified.
pub(crate) const MTLS: &[&str] = &["connection", "mtls"];

fn set(properties: &mut Vec<(Vec<String>, Vec<u8>)>, path: &[&str], value: Vec<u8>) {
    let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
    properties.retain(|(p, _)| *p != path);
    properties.push((path, value));
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// The filter called `proxy_close_stream(Downstream)`: once the
    /// callback returns, Envoy closes the client's connection (flushing
    /// what it already wrote to the client), whatever the callback
    /// returned; the upstream connection, if any, is closed with it.
    FilterDownstream,
    /// The filter called `proxy_close_stream(Upstream)`: in a network
    /// filter Envoy closes the same connection, the client's (the filter's
    /// write side is the downstream connection too).
    FilterUpstream,
    /// The client and the upstream each ended their side, and each end
    /// went through the filter: Envoy closes the connection.
    Peers,
    /// The filter faulted: Envoy closes the connection (`fail_open:
    /// false`), and every later connection to the dead VM.
    Fault,
}

/// Everything that happened to one connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOutcome {
    /// The filter let the connection through to the next filter
    /// (`tcp_proxy`), which connected to the upstream.
    pub upstream_connected: bool,
    /// The client's bytes that reached the upstream, after the filter's
    /// changes.
    pub forwarded: Vec<u8>,
    /// The upstream's bytes that reached the client, after the filter's
    /// changes.
    pub returned: Vec<u8>,
    /// How the connection ended; `None`: it was still open when the script
    /// ended (a side did not end, or the filter held an end back).
    pub closed: Option<ClosedBy>,
    /// Filter state the filter set (`proxy_set_property`), by Envoy's key
    /// (`wasm.<path>`).
    pub filter_state: BTreeMap<String, Vec<u8>>,
    /// Log lines written during this connection.
    pub logs: Vec<LogEntry>,
    /// Set when the connection ended in a fault, or stalled.
    pub fault: Option<Fault>,
}

impl ConnectionOutcome {
    /// A filter-state value as text.
    pub fn filter_state_str(&self, key: &str) -> Option<String> {
        self.filter_state.get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}
