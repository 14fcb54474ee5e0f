//! Istio's value matchers: exact, prefix `abc*`, suffix `*abc`, presence
//! `*`, path templates `{*}`/`{**}`, and IP blocks.
//!
//! Patterns are parsed once at compile time; matching never allocates.

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
    pub fn parse(pattern: &str) -> Result<Self, String> {
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
            return Err(format!(
                "'{pattern}': '*' may only stand at the start (suffix match) or the end (prefix match)"
            ));
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
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if !(pattern.contains("{*}") || pattern.contains("{**}")) {
            if pattern.contains('{') || pattern.contains('}') {
                return Err(format!(
                    "'{pattern}': '{{' and '}}' are only allowed as the template operators {{*}} and {{**}}"
                ));
            }
            return StringMatch::parse(pattern).map(PathMatch::Plain);
        }
        if !pattern.starts_with('/') {
            return Err(format!("'{pattern}': a path template must start with '/'"));
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
                        return Err(format!(
                            "'{pattern}': segment '{segment}' mixes a template operator with other characters; \
                             {{*}} and {{**}} must fill a whole segment and '*' is not allowed elsewhere in a template"
                        ));
                    }
                    literal.push_str(segment);
                    continue;
                }
            };
            if seen_rest {
                return Err(format!("'{pattern}': '{{**}}' must be the last operator"));
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
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr.trim().parse().map_err(|_| format!("'{text}' is not an IP address or CIDR block"))?;
        let (bits, v4, max) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), true, 32u8),
            IpAddr::V6(v6) => (u128::from(v6), false, 128u8),
        };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("'{text}': prefix length must be 0..={max}")),
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
