//! Request headers held while their body is scanned, in a real Envoy and
//! in the harness, with the Wasm plugin's `allow_on_headers_stop_iteration`
//! on and off (the example policy `policies/dlp`).
//!
//! - On: Warden pauses the headers of a request whose body a BLOCK or
//!   REDACT policy holds, and Envoy still delivers the body. A blocked body
//!   is answered at the gateway: the upstream never sees a connection, a
//!   header or a byte. Allowed and redacted bodies arrive whole, as
//!   masked. Warden logs that it measured the pause honoured.
//! - Off (Envoy's default): a paused headers callback would stop the body
//!   callbacks too. Warden measures that (its timer resumes a request that
//!   waited for a body callback in vain, and it logs so), and lets the
//!   headers go ahead of the held body: the upstream sees the connection
//!   and may see the request's headers of a blocked body, then a reset,
//!   never a body byte.
//!
//! Each case also runs in the harness with the same setting, which must
//! agree with Envoy on the status, on whether anything went upstream and
//! on the body forwarded.

use std::io::Write as _;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use warden::harness::{self as host, Host, HostOptions};
use warden::testing::envoy::{self, Hcm, Wire};
use warden::testing::runner::{CLIENT_PORT, NODE};

use super::bootstrap;
use super::client::{Request, Response};
use super::gateway::{Gateway, WORKLOAD_PORT};
use super::policy;

const CARD: &str = "4111 1111 1111 1111";
const AWS_KEY: &str = "AKIAZ7VQ2XK4MHL3RWTN";
const GITHUB_TOKEN: &str = "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";
const EMAIL: &str = "alice@example.com";

/// Warden's log line when a body callback arrived while the headers waited.
const HONOURED: &str = "Envoy holds request headers while their body is scanned";
/// Warden's log line when its timer had to resume a request.
const IGNORED: &str = "no request body while its headers were held";

/// One request: its framing on the wire and what must come of it.
struct Case {
    name: &'static str,
    host: &'static str,
    content_type: Option<&'static str>,
    gzip: bool,
    /// `transfer-encoding: chunked`, one write per chunk with a pause
    /// between them; else one body with `content-length`.
    chunked: bool,
    chunks: Vec<Vec<u8>>,
    /// Trailer lines after the (chunked) body.
    trailers: Vec<(String, String)>,
    /// The body the upstream must receive; `None`: refused by DLP.
    forwarded: Option<Vec<u8>>,
}

impl Case {
    fn blocked(name: &'static str, host: &'static str, content_type: Option<&'static str>, chunks: &[&str]) -> Case {
        Case {
            name,
            host,
            content_type,
            gzip: false,
            chunked: chunks.len() > 1,
            chunks: chunks.iter().map(|c| c.as_bytes().to_vec()).collect(),
            trailers: Vec::new(),
            forwarded: None,
        }
    }

    /// Ends the body (then chunked) with this trailer line.
    fn trailer(mut self, name: &str, value: &str) -> Case {
        self.trailers.push((name.to_owned(), value.to_owned()));
        self.chunked = true;
        self
    }

    fn chunked(mut self) -> Case {
        self.chunked = true;
        self
    }

    fn forwarding(mut self, body: &str) -> Case {
        self.forwarded = Some(body.as_bytes().to_vec());
        self
    }

    /// The request as the client writes it.
    fn wire(&self) -> Wire {
        let mut headers = vec![("Host".to_owned(), self.host.to_owned())];
        if let Some(t) = self.content_type {
            headers.push(("content-type".into(), t.into()));
        }
        if self.gzip {
            headers.push(("content-encoding".into(), "gzip".into()));
        }
        if self.chunked {
            headers.push(("transfer-encoding".into(), "chunked".into()));
        } else {
            let length: usize = self.chunks.iter().map(Vec::len).sum();
            headers.push(("content-length".into(), length.to_string()));
        }
        headers.push(("connection".into(), "close".into()));
        Wire {
            method: "POST".into(),
            target: "/post".into(),
            headers,
            body: self.chunks.clone(),
            trailers: self.trailers.clone(),
        }
    }

    fn request(&self) -> Request {
        let wire = self.wire();
        let request = Request::raw(&wire.method, &wire.target, wire.headers);
        if self.chunked {
            // Separate reads at the gateway: the filter sees each chunk.
            request.chunked(self.chunks.clone(), Duration::from_millis(150)).trailers(self.trailers.clone())
        } else {
            request.body(self.chunks.concat())
        }
    }

    /// The request as Envoy hands it to the filter, for the harness.
    fn harness_request(&self) -> host::Request {
        let connection = envoy::Connection {
            source: SocketAddr::from(([127, 0, 0, 1], CLIENT_PORT)),
            listener: SocketAddr::from(([127, 0, 0, 1], WORKLOAD_PORT)),
            tls: None,
            sni: None,
            node: NODE,
        };
        envoy::request(&self.wire(), &connection, &Hcm::default()).unwrap_or_else(|r| panic!("{}: {r}", self.name))
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// Bodies blocked by `policies/dlp`, in every shape a client sends them.
fn blocked_cases() -> Vec<Case> {
    let card_json = format!(r#"{{"customer": "c-1029", "card": "{CARD}", "amount": 1200}}"#);
    let cut = card_json.find("1111 1111\"").expect("the card") + 2;
    let (head, tail) = card_json.split_at(cut);
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let leaked = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut gzipped = Case::blocked("gzip JSON with an AWS key", "httpbin.org", json, &[]);
    gzipped.gzip = true;
    gzipped.chunks = vec![gzip(format!(r#"{{"profile": "ci", "aws_access_key_id": "{AWS_KEY}"}}"#).as_bytes())];
    let mut gzipped_chunked = Case::blocked("gzip JSON with an AWS key, chunked in two", "httpbin.org", json, &[]);
    gzipped_chunked.gzip = true;
    let whole = gzip(format!(r#"{{"aws_access_key_id": "{AWS_KEY}", "profile": "ci"}}"#).as_bytes());
    let (a, b) = whole.split_at(whole.len() / 2);
    gzipped_chunked.chunks = vec![a.to_vec(), b.to_vec()];
    gzipped_chunked.chunked = true;
    vec![
        Case::blocked("card in JSON, content-length", "httpbin.org", json, &[leaked(card_json.clone())]),
        Case::blocked("card in JSON, chunked in one", "httpbin.org", json, &[leaked(card_json.clone())]).chunked(),
        Case::blocked(
            "card in JSON split across chunks",
            "httpbin.org",
            json,
            &[leaked(head.into()), leaked(tail.into())],
        ),
        gzipped,
        gzipped_chunked,
        Case::blocked(
            "card in a form, content-length",
            "httpbin.org",
            form,
            &[leaked(format!("name=alice&card={}&amount=12", CARD.replace(' ', "+")))],
        ),
        Case::blocked(
            "token in a form split in three",
            "api.stripe.com",
            form,
            &["note=hi&tok", "en=ghp_IDogFiUGqLURfw9", "MNOwlmEbNWMyvRY06FKEs"],
        ),
        Case::blocked(
            "token in plain text, chunked in one",
            "api.stripe.com",
            None,
            &[leaked(format!("token {GITHUB_TOKEN}"))],
        )
        .chunked(),
        // Trailers are scanned as headers, once the held body is done.
        Case::blocked("clean JSON, an AWS key in a trailer", "httpbin.org", json, &[r#"{"order": 1031}"#])
            .trailer("x-checksum", "sha256=9f86d081")
            .trailer("x-upload-key", AWS_KEY),
        Case::blocked("clean form in two chunks, a card in a trailer", "httpbin.org", form, &["a=1", "&b=2"])
            .trailer("x-card", CARD),
    ]
}

/// Bodies that go on: unchanged, or masked (REDACT for analytics).
fn forwarded_cases() -> Vec<Case> {
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let event = r#"{"event": "checkout", "email": "alice@example.com", "card": "4111 1111 1111 1111"}"#;
    let masked = r#"{"event": "checkout", "email": "*****************", "card": "***************1111"}"#;
    assert!(event.contains(EMAIL) && event.contains(CARD));
    vec![
        Case::blocked("clean JSON, content-length", "httpbin.org", json, &[r#"{"order": 1029}"#])
            .forwarding(r#"{"order": 1029}"#),
        Case::blocked("clean JSON split across chunks", "httpbin.org", json, &[r#"{"order": "#, r#"1030}"#])
            .forwarding(r#"{"order": 1030}"#),
        Case::blocked("clean JSON with a clean trailer", "httpbin.org", json, &[r#"{"order": 1032}"#])
            .trailer("x-checksum", "sha256=9f86d081")
            .forwarding(r#"{"order": 1032}"#),
        Case::blocked("event redacted, content-length", "collect.analytics.example", json, &[event]).forwarding(masked),
        Case::blocked(
            "form redacted, split across chunks",
            "collect.analytics.example",
            form,
            &["uid=42&email=bob%40exa", "mple.com&x=1"],
        )
        .forwarding("uid=42&email=*****************&x=1"),
    ]
}

/// A gateway running `policies/dlp` with the setting as given.
fn gateway(allow_on_headers_stop_iteration: bool) -> Gateway {
    let filter = bootstrap::warden_with(&policy::example("dlp"), allow_on_headers_stop_iteration);
    Gateway::launch(vec![filter], &[WORKLOAD_PORT], Hcm::default(), &[], 200)
}

fn harness_vm(allow_on_headers_stop_iteration: bool) -> host::Vm {
    let options = HostOptions { allow_on_headers_stop_iteration, ..HostOptions::default() };
    let host = Host::new(warden::FILTER_WASM, options).unwrap_or_else(|e| panic!("{e}"));
    let config = policy::example("dlp").to_string();
    host.vm(config.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn send(gateway: &Gateway, case: &Case) -> Response {
    gateway
        .envoy
        .plain(WORKLOAD_PORT)
        .send(&case.request())
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", case.name, gateway.envoy.log_tail()))
}

fn assert_dlp_refusal(response: &Response, what: &str) {
    assert_eq!(response.status, 403, "{what}: {}", response.text());
    assert_eq!(response.header("x-warden-decision"), Some("dlp"), "{what}");
}

/// The harness runs `case` as Envoy did: same status, same body upstream,
/// and the headers went upstream exactly when `upstream_started`.
fn assert_harness_agrees(vm: &mut host::Vm, case: &Case, envoy_status: u16, upstream_started: bool) {
    let outcome = vm.run(&case.harness_request());
    assert!(outcome.fault.is_none(), "{}: harness: {:?}", case.name, outcome.fault);
    assert_eq!(outcome.status, u32::from(envoy_status), "{}: harness and Envoy disagree on the status", case.name);
    assert_eq!(
        outcome.upstream_started, upstream_started,
        "{}: harness and Envoy disagree on whether the headers went upstream",
        case.name
    );
    assert_eq!(
        outcome.forwarded.as_ref().map(|f| f.body.clone()),
        case.forwarded.clone(),
        "{}: the body the harness forwarded",
        case.name
    );
}

/// Waits until the upstream has recorded `count` requests cut off after
/// their head (it notices the reset a moment after the client's answer).
fn wait_for_incomplete(gateway: &Gateway, count: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while gateway.upstream.incomplete().len() < count && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    gateway.upstream.incomplete().len()
}

fn assert_forwarded_intact(gateway: &Gateway, vm: &mut host::Vm, cases: &[Case]) {
    for case in cases {
        let before = gateway.upstream.received().len();
        let response = send(gateway, case);
        assert_eq!(response.status, 200, "{}: {}", case.name, response.text());
        let received = gateway.upstream.received();
        let [got] = received.get(before..).unwrap_or_default() else {
            panic!("{}: the upstream received {:?}", case.name, gateway.upstream.paths())
        };
        assert_eq!(Some(&got.body), case.forwarded.as_ref(), "{}: the body upstream", case.name);
        assert_eq!(got.trailers, case.trailers, "{}: the trailers upstream", case.name);
        assert_harness_agrees(vm, case, response.status, true);
    }
}

#[test]
fn with_the_setting_a_blocked_body_never_reaches_the_upstream_not_even_a_connection() {
    let gateway = gateway(true);
    let mut vm = harness_vm(true);
    for case in blocked_cases() {
        let response = send(&gateway, &case);
        assert_dlp_refusal(&response, case.name);
        assert_harness_agrees(&mut vm, &case, response.status, false);
        // Nothing of it left the gateway.
        assert_eq!(gateway.upstream.connections(), 0, "{}: the upstream saw a connection", case.name);
        assert!(gateway.upstream.received().is_empty(), "{}: {:?}", case.name, gateway.upstream.paths());
        assert!(gateway.upstream.incomplete().is_empty(), "{}: the upstream saw the request's head", case.name);
    }
    let log = gateway.envoy.log();
    assert_eq!(log.matches(HONOURED).count(), 1, "measured once, on the first held request:\n{log}");
    assert!(!log.contains(IGNORED), "{log}");

    assert_forwarded_intact(&gateway, &mut vm, &forwarded_cases());
    // Still nothing of the refused ones.
    thread::sleep(Duration::from_millis(100));
    assert!(gateway.upstream.incomplete().is_empty(), "{:?}", gateway.upstream.incomplete());
    assert_eq!(gateway.upstream.received().len(), forwarded_cases().len());

    let stats = gateway.envoy.warden_stats();
    let counter = |name: &str| stats.iter().find(|(k, _)| k.ends_with(name)).map(|(_, v)| *v);
    assert_eq!(counter("warden.dlp_blocked"), Some(blocked_cases().len() as u64), "{stats:?}");
    assert_eq!(counter("warden.dlp_redacted"), Some(2), "{stats:?}");
}

#[test]
fn without_the_setting_headers_go_ahead_of_a_held_body_and_no_request_stalls() {
    let gateway = gateway(false);
    let mut vm = harness_vm(false);
    let cases = blocked_cases();
    for case in &cases {
        let started = Instant::now();
        let response = send(&gateway, case);
        assert_dlp_refusal(&response, case.name);
        assert!(started.elapsed() < Duration::from_secs(3), "{}: took {:?}", case.name, started.elapsed());
        assert_harness_agrees(&mut vm, case, response.status, true);
    }
    // The router went upstream for them: connections, and the heads of the
    // requests whose next chunk came later than the connection; never a
    // body byte, never a whole request.
    assert!(gateway.upstream.connections() >= 1, "the upstream saw no connection");
    let chunked_later = cases.iter().filter(|c| c.chunks.len() > 1).count();
    let cut = wait_for_incomplete(&gateway, chunked_later);
    assert!(cut >= chunked_later, "{cut} heads of refused requests upstream, expected at least {chunked_later}");
    for head in gateway.upstream.incomplete() {
        assert!(head.body.is_empty(), "{} body bytes of {} reached the upstream", head.body.len(), head.path);
    }
    assert!(gateway.upstream.received().is_empty(), "{:?}", gateway.upstream.paths());
    let log = gateway.envoy.log();
    assert!(log.contains(IGNORED), "Warden noticed the missing body callbacks:\n{log}");
    assert!(!log.contains(HONOURED), "{log}");

    assert_forwarded_intact(&gateway, &mut vm, &forwarded_cases());
}

/// The setting itself, with the probe filter (`x-probe: pause`): its
/// headers callback pauses; its body callback pauses until the end of the
/// stream, then reports the body size as a request header, resumes the
/// request and continues. Measured in Envoy and required of the harness:
///
/// - on, with a body: the body callbacks arrive while the headers wait
///   (the last one sees the whole body buffered); the request goes upstream
///   once, with the header added at body time and the whole body;
/// - off, with a body: no body callback arrives, the request stalls, and
///   nothing reaches the upstream;
/// - on, without a body (the headers end the stream): nothing can resume
///   it, it stalls too.
#[test]
fn envoy_passes_a_paused_headers_callback_on_only_with_the_setting() {
    use crate::harness::filters::{self, Filter, Target};

    let module = filters::path(Filter::Probe, Target::Wasip1);
    let launch = |allow| {
        Gateway::launch(vec![bootstrap::probe_with(&module, allow)], &[WORKLOAD_PORT], Hcm::default(), &[], 200)
    };
    let (on, off) = thread::scope(|s| {
        let on = s.spawn(|| launch(true));
        let off = s.spawn(|| launch(false));
        (on.join().expect("Envoy with the setting"), off.join().expect("Envoy without it"))
    });
    let with_body = || {
        Request::post("/p")
            .host("x.example")
            .header("x-probe", "pause")
            .chunked(vec![b"ab".to_vec(), b"cdef".to_vec()], Duration::from_millis(100))
    };
    let harness_with_body = || {
        host::Request::new("POST", "x.example", "/p")
            .header("x-probe", "pause")
            .header("transfer-encoding", "chunked")
            .chunk(b"ab".to_vec())
            .chunk(b"cdef".to_vec())
    };
    let harness = |allow| {
        let options = HostOptions { allow_on_headers_stop_iteration: allow, ..HostOptions::default() };
        filters::host_with(Filter::Probe, Target::Wasip1, options)
    };
    let (harness_on, harness_off) = (harness(true), harness(false));

    // On, with a body.
    let response = on.envoy.plain(WORKLOAD_PORT).send(&with_body()).expect("an answer");
    assert_eq!(response.status, 200, "{}", response.text());
    let received = on.upstream.received();
    let [got] = received.as_slice() else { panic!("the upstream received {:?}", on.upstream.paths()) };
    assert_eq!(got.body, b"abcdef");
    assert_eq!(got.headers.get("x-r-end-of-stream"), Some("false"));
    assert_eq!(got.headers.get("x-r-resumed-at-body-size"), Some("6"), "the last body callback saw it all");
    let outcome = filters::vm(&harness_on, "").run(&harness_with_body());
    assert_eq!(outcome.fault, None);
    let forwarded = outcome.forwarded.expect("the harness forwards it");
    assert_eq!(forwarded.body, b"abcdef");
    assert_eq!(forwarded.header("x-r-resumed-at-body-size").as_deref(), Some("6"));

    // The two stalls, side by side (each waits for the client's timeout).
    let without_body = Request::get("/p").host("x.example").header("x-probe", "pause");
    let (off_result, on_no_body) = thread::scope(|s| {
        let a = s.spawn(|| off.envoy.plain(WORKLOAD_PORT).send(&with_body()));
        let b = s.spawn(|| on.envoy.plain(WORKLOAD_PORT).send(&without_body));
        (a.join().expect("client"), b.join().expect("client"))
    });
    assert!(off_result.is_err(), "off: expected a stall, got {:?}", off_result.map(|r| r.status));
    assert!(on_no_body.is_err(), "on, no body: expected a stall, got {:?}", on_no_body.map(|r| r.status));
    assert_eq!(off.upstream.connections(), 0, "off: nothing went upstream");
    assert_eq!(on.upstream.connections(), 1, "on: only the first request went upstream");
    let stalled = filters::vm(&harness_off, "").run(&harness_with_body());
    assert!(matches!(stalled.fault, Some(host::Fault::Stalled(_))), "{:?}", stalled.fault);
    let stalled =
        filters::vm(&harness_on, "").run(&host::Request::new("GET", "x.example", "/p").header("x-probe", "pause"));
    assert!(matches!(stalled.fault, Some(host::Fault::Stalled(_))), "{:?}", stalled.fault);
}
