//! The shared table of cases: the example policies' test files
//! (`policies/**/*.test.yaml`, or the files under `$WARDEN_E2E_POLICIES`).
//! Every case goes through the filter in a real Envoy, through the same
//! filter in the harness (wasmtime), and through the native engine:
//!
//! - Envoy must meet each expectation (decision, status, deciding policy,
//!   forwarded path, nothing upstream for refusals);
//! - the harness must agree with Envoy on the decision, the status, the
//!   whole decision record and the forwarded request (path and body);
//! - the native engine must reach the same decision, policy and path.
//!
//! Each test file gets a gateway in a network namespace of its own, with
//! the test file's HTTP connection manager set-up, a listener on every port
//! its cases name, and every source address they connect from: a case's
//! `port` is the real listener port and its `sourceIp` the real peer.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use warden::engine::compile;
use warden::explain::RequestAttributes;
use warden::harness::{self as host, Host, HostOptions};
use warden::testing::envoy::{self, ClientCertificate};

use warden::testing::runner;
use warden::testing::testfile::{self, Case, Expected, RequestSpec, TestFile};

use super::bootstrap;
use super::client::{Request, Response, Tls};
use super::gateway::{Gateway, WORKLOAD_PORT};
use super::pki::{Identity, Pki};
use super::tls_gateway::TlsGateway;
use super::upstream::Received;

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

#[test]
fn example_policy_test_files_pass_in_envoy_and_the_harness_and_engine_agree() {
    let root = std::env::var_os("WARDEN_E2E_POLICIES").map_or_else(policies_dir, PathBuf::from);
    let files = testfile::discover(&root);
    assert!(files.len() >= 4, "expected the example test files under {}, found {files:?}", root.display());
    let wasm = std::fs::read(warden::FILTER_WASM_PATH).expect("the filter was built");
    // As the gateways' bootstrap (`bootstrap::warden`): request headers
    // wait while a held body is scanned.
    let options = HostOptions { allow_on_headers_stop_iteration: true, ..HostOptions::default() };
    let harness = Host::new(&wasm, options).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    let mut cases = 0;
    for file in &files {
        cases += run_file(&root, file, &harness, &mut failures);
    }
    eprintln!("{cases} cases in {} files: {} problem(s)", files.len(), failures.len());
    assert!(failures.is_empty(), "{} problem(s) in {cases} example cases:\n{}", failures.len(), failures.join("\n"));
}

/// What Envoy did with one case.
struct EnvoyResult {
    response: Response,
    /// Path, body and trailers of each request the upstream received for
    /// this case.
    upstream: Vec<Received>,
    /// A CONNECT: allowed, Envoy connects to the upstream and answers 200
    /// itself; the tunnel's bytes are not an HTTP request the recording
    /// upstream can log (`e2e::connect` checks them with an echo upstream).
    tunnel: bool,
}

impl EnvoyResult {
    fn allowed(&self) -> bool {
        let no_refusal = self.response.header("x-warden-decision").is_none();
        if self.tunnel {
            return no_refusal && (200..300).contains(&self.response.status);
        }
        self.upstream.len() == 1 && no_refusal
    }
}

/// Runs one test file; returns how many cases it has.
fn run_file(root: &Path, file: &Path, harness: &Host, failures: &mut Vec<String>) -> usize {
    let tests = testfile::load(file).unwrap_or_else(|e| panic!("{e}"));
    // One warden/v1 file, or Istio YAML over several: converted as
    // `warden test` does (import, then compile), so this is the round trip
    // Istio YAML → Warden → Envoy.
    let policy_paths = tests.policy.paths(file);
    let config = warden::config::load_configs(&policy_paths).unwrap_or_else(|e| panic!("{e}"));
    let policy_path = policy_paths.first().unwrap_or_else(|| panic!("{}: names no policy", file.display()));
    let engine = compile::load(&config).unwrap_or_else(|e| panic!("{}: {e}", policy_path.display()));
    let document: Value = serde_json::from_slice(&config).expect("policy_file gives JSON");
    let gateway = gateway_for(&tests, &document);
    let mut vm = harness.vm(&config).unwrap_or_else(|e| panic!("{}: {e}", policy_path.display()));
    let label = |case: &Case| format!("{} / {}", file.strip_prefix(root).unwrap_or(file).display(), case.name);

    let mut connections: Vec<&Case> = Vec::new();
    let mut seen_upstream = 0;
    let mut harness_records = Vec::new();
    let mut native_records = Vec::new();
    for case in &tests.tests {
        let Some(spec) = &case.request else {
            connections.push(case);
            continue;
        };
        let identity = identity(spec);
        let response = send(&gateway, case, spec, identity.as_ref());
        let received = gateway.upstream.received();
        let upstream = received.get(seen_upstream..).unwrap_or_default().to_vec();
        seen_upstream = received.len();
        let envoy = EnvoyResult { response, upstream, tunnel: spec.method == "CONNECT" };

        let modelled = harness_request(case, spec, &tests, identity.as_ref());
        let mut problems = expectations(case, &envoy, modelled.is_err());
        match modelled {
            Err(refused) => {
                // Envoy answers itself; there is no record in either.
                if envoy.response.status != refused.status || envoy.response.header("x-warden-decision").is_some() {
                    problems.push(format!(
                        "the harness says Envoy answers {} itself, Envoy answered {} ({:?})",
                        refused.status,
                        envoy.response.status,
                        envoy.response.header("x-warden-decision")
                    ));
                }
                harness_records.push(None);
                native_records.push("null".to_owned());
            }
            Ok(request) => {
                let in_harness = vm.run(&request);
                harness_records.push(in_harness.filter_state_str("wasm.warden.decision"));
                problems.extend(harness_agreement(&envoy, &in_harness));
                let (native_problems, native_record) = engine_agreement(spec, &request, &envoy, &engine);
                problems.extend(native_problems);
                native_records.push(native_record);
            }
        }
        failures.extend(problems.into_iter().map(|p| format!("{}: {p}", label(case))));
    }

    // The decision record and the deciding policy, as Envoy's access log
    // has them, against the expectation and the harness's record.
    let requests: Vec<&Case> = tests.tests.iter().filter(|c| c.request.is_some()).collect();
    let lines = gateway.envoy.access_log(requests.len());
    let records = harness_records.iter().zip(&native_records);
    for ((case, line), (harness_record, native_record)) in requests.iter().zip(&lines).zip(records) {
        let envoy_record: Option<Value> = line["warden"].as_str().and_then(|s| serde_json::from_str(s).ok());
        let harness_record: Option<Value> = harness_record.as_deref().and_then(|s| serde_json::from_str(s).ok());
        let native_record: Option<Value> = serde_json::from_str(native_record).ok().filter(|v: &Value| !v.is_null());
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
    if !connections.is_empty() {
        run_connections(&label, &connections, &document, harness, &config, &engine, failures);
    }
    tests.tests.len()
}

/// The test file's expectations, checked against Envoy.
fn expectations(case: &Case, envoy: &EnvoyResult, envoy_answers: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let status = envoy.response.status;
    match case.expect.decision {
        Expected::Allow if !envoy.allowed() => problems.push(format!(
            "expected allow, got status {status} ({:?}), upstream received {} request(s)",
            envoy.response.header("x-warden-decision"),
            envoy.upstream.len()
        )),
        // A request Envoy answers itself never reaches Warden: no
        // x-warden-decision (the harness checks that it is one).
        Expected::Deny
            if !envoy.upstream.is_empty()
                || (envoy.response.header("x-warden-decision").is_none() && !envoy_answers) =>
        {
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
    if let (Some(path), Some(Received { path: got, .. })) = (&case.expect.forwarded_path, envoy.upstream.first()) {
        if got != path {
            problems.push(format!("expected the upstream to receive {path}, it received {got}"));
        }
    }
    if let (Some(body), Some(Received { body: got, .. })) = (&case.expect.forwarded_body, envoy.upstream.first()) {
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
    if let (Some(Received { path, body, trailers, .. }), Some(forwarded)) = (envoy.upstream.first(), &harness.forwarded)
    {
        let harness_path = forwarded.header(":path").unwrap_or_default();
        if *path != harness_path {
            problems.push(format!("forwarded path: Envoy {path}, the harness {harness_path}"));
        }
        if *body != forwarded.body {
            problems.push("forwarded bodies differ".to_owned());
        }
        let sent: Vec<(String, String)> = trailers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
        let modelled: Vec<(String, String)> =
            forwarded.trailers.iter().map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned())).collect();
        if sent != modelled {
            problems.push(format!("forwarded trailers: Envoy {sent:?}, the harness {modelled:?}"));
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
/// decision record, forwarded path and body, on the request the filter saw.
/// Returns the problems and the native record (checked against the access
/// log's).
fn engine_agreement(
    spec: &RequestSpec,
    request: &host::Request,
    envoy: &EnvoyResult,
    engine: &warden::engine::Policy,
) -> (Vec<String>, String) {
    let mut problems = Vec::new();
    let chunks: Vec<&[u8]> = request.body_chunks.iter().map(Vec::as_slice).collect();
    let trailers: Vec<(String, String)> =
        request.trailers.iter().map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned())).collect();
    let trailers: Vec<(&str, &str)> = trailers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let native = engine.process_with_trailers(&RequestAttributes(request), &chunks, &trailers);
    let allowed = native.outcome == warden::engine::Outcome::Allow;
    if allowed != envoy.allowed() {
        problems.push(format!("the native engine decided {:?}, Envoy {}", native.outcome, verdict(envoy.allowed())));
    }
    if let Some(Received { path, body, .. }) = envoy.upstream.first() {
        let native_path = native.forward_path.clone().unwrap_or_else(|| spec.path.clone());
        if *path != native_path {
            problems.push(format!("the native engine forwards {native_path}, Envoy forwarded {path}"));
        }
        if native.forwarded_body.as_ref() != Some(body) {
            problems.push("the native engine forwards another body than Envoy did".to_owned());
        }
    }
    (problems, native.record)
}

/// A gateway for a test file: Warden with its policy, a listener on every
/// port its cases name (and 80), its HCM set-up, and its cases' source
/// addresses on the namespace's loopback.
fn gateway_for(tests: &TestFile, document: &Value) -> Gateway {
    let requests = || tests.tests.iter().filter_map(|c| c.request.as_ref());
    let mut ports: BTreeSet<u16> = requests().map(RequestSpec::destination_port).collect();
    ports.insert(WORKLOAD_PORT);
    let addresses: BTreeSet<IpAddr> = requests().filter_map(|r| r.source_ip.as_deref()?.trim().parse().ok()).collect();
    let ports: Vec<u16> = ports.into_iter().collect();
    let addresses: Vec<IpAddr> = addresses.into_iter().collect();
    Gateway::launch(vec![bootstrap::warden(document)], &ports, tests.gateway.clone(), &addresses, 200)
}

/// The request's client certificate: its principal(s) as URI SANs.
fn identity(spec: &RequestSpec) -> Option<Identity> {
    spec.principal.as_ref().map(|p| Pki::shared().identity_with(&p.uris(), &[]))
}

/// Sends the case's request as `warden test` describes it on the wire
/// ([`runner::wire_for`], [`runner::connection_for`]): from its source
/// address to its port, over TLS with its certificate when it has one.
fn send(gateway: &Gateway, case: &Case, spec: &RequestSpec, identity: Option<&Identity>) -> Response {
    let wire = runner::wire_for(spec).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let connection = runner::connection_for(spec).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut request = Request::raw(&wire.method, &wire.target, wire.headers.clone());
    if wire.body.len() > 1 || !wire.trailers.is_empty() {
        // Separate reads at the gateway: the filter sees each chunk.
        request =
            request.chunked(wire.body.clone(), std::time::Duration::from_millis(50)).trailers(wire.trailers.clone());
    } else if let Some(body) = wire.body.first() {
        request = request.body(body.clone());
    }
    let port = connection.listener.port();
    let dial = match (&connection.tls, identity) {
        (Some(_), Some(identity)) => gateway.envoy.tls(port, Tls::As(identity)),
        (Some(_), None) => gateway.envoy.tls(port, Tls::Anonymous),
        (None, _) => gateway.envoy.plain(port),
    }
    .source_ip(connection.source.ip());
    dial.send(&request).unwrap_or_else(|e| panic!("{}: {e}\n{}", case.name, gateway.envoy.log_tail()))
}

/// The case as the harness runs it: exactly as `warden test` builds it,
/// but with the certificate Envoy saw (so that `x-forwarded-client-cert`
/// is the same bytes), so this table also checks the CLI's runner against
/// Envoy. `Err`: Envoy answers itself.
fn harness_request(
    case: &Case,
    spec: &RequestSpec,
    tests: &TestFile,
    identity: Option<&Identity>,
) -> Result<host::Request, envoy::Refused> {
    let wire = runner::wire_for(spec).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut connection = runner::connection_for(spec).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    if let (Some(tls), Some(identity)) = (&mut connection.tls, identity) {
        let first = spec.peer_uri_san().unwrap_or_default();
        *tls = Some(ClientCertificate { pem: identity.cert_pem.clone(), subject: format!("CN={first}") });
    }
    envoy::request(&wire, &connection, &tests.gateway)
}

/// The connection cases of a test file: through Warden as a network filter
/// in a real Envoy (passthrough, or mesh mTLS ended at the gateway when the
/// case has a principal), through the same filter in the harness, and
/// through the native engine. Envoy must meet the expectation (an allowed
/// connection's first bytes reach the upstream and come back; a refused
/// one reaches nothing), the harness and the engine must decide alike, and
/// `tcp_proxy`'s access log must carry the harness's record.
fn run_connections(
    label: &dyn Fn(&Case) -> String,
    cases: &[&Case],
    document: &Value,
    harness: &Host,
    config: &[u8],
    engine: &warden::engine::Policy,
    failures: &mut Vec<String>,
) {
    let specs: Vec<(&Case, &testfile::ConnectionSpec)> =
        cases.iter().filter_map(|c| Some((*c, c.connection.as_ref()?))).collect();
    let ports: BTreeSet<u16> = specs.iter().filter_map(|(_, s)| s.port).collect();
    let addresses: BTreeSet<IpAddr> =
        specs.iter().filter_map(|(_, s)| s.source_ip.as_deref()?.trim().parse().ok()).collect();
    let gateway = TlsGateway::launch(
        document,
        &ports.into_iter().collect::<Vec<_>>(),
        &addresses.into_iter().collect::<Vec<_>>(),
    );
    let mut vm = harness
        .vm_with_root_id(config, warden::engine::record::NETWORK_ROOT_ID)
        .unwrap_or_else(|e| panic!("the network filter: {e}"));
    let mut harness_records = Vec::new();
    for (case, spec) in &specs {
        let connection = runner::tcp_connection_for(spec).unwrap_or_else(|e| panic!("{}: {e}", label(case)));
        let outcome = vm.connect(&connection);
        let actual = runner::Actual::from_connection(&outcome);
        for m in runner::evaluate(&case.expect, &actual) {
            failures.push(format!("{}: the harness: {m}", label(case)));
        }
        harness_records.push(actual.record.clone());
        let native = engine.decide_connection(&warden::explain::ConnectionAttributes(&connection));
        let native_allowed = native.outcome == warden::engine::Outcome::Allow;
        if native_allowed != (case.expect.decision == Expected::Allow) {
            failures.push(format!("{}: the native engine decided {:?}", label(case), native.outcome));
        }
        if actual.record.as_deref() != Some(native.record().as_str()) {
            failures.push(format!(
                "{}: records differ\n    harness: {:?}\n    native:  {}",
                label(case),
                actual.record,
                native.record()
            ));
        }

        // Envoy.
        let identity = spec.principal.as_ref().map(|p| Pki::shared().identity_with(&p.uris(), &[]));
        let source =
            spec.source_ip.as_deref().and_then(|ip| ip.trim().parse().ok()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let data = spec.data.clone().unwrap_or_else(|| "hello".into());
        let port = spec.port.unwrap_or_default();
        let attempt = gateway.connect(port, source, spec.sni.as_deref(), identity.as_ref(), data.as_bytes());
        match case.expect.decision {
            Expected::Allow if !attempt.echoed => failures.push(format!(
                "{}: Envoy: expected the connection through, its bytes did not come back ({attempt:?})",
                label(case)
            )),
            Expected::Deny if attempt.echoed || !attempt.forwarded.is_empty() => failures.push(format!(
                "{}: Envoy: expected the connection closed, bytes reached the upstream ({attempt:?})",
                label(case)
            )),
            _ => {}
        }
        // Refused when it opens (no identity needed), no upstream
        // connection at all: only after the handshake may tcp_proxy have
        // connected.
        if case.expect.decision == Expected::Deny && identity.is_none() && attempt.upstream_connected {
            failures
                .push(format!("{}: Envoy: a passthrough connection refused, yet the upstream saw one", label(case)));
        }
    }
    let lines = gateway.envoy.access_log(specs.len());
    for (((case, _), line), harness_record) in specs.iter().zip(&lines).zip(&harness_records) {
        let envoy_record: Option<Value> = line["warden"].as_str().and_then(|s| serde_json::from_str(s).ok());
        let harness_record: Option<Value> = harness_record.as_deref().and_then(|s| serde_json::from_str(s).ok());
        if envoy_record != harness_record {
            failures.push(format!(
                "{}: connection records differ\n    envoy:   {envoy_record:?}\n    harness: {harness_record:?}",
                label(case)
            ));
        }
    }
}
