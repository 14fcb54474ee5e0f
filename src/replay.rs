//! `warden replay`: an Envoy JSON access log (as Istio egress gateways and
//! waypoints write it) replayed against a policy, line by line, through the
//! compiled filter in the harness (one VM, reused like one Envoy worker) or
//! the native engine, and a report of what the policy would allow, deny and
//! why.
//!
//! Each line is one JSON object, read as one of three kinds
//! ([`Entry::kind`]):
//!
//! - a **request**: it has `authority`, `method` and `path`. Of Istio's
//!   default JSON access-log fields Warden also reads
//!   `downstream_local_address` (its port is Envoy's `destination.port`;
//!   default 80), `downstream_remote_address` (`source.address`),
//!   `requested_server_name` (the SNI), `user_agent` and `x_forwarded_for`
//!   (sent as headers). It goes through the HTTP filter
//!   ([`Policy::decide`]);
//! - a **connection**: it has none of `authority`, `method` and `path`, no
//!   `protocol` (`tcp_proxy` logs none; an HTTP line that lost its request,
//!   such as a codec error, still has one), and a `downstream_local_address`
//!   with a port. That is the line Envoy's `tcp_proxy` (and Istio's gateway,
//!   for TLS passthrough and mesh mTLS traffic) writes. It goes through the
//!   filter loaded as a network filter (root id [`NETWORK_ROOT_ID`],
//!   [`Policy::decide_connection`]) with the server name from
//!   `requested_server_name` (none when absent or `-`), the destination
//!   port from `downstream_local_address` and the source from
//!   `downstream_remote_address`;
//! - anything else is skipped and counted (as are lines that are not JSON).
//!
//! The principal comes from a field the caller names (e.g. one logging
//! `%DOWNSTREAM_PEER_URI_SAN%`) or is fixed. A request gets it through the
//! policy's first identity source; a connection, which has no headers, as
//! the peer certificate of its TLS handshake (or as the filter state the
//! policy reads first, if that is its first source). A field holding
//! Warden's decision record (`%FILTER_STATE(wasm.warden.decision:PLAIN)%`,
//! default `warden`) is compared with the replayed decision. Requests and
//! connections are counted apart.
//!
//! Reports never show a query string (`?…`) nor the path of a request with
//! DLP findings: they may carry secrets.
//!
//! ```no_run
//! use warden::harness::{Host, HostOptions};
//! use warden::replay::{self, Decider, Options, PrincipalSource};
//! use std::path::PathBuf;
//!
//! let wasm = std::fs::read("warden.wasm").unwrap();
//! let host = Host::new(&wasm, HostOptions::default()).unwrap();
//! let config = warden::testing::runner::load_policy(&[PathBuf::from("policy.yaml")]).unwrap().config;
//! let mut decider = Decider::filter(&host, &config).unwrap();
//! let options = Options { principal: PrincipalSource::Field("downstream_peer_uri_san".into()), ..Options::default() };
//! let log = std::io::BufReader::new(std::fs::File::open("access.log").unwrap());
//! let report = replay::replay(log, &mut decider, &config, &options, &mut |_| {}).unwrap();
//! println!("{} requests, {} allowed", report.requests, report.count(warden::engine::Outcome::Allow));
//! println!("{} connections", report.connections.count);
//! ```

use crate::explain::{ConnectionAttributes, RequestAttributes};
use crate::testing::runner::WORKLOAD_PORT;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::BufRead;
use warden_engine::record::{Record, FILTER_STATE_KEY, NETWORK_ROOT_ID};
use warden_engine::request::property;
use warden_engine::{Decision, Outcome, Policy};
use warden_harness::{Connection, Host, HostError, Request, Vm};

/// How many line numbers of each kind of skipped line are kept.
pub const SKIPPED_LINES_KEPT: usize = 5;
/// How many groups of an outcome the human report lists.
pub const GROUPS_SHOWN: usize = 10;
/// The default field holding Warden's decision record.
pub const DEFAULT_DECISION_FIELD: &str = "warden";

/// Where the principal of a line comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrincipalSource {
    /// No principal: every request is anonymous.
    #[default]
    None,
    /// The value of this field of the line (e.g. one that logs
    /// `%DOWNSTREAM_PEER_URI_SAN%`); `spiffe://` is optional.
    Field(String),
    /// The same principal for every line.
    Fixed(String),
}

/// How a replay is done.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the principal comes from.
    pub principal: PrincipalSource,
    /// The field holding the decision record logged at the time, compared
    /// with the replayed decision; `None`: no comparison.
    pub decision_field: Option<String>,
    /// How many example lines per outcome (and per change) the report keeps.
    pub examples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { principal: PrincipalSource::None, decision_field: Some(DEFAULT_DECISION_FIELD.into()), examples: 3 }
    }
}

// ----------------------------------------------------------------- input

/// The fields of one access-log line that replay reads, borrowed from the
/// line where JSON allows (`None`: absent, null, `-` or empty).
#[derive(Debug, Default)]
pub struct Entry<'a> {
    /// `authority` (`%REQ(:AUTHORITY)%`).
    pub authority: Option<Cow<'a, str>>,
    /// `method`.
    pub method: Option<Cow<'a, str>>,
    /// `path` (`%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%`), with its query.
    pub path: Option<Cow<'a, str>>,
    /// `protocol` (`%PROTOCOL%`): none on a `tcp_proxy` line.
    pub protocol: Option<Cow<'a, str>>,
    /// `downstream_local_address`: `ip:port` of the listener.
    pub local_address: Option<Cow<'a, str>>,
    /// `downstream_remote_address`: `ip:port` of the caller.
    pub remote_address: Option<Cow<'a, str>>,
    /// `requested_server_name`: the SNI.
    pub sni: Option<Cow<'a, str>>,
    /// `user_agent`.
    pub user_agent: Option<Cow<'a, str>>,
    /// `x_forwarded_for`.
    pub forwarded_for: Option<Cow<'a, str>>,
    /// The principal field's value.
    pub principal: Option<Cow<'a, str>>,
    /// The `decision` of the logged decision record.
    pub logged: Option<String>,
}

/// What a line is replayed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// An HTTP request: `authority`, `method` and `path` are there.
    Request,
    /// A connection (`tcp_proxy`'s line): none of `authority`, `method`
    /// and `path`, no `protocol`, and a `downstream_local_address` with a
    /// port (the destination port the network filter sees).
    Connection,
    /// Neither: skipped.
    Incomplete,
}

impl Entry<'_> {
    /// What the line is replayed as. A connection needs its listener port:
    /// without one there is nothing to look the server name up with. A
    /// line with some but not all of `authority`, `method` and `path`, or
    /// with a `protocol`, was an HTTP request Envoy could not read whole,
    /// and is no connection.
    pub fn kind(&self) -> LineKind {
        match (&self.authority, &self.method, &self.path) {
            (Some(_), Some(_), Some(_)) => LineKind::Request,
            (None, None, None)
                if self.protocol.is_none() && self.local_address.as_deref().and_then(port_of).is_some() =>
            {
                LineKind::Connection
            }
            _ => LineKind::Incomplete,
        }
    }
}

/// Which field a key names.
#[derive(Clone, Copy)]
enum Key {
    Authority,
    Method,
    Path,
    Protocol,
    LocalAddress,
    RemoteAddress,
    Sni,
    UserAgent,
    ForwardedFor,
    Principal,
    Decision,
    Other,
}

fn key_of(name: &[u8], options: &Options, principal: Option<&str>) -> Key {
    if Some(name) == principal.map(str::as_bytes) {
        return Key::Principal;
    }
    if Some(name) == options.decision_field.as_deref().map(str::as_bytes) {
        return Key::Decision;
    }
    // The names have different lengths: one comparison each.
    let (key, expected): (Key, &[u8]) = match name.len() {
        4 => (Key::Path, b"path"),
        6 => (Key::Method, b"method"),
        8 => (Key::Protocol, b"protocol"),
        9 => (Key::Authority, b"authority"),
        10 => (Key::UserAgent, b"user_agent"),
        15 => (Key::ForwardedFor, b"x_forwarded_for"),
        21 => (Key::Sni, b"requested_server_name"),
        24 => (Key::LocalAddress, b"downstream_local_address"),
        25 => (Key::RemoteAddress, b"downstream_remote_address"),
        _ => return Key::Other,
    };
    if name == expected {
        key
    } else {
        Key::Other
    }
}

/// A value of a JSON object, as found: a string (still escaped), or
/// anything else (null, a number, a boolean, an array, an object), raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raw<'a> {
    /// The bytes between the quotes, and whether they hold escapes.
    Str(&'a [u8], bool),
    /// The value's bytes.
    Other(&'a [u8]),
}

impl<'a> Raw<'a> {
    /// The text of a string value (`-` and empty read as absent, as does
    /// anything that is not a string).
    fn text(self) -> Option<Cow<'a, str>> {
        let text = match self {
            Raw::Str(bytes, false) => Cow::Borrowed(std::str::from_utf8(bytes).ok()?),
            Raw::Str(bytes, true) => Cow::Owned(unescape(bytes)?),
            Raw::Other(_) => return None,
        };
        present(&text).then_some(text)
    }
}

fn present(v: &str) -> bool {
    !v.is_empty() && v != "-"
}

/// A cursor over the bytes of one JSON text.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string, the cursor on its opening quote.
    #[inline(always)]
    fn string(&mut self) -> Option<Raw<'a>> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            let rest = self.bytes.get(self.at..)?;
            let found = memchr::memchr2(b'"', b'\\', rest)?;
            self.at += found;
            if self.peek()? == b'"' {
                let text = self.bytes.get(start..self.at)?;
                self.at += 1;
                return Some(Raw::Str(text, escaped));
            }
            escaped = true;
            self.at += 2; // the backslash and the escaped byte (a `u` is followed by hex digits only)
        }
    }

    /// Any value, the cursor before it.
    #[inline(always)]
    fn value(&mut self) -> Option<Raw<'a>> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string(),
            b'{' | b'[' => {
                let start = self.at;
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(Raw::Other(self.bytes.get(start..self.at)?));
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while !matches!(self.peek()?, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    self.at += 1;
                }
                let raw = self.bytes.get(start..self.at)?;
                let scalar = matches!(raw, b"null" | b"true" | b"false")
                    || raw.first().is_some_and(|b| *b == b'-' || b.is_ascii_digit());
                scalar.then_some(Raw::Other(raw))
            }
        }
    }

    /// Visits the members of the object that starts at the cursor; `None`
    /// when it is not a JSON object. What follows the object is ignored.
    fn object(&mut self, mut visit: impl FnMut(&'a [u8], bool, Raw<'a>)) -> Option<()> {
        self.eat(b'{')?;
        self.skip_ws();
        if self.peek()? == b'}' {
            return Some(());
        }
        loop {
            self.skip_ws();
            let Raw::Str(key, escaped) = self.string()? else { return None };
            self.eat(b':')?;
            let value = self.value()?;
            visit(key, escaped, value);
            self.skip_ws();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }
}

/// Decodes a JSON string's escapes (`None`: a bad escape, or not UTF-8).
fn unescape(bytes: &[u8]) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().copied();
    let hex4 = |iter: &mut dyn Iterator<Item = u8>| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            v = v * 16 + char::from(iter.next()?).to_digit(16)?;
        }
        Some(v)
    };
    while let Some(b) = iter.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let c = match iter.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = hex4(&mut iter)?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    if (iter.next()?, iter.next()?) != (b'\\', b'u') {
                        return None;
                    }
                    let low = hex4(&mut iter)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8(out).ok()
}

/// The `decision` of a logged decision record: a string of JSON (as
/// `%FILTER_STATE(…:PLAIN)%` logs it) or an object (`:TYPED`).
fn logged_decision(raw: Raw<'_>) -> Option<String> {
    let inner: Cow<'_, [u8]> = match raw {
        Raw::Str(bytes, false) => Cow::Borrowed(bytes),
        Raw::Str(bytes, true) => Cow::Owned(unescape(bytes)?.into_bytes()),
        Raw::Other(bytes) if bytes.first() == Some(&b'{') => Cow::Borrowed(bytes),
        Raw::Other(_) => return None,
    };
    Record::parse(&inner).ok().map(|r| r.decision.as_str().to_owned())
}

/// Reads one access-log line (text before the first `{`, such as a
/// `kubectl logs --timestamps` or `--prefix` prefix, is ignored). `None`:
/// not a JSON object.
pub fn parse_entry<'a>(line: &'a [u8], options: &Options) -> Option<Entry<'a>> {
    let start = memchr::memchr(b'{', line)?;
    let principal = match &options.principal {
        PrincipalSource::Field(f) => Some(f.as_str()),
        _ => None,
    };
    let mut entry = Entry::default();
    let mut scanner = Scanner { bytes: line, at: start };
    scanner.object(|key, escaped, value| {
        let key = if escaped {
            match unescape(key) {
                Some(k) => key_of(k.as_bytes(), options, principal),
                None => Key::Other,
            }
        } else {
            key_of(key, options, principal)
        };
        let slot = match key {
            Key::Authority => &mut entry.authority,
            Key::Method => &mut entry.method,
            Key::Path => &mut entry.path,
            Key::Protocol => &mut entry.protocol,
            Key::LocalAddress => &mut entry.local_address,
            Key::RemoteAddress => &mut entry.remote_address,
            Key::Sni => &mut entry.sni,
            Key::UserAgent => &mut entry.user_agent,
            Key::ForwardedFor => &mut entry.forwarded_for,
            Key::Principal => &mut entry.principal,
            // A record that does not parse is no record; it does not
            // make the line unreadable.
            Key::Decision => {
                entry.logged = logged_decision(value);
                return;
            }
            Key::Other => return,
        };
        *slot = value.text();
    })?;
    Some(entry)
}

// --------------------------------------------------------------- request

/// Where the policy reads the principal: its first identity source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSlot {
    /// The peer certificate's URI SAN (the default).
    PeerCertificate,
    /// A filter-state object.
    FilterState(String),
    /// `x-forwarded-client-cert`'s `URI=`.
    Xfcc,
    /// A request header.
    Header(String),
}

impl PrincipalSlot {
    /// The first identity source of a policy (its JSON configuration).
    pub fn of_config(config: &[u8]) -> PrincipalSlot {
        let doc: Value = serde_json::from_slice(config).unwrap_or_default();
        let first = doc.get("identity").and_then(Value::as_array).and_then(|l| l.first()).and_then(Value::as_object);
        let Some((kind, value)) = first.and_then(|o| o.iter().next()) else {
            return PrincipalSlot::PeerCertificate;
        };
        let text = value.as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "filterState" => PrincipalSlot::FilterState(text),
            "xfcc" => PrincipalSlot::Xfcc,
            "header" => PrincipalSlot::Header(text.to_ascii_lowercase()),
            _ => PrincipalSlot::PeerCertificate,
        }
    }
}

/// Builds the harness [`Request`] of each line into the same allocations.
#[derive(Debug)]
pub struct RequestBuilder {
    request: Request,
    slot: PrincipalSlot,
    principal_path: Vec<String>,
    scratch: String,
    /// Whether `source.address` is sent.
    source: bool,
    /// Whether the SNI is sent.
    sni: bool,
    certificates: Certificates,
}

/// At most this many distinct principals' certificates are kept.
const CERTIFICATES_KEPT: usize = 4096;

/// Peer certificates made for the principals seen, by principal field.
#[derive(Debug, Default)]
struct Certificates(HashMap<String, String>);

impl Certificates {
    /// The PEM of a certificate whose URI SANs are the principal's
    /// (`%DOWNSTREAM_PEER_URI_SAN%` lists every URI SAN, comma-separated).
    fn pem(&mut self, principal: &str) -> &str {
        if !self.0.contains_key(principal) {
            if self.0.len() >= CERTIFICATES_KEPT {
                self.0.clear();
            }
            let uris: Vec<String> = principal
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(warden_engine::request::spiffe_uri)
                .collect();
            let uris: Vec<&str> = uris.iter().map(String::as_str).collect();
            let pem = warden_engine::identity::x509::test_certificate_pem(&uris, &[], "workload");
            self.0.insert(principal.to_owned(), pem);
        }
        self.0.get(principal).map_or("", String::as_str)
    }
}

/// The principal path of a filter-state slot, or the peer certificate's
/// URI SAN.
fn principal_path(slot: &PrincipalSlot) -> Vec<String> {
    match slot {
        PrincipalSlot::FilterState(key) => vec!["filter_state".to_owned(), key.clone()],
        _ => property::PEER_URI_SAN.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn fill_header(headers: &mut warden_harness::Headers, at: &mut usize, name: &str, value: &[u8]) {
    match headers.get_mut(*at) {
        Some((n, v)) => {
            if n != name {
                n.clear();
                n.push_str(name);
            }
            v.clear();
            v.extend_from_slice(value);
        }
        None => headers.push((name.to_owned(), value.to_vec())),
    }
    *at += 1;
}

fn fill_property(properties: &mut Vec<(Vec<String>, Vec<u8>)>, at: &mut usize, path: &[&str], value: &[u8]) {
    match properties.get_mut(*at) {
        Some((p, v)) => {
            if !p.iter().map(String::as_str).eq(path.iter().copied()) {
                *p = path.iter().map(|s| (*s).to_owned()).collect();
            }
            v.clear();
            v.extend_from_slice(value);
        }
        None => properties.push((path.iter().map(|s| (*s).to_owned()).collect(), value.to_vec())),
    }
    *at += 1;
}

/// The port of `ip:port` / `[v6]:port`.
fn port_of(address: &str) -> Option<u16> {
    let (host, port) = address.rsplit_once(':')?;
    if host.contains(':') && !host.ends_with(']') {
        return None; // a bare IPv6 address
    }
    port.parse().ok()
}

fn is_address(text: &str) -> bool {
    text.parse::<std::net::SocketAddr>().is_ok() || text.parse::<std::net::IpAddr>().is_ok()
}

impl RequestBuilder {
    /// A builder that delivers principals through `slot`.
    pub fn new(slot: PrincipalSlot) -> RequestBuilder {
        RequestBuilder {
            request: Request::default(),
            principal_path: principal_path(&slot),
            slot,
            scratch: String::new(),
            source: true,
            sni: true,
            certificates: Certificates::default(),
        }
    }

    /// A builder for a policy (its JSON configuration): principals go to
    /// its first identity source, and the source address and SNI are only
    /// sent when the policy can read them (`ipBlocks`, `remoteIpBlocks`,
    /// `source.ip`, `remote.ip`; `connection.sni`). The harness copies every
    /// property into the VM per request; one the filter never asks for
    /// changes nothing but the time a replay takes.
    pub fn for_config(config: &[u8]) -> RequestBuilder {
        let text = String::from_utf8_lossy(config).to_ascii_lowercase();
        let mentions = |words: &[&str]| words.iter().any(|w| text.contains(w));
        RequestBuilder {
            source: mentions(&["ipblocks", "source.ip", "remote.ip"]),
            sni: mentions(&["connection.sni"]),
            ..RequestBuilder::new(PrincipalSlot::of_config(config))
        }
    }

    /// The request for `entry` (which has authority, method and path), as
    /// Envoy would hand it to the filter: pseudo-headers, `:scheme` https
    /// when there is a principal (it came over mTLS), the logged headers,
    /// `destination.port`, `source.address`, the SNI and the principal.
    pub fn build(&mut self, entry: &Entry<'_>, principal: Option<&str>) -> &Request {
        let headers = &mut self.request.headers;
        let mut h = 0;
        fill_header(headers, &mut h, ":authority", entry.authority.as_deref().unwrap_or_default().as_bytes());
        fill_header(headers, &mut h, ":method", entry.method.as_deref().unwrap_or_default().as_bytes());
        fill_header(headers, &mut h, ":path", entry.path.as_deref().unwrap_or_default().as_bytes());
        let scheme: &[u8] = if principal.is_some() { b"https" } else { b"http" };
        fill_header(headers, &mut h, ":scheme", scheme);
        if let Some(ua) = entry.user_agent.as_deref() {
            fill_header(headers, &mut h, "user-agent", ua.as_bytes());
        }
        if let Some(xff) = entry.forwarded_for.as_deref() {
            fill_header(headers, &mut h, "x-forwarded-for", xff.as_bytes());
        }
        self.scratch.clear();
        if let Some(p) = principal {
            match &self.slot {
                PrincipalSlot::Header(name) => fill_header(headers, &mut h, name, p.as_bytes()),
                PrincipalSlot::Xfcc => {
                    // One element, a URI pair per SAN.
                    for (i, uri) in p.split(',').map(str::trim).filter(|u| !u.is_empty()).enumerate() {
                        self.scratch.push_str(if i == 0 { "URI=" } else { ";URI=" });
                        push_spiffe(&mut self.scratch, uri);
                    }
                    fill_header(headers, &mut h, "x-forwarded-client-cert", self.scratch.as_bytes());
                }
                PrincipalSlot::PeerCertificate | PrincipalSlot::FilterState(_) => push_spiffe(&mut self.scratch, p),
            }
        }
        headers.truncate(h);

        let properties = &mut self.request.properties;
        let mut at = 0;
        let port = entry.local_address.as_deref().and_then(port_of).unwrap_or(WORKLOAD_PORT);
        fill_property(properties, &mut at, property::DESTINATION_PORT, &u64::from(port).to_le_bytes());
        if let Some(remote) = entry.remote_address.as_deref().filter(|a| self.source && is_address(a)) {
            fill_property(properties, &mut at, property::SOURCE_ADDRESS, remote.as_bytes());
        }
        if let Some(sni) = entry.sni.as_deref().filter(|_| self.sni) {
            fill_property(properties, &mut at, property::SNI, sni.as_bytes());
        }
        if !self.scratch.is_empty() {
            match &self.slot {
                PrincipalSlot::FilterState(_) => {
                    let path: Vec<&str> = self.principal_path.iter().map(String::as_str).collect();
                    fill_property(properties, &mut at, &path, self.scratch.as_bytes());
                }
                PrincipalSlot::PeerCertificate => {
                    let pem = self.certificates.pem(principal.unwrap_or_default());
                    fill_property(properties, &mut at, property::PEER_CERTIFICATE, pem.as_bytes());
                    let first = self.scratch.split(',').next().unwrap_or_default().trim();
                    fill_property(properties, &mut at, property::PEER_URI_SAN, first.as_bytes());
                }
                PrincipalSlot::Header(_) | PrincipalSlot::Xfcc => {}
            }
        }
        properties.truncate(at);
        &self.request
    }
}

fn push_spiffe(out: &mut String, principal: &str) {
    if !principal.starts_with("spiffe://") {
        out.push_str("spiffe://");
    }
    out.push_str(principal);
}

/// `connection.mtls`: one byte, 1 once the client's certificate was
/// verified.
const MTLS: &[&str] = &["connection", "mtls"];

/// The listener port of a connection line without one (only reachable
/// through [`ConnectionBuilder::build`] on a line that is no connection):
/// the harness's default.
const CONNECTION_PORT: u16 = 443;

/// Builds the harness [`Connection`] of each connection line into the same
/// allocations, as Envoy's network filter chain shows it to the filter.
///
/// When the connection opens: `destination.port`, `source.address` and
/// the server name (`connection.requested_server_name`). The principal is
/// the client certificate of a TLS handshake the gateway terminates (mesh
/// mTLS), seen from the first bytes on: the PEM, its first URI SAN and
/// `connection.mtls`. When the policy's first identity source is a filter
/// state, the principal is that filter state instead, known from the
/// start; a connection has no headers, so the other sources (a header,
/// XFCC) get the peer certificate too. The client sends one chunk and
/// closes, and so does the upstream: the filter decides by the first bytes
/// at the latest, and the connection (its context in the VM) ends before
/// the next one.
#[derive(Debug)]
pub struct ConnectionBuilder {
    connection: Connection,
    slot: PrincipalSlot,
    principal_path: Vec<String>,
    scratch: String,
    certificates: Certificates,
}

impl ConnectionBuilder {
    /// A builder that delivers principals through `slot` (see above).
    pub fn new(slot: PrincipalSlot) -> ConnectionBuilder {
        let connection = Connection::new().send(b"\x16\x03\x01".to_vec()).end_downstream().end_upstream();
        ConnectionBuilder {
            connection,
            principal_path: principal_path(&slot),
            slot,
            scratch: String::new(),
            certificates: Certificates::default(),
        }
    }

    /// A builder for a policy (its JSON configuration).
    pub fn for_config(config: &[u8]) -> ConnectionBuilder {
        ConnectionBuilder::new(PrincipalSlot::of_config(config))
    }

    /// The connection of `entry`, a connection line ([`LineKind::Connection`]).
    pub fn build(&mut self, entry: &Entry<'_>, principal: Option<&str>) -> &Connection {
        let properties = &mut self.connection.properties;
        let mut at = 0;
        let port = entry.local_address.as_deref().and_then(port_of).unwrap_or(CONNECTION_PORT);
        fill_property(properties, &mut at, property::DESTINATION_PORT, &u64::from(port).to_le_bytes());
        if let Some(remote) = entry.remote_address.as_deref().filter(|a| is_address(a)) {
            fill_property(properties, &mut at, property::SOURCE_ADDRESS, remote.as_bytes());
        }
        if let Some(sni) = entry.sni.as_deref() {
            fill_property(properties, &mut at, property::SNI, sni.as_bytes());
        }
        self.scratch.clear();
        if let Some(p) = principal {
            push_spiffe(&mut self.scratch, p);
        }
        let handshake = &mut self.connection.handshake_properties;
        let mut done = 0;
        match (principal, &self.slot) {
            (None, _) => {}
            (Some(_), PrincipalSlot::FilterState(_)) => {
                let path: Vec<&str> = self.principal_path.iter().map(String::as_str).collect();
                fill_property(properties, &mut at, &path, self.scratch.as_bytes());
            }
            (Some(p), _) => {
                // The gateway ended mesh mTLS: a TLS transport from the
                // start, the certificate after the handshake.
                fill_property(properties, &mut at, property::TLS_VERSION, b"TLSv1.3");
                let pem = self.certificates.pem(p);
                fill_property(handshake, &mut done, property::PEER_CERTIFICATE, pem.as_bytes());
                let first = self.scratch.split(',').next().unwrap_or_default().trim();
                fill_property(handshake, &mut done, property::PEER_URI_SAN, first.as_bytes());
                fill_property(handshake, &mut done, MTLS, &[1]);
            }
        }
        properties.truncate(at);
        handshake.truncate(done);
        &self.connection
    }
}

// --------------------------------------------------------------- deciding

/// What decided one request or connection, in the terms of the decision
/// record, borrowed from the record (or the policy) where it can be.
#[derive(Debug, Clone, Default)]
pub struct Verdict<'a> {
    /// The outcome; `None`: the filter faulted or wrote no record.
    pub kind: Option<Outcome>,
    /// The record's `reason`.
    pub reason: Cow<'a, str>,
    /// The deciding policy.
    pub policy: Option<Cow<'a, str>>,
    /// The matched service.
    pub service: Option<Cow<'a, str>>,
    /// DLP detector ids.
    pub findings: Vec<Cow<'a, str>>,
    /// Dry-run policies that would have refused it.
    pub dry_run: Vec<Cow<'a, str>>,
    /// AUDIT policies that matched.
    pub audit: Vec<Cow<'a, str>>,
    /// Why there is no outcome (a fault).
    pub error: Option<String>,
}

impl<'a> Verdict<'a> {
    /// Reads a decision record.
    pub fn from_record(record: &'a [u8]) -> Verdict<'a> {
        match Record::parse(record) {
            Ok(r) => Verdict {
                kind: Some(r.decision),
                reason: r.reason,
                policy: r.policy,
                service: r.service,
                findings: r.findings,
                dry_run: r.dry_run,
                audit: r.audit,
                error: None,
            },
            Err(e) => Verdict { error: Some(format!("unreadable decision record: {e}")), ..Verdict::default() },
        }
    }

    /// The native engine's decision.
    fn of_decision(d: &'a Decision<'a>) -> Verdict<'a> {
        fn borrowed<'x>(names: &[&'x str]) -> Vec<Cow<'x, str>> {
            names.iter().map(|s| Cow::Borrowed(*s)).collect()
        }
        Verdict {
            kind: Some(d.outcome),
            reason: Cow::Borrowed(d.reason.as_str()),
            policy: d.policy.map(Cow::Borrowed),
            service: d.service.map(Cow::Borrowed),
            findings: d.findings.iter().map(|f| Cow::Borrowed(f.detector.as_str())).collect(),
            dry_run: borrowed(&d.dry_run),
            audit: borrowed(&d.audit),
            error: None,
        }
    }

    /// The group an outcome is counted under (see [`Group`]); a label that
    /// has to be put together is written into `scratch`.
    fn group<'e>(&'e self, entry: &'e Entry<'_>, traffic: Traffic, scratch: &'e mut String) -> (GroupKind, &'e str) {
        let reason = (GroupKind::Reason, &*self.reason);
        match self.kind {
            Some(Outcome::Allow | Outcome::Denied) => match (&self.policy, &self.service) {
                (Some(p), _) => (GroupKind::Policy, &**p),
                // No policy decided (no-allow-match, no-policy): which
                // service's policies did not, is what an operator asks.
                (None, Some(service)) => {
                    scratch.clear();
                    let _ = write!(scratch, "{}{SERVICE_SEPARATOR}{service}", self.reason);
                    (GroupKind::Reason, scratch.as_str())
                }
                (None, None) => reason,
            },
            Some(Outcome::Unregistered) => match (traffic, entry.sni.as_deref()) {
                (Traffic::Request, _) => (GroupKind::Host, entry.authority.as_deref().unwrap_or_default()),
                (Traffic::Connection, Some(sni)) => (GroupKind::ServerName, sni),
                // No server name to look up (`no-sni`).
                (Traffic::Connection, None) => reason,
            },
            Some(Outcome::DlpBlocked) if !self.findings.is_empty() => {
                scratch.clear();
                for (i, id) in self.findings.iter().enumerate() {
                    if i > 0 {
                        scratch.push_str(", ");
                    }
                    scratch.push_str(id);
                }
                (GroupKind::Findings, scratch.as_str())
            }
            _ => reason,
        }
    }
}

/// Decides requests and connections: the compiled filter in the harness,
/// or the native engine.
pub enum Decider<'h> {
    /// One VM of the filter, reused for every request line, and one of the
    /// filter loaded as a network filter, for every connection line (each
    /// restarted after a fault). In Envoy they are two plugins, each with
    /// its VMs.
    Filter {
        /// The compiled module.
        host: &'h Host,
        /// The plugin configuration.
        config: Vec<u8>,
        /// The VM.
        vm: Box<Vm>,
        /// The network filter's VM (root id [`NETWORK_ROOT_ID`]), started
        /// at the first connection line.
        network: Option<Box<Vm>>,
    },
    /// The native engine.
    Native(Box<Policy>),
}

impl<'h> Decider<'h> {
    /// The filter, configured with `config`.
    pub fn filter(host: &'h Host, config: &[u8]) -> Result<Decider<'h>, HostError> {
        Ok(Decider::Filter { host, config: config.to_vec(), vm: Box::new(host.vm(config)?), network: None })
    }

    /// `filter` or `native`.
    pub fn name(&self) -> &'static str {
        match self {
            Decider::Filter { .. } => "filter",
            Decider::Native(_) => "native",
        }
    }

    /// Decides one request and hands the verdict to `then` (it borrows
    /// from the filter's outcome or the native decision).
    pub fn decide<R>(&mut self, request: &Request, then: impl FnOnce(&Verdict<'_>) -> R) -> R {
        match self {
            Decider::Native(policy) => {
                let d = policy.decide(&RequestAttributes(request));
                then(&Verdict::of_decision(&d))
            }
            Decider::Filter { host, config, vm, .. } => {
                let outcome = vm.run(request);
                if let Some(fault) = &outcome.fault {
                    let error = format!("the filter faulted: {fault}");
                    // A faulted VM is dead, as in Envoy: start a new one.
                    if let Ok(fresh) = host.vm(config) {
                        **vm = fresh;
                    }
                    return then(&Verdict { error: Some(error), ..Verdict::default() });
                }
                match outcome.filter_state.get(FILTER_STATE_KEY) {
                    Some(record) => then(&Verdict::from_record(record)),
                    None => then(&Verdict {
                        error: Some("the filter wrote no decision record".into()),
                        ..Verdict::default()
                    }),
                }
            }
        }
    }

    /// Decides one connection and hands the verdict to `then`: the network
    /// filter's record, or [`Policy::decide_connection`].
    pub fn decide_connection<R>(&mut self, connection: &Connection, then: impl FnOnce(&Verdict<'_>) -> R) -> R {
        match self {
            Decider::Native(policy) => {
                let d = policy.decide_connection(&ConnectionAttributes(connection));
                then(&Verdict::of_decision(&d))
            }
            Decider::Filter { host, config, network, .. } => {
                let vm = match network {
                    Some(vm) => vm,
                    None => match host.vm_with_root_id(config, NETWORK_ROOT_ID) {
                        Ok(vm) => network.insert(Box::new(vm)),
                        Err(e) => {
                            let error = format!("the network filter did not start: {e}");
                            return then(&Verdict { error: Some(error), ..Verdict::default() });
                        }
                    },
                };
                let outcome = vm.connect(connection);
                if let Some(fault) = &outcome.fault {
                    let error = format!("the network filter faulted: {fault}");
                    // As for requests: the next connection gets a new VM.
                    *network = None;
                    return then(&Verdict { error: Some(error), ..Verdict::default() });
                }
                match outcome.filter_state.get(FILTER_STATE_KEY) {
                    Some(record) => then(&Verdict::from_record(record)),
                    None => then(&Verdict {
                        error: Some("the network filter wrote no decision record".into()),
                        ..Verdict::default()
                    }),
                }
            }
        }
    }
}

/// Requests or connections: what a line was replayed as, and the part of
/// the report it is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// Request lines, through the HTTP filter.
    Request,
    /// Connection lines, through the network filter.
    Connection,
}

// ----------------------------------------------------------------- report

/// What an outcome's group is named by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// The deciding policy (allow, denied).
    Policy,
    /// The record's reason, when no policy decided (`no-allow-match`,
    /// `no-policy`, `ambiguous-path`, ...).
    Reason,
    /// The authority (unregistered requests).
    Host,
    /// The server name (unregistered connections).
    ServerName,
    /// The DLP detector ids (dlp).
    Findings,
}

impl GroupKind {
    const ALL: [GroupKind; 5] =
        [GroupKind::Policy, GroupKind::Reason, GroupKind::Host, GroupKind::ServerName, GroupKind::Findings];

    fn key(self) -> &'static str {
        match self {
            GroupKind::Policy => "policy",
            GroupKind::Reason => "reason",
            GroupKind::Host => "host",
            GroupKind::ServerName => "sni",
            GroupKind::Findings => "findings",
        }
    }
}

/// Separates a reason from its service in a group's label.
const SERVICE_SEPARATOR: char = '\u{1f}';

/// A group of requests (or connections) with the same outcome and the same
/// policy, reason (and service), host (server name) or findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// What names it.
    pub kind: GroupKind,
    /// The name (a reason's service follows it after `\u{1f}`: see
    /// [`Group::reason_and_service`]).
    pub label: String,
    /// How many requests or connections.
    pub count: u64,
}

impl Group {
    /// As the human report shows it: reasons in parentheses, with their
    /// service.
    pub fn shown(&self) -> String {
        match (self.kind, self.reason_and_service()) {
            (GroupKind::Reason, (reason, Some(service))) => format!("({reason}) {service}"),
            (GroupKind::Reason, (reason, None)) => format!("({reason})"),
            _ => self.label.clone(),
        }
    }

    /// A reason group's reason and service.
    pub fn reason_and_service(&self) -> (&str, Option<&str>) {
        match self.label.split_once(SERVICE_SEPARATOR) {
            Some((reason, service)) => (reason, Some(service)),
            None => (self.label.as_str(), None),
        }
    }
}

/// One line of the log, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// 1-based line number.
    pub line: u64,
    /// The request or the connection.
    pub target: Target,
    /// The principal, if any.
    pub principal: Option<String>,
    /// The group it was counted under, as shown.
    pub group: String,
}

/// What an example line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A request.
    Request {
        /// `method`.
        method: String,
        /// `authority`.
        authority: String,
        /// `path` without its query (`?…` marks one), or
        /// [`crate::display::WITHHELD`] when DLP found something.
        path: String,
    },
    /// A connection.
    Connection {
        /// The server name, if the client sent one.
        sni: Option<String>,
        /// The listener port (`downstream_local_address`'s).
        port: Option<u16>,
    },
}

/// One replayed line, as the report records it.
#[derive(Clone, Copy)]
struct Seen<'l, 'e> {
    /// 1-based.
    line: u64,
    entry: &'l Entry<'e>,
    traffic: Traffic,
    principal: Option<&'l str>,
}

impl Example {
    fn of(seen: &Seen<'_, '_>, verdict: &Verdict<'_>) -> Example {
        let Seen { line, entry, traffic, principal } = *seen;
        let target = match traffic {
            Traffic::Request => {
                let path = entry.path.as_deref().unwrap_or_default();
                let path = if !verdict.findings.is_empty() {
                    crate::display::WITHHELD.to_owned()
                } else {
                    match path.split_once('?') {
                        Some((p, _)) => format!("{p}?…"),
                        None => path.to_owned(),
                    }
                };
                Target::Request {
                    method: entry.method.as_deref().unwrap_or_default().to_owned(),
                    authority: entry.authority.as_deref().unwrap_or_default().to_owned(),
                    path,
                }
            }
            Traffic::Connection => Target::Connection {
                sni: entry.sni.as_deref().map(str::to_owned),
                port: entry.local_address.as_deref().and_then(port_of),
            },
        };
        let mut scratch = String::new();
        let (kind, label) = verdict.group(entry, traffic, &mut scratch);
        let group = Group { kind, label: label.to_owned(), count: 0 }.shown();
        Example {
            line,
            target,
            principal: principal.map(|p| p.strip_prefix("spiffe://").unwrap_or(p).to_owned()),
            group,
        }
    }

    fn text(&self, with_group: bool) -> String {
        let mut text = match &self.target {
            Target::Request { method, authority, path } => {
                let gap = if path.starts_with('/') { "" } else { " " };
                format!("line {}: {method} {authority}{gap}{path}", self.line)
            }
            Target::Connection { sni, port } => {
                let port = port.map_or_else(|| "-".to_owned(), |p| p.to_string());
                format!("line {}: sni={} port={port}", self.line, sni.as_deref().unwrap_or("-"))
            }
        };
        if let Some(p) = &self.principal {
            let _ = write!(text, " from {p}");
        }
        if with_group {
            let _ = write!(text, " → {}", self.group);
        }
        text
    }

    fn json(&self) -> Value {
        match &self.target {
            Target::Request { method, authority, path } => json!({
                "line": self.line,
                "method": method,
                "authority": authority,
                "path": path,
                "principal": self.principal,
                "group": self.group,
            }),
            Target::Connection { sni, port } => json!({
                "line": self.line,
                "sni": sni,
                "port": port,
                "principal": self.principal,
                "group": self.group,
            }),
        }
    }
}

/// The counts of one outcome.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests (or connections) with this outcome.
    pub count: u64,
    groups: [HashMap<String, u64>; 5],
    /// The first lines with this outcome.
    pub examples: Vec<Example>,
}

impl Tally {
    fn add(&mut self, kind: GroupKind, label: &str) {
        self.count += 1;
        let map = match self.groups.get_mut(kind as usize) {
            Some(m) => m,
            None => return,
        };
        match map.get_mut(label) {
            Some(n) => *n += 1,
            None => {
                map.insert(label.to_owned(), 1);
            }
        }
    }

    /// The groups, largest first (then by name).
    pub fn groups(&self) -> Vec<Group> {
        let mut out: Vec<Group> = GroupKind::ALL
            .iter()
            .zip(&self.groups)
            .flat_map(|(kind, map)| {
                map.iter().map(|(label, count)| Group { kind: *kind, label: label.clone(), count: *count })
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
        out
    }
}

/// Line numbers of some kind, counted, the first few kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// How many.
    pub count: u64,
    /// The first [`SKIPPED_LINES_KEPT`].
    pub first: Vec<u64>,
}

impl Lines {
    fn add(&mut self, line: u64) {
        self.count += 1;
        if self.first.len() < SKIPPED_LINES_KEPT {
            self.first.push(line);
        }
    }

    fn shown(&self) -> String {
        let mut text: Vec<String> = self.first.iter().map(u64::to_string).collect();
        if self.count > self.first.len() as u64 {
            text.push("…".into());
        }
        let word = if self.count == 1 { "line" } else { "lines" };
        format!("{word} {}", text.join(", "))
    }

    fn json(&self) -> Value {
        json!({"count": self.count, "firstLines": self.first})
    }
}

/// Decisions that differ from the ones logged at the time.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Lines that had a logged decision.
    pub compared: u64,
    /// (logged, replayed) → count and the first examples.
    pub transitions: HashMap<(String, Outcome), (u64, Vec<Example>)>,
}

impl Changes {
    /// How many decisions changed.
    pub fn changed(&self) -> u64 {
        self.transitions.values().map(|(n, _)| n).sum()
    }

    /// The transitions, largest first.
    pub fn sorted(&self) -> Vec<(&str, Outcome, u64, &[Example])> {
        let mut out: Vec<_> =
            self.transitions.iter().map(|((from, to), (n, ex))| (from.as_str(), *to, *n, ex.as_slice())).collect();
        out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (a.0, a.1).cmp(&(b.0, b.1))));
        out
    }
}

/// The connections of a replay: the same counts as a report keeps for
/// requests.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    /// Lines replayed as connections.
    pub count: u64,
    /// Per outcome, in [`Outcome::ALL`] order (never `dlp`: connections are
    /// not scanned).
    pub outcomes: [Tally; 5],
    /// Dry-run policies that would have refused connections: name → count.
    pub dry_run: HashMap<String, u64>,
    /// AUDIT policies that matched: name → count.
    pub audit: HashMap<String, u64>,
    /// Against the logged decisions.
    pub changes: Changes,
}

/// What a replay found. Requests are counted in the report itself (kept
/// so for its readers), connections in [`Report::connections`]; both read
/// alike through [`Report::part`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Lines read (blank ones included).
    pub lines: u64,
    /// Lines replayed as requests.
    pub requests: u64,
    /// Per outcome, in [`Outcome::ALL`] order.
    pub outcomes: [Tally; 5],
    /// Lines replayed as connections, and what became of them.
    pub connections: Connections,
    /// Lines that are not JSON objects.
    pub not_json: Lines,
    /// JSON lines that are neither a request nor a connection.
    pub incomplete: Lines,
    /// Lines the filter faulted on (or wrote no record for).
    pub errors: Lines,
    /// The first error's message.
    pub first_error: Option<String>,
    /// Dry-run policies that would have refused requests: name → count.
    pub dry_run: HashMap<String, u64>,
    /// AUDIT policies that matched: name → count.
    pub audit: HashMap<String, u64>,
    /// Against the logged decisions.
    pub changes: Changes,
}

/// The requests, or the connections, of a report.
#[derive(Debug, Clone, Copy)]
pub struct Part<'r> {
    /// How many lines.
    pub count: u64,
    /// Per outcome, in [`Outcome::ALL`] order.
    pub outcomes: &'r [Tally; 5],
    /// Dry-run policies that would have refused them: name → count.
    pub dry_run: &'r HashMap<String, u64>,
    /// AUDIT policies that matched: name → count.
    pub audit: &'r HashMap<String, u64>,
    /// Against the logged decisions.
    pub changes: &'r Changes,
}

impl<'r> Part<'r> {
    /// One outcome's tally.
    pub fn tally(&self, kind: Outcome) -> &'r Tally {
        tally_of(self.outcomes, kind)
    }
}

fn tally_of(outcomes: &[Tally; 5], kind: Outcome) -> &Tally {
    let [allow, denied, unregistered, bad_request, dlp] = outcomes;
    match kind {
        Outcome::Allow => allow,
        Outcome::Denied => denied,
        Outcome::Unregistered => unregistered,
        Outcome::BadRequest => bad_request,
        Outcome::DlpBlocked => dlp,
    }
}

fn tally_of_mut(outcomes: &mut [Tally; 5], kind: Outcome) -> &mut Tally {
    let [allow, denied, unregistered, bad_request, dlp] = outcomes;
    match kind {
        Outcome::Allow => allow,
        Outcome::Denied => denied,
        Outcome::Unregistered => unregistered,
        Outcome::BadRequest => bad_request,
        Outcome::DlpBlocked => dlp,
    }
}

impl Report {
    /// Requests with an outcome.
    pub fn count(&self, kind: Outcome) -> u64 {
        self.tally(kind).count
    }

    /// One outcome's tally of requests.
    pub fn tally(&self, kind: Outcome) -> &Tally {
        tally_of(&self.outcomes, kind)
    }

    /// The requests or the connections.
    pub fn part(&self, traffic: Traffic) -> Part<'_> {
        match traffic {
            Traffic::Request => Part {
                count: self.requests,
                outcomes: &self.outcomes,
                dry_run: &self.dry_run,
                audit: &self.audit,
                changes: &self.changes,
            },
            Traffic::Connection => {
                let c = &self.connections;
                Part {
                    count: c.count,
                    outcomes: &c.outcomes,
                    dry_run: &c.dry_run,
                    audit: &c.audit,
                    changes: &c.changes,
                }
            }
        }
    }

    /// Lines skipped (not JSON, or incomplete).
    pub fn skipped(&self) -> u64 {
        self.not_json.count + self.incomplete.count
    }

    /// A group's count among requests (`None`: no such group).
    pub fn group_count(&self, kind: Outcome, label: &str) -> Option<u64> {
        self.tally(kind).groups().into_iter().find(|g| g.label == label).map(|g| g.count)
    }

    fn record(&mut self, seen: &Seen<'_, '_>, verdict: &Verdict<'_>, examples: usize, scratch: &mut String) {
        let Seen { line, entry, traffic, .. } = *seen;
        let Report { requests, outcomes, dry_run, audit, changes, connections, errors, first_error, .. } = self;
        let (count, outcomes, dry_run, audit, changes) = match traffic {
            Traffic::Request => (requests, outcomes, dry_run, audit, changes),
            Traffic::Connection => {
                let c = connections;
                (&mut c.count, &mut c.outcomes, &mut c.dry_run, &mut c.audit, &mut c.changes)
            }
        };
        *count += 1;
        let Some(kind) = verdict.kind else {
            errors.add(line);
            if first_error.is_none() {
                *first_error = verdict.error.clone();
            }
            return;
        };
        let (group_kind, label) = verdict.group(entry, traffic, scratch);
        let tally = tally_of_mut(outcomes, kind);
        tally.add(group_kind, label);
        if tally.examples.len() < examples {
            tally.examples.push(Example::of(seen, verdict));
        }
        for (names, map) in [(&verdict.dry_run, dry_run), (&verdict.audit, audit)] {
            for name in names {
                match map.get_mut(&**name) {
                    Some(n) => *n += 1,
                    None => {
                        map.insert(name.to_string(), 1);
                    }
                }
            }
        }
        if let Some(logged) = &entry.logged {
            changes.compared += 1;
            if logged != kind.as_str() {
                let (n, ex) = changes.transitions.entry((logged.clone(), kind)).or_default();
                *n += 1;
                if ex.len() < examples {
                    ex.push(Example::of(seen, verdict));
                }
            }
        }
    }
}

/// A log that could not be read to its end: the line, and why.
#[derive(Debug)]
pub struct ReadError {
    /// The line (1-based) being read.
    pub line: u64,
    /// What the reader said.
    pub error: std::io::Error,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: cannot read: {}", self.line, self.error)
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Replays every line of `log`. `progress` is called now and then with the
/// bytes read so far. Fails only when the log cannot be read.
pub fn replay(
    mut log: impl BufRead,
    decider: &mut Decider<'_>,
    config: &[u8],
    options: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Report, ReadError> {
    let mut replayer = Replayer {
        report: Report::default(),
        builder: RequestBuilder::for_config(config),
        connections: None,
        options,
        scratch: String::new(),
    };
    let mut partial = Vec::with_capacity(1024);
    let mut read: u64 = 0;
    loop {
        let cannot = |error: std::io::Error, lines: u64| ReadError { line: lines + 1, error };
        // A line wholly in the reader's buffer is read there; one that
        // straddles its end is gathered first.
        let buffered = log.fill_buf().map_err(|e| cannot(e, replayer.report.lines))?;
        if buffered.is_empty() {
            break;
        }
        let n = match memchr::memchr(b'\n', buffered) {
            Some(end) => {
                let line = buffered.get(..=end).unwrap_or(buffered);
                replayer.line(line, decider);
                let n = line.len();
                log.consume(n);
                n
            }
            None => {
                partial.clear();
                let n = log.read_until(b'\n', &mut partial).map_err(|e| cannot(e, replayer.report.lines))?;
                replayer.line(&partial, decider);
                n
            }
        };
        read += n as u64;
        if replayer.report.lines % 4096 == 0 {
            progress(read);
        }
    }
    progress(read);
    Ok(replayer.report)
}

/// The state of a replay between lines.
struct Replayer<'o> {
    report: Report,
    builder: RequestBuilder,
    /// Made at the first connection line.
    connections: Option<ConnectionBuilder>,
    options: &'o Options,
    /// Group labels put together.
    scratch: String,
}

impl Replayer<'_> {
    fn line(&mut self, bytes: &[u8], decider: &mut Decider<'_>) {
        let report = &mut self.report;
        report.lines += 1;
        let line = report.lines;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Some(entry) = parse_entry(bytes, self.options) else {
            report.not_json.add(line);
            return;
        };
        let traffic = match entry.kind() {
            LineKind::Request => Traffic::Request,
            LineKind::Connection => Traffic::Connection,
            LineKind::Incomplete => {
                report.incomplete.add(line);
                return;
            }
        };
        let principal = match &self.options.principal {
            PrincipalSource::None => None,
            PrincipalSource::Field(_) => entry.principal.as_deref(),
            PrincipalSource::Fixed(p) => Some(p.as_str()),
        };
        let seen = Seen { line, entry: &entry, traffic, principal };
        let examples = self.options.examples;
        let scratch = &mut self.scratch;
        match traffic {
            Traffic::Request => {
                let request = self.builder.build(&entry, principal);
                decider.decide(request, |verdict| report.record(&seen, verdict, examples, scratch));
            }
            Traffic::Connection => {
                let slot = &self.builder.slot;
                let builder = self.connections.get_or_insert_with(|| ConnectionBuilder::new(slot.clone()));
                let connection = builder.build(&entry, principal);
                decider.decide_connection(connection, |verdict| report.record(&seen, verdict, examples, scratch));
            }
        }
    }
}

/// What the report says about its inputs.
#[derive(Debug, Clone)]
pub struct Context {
    /// The access log, as shown.
    pub access_log: String,
    /// The policy file(s), as shown.
    pub policy: String,
    /// `filter` or `native`.
    pub engine: &'static str,
    /// Where principals came from.
    pub principal: PrincipalSource,
    /// The decision field compared with.
    pub decision_field: Option<String>,
    /// Whether the policy has DLP policies.
    pub dlp: bool,
    /// Examples per outcome.
    pub examples: usize,
}

fn sorted_counts(map: &HashMap<String, u64>) -> Vec<(&str, u64)> {
    let mut out: Vec<(&str, u64)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    out
}

/// The outcomes a part of the human report lists: connections are never
/// scanned, so they have no `dlp` line.
fn outcomes_shown(traffic: Traffic) -> &'static [Outcome] {
    match traffic {
        Traffic::Request => &Outcome::ALL,
        Traffic::Connection => &[Outcome::Allow, Outcome::Denied, Outcome::Unregistered, Outcome::BadRequest],
    }
}

/// The human report.
pub fn human(report: &Report, context: &Context) -> String {
    let mut out = String::new();
    let engine = match context.engine {
        "native" => "the native engine",
        _ => "the filter in the harness",
    };
    let _ = writeln!(out, "access log  {} ({} lines)", context.access_log, report.lines);
    let _ = writeln!(out, "policy      {}, through {engine}", context.policy);
    let principal = match &context.principal {
        PrincipalSource::None => "none (requests are anonymous)".to_owned(),
        PrincipalSource::Field(f) => format!("the field {f}"),
        PrincipalSource::Fixed(p) => format!("{p}, for every line"),
    };
    let _ = writeln!(out, "principal   {principal}");
    if context.dlp {
        let _ = writeln!(out, "dlp         headers and query only: access logs carry no bodies");
    }
    // Connections only when the log has some: an HTTP gateway's report
    // stays as it was. Which part a section is about is said when there
    // are two.
    let parts: &[(Traffic, &str)] = if report.connections.count > 0 {
        &[(Traffic::Request, "requests"), (Traffic::Connection, "connections")]
    } else {
        &[(Traffic::Request, "requests")]
    };
    for (traffic, title) in parts {
        let part = report.part(*traffic);
        let _ = writeln!(out);
        let _ = writeln!(out, "{title:<32}{:>9}", part.count);
        for kind in outcomes_shown(*traffic) {
            let tally = part.tally(*kind);
            let _ = writeln!(out, "{:<32}{:>9}", kind.as_str(), tally.count);
            let groups = tally.groups();
            for g in groups.iter().take(GROUPS_SHOWN) {
                let _ = writeln!(out, "  {:<30}{:>9}", g.shown(), g.count);
            }
            if groups.len() > GROUPS_SHOWN {
                let rest: u64 = groups.iter().skip(GROUPS_SHOWN).map(|g| g.count).sum();
                let more = format!("… {} more", groups.len() - GROUPS_SHOWN);
                let _ = writeln!(out, "  {more:<30}{rest:>9}");
            }
        }
    }
    let mixed = parts.len() > 1;
    if mixed {
        // Errors and skipped lines are neither part's.
        let _ = writeln!(out);
    }
    if report.errors.count > 0 {
        let first = report.first_error.as_deref().unwrap_or_default();
        let _ = writeln!(out, "{:<32}{:>9}   {}: {first}", "errors", report.errors.count, report.errors.shown());
    }
    let mut skipped = Vec::new();
    if report.not_json.count > 0 {
        skipped.push(format!("not JSON: {}", report.not_json.shown()));
    }
    if report.incomplete.count > 0 {
        skipped.push(format!("neither a request nor a connection: {}", report.incomplete.shown()));
    }
    let detail = if skipped.is_empty() { String::new() } else { format!("   {}", skipped.join("; ")) };
    let _ = writeln!(out, "{:<32}{:>9}{detail}", "skipped", report.skipped());

    for (traffic, noun) in parts {
        let part = report.part(*traffic);
        let matched =
            if mixed { format!("AUDIT policies that matched {noun}") } else { "AUDIT policies that matched".into() };
        for (title, map) in
            [(format!("dry-run policies that would have refused {noun}"), part.dry_run), (matched, part.audit)]
        {
            if !map.is_empty() {
                let _ = writeln!(out, "\n{title}");
                for (name, count) in sorted_counts(map) {
                    let _ = writeln!(out, "  {name:<30}{count:>9}");
                }
            }
        }
    }

    for (traffic, noun) in parts {
        let changes = report.part(*traffic).changes;
        if let (Some(field), true) = (&context.decision_field, changes.compared > 0) {
            let changed = changes.changed();
            let which = if mixed { format!("{noun} ") } else { String::new() };
            let _ = writeln!(
                out,
                "\n{which}against the decisions logged in `{field}` ({} lines): {changed} changed",
                changes.compared
            );
            for (from, to, count, _) in changes.sorted() {
                let _ = writeln!(out, "  {:<30}{count:>9}", format!("{from} → {}", to.as_str()));
            }
        }
    }

    if context.examples > 0 && report.requests + report.connections.count > 0 {
        let _ = writeln!(out, "\nexamples (the first {} of each; queries withheld)", context.examples);
        for (traffic, _) in parts {
            let part = report.part(*traffic);
            let prefix = match traffic {
                Traffic::Request => "",
                Traffic::Connection => "connection ",
            };
            for kind in Outcome::ALL {
                let tally = part.tally(kind);
                if tally.examples.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "{prefix}{}", kind.as_str());
                for e in &tally.examples {
                    let _ = writeln!(out, "  {}", e.text(kind != Outcome::Unregistered));
                }
            }
            for (from, to, _, examples) in part.changes.sorted() {
                let _ = writeln!(out, "{prefix}changed {from} → {}", to.as_str());
                for e in examples {
                    let _ = writeln!(out, "  {}", e.text(to != Outcome::Unregistered));
                }
            }
        }
    }
    out
}

/// One part of the JSON report: per outcome its count, groups and
/// examples; the dry-run and AUDIT policies; the changes.
fn json_part(part: Part<'_>, decision_field: Option<&str>) -> (Value, Value, Value, Value) {
    let outcomes: serde_json::Map<String, Value> = Outcome::ALL
        .iter()
        .map(|kind| {
            let tally = part.tally(*kind);
            let groups: Vec<Value> = tally
                .groups()
                .iter()
                .map(|g| {
                    let mut o = serde_json::Map::new();
                    match g.kind {
                        GroupKind::Findings => {
                            o.insert(g.kind.key().into(), json!(g.label.split(", ").collect::<Vec<_>>()));
                        }
                        GroupKind::Reason => {
                            let (reason, service) = g.reason_and_service();
                            o.insert("reason".into(), json!(reason));
                            if let Some(service) = service {
                                o.insert("service".into(), json!(service));
                            }
                        }
                        _ => {
                            o.insert(g.kind.key().into(), json!(g.label));
                        }
                    }
                    o.insert("count".into(), json!(g.count));
                    Value::Object(o)
                })
                .collect();
            let examples: Vec<Value> = tally.examples.iter().map(Example::json).collect();
            (kind.as_str().to_owned(), json!({"count": tally.count, "groups": groups, "examples": examples}))
        })
        .collect();
    let counts = |map: &HashMap<String, u64>| -> Value {
        sorted_counts(map).into_iter().map(|(name, count)| json!({"policy": name, "count": count})).collect()
    };
    let changes = part.changes;
    let transitions: Vec<Value> = changes
        .sorted()
        .into_iter()
        .map(|(from, to, count, examples)| {
            json!({
                "from": from,
                "to": to.as_str(),
                "count": count,
                "examples": examples.iter().map(Example::json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let changes = json!({
        "field": decision_field,
        "compared": changes.compared,
        "changed": changes.changed(),
        "transitions": transitions,
    });
    (Value::Object(outcomes), counts(part.dry_run), counts(part.audit), changes)
}

/// The JSON report. Requests are at the top level (`requests`,
/// `outcomes`, `dryRun`, `audit`, `changes`); connections under
/// `connections`, with the same members (`count` for `requests`).
pub fn json(report: &Report, context: &Context) -> Value {
    let principal = match &context.principal {
        PrincipalSource::None => Value::Null,
        PrincipalSource::Field(f) => json!({ "field": f }),
        PrincipalSource::Fixed(p) => json!({ "value": p }),
    };
    let field = context.decision_field.as_deref();
    let (outcomes, dry_run, audit, changes) = json_part(report.part(Traffic::Request), field);
    let connections = report.part(Traffic::Connection);
    let (c_outcomes, c_dry_run, c_audit, c_changes) = json_part(connections, field);
    json!({
        "accessLog": context.access_log,
        "policy": context.policy,
        "engine": context.engine,
        "principal": principal,
        "lines": report.lines,
        "requests": report.requests,
        "outcomes": outcomes,
        "connections": {
            "count": connections.count,
            "outcomes": c_outcomes,
            "dryRun": c_dry_run,
            "audit": c_audit,
            "changes": c_changes,
        },
        "skipped": {
            "count": report.skipped(),
            "notJson": report.not_json.json(),
            "incomplete": report.incomplete.json(),
        },
        "errors": {"count": report.errors.count, "firstLines": report.errors.first, "first": report.first_error},
        "dryRun": dry_run,
        "audit": audit,
        "changes": changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options { principal: PrincipalSource::Field("peer".into()), ..Options::default() }
    }

    #[test]
    fn entries_read_the_fields_envoy_logs() {
        let line = br#"2024-05-01T10:00:00Z {"authority":"httpbin.org","method":"GET","path":"/get?a=1","protocol":"HTTP/1.1","response_code":200,"downstream_local_address":"10.0.0.1:8080","downstream_remote_address":"10.0.0.7:51000","requested_server_name":null,"peer":"spiffe://cluster.local/ns/a/sa/b","user_agent":"-","bytes_sent":12,"nested":{"x":[1,2]},"warden":"{\"decision\":\"denied\",\"policy\":null}"}"#;
        let e = parse_entry(line, &options()).unwrap();
        assert_eq!(e.authority.as_deref(), Some("httpbin.org"));
        assert!(matches!(e.authority, Some(Cow::Borrowed(_))), "borrowed from the line");
        assert_eq!(e.path.as_deref(), Some("/get?a=1"));
        assert_eq!(e.local_address.as_deref(), Some("10.0.0.1:8080"));
        assert_eq!(e.sni, None, "null is absent");
        assert_eq!(e.user_agent, None, "- is absent");
        assert_eq!(e.principal.as_deref(), Some("spiffe://cluster.local/ns/a/sa/b"));
        assert_eq!(e.logged.as_deref(), Some("denied"));
        let escaped = parse_entry(br#"{"path":"/a\"b","warden":{"decision":"allow"}}"#, &options()).unwrap();
        assert_eq!(escaped.path.as_deref(), Some("/a\"b"));
        assert_eq!(escaped.logged.as_deref(), Some("allow"), "a typed record");
        assert!(parse_entry(b"[info] envoy started", &options()).is_none());
        assert!(parse_entry(b"{\"authority\": ", &options()).is_none());
        assert!(parse_entry(br#"{"authority":"h","warden":"not json"}"#, &options()).unwrap().logged.is_none());
    }

    #[test]
    fn escapes_are_decoded_and_bad_json_refused() {
        assert_eq!(unescape(br#"a\"b\\c\u00e9\ud83d\ude00\n"#).as_deref(), Some("a\"b\\c\u{e9}\u{1f600}\n"));
        assert_eq!(unescape(br#"\ud83d"#), None, "a lone surrogate");
        assert_eq!(unescape(br#"\x"#), None);
        let e = parse_entry(br#"{"auth\u006fr\u0069ty":"h\u00e9.org" , "method" : "GET","path":"/"}"#, &options());
        assert_eq!(e.and_then(|e| e.authority).as_deref(), Some("h\u{e9}.org"), "escaped keys and values");
        for bad in [&br#"{"a":}"#[..], br#"{"a" 1}"#, br#"{"a":1"#, br#"{"a":[1,2}"#, br#"{a:1}"#, br#"{"a":nope}"#] {
            assert!(parse_entry(bad, &options()).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_entry(b"{}", &options()).is_some());
    }

    #[test]
    fn requests_carry_port_source_sni_and_principal() {
        let line = br#"{"authority":"h.org","method":"POST","path":"/p","downstream_local_address":"[::1]:8443","downstream_remote_address":"10.0.0.7:51000","requested_server_name":"outbound_.80_._.h.org","user_agent":"curl"}"#;
        let e = parse_entry(line, &options()).unwrap();
        let mut b = RequestBuilder::new(PrincipalSlot::PeerCertificate);
        let r = b.build(&e, Some("cluster.local/ns/a/sa/b")).clone();
        let prop = |r: &Request, path: &[&str]| r.properties.iter().find(|(p, _)| p == path).map(|(_, v)| v.clone());
        assert_eq!(r.header_value(":scheme").as_deref(), Some("https"));
        assert_eq!(r.header_value("user-agent").as_deref(), Some("curl"));
        assert_eq!(prop(&r, property::DESTINATION_PORT), Some(8443u64.to_le_bytes().to_vec()));
        assert_eq!(prop(&r, property::SOURCE_ADDRESS), Some(b"10.0.0.7:51000".to_vec()));
        assert_eq!(prop(&r, property::SNI), Some(b"outbound_.80_._.h.org".to_vec()));
        assert_eq!(prop(&r, property::PEER_URI_SAN), Some(b"spiffe://cluster.local/ns/a/sa/b".to_vec()));
        // The next line reuses the request: nothing of the last one stays.
        let bare = parse_entry(br#"{"authority":"x","method":"GET","path":"/"}"#, &options()).unwrap();
        let r = b.build(&bare, None).clone();
        assert_eq!(r.headers.len(), 4);
        assert_eq!(r.header_value(":scheme").as_deref(), Some("http"));
        assert_eq!(r.properties.len(), 1);
        assert_eq!(prop(&r, property::DESTINATION_PORT), Some(80u64.to_le_bytes().to_vec()));

        let mut b = RequestBuilder::new(PrincipalSlot::FilterState("io.istio.peer_principal".into()));
        let r = b.build(&bare, Some("spiffe://td/ns/x/sa/y")).clone();
        assert_eq!(prop(&r, &["filter_state", "io.istio.peer_principal"]), Some(b"spiffe://td/ns/x/sa/y".to_vec()));
        let mut b = RequestBuilder::new(PrincipalSlot::Header("x-principal".into()));
        assert_eq!(b.build(&bare, Some("p")).header_value("x-principal").as_deref(), Some("p"));
        let mut b = RequestBuilder::new(PrincipalSlot::Xfcc);
        let xfcc = b.build(&bare, Some("td/ns/x/sa/y")).header_value("x-forwarded-client-cert");
        assert_eq!(xfcc.as_deref(), Some("URI=spiffe://td/ns/x/sa/y"));
    }

    #[test]
    fn the_principal_goes_where_the_policy_reads_it_first() {
        assert_eq!(PrincipalSlot::of_config(b"{}"), PrincipalSlot::PeerCertificate);
        assert_eq!(
            PrincipalSlot::of_config(br#"{"identity":[{"filterState":"k"},{"peerCertificate":{}}]}"#),
            PrincipalSlot::FilterState("k".into())
        );
        assert_eq!(PrincipalSlot::of_config(br#"{"identity":[{"xfcc":{}}]}"#), PrincipalSlot::Xfcc);
        assert_eq!(
            PrincipalSlot::of_config(br#"{"identity":[{"header":"X-P"}]}"#),
            PrincipalSlot::Header("x-p".into())
        );
    }

    #[test]
    fn decision_records_are_read() {
        let v = Verdict::from_record(
            br#"{"decision":"denied","reason":"deny-policy","policy":"no-admin","rule":0,"service":"h","principal":null,"findings":[],"dryRun":["a","b"],"audit":[]}"#,
        );
        assert_eq!(
            (v.kind, &*v.reason, v.policy.as_deref(), v.service.as_deref()),
            (Some(Outcome::Denied), "deny-policy", Some("no-admin"), Some("h"))
        );
        assert_eq!(v.dry_run, ["a", "b"]);
        assert!(v.error.is_none());
        let v =
            Verdict::from_record(br#"{"decision":"dlp","findings":["jwt","email"],"findingsAt":[{"id":"jwt","in":"query","action":"BLOCK"}]}"#);
        assert_eq!((v.kind, v.findings.len()), (Some(Outcome::DlpBlocked), 2));
        for bad in [
            &br#"not json"#[..],
            br#"{"decision":"maybe"}"#,
            br#"{"reason":"x"}"#,
            br#"{"decision":"allow","audit":[1]}"#,
        ] {
            let v = Verdict::from_record(bad);
            assert!(v.kind.is_none() && v.error.is_some(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn properties_a_policy_cannot_read_are_not_sent() {
        let e = parse_entry(
            br#"{"authority":"h","method":"GET","path":"/","downstream_remote_address":"10.0.0.7:1","requested_server_name":"s"}"#,
            &options(),
        )
        .unwrap();
        let sent = |config: &[u8]| {
            let mut b = RequestBuilder::for_config(config);
            let r = b.build(&e, None).clone();
            r.properties.iter().map(|(p, _)| p.join(".")).collect::<Vec<_>>()
        };
        assert_eq!(sent(b"{}"), ["destination.port"]);
        assert_eq!(sent(br#"{"x":{"notRemoteIpBlocks":[]}}"#), ["destination.port", "source.address"]);
        assert_eq!(
            sent(br#"{"when":[{"key":"connection.sni"}]}"#),
            ["destination.port", "connection.requested_server_name"]
        );
    }

    #[test]
    fn ports_of_addresses() {
        assert_eq!(port_of("10.0.0.1:8080"), Some(8080));
        assert_eq!(port_of("[2001:db8::1]:443"), Some(443));
        assert_eq!(port_of("2001:db8::1"), None);
        assert_eq!(port_of("10.0.0.1"), None);
    }

    #[test]
    fn examples_never_show_a_query_or_a_path_with_findings() {
        let e = parse_entry(br#"{"authority":"h","method":"GET","path":"/s?token=abc"}"#, &options()).unwrap();
        let seen = Seen { line: 7, entry: &e, traffic: Traffic::Request, principal: None };
        let allowed = Verdict { kind: Some(Outcome::Allow), reason: "no-policy".into(), ..Verdict::default() };
        let ex = Example::of(&seen, &allowed);
        let path = |ex: &Example| match &ex.target {
            Target::Request { path, .. } => path.clone(),
            Target::Connection { .. } => String::new(),
        };
        assert_eq!(path(&ex), "/s?…");
        assert_eq!(ex.text(true), "line 7: GET h/s?… → (no-policy)");
        let dlp =
            Verdict { kind: Some(Outcome::DlpBlocked), findings: vec![Cow::Borrowed("jwt")], ..Verdict::default() };
        assert_eq!(path(&Example::of(&seen, &dlp)), crate::display::WITHHELD);
    }

    fn kind(line: &str) -> LineKind {
        parse_entry(line.as_bytes(), &options()).map_or(LineKind::Incomplete, |e| e.kind())
    }

    #[test]
    fn lines_are_requests_connections_or_neither() {
        // Every request field: a request, whatever else the line has.
        assert_eq!(kind(r#"{"authority":"h","method":"GET","path":"/","protocol":"HTTP/1.1"}"#), LineKind::Request);
        assert_eq!(
            kind(r#"{"authority":"h","method":"GET","path":"/","downstream_local_address":"10.0.0.1:8443"}"#),
            LineKind::Request
        );
        // tcp_proxy's line (Istio's fields, as Envoy prints them for TCP).
        let tcp = r#"{"authority":null,"method":null,"path":null,"protocol":null,"downstream_local_address":"10.244.0.12:8443","downstream_remote_address":"10.244.1.17:40109","requested_server_name":"api.stripe.com","response_code":0,"upstream_host":"34.200.47.89:443"}"#;
        assert_eq!(kind(tcp), LineKind::Connection);
        // No server name ("-" or absent) is still a connection: Warden decides it (no-sni).
        assert_eq!(
            kind(r#"{"downstream_local_address":"10.0.0.1:443","requested_server_name":"-"}"#),
            LineKind::Connection
        );
        assert_eq!(kind(r#"{"downstream_local_address":"[2001:db8::1]:443","protocol":"-"}"#), LineKind::Connection);
        // A listener port is required: without it there is nothing to decide with.
        assert_eq!(kind(r#"{"requested_server_name":"api.stripe.com"}"#), LineKind::Incomplete);
        assert_eq!(
            kind(r#"{"downstream_local_address":"10.0.0.1","requested_server_name":"a.b"}"#),
            LineKind::Incomplete
        );
        assert_eq!(kind(r#"{"downstream_local_address":"-"}"#), LineKind::Incomplete);
        assert_eq!(kind("{}"), LineKind::Incomplete);
        // An HTTP line without its request (a codec error) has a protocol: not a connection.
        let codec_error = r#"{"authority":null,"method":null,"path":null,"protocol":"HTTP/1.1","downstream_local_address":"10.0.0.1:8080","response_code":400,"response_flags":"DPE"}"#;
        assert_eq!(kind(codec_error), LineKind::Incomplete);
        // Some of the request fields but not all: a broken request, not a connection.
        assert_eq!(
            kind(r#"{"authority":"h","path":"/","downstream_local_address":"10.0.0.1:80"}"#),
            LineKind::Incomplete
        );
        assert_eq!(kind(r#"{"method":"GET","downstream_local_address":"10.0.0.1:80"}"#), LineKind::Incomplete);
    }

    #[test]
    fn connections_carry_port_source_sni_and_the_principal_after_the_handshake() {
        let line = br#"{"downstream_local_address":"10.244.0.12:8443","downstream_remote_address":"10.244.1.17:40109","requested_server_name":"api.stripe.com","peer":"cluster.local/ns/a/sa/b"}"#;
        let e = parse_entry(line, &options()).unwrap();
        let prop = |props: &[(Vec<String>, Vec<u8>)], path: &[&str]| {
            props.iter().find(|(p, _)| p == path).map(|(_, v)| v.clone())
        };
        let mut b = ConnectionBuilder::new(PrincipalSlot::PeerCertificate);
        let c = b.build(&e, e.principal.as_deref()).clone();
        assert_eq!(prop(&c.properties, property::DESTINATION_PORT), Some(8443u64.to_le_bytes().to_vec()));
        assert_eq!(prop(&c.properties, property::SOURCE_ADDRESS), Some(b"10.244.1.17:40109".to_vec()));
        assert_eq!(prop(&c.properties, property::SNI), Some(b"api.stripe.com".to_vec()));
        assert_eq!(prop(&c.properties, property::PEER_CERTIFICATE), None, "not before the handshake");
        assert_eq!(
            prop(&c.handshake_properties, property::PEER_URI_SAN),
            Some(b"spiffe://cluster.local/ns/a/sa/b".to_vec())
        );
        assert!(prop(&c.handshake_properties, property::PEER_CERTIFICATE).is_some());
        assert_eq!(prop(&c.handshake_properties, MTLS), Some(vec![1]));
        assert!(
            !c.downstream.is_empty() && c.downstream_end && c.upstream_end,
            "the filter sees bytes, then both ends"
        );
        // The native engine's view has the principal, as the network filter has after the handshake.
        let attrs = ConnectionAttributes(&c);
        use warden_engine::Attributes as _;
        assert!(attrs.property(property::PEER_CERTIFICATE).is_some());

        // The next line reuses the connection: nothing of the last one stays.
        let bare =
            parse_entry(br#"{"downstream_local_address":"10.0.0.1:443","requested_server_name":"-"}"#, &options())
                .unwrap();
        let c = b.build(&bare, None).clone();
        assert_eq!(c.properties.len(), 1, "{:?}", c.properties);
        assert_eq!(prop(&c.properties, property::DESTINATION_PORT), Some(443u64.to_le_bytes().to_vec()));
        assert!(c.handshake_properties.is_empty());

        // A policy that reads a filter state first gets the principal there, from the start.
        let mut b = ConnectionBuilder::new(PrincipalSlot::FilterState("io.istio.peer_principal".into()));
        let c = b.build(&e, Some("td/ns/x/sa/y")).clone();
        assert_eq!(
            prop(&c.properties, &["filter_state", "io.istio.peer_principal"]),
            Some(b"spiffe://td/ns/x/sa/y".to_vec())
        );
        assert!(c.handshake_properties.is_empty());
    }

    #[test]
    fn connection_examples_show_server_name_and_port() {
        let e = parse_entry(
            br#"{"downstream_local_address":"10.0.0.1:8443","requested_server_name":"evil.example"}"#,
            &options(),
        )
        .unwrap();
        let seen = Seen { line: 9, entry: &e, traffic: Traffic::Connection, principal: Some("spiffe://td/ns/a/sa/b") };
        let unregistered =
            Verdict { kind: Some(Outcome::Unregistered), reason: "unregistered".into(), ..Verdict::default() };
        let ex = Example::of(&seen, &unregistered);
        assert_eq!(ex.text(true), "line 9: sni=evil.example port=8443 from td/ns/a/sa/b → evil.example");
        assert_eq!(ex.json()["sni"], "evil.example");
        assert_eq!(ex.json()["port"], 8443);
        let none = parse_entry(br#"{"downstream_local_address":"10.0.0.1:8443"}"#, &options()).unwrap();
        let seen = Seen { line: 10, entry: &none, traffic: Traffic::Connection, principal: None };
        let no_sni = Verdict { kind: Some(Outcome::Unregistered), reason: "no-sni".into(), ..Verdict::default() };
        let ex = Example::of(&seen, &no_sni);
        assert_eq!(ex.text(true), "line 10: sni=- port=8443 → (no-sni)");
        assert_eq!(ex.json()["sni"], Value::Null);
    }
}
