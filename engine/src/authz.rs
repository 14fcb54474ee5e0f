//! Compiled authorization policies with Istio's AuthorizationPolicy
//! semantics (SPEC §3.3).
//!
//! A `source`, an `operation` and the `when` list all compile to the same
//! thing: a list of [`Check`]s that must all hold. A rule holds when any
//! source, any operation and every condition hold.

use crate::document::Action;
use crate::matcher::{IpBlock, PathMatch, StringMatch};
use crate::request::Attributes;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One compiled authorization policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthzPolicy {
    /// As in the document.
    pub name: String,
    /// ALLOW, DENY or AUDIT.
    pub action: Action,
    /// Recorded, never enforced.
    pub dry_run: bool,
    /// Whether the policy is limited to some services.
    pub scoped: bool,
    /// No rules: never matches.
    pub rules: Vec<Rule>,
}

/// A compiled rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rule {
    /// Alternatives; `None` matches any source.
    pub from: Option<Vec<Vec<Check>>>,
    /// Alternatives; `None` matches any operation.
    pub to: Option<Vec<Vec<Check>>>,
    /// All must hold.
    pub when: Vec<Check>,
}

/// One attribute test. `negate` turns "any value matches" into "no value
/// matches", so an absent attribute fails a positive check and passes a
/// negative one, as in Istio.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// The attribute and the patterns.
    pub test: Test,
    /// `not*` fields and `notValues`.
    pub negate: bool,
}

/// What a [`Check`] looks at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Test {
    /// `source.principal`, `spiffe://` stripped.
    Principal(Vec<StringMatch>),
    /// `source.namespace`.
    Namespace(Vec<StringMatch>),
    /// `source.ip`: the `source.address` property.
    SourceIp(Vec<IpBlock>),
    /// `remote.ip`: also `source.address`, which Envoy derives from
    /// `x-forwarded-for` when the gateway trusts proxies in front of it.
    RemoteIp(Vec<IpBlock>),
    /// `request.host` without port, case-insensitive (patterns lowercased).
    Host(Vec<StringMatch>),
    /// `destination.port`.
    Port(Vec<u16>),
    /// `request.method`, case-sensitive.
    Method(Vec<StringMatch>),
    /// `request.url_path`, normalized.
    Path(Vec<PathMatch>),
    /// `request.headers[name]`.
    Header(String, Vec<StringMatch>),
    /// `connection.sni`.
    Sni(Vec<StringMatch>),
}

/// The request as the rules see it.
pub(crate) struct RequestView<'a> {
    pub host: &'a str,
    pub port: u16,
    pub method: &'a str,
    pub path: &'a str,
    pub principal: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
    pub sni: Option<&'a str>,
    pub attrs: &'a dyn Attributes,
}

fn any_str(patterns: &[StringMatch], value: Option<&str>) -> bool {
    value.is_some_and(|v| patterns.iter().any(|p| p.matches(v)))
}

fn any_ip(blocks: &[IpBlock], ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| blocks.iter().any(|b| b.contains(ip)))
}

impl Check {
    fn holds(&self, req: &RequestView<'_>) -> bool {
        let hit = match &self.test {
            Test::Principal(p) => any_str(p, req.principal),
            Test::Namespace(p) => any_str(p, req.namespace),
            Test::SourceIp(b) | Test::RemoteIp(b) => any_ip(b, req.source_ip),
            Test::Host(p) => any_str(p, Some(req.host)),
            Test::Port(ports) => ports.contains(&req.port),
            Test::Method(p) => any_str(p, Some(req.method)),
            Test::Path(p) => p.iter().any(|m| m.matches(req.path)),
            Test::Header(name, p) => any_str(p, req.attrs.header(name)),
            Test::Sni(p) => any_str(p, req.sni),
        };
        hit != self.negate
    }
}

fn all(checks: &[Check], req: &RequestView<'_>) -> bool {
    checks.iter().all(|c| c.holds(req))
}

fn any_alternative(alternatives: &Option<Vec<Vec<Check>>>, req: &RequestView<'_>) -> bool {
    match alternatives {
        None => true,
        Some(alts) => alts.iter().any(|checks| all(checks, req)),
    }
}

impl Rule {
    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        any_alternative(&self.from, req) && any_alternative(&self.to, req) && all(&self.when, req)
    }

    /// Every check of the rule, for compile-time analysis.
    pub(crate) fn checks(&self) -> impl Iterator<Item = &Check> {
        let from = self.from.iter().flatten().flatten();
        let to = self.to.iter().flatten().flatten();
        from.chain(to).chain(self.when.iter())
    }
}

impl AuthzPolicy {
    /// The index of the first rule that matches.
    pub(crate) fn first_match(&self, req: &RequestView<'_>) -> Option<usize> {
        self.rules.iter().position(|r| r.matches(req))
    }
}
