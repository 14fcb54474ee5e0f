//! Who is calling: the caller's names as Istio's rules match them.
//!
//! Istio compiles `principals`, `namespaces`, `trustDomains` and
//! `serviceAccounts` to Envoy RBAC matchers on the *authenticated
//! principal*, which Envoy tries against every URI SAN of the peer
//! certificate, then every DNS SAN, then the subject (or, in a waypoint,
//! against the filter state `io.istio.peer_principal`). A rule matches when
//! any of those names matches. [`Identity`] holds the same names, read
//! from the source the policy's `identity` list names; the matchers in
//! `matcher` are Istio's, applied to each name.
//!
//! Trust model, by source:
//! - `peerCertificate`: every SAN of the certificate Envoy validated
//!   (read from `connection.peer_certificate`, see [`x509`]); nothing the
//!   client can write.
//! - `filterState`: a value an earlier filter set; as trusted as it.
//! - `xfcc`: the *last* element of `x-forwarded-client-cert`, which the
//!   nearest proxy appended (Envoy's `APPEND_FORWARD`, or the only one with
//!   `SANITIZE_SET`). Only list it behind a proxy that sanitizes the
//!   header. A header that is not valid XFCC is a bad request.
//! - `header`: the header's value; any client can send it. A request
//!   carrying the header twice is a bad request.

pub mod x509;
pub mod xfcc;

use crate::document::IdentitySource;
use crate::request::{property, Attributes};

/// The caller's names, as Envoy's RBAC sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Every name rules are matched against, in full (`spiffe://…`).
    pub names: Vec<String>,
}

impl Identity {
    /// The principal shown in decision records: the first SPIFFE ID,
    /// `spiffe://` stripped.
    pub fn principal(&self) -> Option<&str> {
        self.names.iter().find_map(|n| n.strip_prefix(SPIFFE)).filter(|p| !p.is_empty())
    }
}

/// The URI scheme of SPIFFE IDs.
pub const SPIFFE: &str = "spiffe://";

/// Why the caller's identity could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// `x-forwarded-client-cert` is not valid XFCC (a bad request).
    MalformedXfcc,
    /// The identity header arrived more than once (a bad request).
    RepeatedHeader,
    /// A peer certificate was presented but its names cannot be read
    /// whole (Envoy does not show it, or it is not well-formed DER): the
    /// identity cannot be decided, so rules that need it refuse.
    UnreadableCertificate,
}

/// The identity from the first source that yields one; `Ok(None)` when
/// none does (a plaintext caller, say). `subject`: also read the peer
/// certificate's subject (only rules matching any name, or namespace
/// patterns, can match it).
pub(crate) fn resolve(
    attrs: &dyn Attributes,
    sources: &[IdentitySource],
    subject: bool,
) -> Result<Option<Identity>, IdentityError> {
    resolve_checked(attrs, sources, subject, true)
}

/// [`resolve`]; with `tell_unreadable` false, a missing peer certificate is
/// taken for none without asking Envoy whether one was presented that it
/// could not show (a host call). The caller must only pass false where an
/// unreadable certificate would count as no identity anyway: the peer
/// certificate is the only source, and no enforced rule reads the caller.
pub(crate) fn resolve_checked(
    attrs: &dyn Attributes,
    sources: &[IdentitySource],
    subject: bool,
    tell_unreadable: bool,
) -> Result<Option<Identity>, IdentityError> {
    for source in sources {
        let found = match source {
            IdentitySource::PeerCertificate(_) => peer_certificate(attrs, subject, tell_unreadable)?,
            IdentitySource::FilterState(key) => property_text(attrs, &["filter_state", key.as_str()])
                .filter(|v| !v.is_empty())
                .map(|v| Identity { names: vec![v] }),
            IdentitySource::Xfcc(_) => xfcc_identity(attrs)?,
            IdentitySource::Header(name) => header_identity(attrs, name)?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

fn property_text(attrs: &dyn Attributes, path: &[&str]) -> Option<String> {
    attrs.property(path).and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Every URI SAN, every DNS SAN, then the subject, as Envoy's
/// `authenticated` matcher tries them.
fn peer_certificate(
    attrs: &dyn Attributes,
    subject: bool,
    tell_unreadable: bool,
) -> Result<Option<Identity>, IdentityError> {
    let Some(pem) = attrs.property(property::PEER_CERTIFICATE).filter(|p| !p.is_empty()) else {
        if !tell_unreadable {
            return Ok(None);
        }
        // No certificate shown. If Envoy still reports a URI SAN, a
        // certificate was presented that Warden cannot read whole.
        return match attrs.property(property::PEER_URI_SAN) {
            Some(san) if !san.is_empty() => Err(IdentityError::UnreadableCertificate),
            _ => Ok(None),
        };
    };
    let sans = attrs.peer_certificate_names(&pem).map_err(|_| IdentityError::UnreadableCertificate)?;
    let mut names = sans.uris;
    names.extend(sans.dns);
    if subject {
        if let Some(s) = property_text(attrs, property::PEER_SUBJECT).filter(|s| !s.is_empty()) {
            names.push(s);
        }
    }
    Ok(Some(Identity { names }))
}

fn xfcc_identity(attrs: &dyn Attributes) -> Result<Option<Identity>, IdentityError> {
    // Several header lines are one list, as Envoy joins them.
    let Some(joined) = attrs.joined_header(xfcc::HEADER) else { return Ok(None) };
    let elements = xfcc::parse(&joined).map_err(|_| IdentityError::MalformedXfcc)?;
    let names: Vec<String> = xfcc::nearest_uris(&elements).into_iter().map(str::to_owned).collect();
    Ok((!names.is_empty()).then_some(Identity { names }))
}

fn header_identity(attrs: &dyn Attributes, name: &str) -> Result<Option<Identity>, IdentityError> {
    let mut value: Option<String> = None;
    let mut count = 0;
    attrs.any_header_value(name, &mut |v| {
        count += 1;
        if count == 1 {
            // A principal written without its scheme means the SPIFFE ID.
            let mut name = String::with_capacity(SPIFFE.len() + v.len());
            if !v.starts_with(SPIFFE) {
                name.push_str(SPIFFE);
            }
            name.push_str(v);
            value = Some(name);
        }
        count > 1
    });
    match (count, value) {
        (0, _) => Ok(None),
        (1, Some(name)) if name.len() > SPIFFE.len() => Ok(Some(Identity { names: vec![name] })),
        (1, _) => Ok(None),
        _ => Err(IdentityError::RepeatedHeader),
    }
}

/// A mesh's trust domain and its aliases (Istio's `trustDomain` and
/// `trustDomainAliases`), with Istio's rewriting of the principals and
/// trust domains that policies name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustDomains {
    /// The trust domain first, then its aliases.
    domains: Vec<String>,
}

/// Istio's name for the local trust domain, whatever it really is.
const CLUSTER_LOCAL: &str = "cluster.local";

impl TrustDomains {
    /// The mesh's trust domain and its aliases.
    pub fn new(trust_domain: &str, aliases: &[String]) -> Self {
        let mut domains = vec![trust_domain.to_owned()];
        domains.extend(aliases.iter().cloned());
        TrustDomains { domains }
    }

    /// Istio's `ReplaceTrustDomainAliases`: a principal whose trust domain
    /// is the mesh's, one of its aliases or `cluster.local` stands for the
    /// same identity in every one of them.
    pub fn expand_principals(&self, principals: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for principal in principals {
            let parts: Vec<&str> = principal.split('/').collect();
            let enforced = parts.len() == 5 && parts.first() != Some(&"*");
            let td = parts.first().copied().unwrap_or_default();
            if !enforced || !(string_match(td, &self.domains) || td == CLUSTER_LOCAL) {
                out.push(principal.clone());
                continue;
            }
            let mut variants: Vec<String> = Vec::new();
            for domain in &self.domains {
                let variant = if suffix_match(domain, td) {
                    principal.clone()
                } else {
                    format!("{domain}/{}", parts.get(1..).unwrap_or_default().join("/"))
                };
                if !variants.contains(&variant) {
                    variants.push(variant);
                }
            }
            out.extend(variants);
        }
        out
    }

    /// Istio's `ExpandTrustDomainAliases`: a trust domain that is the
    /// mesh's or an alias stands for all of them.
    pub fn expand_trust_domains(&self, values: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for value in values {
            let add: Vec<&String> =
                if self.domains.contains(value) { self.domains.iter().collect() } else { vec![value] };
            for v in add {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }
}

/// Istio's `stringMatch` of trust domains: exact, `*`, or a prefix or
/// suffix pattern on either side.
fn string_match(a: &str, list: &[String]) -> bool {
    list.iter().any(|s| {
        a == s || s == "*" || prefix_match(a, s) || prefix_match(s, a) || suffix_match(a, s) || suffix_match(s, a)
    })
}

fn prefix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_suffix('*').is_some_and(|p| a.starts_with(p))
}

fn suffix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_prefix('*').is_some_and(|p| a.ends_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Istio's own examples (pilot/pkg/security/trustdomain/bundle_test.go
    /// and the authz builder golden files).
    #[test]
    fn trust_domain_aliases_as_istio_rewrites_them() {
        let td = TrustDomains::new("td1", &strings(&["cluster.local"]));
        assert_eq!(
            td.expand_principals(&strings(&["cluster.local/ns/foo/sa/bar"])),
            strings(&["td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar"])
        );
        // A foreign trust domain is kept as written.
        assert_eq!(td.expand_principals(&strings(&["other/ns/foo/sa/bar"])), strings(&["other/ns/foo/sa/bar"]));
        // `*` trust domain, or not a SPIFFE path: kept.
        assert_eq!(td.expand_principals(&strings(&["*/ns/foo/sa/bar"])), strings(&["*/ns/foo/sa/bar"]));
        assert_eq!(td.expand_principals(&strings(&["sa/bar", "*"])), strings(&["sa/bar", "*"]));

        let wildcard = TrustDomains::new("td1", &strings(&["foobar"]));
        assert_eq!(
            wildcard.expand_principals(&strings(&["*bar/ns/foo/sa/x"])),
            strings(&["td1/ns/foo/sa/x", "*bar/ns/foo/sa/x"])
        );
        // cluster.local points at the local trust domain even when it is
        // not an alias.
        let renamed = TrustDomains::new("new-td", &strings(&["old-td"]));
        assert_eq!(
            renamed.expand_principals(&strings(&["cluster.local/ns/a/sa/b"])),
            strings(&["new-td/ns/a/sa/b", "old-td/ns/a/sa/b"])
        );
        assert_eq!(renamed.expand_trust_domains(&strings(&["old-td", "x"])), strings(&["new-td", "old-td", "x"]));
    }

    #[test]
    fn principal_is_the_first_spiffe_id() {
        let id = Identity { names: strings(&["https://not/spiffe", "spiffe://td/ns/a/sa/b", "spiffe://td/ns/c/sa/d"]) };
        assert_eq!(id.principal(), Some("td/ns/a/sa/b"));
        assert_eq!(Identity { names: strings(&["dns.example"]) }.principal(), None);
    }
}
