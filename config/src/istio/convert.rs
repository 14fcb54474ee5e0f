//! From Istio's resources ([`super::resources`]) to the engine's document
//! types: a ServiceEntry becomes a service, an AuthorizationPolicy an
//! authorization policy, a mesh config the settings it gives. Each step
//! either maps a field one to one, notes what it ignores, or refuses what
//! Warden cannot honour with the field's path.

use super::resources::{self as istio, AuthzAction, Location, Normalization, OutboundMode, Port, Scalar};
use crate::error::FieldError;
use std::collections::BTreeMap;
use warden_engine::document::{
    Action, AuthzPolicyDoc, ConditionDoc, FromDoc, OperationDoc, OutboundTrafficPolicy, PathNormalization, PortDoc,
    RuleDoc, ServiceDoc, SourceDoc, ToDoc,
};

/// The namespace of a resource without `metadata.namespace` (what `kubectl
/// apply` uses without `-n`).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Reads a value into one of Istio's types, naming the field at fault.
pub(super) fn typed<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(FieldError::from_serde)
}

/// `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub name: String,
    pub namespace: String,
}

impl Meta {
    pub fn of(metadata: &istio::ObjectMeta) -> Result<Meta, FieldError> {
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let name = text(&metadata.name).ok_or_else(|| FieldError::at("metadata.name", "required"))?;
        let namespace = text(&metadata.namespace).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        Ok(Meta { name, namespace })
    }

    /// `<namespace>/<name>`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A list that is absent, null or empty is not set.
fn set<T>(list: Option<Vec<T>>) -> Option<Vec<T>> {
    list.filter(|l| !l.is_empty())
}

fn is_set<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

// ------------------------------------------------------------ ServiceEntry

/// A ServiceEntry: the service, and notes on what was ignored.
pub(super) fn service_entry(
    meta: &Meta,
    spec: istio::ServiceEntrySpec,
) -> Result<(ServiceDoc, Vec<String>), FieldError> {
    let mut notes = Vec::new();
    let hosts =
        set(spec.hosts).ok_or_else(|| FieldError::at("spec.hosts", "required: the hosts the entry registers"))?;
    let port_list = set(spec.ports).ok_or_else(|| {
        FieldError::at("spec.ports", "required: Warden registers a host on the ports its ServiceEntry lists")
    })?;
    let mut ports = Vec::with_capacity(port_list.len());
    for (i, p) in port_list.into_iter().enumerate() {
        let path = || format!("spec.ports[{i}].number");
        let number = match p.number {
            Some(Port::Number(n)) => Some(n),
            Some(Port::Text(s)) => s.trim().parse().ok(),
            None => return Err(FieldError::at(path(), "required: the port workloads call")),
        };
        ports.push(number.ok_or_else(|| FieldError::at(path(), "expected a port number"))?);
    }
    if spec.location == Some(Location::MeshInternal) {
        notes.push(
            "spec.location MESH_INTERNAL: registered like MESH_EXTERNAL (Warden decides on requests the same way)"
                .into(),
        );
    }
    let export_to = spec.export_to.unwrap_or_default();
    if !export_to.is_empty() && !export_to.iter().any(|e| e == "*") {
        return Err(FieldError::at(
            "spec.exportTo",
            format!(
                "{export_to:?}: Warden's registry is the same for every caller; export the entry to '*' and \
                 restrict callers with an AuthorizationPolicy (from.source.namespaces)"
            ),
        ));
    }
    if is_set(&spec.addresses) {
        notes.push(
            "spec.addresses ignored: Warden registers the hosts by name, so a request whose authority is one of \
             these addresses is not registered"
                .into(),
        );
    }
    let selects = spec.workload_selector.is_some_and(|s| s.labels.is_some_and(|l| !l.is_empty()));
    let ignored: Vec<&str> = [
        ("endpoints", is_set(&spec.endpoints)),
        ("workloadSelector", selects),
        ("subjectAltNames", is_set(&spec.subject_alt_names)),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .collect();
    if !ignored.is_empty() {
        notes.push(format!(
            "spec.{} ignored: where and how traffic is sent, not whether it may go",
            ignored.join(", spec.")
        ));
    }
    Ok((ServiceDoc { name: meta.id(), hosts, ports: Some(ports) }, notes))
}

// ------------------------------------------------------ AuthorizationPolicy

/// The path of the dry-run annotation, as errors name it.
const DRY_RUN: &str = "metadata.annotations[\"istio.io/dry-run\"]";

/// `istio.io/dry-run`, read as Istio reads it (Go's `strconv.ParseBool`).
fn dry_run(metadata: &istio::ObjectMeta) -> Result<bool, FieldError> {
    match metadata.annotations.as_ref().and_then(|a| a.dry_run.as_ref()) {
        None => Ok(false),
        Some(Scalar::Bool(b)) => Ok(*b),
        Some(Scalar::Text(s)) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(FieldError::at(DRY_RUN, format!("'{s}' is not a boolean (Istio refuses it too)"))),
        },
        Some(Scalar::Other(serde_json::Value::Null)) => Ok(false),
        Some(Scalar::Other(other)) => Err(FieldError::at(DRY_RUN, format!("{other} is not a boolean"))),
    }
}

/// Where an AuthorizationPolicy applies: `None` = every request; and notes.
fn scope(
    meta: &Meta,
    spec: &istio::AuthorizationPolicySpec,
    service_entries: &[String],
) -> Result<(Option<Vec<String>>, Vec<String>), FieldError> {
    let mut refs: Vec<(String, &istio::TargetRef)> = Vec::new();
    if let Some(one) = &spec.target_ref {
        refs.push(("spec.targetRef".into(), one));
    }
    for (i, r) in spec.target_refs.iter().flatten().enumerate() {
        refs.push((format!("spec.targetRefs[{i}]"), r));
    }
    let mut notes = Vec::new();
    if spec.selector.is_some() {
        if !refs.is_empty() {
            return Err(FieldError::at(
                "spec.selector",
                "only one of selector and targetRefs may be set (Istio refuses both)",
            ));
        }
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
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let (group, kind, name) = (text(&r.group), text(&r.kind), text(&r.name));
        if name.is_empty() {
            return Err(FieldError::at(format!("{path}.name"), "required"));
        }
        let namespace = text(&r.namespace);
        if !namespace.is_empty() && namespace != meta.namespace {
            return Err(FieldError::at(
                format!("{path}.namespace"),
                format!("'{namespace}': a policy can only target resources in its own namespace ({})", meta.namespace),
            ));
        }
        match (group.as_str(), kind.as_str()) {
            ("networking.istio.io", "ServiceEntry") => {
                let id = format!("{}/{name}", meta.namespace);
                if !service_entries.contains(&id) {
                    return Err(FieldError::at(
                        path,
                        format!(
                            "ServiceEntry {id} is not in the input: give its file too (Warden cannot scope the \
                             policy without it)"
                        ),
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
                return Err(FieldError::at(format!("{path}.group"), "a ServiceEntry is in group networking.istio.io"));
            }
            _ => {
                let kind = if group.is_empty() { kind } else { format!("{kind}.{group}") };
                return Err(FieldError::at(
                    path,
                    format!(
                        "{kind} {name}: Warden scopes policies to ServiceEntries (networking.istio.io) or to a whole \
                         Gateway (gateway.networking.k8s.io)"
                    ),
                ));
            }
        }
    }
    Ok((if whole_gateway { None } else { Some(services) }, notes))
}

/// A service account `<name>` or `<namespace>/<name>`, namespace-qualified
/// as Istio reads it (a bare name is in the policy's namespace).
fn service_account(value: &str, namespace: &str, path: String) -> Result<String, FieldError> {
    let (ns, sa) = value.split_once('/').unwrap_or((namespace, value));
    let fine = |s: &str| !s.is_empty() && !s.contains('/');
    if !fine(ns) || !fine(sa) {
        return Err(FieldError::at(path, format!("'{value}': expected <name> or <namespace>/<name>")));
    }
    Ok(format!("{ns}/{sa}"))
}

fn service_accounts(list: Option<Vec<String>>, namespace: &str, path: &str) -> Result<Option<Vec<String>>, FieldError> {
    set(list)
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, v)| service_account(v, namespace, format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
}

/// Istio matches a principal as `spiffe://<principal>`: one written with
/// its scheme never matches there. Say so rather than widen it.
fn principals(list: Option<Vec<String>>, path: &str) -> Result<Option<Vec<String>>, FieldError> {
    for (i, v) in list.iter().flatten().enumerate() {
        if v.starts_with("spiffe://") {
            return Err(FieldError::at(
                format!("{path}[{i}]"),
                format!(
                    "'{v}': Istio prefixes principals with spiffe:// itself, so this one never matches; write it \
                     without the scheme"
                ),
            ));
        }
    }
    Ok(set(list))
}

fn source(src: istio::Source, path: &str, namespace: &str) -> Result<SourceDoc, FieldError> {
    for (field, list) in
        [("requestPrincipals", &src.request_principals), ("notRequestPrincipals", &src.not_request_principals)]
    {
        if list.is_some() {
            return Err(FieldError::at(
                format!("{path}.{field}"),
                "JWT request principals are not supported: Warden does not validate JWTs; use principals (the mTLS \
                 peer identity)",
            ));
        }
    }
    let doc = SourceDoc {
        principals: principals(src.principals, &format!("{path}.principals"))?,
        not_principals: principals(src.not_principals, &format!("{path}.notPrincipals"))?,
        namespaces: set(src.namespaces),
        not_namespaces: set(src.not_namespaces),
        trust_domains: set(src.trust_domains),
        not_trust_domains: set(src.not_trust_domains),
        service_accounts: service_accounts(src.service_accounts, namespace, &format!("{path}.serviceAccounts"))?,
        not_service_accounts: service_accounts(
            src.not_service_accounts,
            namespace,
            &format!("{path}.notServiceAccounts"),
        )?,
        ip_blocks: set(src.ip_blocks),
        not_ip_blocks: set(src.not_ip_blocks),
        remote_ip_blocks: set(src.remote_ip_blocks),
        not_remote_ip_blocks: set(src.not_remote_ip_blocks),
    };
    let SourceDoc {
        principals: a,
        not_principals: b,
        namespaces: c,
        not_namespaces: d,
        trust_domains: e,
        not_trust_domains: f,
        service_accounts: g,
        not_service_accounts: h,
        ip_blocks: i,
        not_ip_blocks: j,
        remote_ip_blocks: k,
        not_remote_ip_blocks: l,
    } = &doc;
    if [a, b, c, d, e, f, g, h, i, j, k, l].iter().all(|v| v.is_none()) {
        return Err(FieldError::at(path, "must not be empty (Istio refuses an empty source)"));
    }
    Ok(doc)
}

/// A gateway's listener ports (`gatewayPorts`): Istio matches a policy's
/// ports against the port the proxy listens on (the container port, 8080
/// in Istio's egress gateway for port 80), Warden against the port the
/// workload called. A listener port in a policy is rewritten, with a note.
pub(super) struct ListenerPorts {
    map: BTreeMap<u16, u16>,
    notes: Vec<String>,
}

impl ListenerPorts {
    /// From the `gatewayPorts` of a `warden/v1` document.
    pub fn of(settings: &serde_json::Map<String, serde_json::Value>) -> ListenerPorts {
        let port = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let map = settings
            .get("gatewayPorts")
            .and_then(serde_json::Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.trim().parse().ok()?, port(v)?)))
            .collect();
        ListenerPorts { map, notes: Vec::new() }
    }

    /// The service port for a listener port, with a note; else the port.
    fn rewrite(&mut self, port: Port, path: String) -> PortDoc {
        let number = match &port {
            Port::Number(n) => u16::try_from(*n).ok(),
            Port::Text(s) => s.trim().parse().ok(),
        };
        match number.and_then(|p| Some((p, *self.map.get(&p)?))) {
            Some((listener, service)) => {
                self.notes.push(format!(
                    "{path}: {listener} is the gateway's listener port for {service} (gatewayPorts); Istio matches \
                     the listener port, Warden the port the workload called: read as {service}"
                ));
                PortDoc::Text(service.to_string())
            }
            None => match port {
                Port::Number(n) => PortDoc::Number(n),
                Port::Text(s) => PortDoc::Text(s),
            },
        }
    }

    fn rewrite_all(&mut self, ports: Option<Vec<Port>>, path: &str) -> Option<Vec<PortDoc>> {
        set(ports)
            .map(|ports| ports.into_iter().enumerate().map(|(i, p)| self.rewrite(p, format!("{path}[{i}]"))).collect())
    }

    /// The notes made so far, taken.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

/// An operation. `hosts` and `notHosts` keep their ports: Warden reads
/// `host:port` as Istio does (and, where that is stricter, without the
/// port too).
fn operation(op: istio::Operation, path: &str, listeners: &mut ListenerPorts) -> Result<OperationDoc, FieldError> {
    let doc = OperationDoc {
        hosts: set(op.hosts),
        not_hosts: set(op.not_hosts),
        ports: listeners.rewrite_all(op.ports, &format!("{path}.ports")),
        not_ports: listeners.rewrite_all(op.not_ports, &format!("{path}.notPorts")),
        methods: set(op.methods),
        not_methods: set(op.not_methods),
        paths: set(op.paths),
        not_paths: set(op.not_paths),
    };
    let OperationDoc { hosts, not_hosts, ports, not_ports, methods, not_methods, paths, not_paths } = &doc;
    let strings = [hosts, not_hosts, methods, not_methods, paths, not_paths];
    if strings.iter().all(|v| v.is_none()) && ports.is_none() && not_ports.is_none() {
        return Err(FieldError::at(path, "must not be empty (Istio refuses an empty operation)"));
    }
    Ok(doc)
}

/// A `when` condition.
fn condition(
    c: istio::Condition,
    path: &str,
    namespace: &str,
    listeners: &mut ListenerPorts,
) -> Result<ConditionDoc, FieldError> {
    let key = c.key.ok_or_else(|| FieldError::at(format!("{path}.key"), "required"))?;
    if key.starts_with("request.auth.") {
        return Err(FieldError::at(
            format!("{path}.key"),
            format!("'{key}': JWT claims are not supported: Warden does not validate JWTs"),
        ));
    }
    let mut values = |list: Option<Vec<String>>, field: &str| -> Result<Option<Vec<String>>, FieldError> {
        let path = format!("{path}.{field}");
        match key.as_str() {
            "source.principal" => principals(list, &path),
            "source.serviceAccount" => service_accounts(list, namespace, &path),
            "destination.port" => Ok(set(list).map(|list| {
                list.into_iter()
                    .enumerate()
                    .map(|(j, v)| match listeners.rewrite(Port::Text(v), format!("{path}[{j}]")) {
                        PortDoc::Text(s) => s,
                        PortDoc::Number(n) => n.to_string(),
                    })
                    .collect()
            })),
            _ => Ok(set(list)),
        }
    };
    let values_doc = values(c.values, "values")?;
    let not_values = values(c.not_values, "notValues")?;
    Ok(ConditionDoc { key, values: values_doc, not_values })
}

fn rule(r: istio::Rule, path: &str, namespace: &str, listeners: &mut ListenerPorts) -> Result<RuleDoc, FieldError> {
    let mut from = Vec::new();
    for (i, f) in r.from.into_iter().flatten().enumerate() {
        let path = format!("{path}.from[{i}].source");
        let src = f.source.ok_or_else(|| FieldError::at(&path, "required"))?;
        from.push(FromDoc { source: source(src, &path, namespace)? });
    }
    let mut to = Vec::new();
    for (i, t) in r.to.into_iter().flatten().enumerate() {
        let path = format!("{path}.to[{i}].operation");
        let op = t.operation.ok_or_else(|| FieldError::at(&path, "required"))?;
        to.push(ToDoc { operation: operation(op, &path, listeners)? });
    }
    let mut when = Vec::new();
    for (i, c) in r.when.into_iter().flatten().enumerate() {
        when.push(condition(c, &format!("{path}.when[{i}]"), namespace, listeners)?);
    }
    Ok(RuleDoc { from: set(Some(from)), to: set(Some(to)), when: set(Some(when)) })
}

/// An AuthorizationPolicy converted, and the notes made on the way.
pub(super) struct Converted {
    pub policy: AuthzPolicyDoc,
    pub notes: Vec<String>,
}

pub(super) fn authorization_policy(
    meta: &Meta,
    resource: istio::Resource<istio::AuthorizationPolicySpec>,
    service_entries: &[String],
    listeners: &mut ListenerPorts,
) -> Result<Converted, FieldError> {
    let spec = resource.spec.unwrap_or_default();
    let action = match spec.action {
        None | Some(AuthzAction::Allow) => Action::Allow,
        Some(AuthzAction::Deny) => Action::Deny,
        Some(AuthzAction::Audit) => Action::Audit,
        Some(AuthzAction::Custom) => {
            return Err(FieldError::at(
                "spec.action",
                "CUSTOM (external authorization) is not supported: Warden cannot call the provider",
            ))
        }
    };
    if spec.provider.is_some() {
        return Err(FieldError::at("spec.provider", "external authorization providers are not supported"));
    }
    let dry_run = dry_run(&resource.metadata)?;
    if dry_run && action == Action::Audit {
        return Err(FieldError::at(DRY_RUN, "dry-run applies to ALLOW and DENY only (Istio refuses it on AUDIT)"));
    }
    let (services, mut notes) = scope(meta, &spec, service_entries)?;
    let mut rules = Vec::new();
    for (i, r) in spec.rules.into_iter().flatten().enumerate() {
        rules.push(rule(r, &format!("spec.rules[{i}]"), &meta.namespace, listeners)?);
    }
    notes.append(&mut listeners.take_notes());
    Ok(Converted { policy: AuthzPolicyDoc { name: meta.id(), action, services, dry_run, rules }, notes })
}

// ------------------------------------------------------------ mesh config

/// The settings a mesh config gives, and notes.
#[derive(Debug, Default)]
pub(super) struct MeshSettings {
    pub outbound: Option<OutboundTrafficPolicy>,
    pub normalization: Option<PathNormalization>,
    pub trust_domain: Option<String>,
    pub trust_domain_aliases: Option<Vec<String>>,
    pub notes: Vec<String>,
}

pub(super) fn mesh_config(mesh: istio::MeshConfig) -> MeshSettings {
    let mut notes = Vec::new();
    let outbound = mesh.outbound_traffic_policy.and_then(|o| o.mode).map(|mode| match mode {
        OutboundMode::RegistryOnly => OutboundTrafficPolicy::RegistryOnly,
        OutboundMode::AllowAny => OutboundTrafficPolicy::AllowAny,
        OutboundMode::AllowAnyDynamicDns => {
            notes.push(
                "outboundTrafficPolicy.mode ALLOW_ANY_DYNAMIC_DNS: read as ALLOW_ANY (how the proxy resolves \
                 unregistered hosts, not whether they may be called)"
                    .to_owned(),
            );
            OutboundTrafficPolicy::AllowAny
        }
    });
    let normalization = mesh.path_normalization.and_then(|p| p.normalization).map(|n| match n {
        Normalization::None => PathNormalization::None,
        Normalization::Default | Normalization::Base => PathNormalization::Base,
        Normalization::MergeSlashes => PathNormalization::MergeSlashes,
        Normalization::DecodeAndMergeSlashes => PathNormalization::DecodeAndMergeSlashes,
    });
    MeshSettings {
        outbound,
        normalization,
        trust_domain: mesh.trust_domain,
        trust_domain_aliases: set(mesh.trust_domain_aliases),
        notes,
    }
}
