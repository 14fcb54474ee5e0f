//! Istio's value matchers: exact, prefix `abc*`, suffix `*abc`, presence
//! `*`, path templates `{*}`/`{**}`, and IP blocks.
//!
//! Patterns are parsed once at compile time; matching never allocates.

use crate::error::{Problem, ValueError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A string pattern in Istio's syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StringMatch {
    /// `abc` matches `abc` only.
    Exact(String),
    /// `abc*` matches `abc` and `abcd`.
    Prefix(String),
    /// `*abc` matches `abc` and `xabc`.
    Suffix(String),
    /// `*` matches any non-empty value.
    Presence,
}

impl StringMatch {
    /// Parses Istio's syntax; a `*` anywhere but at one end is an error
    /// (Istio would take it literally, which is never what was meant).
    pub fn parse(pattern: &str) -> Result<Self, ValueError> {
        if pattern == "*" {
            return Ok(StringMatch::Presence);
        }
        let (body, kind): (&str, fn(String) -> StringMatch) = if let Some(rest) = pattern.strip_prefix('*') {
            (rest, StringMatch::Suffix)
        } else if let Some(rest) = pattern.strip_suffix('*') {
            (rest, StringMatch::Prefix)
        } else {
            (pattern, StringMatch::Exact)
        };
        if body.contains('*') {
            return Err(ValueError::new(pattern, Problem::InnerWildcard));
        }
        Ok(kind(body.to_owned()))
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(s) => value == s,
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Suffix(s) => value.ends_with(s.as_str()),
            StringMatch::Presence => !value.is_empty(),
        }
    }

    /// Whether a header value matches: `*` is Envoy's `present_match`, so
    /// an empty value is present too.
    pub fn matches_header(&self, value: &str) -> bool {
        match self {
            StringMatch::Presence => true,
            other => other.matches(value),
        }
    }

    /// Lowercases the pattern (for case-insensitive fields such as hosts).
    pub fn lowercased(self) -> Self {
        match self {
            StringMatch::Exact(s) => StringMatch::Exact(s.to_ascii_lowercase()),
            StringMatch::Prefix(s) => StringMatch::Prefix(s.to_ascii_lowercase()),
            StringMatch::Suffix(s) => StringMatch::Suffix(s.to_ascii_lowercase()),
            StringMatch::Presence => StringMatch::Presence,
        }
    }
}

/// An `operation.hosts` value, read two ways (see [`crate::authz::Reading`]):
/// as Istio reads it, against the `Host` header as sent, port included,
/// case-insensitively; and as Warden reads it, its host part against the
/// normalized host and its port part, if any, against the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMatch {
    /// The whole pattern, lowercased, on the raw authority (Istio's).
    raw: StringMatch,
    /// The host part on the normalized host.
    host: StringMatch,
    /// The port part: `None` for none or `*`.
    port: Option<u16>,
}

impl HostMatch {
    /// Parses `host`, `host:port`, `host:*` with Istio's `*` forms
    /// (`*.example.com`, `api.*`, `*`).
    pub fn parse(pattern: &str) -> Result<Self, ValueError> {
        let lower = pattern.to_ascii_lowercase();
        if lower.is_empty() {
            return Err(ValueError::new(pattern, Problem::Empty));
        }
        let raw = StringMatch::parse(&lower)?;
        let (host, port) = split_host_pattern(&lower).ok_or_else(|| ValueError::new(pattern, Problem::NotAHost))?;
        let host = StringMatch::parse(host)?;
        Ok(HostMatch { raw, host, port })
    }

    /// The host part, on the normalized host.
    pub fn host_part(&self) -> &StringMatch {
        &self.host
    }

    /// The port part, if the pattern names one.
    pub fn port_part(&self) -> Option<u16> {
        self.port
    }

    /// Istio's reading: the `:authority` as sent, lowercased.
    pub fn matches_raw(&self, authority: &str) -> bool {
        self.raw.matches(authority)
    }

    /// Warden's reading: the normalized host and the port.
    pub fn matches_normalized(&self, host: &str, port: u16) -> bool {
        self.host.matches(host) && self.port.is_none_or(|p| p == port)
    }
}

/// The host and port parts of a host pattern.
fn split_host_pattern(pattern: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = pattern.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        match after {
            "" => return Some((v6, None)),
            _ => (v6, after.strip_prefix(':')?),
        }
    } else if pattern.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some((pattern, None));
    } else {
        match pattern.rsplit_once(':') {
            None => return Some((pattern, None)),
            Some((h, _)) if h.contains(':') => return None,
            Some(parts) => parts,
        }
    };
    if host.is_empty() {
        return None;
    }
    match port {
        "*" => Some((host, None)),
        p if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some((host, Some(p.parse::<u16>().ok().filter(|&n| n != 0)?)))
        }
        _ => None,
    }
}

/// A pattern on the caller's names (every SAN of its certificate, or the
/// principal a waypoint learned), compiled as Istio compiles `principals`,
/// `namespaces`, `trustDomains` and `serviceAccounts` into Envoy's
/// `authenticated` matchers. A name matches a rule's field when any
/// pattern of the field matches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameMatch {
    /// `principals`, `source.principal`: the pattern with `spiffe://`
    /// before it (`*` alone: any non-empty name).
    Principal(StringMatch),
    /// `namespaces`: Istio's `.*/ns/<namespace>/.*`, with `*` in the
    /// namespace standing for any text.
    Namespace(Glob),
    /// `trustDomains`.
    TrustDomain(TrustDomainMatch),
    /// `serviceAccounts`: Istio's
    /// `spiffe://.+/ns/<namespace>/(.+/|)sa/<name>(/.+)?`.
    ServiceAccount {
        /// The namespace, literally.
        namespace: String,
        /// The service account, literally.
        name: String,
    },
}

const SPIFFE: &str = "spiffe://";

impl NameMatch {
    /// A `namespaces` value.
    pub fn namespace(value: &str) -> Self {
        NameMatch::Namespace(Glob::new(&format!("*/ns/{value}/*")))
    }

    /// A `trustDomains` value; `/` cannot be in a trust domain.
    pub fn trust_domain(value: &str) -> Result<Self, ValueError> {
        if value.contains('/') {
            return Err(ValueError::new(value, Problem::SlashInTrustDomain));
        }
        Ok(NameMatch::TrustDomain(match value.split_once('*') {
            None => TrustDomainMatch::Exact(value.to_owned()),
            Some(("", "")) => TrustDomainMatch::Any,
            Some((prefix, suffix)) => TrustDomainMatch::Split { prefix: prefix.to_owned(), suffix: suffix.to_owned() },
        }))
    }

    /// A `serviceAccounts` value, `namespace/name`.
    pub fn service_account(value: &str) -> Result<Self, ValueError> {
        match value.split_once('/') {
            Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() && !sa.contains('/') => {
                Ok(NameMatch::ServiceAccount { namespace: ns.to_owned(), name: sa.to_owned() })
            }
            _ => Err(ValueError::new(value, Problem::NotAServiceAccount)),
        }
    }

    /// Whether one name of the caller matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Principal(StringMatch::Presence) => !name.is_empty(),
            NameMatch::Principal(p) => name.strip_prefix(SPIFFE).is_some_and(|rest| p.matches(rest)),
            NameMatch::Namespace(glob) => glob.matches(name),
            NameMatch::TrustDomain(td) => td.matches(name),
            NameMatch::ServiceAccount { namespace, name: sa } => service_account_matches(name, namespace, sa),
        }
    }
}

/// Istio's `trustDomains` matchers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrustDomainMatch {
    /// `*`: any SPIFFE ID (`spiffe://` prefix).
    Any,
    /// `td`: `spiffe://td/` prefix.
    Exact(String),
    /// `a*b`: `spiffe://a[^/]*b/.*` (only the first `*` is a wildcard).
    Split {
        /// Before the `*`.
        prefix: String,
        /// After it.
        suffix: String,
    },
}

impl TrustDomainMatch {
    fn matches(&self, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(SPIFFE) else { return false };
        match self {
            TrustDomainMatch::Any => true,
            TrustDomainMatch::Exact(td) => rest.strip_prefix(td.as_str()).is_some_and(|r| r.starts_with('/')),
            TrustDomainMatch::Split { prefix, suffix } => match rest.find('/') {
                Some(end) => {
                    let td = rest.get(..end).unwrap_or_default();
                    td.len() >= prefix.len() + suffix.len()
                        && td.starts_with(prefix.as_str())
                        && td.ends_with(suffix.as_str())
                }
                None => false,
            },
        }
    }
}

/// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`, matched in full.
fn service_account_matches(name: &str, ns: &str, sa: &str) -> bool {
    let Some(rest) = name.strip_prefix(SPIFFE) else { return false };
    let ns_part = format!("/ns/{ns}/");
    let sa_part = format!("sa/{sa}");
    let mut from = 1; // `.+` before `/ns/`
    while let Some(i) = rest.get(from..).and_then(|r| r.find(&ns_part)).map(|i| i + from) {
        let tail = rest.get(i + ns_part.len()..).unwrap_or_default();
        let mut at = 0;
        while let Some(j) = tail.get(at..).and_then(|t| t.find(&sa_part)).map(|j| j + at) {
            // `(.+/|)` before, `(/.+)?` after.
            let before_ok = j == 0 || (j >= 2 && tail.as_bytes().get(j - 1) == Some(&b'/'));
            let after = tail.get(j + sa_part.len()..).unwrap_or_default();
            let after_ok = after.is_empty() || (after.starts_with('/') && after.len() >= 2);
            if before_ok && after_ok {
                return true;
            }
            at = j + 1;
        }
        from = i + 1;
    }
    false
}

/// A whole-string pattern where each `*` stands for any text, `/`
/// included (Istio's `.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glob {
    /// The literal pieces between the `*`s.
    parts: Vec<String>,
}

impl Glob {
    /// Parses a pattern.
    pub fn new(pattern: &str) -> Self {
        Glob { parts: pattern.split('*').map(str::to_owned).collect() }
    }

    /// Whether all of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let (first, last) = match (self.parts.first(), self.parts.last()) {
            (Some(first), Some(last)) => (first.as_str(), last.as_str()),
            _ => return text.is_empty(),
        };
        if self.parts.len() == 1 {
            return text == first;
        }
        if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
            return false;
        }
        let mut rest = text.as_bytes().get(first.len()..text.len() - last.len()).unwrap_or_default();
        for middle in self.parts.get(1..self.parts.len() - 1).unwrap_or_default() {
            match find(rest, middle.as_bytes()) {
                Some(i) => rest = rest.get(i + middle.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        true
    }
}

/// The first `needle` in `haystack`. Names and principals are short, so a
/// scan for the first byte beats `str::find`'s set-up on every call.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&head, tail)) = needle.split_first() else { return Some(0) };
    let last_start = haystack.len().checked_sub(needle.len())?;
    let mut from = 0;
    while from <= last_start {
        let at = from + haystack.get(from..=last_start)?.iter().position(|&b| b == head)?;
        // Byte by byte: the needles are short, a `memcmp` call costs more.
        let candidate = haystack.get(at + 1..at + needle.len()).unwrap_or_default();
        if candidate.len() == tail.len() && candidate.iter().zip(tail).all(|(a, b)| a == b) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A path pattern: Istio's string syntax, or a template with `{*}` (one
/// whole segment) and `{**}` (the rest of the path, zero or more
/// characters including `/`; last operator only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathMatch {
    /// Exact, prefix, suffix or presence.
    Plain(StringMatch),
    /// A path template.
    Template(Vec<TemplatePart>),
}

/// A piece of a path template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplatePart {
    /// Literal text, matched byte for byte.
    Literal(String),
    /// `{*}`: one non-empty segment without `/`.
    Segment,
    /// `{**}`: any text, `/` included; the literal after it must end the path.
    Rest,
}

impl PathMatch {
    /// Parses a path pattern, validating templates as Istio does.
    pub fn parse(pattern: &str) -> Result<Self, ValueError> {
        if !(pattern.contains("{*}") || pattern.contains("{**}")) {
            if pattern.contains('{') || pattern.contains('}') {
                return Err(ValueError::new(pattern, Problem::StrayBrace));
            }
            return StringMatch::parse(pattern).map(PathMatch::Plain);
        }
        if !pattern.starts_with('/') {
            return Err(ValueError::new(pattern, Problem::RelativeTemplate));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut seen_rest = false;
        for (i, segment) in pattern.split('/').enumerate() {
            if i > 0 {
                literal.push('/');
            }
            let op = match segment {
                "{*}" => TemplatePart::Segment,
                "{**}" => TemplatePart::Rest,
                _ => {
                    if segment.contains(['{', '}', '*']) {
                        return Err(ValueError::new(pattern, Problem::MixedSegment));
                    }
                    literal.push_str(segment);
                    continue;
                }
            };
            if seen_rest {
                return Err(ValueError::new(pattern, Problem::RestNotLast));
            }
            seen_rest = op == TemplatePart::Rest;
            if !literal.is_empty() {
                parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(op);
        }
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(literal));
        }
        Ok(PathMatch::Template(parts))
    }

    /// Whether the (normalized, query-less) `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Plain(m) => m.matches(path),
            PathMatch::Template(parts) => template_matches(parts, path),
        }
    }
}

fn template_matches(parts: &[TemplatePart], mut rest: &str) -> bool {
    let mut iter = parts.iter();
    while let Some(part) = iter.next() {
        match part {
            TemplatePart::Literal(lit) => match rest.strip_prefix(lit.as_str()) {
                Some(r) => rest = r,
                None => return false,
            },
            TemplatePart::Segment => {
                let end = rest.find('/').unwrap_or(rest.len());
                if end == 0 {
                    return false;
                }
                rest = rest.get(end..).unwrap_or("");
            }
            TemplatePart::Rest => {
                // Only a literal may follow `{**}`: it must end the path.
                return match iter.next() {
                    None => true,
                    Some(TemplatePart::Literal(lit)) => rest.ends_with(lit.as_str()),
                    Some(_) => false,
                };
            }
        }
    }
    rest.is_empty()
}

/// An IP address or CIDR block, v4 or v6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpBlock {
    network: u128,
    prefix: u8,
    v4: bool,
}

impl IpBlock {
    /// Parses `203.0.113.4`, `203.0.113.0/24`, `2001:db8::/32`.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr.trim().parse().map_err(|_| ValueError::new(text, Problem::NotAnIpBlock))?;
        let (bits, v4, max) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), true, 32u8),
            IpAddr::V6(v6) => (u128::from(v6), false, 128u8),
        };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(ValueError::new(text, Problem::PrefixLength { max })),
            },
        };
        Ok(IpBlock { network: bits & mask(prefix, max), prefix, v4 })
    }

    /// Whether `ip` lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (bits, v4, max) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), true, 32u8),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (u128::from(u32::from(v4)), true, 32u8),
                None => (u128::from(v6), false, 128u8),
            },
        };
        v4 == self.v4 && bits & mask(self.prefix, max) == self.network
    }
}

/// The pattern as written in a policy (Istio's syntax).
impl std::fmt::Display for StringMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StringMatch::Exact(s) => f.write_str(s),
            StringMatch::Prefix(s) => write!(f, "{s}*"),
            StringMatch::Suffix(s) => write!(f, "*{s}"),
            StringMatch::Presence => f.write_str("*"),
        }
    }
}

/// The pattern as written (lowercased).
impl std::fmt::Display for HostMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

/// The field and value as written: `namespaces: payments`, ...
impl std::fmt::Display for NameMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameMatch::Principal(p) => write!(f, "principal {p}"),
            NameMatch::Namespace(glob) => {
                let text = glob.to_string();
                let ns = text.strip_prefix("*/ns/").and_then(|t| t.strip_suffix("/*")).unwrap_or(&text);
                write!(f, "namespace {ns}")
            }
            NameMatch::TrustDomain(TrustDomainMatch::Any) => f.write_str("trust domain *"),
            NameMatch::TrustDomain(TrustDomainMatch::Exact(td)) => write!(f, "trust domain {td}"),
            NameMatch::TrustDomain(TrustDomainMatch::Split { prefix, suffix }) => {
                write!(f, "trust domain {prefix}*{suffix}")
            }
            NameMatch::ServiceAccount { namespace, name } => write!(f, "service account {namespace}/{name}"),
        }
    }
}

/// The glob with its `*`s.
impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.parts.join("*"))
    }
}

impl Glob {
    /// The literal pieces between the `*`s.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }
}

/// The pattern as written.
impl std::fmt::Display for PathMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathMatch::Plain(m) => m.fmt(f),
            PathMatch::Template(parts) => parts.iter().try_for_each(|p| match p {
                TemplatePart::Literal(l) => f.write_str(l),
                TemplatePart::Segment => f.write_str("{*}"),
                TemplatePart::Rest => f.write_str("{**}"),
            }),
        }
    }
}

/// `203.0.113.0/24`, `2001:db8::/32`; a single address without `/n`.
impl std::fmt::Display for IpBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (first, _) = self.range();
        let max = if self.v4 { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{first}")
        } else {
            write!(f, "{first}/{}", self.prefix)
        }
    }
}

impl IpBlock {
    /// The first and the last address of the block.
    pub fn range(&self) -> (IpAddr, IpAddr) {
        let (max, all) = if self.v4 { (32u8, u128::from(u32::MAX)) } else { (128u8, u128::MAX) };
        let last = self.network | (all & !mask(self.prefix, max));
        (self.address(self.network), self.address(last))
    }

    /// The address `bits` in this block's family.
    pub fn address(&self, bits: u128) -> IpAddr {
        if self.v4 {
            IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(bits & u128::from(u32::MAX)).unwrap_or(0)))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
    }
}

fn mask(prefix: u8, max: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let all = if max == 32 { u128::from(u32::MAX) } else { u128::MAX };
        all & !((1u128 << (max - prefix)) - 1) & all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_string_forms() {
        let cases = [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("abc*", "abc", true),
            ("abc*", "abcd", true),
            ("abc*", "xabc", false),
            ("*abc", "abc", true),
            ("*abc", "xabc", true),
            ("*abc", "abcx", false),
            ("*", "x", true),
            ("*", "", false),
        ];
        for (pattern, value, want) in cases {
            let m = StringMatch::parse(pattern).unwrap();
            assert_eq!(m.matches(value), want, "{pattern} vs {value}");
        }
        assert!(StringMatch::parse("a*b").is_err());
        assert!(StringMatch::parse("*a*").is_err());
    }

    #[test]
    fn path_templates() {
        let cases = [
            ("/foo/{*}", "/foo/bar", true),
            ("/foo/{*}", "/foo/bar/baz", false),
            ("/foo/{*}", "/foo/", false),
            ("/foo/{*}/bar/{**}", "/foo/buzz/bar/", true),
            ("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz", true),
            ("/foo/{*}/bar/{**}", "/foo/buzz/bar", false),
            ("/foo/{**}", "/foo/", true),
            ("/foo/{**}", "/foo/a/b/c", true),
            ("/foo/{**}", "/foo", false),
            ("/foo/{**}/", "/foo/bar/", true),
            ("/foo/{**}/", "/foo//", true),
            ("/foo/{**}/", "/foo/bar", false),
            ("/{*}/items/{*}", "/v1/items/7", true),
            ("/{*}/items/{*}", "/v1/items/7/x", false),
        ];
        for (pattern, path, want) in cases {
            let m = PathMatch::parse(pattern).unwrap();
            assert_eq!(m.matches(path), want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn invalid_templates_are_refused() {
        for bad in ["/*/baz/{*}", "/**/baz/{*}", "/{**}/foo/{*}", "/foo/{**}.txt", "/foo/{x}", "/a{*}", "foo/{*}"] {
            assert!(PathMatch::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn caller_names_as_istio_matches_them() {
        let p = |v: &str| NameMatch::Principal(StringMatch::parse(v).unwrap());
        let cases = [
            (p("td/ns/a/sa/b"), "spiffe://td/ns/a/sa/b", true),
            (p("td/ns/a/sa/b"), "td/ns/a/sa/b", false),
            (p("td/ns/a/sa/b"), "spiffe://td/ns/a/sa/bb", false),
            (p("td/ns/a/*"), "spiffe://td/ns/a/sa/x", true),
            (p("*/sa/b"), "spiffe://other/ns/z/sa/b", true),
            (p("*/sa/b"), "https://other/sa/b", false),
            (p("*"), "dns.example", true),
            (p("*"), "", false),
            (NameMatch::namespace("dev"), "spiffe://td/ns/dev/sa/x", true),
            (NameMatch::namespace("dev"), "spiffe://td/ns/prod/sa/ns/dev/sa/x", true),
            (NameMatch::namespace("dev"), "spiffe://td/ns/dev", false),
            (NameMatch::namespace("dev"), "spiffe://td/ns/dev/", true),
            (NameMatch::namespace("dev"), "spiffe://td/ns/development/sa/x", false),
            (NameMatch::namespace("dev*"), "spiffe://td/ns/development/sa/x", true),
            (NameMatch::namespace("rule[0]"), "spiffe://td/ns/rule[0]/sa/x", true),
            (NameMatch::namespace("rule[0]"), "spiffe://td/ns/rule0/sa/x", false),
            (NameMatch::trust_domain("td").unwrap(), "spiffe://td/ns/a/sa/b", true),
            (NameMatch::trust_domain("td").unwrap(), "spiffe://tdx/ns/a/sa/b", false),
            (NameMatch::trust_domain("td").unwrap(), "spiffe://td", false),
            (NameMatch::trust_domain("bad*").unwrap(), "spiffe://bad-td/ns/a", true),
            (NameMatch::trust_domain("bad*").unwrap(), "spiffe://good/ns/bad/x", false),
            (NameMatch::trust_domain("*.local").unwrap(), "spiffe://cluster.local/ns/a", true),
            (NameMatch::trust_domain("*").unwrap(), "spiffe://x", true),
            (NameMatch::trust_domain("*").unwrap(), "x", false),
            (NameMatch::service_account("ns1/sa1").unwrap(), "spiffe://td/ns/ns1/sa/sa1", true),
            (NameMatch::service_account("ns1/sa1").unwrap(), "spiffe://td/ns/ns1/k/v/sa/sa1/extra", true),
            (NameMatch::service_account("ns1/sa1").unwrap(), "spiffe://td/ns/ns1/sa/sa1-junk", false),
            (NameMatch::service_account("ns1/sa1").unwrap(), "spiffe:///ns/ns1/sa/sa1", false),
            (NameMatch::service_account("ns1/sa1").unwrap(), "spiffe://td/ns/ns1/sa/sa1/", false),
            (NameMatch::service_account("ns1/sa1").unwrap(), "spiffe://td/ns/ns1/xsa/sa1", false),
        ];
        for (m, name, want) in cases {
            assert_eq!(m.matches(name), want, "{m:?} vs {name}");
        }
        assert!(NameMatch::trust_domain("a/b").is_err());
        assert!(NameMatch::service_account("nosa").is_err());
    }

    #[test]
    fn host_patterns_read_two_ways() {
        let h = |p: &str| HostMatch::parse(p).unwrap();
        // (pattern, raw authority, normalized host, port, raw hit, normalized hit)
        let cases = [
            ("httpbin.org", "httpbin.org", "httpbin.org", 80, true, true),
            ("httpbin.org", "httpbin.org:443", "httpbin.org", 443, false, true),
            ("HTTPBIN.org", "httpbin.org", "httpbin.org", 80, true, true),
            ("httpbin.org:443", "httpbin.org:443", "httpbin.org", 443, true, true),
            ("httpbin.org:443", "httpbin.org", "httpbin.org", 443, false, true),
            ("httpbin.org:443", "httpbin.org:8443", "httpbin.org", 8443, false, false),
            ("httpbin.org:*", "httpbin.org:8443", "httpbin.org", 8443, true, true),
            ("httpbin.org:*", "httpbin.org", "httpbin.org", 80, false, true),
            ("*.example.com", "a.example.com:80", "a.example.com", 80, false, true),
            ("*.example.com:80", "a.example.com:80", "a.example.com", 80, true, true),
            ("api.*", "api.example.com:443", "api.example.com", 443, true, true),
            ("*", "x", "x", 80, true, true),
            ("[::1]:8080", "[::1]:8080", "::1", 8080, true, true),
            ("::1", "[::1]", "::1", 80, false, true),
        ];
        for (pattern, raw, host, port, want_raw, want_norm) in cases {
            let m = h(pattern);
            assert_eq!(m.matches_raw(raw), want_raw, "{pattern} raw {raw}");
            assert_eq!(m.matches_normalized(host, port), want_norm, "{pattern} normalized {host}:{port}");
        }
        for bad in ["", "a.com:", "a.com:0", "a.com:x", "a.com:70000", "*.a.com:*", "a*b.com", ":80", "a:b:c"] {
            assert!(HostMatch::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn globs() {
        let g = Glob::new("*/ns/a*b/*");
        assert!(g.matches("x/ns/ab/"));
        assert!(g.matches("/ns/a-long-b/rest"));
        assert!(!g.matches("/ns/ab"));
        assert!(Glob::new("abc").matches("abc"));
        assert!(!Glob::new("abc").matches("abcd"));
        assert!(Glob::new("a*").matches("a"));
        assert!(!Glob::new("ab*ba").matches("aba"), "pieces may not overlap");
        assert!(Glob::new("*/ns/dev/*").matches("spiffe://td/ns/nsx/ns/dev/sa/x"), "a later occurrence");
        assert!(Glob::new("*ü*").matches("aüb") && !Glob::new("*ü*").matches("aub"));
    }

    #[test]
    fn find_agrees_with_str_find() {
        let texts = ["", "a", "aaab", "abab", "/ns//ns/dev/", "xyz/ns/de", "ü/ns/ü/"];
        let needles = ["", "a", "ab", "aab", "/ns/", "/ns/dev/", "ü/", "xyz/ns/dev/long"];
        for text in texts {
            for needle in needles {
                assert_eq!(find(text.as_bytes(), needle.as_bytes()), text.find(needle), "{needle:?} in {text:?}");
            }
        }
    }

    #[test]
    fn ip_blocks() {
        let b = IpBlock::parse("10.1.0.0/16").unwrap();
        assert!(b.contains("10.1.200.3".parse().unwrap()));
        assert!(!b.contains("10.2.0.1".parse().unwrap()));
        assert!(b.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = IpBlock::parse("203.0.113.4").unwrap();
        assert!(one.contains("203.0.113.4".parse().unwrap()));
        assert!(!one.contains("203.0.113.5".parse().unwrap()));
        let v6 = IpBlock::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all = IpBlock::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(IpBlock::parse("10.0.0.0/33").is_err());
        assert!(IpBlock::parse("10.0.0").is_err());
    }
}
