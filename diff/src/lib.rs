//! `warden diff`: every class of request two policies decide differently,
//! each with a concrete witness request.
//!
//! The request space is cut by every constant either policy mentions. A
//! request's *class* is the truth value of every test ("atom") the rules
//! make on it, plus the service each registry gives its destination: two
//! requests of one class are decided alike by each policy, because the
//! engine reads a request only through those atoms. The diff enumerates the
//! classes by candidate values (see [`candidates`]), decides one
//! representative of each with the engine under both policies, and keeps
//! those whose verdicts differ. Destinations whose applicable policies are
//! the same in both (and whose settings are unchanged) are skipped whole:
//! every request to them is decided alike.
//!
//! ```
//! use warden_engine::compile;
//!
//! let old = compile::load(br#"{"name": "p",
//!   "services": [{"name": "httpbin", "hosts": ["httpbin.org"], "ports": [80]}],
//!   "authorization": [{"name": "get-only", "action": "ALLOW", "services": ["httpbin"],
//!     "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}]}"#).unwrap();
//! let new = compile::load(br#"{"name": "p",
//!   "services": [{"name": "httpbin", "hosts": ["httpbin.org"], "ports": [80]}],
//!   "authorization": [{"name": "get-only", "action": "ALLOW", "services": ["httpbin"],
//!     "rules": [{"to": [{"operation": {"methods": ["GET", "POST"]}}]}]}]}"#).unwrap();
//! let report = warden_diff::diff(&old, &new);
//! assert!(report.widens());
//! let change = &report.changes[0];
//! assert_eq!(change.witness.method, "POST");
//! assert_eq!(change.new.outcome, "allow");
//! ```

pub mod atoms;
pub mod candidates;
mod dlp;
mod merge;
mod probe;

pub use dlp::{DlpChange, DlpKey};
pub use probe::Probe;

use atoms::{Atoms, DestAtoms, Field, Value};
use probe::{Presentation, View};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::net::IpAddr;
use warden_engine::authz::{Check, Reading, Rule, Test};
use warden_engine::document::Action;
use warden_engine::matcher::StringMatch;
use warden_engine::{normalize, Decision, Outcome, Policy, ServiceId};

/// What a policy decided about a request, as the diff compares it: the
/// outcome, the reason, the service and the deciding policy, and the
/// dry-run and AUDIT policies it records. (The deciding rule's index is
/// left out: reordering rules is not a change of access.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Verdict {
    /// `allow`, `denied`, `unregistered`, `bad-request`, `dlp`.
    pub outcome: &'static str,
    /// The reason, as in the decision record.
    pub reason: &'static str,
    /// The matched service.
    pub service: Option<String>,
    /// The deciding authorization policy.
    pub policy: Option<String>,
    /// Dry-run policies that would have refused it.
    #[serde(rename = "dryRun")]
    pub dry_run: Vec<String>,
    /// AUDIT policies that matched.
    pub audit: Vec<String>,
}

impl Verdict {
    fn of(d: &Decision<'_>) -> Self {
        Verdict {
            outcome: d.outcome.as_str(),
            reason: d.reason.as_str(),
            service: d.service.map(str::to_owned),
            policy: d.policy.map(str::to_owned),
            dry_run: d.dry_run.iter().map(|s| (*s).to_owned()).collect(),
            audit: d.audit.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Whether the request goes upstream.
    pub fn allowed(&self) -> bool {
        self.outcome == Outcome::Allow.as_str()
    }
}

/// How a class's decision changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Refused before, allowed now.
    Widens,
    /// Allowed before, refused now.
    Narrows,
    /// Still allowed or still refused, for another reason or by another
    /// policy, or with other dry-run or AUDIT records.
    Record,
}

impl Kind {
    fn of(old: &Verdict, new: &Verdict) -> Self {
        match (old.allowed(), new.allowed()) {
            (false, true) => Kind::Widens,
            (true, false) => Kind::Narrows,
            _ => Kind::Record,
        }
    }

    /// `widens`, `narrows`, `record`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Widens => "widens",
            Kind::Narrows => "narrows",
            Kind::Record => "record",
        }
    }
}

/// The values of one field a change covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldSet {
    /// `principal`, `method`, `path`, `source ip`, `sni`, `header NAME`.
    pub field: String,
    /// The classes listed are the ones left out (the change covers every
    /// other value), not the ones covered.
    pub except: bool,
    /// The classes, each as the patterns its values match (or "none of the
    /// patterns") and an example value.
    pub classes: Vec<ClassText>,
}

/// One class of a field's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassText {
    /// The patterns the values match, `no principal`, `absent`, ... or
    /// `any other` (none of the field's patterns).
    pub matches: Vec<String>,
    /// The representative value.
    pub example: String,
}

/// One changed set of requests: a product of per-field classes, all decided
/// `old` before and `new` now.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Widens, narrows or changes the record.
    pub kind: Kind,
    /// The decision under the old policy.
    pub old: Verdict,
    /// The decision under the new policy.
    pub new: Verdict,
    /// The service under each policy.
    pub services: (Option<String>, Option<String>),
    /// Every destination of those services (`true`), or the ones listed.
    #[serde(rename = "anyDestination")]
    pub any_destination: bool,
    /// The destinations, as `authority (port N)`.
    pub destinations: Vec<String>,
    /// The other fields; those not listed do not matter to the policies.
    pub fields: Vec<FieldSet>,
    /// A request of this set, for `warden explain`.
    pub witness: Probe,
    /// How many classes the set covers (destination classes times the
    /// classes of each field).
    pub classes: u64,
}

/// A setting that differs (`outboundTrafficPolicy`, `identity`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    /// The setting's name.
    pub name: &'static str,
    /// Before.
    pub old: String,
    /// After.
    pub new: String,
}

/// Counts of the work done, for the report's footer and the benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Distinct destination classes (host, port and authority shapes).
    pub destinations: usize,
    /// Of those, the ones whose applicable policies changed, explored.
    pub explored: usize,
    /// Requests decided under each policy: one per box of classes that
    /// every rule decides alike.
    pub probes: u64,
    /// Boxes whose decision changed.
    pub changed: usize,
}

/// The diff of two policies.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Settings that differ.
    pub settings: Vec<SettingChange>,
    /// Every changed set of requests, widening ones first.
    pub changes: Vec<Change>,
    /// DLP changes per service, place and detector.
    pub dlp: Vec<DlpChange>,
    /// The work done.
    pub stats: Stats,
}

impl Report {
    /// Whether anything is newly allowed or a DLP protection is weaker.
    pub fn widens(&self) -> bool {
        self.changes.iter().any(|c| c.kind == Kind::Widens) || self.dlp.iter().any(DlpChange::weakens)
    }

    /// Whether anything changed at all.
    pub fn any(&self) -> bool {
        !self.settings.is_empty() || !self.changes.is_empty() || !self.dlp.is_empty()
    }
}

/// Diffs two policies.
pub fn diff(old: &Policy, new: &Policy) -> Report {
    Diff::new(old, new).run(false).0
}

/// The class of a request: its destination's class and, unless the
/// destination is one both policies treat alike, the truth value of every
/// atom of every field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClassKey {
    /// The destination's class.
    pub dest: DestKey,
    /// Per field, the atoms' truth values; empty for a skipped destination.
    pub fields: Vec<Vec<bool>>,
}

/// A destination's class: the service under each policy and the truth
/// value of every `hosts` and `ports` atom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DestKey {
    /// The service under the old policy.
    pub old: Option<ServiceId>,
    /// Under the new one.
    pub new: Option<ServiceId>,
    /// The atoms; empty for a malformed authority.
    pub bits: Vec<bool>,
    /// The authority (or server name) does not parse (both refuse it as
    /// a bad request).
    pub malformed: bool,
    /// A connection's destination (server name and port), not a request's.
    pub connection: bool,
}

/// A set of classes the diff decided with one probe: a destination class
/// and, per field, one class of values (`None`: any value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxKey {
    /// The destination's class.
    pub dest: DestKey,
    /// Per field, the atoms' truth values, or `None` for any.
    pub fields: Vec<Option<Vec<bool>>>,
}

impl BoxKey {
    /// Whether the class lies in this box.
    pub fn contains(&self, class: &ClassKey) -> bool {
        self.dest == class.dest
            && self.fields.len() == class.fields.len()
            && self.fields.iter().zip(&class.fields).all(|(b, c)| b.as_ref().is_none_or(|b| b == c))
    }
}

/// Every box the diff decided, with both verdicts, for the property tests.
pub type Classes = Vec<(BoxKey, Verdict, Verdict)>;

/// The enumeration of two policies' classes.
pub struct Diff<'p> {
    old: &'p Policy,
    new: &'p Policy,
    presentation: Presentation,
    dest_atoms: DestAtoms,
    settings: Vec<SettingChange>,
    sni_matters: bool,
    /// Either policy refuses ambiguous paths: the path is always fixed.
    ambiguity_matters: bool,
    fingerprints: [FxHashMap<Option<ServiceId>, Vec<u8>>; 2],
    atoms_cache: std::cell::RefCell<FxHashMap<Pair, std::rc::Rc<Atoms>>>,
}

/// A destination class's representative.
#[derive(Debug, Clone)]
struct Dest {
    authority: String,
    host: String,
    port: u16,
    key: DestKey,
    /// Other authorities and listener ports of the class, for the report.
    aliases: Vec<(String, u16)>,
}

/// How many other authorities a report names per destination class.
const MAX_ALIASES: usize = 3;

/// What the explored destinations of one pair of services share: the
/// atoms, the fields and their candidate values.
struct Group {
    /// Path normalization of the old and the new policy.
    normalization: (warden_engine::document::PathNormalization, warden_engine::document::PathNormalization),
    atoms: Atoms,
    fields: Vec<Field>,
    candidates: Vec<Vec<Candidate>>,
    dests: Vec<usize>,
}

/// One candidate value of a field.
#[derive(Debug, Clone)]
enum Candidate {
    Principal(Option<String>),
    Method(String),
    Path(String),
    Ip(IpAddr),
    /// `None`: no server name; `Some(None)`: the request's host.
    Sni(Option<Option<String>>),
    Header(Option<String>),
}

impl<'p> Diff<'p> {
    /// Prepares the diff of `old` and `new`.
    pub fn new(old: &'p Policy, new: &'p Policy) -> Self {
        let settings: Vec<SettingChange> = old
            .settings()
            .into_iter()
            .zip(new.settings())
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, b)| SettingChange { name: a.0, old: a.1, new: b.1 })
            .collect();
        let dest_atoms = DestAtoms::of(old.authz_policies().iter().chain(new.authz_policies()));
        let fingerprints = [fingerprints(old), fingerprints(new)];
        Diff {
            old,
            new,
            presentation: Presentation::of(&[old, new]),
            dest_atoms,
            settings,
            sni_matters: old.require_sni_match() || new.require_sni_match(),
            ambiguity_matters: old.rejects_ambiguous_paths() || new.rejects_ambiguous_paths(),
            fingerprints,
            atoms_cache: Default::default(),
        }
    }

    fn policies(&self) -> [&'p Policy; 2] {
        [self.old, self.new]
    }

    /// The destination class of an authority on a listener port, and the
    /// normalized host.
    pub fn dest_key(&self, authority: &str, listener: u16) -> (DestKey, String) {
        let lower = authority.to_ascii_lowercase();
        let Ok((host, authority_port)) = normalize::split_authority(&lower) else {
            return (
                DestKey { old: None, new: None, bits: Vec::new(), malformed: true, connection: false },
                String::new(),
            );
        };
        let [(old, port_old, listener_old), (new, port_new, listener_new)] = self.policies().map(|policy| {
            let mapped = service_port(policy, listener);
            let port = authority_port.unwrap_or(mapped);
            (policy.registry().lookup(&host, port), port, mapped)
        });
        let mut bits = Vec::with_capacity(1 + self.dest_atoms.hosts.len() * 3 + self.dest_atoms.ports.len() * 4);
        // A CONNECT must name its port.
        bits.push(authority_port.is_some());
        for h in &self.dest_atoms.hosts {
            bits.push(h.matches_raw(&lower));
            bits.push(h.matches_normalized(&host, port_old));
            bits.push(h.matches_normalized(&host, port_new));
        }
        for &p in &self.dest_atoms.ports {
            bits.extend([p == port_old, p == listener_old, p == port_new, p == listener_new]);
        }
        bits.extend(self.dest_atoms.sni.iter().map(|m| m.matches(&host)));
        (DestKey { old, new, bits, malformed: false, connection: false }, host.into_owned())
    }

    /// The destination class of a connection with server name `sni` on a
    /// listener port, and the normalized server name.
    pub fn connection_key(&self, sni: Option<&str>, listener: u16) -> (DestKey, String) {
        let host = match sni.filter(|s| !s.is_empty()).map(normalize::server_name) {
            None => None,
            Some(Ok(h)) => Some(h.into_owned()),
            Some(Err(_)) => {
                let key = DestKey { old: None, new: None, bits: Vec::new(), malformed: true, connection: true };
                return (key, String::new());
            }
        };
        let [(old, port_old), (new, port_new)] = self.policies().map(|policy| {
            let port = service_port(policy, listener);
            (host.as_deref().and_then(|h| policy.registry().lookup(h, port)), port)
        });
        let mut bits = vec![host.is_some()];
        for &p in &self.dest_atoms.ports {
            bits.extend([p == port_old, p == port_new]);
        }
        let h = host.clone().unwrap_or_default();
        bits.extend(self.dest_atoms.sni.iter().map(|m| host.is_some() && m.matches(&h)));
        (DestKey { old, new, bits, malformed: false, connection: true }, h)
    }

    /// Whether every request to this destination class is decided alike.
    fn unchanged(&self, key: &DestKey) -> bool {
        self.settings.is_empty()
            && (key.malformed
                || self.fingerprints[0].get(&key.old).is_some_and(|a| self.fingerprints[1].get(&key.new) == Some(a)))
    }

    /// The atoms of the policies that apply to a destination class.
    fn atoms(&self, key: &DestKey) -> Atoms {
        let old = self.old.applicable_policies(key.old);
        let new = self.new.applicable_policies(key.new);
        Atoms::of(old.chain(new))
    }

    fn cached_atoms(&self, key: &DestKey) -> std::rc::Rc<Atoms> {
        let pair = (key.old, key.new, key.connection);
        if let Some(a) = self.atoms_cache.borrow().get(&pair) {
            return a.clone();
        }
        let atoms = std::rc::Rc::new(self.atoms(key));
        self.atoms_cache.borrow_mut().insert(pair, atoms.clone());
        atoms
    }

    /// The class of `probe`.
    pub fn class_of(&self, probe: &Probe) -> ClassKey {
        let (dest, host) = if probe.connection {
            self.connection_key(probe.sni.as_deref(), probe.port)
        } else {
            self.dest_key(&probe.authority, probe.port)
        };
        if self.unchanged(&dest) {
            return ClassKey { dest, fields: Vec::new() };
        }
        let atoms = self.cached_atoms(&dest);
        let view = View::new(probe, &self.presentation);
        let paths = probe.path.as_deref().map(|p| {
            (
                p,
                normalize::normalize_path(p, self.old.path_normalization()),
                normalize::normalize_path(p, self.new.path_normalization()),
            )
        });
        let fields = self
            .fields(&atoms, dest.connection)
            .into_iter()
            .map(|field| {
                let value = match field {
                    Field::Identity => Value::Identity(probe.principal.as_deref()),
                    Field::Method => Value::Method(&probe.method),
                    Field::Path => Value::Path(paths.as_ref().map(|(r, a, b)| (*r, a.as_ref(), b.as_ref()))),
                    Field::SourceIp => Value::SourceIp(probe.source_ip),
                    Field::Sni => Value::Sni(probe.sni.as_deref(), &host),
                    Field::Header(i) => {
                        let name = atoms.headers.get(i).map(|(n, _)| n.as_str()).unwrap_or_default();
                        Value::Header(warden_engine::Attributes::header(&view, name))
                    }
                };
                atoms::bits(&atoms, field, value)
            })
            .collect();
        ClassKey { dest, fields }
    }

    /// Decides `probe` under both policies (a connection as the network
    /// filter does).
    pub fn decide(&self, probe: &Probe) -> (Verdict, Verdict) {
        let view = View::new(probe, &self.presentation);
        if probe.connection {
            return (Verdict::of(&self.old.decide_connection(&view)), Verdict::of(&self.new.decide_connection(&view)));
        }
        (Verdict::of(&self.old.decide(&view)), Verdict::of(&self.new.decide(&view)))
    }

    /// The fields a destination's requests vary in: a connection has only
    /// the caller (its server name and port are its destination).
    fn fields(&self, atoms: &Atoms, connection: bool) -> Vec<Field> {
        if connection {
            vec![Field::Identity, Field::SourceIp]
        } else {
            atoms.fields(self.sni_matters)
        }
    }

    /// Every destination class, one representative each.
    fn destinations(&self) -> Vec<Dest> {
        let mut pieces = candidates::Pieces::default();
        let mut ports: Vec<u16> = vec![80, 443];
        for policy in self.policies() {
            for (host, _) in policy.registry().hosts() {
                match host.strip_prefix('*') {
                    Some(suffix) => pieces.suffix(suffix),
                    None => pieces.exact(&host),
                }
            }
            for s in policy.registry().services() {
                ports.extend(s.ports.iter().flatten());
            }
            for &(from, to) in policy.gateway_ports() {
                ports.extend([from, to]);
            }
        }
        for h in &self.dest_atoms.hosts {
            pieces.add(h.host_part());
            ports.extend(h.port_part());
        }
        for m in &self.dest_atoms.sni {
            pieces.add(m);
        }
        ports.extend(&self.dest_atoms.ports);
        ports.sort_unstable();
        ports.dedup();
        if let Some(fresh) = (10000..=u16::MAX).find(|p| !ports.contains(p)) {
            ports.push(fresh);
        }
        let listener_matters =
            !self.dest_atoms.ports.is_empty() || self.policies().iter().any(|p| !p.gateway_ports().is_empty());

        let mut seen: FxHashMap<DestKey, usize> = FxHashMap::default();
        let mut out: Vec<Dest> = Vec::new();
        let mut visit = |authority: String, port: u16| {
            let (key, host) = self.dest_key(&authority, port);
            match seen.get(&key) {
                Some(&i) => {
                    if let Some(d) = out.get_mut(i).filter(|d: &&mut Dest| d.aliases.len() < MAX_ALIASES) {
                        d.aliases.push((authority, port));
                    }
                }
                None => {
                    seen.insert(key.clone(), out.len());
                    out.push(Dest { authority, host, port, key, aliases: Vec::new() });
                }
            }
        };
        // The plainest authority first: it represents its class.
        let hosts = candidates::hosts(&pieces);
        for host in &hosts {
            for &listener in &ports {
                visit(host.clone(), listener);
                visit(format!("{host}:{listener}"), listener);
            }
            for &listener in &ports {
                for &p in &ports {
                    if p != listener && listener_matters {
                        visit(format!("{host}:{p}"), listener);
                    }
                }
                visit(format!("{host}."), listener);
            }
        }
        // Connections: each server name, and none, on each listener port.
        for sni in hosts.iter().map(Some).chain([None]) {
            for &listener in &ports {
                let (key, host) = self.connection_key(sni.map(String::as_str), listener);
                match seen.get(&key) {
                    Some(&i) => {
                        if let Some(d) = out.get_mut(i).filter(|d: &&mut Dest| d.aliases.len() < MAX_ALIASES) {
                            d.aliases.push((sni.cloned().unwrap_or_default(), listener));
                        }
                    }
                    None => {
                        seen.insert(key.clone(), out.len());
                        out.push(Dest {
                            authority: sni.cloned().unwrap_or_default(),
                            host,
                            port: listener,
                            key,
                            aliases: Vec::new(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Runs the diff; with `keep`, also every class enumerated with its
    /// verdicts (for tests).
    pub fn run(&self, keep: bool) -> (Report, Classes) {
        let dests = self.destinations();
        let mut stats = Stats { destinations: dests.len(), ..Stats::default() };
        let mut groups: FxHashMap<Pair, Group> = FxHashMap::default();
        let mut order: Vec<Pair> = Vec::new();
        for (i, d) in dests.iter().enumerate() {
            if self.unchanged(&d.key) {
                continue;
            }
            stats.explored += 1;
            let pair = (d.key.old, d.key.new, d.key.connection);
            let group = groups.entry(pair).or_insert_with(|| {
                order.push(pair);
                self.group(&d.key)
            });
            group.dests.push(i);
        }

        let mut classes = Classes::default();
        let mut changed: Vec<merge::Cell> = Vec::new();
        for pair in &order {
            let Some(group) = groups.get(pair) else { continue };
            for &d in &group.dests {
                let Some(dest) = dests.get(d) else { continue };
                self.explore(group, dest, &mut stats, &mut |idx, _probe, old, new| {
                    if keep {
                        let fields = group
                            .fields
                            .iter()
                            .zip(&group.candidates)
                            .zip(idx)
                            .map(|((&f, list), i)| {
                                i.and_then(|i| list.get(i as usize))
                                    .map(|c| self.candidate_bits(&group.atoms, f, c, &dest.host))
                            })
                            .collect();
                        classes.push((BoxKey { dest: dest.key.clone(), fields }, old.clone(), new.clone()));
                    }
                    if old != new {
                        changed.push(merge::Cell { pair: *pair, dest: d, idx: idx.to_vec(), old, new });
                    }
                });
            }
        }
        stats.changed = changed.len();
        let changes = merge::changes(changed, &|pair| groups.get(pair), &dests, self);
        let dlp = dlp::diff(self.old, self.new);
        (Report { settings: self.settings.clone(), changes, dlp, stats }, classes)
    }

    fn group(&self, key: &DestKey) -> Group {
        let atoms = self.atoms(key);
        let fields = self.fields(&atoms, key.connection);
        let candidates = fields.iter().map(|&f| self.candidates(&atoms, f)).collect();
        Group {
            normalization: (self.old.path_normalization(), self.new.path_normalization()),
            atoms,
            fields,
            candidates,
            dests: Vec::new(),
        }
    }

    /// A field's candidates, one per class of its atoms.
    fn candidates(&self, atoms: &Atoms, field: Field) -> Vec<Candidate> {
        let all: Vec<Candidate> = match field {
            Field::Identity => candidates::principals(&atoms.names).into_iter().map(Candidate::Principal).collect(),
            Field::Method => candidates::methods(&atoms.methods).into_iter().map(Candidate::Method).collect(),
            Field::Path => {
                let differ = self.old.path_normalization() != self.new.path_normalization();
                candidates::paths(&atoms.paths, differ).into_iter().map(Candidate::Path).collect()
            }
            Field::SourceIp => candidates::addresses(&atoms.ips).into_iter().map(Candidate::Ip).collect(),
            Field::Sni => candidates::server_names(&atoms.snis).into_iter().map(Candidate::Sni).collect(),
            Field::Header(i) => {
                let patterns: &[StringMatch] = atoms.headers.get(i).map(|(_, p)| p.as_slice()).unwrap_or_default();
                candidates::header_values(patterns).into_iter().map(Candidate::Header).collect()
            }
        };
        // One candidate per class. A server name's class depends on the
        // host too: "the host" is its own candidate, and the others are
        // told apart by the patterns alone.
        let mut seen: FxHashSet<Vec<bool>> = FxHashSet::default();
        all.into_iter()
            .filter(|c| {
                matches!(c, Candidate::Sni(Some(None))) || seen.insert(self.candidate_bits(atoms, field, c, ""))
            })
            .collect()
    }

    /// A candidate's class: the truth value of every atom of its field
    /// (for a server name, with the destination's `host`).
    fn candidate_bits(&self, atoms: &Atoms, field: Field, c: &Candidate, host: &str) -> Vec<bool> {
        let paths = match c {
            Candidate::Path(p) => Some((
                p.as_str(),
                normalize::normalize_path(p, self.old.path_normalization()).into_owned(),
                normalize::normalize_path(p, self.new.path_normalization()).into_owned(),
            )),
            _ => None,
        };
        let value = match c {
            Candidate::Principal(p) => Value::Identity(p.as_deref()),
            Candidate::Method(m) => Value::Method(m),
            Candidate::Path(_) => Value::Path(paths.as_ref().map(|(r, a, b)| (*r, a.as_str(), b.as_str()))),
            Candidate::Ip(ip) => Value::SourceIp(*ip),
            Candidate::Sni(None) => Value::Sni(None, host),
            Candidate::Sni(Some(None)) => Value::Sni(Some(host), host),
            Candidate::Sni(Some(Some(s))) => Value::Sni(Some(s), host),
            Candidate::Header(v) => Value::Header(v.as_deref()),
        };
        atoms::bits(atoms, field, value)
    }

    /// The probe for a destination and one candidate index per field.
    fn probe(&self, group: &Group, dest: &Dest, idx: &[u32]) -> Probe {
        let connection = dest.key.connection;
        let mut probe = Probe {
            connection,
            method: "GET".to_owned(),
            authority: dest.authority.clone(),
            path: Some("/".to_owned()),
            port: dest.port,
            principal: None,
            headers: Vec::new(),
            source_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            sni: None,
        };
        for ((field, list), &i) in group.fields.iter().zip(&group.candidates).zip(idx) {
            let Some(c) = list.get(i as usize) else { continue };
            match c {
                Candidate::Principal(p) => probe.principal = p.clone(),
                Candidate::Method(m) => probe.method = m.clone(),
                Candidate::Path(p) => probe.path = Some(p.clone()),
                Candidate::Ip(ip) => probe.source_ip = *ip,
                Candidate::Sni(s) => probe.sni = s.as_ref().map(|s| s.clone().unwrap_or_else(|| dest.host.clone())),
                Candidate::Header(v) => {
                    if let (Field::Header(h), Some(v)) = (field, v) {
                        if let Some((name, _)) = group.atoms.headers.get(*h) {
                            if !self.presentation.is_identity_header(name) {
                                probe.headers.push((name.clone(), v.clone()));
                            }
                        }
                    }
                }
            }
        }
        if probe.method == "CONNECT" {
            probe.path = None;
        }
        if connection {
            probe.method = String::new();
            probe.authority = String::new();
            probe.path = None;
            probe.sni = (!dest.authority.is_empty()).then(|| dest.authority.clone());
        }
        probe
    }

    /// Explores one destination: fields are fixed one at a time, each
    /// over its candidates, until every rule of both policies' applicable
    /// policies is decided whatever the fields left open (a rule is
    /// evaluated in three-valued logic: a check on an open field is
    /// unknown). Then one probe decides the whole box under each policy:
    /// the engine reads a request only through those rules, the
    /// destination, the method (CONNECT) and the server name (when it must
    /// match the host), which are always fixed first.
    fn explore(&self, group: &Group, dest: &Dest, stats: &mut Stats, found: &mut Found<'_>) {
        if group.candidates.iter().any(Vec::is_empty) {
            return;
        }
        let ctx = [self.context(self.old, dest, true), self.context(self.new, dest, false)];
        let rules: [Rules<'_>; 2] = [
            self.old
                .applicable_policies(dest.key.old)
                .flat_map(|p| p.rules.iter().map(move |r| (r, p.action)))
                .collect(),
            self.new
                .applicable_policies(dest.key.new)
                .flat_map(|p| p.rules.iter().map(move |r| (r, p.action)))
                .collect(),
        ];
        let mut assigned: Vec<Option<u32>> = vec![None; group.fields.len()];
        self.branch(group, dest, &ctx, &rules, &mut assigned, stats, found);
    }

    #[allow(clippy::too_many_arguments)]
    fn branch(
        &self,
        group: &Group,
        dest: &Dest,
        ctx: &[Context; 2],
        rules: &[Rules<'_>; 2],
        assigned: &mut Vec<Option<u32>>,
        stats: &mut Stats,
        found: &mut Found<'_>,
    ) {
        let next = self.next_field(group, dest, ctx, rules, assigned);
        let Some(k) = next else {
            let idx: Vec<u32> = assigned.iter().map(|a| a.unwrap_or(0)).collect();
            let probe = self.probe(group, dest, &idx);
            let (old, new) = self.decide(&probe);
            stats.probes += 1;
            found(assigned, &probe, old, new);
            return;
        };
        let n = group.candidates.get(k).map_or(0, Vec::len) as u32;
        for i in 0..n {
            if let Some(slot) = assigned.get_mut(k) {
                *slot = Some(i);
            }
            self.branch(group, dest, ctx, rules, assigned, stats, found);
        }
        if let Some(slot) = assigned.get_mut(k) {
            *slot = None;
        }
    }

    /// The next field to fix: the method, then the server name where it
    /// must match the host, the path where ambiguous ones are refused, then
    /// the first open field an undecided check reads; `None` when every
    /// rule is decided.
    fn next_field(
        &self,
        group: &Group,
        dest: &Dest,
        ctx: &[Context; 2],
        rules: &[Rules<'_>; 2],
        assigned: &[Option<u32>],
    ) -> Option<usize> {
        let open = |f: Field| group.fields.iter().position(|&g| g == f).filter(|&k| assigned.get(k) == Some(&None));
        if let Some(k) = open(Field::Method) {
            return Some(k);
        }
        if self.sni_matters {
            if let Some(k) = open(Field::Sni) {
                return Some(k);
            }
        }
        let look_first = Look { group, dest, assigned };
        if self.ambiguity_matters && !look_first.is_connect() {
            if let Some(k) = open(Field::Path) {
                return Some(k);
            }
        }
        let look = Look { group, dest, assigned };
        for (side, list) in rules.iter().enumerate() {
            let Some(c) = ctx.get(side) else { continue };
            for &(rule, action) in list {
                if rule_status(rule, action, c, &look).is_none() {
                    // The first open field one of its undecided checks reads.
                    for check in rule.checks() {
                        if check_status(check, c, &look).is_some() {
                            continue;
                        }
                        if let Some(f) = look.field_of(&check.test) {
                            if let Some(k) = open(f) {
                                return Some(k);
                            }
                        }
                    }
                }
            }
        }
        None
    }

    fn context(&self, policy: &Policy, dest: &Dest, old: bool) -> Context {
        let listener = service_port(policy, dest.port);
        if dest.key.connection {
            // A connection shows no headers: only a certificate or filter
            // state can carry its caller's identity.
            let identity = policy.identity_sources().iter().any(|s| {
                matches!(
                    s,
                    warden_engine::document::IdentitySource::PeerCertificate(_)
                        | warden_engine::document::IdentitySource::FilterState(_)
                )
            });
            return Context { authority: dest.host.clone(), port: listener, listener, old, connection: true, identity };
        }
        let lower = dest.authority.to_ascii_lowercase();
        let authority_port = normalize::split_authority(&lower).ok().and_then(|(_, p)| p);
        Context {
            authority: lower,
            port: authority_port.unwrap_or(listener),
            listener,
            old,
            connection: false,
            identity: true,
        }
    }
}

/// One policy's reading of a destination.
struct Context {
    /// `:authority`, lowercased.
    authority: String,
    /// Warden's port: the authority's, else the listener's through
    /// `gatewayPorts`.
    port: u16,
    /// The listener port through `gatewayPorts` (Istio's reading).
    listener: u16,
    /// The old policy (its paths are normalized its way).
    old: bool,
    /// A connection: Istio's TCP semantics.
    connection: bool,
    /// Whether the policy sees the probe's principal (on a connection,
    /// only through a certificate or filter state).
    identity: bool,
}

/// The rules of the policies that apply, with their policy's action.
type Rules<'p> = Vec<(&'p Rule, Action)>;

/// The fields fixed so far.
struct Look<'a> {
    group: &'a Group,
    dest: &'a Dest,
    assigned: &'a [Option<u32>],
}

impl Look<'_> {
    fn field_of(&self, test: &Test) -> Option<Field> {
        Some(match test {
            Test::Identity(_) => Field::Identity,
            Test::SourceIp(_) | Test::RemoteIp(_) => Field::SourceIp,
            Test::Method(_) => Field::Method,
            Test::Path(_) => Field::Path,
            Test::Sni(_) => Field::Sni,
            Test::Header(name, _) => {
                let name = name.to_ascii_lowercase();
                Field::Header(self.group.atoms.headers.iter().position(|(n, _)| *n == name)?)
            }
            Test::Host(..) | Test::Port(..) => return None,
        })
    }

    fn value(&self, field: Field) -> Option<&Candidate> {
        let k = self.group.fields.iter().position(|&f| f == field)?;
        let i = (*self.assigned.get(k)?)?;
        self.group.candidates.get(k)?.get(i as usize)
    }

    fn is_connect(&self) -> bool {
        matches!(self.value(Field::Method), Some(Candidate::Method(m)) if m == "CONNECT")
    }
}

fn and3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for v in values {
        match v {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

/// Kleene's OR: not AND of the negations.
fn or3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    and3(values.map(|v| v.map(|b| !b))).map(|b| !b)
}

/// Whether the rule of a policy with `action` matches, if the fields fixed
/// so far decide it. On a connection, Istio's TCP semantics, as the
/// engine's `Rule::matches`: an ALLOW rule with an HTTP-only check never
/// matches; in other rules those checks are ignored (`check_status`).
fn rule_status(rule: &Rule, action: Action, c: &Context, look: &Look<'_>) -> Option<bool> {
    if c.connection && action == Action::Allow && rule.checks().any(|ch| http_only(&ch.test)) {
        return Some(false);
    }
    let alternatives = |alts: &Option<Vec<Vec<Check>>>| match alts {
        None => Some(true),
        Some(alts) => or3(alts.iter().map(|checks| and3(checks.iter().map(|ch| check_status(ch, c, look))))),
    };
    and3(
        [alternatives(&rule.from), alternatives(&rule.to), and3(rule.when.iter().map(|ch| check_status(ch, c, look)))]
            .into_iter(),
    )
}

/// A check on the caller: its identity (where the policy can see it) and
/// its address.
fn check_status_caller(check: &Check, c: &Context, look: &Look<'_>) -> Option<bool> {
    let hit = match &check.test {
        Test::Identity(_) if !c.identity => false,
        Test::Identity(patterns) => match look.value(Field::Identity)? {
            Candidate::Principal(p) => p.as_deref().is_some_and(|p| patterns.iter().any(|m| m.matches(p))),
            _ => return None,
        },
        Test::SourceIp(blocks) | Test::RemoteIp(blocks) => match look.value(Field::SourceIp)? {
            Candidate::Ip(ip) => blocks.iter().any(|b| b.contains(*ip)),
            _ => return None,
        },
        _ => return None,
    };
    Some(hit != check.negate)
}

fn combine(reading: Reading, istio: bool, warden: bool) -> bool {
    match reading {
        Reading::Both => istio && warden,
        Reading::Either => istio || warden,
    }
}

/// Whether a test reads what only HTTP has (Istio's generators refuse
/// them on a TCP filter chain).
fn http_only(test: &Test) -> bool {
    matches!(test, Test::Host(..) | Test::Method(_) | Test::Path(_) | Test::Header(..))
}

/// A check's value, if the fields fixed so far decide it (as the engine's
/// `Check::holds` computes it on a request, and on a connection, where an
/// HTTP-only check is dropped).
fn check_status(check: &Check, c: &Context, look: &Look<'_>) -> Option<bool> {
    if c.connection {
        return match &check.test {
            t if http_only(t) => Some(true),
            Test::Port(ports, reading) => {
                Some(combine(*reading, ports.contains(&c.listener), ports.contains(&c.port)) != check.negate)
            }
            Test::Sni(patterns) => {
                let sni = (!c.authority.is_empty()).then_some(c.authority.as_str());
                Some(sni.is_some_and(|s| patterns.iter().any(|m| m.matches(s))) != check.negate)
            }
            _ => check_status_caller(check, c, look),
        };
    }
    let hit = match &check.test {
        Test::Host(patterns, reading) => combine(
            *reading,
            patterns.iter().any(|m| m.matches_raw(&c.authority)),
            patterns.iter().any(|m| m.matches_normalized(&look.dest.host, c.port)),
        ),
        Test::Port(ports, reading) => combine(*reading, ports.contains(&c.listener), ports.contains(&c.port)),
        Test::Identity(_) | Test::SourceIp(_) | Test::RemoteIp(_) => return check_status_caller(check, c, look),
        Test::Method(patterns) => match look.value(Field::Method)? {
            Candidate::Method(m) => patterns.iter().any(|p| p.matches(m)),
            _ => return None,
        },
        Test::Path(patterns) => {
            let raw = if look.is_connect() {
                String::new()
            } else {
                match look.value(Field::Path)? {
                    Candidate::Path(p) => p.clone(),
                    _ => return None,
                }
            };
            let (path, _, _) = normalize::split_path(&raw);
            let mode = if c.old { look.group.normalization.0 } else { look.group.normalization.1 };
            let normalized = normalize::normalize_path(path, mode);
            patterns.iter().any(|m| m.matches(&normalized))
        }
        Test::Header(name, patterns) => {
            let field = look.field_of(&check.test)?;
            let _ = name;
            match look.value(field)? {
                Candidate::Header(v) => v.as_deref().is_some_and(|v| patterns.iter().any(|m| m.matches_header(v))),
                _ => return None,
            }
        }
        Test::Sni(patterns) => match look.value(Field::Sni)? {
            Candidate::Sni(None) => false,
            Candidate::Sni(Some(None)) => patterns.iter().any(|m| m.matches(&look.dest.host)),
            Candidate::Sni(Some(Some(s))) => patterns.iter().any(|m| m.matches(s)),
            _ => return None,
        },
    };
    Some(hit != check.negate)
}

/// The service of a destination under the old and the new policy, and
/// whether it is a connection's.
pub(crate) type Pair = (Option<ServiceId>, Option<ServiceId>, bool);

/// What [`Diff::explore`] calls for each box: its candidate index per
/// field (`None`: any), the probe that decided it and the two verdicts.
type Found<'a> = dyn FnMut(&[Option<u32>], &Probe, Verdict, Verdict) + 'a;

/// The service port a listener port stands for (`gatewayPorts`).
fn service_port(policy: &Policy, listener: u16) -> u16 {
    policy.gateway_ports().iter().find(|(from, _)| *from == listener).map_or(listener, |&(_, to)| to)
}

/// Per service (and for no service): the service and the policies that
/// apply to it, serialized, so that equal bytes mean equal decisions.
fn fingerprints(policy: &Policy) -> FxHashMap<Option<ServiceId>, Vec<u8>> {
    let mut out = FxHashMap::default();
    let ids = (0..policy.registry().services().len() as ServiceId).map(Some).chain([None]);
    for id in ids {
        let mut bytes = match id.and_then(|i| policy.registry().service(i)) {
            Some(s) => postcard::to_allocvec(s).unwrap_or_default(),
            None => b"none".to_vec(),
        };
        for p in policy.applicable_policies(id) {
            bytes.extend(postcard::to_allocvec(p).unwrap_or_default());
        }
        out.insert(id, bytes);
    }
    out
}
