//! The `warden/v1` policy document as users write it.
//!
//! These types only describe the shape; [`crate::compile`] validates values
//! and turns a document into a [`crate::Policy`]. The registry and
//! authorization types also serialize, leaving out what is absent, so that a
//! converter (the Istio importer) can write a document. Unknown fields are errors:
//! a typo in a security policy must never silently widen access.

use serde::Deserialize;

/// A whole `warden/v1` policy document.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Document {
    /// Used in logs, metrics and decision records.
    #[serde(default)]
    pub name: String,
    /// What happens to requests for hosts outside the registry.
    #[serde(default)]
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// Where the caller's principal comes from; the first source that yields
    /// a value wins. Absent: the peer certificate only.
    #[serde(default)]
    pub identity: Option<Vec<IdentitySource>>,
    /// Where `ipBlocks` and `source.ip` read the direct peer's address.
    /// Absent: Envoy's `source.address`, when Envoy did not derive it from
    /// `x-forwarded-for`.
    #[serde(default)]
    pub peer_address: Option<PeerAddress>,
    /// The mesh's trust domain (Istio's `meshConfig.trustDomain`). With
    /// it, principals under it, its aliases or `cluster.local` match in
    /// all of them, as Istio rewrites them.
    #[serde(default)]
    pub trust_domain: Option<String>,
    /// Other names of the trust domain (Istio's `trustDomainAliases`).
    #[serde(default)]
    pub trust_domain_aliases: Option<Vec<String>>,
    /// How far request paths are normalized before matching and forwarding.
    #[serde(default)]
    pub path_normalization: PathNormalization,
    /// Listener port → service port, for gateways whose listener port is
    /// not the port workloads called (Istio's egress gateway listens on
    /// 8080 for Gateway port 80). Applies when the authority has no port.
    #[serde(default)]
    pub gateway_ports: std::collections::BTreeMap<String, u64>,
    /// Refuse paths whose meaning differs between proxies and servers.
    #[serde(default = "default_true")]
    pub reject_ambiguous_paths: bool,
    /// Refuse an HTTP request whose host differs from the server name
    /// (SNI) of the TLS connection it came on, where the gateway
    /// terminates that TLS: the "fake SNI" (domain fronting) trick.
    #[serde(default = "default_true")]
    pub require_sni_match: bool,
    /// The registry of external services (Istio ServiceEntry).
    #[serde(default)]
    pub services: Vec<ServiceDoc>,
    /// Authorization policies (Istio AuthorizationPolicy).
    #[serde(default)]
    pub authorization: Vec<AuthzPolicyDoc>,
    /// Data-loss prevention policies.
    #[serde(default)]
    pub dlp: Vec<DlpDoc>,
    /// Local responses for refused requests.
    #[serde(default)]
    pub responses: ResponsesDoc,
}

fn default_true() -> bool {
    true
}

/// Istio's `outboundTrafficPolicy.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficPolicy {
    /// Only registered hosts may be reached.
    #[default]
    RegistryOnly,
    /// Unregistered hosts may be reached; only policies without `services`
    /// apply to them.
    AllowAny,
}

/// Istio's path normalization options; each includes the one before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathNormalization {
    /// The path is matched and forwarded as received.
    None,
    /// RFC 3986: decode unreserved escapes, resolve `.`/`..`, `\` to `/`.
    Base,
    /// BASE, then `//` merged into `/`.
    #[default]
    MergeSlashes,
    /// `%2F`/`%5C` decoded first, then MERGE_SLASHES.
    DecodeAndMergeSlashes,
}

/// One place the caller's identity may come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum IdentitySource {
    /// URI SAN of the downstream mTLS peer certificate.
    PeerCertificate(Empty),
    /// A string filter-state object set by an earlier filter, read as the
    /// Envoy property `filter_state.<key>`.
    FilterState(String),
    /// The `URI=` field of `x-forwarded-client-cert` (nearest proxy's entry).
    Xfcc(Empty),
    /// A request header, verbatim (trusted or test set-ups only).
    Header(String),
}

/// Where the direct peer's address comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum PeerAddress {
    /// Envoy's `source.address`, unless Envoy took it from
    /// `x-forwarded-for` (then requests that need it are refused).
    SourceAddress(Empty),
    /// A string filter-state object set by an earlier filter, e.g. from
    /// `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%` (`ip` or `ip:port`).
    FilterState(String),
}

impl Default for PeerAddress {
    fn default() -> Self {
        PeerAddress::SourceAddress(Empty {})
    }
}

/// An empty mapping, `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A registered external service.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceDoc {
    /// Referenced by `authorization[].services` and `dlp[].services`.
    pub name: String,
    /// Exact names or a leading wildcard `*.example.com`.
    pub hosts: Vec<String>,
    /// Ports the service may be reached on; absent: any port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u64>>,
}

/// One authorization policy.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzPolicyDoc {
    /// Reported as the deciding policy.
    pub name: String,
    /// ALLOW (default), DENY or AUDIT.
    #[serde(default)]
    pub action: Action,
    /// The services the policy applies to; absent: every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// Decide and record, never enforce.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Absent or empty: the policy never matches.
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}

/// Istio's AuthorizationPolicy action (CUSTOM is not supported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// The request must match one ALLOW policy that applies.
    #[default]
    Allow,
    /// A matching request is refused.
    Deny,
    /// A matching request is recorded.
    Audit,
}

/// A rule: any `from`, any `to`, all `when`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleDoc {
    /// Absent: any source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<FromDoc>>,
    /// Absent: any operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<ToDoc>>,
    /// Absent: no extra condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Vec<ConditionDoc>>,
}

/// `from[]` entry.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FromDoc {
    /// The source to match.
    pub source: SourceDoc,
}

/// `to[]` entry.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ToDoc {
    /// The operation to match.
    pub operation: OperationDoc,
}

/// Who sends the request; every field that is set must match.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceDoc {
    /// Caller principals (`cluster.local/ns/NS/sa/SA`, `*` patterns at
    /// either end); one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principals: Option<Vec<String>>,
    /// Principals that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_principals: Option<Vec<String>>,
    /// Caller namespaces, matched in the principal as Istio does
    /// (`.*/ns/NS/.*`); one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Namespaces that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_namespaces: Option<Vec<String>>,
    /// Trust domains of the caller's principal; one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_domains: Option<Vec<String>>,
    /// Trust domains that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_trust_domains: Option<Vec<String>>,
    /// `namespace/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<Vec<String>>,
    /// Service accounts (`namespace/name`) that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_service_accounts: Option<Vec<String>>,
    /// The direct peer's address (IPs or CIDRs); one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_blocks: Option<Vec<String>>,
    /// Direct peer addresses that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ip_blocks: Option<Vec<String>>,
    /// The original client's address as Envoy derives it from
    /// `x-forwarded-for` (IPs or CIDRs); one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip_blocks: Option<Vec<String>>,
    /// Original client addresses that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_remote_ip_blocks: Option<Vec<String>>,
}

/// What the request does; every field that is set must match.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OperationDoc {
    /// Hosts of the request (`*` patterns at either end); one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Hosts that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_hosts: Option<Vec<String>>,
    /// Destination ports; one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortDoc>>,
    /// Ports that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ports: Option<Vec<PortDoc>>,
    /// HTTP methods (upper case); one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Methods that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_methods: Option<Vec<String>>,
    /// Paths (`*` at either end, `{*}`/`{**}` templates), matched on the
    /// normalized path; one must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Paths that must not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_paths: Option<Vec<String>>,
}

impl RuleDoc {
    /// The fields of the rule that exist only in HTTP, as paths under the
    /// rule (`to[0].operation.methods`, `when[1]`): on a connection (the
    /// network filter), Istio's TCP semantics make an ALLOW rule with any
    /// of them never match, and drop them from a DENY or AUDIT rule.
    pub fn http_only_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, to) in self.to.iter().flatten().enumerate() {
            let o = &to.operation;
            for (name, given) in [
                ("hosts", o.hosts.is_some()),
                ("notHosts", o.not_hosts.is_some()),
                ("methods", o.methods.is_some()),
                ("notMethods", o.not_methods.is_some()),
                ("paths", o.paths.is_some()),
                ("notPaths", o.not_paths.is_some()),
            ] {
                if given {
                    out.push(format!("to[{i}].operation.{name}"));
                }
            }
        }
        for (i, c) in self.when.iter().flatten().enumerate() {
            if c.key.starts_with("request.") {
                out.push(format!("when[{i}] ({})", c.key));
            }
        }
        out
    }
}

/// A port, written as a number or (as Istio does) a string.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum PortDoc {
    /// `8080`
    Number(u64),
    /// `"8080"`
    Text(String),
}

/// A `when` condition.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConditionDoc {
    /// An attribute: `request.headers[NAME]`, `source.principal`, ...
    pub key: String,
    /// Values of the attribute; one must match (for a repeated header, any
    /// of its values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Values that must not match (none of a repeated header's values may).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_values: Option<Vec<String>>,
}

/// One DLP policy: which detectors look where, and what happens
/// to a request they fire on.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DlpDoc {
    /// Reported in decision records and logs.
    pub name: String,
    /// The services the policy applies to; absent: every request.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// Built-in detector ids; absent: the whole catalogue (unless
    /// `patterns` is given, then none).
    #[serde(default)]
    pub detectors: Option<Vec<String>>,
    /// Custom detectors.
    #[serde(default)]
    pub patterns: Vec<PatternDoc>,
    /// Where to look; absent: headers, query and body.
    #[serde(default)]
    pub scan: Option<Vec<ScanTarget>>,
    /// What a finding does to the request.
    #[serde(default)]
    pub action: DlpAction,
    /// The most body bytes held back for scanning (BLOCK, REDACT) or
    /// decoded from a compressed body; default 1 MiB.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// A body that cannot be scanned whole (too big, unknown encoding,
    /// corrupt compression): BLOCK (default) or ALLOW (recorded).
    #[serde(default)]
    pub on_oversize: OnOversize,
}

/// A custom detector: findings carry its name.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PatternDoc {
    /// The id its findings carry.
    pub name: String,
    /// A byte regex with ASCII classes (Rust `regex` syntax, no Unicode).
    pub regex: String,
}

/// A part of the request DLP scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ScanTarget {
    /// Header names and values (pseudo-headers excepted).
    Headers,
    /// The request target: the path as forwarded and the percent-decoded
    /// query string.
    Query,
    /// The request body, decoded per content-type and content-encoding.
    Body,
}

/// What a DLP finding does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DlpAction {
    /// Recorded only; the request goes on unchanged.
    Audit,
    /// The matched bytes are replaced with `*` in what is forwarded.
    Redact,
    /// The request is refused with `dlpBlocked`.
    #[default]
    Block,
}

/// What happens to a body that cannot be scanned whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnOversize {
    /// Refused with `dlpBlocked`.
    #[default]
    Block,
    /// Let through; the record says the body was not scanned whole.
    Allow,
}

/// The `responses` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponsesDoc {
    /// Refused by authorization (default `403 RBAC: access denied`).
    pub denied: Option<ResponseDoc>,
    /// Not in the registry (default `502`).
    pub unregistered: Option<ResponseDoc>,
    /// Refused by DLP (default `403 DLP: request blocked`).
    pub dlp_blocked: Option<ResponseDoc>,
    /// Malformed or ambiguous (default `400`).
    pub bad_request: Option<ResponseDoc>,
}

/// One local response; unset fields keep their defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResponseDoc {
    /// The HTTP status.
    pub status: Option<u32>,
    /// The response body.
    pub body: Option<String>,
}
