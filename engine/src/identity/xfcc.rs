//! The `x-forwarded-client-cert` header, parsed with its real grammar.
//!
//! Envoy writes one *element* per proxy that handled the client
//! certificate, separated by `,`; an element is `key=value` pairs
//! separated by `;`; a value that holds `,` `;` `=` or `"` is
//! double-quoted, with `\"` (and `\\`) escaped inside. Keys are `By`,
//! `Hash`, `Cert`, `Chain`, `Subject`, `URI` and `DNS`, case-insensitive;
//! `URI` and `DNS` may repeat (one per SAN).
//!
//! A header that does not follow the grammar is refused as a whole: an
//! unterminated quote must not swallow the element a trusted proxy
//! appended after it (`URI=spiffe://…/admin;X="` followed by the real
//! element is exactly that attack).

/// The header's name.
pub const HEADER: &str = "x-forwarded-client-cert";

/// One element: the pairs a proxy wrote, keys lowercased.
pub type Element = Vec<(String, String)>;

/// Why a header is not valid XFCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedXfcc;

/// Parses a whole header value (several header lines joined with `,`,
/// as Envoy joins them, are one value).
pub fn parse(header: &str) -> Result<Vec<Element>, MalformedXfcc> {
    let bytes = header.as_bytes();
    let mut elements = Vec::new();
    let mut element: Element = Vec::new();
    let mut i = 0;
    loop {
        i = skip_ows(bytes, i);
        let key_start = i;
        while bytes.get(i).is_some_and(|&b| is_tchar(b)) {
            i += 1;
        }
        let key = header.get(key_start..i).ok_or(MalformedXfcc)?;
        if key.is_empty() || bytes.get(i) != Some(&b'=') {
            return Err(MalformedXfcc);
        }
        i += 1;
        let value = if bytes.get(i) == Some(&b'"') {
            let (value, end) = quoted(header, i + 1)?;
            i = end;
            value
        } else {
            let start = i;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b';' | b',' => break,
                    b'"' | b'\\' => return Err(MalformedXfcc),
                    b if b < 0x20 || b == 0x7f => return Err(MalformedXfcc),
                    _ => i += 1,
                }
            }
            header.get(start..i).ok_or(MalformedXfcc)?.trim_end_matches([' ', '\t']).to_owned()
        };
        element.push((key.to_ascii_lowercase(), value));
        i = skip_ows(bytes, i);
        match bytes.get(i) {
            None => {
                elements.push(element);
                return Ok(elements);
            }
            Some(b';') => i += 1,
            Some(b',') => {
                elements.push(std::mem::take(&mut element));
                i += 1;
            }
            Some(_) => return Err(MalformedXfcc),
        }
    }
}

/// The value of a quoted string starting after its opening quote, and the
/// index after the closing quote.
fn quoted(header: &str, start: usize) -> Result<(String, usize), MalformedXfcc> {
    let bytes = header.as_bytes();
    let mut value = Vec::new();
    let mut i = start;
    loop {
        match bytes.get(i) {
            None => return Err(MalformedXfcc), // unterminated
            Some(b'"') => break,
            Some(b'\\') => {
                let escaped = *bytes.get(i + 1).ok_or(MalformedXfcc)?;
                if escaped < 0x20 || escaped == 0x7f {
                    return Err(MalformedXfcc);
                }
                value.push(escaped);
                i += 2;
            }
            Some(&b) if b < 0x20 && b != b'\t' || b == 0x7f => return Err(MalformedXfcc),
            Some(&b) => {
                value.push(b);
                i += 1;
            }
        }
    }
    let value = String::from_utf8(value).map_err(|_| MalformedXfcc)?;
    Ok((value, i + 1))
}

fn skip_ows(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `URI` values of the last element: the one the nearest proxy, the
/// one Warden trusts, appended.
pub fn nearest_uris(elements: &[Element]) -> Vec<&str> {
    elements
        .last()
        .map(|e| e.iter().filter(|(k, _)| k == "uri").map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(header: &str) -> Result<Vec<String>, MalformedXfcc> {
        parse(header).map(|e| nearest_uris(&e).into_iter().map(str::to_owned).collect())
    }

    #[test]
    fn envoy_forms() {
        // As Envoy 1.40 writes it (SANITIZE_SET with subject, URI and DNS).
        let envoy = r#"Hash=82896855a922;Subject="CN=two";URI=spiffe://cluster.local/ns/default/sa/sleep;URI=spiffe://cluster.local/ns/default/sa/admin;DNS=dns.example"#;
        assert_eq!(
            uris(envoy).unwrap(),
            ["spiffe://cluster.local/ns/default/sa/sleep", "spiffe://cluster.local/ns/default/sa/admin"]
        );
        let two =
            r#"Hash=1;URI=spiffe://a/ns/x/sa/first,Hash=2;Subject="CN=b, O=c; L=\"q\"";URI=spiffe://a/ns/y/sa/second"#;
        assert_eq!(uris(two).unwrap(), ["spiffe://a/ns/y/sa/second"]);
        let elements = parse(two).unwrap();
        assert_eq!(elements[1][1], ("subject".into(), r#"CN=b, O=c; L="q""#.into()));
        assert_eq!(uris("Hash=1;DNS=example.com").unwrap(), Vec::<String>::new());
        assert_eq!(uris("By=spiffe://gw;uri=spiffe://td/ns/a/sa/b").unwrap(), ["spiffe://td/ns/a/sa/b"]);
        assert_eq!(uris("URI=a, URI=b").unwrap(), ["b"], "joined header lines");
    }

    #[test]
    fn quote_injection_is_refused() {
        // The caller's header, then the element Envoy appended.
        let attack = r#"URI=spiffe://cluster.local/ns/default/sa/admin;X=",Hash=abc;URI=spiffe://cluster.local/ns/default/sa/sleep"#;
        assert_eq!(parse(attack), Err(MalformedXfcc));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "URI",
            "=x",
            "URI=a;",
            "URI=a,",
            ",URI=a",
            "URI=a,,URI=b",
            "URI=\"a\"b",
            "URI=a\"b",
            "URI=\"a\\",
            "URI=a\\b",
            "URI=\"a",
            "U RI=a",
            "URI=a\u{1}",
        ] {
            assert_eq!(parse(bad), Err(MalformedXfcc), "{bad:?}");
        }
    }
}
