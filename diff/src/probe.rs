//! A concrete request the diff decides under both policies, and the engine's
//! view of it.

use serde::Serialize;
use std::net::IpAddr;
use warden_engine::document::{IdentitySource, PeerAddress};
use warden_engine::identity::x509::{CertificateError, SubjectAltNames};
use warden_engine::request::{encode_port, property};
use warden_engine::{Attributes, Policy};

/// The port a caller connects from (what `warden test` uses).
const CLIENT_PORT: u16 = 40000;

/// One concrete request: what `warden explain` can be asked about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Probe {
    /// A connection through the network filter (server name, port, the
    /// caller), not an HTTP request: method, authority and path are empty.
    pub connection: bool,
    /// The method.
    pub method: String,
    /// `:authority` as sent.
    pub authority: String,
    /// The path as sent (`:path`, query included); `None` for a CONNECT.
    pub path: Option<String>,
    /// The listener port the request arrives on.
    pub port: u16,
    /// The caller's SPIFFE ID (`spiffe://td/ns/.../sa/...`), if any.
    pub principal: Option<String>,
    /// Other request headers.
    pub headers: Vec<(String, String)>,
    /// The caller's address.
    pub source_ip: IpAddr,
    /// The TLS server name the request came with, where the gateway
    /// terminates the client's TLS.
    pub sni: Option<String>,
}

/// Where the policies read the caller's identity and address: the probe
/// shows its principal and address in every place either policy reads, so
/// that both see the same caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presentation {
    identity_headers: Vec<String>,
    xfcc: bool,
    identity_states: Vec<String>,
    address_states: Vec<String>,
}

impl Presentation {
    pub(crate) fn of(policies: &[&Policy]) -> Self {
        let mut p = Presentation::default();
        for policy in policies {
            for source in policy.identity_sources() {
                match source {
                    IdentitySource::Header(name) => {
                        let name = name.to_ascii_lowercase();
                        if !p.identity_headers.contains(&name) {
                            p.identity_headers.push(name);
                        }
                    }
                    IdentitySource::Xfcc(_) => p.xfcc = true,
                    IdentitySource::FilterState(key) => {
                        if !p.identity_states.contains(key) {
                            p.identity_states.push(key.clone());
                        }
                    }
                    IdentitySource::PeerCertificate(_) => {}
                }
            }
            if let PeerAddress::FilterState(key) = policy.peer_address() {
                p.address_states.push(key.clone());
            }
        }
        p
    }

    /// Whether `name` is a header either policy reads the identity from.
    pub(crate) fn is_identity_header(&self, name: &str) -> bool {
        self.identity_headers.iter().any(|h| h == name) || (self.xfcc && name == "x-forwarded-client-cert")
    }

    /// The headers a probe carries for its principal, as `(name, value)`.
    pub(crate) fn identity_header_values(&self, principal: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.identity_headers.iter().map(|h| (h.clone(), principal.to_owned())).collect();
        if self.xfcc {
            out.push(("x-forwarded-client-cert".to_owned(), format!("URI={principal}")));
        }
        out
    }
}

/// A probe as the engine sees it.
pub(crate) struct View<'a> {
    probe: &'a Probe,
    presentation: &'a Presentation,
    identity_headers: Vec<(String, String)>,
    address: String,
}

impl<'a> View<'a> {
    pub(crate) fn new(probe: &'a Probe, presentation: &'a Presentation) -> Self {
        // A connection has no headers to carry an identity in.
        let identity_headers = match probe.principal.as_deref() {
            Some(p) if !probe.connection => presentation.identity_header_values(p),
            _ => Vec::new(),
        };
        View {
            probe,
            presentation,
            identity_headers,
            address: std::net::SocketAddr::new(probe.source_ip, CLIENT_PORT).to_string(),
        }
    }

    fn pseudo(&self, name: &str) -> Option<&str> {
        match name {
            ":method" => Some(&self.probe.method),
            ":authority" => Some(&self.probe.authority),
            ":path" => self.probe.path.as_deref(),
            ":scheme" => Some("http"),
            _ => None,
        }
    }
}

impl Attributes for View<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        if self.probe.connection {
            return None;
        }
        if name.starts_with(':') {
            return self.pseudo(name);
        }
        self.identity_headers
            .iter()
            .chain(&self.probe.headers)
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str)) {
        if self.probe.connection {
            return;
        }
        for name in [":method", ":authority", ":path", ":scheme"] {
            if let Some(v) = self.pseudo(name) {
                visit(name, v);
            }
        }
        for (n, v) in self.identity_headers.iter().chain(&self.probe.headers) {
            visit(n, v);
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let principal = self.probe.principal.as_deref();
        if path == property::PEER_CERTIFICATE {
            return principal.map(|_| b"probe".to_vec());
        }
        if path == property::PEER_URI_SAN {
            return principal.map(|p| p.as_bytes().to_vec());
        }
        if path == property::SOURCE_ADDRESS {
            return Some(self.address.clone().into_bytes());
        }
        if path == property::DESTINATION_PORT {
            return Some(encode_port(self.probe.port));
        }
        if path == property::SNI {
            return self.probe.sni.as_ref().map(|s| s.clone().into_bytes());
        }
        if let ["filter_state", key] = path {
            if self.presentation.identity_states.iter().any(|k| k == key) {
                return principal.map(|p| p.as_bytes().to_vec());
            }
            if self.presentation.address_states.iter().any(|k| k == key) {
                return Some(self.address.clone().into_bytes());
            }
        }
        None
    }

    fn peer_certificate_names(&self, _pem: &[u8]) -> Result<SubjectAltNames, CertificateError> {
        Ok(SubjectAltNames { uris: self.probe.principal.iter().cloned().collect(), dns: Vec::new() })
    }
}
