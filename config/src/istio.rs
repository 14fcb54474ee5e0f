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

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use warden_engine::document::{Action, OutboundTrafficPolicy, PathNormalization};
use warden_engine::PolicyError;

/// The policy's name when neither `--name` nor a `warden/v1` document in
/// the input gives one.
pub const DEFAULT_NAME: &str = "istio";

/// The filter-state key an ambient waypoint keeps the caller's principal in.
pub const PEER_PRINCIPAL_FILTER_STATE: &str = "io.istio.peer_principal";

/// The namespace of a resource without `metadata.namespace` (what `kubectl
/// apply` uses without `-n`).
pub const DEFAULT_NAMESPACE: &str = "default";

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

    /// Reads a file.
    pub fn read(path: &Path) -> Result<Source, ImportError> {
        std::fs::read_to_string(path)
            .map(|text| Source::new(path, text))
            .map_err(|e| ImportError { file: path.to_owned(), message: format!("cannot read: {e}") })
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
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: {}", crate::display::shown(file), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Istio input that cannot be converted: the file, and a message naming the
/// resource and field (`AuthorizationPolicy default/httpbin:
/// spec.rules[0].from[0].source.requestPrincipals: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file holding the resource at fault.
    pub file: PathBuf,
    /// What is wrong and where.
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", crate::display::shown(&self.file), self.message)
    }
}

impl std::error::Error for ImportError {}

/// Where an entry of the converted policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The entry: `services[0]`, `authorization[1]`.
    pub field: String,
    /// The resource: `ServiceEntry istio-egress/httpbin`.
    pub resource: String,
    /// The file it is in.
    pub file: PathBuf,
}

/// A converted policy, valid (it compiled), with the notes made on the way.
#[derive(Debug, Clone)]
pub struct Import {
    policy: PolicyOut,
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
    pub fn to_yaml(&self) -> Result<String, String> {
        let body = serde_yaml_ng::to_string(&self.policy).map_err(|e| format!("cannot write YAML: {e}"))?;
        let mut text = String::from("# warden/v1 policy converted by `warden import` from Istio resources\n");
        let width = self.origins.iter().map(|o| o.field.len()).max().unwrap_or(0);
        for o in &self.origins {
            text.push_str(&format!("#   {:width$}  {} ({})\n", o.field, o.resource, crate::display::shown(&o.file)));
        }
        text.push_str(&body);
        Ok(text)
    }

    /// The number of services and of authorization policies.
    pub fn counts(&self) -> (usize, usize) {
        (self.policy.services.len(), self.policy.authorization.len())
    }
}

// ------------------------------------------------------------ the output

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
    services: Vec<ServiceOut>,
    authorization: Vec<AuthzOut>,
}

#[derive(Debug, Clone, Serialize)]
struct ServiceOut {
    name: String,
    hosts: Vec<String>,
    ports: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthzOut {
    name: String,
    action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    rules: Vec<Value>,
}

// ------------------------------------------------------------ reading

/// What one YAML document is.
enum Kind {
    ServiceEntry,
    AuthorizationPolicy,
    /// A mesh config (bare, `meshConfig:` of Helm values or an
    /// IstioOperator, or the `mesh` key of the `istio` ConfigMap).
    Mesh(Value),
    /// A `warden/v1` document (bare or unwrapped from its envelope).
    Warden(Value),
    /// Anything else: skipped, with why.
    Skip(String),
}

/// The YAML documents of a text (empty documents left out).
fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| format!("document {}: not valid YAML/JSON: {e}", i + 1))?;
        match value {
            Value::Null => {}
            Value::Object(mut map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                match map.remove("items") {
                    Some(Value::Array(items)) => out.extend(items.into_iter().filter(|v| !v.is_null())),
                    _ => return Err(format!("document {}: a List needs items", i + 1)),
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Whether a mapping without `apiVersion` is a mesh config rather than a
/// bare `warden/v1` document (which writes these settings as strings).
fn is_mesh_config(map: &Map<String, Value>) -> bool {
    map.get("meshConfig").is_some_and(Value::is_object)
        || map.get("outboundTrafficPolicy").is_some_and(Value::is_object)
        || map.get("pathNormalization").is_some_and(Value::is_object)
}

fn classify(value: &Value) -> Result<Kind, String> {
    let Value::Object(map) = value else {
        return Err("not a mapping: expected a Kubernetes resource".into());
    };
    let api_version = match map.get("apiVersion") {
        None => {
            if let Some(mesh) = map.get("meshConfig").filter(|m| m.is_object()) {
                return Ok(Kind::Mesh(mesh.clone()));
            }
            if is_mesh_config(map) {
                return Ok(Kind::Mesh(value.clone()));
            }
            return Ok(Kind::Warden(value.clone()));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("apiVersion: expected a string, found {other}")),
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let unsupported_version =
        |versions: &str| Err(format!("apiVersion: {api_version}: Warden reads {kind} of {group} {versions}"));
    Ok(match (group, kind) {
        ("warden", _) => {
            let spec = crate::envelope::unwrap_envelope(value.clone())?;
            Kind::Warden(spec)
        }
        ("networking.istio.io", "ServiceEntry") => match version {
            "v1" | "v1beta1" | "v1alpha3" => Kind::ServiceEntry,
            _ => return unsupported_version("v1, v1beta1, v1alpha3"),
        },
        ("security.istio.io", "AuthorizationPolicy") => match version {
            "v1" | "v1beta1" => Kind::AuthorizationPolicy,
            _ => return unsupported_version("v1, v1beta1"),
        },
        ("install.istio.io", "IstioOperator") => {
            match map.get("spec").and_then(|s| s.get("meshConfig")).filter(|m| m.is_object()) {
                Some(mesh) => Kind::Mesh(mesh.clone()),
                None => Kind::Skip("no spec.meshConfig".into()),
            }
        }
        ("", "ConfigMap") => match map.get("data").and_then(|d| d.get("mesh")) {
            Some(Value::String(text)) => {
                let mesh: Value =
                    serde_yaml_ng::from_str(text).map_err(|e| format!("data.mesh: not valid YAML: {e}"))?;
                match mesh {
                    Value::Object(_) => Kind::Mesh(mesh),
                    Value::Null => Kind::Mesh(json!({})),
                    _ => return Err("data.mesh: expected the mesh config, a mapping".into()),
                }
            }
            Some(_) => return Err("data.mesh: expected the mesh config as a string".into()),
            None => Kind::Skip("not the mesh config (no data.mesh)".into()),
        },
        (_, kind) => Kind::Skip(skip_reason(group, kind).into()),
    })
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

/// Whether the text is Istio input rather than one `warden/v1` document:
/// more than one document, or one that is not a `warden/v1` document.
/// Text that does not parse is not Istio input (the `warden/v1` reader
/// reports the error).
pub fn is_istio(text: &str) -> bool {
    match documents(text) {
        Ok(docs) => match docs.as_slice() {
            [one] => !matches!(classify(one), Ok(Kind::Warden(_))),
            _ => true,
        },
        Err(_) => false,
    }
}

// ------------------------------------------------------------ converting

/// `metadata.name` and `metadata.namespace`.
struct Meta {
    name: String,
    namespace: String,
}

impl Meta {
    fn of(value: &Value) -> Result<Meta, String> {
        let metadata = value.get("metadata");
        let text = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str).map(str::trim);
        let name = match text("name") {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => return Err("metadata.name: required".into()),
        };
        let namespace = text("namespace").filter(|n| !n.is_empty()).unwrap_or(DEFAULT_NAMESPACE).to_owned();
        Ok(Meta { name, namespace })
    }

    fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// An error at a field of a resource: (field path, message).
type FieldError = (String, String);

fn at(path: &str, message: impl Into<String>) -> FieldError {
    (path.to_owned(), message.into())
}

/// The object at `spec`, or an empty one.
fn spec_of(value: &Value) -> Result<Map<String, Value>, FieldError> {
    match value.get("spec") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(at("spec", "expected a mapping")),
    }
}

fn check_keys(map: &Map<String, Value>, path: &str, allowed: &[&str], what: &str) -> Result<(), FieldError> {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(at(&format!("{path}.{key}"), format!("not a field of {what} (a typo must not pass silently)")));
        }
    }
    Ok(())
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, FieldError> {
    value.as_object().ok_or_else(|| at(path, "expected a mapping"))
}

/// A list field: absent or null is empty.
fn list<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a [Value], FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(at(&format!("{path}.{key}"), "expected a list")),
    }
}

fn strings(map: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<String>, FieldError> {
    list(map, key, path)?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(at(&format!("{path}.{key}[{i}]"), "expected a string")),
        })
        .collect()
}

fn enum_value<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.as_str())),
        Some(other) => Err(at(&format!("{path}.{key}"), format!("{other}: expected one of {}", allowed.join(", ")))),
    }
}

/// A ServiceEntry: the service, and notes on what was ignored.
fn service_entry(meta: &Meta, value: &Value) -> Result<(ServiceOut, Vec<String>), FieldError> {
    let spec = spec_of(value)?;
    check_keys(
        &spec,
        "spec",
        &[
            "hosts",
            "addresses",
            "ports",
            "location",
            "resolution",
            "endpoints",
            "workloadSelector",
            "exportTo",
            "subjectAltNames",
        ],
        "ServiceEntry",
    )?;
    let mut notes = Vec::new();
    let hosts = strings(&spec, "hosts", "spec")?;
    if hosts.is_empty() {
        return Err(at("spec.hosts", "required: the hosts the entry registers"));
    }
    let port_list = list(&spec, "ports", "spec")?;
    if port_list.is_empty() {
        return Err(at("spec.ports", "required: Warden registers a host on the ports its ServiceEntry lists"));
    }
    let mut ports = Vec::with_capacity(port_list.len());
    for (i, p) in port_list.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let p = object(p, &path)?;
        check_keys(p, &path, &["number", "protocol", "name", "targetPort"], "a ServiceEntry port")?;
        let number = match p.get("number") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => return Err(at(&format!("{path}.number"), "required: the port workloads call")),
        };
        match number {
            Some(n) => ports.push(n),
            None => return Err(at(&format!("{path}.number"), "expected a port number")),
        }
    }
    if enum_value(&spec, "location", "spec", &["MESH_EXTERNAL", "MESH_INTERNAL"])? == Some("MESH_INTERNAL") {
        notes.push(
            "spec.location MESH_INTERNAL: registered like MESH_EXTERNAL (Warden decides on requests the same way)"
                .into(),
        );
    }
    enum_value(&spec, "resolution", "spec", &["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"])?;
    let export_to = strings(&spec, "exportTo", "spec")?;
    if !export_to.is_empty() && !export_to.iter().any(|e| e == "*") {
        return Err(at(
            "spec.exportTo",
            format!(
                "{export_to:?}: Warden's registry is the same for every caller; export the entry to '*' and \
                 restrict callers with an AuthorizationPolicy (from.source.namespaces)"
            ),
        ));
    }
    if !list(&spec, "addresses", "spec")?.is_empty() {
        notes.push(
            "spec.addresses ignored: Warden registers the hosts by name, so a request whose authority is one of \
             these addresses is not registered"
                .into(),
        );
    }
    let ignored: Vec<&str> = ["endpoints", "workloadSelector", "subjectAltNames"]
        .into_iter()
        .filter(|k| spec.get(*k).is_some_and(|v| !v.is_null() && v != &json!([]) && v != &json!({})))
        .collect();
    if !ignored.is_empty() {
        notes.push(format!(
            "spec.{} ignored: where and how traffic is sent, not whether it may go",
            ignored.join(", spec.")
        ));
    }
    Ok((ServiceOut { name: meta.id(), hosts, ports }, notes))
}

/// `istio.io/dry-run`, read as Istio reads it (Go's `strconv.ParseBool`).
fn dry_run(value: &Value) -> Result<bool, FieldError> {
    const PATH: &str = "metadata.annotations[\"istio.io/dry-run\"]";
    let annotation = value.get("metadata").and_then(|m| m.get("annotations")).and_then(|a| a.get("istio.io/dry-run"));
    match annotation {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(at(PATH, format!("'{s}' is not a boolean (Istio refuses it too)"))),
        },
        Some(other) => Err(at(PATH, format!("{other} is not a boolean"))),
    }
}

/// Where an AuthorizationPolicy applies: `None` = every request; and notes.
fn scope(
    meta: &Meta,
    spec: &Map<String, Value>,
    service_entries: &[String],
) -> Result<(Option<Vec<String>>, Vec<String>), FieldError> {
    let mut refs: Vec<(String, &Value)> = Vec::new();
    if let Some(one) = spec.get("targetRef").filter(|v| !v.is_null()) {
        refs.push(("spec.targetRef".into(), one));
    }
    for (i, r) in list(spec, "targetRefs", "spec")?.iter().enumerate() {
        refs.push((format!("spec.targetRefs[{i}]"), r));
    }
    let selector = spec.get("selector").filter(|v| !v.is_null());
    let mut notes = Vec::new();
    if let Some(sel) = selector {
        if !refs.is_empty() {
            return Err(at("spec.selector", "only one of selector and targetRefs may be set (Istio refuses both)"));
        }
        object(sel, "spec.selector")?;
        notes.push(
            "spec.selector: applies to every request through the proxy Warden runs in (Warden does not check \
             workload labels)"
                .into(),
        );
        return Ok((None, notes));
    }
    if refs.is_empty() {
        return Ok((None, notes));
    }
    let mut services = Vec::new();
    let mut whole_gateway = false;
    for (path, r) in refs {
        let r = object(r, &path)?;
        check_keys(r, &path, &["group", "kind", "name", "namespace"], "a policy target reference")?;
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let (group, kind, name) = (text("group"), text("kind"), text("name"));
        if name.is_empty() {
            return Err(at(&format!("{path}.name"), "required"));
        }
        let namespace = text("namespace");
        if !namespace.is_empty() && namespace != meta.namespace {
            return Err(at(
                &format!("{path}.namespace"),
                format!("'{namespace}': a policy can only target resources in its own namespace ({})", meta.namespace),
            ));
        }
        match (group, kind) {
            ("networking.istio.io", "ServiceEntry") => {
                let id = format!("{}/{name}", meta.namespace);
                if !service_entries.contains(&id) {
                    return Err(at(
                        &path,
                        format!("ServiceEntry {id} is not in the input: give its file too (Warden cannot scope the policy without it)"),
                    ));
                }
                if !services.contains(&id) {
                    services.push(id);
                }
            }
            ("gateway.networking.k8s.io", "Gateway" | "GatewayClass") => {
                whole_gateway = true;
                notes.push(format!(
                    "{path}: {kind} {name}: applies to every request through it, so to every request Warden sees there"
                ));
            }
            (_, "ServiceEntry") => {
                return Err(at(&format!("{path}.group"), "a ServiceEntry is in group networking.istio.io"));
            }
            _ => {
                return Err(at(
                    &path,
                    format!(
                        "{} {name}: Warden scopes policies to ServiceEntries (networking.istio.io) or to a whole \
                         Gateway (gateway.networking.k8s.io)",
                        if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") }
                    ),
                ))
            }
        }
    }
    Ok((if whole_gateway { None } else { Some(services) }, notes))
}

/// Source fields that map one to one.
const SOURCE_FIELDS: [&str; 10] = [
    "principals",
    "notPrincipals",
    "namespaces",
    "notNamespaces",
    "trustDomains",
    "notTrustDomains",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
];

/// Operation fields that map one to one (hosts and notHosts are split).
const OPERATION_FIELDS: [&str; 6] = ["ports", "notPorts", "methods", "notMethods", "paths", "notPaths"];

/// A service account `<name>` or `<namespace>/<name>`, namespace-qualified
/// as Istio reads it (a bare name is in the policy's namespace).
fn service_account(value: &str, namespace: &str, path: &str) -> Result<String, FieldError> {
    let (ns, sa) = value.split_once('/').unwrap_or((namespace, value));
    let fine = |s: &str| !s.is_empty() && !s.contains('/');
    if !fine(ns) || !fine(sa) {
        return Err(at(path, format!("'{value}': expected <name> or <namespace>/<name>")));
    }
    Ok(format!("{ns}/{sa}"))
}

/// Istio matches a principal as `spiffe://<principal>`: one written with
/// its scheme never matches there. Say so rather than widen it.
fn check_principals(values: &[String], path: &str) -> Result<(), FieldError> {
    for (i, v) in values.iter().enumerate() {
        if v.starts_with("spiffe://") {
            return Err(at(
                &format!("{path}[{i}]"),
                format!(
                    "'{v}': Istio prefixes principals with spiffe:// itself, so this one never matches; \
                     write it without the scheme"
                ),
            ));
        }
    }
    Ok(())
}

fn source(value: &Value, path: &str, namespace: &str) -> Result<Value, FieldError> {
    let src = object(value, path)?;
    for key in ["requestPrincipals", "notRequestPrincipals"] {
        if src.contains_key(key) {
            return Err(at(
                &format!("{path}.{key}"),
                "JWT request principals are not supported: Warden does not validate JWTs; use principals (the mTLS \
                 peer identity)",
            ));
        }
    }
    let mut allowed: Vec<&str> = SOURCE_FIELDS.to_vec();
    allowed.extend(["serviceAccounts", "notServiceAccounts"]);
    check_keys(src, path, &allowed, "an AuthorizationPolicy source")?;
    let mut out = Map::new();
    for key in SOURCE_FIELDS {
        let values = strings(src, key, path)?;
        if key.ends_with("rincipals") {
            check_principals(&values, &format!("{path}.{key}"))?;
        }
        if !values.is_empty() {
            out.insert(key.into(), json!(values));
        }
    }
    for key in ["serviceAccounts", "notServiceAccounts"] {
        let accounts = strings(src, key, path)?
            .iter()
            .enumerate()
            .map(|(i, v)| service_account(v, namespace, &format!("{path}.{key}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if !accounts.is_empty() {
            out.insert(key.into(), json!(accounts));
        }
    }
    if out.is_empty() {
        return Err(at(path, "must not be empty (Istio refuses an empty source)"));
    }
    Ok(Value::Object(out))
}

fn port_number(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An operation; more than one when its hosts name different ports
/// (Warden matches the host without its port and the port by `ports`).
/// A gateway's listener ports (`gatewayPorts`): Istio matches a policy's
/// ports against the port the proxy listens on (the container port, 8080
/// in Istio's egress gateway for port 80), Warden against the port the
/// workload called. A listener port in a policy is rewritten, with a note.
struct ListenerPorts {
    map: BTreeMap<u16, u16>,
    notes: Vec<String>,
}

impl ListenerPorts {
    fn of(settings: &Map<String, Value>) -> ListenerPorts {
        let map = settings
            .get("gatewayPorts")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.trim().parse().ok()?, port_number(v)?)))
            .collect();
        ListenerPorts { map, notes: Vec::new() }
    }

    fn rewrite(&mut self, value: &Value, path: &str) -> Value {
        let Some((listener, service)) = port_number(value).and_then(|p| Some((p, *self.map.get(&p)?))) else {
            return value.clone();
        };
        self.notes.push(format!(
            "{path}: {listener} is the gateway's listener port for {service} (gatewayPorts); Istio matches the \
             listener port, Warden the port the workload called: read as {service}"
        ));
        json!(service.to_string())
    }
}

/// An operation. `hosts` and `notHosts` keep their ports: Warden reads
/// `host:port` as Istio does (and, where that is stricter, without the
/// port too).
fn operation(value: &Value, path: &str, listeners: &mut ListenerPorts) -> Result<Value, FieldError> {
    let op = object(value, path)?;
    let mut allowed: Vec<&str> = OPERATION_FIELDS.to_vec();
    allowed.extend(["hosts", "notHosts"]);
    check_keys(op, path, &allowed, "an AuthorizationPolicy operation")?;
    let mut out = Map::new();
    for key in ["hosts", "notHosts"] {
        let values = strings(op, key, path)?;
        if !values.is_empty() {
            out.insert(key.into(), json!(values));
        }
    }
    for key in OPERATION_FIELDS {
        let values = list(op, key, path)?;
        for (i, v) in values.iter().enumerate() {
            let fine = if key.ends_with("orts") { port_number(v).is_some() || v.is_string() } else { v.is_string() };
            if !fine {
                return Err(at(&format!("{path}.{key}[{i}]"), "expected a string"));
            }
        }
        if !values.is_empty() {
            let values = if key.ends_with("orts") {
                values.iter().enumerate().map(|(i, v)| listeners.rewrite(v, &format!("{path}.{key}[{i}]"))).collect()
            } else {
                values.to_vec()
            };
            out.insert(key.into(), Value::Array(values));
        }
    }
    if out.is_empty() {
        return Err(at(path, "must not be empty (Istio refuses an empty operation)"));
    }
    Ok(Value::Object(out))
}

/// A rule.
fn rule(value: &Value, path: &str, namespace: &str, listeners: &mut ListenerPorts) -> Result<Value, FieldError> {
    let r = object(value, path)?;
    check_keys(r, path, &["from", "to", "when"], "an AuthorizationPolicy rule")?;
    let mut out = Map::new();
    let mut from = Vec::new();
    for (i, f) in list(r, "from", path)?.iter().enumerate() {
        let fpath = format!("{path}.from[{i}]");
        let f = object(f, &fpath)?;
        check_keys(f, &fpath, &["source"], "a rule's from")?;
        let src = f.get("source").ok_or_else(|| at(&format!("{fpath}.source"), "required"))?;
        from.push(json!({"source": source(src, &format!("{fpath}.source"), namespace)?}));
    }
    if !from.is_empty() {
        out.insert("from".into(), Value::Array(from));
    }
    let mut to = Vec::new();
    for (i, t) in list(r, "to", path)?.iter().enumerate() {
        let tpath = format!("{path}.to[{i}]");
        let t = object(t, &tpath)?;
        check_keys(t, &tpath, &["operation"], "a rule's to")?;
        let op = t.get("operation").ok_or_else(|| at(&format!("{tpath}.operation"), "required"))?;
        to.push(json!({"operation": operation(op, &format!("{tpath}.operation"), listeners)?}));
    }
    if !to.is_empty() {
        out.insert("to".into(), Value::Array(to));
    }
    let mut when = Vec::new();
    for (i, w) in list(r, "when", path)?.iter().enumerate() {
        let wpath = format!("{path}.when[{i}]");
        let w = object(w, &wpath)?;
        check_keys(w, &wpath, &["key", "values", "notValues"], "a condition")?;
        let key = w.get("key").and_then(Value::as_str).ok_or_else(|| at(&format!("{wpath}.key"), "required"))?;
        if key.starts_with("request.auth.") {
            return Err(at(
                &format!("{wpath}.key"),
                format!("'{key}': JWT claims are not supported: Warden does not validate JWTs"),
            ));
        }
        let mut c = Map::new();
        c.insert("key".into(), json!(key));
        for k in ["values", "notValues"] {
            let texts = strings(w, k, &wpath)?;
            if key == "source.principal" {
                check_principals(&texts, &format!("{wpath}.{k}"))?;
            }
            let mut values: Vec<Value> = texts.into_iter().map(Value::String).collect();
            if key == "source.serviceAccount" {
                values = values
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        service_account(v.as_str().unwrap_or_default(), namespace, &format!("{wpath}.{k}[{j}]"))
                            .map(Value::String)
                    })
                    .collect::<Result<_, _>>()?;
            }
            if key == "destination.port" {
                values = values
                    .iter()
                    .enumerate()
                    .map(|(j, v)| listeners.rewrite(v, &format!("{wpath}.{k}[{j}]")))
                    .collect();
            }
            if !values.is_empty() {
                c.insert(k.into(), Value::Array(values));
            }
        }
        when.push(Value::Object(c));
    }
    if !when.is_empty() {
        out.insert("when".into(), Value::Array(when));
    }
    Ok(Value::Object(out))
}

/// An AuthorizationPolicy converted, with what it takes to name its fields
/// in errors.
struct Converted {
    policy: AuthzOut,
    notes: Vec<String>,
}

fn authorization_policy(
    meta: &Meta,
    value: &Value,
    service_entries: &[String],
    listeners: &mut ListenerPorts,
) -> Result<Converted, FieldError> {
    let spec = spec_of(value)?;
    check_keys(
        &spec,
        "spec",
        &["selector", "targetRef", "targetRefs", "action", "provider", "rules"],
        "AuthorizationPolicy",
    )?;
    let action = match enum_value(&spec, "action", "spec", &["ALLOW", "DENY", "AUDIT", "CUSTOM"])? {
        None | Some("ALLOW") => Action::Allow,
        Some("DENY") => Action::Deny,
        Some("AUDIT") => Action::Audit,
        _ => {
            return Err(at(
                "spec.action",
                "CUSTOM (external authorization) is not supported: Warden cannot call the provider",
            ))
        }
    };
    if spec.get("provider").is_some_and(|p| !p.is_null()) {
        return Err(at("spec.provider", "external authorization providers are not supported"));
    }
    let dry_run = dry_run(value)?;
    if dry_run && action == Action::Audit {
        return Err(at(
            "metadata.annotations[\"istio.io/dry-run\"]",
            "dry-run applies to ALLOW and DENY only (Istio refuses it on AUDIT)",
        ));
    }
    let (services, mut notes) = scope(meta, &spec, service_entries)?;
    let mut rules = Vec::new();
    for (i, r) in list(&spec, "rules", "spec")?.iter().enumerate() {
        rules.push(rule(r, &format!("spec.rules[{i}]"), &meta.namespace, listeners)?);
    }
    notes.append(&mut listeners.notes);
    Ok(Converted { policy: AuthzOut { name: meta.id(), action, services, dry_run, rules }, notes })
}

/// The settings a mesh config gives.
#[derive(Debug, Default)]
struct MeshSettings {
    outbound: Option<OutboundTrafficPolicy>,
    normalization: Option<PathNormalization>,
    trust_domain: Option<String>,
    trust_domain_aliases: Option<Vec<String>>,
}

/// Reads the settings of a mesh config.
fn mesh_config(mesh: &Value) -> Result<MeshSettings, FieldError> {
    let Value::Object(mesh) = mesh else {
        return Err(at("", "the mesh config must be a mapping"));
    };
    let trust_domain = match mesh.get("trustDomain") {
        None | Some(Value::Null) => None,
        Some(Value::String(td)) => Some(td.clone()),
        Some(_) => return Err(at("trustDomain", "must be a string")),
    };
    let aliases = strings(mesh, "trustDomainAliases", "")?;
    let trust_domain_aliases = (!aliases.is_empty()).then_some(aliases);
    let mut outbound = None;
    if let Some(otp) = mesh.get("outboundTrafficPolicy").filter(|v| !v.is_null()) {
        let otp = object(otp, "outboundTrafficPolicy")?;
        outbound = match enum_value(otp, "mode", "outboundTrafficPolicy", &["REGISTRY_ONLY", "ALLOW_ANY"])? {
            Some("REGISTRY_ONLY") => Some(OutboundTrafficPolicy::RegistryOnly),
            Some(_) => Some(OutboundTrafficPolicy::AllowAny),
            None => None,
        };
    }
    let mut normalization = None;
    if let Some(pn) = mesh.get("pathNormalization").filter(|v| !v.is_null()) {
        let pn = object(pn, "pathNormalization")?;
        let modes = ["DEFAULT", "NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"];
        normalization = match enum_value(pn, "normalization", "pathNormalization", &modes)? {
            Some("NONE") => Some(PathNormalization::None),
            Some("DEFAULT" | "BASE") => Some(PathNormalization::Base),
            Some("MERGE_SLASHES") => Some(PathNormalization::MergeSlashes),
            Some(_) => Some(PathNormalization::DecodeAndMergeSlashes),
            None => None,
        };
    }
    Ok(MeshSettings { outbound, normalization, trust_domain, trust_domain_aliases })
}

/// A setting and the file that set it.
struct Setting<T> {
    value: T,
    file: PathBuf,
    field: &'static str,
}

fn set_once<T: PartialEq + fmt::Debug>(
    slot: &mut Option<Setting<T>>,
    value: T,
    file: &Path,
    field: &'static str,
) -> Result<(), ImportError> {
    if let Some(prev) = slot {
        if prev.value != value {
            return Err(ImportError {
                file: file.to_owned(),
                message: format!(
                    "{field}: {value:?} here, but {:?} in {} ({}); keep one",
                    prev.value,
                    crate::display::shown(&prev.file),
                    prev.field
                ),
            });
        }
        return Ok(());
    }
    *slot = Some(Setting { value, file: file.to_owned(), field });
    Ok(())
}

/// Converts Istio resources (and at most one `warden/v1` document giving
/// the settings Istio has no word for: name, identity, gatewayPorts,
/// responses, dlp) into a valid `warden/v1` policy.
pub fn import(sources: &[Source], options: &Options) -> Result<Import, ImportError> {
    let error = |file: &Path, message: String| ImportError { file: file.to_owned(), message };
    let mut notes: Vec<Note> = Vec::new();
    let note =
        |notes: &mut Vec<Note>, file: &Path, message: String| notes.push(Note { file: Some(file.to_owned()), message });

    // Read and classify every document first: targetRefs may name a
    // ServiceEntry from a later file.
    let mut docs: Vec<(&Path, Value, Kind)> = Vec::new();
    for source in sources {
        let file = source.file.as_path();
        for (i, value) in documents(&source.text).map_err(|m| error(file, m))?.into_iter().enumerate() {
            let kind = classify(&value).map_err(|m| error(file, format!("document {}: {m}", i + 1)))?;
            docs.push((file, value, kind));
        }
    }

    let mut base: Option<(PathBuf, Map<String, Value>)> = None;
    let mut outbound: Option<Setting<OutboundTrafficPolicy>> = None;
    let mut normalization: Option<Setting<PathNormalization>> = None;
    let mut trust_domain: Option<Setting<String>> = None;
    let mut trust_domain_aliases: Option<Setting<Vec<String>>> = None;
    let mut service_entries: Vec<String> = Vec::new();
    for (file, value, kind) in &docs {
        match kind {
            Kind::ServiceEntry => {
                let meta = Meta::of(value).map_err(|m| error(file, format!("ServiceEntry: {m}")))?;
                service_entries.push(meta.id());
            }
            Kind::Warden(doc) => {
                let Value::Object(doc) = doc else {
                    return Err(error(file, "the warden/v1 document must be a mapping".into()));
                };
                if let Some((first, _)) = &base {
                    return Err(error(
                        file,
                        format!(
                            "a second warden/v1 document (the first is in {}): give at most one, for the settings \
                             Istio has no word for",
                            crate::display::shown(first)
                        ),
                    ));
                }
                for key in ["services", "authorization"] {
                    if doc.get(key).is_some_and(|v| v != &json!([])) {
                        return Err(error(
                            file,
                            format!(
                                "warden/v1 {key}: beside Istio resources, the registry and authorization come from \
                                 ServiceEntries and AuthorizationPolicies; this document may only give settings \
                                 (name, identity, gatewayPorts, responses, dlp, ...)"
                            ),
                        ));
                    }
                }
                if let Some(v) = doc.get("outboundTrafficPolicy") {
                    let mode: OutboundTrafficPolicy = serde_json::from_value(v.clone())
                        .map_err(|e| error(file, format!("outboundTrafficPolicy: {e}")))?;
                    set_once(&mut outbound, mode, file, "outboundTrafficPolicy")?;
                }
                if let Some(v) = doc.get("pathNormalization") {
                    let mode: PathNormalization = serde_json::from_value(v.clone())
                        .map_err(|e| error(file, format!("pathNormalization: {e}")))?;
                    set_once(&mut normalization, mode, file, "pathNormalization")?;
                }
                base = Some((file.to_path_buf(), doc.clone()));
            }
            Kind::Mesh(mesh) => {
                let settings = mesh_config(mesh).map_err(|(f, m)| {
                    error(
                        file,
                        if f.is_empty() { format!("mesh config: {m}") } else { format!("mesh config: {f}: {m}") },
                    )
                })?;
                if let Some(o) = settings.outbound {
                    set_once(&mut outbound, o, file, "mesh outboundTrafficPolicy.mode")?;
                }
                if let Some(n) = settings.normalization {
                    set_once(&mut normalization, n, file, "mesh pathNormalization.normalization")?;
                }
                if let Some(td) = settings.trust_domain {
                    set_once(&mut trust_domain, td, file, "mesh trustDomain")?;
                }
                if let Some(aliases) = settings.trust_domain_aliases {
                    set_once(&mut trust_domain_aliases, aliases, file, "mesh trustDomainAliases")?;
                }
            }
            _ => {}
        }
    }

    let mut listeners = ListenerPorts::of(base.as_ref().map(|(_, doc)| doc).unwrap_or(&Map::new()));
    let mut services = Vec::new();
    let mut authorization = Vec::new();
    let mut origins = Vec::new();
    for (file, value, kind) in &docs {
        match kind {
            Kind::ServiceEntry => {
                let meta = Meta::of(value).map_err(|m| error(file, format!("ServiceEntry: {m}")))?;
                let resource = format!("ServiceEntry {}", meta.id());
                let (service, ignored) =
                    service_entry(&meta, value).map_err(|(f, m)| error(file, format!("{resource}: {f}: {m}")))?;
                for n in ignored {
                    note(&mut notes, file, format!("{resource}: {n}"));
                }
                origins.push(Origin {
                    field: format!("services[{}]", services.len()),
                    resource,
                    file: file.to_path_buf(),
                });
                services.push(service);
            }
            Kind::AuthorizationPolicy => {
                let meta = Meta::of(value).map_err(|m| error(file, format!("AuthorizationPolicy: {m}")))?;
                let resource = format!("AuthorizationPolicy {}", meta.id());
                let converted = authorization_policy(&meta, value, &service_entries, &mut listeners)
                    .map_err(|(f, m)| error(file, format!("{resource}: {f}: {m}")))?;
                for n in converted.notes {
                    note(&mut notes, file, format!("{resource}: {n}"));
                }
                origins.push(Origin {
                    field: format!("authorization[{}]", authorization.len()),
                    resource,
                    file: file.to_path_buf(),
                });
                authorization.push(converted.policy);
            }
            Kind::Skip(reason) => {
                let text = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
                // Cluster-scoped kinds (Namespace, ...) have no namespace.
                let name = match value.get("metadata").and_then(|m| m.get("namespace")).and_then(Value::as_str) {
                    Some(_) => Meta::of(value).map(|m| format!(" {}", m.id())).unwrap_or_default(),
                    None => Meta::of(value).map(|m| format!(" {}", m.name)).unwrap_or_default(),
                };
                note(&mut notes, file, format!("skipped {}{name} ({}): {reason}", text("kind"), text("apiVersion")));
            }
            Kind::Mesh(_) | Kind::Warden(_) => {}
        }
    }

    let (base_file, mut settings) = match base {
        Some((file, doc)) => (Some(file), doc),
        None => (None, Map::new()),
    };
    let base_name = match settings.remove("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n),
        Some(other) => {
            let file = base_file.clone().unwrap_or_default();
            return Err(error(&file, format!("name: {other} is not a string")));
        }
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
            notes.push(Note {
                file: None,
                message: "no mesh outboundTrafficPolicy in the input: REGISTRY_ONLY, Warden's default (Istio's is \
                          ALLOW_ANY; --outbound-traffic-policy ALLOW_ANY to follow it)"
                    .into(),
            });
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
            let file = base_file.clone().unwrap_or_default();
            return Err(error(&file, format!("{key}: the mesh config sets the trust domain; keep one")));
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
    let import = Import { policy, notes, origins };
    // Compile it now, so that an error names the Istio resource and field.
    if let Err(e) = warden_engine::compile::load(&import.config()) {
        let fallback = base_file.or_else(|| sources.first().map(|s| s.file.clone())).unwrap_or_default();
        return Err(locate(&e, &import.origins, &fallback));
    }
    Ok(import)
}

/// `services[3].hosts[0]` → `(3, ".hosts[0]")`.
fn indexed<'a>(path: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('[')?;
    let (index, rest) = rest.split_once(']')?;
    Some((index.parse().ok()?, rest))
}

/// Names the Istio resource and field of an error in the converted policy.
fn locate(err: &PolicyError, origins: &[Origin], fallback: &Path) -> ImportError {
    let message = err.message();
    let origin = |field: String| origins.iter().find(|o| o.field == field);
    if let Some((i, rest)) = indexed(&err.path, "services") {
        if let Some(o) = origin(format!("services[{i}]")) {
            let field = if let Some((j, _)) = indexed(rest, ".ports") {
                format!("spec.ports[{j}].number")
            } else if rest == ".name" {
                "metadata.name".to_owned()
            } else {
                format!("spec{rest}")
            };
            return ImportError { file: o.file.clone(), message: format!("{}: {field}: {message}", o.resource) };
        }
    }
    if let Some((i, rest)) = indexed(&err.path, "authorization") {
        if let Some(o) = origin(format!("authorization[{i}]")) {
            let field = if rest == ".name" { "metadata.name".to_owned() } else { format!("spec{rest}") };
            return ImportError { file: o.file.clone(), message: format!("{}: {field}: {message}", o.resource) };
        }
    }
    ImportError { file: fallback.to_owned(), message: format!("the converted policy: {err}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import_yaml(yaml: &str) -> Result<Import, ImportError> {
        import(&[Source::new("istio.yaml", yaml)], &Options::default())
    }

    fn doc(yaml: &str) -> Value {
        match import_yaml(yaml) {
            Ok(i) => i.document(),
            Err(e) => panic!("{e}"),
        }
    }

    fn error(yaml: &str) -> String {
        match import_yaml(yaml) {
            Ok(i) => panic!("expected an error, got {}", i.document()),
            Err(e) => e.message,
        }
    }

    fn notes(yaml: &str) -> Vec<String> {
        match import_yaml(yaml) {
            Ok(i) => i.notes.iter().map(|n| n.message.clone()).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    const SE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: egress}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
  location: MESH_EXTERNAL
  resolution: DNS
";

    fn with_se(ap: &str) -> String {
        format!("{SE}---\n{ap}")
    }

    fn ap(spec: &str) -> String {
        with_se(&format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: egress}}\nspec:\n{spec}"
        ))
    }

    #[test]
    fn a_service_entry_is_a_service_named_namespace_slash_name_on_its_port_numbers() {
        for version in ["v1", "v1beta1", "v1alpha3"] {
            let d = doc(&SE.replace("networking.istio.io/v1", &format!("networking.istio.io/{version}")));
            assert_eq!(d["services"], json!([{"name": "egress/httpbin", "hosts": ["httpbin.org"], "ports": [80]}]));
        }
        let d = doc(SE);
        assert_eq!(d["name"], DEFAULT_NAME);
        assert_eq!(d["outboundTrafficPolicy"], "REGISTRY_ONLY");
        assert_eq!(d["pathNormalization"], "BASE");
        assert_eq!(d["identity"], json!([{"peerCertificate": {}}, {"filterState": "io.istio.peer_principal"}]));
        assert_eq!(d["authorization"], json!([]));
        let no_ns = doc("apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: a}\nspec: {hosts: [a.com], ports: [{number: 443}]}\n");
        assert_eq!(no_ns["services"][0]["name"], "default/a");
    }

    #[test]
    fn service_entry_fields_that_do_not_change_the_decision_are_noted() {
        let n = notes(&SE.replace(
            "  location: MESH_EXTERNAL\n",
            "  location: MESH_INTERNAL\n  addresses: [10.0.0.1]\n  endpoints: [{address: 1.2.3.4}]\n  subjectAltNames: [x]\n  exportTo: ['*']\n",
        ));
        assert!(n.iter().any(|n| n.contains("MESH_INTERNAL")), "{n:?}");
        assert!(n.iter().any(|n| n.contains("spec.addresses ignored")), "{n:?}");
        assert!(n.iter().any(|n| n.contains("spec.endpoints, spec.subjectAltNames ignored")), "{n:?}");
    }

    #[test]
    fn service_entry_fields_that_change_the_meaning_are_errors() {
        let e = error(&SE.replace("  location: MESH_EXTERNAL\n", "  exportTo: ['.']\n"));
        assert!(e.starts_with("ServiceEntry egress/httpbin: spec.exportTo: "), "{e}");
        let e = error(&SE.replace("  location: MESH_EXTERNAL\n", "  hostz: [a]\n"));
        assert!(e.starts_with("ServiceEntry egress/httpbin: spec.hostz: not a field of ServiceEntry"), "{e}");
        let e = error(&SE.replace("DNS", "DNZ"));
        assert!(e.starts_with("ServiceEntry egress/httpbin: spec.resolution: \"DNZ\": expected one of"), "{e}");
        let e = error(&SE.replace("  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]\n", ""));
        assert!(e.starts_with("ServiceEntry egress/httpbin: spec.ports: required"), "{e}");
        let e = error(&SE.replace("number: 80", "number: 70000"));
        assert_eq!(e, "ServiceEntry egress/httpbin: spec.ports[0].number: 70000 is not a port (1-65535)");
        let e = error(&SE.replace("[httpbin.org]", "[httpbin.org, '*']"));
        assert!(e.starts_with("ServiceEntry egress/httpbin: spec.hosts[1]: '*' would register every host"), "{e}");
        let e = error(&SE.replace("metadata: {name: httpbin, namespace: egress}", "metadata: {namespace: egress}"));
        assert_eq!(e, "ServiceEntry: metadata.name: required");
        let e = error(&format!("{SE}---\n{SE}"));
        assert_eq!(e, "ServiceEntry egress/httpbin: metadata.name: 'egress/httpbin' is defined twice");
    }

    #[test]
    fn target_refs_to_a_service_entry_scope_the_policy() {
        let d = doc(&ap(
            "  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin}]\n  rules: [{}]\n",
        ));
        assert_eq!(
            d["authorization"],
            json!([{"name": "egress/p", "action": "ALLOW", "services": ["egress/httpbin"], "rules": [{}]}])
        );
        // The deprecated singular targetRef too.
        let d =
            doc(&ap("  targetRef: {kind: ServiceEntry, group: networking.istio.io, name: httpbin}\n  rules: [{}]\n"));
        assert_eq!(d["authorization"][0]["services"], json!(["egress/httpbin"]));
        // A ServiceEntry of another namespace, or one not in the input.
        let e = error(&ap("  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: other}]\n"));
        assert!(
            e.starts_with(
                "AuthorizationPolicy egress/p: spec.targetRefs[0]: ServiceEntry egress/other is not in the input"
            ),
            "{e}"
        );
        let e = error(&ap(
            "  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin, namespace: other}]\n",
        ));
        assert!(e.starts_with("AuthorizationPolicy egress/p: spec.targetRefs[0].namespace: 'other'"), "{e}");
        let e = error(&ap("  targetRefs: [{kind: ServiceEntry, name: httpbin}]\n"));
        assert!(e.starts_with("AuthorizationPolicy egress/p: spec.targetRefs[0].group:"), "{e}");
        let e = error(&ap("  targetRefs: [{kind: Service, group: '', name: httpbin}]\n"));
        assert!(
            e.starts_with("AuthorizationPolicy egress/p: spec.targetRefs[0]: Service httpbin: Warden scopes"),
            "{e}"
        );
    }

    #[test]
    fn a_gateway_target_a_selector_or_no_target_applies_to_every_request() {
        let gateway = import_yaml(&ap(
            "  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}\n  - {kind: ServiceEntry, group: networking.istio.io, name: httpbin}\n  rules: [{}]\n",
        ))
        .unwrap();
        assert!(gateway.document()["authorization"][0].get("services").is_none());
        assert!(gateway.notes.iter().any(|n| n.message.contains("Gateway waypoint: applies to every request")));
        let selector = import_yaml(&ap("  selector: {matchLabels: {istio: egressgateway}}\n  rules: [{}]\n")).unwrap();
        assert!(selector.document()["authorization"][0].get("services").is_none());
        assert!(selector.notes.iter().any(|n| n.message.contains("spec.selector: applies to every request")));
        let namespace_wide = doc(&ap("  rules: [{}]\n"));
        assert!(namespace_wide["authorization"][0].get("services").is_none());
        let e = error(&ap(
            "  selector: {matchLabels: {a: b}}\n  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin}]\n",
        ));
        assert!(e.starts_with("AuthorizationPolicy egress/p: spec.selector: only one of"), "{e}");
    }

    #[test]
    fn actions_and_the_dry_run_annotation() {
        assert_eq!(doc(&ap("  action: DENY\n  rules: [{}]\n"))["authorization"][0]["action"], "DENY");
        assert_eq!(doc(&ap("  action: AUDIT\n  rules: [{}]\n"))["authorization"][0]["action"], "AUDIT");
        // spec: {} is ALLOW with no rules: Istio's allow-nothing.
        assert_eq!(doc(&ap("  {}\n"))["authorization"][0], json!({"name": "egress/p", "action": "ALLOW", "rules": []}));
        let e = error(&ap("  action: CUSTOM\n  provider: {name: ext}\n"));
        assert!(
            e.starts_with(
                "AuthorizationPolicy egress/p: spec.action: CUSTOM (external authorization) is not supported"
            ),
            "{e}"
        );
        let dry = |value: &str, action: &str| {
            with_se(&format!(
                "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: egress\n  annotations: {{istio.io/dry-run: {value}}}\nspec: {{action: {action}, rules: [{{}}]}}\n"
            ))
        };
        assert_eq!(doc(&dry("\"true\"", "DENY"))["authorization"][0]["dryRun"], true);
        assert_eq!(doc(&dry("\"True\"", "ALLOW"))["authorization"][0]["dryRun"], true);
        assert!(doc(&dry("\"false\"", "DENY"))["authorization"][0].get("dryRun").is_none());
        let e = error(&dry("\"yes\"", "DENY"));
        assert!(
            e.starts_with("AuthorizationPolicy egress/p: metadata.annotations[\"istio.io/dry-run\"]: 'yes'"),
            "{e}"
        );
        let e = error(&dry("\"true\"", "AUDIT"));
        assert!(e.contains("dry-run applies to ALLOW and DENY only"), "{e}");
    }

    #[test]
    fn rules_map_one_to_one() {
        let d = doc(&ap("  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/admin]
        notNamespaces: [sandbox]
        ipBlocks: [10.0.0.0/8]
        notRemoteIpBlocks: [192.0.2.1]
    to:
    - operation: {methods: [GET], paths: [/get, '/status/{*}'], ports: ['80'], notPaths: [/x]}
    when:
    - {key: 'request.headers[x-env]', values: [prod]}
    - {key: source.namespace, notValues: [test]}
"));
        assert_eq!(
            d["authorization"][0]["rules"],
            json!([{
                "from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"], "notNamespaces": ["sandbox"],
                                     "ipBlocks": ["10.0.0.0/8"], "notRemoteIpBlocks": ["192.0.2.1"]}}],
                "to": [{"operation": {"methods": ["GET"], "paths": ["/get", "/status/{*}"], "ports": ["80"], "notPaths": ["/x"]}}],
                "when": [{"key": "request.headers[x-env]", "values": ["prod"]}, {"key": "source.namespace", "notValues": ["test"]}]
            }])
        );
    }

    #[test]
    fn newer_source_fields_map_one_to_one() {
        let d =
            doc(&ap("  rules:\n  - from: [{source: {serviceAccounts: [admin, other/bot], notServiceAccounts: [x], \
             trustDomains: [td1], notTrustDomains: ['bad*']}}]\n"));
        assert_eq!(
            d["authorization"][0]["rules"][0]["from"][0]["source"],
            json!({"serviceAccounts": ["egress/admin", "other/bot"], "notServiceAccounts": ["egress/x"],
                   "trustDomains": ["td1"], "notTrustDomains": ["bad*"]})
        );
        let e = error(&ap("  rules:\n  - from: [{source: {serviceAccounts: ['a/b/c']}}]\n"));
        assert!(
            e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].from[0].source.serviceAccounts[0]: 'a/b/c'"),
            "{e}"
        );
        // Istio never matches a principal written with its scheme.
        let e = error(&ap("  rules:\n  - from: [{source: {principals: ['spiffe://td/ns/a/sa/b']}}]\n"));
        assert!(
            e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].from[0].source.principals[0]: 'spiffe://"),
            "{e}"
        );
    }

    #[test]
    fn fields_warden_cannot_honour_are_errors_naming_resource_and_field() {
        let cases = [
            (
                "  rules:\n  - from: [{source: {requestPrincipals: ['*']}}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].from[0].source.requestPrincipals: JWT request principals are not supported",
            ),
            (
                "  rules:\n  - {}\n  - from: [{source: {notRequestPrincipals: ['*']}}]\n",
                "AuthorizationPolicy egress/p: spec.rules[1].from[0].source.notRequestPrincipals: JWT",
            ),
            (
                "  rules:\n  - when: [{key: 'request.auth.claims[groups]', values: [admin]}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].when[0].key: 'request.auth.claims[groups]': JWT claims",
            ),
            (
                "  rules:\n  - when: [{key: destination.ip, values: [1.2.3.4]}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].when[0].key: 'destination.ip' is not a supported condition key",
            ),
            (
                "  rules:\n  - to: [{operation: {paths: ['/a{*}']}}]\n",
                "AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.paths[0]: ",
            ),
            ("  rules:\n  - from: [{source: {}}]\n", "AuthorizationPolicy egress/p: spec.rules[0].from[0].source: must not be empty"),
            ("  rules:\n  - to: [{operation: {}}]\n", "AuthorizationPolicy egress/p: spec.rules[0].to[0].operation: must not be empty"),
            ("  rules:\n  - to: [{operation: {hostz: [a]}}]\n", "AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.hostz: not a field"),
            ("  rules:\n  - fro: []\n", "AuthorizationPolicy egress/p: spec.rules[0].fro: not a field"),
            ("  rulez: []\n", "AuthorizationPolicy egress/p: spec.rulez: not a field of AuthorizationPolicy"),
            ("  action: ALLOWED\n", "AuthorizationPolicy egress/p: spec.action: \"ALLOWED\": expected one of"),
        ];
        for (spec, expected) in cases {
            let e = error(&ap(spec));
            assert!(e.starts_with(expected), "{spec}\n  got      {e}\n  expected {expected}");
        }
    }

    #[test]
    fn hosts_keep_their_ports() {
        let rules = |hosts: &str| {
            doc(&ap(&format!("  rules:\n  - to: [{{operation: {{methods: [GET], hosts: {hosts}}}}}]\n")))
                ["authorization"][0]["rules"][0]["to"]
                .clone()
        };
        assert_eq!(
            rules("[a.com, 'b.com:*', '*.c.com:443', '[::1]:8080']"),
            json!([{"operation": {"hosts": ["a.com", "b.com:*", "*.c.com:443", "[::1]:8080"], "methods": ["GET"]}}])
        );
        // An error names the to[] entry as written.
        let e = error(&ap("  rules:\n  - to:\n    - operation: {hosts: ['a.com:1']}\n    - operation: {hosts: ['c.com:3'], paths: ['/a{*}']}\n"));
        assert!(e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].to[1].operation.paths[0]"), "{e}");
        for literal in ["'*.a.com:*'", "'a*b.com:80'", "'a.com:http'", "':80'"] {
            let e = error(&ap(&format!("  rules:\n  - to: [{{operation: {{hosts: [{literal}]}}}}]\n")));
            assert!(e.starts_with("AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.hosts[0]: "), "{e}");
        }
    }

    #[test]
    fn the_mesh_config_sets_the_trust_domain_and_its_aliases() {
        let mesh = "trustDomain: td1\ntrustDomainAliases: [cluster.local, old-td]\n";
        let d = doc(&format!("{SE}---\n{mesh}"));
        assert_eq!(d["trustDomain"], "td1");
        assert_eq!(d["trustDomainAliases"], json!(["cluster.local", "old-td"]));
        // Aliases without a trust domain are aliases of Istio's default.
        let d = doc(&format!("{SE}---\nmeshConfig: {{trustDomainAliases: [old-td]}}\n"));
        assert_eq!(d["trustDomain"], "cluster.local");
        // None given: none written (principals are matched as written).
        assert_eq!(doc(SE).get("trustDomain"), None);
    }

    #[test]
    fn the_mesh_config_sets_outbound_traffic_policy_and_path_normalization() {
        let bare = "outboundTrafficPolicy: {mode: ALLOW_ANY}\npathNormalization: {normalization: MERGE_SLASHES}\n";
        let d = doc(&format!("{SE}---\n{bare}"));
        assert_eq!(
            (d["outboundTrafficPolicy"].as_str(), d["pathNormalization"].as_str()),
            (Some("ALLOW_ANY"), Some("MERGE_SLASHES"))
        );
        let operator = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n    outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n    pathNormalization: {normalization: DEFAULT}\n";
        let d = doc(&format!("{SE}---\n{operator}"));
        assert_eq!(
            (d["outboundTrafficPolicy"].as_str(), d["pathNormalization"].as_str()),
            (Some("REGISTRY_ONLY"), Some("BASE"))
        );
        let helm = "meshConfig:\n  outboundTrafficPolicy: {mode: ALLOW_ANY}\n";
        assert_eq!(doc(&format!("{SE}---\n{helm}"))["outboundTrafficPolicy"], "ALLOW_ANY");
        let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |-\n    outboundTrafficPolicy:\n      mode: ALLOW_ANY\n";
        assert_eq!(doc(&format!("{SE}---\n{config_map}"))["outboundTrafficPolicy"], "ALLOW_ANY");
        // The command line wins.
        let options =
            Options { outbound_traffic_policy: Some(OutboundTrafficPolicy::RegistryOnly), ..Options::default() };
        let i = import(&[Source::new("a.yaml", format!("{SE}---\n{helm}"))], &options).unwrap();
        assert_eq!(i.document()["outboundTrafficPolicy"], "REGISTRY_ONLY");
        // Two mesh configs that disagree.
        let e = import(
            &[Source::new("a.yaml", format!("{SE}---\n{helm}")), Source::new("b.yaml", operator)],
            &Options::default(),
        )
        .unwrap_err();
        assert_eq!(e.file, PathBuf::from("b.yaml"));
        assert!(
            e.message.starts_with("mesh outboundTrafficPolicy.mode: RegistryOnly here, but AllowAny in a.yaml"),
            "{}",
            e.message
        );
        let e = error(&format!("{SE}---\noutboundTrafficPolicy: {{mode: NOPE}}\n"));
        assert!(e.starts_with("mesh config: outboundTrafficPolicy.mode: \"NOPE\""), "{e}");
        // Without one: REGISTRY_ONLY, noted.
        assert!(notes(SE).iter().any(|n| n.starts_with("no mesh outboundTrafficPolicy in the input: REGISTRY_ONLY")));
    }

    #[test]
    fn a_warden_document_gives_the_settings_istio_has_no_word_for() {
        let base = "apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: gw}\nspec:\n  gatewayPorts: {'8080': 80}\n  identity: [{peerCertificate: {}}]\n  outboundTrafficPolicy: ALLOW_ANY\n";
        let d = doc(&format!("{base}---\n{SE}"));
        assert_eq!(d["name"], "gw");
        assert_eq!(d["gatewayPorts"], json!({"8080": 80}));
        assert_eq!(d["identity"], json!([{"peerCertificate": {}}]));
        assert_eq!(d["outboundTrafficPolicy"], "ALLOW_ANY");
        let options = Options { name: Some("cli".into()), ..Options::default() };
        let i = import(&[Source::new("a.yaml", format!("{base}---\n{SE}"))], &options).unwrap();
        assert_eq!(i.document()["name"], "cli");
        let e = error(&format!("name: x\nservices: [{{name: a, hosts: [a.com]}}]\n---\n{SE}"));
        assert!(e.starts_with("warden/v1 services: beside Istio resources"), "{e}");
        let e = error(&format!("name: x\n---\nname: y\n---\n{SE}"));
        assert!(e.starts_with("a second warden/v1 document"), "{e}");
        // Its own errors name its fields.
        let e = import(
            &[Source::new("base.yaml", "name: x\nresponses: {denied: {status: 99}}\n"), Source::new("se.yaml", SE)],
            &Options::default(),
        )
        .unwrap_err();
        assert_eq!(e.file, PathBuf::from("base.yaml"));
        assert!(e.message.starts_with("the converted policy: responses.denied.status"), "{}", e.message);
    }

    #[test]
    fn a_gateway_listener_port_in_a_policy_is_the_port_workloads_called() {
        let base = "name: gw\ngatewayPorts: {'8080': 80}\n---\n";
        let i = import_yaml(&format!(
            "{base}{}",
            ap("  rules:\n  - to: [{operation: {ports: ['8080', '9090'], hosts: [a.com]}}, {operation: {hosts: ['b.com:8080']}}]\n    when: [{key: destination.port, notValues: ['8080']}]\n")
        ))
        .unwrap();
        let rule = &i.document()["authorization"][0]["rules"][0];
        // The listener port is rewritten; the port of a host:port (the authority's) is not.
        assert_eq!(
            rule["to"],
            json!([
                {"operation": {"hosts": ["a.com"], "ports": ["80", "9090"]}},
                {"operation": {"hosts": ["b.com:8080"]}}
            ])
        );
        assert_eq!(rule["when"], json!([{"key": "destination.port", "notValues": ["80"]}]));
        let notes: Vec<&str> = i.notes.iter().map(|n| n.message.as_str()).collect();
        assert!(notes.iter().any(|n| n.starts_with("AuthorizationPolicy egress/p: spec.rules[0].to[0].operation.ports[0]: 8080 is the gateway's listener port for 80")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("spec.rules[0].when[0].notValues[0]: 8080")), "{notes:?}");
    }

    #[test]
    fn other_kinds_are_skipped_with_a_note() {
        let yaml = format!(
            "{SE}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: tls, namespace: egress}}\nspec: {{host: httpbin.org}}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: waypoint, namespace: egress}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: sleep}}\n---\n"
        );
        let n = notes(&yaml);
        assert!(
            n.contains(
                &"skipped DestinationRule egress/tls (networking.istio.io/v1): routing and TLS, not policy".to_owned()
            ),
            "{n:?}"
        );
        assert!(
            n.iter().any(|n| n.starts_with(
                "skipped Gateway egress/waypoint (gateway.networking.k8s.io/v1): the gateway or waypoint itself"
            )),
            "{n:?}"
        );
        assert!(
            n.iter().any(|n| n.starts_with("skipped Deployment sleep (apps/v1): not a kind Warden reads")),
            "{n:?}"
        );
        // A kubectl List is read item by item.
        let list = format!("apiVersion: v1\nkind: List\nitems:\n- {}", SE.replace('\n', "\n  "));
        assert_eq!(doc(&list)["services"][0]["name"], "egress/httpbin");
        let e = error("apiVersion: security.istio.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n");
        assert!(e.starts_with("document 1: apiVersion: security.istio.io/v1alpha1: Warden reads AuthorizationPolicy of security.istio.io v1, v1beta1"), "{e}");
    }

    #[test]
    fn istio_input_is_told_from_a_warden_document() {
        assert!(is_istio(SE));
        assert!(is_istio("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"));
        assert!(is_istio("name: a\n---\nname: b\n"));
        assert!(!is_istio("name: a\noutboundTrafficPolicy: REGISTRY_ONLY\n"));
        assert!(!is_istio("apiVersion: warden/v1\nkind: EgressPolicy\nspec: {name: a}\n"));
        assert!(!is_istio("{\"name\": \"a\"}"));
        assert!(!is_istio("a: [\n"));
    }

    #[test]
    fn the_yaml_output_names_where_each_entry_came_from() {
        let i = import_yaml(&ap("  rules: [{}]\n")).unwrap();
        let yaml = i.to_yaml().unwrap();
        assert!(
            yaml.starts_with(
                "# warden/v1 policy converted by `warden import` from Istio resources\n\
             #   services[0]       ServiceEntry egress/httpbin (istio.yaml)\n\
             #   authorization[0]  AuthorizationPolicy egress/p (istio.yaml)\n\
             name: istio\noutboundTrafficPolicy: REGISTRY_ONLY\n"
            ),
            "{yaml}"
        );
        let back: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back, i.document());
        assert_eq!(i.counts(), (1, 1));
    }
}
