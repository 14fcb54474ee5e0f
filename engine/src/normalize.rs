//! Request attribute normalization: authority into host and
//! port, and paths per Istio's `pathNormalization` options.

use crate::document::PathNormalization;

/// Why a request is refused as a bad request. Shown in decision records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// No `:authority` and no `Host`.
    MissingAuthority,
    /// The authority is not `host[:port]`.
    InvalidAuthority,
    /// No `:method`.
    MissingMethod,
    /// A method with lowercase letters or non-token characters. RFC 9110
    /// methods are case-sensitive, but many servers uppercase them, so
    /// `post` could dodge a DENY on `POST`; Envoy refuses them too.
    InvalidMethod,
    /// No `:path`.
    MissingPath,
    /// `%2F`, `%5C`, `%00`, `\`, `#`, a malformed escape, or a path that
    /// does not start with `/`.
    AmbiguousPath,
    /// `x-forwarded-client-cert` is not valid XFCC, with `xfcc` an
    /// identity source.
    InvalidXfcc,
    /// The `header` identity source's header arrived more than once.
    RepeatedIdentityHeader,
    /// A `CONNECT` whose authority has no port, or a connection whose
    /// destination port Envoy does not give.
    MissingPort,
    /// The TLS server name (SNI) is not a host name.
    InvalidSni,
    /// The request's host is not the server name (SNI) of the TLS
    /// connection it came on (`requireSniMatch`).
    SniMismatch,
}

impl BadRequest {
    /// A short machine-readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            BadRequest::MissingAuthority => "missing-authority",
            BadRequest::InvalidAuthority => "invalid-authority",
            BadRequest::MissingMethod => "missing-method",
            BadRequest::InvalidMethod => "invalid-method",
            BadRequest::MissingPath => "missing-path",
            BadRequest::AmbiguousPath => "ambiguous-path",
            BadRequest::InvalidXfcc => "invalid-xfcc",
            BadRequest::RepeatedIdentityHeader => "repeated-identity-header",
            BadRequest::MissingPort => "missing-port",
            BadRequest::InvalidSni => "invalid-sni",
            BadRequest::SniMismatch => "sni-mismatch",
        }
    }
}

/// Splits an authority into a lowercased host without trailing dot and an
/// optional port. Only a valid authority is accepted: a host name of
/// non-empty letter-digit-hyphen labels (RFC 1123; one trailing dot
/// allowed), a canonical dotted IPv4 address, or a bracketed IPv6 address,
/// then optionally `:` and a port 1-65535. Anything else — empty labels,
/// `,` (Envoy joins two Host lines with it), `%`, `_`, userinfo, spaces,
/// a bare IPv6 address, a numeric host that is not a plain IPv4 address
/// (`127.1`, `0x7f.0.0.1`, `010.0.0.1`) — could be read differently by
/// the upstream and is refused.
pub fn split_authority(authority: &str) -> Result<(std::borrow::Cow<'_, str>, Option<u16>), BadRequest> {
    if authority.is_empty() {
        return Err(BadRequest::MissingAuthority);
    }
    let invalid = BadRequest::InvalidAuthority;
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(invalid)?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(invalid)?),
        };
        (v6, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or(invalid)?),
    };
    if !authority.starts_with('[') {
        validate_host_name(host)?;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    };
    Ok((host, port))
}

/// A registered name (RFC 1123 labels) or a canonical dotted IPv4
/// address; one trailing dot allowed on names.
fn validate_host_name(host: &str) -> Result<(), BadRequest> {
    let invalid = BadRequest::InvalidAuthority;
    let trailing_dot = host.ends_with('.');
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Err(invalid);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.split('.').all(label_ok) {
        return Err(invalid);
    }
    // A name whose last label is numeric is read as an IPv4 address by
    // resolvers (`127.1`, `0177.0.0.1`): only the canonical form passes.
    let last = name.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) {
        let canonical = name.split('.').count() == 4
            && name.split('.').all(|o| o.parse::<u8>().is_ok() && (o == "0" || !o.starts_with('0')));
        if !canonical || trailing_dot {
            return Err(invalid);
        }
    }
    Ok(())
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || p.starts_with('0') || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok()
}

/// A TLS server name (SNI) as a host: lowercased, without trailing dot.
/// It must be a valid host name (or an IPv4 address, which some clients
/// send although RFC 6066 forbids it), with no port and no brackets.
pub fn server_name(sni: &str) -> Result<std::borrow::Cow<'_, str>, BadRequest> {
    if sni.starts_with('[') {
        return Err(BadRequest::InvalidSni);
    }
    match split_authority(sni) {
        Ok((host, None)) => Ok(host),
        _ => Err(BadRequest::InvalidSni),
    }
}

/// Whether a method is an uppercase token (`GET`, `PROPFIND`, `M-SEARCH`).
pub fn is_valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits `:path` into the path and the query (without `?`). A fragment
/// is cut off; whether it was there is returned too.
pub fn split_path(raw: &str) -> (&str, Option<&str>, bool) {
    let (before_fragment, had_fragment) = match raw.split_once('#') {
        Some((b, _)) => (b, true),
        None => (raw, false),
    };
    match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q), had_fragment),
        None => (before_fragment, None, had_fragment),
    }
}

/// Whether a path is ambiguous: `%2F` `%5C` `%00` (any case), `\`, `#`,
/// a malformed escape, or no leading `/`. Checked on the raw `:path`
/// (query included for `#` and `\`, since proxies disagree on where the
/// path ends).
pub fn is_ambiguous(raw_path: &str, path: &str) -> bool {
    if !path.starts_with('/') || raw_path.contains(['#', '\\']) {
        return true;
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'%') {
            let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex)) else {
                return true;
            };
            let decoded = h << 4 | l;
            if matches!(decoded, b'/' | b'\\' | 0) {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

fn hex(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Normalizes a query-less path. Returns the input borrowed when nothing
/// changes, which is the common case.
pub fn normalize_path(path: &str, mode: PathNormalization) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if mode == PathNormalization::None {
        return Cow::Borrowed(path);
    }
    if !needs_work(path, mode) {
        return Cow::Borrowed(path);
    }
    // 1. Percent-decoding: unreserved characters always; `/` and `\` too
    //    with DECODE_AND_MERGE_SLASHES. Other escapes keep their meaning,
    //    with hex digits uppercased (RFC 3986 §6.2.2.1).
    let bytes = path.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%' {
            if let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex)) {
                let c = h << 4 | l;
                let decode_slash = mode == PathNormalization::DecodeAndMergeSlashes && matches!(c, b'/' | b'\\');
                if is_unreserved(c) || decode_slash {
                    // A decoded `\` is a separator like a literal one.
                    decoded.push(if c == b'\\' { b'/' } else { c });
                } else {
                    decoded.push(b'%');
                    decoded.extend(bytes.get(i + 1..i + 3).unwrap_or_default().iter().map(u8::to_ascii_uppercase));
                }
                i += 3;
                continue;
            }
            // A `%` that starts no escape is escaped itself: kept bare, it
            // could pair with what decoding puts after it (`%%32%65` would
            // become `%2e`, a dot to the upstream's decoder).
            decoded.extend_from_slice(b"%25");
            i += 1;
            continue;
        }
        // 2. Backslash is a path separator (Envoy's normalize_path).
        decoded.push(if b == b'\\' { b'/' } else { b });
        i += 1;
    }
    // 3. Dot segments (RFC 3986 §5.2.4), then 4. merged slashes.
    let merge = mode >= PathNormalization::MergeSlashes;
    let out = remove_dot_segments(&decoded, merge);
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn needs_work(path: &str, mode: PathNormalization) -> bool {
    let b = path.as_bytes();
    if b.contains(&b'%') || b.contains(&b'\\') {
        return true;
    }
    if path.contains("/.") {
        return true;
    }
    mode >= PathNormalization::MergeSlashes && path.contains("//")
}

/// RFC 3986 §5.2.4 on segments, optionally dropping empty segments (merged
/// slashes). A trailing slash is kept; `..` above the root stays at the root.
fn remove_dot_segments(path: &[u8], merge_slashes: bool) -> Vec<u8> {
    let absolute = path.first() == Some(&b'/');
    let segments: Vec<&[u8]> = path.split(|&c| c == b'/').collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&[u8]> = Vec::with_capacity(segments.len());
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        if i == 0 && absolute {
            continue; // the empty segment before the leading '/'
        }
        let is_last = i == last;
        match *seg {
            b"." => trailing_slash = is_last,
            b".." => {
                out.pop();
                trailing_slash = is_last;
            }
            b"" if merge_slashes => trailing_slash = is_last && !out.is_empty(),
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = Vec::with_capacity(path.len());
    for seg in &out {
        if absolute || !result.is_empty() {
            result.push(b'/');
        }
        result.extend_from_slice(seg);
    }
    if trailing_slash || (absolute && result.is_empty()) {
        result.push(b'/');
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathNormalization as N;

    #[test]
    fn authority_forms() {
        let ok: [(&str, &str, Option<u16>); 10] = [
            ("httpbin.org", "httpbin.org", None),
            ("HTTPBin.ORG", "httpbin.org", None),
            ("httpbin.org.", "httpbin.org", None),
            ("httpbin.org.:8080", "httpbin.org", Some(8080)),
            ("httpbin.org:443", "httpbin.org", Some(443)),
            ("[2001:db8::1]:8443", "2001:db8::1", Some(8443)),
            ("[2001:DB8::1]", "2001:db8::1", None),
            ("10.0.0.1:80", "10.0.0.1", Some(80)),
            ("0.0.0.0", "0.0.0.0", None),
            ("a-b.x1.example", "a-b.x1.example", None),
        ];
        for (input, host, port) in ok {
            let (got_host, got_port) = split_authority(input).unwrap();
            assert_eq!((got_host.as_ref(), got_port), (host, port), "{input}");
        }
        for bad in [
            "",
            "a.com:",
            "a.com:x",
            "a.com:70000",
            "a.com:0",
            "a.com:080",
            "user@a.com",
            "2001:db8::1",
            "[::1",
            "[::1]x",
            "[fe80::1%25eth0]",
            "[not-v6]",
            "a.com..",
            ".",
            ".example.com",
            "blocked..example.com",
            "ok.example.com,blocked.example.com",
            "a.com/x",
            "a com",
            " a.com",
            "a.com ",
            "a%2ecom",
            "my_host.example",
            "-a.example",
            "a-.example",
            "127.1",
            "0x7f.0.0.1",
            "010.0.0.1",
            "1.2.3.256",
            "1.2.3.4.",
            "1.2.3.4.5",
            "a.123",
            "a.com:+80",
            "a.com:80:80",
        ] {
            assert!(split_authority(bad).is_err(), "{bad:?} should be refused");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(split_authority(&long_label).is_err());
    }

    #[test]
    fn path_split() {
        let none: Option<&str> = None;
        assert_eq!(split_path("/a?b=1#f"), ("/a", Some("b=1"), true));
        assert_eq!(split_path("/a#f?x"), ("/a", none, true));
        assert_eq!(split_path("/a"), ("/a", none, false));
    }

    #[test]
    fn ambiguity() {
        for bad in ["/a%2Fb", "/a%2fb", "/a%5Cb", "/a%5cb", "/a%00", "/a\\b", "/a%zz", "/a%4", "a/b", "*", ""] {
            assert!(is_ambiguous(bad, bad), "{bad:?} should be ambiguous");
        }
        assert!(is_ambiguous("/a#x", "/a"));
        for good in ["/", "/a/b", "/a%20b", "/a%41", "/a/../b", "//a"] {
            assert!(!is_ambiguous(good, good), "{good:?} should not be ambiguous");
        }
    }

    #[test]
    fn normalization_table() {
        // (input, NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES)
        let cases = [
            ("/get", "/get", "/get", "/get", "/get"),
            ("//get", "//get", "//get", "/get", "/get"),
            ("/a//b", "/a//b", "/a//b", "/a/b", "/a/b"),
            ("/a/../b", "/a/../b", "/b", "/b", "/b"),
            ("/get/../post", "/get/../post", "/post", "/post", "/post"),
            ("/a/./b/.", "/a/./b/.", "/a/b/", "/a/b/", "/a/b/"),
            ("/../../admin", "/../../admin", "/admin", "/admin", "/admin"),
            ("/%61dmin", "/%61dmin", "/admin", "/admin", "/admin"),
            ("/a/%2e%2e/admin", "/a/%2e%2e/admin", "/admin", "/admin", "/admin"),
            ("/a%2fb", "/a%2fb", "/a%2Fb", "/a%2Fb", "/a/b"),
            ("/%2Fpost", "/%2Fpost", "/%2Fpost", "/%2Fpost", "/post"),
            ("/a%5cb", "/a%5cb", "/a%5Cb", "/a%5Cb", "/a/b"),
            ("\\da", "\\da", "/da", "/da", "/da"),
            ("/a\\..\\admin", "/a\\..\\admin", "/admin", "/admin", "/admin"),
            ("/x%20y", "/x%20y", "/x%20y", "/x%20y", "/x%20y"),
            ("/", "/", "/", "/", "/"),
            ("/a/b/", "/a/b/", "/a/b/", "/a/b/", "/a/b/"),
            ("/a/..", "/a/..", "/", "/", "/"),
            ("///", "///", "///", "/", "/"),
            // A stray `%` cannot pair with a decoded character.
            ("/a/%%32%65", "/a/%%32%65", "/a/%252e", "/a/%252e", "/a/%252e"),
            ("/x%", "/x%", "/x%25", "/x%25", "/x%25"),
        ];
        for (input, none, base, merge, decode) in cases {
            assert_eq!(normalize_path(input, N::None), none, "NONE {input}");
            assert_eq!(normalize_path(input, N::Base), base, "BASE {input}");
            assert_eq!(normalize_path(input, N::MergeSlashes), merge, "MERGE_SLASHES {input}");
            assert_eq!(normalize_path(input, N::DecodeAndMergeSlashes), decode, "DECODE_AND_MERGE_SLASHES {input}");
        }
    }
}
