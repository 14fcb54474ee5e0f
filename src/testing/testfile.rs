//! The `*.test.yaml` format: a policy and the requests it must
//! allow or refuse.
//!
//! ```yaml
//! policy: httpbin.yaml
//! tests:
//!   - name: others may only GET /get
//!     request: {principal: cluster.local/ns/default/sa/sleep, method: POST, authority: httpbin.org, path: /post}
//!     expect: {decision: deny, status: 403, policy: httpbin}
//!   - name: TLS passthrough to an unregistered host is closed
//!     connection: {sni: api.other.example, port: 443}
//!     expect: {decision: deny, reason: unregistered}
//! ```

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use warden_config::LoadError;

/// A whole test file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The policy file(s), relative to the test file.
    pub policy: PolicyRef,
    /// How the gateway's Envoy is set up, where it changes what the filter
    /// sees (default: an Istio egress gateway).
    #[serde(default)]
    pub gateway: crate::testing::envoy::Hcm,
    /// The cases, in order.
    pub tests: Vec<Case>,
}

/// `policy:` is one file or a list (e.g. Istio YAML split over files).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PolicyRef {
    /// `policy: httpbin.yaml`
    One(String),
    /// `policy: [serviceentry.yaml, authz.yaml]`
    Many(Vec<String>),
}

impl PolicyRef {
    /// The files, resolved against the test file's directory.
    pub fn paths(&self, test_file: &Path) -> Vec<PathBuf> {
        let dir = test_file.parent().unwrap_or(Path::new("."));
        match self {
            PolicyRef::One(p) => vec![dir.join(p)],
            PolicyRef::Many(ps) => ps.iter().map(|p| dir.join(p)).collect(),
        }
    }
}

/// One case: a request (the HTTP filter) or a connection (the network
/// filter), and what must happen to it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = case_rules)]
pub struct Case {
    /// Shown in the report.
    pub name: String,
    /// An HTTP request.
    #[serde(default)]
    pub request: Option<RequestSpec>,
    /// A connection, for the network filter (TLS passthrough, mesh mTLS
    /// terminated at the gateway).
    #[serde(default)]
    pub connection: Option<ConnectionSpec>,
    /// What must happen.
    pub expect: Expect,
}

/// The schema of a field that is given, and not `null` (serde reads a
/// `null` option as absent).
fn given(field: &str) -> serde_json::Value {
    serde_json::json!({"required": [field], "properties": {field: {"not": {"type": "null"}}}})
}

/// What [`Case::sent`] and the runner refuse, in the schema: exactly one of
/// `request` and `connection`; a connection expects a decision and a
/// policy only.
fn case_rules(schema: &mut schemars::Schema) {
    schema.insert("oneOf".into(), serde_json::json!([given("request"), given("connection")]));
    let not_for_connections: serde_json::Map<String, serde_json::Value> =
        NOT_FOR_CONNECTIONS.iter().map(|field| ((*field).to_owned(), serde_json::json!({"type": "null"}))).collect();
    schema.insert("if".into(), given("connection"));
    schema.insert("then".into(), serde_json::json!({"properties": {"expect": {"properties": not_for_connections}}}));
}

/// The expectations a connection cannot meet: it has no HTTP response, DLP
/// or forwarded request.
const NOT_FOR_CONNECTIONS: [&str; 4] = ["status", "findings", "forwardedPath", "forwardedBody"];

/// What the runner refuses of a request, in the schema: more than one of
/// `body`, `bodyChunks` and `bodyBase64`.
fn one_body(schema: &mut schemars::Schema) {
    let both = |a: &str, b: &str| serde_json::json!({"allOf": [given(a), given(b)]});
    let two = [both("body", "bodyChunks"), both("body", "bodyBase64"), both("bodyChunks", "bodyBase64")];
    schema.insert("not".into(), serde_json::json!({"anyOf": two}));
}

/// What a case sends: one of `request` and `connection`.
#[derive(Debug, Clone)]
pub enum Sent {
    /// An HTTP request.
    Request(Box<RequestSpec>),
    /// A connection.
    Connection(ConnectionSpec),
}

impl Case {
    /// The request or the connection; an error when the case gives both
    /// or neither.
    pub fn sent(&self) -> Result<Sent, SpecError> {
        match (&self.request, &self.connection) {
            (Some(r), None) => Ok(Sent::Request(Box::new(r.clone()))),
            (None, Some(c)) => Ok(Sent::Connection(c.clone())),
            _ => Err(SpecError::RequestOrConnection),
        }
    }
}

/// The connection of a case: what Envoy's network filter chain knows of a
/// connection to the gateway, and what the client sends first.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// The server name of the client's TLS ClientHello, as
    /// `tls_inspector` reads it; absent: no SNI (plain TCP, or TLS
    /// without it).
    #[serde(default)]
    pub sni: Option<String>,
    /// The destination (listener) port. Required: a connection has no
    /// authority to take one from.
    #[schemars(with = "u16")]
    pub port: Option<u16>,
    /// The peer certificate's URI SAN (`spiffe://` added if absent) when
    /// the gateway terminates mesh mTLS (Istio's `ISTIO_MUTUAL` egress
    /// gateway); absent: the gateway passes TLS through.
    #[serde(default)]
    pub principal: Option<Principal>,
    /// The downstream address.
    #[serde(default)]
    pub source_ip: Option<String>,
    /// What the client sends first (default `hello`: the bytes do not
    /// matter to Warden, only that some arrive).
    #[serde(default)]
    pub data: Option<String>,
}

/// The request of a case.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = one_body)]
pub struct RequestSpec {
    /// The peer certificate's URI SAN (`spiffe://` added if absent), or a
    /// list for a certificate with several.
    #[serde(default)]
    pub principal: Option<Principal>,
    /// Default `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Required.
    #[schemars(length(min = 1))]
    pub authority: String,
    /// Default `/`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Default `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// A map, or a list of `[name, value]` pairs (for repeated headers).
    #[serde(default)]
    pub headers: Headers,
    /// The body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// The body in chunks, sent one after the other.
    #[serde(default)]
    pub body_chunks: Option<Vec<String>>,
    /// The body, base64-encoded (binary bodies).
    #[serde(default)]
    pub body_base64: Option<String>,
    /// Trailers: header lines sent after the body (a map, or a list of
    /// `[name, value]` pairs). The body is then sent chunked.
    #[serde(default)]
    pub trailers: Headers,
    /// The downstream address.
    #[serde(default)]
    pub source_ip: Option<String>,
    /// The destination (listener) port the connection was made to.
    /// Default: the authority's port, else 443 for `https`, else 80 —
    /// where a workload's call to that authority lands.
    #[serde(default)]
    pub port: Option<u16>,
    /// The server name (SNI) of the TLS connection the request comes on,
    /// where the gateway terminates the client's TLS; implies TLS.
    #[serde(default)]
    pub sni: Option<String>,
}

/// One principal, or several (a certificate with several URI SANs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Principal {
    /// `principal: cluster.local/ns/a/sa/b`
    One(String),
    /// `principal: [cluster.local/ns/a/sa/b, spiffe://other/ns/c/sa/d]`
    Many(Vec<String>),
}

impl Principal {
    /// The URI SANs: `spiffe://` added to an entry without a scheme; one
    /// with another scheme (`https://...`) is kept as written.
    pub fn uris(&self) -> Vec<String> {
        let all: &[String] = match self {
            Principal::One(p) => std::slice::from_ref(p),
            Principal::Many(list) => list,
        };
        all.iter().map(|p| if p.contains("://") { p.clone() } else { warden_engine::request::spiffe_uri(p) }).collect()
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::One(p) => f.write_str(p),
            Principal::Many(list) => f.write_str(&list.join(", ")),
        }
    }
}

impl serde::Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Principal::One(p) => s.serialize_str(p),
            Principal::Many(list) => list.serialize(s),
        }
    }
}

impl RequestSpec {
    /// The principal as a peer certificate URI SAN (the first, if several).
    pub fn peer_uri_san(&self) -> Option<String> {
        self.principal.as_ref().and_then(|p| p.uris().into_iter().next())
    }

    /// The destination (listener) port: `port`, else the authority's,
    /// else 443 for `https`, else 80.
    pub fn destination_port(&self) -> u16 {
        self.port
            .or_else(|| warden_engine::normalize::split_authority(&self.authority).ok().and_then(|(_, port)| port))
            .unwrap_or(if self.scheme == "https" || self.sni.is_some() { 443 } else { 80 })
    }
}

fn default_method() -> String {
    "GET".into()
}

fn default_path() -> String {
    "/".into()
}

fn default_scheme() -> String {
    "http".into()
}

/// Request headers in either form.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Headers {
    /// `{content-type: application/json}`
    Map(BTreeMap<String, String>),
    /// `[[x-a, "1"], [x-a, "2"]]`
    Pairs(Vec<(String, String)>),
}

impl Default for Headers {
    fn default() -> Self {
        Headers::Pairs(Vec::new())
    }
}

impl Headers {
    /// Name/value pairs in order (maps in name order).
    pub fn pairs(&self) -> Vec<(String, String)> {
        match self {
            Headers::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Headers::Pairs(p) => p.clone(),
        }
    }
}

/// The expected outcome.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// Required.
    pub decision: Expected,
    /// The response status (allowed requests: the upstream's status).
    #[serde(default)]
    pub status: Option<u16>,
    /// The deciding authorization policy.
    #[serde(default)]
    pub policy: Option<String>,
    /// The exact set of DLP detector ids.
    #[serde(default)]
    pub findings: Option<Vec<String>>,
    /// The decision record's `reason` (`allow-policy`, `deny-policy`,
    /// `no-allow-match`, `unregistered`, `dlp-finding`, ...).
    #[serde(default)]
    pub reason: Option<String>,
    /// The decision record's `service`: the registry entry the request
    /// or connection matched.
    #[serde(default)]
    pub service: Option<String>,
    /// The exact set of dry-run policies in the record's `dryRun` (those
    /// that would have refused).
    #[serde(default)]
    pub dry_run: Option<Vec<String>>,
    /// The exact set of policies in the record's `audit` (AUDIT policies
    /// that matched, DLP policies that only recorded).
    #[serde(default)]
    pub audit: Option<Vec<String>>,
    /// The path the upstream received (normalized, with query). A Warden
    /// addition for normalization cases.
    #[serde(default)]
    pub forwarded_path: Option<String>,
    /// The body the upstream received (REDACT).
    #[serde(default)]
    pub forwarded_body: Option<String>,
}

/// `allow` or `deny`: every refusal (denied, unregistered, bad request,
/// DLP) is a `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    /// The request reaches the upstream.
    Allow,
    /// The request is refused.
    Deny,
}

/// Reads and parses a test file; an error names the file, the line and
/// the field.
pub fn load(path: &Path) -> Result<TestFile, LoadError> {
    let text = warden_config::input::read(path)?;
    serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(&text)).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = (inner.location().map(|l| l.line()), inner.location().map(|l| l.column()));
        LoadError::new(path, bare_message(&inner)).at_line(line).at_column(column).at_field(if field == "." {
            String::new()
        } else {
            field
        })
    })
}

/// A YAML reader's message without the path and position it adds (the
/// error carries both apart).
fn bare_message(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    let text = match e.location() {
        Some(l) => text.strip_suffix(&format!(" at line {} column {}", l.line(), l.column())).unwrap_or(&text),
        None => &text,
    };
    // `tests[0].expect: unknown field ...`: a path has no spaces.
    match text.split_once(": ") {
        Some((path, rest)) if !path.is_empty() && !path.contains(char::is_whitespace) => rest.to_owned(),
        _ => text.to_owned(),
    }
}

/// A case's `request` that cannot be sent as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// No `authority`.
    NoAuthority,
    /// More than one of `body`, `bodyChunks` and `bodyBase64`.
    TwoBodies,
    /// `bodyBase64` that does not decode: why.
    NotBase64(String),
    /// A `sourceIp` that is not an IP address: the value.
    NotAnIp(String),
    /// A case with both `request` and `connection`, or neither.
    RequestOrConnection,
    /// A connection without `port`.
    NoPort,
    /// An expectation a connection cannot meet (`status`, `findings`,
    /// `forwardedPath`, `forwardedBody`): its name.
    NotForConnections(&'static str),
    /// `trailers` where they cannot be sent: on a `CONNECT`, or with a
    /// `content-length` header (trailers follow a chunked body only).
    NoTrailersHere(&'static str),
}

impl SpecError {
    /// The field of `request` at fault.
    pub fn field(&self) -> &'static str {
        match self {
            SpecError::NoAuthority => "authority",
            SpecError::TwoBodies => "body, bodyChunks and bodyBase64",
            SpecError::NotBase64(_) => "bodyBase64",
            SpecError::NotAnIp(_) => "sourceIp",
            SpecError::RequestOrConnection => "request and connection",
            SpecError::NoPort => "port",
            SpecError::NotForConnections(field) => field,
            SpecError::NoTrailersHere(_) => "trailers",
        }
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.field())?;
        match self {
            SpecError::NoAuthority => f.write_str("required"),
            SpecError::TwoBodies => f.write_str("give one of them"),
            SpecError::NotBase64(why) => write!(f, "not valid base64: {why}"),
            SpecError::NotAnIp(value) => write!(f, "'{value}' is not an IP address"),
            SpecError::RequestOrConnection => f.write_str("give exactly one of them"),
            SpecError::NoPort => f.write_str("required for a connection"),
            SpecError::NotForConnections(_) => {
                f.write_str("a connection has no HTTP response, DLP or forwarded request to compare")
            }
            SpecError::NoTrailersHere(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SpecError {}

/// Every `*.test.yaml` under `root`, sorted.
pub fn discover(root: &Path) -> Vec<PathBuf> {
    let hidden_or_build = |e: &walkdir::DirEntry| {
        let name = e.file_name().to_string_lossy();
        e.depth() > 0 && e.file_type().is_dir() && (name.starts_with('.') || name == "target")
    };
    // A file given as the root is taken whatever its name.
    let wanted = |e: &walkdir::DirEntry| {
        !e.file_type().is_dir() && (e.depth() == 0 || e.file_name().to_string_lossy().ends_with(".test.yaml"))
    };
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| !hidden_or_build(e))
        .flatten()
        .filter(wanted)
        .map(walkdir::DirEntry::into_path)
        .collect();
    found.sort();
    found
}
