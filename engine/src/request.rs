//! What the engine needs from the proxy, and the request attributes it
//! derives from that: headers, properties, the caller's addresses.

use crate::document::PeerAddress;
use crate::identity::x509;
use std::net::IpAddr;

/// Visits header lines (name, value) in order: how a request's trailers,
/// which arrive after the decision, reach DLP.
pub type HeaderLines<'a> = dyn FnMut(&mut dyn FnMut(&str, &str)) + 'a;

/// The engine's only view of the host. The filter implements it with
/// proxy-wasm host calls; tests use [`FakeAttributes`].
pub trait Attributes {
    /// The first value of a request header, by lowercase name;
    /// pseudo-headers as `:authority`, `:method`, `:path`, `:scheme`.
    fn header(&self, name: &str) -> Option<&str>;
    /// Every request header, pseudo-headers included, in order (DLP scans
    /// them all). A header that arrived on several lines is several
    /// entries, unless Envoy joined them into one with `,` (it does for
    /// the headers it knows, `user-agent` or `x-forwarded-for` say).
    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str));
    /// A host property by path, e.g. `["source", "address"]`.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;

    /// The names in the peer certificate `pem` (what
    /// `connection.peer_certificate` held). A host that sees the same
    /// certificates again remembers them ([`x509::CertificateCache`]).
    fn peer_certificate_names(&self, pem: &[u8]) -> Result<x509::SubjectAltNames, x509::CertificateError> {
        x509::pem_subject_alt_names(pem)
    }

    /// Whether `pred` holds for any value of header `name` (each entry
    /// on its own, in order; stops at the first that does).
    fn any_header_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        let mut hit = false;
        self.for_each_header(&mut |n, v| {
            if !hit && n == name {
                hit = pred(v);
            }
        });
        hit
    }

    /// Every line of header `name` joined with `,`, as Envoy joins the
    /// lines of the headers it knows: a header read as the list its lines
    /// make, whatever the host did with them (`None`: absent).
    fn joined_header(&self, name: &str) -> Option<String> {
        let mut joined: Option<String> = None;
        self.any_header_value(name, &mut |v| {
            match joined.as_mut() {
                Some(j) => {
                    j.push(',');
                    j.push_str(v);
                }
                None => joined = Some(v.to_owned()),
            }
            false
        });
        joined
    }
}

/// Envoy's property paths, in one place.
pub mod property {
    /// The downstream peer certificate, PEM (Envoy 1.40).
    pub const PEER_CERTIFICATE: &[&str] = &["connection", "peer_certificate"];
    /// The *first* URI SAN of the downstream peer certificate (`spiffe://...`).
    pub const PEER_URI_SAN: &[&str] = &["connection", "uri_san_peer_certificate"];
    /// The subject of the downstream peer certificate (RFC 2253).
    pub const PEER_SUBJECT: &[&str] = &["connection", "subject_peer_certificate"];
    /// `ip:port` of the downstream peer, as the HTTP connection manager
    /// sees it: derived from `x-forwarded-for` (port 0) when it trusts
    /// that, from a PROXY protocol header when the listener takes one.
    pub const SOURCE_ADDRESS: &[&str] = &["source", "address"];
    /// The listener port, 8 little-endian bytes.
    pub const DESTINATION_PORT: &[&str] = &["destination", "port"];
    /// SNI of the downstream TLS connection.
    pub const SNI: &[&str] = &["connection", "requested_server_name"];
    /// The TLS version of the downstream connection: present whenever the
    /// listener terminates TLS, even before the handshake is done; absent
    /// on a connection Envoy does not decrypt (passthrough, plain TCP).
    pub const TLS_VERSION: &[&str] = &["connection", "tls_version"];
}

/// A principal as a peer certificate's URI SAN: `spiffe://` added if absent.
pub fn spiffe_uri(principal: &str) -> String {
    if principal.starts_with("spiffe://") {
        principal.to_owned()
    } else {
        format!("spiffe://{principal}")
    }
}

/// An IP as Envoy's `source.address` shows it for a connection: `ip:port`
/// (IPv6 bracketed) with a client's ephemeral port.
pub fn socket_address(ip: &str) -> String {
    if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]:40000")
    } else {
        format!("{ip}:40000")
    }
}

/// A port as Envoy's `destination.port` encodes it: 8 little-endian bytes.
pub fn encode_port(port: u16) -> Vec<u8> {
    u64::from(port).to_le_bytes().to_vec()
}

/// The caller's addresses as Istio's rules see them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Addresses {
    /// `ipBlocks`, `source.ip`: the direct peer. `None` when Envoy
    /// derived `source.address` from a header (its port is then 0) and no
    /// other source of the direct peer is configured.
    pub direct: Option<IpAddr>,
    /// `remoteIpBlocks`, `remote.ip`: `source.address`, which Envoy
    /// derives from `x-forwarded-for` or PROXY protocol when told to.
    pub remote: Option<IpAddr>,
}

pub(crate) fn addresses(attrs: &dyn Attributes, peer: &PeerAddress) -> Addresses {
    let source = attrs.property(property::SOURCE_ADDRESS).and_then(|b| String::from_utf8(b).ok());
    let socket = source.as_deref().and_then(parse_socket);
    let remote = socket.map(|(ip, _)| ip);
    let direct = match peer {
        // A socket address Envoy took from a header has port 0: it is not
        // the peer's.
        PeerAddress::SourceAddress(_) => socket.filter(|&(_, port)| port != 0).map(|(ip, _)| ip),
        PeerAddress::FilterState(key) => attrs
            .property(&["filter_state", key.as_str()])
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| parse_socket(s.trim()))
            .map(|(ip, _)| ip),
    };
    Addresses { direct, remote }
}

/// The IP and port of an `ip:port`, `[v6]:port` or bare address (port 0).
pub(crate) fn parse_socket(text: &str) -> Option<(IpAddr, u16)> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((ip, 0));
    }
    text.parse::<std::net::SocketAddr>().ok().map(|sa| (sa.ip(), sa.port()))
}

/// The listener port from `destination.port` (8 LE bytes; a decimal string
/// is accepted too).
pub(crate) fn destination_port(attrs: &dyn Attributes) -> Option<u16> {
    let bytes = attrs.property(property::DESTINATION_PORT)?;
    if let Ok(le) = <[u8; 8]>::try_from(bytes.as_slice()) {
        return u16::try_from(u64::from_le_bytes(le)).ok();
    }
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}

/// A test double for [`Attributes`], built like a request.
///
/// ```
/// use warden_engine::FakeAttributes;
/// let req = FakeAttributes::get("httpbin.org", "/get").principal("cluster.local/ns/default/sa/sleep");
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeAttributes {
    headers: Vec<(String, String)>,
    properties: Vec<(Vec<String>, Vec<u8>)>,
}

impl FakeAttributes {
    /// An empty request (no pseudo-headers at all).
    pub fn new() -> Self {
        Self::default()
    }

    /// `GET http://authority/path` without identity.
    pub fn get(authority: &str, path: &str) -> Self {
        Self::request("GET", authority, path)
    }

    /// A request with method, authority and path.
    pub fn request(method: &str, authority: &str, path: &str) -> Self {
        Self::new()
            .header(":method", method)
            .header(":authority", authority)
            .header(":path", path)
            .header(":scheme", "http")
    }

    /// Sets a header (replacing every one of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Adds a header line, keeping others of the same name (a repeated
    /// header, as Envoy hands it over when it does not join it).
    pub fn add_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Removes a header.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    /// Sets a property.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.properties.retain(|(p, _)| *p != path);
        self.properties.push((path, value.into()));
        self
    }

    /// A peer certificate whose only URI SAN is `principal` (`spiffe://`
    /// added if absent), shown as Envoy shows it: the PEM and the first
    /// URI SAN.
    pub fn principal(self, principal: &str) -> Self {
        self.peer_certificate(&[&spiffe_uri(principal)], &[])
    }

    /// A peer certificate with these URI SANs (as written: no scheme is
    /// added) and DNS SANs.
    pub fn peer_certificate(self, uris: &[&str], dns: &[&str]) -> Self {
        let pem = x509::test_certificate_pem(uris, dns, "workload");
        let this = self.property(property::PEER_CERTIFICATE, pem);
        match uris.first() {
            Some(first) => this.property(property::PEER_URI_SAN, *first),
            None => this,
        }
    }

    /// The downstream address as a connection's (`ip:port`).
    pub fn source_ip(self, ip: &str) -> Self {
        self.property(property::SOURCE_ADDRESS, socket_address(ip))
    }

    /// The downstream address as Envoy shows it when it took it from
    /// `x-forwarded-for`: `ip:0`.
    pub fn forwarded_source_ip(self, ip: &str) -> Self {
        let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.property(property::SOURCE_ADDRESS, std::net::SocketAddr::new(ip, 0).to_string())
    }

    /// The listener port, encoded as Envoy does.
    pub fn destination_port(self, port: u16) -> Self {
        self.property(property::DESTINATION_PORT, encode_port(port))
    }

    /// A connection (no headers) to `port`, with server name `sni`.
    pub fn connection(sni: Option<&str>, port: u16) -> Self {
        let this = FakeAttributes::new().destination_port(port);
        match sni {
            Some(name) => this.sni(name),
            None => this,
        }
    }

    /// Sets the TLS server name (`connection.requested_server_name`).
    pub fn sni(self, name: &str) -> Self {
        self.property(property::SNI, name)
    }
}

impl Attributes for FakeAttributes {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (n, v) in &self.headers {
            visit(n, v);
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties
            .iter()
            .find(|(p, _)| p.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_socket("10.0.0.7:5555"), Some((ip("10.0.0.7"), 5555)));
        assert_eq!(parse_socket("[::1]:5555"), Some((ip("::1"), 5555)));
        assert_eq!(parse_socket("10.0.0.7"), Some((ip("10.0.0.7"), 0)));
        assert_eq!(parse_socket("9.9.9.9:0"), Some((ip("9.9.9.9"), 0)));
        assert_eq!(parse_socket("nonsense"), None);
    }

    #[test]
    fn a_forwarded_source_address_is_not_the_peer() {
        let direct = FakeAttributes::new().source_ip("10.0.0.7");
        let forwarded = FakeAttributes::new().forwarded_source_ip("10.0.0.7");
        let source = PeerAddress::SourceAddress(crate::document::Empty {});
        let ip = Some("10.0.0.7".parse().unwrap());
        assert_eq!(addresses(&direct, &source), Addresses { direct: ip, remote: ip });
        assert_eq!(addresses(&forwarded, &source), Addresses { direct: None, remote: ip });
        let from_state = PeerAddress::FilterState("peer".into());
        let set = forwarded.clone().property(&["filter_state", "peer"], "192.0.2.1:3333");
        assert_eq!(addresses(&set, &from_state).direct, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(addresses(&forwarded, &from_state).direct, None);
    }

    #[test]
    fn repeated_headers_are_each_a_value() {
        let req = FakeAttributes::new().add_header("x-abc", "ok").add_header("x-abc", "bad");
        assert_eq!(Attributes::header(&req, "x-abc"), Some("ok"));
        assert!(req.any_header_value("x-abc", &mut |v| v == "bad"));
        assert!(!req.any_header_value("x-abc", &mut |v| v == "ok,bad"));
    }
}
