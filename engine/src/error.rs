//! Errors that name the offending field, and the value at fault.

use std::borrow::Cow;
use std::fmt;

/// A policy that cannot be used, with the path of the field at fault
/// (`authorization[2].rules[0].to[0].operation.paths[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Where in the document; empty for the document as a whole.
    pub path: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The document is not valid JSON/YAML or a field has the wrong type or
    /// name.
    Syntax(String),
    /// A value is well-formed but not acceptable.
    Invalid(String),
    /// A compiled bundle is damaged or from another format version.
    Bundle(String),
    /// A pattern or value cannot be used as written.
    Value(ValueError),
}

/// A pattern or value of a policy that cannot be used as written: the
/// value itself and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// The value as written.
    pub value: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Nothing is written.
    Empty,
    /// A `*` other than at the start or the end.
    InnerWildcard,
    /// Not `host`, `host:port` or `host:*`.
    NotAHost,
    /// A server name (SNI) with a port.
    ServerNameWithPort,
    /// A namespace that is empty or holds a `/`.
    NotANamespace,
    /// A trust domain with a `/`.
    SlashInTrustDomain,
    /// A service account not written `namespace/name`.
    NotAServiceAccount,
    /// `{` or `}` outside the template operators `{*}` and `{**}`.
    StrayBrace,
    /// A path template that does not start with `/`.
    RelativeTemplate,
    /// A path template segment mixing a template operator with other
    /// characters.
    MixedSegment,
    /// `{**}` followed by another operator.
    RestNotLast,
    /// Not an IP address or CIDR block.
    NotAnIpBlock,
    /// A number outside 1-65535, or text that is not a number.
    NotAPort,
    /// A number outside 1-65535 written as a number.
    PortOutOfRange,
    /// Not an HTTP header name (RFC 9110 token).
    NotAHeaderName,
    /// A registry host `*`: every host.
    EveryHost,
    /// A registry host with a port.
    HostWithPort,
    /// A registry host that is not a DNS name, an IP or `*.` and a name.
    NotAHostName,
    /// A CIDR prefix length over the address's bits.
    PrefixLength {
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

impl ValueError {
    // Out of line: it is on every error path of the compiler, which also
    // runs in the size-budgeted filter.
    #[cold]
    #[inline(never)]
    pub(crate) fn new(value: &str, problem: Problem) -> Self {
        ValueError { value: value.to_owned(), problem }
    }
}

impl fmt::Display for ValueError {
    // Plain writes rather than one format string per problem: this runs
    // inside the size-budgeted filter too, where each `write!` costs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match &self.problem {
            Problem::Empty => return f.write_str("empty value"),
            Problem::PortOutOfRange => {
                f.write_str(&self.value)?;
                return f.write_str(" is not a port (1-65535)");
            }
            Problem::EveryHost => {
                return f.write_str("'*' would register every host; use outboundTrafficPolicy: ALLOW_ANY instead")
            }
            Problem::NotAPort => " is not a port (1-65535)",
            Problem::NotAHeaderName => " is not a valid header name",
            Problem::HostWithPort => ": a host has no port; list ports in the service's ports",
            Problem::NotAHostName => {
                " is not a host name; only a leading '*.' wildcard is allowed (e.g. '*.example.com')"
            }
            Problem::NotAHost => " is not a host or host:port (a port is 1-65535 or '*')",
            Problem::NotANamespace => " is not a namespace",
            Problem::NotAnIpBlock => " is not an IP address or CIDR block",
            Problem::InnerWildcard => ": '*' may only stand at the start (suffix match) or the end (prefix match)",
            Problem::ServerNameWithPort => ": a server name has no port",
            Problem::SlashInTrustDomain => ": a trust domain has no '/'",
            Problem::NotAServiceAccount => ": a service account is written namespace/name",
            Problem::StrayBrace => ": '{' and '}' are only allowed as the template operators {*} and {**}",
            Problem::RelativeTemplate => ": a path template must start with '/'",
            Problem::RestNotLast => ": '{**}' must be the last operator",
            Problem::MixedSegment => ": segment '",
            Problem::PrefixLength { .. } => ": prefix length must be 0..=",
        };
        f.write_str("'")?;
        f.write_str(&self.value)?;
        f.write_str("'")?;
        f.write_str(text)?;
        match self.problem {
            Problem::MixedSegment => {
                let mixed = |s: &&str| s.contains(['{', '}', '*']) && *s != "{*}" && *s != "{**}";
                f.write_str(self.value.split('/').find(mixed).unwrap_or_default())?;
                f.write_str(
                    "' mixes a template operator with other characters; {*} and {**} must fill a whole \
                     segment and '*' is not allowed elsewhere in a template",
                )
            }
            Problem::PrefixLength { max } => fmt::Display::fmt(&max, f),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ValueError {}

impl PolicyError {
    #[cold]
    #[inline(never)]
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError { path: path.into(), kind: ErrorKind::Invalid(message.into()) }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn value(path: impl Into<String>, error: ValueError) -> Self {
        PolicyError { path: path.into(), kind: ErrorKind::Value(error) }
    }

    /// The message without the path.
    pub fn message(&self) -> Cow<'_, str> {
        match &self.kind {
            ErrorKind::Syntax(m) | ErrorKind::Invalid(m) | ErrorKind::Bundle(m) => Cow::Borrowed(m),
            ErrorKind::Value(e) => Cow::Owned(e.to_string()),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !(self.path.is_empty() || self.path == ".") {
            f.write_str(&self.path)?;
            f.write_str(": ")?;
        }
        match &self.kind {
            ErrorKind::Syntax(m) | ErrorKind::Invalid(m) | ErrorKind::Bundle(m) => f.write_str(m),
            ErrorKind::Value(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for PolicyError {}
