//! DLP policies, compiled: which detectors look at which requests, where,
//! and what a finding does.
//!
//! A request is scanned by one [`Scanner`] holding every detector of every
//! DLP policy that applies to its service, so one pass serves them all.
//! Services with the same applicable policies share a scanner (a *group*).
//! A finding is kept when a policy that enables its detector also scans
//! the place it was found; its action is the strongest such policy's
//! (BLOCK over REDACT over AUDIT).
//!
//! The compiled form travels in bundles as its source (detector ids and
//! pattern texts) and is rebuilt when a bundle is decoded: regexes and
//! automata are not serializable, and rebuilding re-validates them.

use super::custom::compile_custom;
use super::decode::{self, Encoding};
use super::detectors::{detector, Detector, CATALOGUE};
use super::error::BuildError;
use super::finding::{mask, Finding, Location, Place};
use super::scanner::{self, Hit, Scanner};
use crate::document::{DlpAction, OnOversize};
use crate::registry::ServiceId;
use crate::request::{Attributes, HeaderLines};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Default `maxBodyBytes`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
/// The largest `maxBodyBytes` accepted: a held body lives in Envoy's
/// buffer and, for REDACT, once in the filter's memory.
pub const MAX_BODY_BYTES_LIMIT: u64 = 64 << 20;
/// One compiled `dlp[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlpPolicy {
    /// `dlp[].name`.
    pub name: String,
    /// Built-in detector ids it enables.
    pub detectors: Vec<String>,
    /// Custom detectors: name and regex.
    pub patterns: Vec<(String, String)>,
    /// Whether it scans header names and values.
    pub headers: bool,
    /// Whether it scans the request target (path and query).
    pub query: bool,
    /// Whether it scans the body.
    pub body: bool,
    /// What a finding does.
    pub action: DlpAction,
    /// The most body bytes held (BLOCK, REDACT) or decoded.
    pub max_body_bytes: u64,
    /// A body that cannot be scanned whole: BLOCK or ALLOW.
    pub on_oversize: OnOversize,
}

impl DlpPolicy {
    fn scans(&self, place: Place) -> bool {
        match place {
            Place::Headers => self.headers,
            Place::Target => self.query,
            Place::Body => self.body,
        }
    }
}

/// The DLP policies of a [`crate::Policy`], with one scanner per group of
/// services that share applicable policies.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "DlpSpec", into = "DlpSpec")]
pub struct DlpSet {
    spec: DlpSpec,
    compiled: Arc<Groups>,
}

/// The serializable source of a [`DlpSet`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlpSpec {
    /// In document order.
    pub policies: Vec<DlpPolicy>,
    /// Indices of the policies without `services`.
    pub unscoped: Vec<u32>,
    /// Per service: indices of the policies scoped to it.
    pub by_service: Vec<Vec<u32>>,
}

#[derive(Default)]
struct Groups {
    groups: Vec<Group>,
    /// The group of requests with no service (ALLOW_ANY).
    unscoped: Option<u32>,
    /// Per service.
    by_service: Vec<Option<u32>>,
}

/// The scanner for one set of applicable policies.
pub(crate) struct Group {
    pub(crate) scanner: Scanner,
    /// Per scanner detector: the policies (indices into the spec) enabling it.
    owners: Vec<Vec<u32>>,
    /// Whether any applicable policy scans the headers, the target.
    headers: bool,
    query: bool,
    /// How bodies are scanned, when any applicable policy scans them.
    body: Option<BodyPlan>,
}

/// What the applicable policies ask of a body, decided at configuration.
#[derive(Debug, Clone, Copy)]
struct BodyPlan {
    /// A BLOCK or REDACT policy scans bodies: they are held.
    hold: bool,
    /// The most held (the smallest holder's `maxBodyBytes`) or, with AUDIT
    /// only, decoded (the largest).
    limit: u64,
    /// BLOCK when any holder says so.
    on_oversize: OnOversize,
}

impl BodyPlan {
    fn of(policies: &[&DlpPolicy]) -> Option<BodyPlan> {
        let body: Vec<&DlpPolicy> = policies.iter().copied().filter(|p| p.body).collect();
        if body.is_empty() {
            return None;
        }
        let holders: Vec<&DlpPolicy> = body.iter().copied().filter(|p| p.action != DlpAction::Audit).collect();
        let limit = holders
            .iter()
            .map(|p| p.max_body_bytes)
            .min()
            .or_else(|| body.iter().map(|p| p.max_body_bytes).max())
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        let on_oversize = if holders.iter().any(|p| p.on_oversize == OnOversize::Block) {
            OnOversize::Block
        } else {
            OnOversize::Allow
        };
        Some(BodyPlan { hold: !holders.is_empty(), limit, on_oversize })
    }
}

impl std::fmt::Debug for DlpSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlpSet").field("spec", &self.spec).field("groups", &self.compiled.groups.len()).finish()
    }
}

impl From<DlpSet> for DlpSpec {
    fn from(set: DlpSet) -> DlpSpec {
        set.spec
    }
}

impl TryFrom<DlpSpec> for DlpSet {
    type Error = BuildError;

    fn try_from(spec: DlpSpec) -> Result<DlpSet, BuildError> {
        DlpSet::build(spec)
    }
}

impl Default for DlpSet {
    fn default() -> Self {
        DlpSet { spec: DlpSpec::default(), compiled: Arc::new(Groups::default()) }
    }
}

/// Policy ids, sorted and distinct: sorted as `u64`s, the sort the scan
/// has, so that the filter carries no sort of its own for them.
fn sorted_ids<'a>(ids: impl Iterator<Item = &'a u32>) -> Vec<u32> {
    let mut wide: Vec<u64> = ids.map(|&i| u64::from(i)).collect();
    wide.sort_unstable();
    wide.dedup();
    wide.into_iter().filter_map(|i| u32::try_from(i).ok()).collect()
}

impl DlpSet {
    /// Compiles the scanners. Patterns were validated by the compiler with
    /// field paths; a failure here means a damaged bundle.
    pub fn build(spec: DlpSpec) -> Result<DlpSet, BuildError> {
        let n = spec.policies.len() as u32;
        let in_range = |l: &[u32]| l.windows(2).all(|w| w.first() < w.get(1)) && l.iter().all(|&i| i < n);
        if !in_range(&spec.unscoped) || !spec.by_service.iter().all(|l| in_range(l)) {
            return Err(BuildError::PolicyIndex);
        }
        let mut groups = Groups::default();
        let mut seen: Vec<(Vec<u32>, u32)> = Vec::new();
        let mut group_for = |set: Vec<u32>, groups: &mut Groups| -> Result<Option<u32>, BuildError> {
            if set.is_empty() {
                return Ok(None);
            }
            if let Some((_, id)) = seen.iter().find(|(s, _)| *s == set) {
                return Ok(Some(*id));
            }
            let id = groups.groups.len() as u32;
            groups.groups.push(Group::build(&spec, &set)?);
            seen.push((set, id));
            Ok(Some(id))
        };
        groups.unscoped = group_for(spec.unscoped.clone(), &mut groups)?;
        for scoped in &spec.by_service {
            let set = sorted_ids(spec.unscoped.iter().chain(scoped));
            let id = group_for(set, &mut groups)?;
            groups.by_service.push(id);
        }
        Ok(DlpSet { spec, compiled: Arc::new(groups) })
    }

    /// The compiled policies, in document order.
    pub fn policies(&self) -> &[DlpPolicy] {
        &self.spec.policies
    }

    /// The DLP policies that apply to a request for `service` (`None`: a
    /// host in no service), in document order.
    pub fn applicable(&self, service: Option<u32>) -> Vec<&DlpPolicy> {
        let scoped =
            service.and_then(|id| self.spec.by_service.get(id as usize)).map(Vec::as_slice).unwrap_or_default();
        sorted_ids(self.spec.unscoped.iter().chain(scoped))
            .iter()
            .filter_map(|&i| self.spec.policies.get(i as usize))
            .collect()
    }

    /// Whether any DLP policy exists.
    pub fn is_empty(&self) -> bool {
        self.spec.policies.is_empty()
    }

    /// How many services the spec was built for (integrity checks).
    pub(crate) fn service_count(&self) -> usize {
        self.spec.by_service.len()
    }

    pub(crate) fn group(&self, id: u32) -> Option<&Group> {
        self.compiled.groups.get(id as usize)
    }

    fn group_id(&self, service: Option<ServiceId>) -> Option<u32> {
        match service {
            Some(s) => self.compiled.by_service.get(s as usize).copied().flatten(),
            None => self.compiled.unscoped,
        }
    }

    /// Scans the headers and the request target of a request for
    /// `service`; `target` is the path as it will be forwarded, query
    /// included. Also prepares the body scan.
    pub(crate) fn scan_request(
        &self,
        service: Option<ServiceId>,
        attrs: &dyn Attributes,
        target: &str,
        body_expected: bool,
    ) -> RequestScan {
        let mut out = RequestScan::default();
        let Some(group_id) = self.group_id(service) else { return out };
        let Some(group) = self.group(group_id) else { return out };
        if group.headers {
            let (findings, edits) = self.scan_header_lines(group, false, &mut |visit| attrs.for_each_header(visit));
            out.findings = findings;
            out.header_edits = edits;
        }

        if group.query {
            let (decoded, map) = decode::decode_query(target.as_bytes());
            let query_at =
                target.find('?').map_or(usize::MAX, |q| map.iter().position(|&r| r > q).unwrap_or(usize::MAX));
            let mut masked: Option<Vec<u8>> = None;
            let mut hits = group.scanner.scan(&decoded);
            group.scanner.drop_yielding(&mut hits, |h| (h.detector, h.span.start as u64, h.span.end as u64));
            for hit in hits {
                let location = if hit.span.start >= query_at { Location::Query } else { Location::Path };
                if let Some(f) = self.finding(group, hit.detector, Place::Target, location) {
                    if f.action != DlpAction::Audit {
                        let keep = self.keep_last(group, &hit);
                        let raw = |i: usize| map.get(i).copied().unwrap_or(target.len());
                        let bytes = masked.get_or_insert_with(|| target.as_bytes().to_vec());
                        mask(bytes, raw(hit.span.start), raw(hit.span.end.saturating_sub(keep)));
                    }
                    out.findings.push(f);
                }
            }
            out.target_edit = masked.map(|m| String::from_utf8_lossy(&m).into_owned());
        }

        // A body that follows may end with trailers, scanned where the
        // headers are: the body scan carries the request to its end.
        let plan = group.body.filter(|_| body_expected);
        if plan.is_some() || (group.headers && body_expected) {
            out.body = Some(BodyStart {
                group: group_id,
                scan_body: plan.is_some(),
                scan_trailers: group.headers,
                hold: plan.is_some_and(|p| p.hold),
                limit: plan.map_or(DEFAULT_MAX_BODY_BYTES, |p| p.limit),
                on_oversize: plan.map_or(OnOversize::Allow, |p| p.on_oversize),
                // Every line: a second `gzip` or form type cannot hide
                // behind the first. Not read for a body no policy scans.
                content_type: plan.and_then(|_| attrs.joined_header("content-type")),
                encoding: match plan {
                    Some(_) => Encoding::from_header(attrs.joined_header("content-encoding").as_deref()),
                    None => Encoding::Identity,
                },
            });
        }
        out
    }

    /// Scans header lines (the request's headers, or its trailers):
    /// each as one line `name: value`, so that a value is seen with the
    /// name it is assigned to (`x-api-key: ...` for `generic_credential`).
    /// A finding within the name is the name's; any other is the value's,
    /// and masking covers its part in the value. Returns the findings and
    /// the lines to replace (name and masked value): REDACT, and BLOCK
    /// too, as Envoy's access log reads the headers of a refused request.
    /// A name that came on several lines is replaced whole: every line of
    /// it, masked or not, in the order the lines came, so that replacing
    /// the name at its first entry (which leaves one line) and adding the
    /// rest keeps its clean lines.
    pub(crate) fn scan_header_lines(
        &self,
        group: &Group,
        trailers: bool,
        for_each: &mut HeaderLines<'_>,
    ) -> (Vec<Finding>, Vec<(String, String)>) {
        let mut findings = Vec::new();
        // (line number, name, masked value) of each line to mask.
        let mut masked_lines: Vec<(usize, String, String)> = Vec::new();
        let mut number = 0;
        for_each(&mut |name, value| {
            number += 1;
            // Pseudo-headers are the query's; a trace-context header that
            // is exactly its ids holds nothing but random digits and hex
            // (see `trace`).
            if name.starts_with(':') || super::trace::is_trace_id(name, value) {
                return;
            }
            let line = [name.as_bytes(), b": ", value.as_bytes()].concat();
            let value_at = name.len() + 2;
            let mut hits = group.scanner.scan(&line);
            group.scanner.drop_yielding(&mut hits, |h| (h.detector, h.span.start as u64, h.span.end as u64));
            let mut spans = Vec::new();
            for hit in hits {
                let in_value = hit.span.end > name.len();
                let location = match (trailers, in_value) {
                    (false, false) => Location::HeaderName,
                    (false, true) => Location::Header(name.to_owned()),
                    (true, false) => Location::TrailerName,
                    (true, true) => Location::Trailer(name.to_owned()),
                };
                if let Some(f) = self.finding(group, hit.detector, Place::Headers, location) {
                    if in_value && f.action != DlpAction::Audit {
                        let keep = self.keep_last(group, &hit);
                        let start = hit.span.start.saturating_sub(value_at);
                        let end = hit.span.end.saturating_sub(value_at).saturating_sub(keep);
                        spans.push(start..end);
                    }
                    findings.push(f);
                }
            }
            if !spans.is_empty() {
                let mut masked = value.as_bytes().to_vec();
                for span in spans {
                    mask(&mut masked, span.start, span.end);
                }
                masked_lines.push((number, name.to_owned(), String::from_utf8_lossy(&masked).into_owned()));
            }
        });
        if masked_lines.is_empty() {
            return (findings, Vec::new());
        }
        // Every line of the names masked, masked or as they came, in order
        // (a second pass, only for a request with something to mask).
        let mut edits: Vec<(String, String)> = Vec::new();
        let mut number = 0;
        for_each(&mut |name, value| {
            number += 1;
            if let Some((_, _, masked)) = masked_lines.iter().find(|(at, _, _)| *at == number) {
                edits.push((name.to_owned(), masked.clone()));
            } else if masked_lines.iter().any(|(_, n, _)| n == name) {
                edits.push((name.to_owned(), value.to_owned()));
            }
        });
        (findings, edits)
    }

    /// The finding for a hit in `place`, if a policy enabling its detector
    /// scans there.
    pub(crate) fn finding(&self, group: &Group, detector: usize, place: Place, location: Location) -> Option<Finding> {
        let owners = group.owners.get(detector)?;
        let policy = owners
            .iter()
            .filter_map(|&i| self.spec.policies.get(i as usize))
            .filter(|p| p.scans(place))
            .max_by_key(|p| p.action)?;
        let detector = group.scanner.detectors().get(detector)?.id.clone();
        Some(Finding { detector, location, action: policy.action, policy: policy.name.clone() })
    }

    pub(crate) fn keep_last(&self, group: &Group, hit: &Hit) -> usize {
        group.scanner.detectors().get(hit.detector).map_or(0, |d| d.keep_last)
    }
}

impl Group {
    fn build(spec: &DlpSpec, set: &[u32]) -> Result<Group, BuildError> {
        let mut builtins: Vec<&'static Detector> = Vec::new();
        let mut owners: Vec<Vec<u32>> = Vec::new();
        // Built-ins in catalogue order, so findings come in a stable order.
        for d in CATALOGUE {
            let enabling: Vec<u32> = set
                .iter()
                .copied()
                .filter(|&i| spec.policies.get(i as usize).is_some_and(|p| p.detectors.iter().any(|id| id == d.id)))
                .collect();
            if !enabling.is_empty() {
                builtins.push(d);
                owners.push(enabling);
            }
        }
        let mut custom = Vec::new();
        for &i in set {
            let Some(p) = spec.policies.get(i as usize) else { continue };
            for (name, regex) in &p.patterns {
                let compiled = compile_custom(name, regex).map_err(|_| BuildError::Pattern)?;
                custom.push((name.clone(), compiled, scanner::custom_anchors(regex)));
                owners.push(vec![i]);
            }
        }
        for id in spec.policies.iter().flat_map(|p| &p.detectors) {
            if detector(id).is_none() {
                return Err(BuildError::UnknownDetector);
            }
        }
        let scanner = Scanner::new(&builtins, custom)?;
        let applicable: Vec<&DlpPolicy> = set.iter().filter_map(|&i| spec.policies.get(i as usize)).collect();
        Ok(Group {
            scanner,
            owners,
            headers: applicable.iter().any(|p| p.headers),
            query: applicable.iter().any(|p| p.query),
            body: BodyPlan::of(&applicable),
        })
    }
}

/// What scanning a request's headers and target found, and the body scan
/// to run if a body follows.
#[derive(Default)]
pub(crate) struct RequestScan {
    pub(crate) findings: Vec<Finding>,
    /// Headers to replace (REDACT, and BLOCK for the access log): name and
    /// masked value.
    pub(crate) header_edits: Vec<(String, String)>,
    /// The request target to forward instead (REDACT).
    pub(crate) target_edit: Option<String>,
    pub(crate) body: Option<BodyStart>,
}

/// How to scan a body that follows: what [`BodyScan`](super::body::BodyScan)
/// starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyStart {
    /// The scanner group of the request's service.
    pub(crate) group: u32,
    /// Whether a policy scans the body (else only its trailers are).
    pub(crate) scan_body: bool,
    /// Whether a policy scans the headers, and so the trailers.
    pub(crate) scan_trailers: bool,
    /// Whether the body is held until scanned (BLOCK, REDACT).
    pub(crate) hold: bool,
    /// The most bytes held or decoded.
    pub(crate) limit: u64,
    /// What a body that cannot be scanned whole does.
    pub(crate) on_oversize: OnOversize,
    /// The request's `content-type`.
    pub(crate) content_type: Option<String>,
    /// The request's `content-encoding`.
    pub(crate) encoding: Encoding,
}
