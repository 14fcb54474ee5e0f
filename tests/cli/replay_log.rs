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
//! `benches/replay.rs` (`#[path]`-included). The tests at the end replay
//! logs of requests and connections (`warden replay` on TCP lines).

use std::collections::BTreeMap;
use std::io::{self, Write};

/// The policy the outcomes below are for.
pub const POLICY: &str = "tests/cli/fixtures/replay/policy.yaml";
/// The principal field the lines carry.
pub const PRINCIPAL_FIELD: &str = "downstream_peer_uri_san";
/// A fake AWS key id (AWS's documented example): the DLP request's query.
pub const SECRET: &str = "AKIAZ7VQ2XK4MHL3RWTN";

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
        path: "/get?key=AKIAZ7VQ2XK4MHL3RWTN",
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

/// `warden replay` on connection lines (`tcp_proxy`'s), mixed with
/// requests. Kept apart from `tests/cli/mod.rs`'s helpers so that
/// `benches/replay.rs` can include this file.
#[cfg(test)]
mod connections {
    use super::{json_text, request_line, Shape, ADMIN, SLEEP};

    /// A gateway that passes TLS through to api.stripe.com (registered by
    /// its server name, on 443) for the billing workload only, and serves
    /// httpbin.org over HTTP.
    const POLICY: &str = "\
name: tls-egress
outboundTrafficPolicy: REGISTRY_ONLY
gatewayPorts: {\"8080\": 80, \"8443\": 443}
services:
  - name: httpbin.org
    hosts: [httpbin.org]
    ports: [80]
  - name: payments
    hosts: [api.stripe.com]
    ports: [443]
authorization:
  - name: payments-callers
    action: ALLOW
    services: [payments]
    rules:
      - from: [{source: {principals: [cluster.local/ns/billing/sa/billing]}}]
  - name: httpbin-readers
    action: ALLOW
    services: [httpbin.org]
    rules:
      - to: [{operation: {methods: [GET]}}]
";

    const BILLING: &str = "spiffe://cluster.local/ns/billing/sa/billing";

    /// A connection as Envoy's `tcp_proxy` logs it with Istio's JSON
    /// fields: no authority, method, path or protocol.
    fn tcp_line(n: u64, sni: Option<&str>, listener: u16, principal: Option<&str>, logged: Option<&str>) -> String {
        let upstream = sni.unwrap_or("PassthroughCluster");
        let warden = logged.map_or_else(String::new, |d| {
            format!(",\"warden\":\"{{\\\"decision\\\":\\\"{d}\\\",\\\"reason\\\":\\\"-\\\"}}\"")
        });
        format!(
            concat!(
                "{{\"authority\":null,\"bytes_received\":1834,\"bytes_sent\":5210,",
                "\"connection_termination_details\":null,\"downstream_local_address\":\"10.244.0.12:{listener}\",",
                "\"downstream_peer_uri_san\":{principal},\"downstream_remote_address\":\"10.244.1.17:{port}\",",
                "\"duration\":230,\"method\":null,\"path\":null,\"protocol\":null,\"request_id\":null,",
                "\"requested_server_name\":{sni},\"response_code\":0,\"response_code_details\":null,",
                "\"response_flags\":\"-\",\"route_name\":null,\"start_time\":\"2024-05-14T09:12:{n:02}.000Z\",",
                "\"upstream_cluster\":\"outbound|443||{upstream}\",\"upstream_host\":\"34.200.47.89:443\",",
                "\"upstream_local_address\":null,\"upstream_service_time\":null,",
                "\"upstream_transport_failure_reason\":null,\"user_agent\":null,\"x_forwarded_for\":null{warden}}}"
            ),
            listener = listener,
            principal = json_text(principal),
            port = 40000 + n,
            sni = json_text(sni),
            n = n,
            upstream = upstream,
            warden = warden,
        )
    }

    fn request(method: &'static str, path: &'static str, principal: Option<&'static str>) -> Shape {
        Shape {
            method,
            authority: "httpbin.org",
            path,
            principal,
            listener: 8080,
            outcome: "",
            group: ("", ""),
            dry_run: false,
            weight: 1,
        }
    }

    /// Requests and connections, one of each case:
    ///
    /// 1. GET from sleep: allowed (httpbin-readers);
    /// 2. POST from sleep: denied, no ALLOW matched;
    /// 3. api.stripe.com from billing: allowed (payments-callers), as logged;
    /// 4. api.stripe.com from sleep: denied, logged as allowed: a change;
    /// 5. evil.example: unregistered server name;
    /// 6. no server name: unregistered under REGISTRY_ONLY (no-sni), as logged;
    /// 7. api.stripe.com with no client certificate: denied;
    /// 8. an HTTP codec error's line: skipped;
    /// 9. api.stripe.com from billing on the 8080 listener (port 80, where
    ///    payments is not registered): unregistered.
    fn mixed_log() -> String {
        [
            request_line(&request("GET", "/get", Some(SLEEP)), 1),
            request_line(&request("POST", "/post", Some(SLEEP)), 2),
            tcp_line(3, Some("api.stripe.com"), 8443, Some(BILLING), Some("allow")),
            tcp_line(4, Some("api.stripe.com"), 8443, Some(SLEEP), Some("allow")),
            tcp_line(5, Some("evil.example"), 8443, Some(SLEEP), None),
            tcp_line(6, None, 8443, Some(ADMIN), Some("unregistered")),
            tcp_line(7, Some("api.stripe.com"), 8443, None, None),
            super::CODEC_ERROR_LINE.to_owned(),
            tcp_line(9, Some("api.stripe.com"), 8080, Some(BILLING), None),
        ]
        .join("\n")
            + "\n"
    }

    struct Run {
        code: i32,
        stdout: String,
        stderr: String,
    }

    fn warden(args: &[&str]) -> Run {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let argv = std::iter::once("warden").chain(args.iter().copied());
        let code = warden::cli::run_with(argv, warden::FILTER_WASM, &mut out, &mut err);
        Run {
            code,
            stdout: String::from_utf8(out).expect("UTF-8 stdout"),
            stderr: String::from_utf8(err).expect("UTF-8 stderr"),
        }
    }

    /// The policy and the log in a temporary directory.
    fn files(log: &str) -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = |name: &str| dir.path().join(name).to_str().expect("UTF-8 path").to_owned();
        let (policy, access_log) = (path("policy.yaml"), path("access.log"));
        std::fs::write(&policy, POLICY).expect("the policy");
        std::fs::write(&access_log, log).expect("the log");
        (dir, policy, access_log)
    }

    /// `warden replay` on the mixed log with the given engine, `<tmp>` for
    /// the temporary directory.
    fn replay(engine: &str, format: &str) -> (String, Run) {
        let (dir, policy, log) = files(&mixed_log());
        let args = [
            "replay",
            &policy,
            &log,
            "--principal-field",
            "downstream_peer_uri_san",
            "--engine",
            engine,
            "--format",
            format,
        ];
        let mut run = warden(&args);
        let tmp = |text: &str| text.replace(&dir.path().display().to_string(), "<tmp>");
        run.stdout = tmp(&run.stdout);
        let shown = format!(
            "$ warden {}\nexit code: {}\n--- stdout\n{}--- stderr\n{}",
            tmp(&args.join(" ")),
            run.code,
            run.stdout,
            run.stderr
        );
        (shown, run)
    }

    #[test]
    fn warden_replay_decides_tcp_lines_as_connections() {
        let (transcript, run) = replay("filter", "human");
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(transcript);
        // The native engine decides the same.
        let (_, native) = replay("native", "human");
        assert_eq!(native.code, 0, "{}", native.stderr);
        assert_eq!(native.stdout.replace("through the native engine", "through the filter in the harness"), run.stdout);
    }

    #[test]
    fn warden_replay_json_counts_connections_apart() {
        for engine in ["filter", "native"] {
            let (_, run) = replay(engine, "json");
            assert_eq!(run.code, 0, "{}", run.stderr);
            let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
            assert_eq!((doc["lines"].as_u64(), doc["requests"].as_u64()), (Some(9), Some(2)), "{engine}");
            assert_eq!(doc["outcomes"]["allow"]["count"], 1);
            assert_eq!(doc["outcomes"]["denied"]["count"], 1);
            let c = &doc["connections"];
            assert_eq!(c["count"], 6, "{engine}");
            let count = |kind: &str| c["outcomes"][kind]["count"].as_u64();
            assert_eq!(
                ["allow", "denied", "unregistered", "bad-request", "dlp"].map(count),
                [Some(1), Some(2), Some(3), Some(0), Some(0)],
                "{engine}"
            );
            assert_eq!(
                c["outcomes"]["allow"]["groups"],
                serde_json::json!([{"policy": "payments-callers", "count": 1}])
            );
            assert_eq!(
                c["outcomes"]["denied"]["groups"],
                serde_json::json!([{"reason": "no-allow-match", "service": "payments", "count": 2}])
            );
            assert_eq!(
                c["outcomes"]["unregistered"]["groups"],
                serde_json::json!([
                    {"sni": "api.stripe.com", "count": 1},
                    {"sni": "evil.example", "count": 1},
                    {"reason": "no-sni", "count": 1},
                ])
            );
            assert_eq!(
                c["outcomes"]["allow"]["examples"][0],
                serde_json::json!({
                    "line": 3,
                    "sni": "api.stripe.com",
                    "port": 8443,
                    "principal": "cluster.local/ns/billing/sa/billing",
                    "group": "payments-callers",
                })
            );
            // Against the logged records: one of three connections changed; no request was logged.
            assert_eq!((c["changes"]["compared"].as_u64(), c["changes"]["changed"].as_u64()), (Some(3), Some(1)));
            assert_eq!(c["changes"]["transitions"][0]["from"], "allow");
            assert_eq!(c["changes"]["transitions"][0]["to"], "denied");
            assert_eq!(c["changes"]["transitions"][0]["examples"][0]["line"], 4);
            assert_eq!(doc["changes"]["compared"], 0);
            assert_eq!(doc["skipped"]["incomplete"], serde_json::json!({"count": 1, "firstLines": [8]}));
            assert_eq!(doc["errors"]["count"], 0, "{}", doc["errors"]);
        }
    }

    #[test]
    fn a_log_of_connections_only_is_an_access_log() {
        let log = tcp_line(1, Some("api.stripe.com"), 8443, Some(BILLING), None) + "\n";
        let (_dir, policy, log) = files(&log);
        let run = warden(&["replay", &policy, &log, "--principal-field", "downstream_peer_uri_san"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stderr, "", "no note: connections were replayed");
        assert!(run.stdout.contains("\nconnections                             1\nallow                                   1\n  payments-callers"), "{}", run.stdout);
    }

    /// The generated log's TCP-proxy lines are connections, in both engines
    /// alike (the fixture policy's DENY on paths refuses them: Istio's TCP
    /// semantics ignore HTTP-only fields in DENY rules), and its codec
    /// error lines are skipped.
    #[test]
    fn generated_logs_count_their_connections() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("access.log");
        let mut file = std::fs::File::create(&log).expect("a file");
        let expected = super::write(&mut file, 6000, 11).expect("the log");
        drop(file);
        assert_eq!((expected.connections, expected.incomplete), (3, 2));
        for engine in ["filter", "native"] {
            let path = log.to_str().expect("UTF-8 path");
            let args = [
                "replay",
                super::POLICY,
                path,
                "--principal-field",
                super::PRINCIPAL_FIELD,
                "--format",
                "json",
                "--engine",
                engine,
            ];
            let run = warden(&args);
            assert_eq!(run.code, 0, "{}", run.stderr);
            let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
            assert_eq!(doc["requests"].as_u64(), Some(expected.requests), "{engine}");
            assert_eq!(doc["connections"]["count"].as_u64(), Some(expected.connections), "{engine}");
            for (kind, n) in &expected.connection_outcomes {
                assert_eq!(doc["connections"]["outcomes"][kind]["count"].as_u64(), Some(*n), "{engine} {kind}");
            }
            assert_eq!(
                doc["connections"]["outcomes"]["denied"]["groups"],
                serde_json::json!([{"policy": "deny-admin", "count": 3}])
            );
            assert_eq!(doc["skipped"]["incomplete"]["count"].as_u64(), Some(expected.incomplete));
            assert_eq!(doc["errors"]["count"], 0, "{}", doc["errors"]);
        }
    }
}
