//! What the engine decided about one request, and the one-line record that
//! goes into Envoy's filter state (SPEC §5).

use crate::normalize::BadRequest;
use serde::Serialize;

/// The outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request goes on upstream.
    Allow,
    /// An authorization policy refused it.
    Denied,
    /// The host (and port) is not in the registry.
    Unregistered,
    /// The request is malformed or its path ambiguous.
    BadRequest,
}

impl Outcome {
    /// The word used in `x-warden-decision` and in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Denied => "denied",
            Outcome::Unregistered => "unregistered",
            Outcome::BadRequest => "bad-request",
        }
    }
}

/// Why the outcome is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A rule of an ALLOW policy matched.
    AllowPolicy,
    /// No ALLOW policy applies to the request, and no DENY matched.
    NoPolicy,
    /// A rule of a DENY policy matched.
    DenyPolicy,
    /// ALLOW policies apply, but none matched.
    NoAllowMatch,
    /// Not in the registry.
    Unregistered,
    /// Malformed request.
    BadRequest(BadRequest),
    /// The filter has no valid configuration and refuses everything.
    NoConfig,
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
            Reason::BadRequest(b) => b.reason(),
            Reason::NoConfig => "no-config",
        }
    }
}

/// A decision, borrowing names from the policy that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'p> {
    /// Allow or which refusal.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
    /// The matched service, if any.
    pub service: Option<&'p str>,
    /// The deciding authorization policy, if one decided.
    pub policy: Option<&'p str>,
    /// The index of the deciding rule within that policy.
    pub rule: Option<usize>,
    /// The caller's principal, `spiffe://` stripped.
    pub principal: Option<String>,
    /// Dry-run policies that would have refused the request.
    pub dry_run: Vec<&'p str>,
    /// AUDIT policies that matched.
    pub audit: Vec<&'p str>,
    /// The `:path` to forward (normalized, query re-attached) when it
    /// differs from the one received.
    pub forward_path: Option<String>,
}

impl<'p> Decision<'p> {
    pub(crate) fn allowed(reason: Reason) -> Self {
        Self::new(Outcome::Allow, reason, None)
    }

    pub(crate) fn refused(outcome: Outcome, reason: Reason, principal: Option<String>) -> Self {
        Self::new(outcome, reason, principal)
    }

    fn new(outcome: Outcome, reason: Reason, principal: Option<String>) -> Self {
        Decision {
            outcome,
            reason,
            service: None,
            policy: None,
            rule: None,
            principal,
            dry_run: Vec::new(),
            audit: Vec::new(),
            forward_path: None,
        }
    }

    /// The decision of a filter that has no valid configuration.
    pub fn no_config() -> Decision<'static> {
        Decision::new(Outcome::Denied, Reason::NoConfig, None)
    }

    /// Whether the request goes on upstream.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// The one-line JSON record for `wasm.warden.decision`:
    /// `{"decision","reason","policy","rule","service","principal","findings","dryRun","audit"}`.
    /// It never contains request data beyond the principal.
    pub fn record(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Record<'a> {
            decision: &'static str,
            reason: &'static str,
            policy: Option<&'a str>,
            rule: Option<usize>,
            service: Option<&'a str>,
            principal: Option<&'a str>,
            findings: [&'a str; 0],
            dry_run: &'a [&'a str],
            audit: &'a [&'a str],
        }
        let record = Record {
            decision: self.outcome.as_str(),
            reason: self.reason.as_str(),
            policy: self.policy,
            rule: self.rule,
            service: self.service,
            principal: self.principal.as_deref(),
            findings: [],
            dry_run: &self.dry_run,
            audit: &self.audit,
        };
        serde_json::to_string(&record).unwrap_or_else(|_| format!("{{\"decision\":\"{}\"}}", self.outcome.as_str()))
    }
}
