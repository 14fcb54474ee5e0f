//! Scanning a request body as it streams.
//!
//! A [`BodyScan`] is made by [`crate::Policy::decide`] when DLP policies
//! scan the body of an allowed request. The filter feeds it each chunk as
//! it arrives and does what the returned [`BodyStep`] says:
//!
//! - while a BLOCK or REDACT policy applies, the body is *held* (Envoy
//!   buffers it) until it has been scanned to the end, so a blocked body
//!   never reaches the upstream; holding stops at `maxBodyBytes`, where
//!   `onOversize` decides;
//! - with only AUDIT policies, chunks go on at once and the scan keeps a
//!   bounded window, whatever the body's size.
//!
//! The scan owns no borrowed data, so a filter can keep it between
//! callbacks beside its `Rc<Policy>`; every call takes the policy's DLP
//! set ([`crate::Policy::dlp`]).
//!
//! Decoding on the way to the scanner: `content-encoding: gzip`/`deflate`
//! is inflated (up to `maxBodyBytes` of output; other encodings, corrupt or
//! larger data are *unscannable* and handled like oversize bodies), then
//! JSON escapes or form encoding are decoded per `content-type` (see
//! [`View::for_body`]; a content-type that lists several types, as Envoy
//! joins repeated lines, and text in UTF-16, UTF-32 or another charset
//! whose ASCII is not ASCII bytes are unscannable too). Offsets in
//! findings are offsets in that decoded text.

use super::decode::{self, Encoding, Inflater, TextDecoder, View};
use super::finding::{mask, Finding, Location, Place};
use super::policy::{BodyStart, DlpSet};
use super::scanner::{StreamHit, StreamState};
use crate::document::{DlpAction, OnOversize};
use crate::record::{Outcome, Reason, RecordBase};
use crate::request::HeaderLines;

/// Most leading blank bytes kept before choosing how to decode a body.
const MAX_LEAD: usize = 4096;

/// What the filter does after feeding a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStep {
    /// Keep the body held (Envoy: `StopIterationAndBuffer`).
    Hold,
    /// Let the body go on: what is held, and what comes.
    Forward,
    /// Refuse the request with `dlpBlocked` (nothing held was forwarded).
    Block,
    /// The whole body is held and has REDACT findings: read it, pass it to
    /// [`BodyScan::redact`], and forward the result in its place.
    Redact,
}

/// The state of one request body's scan.
pub struct BodyScan {
    group: u32,
    /// Whether the trailers are scanned (a policy scans headers).
    scan_trailers: bool,
    /// Whether the body is held until scanned.
    hold: bool,
    /// `maxBodyBytes`: the most bytes held, and the most decoded.
    limit: u64,
    on_oversize: OnOversize,
    content_type: Option<String>,
    encoding: Encoding,
    view: Option<View>,
    inflater: Option<Inflater>,
    text: Option<TextDecoder>,
    /// Leading blank bytes, before the view is chosen.
    lead: Vec<u8>,
    /// What the scan keeps between chunks (bounded; see [`StreamState`]).
    stream: StreamState,
    /// Raw body bytes received.
    received: u64,
    /// In body order, as one pass over the whole body finds them: the
    /// stream reports a finding when it is final, and one that ends
    /// further on can be final a chunk later than one it encloses.
    findings: Vec<Finding>,
    /// Each finding's (start, end, detector), the order of `findings`.
    order: Vec<(u64, u64, usize)>,
    /// BLOCK findings of detectors that give way, not acted on yet: a
    /// finding of another detector that overlaps one (and takes it back)
    /// can be final later in the stream, so the body is blocked for one
    /// only when none can come any more ([`BodyScan::settle`]). Those
    /// taken back are no longer in `order`.
    pending: Vec<(u64, u64, usize)>,
    /// The BLOCK finding the body was blocked for.
    blocked_by: Option<(u64, u64, usize)>,
    /// Findings in the trailers, after the body's.
    trailer_findings: Vec<Finding>,
    /// The body could not be scanned whole (too big, unknown encoding,
    /// corrupt compression) and went on per `onOversize: ALLOW`.
    unscanned: bool,
    /// Scanning stopped (unscannable, or blocked).
    stopped: bool,
    blocked: Option<Reason>,
    /// The header-time decision, to write the final record.
    pub(crate) base: RecordBase,
}

impl std::fmt::Debug for BodyScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyScan")
            .field("hold", &self.hold)
            .field("limit", &self.limit)
            .field("received", &self.received)
            .field("findings", &self.findings)
            .field("blocked", &self.blocked)
            .finish_non_exhaustive()
    }
}

impl BodyScan {
    pub(crate) fn new(start: BodyStart) -> BodyScan {
        let BodyStart { group, scan_body, scan_trailers, hold, limit, on_oversize, content_type, encoding } = start;
        BodyScan {
            group,
            scan_trailers,
            hold,
            limit,
            on_oversize,
            content_type,
            encoding,
            view: None,
            inflater: None,
            text: None,
            lead: Vec::new(),
            stream: StreamState::new(),
            received: 0,
            findings: Vec::new(),
            order: Vec::new(),
            pending: Vec::new(),
            blocked_by: None,
            trailer_findings: Vec::new(),
            unscanned: false,
            // Nothing of a body no policy scans is looked at.
            stopped: !scan_body,
            blocked: None,
            base: RecordBase::default(),
        }
    }

    /// Whether the filter must hold the request (headers and body) until
    /// the scan says otherwise.
    pub fn holds(&self) -> bool {
        self.hold
    }

    /// Whether the filter must pass the next chunk's bytes to
    /// [`BodyScan::feed`]: false when no policy scans the body, or the scan
    /// has stopped (the body is blocked, or goes on unscanned); an empty
    /// chunk then carries `end_of_stream`.
    pub fn reads_body(&self) -> bool {
        !self.stopped
    }

    /// Findings so far in the body.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether the body went on without being scanned whole.
    pub fn unscanned(&self) -> bool {
        self.unscanned
    }

    /// Scans the next chunk of the body (`end_of_stream` on the last).
    pub fn feed(&mut self, dlp: &DlpSet, chunk: &[u8], end_of_stream: bool) -> BodyStep {
        if self.blocked.is_some() {
            return BodyStep::Block;
        }
        self.received = self.received.saturating_add(chunk.len() as u64);
        if self.hold && self.received > self.limit {
            self.unscannable();
        }
        if !self.stopped {
            let mut text = Vec::new();
            let ok = self.decode(chunk, end_of_stream, &mut text);
            if !ok {
                self.unscannable();
            } else {
                self.scan(dlp, &text, end_of_stream);
            }
        }
        if end_of_stream && self.blocked.is_none() {
            // A BLOCK finding in the trailers, acted on once the body has
            // been scanned to its end (a body finding comes first).
            if let Some(f) = self.trailer_findings.iter().find(|f| f.action == DlpAction::Block) {
                self.blocked = Some(Reason::DlpFinding);
                self.base.policy = Some(f.policy.clone());
                self.base.rule = None;
                self.stopped = true;
            }
        }
        if self.blocked.is_some() {
            return BodyStep::Block;
        }
        if !self.hold {
            return BodyStep::Forward;
        }
        if !end_of_stream {
            return BodyStep::Hold;
        }
        if self.findings.iter().any(|f| f.action == DlpAction::Redact) {
            BodyStep::Redact
        } else {
            BodyStep::Forward
        }
    }

    /// Masks every REDACT finding in `raw`, the whole held body, in place:
    /// each matched span becomes `*` of the same length in the bytes as
    /// sent (escapes included), keeping a card's last 4 characters. False
    /// when the body is compressed (a compressed body cannot be masked in
    /// place), or when `raw` is not the body that was scanned (its length
    /// differs: the host did not give the whole body back): the request
    /// must then be refused, and the scan records it.
    pub fn redact(&mut self, dlp: &DlpSet, raw: &mut [u8]) -> bool {
        if self.encoding != Encoding::Identity || raw.len() as u64 != self.received {
            self.blocked = Some(Reason::DlpUnredactable);
            return false;
        }
        let Some(group) = dlp.group(self.group) else { return false };
        let view = self.view.unwrap_or(View::Raw);
        let mut positions = Vec::new();
        let mut spans = Vec::new();
        for (f, &(start, end, detector)) in self.findings.iter().zip(&self.order) {
            if f.action != DlpAction::Redact {
                continue;
            }
            let Some(d) = group.scanner.detectors().get(detector) else { continue };
            let keep_from = end.saturating_sub(d.keep_last as u64).max(start);
            positions.extend([start, keep_from]);
            spans.push((start, keep_from));
        }
        positions.sort_unstable();
        positions.dedup();
        let raw_at = decode::raw_offsets(view, raw, &positions);
        let offset = |p: u64| positions.binary_search(&p).ok().and_then(|i| raw_at.get(i).copied());
        for (start, end) in spans {
            if let (Some(from), Some(to)) = (offset(start), offset(end)) {
                mask(raw, from, to);
            }
        }
        true
    }

    /// Scans the request's trailers (headers sent after the body) with
    /// the policies that scan headers, before the last [`BodyScan::feed`]
    /// (`end_of_stream`), which acts on a BLOCK finding in them. Returns
    /// the trailers to replace, name and masked value (REDACT, and BLOCK
    /// too, as for headers). Nothing once the body is blocked.
    ///
    /// `for_each` visits every trailer, in order.
    pub fn trailers(&mut self, dlp: &DlpSet, for_each: &mut HeaderLines<'_>) -> Vec<(String, String)> {
        if !self.scan_trailers || self.blocked.is_some() {
            return Vec::new();
        }
        let Some(group) = dlp.group(self.group) else { return Vec::new() };
        let (findings, edits) = dlp.scan_header_lines(group, true, for_each);
        self.trailer_findings.extend(findings);
        edits
    }

    /// The decision record once the body is done (or blocked): the header
    /// decision with the body's and the trailers' findings added.
    pub fn record(&self) -> String {
        let (outcome, reason) = match self.blocked {
            Some(reason) => (Outcome::DlpBlocked, reason),
            None => (Outcome::Allow, self.base.reason),
        };
        self.base.record(outcome, reason, [&self.findings, &self.trailer_findings], self.unscanned)
    }

    /// Whether [`BodyScan::record`] says more than the header decision's
    /// record did: a finding in the body or the trailers, a refusal, or a
    /// body that went on unscanned. When not, the filter need not write
    /// the record again.
    pub fn record_changed(&self) -> bool {
        self.blocked.is_some() || self.unscanned || !self.findings.is_empty() || !self.trailer_findings.is_empty()
    }

    /// The outcome once the body is done.
    pub fn outcome(&self) -> Outcome {
        if self.blocked.is_some() {
            Outcome::DlpBlocked
        } else {
            Outcome::Allow
        }
    }

    /// Whether any finding (headers, body or trailers) was redacted.
    pub fn redacted(&self) -> bool {
        self.blocked.is_none() && self.any_finding(DlpAction::Redact)
    }

    /// Whether anything was recorded for audit: an AUDIT policy matched at
    /// the headers, any finding (headers, body, trailers) was only
    /// recorded, or the body went on unscanned.
    pub fn audited(&self) -> bool {
        self.unscanned || !self.base.audit.is_empty() || self.any_finding(DlpAction::Audit)
    }

    /// Whether any finding of the request (headers, body, trailers) did
    /// `action`.
    fn any_finding(&self, action: DlpAction) -> bool {
        self.base.findings.iter().chain(&self.findings).chain(&self.trailer_findings).any(|f| f.action == action)
    }

    /// Bytes of the body could not be read from the host. A held body is
    /// refused (`dlp-unscannable`) whatever `onOversize` says: a failed
    /// read must not let a body go on unscanned. One not held goes on,
    /// recorded as unscanned.
    pub fn unreadable(&mut self) {
        if self.hold && self.blocked.is_none() {
            self.stopped = true;
            self.stream = StreamState::new();
            self.blocked = Some(Reason::DlpUnscannable);
        } else {
            self.unscannable();
        }
    }

    /// The body cannot be scanned whole.
    fn unscannable(&mut self) {
        if self.stopped {
            return;
        }
        // A BLOCK finding already made stands: what could have taken it
        // back will not be seen.
        if self.hold {
            self.settle(u64::MAX);
        }
        self.stopped = true;
        self.stream = StreamState::new();
        if self.blocked.is_some() {
            return;
        }
        if self.hold && self.on_oversize == OnOversize::Block {
            self.blocked = Some(Reason::DlpUnscannable);
        } else {
            // Goes on; whatever was found is only recorded.
            self.unscanned = true;
            self.hold = false;
            for f in &mut self.findings {
                f.action = DlpAction::Audit;
            }
        }
    }

    /// Inflates and text-decodes a chunk; false when the body cannot be
    /// decoded.
    fn decode(&mut self, chunk: &[u8], end: bool, text: &mut Vec<u8>) -> bool {
        let mut inflated = Vec::new();
        let plain: &[u8] = match self.encoding {
            Encoding::Identity => chunk,
            Encoding::Unsupported => return false,
            Encoding::Gzip | Encoding::Deflate => {
                if self.inflater.is_none() {
                    self.inflater = Inflater::new(self.encoding, self.limit);
                }
                let Some(inflater) = self.inflater.as_mut() else { return false };
                if inflater.feed(chunk, &mut inflated).is_err() || (end && inflater.finish(&mut inflated).is_err()) {
                    return false;
                }
                &inflated
            }
        };
        if self.text.is_none() {
            // The view is chosen on the first non-blank bytes (a JSON body
            // may open with whitespace split from its `{`).
            self.lead.extend_from_slice(plain);
            if decode::lead_undecided(&self.lead) && !end && self.lead.len() < MAX_LEAD {
                return true;
            }
            // Unscannable when the upstream's reading cannot be known (a
            // content-type listing several types) or the text's ASCII is
            // not ASCII bytes (a charset, UTF-16 or UTF-32): see `for_body`.
            let Some(view) = View::for_body(self.content_type.as_deref(), &self.lead) else { return false };
            self.view = Some(view);
            let mut decoder = TextDecoder::new(view);
            decoder.feed(&std::mem::take(&mut self.lead), end, text);
            self.text = Some(decoder);
            return true;
        }
        if let Some(decoder) = self.text.as_mut() {
            decoder.feed(plain, end, text);
        }
        true
    }

    /// Scans decoded text; the stream state carries what a match across
    /// chunks needs.
    ///
    /// A finding of a detector that yields gives way to an overlapping
    /// finding of one that does not, as in one pass over the whole body,
    /// whichever chunk each was final in: the stream can report an e-mail
    /// address a chunk before the `pwd=` assignment around it (the
    /// assignment ends further on), so the new findings are weighed with
    /// those already made, and an earlier one that gives way to a new one
    /// is taken back.
    fn scan(&mut self, dlp: &DlpSet, text: &[u8], end: bool) {
        let Some(group) = dlp.group(self.group) else { return };
        let hits = self.stream.feed(&group.scanner, text, end);
        let settled = if end { u64::MAX } else { self.stream.seen().saturating_sub(2 * group.scanner.window() as u64) };
        self.weigh(dlp, &hits);
        self.settle(settled);
    }

    /// Weighs a chunk's findings with those already made and keeps those
    /// that stand ([`BodyScan::scan`]).
    fn weigh(&mut self, dlp: &DlpSet, hits: &[StreamHit]) {
        let Some(group) = dlp.group(self.group) else { return };
        let Some(from) = hits.iter().map(|h| h.start).min() else { return };
        // (detector, start, end, index among the findings already made).
        let mut weighed: Vec<(usize, u64, u64, Option<usize>)> = self
            .order
            .iter()
            .enumerate()
            .filter(|(_, &(_, stop, _))| stop > from)
            .map(|(k, &(start, stop, detector))| (detector, start, stop, Some(k)))
            .chain(hits.iter().map(|h| (h.detector, h.start, h.end, None)))
            .collect();
        let before: Vec<usize> = weighed.iter().filter_map(|w| w.3).collect();
        group.scanner.drop_yielding(&mut weighed, |w| (w.0, w.1, w.2));
        let kept: Vec<usize> = weighed.iter().filter_map(|w| w.3).collect();
        // Both in increasing order (`retain` keeps the order).
        for &k in before.iter().rev().filter(|k| kept.binary_search(k).is_err()) {
            self.order.remove(k);
            self.findings.remove(k);
        }
        for (detector, start, stop, _) in weighed.into_iter().filter(|w| w.3.is_none()) {
            self.found(dlp, detector, start, stop);
        }
    }

    /// Blocks for the first pending finding (see [`BodyScan::pending`])
    /// still kept that ends before `settled`: every finding that overlaps
    /// it has been reported by then (a finding is reported at the latest
    /// once the stream is its longest match past its start, and twice the
    /// longest reach past its end). Those taken back are passed over.
    fn settle(&mut self, settled: u64) {
        let order = &self.order;
        let first =
            self.pending.iter().filter(|key| key.1 < settled).filter_map(|key| order.binary_search(key).ok()).min();
        if let Some(at) = first {
            self.block_for(at);
        }
    }

    /// Blocks the body for the BLOCK finding at `at` in `findings`. Of
    /// those acted on, the record names the policy of the first in the
    /// body.
    fn block_for(&mut self, at: usize) {
        let (Some(&key), Some(finding)) = (self.order.get(at), self.findings.get(at)) else { return };
        if self.blocked_by.is_some_and(|first| first <= key) {
            return;
        }
        self.blocked_by = Some(key);
        self.blocked = Some(Reason::DlpFinding);
        self.base.policy = Some(finding.policy.clone());
        self.base.rule = None;
        self.stopped = true;
    }

    fn found(&mut self, dlp: &DlpSet, detector: usize, start: u64, stop: u64) {
        let Some(group) = dlp.group(self.group) else { return };
        let Some(mut finding) = dlp.finding(group, detector, Place::Body, Location::Body(start)) else { return };
        if !self.hold {
            // Not held: nothing can be blocked or masked any more.
            finding.action = DlpAction::Audit;
        }
        let key = (start, stop, detector);
        let block = finding.action == DlpAction::Block;
        let at = self.order.partition_point(|k| *k <= key);
        self.order.insert(at, key);
        self.findings.insert(at, finding);
        if block && group.scanner.gives_way(detector) {
            self.pending.push(key);
        } else if block {
            self.block_for(at);
        }
    }
}
