//! The example policies' test files (`policies/**/*.test.yaml`): every case
//! goes through the filter in a real Envoy and through the native engine.
//! Envoy must meet each expectation (decision, status, deciding policy,
//! forwarded path, nothing upstream for refusals), and the engine must
//! reach the same decision, policy and forwarded path.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use warden::engine::{compile, FakeAttributes};
use warden::harness::policy_file;
use warden::harness::testfile::{self, Case, Expected};

use super::client::{Dial, Request, Tls};
use super::gateway::{Gateway, WORKLOAD_PORT};
use super::pki::Pki;

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

#[test]
fn example_policy_test_files_pass_in_envoy_and_the_engine_agrees() {
    let files = testfile::discover(&policies_dir());
    assert!(files.len() >= 4, "expected the example test files under policies/, found {files:?}");
    let mut failures = Vec::new();
    let mut cases = 0;
    for file in &files {
        cases += run_file(file, &mut failures);
    }
    assert!(failures.is_empty(), "{} of {cases} example cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// Runs one test file; returns how many cases it has.
fn run_file(file: &Path, failures: &mut Vec<String>) -> usize {
    let tests = testfile::load(file).unwrap_or_else(|e| panic!("{e}"));
    let policy_paths = tests.policy.paths(file);
    let [policy_path] = policy_paths.as_slice() else {
        panic!("{}: the e2e runner takes one policy file", file.display());
    };
    let config = policy_file::load_config(policy_path).unwrap_or_else(|e| panic!("{e}"));
    let engine = compile::load(&config).unwrap_or_else(|e| panic!("{}: {e}", policy_path.display()));
    let document: Value = serde_json::from_slice(&config).expect("policy_file gives JSON");
    let gateway = Gateway::start(Some(&document), 200);

    let label =
        |case: &Case| format!("{} / {}", file.strip_prefix(policies_dir()).unwrap_or(file).display(), case.name);
    let mut seen_upstream = 0;
    let mut logged = Vec::new();
    for case in &tests.tests {
        let outcome = send(&gateway, case);
        let received = gateway.upstream.received();
        let new: Vec<_> = received.get(seen_upstream..).unwrap_or_default().to_vec();
        seen_upstream = received.len();
        logged.push((label(case), case.expect.policy.clone()));

        let mut problems = Vec::new();
        let allowed = new.len() == 1 && outcome.header("x-warden-decision").is_none();
        match case.expect.decision {
            Expected::Allow if !allowed => problems.push(format!(
                "expected allow, got status {} ({:?}), upstream received {} request(s)",
                outcome.status,
                outcome.header("x-warden-decision"),
                new.len()
            )),
            Expected::Deny if !new.is_empty() || outcome.header("x-warden-decision").is_none() => {
                problems.push(format!(
                    "expected deny, got status {} and the upstream received {} request(s)",
                    outcome.status,
                    new.len()
                ))
            }
            _ => {}
        }
        if let Some(status) = case.expect.status {
            if outcome.status != status {
                problems.push(format!("expected status {status}, got {}", outcome.status));
            }
        }
        if let (Some(path), Some(got)) = (&case.expect.forwarded_path, new.first()) {
            if &got.path != path {
                problems.push(format!("expected the upstream to receive {path}, it received {}", got.path));
            }
        }

        // The native engine must agree with Envoy.
        let native = engine.decide(&native_request(case));
        if native.is_allowed() != allowed {
            problems.push(format!(
                "the native engine decided {:?}, Envoy {}",
                native.outcome,
                if allowed { "allowed" } else { "refused" }
            ));
        }
        if let Some(got) = new.first() {
            let native_path = native.forward_path.clone().unwrap_or_else(|| case.request.path.clone());
            if got.path != native_path {
                problems.push(format!("the native engine forwards {native_path}, Envoy forwarded {}", got.path));
            }
        }
        if let Some(policy) = &case.expect.policy {
            if native.policy != Some(policy.as_str()) {
                problems.push(format!("expected policy {policy}, the native engine reports {:?}", native.policy));
            }
        }
        for p in problems {
            failures.push(format!("{}: {p}", label(case)));
        }
    }

    // The deciding policy as Envoy's access log records it.
    let lines = gateway.envoy.access_log(tests.tests.len());
    for ((label, policy), line) in logged.iter().zip(&lines) {
        let Some(policy) = policy else { continue };
        let record: Value = line["warden"].as_str().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
        if record["policy"].as_str() != Some(policy.as_str()) {
            failures.push(format!("{label}: expected policy {policy} in the access log, got {}", record["policy"]));
        }
    }
    tests.tests.len()
}

fn send(gateway: &Gateway, case: &Case) -> super::client::Response {
    let spec = &case.request;
    let mut request = Request::new(&spec.method, &spec.path).host(&spec.authority);
    for (name, value) in spec.headers.pairs() {
        request = request.header(&name, &value);
    }
    if let Some(body) = &spec.body {
        request = request.body(body.as_bytes().to_vec());
    }
    if let Some(chunks) = &spec.body_chunks {
        request = request.body(chunks.concat().into_bytes());
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

/// The case as the native engine sees it, with what Envoy adds: the
/// destination port of the captured connection, `https` on the mTLS
/// listener.
fn native_request(case: &Case) -> FakeAttributes {
    let spec = &case.request;
    let mut req = FakeAttributes::request(&spec.method, &spec.authority, &spec.path)
        .destination_port(WORKLOAD_PORT)
        .header(":scheme", if spec.principal.is_some() { "https" } else { "http" });
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
