//! `warden test --coverage`: the rules and services of each policy file that
//! no case's decision touched, read from the decision records the filter
//! wrote (`service`, `policy` + `rule`, `audit`, `dryRun`).
//!
//! A rule of an enforced ALLOW or DENY policy is touched when it decided a
//! case (the record names it). The record does not say which rule of an
//! AUDIT or dry-run policy matched, only the policy, so those are covered
//! per policy: touched when a record lists them under `audit` or `dryRun`.

use crate::testing::runner::FileRun;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use warden_engine::document::Action;
use warden_engine::Policy;

/// What no case touched in one policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCoverage {
    /// The policy file, as shown.
    pub policy_file: String,
    /// How many cases ran against it.
    pub cases: usize,
    /// Untouched things, in document order.
    pub untouched: Vec<Untouched>,
}

/// One thing no case touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untouched {
    /// A rule of an enforced ALLOW or DENY policy that decided no case.
    Rule {
        /// The policy's index in `authorization`.
        index: usize,
        /// The policy's name.
        policy: String,
        /// `ALLOW` or `DENY`.
        action: &'static str,
        /// The rule's index.
        rule: usize,
    },
    /// An AUDIT or dry-run policy no record listed.
    Policy {
        /// The policy's index in `authorization`.
        index: usize,
        /// The policy's name.
        policy: String,
        /// `AUDIT`, `dry-run ALLOW` or `dry-run DENY`.
        kind: String,
    },
    /// A registry entry no case reached.
    Service {
        /// Its index in `services`.
        index: usize,
        /// Its name.
        name: String,
    },
}

impl Untouched {
    /// The field path in the policy document.
    pub fn path(&self) -> String {
        match self {
            Untouched::Rule { index, rule, .. } => format!("authorization[{index}].rules[{rule}]"),
            Untouched::Policy { index, .. } => format!("authorization[{index}]"),
            Untouched::Service { index, .. } => format!("services[{index}]"),
        }
    }

    /// What it is and why it is listed.
    pub fn describe(&self) -> String {
        match self {
            Untouched::Rule { policy, action, rule, .. } => {
                format!("{policy} rule {rule} ({action}): decided no case")
            }
            Untouched::Policy { policy, kind, .. } => format!("{policy} ({kind}): in no case's decision record"),
            Untouched::Service { name, .. } => format!("{name}: no case reached it"),
        }
    }
}

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Allow => "ALLOW",
        Action::Deny => "DENY",
        Action::Audit => "AUDIT",
    }
}

#[derive(Default)]
struct Touched {
    cases: usize,
    services: BTreeSet<String>,
    rules: BTreeSet<(String, u64)>,
    policies: BTreeSet<String>,
}

/// Coverage per policy file over the runs, in the order the policy files
/// were first met. Files that could not be run are left out.
pub fn compute(runs: &[FileRun]) -> Vec<PolicyCoverage> {
    // Keyed by the policy files a test file names (Istio YAML may be split
    // over several).
    let mut order: Vec<(Vec<PathBuf>, String, &Policy)> = Vec::new();
    let mut touched: BTreeMap<Vec<PathBuf>, Touched> = BTreeMap::new();
    for run in runs {
        let (Some(path), Some(policy), Ok(cases)) = (&run.policy_file, &run.policy, &run.result) else { continue };
        let files = if run.policy_files.is_empty() { std::slice::from_ref(path) } else { run.policy_files.as_slice() };
        let key: Vec<PathBuf> = files.iter().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())).collect();
        if !touched.contains_key(&key) {
            order.push((key.clone(), crate::display::shown_list(files), policy));
        }
        let t = touched.entry(key).or_default();
        for case in cases {
            t.cases += 1;
            let Some(record) = case.actual.record_json() else { continue };
            let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
            if let Some(service) = text(record.get("service")) {
                t.services.insert(service);
            }
            if let (Some(policy), Some(rule)) =
                (text(record.get("policy")), record.get("rule").and_then(|r| r.as_u64()))
            {
                t.rules.insert((policy, rule));
            }
            for list in ["audit", "dryRun"] {
                for name in record.get(list).and_then(|l| l.as_array()).into_iter().flatten() {
                    if let Some(name) = name.as_str() {
                        t.policies.insert(name.to_owned());
                    }
                }
            }
        }
    }
    order
        .into_iter()
        .map(|(key, shown, policy)| {
            let t = touched.remove(&key).unwrap_or_default();
            PolicyCoverage { policy_file: shown, cases: t.cases, untouched: untouched(policy, &t) }
        })
        .collect()
}

fn untouched(policy: &Policy, t: &Touched) -> Vec<Untouched> {
    let mut out = Vec::new();
    for (index, p) in policy.authz_policies().iter().enumerate() {
        if p.dry_run || p.action == Action::Audit {
            if !t.policies.contains(&p.name) {
                let kind = if p.dry_run {
                    format!("dry-run {}", action_word(p.action))
                } else {
                    action_word(p.action).to_owned()
                };
                out.push(Untouched::Policy { index, policy: p.name.clone(), kind });
            }
            continue;
        }
        for rule in 0..p.rules.len() {
            if !t.rules.contains(&(p.name.clone(), rule as u64)) {
                out.push(Untouched::Rule { index, policy: p.name.clone(), action: action_word(p.action), rule });
            }
        }
    }
    for (index, service) in policy.registry().services().iter().enumerate() {
        if !t.services.contains(&service.name) {
            out.push(Untouched::Service { index, name: service.name.clone() });
        }
    }
    out
}
