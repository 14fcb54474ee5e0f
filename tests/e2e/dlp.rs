//! DLP in a real Envoy (reference scenario 5), on the example policy
//! `policies/dlp`: blocked bodies never reach the upstream, also when the
//! secret is split across chunks sent with a pause or hidden in gzip;
//! REDACT forwards the masked body with its length; AUDIT forwards
//! unchanged and the access log's record names the findings. Then every
//! log line, metric, response header and report of the run is searched
//! for the secrets used: none may appear.
//!
//! The same requests run in the harness and the native engine through the
//! example table (`policies/dlp/policy.test.yaml` in `example_policies`),
//! which checks that all three agree.

use std::io::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use warden::harness::{self as host, Host, HostOptions};
use warden::testing::envoy::Hcm;

use super::bootstrap::{self, Bootstrap};
use super::client::{Request, Response};
use super::envoy::Envoy;
use super::gateway::{self, Gateway, WORKLOAD_PORT};
use super::upstream::Upstream;

const CARD: &str = "4111 1111 1111 1111";
const AWS_KEY: &str = "AKIAZ7VQ2XK4MHL3RWTN";
const GITHUB_TOKEN: &str = "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";
const EMAIL: &str = "alice@example.com";

/// Every secret of this suite, in each form it was sent in.
const SECRETS: &[&str] = &[
    CARD,
    "4111111111111111",
    "4111-1111-1111-1111",
    AWS_KEY,
    GITHUB_TOKEN,
    "IDogFiUGqLURfw9MNOwlmEbNWMyvRY06FKEs",
    EMAIL,
    "bob@example.com",
    "bob%40example.com",
    "GB82 WEST 1234 5698 7654 32",
];

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn json_post(host: &str, path: &str, body: &str) -> Request {
    Request::post(path).host(host).header("content-type", "application/json").body(body.as_bytes().to_vec())
}

/// The upstream received nothing of a refused request: no complete
/// request, and not one body byte of one cut off. The gateway holds the
/// request headers while a body is scanned (`bootstrap::warden` sets
/// `allow_on_headers_stop_iteration`), so before anything was allowed the
/// upstream has not even seen a connection (`e2e::header_hold` has the
/// shapes and the gateway without the setting).
fn assert_nothing_upstream(gateway: &Gateway, what: &str) {
    assert!(gateway.upstream.received().is_empty(), "{what}: the upstream received {:?}", gateway.upstream.paths());
    assert_eq!(gateway.upstream.connections(), 0, "{what}: the upstream saw a connection");
    for cut in gateway.upstream.incomplete() {
        assert!(cut.body.is_empty(), "{what}: the upstream received {} body bytes of {}", cut.body.len(), cut.path);
    }
}

fn assert_dlp_refusal(response: &Response, what: &str) {
    assert_eq!(response.status, 403, "{what}: {}", response.text());
    assert_eq!(response.header("x-warden-decision"), Some("dlp"), "{what}");
    assert_eq!(response.text(), "DLP: request blocked", "{what}");
}

#[test]
fn dlp_blocks_redacts_and_audits_in_envoy_and_no_secret_is_ever_logged() {
    let mut evidence: Vec<String> = Vec::new();
    let mut record = |response: &Response| {
        evidence.push(format!("{:?} {}", response.headers, response.text()));
    };

    // 1. A card number in a JSON body: 403, nothing upstream.
    let gateway = Gateway::example("dlp");
    let card_json = format!(r#"{{"customer": "c-1029", "card": "{CARD}", "amount": 1200}}"#);
    let response = gateway.send(&json_post("httpbin.org", "/post", &card_json));
    assert_dlp_refusal(&response, "card in JSON");
    assert_nothing_upstream(&gateway, "card in JSON");
    record(&response);

    // 2. The same card split across two chunks, with a pause between them
    //    (the filter sees two body callbacks): still blocked.
    let (first, second) = card_json.split_at(card_json.find("1111 1111\"").expect("the card") + 2);
    let split = Request::post("/post")
        .host("httpbin.org")
        .header("content-type", "application/json")
        .chunked(vec![first.as_bytes().to_vec(), second.as_bytes().to_vec()], Duration::from_millis(300));
    let response = gateway.send(&split);
    assert_dlp_refusal(&response, "card split across chunks");
    assert_nothing_upstream(&gateway, "card split across chunks");
    record(&response);

    // 3. A gzip body with an AWS key.
    let body = gzip(format!(r#"{{"profile": "ci", "aws_access_key_id": "{AWS_KEY}"}}"#).as_bytes());
    let request = Request::post("/post")
        .host("httpbin.org")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body);
    let response = gateway.send(&request);
    assert_dlp_refusal(&response, "gzip AWS key");
    assert_nothing_upstream(&gateway, "gzip AWS key");
    record(&response);

    // 4. A token in the query string and a key in a header: refused, and
    //    masked in the request Envoy logs.
    let response = gateway.send(&Request::get(&format!("/get?token={GITHUB_TOKEN}")).host("httpbin.org"));
    assert_dlp_refusal(&response, "token in the query");
    record(&response);
    let response = gateway.send(&Request::get("/get").host("api.stripe.com").header("x-aws-key", AWS_KEY));
    assert_dlp_refusal(&response, "key in a header");
    record(&response);
    assert_nothing_upstream(&gateway, "query and header");

    // 5. REDACT: analytics receives the masked body, same length.
    let event = format!(r#"{{"event": "checkout", "email": "{EMAIL}", "card": "{CARD}"}}"#);
    let response = gateway.send(&json_post("collect.analytics.example", "/v1/events", &event));
    assert_eq!(response.status, 200, "REDACT: {}", response.text());
    record(&response);
    let received = gateway.upstream.received();
    let [redacted] = received.as_slice() else {
        panic!("REDACT: the upstream received {:?}", gateway.upstream.paths())
    };
    let masked = r#"{"event": "checkout", "email": "*****************", "card": "***************1111"}"#;
    assert_eq!(String::from_utf8_lossy(&redacted.body), masked);
    assert_eq!(redacted.body.len(), event.len());
    let response =
        gateway.send(&Request::get("/pixel?uid=42&email=bob%40example.com").host("collect.analytics.example"));
    assert_eq!(response.status, 200);
    record(&response);
    assert_eq!(gateway.upstream.paths().last().map(String::as_str), Some("/pixel?uid=42&email=*****************"));

    // 6. AUDIT: an email to httpbin goes on unchanged.
    let audited = format!(r#"{{"contact": "{EMAIL}"}}"#);
    let response = gateway.send(&json_post("httpbin.org", "/post", &audited));
    assert_eq!(response.status, 200, "AUDIT: {}", response.text());
    record(&response);
    assert_eq!(gateway.upstream.received().last().map(|r| r.body.clone()), Some(audited.into_bytes()));

    // The access log: one line per request, the decision record with the
    // finding ids and where they were found.
    let lines = gateway.envoy.access_log(8);
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l["warden"].as_str().expect("a decision record")).expect("JSON"))
        .collect();
    let summary: Vec<(Value, Value)> = records.iter().map(|r| (r["decision"].clone(), r["findings"].clone())).collect();
    assert_eq!(
        summary,
        vec![
            (json!("dlp"), json!(["credit_card"])),
            (json!("dlp"), json!(["credit_card"])),
            (json!("dlp"), json!(["aws_access_key_id"])),
            (json!("dlp"), json!(["github_token"])),
            (json!("dlp"), json!(["aws_access_key_id"])),
            (json!("allow"), json!(["email", "credit_card"])),
            (json!("allow"), json!(["email"])),
            (json!("allow"), json!(["email"])),
        ]
    );
    assert_eq!(records[7]["audit"], json!(["audit-personal-data"]));
    assert_eq!(records[7]["findingsAt"], json!([{"id": "email", "in": "body", "offset": 13, "action": "AUDIT"}]));
    assert_eq!(records[3]["findingsAt"][0]["in"], "query");
    assert_eq!(lines[3]["path"], json!("/get?token=****************************************"), "masked for the log");

    // Counters.
    let stats = gateway.envoy.warden_stats();
    let counter = |name: &str| stats.iter().find(|(k, _)| k.ends_with(name)).map(|(_, v)| *v);
    assert_eq!(counter("warden.dlp_blocked"), Some(5), "{stats:?}");
    assert_eq!(counter("warden.dlp_redacted"), Some(2), "{stats:?}");
    assert_eq!(counter("warden.requests"), Some(8), "{stats:?}");

    // No secret anywhere: Envoy's log (the filter's log lines included),
    // the access log, every stat, every response, and warden's reports.
    evidence.push(gateway.envoy.log());
    evidence.extend(lines.iter().map(Value::to_string));
    evidence.push(gateway.envoy.admin("/stats").text());
    evidence.push(gateway.envoy.admin("/stats/prometheus").text());
    for format in ["human", "json", "junit"] {
        evidence.push(warden_test_report(format));
    }
    for text in &evidence {
        for secret in SECRETS {
            assert!(!text.contains(secret), "the secret {secret:?} appears in:\n{text}");
        }
    }
}

/// `warden test policies/dlp --format FORMAT`, as its user sees it.
fn warden_test_report(format: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/dlp");
    let args = ["warden", "test", dir.to_str().expect("UTF-8 path"), "--format", format];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = warden::cli::run_with(args.iter().map(|s| s.to_string()), warden::FILTER_WASM, &mut out, &mut err);
    assert_eq!(code, warden::cli::EXIT_OK, "{}", String::from_utf8_lossy(&err));
    format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err))
}

/// A JSON event of `size` bytes whose one string holds a card number at
/// each of `at` (offsets in the body), and the same body as REDACT must
/// forward it: each card masked but its last four digits.
fn event_with_cards(size: usize, at: &[usize]) -> (Vec<u8>, Vec<u8>) {
    const HEAD: &[u8] = br#"{"log": ""#;
    const TAIL: &[u8] = br#""}"#;
    const MASKED: &[u8] = b"***************1111";
    let filler = b"event ok; ";
    let mut body: Vec<u8> = HEAD.to_vec();
    while body.len() < size - TAIL.len() {
        body.push(filler[body.len() % filler.len()]);
    }
    body.extend_from_slice(TAIL);
    let mut masked = body.clone();
    for &offset in at {
        // A space on each side: the card is a number of its own.
        body[offset - 1] = b' ';
        body[offset + CARD.len()] = b' ';
        body[offset..offset + CARD.len()].copy_from_slice(CARD.as_bytes());
        masked[offset - 1] = b' ';
        masked[offset + CARD.len()] = b' ';
        masked[offset..offset + CARD.len()].copy_from_slice(MASKED);
    }
    (body, masked)
}

/// A gateway whose listener and cluster buffer up to `limit` bytes per
/// connection (Envoy's default is 1 MiB), running `filter`.
fn gateway_with_buffer_limit(filter: Value, limit: usize) -> Gateway {
    let netns = gateway::namespace(&[]);
    let upstream = netns.run(|| Upstream::start(200));
    let (filters, upstream_addr) = (vec![filter], upstream.addr());
    let envoy = Envoy::launch_bootstrap(
        |access_log| {
            let mut config = Bootstrap {
                filters: &filters,
                upstream: upstream_addr,
                access_log,
                ports: &[WORKLOAD_PORT],
                hcm: &Hcm::default(),
            }
            .to_value();
            for kind in ["listeners", "clusters"] {
                for item in config["static_resources"][kind].as_array_mut().into_iter().flatten() {
                    item["per_connection_buffer_limit_bytes"] = json!(limit);
                }
            }
            config
        },
        vec![WORKLOAD_PORT],
        netns,
    )
    .unwrap_or_else(|failure| panic!("{failure}"));
    Gateway { envoy, upstream }
}

/// A REDACT body of several MiB: the filter reads it into the VM a piece
/// (1 MiB) at a time, to scan it and to mask it. Cards before, across and
/// after the pieces' boundaries are all masked in the body the upstream
/// receives, in Envoy with and without `allow_on_headers_stop_iteration`
/// (without it, Envoy hands the filter the whole body in one callback
/// once the paused headers resume), and the harness forwards the same
/// bytes.
#[test]
fn a_redacted_body_of_several_mib_is_masked_across_the_pieces_it_is_read_in() {
    let size = 3 << 20;
    let at = [100, (1 << 20) - 7, (2 << 20) + 3, size - 200];
    let (body, masked) = event_with_cards(size, &at);
    let policy = json!({
        "name": "mask-large",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "dlp": [{"name": "mask", "detectors": ["credit_card"], "action": "REDACT", "maxBodyBytes": 8 << 20}]
    });
    let request = Request::post("/v1/events")
        .host("collect.analytics.example")
        .header("content-type", "application/json")
        .body(body.clone());
    for allow_on_headers_stop_iteration in [true, false] {
        let what = format!("allow_on_headers_stop_iteration {allow_on_headers_stop_iteration}");
        let gateway =
            gateway_with_buffer_limit(bootstrap::warden_with(&policy, allow_on_headers_stop_iteration), 16 << 20);
        let response = gateway.send(&request);
        assert_eq!(response.status, 200, "{what}: {}", response.text());
        let received = gateway.upstream.received();
        let [got] = received.as_slice() else { panic!("{what}: the upstream received {:?}", gateway.upstream.paths()) };
        assert_eq!(got.body.len(), body.len(), "{what}: the length is kept");
        assert!(got.body == masked, "{what}: the body upstream is not the masked body");
        let lines = gateway.envoy.access_log(1);
        let record: Value =
            serde_json::from_str(lines[0]["warden"].as_str().expect("a decision record")).expect("JSON");
        let offsets: Vec<Value> = at.iter().map(|&o| json!(o)).collect();
        let found: Vec<Value> =
            record["findingsAt"].as_array().into_iter().flatten().map(|f| f["offset"].clone()).collect();
        assert_eq!(found, offsets, "{what}: each card found once, where it is in the decoded body: {record}");

        let options = HostOptions { allow_on_headers_stop_iteration, ..HostOptions::default() };
        let host = Host::new(warden::FILTER_WASM, options).unwrap_or_else(|e| panic!("{e}"));
        let mut vm = host.vm(policy.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let mut harness_request = host::Request::new("POST", "collect.analytics.example", "/v1/events")
            .header("content-type", "application/json");
        harness_request.body_chunks = body.chunks(64 << 10).map(<[u8]>::to_vec).collect();
        let outcome = vm.run(&harness_request);
        assert_eq!(outcome.fault, None, "{what}: harness: {:?}", outcome.logs);
        assert_eq!(outcome.status, 200, "{what}: harness");
        let forwarded = outcome.forwarded.map(|f| f.body).unwrap_or_default();
        assert!(forwarded == masked, "{what}: the harness forwarded another body than Envoy");
    }
}

/// In Envoy's V8 the scanner finds digits with wasm SIMD128: numbers of
/// every numeric detector at every offset of a sixteen-byte block reach
/// the upstream masked exactly where the reference scan finds them, as in
/// the harness (`harness::dlp_blocks`).
#[test]
fn numbers_at_every_offset_are_masked_in_envoy_as_in_the_harness() {
    use crate::harness::dlp_blocks::{assert_masked_as_the_reference, numbers_body, redact_policy};
    let body = numbers_body();
    let policy = redact_policy();
    let gateway = gateway_with_buffer_limit(bootstrap::warden_with(&policy, true), 8 << 20);
    let request = Request::post("/v1/notes")
        .host("collect.analytics.example")
        .header("content-type", "text/plain")
        .body(body.clone());
    let response = gateway.send(&request);
    assert_eq!(response.status, 200, "{}", response.text());
    let received = gateway.upstream.received();
    let [got] = received.as_slice() else { panic!("the upstream received {:?}", gateway.upstream.paths()) };
    let lines = gateway.envoy.access_log(1);
    let record: Value = serde_json::from_str(lines[0]["warden"].as_str().expect("a decision record")).expect("JSON");
    assert_masked_as_the_reference(&body, &got.body, &record);
}

/// Keys blocked and e-mail addresses masked, in headers (and so trailers)
/// only: no body is held.
fn headers_only_policy() -> Value {
    json!({
        "name": "trailers",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "dlp": [
            {"name": "keys", "detectors": ["aws_access_key_id"], "scan": ["headers"], "action": "BLOCK"},
            {"name": "mask", "detectors": ["email"], "scan": ["headers"], "action": "REDACT"}
        ]
    })
}

/// Trailers under policies that scan only headers: the body is not held,
/// so the headers and body go ahead while they stream, and the trailers
/// are scanned when they arrive. A key in a trailer refuses the request
/// there: the upstream is cut off (it never receives a whole request, nor
/// the trailer); an e-mail address in a trailer reaches the upstream
/// masked, and clean trailers unchanged. The harness agrees on the status
/// and on the trailers forwarded.
#[test]
fn a_secret_in_a_trailer_never_reaches_the_upstream() {
    let policy = headers_only_policy();
    let gateway = Gateway::launch(vec![bootstrap::warden(&policy)], &[WORKLOAD_PORT], Hcm::default(), &[], 200);
    let host = Host::new(warden::FILTER_WASM, HostOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut vm = host.vm(policy.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    };
    let mut send = |trailers: &[(&str, &str)]| {
        let request = Request::post("/v1/upload")
            .host("files.example.com")
            .chunked(vec![b"part one, ".to_vec(), b"part two".to_vec()], Duration::from_millis(100))
            .trailers(pairs(trailers));
        (gateway.send(&request), {
            let mut r = host::Request::new("POST", "files.example.com", "/v1/upload")
                .chunk(b"part one, ".to_vec())
                .chunk(b"part two".to_vec());
            r.trailers = pairs(trailers).into_iter().map(|(n, v)| (n, v.into_bytes())).collect();
            vm.run(&r)
        })
    };

    let (response, harness) = send(&[("x-checksum", "sha256=9f86d081"), ("x-upload-key", AWS_KEY)]);
    assert_dlp_refusal(&response, "a key in a trailer");
    assert_eq!(harness.status, 403, "the harness refuses it too");
    assert!(harness.forwarded.is_none());
    // The headers went ahead (the body was not held): the upstream saw the
    // request start, then its cut; never the whole request or the trailer.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gateway.upstream.incomplete().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gateway.upstream.received().is_empty(), "{:?}", gateway.upstream.paths());
    assert_eq!(gateway.upstream.incomplete().len(), 1, "the request was cut off upstream");

    // A name on two lines, one with the address: only that line is
    // masked, the other arrives as it was.
    let sent = [("x-checksum", "sha256=9f86d081"), ("x-uploaded-by", "ops"), ("x-uploaded-by", EMAIL)];
    let (response, harness) = send(&sent);
    assert_eq!(response.status, 200, "{}", response.text());
    let received = gateway.upstream.received();
    let [got] = received.as_slice() else { panic!("the upstream received {:?}", gateway.upstream.paths()) };
    let masked = "*".repeat(EMAIL.len());
    let want = pairs(&[("x-checksum", "sha256=9f86d081"), ("x-uploaded-by", "ops"), ("x-uploaded-by", &masked)]);
    assert_eq!(got.trailers, want, "the address is masked in the trailer upstream, the other line kept");
    assert_eq!(got.body, b"part one, part two");
    let forwarded = harness.forwarded.expect("the harness forwards it");
    let modelled: Vec<(String, String)> =
        forwarded.trailers.iter().map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned())).collect();
    assert_eq!(modelled, want, "the harness forwards the same trailers");

    let lines = gateway.envoy.access_log(2);
    let records: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str(l["warden"].as_str().expect("a record")).expect("JSON")).collect();
    assert_eq!(
        records[0]["findingsAt"],
        json!([{"id": "aws_access_key_id", "in": "trailer", "name": "x-upload-key", "action": "BLOCK"}])
    );
    assert_eq!(
        records[1]["findingsAt"],
        json!([{"id": "email", "in": "trailer", "name": "x-uploaded-by", "action": "REDACT"}])
    );
    let everything = format!("{}\n{}", gateway.envoy.log(), serde_json::to_string(&lines).unwrap_or_default());
    assert!(!everything.contains(AWS_KEY) && !everything.contains(EMAIL), "a secret in the logs");
}

/// The same over HTTP/2, where trailers need no configuration (a gRPC or
/// HTTP/2 client's reach every filter): Envoy hands Warden the trailers of
/// an HTTP/2 request, a key in one is refused (403 in the access log, no
/// whole request upstream), an e-mail address in one reaches the
/// HTTP/1.1 upstream masked, and a clean one unchanged.
#[test]
fn http2_trailers_are_scanned_as_http1_ones() {
    use super::h2::{Ending, H2Request};
    let policy = headers_only_policy();
    let gateway = Gateway::launch(vec![bootstrap::warden(&policy)], &[WORKLOAD_PORT], Hcm::default(), &[], 200);
    let headers =
        [(":method", "POST"), (":scheme", "http"), (":authority", "files.example.com"), (":path", "/v1/upload")];
    let send = |trailers: &[(&str, &str)]| {
        let request = H2Request { headers: &headers, body: b"part one", trailers };
        gateway.envoy.plain(WORKLOAD_PORT).send_h2c(&request).unwrap_or_else(|e| panic!("{e}"))
    };
    let masked = "*".repeat(EMAIL.len());
    assert_eq!(send(&[("x-upload-key", AWS_KEY)]), Ending::Answered);
    assert_eq!(send(&[("x-uploaded-by", EMAIL)]), Ending::Answered);
    assert_eq!(send(&[("x-checksum", "sha256=9f86d081")]), Ending::Answered);

    let lines = gateway.envoy.access_log(3);
    let codes: Vec<String> = lines.iter().map(|l| l["response_code"].to_string()).collect();
    assert_eq!(codes, ["403", "200", "200"], "{lines:?}");
    assert!(lines.iter().all(|l| l["protocol"] == "HTTP/2"), "{lines:?}");
    let record: Value = serde_json::from_str(lines[0]["warden"].as_str().expect("a record")).expect("JSON");
    assert_eq!(
        record["findingsAt"],
        json!([{"id": "aws_access_key_id", "in": "trailer", "name": "x-upload-key", "action": "BLOCK"}])
    );
    let received = gateway.upstream.received();
    let trailers: Vec<&[(String, String)]> = received.iter().map(|r| r.trailers.as_slice()).collect();
    assert_eq!(
        trailers,
        [&[("x-uploaded-by".to_owned(), masked)][..], &[("x-checksum".to_owned(), "sha256=9f86d081".to_owned())][..]],
        "only the two allowed requests arrived whole, the address masked"
    );
    assert!(received.iter().all(|r| r.body == b"part one"));
    let everything = format!("{}\n{}", gateway.envoy.log(), serde_json::to_string(&lines).unwrap_or_default());
    assert!(!everything.contains(AWS_KEY) && !everything.contains(EMAIL), "a secret in the logs");
}
