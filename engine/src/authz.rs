//! Compiled authorization policies with Istio's AuthorizationPolicy
//! semantics.
//!
//! A `source`, an `operation` and the `when` list all compile to the same
//! thing: a list of [`Check`]s that must all hold. A rule holds when any
//! source, any operation and every condition hold.

use crate::document::Action;
use crate::identity::Identity;
use crate::matcher::{HostMatch, IpBlock, NameMatch, PathMatch, StringMatch};
use crate::request::{Addresses, Attributes};
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
    /// `principals`, `namespaces`, `trustDomains`, `serviceAccounts` and
    /// their `when` keys: any of the caller's names matches any pattern.
    Identity(Vec<NameMatch>),
    /// `ipBlocks`, `source.ip`: the direct peer's address.
    SourceIp(Vec<IpBlock>),
    /// `remoteIpBlocks`, `remote.ip`: `source.address`, which Envoy
    /// derives from `x-forwarded-for` or PROXY protocol when told to.
    RemoteIp(Vec<IpBlock>),
    /// `hosts`: case-insensitive, on the readings `reading` combines.
    Host(Vec<HostMatch>, Reading),
    /// `ports`, `destination.port`.
    Port(Vec<u16>, Reading),
    /// `request.method`, case-sensitive.
    Method(Vec<StringMatch>),
    /// `request.url_path`, normalized.
    Path(Vec<PathMatch>),
    /// `request.headers[name]`: any value of the header (every line of a
    /// repeated header) matches any pattern; `*` is present, even empty.
    Header(String, Vec<StringMatch>),
    /// `connection.sni`.
    Sni(Vec<StringMatch>),
}

/// How a check combines the two readings of an attribute Warden and Istio
/// read differently: Istio's (the raw `Host` with its port, the listener
/// port) and Warden's (the normalized host without port, the port the
/// request named). Chosen at compile time so that Warden is never looser
/// than Istio: where a match lets a request through (a positive field of
/// an ALLOW policy, a negated field of a DENY one) both readings must
/// match; where a match refuses it, either one is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reading {
    /// Both readings must match.
    Both,
    /// One reading matching is enough.
    Either,
}

impl Reading {
    /// The reading for a field of a policy that allows (`allow`) or
    /// refuses, negated (`not*`, `notValues`) or not.
    pub fn for_field(allow: bool, negate: bool) -> Self {
        if allow != negate {
            Reading::Both
        } else {
            Reading::Either
        }
    }

    fn combine(self, istio: bool, warden: bool) -> bool {
        match self {
            Reading::Both => istio && warden,
            Reading::Either => istio || warden,
        }
    }
}

/// The request as the rules see it.
pub(crate) struct RequestView<'a> {
    /// Normalized: lowercase, no port, no trailing dot.
    pub host: &'a str,
    /// `:authority` as received, lowercased (Istio's reading of `hosts`).
    pub authority: &'a str,
    /// The port the request named, else the listener's (Warden's reading).
    pub port: u16,
    /// The listener port through `gatewayPorts` (Istio's reading of
    /// `ports`); `port` when Envoy does not say.
    pub listener_port: u16,
    pub method: &'a str,
    pub path: &'a str,
    pub identity: Option<&'a Identity>,
    pub addresses: Addresses,
    pub sni: Option<&'a str>,
    pub attrs: &'a dyn Attributes,
    /// A connection (the network filter), not an HTTP request: rules
    /// follow Istio's TCP semantics (see [`Rule::matches`]).
    pub connection: bool,
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
            Test::Identity(patterns) => {
                req.identity.is_some_and(|id| id.names.iter().any(|n| patterns.iter().any(|p| p.matches(n))))
            }
            Test::SourceIp(b) => any_ip(b, req.addresses.direct),
            Test::RemoteIp(b) => any_ip(b, req.addresses.remote),
            Test::Host(p, reading) => reading.combine(
                p.iter().any(|m| m.matches_raw(req.authority)),
                p.iter().any(|m| m.matches_normalized(req.host, req.port)),
            ),
            Test::Port(ports, reading) => {
                reading.combine(ports.contains(&req.listener_port), ports.contains(&req.port))
            }
            Test::Method(p) => any_str(p, Some(req.method)),
            Test::Path(p) => p.iter().any(|m| m.matches(req.path)),
            Test::Header(name, p) => req.attrs.any_header_value(name, &mut |v| p.iter().any(|m| m.matches_header(v))),
            Test::Sni(p) => any_str(p, req.sni),
        };
        hit != self.negate
    }
}

impl Test {
    /// Whether the attribute exists only in HTTP: Istio's generators for
    /// these refuse a TCP filter chain (`hosts`, `methods`, `paths`,
    /// `request.headers`).
    pub(crate) fn http_only(&self) -> bool {
        matches!(self, Test::Host(..) | Test::Method(_) | Test::Path(_) | Test::Header(..))
    }
}

/// On a connection an HTTP-only check is dropped (it holds): what Istio
/// does to the fields of a DENY or AUDIT rule. An ALLOW rule with one never
/// gets this far.
fn all(checks: &[Check], req: &RequestView<'_>) -> bool {
    checks.iter().all(|c| (req.connection && c.test.http_only()) || c.holds(req))
}

fn any_alternative(alternatives: &Option<Vec<Vec<Check>>>, req: &RequestView<'_>) -> bool {
    match alternatives {
        None => true,
        Some(alts) => alts.iter().any(|checks| all(checks, req)),
    }
}

impl Rule {
    /// Whether the rule of a policy with `action` matches. On a
    /// connection, Istio's TCP semantics: an ALLOW rule that reads an
    /// HTTP-only attribute never matches (Istio leaves it out of the TCP
    /// filter chain: allows less); in a DENY or AUDIT rule those fields are
    /// ignored (Istio drops them: denies more).
    pub(crate) fn matches(&self, req: &RequestView<'_>, action: Action) -> bool {
        if req.connection && action == Action::Allow && self.checks().any(|c| c.test.http_only()) {
            return false;
        }
        any_alternative(&self.from, req) && any_alternative(&self.to, req) && all(&self.when, req)
    }

    /// Every check of the rule (`from`, `to`, then `when`), for analysis.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        let from = self.from.iter().flatten().flatten();
        let to = self.to.iter().flatten().flatten();
        from.chain(to).chain(self.when.iter())
    }

    /// Sets how each two-reading check combines its readings, for a rule
    /// of a policy that allows (`allow`) or refuses.
    pub(crate) fn set_readings(&mut self, allow: bool) {
        let from = self.from.iter_mut().flatten().flatten();
        let to = self.to.iter_mut().flatten().flatten();
        for check in from.chain(to).chain(self.when.iter_mut()) {
            let negate = check.negate;
            if let Test::Host(_, reading) | Test::Port(_, reading) = &mut check.test {
                *reading = Reading::for_field(allow, negate);
            }
        }
    }
}

impl AuthzPolicy {
    /// Whether the policy can change a decision (not AUDIT, not dry-run).
    pub fn enforced(&self) -> bool {
        !self.dry_run && self.action != Action::Audit
    }

    /// The index of the first rule that matches.
    pub(crate) fn first_match(&self, req: &RequestView<'_>) -> Option<usize> {
        self.rules.iter().position(|r| r.matches(req, self.action))
    }
}
