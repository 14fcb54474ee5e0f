//! `warden check`'s lints: policies that compile but probably do not mean
//! what they say. Each lint names the field (`authorization[0].rules[2]`).
//!
//! Lints look at the document as written ([`Document`], plus the raw JSON
//! for comparing rules), so they can name fields the compiled form no
//! longer knows about.

use warden_engine::document::{
    Action, AuthzPolicyDoc, DlpAction, Document, FromDoc, IdentitySource, OperationDoc, OutboundTrafficPolicy,
    PathNormalization, RuleDoc, ScanTarget, SourceDoc, ToDoc,
};

/// A policy that compiles but is probably wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// Which lint: its stable code ([`Kind::code`]).
    pub kind: Kind,
    /// The field, e.g. `authorization[0].rules[2]`.
    pub path: String,
    /// What is wrong and why it matters.
    pub message: String,
}

/// Each lint, with a stable code (`W101`) and name (`header-identity`) for
/// tools and CI annotations: a code never changes meaning and is never
/// reused. `docs/CLI.md` has the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `identity[].header`: any client can set the header.
    HeaderIdentity,
    /// `identity[].xfcc`: only safe when the gateway writes the element.
    XfccIdentity,
    /// `ipBlocks` read from `source.address` with no `peerAddress` said.
    PeerAddress,
    /// No services under `REGISTRY_ONLY`: everything is refused.
    NoServices,
    /// A service host `*.` over a public suffix.
    PublicSuffixService,
    /// An ALLOW `operation.hosts` wildcard over a public suffix.
    PublicSuffixAllow,
    /// A DLP pattern with no literal to anchor it.
    UnanchoredPattern,
    /// A policy with no rules.
    NoRules,
    /// A rule after one that matches every request.
    Unreachable,
    /// A rule identical to an earlier one.
    Shadowed,
    /// ALLOW with `notPaths`.
    AllowNotPaths,
    /// DENY on `paths` under `pathNormalization: NONE`.
    DenyPathsUnnormalized,
    /// A method with lowercase letters.
    LowercaseMethod,
    /// A held body (BLOCK, REDACT) larger than Envoy's default buffer.
    BodyOverEnvoyBuffer,
}

impl Kind {
    /// Every lint.
    pub const ALL: [Kind; 14] = [
        Kind::HeaderIdentity,
        Kind::XfccIdentity,
        Kind::PeerAddress,
        Kind::NoServices,
        Kind::PublicSuffixService,
        Kind::PublicSuffixAllow,
        Kind::UnanchoredPattern,
        Kind::NoRules,
        Kind::Unreachable,
        Kind::Shadowed,
        Kind::AllowNotPaths,
        Kind::DenyPathsUnnormalized,
        Kind::LowercaseMethod,
        Kind::BodyOverEnvoyBuffer,
    ];

    /// The stable code: `W` and three digits.
    pub fn code(self) -> &'static str {
        match self {
            Kind::HeaderIdentity => "W101",
            Kind::XfccIdentity => "W102",
            Kind::PeerAddress => "W103",
            Kind::NoServices => "W104",
            Kind::PublicSuffixService => "W105",
            Kind::PublicSuffixAllow => "W106",
            Kind::UnanchoredPattern => "W107",
            Kind::NoRules => "W108",
            Kind::Unreachable => "W109",
            Kind::Shadowed => "W110",
            Kind::AllowNotPaths => "W111",
            Kind::DenyPathsUnnormalized => "W112",
            Kind::LowercaseMethod => "W113",
            Kind::BodyOverEnvoyBuffer => "W114",
        }
    }

    /// The stable name, for people: `shadowed-rule`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::HeaderIdentity => "header-identity",
            Kind::XfccIdentity => "xfcc-identity",
            Kind::PeerAddress => "ip-blocks-peer-address",
            Kind::NoServices => "no-services",
            Kind::PublicSuffixService => "public-suffix-service",
            Kind::PublicSuffixAllow => "public-suffix-allow",
            Kind::UnanchoredPattern => "unanchored-dlp-pattern",
            Kind::NoRules => "no-rules",
            Kind::Unreachable => "unreachable-rule",
            Kind::Shadowed => "shadowed-rule",
            Kind::AllowNotPaths => "allow-not-paths",
            Kind::DenyPathsUnnormalized => "deny-paths-not-normalized",
            Kind::LowercaseMethod => "lowercase-method",
            Kind::BodyOverEnvoyBuffer => "body-over-envoy-buffer",
        }
    }
}

/// Whether `domain` (lowercase, no leading dot) is a public suffix of the
/// ICANN section of the Public Suffix List (`com`, `co.uk`, `github.io` is
/// not: it is in the private section): a wildcard right above one covers
/// every domain anyone registers there.
pub fn is_public_suffix(domain: &str) -> bool {
    psl::suffix(domain.as_bytes())
        .is_some_and(|s| s.is_known() && s.typ() == Some(psl::Type::Icann) && s.as_bytes() == domain.as_bytes())
}

/// Envoy's default `per_connection_buffer_limit_bytes` (listeners and
/// clusters), which Istio's gateways keep: 1 MiB.
const ENVOY_BUFFER_BYTES: u64 = 1 << 20;

/// Lints a document that compiles. `raw` is the same document as JSON
/// (used to recognise identical rules).
pub fn lint(doc: &Document, raw: &serde_json::Value) -> Vec<Lint> {
    let mut out = Vec::new();
    let mut push = |kind: Kind, path: String, message: String| out.push(Lint { kind, path, message });

    for (i, source) in doc.identity.iter().flatten().enumerate() {
        match source {
            IdentitySource::Header(name) => push(
                Kind::HeaderIdentity,
                format!("identity[{i}].header"),
                format!(
                    "the principal is read from the request header '{name}', which any client can set: \
                     only use it behind a proxy that strips it, or in tests"
                ),
            ),
            IdentitySource::Xfcc(_) => push(
                Kind::XfccIdentity,
                format!("identity[{i}].xfcc"),
                "the principal is read from the last element of x-forwarded-client-cert: the gateway's \
                 Envoy must write that element itself (forward_client_cert_details APPEND_FORWARD or \
                 SANITIZE_SET; Istio's gateways: SANITIZE_SET), or any client can name itself"
                    .to_owned(),
            ),
            _ => {}
        }
    }

    if doc.peer_address.is_none() {
        if let Some(at) = first_ip_blocks(doc) {
            push(
                Kind::PeerAddress,
                at,
                "ipBlocks is the direct peer's address, read from Envoy's source.address: Warden refuses \
                 requests it decides when Envoy took that from x-forwarded-for, but behind a PROXY-protocol \
                 load balancer source.address is the PROXY header's address, which Istio counts as the \
                 remote one. Use remoteIpBlocks for the client's address, set peerAddress.filterState \
                 from %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%, or state that no such balancer is in front with \
                 peerAddress: {sourceAddress: {}}"
                    .to_owned(),
            );
        }
    }

    if doc.services.is_empty() && doc.outbound_traffic_policy == OutboundTrafficPolicy::RegistryOnly {
        push(
            Kind::NoServices,
            "services".to_owned(),
            "no services under outboundTrafficPolicy REGISTRY_ONLY (the default): every request is refused as \
             unregistered (502); register the hosts workloads may reach, or set outboundTrafficPolicy: ALLOW_ANY"
                .to_owned(),
        );
    }

    for (i, service) in doc.services.iter().enumerate() {
        for (j, host) in service.hosts.iter().enumerate() {
            let lower = host.trim().to_ascii_lowercase();
            if let Some(suffix) = lower.strip_prefix("*.") {
                let suffix = suffix.strip_suffix('.').unwrap_or(suffix);
                if is_public_suffix(suffix) {
                    push(
                        Kind::PublicSuffixService,
                        format!("services[{i}].hosts[{j}]"),
                        format!(
                            "'{host}' registers every domain under the public suffix '.{suffix}': \
                             anyone can register a name there and receive your traffic"
                        ),
                    );
                }
            }
        }
    }

    for (i, dlp) in doc.dlp.iter().enumerate() {
        for (j, pattern) in dlp.patterns.iter().enumerate() {
            if warden_engine::dlp::custom_anchors(&pattern.regex).is_empty() {
                push(
                    Kind::UnanchoredPattern,
                    format!("dlp[{i}].patterns[{j}].regex"),
                    format!(
                        "'{}' contains no literal of two or more bytes every match must have, so it is run \
                         over every scanned byte instead of around anchors (measured: the whole scan about \
                         20 times slower); start it with a fixed prefix if the format has one",
                        pattern.regex
                    ),
                );
            }
        }
    }

    for (i, dlp) in doc.dlp.iter().enumerate() {
        let holds = matches!(dlp.action, DlpAction::Block | DlpAction::Redact);
        let body = dlp.scan.as_ref().is_none_or(|targets| targets.contains(&ScanTarget::Body));
        match dlp.max_body_bytes {
            Some(max) if holds && body && max > ENVOY_BUFFER_BYTES => push(
                Kind::BodyOverEnvoyBuffer,
                format!("dlp[{i}].maxBodyBytes"),
                format!(
                    "{max} bytes of body are held for scanning, more than Envoy buffers per connection by default \
                     (per_connection_buffer_limit_bytes, 1 MiB; Istio's gateways too): raise the listener's and \
                     the cluster's limit above it, or Envoy answers 413 before Warden has scanned the body"
                ),
            ),
            _ => {}
        }
    }

    let raw_policies = raw.get("authorization").and_then(|a| a.as_array());
    for (i, policy) in doc.authorization.iter().enumerate() {
        let at = format!("authorization[{i}]");
        let raw_rules = raw_policies.and_then(|p| p.get(i)).and_then(|p| p.get("rules")).and_then(|r| r.as_array());
        lint_policy(policy, &at, raw_rules.map(Vec::as_slice).unwrap_or_default(), doc, &mut push);
    }
    out
}

fn lint_policy(
    policy: &AuthzPolicyDoc,
    at: &str,
    raw_rules: &[serde_json::Value],
    doc: &Document,
    push: &mut impl FnMut(Kind, String, String),
) {
    if policy.rules.is_empty() {
        let scope = match &policy.services {
            Some(s) => format!("for {}", s.join(", ")),
            None => "for every service".to_owned(),
        };
        let message = match (policy.action, policy.dry_run) {
            (Action::Allow, false) => format!(
                "an ALLOW policy with no rules matches nothing, so it denies every request {scope} \
                 (Istio's deny-all); if that is not meant, add rules"
            ),
            (Action::Allow, true) => {
                format!("a dry-run ALLOW with no rules records every request {scope} as one it would deny")
            }
            (Action::Deny, _) => "a DENY policy with no rules never matches: it refuses nothing".to_owned(),
            (Action::Audit, _) => "an AUDIT policy with no rules never matches: it records nothing".to_owned(),
        };
        push(Kind::NoRules, format!("{at}.rules"), message);
        return;
    }

    let mut always: Option<usize> = None;
    for (j, rule) in policy.rules.iter().enumerate() {
        let rule_at = format!("{at}.rules[{j}]");
        if let Some(k) = always {
            push(
                Kind::Unreachable,
                rule_at,
                format!("unreachable: rules[{k}] before it matches every request, so this rule never decides one"),
            );
            continue;
        }
        let raw = raw_rules.get(j);
        if let Some(k) = raw.and_then(|r| raw_rules.iter().take(j).position(|earlier| earlier == r)) {
            push(
                Kind::Shadowed,
                rule_at.clone(),
                format!("shadowed: identical to rules[{k}], so it never decides a request"),
            );
        }
        if matches_everything(rule) {
            always = Some(j);
        }
        lint_rule(policy, rule, &rule_at, doc, push);
    }
}

fn lint_rule(
    policy: &AuthzPolicyDoc,
    rule: &RuleDoc,
    at: &str,
    doc: &Document,
    push: &mut impl FnMut(Kind, String, String),
) {
    for (k, to) in rule.to.iter().flatten().enumerate() {
        let op = &to.operation;
        let op_at = format!("{at}.to[{k}].operation");
        if policy.action == Action::Allow && has(&op.not_paths) {
            push(
                Kind::AllowNotPaths,
                format!("{op_at}.notPaths"),
                "ALLOW with notPaths allows every other path, including spellings the upstream reads \
                 differently (Istio documents this hazard): list the allowed paths instead"
                    .to_owned(),
            );
        }
        if policy.action == Action::Deny && has(&op.paths) && doc.path_normalization == PathNormalization::None {
            push(
                Kind::DenyPathsUnnormalized,
                format!("{op_at}.paths"),
                "DENY on paths with pathNormalization: NONE is bypassed by equivalent spellings \
                 (//admin, /./admin, /%61dmin): use BASE or a stricter normalization"
                    .to_owned(),
            );
        }
        for (field, list) in [("methods", &op.methods), ("notMethods", &op.not_methods)] {
            for (m, method) in list.iter().flatten().enumerate() {
                if method.bytes().any(|b| b.is_ascii_lowercase()) {
                    push(
                        Kind::LowercaseMethod,
                        format!("{op_at}.{field}[{m}]"),
                        format!(
                            "'{method}' has lowercase letters and never matches: Warden refuses such methods \
                             as bad requests (and Envoy answers them 400 itself); methods are case-sensitive"
                        ),
                    );
                }
            }
        }
        let allows = policy.action == Action::Allow;
        for (h, host) in op.hosts.iter().flatten().enumerate().filter(|_| allows) {
            let lower = host.trim().to_ascii_lowercase();
            if let Some(suffix) = lower.strip_prefix('*') {
                let domain = suffix.trim_start_matches('.');
                if is_public_suffix(domain) {
                    push(
                        Kind::PublicSuffixAllow,
                        format!("{op_at}.hosts[{h}]"),
                        format!(
                            "'{host}' allows every host under the public suffix '.{domain}' \
                             (where the policy applies): anyone can register a name there"
                        ),
                    );
                }
            }
        }
    }
}

/// The first `ipBlocks`/`notIpBlocks`/`source.ip` in the document.
fn first_ip_blocks(doc: &Document) -> Option<String> {
    for (i, policy) in doc.authorization.iter().enumerate() {
        for (j, rule) in policy.rules.iter().enumerate() {
            let at = format!("authorization[{i}].rules[{j}]");
            for (k, from) in rule.from.iter().flatten().enumerate() {
                for (field, list) in [("ipBlocks", &from.source.ip_blocks), ("notIpBlocks", &from.source.not_ip_blocks)]
                {
                    if has(list) {
                        return Some(format!("{at}.from[{k}].source.{field}"));
                    }
                }
            }
            for (k, when) in rule.when.iter().flatten().enumerate() {
                if when.key.trim() == "source.ip" {
                    return Some(format!("{at}.when[{k}].key"));
                }
            }
        }
    }
    None
}

fn has<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

fn source_is_empty(s: &SourceDoc) -> bool {
    ![
        &s.principals,
        &s.not_principals,
        &s.namespaces,
        &s.not_namespaces,
        &s.trust_domains,
        &s.not_trust_domains,
        &s.service_accounts,
        &s.not_service_accounts,
        &s.ip_blocks,
        &s.not_ip_blocks,
        &s.remote_ip_blocks,
        &s.not_remote_ip_blocks,
    ]
    .into_iter()
    .any(has)
}

fn operation_is_empty(o: &OperationDoc) -> bool {
    let strings = [&o.hosts, &o.not_hosts, &o.methods, &o.not_methods, &o.paths, &o.not_paths];
    !strings.into_iter().any(has) && !has(&o.ports) && !has(&o.not_ports)
}

/// Whether a rule matches every request: no `when`, and `from` and `to`
/// absent, empty, or with one alternative that sets no field (Istio treats
/// empty lists as unset).
pub fn matches_everything(rule: &RuleDoc) -> bool {
    let from_any =
        rule.from.as_deref().is_none_or(|f: &[FromDoc]| f.is_empty() || f.iter().any(|f| source_is_empty(&f.source)));
    let to_any =
        rule.to.as_deref().is_none_or(|t: &[ToDoc]| t.is_empty() || t.iter().any(|t| operation_is_empty(&t.operation)));
    let when_none = rule.when.as_ref().is_none_or(Vec::is_empty);
    from_any && to_any && when_none
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lints of a document, given a service when it has none (no
    /// services is a lint of its own).
    fn lints(mut json: serde_json::Value) -> Vec<String> {
        if let Some(map) = json.as_object_mut() {
            map.entry("services").or_insert(serde_json::json!([{"name": "s", "hosts": ["s.example.com"]}]));
        }
        lint_paths(json)
    }

    fn lint_paths(json: serde_json::Value) -> Vec<String> {
        let doc: Document = serde_json::from_value(json.clone()).unwrap();
        lint(&doc, &json).into_iter().map(|l| l.path).collect()
    }

    #[test]
    fn held_bodies_over_envoys_default_buffer_are_flagged() {
        let dlp = |policy: serde_json::Value| lints(serde_json::json!({"name": "x", "dlp": [policy]}));
        let over = 2 * ENVOY_BUFFER_BYTES;
        assert_eq!(
            dlp(serde_json::json!({"name": "d", "detectors": ["email"], "maxBodyBytes": over})),
            ["dlp[0].maxBodyBytes"]
        );
        let redact = serde_json::json!({"name": "d", "detectors": ["email"], "action": "REDACT", "maxBodyBytes": over});
        assert_eq!(dlp(redact), ["dlp[0].maxBodyBytes"]);
        // Not held (AUDIT), no body scanned, or within the buffer: nothing.
        for quiet in [
            serde_json::json!({"name": "d", "detectors": ["email"], "action": "AUDIT", "maxBodyBytes": over}),
            serde_json::json!({"name": "d", "detectors": ["email"], "scan": ["headers", "query"], "maxBodyBytes": over}),
            serde_json::json!({"name": "d", "detectors": ["email"], "maxBodyBytes": ENVOY_BUFFER_BYTES}),
            serde_json::json!({"name": "d", "detectors": ["email"]}),
        ] {
            assert_eq!(dlp(quiet.clone()), Vec::<String>::new(), "{quiet}");
        }
    }

    #[test]
    fn registry_only_without_services_is_flagged() {
        assert_eq!(lint_paths(serde_json::json!({"name": "x"})), ["services"]);
        assert_eq!(lint_paths(serde_json::json!({"name": "x", "services": []})), ["services"]);
        let allow_any = serde_json::json!({"name": "x", "outboundTrafficPolicy": "ALLOW_ANY"});
        assert_eq!(lint_paths(allow_any), Vec::<String>::new());
    }

    #[test]
    fn rules_that_match_everything() {
        let rule = |v: serde_json::Value| matches_everything(&serde_json::from_value(v).unwrap());
        assert!(rule(serde_json::json!({})));
        assert!(rule(serde_json::json!({"from": [], "to": [{"operation": {"methods": []}}]})));
        assert!(rule(serde_json::json!({"from": [{"source": {"principals": ["a"]}}, {"source": {}}]})));
        assert!(!rule(serde_json::json!({"to": [{"operation": {"methods": ["GET"]}}]})));
        assert!(!rule(serde_json::json!({"when": [{"key": "source.ip", "values": ["10.0.0.0/8"]}]})));
    }

    #[test]
    fn custom_patterns_without_an_anchor_are_flagged() {
        let doc = serde_json::json!({"name": "x", "dlp": [{"name": "d", "patterns": [
            {"name": "itk", "regex": "itk_[A-Za-z0-9]{32}"},
            {"name": "plate", "regex": "\\b[A-Z]{3}[0-9]{4}\\b"}
        ]}]});
        assert_eq!(lints(doc), vec!["dlp[0].patterns[1].regex".to_owned()]);
    }

    #[test]
    fn clean_policies_have_no_lints() {
        let clean = serde_json::json!({
            "name": "x",
            "services": [{"name": "s", "hosts": ["*.example.com", "example.co.uk"]}],
            "authorization": [{"name": "a", "rules": [
                {"to": [{"operation": {"methods": ["GET"], "paths": ["/a"]}}]},
                {"to": [{"operation": {"methods": ["GET"], "paths": ["/b"]}}]},
                {}
            ]}, {"name": "d", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"], "hosts": ["*.com"]}}]}]}]
        });
        assert_eq!(lints(clean), Vec::<String>::new());
    }

    #[test]
    fn trust_sensitive_sources_are_flagged() {
        let xfcc = serde_json::json!({"name": "x", "identity": [{"xfcc": {}}]});
        assert_eq!(lints(xfcc), ["identity[0].xfcc"]);
        let ip = |extra: serde_json::Value| {
            let mut doc = serde_json::json!({"name": "x", "authorization": [{"name": "a", "rules": [
                {"to": [{"operation": {"methods": ["GET"]}}]},
                {"from": [{"source": {"notIpBlocks": ["10.0.0.0/8"]}}]}
            ]}]});
            if let (Some(map), serde_json::Value::Object(extra)) = (doc.as_object_mut(), extra) {
                map.extend(extra);
            }
            lints(doc)
        };
        assert_eq!(ip(serde_json::json!({})), ["authorization[0].rules[1].from[0].source.notIpBlocks"]);
        assert_eq!(ip(serde_json::json!({"peerAddress": {"filterState": "peer"}})), Vec::<String>::new());
        assert_eq!(ip(serde_json::json!({"peerAddress": {"sourceAddress": {}}})), Vec::<String>::new());
    }

    #[test]
    fn public_suffixes() {
        assert!(is_public_suffix("com") && is_public_suffix("co.uk"));
        assert!(!is_public_suffix("example.com") && !is_public_suffix("amazonaws.com"));
        // The whole ICANN section, not a hand-picked few; the private
        // section (hosting providers) is not a registry's.
        assert!(is_public_suffix("com.cy") && is_public_suffix("gov.in"));
        assert!(!is_public_suffix("github.io"));
        let policy = serde_json::json!({"name": "x", "services": [{"name": "s", "hosts": ["*.CO.UK."]}]});
        assert_eq!(lints(policy), ["services[0].hosts[0]"]);
    }
}
