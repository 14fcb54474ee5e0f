//! The single-pass DLP scanner: every enabled detector in one pass over the
//! data, streaming over body chunks.
//!
//! Detectors are found by their anchors, never by running each pattern
//! over the whole input:
//!
//! - one Aho-Corasick automaton holds every literal anchor of every enabled
//!   detector ("AKIA", "ghp_", "-----BEGIN", "@", ...); a hit names the
//!   detector it belongs to;
//! - one scan for numeric runs (digits, with the single spaces and dashes
//!   card numbers and SSNs are written with) serves every numeric detector;
//!
//! and only the window around a candidate is handed to that detector's
//! regex and validator. Clean text costs one automaton pass plus one byte
//! loop, whatever the number of detectors.
//!
//! Streaming: [`Stream`] keeps the last `2 × window` bytes of what it has
//! seen, so a secret split across two chunks is found when the second
//! arrives; memory is bounded by that window, not by the body.

use super::detectors::{Anchor, Detector};
use aho_corasick::{AhoCorasick, MatchKind};
use regex::bytes::Regex;
use std::ops::Range;

/// A detector ready to scan.
pub struct Compiled {
    /// The detector's id (`credit_card`, or a custom pattern's name).
    pub id: String,
    regex: Regex,
    validator: Option<fn(&[u8]) -> bool>,
    /// Characters kept visible when redacting (card numbers: 4).
    pub keep_last: usize,
    /// Numeric detectors: the digit counts a candidate run must have.
    digits: Option<(usize, usize)>,
    /// How far a match may reach from its anchor: the pattern's longest
    /// match, or [`DEFAULT_WINDOW`] for an unbounded custom pattern.
    reach: usize,
}

/// A finding: which detector, where (byte offsets in the scanned data, or
/// absolute offsets in the stream for [`Stream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the detector in the scanner.
    pub detector: usize,
    /// Byte range.
    pub span: Range<usize>,
}

/// The compiled set of enabled detectors.
pub struct Scanner {
    detectors: Vec<Compiled>,
    /// Literal anchors; pattern `i` belongs to `literal_owner[i]`.
    literals: Option<AhoCorasick>,
    literal_owner: Vec<usize>,
    numeric: Vec<usize>,
    /// The longest reach of any detector: the stream's hold-back.
    window: usize,
}

/// How far an unbounded custom pattern's match may reach from its anchor.
/// Built-in detectors are bounded (their longest match is known), so this
/// limits a secret's length, not a body's.
pub const DEFAULT_WINDOW: usize = 512;

/// Bytes of context given to a numeric detector around its run.
const CONTEXT: usize = 16;
/// A numeric run longer than a detector's maximum is still tried with this
/// slack (its pattern's boundaries then decide).
const DIGIT_SLACK: usize = 8;

impl Scanner {
    /// Compiles catalogue detectors plus custom ones (name, regex, literal
    /// anchors).
    pub fn new(catalogue: &[&Detector], custom: Vec<(String, Regex, Vec<String>)>) -> Result<Scanner, String> {
        let mut detectors = Vec::new();
        let mut literals: Vec<String> = Vec::new();
        let mut literal_owner = Vec::new();
        let mut numeric = Vec::new();
        for d in catalogue {
            let regex = Regex::new(d.pattern).map_err(|e| format!("detector {}: {e}", d.id))?;
            let index = detectors.len();
            let digits = match &d.anchor {
                Anchor::Literals(words) => {
                    for w in words.iter() {
                        literals.push((*w).to_owned());
                        literal_owner.push(index);
                    }
                    None
                }
                Anchor::Digits { min, max } => {
                    numeric.push(index);
                    Some((*min, *max))
                }
            };
            let reach = d.max_len().unwrap_or(DEFAULT_WINDOW);
            detectors.push(Compiled {
                id: d.id.to_owned(),
                regex,
                validator: d.validator,
                keep_last: d.keep_last,
                digits,
                reach,
            });
        }
        for (name, regex, anchors) in custom {
            let index = detectors.len();
            for a in anchors {
                literals.push(a);
                literal_owner.push(index);
            }
            detectors.push(Compiled {
                id: name,
                regex,
                validator: None,
                keep_last: 0,
                digits: None,
                reach: DEFAULT_WINDOW,
            });
        }
        let literals = if literals.is_empty() {
            None
        } else {
            let ac = AhoCorasick::builder().match_kind(MatchKind::Standard).build(&literals);
            Some(ac.map_err(|e| format!("anchor automaton: {e}"))?)
        };
        let window = detectors.iter().map(|d| d.reach).max().unwrap_or(DEFAULT_WINDOW);
        Ok(Scanner { detectors, literals, literal_owner, numeric, window })
    }

    /// The compiled detectors, by index.
    pub fn detectors(&self) -> &[Compiled] {
        &self.detectors
    }

    /// Every finding in `data`, sorted by start, one per (detector, span).
    pub fn scan(&self, data: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(ac) = &self.literals {
            for m in ac.find_overlapping_iter(data) {
                let Some(&owner) = self.literal_owner.get(m.pattern().as_usize()) else { continue };
                let reach = self.detectors.get(owner).map_or(DEFAULT_WINDOW, |d| d.reach);
                let from = m.start().saturating_sub(reach);
                let to = (m.end() + reach).min(data.len());
                self.verify(owner, data, from..to, &(m.start()..m.end()), &mut hits);
            }
        }
        if !self.numeric.is_empty() {
            let digit_ranges: Vec<(usize, (usize, usize))> =
                self.numeric.iter().filter_map(|&i| Some((i, self.detectors.get(i)?.digits?))).collect();
            let min_digits = digit_ranges.iter().map(|(_, (lo, _))| *lo).min().unwrap_or(1);
            for run in numeric_runs(data, min_digits) {
                for &(i, (lo, hi)) in &digit_ranges {
                    if run.digits < lo || run.digits > hi + DIGIT_SLACK {
                        continue;
                    }
                    let from = run.span.start.saturating_sub(CONTEXT);
                    let to = (run.span.end + CONTEXT).min(data.len());
                    self.verify(i, data, from..to, &run.span, &mut hits);
                }
            }
        }
        hits.sort_by_key(|h| (h.span.start, h.span.end, h.detector));
        hits.dedup();
        hits
    }

    /// Runs detector `i`'s regex over `window` of `data`, keeping matches
    /// that overlap `anchor` and pass the validator.
    fn verify(&self, i: usize, data: &[u8], window: Range<usize>, anchor: &Range<usize>, hits: &mut Vec<Hit>) {
        let Some(d) = self.detectors.get(i) else { return };
        let Some(slice) = data.get(window.clone()) else { return };
        for m in d.regex.find_iter(slice) {
            let span = window.start + m.start()..window.start + m.end();
            let overlaps = span.start < anchor.end && anchor.start < span.end;
            if overlaps && d.validator.is_none_or(|v| v(m.as_bytes())) {
                hits.push(Hit { detector: i, span });
            }
        }
    }
}

/// A run of digits, possibly grouped by single spaces or dashes.
struct NumericRun {
    span: Range<usize>,
    digits: usize,
}

/// Every numeric run with at least `min_digits` digits, in one pass.
fn numeric_runs(data: &[u8], min_digits: usize) -> Vec<NumericRun> {
    let mut runs = Vec::new();
    let mut i = 0;
    while let Some(offset) = data.get(i..).and_then(|rest| rest.iter().position(u8::is_ascii_digit)) {
        let start = i + offset;
        let (mut at, mut end, mut digits) = (start, start, 0);
        while let Some(&b) = data.get(at) {
            if b.is_ascii_digit() {
                digits += 1;
                at += 1;
                end = at;
            } else if (b == b' ' || b == b'-') && data.get(at + 1).is_some_and(u8::is_ascii_digit) {
                at += 1;
            } else {
                break;
            }
        }
        if digits >= min_digits.max(1) {
            runs.push(NumericRun { span: start..end, digits });
        }
        i = end.max(start + 1);
    }
    runs
}

/// Streaming state for one body: feed chunks, get findings with absolute
/// offsets. Keeps at most twice the scanner's window of earlier data.
pub struct Stream<'s> {
    scanner: &'s Scanner,
    /// The tail of what has been seen, and its absolute start offset.
    carry: Vec<u8>,
    carry_start: usize,
    /// Findings ending at or before this offset have been reported.
    reported_to: usize,
}

impl<'s> Stream<'s> {
    /// A new stream.
    pub fn new(scanner: &'s Scanner) -> Self {
        Stream { scanner, carry: Vec::new(), carry_start: 0, reported_to: 0 }
    }

    /// Scans the next chunk. A finding that touches the last window of what
    /// has arrived could still grow, so it is held back until more data
    /// comes or `end_of_stream`.
    pub fn feed(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<Hit> {
        let mut buffer = std::mem::take(&mut self.carry);
        buffer.extend_from_slice(chunk);
        let base = self.carry_start;
        let total = base + buffer.len();
        let window = self.scanner.window;
        let limit = if end_of_stream { total } else { total.saturating_sub(window) };
        let mut out = Vec::new();
        for hit in self.scanner.scan(&buffer) {
            let span = hit.span.start + base..hit.span.end + base;
            if span.end > self.reported_to && span.end <= limit {
                out.push(Hit { detector: hit.detector, span });
            }
        }
        self.reported_to = self.reported_to.max(limit);
        // Keep the held-back window and room for a match that ends in it.
        let keep = (2 * window).min(buffer.len());
        let drop = buffer.len() - keep;
        self.carry = buffer.split_off(drop);
        self.carry_start = base + drop;
        out
    }

    /// Bytes kept between chunks (bounded by twice the window).
    pub fn retained(&self) -> usize {
        self.carry.len()
    }
}
