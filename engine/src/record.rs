//! What the filter emits, named once: the decision record it writes to
//! Envoy's filter state for every request (written here, read back with
//! [`Record`] by `warden test`, `explain` and `replay`), the filter-state
//! key, the `x-warden-decision` header and its words ([`Outcome`]), the
//! reasons ([`Reason`]) and the metric names ([`metric`]).
//!
//! ```
//! use warden_engine::record::{Record, FILTER_STATE_KEY};
//! use warden_engine::{compile, FakeAttributes, Outcome};
//!
//! let policy = compile::load(br#"{"name": "p", "services": [{"name": "h", "hosts": ["httpbin.org"]}]}"#).unwrap();
//! let written = policy.decide(&FakeAttributes::get("aliyun.com", "/")).record();
//! let record = Record::parse(written.as_bytes()).unwrap();
//! assert_eq!((record.decision, &*record.reason), (Outcome::Unregistered, "unregistered"));
//! assert_eq!(FILTER_STATE_KEY, "wasm.warden.decision");
//! ```

use crate::dlp::finding::{Finding, Location, MAX_LOCATIONS};
use crate::document::DlpAction;
use crate::normalize::BadRequest;
use serde::Deserialize;
use std::borrow::Cow;

/// The filter-state key of the decision record as Envoy shows it (in the
/// access log: `%FILTER_STATE(wasm.warden.decision:PLAIN)%`).
pub const FILTER_STATE_KEY: &str = "wasm.warden.decision";

/// The property the filter sets; Envoy prefixes it with `wasm.`, giving
/// [`FILTER_STATE_KEY`].
pub const FILTER_STATE_PROPERTY: &str = "warden.decision";

/// The response header of a refusal Warden made itself; its value is the
/// refusal's [`Outcome::as_str`].
pub const DECISION_HEADER: &str = "x-warden-decision";

/// The root id that makes the filter a network filter
/// (`envoy.filters.network.wasm`, deciding connections): Envoy's
/// `root_id`, Istio's WasmPlugin `pluginName`. Any other root id makes it
/// an HTTP filter.
pub const NETWORK_ROOT_ID: &str = "warden.network";

/// The counters the filter defines (Envoy's stats show them prefixed with
/// `wasmcustom.`).
pub mod metric {
    /// Every request decided.
    pub const REQUESTS: &str = "warden.requests";
    /// Forwarded.
    pub const ALLOWED: &str = "warden.allowed";
    /// Refused by authorization.
    pub const DENIED: &str = "warden.denied";
    /// Refused: not in the registry.
    pub const UNREGISTERED: &str = "warden.unregistered";
    /// Refused: malformed or ambiguous.
    pub const BAD_REQUEST: &str = "warden.bad_request";
    /// An AUDIT policy matched or a DLP finding was only recorded.
    pub const AUDIT: &str = "warden.audit";
    /// A configuration was refused (the filter then refuses everything).
    pub const CONFIG_ERRORS: &str = "warden.config_errors";
    /// Gauge: bytes the filter VMs' allocators have out, summed over the
    /// VMs (one per worker).
    pub const VM_HEAP_BYTES: &str = "warden.vm_heap_bytes";
    /// Gauge: the filter VMs' linear memory (it only grows), summed.
    pub const VM_MEMORY_BYTES: &str = "warden.vm_memory_bytes";
    /// Refused by DLP.
    pub const DLP_BLOCKED: &str = "warden.dlp_blocked";
    /// Forwarded with DLP findings masked.
    pub const DLP_REDACTED: &str = "warden.dlp_redacted";
    /// Every connection decided (the network filter).
    pub const CONNECTIONS: &str = "warden.connections";
    /// Connections let through.
    pub const CONNECTIONS_ALLOWED: &str = "warden.connections_allowed";
    /// Connections closed by authorization.
    pub const CONNECTIONS_DENIED: &str = "warden.connections_denied";
    /// Connections closed: server name (and port) not in the registry, or
    /// no server name.
    pub const CONNECTIONS_UNREGISTERED: &str = "warden.connections_unregistered";
    /// Connections closed: a server name that is not a host name, or no
    /// destination port.
    pub const CONNECTIONS_BAD_REQUEST: &str = "warden.connections_bad_request";
}

/// The outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The request goes on upstream.
    Allow,
    /// An authorization policy refused it.
    Denied,
    /// The host (and port) is not in the registry.
    Unregistered,
    /// The request is malformed or its path ambiguous.
    BadRequest,
    /// DLP refused it.
    #[serde(rename = "dlp")]
    DlpBlocked,
}

impl Outcome {
    /// Every outcome, in the order reports list them.
    pub const ALL: [Outcome; 5] =
        [Outcome::Allow, Outcome::Denied, Outcome::Unregistered, Outcome::BadRequest, Outcome::DlpBlocked];

    /// The word used in `x-warden-decision` and in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Denied => "denied",
            Outcome::Unregistered => "unregistered",
            Outcome::BadRequest => "bad-request",
            Outcome::DlpBlocked => "dlp",
        }
    }
}

/// Why the outcome is what it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reason {
    /// A rule of an ALLOW policy matched.
    AllowPolicy,
    /// No ALLOW policy applies to the request, and no DENY matched.
    #[default]
    NoPolicy,
    /// A rule of a DENY policy matched.
    DenyPolicy,
    /// ALLOW policies apply, but none matched.
    NoAllowMatch,
    /// Not in the registry.
    Unregistered,
    /// A connection without a server name (SNI) under `REGISTRY_ONLY`:
    /// nothing to look up.
    NoServerName,
    /// Malformed request.
    BadRequest(BadRequest),
    /// The filter has no valid configuration and refuses everything.
    NoConfig,
    /// A BLOCK DLP policy found something.
    DlpFinding,
    /// A held body could not be scanned whole (over `maxBodyBytes`, an
    /// unknown content-encoding, corrupt compression) and `onOversize` is
    /// BLOCK.
    DlpUnscannable,
    /// A REDACT finding in a compressed body, which cannot be masked in
    /// place.
    DlpUnredactable,
    /// Enforced rules match on the caller's identity, and a peer
    /// certificate was presented whose names cannot all be read.
    UnverifiableIdentity,
    /// Enforced rules match on the caller's address, and Envoy does not
    /// show it (the direct peer, when Envoy took `source.address` from
    /// `x-forwarded-for`).
    UnknownAddress,
}

impl Reason {
    /// A short machine-readable reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AllowPolicy => "allow-policy",
            Reason::NoPolicy => "no-policy",
            Reason::DenyPolicy => "deny-policy",
            Reason::NoAllowMatch => "no-allow-match",
            Reason::Unregistered => "unregistered",
            Reason::NoServerName => "no-sni",
            Reason::BadRequest(b) => b.reason(),
            Reason::NoConfig => "no-config",
            Reason::DlpFinding => "dlp-finding",
            Reason::DlpUnscannable => "dlp-unscannable",
            Reason::DlpUnredactable => "dlp-unredactable",
            Reason::UnverifiableIdentity => "unverifiable-identity",
            Reason::UnknownAddress => "unknown-address",
        }
    }
}

/// The header-time decision, owned, for a body scan's final record.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordBase {
    pub(crate) reason: Reason,
    pub(crate) service: Option<String>,
    pub(crate) policy: Option<String>,
    pub(crate) rule: Option<usize>,
    pub(crate) principal: Option<String>,
    pub(crate) dry_run: Vec<String>,
    pub(crate) audit: Vec<String>,
    pub(crate) findings: Vec<Finding>,
}

impl RecordBase {
    /// The record with the body's outcome and findings (the body's, then
    /// the trailers').
    pub(crate) fn record(&self, outcome: Outcome, reason: Reason, later: [&[Finding]; 2], unscanned: bool) -> String {
        let refused = outcome != Outcome::Allow;
        let mut audit: Vec<&str> = self.audit.iter().map(String::as_str).collect();
        for f in self.findings.iter().chain(later.into_iter().flatten()) {
            if f.action == DlpAction::Audit && !audit.contains(&f.policy.as_str()) {
                audit.push(&f.policy);
            }
        }
        let dry_run: Vec<&str> = self.dry_run.iter().map(String::as_str).collect();
        RecordFields {
            outcome,
            reason,
            policy: self.policy.as_deref(),
            rule: if refused { None } else { self.rule },
            service: self.service.as_deref(),
            principal: self.principal.as_deref(),
            dry_run: &dry_run,
            audit: &audit,
            findings: &self.findings,
            more_findings: later,
            unscanned,
        }
        .write()
    }
}

/// Everything a record shows, borrowed.
pub(crate) struct RecordFields<'a> {
    pub(crate) outcome: Outcome,
    pub(crate) reason: Reason,
    pub(crate) policy: Option<&'a str>,
    pub(crate) rule: Option<usize>,
    pub(crate) service: Option<&'a str>,
    pub(crate) principal: Option<&'a str>,
    pub(crate) dry_run: &'a [&'a str],
    pub(crate) audit: &'a [&'a str],
    pub(crate) findings: &'a [Finding],
    /// Found after the headers: in the body, then in the trailers.
    pub(crate) more_findings: [&'a [Finding]; 2],
    pub(crate) unscanned: bool,
}

impl RecordFields<'_> {
    pub(crate) fn write(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("{\"decision\":\"");
        out.push_str(self.outcome.as_str());
        out.push_str("\",\"reason\":\"");
        out.push_str(self.reason.as_str());
        out.push_str("\",\"policy\":");
        push_opt_str(&mut out, self.policy);
        out.push_str(",\"rule\":");
        match self.rule {
            Some(rule) => out.push_str(itoa::Buffer::new().format(rule)),
            None => out.push_str("null"),
        }
        out.push_str(",\"service\":");
        push_opt_str(&mut out, self.service);
        out.push_str(",\"principal\":");
        push_opt_str(&mut out, self.principal);
        out.push_str(",\"findings\":");
        let all = || self.findings.iter().chain(self.more_findings.into_iter().flatten());
        let mut ids: Vec<&str> = Vec::new();
        for f in all() {
            if !ids.contains(&f.detector.as_str()) {
                ids.push(&f.detector);
            }
        }
        push_str_list(&mut out, &ids);
        out.push_str(",\"dryRun\":");
        push_str_list(&mut out, self.dry_run);
        out.push_str(",\"audit\":");
        push_str_list(&mut out, self.audit);
        if !ids.is_empty() {
            out.push_str(",\"findingsAt\":[");
            for (i, f) in all().take(MAX_LOCATIONS).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"id\":");
                push_json_str(&mut out, &f.detector);
                out.push_str(",\"in\":");
                match &f.location {
                    Location::Header(name) => {
                        out.push_str("\"header\",\"name\":");
                        push_json_str(&mut out, name);
                    }
                    Location::HeaderName => out.push_str("\"header-name\""),
                    Location::Trailer(name) => {
                        out.push_str("\"trailer\",\"name\":");
                        push_json_str(&mut out, name);
                    }
                    Location::TrailerName => out.push_str("\"trailer-name\""),
                    Location::Path => out.push_str("\"path\""),
                    Location::Query => out.push_str("\"query\""),
                    Location::Body(offset) => {
                        out.push_str("\"body\",\"offset\":");
                        out.push_str(itoa::Buffer::new().format(*offset));
                    }
                }
                out.push_str(",\"action\":\"");
                out.push_str(match f.action {
                    DlpAction::Block => "BLOCK",
                    DlpAction::Redact => "REDACT",
                    DlpAction::Audit => "AUDIT",
                });
                out.push_str("\"}");
            }
            out.push(']');
        }
        if self.unscanned {
            out.push_str(",\"bodyUnscanned\":true");
        }
        out.push('}');
        out
    }
}

fn push_opt_str(out: &mut String, value: Option<&str>) {
    match value {
        Some(v) => push_json_str(out, v),
        None => out.push_str("null"),
    }
}

fn push_str_list(out: &mut String, values: &[&str]) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, v);
    }
    out.push(']');
}

/// A JSON string literal (RFC 8259 §7): `"` and `\\` escaped, control
/// characters as `\\u00XX`; everything else, non-ASCII included, as is.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    let mut rest = value;
    while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let c = rest.get(i..).and_then(|r| r.chars().next()).unwrap_or(' ');
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                out.push_str("\\u00");
                let b = c as u8;
                for nibble in [b >> 4, b & 0xf] {
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
        }
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out.push('"');
}

/// A decision record read back: what the filter wrote, typed. Names are
/// borrowed from the record's text where it has no escapes.
///
/// Fields a newer filter may add are ignored; only `decision` is required,
/// so records of older filters read too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    /// Allow or which refusal.
    pub decision: Outcome,
    /// Why ([`Reason::as_str`]).
    #[serde(borrow, default)]
    pub reason: Cow<'a, str>,
    /// The deciding authorization policy.
    #[serde(borrow, default)]
    pub policy: Option<Cow<'a, str>>,
    /// The index of the deciding rule in that policy.
    #[serde(default)]
    pub rule: Option<usize>,
    /// The matched service.
    #[serde(borrow, default)]
    pub service: Option<Cow<'a, str>>,
    /// The caller's principal.
    #[serde(borrow, default)]
    pub principal: Option<Cow<'a, str>>,
    /// DLP detector ids, each once.
    #[serde(default)]
    pub findings: Vec<Cow<'a, str>>,
    /// Dry-run policies that would have refused the request.
    #[serde(default)]
    pub dry_run: Vec<Cow<'a, str>>,
    /// AUDIT policies that matched (and DLP policies that only recorded).
    #[serde(default)]
    pub audit: Vec<Cow<'a, str>>,
    /// Where each finding was made (at most [`MAX_LOCATIONS`]).
    #[serde(default)]
    pub findings_at: Vec<FindingAt<'a>>,
    /// A body went on without being scanned whole.
    #[serde(default)]
    pub body_unscanned: bool,
}

impl<'a> Record<'a> {
    /// Reads a record (the bytes of the filter-state value).
    pub fn parse(text: &'a [u8]) -> Result<Record<'a>, serde_json::Error> {
        serde_json::from_slice(text)
    }
}

/// One entry of a record's `findingsAt`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FindingAt<'a> {
    /// The detector's id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// `header`, `header-name`, `trailer`, `trailer-name`, `path`,
    /// `query` or `body`.
    #[serde(rename = "in", borrow)]
    pub place: Cow<'a, str>,
    /// The header's or trailer's name, for `header` and `trailer`.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// The offset in the decoded body, for `body`.
    #[serde(default)]
    pub offset: Option<u64>,
    /// `BLOCK`, `REDACT` or `AUDIT`.
    #[serde(borrow)]
    pub action: Cow<'a, str>,
}
