//! `warden test --coverage`: the rules and services of each policy file that
//! no case's decision touched, read from the decision records the filter
//! wrote (`service`, `policy` + `rule`, `audit`, `dryRun`).
//!
//! A rule of an enforced ALLOW or DENY policy is touched when it decided a
//! case (the record names it). The record does not say which rule of an
//! AUDIT or dry-run policy matched, only the policy, so those are covered
//! per policy: touched when a record lists them under `audit` or `dryRun`.
//!
//! The percentage covered counts the same things: each rule of an enforced
//! ALLOW or DENY policy, each AUDIT or dry-run policy, and each service is
//! one item; the percentage is the touched items over all items, per policy
//! file and over every policy file of the run ([`Total`]).

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
    /// How many things a case can touch: the rules of enforced ALLOW and
    /// DENY policies, the AUDIT and dry-run policies, the services.
    pub items: usize,
    /// Untouched things, in document order.
    pub untouched: Vec<Untouched>,
}

impl PolicyCoverage {
    /// The items touched and in all.
    pub fn total(&self) -> Total {
        Total { items: self.items, touched: self.items.saturating_sub(self.untouched.len()) }
    }
}

/// Items touched out of items in all: one policy file, or a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    /// Rules of enforced ALLOW and DENY policies, AUDIT and dry-run
    /// policies, and services.
    pub items: usize,
    /// Of those, touched by a case.
    pub touched: usize,
}

impl Total {
    /// Over several policy files.
    pub fn of(coverage: &[PolicyCoverage]) -> Total {
        coverage
            .iter()
            .map(PolicyCoverage::total)
            .fold(Total::default(), |a, b| Total { items: a.items + b.items, touched: a.touched + b.touched })
    }

    /// The percentage touched, rounded down to a tenth (so a run never
    /// shows the threshold it is below); 100 when there is nothing to
    /// touch.
    pub fn percent(&self) -> f64 {
        if self.items == 0 {
            return 100.0;
        }
        // Whole tenths of a percent, rounded down.
        let tenths = self.touched.saturating_mul(1000) / self.items;
        tenths as f64 / 10.0
    }

    /// Whether the exact share touched is below `threshold` percent.
    pub fn below(&self, threshold: f64) -> bool {
        self.items > 0 && (self.touched as f64) * 100.0 < threshold * self.items as f64
    }
}

impl std::fmt::Display for Total {
    /// `66.6% covered (6 of 9)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}% covered ({} of {})", self.percent(), self.touched, self.items)
    }
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
            PolicyCoverage {
                policy_file: shown,
                cases: t.cases,
                items: items(policy),
                untouched: untouched(policy, &t),
            }
        })
        .collect()
}

/// How many things of `policy` a case can touch (see [`untouched`]).
fn items(policy: &Policy) -> usize {
    let authz: usize = policy
        .authz_policies()
        .iter()
        .map(|p| if p.dry_run || p.action == Action::Audit { 1 } else { p.rules.len() })
        .sum();
    authz + policy.registry().services().len()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentage_rounds_down_and_the_threshold_is_exact() {
        let t = Total { items: 3, touched: 2 };
        assert_eq!(t.percent(), 66.6);
        assert_eq!(t.to_string(), "66.6% covered (2 of 3)");
        assert!(t.below(66.7) && !t.below(66.6));
        assert!(Total { items: 1000, touched: 999 }.below(100.0));
        assert_eq!(Total { items: 1000, touched: 999 }.percent(), 99.9);
        assert_eq!(Total::default().percent(), 100.0, "nothing to touch");
        assert!(!Total::default().below(100.0));
        let files = [
            PolicyCoverage { policy_file: "a".into(), cases: 1, items: 4, untouched: Vec::new() },
            PolicyCoverage {
                policy_file: "b".into(),
                cases: 1,
                items: 6,
                untouched: vec![Untouched::Service { index: 0, name: "s".into() }; 3],
            },
        ];
        assert_eq!(Total::of(&files), Total { items: 10, touched: 7 });
    }
}
