//! The shared table of cases: the example policies' test files
//! (`policies/**/*.test.yaml`). Every case goes through the filter in a real
//! Envoy, through the same filter in the harness (wasmtime), and through the
//! native engine:
//!
//! - Envoy must meet each expectation (decision, status, deciding policy,
//!   forwarded path, nothing upstream for refusals);
//! - the harness must agree with Envoy on the decision, the status, the
//!   whole decision record and the forwarded request (path and body);
//! - the native engine must reach the same decision, policy and path.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use warden::engine::{compile, FakeAttributes};
use warden::harness::host::{self, Host, HostOptions};
use warden::harness::policy_file;
use warden::harness::runner;
use warden::harness::testfile::{self, Case, Expected};

use super::client::{Dial, Request, Response, Tls};
use super::gateway::{Gateway, WORKLOAD_PORT};
use super::pki::Pki;

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

#[test]
fn example_policy_test_files_pass_in_envoy_and_the_harness_and_engine_agree() {
    let files = testfile::discover(&policies_dir());
    assert!(files.len() >= 4, "expected the example test files under policies/, found {files:?}");
    let wasm = std::fs::read(warden::FILTER_WASM_PATH).expect("the filter was built");
    let harness = Host::new(&wasm, HostOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    let mut cases = 0;
    for file in &files {
        cases += run_file(file, &harness, &mut failures);
    }
    assert!(failures.is_empty(), "{} problem(s) in {cases} example cases:\n{}", failures.len(), failures.join("\n"));
}

/// What Envoy did with one case.
struct EnvoyResult {
    response: Response,
    /// Path and body of each request the upstream received for this case.
    upstream: Vec<(String, Vec<u8>)>,
}

impl EnvoyResult {
    fn allowed(&self) -> bool {
        self.upstream.len() == 1 && self.response.header("x-warden-decision").is_none()
    }
}

/// Runs one test file; returns how many cases it has.
fn run_file(file: &Path, harness: &Host, failures: &mut Vec<String>) -> usize {
    let tests = testfile::load(file).unwrap_or_else(|e| panic!("{e}"));
    // One warden/v1 file, or Istio YAML over several: converted as
    // `warden test` does (import, then compile), so this is the round trip
    // Istio YAML → Warden → Envoy.
    let policy_paths = tests.policy.paths(file);
    let config = policy_file::load_configs(&policy_paths).unwrap_or_else(|e| panic!("{e}"));
    let policy_path = policy_paths.first().unwrap_or_else(|| panic!("{}: names no policy", file.display()));
    let engine = compile::load(&config).unwrap_or_else(|e| panic!("{}: {e}", policy_path.display()));
    let document: Value = serde_json::from_slice(&config).expect("policy_file gives JSON");
    let gateway = Gateway::start(Some(&document), 200);
    let mut vm = harness.vm(&config).unwrap_or_else(|e| panic!("{}: {e}", policy_path.display()));
    let label =
        |case: &Case| format!("{} / {}", file.strip_prefix(policies_dir()).unwrap_or(file).display(), case.name);

    let mut seen_upstream = 0;
    let mut harness_records = Vec::new();
    let mut native_records = Vec::new();
    for case in &tests.tests {
        let response = send(&gateway, case);
        let received = gateway.upstream.received();
        let upstream = received
            .get(seen_upstream..)
            .unwrap_or_default()
            .iter()
            .map(|r| (r.path.clone(), r.body.clone()))
            .collect();
        seen_upstream = received.len();
        let envoy = EnvoyResult { response, upstream };
        let in_harness = vm.run(&harness_request(case));
        harness_records.push(in_harness.filter_state_str("wasm.warden.decision"));

        let mut problems = expectations(case, &envoy);
        problems.extend(harness_agreement(&envoy, &in_harness));
        let (native_problems, native_record) = engine_agreement(case, &envoy, &engine);
        problems.extend(native_problems);
        native_records.push(native_record);
        failures.extend(problems.into_iter().map(|p| format!("{}: {p}", label(case))));
    }

    // The decision record and the deciding policy, as Envoy's access log
    // has them, against the expectation and the harness's record.
    let lines = gateway.envoy.access_log(tests.tests.len());
    let records = harness_records.iter().zip(&native_records);
    for ((case, line), (harness_record, native_record)) in tests.tests.iter().zip(&lines).zip(records) {
        let envoy_record: Option<Value> = line["warden"].as_str().and_then(|s| serde_json::from_str(s).ok());
        let harness_record: Option<Value> = harness_record.as_deref().and_then(|s| serde_json::from_str(s).ok());
        let native_record: Option<Value> = serde_json::from_str(native_record).ok();
        if envoy_record != harness_record || envoy_record != native_record {
            failures.push(format!(
                "{}: decision records differ\n    envoy:   {envoy_record:?}\n    harness: {harness_record:?}\n    native:  {native_record:?}",
                label(case)
            ));
        }
        if let Some(findings) = &case.expect.findings {
            let want: std::collections::BTreeSet<&str> = findings.iter().map(String::as_str).collect();
            let got: std::collections::BTreeSet<&str> = envoy_record
                .as_ref()
                .and_then(|r| r["findings"].as_array())
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if want != got {
                failures.push(format!("{}: expected findings {want:?} in the access log, got {got:?}", label(case)));
            }
        }
        if let Some(policy) = &case.expect.policy {
            let logged = envoy_record.as_ref().and_then(|r| r["policy"].as_str());
            if logged != Some(policy.as_str()) {
                failures.push(format!("{}: expected policy {policy} in the access log, got {logged:?}", label(case)));
            }
        }
    }
    tests.tests.len()
}

/// The test file's expectations, checked against Envoy.
fn expectations(case: &Case, envoy: &EnvoyResult) -> Vec<String> {
    let mut problems = Vec::new();
    let status = envoy.response.status;
    match case.expect.decision {
        Expected::Allow if !envoy.allowed() => problems.push(format!(
            "expected allow, got status {status} ({:?}), upstream received {} request(s)",
            envoy.response.header("x-warden-decision"),
            envoy.upstream.len()
        )),
        Expected::Deny if !envoy.upstream.is_empty() || envoy.response.header("x-warden-decision").is_none() => {
            problems.push(format!(
                "expected deny, got status {status} and the upstream received {} request(s)",
                envoy.upstream.len()
            ))
        }
        _ => {}
    }
    if let Some(expected) = case.expect.status {
        if status != expected {
            problems.push(format!("expected status {expected}, got {status}"));
        }
    }
    if let (Some(path), Some((got, _))) = (&case.expect.forwarded_path, envoy.upstream.first()) {
        if got != path {
            problems.push(format!("expected the upstream to receive {path}, it received {got}"));
        }
    }
    if let (Some(body), Some((_, got))) = (&case.expect.forwarded_body, envoy.upstream.first()) {
        if got != body.as_bytes() {
            problems.push(format!(
                "expected the upstream to receive body {body:?}, it received {:?}",
                String::from_utf8_lossy(got)
            ));
        }
    }
    problems
}

/// The harness must do what Envoy did.
fn harness_agreement(envoy: &EnvoyResult, harness: &host::Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(fault) = &harness.fault {
        return vec![format!("the harness faulted: {fault}")];
    }
    let harness_allowed = harness.forwarded.is_some() && harness.local_response.is_none();
    if harness_allowed != envoy.allowed() {
        problems.push(format!("Envoy {}, the harness {}", verdict(envoy.allowed()), verdict(harness_allowed)));
    }
    if u32::from(envoy.response.status) != harness.status {
        problems.push(format!("status: Envoy {}, the harness {}", envoy.response.status, harness.status));
    }
    if let Some(local) = &harness.local_response {
        let envoy_header = envoy.response.header("x-warden-decision").map(str::to_owned);
        if local.header("x-warden-decision") != envoy_header {
            problems.push(format!(
                "x-warden-decision: Envoy {envoy_header:?}, the harness {:?}",
                local.header("x-warden-decision")
            ));
        }
        if harness.response_body != envoy.response.body {
            problems.push("the response bodies differ".to_owned());
        }
    }
    if let (Some((path, body)), Some(forwarded)) = (envoy.upstream.first(), &harness.forwarded) {
        let harness_path = forwarded.header(":path").unwrap_or_default();
        if *path != harness_path {
            problems.push(format!("forwarded path: Envoy {path}, the harness {harness_path}"));
        }
        if *body != forwarded.body {
            problems.push("forwarded bodies differ".to_owned());
        }
    }
    problems
}

fn verdict(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "refused"
    }
}

/// The native engine must decide as the filter did: the same outcome,
/// decision record, forwarded path and body.
/// Returns the problems and the native record (checked against the access
/// log's).
fn engine_agreement(case: &Case, envoy: &EnvoyResult, engine: &warden::engine::Policy) -> (Vec<String>, String) {
    let mut problems = Vec::new();
    let chunks = body_of(case);
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let native = engine.process(&native_request(case), &chunks);
    let allowed = native.outcome == warden::engine::Outcome::Allow;
    if allowed != envoy.allowed() {
        problems.push(format!("the native engine decided {:?}, Envoy {}", native.outcome, verdict(envoy.allowed())));
    }
    if let Some((path, body)) = envoy.upstream.first() {
        let native_path = native.forward_path.clone().unwrap_or_else(|| case.request.path.clone());
        if *path != native_path {
            problems.push(format!("the native engine forwards {native_path}, Envoy forwarded {path}"));
        }
        if native.forwarded_body.as_ref() != Some(body) {
            problems.push("the native engine forwards another body than Envoy did".to_owned());
        }
    }
    (problems, native.record)
}

fn body_of(case: &Case) -> Vec<Vec<u8>> {
    runner::body_chunks(&case.request).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

fn send(gateway: &Gateway, case: &Case) -> Response {
    let spec = &case.request;
    let mut request = Request::new(&spec.method, &spec.path).host(&spec.authority);
    for (name, value) in spec.headers.pairs() {
        request = request.header(&name, &value);
    }
    let chunks = body_of(case);
    if chunks.len() > 1 {
        // Separate reads at the gateway: the filter sees each chunk.
        request = request.chunked(chunks, std::time::Duration::from_millis(50));
    } else if let Some(body) = chunks.into_iter().next() {
        request = request.body(body);
    }
    let identity = spec.peer_uri_san().map(|san| Pki::shared().identity(&san));
    let mut dial = match &identity {
        Some(identity) => Dial::tls(gateway.envoy.mtls_addr(), Tls::As(identity)),
        None => Dial::plain(gateway.envoy.plain_addr()),
    }
    .original_port(WORKLOAD_PORT);
    if let Some(ip) = &spec.source_ip {
        let ip: Ipv4Addr =
            ip.parse().unwrap_or_else(|_| panic!("{}: sourceIp must be IPv4 in the e2e runner", case.name));
        dial = dial.source_ip(ip);
    }
    dial.send(&request).unwrap_or_else(|e| panic!("{}: {e}\n{}", case.name, gateway.envoy.log_tail()))
}

/// `:scheme` as Envoy sets it: `https` on the mTLS listener.
fn scheme(case: &Case) -> &'static str {
    if case.request.principal.is_some() {
        "https"
    } else {
        "http"
    }
}

/// The case as the harness runs it: exactly as `warden test` builds it,
/// so this table also checks the CLI's runner against Envoy.
fn harness_request(case: &Case) -> host::Request {
    runner::request_for(&case.request).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// The case as the native engine sees it.
fn native_request(case: &Case) -> FakeAttributes {
    let spec = &case.request;
    let mut req = FakeAttributes::request(&spec.method, &spec.authority, &spec.path)
        .destination_port(WORKLOAD_PORT)
        .header(":scheme", scheme(case));
    for (name, value) in spec.headers.pairs() {
        req = req.header(&name, &value);
    }
    if let Some(san) = spec.peer_uri_san() {
        req = req.principal(&san);
    }
    if let Some(ip) = &spec.source_ip {
        req = req.source_ip(ip);
    }
    req
}
