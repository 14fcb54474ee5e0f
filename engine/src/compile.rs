//! Parse, validate and compile a `warden/v1` document into a [`Policy`].
//!
//! Every error names the field at fault, e.g.
//! `authorization[2].rules[0].to[0].operation.paths[1]: '{**}' must be the last operator`.

use crate::authz::{AuthzPolicy, Check, Reading, Rule, Test};
use crate::dlp::policy::{DlpPolicy, DlpSet, DlpSpec, DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES_LIMIT};
use crate::dlp::{Group as DetectorGroup, CATALOGUE};
use crate::document::*;
use crate::error::{ErrorKind, PolicyError, Problem, ValueError};
use crate::identity::TrustDomains;
use crate::matcher::{HostMatch, IpBlock, NameMatch, PathMatch, StringMatch};
use crate::needs::{Needs, Required};
use crate::policy::{Policy, Response, Responses};
use crate::registry::{Registry, Service};
use rustc_hash::FxHashMap;

/// Parses a JSON policy document; errors carry the path of the field
/// (with the `field-paths` feature; without it, serde's message names the
/// field and gives line and column).
pub fn parse_json(json: &[u8]) -> Result<Document, PolicyError> {
    #[cfg(feature = "field-paths")]
    {
        let de = &mut serde_json::Deserializer::from_slice(json);
        serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            // serde_json appends "at line L column C"; keep it, it helps in big files.
            PolicyError {
                path: if path == "." { String::new() } else { path },
                kind: ErrorKind::Syntax(inner.to_string()),
            }
        })
    }
    #[cfg(not(feature = "field-paths"))]
    {
        serde_json::from_slice(json)
            .map_err(|err| PolicyError { path: String::new(), kind: ErrorKind::Syntax(err.to_string()) })
    }
}

/// Loads a filter configuration: a compiled bundle (see [`crate::bundle`])
/// or a JSON document.
pub fn load(config: &[u8]) -> Result<Policy, PolicyError> {
    if crate::bundle::is_bundle(config) {
        return crate::bundle::decode(config);
    }
    if config.iter().all(u8::is_ascii_whitespace) {
        return Err(PolicyError::invalid("", "the configuration is empty; Warden needs a warden/v1 policy"));
    }
    compile(&parse_json(config)?)
}

/// Validates and compiles a document.
pub fn compile(doc: &Document) -> Result<Policy, PolicyError> {
    if doc.name.trim().is_empty() {
        return Err(PolicyError::invalid("name", "required: the policy's name, used in logs and metrics"));
    }
    let identity = match &doc.identity {
        None => vec![IdentitySource::PeerCertificate(Empty {})],
        Some(list) if list.is_empty() => {
            return Err(PolicyError::invalid("identity", "must list at least one source (or be left out)"))
        }
        Some(list) => {
            for (i, source) in list.iter().enumerate() {
                match source {
                    IdentitySource::FilterState(key) if key.trim().is_empty() => {
                        return Err(PolicyError::invalid(
                            format!("identity[{i}].filterState"),
                            "needs a filter-state key",
                        ))
                    }
                    IdentitySource::Header(name) => {
                        header_name(name).map_err(|e| PolicyError::value(format!("identity[{i}].header"), e))?;
                    }
                    _ => {}
                }
            }
            list.iter()
                .map(|s| match s {
                    IdentitySource::Header(h) => IdentitySource::Header(h.to_ascii_lowercase()),
                    other => other.clone(),
                })
                .collect()
        }
    };

    let mut gateway_ports = Vec::with_capacity(doc.gateway_ports.len());
    for (listener, &service) in &doc.gateway_ports {
        let at = format!("gatewayPorts.{listener}");
        let from = port_doc(&PortDoc::Text(listener.clone())).map_err(|e| PolicyError::value(&at, e))?;
        gateway_ports.push((from, port(service).map_err(|e| PolicyError::value(&at, e))?));
    }

    let trust = trust_domains(doc)?;
    let peer_address = match &doc.peer_address {
        Some(PeerAddress::FilterState(key)) if key.trim().is_empty() => {
            return Err(PolicyError::invalid("peerAddress.filterState", "needs a filter-state key"))
        }
        Some(p) => p.clone(),
        None => PeerAddress::default(),
    };

    // Registry.
    let mut registry = Registry::default();
    let mut service_ids: FxHashMap<&str, u32> = FxHashMap::default();
    for (i, svc) in doc.services.iter().enumerate() {
        let at = format!("services[{i}]");
        if svc.name.trim().is_empty() {
            return Err(PolicyError::invalid(format!("{at}.name"), "required"));
        }
        if service_ids.contains_key(svc.name.as_str()) {
            return Err(PolicyError::invalid(format!("{at}.name"), format!("'{}' is defined twice", svc.name)));
        }
        if svc.hosts.is_empty() {
            return Err(PolicyError::invalid(format!("{at}.hosts"), "must list at least one host"));
        }
        let ports = match &svc.ports {
            None => None,
            Some(ports) if ports.is_empty() => {
                return Err(PolicyError::invalid(format!("{at}.ports"), "empty: leave it out to allow any port"))
            }
            Some(ports) => Some(
                ports
                    .iter()
                    .enumerate()
                    .map(|(j, &p)| port(p).map_err(|e| PolicyError::value(format!("{at}.ports[{j}]"), e)))
                    .collect::<Result<Vec<u16>, _>>()?,
            ),
        };
        let id = registry.push(Service { name: svc.name.clone(), ports });
        for (j, host) in svc.hosts.iter().enumerate() {
            let host = service_host(host).map_err(|e| PolicyError::value(format!("{at}.hosts[{j}]"), e))?;
            registry.add_host(&host, id);
        }
        service_ids.insert(&svc.name, id);
    }

    // Authorization.
    let mut authz = Vec::with_capacity(doc.authorization.len());
    let mut unscoped = Vec::new();
    let mut by_service: Vec<Vec<u32>> = vec![Vec::new(); doc.services.len()];
    let mut policy_names: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, p) in doc.authorization.iter().enumerate() {
        let at = format!("authorization[{i}]");
        unique_name(&p.name, &at, "authorization", i, &mut policy_names)?;
        scope(p.services.as_deref(), &at, &service_ids, i as u32, &mut unscoped, &mut by_service)?;
        let rules = p
            .rules
            .iter()
            .enumerate()
            .map(|(j, r)| {
                let context = RuleContext { trust: trust.as_ref(), allow: p.action == Action::Allow };
                rule(r, &format!("{at}.rules[{j}]"), &context)
            })
            .collect::<Result<Vec<_>, _>>()?;
        authz.push(AuthzPolicy {
            name: p.name.clone(),
            action: p.action,
            dry_run: p.dry_run,
            scoped: p.services.is_some(),
            rules,
        });
    }

    let dlp = dlp(&doc.dlp, &service_ids, doc.services.len())?;

    let responses = responses(&doc.responses)?;
    let tests = || authz.iter().flat_map(|p| &p.rules).flat_map(Rule::checks).map(|c| &c.test);
    let needs = Needs {
        addresses: tests().any(|t| matches!(t, Test::SourceIp(_) | Test::RemoteIp(_))),
        subject: tests().any(|t| match t {
            Test::Identity(names) => {
                names.iter().any(|n| matches!(n, NameMatch::Namespace(_) | NameMatch::Principal(StringMatch::Presence)))
            }
            _ => false,
        }),
        sni: tests().any(|t| matches!(t, Test::Sni(_))),
    };
    // What the enforced policies that apply to a request must be able to
    // read, per service (a policy scoped elsewhere does not count).
    let required =
        |indices: &[u32]| Required::of(indices.iter().filter_map(|&i| authz.get(i as usize)).filter(|p| p.enforced()));
    let required_unscoped = required(&unscoped);
    let required_by_service: Vec<Required> =
        by_service.iter().map(|scoped| required_unscoped.or(required(scoped))).collect();

    Ok(Policy {
        name: doc.name.clone(),
        outbound: doc.outbound_traffic_policy,
        identity,
        normalization: doc.path_normalization,
        reject_ambiguous: doc.reject_ambiguous_paths,
        require_sni_match: doc.require_sni_match,
        gateway_ports,
        registry,
        authz,
        unscoped,
        by_service,
        responses,
        dlp,
        peer_address,
        needs,
        required_unscoped,
        required_by_service,
    })
}

/// `trustDomain` and `trustDomainAliases`.
fn trust_domains(doc: &Document) -> Result<Option<TrustDomains>, PolicyError> {
    let aliases = doc.trust_domain_aliases.as_deref().unwrap_or_default();
    let Some(td) = &doc.trust_domain else {
        if !aliases.is_empty() {
            return Err(PolicyError::invalid("trustDomainAliases", "aliases need the trustDomain they stand for"));
        }
        return Ok(None);
    };
    let valid = |v: &str| !v.is_empty() && !v.contains(['/', '*']) && !v.contains(char::is_whitespace);
    if !valid(td) {
        return Err(PolicyError::invalid("trustDomain", format!("'{td}' is not a trust domain")));
    }
    for (i, alias) in aliases.iter().enumerate() {
        if !valid(alias) {
            return Err(PolicyError::invalid(
                format!("trustDomainAliases[{i}]"),
                format!("'{alias}' is not a trust domain"),
            ));
        }
    }
    Ok(Some(TrustDomains::new(td, aliases)))
}

/// What compiling a rule depends on beyond the rule itself.
struct RuleContext<'a> {
    /// The mesh's trust domains, when the policy names them.
    trust: Option<&'a TrustDomains>,
    /// Whether the rule's policy lets requests through (ALLOW) rather than
    /// refusing or auditing them.
    allow: bool,
}

/// A policy's `name`: required, and unique within its block.
fn unique_name<'d>(
    name: &'d str,
    at: &str,
    block: &str,
    index: usize,
    names: &mut FxHashMap<&'d str, usize>,
) -> Result<(), PolicyError> {
    if name.trim().is_empty() {
        return Err(PolicyError::invalid(format!("{at}.name"), "required"));
    }
    if let Some(first) = names.insert(name, index) {
        return Err(PolicyError::invalid(
            format!("{at}.name"),
            format!("'{name}' is already the name of {block}[{first}]"),
        ));
    }
    Ok(())
}

/// A policy's `services`: absent, it applies to every request
/// (`unscoped`); else it is listed, in document order, under each service
/// it names.
fn scope(
    services: Option<&[String]>,
    at: &str,
    service_ids: &FxHashMap<&str, u32>,
    index: u32,
    unscoped: &mut Vec<u32>,
    by_service: &mut [Vec<u32>],
) -> Result<(), PolicyError> {
    let Some(list) = services else {
        unscoped.push(index);
        return Ok(());
    };
    if list.is_empty() {
        return Err(PolicyError::invalid(
            format!("{at}.services"),
            "empty: leave it out to apply the policy to every request",
        ));
    }
    for (j, name) in list.iter().enumerate() {
        let Some(&id) = service_ids.get(name.as_str()) else {
            return Err(PolicyError::invalid(
                format!("{at}.services[{j}]"),
                format!("no service named '{name}' in services"),
            ));
        };
        if let Some(list) = by_service.get_mut(id as usize) {
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
    }
    Ok(())
}

/// Validates the `dlp` block and builds its scanners.
fn dlp(docs: &[DlpDoc], service_ids: &FxHashMap<&str, u32>, services: usize) -> Result<DlpSet, PolicyError> {
    let mut spec = DlpSpec { by_service: vec![Vec::new(); services], ..DlpSpec::default() };
    let mut names: FxHashMap<&str, usize> = FxHashMap::default();
    let mut pattern_names: FxHashMap<&str, String> = FxHashMap::default();
    for (i, p) in docs.iter().enumerate() {
        let at = format!("dlp[{i}]");
        unique_name(&p.name, &at, "dlp", i, &mut names)?;
        scope(p.services.as_deref(), &at, service_ids, i as u32, &mut spec.unscoped, &mut spec.by_service)?;
        let detectors: Vec<String> = match &p.detectors {
            None if p.patterns.is_empty() => CATALOGUE.iter().map(|d| d.id.to_owned()).collect(),
            None => Vec::new(),
            Some(list) if list.is_empty() => {
                return Err(PolicyError::invalid(
                    format!("{at}.detectors"),
                    "empty: leave it out for the whole built-in catalogue",
                ))
            }
            Some(list) => {
                let mut ids: Vec<String> = Vec::new();
                for (j, name) in list.iter().enumerate() {
                    // A group stands for its detectors, in catalogue order.
                    let named: Vec<&str> = match (crate::dlp::detector(name), DetectorGroup::from_name(name)) {
                        (Some(d), _) => vec![d.id],
                        (None, Some(group)) => group.detectors().map(|d| d.id).collect(),
                        (None, None) => {
                            let groups: Vec<&str> = DetectorGroup::ALL.iter().map(|g| g.as_str()).collect();
                            let known: Vec<&str> = CATALOGUE.iter().map(|d| d.id).collect();
                            return Err(PolicyError::invalid(
                                format!("{at}.detectors[{j}]"),
                                format!(
                                    "unknown detector '{name}' (groups: {}; built-in: {})",
                                    groups.join(", "),
                                    known.join(", ")
                                ),
                            ));
                        }
                    };
                    for id in named {
                        if !ids.iter().any(|known| known == id) {
                            ids.push(id.to_owned());
                        }
                    }
                }
                ids
            }
        };
        let mut patterns = Vec::new();
        for (j, pattern) in p.patterns.iter().enumerate() {
            let pat = format!("{at}.patterns[{j}]");
            if let Some(other) = pattern_names.get(pattern.name.as_str()) {
                return Err(PolicyError::invalid(
                    format!("{pat}.name"),
                    format!("'{}' is already the name of {other}", pattern.name),
                ));
            }
            crate::dlp::compile_custom(&pattern.name, &pattern.regex)
                .map_err(|e| PolicyError::invalid(format!("{pat}.{}", e.field()), e.to_string()))?;
            pattern_names.insert(&pattern.name, pat);
            patterns.push((pattern.name.clone(), pattern.regex.clone()));
        }
        let scan = match &p.scan {
            None => vec![ScanTarget::Headers, ScanTarget::Query, ScanTarget::Body],
            Some(list) if list.is_empty() => {
                return Err(PolicyError::invalid(
                    format!("{at}.scan"),
                    "empty: leave it out to scan headers, query and body",
                ))
            }
            Some(list) => list.clone(),
        };
        let max_body_bytes = p.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1..=MAX_BODY_BYTES_LIMIT).contains(&max_body_bytes) {
            return Err(PolicyError::invalid(
                format!("{at}.maxBodyBytes"),
                format!("{max_body_bytes} is out of range (1 to {MAX_BODY_BYTES_LIMIT})"),
            ));
        }
        spec.policies.push(DlpPolicy {
            name: p.name.clone(),
            detectors,
            patterns,
            headers: scan.contains(&ScanTarget::Headers),
            query: scan.contains(&ScanTarget::Query),
            body: scan.contains(&ScanTarget::Body),
            action: p.action,
            max_body_bytes,
            on_oversize: p.on_oversize,
        });
    }
    DlpSet::build(spec).map_err(|e| PolicyError::invalid("dlp", e.as_str()))
}

fn port(p: u64) -> Result<u16, ValueError> {
    u16::try_from(p).ok().filter(|&p| p != 0).ok_or_else(|| ValueError::new(&format!("{p}"), Problem::PortOutOfRange))
}

fn port_doc(p: &PortDoc) -> Result<u16, ValueError> {
    match p {
        PortDoc::Number(n) => port(*n),
        PortDoc::Text(t) => match t.trim().parse::<u64>() {
            Ok(n) => port(n).map_err(|_| ValueError::new(t, Problem::NotAPort)),
            Err(_) => Err(ValueError::new(t, Problem::NotAPort)),
        },
    }
}

fn header_name(name: &str) -> Result<(), ValueError> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ValueError::new(name, Problem::NotAHeaderName))
    }
}

/// A registry host: an exact DNS name or IP, or `*.` followed by a name.
fn service_host(host: &str) -> Result<String, ValueError> {
    let lower = host.trim().to_ascii_lowercase();
    if lower == "*" {
        return Err(ValueError::new(host, Problem::EveryHost));
    }
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.contains(':') && name.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(ValueError::new(host, Problem::HostWithPort));
    }
    let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.parse::<std::net::IpAddr>().is_err() && !name.split('.').all(label_ok) {
        return Err(ValueError::new(host, Problem::NotAHostName));
    }
    Ok(if lower.starts_with("*.") { format!("*.{name}") } else { name.to_owned() })
}

fn strings(
    values: &[String],
    at: &str,
    f: impl Fn(&str) -> Result<StringMatch, ValueError>,
) -> Result<Vec<StringMatch>, PolicyError> {
    values.iter().enumerate().map(|(i, v)| f(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e))).collect()
}

fn plain(v: &str) -> Result<StringMatch, ValueError> {
    if v.is_empty() {
        return Err(ValueError::new(v, Problem::Empty));
    }
    StringMatch::parse(v)
}

/// `principals` (or `source.principal` values) as Istio compiles them:
/// `spiffe://` stripped if written, trust-domain aliases expanded.
fn principal_names(values: &[String], at: &str, trust: Option<&TrustDomains>) -> Result<Vec<NameMatch>, PolicyError> {
    let written: Vec<String> = values.iter().map(|v| v.strip_prefix("spiffe://").unwrap_or(v).to_owned()).collect();
    for (i, v) in written.iter().enumerate() {
        plain(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e))?;
    }
    let expanded = match trust {
        Some(trust) => trust.expand_principals(&written),
        None => written,
    };
    expanded
        .iter()
        .map(|v| StringMatch::parse(v).map(NameMatch::Principal).map_err(|e| PolicyError::value(at, e)))
        .collect()
}

fn namespace_names(values: &[String], at: &str) -> Result<Vec<NameMatch>, PolicyError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_empty() || v.contains('/') {
                return Err(PolicyError::value(format!("{at}[{i}]"), ValueError::new(v, Problem::NotANamespace)));
            }
            Ok(NameMatch::namespace(v))
        })
        .collect()
}

fn trust_domain_names(
    values: &[String],
    at: &str,
    trust: Option<&TrustDomains>,
) -> Result<Vec<NameMatch>, PolicyError> {
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() {
            return Err(PolicyError::value(format!("{at}[{i}]"), ValueError::new(v, Problem::Empty)));
        }
        NameMatch::trust_domain(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e))?;
    }
    let expanded = match trust {
        Some(trust) => trust.expand_trust_domains(values),
        None => values.to_vec(),
    };
    expanded.iter().map(|v| NameMatch::trust_domain(v).map_err(|e| PolicyError::value(at, e))).collect()
}

fn service_account_names(values: &[String], at: &str) -> Result<Vec<NameMatch>, PolicyError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| NameMatch::service_account(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e)))
        .collect()
}

/// An SNI pattern: a host name, no port.
fn sni_pattern(v: &str) -> Result<StringMatch, ValueError> {
    if v.contains(':') && v.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(ValueError::new(v, Problem::ServerNameWithPort));
    }
    plain(v).map(StringMatch::lowercased)
}

fn path_patterns(values: &[String], at: &str) -> Result<Vec<PathMatch>, PolicyError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_empty() {
                return Err(PolicyError::value(format!("{at}[{i}]"), ValueError::new(v, Problem::Empty)));
            }
            PathMatch::parse(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e))
        })
        .collect()
}

fn ip_blocks(values: &[String], at: &str) -> Result<Vec<IpBlock>, PolicyError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| IpBlock::parse(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e)))
        .collect()
}

fn ports(values: &[PortDoc], at: &str) -> Result<Vec<u16>, PolicyError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| port_doc(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e)))
        .collect()
}

/// Adds the positive and the negative check of one field; an empty list
/// counts as unset, as in Istio (proto3 repeated fields).
fn field<T>(
    checks: &mut Vec<Check>,
    at: &str,
    (name, not_name): (&str, &str),
    (pos, neg): (&Option<Vec<T>>, &Option<Vec<T>>),
    make: impl Fn(&[T], &str) -> Result<Test, PolicyError>,
) -> Result<(), PolicyError> {
    for (values, key, negate) in [(pos, name, false), (neg, not_name, true)] {
        if let Some(values) = values.as_deref().filter(|v| !v.is_empty()) {
            checks.push(Check { test: make(values, &format!("{at}.{key}"))?, negate });
        }
    }
    Ok(())
}

fn source(s: &SourceDoc, at: &str, cx: &RuleContext<'_>) -> Result<Vec<Check>, PolicyError> {
    let mut c = Vec::new();
    field(&mut c, at, ("principals", "notPrincipals"), (&s.principals, &s.not_principals), |v, at| {
        principal_names(v, at, cx.trust).map(Test::Identity)
    })?;
    field(&mut c, at, ("namespaces", "notNamespaces"), (&s.namespaces, &s.not_namespaces), |v, at| {
        namespace_names(v, at).map(Test::Identity)
    })?;
    field(&mut c, at, ("trustDomains", "notTrustDomains"), (&s.trust_domains, &s.not_trust_domains), |v, at| {
        trust_domain_names(v, at, cx.trust).map(Test::Identity)
    })?;
    field(
        &mut c,
        at,
        ("serviceAccounts", "notServiceAccounts"),
        (&s.service_accounts, &s.not_service_accounts),
        |v, at| service_account_names(v, at).map(Test::Identity),
    )?;
    field(&mut c, at, ("ipBlocks", "notIpBlocks"), (&s.ip_blocks, &s.not_ip_blocks), |v, at| {
        ip_blocks(v, at).map(Test::SourceIp)
    })?;
    field(
        &mut c,
        at,
        ("remoteIpBlocks", "notRemoteIpBlocks"),
        (&s.remote_ip_blocks, &s.not_remote_ip_blocks),
        |v, at| ip_blocks(v, at).map(Test::RemoteIp),
    )?;
    Ok(c)
}

fn operation(o: &OperationDoc, at: &str) -> Result<Vec<Check>, PolicyError> {
    let mut c = Vec::new();
    field(&mut c, at, ("hosts", "notHosts"), (&o.hosts, &o.not_hosts), |v, at| {
        v.iter()
            .enumerate()
            .map(|(i, v)| HostMatch::parse(v).map_err(|e| PolicyError::value(format!("{at}[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()
            .map(|p| Test::Host(p, Reading::Both))
    })?;
    field(&mut c, at, ("ports", "notPorts"), (&o.ports, &o.not_ports), |v, at| {
        ports(v, at).map(|p| Test::Port(p, Reading::Both))
    })?;
    field(&mut c, at, ("methods", "notMethods"), (&o.methods, &o.not_methods), |v, at| {
        strings(v, at, plain).map(Test::Method)
    })?;
    field(&mut c, at, ("paths", "notPaths"), (&o.paths, &o.not_paths), |v, at| path_patterns(v, at).map(Test::Path))?;
    Ok(c)
}

/// The `when` keys Warden supports.
const CONDITION_KEYS: &str = "request.headers[NAME], source.principal, source.namespace, source.trustDomain, \
                              source.serviceAccount, source.ip, remote.ip, destination.port, connection.sni";

fn condition(cond: &ConditionDoc, at: &str, cx: &RuleContext<'_>) -> Result<Vec<Check>, PolicyError> {
    let key = cond.key.trim();
    type Make<'a> = Box<dyn Fn(&[String], &str) -> Result<Test, PolicyError> + 'a>;
    let make: Make<'_> = if let Some(name) = key.strip_prefix("request.headers[").and_then(|r| r.strip_suffix(']')) {
        header_name(name).map_err(|e| PolicyError::value(format!("{at}.key"), e))?;
        let name = name.to_ascii_lowercase();
        Box::new(move |v, at| strings(v, at, plain).map(|p| Test::Header(name.clone(), p)))
    } else {
        let trust = cx.trust;
        match key {
            "source.principal" => Box::new(move |v, at| principal_names(v, at, trust).map(Test::Identity)),
            "source.namespace" => Box::new(|v, at| namespace_names(v, at).map(Test::Identity)),
            "source.trustDomain" => Box::new(move |v, at| trust_domain_names(v, at, trust).map(Test::Identity)),
            "source.serviceAccount" => Box::new(|v, at| service_account_names(v, at).map(Test::Identity)),
            "source.ip" => Box::new(|v, at| ip_blocks(v, at).map(Test::SourceIp)),
            "remote.ip" => Box::new(|v, at| ip_blocks(v, at).map(Test::RemoteIp)),
            "destination.port" => Box::new(|v, at| {
                let docs: Vec<PortDoc> = v.iter().map(|s| PortDoc::Text(s.clone())).collect();
                ports(&docs, at).map(|p| Test::Port(p, Reading::Both))
            }),
            "connection.sni" => Box::new(|v, at| strings(v, at, sni_pattern).map(Test::Sni)),
            _ => {
                return Err(PolicyError::invalid(
                    format!("{at}.key"),
                    format!("'{key}' is not a supported condition key (supported: {CONDITION_KEYS})"),
                ))
            }
        }
    };
    let has = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if !has(&cond.values) && !has(&cond.not_values) {
        return Err(PolicyError::invalid(at, "a condition needs values or notValues"));
    }
    let mut c = Vec::new();
    field(&mut c, at, ("values", "notValues"), (&cond.values, &cond.not_values), |v, at| make(v, at))?;
    Ok(c)
}

fn alternatives<T>(
    list: &Option<Vec<T>>,
    at: &str,
    inner: impl Fn(&T, &str) -> Result<Vec<Check>, PolicyError>,
) -> Result<Option<Vec<Vec<Check>>>, PolicyError> {
    match list.as_deref() {
        None | Some([]) => Ok(None),
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| inner(item, &format!("{at}[{i}]")))
            .collect::<Result<_, _>>()
            .map(Some),
    }
}

fn rule(r: &RuleDoc, at: &str, cx: &RuleContext<'_>) -> Result<Rule, PolicyError> {
    let from = alternatives(&r.from, &format!("{at}.from"), |f, at| source(&f.source, &format!("{at}.source"), cx))?;
    let to = alternatives(&r.to, &format!("{at}.to"), |t, at| operation(&t.operation, &format!("{at}.operation")))?;
    let mut when = Vec::new();
    for (i, cond) in r.when.iter().flatten().enumerate() {
        when.extend(condition(cond, &format!("{at}.when[{i}]"), cx)?);
    }
    let mut rule = Rule { from, to, when };
    rule.set_readings(cx.allow);
    Ok(rule)
}

fn responses(doc: &ResponsesDoc) -> Result<Responses, PolicyError> {
    let mut out = Responses::default();
    let slots: [(&Option<ResponseDoc>, &mut Response, &str); 4] = [
        (&doc.denied, &mut out.denied, "denied"),
        (&doc.unregistered, &mut out.unregistered, "unregistered"),
        (&doc.dlp_blocked, &mut out.dlp_blocked, "dlpBlocked"),
        (&doc.bad_request, &mut out.bad_request, "badRequest"),
    ];
    for (given, slot, key) in slots {
        let Some(given) = given else { continue };
        if let Some(status) = given.status {
            if !(200..=599).contains(&status) {
                return Err(PolicyError::invalid(
                    format!("responses.{key}.status"),
                    format!("{status} is not an HTTP status for a refusal (200-599)"),
                ));
            }
            slot.status = status;
        }
        if let Some(body) = &given.body {
            slot.body = body.clone();
        }
    }
    Ok(out)
}
