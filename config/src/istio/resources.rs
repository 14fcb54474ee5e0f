//! Istio's resources as its API defines them (`istio.io/api`): the
//! ServiceEntry, the AuthorizationPolicy and the part of the mesh config
//! Warden reads. Where Istio's own schema is closed, so is the type here: a
//! field Istio does not have is an error, because a typo in a security
//! policy must not pass silently. A field Istio has is read, even where
//! Warden refuses it (`requestPrincipals`), so that the error says why.

use serde::de::{self, IgnoredAny};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A resource's `metadata` and `spec` (`apiVersion` and `kind` chose the
/// type; `status` and the rest of the envelope are not read).
#[derive(Debug, Deserialize)]
pub(super) struct Resource<S> {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Absent or null: the kind's empty spec.
    pub spec: Option<S>,
}

/// Kubernetes object metadata: open, only these fields are read.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ObjectMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub annotations: Option<Annotations>,
}

/// The annotations Warden reads.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Annotations {
    #[serde(rename = "istio.io/dry-run")]
    pub dry_run: Option<Scalar>,
}

/// An annotation's value: a string as Kubernetes has it, or the boolean a
/// YAML writer may leave unquoted.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Scalar {
    Bool(bool),
    Text(String),
    Other(serde_json::Value),
}

// ------------------------------------------------------------ ServiceEntry

/// `networking.istio.io` ServiceEntry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ServiceEntrySpec {
    pub hosts: Option<Vec<String>>,
    pub addresses: Option<Vec<String>>,
    pub ports: Option<Vec<ServicePort>>,
    pub location: Option<Location>,
    /// Read for its values only: how the proxy resolves, not who may call.
    #[allow(dead_code)]
    pub resolution: Option<Resolution>,
    pub endpoints: Option<Vec<IgnoredAny>>,
    pub workload_selector: Option<WorkloadEntrySelector>,
    pub export_to: Option<Vec<String>>,
    pub subject_alt_names: Option<Vec<String>>,
}

/// A ServiceEntry port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ServicePort {
    pub number: Option<Port>,
    #[allow(dead_code)]
    pub protocol: Option<String>,
    #[allow(dead_code)]
    pub name: Option<String>,
    #[allow(dead_code)]
    pub target_port: Option<Port>,
}

/// `spec.location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum Location {
    MeshExternal,
    MeshInternal,
}

/// `spec.resolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum Resolution {
    None,
    Static,
    Dns,
    DnsRoundRobin,
    DynamicDns,
}

/// A ServiceEntry's `workloadSelector`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkloadEntrySelector {
    pub labels: Option<BTreeMap<String, String>>,
}

// ------------------------------------------------------ AuthorizationPolicy

/// `security.istio.io` AuthorizationPolicy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct AuthorizationPolicySpec {
    pub selector: Option<WorkloadSelector>,
    pub target_ref: Option<TargetRef>,
    pub target_refs: Option<Vec<TargetRef>>,
    pub action: Option<AuthzAction>,
    /// Any value: external authorization is refused whatever it names.
    pub provider: Option<IgnoredAny>,
    pub rules: Option<Vec<Rule>>,
}

/// A policy's workload `selector`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct WorkloadSelector {
    #[allow(dead_code)]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// A `targetRef` / `targetRefs[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TargetRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// `spec.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum AuthzAction {
    Allow,
    Deny,
    Audit,
    Custom,
}

/// A rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rule {
    pub from: Option<Vec<From>>,
    pub to: Option<Vec<To>>,
    pub when: Option<Vec<Condition>>,
}

/// `from[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct From {
    pub source: Option<Source>,
}

/// `to[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct To {
    pub operation: Option<Operation>,
}

/// A rule's source.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Source {
    pub principals: Option<Vec<String>>,
    pub not_principals: Option<Vec<String>>,
    pub request_principals: Option<Vec<String>>,
    pub not_request_principals: Option<Vec<String>>,
    pub namespaces: Option<Vec<String>>,
    pub not_namespaces: Option<Vec<String>>,
    pub service_accounts: Option<Vec<String>>,
    pub not_service_accounts: Option<Vec<String>>,
    pub ip_blocks: Option<Vec<String>>,
    pub not_ip_blocks: Option<Vec<String>>,
    pub remote_ip_blocks: Option<Vec<String>>,
    pub not_remote_ip_blocks: Option<Vec<String>>,
    pub trust_domains: Option<Vec<String>>,
    pub not_trust_domains: Option<Vec<String>>,
}

/// A rule's operation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Operation {
    pub hosts: Option<Vec<String>>,
    pub not_hosts: Option<Vec<String>>,
    pub ports: Option<Vec<Port>>,
    pub not_ports: Option<Vec<Port>>,
    pub methods: Option<Vec<String>>,
    pub not_methods: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub not_paths: Option<Vec<String>>,
}

/// A `when` condition.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Condition {
    pub key: Option<String>,
    pub values: Option<Vec<String>>,
    pub not_values: Option<Vec<String>>,
}

/// A port as YAML writes one: a number, or a string (Istio's own type for
/// operation ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Port {
    Number(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Port, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Port, E> {
                Ok(Port::Number(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Port, E> {
                u64::try_from(n).map(Port::Number).map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Port, E> {
                Ok(Port::Text(text.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// ------------------------------------------------------------ mesh config

/// Istio's mesh config (`meshConfig`): open, because only these of its
/// many fields change which requests may leave; istiod checks the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MeshConfig {
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    pub path_normalization: Option<PathNormalization>,
    pub trust_domain: Option<String>,
    pub trust_domain_aliases: Option<Vec<String>>,
}

/// `outboundTrafficPolicy`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutboundTrafficPolicy {
    pub mode: Option<OutboundMode>,
    /// How the proxy connects under ALLOW_ANY_DYNAMIC_DNS, not whether.
    #[allow(dead_code)]
    pub tls: Option<IgnoredAny>,
}

/// `outboundTrafficPolicy.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum OutboundMode {
    RegistryOnly,
    AllowAny,
    AllowAnyDynamicDns,
}

/// `pathNormalization`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PathNormalization {
    pub normalization: Option<Normalization>,
}

/// `pathNormalization.normalization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum Normalization {
    Default,
    None,
    Base,
    MergeSlashes,
    DecodeAndMergeSlashes,
}

// ------------------------------------------------------------ routing read for TLS

/// What Warden reads of a Gateway (`networking.istio.io`): its servers'
/// ports, hosts and TLS modes. Open: the rest is routing Warden ignores.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GatewaySpec {
    #[serde(default)]
    pub servers: Vec<GatewayServer>,
}

/// A Gateway server.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GatewayServer {
    pub port: Option<GatewayPort>,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub tls: Option<ServerTls>,
}

/// A Gateway server's port.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GatewayPort {
    pub number: Option<Port>,
    pub protocol: Option<String>,
}

/// A Gateway server's `tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServerTls {
    pub mode: Option<String>,
}

/// What Warden reads of a VirtualService: its `tls` routes (SNI routing).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VirtualServiceSpec {
    #[serde(default)]
    pub tls: Vec<TlsRoute>,
}

/// A `tls` route.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TlsRoute {
    #[serde(default, rename = "match")]
    pub matches: Vec<TlsMatch>,
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

/// A `tls` route's match.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TlsMatch {
    #[serde(default)]
    pub sni_hosts: Vec<String>,
    pub port: Option<Port>,
    #[serde(default)]
    pub gateways: Vec<String>,
}

/// A route's destination.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RouteDestination {
    pub destination: Option<Destination>,
}

/// `destination`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Destination {
    pub host: Option<String>,
    pub port: Option<DestinationPort>,
}

/// `destination.port`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DestinationPort {
    pub number: Option<Port>,
}
