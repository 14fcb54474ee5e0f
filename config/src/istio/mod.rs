//! Istio input: `ServiceEntry`, `AuthorizationPolicy` and the
//! mesh config's `outboundTrafficPolicy`, converted into a `warden/v1`
//! policy, which then goes through the normal compile path. `warden import`
//! prints the result; `warden test`, `check`, `explain`, `compile` and
//! `wasmplugin` take Istio YAML wherever they take a policy file, and a test
//! file's `policy:` may list several Istio files.
//!
//! ```
//! use warden_config::istio::{self, Options, Source};
//!
//! let yaml = r#"
//! apiVersion: networking.istio.io/v1
//! kind: ServiceEntry
//! metadata: {name: httpbin, namespace: istio-egress}
//! spec:
//!   hosts: [httpbin.org]
//!   ports: [{number: 80, name: http, protocol: HTTP}]
//!   resolution: DNS
//! ---
//! apiVersion: security.istio.io/v1
//! kind: AuthorizationPolicy
//! metadata: {name: httpbin, namespace: istio-egress}
//! spec:
//!   targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin}]
//!   rules:
//!     - to: [{operation: {methods: [GET], paths: [/get]}}]
//! "#;
//! let import = istio::import(&[Source::new("istio.yaml", yaml)], &Options::default()).unwrap();
//! let policy = import.document();
//! assert_eq!(policy["services"][0]["name"], "istio-egress/httpbin");
//! assert_eq!(policy["authorization"][0]["services"][0], "istio-egress/httpbin");
//! assert_eq!(policy["outboundTrafficPolicy"], "REGISTRY_ONLY");
//! ```
//!
//! The mapping, and every place where Warden decides differently from
//! Istio, is documented in `docs/ISTIO.md`. In short: a ServiceEntry
//! becomes a service named `<namespace>/<name>` with its hosts and its port
//! `number`s; an AuthorizationPolicy becomes a policy named
//! `<namespace>/<name>`, scoped to the ServiceEntries its `targetRefs`
//! name (unscoped for a Gateway target, a `selector` or no target); the
//! `istio.io/dry-run` annotation becomes `dryRun`. A field Warden cannot
//! honour is an error naming the resource and the field; a field that does
//! not change which requests may leave is accepted, with a note when it is
//! ignored. Other kinds are skipped with a note.

mod convert;
pub mod gateway;
mod resources;
#[cfg(test)]
mod tests;
mod tls;

pub use convert::DEFAULT_NAMESPACE;

use crate::error::{FieldError, LoadError};
use convert::{ListenerPorts, Meta};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use warden_engine::document::{AuthzPolicyDoc, OutboundTrafficPolicy, PathNormalization, ServiceDoc};
use warden_engine::PolicyError;

/// The policy's name when neither `--name` nor a `warden/v1` document in
/// the input gives one.
pub const DEFAULT_NAME: &str = "istio";

/// The filter-state key an ambient waypoint keeps the caller's principal in.
pub const PEER_PRINCIPAL_FILTER_STATE: &str = "io.istio.peer_principal";

/// One input file: its path (for messages) and its text.
#[derive(Debug, Clone)]
pub struct Source {
    /// Shown in notes and errors.
    pub file: PathBuf,
    /// Multi-document YAML (or JSON).
    pub text: String,
}

impl Source {
    /// A source from a path and its text.
    pub fn new(file: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        Source { file: file.into(), text: text.into() }
    }

    /// Reads a file, bounded as [`crate::input::read`] says.
    pub fn read(path: &Path) -> Result<Source, LoadError> {
        crate::input::read(path).map(|text| Source::new(path, text))
    }
}

/// What the command line may override.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The policy's name (default: the `warden/v1` document's, else
    /// [`DEFAULT_NAME`]).
    pub name: Option<String>,
    /// Wins over the mesh config in the input and the default
    /// (`REGISTRY_ONLY`).
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

/// Something the importer skipped or read differently from how it is
/// written, worth telling the user (never fatal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file it concerns, if one.
    pub file: Option<PathBuf>,
    /// What.
    pub message: String,
    /// How much it matters.
    pub severity: Severity,
}

/// How much a [`Note`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A resource that is not policy (routing, TLS settings, the gateway
    /// itself, workloads), skipped: shown, never an error.
    Info,
    /// Input read differently from how it is written, or skipped: worth
    /// knowing.
    Note,
    /// Input that will likely misbehave where it is deployed.
    Warning,
}

impl Note {
    /// A note about `file`.
    pub fn new(file: Option<&Path>, message: impl Into<String>) -> Note {
        Note { file: file.map(Path::to_owned), message: message.into(), severity: Severity::Note }
    }

    /// A warning about `file`.
    pub fn warning(file: Option<&Path>, message: impl Into<String>) -> Note {
        Note { severity: Severity::Warning, ..Note::new(file, message) }
    }

    /// Whether `--strict` makes it an error: anything but a skipped
    /// resource that is not policy.
    pub fn is_strict_error(&self) -> bool {
        self.severity >= Severity::Note
    }

    /// `note` or `warning`, as a line of output starts.
    pub fn label(&self) -> &'static str {
        match self.severity {
            Severity::Info | Severity::Note => "note",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: {}", crate::display::shown(file), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Where an entry of the converted policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The entry: `services[0]`, `authorization[1]`.
    pub field: String,
    /// The resource: `ServiceEntry istio-egress/httpbin`.
    pub resource: String,
    /// The file it is in.
    pub file: PathBuf,
    /// Which entry of the input it is.
    entry: usize,
}

/// A converted policy, valid (it compiled), with the notes made on the way.
#[derive(Debug, Clone)]
pub struct Import {
    policy: Converted,
    /// What was skipped or read differently, in input order.
    pub notes: Vec<Note>,
    /// Where each service and authorization policy came from.
    pub origins: Vec<Origin>,
}

impl Import {
    /// The `warden/v1` document.
    pub fn document(&self) -> Value {
        serde_json::to_value(&self.policy).unwrap_or_default()
    }

    /// The filter configuration (the document as JSON bytes).
    pub fn config(&self) -> Vec<u8> {
        serde_json::to_vec(&self.policy).unwrap_or_default()
    }

    /// The document as YAML, after a comment naming the resource each
    /// service and authorization policy came from.
    pub fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        let body = serde_yaml_ng::to_string(&self.policy)?;
        let mut text = String::from(match self.policy {
            Converted::Istio(_) => "# warden/v1 policy converted by `warden import` from Istio resources\n",
            Converted::Plugin(_) => "# warden/v1 policy: the pluginConfig of the WasmPlugin that deploys Warden\n",
        });
        let width = self.origins.iter().map(|o| o.field.len()).max().unwrap_or(0);
        for o in &self.origins {
            text.push_str(&format!("#   {:width$}  {} ({})\n", o.field, o.resource, crate::display::shown(&o.file)));
        }
        text.push_str(&body);
        Ok(text)
    }

    /// The number of services and of authorization policies.
    pub fn counts(&self) -> (usize, usize) {
        match &self.policy {
            Converted::Istio(p) => (p.services.len(), p.authorization.len()),
            Converted::Plugin(v) => {
                let len = |k: &str| v.get(k).and_then(Value::as_array).map_or(0, Vec::len);
                (len("services"), len("authorization"))
            }
        }
    }
}

// ------------------------------------------------------------ the output

/// The policy an import made: converted from Istio resources, or the
/// `pluginConfig` of the WasmPlugin that deploys Warden.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Converted {
    Istio(Box<PolicyOut>),
    Plugin(Value),
}

/// The converted policy, in the order a reader expects the fields.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyOut {
    name: String,
    outbound_traffic_policy: OutboundTrafficPolicy,
    identity: Value,
    path_normalization: PathNormalization,
    /// From the mesh config.
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_domain_aliases: Option<Vec<String>>,
    /// The other settings of a `warden/v1` document in the input
    /// (gatewayPorts, responses, dlp, ...), passed through.
    #[serde(flatten)]
    settings: Map<String, Value>,
    services: Vec<ServiceDoc>,
    authorization: Vec<AuthzPolicyDoc>,
}

// ------------------------------------------------------------ reading

/// What one YAML document is.
enum Kind {
    ServiceEntry,
    AuthorizationPolicy,
    /// A Gateway (`networking.istio.io`): read for its TLS servers.
    Gateway,
    /// A VirtualService: read for its `tls` routes.
    VirtualService,
    /// A mesh config, and where in the document it is.
    Mesh(Value, MeshAt),
    /// A `warden/v1` document (bare or unwrapped from its envelope).
    Warden(Value),
    /// A WasmPlugin that deploys Warden: its `spec.pluginConfig` is a
    /// `warden/v1` policy.
    Plugin,
    /// Anything else: skipped, with why.
    Skip(String),
}

/// Where a mesh config is in its document.
#[derive(Debug, Clone, Copy)]
enum MeshAt {
    /// The document itself.
    Bare,
    /// `meshConfig` (Helm values).
    Helm,
    /// `spec.meshConfig` (an IstioOperator).
    Operator,
    /// The string at `data.mesh` (the `istio` ConfigMap).
    ConfigMap,
}

impl MeshAt {
    /// The path, in the document, of a field of the mesh config (inside the
    /// ConfigMap's string, the string itself).
    fn path(self, field: &str) -> String {
        let join = |base: &str| if field.is_empty() { base.to_owned() } else { format!("{base}.{field}") };
        match self {
            MeshAt::Bare => field.to_owned(),
            MeshAt::Helm => join("meshConfig"),
            MeshAt::Operator => join("spec.meshConfig"),
            MeshAt::ConfigMap => "data.mesh".to_owned(),
        }
    }
}

/// One resource of the input: where it is, and what.
struct Entry<'a> {
    source: &'a Source,
    /// Which YAML document of the file (0-based).
    document: usize,
    /// Which item of a `kind: List`, if it is one.
    item: Option<usize>,
    value: Value,
    kind: Kind,
}

impl Entry<'_> {
    fn file(&self) -> &Path {
        &self.source.file
    }

    /// The line of a field of this resource in its file.
    fn line(&self, field: &str) -> Option<usize> {
        let path = match self.item {
            Some(i) if field.is_empty() => format!("items[{i}]"),
            Some(i) => format!("items[{i}].{field}"),
            None => field.to_owned(),
        };
        crate::locate::line_of(&self.source.text, self.document, &path)
    }

    /// An error at a field of this resource.
    fn error(&self, resource: impl Into<String>, e: FieldError) -> LoadError {
        LoadError::new(self.file(), e.problem).in_resource(resource).at_line(self.line(&e.path)).at_field(e.path)
    }

    /// The line and column in the file of a position (1-based) in the
    /// `data.mesh` string of the istio ConfigMap `value`, when the string is
    /// written as a literal block (`mesh: |`), where each line of the string
    /// is a line of the file: its line `k` is the `k`-th after the key's,
    /// indented by the block's indentation.
    fn in_mesh_string(&self, line: usize, column: usize) -> Option<(usize, usize)> {
        let key = self.line("data.mesh")?;
        let mut lines = self.source.text.lines().skip(key.checked_sub(1)?);
        let after_key = lines.next()?.split_once("mesh:")?.1.trim_start();
        if !after_key.starts_with('|') {
            return None;
        }
        let indent = lines.find(|l| !l.trim().is_empty()).map_or(0, |l| l.len() - l.trim_start_matches(' ').len());
        Some((key + line, indent + column))
    }

    /// The line in the file of a field of the mesh config in the ConfigMap
    /// `value`'s `data.mesh` string (see [`Entry::in_mesh_string`]).
    fn mesh_string_line(&self, value: &Value, field: &str) -> Option<usize> {
        let text = value.get("data")?.get("mesh")?.as_str()?;
        let line = crate::locate::line_of(text, 0, field)?;
        self.in_mesh_string(line, 1).map(|(line, _)| line)
    }
}

/// The YAML documents of a text, empty ones left out and the items of a
/// `kind: List` one by one: (document, item, value).
/// A text without one (empty, or only comments and `---`) is an error: it
/// would make a policy of nothing, which refuses every request.
fn documents(source: &Source) -> Result<Vec<(usize, Option<usize>, Value)>, LoadError> {
    let mut out = Vec::new();
    let mut seen = false;
    for (i, de) in serde_yaml_ng::Deserializer::from_str(&source.text).enumerate() {
        let document = || format!("document {}", i + 1);
        // A file of one document needs no "document 1".
        let value = Value::deserialize(de).map_err(|e| match i {
            0 => crate::yaml_error(&source.file, &e),
            _ => crate::yaml_error(&source.file, &e).in_resource(document()),
        })?;
        seen |= !value.is_null();
        match value {
            Value::Null => {}
            Value::Object(mut map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                match map.remove("items") {
                    Some(Value::Array(items)) => out.extend(
                        items.into_iter().enumerate().filter(|(_, v)| !v.is_null()).map(|(j, v)| (i, Some(j), v)),
                    ),
                    _ => {
                        return Err(LoadError::new(&source.file, "a List needs items")
                            .in_resource(document())
                            .at_line(crate::locate::line_of(&source.text, i, "kind")))
                    }
                }
            }
            other => out.push((i, None, other)),
        }
    }
    if !seen {
        return Err(LoadError::new(
            &source.file,
            "no YAML document: the file is empty, or holds only comments and `---`; Warden needs a policy",
        ));
    }
    Ok(out)
}

/// The top-level keys of Istio's installation settings: Helm values
/// (`global`, `pilot`, ...) and the `spec` of an IstioOperator
/// (`components`, `values`, ...), none of them a `warden/v1` field.
const HELM_KEYS: [&str; 8] =
    ["global", "pilot", "gateways", "sidecarInjectorWebhook", "istio_cni", "istiodRemote", "telemetry", "ztunnel"];
const OPERATOR_KEYS: [&str; 5] = ["components", "values", "profile", "hub", "unvalidatedValues"];

/// What a mapping without `apiVersion` is when it holds Istio's
/// installation settings rather than a policy.
fn install_settings(map: &Map<String, Value>) -> Option<&'static str> {
    let has = |keys: &[&str]| keys.iter().any(|k| map.contains_key(*k));
    let spec_has = |keys: &[&str]| {
        map.get("spec").and_then(Value::as_object).is_some_and(|s| keys.iter().any(|k| s.contains_key(*k)))
    };
    if has(&HELM_KEYS) {
        Some(HELM_VALUES)
    } else if has(&OPERATOR_KEYS) || spec_has(&OPERATOR_KEYS) {
        Some(OPERATOR_FRAGMENT)
    } else {
        None
    }
}

const HELM_VALUES: &str = "Helm values for installing Istio, not policy";
const OPERATOR_FRAGMENT: &str = "part of an IstioOperator (Istio's installation settings), not policy";

/// Whether a WasmPlugin deploys Warden (its `pluginConfig` is a `warden/v1`
/// policy): named `warden…`, with Warden's root id, a module url naming
/// Warden, or a `pluginConfig` with a policy's own fields.
fn is_wardens_plugin(map: &Map<String, Value>) -> bool {
    let spec = map.get("spec");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
    let name = text(map.get("metadata").and_then(|m| m.get("name")));
    let plugin_name = text(spec.and_then(|s| s.get("pluginName")));
    let url = text(spec.and_then(|s| s.get("url")));
    let config = spec.and_then(|s| s.get("pluginConfig")).and_then(Value::as_object);
    name.starts_with("warden")
        || plugin_name.starts_with("warden")
        || url.rsplit('/').next().is_some_and(|last| last.contains("warden"))
        || config.is_some_and(|c| {
            ["services", "authorization", "dlp", "outboundTrafficPolicy"].iter().any(|k| c.contains_key(*k))
        })
}

/// Whether a mapping without `apiVersion` is a mesh config rather than a
/// bare `warden/v1` document (which writes these settings as strings).
fn is_mesh_config(map: &Map<String, Value>) -> bool {
    map.get("meshConfig").is_some_and(Value::is_object)
        || map.get("outboundTrafficPolicy").is_some_and(Value::is_object)
        || map.get("pathNormalization").is_some_and(Value::is_object)
}

fn classify(value: &Value) -> Result<Kind, FieldError> {
    let Value::Object(map) = value else {
        return Err(FieldError::whole("not a mapping: expected a Kubernetes resource"));
    };
    let api_version = match map.get("apiVersion") {
        None => {
            if let Some(mesh) = map.get("meshConfig").filter(|m| m.is_object()) {
                return Ok(Kind::Mesh(mesh.clone(), MeshAt::Helm));
            }
            if let Some(mesh) = map.get("spec").and_then(|s| s.get("meshConfig")).filter(|m| m.is_object()) {
                return Ok(Kind::Mesh(mesh.clone(), MeshAt::Operator));
            }
            if is_mesh_config(map) {
                return Ok(Kind::Mesh(value.clone(), MeshAt::Bare));
            }
            if let Some(install) = install_settings(map) {
                return Ok(Kind::Skip(install.into()));
            }
            return Ok(Kind::Warden(value.clone()));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(FieldError::at("apiVersion", format!("expected a string, found {other}"))),
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let unsupported_version = |versions: &str| {
        Err(FieldError::at("apiVersion", format!("{api_version}: Warden reads {kind} of {group} {versions}")))
    };
    Ok(match (group, kind) {
        ("warden", _) => Kind::Warden(crate::envelope::unwrap_envelope(value.clone())?),
        ("networking.istio.io", "ServiceEntry") => match version {
            "v1" | "v1beta1" | "v1alpha3" => Kind::ServiceEntry,
            _ => return unsupported_version("v1, v1beta1, v1alpha3"),
        },
        ("networking.istio.io", "Gateway") if matches!(version, "v1" | "v1beta1" | "v1alpha3") => Kind::Gateway,
        ("networking.istio.io", "VirtualService") if matches!(version, "v1" | "v1beta1" | "v1alpha3") => {
            Kind::VirtualService
        }
        ("security.istio.io", "AuthorizationPolicy") => match version {
            "v1" | "v1beta1" => Kind::AuthorizationPolicy,
            _ => return unsupported_version("v1, v1beta1"),
        },
        ("extensions.istio.io", "WasmPlugin") if is_wardens_plugin(map) => Kind::Plugin,
        ("install.istio.io", "IstioOperator") => {
            match map.get("spec").and_then(|s| s.get("meshConfig")).filter(|m| m.is_object()) {
                Some(mesh) => Kind::Mesh(mesh.clone(), MeshAt::Operator),
                None => Kind::Skip("no spec.meshConfig".into()),
            }
        }
        ("", "ConfigMap") => match map.get("data").and_then(|d| d.get("mesh")) {
            Some(Value::String(text)) => {
                let mesh: Value = serde_yaml_ng::from_str(text).map_err(|e| {
                    let problem = e.to_string();
                    let problem = match e.location() {
                        Some(l) => problem.replacen(&format!(" at line {} column {}", l.line(), l.column()), "", 1),
                        None => problem,
                    };
                    FieldError::at("data.mesh", format!("not valid YAML: {problem}"))
                })?;
                match mesh {
                    Value::Object(_) => Kind::Mesh(mesh, MeshAt::ConfigMap),
                    Value::Null => Kind::Mesh(json!({}), MeshAt::ConfigMap),
                    _ => return Err(FieldError::at("data.mesh", "expected the mesh config, a mapping")),
                }
            }
            Some(_) => return Err(FieldError::at("data.mesh", "expected the mesh config as a string")),
            None => Kind::Skip("not the mesh config (no data.mesh)".into()),
        },
        (_, kind) => Kind::Skip(skip_reason(group, kind).into()),
    })
}

/// How much skipping a resource matters: routing, TLS and mTLS settings,
/// the gateway itself and Kubernetes' own workload kinds are not policy
/// ([`Severity::Info`]); anything else skipped (a Sidecar's egress rules,
/// JWT rules, kinds from other tools) may be ([`Severity::Note`]).
fn skip_severity(resource: &Value) -> Severity {
    let text = |k: &str| resource.get(k).and_then(Value::as_str).unwrap_or_default();
    let group = text("apiVersion").rsplit_once('/').map_or("", |(group, _)| group);
    match (group, text("kind")) {
        ("networking.istio.io", "Gateway" | "VirtualService" | "DestinationRule")
        | ("gateway.networking.k8s.io", _)
        | ("security.istio.io", "PeerAuthentication")
        | ("extensions.istio.io", "WasmPlugin")
        | ("" | "apps" | "policy" | "autoscaling" | "rbac.authorization.k8s.io", _) => Severity::Info,
        _ => Severity::Note,
    }
}

fn skip_reason(group: &str, kind: &str) -> &'static str {
    match (group, kind) {
        ("networking.istio.io", "Gateway" | "VirtualService" | "DestinationRule") => "routing and TLS, not policy",
        ("networking.istio.io", "Sidecar") => "enforced by each workload's sidecar, not in the gateway",
        ("gateway.networking.k8s.io", "Gateway") => "the gateway or waypoint itself: Warden runs in it",
        ("gateway.networking.k8s.io", _) => "routing, not policy",
        ("security.istio.io", "PeerAuthentication") => "mTLS settings: Warden reads the identity mTLS gives",
        ("security.istio.io", "RequestAuthentication") => {
            "JWT validation: Warden does not read JWTs (requestPrincipals are refused)"
        }
        ("extensions.istio.io", "WasmPlugin") => "the deployment of filters such as Warden itself",
        _ => "not a kind Warden reads",
    }
}

/// Whether the text is Istio input rather than one policy (a `warden/v1`
/// document, or the WasmPlugin that deploys one): see [`single_policy`].
/// Text that does not parse is not Istio input (the `warden/v1` reader
/// reports the error).
pub fn is_istio(text: &str) -> bool {
    matches!(single_policy(&Source::new("", text)), Ok(None))
}

/// A file that holds one policy, and where in the file it is.
#[derive(Debug, Clone)]
pub struct SinglePolicy {
    /// The YAML document (0-based) it is in.
    pub document: usize,
    /// Where in that document the `warden/v1` document is: `""` (bare),
    /// `spec` (the envelope), `spec.pluginConfig` (a WasmPlugin).
    pub at: &'static str,
    /// The resource it is in, when that is not a `warden/v1` envelope:
    /// `WasmPlugin istio-system/warden`.
    pub resource: Option<String>,
    /// The `warden/v1` document (not yet validated).
    pub policy: Value,
    /// What is worth a warning about where it is deployed.
    pub notes: Vec<Note>,
}

/// The policy of a file that holds one: a `warden/v1` document, bare or in
/// its envelope, or WasmPlugins that deploy Warden with one same
/// `pluginConfig` (`warden wasmplugin` with and without `--type network`);
/// `None` for Istio input. Fails on text that is not YAML, holds no
/// document, or an envelope of another kind.
pub fn single_policy(source: &Source) -> Result<Option<SinglePolicy>, LoadError> {
    let docs = documents(source)?;
    let at_field = |document: usize, e: FieldError| {
        LoadError::new(&source.file, e.problem)
            .at_line(crate::locate::line_of(&source.text, document, &e.path))
            .at_field(e.path)
    };
    if let [(document, None, value)] = docs.as_slice() {
        let enveloped = value.get("apiVersion").and_then(Value::as_str).is_some_and(|v| v.starts_with("warden/"));
        match classify(value) {
            Ok(Kind::Warden(policy)) => {
                let at = if enveloped { "spec" } else { "" };
                return Ok(Some(SinglePolicy { document: *document, at, resource: None, policy, notes: Vec::new() }));
            }
            Err(e) if enveloped => return Err(at_field(*document, e)),
            _ => {}
        }
    }
    let plugins: Vec<_> =
        docs.iter().filter(|(_, item, v)| item.is_none() && matches!(classify(v), Ok(Kind::Plugin))).collect();
    let Some((document, _, first)) = plugins.first() else { return Ok(None) };
    if plugins.len() != docs.len() {
        return Ok(None);
    }
    let resource = format!("WasmPlugin {}", meta_of(first).map(|m| m.id()).unwrap_or_default());
    let policy = plugin_config(first).map_err(|e| at_field(*document, e).in_resource(resource.clone()))?;
    for (other, _, plugin) in plugins.iter().skip(1) {
        if plugin_config(plugin).ok().as_ref() != Some(&policy) {
            let name = meta_of(plugin).map(|m| m.id()).unwrap_or_default();
            let problem = format!("WasmPlugin {name} deploys another policy than {resource}: check them one by one");
            return Err(at_field(*other, FieldError::at("spec.pluginConfig", problem)));
        }
    }
    let notes = plugin_notes(&source.file, plugins.iter().map(|(_, _, plugin)| plugin), &policy);
    Ok(Some(SinglePolicy { document: *document, at: "spec.pluginConfig", resource: Some(resource), policy, notes }))
}

/// The warning for WasmPlugins that deploy `policy` at what looks like the
/// egress gateway without `gatewayPorts` in it (one, for the first).
fn plugin_notes<'a>(file: &Path, plugins: impl Iterator<Item = &'a Value>, policy: &Value) -> Vec<Note> {
    if gateway::maps_ports(policy.get("gatewayPorts")) {
        return Vec::new();
    }
    plugins
        .filter_map(|plugin| {
            let label = gateway::egress_gateway_label(plugin)?;
            let resource = format!("WasmPlugin {}", meta_of(plugin).map(|m| m.id()).unwrap_or_default());
            Some(gateway::missing_gateway_ports(Some(file), &resource, &label, "spec.pluginConfig"))
        })
        .take(1)
        .collect()
}

/// The `spec.pluginConfig` of a WasmPlugin that deploys Warden.
fn plugin_config(plugin: &Value) -> Result<Value, FieldError> {
    match plugin.get("spec").and_then(|s| s.get("pluginConfig")) {
        Some(config @ Value::Object(_)) => Ok(config.clone()),
        None | Some(Value::Null) => Err(FieldError::at(
            "spec.pluginConfig",
            "missing: Warden takes its policy from here, and without one it refuses every request",
        )),
        Some(_) => Err(FieldError::at("spec.pluginConfig", "expected the warden/v1 policy, a mapping")),
    }
}

/// Validates the policy a WasmPlugin deploys, on its own: the error names
/// the field under `spec.pluginConfig`.
fn check_plugin(entry: &Entry<'_>, resource: &str) -> Result<(), LoadError> {
    let config = plugin_config(&entry.value).map_err(|e| entry.error(resource, e))?;
    let json = serde_json::to_vec(&config).unwrap_or_default();
    match warden_engine::compile::load(&json) {
        Ok(_) => Ok(()),
        Err(e) => {
            let field = if e.path.is_empty() {
                "spec.pluginConfig".to_owned()
            } else {
                format!("spec.pluginConfig.{}", e.path)
            };
            Err(entry.error(resource, FieldError::at(field, crate::problem(&e))))
        }
    }
}

/// The error for input that holds nothing a policy is made of: what it
/// holds, and what to give instead.
fn no_policy(entries: &[Entry<'_>], sources: &[Source]) -> LoadError {
    let file = entries.first().map(Entry::file).or(sources.first().map(|s| s.file.as_path())).unwrap_or(Path::new(""));
    let install = entries.iter().find_map(|e| {
        let operator = e.value.get("kind").and_then(Value::as_str) == Some("IstioOperator");
        let what = match &e.kind {
            Kind::Mesh(_, MeshAt::Helm) => "Helm values for installing Istio",
            Kind::Mesh(_, MeshAt::Operator) if operator => "an IstioOperator (Istio's installation settings)",
            Kind::Mesh(_, MeshAt::Operator) => "part of an IstioOperator (its spec.meshConfig)",
            Kind::Mesh(_, MeshAt::Bare) => "a mesh config",
            Kind::Mesh(_, MeshAt::ConfigMap) => "the istio ConfigMap (the mesh config)",
            Kind::Skip(_) if operator => "an IstioOperator (Istio's installation settings) without spec.meshConfig",
            Kind::Skip(reason) if reason == HELM_VALUES => "Helm values for installing Istio, without meshConfig",
            Kind::Skip(reason) if reason == OPERATOR_FRAGMENT => {
                "part of an IstioOperator (Istio's installation settings), without meshConfig"
            }
            _ => return None,
        };
        Some((e, what))
    });
    if let Some((entry, what)) = install {
        let problem = format!(
            "{what}, not a policy: Warden reads only the mesh config from Istio's settings (outboundTrafficPolicy, \
             pathNormalization, trust domain). Give them beside the ServiceEntries and AuthorizationPolicies they \
             apply to (`warden import FILE... -o policy.yaml`, or a test file's `policy:` list), or write a \
             warden/v1 policy"
        );
        let error = LoadError::new(entry.file(), problem);
        return match entry.document {
            0 => error,
            n => error.in_resource(format!("document {}", n + 1)),
        };
    }
    let found: Vec<String> = entries
        .iter()
        .take(3)
        .map(|e| {
            let kind = e.value.get("kind").and_then(Value::as_str).unwrap_or("?");
            match meta_of(&e.value) {
                Ok(meta) if !meta.name.is_empty() => format!("{kind} {}", meta.id()),
                _ => kind.to_owned(),
            }
        })
        .collect();
    let more = if entries.len() > found.len() { ", ..." } else { "" };
    LoadError::new(
        file,
        format!(
            "no policy here, only {}{more}: Warden makes one from a warden/v1 document, ServiceEntries and \
             AuthorizationPolicies, or the pluginConfig of its WasmPlugin",
            found.join(", ")
        ),
    )
}

// ------------------------------------------------------------ converting

/// The metadata of any document, for its name in notes and errors.
fn meta_of(value: &Value) -> Result<Meta, FieldError> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        metadata: resources::ObjectMeta,
    }
    Meta::of(&convert::typed::<Head>(value)?.metadata)
}

/// A setting, and where it was set.
struct Setting<T> {
    value: T,
    file: PathBuf,
    field: &'static str,
}

/// Keeps a setting, or refuses one that disagrees with an earlier one.
fn set_once<T: PartialEq + fmt::Debug>(
    slot: &mut Option<Setting<T>>,
    value: T,
    entry: &Entry<'_>,
    (field, path): (&'static str, &str),
) -> Result<(), LoadError> {
    if let Some(prev) = slot {
        if prev.value != value {
            let problem = format!(
                "{value:?} here, but {:?} in {} ({}); keep one",
                prev.value,
                crate::display::shown(&prev.file),
                prev.field
            );
            return Err(LoadError::new(entry.file(), problem).at_line(entry.line(path)).at_field(field));
        }
        return Ok(());
    }
    *slot = Some(Setting { value, file: entry.file().to_owned(), field });
    Ok(())
}

/// Converts Istio resources (and at most one `warden/v1` document giving
/// the settings Istio has no word for: name, identity, gatewayPorts,
/// responses, dlp) into a valid `warden/v1` policy.
pub fn import(sources: &[Source], options: &Options) -> Result<Import, LoadError> {
    let mut notes: Vec<Note> = Vec::new();
    let note = |notes: &mut Vec<Note>, file: &Path, message: String| notes.push(Note::new(Some(file), message));

    // Read and classify every document first: targetRefs may name a
    // ServiceEntry from a later file.
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for source in sources {
        for (document, item, value) in documents(source)? {
            let mut entry = Entry { source, document, item, value: Value::Null, kind: Kind::Skip(String::new()) };
            entry.kind = match classify(&value) {
                Ok(kind) => kind,
                Err(e) => {
                    let error = entry.error(format!("document {}", document + 1), e);
                    // A syntax error in the ConfigMap's mesh string: where in the file.
                    let text = value.get("data").and_then(|d| d.get("mesh")).and_then(Value::as_str);
                    let at = text
                        .and_then(|t| serde_yaml_ng::from_str::<Value>(t).err())
                        .and_then(|e| e.location())
                        .and_then(|l| entry.in_mesh_string(l.line(), l.column()));
                    return Err(match at {
                        Some((line, column)) => error.at_line(Some(line)).at_column(Some(column)),
                        None => error,
                    });
                }
            };
            entry.value = value;
            entries.push(entry);
        }
    }

    let makes_policy = |k: &Kind| matches!(k, Kind::ServiceEntry | Kind::AuthorizationPolicy | Kind::Warden(_));
    if !entries.iter().any(|e| makes_policy(&e.kind)) {
        return plugin_import(&entries, sources, notes);
    }

    let mut base: Option<(&Entry<'_>, Map<String, Value>)> = None;
    let mut outbound: Option<Setting<OutboundTrafficPolicy>> = None;
    let mut normalization: Option<Setting<PathNormalization>> = None;
    let mut trust_domain: Option<Setting<String>> = None;
    let mut trust_domain_aliases: Option<Setting<Vec<String>>> = None;
    let mut service_entries: Vec<String> = Vec::new();
    let mut registry: Vec<tls::Registered> = Vec::new();
    for entry in &entries {
        let file = entry.file();
        match &entry.kind {
            Kind::ServiceEntry => {
                let meta = meta_of(&entry.value).map_err(|e| entry.error("ServiceEntry", e))?;
                service_entries.push(meta.id());
                registry.push(tls::Registered::of(meta.id(), &entry.value));
            }
            Kind::Warden(doc) => {
                let Value::Object(doc) = doc else {
                    return Err(LoadError::new(file, "the warden/v1 document must be a mapping"));
                };
                if let Some((first, _)) = &base {
                    return Err(LoadError::new(
                        file,
                        format!(
                            "a second warden/v1 document (the first is in {}): give at most one, for the settings \
                             Istio has no word for",
                            crate::display::shown(first.file())
                        ),
                    ));
                }
                for key in ["services", "authorization"] {
                    if doc.get(key).is_some_and(|v| v != &json!([])) {
                        let problem = "beside Istio resources, the registry and authorization come from \
                                       ServiceEntries and AuthorizationPolicies; this document may only give \
                                       settings (name, identity, gatewayPorts, responses, dlp, ...)";
                        return Err(entry.error("warden/v1", FieldError::at(key, problem)));
                    }
                }
                if let Some(v) = doc.get("outboundTrafficPolicy") {
                    let mode: OutboundTrafficPolicy =
                        convert::typed(v).map_err(|e| entry.error("warden/v1", e.under("outboundTrafficPolicy")))?;
                    set_once(&mut outbound, mode, entry, ("outboundTrafficPolicy", "outboundTrafficPolicy"))?;
                }
                if let Some(v) = doc.get("pathNormalization") {
                    let mode: PathNormalization =
                        convert::typed(v).map_err(|e| entry.error("warden/v1", e.under("pathNormalization")))?;
                    set_once(&mut normalization, mode, entry, ("pathNormalization", "pathNormalization"))?;
                }
                base = Some((entry, doc.clone()));
            }
            Kind::Mesh(mesh, at) => {
                let mesh = convert::typed(mesh).map_err(|e| {
                    let line = match at {
                        MeshAt::ConfigMap => entry.mesh_string_line(&entry.value, &e.path),
                        _ => None,
                    };
                    let line = line.or_else(|| entry.line(&at.path(&e.path)));
                    entry.error("mesh config", e).at_line(line)
                })?;
                let settings = convert::mesh_config(mesh);
                for n in settings.notes {
                    note(&mut notes, file, format!("mesh config: {n}"));
                }
                let path = |field: &str| at.path(field);
                if let Some(o) = settings.outbound {
                    let field = ("mesh outboundTrafficPolicy.mode", path("outboundTrafficPolicy.mode"));
                    set_once(&mut outbound, o, entry, (field.0, &field.1))?;
                }
                if let Some(n) = settings.normalization {
                    let field = ("mesh pathNormalization.normalization", path("pathNormalization.normalization"));
                    set_once(&mut normalization, n, entry, (field.0, &field.1))?;
                }
                if let Some(td) = settings.trust_domain {
                    set_once(&mut trust_domain, td, entry, ("mesh trustDomain", &path("trustDomain")))?;
                }
                if let Some(aliases) = settings.trust_domain_aliases {
                    let field = ("mesh trustDomainAliases", path("trustDomainAliases"));
                    set_once(&mut trust_domain_aliases, aliases, entry, (field.0, &field.1))?;
                }
            }
            Kind::AuthorizationPolicy | Kind::Gateway | Kind::VirtualService | Kind::Plugin | Kind::Skip(_) => {}
        }
    }

    let mut listeners = ListenerPorts::of(base.as_ref().map(|(_, doc)| doc).unwrap_or(&Map::new()));
    let mut services = Vec::new();
    let mut authorization = Vec::new();
    let mut origins = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let file = entry.file();
        match &entry.kind {
            Kind::ServiceEntry => {
                let meta = meta_of(&entry.value).map_err(|e| entry.error("ServiceEntry", e))?;
                let resource = format!("ServiceEntry {}", meta.id());
                let (service, ignored) =
                    convert::typed::<resources::Resource<resources::ServiceEntrySpec>>(&entry.value)
                        .and_then(|r| convert::service_entry(&meta, r.spec.unwrap_or_default()))
                        .map_err(|e| entry.error(&resource, e))?;
                for n in ignored {
                    note(&mut notes, file, format!("{resource}: {n}"));
                }
                origins.push(Origin {
                    field: format!("services[{}]", services.len()),
                    resource,
                    file: file.to_path_buf(),
                    entry: index,
                });
                services.push(service);
            }
            Kind::AuthorizationPolicy => {
                let meta = meta_of(&entry.value).map_err(|e| entry.error("AuthorizationPolicy", e))?;
                let resource = format!("AuthorizationPolicy {}", meta.id());
                let converted = convert::typed(&entry.value)
                    .and_then(|r| convert::authorization_policy(&meta, r, &service_entries, &mut listeners))
                    .map_err(|e| entry.error(&resource, e))?;
                for n in converted.notes.into_iter().chain(tls::tcp_semantics_notes(&converted.policy, &registry)) {
                    note(&mut notes, file, format!("{resource}: {n}"));
                }
                origins.push(Origin {
                    field: format!("authorization[{}]", authorization.len()),
                    resource,
                    file: file.to_path_buf(),
                    entry: index,
                });
                authorization.push(converted.policy);
            }
            Kind::Gateway | Kind::VirtualService => {
                let value = &entry.value;
                let (kind, found) = match entry.kind {
                    Kind::Gateway => ("Gateway", tls::gateway_notes(value, &registry)),
                    _ => ("VirtualService", tls::virtual_service_notes(value, &registry)),
                };
                let name = meta_of(value).map(|m| m.id()).unwrap_or_default();
                if found.is_empty() {
                    let version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("?");
                    let reason = skip_reason("networking.istio.io", kind);
                    let message = format!("skipped {kind} {name} ({version}): {reason}");
                    notes.push(Note { severity: skip_severity(value), ..Note::new(Some(file), message) });
                }
                for n in found {
                    note(&mut notes, file, format!("{kind} {name}: {n}"));
                }
            }
            Kind::Skip(reason) => {
                let value = &entry.value;
                let text = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
                // Cluster-scoped kinds (Namespace, ...) have no namespace.
                let name = match value.get("metadata").and_then(|m| m.get("namespace")).and_then(Value::as_str) {
                    Some(_) => meta_of(value).map(|m| format!(" {}", m.id())).unwrap_or_default(),
                    None => meta_of(value).map(|m| format!(" {}", m.name)).unwrap_or_default(),
                };
                let message = format!("skipped {}{name} ({}): {reason}", text("kind"), text("apiVersion"));
                notes.push(Note { severity: skip_severity(value), ..Note::new(Some(file), message) });
            }
            Kind::Plugin => {
                let resource = format!("WasmPlugin {}", meta_of(&entry.value).map(|m| m.id()).unwrap_or_default());
                check_plugin(entry, &resource)?;
                note(
                    &mut notes,
                    file,
                    format!(
                        "{resource}: its pluginConfig is a valid policy, checked on its own: it is not merged \
                             with the other resources"
                    ),
                );
            }
            Kind::Mesh(..) | Kind::Warden(_) => {}
        }
    }

    if !gateway::maps_ports(base.as_ref().and_then(|(_, doc)| doc.get("gatewayPorts"))) {
        let selecting =
            entries.iter().filter(|e| matches!(e.kind, Kind::AuthorizationPolicy | Kind::Gateway | Kind::Plugin));
        if let Some((entry, label)) =
            selecting.filter_map(|e| Some((e, gateway::egress_gateway_label(&e.value)?))).next()
        {
            let kind = entry.value.get("kind").and_then(Value::as_str).unwrap_or("?");
            let resource = format!("{kind} {}", meta_of(&entry.value).map(|m| m.id()).unwrap_or_default());
            let settings = "the warden/v1 document beside the Istio resources";
            notes.push(gateway::missing_gateway_ports(Some(entry.file()), &resource, &label, settings));
        }
    }
    let (base_entry, mut settings) = match base {
        Some((entry, doc)) => (Some(entry), doc),
        None => (None, Map::new()),
    };
    let base_error = |field: &str, problem: String| match base_entry {
        Some(entry) => entry.error("warden/v1", FieldError::at(field, problem)),
        None => LoadError::new(Path::new(""), problem).at_field(field),
    };
    let base_name = match settings.remove("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n),
        Some(other) => return Err(base_error("name", format!("{other} is not a string"))),
    };
    let name = options.name.clone().or(base_name).unwrap_or_else(|| DEFAULT_NAME.to_owned());
    let identity = settings
        .remove("identity")
        .unwrap_or_else(|| json!([{"peerCertificate": {}}, {"filterState": PEER_PRINCIPAL_FILTER_STATE}]));
    for key in ["outboundTrafficPolicy", "pathNormalization", "services", "authorization"] {
        settings.remove(key);
    }
    let outbound_traffic_policy = match (options.outbound_traffic_policy, outbound) {
        (Some(mode), _) => mode,
        (None, Some(setting)) => setting.value,
        (None, None) => {
            notes.push(Note::new(
                None,
                "no mesh outboundTrafficPolicy in the input: REGISTRY_ONLY, Warden's default (Istio's is \
                 ALLOW_ANY; --outbound-traffic-policy ALLOW_ANY to follow it)",
            ));
            OutboundTrafficPolicy::RegistryOnly
        }
    };
    let path_normalization = normalization.map_or(PathNormalization::Base, |s| s.value);
    // Istio's trust domain is cluster.local unless the mesh config says
    // otherwise; aliases need it spelled out.
    let trust_domain_aliases = trust_domain_aliases.map(|s| s.value);
    let trust_domain = match (trust_domain, &trust_domain_aliases) {
        (Some(td), _) => Some(td.value),
        (None, Some(_)) => Some("cluster.local".to_owned()),
        (None, None) => None,
    };
    for key in ["trustDomain", "trustDomainAliases"] {
        if settings.contains_key(key) && trust_domain.is_some() {
            return Err(base_error(key, "the mesh config sets the trust domain; keep one".to_owned()));
        }
    }

    let policy = PolicyOut {
        name,
        outbound_traffic_policy,
        identity,
        path_normalization,
        trust_domain,
        trust_domain_aliases,
        settings,
        services,
        authorization,
    };
    let import = Import { policy: Converted::Istio(Box::new(policy)), notes, origins };
    // Compile it now, so that an error names the Istio resource and field.
    if let Err(e) = warden_engine::compile::load(&import.config()) {
        return Err(locate(&e, &import.origins, &entries, base_entry.or(entries.first()), sources));
    }
    Ok(import)
}

/// An import of input with no ServiceEntry, AuthorizationPolicy or
/// `warden/v1` document: the policy of the WasmPlugins that deploy Warden
/// (one same `pluginConfig`), else an error saying what the input is.
fn plugin_import(entries: &[Entry<'_>], sources: &[Source], mut notes: Vec<Note>) -> Result<Import, LoadError> {
    let mut policy: Option<(Value, String)> = None;
    for entry in entries.iter().filter(|e| matches!(e.kind, Kind::Plugin)) {
        let resource = format!("WasmPlugin {}", meta_of(&entry.value).map(|m| m.id()).unwrap_or_default());
        check_plugin(entry, &resource)?;
        let config = plugin_config(&entry.value).map_err(|e| entry.error(&resource, e))?;
        match &policy {
            None => policy = Some((config, resource)),
            Some((first, first_resource)) if *first != config => {
                let problem = format!("deploys another policy than {first_resource}: check them one by one");
                return Err(entry.error(resource, FieldError::at("spec.pluginConfig", problem)));
            }
            Some(_) => {}
        }
    }
    let Some((policy, resource)) = policy else { return Err(no_policy(entries, sources)) };
    if !gateway::maps_ports(policy.get("gatewayPorts")) {
        let plugins = entries.iter().filter(|e| matches!(e.kind, Kind::Plugin));
        if let Some((entry, label)) = plugins.filter_map(|e| Some((e, gateway::egress_gateway_label(&e.value)?))).next()
        {
            let resource = format!("WasmPlugin {}", meta_of(&entry.value).map(|m| m.id()).unwrap_or_default());
            notes.push(gateway::missing_gateway_ports(Some(entry.file()), &resource, &label, "spec.pluginConfig"));
        }
    }
    for entry in entries.iter().filter(|e| !matches!(e.kind, Kind::Plugin)) {
        let kind = entry.value.get("kind").and_then(Value::as_str).unwrap_or("?");
        notes.push(Note::new(Some(entry.file()), format!("skipped {kind}: the policy is {resource}'s")));
    }
    Ok(Import { policy: Converted::Plugin(policy), notes, origins: Vec::new() })
}

/// `services[3].hosts[0]` → `(3, ".hosts[0]")`.
fn indexed<'a>(path: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('[')?;
    let (index, rest) = rest.split_once(']')?;
    Some((index.parse().ok()?, rest))
}

/// Names the Istio resource and field of an error in the converted policy
/// (or, for a setting of the `warden/v1` document, its field there).
fn locate(
    err: &PolicyError,
    origins: &[Origin],
    entries: &[Entry<'_>],
    base: Option<&Entry<'_>>,
    sources: &[Source],
) -> LoadError {
    let problem = crate::problem(err);
    let origin = |field: String| origins.iter().find(|o| o.field == field);
    let resource_field = if let Some((i, rest)) = indexed(&err.path, "services") {
        origin(format!("services[{i}]")).map(|o| {
            let field = if let Some((j, _)) = indexed(rest, ".ports") {
                format!("spec.ports[{j}].number")
            } else if rest == ".name" {
                "metadata.name".to_owned()
            } else {
                format!("spec{rest}")
            };
            (o, field)
        })
    } else if let Some((i, rest)) = indexed(&err.path, "authorization") {
        origin(format!("authorization[{i}]")).map(|o| {
            let field = if rest == ".name" { "metadata.name".to_owned() } else { format!("spec{rest}") };
            (o, field)
        })
    } else {
        None
    };
    if let Some((o, field)) = resource_field {
        if let Some(entry) = entries.get(o.entry) {
            return entry.error(o.resource.clone(), FieldError::at(field, problem));
        }
    }
    match base {
        Some(entry) if matches!(entry.kind, Kind::Warden(_)) => {
            let envelope = entry.value.get("apiVersion").is_some();
            let mut error = entry.error("the converted policy", FieldError::at(err.path.clone(), problem));
            if envelope {
                let line = entry.line(&format!("spec.{}", err.path)).or(error.line.map(|l| l as usize));
                error = error.at_line(line);
            }
            error
        }
        _ => {
            let file = sources.first().map(|s| s.file.as_path()).unwrap_or(Path::new(""));
            LoadError::new(file, problem).in_resource("the converted policy").at_field(err.path.clone())
        }
    }
}
