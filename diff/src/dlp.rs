//! The DLP side of a diff: per service, place and detector, the strongest
//! action before and after. DLP acts on what requests carry, which no
//! finite set of probes covers, so it is compared by configuration: the
//! same detector in the same place of the same service's requests, with
//! the action the strongest applicable policy takes.

use serde::Serialize;
use std::collections::BTreeMap;
use warden_engine::dlp::DlpPolicy;
use warden_engine::document::{DlpAction, OnOversize};
use warden_engine::Policy;

/// Where a detector looks, what for, in whose requests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DlpKey {
    /// The service (`None`: hosts in no service).
    pub service: Option<String>,
    /// `headers`, `query` or `body`; `body limit` for what happens to a
    /// body over `maxBodyBytes`.
    pub place: &'static str,
    /// A built-in detector's id, or `custom NAME /REGEX/`; for `body
    /// limit`, `maxBodyBytes N`.
    pub detector: String,
}

/// Detectors whose action changed the same way in the same places of the
/// requests to these services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DlpChange {
    /// The services (`None`: hosts in no service).
    pub services: Vec<Option<String>>,
    /// `headers`, `query`, `body`, or `body limit`.
    pub places: Vec<&'static str>,
    /// Built-in detector ids, `custom NAME /REGEX/`, or `maxBodyBytes N`.
    pub detectors: Vec<String>,
    /// The action before (`BLOCK`, `REDACT`, `AUDIT`; for `body limit`,
    /// `BLOCK` or `ALLOW`; `None`: not scanned).
    pub old: Option<&'static str>,
    /// The action after.
    pub new: Option<&'static str>,
}

impl DlpChange {
    /// Whether the protection is weaker: a detector dropped, or its action
    /// softened (BLOCK → REDACT → AUDIT → none); an over-limit body let
    /// through where it was blocked.
    pub fn weakens(&self) -> bool {
        rank(self.new) < rank(self.old)
    }
}

fn rank(action: Option<&str>) -> u8 {
    match action {
        Some("BLOCK") => 3,
        Some("REDACT") => 2,
        Some("AUDIT" | "ALLOW") => 1,
        _ => 0,
    }
}

fn word(action: DlpAction) -> &'static str {
    match action {
        DlpAction::Block => "BLOCK",
        DlpAction::Redact => "REDACT",
        DlpAction::Audit => "AUDIT",
    }
}

/// Per (place, detector), the strongest action of `policies`.
fn actions(service: Option<&str>, policies: &[&DlpPolicy], out: &mut BTreeMap<DlpKey, &'static str>) {
    for p in policies {
        let places = [("headers", p.headers), ("query", p.query), ("body", p.body)];
        let custom = p.patterns.iter().map(|(name, re)| format!("custom {name} /{re}/"));
        for detector in p.detectors.iter().cloned().chain(custom) {
            for (place, on) in places {
                if !on {
                    continue;
                }
                let key = DlpKey { service: service.map(str::to_owned), place, detector: detector.clone() };
                let action = word(p.action);
                let slot = out.entry(key).or_insert(action);
                if rank(Some(action)) > rank(Some(slot)) {
                    *slot = action;
                }
            }
        }
        if p.body && p.action != DlpAction::Audit {
            let key = DlpKey {
                service: service.map(str::to_owned),
                place: "body limit",
                detector: format!("maxBodyBytes {}", p.max_body_bytes),
            };
            let action = match p.on_oversize {
                OnOversize::Block => "BLOCK",
                OnOversize::Allow => "ALLOW",
            };
            let slot = out.entry(key).or_insert(action);
            if rank(Some(action)) > rank(Some(slot)) {
                *slot = action;
            }
        }
    }
}

fn table(policy: &Policy) -> BTreeMap<DlpKey, &'static str> {
    let mut out = BTreeMap::new();
    let services = policy.registry().services();
    for (i, s) in services.iter().enumerate() {
        actions(Some(&s.name), &policy.dlp().applicable(Some(i as u32)), &mut out);
    }
    actions(None, &policy.dlp().applicable(None), &mut out);
    out
}

type Actions = (Option<&'static str>, Option<&'static str>);

/// Every (service, place, detector) whose action differs, grouped exactly:
/// per service and pair of actions, the detectors that changed in the same
/// places.
pub(crate) fn diff(old: &Policy, new: &Policy) -> Vec<DlpChange> {
    let (a, b) = (table(old), table(new));
    let mut keys: Vec<&DlpKey> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    // (service, actions, detector) → places.
    let mut places: BTreeMap<(Option<String>, Actions, String), Vec<&'static str>> = BTreeMap::new();
    for k in keys {
        let (o, n) = (a.get(k).copied(), b.get(k).copied());
        if o != n {
            places.entry((k.service.clone(), (o, n), k.detector.clone())).or_default().push(k.place);
        }
    }
    // (service, actions, places) → detectors.
    type Places = Vec<&'static str>;
    let mut groups: BTreeMap<(Option<String>, Actions, Places), Vec<String>> = BTreeMap::new();
    for ((service, actions, detector), p) in places {
        groups.entry((service, actions, p)).or_default().push(detector);
    }
    // (actions, places, detectors) → services.
    let mut merged: Vec<DlpChange> = Vec::new();
    for ((service, (old, new), places), detectors) in groups {
        match merged.iter_mut().find(|c| c.old == old && c.new == new && c.places == places && c.detectors == detectors)
        {
            Some(c) => c.services.push(service),
            None => merged.push(DlpChange { services: vec![service], places, detectors, old, new }),
        }
    }
    merged
}
