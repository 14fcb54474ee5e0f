//! TLS and TCP traffic in the Istio input: which ServiceEntries carry only
//! connections (their ports are TLS, HTTPS or TCP, so Warden decides them
//! as a network filter, with Istio's TCP semantics), and what Gateways and
//! VirtualServices route by server name. The importer checks those routes
//! against the registry and says what each policy rule does on
//! connections, instead of skipping the routing resources.

use super::resources::{GatewaySpec, Port, Resource, VirtualServiceSpec};
use serde_json::Value;
use warden_engine::document::{Action, AuthzPolicyDoc};

/// The protocols Istio inspects as HTTP; a port with any other (TLS,
/// HTTPS, TCP, MONGO, ...) carries connections Warden cannot read into.
const HTTP_PROTOCOLS: &[&str] = &["HTTP", "HTTP2", "GRPC", "GRPC-WEB"];

/// A ServiceEntry as the TLS checks see it.
#[derive(Debug, Clone)]
pub(super) struct Registered {
    /// `<namespace>/<name>`.
    pub id: String,
    pub hosts: Vec<String>,
    pub ports: Vec<u16>,
    /// Every port names a protocol, and none is HTTP: Warden sees its
    /// traffic as connections only.
    pub connections_only: bool,
}

impl Registered {
    /// Reads what it needs of a ServiceEntry document (the entry itself is
    /// validated where it is converted).
    pub fn of(id: String, value: &Value) -> Registered {
        let spec = value.get("spec");
        let list = |key: &str| spec.and_then(|s| s.get(key)).and_then(Value::as_array).cloned().unwrap_or_default();
        let hosts = list("hosts").iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect();
        let port_values = list("ports");
        let ports = port_values.iter().filter_map(|p| port_number(p.get("number")?)).collect();
        let protocols: Vec<Option<String>> = port_values
            .iter()
            .map(|p| p.get("protocol").and_then(Value::as_str).map(str::to_ascii_uppercase))
            .collect();
        let connections_only = !protocols.is_empty()
            && protocols.iter().all(|p| p.as_deref().is_some_and(|p| !HTTP_PROTOCOLS.contains(&p)));
        Registered { id, hosts, ports, connections_only }
    }

    fn registers(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        let host_matches = self.hosts.iter().any(|h| match h.strip_prefix('*') {
            Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
            None => *h == host,
        });
        host_matches && port.is_none_or(|p| self.ports.contains(&p))
    }
}

fn port_number(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn typed_port(port: &Option<Port>) -> Option<u16> {
    match port {
        Some(Port::Number(n)) => u16::try_from(*n).ok(),
        Some(Port::Text(s)) => s.trim().parse().ok(),
        None => None,
    }
}

/// Hosts no ServiceEntry registers on `port`; a bare `*` is left out (it
/// names no host).
fn unregistered<'h>(hosts: impl Iterator<Item = &'h str>, port: Option<u16>, registry: &[Registered]) -> Vec<String> {
    hosts
        .filter(|h| *h != "*")
        .map(|h| h.rsplit_once('/').map_or(h, |(_, host)| host))
        .filter(|h| !registry.iter().any(|r| r.registers(h, port)))
        .map(str::to_owned)
        .collect()
}

/// What Warden does with a Gateway's servers: those that pass TLS through
/// or terminate mesh mTLS around it are decided as connections; each of
/// their hosts should be registered on the server's port.
pub(super) fn gateway_notes(value: &Value, registry: &[Registered]) -> Vec<String> {
    let spec = match serde_json::from_value::<Resource<GatewaySpec>>(value.clone()) {
        Ok(r) => r.spec.unwrap_or_default(),
        Err(e) => return vec![format!("not read ({e}): routing only, Warden decides with the ServiceEntries")],
    };
    let mut notes = Vec::new();
    for (i, server) in spec.servers.iter().enumerate() {
        let mode = server.tls.as_ref().and_then(|t| t.mode.as_deref()).unwrap_or("");
        let port = server.port.as_ref().and_then(|p| typed_port(&p.number));
        let protocol = server.port.as_ref().and_then(|p| p.protocol.as_deref()).unwrap_or("").to_ascii_uppercase();
        let shown_port = port.map_or_else(|| "?".to_owned(), |p| p.to_string());
        let what = match mode {
            "PASSTHROUGH" | "AUTO_PASSTHROUGH" => "passes the client's TLS through",
            "ISTIO_MUTUAL" if protocol != "HTTP" && protocol != "HTTPS" && protocol != "HTTP2" => {
                "terminates mesh mTLS and forwards the bytes inside"
            }
            _ => continue,
        };
        let mut note = format!(
            "spec.servers[{i}] (port {shown_port}, {mode}) {what}: Warden decides these connections as a network \
             filter (root id warden.network; `warden wasmplugin --type network`), by server name and port"
        );
        let missing = unregistered(server.hosts.iter().map(String::as_str), port, registry);
        if !missing.is_empty() {
            note.push_str(&format!(
                "; no ServiceEntry registers {} on port {shown_port}: closed under REGISTRY_ONLY",
                missing.join(", ")
            ));
        }
        notes.push(note);
    }
    notes
}

/// What Warden does with a VirtualService's `tls` routes: each server name
/// routed through a gateway should be registered on the destination port.
pub(super) fn virtual_service_notes(value: &Value, registry: &[Registered]) -> Vec<String> {
    let spec = match serde_json::from_value::<Resource<VirtualServiceSpec>>(value.clone()) {
        Ok(r) => r.spec.unwrap_or_default(),
        Err(e) => return vec![format!("not read ({e}): routing only, Warden decides with the ServiceEntries")],
    };
    let mut notes = Vec::new();
    for (i, route) in spec.tls.iter().enumerate() {
        for (j, m) in route.matches.iter().enumerate() {
            // Routes for the sidecars (`mesh`) lead to the gateway, not out.
            if m.gateways.is_empty() || m.gateways.iter().all(|g| g == "mesh") {
                continue;
            }
            let ports: Vec<Option<u16>> = route
                .route
                .iter()
                .filter_map(|r| r.destination.as_ref())
                .map(|d| d.port.as_ref().and_then(|p| typed_port(&p.number)).or_else(|| typed_port(&m.port)))
                .collect();
            let port = ports.first().copied().flatten().or_else(|| typed_port(&m.port));
            let destinations = route.route.iter().filter_map(|r| r.destination.as_ref()?.host.as_deref());
            let mut missing = unregistered(m.sni_hosts.iter().map(String::as_str).chain(destinations), port, registry);
            missing.dedup();
            let shown_port = port.map_or_else(|| "?".to_owned(), |p| p.to_string());
            let mut note = format!(
                "spec.tls[{i}].match[{j}] routes server names {} out through the gateway: Warden decides those \
                 connections by server name and port {shown_port}",
                m.sni_hosts.join(", ")
            );
            if !missing.is_empty() {
                note.push_str(&format!("; not registered: {} (closed under REGISTRY_ONLY)", missing.join(", ")));
            }
            notes.push(note);
        }
    }
    notes
}

/// What Istio's TCP semantics do to an AuthorizationPolicy's rules on the
/// connections it applies to (ServiceEntries with TLS or TCP ports only):
/// an ALLOW rule that reads HTTP-only fields never matches them; a DENY or
/// AUDIT rule ignores those fields.
pub(super) fn tcp_semantics_notes(policy: &AuthzPolicyDoc, registry: &[Registered]) -> Vec<String> {
    let over: Vec<&str> = registry
        .iter()
        .filter(|r| r.connections_only)
        .filter(|r| policy.services.as_ref().is_none_or(|s| s.contains(&r.id)))
        .map(|r| r.id.as_str())
        .collect();
    if over.is_empty() {
        return Vec::new();
    }
    let entries = format!("ServiceEntry {} (TLS/TCP ports only)", over.join(", "));
    let mut notes = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        let fields = rule.http_only_fields();
        if fields.is_empty() {
            continue;
        }
        let effect = match policy.action {
            Action::Allow => "it never matches them, so it lets none of them through",
            Action::Deny | Action::Audit => {
                "those fields are dropped, so the rule applies to every such connection its other fields match"
            }
        };
        notes.push(format!(
            "spec.rules[{i}] reads {}, which a connection does not have: on the connections to {entries} {effect} \
             (Istio's TCP semantics)",
            fields.join(", ")
        ));
    }
    notes
}
