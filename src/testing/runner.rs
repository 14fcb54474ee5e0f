//! `warden test`: runs the cases of `*.test.yaml` files through the compiled
//! filter in the harness and compares what happened with what each case
//! expects.
//!
//! Each case becomes a [`Request`] the way the end-to-end tests send it to a
//! real Envoy (see [`request_for`]): as a workload's call to port 80 through
//! its sidecar, over mTLS with the case's principal as the peer
//! certificate's URI SAN. One [`Host`] serves the whole run (the module is
//! compiled once); each test file gets one VM shared by its cases, like one
//! Envoy worker, or a fresh VM per case with [`Options::isolate`].
//!
//! ```no_run
//! use warden::harness::{Host, HostOptions};
//! use warden::testing::runner::{self, Options};
//! use std::path::Path;
//!
//! let wasm = std::fs::read("warden.wasm").unwrap();
//! let host = Host::new(&wasm, HostOptions::default()).unwrap();
//! let file = runner::run_file(&host, Path::new("policies/ambient-waypoint/policy.test.yaml"), &Options::default());
//! for case in file.cases() {
//!     println!("{} {}", if case.passed() { "ok  " } else { "FAIL" }, case.name);
//! }
//! ```

use crate::display::{quoted, quoted_bytes, shown_list};
use crate::testing::envoy;
use crate::testing::testfile::{self, Case, ConnectionSpec, Expect, Expected, PolicyRef, RequestSpec, Sent, SpecError};
use base64::Engine as _;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use warden_config::{LoadError, PolicyLoadError};
use warden_engine::record::{Record, DECISION_HEADER, FILTER_STATE_KEY, NETWORK_ROOT_ID};
use warden_engine::Policy;
use warden_harness::{ClosedBy, ConnectionOutcome, Host, HostError, Outcome, Request};

/// The port every case's connection is made to: a workload calling
/// `http://host/` through its sidecar reaches the gateway on port 80, and
/// Envoy reports that as `destination.port`. An explicit port in the
/// authority (`api.stripe.com:443`) still wins, as in Envoy.
pub const WORKLOAD_PORT: u16 = 80;

/// How a run is done.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A fresh VM per case instead of one per test file.
    pub isolate: bool,
    /// A policy whose reading noted anything is an input error (`--strict`).
    pub strict: bool,
    /// Only the cases whose name, or `file: name` (the file as shown),
    /// this matches; the others are counted in [`FileRun::filtered_out`].
    pub only: Option<regex::Regex>,
}

impl Options {
    /// Whether the case `name` of `file` (as shown) is to run.
    pub fn selects(&self, file: &str, name: &str) -> bool {
        self.only.as_ref().is_none_or(|re| re.is_match(name) || re.is_match(&format!("{file}: {name}")))
    }
}

/// One test file's run.
#[derive(Debug)]
pub struct FileRun {
    /// The test file, as found.
    pub file: PathBuf,
    /// The policy file it names, once resolved (the first, when it names
    /// several).
    pub policy_file: Option<PathBuf>,
    /// Every policy file it names (Istio YAML may be split over several).
    pub policy_files: Vec<PathBuf>,
    /// The compiled policy (for coverage), when it loaded.
    pub policy: Option<Policy>,
    /// What reading the policy noted (shown before the cases).
    pub notes: Vec<warden_config::istio::Note>,
    /// The cases, or why the file could not be run (an input error).
    pub result: Result<Vec<CaseRun>, String>,
    /// Cases left out by [`Options::only`].
    pub filtered_out: usize,
}

impl FileRun {
    /// The cases run (none when the file could not be run).
    pub fn cases(&self) -> &[CaseRun] {
        self.result.as_deref().unwrap_or_default()
    }
}

/// One case's run.
#[derive(Debug, Clone)]
pub struct CaseRun {
    /// The case's name.
    pub name: String,
    /// The request or connection as the test file gives it.
    pub sent: Sent,
    /// What the case expects.
    pub expect: Expect,
    /// What happened.
    pub actual: Actual,
    /// The expectations that did not hold; empty: the case passed.
    pub mismatches: Vec<Mismatch>,
}

impl CaseRun {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// Whether the expectation on `field` failed.
    pub fn failed_on(&self, field: Field) -> bool {
        self.mismatches.iter().any(|m| m.field == field)
    }
}

/// What happened to a case's request in the filter.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// Allow (forwarded, no local response) or deny (a local response);
    /// `None` when the filter faulted.
    pub decision: Option<Expected>,
    /// The status the client got: the local response's, or the upstream's
    /// 200.
    pub status: u32,
    /// The `x-warden-decision` header of a local response.
    pub decision_header: Option<String>,
    /// The decision record (`wasm.warden.decision`), as the filter wrote it.
    pub record: Option<String>,
    /// The `:path` that went upstream.
    pub forwarded_path: Option<String>,
    /// The body that went upstream.
    pub forwarded_body: Option<Vec<u8>>,
    /// Why the stream failed, when the filter faulted.
    pub fault: Option<String>,
}

impl Actual {
    /// Reads an [`Outcome`] of the host.
    pub fn from_outcome(outcome: &Outcome) -> Actual {
        let decision = if outcome.fault.is_some() {
            None
        } else if outcome.local_response.is_some() {
            Some(Expected::Deny)
        } else if outcome.forwarded.is_some() {
            Some(Expected::Allow)
        } else {
            None
        };
        Actual {
            decision,
            status: outcome.status,
            decision_header: outcome.local_response.as_ref().and_then(|l| l.header(DECISION_HEADER)),
            record: outcome.filter_state_str(FILTER_STATE_KEY),
            forwarded_path: outcome.forwarded.as_ref().and_then(|f| f.header(":path")),
            forwarded_body: outcome.forwarded.as_ref().map(|f| f.body.clone()),
            fault: outcome.fault.as_ref().map(ToString::to_string),
        }
    }

    /// Reads a [`ConnectionOutcome`] of the host: allowed when the
    /// client's bytes reached the upstream, denied when the filter closed
    /// the connection before any did (the upstream connection may have
    /// been opened: see the filter's `connection` module).
    pub fn from_connection(outcome: &ConnectionOutcome) -> Actual {
        let closed_by_filter = matches!(outcome.closed, Some(ClosedBy::FilterDownstream | ClosedBy::FilterUpstream));
        let decision = if outcome.fault.is_some() {
            None
        } else if outcome.upstream_connected && !outcome.forwarded.is_empty() {
            Some(Expected::Allow)
        } else if closed_by_filter && outcome.forwarded.is_empty() {
            Some(Expected::Deny)
        } else {
            None
        };
        Actual {
            decision,
            record: outcome.filter_state_str(FILTER_STATE_KEY),
            fault: outcome.fault.as_ref().map(ToString::to_string),
            ..Actual::default()
        }
    }

    /// The decision record, read; `None` when there is none or it does
    /// not read.
    pub fn parsed_record(&self) -> Option<Record<'_>> {
        self.record.as_deref().and_then(|r| Record::parse(r.as_bytes()).ok())
    }

    /// The decision record as a JSON value, for JSON reports.
    pub fn record_json(&self) -> Option<serde_json::Value> {
        self.record.as_deref().and_then(|r| serde_json::from_str(r).ok())
    }

    /// The record's `policy`.
    pub fn policy(&self) -> Option<String> {
        self.parsed_record().and_then(|r| r.policy).map(Cow::into_owned)
    }

    /// The record's `findings`, as a set.
    pub fn findings(&self) -> BTreeSet<String> {
        self.parsed_record().map(|r| r.findings.into_iter().map(Cow::into_owned).collect()).unwrap_or_default()
    }

    /// The record's `reason`.
    pub fn reason(&self) -> Option<String> {
        self.parsed_record().map(|r| r.reason.into_owned()).filter(|r| !r.is_empty())
    }

    /// The record's `service`.
    pub fn service(&self) -> Option<String> {
        self.parsed_record().and_then(|r| r.service).map(Cow::into_owned)
    }

    /// The record's `dryRun`, as a set.
    pub fn dry_run(&self) -> BTreeSet<String> {
        self.parsed_record().map(|r| r.dry_run.into_iter().map(Cow::into_owned).collect()).unwrap_or_default()
    }

    /// The record's `audit`, as a set.
    pub fn audit(&self) -> BTreeSet<String> {
        self.parsed_record().map(|r| r.audit.into_iter().map(Cow::into_owned).collect()).unwrap_or_default()
    }
}

/// An expectation of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// The filter faulted (always a failure).
    Fault,
    /// `expect.decision`
    Decision,
    /// `expect.status`
    Status,
    /// `expect.policy`
    Policy,
    /// `expect.reason`
    Reason,
    /// `expect.service`
    Service,
    /// `expect.findings`
    Findings,
    /// `expect.dryRun`
    DryRun,
    /// `expect.audit`
    Audit,
    /// `expect.forwardedPath`
    ForwardedPath,
    /// `expect.forwardedBody`
    ForwardedBody,
}

impl Field {
    /// The field's name in the test file.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Fault => "fault",
            Field::Decision => "decision",
            Field::Status => "status",
            Field::Policy => "policy",
            Field::Findings => "findings",
            Field::Reason => "reason",
            Field::Service => "service",
            Field::DryRun => "dryRun",
            Field::Audit => "audit",
            Field::ForwardedPath => "forwardedPath",
            Field::ForwardedBody => "forwardedBody",
        }
    }
}

/// An expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Which one.
    pub field: Field,
    /// What was expected, as text.
    pub expected: String,
    /// What happened, as text.
    pub actual: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field == Field::Fault {
            return write!(f, "{}", self.actual);
        }
        write!(f, "{}: expected {}, got {}", self.field.as_str(), self.expected, self.actual)
    }
}

/// `allow` or `deny`.
pub fn decision_word(d: Expected) -> &'static str {
    match d {
        Expected::Allow => "allow",
        Expected::Deny => "deny",
    }
}

/// Compares what happened with what a case expects.
pub fn evaluate(expect: &Expect, actual: &Actual) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differ = |field: Field, expected: String, actual: String| out.push(Mismatch { field, expected, actual });
    if let Some(fault) = &actual.fault {
        differ(Field::Fault, "no fault".into(), fault.clone());
        return out;
    }
    match actual.decision {
        Some(d) if d == expect.decision => {}
        Some(d) => differ(Field::Decision, decision_word(expect.decision).into(), decision_word(d).into()),
        None => differ(
            Field::Decision,
            decision_word(expect.decision).into(),
            "nothing: neither forwarded nor refused".into(),
        ),
    }
    if let Some(status) = expect.status {
        if actual.status != u32::from(status) {
            differ(Field::Status, status.to_string(), actual.status.to_string());
        }
    }
    if let Some(policy) = &expect.policy {
        let got = actual.policy();
        if got.as_deref() != Some(policy.as_str()) {
            differ(Field::Policy, policy.clone(), got.unwrap_or_else(|| "none".into()));
        }
    }
    for (field, want, got) in
        [(Field::Reason, &expect.reason, actual.reason()), (Field::Service, &expect.service, actual.service())]
    {
        let Some(want) = want else { continue };
        if got.as_deref() != Some(want.as_str()) {
            differ(field, want.clone(), got.unwrap_or_else(|| "none".into()));
        }
    }
    let list = |s: &BTreeSet<String>| format!("[{}]", s.iter().cloned().collect::<Vec<_>>().join(", "));
    for (field, want, got) in [
        (Field::Findings, &expect.findings, actual.findings()),
        (Field::DryRun, &expect.dry_run, actual.dry_run()),
        (Field::Audit, &expect.audit, actual.audit()),
    ] {
        let Some(want) = want else { continue };
        let want: BTreeSet<String> = want.iter().cloned().collect();
        if want != got {
            differ(field, list(&want), list(&got));
        }
    }
    if let Some(path) = &expect.forwarded_path {
        if actual.forwarded_path.as_deref() != Some(path.as_str()) {
            let got = actual.forwarded_path.clone().unwrap_or_else(|| "nothing forwarded".into());
            differ(Field::ForwardedPath, path.clone(), got);
        }
    }
    if let Some(body) = &expect.forwarded_body {
        if actual.forwarded_body.as_deref() != Some(body.as_bytes()) {
            let got = actual.forwarded_body.as_deref().map_or_else(|| "nothing forwarded".into(), quoted_bytes);
            differ(Field::ForwardedBody, quoted(body), got);
        }
    }
    out
}

/// The body of a case as the chunks that arrive at the filter.
pub fn body_chunks(spec: &RequestSpec) -> Result<Vec<Vec<u8>>, SpecError> {
    let given = [spec.body.is_some(), spec.body_chunks.is_some(), spec.body_base64.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(SpecError::TwoBodies);
    }
    if let Some(body) = &spec.body {
        return Ok(if body.is_empty() { Vec::new() } else { vec![body.clone().into_bytes()] });
    }
    if let Some(chunks) = &spec.body_chunks {
        return Ok(chunks.iter().filter(|c| !c.is_empty()).map(|c| c.clone().into_bytes()).collect());
    }
    if let Some(encoded) = &spec.body_base64 {
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| SpecError::NotBase64(e.to_string()))?;
        return Ok(if bytes.is_empty() { Vec::new() } else { vec![bytes] });
    }
    Ok(Vec::new())
}

/// What a case's request is once it reached the gateway: what Envoy hands
/// the filter, or Envoy's own answer (a request its codec refuses never
/// reaches a filter).
#[derive(Debug, Clone)]
pub enum Arrival {
    /// Envoy hands the filter this request.
    Filter(Request),
    /// Envoy answers itself.
    Refused(envoy::Refused),
}

/// What a case brings to the gateway: a request for the HTTP filter, or a
/// connection for the filter loaded as a network filter.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A request.
    Request(Arrival),
    /// A connection.
    Connection(warden_harness::Connection),
}

impl Arrival {
    /// The request the filter sees; an error when Envoy answers itself.
    pub fn into_request(self) -> Result<Request, envoy::Refused> {
        match self {
            Arrival::Filter(request) => Ok(request),
            Arrival::Refused(refused) => Err(refused),
        }
    }
}

/// The request as the client writes it: `METHOD path HTTP/1.1`, `Host:
/// authority`, the case's headers in order (a `host` among them is a
/// second Host line), a `content-length` as an HTTP/1.1 client sends it
/// (for a body, and for POST, PUT and PATCH) or `transfer-encoding:
/// chunked` for a body in several chunks or one with trailers (sent after
/// the last chunk), and `connection: close`. A
/// `CONNECT` is written as a forward-proxy client opens a tunnel:
/// `CONNECT authority HTTP/1.1` (the path is not sent), `Host: authority`
/// and the case's headers, nothing else; its body is the tunnel's bytes,
/// sent after the head with no framing. The end-to-end tests put exactly
/// these bytes on the wire.
pub fn wire_for(spec: &RequestSpec) -> Result<envoy::Wire, SpecError> {
    if spec.authority.is_empty() {
        return Err(SpecError::NoAuthority);
    }
    let body = body_chunks(spec)?;
    let trailers = spec.trailers.pairs();
    let mut headers = vec![("Host".to_owned(), spec.authority.clone())];
    let pairs = spec.headers.pairs();
    headers.extend(pairs.iter().cloned());
    if spec.method == "CONNECT" {
        if !trailers.is_empty() {
            return Err(SpecError::NoTrailersHere("a CONNECT has no body for trailers to follow"));
        }
        return Ok(envoy::Wire {
            method: spec.method.clone(),
            target: spec.authority.clone(),
            headers,
            body,
            trailers,
        });
    }
    let has = |name: &str| pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let length: usize = body.iter().map(Vec::len).sum();
    if !trailers.is_empty() && has("content-length") {
        return Err(SpecError::NoTrailersHere("trailers follow a chunked body, not one of a content-length"));
    }
    if body.len() > 1 || !trailers.is_empty() {
        if !has("transfer-encoding") {
            headers.push(("transfer-encoding".into(), "chunked".into()));
        }
    } else if !has("content-length") && (length > 0 || matches!(spec.method.as_str(), "POST" | "PUT" | "PATCH")) {
        headers.push(("content-length".into(), length.to_string()));
    }
    headers.push(("connection".into(), "close".into()));
    Ok(envoy::Wire { method: spec.method.clone(), target: spec.path.clone(), headers, body, trailers })
}

/// The ephemeral port the harness gives every client.
pub const CLIENT_PORT: u16 = 40000;

/// The gateway's own address in the harness (a pod address).
pub const NODE: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

/// The connection a case's request arrives on: from `sourceIp` (default
/// 127.0.0.1) to the case's destination port, over TLS when the case has a
/// principal (its certificate's URI SANs) or `scheme: https`.
pub fn connection_for(spec: &RequestSpec) -> Result<envoy::Connection, SpecError> {
    let ip: std::net::IpAddr = match &spec.source_ip {
        Some(ip) => ip.trim().parse().map_err(|_| SpecError::NotAnIp(ip.clone()))?,
        None => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    let certificate = spec.principal.as_ref().map(|p| client_certificate(&p.uris()));
    let tls =
        if certificate.is_some() || spec.scheme == "https" || spec.sni.is_some() { Some(certificate) } else { None };
    Ok(envoy::Connection {
        source: std::net::SocketAddr::new(ip, CLIENT_PORT),
        listener: std::net::SocketAddr::from(([127, 0, 0, 1], spec.destination_port())),
        tls,
        sni: spec.sni.clone(),
        node: NODE,
    })
}

/// The connection a connection case describes, as Envoy's network filter
/// chain shows it ([`envoy::connection`]): from `sourceIp` (default
/// 127.0.0.1) to `port`, with the case's server name, and the principal's
/// certificate when the gateway terminates mesh mTLS.
pub fn tcp_connection_for(spec: &ConnectionSpec) -> Result<warden_harness::Connection, SpecError> {
    let port = spec.port.ok_or(SpecError::NoPort)?;
    let ip: std::net::IpAddr = match &spec.source_ip {
        Some(ip) => ip.trim().parse().map_err(|_| SpecError::NotAnIp(ip.clone()))?,
        None => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    let certificate = spec.principal.as_ref().map(|p| client_certificate(&p.uris()));
    Ok(envoy::connection(&envoy::TcpConnection {
        source: std::net::SocketAddr::new(ip, CLIENT_PORT),
        listener: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        sni: spec.sni.clone(),
        certificate,
        data: spec.data.clone().unwrap_or_else(|| "hello".into()).into_bytes(),
    }))
}

/// A client certificate with these URI SANs, as the test certificates
/// are made.
fn client_certificate(uris: &[String]) -> envoy::ClientCertificate {
    let first = uris.first().cloned().unwrap_or_default();
    let uris: Vec<&str> = uris.iter().map(String::as_str).collect();
    envoy::ClientCertificate {
        pem: warden_engine::identity::x509::test_certificate_pem(&uris, &[], &first),
        subject: format!("CN={first}"),
    }
}

/// What a case sends, once at the gateway: [`request_for`] or
/// [`tcp_connection_for`]. A connection case may expect only a decision
/// and what its record holds (policy, reason, service, dryRun, audit).
pub fn incoming_for(case: &Case, hcm: &envoy::Hcm) -> Result<Incoming, SpecError> {
    match case.sent()? {
        Sent::Request(spec) => request_for(&spec, hcm).map(Incoming::Request),
        Sent::Connection(spec) => {
            let e = &case.expect;
            for (given, field) in [
                (e.status.is_some(), "status"),
                (e.findings.is_some(), "findings"),
                (e.forwarded_path.is_some(), "forwardedPath"),
                (e.forwarded_body.is_some(), "forwardedBody"),
            ] {
                if given {
                    return Err(SpecError::NotForConnections(field));
                }
            }
            Ok(Incoming::Connection(tcp_connection_for(&spec)?))
        }
    }
}

/// The request a case describes, as Envoy (with `hcm`) hands it to the
/// filter; see [`wire_for`], [`connection_for`] and [`envoy::request`].
pub fn request_for(spec: &RequestSpec, hcm: &envoy::Hcm) -> Result<Arrival, SpecError> {
    let wire = wire_for(spec)?;
    let connection = connection_for(spec)?;
    Ok(match envoy::request(&wire, &connection, hcm) {
        Ok(request) => Arrival::Filter(request),
        Err(refused) => Arrival::Refused(refused),
    })
}

/// The policy files a test file names: one, or a list (Istio YAML split
/// over files), resolved against the test file's directory.
pub fn policy_paths(tests: &testfile::TestFile, test_file: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let paths = tests.policy.paths(test_file);
    let problem = match (&tests.policy, paths.is_empty()) {
        (_, false) => return Ok(paths),
        (PolicyRef::Many(_), true) => "an empty list: name the policy file(s)",
        (PolicyRef::One(_), true) => "names no file",
    };
    let text = std::fs::read_to_string(test_file).unwrap_or_default();
    Err(LoadError::new(test_file, problem)
        .at_line(warden_config::locate::line_of(&text, 0, "policy"))
        .at_field("policy"))
}

/// Loads the policy files a test file (or a command) names and compiles
/// the result natively (the native policy feeds coverage); see
/// [`warden_config::load_policy`].
pub fn load_policy(paths: &[PathBuf]) -> Result<warden_config::Loaded, PolicyLoadError> {
    warden_config::load_policy(paths)
}

/// A policy that could not be loaded, as the commands that run one say it:
/// `file:line: invalid policy: field: problem` for a policy that does not
/// compile.
pub fn policy_error(e: &PolicyLoadError) -> String {
    match e {
        PolicyLoadError::Unreadable(e) => e.to_string(),
        PolicyLoadError::Invalid(e) => format!("{}: invalid policy: {}", e.location(), e.message()),
    }
}

/// Explains a VM that did not start.
pub fn vm_error(err: &HostError, shown_policy: &str) -> String {
    match err {
        HostError::ConfigRejected(logs) => {
            let mut text = format!("{shown_policy}: the filter refused the policy");
            for l in logs {
                text.push_str(&format!("\n  [{}] {}", l.level, l.message));
            }
            text
        }
        other => format!("{shown_policy}: {other}"),
    }
}

/// Runs one test file. Input errors (unreadable file, invalid policy, a
/// request that cannot be built) end up in [`FileRun::result`].
pub fn run_file(host: &Host, file: &Path, options: &Options) -> FileRun {
    let mut run = FileRun {
        file: file.to_owned(),
        policy_file: None,
        policy_files: Vec::new(),
        policy: None,
        notes: Vec::new(),
        result: Ok(Vec::new()),
        filtered_out: 0,
    };
    let shown_file = crate::display::shown(file);
    let mut tests = match testfile::load(file) {
        Ok(t) => t,
        Err(e) => {
            run.result = Err(e.to_string());
            return run;
        }
    };
    let given = tests.tests.len();
    tests.tests.retain(|case| options.selects(&shown_file, &case.name));
    run.filtered_out = given - tests.tests.len();
    let policy_files = match policy_paths(&tests, file) {
        Ok(p) => p,
        Err(e) => {
            run.result = Err(e.to_string());
            return run;
        }
    };
    let shown_policy = shown_list(&policy_files);
    run.policy_file = policy_files.first().cloned();
    run.policy_files = policy_files.clone();
    let warden_config::Loaded { config, policy, notes } = match load_policy(&policy_files) {
        Ok(loaded) => loaded,
        Err(e) => {
            run.result = Err(policy_error(&e));
            return run;
        }
    };
    run.policy = Some(policy);
    run.notes = notes;
    if options.strict && run.notes.iter().any(warden_config::istio::Note::is_strict_error) {
        run.result = Err(format!("{shown_policy}: --strict: the notes above are errors"));
        return run;
    }
    let mut requests = Vec::with_capacity(tests.tests.len());
    for (i, case) in tests.tests.iter().enumerate() {
        match incoming_for(case, &tests.gateway) {
            Ok(r) => requests.push(r),
            Err(e) => {
                let within = match (&e, &case.connection) {
                    (SpecError::RequestOrConnection, _) => "",
                    (SpecError::NotForConnections(_), _) => "expect.",
                    (_, Some(_)) => "connection.",
                    (_, None) => "request.",
                };
                run.result = Err(format!("{shown_file}: tests[{i}] ({}): {within}{e}", case.name));
                return run;
            }
        }
    }
    run.result = run_cases(host, &config, &tests.tests, &requests, options).map_err(|e| vm_error(&e, &shown_policy));
    run
}

fn run_cases(
    host: &Host,
    config: &[u8],
    cases: &[Case],
    requests: &[Incoming],
    options: &Options,
) -> Result<Vec<CaseRun>, HostError> {
    // The HTTP filter and the network filter are two plugins in Envoy,
    // each with its VMs: connections get a VM of their own.
    let mut vm = None;
    let mut network_vm = None;
    let mut out = Vec::with_capacity(cases.len());
    for (case, arrival) in cases.iter().zip(requests) {
        let actual = match arrival {
            Incoming::Request(Arrival::Refused(refused)) => {
                Actual { decision: Some(Expected::Deny), status: u32::from(refused.status), ..Actual::default() }
            }
            Incoming::Request(Arrival::Filter(request)) => {
                let Some(vm) = live_vm(&mut vm, host, config, None, options)? else { continue };
                Actual::from_outcome(&vm.run(request))
            }
            Incoming::Connection(connection) => {
                let Some(vm) = live_vm(&mut network_vm, host, config, Some(NETWORK_ROOT_ID), options)? else {
                    continue;
                };
                Actual::from_connection(&vm.connect(connection))
            }
        };
        let mismatches = evaluate(&case.expect, &actual);
        let Ok(sent) = case.sent() else { continue };
        out.push(CaseRun { name: case.name.clone(), sent, expect: case.expect.clone(), actual, mismatches });
    }
    Ok(out)
}

/// The VM for the next case: a new one per case when isolating, and after
/// a fault (a VM that faulted is dead, as in Envoy; a new one means each
/// fault is reported once, by the case that caused it).
fn live_vm<'v>(
    slot: &'v mut Option<warden_harness::Vm>,
    host: &Host,
    config: &[u8],
    root_id: Option<&str>,
    options: &Options,
) -> Result<Option<&'v mut warden_harness::Vm>, HostError> {
    if options.isolate || slot.as_ref().is_none_or(|v| v.fault().is_some()) {
        *slot = Some(match root_id {
            Some(id) => host.vm_with_root_id(config, id)?,
            None => host.vm(config)?,
        });
    }
    Ok(slot.as_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> RequestSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn expect(yaml: &str) -> Expect {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn requests_are_built_as_envoy_sees_them() {
        let hcm = envoy::Hcm::default();
        let request = |yaml: &str| {
            request_for(&spec(yaml), &hcm)
                .map_err(|e| e.to_string())
                .and_then(|a| a.into_request().map_err(|r| r.to_string()))
        };
        let r = request(
            "{principal: cluster.local/ns/a/sa/b, method: POST, authority: h.org, path: /p, \
             headers: [[x-a, '1'], [X-A, ' 2 '], [user-agent, u1], [user-agent, u2]], bodyChunks: [ab, '', cd], \
             sourceIp: 10.0.0.7}",
        )
        .unwrap();
        assert_eq!(r.header_value(":method").as_deref(), Some("POST"));
        assert_eq!(r.header_value(":scheme").as_deref(), Some("https"), "over mTLS");
        let values = |name: &str| -> Vec<String> {
            r.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
        };
        assert_eq!(values("x-a"), ["1", "2"], "one entry per line, trimmed");
        assert_eq!(values("user-agent"), ["u1,u2"], "a header Envoy knows is joined");
        assert_eq!(values("transfer-encoding"), Vec::<String>::new(), "hop by hop");
        assert_eq!(r.body_chunks, vec![b"ab".to_vec(), b"cd".to_vec()]);
        let prop = |path: &[&str]| r.properties.iter().find(|(p, _)| p == path).map(|(_, v)| v.clone());
        assert_eq!(
            prop(&["connection", "uri_san_peer_certificate"]),
            Some(b"spiffe://cluster.local/ns/a/sa/b".to_vec())
        );
        assert!(prop(&["connection", "peer_certificate"]).is_some());
        assert_eq!(prop(&["source", "address"]), Some(b"10.0.0.7:40000".to_vec()));
        assert_eq!(prop(&["destination", "port"]), Some(80u64.to_le_bytes().to_vec()));

        let get = request("{authority: h.org}").unwrap();
        assert_eq!(get.header_value("content-length"), None);
        assert_eq!(get.header_value(":scheme").as_deref(), Some("http"));
        assert!(get.body_chunks.is_empty());
        let port = |yaml: &str| {
            let r = request(yaml).unwrap();
            r.properties.iter().find(|(p, _)| p == &["destination", "port"]).map(|(_, v)| v[0])
        };
        assert_eq!(port("{authority: 'h.org:81'}"), Some(81), "the authority's port");
        assert_eq!(port("{authority: h.org, scheme: https}"), Some(443u16.to_le_bytes()[0]));
        assert_eq!(port("{authority: 'h.org:81', port: 82}"), Some(82), "an explicit port wins");
        let binary = request("{authority: h.org, bodyBase64: 'AAEC /w=='}").unwrap();
        assert_eq!(binary.body_chunks, vec![vec![0, 1, 2, 255]]);
        // Envoy answers a lowercase method itself.
        assert!(request("{authority: h.org, method: get}").unwrap_err().starts_with("Envoy answers 400 itself"));

        assert!(request("{authority: h.org, body: a, bodyBase64: YQ==}").unwrap_err().contains("one of"));
        assert!(request("{authority: h.org, bodyBase64: '%%'}").unwrap_err().starts_with("bodyBase64"));
        assert!(request("{authority: h.org, sourceIp: x}").unwrap_err().starts_with("sourceIp"));
    }

    #[test]
    fn policy_lists_are_shown_short() {
        let paths = |ps: &[&str]| ps.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(shown_list(&paths(&["d/a.yaml"])), "d/a.yaml");
        assert_eq!(shown_list(&paths(&["d/a.yaml", "d/b.yaml"])), "d/{a.yaml, b.yaml}");
        assert_eq!(shown_list(&paths(&["a.yaml", "b.yaml"])), "{a.yaml, b.yaml}");
        assert_eq!(shown_list(&paths(&["d/a.yaml", "e/b.yaml"])), "d/a.yaml, e/b.yaml");
    }

    #[test]
    fn a_fault_is_a_failure_with_its_message() {
        let actual = Actual { fault: Some("the filter trapped: unreachable".into()), status: 503, ..Actual::default() };
        let m = evaluate(&expect("{decision: deny}"), &actual);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].field, Field::Fault);
        assert_eq!(m[0].to_string(), "the filter trapped: unreachable");
    }

    #[test]
    fn expectations_are_compared_field_by_field() {
        let actual = Actual {
            decision: Some(Expected::Allow),
            status: 200,
            record: Some(
                r#"{"decision":"allow","reason":"allow-policy","policy":"p","service":"s","findings":["b","a"],"dryRun":["d"],"audit":["a1","a2"]}"#
                    .into(),
            ),
            forwarded_path: Some("/x".into()),
            forwarded_body: Some(b"body".to_vec()),
            ..Actual::default()
        };
        let ok = expect(
            "{decision: allow, status: 200, policy: p, reason: allow-policy, service: s, findings: [a, b, a], \
             dryRun: [d], audit: [a2, a1], forwardedPath: /x, forwardedBody: body}",
        );
        assert!(evaluate(&ok, &actual).is_empty());
        let bad = expect(
            "{decision: deny, status: 403, policy: q, reason: deny-policy, service: t, findings: [], dryRun: [], \
             audit: [a1], forwardedPath: /y, forwardedBody: b}",
        );
        let fields: Vec<Field> = evaluate(&bad, &actual).iter().map(|m| m.field).collect();
        assert_eq!(
            fields,
            [
                Field::Decision,
                Field::Status,
                Field::Policy,
                Field::Reason,
                Field::Service,
                Field::Findings,
                Field::DryRun,
                Field::Audit,
                Field::ForwardedPath,
                Field::ForwardedBody
            ]
        );
    }
}
