//! A deterministic Envoy JSON access log for `warden replay`, in the format
//! Istio egress gateways write with `accessLogEncoding: JSON` (Istio's
//! default fields, alphabetical as Envoy prints them, plus
//! `downstream_peer_uri_san`), against `tests/cli/fixtures/replay/policy.yaml`.
//! Each line is drawn from a few request shapes whose outcome under that
//! policy is known, so the counts a replay must report are known too. Now
//! and then comes a line Envoy's `tcp_proxy` writes (a connection) or one
//! that is neither a request nor a connection.
//!
//! Used by `tests/cli/mod.rs` (the ≥100,000-line replay) and
//! `benches/replay.rs` (`#[path]`-included).

use std::collections::BTreeMap;
use std::io::{self, Write};

/// The policy the outcomes below are for.
pub const POLICY: &str = "tests/cli/fixtures/replay/policy.yaml";
/// The principal field the lines carry.
pub const PRINCIPAL_FIELD: &str = "downstream_peer_uri_san";
/// A fake AWS key id (AWS's documented example): the DLP request's query.
pub const SECRET: &str = "AKIAIOSFODNN7EXAMPLE";

const ADMIN: &str = "spiffe://cluster.local/ns/default/sa/admin";
const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";

/// A request shape and what the policy makes of it.
struct Shape {
    method: &'static str,
    authority: &'static str,
    /// `{n}` is replaced by the line number.
    path: &'static str,
    principal: Option<&'static str>,
    /// The gateway listener port (`downstream_local_address`).
    listener: u16,
    /// The outcome, as the report names it.
    outcome: &'static str,
    /// The group, as the JSON report names it: (key, value).
    group: (&'static str, &'static str),
    /// Whether the dry-run DENY `shadow-deletes` matches.
    dry_run: bool,
    /// Relative frequency.
    weight: u32,
}

const SHAPES: &[Shape] = &[
    Shape {
        method: "GET",
        authority: "httpbin.org",
        path: "/get?page={n}",
        principal: Some(SLEEP),
        listener: 8080,
        outcome: "allow",
        group: ("policy", "httpbin"),
        dry_run: false,
        weight: 30,
    },
    Shape {
        method: "POST",
        authority: "httpbin.org",
        path: "/post",
        principal: Some(ADMIN),
        listener: 8080,
        outcome: "allow",
        group: ("policy", "httpbin"),
        dry_run: false,
        weight: 10,
    },
    Shape {
        method: "GET",
        authority: "httpbin.org",
        path: "/get",
        principal: None,
        listener: 8080,
        outcome: "allow",
        group: ("policy", "httpbin"),
        dry_run: false,
        weight: 5,
    },
    Shape {
        method: "DELETE",
        authority: "api.stripe.com",
        path: "/v1/customers/cus_{n}",
        principal: Some(SLEEP),
        listener: 8443,
        outcome: "allow",
        group: ("reason", "no-policy"),
        dry_run: true,
        weight: 8,
    },
    Shape {
        method: "POST",
        authority: "httpbin.org",
        path: "/post",
        principal: Some(SLEEP),
        listener: 8080,
        outcome: "denied",
        group: ("reason", "no-allow-match"),
        dry_run: false,
        weight: 12,
    },
    Shape {
        method: "GET",
        authority: "httpbin.org",
        path: "/admin/{n}",
        principal: Some(ADMIN),
        listener: 8080,
        outcome: "denied",
        group: ("policy", "deny-admin"),
        dry_run: false,
        weight: 6,
    },
    // payments is registered on 443 only; the 8080 listener is port 80.
    Shape {
        method: "GET",
        authority: "api.stripe.com",
        path: "/v1/charges",
        principal: Some(SLEEP),
        listener: 8080,
        outcome: "unregistered",
        group: ("host", "api.stripe.com"),
        dry_run: false,
        weight: 4,
    },
    Shape {
        method: "HEAD",
        authority: "aliyun.com",
        path: "/",
        principal: None,
        listener: 8080,
        outcome: "unregistered",
        group: ("host", "aliyun.com"),
        dry_run: false,
        weight: 9,
    },
    Shape {
        method: "GET",
        authority: "httpbin.org",
        path: "/%2Fadmin",
        principal: Some(SLEEP),
        listener: 8080,
        outcome: "bad-request",
        group: ("reason", "ambiguous-path"),
        dry_run: false,
        weight: 3,
    },
    Shape {
        method: "GET",
        authority: "httpbin.org",
        path: "/get?key=AKIAIOSFODNN7EXAMPLE",
        principal: Some(SLEEP),
        listener: 8080,
        outcome: "dlp",
        group: ("findings", "aws_access_key_id"),
        dry_run: false,
        weight: 2,
    },
];

/// What a replay of the log must report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Lines written.
    pub lines: u64,
    /// Request lines.
    pub requests: u64,
    /// Connection lines (`tcp_proxy`'s).
    pub connections: u64,
    /// Per outcome, of the connections.
    pub connection_outcomes: BTreeMap<&'static str, u64>,
    /// Lines that are not JSON.
    pub not_json: u64,
    /// JSON lines that are neither a request nor a connection.
    pub incomplete: u64,
    /// Per outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Per (outcome, group key, group value).
    pub groups: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// Requests the dry-run policy would have refused.
    pub dry_run: u64,
}

/// xorshift64*: the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn json_text(value: Option<&str>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| format!("\"{v}\""))
}

/// One line as Envoy writes it.
fn request_line(shape: &Shape, n: u64) -> String {
    let path = shape.path.replace("{n}", &n.to_string());
    let refused = shape.outcome != "allow";
    let (code, details, upstream) = match shape.outcome {
        "allow" => (200, "via_upstream", "\"3.223.36.72:80\""),
        "unregistered" => (502, "wasm_local_reply", "null"),
        "bad-request" => (400, "wasm_local_reply", "null"),
        _ => (403, "wasm_local_reply", "null"),
    };
    let authority = shape.authority;
    let remote_port = 32768 + n % 28000;
    format!(
        concat!(
            "{{\"authority\":\"{authority}\",\"bytes_received\":0,\"bytes_sent\":{sent},",
            "\"connection_termination_details\":null,\"downstream_local_address\":\"10.244.0.12:{listener}\",",
            "\"downstream_peer_uri_san\":{principal},\"downstream_remote_address\":\"10.244.{a}.{b}:{remote_port}\",",
            "\"duration\":{duration},\"method\":\"{method}\",\"path\":\"{path}\",\"protocol\":\"HTTP/1.1\",",
            "\"request_id\":\"5b0c7e2e-1f3a-4c55-9d1e-{n:012}\",",
            "\"requested_server_name\":\"outbound_.80_._.istio-egressgateway.istio-system.svc.cluster.local\",",
            "\"response_code\":{code},\"response_code_details\":\"{details}\",\"response_flags\":\"-\",",
            "\"route_name\":null,\"start_time\":\"2024-05-14T09:{min:02}:{sec:02}.{ms:03}Z\",",
            "\"upstream_cluster\":\"outbound|80||{host}\",\"upstream_host\":{upstream},",
            "\"upstream_local_address\":null,\"upstream_service_time\":{service_time},",
            "\"upstream_transport_failure_reason\":null,\"user_agent\":\"curl/8.7.1\",\"x_forwarded_for\":null}}"
        ),
        authority = authority,
        sent = if refused { 0 } else { 512 },
        listener = shape.listener,
        principal = json_text(shape.principal),
        a = n % 250,
        b = (n / 250) % 250 + 1,
        remote_port = remote_port,
        duration = n % 40 + 1,
        method = shape.method,
        path = path,
        n = n,
        code = code,
        details = details,
        min = (n / 60_000) % 60,
        sec = (n / 1000) % 60,
        ms = n % 1000,
        host = authority,
        upstream = upstream,
        service_time = if refused { "null".to_owned() } else { format!("\"{}\"", n % 30 + 1) },
    )
}

/// The connection line written after every 1999th request: TLS
/// passthrough to api.stripe.com on the 8443 listener, as `tcp_proxy` logs
/// it. The policy's `deny-admin` (a DENY on paths only) refuses it: in a
/// DENY rule Istio's TCP semantics ignore the HTTP-only fields.
const TCP_PROXY_LINE: &str = r#"{"authority":null,"bytes_received":1834,"bytes_sent":5210,"downstream_local_address":"10.244.0.12:8443","method":null,"path":null,"protocol":null,"requested_server_name":"api.stripe.com","response_code":0,"upstream_cluster":"outbound|443||api.stripe.com"}"#;
/// Its outcome.
const TCP_PROXY_OUTCOME: &str = "denied";

/// The line written after every 2999th request: an HTTP/1.1 request
/// Envoy could not parse (a codec error). It has a protocol but no
/// request: neither a request nor a connection.
const CODEC_ERROR_LINE: &str = r#"{"authority":null,"bytes_received":0,"bytes_sent":0,"downstream_local_address":"10.244.0.12:8080","method":null,"path":null,"protocol":"HTTP/1.1","requested_server_name":null,"response_code":400,"response_code_details":"http1.codec_error","response_flags":"DPE"}"#;

/// Writes a log of `requests` request lines, with an Envoy text line
/// (not JSON) after every 997th, a TCP-proxy line (a connection) after
/// every 1999th and an HTTP codec error's line (skipped) after every
/// 2999th, and returns what a replay must report.
pub fn write(out: &mut dyn Write, requests: u64, seed: u64) -> io::Result<Expected> {
    let total: u32 = SHAPES.iter().map(|s| s.weight).sum();
    let mut rng = Rng(seed.max(1));
    let mut expected = Expected::default();
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    for n in 1..=requests {
        let mut pick = (rng.next() % u64::from(total)) as u32;
        let mut chosen = None;
        for s in SHAPES {
            if pick < s.weight {
                chosen = Some(s);
                break;
            }
            pick -= s.weight;
        }
        let Some(shape) = chosen else { continue };
        writeln!(out, "{}", request_line(shape, n))?;
        expected.lines += 1;
        expected.requests += 1;
        *expected.outcomes.entry(shape.outcome).or_default() += 1;
        *expected.groups.entry((shape.outcome, shape.group.0, shape.group.1)).or_default() += 1;
        expected.dry_run += u64::from(shape.dry_run);
        if n % 997 == 0 {
            writeln!(
                out,
                "2024-05-14T09:12:04.000000Z\tinfo\tenvoy upstream cds: add 12 cluster(s), remove 0 cluster(s)"
            )?;
            expected.lines += 1;
            expected.not_json += 1;
        }
        if n % 1999 == 0 {
            writeln!(out, "{TCP_PROXY_LINE}")?;
            expected.lines += 1;
            expected.connections += 1;
            *expected.connection_outcomes.entry(TCP_PROXY_OUTCOME).or_default() += 1;
        }
        if n % 2999 == 0 {
            writeln!(out, "{CODEC_ERROR_LINE}")?;
            expected.lines += 1;
            expected.incomplete += 1;
        }
    }
    out.flush()?;
    Ok(expected)
}

