//! What the engine needs from the proxy, and the request attributes it
//! derives from that (SPEC §3.1).

use crate::document::IdentitySource;
use std::net::IpAddr;

/// The engine's only view of the host. The filter implements it with
/// proxy-wasm host calls; tests use [`FakeAttributes`].
pub trait Attributes {
    /// A request header by lowercase name; pseudo-headers as `:authority`,
    /// `:method`, `:path`, `:scheme`.
    fn header(&self, name: &str) -> Option<&str>;
    /// Every request header, pseudo-headers included, in order (DLP scans
    /// them all).
    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str));
    /// A host property by path, e.g. `["source", "address"]`.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
}

/// Envoy's property paths, in one place.
pub mod property {
    /// URI SAN of the downstream peer certificate (`spiffe://...`).
    pub const PEER_URI_SAN: &[&str] = &["connection", "uri_san_peer_certificate"];
    /// `ip:port` of the downstream peer.
    pub const SOURCE_ADDRESS: &[&str] = &["source", "address"];
    /// The listener port, 8 little-endian bytes.
    pub const DESTINATION_PORT: &[&str] = &["destination", "port"];
    /// SNI of the downstream TLS connection.
    pub const SNI: &[&str] = &["connection", "requested_server_name"];
}

/// A principal as a peer certificate's URI SAN: `spiffe://` added if absent.
pub fn spiffe_uri(principal: &str) -> String {
    if principal.starts_with("spiffe://") {
        principal.to_owned()
    } else {
        format!("spiffe://{principal}")
    }
}

/// An IP as Envoy's `source.address` shows it: `ip:port`, IPv6 bracketed.
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

/// The caller's identity as matched by rules: `spiffe://` stripped.
pub(crate) fn principal(attrs: &dyn Attributes, sources: &[IdentitySource]) -> Option<String> {
    for source in sources {
        let found = match source {
            IdentitySource::PeerCertificate(_) => property_string(attrs, property::PEER_URI_SAN),
            IdentitySource::FilterState(key) => property_string(attrs, &["filter_state", key.as_str()]),
            IdentitySource::Xfcc(_) => attrs.header("x-forwarded-client-cert").and_then(xfcc_uri),
            IdentitySource::Header(name) => attrs.header(name).map(str::to_owned),
        };
        if let Some(p) = found.filter(|p| !p.is_empty()) {
            let stripped = p.strip_prefix("spiffe://").map(str::to_owned);
            return Some(stripped.unwrap_or(p));
        }
    }
    None
}

/// The `ns/<namespace>` segment of a principal.
pub(crate) fn namespace(principal: &str) -> Option<&str> {
    let mut parts = principal.split('/');
    while let Some(part) = parts.next() {
        if part == "ns" {
            return parts.next().filter(|ns| !ns.is_empty());
        }
    }
    None
}

fn property_string(attrs: &dyn Attributes, path: &[&str]) -> Option<String> {
    attrs.property(path).and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The `URI=` value of the last (nearest proxy's) element of an
/// `x-forwarded-client-cert` header. Quoted values may contain `,` and `;`.
fn xfcc_uri(header: &str) -> Option<String> {
    let mut elements: Vec<Vec<(String, String)>> = vec![Vec::new()];
    let mut key = String::new();
    let mut value = String::new();
    let mut in_value = false;
    let mut quoted = false;
    let mut chars = header.chars();
    let finish_pair = |elements: &mut Vec<Vec<(String, String)>>, key: &mut String, value: &mut String| {
        if let Some(last) = elements.last_mut() {
            last.push((std::mem::take(key).trim().to_ascii_lowercase(), std::mem::take(value)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' if in_value => quoted = !quoted,
            '\\' if quoted => value.extend(chars.next()),
            '=' if !in_value => in_value = true,
            ';' if !quoted => {
                finish_pair(&mut elements, &mut key, &mut value);
                in_value = false;
            }
            ',' if !quoted => {
                finish_pair(&mut elements, &mut key, &mut value);
                in_value = false;
                elements.push(Vec::new());
            }
            c if in_value => value.push(c),
            c => key.push(c),
        }
    }
    finish_pair(&mut elements, &mut key, &mut value);
    let last = elements.into_iter().rev().find(|e| e.iter().any(|(k, _)| !k.is_empty()))?;
    last.into_iter().find(|(k, _)| k == "uri").map(|(_, v)| v).filter(|v| !v.is_empty())
}

/// The IP of an `ip:port`, `[v6]:port` or bare address.
pub(crate) fn parse_socket_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    text.parse::<std::net::SocketAddr>().ok().map(|sa| sa.ip())
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

    /// Sets a header (replacing one of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
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

    /// The peer certificate's URI SAN; `spiffe://` is added if absent.
    pub fn principal(self, principal: &str) -> Self {
        self.property(property::PEER_URI_SAN, spiffe_uri(principal))
    }

    /// The downstream address.
    pub fn source_ip(self, ip: &str) -> Self {
        self.property(property::SOURCE_ADDRESS, socket_address(ip))
    }

    /// The listener port, encoded as Envoy does.
    pub fn destination_port(self, port: u16) -> Self {
        self.property(property::DESTINATION_PORT, encode_port(port))
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
    fn xfcc_forms() {
        let h = r#"By=spiffe://cluster.local/ns/egress/sa/gw;Hash=abc;URI=spiffe://cluster.local/ns/default/sa/admin"#;
        assert_eq!(xfcc_uri(h).as_deref(), Some("spiffe://cluster.local/ns/default/sa/admin"));
        let two = r#"Hash=1;URI=spiffe://a/ns/x/sa/first,Hash=2;Subject="CN=b, O=c";URI=spiffe://a/ns/y/sa/second"#;
        assert_eq!(xfcc_uri(two).as_deref(), Some("spiffe://a/ns/y/sa/second"));
        assert_eq!(xfcc_uri("Hash=1;DNS=example.com"), None);
        assert_eq!(xfcc_uri(""), None);
    }

    #[test]
    fn namespace_of_principal() {
        assert_eq!(namespace("cluster.local/ns/default/sa/admin"), Some("default"));
        assert_eq!(namespace("cluster.local/sa/admin"), None);
        assert_eq!(namespace("td/ns//sa/x"), None);
    }

    #[test]
    fn socket_ips() {
        assert_eq!(parse_socket_ip("10.0.0.7:5555"), Some("10.0.0.7".parse().unwrap()));
        assert_eq!(parse_socket_ip("[::1]:5555"), Some("::1".parse().unwrap()));
        assert_eq!(parse_socket_ip("10.0.0.7"), Some("10.0.0.7".parse().unwrap()));
        assert_eq!(parse_socket_ip("nonsense"), None);
    }
}
