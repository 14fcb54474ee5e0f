//! Trace-context headers, whose values are random ids by their protocol.
//!
//! A tracer writes its trace and span ids into request headers: 64-bit
//! ids in decimal (`x-datadog-trace-id: 4582661622865954733`), or in hex
//! that is all digits one time in 1,800 (`x-b3-spanid`). Scanned, a
//! 19-digit decimal id passes a card brand's prefix and the Luhn check
//! about one time in a hundred, so a gateway blocking card numbers in
//! headers refused about one request in fifty carrying Datadog's two ids.
//! A header of one of these protocols whose value is exactly its id format
//! (nothing but the ids, separators and flags the protocol defines; for
//! W3C's `tracestate`, Datadog's member alone, whose `p` is its span id in
//! hex) holds no text but those random ids and is not scanned. Any other
//! value of the same header (a space, a letter out of place, one byte too
//! many) is scanned as every header is.

/// Whether header `name` (lowercase) is a trace-context header whose
/// `value` is exactly its protocol's format.
pub fn is_trace_id(name: &str, value: &str) -> bool {
    let v = value.as_bytes();
    match name {
        // W3C Trace Context: version-traceid-parentid-flags (Elastic APM's
        // agents send it under their own name too).
        "traceparent" | "elastic-apm-traceparent" => fields(v, b'-', &[Hex(2, 2), Hex(32, 32), Hex(16, 16), Hex(2, 2)]),
        // Zipkin B3, one header per field or all in `b3`.
        "x-b3-traceid" => fields(v, b'-', &[Hex(16, 32)]),
        "x-b3-spanid" | "x-b3-parentspanid" => fields(v, b'-', &[Hex(16, 16)]),
        "b3" => {
            fields(v, b'-', &[Hex(16, 32), Hex(16, 16)])
                || fields(v, b'-', &[Hex(16, 32), Hex(16, 16), Sampled])
                || fields(v, b'-', &[Hex(16, 32), Hex(16, 16), Sampled, Hex(16, 16)])
        }
        // Datadog: unsigned 64-bit integers in decimal.
        "x-datadog-trace-id" | "x-datadog-parent-id" => fields(v, b'-', &[Decimal(1, 20)]),
        // Google Cloud: TRACE_ID/SPAN_ID;o=OPTIONS (the span id decimal).
        "x-cloud-trace-context" => {
            let (ids, options) = match v.iter().position(|&b| b == b';') {
                Some(at) => v.split_at(at),
                None => (v, &b""[..]),
            };
            fields(ids, b'/', &[Hex(32, 32), Decimal(1, 20)]) && matches!(options, b"" | b";o=0" | b";o=1")
        }
        // Jaeger: trace:span:parent:flags, in hex.
        "uber-trace-id" => fields(v, b':', &[Hex(1, 32), Hex(1, 16), Hex(1, 16), Hex(1, 2)]),
        // Sentry: trace-span or trace-span-sampled.
        "sentry-trace" => {
            fields(v, b'-', &[Hex(32, 32), Hex(16, 16)]) || fields(v, b'-', &[Hex(32, 32), Hex(16, 16), Sampled])
        }
        "x-amzn-trace-id" => xray(v),
        // IBM Instana: trace and span ids in hex (leading zeros dropped by
        // some tracers).
        "x-instana-t" => fields(v, b'-', &[Hex(1, 32)]),
        "x-instana-s" => fields(v, b'-', &[Hex(1, 16)]),
        // W3C Trace Context's vendor list, when it is Datadog's member
        // alone (other vendors' values are theirs to define).
        "tracestate" => v.strip_prefix(b"dd=").is_some_and(datadog_state),
        _ => false,
    }
}

/// `;`-separated `key<kv>value` fields, each key at most once: the keys
/// seen (the bits `field` gives them), or `None` when a field has no
/// `kv`, a key comes twice or `field` refuses one (an unknown key, a
/// value out of its format).
fn keyed(value: &[u8], kv: u8, field: impl Fn(&[u8], &[u8]) -> Option<u8>) -> Option<u8> {
    let mut seen = 0u8;
    for item in value.split(|&b| b == b';') {
        let at = item.iter().position(|&b| b == kv)?;
        let (key, v) = item.split_at(at);
        let bit = field(key, v.get(1..).unwrap_or_default())?;
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
    }
    Some(seen)
}

/// AWS X-Ray's `X-Amzn-Trace-Id`: `;`-separated `Key=value` fields, each
/// at most once, in any order, `Root` among them: `Root` and `Self` (a
/// load balancer's own id) are `1-` then the time in 8 hex digits and 24
/// random ones, `Parent` 16 hex digits, `Sampled` `0`, `1` or `?`, and
/// `Lineage` `|`-separated 8-hex-digit hashes with a `:` counter.
fn xray(value: &[u8]) -> bool {
    let id = |v: &[u8]| v.starts_with(b"1-") && fields(v.get(2..).unwrap_or_default(), b'-', &[Hex(8, 8), Hex(24, 24)]);
    let seen = keyed(value, b'=', |key, v| {
        let (bit, ok) = match key {
            b"Root" => (1, id(v)),
            b"Self" => (2, id(v)),
            b"Parent" => (4, fields(v, b'-', &[Hex(16, 16)])),
            b"Sampled" => (8, matches!(v, b"0" | b"1" | b"?")),
            b"Lineage" => (16, v.split(|&b| b == b'|').all(|item| fields(item, b':', &[Hex(8, 8), Decimal(1, 10)]))),
            _ => return None,
        };
        ok.then_some(bit)
    });
    seen.is_some_and(|seen| seen & 1 != 0)
}

/// Datadog's `tracestate` member after `dd=`: `;`-separated `key:value`
/// fields, each at most once, in any order: `s` the sampling priority (a
/// small integer), `p` the parent span id (16 hex digits), `o` the
/// origin (`rum`, `synthetics-browser`: lowercase letters and dashes),
/// `t.dm` the sampling mechanism (`-` and digits) and `t.tid` the trace
/// id's upper half (16 hex digits). Other propagated tags (`t.usr.id`)
/// carry the application's values: the member is then scanned.
fn datadog_state(value: &[u8]) -> bool {
    let seen = keyed(value, b':', |key, v| {
        let signed = |v: &[u8], max| fields(v.strip_prefix(b"-").unwrap_or(v), b'-', &[Decimal(1, max)]);
        let (bit, ok) = match key {
            b"s" => (1, signed(v, 2)),
            b"p" => (2, fields(v, b'-', &[Hex(16, 16)])),
            b"o" => (4, (1..=32).contains(&v.len()) && v.iter().all(|&b| b.is_ascii_lowercase() || b == b'-')),
            b"t.dm" => (8, v.starts_with(b"-") && signed(v, 3)),
            b"t.tid" => (16, fields(v, b'-', &[Hex(16, 16)])),
            _ => return None,
        };
        ok.then_some(bit)
    });
    seen.is_some_and(|seen| seen != 0)
}

/// One field of an id format.
#[derive(Clone, Copy)]
enum Field {
    /// Lowercase hex, of a length in the range.
    Hex(usize, usize),
    /// Decimal digits, of a length in the range.
    Decimal(usize, usize),
    /// A sampling decision: `0`, `1` or `d`.
    Sampled,
}
use Field::{Decimal, Hex, Sampled};

/// Whether `value` is exactly `format`'s fields, separated by `sep`, in
/// one pass over the bytes. Out of line: inlined at each of the formats
/// it made the filter 3.2 KB larger.
#[inline(never)]
fn fields(value: &[u8], sep: u8, format: &[Field]) -> bool {
    let mut fields = format.iter();
    let Some(mut field) = fields.next() else { return value.is_empty() };
    let mut len = 0;
    for &b in value {
        if b == sep {
            if !field.takes(len) {
                return false;
            }
            let Some(next) = fields.next() else { return false };
            (field, len) = (next, 0);
            continue;
        }
        let ok = match field {
            Hex(..) => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            Decimal(..) => b.is_ascii_digit(),
            Sampled => matches!(b, b'0' | b'1' | b'd'),
        };
        if !ok {
            return false;
        }
        len += 1;
    }
    field.takes(len) && fields.next().is_none()
}

impl Field {
    /// Whether the field may be `len` bytes long.
    fn takes(&self, len: usize) -> bool {
        match *self {
            Hex(min, max) | Decimal(min, max) => (min..=max).contains(&len),
            Sampled => len == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_trace_id;

    #[test]
    fn ids_in_their_protocols_format_are_trace_ids() {
        for (name, value) in VALID {
            assert!(is_trace_id(name, value), "{name}: {value}");
        }
        // A negative sampling priority and an origin with a dash: not in
        // `VALID`, whose separators may not be dropped, as that sign and
        // dash may.
        assert!(is_trace_id("tracestate", "dd=s:-1;p:4582661622865951"));
        assert!(is_trace_id("tracestate", "dd=o:synthetics-browser;s:1"));
    }

    /// A byte none of the formats has (a space, an upper-case hex digit, a
    /// `+`), anywhere in a valid value, or a byte dropped from it, makes it
    /// a value to scan: the formats are exact.
    #[test]
    fn one_byte_off_is_not_a_trace_id() {
        for (name, value) in VALID {
            for at in 0..=value.len() {
                for b in [" ", "A", "+"] {
                    let changed = format!("{}{b}{}", &value[..at], &value[at..]);
                    assert!(!is_trace_id(name, &changed), "{name}: {changed}");
                }
            }
            for at in 0..value.len() {
                let shorter = format!("{}{}", &value[..at], &value[at + 1..]);
                // Dropping a digit of a variable-length field or a lone
                // flag can leave another valid value; never a separator.
                if !shorter.is_empty() && value.as_bytes()[at].is_ascii_alphanumeric() {
                    continue;
                }
                assert!(!is_trace_id(name, &shorter), "{name}: {shorter}");
            }
        }
    }

    const VALID: [(&str, &str); 27] = [
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("elastic-apm-traceparent", "00-0af7651916cd43dd8448eb211c80319c-4582661622865951-01"),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-traceid", "4582661622865954"),
        ("x-b3-spanid", "4582661622865954"),
        ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d-05e3ac9a4f6e3b90"),
        ("x-datadog-trace-id", "4582661622865954733"),
        ("x-datadog-parent-id", "18446744073709551615"),
        ("x-datadog-parent-id", "7"),
        ("x-cloud-trace-context", "105445aa7843bc8bf206b12000100000/4582661622865954733;o=1"),
        ("x-cloud-trace-context", "105445aa7843bc8bf206b12000100000/1"),
        ("uber-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"),
        ("sentry-trace", "771a43a4192642f0b136d5159a501700-a1a2a3a4a5a6a7a8-1"),
        ("sentry-trace", "771a43a4192642f0b136d5159a501700-4582661622865954"),
        ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793"),
        ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=4582661622865951;Sampled=1"),
        (
            "x-amzn-trace-id",
            "Root=1-46105bdf-04c13a9504458ebc539f5fba;Parent=240a548a42a88af4;Sampled=0;Lineage=12326a9d:0",
        ),
        (
            "x-amzn-trace-id",
            "Self=1-67891234-12456789abcdef012345678a;Root=1-67891233-abcdef012345678912345678;Sampled=?",
        ),
        ("x-amzn-trace-id", "Root=1-67891233-abcdef012345678912345678;Lineage=a87bd80c:1|68fd508a:5"),
        ("x-instana-t", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("x-instana-s", "4582661622865951"),
        ("tracestate", "dd=s:0;p:3f16008187974cbe;t.tid:69c890a400000000"),
        ("tracestate", "dd=s:1;p:4582661622865951;o:rum;t.dm:-4"),
        ("tracestate", "dd=t.dm:-0;s:2"),
    ];

    /// Anything but the exact format is scanned: other headers, other
    /// separators and spaces, upper case, a field too long or too many.
    #[test]
    fn anything_else_is_not() {
        for (name, value) in [
            ("x-card", "4582661622865954733"),
            ("x-datadog-trace-id", "4111 1111 1111 1111"),
            ("x-datadog-trace-id", "4111-1111-1111-1111"),
            ("x-datadog-trace-id", "458266162286595473312"),
            ("x-datadog-trace-id", " 4582661622865954733"),
            ("x-datadog-trace-id", "AKIAZ7VQ2XK4MHL3RWTN"),
            ("x-datadog-trace-id", ""),
            ("x-b3-spanid", "4582661622865954733"),
            ("x-b3-spanid", "458266162286595A"),
            ("x-b3-spanid", "4582661622865954-1"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-4111111111111111"),
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-2"),
            ("x-cloud-trace-context", "105445aa7843bc8bf206b12000100000/4582661622865954733;o=1;x"),
            ("x-cloud-trace-context", "4582661622865954733"),
            ("uber-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0"),
            ("sentry-trace", "771a43a4192642f0b136d5159a501700"),
            ("x-request-id", "4582661622865954733"),
            ("x-amzn-trace-id", "Parent=4582661622865951;Sampled=1"),
            ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272793"),
            ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=4582661622865951;"),
            ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793; Parent=4582661622865951"),
            ("x-amzn-trace-id", "Root=2-5759e988-bd862e3fe1be46a994272793"),
            ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a99427279"),
            ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=4582661622865951;Sampled=2"),
            ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Secret=AKIAZ7VQ2XK4MHL3RWTN"),
            ("x-amzn-trace-id", "root=1-5759e988-bd862e3fe1be46a994272793"),
            ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=12326a9d"),
            ("elastic-apm-traceparent", "00-0af7651916cd43dd8448eb211c80319c-4582661622865951-01-"),
            ("x-instana-s", "45826616228659510"),
            ("x-instana-t", "4582661622865951 "),
            ("tracestate", "dd=s:1;p:4582661622865951,rojo=00f067aa0ba902b7"),
            ("tracestate", "rojo=00f067aa0ba902b7,dd=s:1;p:4582661622865951"),
            ("tracestate", "rojo=4582661622865951"),
            ("tracestate", "dd=s:1;p:4582661622865951;t.usr.id:4111111111111111"),
            ("tracestate", "dd=s:1;p:45826616228659510"),
            ("tracestate", "dd=s:1;p:4582661622865951;"),
            ("tracestate", "dd=s:1;s:1"),
            ("tracestate", "dd=s:100"),
            ("tracestate", "dd=t.dm:4"),
            ("tracestate", "dd=o:AKIAZ7VQ2XK4MHL3RWTN"),
            ("tracestate", "dd=o:"),
            ("tracestate", "dd="),
            ("tracestate", " dd=s:1"),
            ("tracestate", "dd=s=1"),
        ] {
            assert!(!is_trace_id(name, value), "{name}: {value}");
        }
    }
}
