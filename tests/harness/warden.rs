//! Warden's filter in the wasmtime host: the decisions, records, counters
//! and forwarded requests of the filter as Envoy would run it.

use warden::harness::{Host, HostError, HostOptions, Request};

fn host() -> Host {
    let wasm = std::fs::read(warden::FILTER_WASM_PATH).expect("the filter was built");
    Host::new(&wasm, HostOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

const HTTPBIN: &str = r#"{
  "name": "httpbin-egress",
  "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [80]}],
  "authorization": [{"name": "httpbin", "action": "ALLOW", "services": ["httpbin.org"], "rules": [
    {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"]}}]},
    {"to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]}
  ]}]
}"#;

#[test]
fn warden_decides_in_the_harness() {
    let host = host();
    let mut vm = host.vm(HTTPBIN.as_bytes()).unwrap_or_else(|e| panic!("{e}"));

    let allowed = vm.run(&Request::new("GET", "httpbin.org", "//get?x=1"));
    assert_eq!(allowed.fault, None);
    let forwarded = allowed.forwarded.expect("GET /get goes upstream");
    assert_eq!(forwarded.header(":path").as_deref(), Some("/get?x=1"));
    assert_eq!(allowed.status, 200);

    let denied =
        vm.run(&Request::new("POST", "httpbin.org", "/post").peer_uri_san("cluster.local/ns/default/sa/sleep"));
    let local = denied.local_response.clone().expect("a local response");
    assert_eq!((local.status, local.body.as_slice()), (403, &b"RBAC: access denied"[..]));
    assert_eq!(local.header("x-warden-decision").as_deref(), Some("denied"));
    assert!(denied.forwarded.is_none());
    let record: serde_json::Value =
        serde_json::from_str(&denied.filter_state_str("wasm.warden.decision").expect("record")).unwrap();
    assert_eq!(record["decision"], "denied");
    assert_eq!(record["principal"], "cluster.local/ns/default/sa/sleep");
    assert!(denied.logs.iter().any(|l| l.level == "info" && l.message.contains("warden: denied POST httpbin.org")));

    let admin = vm.run(&Request::new("POST", "httpbin.org", "/post").peer_uri_san("cluster.local/ns/default/sa/admin"));
    assert!(admin.forwarded.is_some());

    let unregistered = vm.run(&Request::new("GET", "aliyun.com", "/"));
    assert_eq!(unregistered.status, 502);

    assert_eq!(vm.metric("warden.requests"), Some(4));
    assert_eq!(vm.metric("warden.allowed"), Some(2));
    assert_eq!(vm.metric("warden.denied"), Some(1));
    assert_eq!(vm.metric("warden.unregistered"), Some(1));
}

#[test]
fn an_invalid_policy_is_refused_and_the_log_names_the_field() {
    let host = host();
    let bad = HTTPBIN.replace("\"/get\"", "\"/{**}/x/{*}\"");
    match host.vm(bad.as_bytes()) {
        Err(HostError::ConfigRejected(logs)) => {
            assert!(
                logs.iter().any(|l| l.message.contains("authorization[0].rules[1].to[0].operation.paths[0]")),
                "{logs:?}"
            );
        }
        Err(other) => panic!("expected the configuration to be refused, got {other}"),
        Ok(_) => panic!("expected the configuration to be refused"),
    }
}

const DLP: &str = r#"{
  "name": "dlp",
  "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}],
  "dlp": [
    {"name": "keys", "detectors": ["aws_access_key_id"], "action": "BLOCK"},
    {"name": "watch", "detectors": ["email"], "action": "AUDIT"}
  ]
}"#;

/// Trailers end a body (gRPC, chunked uploads with trailers): the scan is
/// finished there, so a secret in the last chunk is still found and the
/// final record is written.
#[test]
fn trailers_end_the_body_scan() {
    let host = host();
    let mut vm = host.vm(DLP.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let request = |body: &[&str]| {
        let mut r = Request::new("POST", "httpbin.org", "/post").header("content-type", "text/plain");
        for chunk in body {
            r = r.chunk(chunk.as_bytes().to_vec());
        }
        r.trailers.push(("x-checksum".to_owned(), b"abc".to_vec()));
        r
    };

    let blocked = vm.run(&request(&["key=AKIAZ7VQ2", "XK4MHL3RWTN"]));
    assert_eq!(blocked.fault, None);
    assert_eq!(blocked.status, 403);
    assert!(blocked.forwarded.is_none());
    let record: serde_json::Value =
        serde_json::from_str(&blocked.filter_state_str("wasm.warden.decision").expect("record")).unwrap();
    assert_eq!(
        (record["decision"].as_str(), record["findings"].clone()),
        (Some("dlp"), serde_json::json!(["aws_access_key_id"]))
    );

    let audited = vm.run(&request(&["contact alice@exa", "mple.com"]));
    assert_eq!(audited.forwarded.as_ref().expect("forwarded").body, b"contact alice@example.com");
    let record: serde_json::Value =
        serde_json::from_str(&audited.filter_state_str("wasm.warden.decision").expect("record")).unwrap();
    assert_eq!(record["findings"], serde_json::json!(["email"]));
    assert_eq!(record["audit"], serde_json::json!(["watch"]));
    assert_eq!(vm.metric("warden.dlp_blocked"), Some(1));
    assert_eq!(vm.metric("warden.audit"), Some(1));
    assert_eq!(vm.metric("warden.requests"), Some(2));
}

/// Request headers held while a held body is scanned, as the Wasm plugin
/// config's `allow_on_headers_stop_iteration` lets Envoy do: with it, a
/// blocked body sends nothing upstream; without it, the filter's timer
/// lets the headers go ahead (none stalls), and after such a miss the next
/// held request is not paused at all, then one measures again.
#[test]
fn held_headers_follow_the_hosts_setting_and_never_stall() {
    let wasm = std::fs::read(warden::FILTER_WASM_PATH).expect("the filter was built");
    let blocked = || {
        Request::new("POST", "httpbin.org", "/post")
            .header("content-type", "text/plain")
            .chunk(b"key=AKIAZ7VQ2".to_vec())
            .chunk(b"XK4MHL3RWTN".to_vec())
    };
    let clean = || Request::new("POST", "httpbin.org", "/post").chunk(b"nothing to see".to_vec());
    for allow in [true, false] {
        let options = HostOptions { allow_on_headers_stop_iteration: allow, ..HostOptions::default() };
        let host = Host::new(&wasm, options).unwrap_or_else(|e| panic!("{e}"));
        let mut vm = host.vm(DLP.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let mut ticks = Vec::new();
        for round in 0..4 {
            let outcome = vm.run(&blocked());
            assert_eq!((outcome.fault.as_ref(), outcome.status), (None, 403), "allow={allow}, round {round}");
            assert_eq!(outcome.upstream_started, !allow, "allow={allow}, round {round}: the headers went upstream");
            let timer_log = outcome.logs.iter().any(|l| l.message.contains("no request body while its headers"));
            ticks.push(timer_log);
            let proof = outcome.logs.iter().any(|l| l.message.contains("Envoy holds request headers"));
            assert_eq!(proof, allow && round == 0, "allow={allow}, round {round}: measured once, on the first");
        }
        // Without the setting: a miss (round 0), one request unpaused, one
        // measuring again (round 2: a second miss), then three unpaused.
        let expected = if allow { vec![false; 4] } else { vec![true, false, true, false] };
        assert_eq!(ticks, expected, "allow={allow}: the timer resumed these requests");
        let forwarded = vm.run(&clean());
        assert_eq!(forwarded.forwarded.expect("forwarded").body, b"nothing to see", "allow={allow}");
        assert_eq!(vm.tick_period(), std::time::Duration::ZERO, "allow={allow}: the timer is off once nothing waits");
    }
}

/// The filter Istio pulls and Envoy loads stays within its size budget:
/// 1 MiB, the figure docs/PERFORMANCE.md tracks.
#[test]
fn the_filter_is_under_one_mebibyte() {
    let wasm = std::fs::read(warden::FILTER_WASM_PATH).expect("the filter was built");
    assert!(wasm.len() < 1 << 20, "warden_filter.wasm is {} bytes, over the 1 MiB budget", wasm.len());
}
