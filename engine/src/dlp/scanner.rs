//! The single-pass DLP scanner: every enabled detector in one pass over the
//! data, streaming over body chunks.
//!
//! Detectors are found by their anchors, never by running each pattern
//! over the whole input. One loop reads the data sixty-four bytes at a
//! time:
//!
//! - it looks up the thirty-two byte pairs at even offsets, each with the
//!   low three bits of the byte after it, in a table of the pairs of
//!   literal anchors ("AKIA", "ghp_", "-----BEGIN ", "@", ...) and the
//!   bytes the literals have after them: each literal of three bytes or
//!   more marks two overlapping pairs chosen to be rare in text, one of
//!   which always falls at an even offset, and shorter ones mark every
//!   pair they can be part of (but a word byte before one whose matches
//!   never follow a word byte). Keyword anchors are made of pairs common
//!   in text, so a hit is kept only if the three bytes around it are the
//!   literal's three bytes at its pairs (a hashed table), or one byte on
//!   is a two-byte literal ([`Prefilter::confirm`]); the literals of a
//!   kept pair are compared with the data eight bytes at a time;
//! - it finds the block's digits, joiners (space, `-`, `.`), colons and
//!   capitals with a few SIMD compares, sixteen bytes at a time (SSE2,
//!   wasm SIMD128; [`classes`] has the scalar path), or thirty-two on an
//!   x86-64 CPU with AVX2 (the loop of [`avx2`], chosen at run time,
//!   while a block and two bytes are left), and reads a numeric run (digits in groups
//!   separated by single spaces or dashes) only where a built-in shape's
//!   match can be: within eleven bytes or more of digits and single
//!   joiners, after two capital letters (an IBAN's check digits, a
//!   National Insurance number), or around a colon between groups of four
//!   (Aadhaar); [`classes::Lagged`], with bit arithmetic on the masks of
//!   the block and the one before, one 64-bit word a class, sixteen bytes
//!   late. The run is read once (a plain one from the
//!   digit mask), and each numeric detector whose shape allows a match
//!   with that many digits, and in a grouped run with those group
//!   lengths, looks at it (group lengths, the bytes around it); an IBAN
//!   is a run right after two capital letters that form a listed country
//!   code.
//!
//! The loop does not branch on what it finds: it writes every block's
//! pair hits and runs to two queues and counts the blocks that have any,
//! and they are looked at thirty-two at a time ([`Scanner::look`]).
//!
//! Clean text costs that one table loop. A candidate that passes the cheap
//! checks is handed to its detector's regex, over the smallest window a
//! match can occupy: bytes of the pattern's alphabet around the anchor, no
//! farther than the pattern's longest match. Detectors whose matches start
//! with their anchor run an anchored regex at the anchor, and where the
//! match of a numeric shape is known in advance (a plain 16-digit run is a
//! card number or nothing) the validator runs first, so the regex runs only
//! for real findings; a grouped run none of whose windows the validator
//! accepts waits for its search until a later candidate needs where it
//! would leave the cursor ([`Cursor::deferred`]).
//!
//! Findings are exactly those of [`reference_scan`](super::reference_scan)
//! (every pattern over the whole input, leftmost-first): per detector, the
//! candidates are taken in order and the regex search resumes where the
//! previous match ended, so overlapping candidates resolve as they do
//! there. Custom patterns with no literal anchor (see [`custom_anchors`])
//! run their regex over the whole input.
//!
//! Streaming: [`StreamState`] (or [`Stream`]) keeps the last two short
//! windows of what it has seen (the longest match of every detector except
//! the few long ones, a PEM key or a JWT, whose matches start at their
//! anchor), plus, while one of those may still grow, the text from its
//! anchor. A secret split across two chunks is found when the second
//! arrives; memory is bounded by that, not by the body, and each chunk is
//! rescanned with a few hundred bytes before it, not with 25 KB.

use super::detectors::{self, keyed, Anchor, Detector};
use super::error::BuildError;
use super::classes;
use super::validators;
use regex::bytes::Regex;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind, Look};
use std::ops::Range;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod avx2;

/// A detector ready to scan.
pub struct Compiled {
    /// The detector's id (`credit_card`, or a custom pattern's name).
    pub id: String,
    regex: Regex,
    /// The pattern anchored at the candidate's start, for detectors whose
    /// matches start with their anchor.
    anchored: Option<Anchored>,
    validator: Option<fn(&[u8]) -> bool>,
    /// Placeholder-looking matches are passed over
    /// ([`Detector::rejects_placeholders`]).
    placeholders: bool,
    /// Characters kept visible when redacting (card numbers: 4).
    pub keep_last: usize,
    /// How far a match may reach: the pattern's longest match, or
    /// [`DEFAULT_WINDOW`] for an unbounded custom pattern.
    reach: usize,
    /// How far before its anchor a match may start (0: at the anchor).
    back: usize,
    /// `reach` is the pattern's longest match (not [`DEFAULT_WINDOW`]).
    bounded: bool,
    /// Every byte a match can contain.
    alphabet: ByteSet,
    /// Bytes every match contains (checked before running the regex).
    required: Vec<u8>,
    kind: Kind,
    /// Gives way to overlapping findings of other detectors.
    yields: bool,
    /// A necessary condition at an anchor occurrence for any match to
    /// contain it ([`detectors::generic::precheck`]).
    precheck: Option<fn(&[u8], usize) -> bool>,
    /// Anchors that are a vendor keyword of a `keyed!` alternation (the
    /// only place the pattern starts with them): a match starts at one
    /// only with an assignment sign within a few bytes after it
    /// ([`keyed::tail_may_follow`]).
    keywords: Vec<Vec<u8>>,
    /// What the value of the `keyed!` alternations is made of, for the
    /// keyword guard.
    keyed_value: Option<KeyedValue>,
    /// No match starts at an anchor occurrence with a word byte before
    /// it: every match starts with an ASCII `\b` at a word byte (its
    /// anchor, `\bAKIA`), or with `\B` at a byte that is not one
    /// (`\B\+[1-9]`, a phone number's `+`).
    word_start: bool,
}

/// The anchored variants run on the PikeVM alone: the bounded backtracker
/// clears a visited set of its NFA times the haystack before each search,
/// which an anchored search that fails in a few bytes paid in full.
type AnchoredRegex = regex_automata::meta::Regex;

/// `\A(?s-u:.)(?:PAT)`: the pattern anchored one byte after the start,
/// run over the data from one byte before the candidate so that `\b`
/// sees that byte. (A candidate at offset 0 uses the pattern itself.)
/// Compiled on first use, once per process: most detectors never see a
/// candidate, and compiling them all would double a scanner's build time.
struct Anchored {
    pattern: &'static str,
    /// Shared by every scanner of the catalogue detector.
    cell: &'static OnceLock<Option<AnchoredRegex>>,
    /// The match's end read from the bytes instead, where the detector
    /// has such a reader ([`detectors::generic::anchored_end`]).
    end: Option<detectors::generic::EndAt>,
}

impl Anchored {
    fn regex(&self) -> Option<&AnchoredRegex> {
        self.cell.get_or_init(|| {
            regex_automata::meta::Builder::new()
                .configure(regex_automata::meta::Config::new().backtrack(false).utf8_empty(false))
                .syntax(regex_automata::util::syntax::Config::new().utf8(false))
                .build(&format!(r"\A(?s-u:.)(?:{})", self.pattern))
                .ok()
        })
        .as_ref()
    }
}

/// How a detector's candidates are found.
enum Kind {
    /// Around its literal anchors.
    Literal,
    /// From numeric runs.
    Numeric(Shape),
    /// A custom pattern without anchors: its regex over the whole input.
    Whole,
}

/// What a numeric detector needs from a run before its regex is worth
/// running. The built-in shapes are necessary conditions derived from the
/// catalogue's patterns (a card number is 13–19 digits or grouped 4-4-4-4,
/// 4-6-4 or 4-6-5, ...); they apply only to the catalogue's own pattern for
/// that id, and the scanner tests check them against the regexes.
enum Shape {
    Card,
    Ssn,
    ResidentId,
    Mobile,
    Aadhaar,
    Nino,
    /// [`Anchor::CodeAndDigits`]: the codes, as a 26 × 26 table.
    Code(Box<[bool; 676]>),
    /// Any other numeric detector: at least `min` digits.
    Digits {
        min: usize,
    },
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
    prefilter: Prefilter,
    /// Detectors with [`Kind::Numeric`] (at most 64).
    numeric: Vec<usize>,
    /// By digit count (63: 63 or more), bit `k` set when `numeric[k]`'s
    /// shape allows a match in a plain run (`plain`) or a grouped one
    /// (`grouped`) with that many digits.
    plain: [u64; 64],
    grouped: [u64; 64],
    /// By group length (31: 31 or more), bit `k` set when `numeric[k]`'s
    /// shape allows a match in a grouped run with a group that long
    /// ([`Shape::grouped_with`]): a grouped run goes to the shapes of its
    /// group lengths.
    by_group: [u64; 32],
    /// Bits of `numeric` that are codes (looked at only after capitals).
    codes: u64,
    /// The bit of `numeric` with the card shape and that detector's index
    /// (the first, if the scanner has it twice).
    card: Option<(u64, usize)>,
    /// Bits of `numeric` whose plain runs of 3 or 4 digits are only the
    /// first group of a number written with dots or colons
    /// (`123.45.6789`), looked at only when one follows.
    separated: u64,
    /// Bits of `numeric` with the mobile shape, whose plain runs of 13 and
    /// 15 digits start with the country code ([`country_code_first`]).
    mobile: u64,
    /// Detectors with [`Kind::Whole`].
    whole: Vec<usize>,
    /// The longest reach of any detector.
    window: usize,
    /// Per detector: a long one (see [`LONG_REACH`]), whose stream
    /// findings are held back by their start, not by the window.
    long: Vec<bool>,
    /// The longest reach of the other detectors: the stream's hold-back.
    short_window: usize,
    /// Per detector: whether its findings give way to an overlapping
    /// finding of a detector that does not (see [`Scanner::drop_yielding`]).
    yields: Vec<bool>,
    /// Find digits without SIMD ([`Scanner::scalar`]).
    #[cfg(feature = "internals")]
    scalar: bool,
    /// Run the table loop with AVX2 ([`avx2`]): the CPU has it, BMI1 and
    /// BMI2 (and [`Scanner::portable`] did not turn it off).
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
}

/// Detectors reaching farther than this (a PEM key, a JWT) whose matches
/// start at their anchor are held back in a stream only while their match
/// may still grow, so the others set the (much shorter) hold-back.
const LONG_REACH: usize = 1024;

/// How far an unbounded custom pattern's match may reach from its anchor.
/// Built-in detectors are bounded (their longest match is known), so this
/// limits a secret's length, not a body's.
pub const DEFAULT_WINDOW: usize = 512;

/// Most literals [`custom_anchors`] returns; a pattern that needs more
/// (long alternations, case-insensitive words) is scanned whole.
pub const MAX_CUSTOM_ANCHORS: usize = 64;

/// Group lengths a numeric run records (longer runs are always candidates).
const MAX_GROUPS: usize = 8;

impl Scanner {
    /// Compiles catalogue detectors plus custom ones (name, regex, literal
    /// anchors: see [`custom_anchors`]; with none, the regex runs over the
    /// whole input).
    pub fn new(catalogue: &[&Detector], custom: Vec<(String, Regex, Vec<String>)>) -> Result<Scanner, BuildError> {
        let mut detectors = Vec::new();
        let mut literals: Vec<(Vec<u8>, usize)> = Vec::new();
        for d in catalogue {
            let index = detectors.len();
            let (compiled, words) = compile_builtin(d)?;
            for w in words {
                literals.push((w, index));
            }
            detectors.push(compiled);
        }
        for (name, regex, anchors) in custom {
            let index = detectors.len();
            let anchors: Vec<Vec<u8>> = anchors.into_iter().filter(|a| !a.is_empty()).map(String::into_bytes).collect();
            let compiled = compile_custom_detector(name, regex, &anchors);
            if matches!(compiled.kind, Kind::Literal) {
                for a in anchors {
                    literals.push((a, index));
                }
            }
            detectors.push(compiled);
        }
        let numeric: Vec<usize> = (0..detectors.len())
            .filter(|&i| detectors.get(i).is_some_and(|d| matches!(d.kind, Kind::Numeric(_))))
            .collect();
        let whole: Vec<usize> =
            (0..detectors.len()).filter(|&i| detectors.get(i).is_some_and(|d| matches!(d.kind, Kind::Whole))).collect();
        if numeric.len() > 64 {
            return Err(BuildError::TooManyNumeric);
        }
        let shapes: Vec<&Shape> = numeric.iter().filter_map(|&i| detectors.get(i)).filter_map(|d| d.shape()).collect();
        let (mut plain, mut grouped, mut codes, mut separated, mut mobile) = ([0u64; 64], [0u64; 64], 0u64, 0u64, 0u64);
        let mut card = None;
        let mut by_group = [0u64; 32];
        for (k, shape) in shapes.iter().enumerate() {
            for (n, (p, g)) in plain.iter_mut().zip(grouped.iter_mut()).enumerate() {
                *p |= u64::from(shape.plain_digits(n)) << k;
                *g |= u64::from(shape.grouped_digits(n)) << k;
            }
            for (n, g) in by_group.iter_mut().enumerate() {
                *g |= u64::from(shape.grouped_with(n)) << k;
            }
            codes |= u64::from(matches!(shape, Shape::Code(_))) << k;
            if matches!(shape, Shape::Card) && card.is_none() {
                card = numeric.get(k).map(|&i| (1 << k, i));
            }
            separated |= u64::from(matches!(shape, Shape::Ssn | Shape::Aadhaar)) << k;
            mobile |= u64::from(matches!(shape, Shape::Mobile)) << k;
        }
        let generic = shapes.iter().any(|s| matches!(s, Shape::Digits { .. }));
        let runs = match (numeric.is_empty(), generic) {
            (true, _) => None,
            (false, true) => Some(Runs::AnyDigit),
            (false, false) => Some(Runs::Shaped),
        };
        let word_start: Vec<bool> = detectors.iter().map(|d| d.word_start).collect();
        let prefilter = Prefilter::new(literals, runs, |owner| word_start.get(owner).copied().unwrap_or(false));
        let window = detectors.iter().map(|d| d.reach).max().unwrap_or(DEFAULT_WINDOW);
        let long: Vec<bool> =
            detectors.iter().map(|d| matches!(d.kind, Kind::Literal) && d.back == 0 && d.reach > LONG_REACH).collect();
        let short_window = detectors.iter().zip(&long).filter(|(_, l)| !**l).map(|(d, _)| d.reach).max().unwrap_or(0);
        let yields = detectors.iter().map(|d| d.yields).collect();
        Ok(Scanner {
            detectors,
            prefilter,
            numeric,
            plain,
            grouped,
            by_group,
            codes,
            separated,
            mobile,
            card,
            whole,
            window,
            long,
            short_window,
            yields,
            #[cfg(feature = "internals")]
            scalar: false,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("bmi1")
                && std::arch::is_x86_feature_detected!("bmi2"),
        })
    }

    /// The same scanner finding the blocks' marks without SIMD
    /// ([`classes::marks_scalar`]): the reference the SIMD path is held
    /// to, and the baseline it is measured against.
    #[cfg(feature = "internals")]
    pub fn scalar(mut self) -> Scanner {
        self.scalar = true;
        self
    }

    /// The same scanner without the AVX2 loop ([`avx2`]): the portable
    /// loop alone, with the target's sixteen-byte SIMD (SSE2 on x86-64),
    /// as on a CPU without AVX2 (and as the filter runs in wasm).
    #[cfg(feature = "internals")]
    pub fn portable(mut self) -> Scanner {
        #[cfg(target_arch = "x86_64")]
        {
            self.avx2 = false;
        }
        self
    }

    /// Drops the findings of detectors that give way
    /// ([`detectors::generic::yields`]: `generic_credential`, `phone_number`)
    /// where a finding of another detector overlaps them: a GitHub token
    /// assigned to `GITHUB_TOKEN` is a `github_token`, a +86 mobile a
    /// `cn_mobile`. `of` gives a hit's detector and byte range. The scan
    /// itself ([`Scanner::scan`]) reports every detector's findings, as
    /// the reference scan does; policies apply this to what they report.
    pub fn drop_yielding<T>(&self, hits: &mut Vec<T>, of: impl Fn(&T) -> (usize, u64, u64)) {
        let yields = |d: usize| self.yields.get(d).copied().unwrap_or(false);
        if hits.len() < 2 || !hits.iter().any(|h| yields(of(h).0)) {
            return;
        }
        let keep = self.standing(&hits.iter().map(&of).collect::<Vec<_>>());
        let mut k = 0;
        hits.retain(|_| {
            k += 1;
            keep.get(k - 1).copied().unwrap_or(true)
        });
    }

    /// Which of `hits` (detector, start, end) stand ([`Scanner::drop_yielding`]).
    ///
    /// The firm findings by start, with the farthest end up to each: a
    /// finding overlaps one of them when one starting before its end ends
    /// after its start (a body can hold tens of thousands of each: no test
    /// of every pair). Each is a `u64`, start above end, which sorts by
    /// start as the body scan's own `u64`s do (in the filter, another sort
    /// would be more code); offsets past 4 GiB, which no body reaches, are
    /// tested pairwise.
    fn standing(&self, hits: &[(usize, u64, u64)]) -> Vec<bool> {
        const HALF: u64 = u32::MAX as u64;
        let yields = |d: usize| self.yields.get(d).copied().unwrap_or(false);
        let firm = || hits.iter().filter(|h| !yields(h.0));
        if firm().any(|h| h.2 > HALF) {
            return hits.iter().map(|&(d, start, end)| !yields(d) || !firm().any(|f| f.1 < end && start < f.2)).collect();
        }
        let mut packed: Vec<u64> = firm().map(|&(_, start, end)| start << 32 | end).collect();
        packed.sort_unstable();
        let mut far = 0;
        let farthest: Vec<u64> = packed
            .iter()
            .map(|&p| {
                far = (p & HALF).max(far);
                far
            })
            .collect();
        hits.iter()
            .map(|&(d, start, end)| {
                let before = packed.partition_point(|&p| p >> 32 < end);
                !yields(d) || before.checked_sub(1).and_then(|k| farthest.get(k)).is_none_or(|&far| far <= start)
            })
            .collect()
    }

    /// Whether detector `i`'s findings give way to overlapping ones of
    /// detectors that do not ([`Scanner::drop_yielding`]).
    pub fn gives_way(&self, i: usize) -> bool {
        self.yields.get(i).copied().unwrap_or(false)
    }

    /// The compiled detectors, by index.
    pub fn detectors(&self) -> &[Compiled] {
        &self.detectors
    }

    /// The longest match any detector can produce (unbounded custom
    /// patterns count as [`DEFAULT_WINDOW`]): holding back that much of a
    /// stream (and rescanning twice that before each chunk) finds every
    /// match split across chunks. [`StreamState`] does the same holding
    /// back much less.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Every finding in `data`, sorted by start, one per (detector, span).
    pub fn scan(&self, data: &[u8]) -> Vec<Hit> {
        self.scan_with_anchors(data).0
    }

    /// Where the table loop found literal anchors in `data`, as (start,
    /// detector), sorted: the candidates the detectors' checks then look
    /// at (tests of the loop itself; findings are [`Scanner::scan`]'s).
    pub fn anchors(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = self.scan_with_anchors(data).1.into_iter().map(|(start, i, _)| (start, i)).collect();
        found.dedup();
        found
    }

    /// The findings, and the literal anchor occurrences (start, detector,
    /// end) they were looked for at.
    fn scan_with_anchors(&self, data: &[u8]) -> (Vec<Hit>, Vec<(usize, usize, usize)>) {
        let mut state =
            State { hits: Vec::new(), occurrences: Vec::new(), next: std::iter::repeat_with(Cursor::default).take(self.detectors.len()).collect(), run_done: 0 };
        if self.prefilter.active() {
            self.pass(data, &mut state);
        }
        let State { mut hits, mut occurrences, mut next, .. } = state;
        occurrences.sort_unstable();
        occurrences.dedup();
        // In body order: each detector's in the order of their starts,
        // which its cursor needs, and nearly the order the table loop
        // found them in, which the sort is quick on.
        for &(start, i, end) in &occurrences {
            if let Some(next) = next.get_mut(i) {
                self.verify(i, data, start..end, None, next, &mut hits);
            }
        }
        for &i in &self.whole {
            if let Some(d) = self.detectors.get(i) {
                hits.extend(d.regex.find_iter(data).map(|m| Hit { detector: i, span: m.start()..m.end() }));
            }
        }
        (in_order(hits), occurrences)
    }

    /// The table loop: literal occurrences are collected, numeric runs are
    /// checked as they are found.
    fn pass(&self, data: &[u8], state: &mut State) {
        #[cfg(feature = "internals")]
        if self.scalar {
            return self.pass_with(data, 0, classes::Lagged::default(), state, classes::marks_scalar);
        }
        let (from, lagged) = self.pass_wide(data, state);
        let classifier = classes::Classifier::new();
        self.pass_with(data, from, lagged, state, |lo, hi| classifier.marks(lo, hi));
    }

    /// The table loop with AVX2 ([`avx2`]) where the CPU has it, up to
    /// where it stopped, and where the runs' stream was: the portable loop
    /// goes on from there. Else nothing done.
    fn pass_wide(&self, data: &[u8], state: &mut State) -> (usize, classes::Lagged) {
        // (Not for fewer bytes than it reads a turn: a header line's scan
        // would set up its queues for nothing.)
        #[cfg(target_arch = "x86_64")]
        if self.avx2 && data.len() >= avx2::READ {
            // SAFETY: `avx2` is set only where the CPU has AVX2, BMI1 and
            // BMI2 (`Scanner::new`), all the function enables.
            return unsafe { self.pass_avx2(data, state) };
        }
        let _ = (data, state);
        (0, classes::Lagged::default())
    }

    /// [`Scanner::pass`] with `marks` finding what the blocks' bytes are.
    ///
    /// The loop itself only finds which blocks of [`BLOCK`] bytes need a
    /// closer look ([`Scanner::look`]): a literal pair with the byte after
    /// it in the table ([`Prefilter::test_block`]), or digits of a run where a
    /// numeric shape's match can be ([`classes::Lagged`]: the block's
    /// places and the one before's, found [`classes::LAG`] bytes late).
    /// On the clean JSON benchmark input, of 28,424 halves of a block a
    /// pair and its next byte hit in 10,795, and 4,234 have digits to read
    /// runs at. Whether a block hits is as good as a coin toss, and a
    /// branch on it was the scan's costliest: the loop instead writes
    /// every block to the queues and counts the ones that hit, and looks
    /// at them [`QUEUE`] at a time. Sixty-four bytes a turn rather than
    /// sixteen or thirty-two: the turn's fixed costs (the loop, the bounds
    /// of the next block's read) are paid less often.
    ///
    /// From `from` (a multiple of [`BLOCK`]: where [`Scanner::pass_wide`]
    /// stopped, with the runs' stream `lagged`) to the end.
    #[inline(always)]
    fn pass_with(
        &self,
        data: &[u8],
        from: usize,
        mut lagged: classes::Lagged,
        state: &mut State,
        marks: impl Fn(u64, u64) -> classes::Marks,
    ) {
        let pf = &self.prefilter;
        let any_digit = matches!(pf.runs, Some(Runs::AnyDigit));
        // Without numeric detectors nothing but the pairs is looked at
        // (the branch goes the same way for every block).
        let numeric = pf.runs.is_some();
        let mut i = from;
        let mut queues = Queues::default();
        // The last blocks, and the two bytes after, zero past the end.
        let mut last;
        while i < data.len() {
            let block = match data.get(i..).and_then(|s| s.first_chunk::<{ BLOCK + 2 }>()) {
                Some(block) => block,
                None => {
                    // (Twice where the data ends in the two bytes after
                    // a block.)
                    let rest = data.get(i..).unwrap_or_default();
                    last = [0; BLOCK + 2];
                    if let Some(to) = last.get_mut(..rest.len()) {
                        to.copy_from_slice(rest);
                    }
                    &last
                }
            };
            let bits = pf.test_block(block);
            let words: [u64; 8] = core::array::from_fn(|k| {
                block.get(8 * k..).and_then(|s| s.first_chunk::<8>()).map_or(0, |w| u64::from_le_bytes(*w))
            });
            let (runs, digits) = if numeric {
                let m = [marks(words[0], words[1]), marks(words[2], words[3]), marks(words[4], words[5]), marks(words[6], words[7])];
                let class = |f: fn(&classes::Marks) -> u16| {
                    u64::from(f(&m[0])) | u64::from(f(&m[1])) << 16 | u64::from(f(&m[2])) << 32 | u64::from(f(&m[3])) << 48
                };
                lagged.next(class(|m| m.digits), class(|m| m.joiners), class(|m| m.colons), class(|m| m.capitals), any_digit)
            } else {
                (0, [0, 0])
            };
            if queues.push(i, bits, i.wrapping_sub(classes::LAG), runs, digits) {
                self.look(data, &mut queues, state);
            }
            i += BLOCK;
        }
        // The runs of the last [`classes::LAG`] bytes, with nothing after
        // (each starts at a digit: none where those bytes have none, as in
        // most header lines, whose block ends past their end).
        if numeric && lagged.digits() >> (64 - classes::LAG) != 0 {
            let (runs, digits) = lagged.next(0, 0, 0, 0, any_digit);
            queues.push(i, 0, i.wrapping_sub(classes::LAG), runs & ((1 << classes::LAG) - 1), digits);
        }
        self.look(data, &mut queues, state);
    }

    /// The blocks the table loop found something in: reads the numeric
    /// runs of each block's `runs` ([`Runs64`]), each once, and collects
    /// the literal occurrences of the pairs [`Prefilter::confirm`] keeps. (Runs and literal occurrences go to
    /// different detectors: the order between the two does not matter.)
    /// Empties the queues.
    #[inline(always)]
    fn look(&self, data: &[u8], queues: &mut Queues, state: &mut State) {
        let pf = &self.prefilter;
        let pairs = queues.pairs.get(..queues.n_pairs).unwrap_or_default();
        let runs = queues.runs.get(..queues.n_runs).unwrap_or_default();
        (queues.n_pairs, queues.n_runs) = (0, 0);
        for found in runs {
            let i = found.at;
            let mut runs = found.runs & !below(state.run_done, i);
            while runs != 0 {
                let k = runs.trailing_zeros() as usize;
                let at = i.wrapping_add(k);
                let run = Run::plain(data, at, plain_window(found.digits, k)).unwrap_or_else(|| Run::at(data, at));
                // (Past its place whatever the run: a place is a digit,
                // so its run is never empty, but the loop must end.)
                state.run_done = run.end.max(at + 1);
                self.on_run(data, &run, state);
                runs &= !below(state.run_done, i);
            }
        }
        for found in pairs {
            let mut bits = found.bits;
            while bits != 0 {
                let q = found.at + 2 * bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(pair) = pf.confirm(data, q) {
                    pf.occurrences(data, q, pair, &mut state.occurrences);
                }
            }
        }
    }

    /// Hands a numeric run to every numeric detector whose shape allows a
    /// match in it.
    #[inline(always)]
    fn on_run(&self, data: &[u8], run: &Run, state: &mut State) {
        let table = if run.groups == 1 { &self.plain } else { &self.grouped };
        let mut todo = table.get(run.digits.min(63)).copied().unwrap_or(0);
        if run.groups > 1 {
            let (mut lengths, mut allowed) = (run.seen, 0);
            while lengths != 0 {
                allowed |= self.by_group.get(lengths.trailing_zeros() as usize).copied().unwrap_or(0);
                lengths &= lengths - 1;
            }
            todo &= allowed;
        }
        // The card shape's plain runs (13–19 digits: `plain` has its bit
        // for no others) are what [`Shape::candidate`] and
        // [`Scanner::verify`] would make of them, without the two calls:
        // with `\b` around, the pattern's match whole, and only the
        // validator left; else nothing. They are the commonest candidate
        // in numeric JSON (ids, millisecond timestamps), and the calls
        // cost a fifth of the digit-dense scan.
        if let Some((bit, i)) = self.card.filter(|&(bit, _)| run.groups == 1 && todo & bit != 0) {
            if let Some(cursor) = state.next.get_mut(i) {
                self.settle(i, data, run.start, cursor, &mut state.hits);
                if cursor.next <= run.start {
                    todo &= !bit;
                    if run.bounded(data) {
                        cursor.next = run.end;
                        if let Some(d) = self.detectors.get(i) {
                            d.record(i, data, run.range(), &mut state.hits);
                        }
                    }
                }
            }
        }
        // A code's shape is `\bCC` and digits: two capitals right before
        // the run, and no word byte before them (base64 and ids are full
        // of capitals and digits after a letter).
        if todo & self.codes != 0 && (!run.after_capitals(data) || is_word(run.before(data, 3))) {
            todo &= !self.codes;
        }
        if todo & self.separated != 0 && run.groups == 1 && run.digits < 5 && !matches!(run.after(data, 0), Some(b'.' | b':')) {
            todo &= !self.separated;
        }
        // Thirteen digits are most often a millisecond timestamp or an
        // EAN barcode; a mobile number's thirteen start with `86` (its
        // fifteen with `0086`).
        if todo & self.mobile != 0 && run.groups == 1 && !country_code_first(data, run) {
            todo &= !self.mobile;
        }
        while todo != 0 {
            let k = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            let Some(&i) = self.numeric.get(k) else { continue };
            let Some(d) = self.detectors.get(i) else { continue };
            let Some(shape) = d.shape() else { continue };
            let Some((region, hint)) = shape.candidate(data, run) else { continue };
            if let Some(cursor) = state.next.get_mut(i) {
                self.settle(i, data, region.start, cursor, &mut state.hits);
                if shape.refused(data, run, &hint, |m| d.valid(m)) {
                    cursor.deferred = Some((region, hint));
                } else {
                    self.verify(i, data, region, hint, cursor, &mut state.hits);
                }
            }
        }
    }

    /// Runs the candidate of detector `i` that was put off
    /// ([`Cursor::deferred`]) if its search could move where a search
    /// from `at` on starts; else drops it. Its matches are all refused:
    /// all it can change is the cursor, which no later candidate reads if
    /// it starts past the farthest the search can take the cursor (twice
    /// the pattern's reach after the region: [`Scanner::verify`]'s
    /// `clear`) and the pattern's reach back from there.
    #[inline(always)]
    fn settle(&self, i: usize, data: &[u8], at: usize, cursor: &mut Cursor, hits: &mut Vec<Hit>) {
        if cursor.deferred.is_some() {
            self.settle_deferred(i, data, at, cursor, hits);
        }
    }

    /// [`Scanner::settle`] with a candidate put off.
    #[cold]
    #[inline(never)]
    fn settle_deferred(&self, i: usize, data: &[u8], at: usize, cursor: &mut Cursor, hits: &mut Vec<Hit>) {
        let Some((region, hint)) = cursor.deferred.take() else { return };
        let Some(d) = self.detectors.get(i) else { return };
        if at < region.end + 2 * d.reach + d.back {
            self.verify(i, data, region, hint, cursor, hits);
        }
    }

    /// Runs detector `i`'s regex for the candidate `region` (an anchor
    /// occurrence, or a numeric run), recording every match that starts
    /// before the region ends, from `*next` on (where its previous match
    /// ended), and keeping those that pass the validator.
    ///
    /// `hint`: the only span a match can have there (when it fails the
    /// validator, the regex is not run: the match, if any, is passed over
    /// as the reference scan would; nor when the span is certainly a
    /// match), or how near the region every match overlapping it is.
    fn verify(
        &self,
        i: usize,
        data: &[u8],
        region: Range<usize>,
        hint: Option<Hint>,
        cursor: &mut Cursor,
        hits: &mut Vec<Hit>,
    ) {
        let next = &mut cursor.next;
        let Some(d) = self.detectors.get(i) else { return };
        let near = matches!(hint, Some(Hint::Near(_)));
        let (back, reach) = match hint {
            Some(Hint::Near(n)) => (d.back.min(n), d.reach.min(n)),
            _ => (d.back, d.reach),
        };
        if let Some(Hint::Span { span, certain }) = hint {
            if *next <= span.start {
                let valid = data.get(span.clone()).is_some_and(|m| d.valid(m));
                if !valid || certain {
                    *next = span.end;
                    if valid {
                        hits.push(Hit { detector: i, span });
                    }
                    return;
                }
            }
        }
        if d.precheck.is_some_and(|precheck| !precheck(data, region.start)) {
            return;
        }
        if d.word_start && is_word(region.start.checked_sub(1).and_then(|p| data.get(p)).copied()) {
            return;
        }
        if !d.keywords.is_empty()
            && data.get(region.clone()).is_some_and(|r| d.keywords.iter().any(|k| k == r))
            && !keyed::tail_may_follow(data.get(region.end..).unwrap_or_default(), |v| d.value_may_start(v))
        {
            return;
        }
        if let (Some(Anchored { end: Some(end), .. }), 0) = (&d.anchored, d.back) {
            // The match starts at the region or not at all, and its end is
            // read from the bytes, which stops where the pattern's bytes
            // do: no window to bound, no required bytes to look for first.
            if *next <= region.start {
                if let Some(end) = end(data, region.start) {
                    *next = end;
                    d.record(i, data, region.start..end, hits);
                }
            }
            return;
        }
        // The window: alphabet bytes around the region, within reach.
        let known = &mut cursor.known;
        let lo = region.start - known.before(&d.alphabet, data, region.start, back);
        if data.get(region.clone()).is_some_and(|r| r.iter().all(|&b| d.alphabet.contains(b))) {
            known.join(region.start, region.end);
        }
        let hi = region.end + known.after(&d.alphabet, data, region.end, reach);
        let from = lo.max(*next);
        if from >= region.end || (d.back == 0 && from > region.start) {
            return;
        }
        if !cursor.required.all_in(&d.required, data, from..hi) {
            return;
        }
        let hay_end = (hi + 1).min(data.len());
        let Some(hay) = data.get(..hay_end) else { return };
        if let (Some(anchored), 0) = (&d.anchored, d.back) {
            // The match starts at the region or not at all.
            let found = match region.start.checked_sub(1) {
                None => d.regex.find(hay).filter(|m| m.start() == 0).map(|m| m.end()),
                Some(before) => match anchored.regex() {
                    Some(regex) => hay.get(before..).and_then(|h| regex.find(h)).map(|m| before + m.end()),
                    None => d.regex.find_at(hay, region.start).filter(|m| m.start() == region.start).map(|m| m.end()),
                },
            };
            if let Some(end) = found {
                *next = end;
                d.record(i, data, region.start..end, hits);
            }
            return;
        }
        // Searched on past the window while the pattern's alphabet goes on
        // (up to twice its longest match), a search that finds nothing
        // also shows where no match can start: every match starting
        // before `clear` would lie in the hay, with the byte after it. The
        // later candidates of a stretch of them (a body of `a@b.a@b.…`)
        // then start there instead of searching the same bytes again,
        // which keeps the scan linear. (A match not found there is none:
        // a later candidate's window starts no earlier than this one's.)
        let far =
            if d.bounded && !near { region.end + cursor.known.after(&d.alphabet, data, region.end, 2 * d.reach) } else { hi };
        let clear = if far < region.end + 2 * d.reach { far } else { far - d.reach };
        let Some(hay) = data.get(..(far + 1).min(data.len())) else { return };
        let mut at = from;
        while at < region.end {
            let Some(m) = d.find_at(hay, at) else {
                if d.bounded && !near {
                    *next = (*next).max(clear);
                }
                break;
            };
            if m.start >= region.end {
                break;
            }
            *next = m.end;
            at = m.end.max(m.start + 1);
            d.record(i, data, m, hits);
        }
    }
}

/// `hits` by start, end and detector, without duplicates: sorted as
/// `(usize, usize, usize)` triples, the type the literal occurrences'
/// `(start, detector, end)` are sorted as, so that the filter carries one
/// sort for both (each element type a slice
/// is sorted by is a copy of the standard library's sort, 3–5 KB).
fn in_order(hits: Vec<Hit>) -> Vec<Hit> {
    let mut keys: Vec<(usize, usize, usize)> = hits.into_iter().map(|h| (h.span.start, h.span.end, h.detector)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().map(|(start, end, detector)| Hit { detector, span: start..end }).collect()
}

/// How much of the data one regex search reads at a time
/// ([`Compiled::find_at`]).
const SLICE: usize = 4096;

impl Compiled {
    /// The pattern's first match in `hay` from `at` on, as
    /// `regex.find_at(hay, at)` finds it, but searched a slice of the hay
    /// at a time. A region can be as long as the body (a crafted body is
    /// one numeric run, `123-45-6789 123-45-6789 …`), and over a long
    /// haystack the regex crate (built without its DFAs, as in the filter)
    /// runs its PikeVM instead of its bounded backtracker, several times
    /// slower. Whether and how a match of a bounded pattern starts at `s`
    /// depends on `hay[s - 1..=s + reach]` only, so a slice ending at `end`
    /// settles every start before `end - reach`: its match is the whole
    /// hay's if it starts there, and if it does not, no match does.
    fn find_at(&self, hay: &[u8], at: usize) -> Option<Range<usize>> {
        self.find_by_slices(hay, at, SLICE)
    }

    /// [`Compiled::find_at`] with slices of up to `slice` bytes (at least
    /// four times the longest match). The first slice is four times the
    /// longest match, and each slice that finds nothing doubles the next:
    /// the bounded backtracker clears a visited set as large as its NFA
    /// times the slice before each search, and where matches follow each
    /// other (a run of `1234 1234 …`, where every four groups are a card
    /// number's shape that its checksum refuses) a search per match
    /// cleared it for 4 KiB.
    fn find_by_slices(&self, hay: &[u8], mut at: usize, slice: usize) -> Option<Range<usize>> {
        let mut step = (4 * self.reach).max(64);
        let most = slice.max(step);
        while self.bounded && hay.len() > at + step {
            let end = at + step;
            match hay.get(..end).and_then(|slice| self.regex.find_at(slice, at)) {
                Some(m) if m.start() + self.reach < end => return Some(m.range()),
                _ => {
                    at = end - self.reach;
                    step = (2 * step).min(most);
                }
            }
        }
        self.regex.find_at(hay, at).map(|m| m.range())
    }

    /// Whether a `keyed!` value can start at `v`'s first byte: its
    /// fewest bytes follow, all of its alphabet.
    fn value_may_start(&self, v: &[u8]) -> bool {
        self.keyed_value.as_ref().is_none_or(|value| {
            v.get(..value.min).is_some_and(|first| first.iter().all(|&b| value.alphabet.contains(b)))
        })
    }

    fn shape(&self) -> Option<&Shape> {
        match &self.kind {
            Kind::Numeric(shape) => Some(shape),
            _ => None,
        }
    }

    /// Whether a match passes the validator and the placeholder rule.
    fn valid(&self, m: &[u8]) -> bool {
        self.validator.is_none_or(|v| v(m)) && !(self.placeholders && validators::placeholder(m))
    }

    /// Records a match that passes the validator.
    fn record(&self, i: usize, data: &[u8], span: Range<usize>, hits: &mut Vec<Hit>) {
        if data.get(span.clone()).is_some_and(|m| self.valid(m)) {
            hits.push(Hit { detector: i, span });
        }
    }
}

/// Per-scan state.
struct State {
    hits: Vec<Hit>,
    /// Literal anchor occurrences: (start, detector, end).
    occurrences: Vec<(usize, usize, usize)>,
    /// Per detector, where its last match ended and what its earlier
    /// candidates learned of the data.
    next: Vec<Cursor>,
    /// End of the last numeric run read.
    run_done: usize,
}

/// What a detector's earlier candidates in one scan established, so that
/// a stretch of candidates (a crafted body of `eyJ.eyJ.…`, whose alphabet
/// run reaches as far as the longest token) reads the data around them
/// once, not once per candidate.
#[derive(Clone, Default)]
struct Cursor {
    /// Where its last match ended: a later match starts there or after.
    next: usize,
    /// A stretch of alphabet bytes.
    known: Known,
    /// Where the pattern's required bytes were looked for.
    required: Required,
    /// A numeric candidate whose matches the validator would all refuse
    /// ([`Shape::refused`]): a regex search there finds nothing to
    /// report and only moves `next`, so it is run only if a later
    /// candidate comes near enough to need that ([`Scanner::settle`]).
    /// Tracking numbers and payment references in groups of four are
    /// card and Aadhaar shapes whose checksums fail; each cost a search.
    deferred: Option<(Range<usize>, Option<Hint>)>,
}

/// `data[start..end]` are all bytes of a detector's alphabet; `exact_start`:
/// the byte before `start` is not (or `start` is 0), `exact_end`: the byte
/// at `end` is not (or the data ends there).
#[derive(Clone, Default)]
struct Known {
    start: usize,
    end: usize,
    exact_start: bool,
    exact_end: bool,
}

impl Known {
    /// [`ByteSet::run_before`], from what is known where it can.
    fn before(&mut self, set: &ByteSet, data: &[u8], at: usize, limit: usize) -> usize {
        if !(self.start..=self.end).contains(&at) {
            let n = set.run_before(data, at, limit);
            *self = Known { start: at - n, end: at, exact_start: n < limit, exact_end: false };
            return n;
        }
        if at - self.start < limit && !self.exact_start {
            let n = set.run_before(data, self.start, limit - (at - self.start));
            self.exact_start = n < limit - (at - self.start);
            self.start -= n;
        }
        (at - self.start).min(limit)
    }

    /// [`ByteSet::run_after`], from what is known where it can.
    fn after(&mut self, set: &ByteSet, data: &[u8], at: usize, limit: usize) -> usize {
        if !(self.start..=self.end).contains(&at) {
            let n = set.run_after(data, at, limit);
            *self = Known { start: at, end: at + n, exact_start: false, exact_end: n < limit };
            return n;
        }
        if self.end - at < limit && !self.exact_end {
            let n = set.run_after(data, self.end, limit - (self.end - at));
            self.exact_end = n < limit - (self.end - at);
            self.end += n;
        }
        (self.end - at).min(limit)
    }

    /// Adds `data[at..to]`, alphabet bytes, where `at` was just passed to
    /// [`Known::before`] (so it lies in the stretch). The stretch's end
    /// was not exact if it moves: the byte there is one of them.
    fn join(&mut self, at: usize, to: usize) {
        if (self.start..=self.end).contains(&at) && self.end < to {
            self.end = to;
        }
    }
}

/// Per required byte of a detector's pattern ([`Compiled::required`]),
/// where it was looked for: `data[from..to]` does not hold it and,
/// `found`, `data[to]` is it.
#[derive(Clone, Default)]
struct Required(Vec<(usize, usize, bool)>);

impl Required {
    /// Whether `data[window]` holds every byte of `bytes`.
    fn all_in(&mut self, bytes: &[u8], data: &[u8], window: Range<usize>) -> bool {
        let Some(hay) = data.get(window.clone()) else { return false };
        // Short windows are looked at directly; the record is for long
        // ones, which a stretch of candidates shares.
        if hay.len() <= 256 {
            return bytes.iter().all(|b| hay.contains(b));
        }
        if self.0.len() != bytes.len() {
            self.0 = vec![(0, 0, false); bytes.len()];
        }
        for (&b, seen) in bytes.iter().zip(self.0.iter_mut()) {
            let (from, to, found) = *seen;
            let known = (from..=to).contains(&window.start);
            if known && found {
                if to >= window.end {
                    return false;
                }
                continue;
            }
            let start = if known { to } else { window.start };
            if known && to >= window.end {
                return false;
            }
            let rest = data.get(start..window.end).unwrap_or_default();
            *seen = match rest.iter().position(|&x| x == b) {
                Some(p) => (if known { from } else { window.start }, start + p, true),
                None => (if known { from } else { window.start }, window.end, false),
            };
            if !seen.2 {
                return false;
            }
        }
        true
    }
}

/// Bits `k` of a block at `i` with `i + k < end`: its bytes before `end`.
/// (`i` may be a little below zero, wrapped: a block's runs start
/// [`classes::LAG`] bytes before it.)
#[inline(always)]
fn below(end: usize, i: usize) -> u64 {
    match end.wrapping_sub(i) as isize {
        ..=0 => 0,
        n @ 1..=63 => (1u64 << n) - 1,
        _ => u64::MAX,
    }
}

/// For the run at bit `k` of a block's runs ([`classes::Lagged`]: byte
/// `k - LAG` of the block), [`Run::plain`]'s window: the digits from
/// sixteen bytes before it, out of `digits`, the block before's and the
/// block's. Past the block's end they are not known: they are marked
/// digits, so that a run reaching there is not taken for a plain run
/// that ends there.
#[inline(always)]
fn plain_window(digits: [u64; 2], k: usize) -> u64 {
    let [before, this] = digits;
    // Byte `k - LAG - 16` of the block is bit `64 + k - LAG - 16` of the
    // two words.
    let from = 64 + k - classes::LAG - 16;
    let known = (u128::from(before) | u128::from(this) << 64) >> from;
    let unknown = match 128 - from {
        n @ 0..=63 => u64::MAX << n,
        _ => 0,
    };
    known as u64 | unknown
}

/// How many blocks with pair hits, or with runs to read, the table loop
/// collects before it looks at them ([`Scanner::look`]).
const QUEUE: usize = 32;

/// What the table loop found, looked at [`QUEUE`] blocks at a time: the
/// loop itself then has no branch that depends on the data (a block with
/// a hit was about as common as one without, and each mispredicted branch
/// cost as much as a block's table tests).
#[derive(Default)]
struct Queues {
    pairs: [Pairs; QUEUE],
    runs: [Runs64; QUEUE],
    n_pairs: usize,
    n_runs: usize,
}

impl Queues {
    /// Writes the block at `at`'s pair hits (`bits`) and runs to read
    /// ([`Runs64`]) whatever they are, and keeps them where there are any;
    /// whether a queue is now full.
    #[inline(always)]
    fn push(&mut self, at: usize, bits: u64, runs_at: usize, runs: u64, digits: [u64; 2]) -> bool {
        if let Some(slot) = self.pairs.get_mut(self.n_pairs) {
            *slot = Pairs { at, bits };
        }
        self.n_pairs += usize::from(bits != 0);
        if let Some(slot) = self.runs.get_mut(self.n_runs) {
            *slot = Runs64 { at: runs_at, runs, digits };
        }
        self.n_runs += usize::from(runs != 0);
        self.n_pairs == QUEUE || self.n_runs == QUEUE
    }
}

/// A block's pair hits ([`Prefilter::test_block`]: bit `j` for the pair at
/// `at + 2j`).
#[derive(Clone, Copy, Default)]
struct Pairs {
    at: usize,
    bits: u64,
}

/// A block's numeric runs to read ([`Scanner::look`]): bit `k` for byte
/// `at + k`, [`classes::LAG`] bytes before the block (`at` wraps below
/// zero for the first); `digits`, the block before's and the block's.
#[derive(Clone, Copy, Default)]
struct Runs64 {
    at: usize,
    runs: u64,
    digits: [u64; 2],
}

/// The bytes the AVX2 loop finds the classes of in one compare.
const HALF: usize = 32;

/// The bytes the table loop reads at a time ([`Scanner::pass_with`]).
const BLOCK: usize = 2 * HALF;

/// The first eight bytes of `bytes` (fewer if it is shorter), little-endian,
/// and the mask of those bytes: `(word_at(data, i) ^ head) & mask == 0` where
/// `data` at `i` starts with them.
pub(crate) fn head_and_mask(bytes: &[u8]) -> (u64, u64) {
    let n = bytes.len().min(8);
    let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
    (word_at(bytes, 0) & mask, mask)
}

/// The eight bytes at `i`, little-endian, zero-padded past the end.
#[inline(always)]
pub(crate) fn word_at(data: &[u8], i: usize) -> u64 {
    if let Some(bytes) = data.get(i..i + 8).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
        return u64::from_le_bytes(bytes);
    }
    let mut bytes = [0u8; 8];
    for (b, &d) in bytes.iter_mut().zip(data.get(i..).unwrap_or_default()) {
        *b = d;
    }
    u64::from_le_bytes(bytes)
}

/// How many of the bytes of `word` (little-endian), from the first, are
/// ASCII digits.
#[inline(always)]
fn leading_digits(word: u64) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    ((!classes::digit_bytes(word) & HIGH).trailing_zeros() / 8) as usize
}

/// Whether a plain run of 13 or 15 digits starts with China's country
/// code (`86`, `0086`), as `cn_mobile`'s matches of those lengths do;
/// true for a run of any other length.
fn country_code_first(data: &[u8], run: &Run) -> bool {
    match run.digits {
        13 => data.get(run.start..run.start + 2) == Some(b"86".as_slice()),
        15 => data.get(run.start..run.start + 4) == Some(b"0086".as_slice()),
        _ => true,
    }
}

/// Whether `b` is a regex word byte (`\b` is between a word byte and
/// anything else).
pub(crate) fn is_word(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
}

// ---------------------------------------------------------------- prefilter

/// Where numeric runs are read ([`classes::Lagged`]).
#[derive(Clone, Copy)]
enum Runs {
    /// At every digit: a custom numeric detector ([`Anchor::Digits`]
    /// promises only digits).
    AnyDigit,
    /// Where the built-in shapes' matches can be: eleven bytes of digits
    /// and joiners, digits after two capitals, groups of four around a
    /// colon.
    Shaped,
}

/// Entries of [`Prefilter::literal`]: a pair and three bits of the byte
/// after it.
const PAIR_TABLE: usize = 1 << 19;

/// The byte-pair table and the literal anchors behind it.
struct Prefilter {
    /// Pairs of literals and the byte after them, indexed by the pair as
    /// a little-endian `u16` and the after byte's low three bits above it
    /// (the low nineteen bits of the little-endian word at the pair): one
    /// when some literal has the pair followed by such a byte (every
    /// class where the literal ends with the pair), so that a pair and
    /// the byte after it cost a mask and a load. The byte after is what
    /// tells a keyword's pair from the same two letters in other words:
    /// keyword anchors made of letters only (`linear`, `sentry`,
    /// `secret`) mark pairs such as `in` and `ec`, and on the clean JSON
    /// benchmark input 38,240 pairs hit a table of pairs alone, 15,233
    /// this one. A byte an entry, not a bit: 512 KiB where a bit table
    /// would be 64 KiB, for the shift by a variable amount a bit costs
    /// (V8 moved each count to `cl`, spilling the loop's registers around
    /// it; *Where the pair test's instructions went* in
    /// docs/PERFORMANCE.md).
    literal: Box<[u8; PAIR_TABLE]>,
    /// What each marked pair is part of ([`KEEP`], [`BEFORE_TWO`],
    /// [`TWO`], [`LONG`]): read only for a hit, by [`Prefilter::confirm`].
    kinds: Box<[u8; 65536]>,
    /// The three bytes around each longer literal's two pairs
    /// ([`triple_slot`]): a hit on a pair whose three bytes around are no
    /// literal's is dropped before its probes are looked up.
    triples: Box<[u64; 1024]>,
    /// The literals a pair can belong to, by pair: where the literal
    /// starts, which literal, and its first eight bytes, so that a pair's
    /// probes are compared a word at a time.
    probes: Vec<Probe>,
    /// Where each pair's probes are in `probes`: an open-addressing table
    /// by pair (a hash lookup instead of a binary search over thousands
    /// of probes: one- and two-byte literals mark 256 or 512 pairs each).
    /// Slots hold (pair, from, to); `to == 0` is empty.
    spans: Vec<(u16, u32, u32)>,
    /// Distinct literals and the detectors they anchor.
    literals: Vec<(Vec<u8>, Vec<usize>)>,
    /// Whether and where numeric runs are read.
    runs: Option<Runs>,
}

impl Prefilter {
    /// `runs`: where numeric runs are read, if there are numeric
    /// detectors. `word_start(owner)`: no match of the detector starts at
    /// an occurrence of its anchor with a word byte before it
    /// ([`Compiled::word_start`]); a one- or two-byte literal all of whose
    /// detectors say so marks no pair of a word byte and its first byte
    /// (base64's `a+` is no phone number's `+1`).
    fn new(anchors: Vec<(Vec<u8>, usize)>, runs: Option<Runs>, word_start: impl Fn(usize) -> bool) -> Prefilter {
        let mut literals: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
        for (bytes, owner) in anchors {
            match literals.iter_mut().find(|(b, _)| *b == bytes) {
                Some((_, owners)) => {
                    if !owners.contains(&owner) {
                        owners.push(owner);
                    }
                }
                None => literals.push((bytes, vec![owner])),
            }
        }
        // (pair, literal, offset of the pair's second byte in the literal),
        // packed in a `u64` (16, 32 and 16 bits: the pair's place is
        // chosen among a literal's first 60,000 bytes) so that sorting them
        // is the sort the scan already has, not code of its own.
        let mut entries: Vec<u64> = Vec::new();
        let entry = |p: u16, literal: u32, back: usize| {
            u64::from(p) << 48 | u64::from(literal) << 16 | u64::from(u16::try_from(back).unwrap_or(u16::MAX))
        };
        let mut kinds = Box::new([0u8; 65536]);
        let mut mark = |p: u16, kind: u8| {
            if let Some(slot) = kinds.get_mut(usize::from(p)) {
                *slot |= kind;
            }
        };
        let mut triples = Box::new([0u64; 1024]);
        let frequencies = Frequencies::new();
        for (index, (bytes, owners)) in literals.iter().enumerate() {
            let index = index as u32;
            // The bytes that can stand right before an occurrence.
            let before = |b: u8| !is_word(Some(b)) || !owners.iter().all(|&o| word_start(o));
            match bytes.as_slice() {
                [] => {}
                // One byte at an even offset is the first of a pair, at an
                // odd offset the second.
                [b] => {
                    for other in 0..=255u8 {
                        entries.push(entry(pair(*b, other), index, 1));
                        mark(pair(*b, other), KEEP);
                        if before(other) {
                            entries.push(entry(pair(other, *b), index, 0));
                            mark(pair(other, *b), KEEP);
                        }
                    }
                }
                // Two bytes: the pair itself at an even offset, or at an
                // odd one the pair ending with the first byte.
                [a, b] => {
                    entries.push(entry(pair(*a, *b), index, 1));
                    mark(pair(*a, *b), KEEP | TWO);
                    for other in (0..=255u8).filter(|&b| before(b)) {
                        entries.push(entry(pair(other, *a), index, 0));
                        mark(pair(other, *a), BEFORE_TWO);
                    }
                }
                // Three or more: two overlapping pairs at the cheapest
                // place ([`spot_cost`]: rare pairs, a known byte after
                // both, three bytes rare together); wherever the literal
                // starts, one of them is at an even offset.
                _ => {
                    let k = (0..(bytes.len() - 2).min(60_000))
                        .map(|k| {
                            let (x, y, z) = (byte(bytes, k), byte(bytes, k + 1), byte(bytes, k + 2));
                            // A pair a numeric run could contain would hit
                            // in every number of digit-dense JSON.
                            let in_runs = (in_run(x) && in_run(y)) || (in_run(y) && in_run(z));
                            (k, in_runs, spot_cost(&frequencies, x, y, z, bytes.get(k + 3).copied()))
                        })
                        .min_by(|a, b| (a.1, a.2).partial_cmp(&(b.1, b.2)).unwrap_or(std::cmp::Ordering::Equal))
                        .map_or(0, |(k, _, _)| k);
                    let (x, y, z) = (byte(bytes, k), byte(bytes, k + 1), byte(bytes, k + 2));
                    entries.push(entry(pair(x, y), index, k + 1));
                    entries.push(entry(pair(y, z), index, k + 2));
                    mark(pair(x, y), LONG);
                    mark(pair(y, z), LONG);
                    let xyz = u32::from_le_bytes([x, y, z, 0]);
                    set_slot(&mut triples, triple_slot(xyz, false));
                    set_slot(&mut triples, triple_slot(xyz, true));
                }
            }
        }
        entries.sort_unstable();
        entries.dedup();
        let pair_of = |e: u64| (e >> 48) as u16;
        let distinct = entries.windows(2).filter(|w| w.first().map(|&e| pair_of(e)) != w.get(1).map(|&e| pair_of(e))).count() + 1;
        let mut spans = vec![(0u16, 0u32, 0u32); (2 * distinct).next_power_of_two()];
        let mask = spans.len() - 1;
        for (k, p) in entries.iter().map(|&e| pair_of(e)).enumerate() {
            let mut slot = usize::from(hash_pair(p)) & mask;
            // Entries are sorted: a pair's entries are consecutive.
            while let Some(span) = spans.get_mut(slot) {
                if span.2 == 0 {
                    *span = (p, k as u32, k as u32 + 1);
                    break;
                }
                if span.0 == p {
                    span.2 = k as u32 + 1;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        // Made on the heap: half a megabyte is more than a wasm stack
        // holds. (The conversion cannot fail: the lengths are equal.)
        let mut literal: Box<[u8; PAIR_TABLE]> =
            vec![0u8; PAIR_TABLE].into_boxed_slice().try_into().unwrap_or_else(|_| Box::new([0; PAIR_TABLE]));
        for &e in &entries {
            let (index, back) = ((e >> 16) as u32 as usize, (e & 0xFFFF) as usize);
            // The classes of the byte after the pair, where the literal
            // has one; else all.
            let after = literals.get(index).and_then(|(b, _)| b.get(back + 1)).map(|&b| usize::from(b & 7));
            for class in after.map_or(0..8, |c| c..c + 1) {
                if let Some(slot) = literal.get_mut(usize::from(pair_of(e)) | class << 16) {
                    *slot = 1;
                }
            }
        }
        let probes = entries
            .iter()
            .map(|&e| {
                let (literal, back) = ((e >> 16) as u32 as usize, (e & 0xFFFF) as usize);
                let bytes = literals.get(literal).map_or(&[][..], |(b, _)| b.as_slice());
                let (print, mask) = head_and_mask(bytes);
                Probe { back, literal, print, mask }
            })
            .collect();
        Prefilter {
            literal,
            kinds,
            triples,
            spans,
            literals,
            probes,
            runs,
        }
    }

    /// Whether the loop has anything to look for.
    fn active(&self) -> bool {
        self.runs.is_some() || !self.probes.is_empty()
    }

    /// Bit `j` set: the pair at offset `2j` of `block` (the [`BLOCK`]
    /// bytes and the two after them), with the byte after it, can be a
    /// literal's ([`Prefilter::literal`]). A pair's index is the low
    /// nineteen bits of the 32-bit word at the pair, each read on its own:
    /// a load where taking it out of a 64-bit word was a move and a shift
    /// (4% fewer instructions a scan).
    #[inline(always)]
    fn test_block(&self, block: &[u8; BLOCK + 2]) -> u64 {
        let bit = |j: usize| {
            let x = block.get(2 * j..).and_then(|s| s.first_chunk::<4>()).map_or(0, |w| u32::from_le_bytes(*w));
            u64::from(self.literal.get((x & (PAIR_TABLE as u32 - 1)) as usize).copied().unwrap_or(0))
        };
        // Added, not or-ed: the entries are 0 or 1, so the sum is the same
        // bits, and x86 adds a value times 2, 4 or 8 in one `lea`, where
        // an or of a shifted value is a shift and an or.
        let four = |k: usize| bit(4 * k) + 2 * bit(4 * k + 1) + 4 * bit(4 * k + 2) + 8 * bit(4 * k + 3);
        four(0) | four(1) << 4 | four(2) << 8 | four(3) << 12 | four(4) << 16 | four(5) << 20 | four(6) << 24 | four(7) << 28
    }

    /// The pair at `q` (a table hit), if it can be part of a literal
    /// occurrence: a pair with a one-byte literal, a two-byte literal at
    /// the pair or one byte on, or a pair whose three bytes around (the
    /// pair and the byte after it, or the byte before it and the pair)
    /// are a longer literal's three bytes at its pairs. Near the data's
    /// ends every hit is kept. The four bytes around are read at once,
    /// the pair with them.
    #[inline(always)]
    fn confirm(&self, data: &[u8], q: usize) -> Option<u16> {
        let Some(around) = q.checked_sub(1).and_then(|p| data.get(p..q + 3)).and_then(|s| <[u8; 4]>::try_from(s).ok())
        else {
            return Some(word_at(data, q) as u16);
        };
        let around = u32::from_le_bytes(around);
        let pair = (around >> 8) as u16;
        let kind = self.kinds.get(usize::from(pair)).copied().unwrap_or(KEEP);
        let keep = kind & KEEP != 0
            || (kind & BEFORE_TWO != 0 && self.kinds.get((around >> 16) as usize).is_some_and(|k| k & TWO != 0))
            || (kind & LONG != 0
                && (bit_at(&self.triples, triple_slot(around >> 8, false))
                    | bit_at(&self.triples, triple_slot(around & 0xFF_FFFF, true)))
                    != 0);
        keep.then_some(pair)
    }

    /// The literal occurrences the pair at `q` belongs to.
    fn occurrences(&self, data: &[u8], q: usize, p: u16, out: &mut Vec<(usize, usize, usize)>) {
        let mask = self.spans.len() - 1;
        let mut slot = usize::from(hash_pair(p)) & mask;
        let (from, to) = loop {
            match self.spans.get(slot) {
                Some(&(q_pair, from, to)) if to != 0 && q_pair == p => break (from, to),
                Some(&(_, _, to)) if to != 0 => slot = (slot + 1) & mask,
                _ => return,
            }
        };
        for probe in self.probes.get(from as usize..to as usize).unwrap_or_default() {
            let Some(start) = (q + 1).checked_sub(probe.back) else { continue };
            // The literal's first eight bytes, a word at a time: most
            // entries of a common pair belong to other literals.
            if (word_at(data, start) ^ probe.print) & probe.mask != 0 {
                continue;
            }
            let Some((bytes, owners)) = self.literals.get(probe.literal) else { continue };
            let end = start + bytes.len();
            if end <= data.len() && (bytes.len() <= 8 || data.get(start..end) == Some(bytes.as_slice())) {
                // Most literals anchor one detector: a push, not a loop.
                match owners.as_slice() {
                    &[o] => out.push((start, o, end)),
                    many => out.extend(many.iter().map(|&o| (start, o, end))),
                }
            }
        }
    }
}

/// One literal a pair can belong to ([`Prefilter::probes`]).
struct Probe {
    /// The pair's second byte's offset in the literal.
    back: usize,
    /// Index in [`Prefilter::literals`].
    literal: usize,
    print: u64,
    mask: u64,
}

/// A pair hashed for the `spans` table.
fn hash_pair(p: u16) -> u16 {
    (u32::from(p).wrapping_mul(0x9E37_79B1) >> 16) as u16
}

fn pair(first: u8, second: u8) -> u16 {
    u16::from_le_bytes([first, second])
}

fn byte(bytes: &[u8], k: usize) -> u8 {
    bytes.get(k).copied().unwrap_or(0)
}

/// [`Prefilter::kinds`]: a pair with a one-byte literal's byte, or a
/// two-byte literal: every hit is looked up.
const KEEP: u8 = 1;
/// A pair ending with a two-byte literal's first byte: looked up when the
/// pair one byte on is a two-byte literal ([`TWO`]).
const BEFORE_TWO: u8 = 2;
/// A two-byte literal.
const TWO: u8 = 4;
/// One of a longer literal's two pairs: looked up when the three bytes
/// around are that literal's ([`Prefilter::triples`]).
const LONG: u8 = 8;

/// Where three bytes (little-endian, the top byte zero) are in
/// [`Prefilter::triples`]: hashed, and `second` (the pair is the triple's
/// second and third byte) in the upper half.
#[inline(always)]
fn triple_slot(xyz: u32, second: bool) -> usize {
    (xyz.wrapping_mul(0x9E37_79B1) >> 17) as usize | usize::from(second) << 15
}

#[inline(always)]
fn bit_at(table: &[u64; 1024], x: usize) -> u64 {
    table.get(x >> 6).map_or(0, |w| (w >> (x & 63)) & 1)
}

fn set_slot(table: &mut [u64; 1024], x: usize) {
    if let Some(w) = table.get_mut(x >> 6) {
        *w |= 1 << (x & 63);
    }
}

/// Bytes a numeric run is made of.
fn in_run(b: u8) -> bool {
    b.is_ascii_digit() || b == b' ' || b == b'-'
}

/// A rough frequency of a byte in JSON, logs, prose and base64 (relative
/// to the others).
fn byte_cost(b: u8) -> f64 {
    match b {
        b' ' | b'"' => 50.0,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 40.0,
        b'h' | b'l' | b'd' | b'c' | b'u' | b'_' | b'-' => 35.0,
        b'0'..=b'9' | b':' | b',' => 30.0,
        b'a'..=b'z' | b'.' | b'/' => 20.0,
        b'A'..=b'Z' => 10.0,
        b'\n' | b'{' | b'}' | b'[' | b']' | b'=' | b'&' | b'\\' => 8.0,
        0x21..=0x7e => 3.0,
        _ => 1.0,
    }
}

/// The 160 commonest letter pairs of English text, commonest first: the
/// letters of a keyword anchor such as `credential` or `linear` are all
/// common, and the pairs they make are not equally so (`en`, `re` against
/// `ti`, `ia`).
const COMMON_PAIRS: &[u8; 320] = b"thheineranreonatenndtiesorteofedisitalarsttontngsehaasouiolevecomedehiriroicneearacelichllbemasiomurcaeltalansdifohopeecprnoctusacotiltrlyncetutsssorsunlowageiewheewiemadolrtpowenaulnitsmoowpaimmiaishirsuidosiviaamficivipligtuevldrympfeblabghtyopwosaayexkefrooavagifapgrodbosprddoucbueiovbyrmepttocfaefcurnscgidayocrcldu";

/// A rough frequency of the pair `a b` (relative): the bytes' times how
/// common the letter pair is in English, in either case.
fn pair_cost(a: u8, b: u8) -> f64 {
    let lower = [a.to_ascii_lowercase(), b.to_ascii_lowercase()];
    let rank = COMMON_PAIRS.chunks_exact(2).position(|p| p == lower);
    let weight = match rank {
        Some(0..40) => 8.0,
        Some(40..80) => 5.0,
        Some(80..160) => 3.0,
        _ => 1.0,
    };
    byte_cost(a) * byte_cost(b) * weight
}

/// The rough frequencies [`spot_cost`] weighs pairs by, summed once.
struct Frequencies {
    /// Of all bytes ([`byte_cost`]).
    all: f64,
    /// The share of the bytes whose low three bits are each class (the
    /// byte after a pair, as [`Prefilter::literal`] tells them apart).
    class: [f64; 8],
}

impl Frequencies {
    fn new() -> Frequencies {
        let all: f64 = (0..=255u8).map(byte_cost).sum();
        let mut class = [0.0; 8];
        for b in 0..=255u8 {
            if let Some(share) = class.get_mut(usize::from(b & 7)) {
                *share += byte_cost(b) / all;
            }
        }
        Frequencies { all, class }
    }

    fn class(&self, b: u8) -> f64 {
        self.class.get(usize::from(b & 7)).copied().unwrap_or(1.0)
    }
}

/// What marking the three bytes `x y z` of a literal (and `after`, the
/// literal's byte after them, if any) costs the scan, roughly: the table
/// hits of the pairs `x y` (followed by `z`'s class) and `y z`
/// (followed by `after`'s, or by anything where the literal ends there),
/// plus ten times the hits that [`Prefilter::confirm`] keeps, where the
/// data has the three bytes (each then costs a lookup of the literals).
fn spot_cost(f: &Frequencies, x: u8, y: u8, z: u8, after: Option<u8>) -> f64 {
    let (xy, yz) = (pair_cost(x, y) / (f.all * f.all), pair_cost(y, z) / (f.all * f.all));
    let hits = xy * f.class(z) + yz * after.map_or(1.0, |a| f.class(a));
    let lower = [x.to_ascii_lowercase(), y.to_ascii_lowercase(), z.to_ascii_lowercase()];
    let in_words = COMMON_WORDS.iter().any(|w| w.as_bytes().windows(3).any(|t| t == lower));
    let three = xy * yz * f.all / byte_cost(y) * if in_words { 30.0 } else { 1.0 };
    hits + 10.0 * three
}

/// Words common in API payloads, as JSON field names and values. Three
/// bytes of a keyword anchor that one of them has are kept by
/// [`Prefilter::confirm`] in every such word (`lin` of `linear` in every
/// `line_items`, `rvi` of `service_account` in every `service`), so
/// [`spot_cost`] weighs them thirty times more.
const COMMON_WORDS: &[&str] = &[
    "account", "address", "amount", "application", "billing", "category", "city", "client", "code", "config",
    "content", "count", "country", "created", "currency", "customer", "data", "date", "delivery", "description",
    "discount", "display", "email", "error", "event", "identifier", "image", "items", "label", "library", "line",
    "linux", "list", "message", "metadata", "method", "name", "number", "order", "page", "payment", "phone",
    "player", "price", "private", "product", "public", "quantity", "reference", "region", "request", "response",
    "result", "score", "service", "session", "shipping", "source", "state", "status", "street", "target", "text",
    "time", "timestamp", "title", "token", "total", "tracking", "type", "updated", "user", "value", "version",
    "window", "zone",
];

// ---------------------------------------------------------------- numeric runs

/// A run of digits in groups separated by single spaces or dashes.
struct Run {
    start: usize,
    end: usize,
    digits: usize,
    groups: usize,
    /// The lengths of the first [`MAX_GROUPS`] groups, one byte each
    /// (saturating), little-endian.
    lens: u64,
    /// Bit `n` set: some group has `n` digits (31: 31 or more); every
    /// group, however many. Kept for grouped runs only.
    seen: u32,
    /// The most groups of four digits in a row, and how many end the run
    /// so far (grouped runs only).
    most_fours: u8,
    fours: u8,
    /// The lengths of the last group and the one before (saturating).
    last: [u8; 2],
    /// Some group of 3, 5 or 7 digits is followed by two groups of four
    /// (a mobile number's grouping; grouped runs only).
    mobile: bool,
    dashes: bool,
}

impl Run {
    /// The run around the digit at `q`.
    fn at(data: &[u8], q: usize) -> Run {
        let mut start = q;
        loop {
            let b1 = start.checked_sub(1).and_then(|k| data.get(k)).copied();
            let b2 = start.checked_sub(2).and_then(|k| data.get(k)).copied();
            match (b1, b2) {
                (Some(b), _) if b.is_ascii_digit() => start -= 1,
                (Some(b' ' | b'-'), Some(b)) if b.is_ascii_digit() => start -= 2,
                _ => break,
            }
        }
        let mut run = Run {
            start,
            end: start,
            digits: 0,
            groups: 0,
            lens: 0,
            seen: 0,
            most_fours: 0,
            fours: 0,
            last: [0; 2],
            mobile: false,
            dashes: false,
        };
        let mut at = start;
        let mut group = 0usize;
        loop {
            // The digits at `at`, eight at a time.
            let digits = leading_digits(word_at(data, at));
            group += digits;
            at += digits;
            if digits == 8 {
                continue;
            }
            match data.get(at).copied() {
                Some(sep @ (b' ' | b'-')) if data.get(at + 1).is_some_and(u8::is_ascii_digit) => {
                    run.push_group(group);
                    group = 0;
                    run.dashes |= sep == b'-';
                    at += 1;
                }
                _ => break,
            }
        }
        run.push_group(group);
        run.end = at;
        run
    }

    /// [`Run::at`] for the digit at `start` when the digits around it
    /// (`window`: bit 16 for `start`, sixteen bytes before it, and bits
    /// not known set) show a plain run: no digit right before it, its end
    /// within the window, and no separator between it and another digit
    /// on either side. Most runs in JSON are (prices, ids, years).
    #[inline(always)]
    fn plain(data: &[u8], start: usize, window: u64) -> Option<Run> {
        if (window >> 15) & 1 != 0 {
            return None;
        }
        let digits = (!(window >> 16)).trailing_zeros() as usize;
        if digits >= 48 {
            return None;
        }
        let end = start + digits;
        let separated = |sep: Option<&u8>, digit: Option<&u8>| {
            matches!(sep, Some(b' ' | b'-')) && digit.is_some_and(u8::is_ascii_digit)
        };
        let before = |n: usize| start.checked_sub(n).and_then(|p| data.get(p));
        if separated(before(1), before(2)) || separated(data.get(end), data.get(end + 1)) {
            return None;
        }
        Some(Run {
            start,
            end,
            digits,
            groups: 1,
            lens: digits as u64,
            seen: 0,
            most_fours: 0,
            fours: 0,
            last: [digits as u8, 0],
            mobile: false,
            dashes: false,
        })
    }

    fn push_group(&mut self, len: usize) {
        self.seen |= 1 << len.min(31);
        let four = len == 4;
        self.mobile |= four && self.last[0] == 4 && matches!(self.last[1], 3 | 5 | 7);
        self.fours = if four { self.fours.saturating_add(1) } else { 0 };
        self.most_fours = self.most_fours.max(self.fours);
        self.last = [len.min(255) as u8, self.last[0]];
        if self.groups < MAX_GROUPS {
            self.lens |= (len.min(255) as u64) << (8 * self.groups);
        }
        self.groups += 1;
        self.digits += len;
    }

    /// More groups than recorded: the shape tests read what is kept of
    /// every group instead (the lengths seen, fours in a row, the last
    /// two, a mobile number's grouping).
    fn overflows(&self) -> bool {
        self.groups > MAX_GROUPS
    }

    /// The recorded group lengths (the first [`MAX_GROUPS`]).
    fn lens(&self) -> ([u8; MAX_GROUPS], usize) {
        (self.lens.to_le_bytes(), self.groups.min(MAX_GROUPS))
    }

    /// Some group's length is in `range`.
    fn any_group(&self, range: Range<u8>) -> bool {
        if self.overflows() {
            return range.into_iter().any(|l| self.seen & 1 << l.min(31) != 0);
        }
        let (lens, n) = self.lens();
        lens.iter().take(n).any(|l| range.contains(l))
    }

    /// Consecutive groups have exactly these lengths.
    /// (Of a run with more groups than recorded: groups of four that
    /// many in a row, or some group of each length, which every match of
    /// the shape needs.)
    fn has(&self, shape: &[u8]) -> bool {
        if self.overflows() {
            return if shape.iter().all(|&l| l == 4) {
                usize::from(self.most_fours) >= shape.len()
            } else {
                shape.iter().all(|&l| self.seen & 1 << l.min(31) != 0)
            };
        }
        let (lens, n) = self.lens();
        lens.get(..n).unwrap_or_default().windows(shape.len()).any(|w| w == shape)
    }

    /// Where each recorded group starts, the lengths, and how many:
    /// `None` when the run has more groups than recorded or a group
    /// longer than a length holds.
    fn group_starts(&self) -> Option<([usize; MAX_GROUPS], [u8; MAX_GROUPS], usize)> {
        let (lens, n) = self.lens();
        if self.overflows() || lens.iter().take(n).any(|&l| l == u8::MAX) {
            return None;
        }
        let mut starts = [0; MAX_GROUPS];
        let mut at = self.start;
        for (start, &len) in starts.iter_mut().zip(&lens).take(n) {
            *start = at;
            at += usize::from(len) + 1;
        }
        Some((starts, lens, n))
    }

    /// The length of the last group.
    fn last_group(&self) -> Option<u8> {
        (self.groups > 0).then_some(self.last[0])
    }

    fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The byte `k` bytes before the run (1: the one just before).
    fn before(&self, data: &[u8], k: usize) -> Option<u8> {
        self.start.checked_sub(k).and_then(|i| data.get(i)).copied()
    }

    /// The byte `k` bytes after the run (0: the one just after).
    fn after(&self, data: &[u8], k: usize) -> Option<u8> {
        data.get(self.end + k).copied()
    }

    /// `\b` before the run and after it.
    fn bounded(&self, data: &[u8]) -> bool {
        !is_word(self.before(data, 1)) && !is_word(self.after(data, 0))
    }

    /// The run's `k`-th byte is one of `digits`.
    fn digit_in(&self, data: &[u8], k: usize, digits: std::ops::RangeInclusive<u8>) -> bool {
        data.get(self.start + k).is_some_and(|b| digits.contains(b))
    }

    /// Two capital letters right before the run (a code's candidates).
    fn after_capitals(&self, data: &[u8]) -> bool {
        self.before(data, 1).is_some_and(|b| b.is_ascii_uppercase())
            && self.before(data, 2).is_some_and(|b| b.is_ascii_uppercase())
    }
}

/// (region, what is known of its matches): what [`Scanner::verify`] gets
/// for a run.
type Candidate = (Range<usize>, Option<Hint>);

/// What a numeric detector's shape tells of the matches in a run.
#[derive(Clone)]
enum Hint {
    /// The only span a match can have.
    Span {
        span: Range<usize>,
        /// The pattern matches exactly this span (the shape checks are
        /// all its conditions), so only the validator is left.
        certain: bool,
    },
    /// Every match that overlaps the region lies within this many bytes
    /// of it: the regex is run over that much, not over the pattern's
    /// whole reach.
    Near(usize),
}

impl Shape {
    /// The built-in shape for a catalogue detector, if `d` is one.
    fn of(d: &Detector) -> Option<Shape> {
        let builtin = detectors::detector(d.id).is_some_and(|c| c.pattern == d.pattern);
        if !builtin {
            return None;
        }
        match d.id {
            "credit_card" => Some(Shape::Card),
            "us_ssn" => Some(Shape::Ssn),
            "cn_resident_id" => Some(Shape::ResidentId),
            "cn_mobile" => Some(Shape::Mobile),
            "in_aadhaar" => Some(Shape::Aadhaar),
            "uk_nino" => Some(Shape::Nino),
            _ => None,
        }
    }

    fn codes(codes: &[&str]) -> Shape {
        let mut table = Box::new([false; 676]);
        for code in codes {
            if let Some(slot) = code_index(code.as_bytes()).and_then(|i| table.get_mut(i)) {
                *slot = true;
            }
        }
        Shape::Code(table)
    }

    /// Whether a plain run (no separators) of `n` digits (63: or more)
    /// can hold a match.
    fn plain_digits(&self, n: usize) -> bool {
        match self {
            Shape::Card => (13..=19).contains(&n),
            // 123.45.6789: the run is the first group, the rest is read
            // after it.
            Shape::Ssn => n == 3,
            Shape::ResidentId => n == 17 || n == 18,
            Shape::Mobile => matches!(n, 11 | 13 | 15),
            Shape::Aadhaar => n == 12 || n == 4,
            Shape::Nino => n == 6,
            Shape::Code(_) => n >= 2,
            Shape::Digits { min } => n >= *min,
        }
    }

    /// Whether a grouped run of `n` digits can hold a match: at least
    /// [`Shape::min_digits`]; a National Insurance number's digits are
    /// the whole run, between letters.
    fn grouped_digits(&self, n: usize) -> bool {
        match self {
            Shape::Nino => n == 6,
            _ => self.min_digits().is_none_or(|min| n >= min),
        }
    }

    /// Whether a grouped run with a group of `n` digits (31: or more) can
    /// hold a match, as far as that group tells: the shapes' grouped
    /// matches all have a group of one of these lengths (a card's 4-4-4-4,
    /// 4-6-4 and 4-6-5 and plain 13-19; an SSN's 3-2-4 and dotted first
    /// group of three; a resident id's 18, or 17 and `X`; a mobile's
    /// x-4-4 and plain 11, 13, 15; Aadhaar's 4-4-4, colon groups of four
    /// and plain 12). A grouped run none of whose groups is listed goes
    /// to none of them.
    fn grouped_with(&self, n: usize) -> bool {
        match self {
            Shape::Card => n == 4 || (13..=19).contains(&n),
            Shape::Ssn => n == 3,
            Shape::ResidentId => n == 17 || n == 18,
            Shape::Mobile => matches!(n, 4 | 11 | 13 | 15),
            Shape::Aadhaar => n == 4 || n == 12,
            Shape::Nino | Shape::Code(_) | Shape::Digits { .. } => true,
        }
    }

    /// Fewest digits in a run a match can start in (codes: checked
    /// separately); a dotted SSN or colon-grouped Aadhaar number starts in
    /// the run of its first group.
    fn min_digits(&self) -> Option<usize> {
        match self {
            Shape::Card => Some(13),
            Shape::Ssn => Some(3),
            Shape::ResidentId => Some(17),
            Shape::Mobile => Some(11),
            Shape::Aadhaar => Some(4),
            Shape::Nino => Some(6),
            Shape::Code(_) => None,
            Shape::Digits { min } => Some(*min),
        }
    }

    /// Whether a match can overlap `run`, and if so the region to verify
    /// and, where it is certain, the only span the match can have.
    fn candidate(&self, data: &[u8], run: &Run) -> Option<Candidate> {
        let plain = run.groups == 1;
        let whole = || Some((run.range(), None));
        match self {
            // \b(?:[0-9]{13,19}|4-4-4-4|4-6-4|4-6-5)\b: a plain run of
            // 13–19 digits with \b around is matched whole.
            Shape::Card if plain => ((13..=19).contains(&run.digits) && run.bounded(data))
                .then(|| (run.range(), Some(Hint::Span { span: run.range(), certain: true }))),
            Shape::Card => {
                if run.any_group(13..20) || run.has(&[4, 4, 4, 4]) || run.has(&[4, 6, 4]) || run.has(&[4, 6, 5]) {
                    whole()
                } else {
                    None
                }
            }
            // \b[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} )[0-9]{4}\b
            // …or 123.45.6789: its first group ends the run (a dot stops
            // it), the rest is read after it.
            Shape::Ssn if plain => (run.digits == 3 && dotted(data, run, b'.', &[2, 4])).then(|| (run.range(), None)),
            Shape::Ssn => (run.has(&[3, 2, 4])
                || (run.last_group().is_none_or(|l| l == 3) && dotted(data, run, b'.', &[2, 4])))
            .then(|| (run.range(), None)),
            // \b[1-9]...: 18 characters, the last a digit or X/x.
            Shape::ResidentId if plain => {
                let first = run.digit_in(data, 0, b'1'..=b'9') && !is_word(run.before(data, 1));
                if run.digits == 18 && first && !is_word(run.after(data, 0)) {
                    Some((run.range(), Some(Hint::Span { span: run.range(), certain: false })))
                } else if run.digits == 17
                    && first
                    && matches!(run.after(data, 0), Some(b'X' | b'x'))
                    && !is_word(run.after(data, 1))
                {
                    Some((run.range(), Some(Hint::Span { span: run.start..run.end + 1, certain: false })))
                } else {
                    None
                }
            }
            Shape::ResidentId => {
                let last_is_17 = run.last_group() == Some(17);
                (run.any_group(18..19) || (last_is_17 && matches!(run.after(data, 0), Some(b'X' | b'x'))))
                    .then(|| (run.range(), None))
            }
            // (?:\+86[ -]?|\+|\b(?:0086|86)[ -]?|\bphone…|\b)1[3-9]x(?:[0-9]{8}|[ -][0-9]{4}[ -][0-9]{4})\b
            Shape::Mobile if plain => {
                // Plain, eleven digits need a `+` or a word before them
                // (see `mobile_word_before`).
                let prefix = match run.digits {
                    11 => run.before(data, 1) == Some(b'+') || mobile_word_before(data, run.start),
                    13 | 15 => country_code_first(data, run),
                    _ => false,
                };
                let lead = run.digits.saturating_sub(11);
                // `\b` after the number; before it only for `86` and
                // `0086`: after a `+` or the word, nothing asks for one
                // (`phone_no13812345678` is a match).
                let bounded = if run.digits == 11 { !is_word(run.after(data, 0)) } else { run.bounded(data) };
                (prefix
                    && bounded
                    && run.digit_in(data, lead, b'1'..=b'1')
                    && run.digit_in(data, lead + 1, b'3'..=b'9'))
                .then(|| (run.range(), None))
            }
            // x-4-4 (`run.mobile`, kept over every group), or 11, 13, 15.
            Shape::Mobile => (run.mobile || run.seen & (1 << 11 | 1 << 13 | 1 << 15) != 0).then(|| (run.range(), None)),
            // aadhaar…[2-9]11 digits (the word before a plain run), or 4-4-4.
            // No `\b` before the twelve digits: the word may touch them
            // (`aadhaar234567890123`).
            Shape::Aadhaar if plain => ((run.digits == 12
                && !is_word(run.after(data, 0))
                && run.digit_in(data, 0, b'2'..=b'9')
                && aadhaar_word_before(data, run.start))
                || (run.digits == 4 && dotted(data, run, b':', &[4, 4])))
                .then(|| (run.range(), None)),
            // Three groups of four in a row, a group of twelve, or colon
            // groups after the run: else nothing can be found.
            Shape::Aadhaar if run.most_fours < 3 && run.seen & 1 << 12 == 0 && run.after(data, 0) != Some(b':') => None,
            Shape::Aadhaar => aadhaar_grouped(data, run),
            // \b[A-Z][A-Z] ?dd ?dd ?dd ?[A-D]\b: the six digits are the
            // whole run, between letters (or a space and a letter).
            Shape::Nino => {
                let letter_before = match run.before(data, 1) {
                    Some(b' ') => run.before(data, 2).is_some_and(|b| b.is_ascii_uppercase()),
                    b => b.is_some_and(|b| b.is_ascii_uppercase()),
                };
                let letter_after = match run.after(data, 0) {
                    Some(b' ') => matches!(run.after(data, 1), Some(b'A'..=b'D')),
                    b => matches!(b, Some(b'A'..=b'D')),
                };
                (run.digits == 6 && !run.dashes && letter_before && letter_after).then(|| (run.range(), None))
            }
            // \bCCdd...: the region starts at the code.
            Shape::Code(table) => {
                let start = run.start.checked_sub(2)?;
                let code = data.get(start..run.start).and_then(code_index)?;
                let listed = table.get(code).copied().unwrap_or(false);
                let first_two = (run.lens & 0xff) >= 2;
                (listed && first_two && !is_word(run.before(data, 3))).then_some((start..run.end, None))
            }
            Shape::Digits { min } => (run.digits >= *min).then(|| (run.range(), None)),
        }
    }
}

impl Shape {
    /// Whether every match the regex can find for the candidate
    /// ([`Shape::candidate`]: `hint`) of a grouped `run` is one the
    /// validator (`valid`) refuses. A match that counts is a whole number
    /// in the run's groups: the card's 4-4-4-4, 4-6-4, 4-6-5 or a group
    /// of 13–19 digits with `\b` around (a group taken in before makes it
    /// a number the validator refuses), Aadhaar's three groups of four
    /// (anything taken in adds digits; with a colon next to the run or a
    /// group of twelve, another alternative can match, and nothing is
    /// said). So when no such window of the run passes the validator, the
    /// regex has nothing to report. `cn_mobile`'s matches all end with
    /// `1[3-9]x` and eight digits or `[ -]dddd[ -]dddd`, the `1` at a
    /// group's start or after `86` or `0086` in it: without a group of
    /// 11, 13 or 15 digits whose last eleven, or of 3, 5 or 7 followed by
    /// two of four whose last three, start so, there is no match at all.
    fn refused(&self, data: &[u8], run: &Run, hint: &Option<Hint>, valid: impl Fn(&[u8]) -> bool) -> bool {
        if run.groups == 1 || !matches!(self, Shape::Card | Shape::Aadhaar | Shape::Mobile) {
            return false;
        }
        self.refused_grouped(data, run, hint, valid)
    }

    /// [`Shape::refused`] for a grouped run.
    #[inline(never)]
    fn refused_grouped(&self, data: &[u8], run: &Run, hint: &Option<Hint>, valid: impl Fn(&[u8]) -> bool) -> bool {
        let Some((starts, lens, n)) = run.group_starts() else { return false };
        let lens = lens.get(..n).unwrap_or_default();
        let text = |from: usize, to: usize| -> &[u8] {
            let start = starts.get(from).copied().unwrap_or(0);
            let end = starts.get(to).map_or(0, |&s| s + usize::from(lens.get(to).copied().unwrap_or(0)));
            data.get(start..end).unwrap_or_default()
        };
        let at = |g: usize, shape: &[u8]| lens.get(g..g + shape.len()) == Some(shape);
        match self {
            Shape::Card => !(0..n).any(|g| {
                let whole = lens.get(g).is_some_and(|l| (13..=19).contains(l)) && valid(text(g, g));
                let grouped = [&[4, 4, 4, 4][..], &[4, 6, 4], &[4, 6, 5]]
                    .iter()
                    .any(|shape| at(g, shape) && valid(text(g, g + shape.len() - 1)));
                whole || grouped
            }),
            Shape::Aadhaar => {
                matches!(hint, Some(Hint::Near(_))) && !(0..n).any(|g| at(g, &[4, 4, 4]) && valid(text(g, g + 2)))
            }
            Shape::Mobile => !(0..n).any(|g| {
                let len = usize::from(lens.get(g).copied().unwrap_or(0));
                let start = starts.get(g).copied().unwrap_or(0);
                let core = |k: usize| {
                    data.get(start + k) == Some(&b'1') && data.get(start + k + 1).is_some_and(|b| (b'3'..=b'9').contains(b))
                };
                (matches!(len, 11 | 13 | 15) && core(len - 11))
                    || (matches!(len, 3 | 5 | 7) && at(g + 1, &[4, 4]) && core(len - 3))
            }),
            _ => false,
        }
    }
}

/// A grouped run's candidate for `in_aadhaar`. Its 4-4-4 alternative,
/// `\b[2-9]ddd(?: dddd dddd|-dddd-dddd)` then `\b` (or a separator and a
/// group the validator refuses): three groups of four, one kind of
/// separator between them, the first digit 2-9, `\b` before (the run's
/// start after a non-word byte, or a separator) and after (the run's end
/// before a non-word byte, or a separator). Where no three groups can, the
/// regex would find nothing: the fragments of UUIDs (`9ef4-4816-8657-0045f1fa`)
/// that used to cost a regex run each. Where three groups can, the regex
/// decides, near the run: even a run that is exactly those groups may be
/// the middle of a UUID, whose first and last groups the pattern takes in
/// to be refused (the run alone cannot tell; matching such runs whole, as
/// before, found an Aadhaar number in one `x-request-id` in 2,800).
#[cold]
#[inline(never)]
fn aadhaar_grouped(data: &[u8], run: &Run) -> Option<Candidate> {
    // Colon groups: the regex.
    if run.last_group().is_none_or(|l| l == 4) && dotted(data, run, b':', &[4, 4]) {
        return Some((run.range(), None));
    }
    let (lens, n) = run.lens();
    if run.overflows() || lens.iter().take(n).any(|&l| l == u8::MAX) {
        return Some((run.range(), None));
    }
    let mut start = run.start;
    let mut possible = false;
    for i in 0..n {
        // Twelve plain digits after the word: a group of twelve with the
        // word within reach before it (the last group of a UUID is twelve
        // digits once in three hundred).
        if lens.get(i) == Some(&12) && aadhaar_word_before(data, start) {
            return Some((run.range(), None));
        }
        let window = lens.get(i..i + 3);
        if window == Some(&[4, 4, 4][..])
            && data.get(start + 4).is_some_and(|&sep| data.get(start + 9) == Some(&sep))
            && data.get(start).is_some_and(|b| (b'2'..=b'9').contains(b))
            && (i > 0 || !is_word(run.before(data, 1)))
            && (i + 3 < n || !is_word(run.after(data, 0)))
        {
            possible = true;
        }
        start += usize::from(lens.get(i).copied().unwrap_or(0)) + 1;
    }
    // The matches that can overlap the run are of the 4-4-4 alternative,
    // within it but for the up to three bytes before (`[0-9A-Z]{0,3}`
    // before a digit group taken in) and after; or of the colon one,
    // which needs a colon next to the run.
    let colon = run.before(data, 1) == Some(b':') || run.after(data, 0) == Some(b':');
    possible.then(|| (run.range(), (!colon).then_some(Hint::Near(AADHAAR_NEAR))))
}

/// How far before or after a grouped run a 4-4-4 Aadhaar match can reach
/// (`\b[0-9A-Z]{0,3}[0-9][ -]` or a UUID's `[0-9A-Fa-f]{8}-` before the
/// first group, `[ -][0-9][0-9A-Z]{0,3}\b` or `-[0-9A-Fa-f]{12}\b` after the
/// last).
const AADHAAR_NEAR: usize = 13;

/// Whether the word Aadhaar can end within the twenty bytes before
/// `start`, as `in_aadhaar`'s pattern requires before twelve plain
/// digits: every spelling (`Aadhaar`, `aadhar`, `AADHAAR`) has `adha` or
/// `ADHA` in the 27 bytes before the digits. A necessary condition only:
/// the regex decides.
fn aadhaar_word_before(data: &[u8], start: usize) -> bool {
    let before = data.get(start.saturating_sub(27)..start).unwrap_or_default();
    before.windows(4).any(|w| w == b"adha" || w == b"ADHA")
}

/// Whether a word that says phone can end within the twenty bytes before
/// `start`, as `cn_mobile`'s pattern requires before eleven plain digits
/// (`mobile`, `phone`, `tel`, `cell` in their casings, 手机, 电话): one of
/// `obile`, `hone`, `el` (any case of the letters the pattern allows) or
/// the last character of the Chinese words is in the 28 bytes before. A
/// necessary condition only: the regex decides.
fn mobile_word_before(data: &[u8], start: usize) -> bool {
    let before = data.get(start.saturating_sub(28)..start).unwrap_or_default();
    let words: [&[u8]; 8] = [b"obile", b"OBILE", b"hone", b"HONE", b"el", b"EL", "机".as_bytes(), "话".as_bytes()];
    words.iter().any(|w| before.windows(w.len()).any(|x| x == *w))
}

/// Whether the plain `run` is followed by groups of exactly these lengths,
/// each after one `sep` (`.45.6789`): numbers written with a separator
/// runs do not join.
#[inline]
fn dotted(data: &[u8], run: &Run, sep: u8, groups: &[usize]) -> bool {
    let mut at = run.end;
    for &len in groups {
        if data.get(at) != Some(&sep) {
            return false;
        }
        let n = data.get(at + 1..).unwrap_or_default().iter().take_while(|b| b.is_ascii_digit()).count();
        if n != len {
            return false;
        }
        at += 1 + len;
    }
    true
}

/// `AB` → 0..676, for two capital letters.
fn code_index(code: &[u8]) -> Option<usize> {
    match code {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => Some(usize::from(a - b'A') * 26 + usize::from(b - b'A')),
        _ => None,
    }
}

// ---------------------------------------------------------------- compiling

/// A set of bytes.
#[derive(Clone)]
struct ByteSet([bool; 256]);

impl ByteSet {
    fn all() -> ByteSet {
        ByteSet([true; 256])
    }

    fn contains(&self, b: u8) -> bool {
        self.0.get(usize::from(b)).copied().unwrap_or(false)
    }

    fn insert_range(&mut self, from: u8, to: u8) {
        for slot in self.0.get_mut(usize::from(from)..=usize::from(to)).unwrap_or_default() {
            *slot = true;
        }
    }

    /// How many bytes of the set end at `at`, at most `limit`.
    fn run_before(&self, data: &[u8], at: usize, limit: usize) -> usize {
        let from = at.saturating_sub(limit);
        data.get(from..at).map_or(0, |s| s.iter().rev().take_while(|&&b| self.contains(b)).count())
    }

    /// How many bytes of the set start at `at`, at most `limit`.
    fn run_after(&self, data: &[u8], at: usize, limit: usize) -> usize {
        let to = (at + limit).min(data.len());
        data.get(at..to).map_or(0, |s| s.iter().take_while(|&&b| self.contains(b)).count())
    }
}

/// Every byte a match of `hir` can contain.
fn alphabet(hir: &Hir, set: &mut ByteSet) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => {
            for &b in lit.0.iter() {
                set.insert_range(b, b);
            }
        }
        HirKind::Class(Class::Bytes(class)) => {
            for r in class.ranges() {
                set.insert_range(r.start(), r.end());
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            for r in class.ranges() {
                let (from, to) = (u32::from(r.start()), u32::from(r.end()));
                if from < 0x80 {
                    set.insert_range(from as u8, to.min(0x7f) as u8);
                }
                if to >= 0x80 {
                    set.insert_range(0x80, 0xff);
                }
            }
        }
        HirKind::Repetition(rep) => {
            if rep.max != Some(0) {
                alphabet(&rep.sub, set);
            }
        }
        HirKind::Capture(cap) => alphabet(&cap.sub, set),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            for sub in subs {
                alphabet(sub, set);
            }
        }
    }
}

/// Bytes every match of `hir` contains.
fn required(hir: &Hir) -> Vec<u8> {
    let bytes: Vec<u8> = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Vec::new(),
        HirKind::Literal(lit) => lit.0.to_vec(),
        HirKind::Class(Class::Bytes(class)) => match class.ranges() {
            [r] if r.start() == r.end() => vec![r.start()],
            _ => Vec::new(),
        },
        HirKind::Class(Class::Unicode(_)) => Vec::new(),
        HirKind::Repetition(rep) if rep.min >= 1 => required(&rep.sub),
        HirKind::Repetition(_) => Vec::new(),
        HirKind::Capture(cap) => required(&cap.sub),
        HirKind::Concat(subs) => subs.iter().flat_map(required).collect(),
        HirKind::Alternation(subs) => {
            let mut common: Option<Vec<u8>> = None;
            for sub in subs {
                let these = required(sub);
                common = Some(match common {
                    None => these,
                    Some(c) => c.into_iter().filter(|b| these.contains(b)).collect(),
                });
            }
            common.unwrap_or_default()
        }
    };
    // Sorted and distinct, by a table (no sort of bytes in the filter).
    let mut seen = [false; 256];
    for b in bytes {
        if let Some(slot) = seen.get_mut(usize::from(b)) {
            *slot = true;
        }
    }
    (0..=255u8).filter(|&b| seen.get(usize::from(b)).copied().unwrap_or(false)).collect()
}

/// Whether every match of `hir` starts with one of `anchors`.
fn starts_with_anchor(hir: &Hir, anchors: &[&[u8]]) -> bool {
    let all_start = |hir: &Hir| {
        let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
        match seq.literals() {
            Some(lits) if !lits.is_empty() => {
                lits.iter().all(|l| anchors.iter().any(|a| !a.is_empty() && l.as_bytes().starts_with(a)))
            }
            _ => false,
        }
    };
    if all_start(hir) {
        return true;
    }
    // A long alternation of names followed by more parts has too many
    // prefixes to list whole (`generic_credential`); then the first part
    // that is not an assertion decides: the match starts where it does
    // (an empty match of it yields an empty prefix, which is no anchor).
    match hir.kind() {
        HirKind::Concat(subs) => subs.iter().find(|s| !matches!(s.kind(), HirKind::Look(_))).is_some_and(all_start),
        _ => false,
    }
}

fn parse(pattern: &str, unicode: bool) -> Option<Hir> {
    regex_syntax::ParserBuilder::new().unicode(unicode).utf8(false).build().parse(pattern).ok()
}

/// A catalogue detector's regex (compiled once per process) and, if its
/// matches start at its anchor, its anchored variant (compiled on first
/// use, also once per process). A detector that is not the catalogue's
/// own (a test's) gets its own regex and no anchored variant: its
/// candidates are searched as other detectors' are.
fn builtin_regexes(d: &Detector) -> Result<(Regex, Option<Anchored>), BuildError> {
    type Cache = Vec<(Option<Regex>, OnceLock<Option<AnchoredRegex>>)>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let compile = |d: &Detector| d.compile().ok();
    let index = detectors::CATALOGUE.iter().position(|c| std::ptr::eq(c, d));
    let cache = CACHE.get_or_init(|| detectors::CATALOGUE.iter().map(|d| (compile(d), OnceLock::new())).collect());
    let (regex, cell) = match index.and_then(|i| cache.get(i)) {
        Some((regex, cell)) => (regex.clone(), Some(cell)),
        None => (compile(d), None),
    };
    let Some(regex) = regex else {
        return Err(BuildError::Detector);
    };
    let anchored = cell.filter(|_| starts_at_anchor(d)).map(|cell| Anchored {
        pattern: d.pattern,
        cell,
        end: detectors::generic::anchored_end(d.id),
    });
    Ok((regex, anchored))
}

/// Whether every match of a catalogue detector starts at its anchor: the
/// pattern's prefixes start with a literal anchor, or the anchor is a
/// code (which starts every match by definition).
fn starts_at_anchor(d: &Detector) -> bool {
    match d.anchor {
        Anchor::Literals(words) => {
            let words: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
            parse(d.pattern, true).is_some_and(|hir| starts_with_anchor(&hir, &words))
        }
        Anchor::CodeAndDigits(_) => true,
        Anchor::Digits { .. } => false,
    }
}

/// A catalogue detector and its literal anchors.
fn compile_builtin(d: &Detector) -> Result<(Compiled, Vec<Vec<u8>>), BuildError> {
    let (regex, anchored) = builtin_regexes(d)?;
    let hir = parse(d.pattern, true).ok_or(BuildError::Detector)?;
    let longest = hir.properties().maximum_len();
    let reach = longest.unwrap_or(DEFAULT_WINDOW);
    let mut set = ByteSet([false; 256]);
    alphabet(&hir, &mut set);
    let back = if anchored.is_some() { 0 } else { reach };
    let literal = matches!(d.anchor, Anchor::Literals(_));
    let (kind, words) = match &d.anchor {
        Anchor::Literals(words) => (Kind::Literal, words.iter().map(|w| w.as_bytes().to_vec()).collect()),
        Anchor::Digits { min, .. } => {
            (Kind::Numeric(Shape::of(d).unwrap_or(Shape::Digits { min: (*min).max(1) })), Vec::new())
        }
        // The region starts at the code.
        Anchor::CodeAndDigits(codes) => (Kind::Numeric(Shape::codes(codes)), Vec::new()),
    };
    let compiled = Compiled {
        id: d.id.to_owned(),
        regex,
        anchored,
        validator: d.validator,
        placeholders: d.rejects_placeholders(),
        keep_last: d.keep_last,
        reach,
        back,
        bounded: longest.is_some(),
        alphabet: set,
        required: required(&hir),
        kind,
        yields: detectors::generic::yields(d.id),
        precheck: detectors::generic::precheck(d.id),
        keywords: if back == 0 { keyed_anchors(d) } else { Vec::new() },
        keyed_value: if back == 0 { keyed_value(d.pattern) } else { None },
        word_start: literal
            && back == 0
            && (starts_with_look(&hir, Look::WordAscii) && words.iter().all(|w| is_word(w.first().copied()))
                || starts_with_look(&hir, Look::WordAsciiNegate) && words.iter().all(|w| !is_word(w.first().copied()))),
    };
    Ok((compiled, words))
}

/// Whether every match of `hir` starts with the assertion `look`.
fn starts_with_look(hir: &Hir, look: Look) -> bool {
    match hir.kind() {
        HirKind::Look(l) => *l == look,
        HirKind::Concat(subs) => subs.first().is_some_and(|sub| starts_with_look(sub, look)),
        HirKind::Capture(cap) => starts_with_look(&cap.sub, look),
        HirKind::Alternation(subs) => subs.iter().all(|sub| starts_with_look(sub, look)),
        _ => false,
    }
}

/// What a `keyed!` value is made of: every byte it can contain, and its
/// fewest bytes.
struct KeyedValue {
    alphabet: ByteSet,
    min: usize,
}

/// The value of `pattern`'s `keyed!` alternations, read from the pattern
/// after each tail to its end, if the pattern is ASCII-only (`(?-u)`, as
/// every keyed pattern of the catalogue is: its classes are bytes). What
/// follows the value there (a `\b`, the rest of a group, other
/// alternatives) only adds bytes to the alphabet, and the fewest bytes
/// read are never more than a match has from its value's first byte on.
fn keyed_value(pattern: &str) -> Option<KeyedValue> {
    let hirs = keyed_value_hirs(pattern.strip_prefix("(?-u)")?)?;
    let mut value: Option<KeyedValue> = None;
    for hir in hirs {
        let value = value.get_or_insert(KeyedValue { alphabet: ByteSet([false; 256]), min: usize::MAX });
        alphabet(&hir, &mut value.alphabet);
        value.min = value.min.min(hir.properties().minimum_len().unwrap_or(0));
    }
    value
}

/// `pattern` after each `keyed!` tail, to its end, parsed ASCII-only
/// (groups opened before the keyword close in it); `None` if one does not
/// parse.
fn keyed_value_hirs(pattern: &str) -> Option<Vec<Hir>> {
    let mut rest = pattern;
    let mut hirs = Vec::new();
    while let Some(at) = rest.find(keyed::TAIL) {
        rest = rest.get(at + keyed::TAIL.len()..).unwrap_or_default();
        hirs.push((0..4).find_map(|n| parse(&format!("(?-u){}{rest}", "(?:".repeat(n)), false))?);
    }
    Some(hirs)
}

/// The anchors of `d` that are keywords of its `keyed!` alternations
/// ([`Compiled::keywords`]). The catalogue starts a pattern with a keyword
/// only in those alternations, and no other anchor of a detector is a
/// prefix of its keywords or starts with one (a test holds every detector
/// to it): a match starts at a keyword only through its assignment.
fn keyed_anchors(d: &Detector) -> Vec<Vec<u8>> {
    let Anchor::Literals(anchors) = d.anchor else { return Vec::new() };
    let words = keyed::keywords(d.pattern);
    anchors.iter().filter(|a| words.contains(a)).map(|a| a.as_bytes().to_vec()).collect()
}

/// A custom pattern. Its regex was built elsewhere (with or without
/// Unicode), so the window is worked out from both readings and its
/// alphabet is every byte.
fn compile_custom_detector(name: String, regex: Regex, anchors: &[Vec<u8>]) -> Compiled {
    let hirs: Vec<Option<Hir>> = vec![parse(regex.as_str(), false), parse(regex.as_str(), true)];
    let longest =
        hirs.iter().map(|h| h.as_ref().and_then(|h| h.properties().maximum_len())).collect::<Option<Vec<_>>>();
    let longest = longest.and_then(|l| l.into_iter().max());
    let reach = longest.unwrap_or(DEFAULT_WINDOW);
    let refs: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
    let prefixed = hirs.iter().all(|h| h.as_ref().is_some_and(|h| starts_with_anchor(h, &refs)));
    let kind = if anchors.is_empty() { Kind::Whole } else { Kind::Literal };
    Compiled {
        id: name,
        regex,
        anchored: None,
        validator: None,
        placeholders: false,
        keep_last: 0,
        reach,
        back: if prefixed { 0 } else { reach },
        bounded: longest.is_some(),
        alphabet: ByteSet::all(),
        required: Vec::new(),
        kind,
        yields: false,
        precheck: None,
        keywords: Vec::new(),
        keyed_value: None,
        word_start: false,
    }
}

/// Literals every match of a custom pattern contains, for use as its
/// anchors in the scanner: taken from the pattern's prefixes, its
/// suffixes, or the prefixes of a part every match goes through
/// (`[a-z]+_key=[0-9]+` gives `_key=`), possibly shortened (any part of a
/// required literal is required too): the set with literals of three or
/// four bytes or more and the fewest of them wins (`(?:foo|bar)_[0-9]+`
/// gives `bar_`, `foo_`). Empty when no set has only literals of two
/// bytes or more and at most `MAX_CUSTOM_ANCHORS` (64) of them, or when the
/// pattern does not parse (as [`compile_custom`](super::custom::compile_custom)
/// parses it, without Unicode); the scanner then runs the pattern over the
/// whole input.
pub fn custom_anchors(pattern: &str) -> Vec<String> {
    let Some(hir) = parse(pattern, false) else { return Vec::new() };
    let mut parts = Vec::new();
    required_parts(&hir, &mut parts);
    let mut sets: Vec<(ExtractKind, Vec<Vec<u8>>)> = Vec::new();
    let mut extract = |part: &Hir, kind: ExtractKind| {
        let seq = Extractor::new().kind(kind.clone()).extract(part);
        if let Some(lits) = seq.literals() {
            sets.push((kind, lits.iter().map(|l| l.as_bytes().to_vec()).collect()));
        }
    };
    extract(&hir, ExtractKind::Suffix);
    for part in parts {
        extract(part, ExtractKind::Prefix);
    }
    // More bytes up to four, then fewer literals, then longer ones.
    type Score = (usize, std::cmp::Reverse<usize>, usize);
    let mut best: Option<(Score, Vec<String>)> = None;
    for (kind, lits) in sets {
        let shortest = lits.iter().map(Vec::len).min().unwrap_or(0);
        for len in 2..=shortest {
            // Each literal cut to `len` bytes (its end for suffixes); an
            // anchor is a string, so a cut that is not UTF-8 rules the
            // length out.
            let cut = |lit: &Vec<u8>| {
                let part = match kind {
                    ExtractKind::Suffix => lit.len().checked_sub(len).and_then(|k| lit.get(k..)),
                    _ => lit.get(..len),
                };
                part.and_then(|p| std::str::from_utf8(p).ok()).map(str::to_owned)
            };
            let Some(cuts) = lits.iter().map(cut).collect::<Option<Vec<String>>>() else { continue };
            // Sorted and distinct by insertion: a sort of strings would be
            // ~4 KB of the filter's own for these few words.
            let mut words: Vec<String> = Vec::new();
            for word in cuts {
                if let Err(at) = words.binary_search(&word) {
                    words.insert(at, word);
                }
            }
            if words.is_empty() || words.len() > MAX_CUSTOM_ANCHORS {
                continue;
            }
            let score = (len.min(4), std::cmp::Reverse(words.len()), len);
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, words));
            }
        }
    }
    best.map(|(_, words)| words).unwrap_or_default()
}

/// `hir` and the parts of it every match of it goes through.
fn required_parts<'h>(hir: &'h Hir, out: &mut Vec<&'h Hir>) {
    out.push(hir);
    match hir.kind() {
        HirKind::Concat(subs) => {
            for sub in subs {
                required_parts(sub, out);
            }
        }
        HirKind::Capture(cap) => required_parts(&cap.sub, out),
        HirKind::Repetition(rep) if rep.min >= 1 => required_parts(&rep.sub, out),
        _ => {}
    }
}

// ---------------------------------------------------------------- streaming

/// The state of one streamed body, owning no borrowed data (a filter keeps
/// it between body callbacks and passes the scanner each time): feed
/// chunks, get findings with absolute offsets.
///
/// What is kept between chunks: the last two short windows (the longest
/// match of every detector but the long ones: a few hundred bytes for the
/// built-in catalogue), so a secret split across chunks is found when the
/// second arrives; and, while a long detector's match (a PEM key, a JWT)
/// may still grow, everything from its anchor. Memory is bounded by twice
/// the short window plus the longest reach, not by the body; each chunk
/// is scanned with what is kept before it.
#[derive(Debug, Default, Clone)]
pub struct StreamState {
    /// The tail of what has been seen, and its absolute start offset.
    carry: Vec<u8>,
    carry_start: u64,
    /// Findings of the other detectors ending at or before this offset
    /// have been reported.
    reported_to: u64,
    /// Per long detector, the start of the last finding reported.
    long_reported: Vec<Option<u64>>,
}

/// A finding in a stream: absolute byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHit {
    /// Index of the detector in the scanner.
    pub detector: usize,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl StreamState {
    /// The state of a body before its first chunk.
    pub fn new() -> StreamState {
        StreamState::default()
    }

    /// Scans the next chunk with what is kept of the earlier ones, and
    /// returns the findings that are final, sorted by start: a finding
    /// that could still grow with more data is held back until it cannot
    /// or until `end_of_stream`. Every finding is returned once. Held
    /// back, a finding can come a chunk after one that starts later (a
    /// token inside an e-mail address's local part is final before the
    /// address is): a caller that wants body order sorts.
    pub fn feed(&mut self, scanner: &Scanner, chunk: &[u8], end_of_stream: bool) -> Vec<StreamHit> {
        let mut buffer = std::mem::take(&mut self.carry);
        buffer.extend_from_slice(chunk);
        let base = self.carry_start;
        let len = buffer.len();
        let short = scanner.short_window;
        let limit = if end_of_stream { len } else { len.saturating_sub(short) };
        let reported = usize::try_from(self.reported_to.saturating_sub(base)).unwrap_or(usize::MAX);
        self.long_reported.resize(scanner.detectors.len(), None);
        let (hits, anchors) = scanner.scan_with_anchors(&buffer);
        let absolute = |at: usize| base + at as u64;
        let mut out = Vec::new();
        // Keep two short windows, and any long match that may still grow
        // or reaches into them (from one byte before it, for `\b`).
        let mut keep_from = len.saturating_sub(2 * short);
        for hit in hits {
            let i = hit.detector;
            if scanner.long.get(i).copied().unwrap_or(false) {
                let reach = scanner.detectors.get(i).map_or(0, |d| d.reach);
                let done = end_of_stream || hit.span.start + reach < len;
                let last = self.long_reported.get(i).copied().flatten();
                if done && last.is_none_or(|s| absolute(hit.span.start) > s) {
                    out.push(StreamHit { detector: i, start: absolute(hit.span.start), end: absolute(hit.span.end) });
                    if let Some(slot) = self.long_reported.get_mut(i) {
                        *slot = Some(absolute(hit.span.start));
                    }
                }
                if !done || hit.span.end > keep_from {
                    keep_from = keep_from.min(hit.span.start.saturating_sub(1));
                }
            } else if hit.span.end > reported && hit.span.end <= limit {
                out.push(StreamHit { detector: i, start: absolute(hit.span.start), end: absolute(hit.span.end) });
            }
        }
        if !end_of_stream {
            for &(start, i, _) in &anchors {
                let open = scanner.long.get(i).copied().unwrap_or(false)
                    && start + scanner.detectors.get(i).map_or(0, |d| d.reach) >= len;
                if open {
                    keep_from = keep_from.min(start.saturating_sub(1));
                }
            }
        }
        self.reported_to = self.reported_to.max(absolute(limit));
        out.sort_unstable_by_key(|h| (h.start, h.end, h.detector));
        self.carry = buffer.split_off(keep_from.min(len));
        self.carry_start = absolute(keep_from.min(len));
        out
    }

    /// Bytes kept between chunks.
    pub fn retained(&self) -> usize {
        self.carry.len()
    }

    /// Bytes fed so far: the stream's end, as an offset.
    pub fn seen(&self) -> u64 {
        self.carry_start + self.carry.len() as u64
    }
}

/// Streaming for one body with a borrowed scanner: [`StreamState`] with the
/// scanner at hand, and offsets as `usize`.
pub struct Stream<'s> {
    scanner: &'s Scanner,
    state: StreamState,
}

impl<'s> Stream<'s> {
    /// A new stream.
    pub fn new(scanner: &'s Scanner) -> Self {
        Stream { scanner, state: StreamState::new() }
    }

    /// Scans the next chunk; see [`StreamState::feed`].
    pub fn feed(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<Hit> {
        let to_usize = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
        self.state
            .feed(self.scanner, chunk, end_of_stream)
            .into_iter()
            .map(|h| Hit { detector: h.detector, span: to_usize(h.start)..to_usize(h.end) })
            .collect()
    }

    /// Bytes kept between chunks (bounded by twice the short window plus
    /// the longest reach).
    pub fn retained(&self) -> usize {
        self.state.retained()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift generator: the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Data of `a`, `b` and `.`, in stretches of all lengths.
    fn data(rng: &mut Rng, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let byte = [b'a', b'b', b'.'][rng.below(3)];
            let n = [1, 3, 40, 300, 900][rng.below(5)];
            out.extend(std::iter::repeat_n(byte, n.min(len - out.len())));
        }
        out
    }

    /// What a detector's candidates learn of the alphabet around them
    /// answers every question as looking again would: candidates in
    /// order, as the scanner takes them, and anywhere.
    #[test]
    fn a_known_stretch_answers_as_looking_again_would() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut set = ByteSet([false; 256]);
        set.insert_range(b'a', b'b');
        for round in 0..300 {
            let data = data(&mut rng, 4000);
            let mut known = Known::default();
            let mut at = 0;
            for _ in 0..200 {
                at = if round % 2 == 0 { (at + rng.below(60)).min(data.len() - 1) } else { rng.below(data.len()) };
                let len = 1 + rng.below(4);
                let end = (at + len).min(data.len());
                let (back, reach) = (rng.below(1200), rng.below(1200));
                let want_before = set.run_before(&data, at, back);
                assert_eq!(known.before(&set, &data, at, back), want_before, "round {round}: before {at}");
                if data[at..end].iter().all(|&b| set.contains(b)) {
                    known.join(at, end);
                }
                let want_after = set.run_after(&data, end, reach);
                assert_eq!(known.after(&set, &data, end, reach), want_after, "round {round}: after {end}");
                let far = 2 * reach;
                assert_eq!(known.after(&set, &data, end, far), set.run_after(&data, end, far), "round {round}");
            }
        }
    }

    /// A search a slice of the data at a time finds what one search over
    /// all of it finds, wherever it starts: patterns with alternatives of
    /// different lengths, word boundaries and an end-of-text anchor, over
    /// data where matches and near-misses run across the slices' ends
    /// (slices as short as the patterns allow, so that every way a match
    /// can meet a slice's end comes up).
    #[test]
    fn a_search_by_slices_finds_what_one_search_finds() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let patterns = [
            r"(?-u)\b(?:ab{0,2}c|ab{0,3})\b",
            r"(?-u)\b(?:a[ab]{0,30}c|a[ab]{0,12})\b",
            r"(?:ab|a)(?:b{2,50}c)?",
            r"b{3,100}c?$",
            r"c[ab ]{1,3}c",
        ];
        for pattern in patterns {
            let regex = Regex::new(pattern).unwrap();
            let d = compile_custom_detector(pattern.to_owned(), regex.clone(), &[]);
            assert!(d.bounded, "{pattern}");
            let mut matches = 0;
            for _ in 0..40 {
                let len = 500 + rng.below(500);
                let mut hay = Vec::with_capacity(len + 4);
                while hay.len() < len {
                    let byte = [b'a', b'b', b'c', b' '][rng.below(4)];
                    hay.extend(std::iter::repeat_n(byte, [1, 1, 2, 3, 5, 20][rng.below(6)]));
                }
                hay.extend_from_slice(b"bbbb");
                for _ in 0..20 {
                    let at = rng.below(hay.len());
                    let want = regex.find_at(&hay, at).map(|m| m.range());
                    matches += usize::from(want.is_some());
                    for slice in [0, 1 + rng.below(64), SLICE] {
                        assert_eq!(d.find_by_slices(&hay, at, slice), want, "{pattern} from {at}, slices of {slice}");
                    }
                }
            }
            assert!(matches > 100, "{pattern}: {matches}");
        }
    }

    /// The vendor detectors whose keyword anchors are checked for an
    /// assignment before their regex runs: every `keyed!` detector whose
    /// matches start at its anchor, with its keywords that are anchors.
    #[test]
    fn keyword_anchors_of_the_keyed_detectors() {
        let all: Vec<_> = detectors::CATALOGUE.iter().collect();
        let scanner = Scanner::new(&all, Vec::new()).unwrap();
        let mut checked = 0;
        for (d, c) in all.iter().zip(scanner.detectors()) {
            if keyed::keywords(d.pattern).is_empty() {
                assert!(c.keywords.is_empty(), "{}", d.id);
                continue;
            }
            assert_eq!(c.keywords.is_empty(), c.back != 0, "{}: {:?}", d.id, c.keywords);
            checked += usize::from(!c.keywords.is_empty());
        }
        assert!(checked >= 17, "{checked}");
        let sentry = scanner.detectors().iter().find(|c| c.id == "sentry_token").unwrap();
        assert_eq!(sentry.keywords, [&b"sentry"[..], b"Sentry", b"SENTRY"]);
    }

    /// Every `keyed!` pattern's value starts with a byte
    /// [`keyed::starts_value`] takes: the keyword guard reads the value's
    /// first byte with it ([`keyed::tail_may_follow`]). The value is the
    /// pattern after the tail, to its end (with whatever follows the
    /// value in the pattern: more first bytes, never fewer).
    #[test]
    fn keyed_values_start_with_a_byte_the_guard_takes() {
        /// The bytes a match of `hir` can start with; true if it can be
        /// empty (or start with a look-around only).
        fn first_bytes(hir: &Hir, set: &mut ByteSet) -> bool {
            match hir.kind() {
                HirKind::Empty | HirKind::Look(_) => true,
                HirKind::Literal(lit) => {
                    set.insert_range(lit.0[0], lit.0[0]);
                    false
                }
                HirKind::Class(_) => {
                    alphabet(hir, set);
                    false
                }
                HirKind::Repetition(rep) => first_bytes(&rep.sub, set) || rep.min == 0,
                HirKind::Capture(cap) => first_bytes(&cap.sub, set),
                HirKind::Concat(subs) => subs.iter().all(|sub| first_bytes(sub, set)),
                HirKind::Alternation(subs) => subs.iter().fold(false, |empty, sub| first_bytes(sub, set) | empty),
            }
        }
        let mut checked = 0;
        for d in detectors::CATALOGUE {
            for hir in keyed_value_hirs(d.pattern).unwrap_or_else(|| panic!("{}: a value does not parse", d.id)) {
                let mut first = ByteSet([false; 256]);
                assert!(!first_bytes(&hir, &mut first), "{}: the value can be empty", d.id);
                for b in (0..=255u8).filter(|&b| first.contains(b)) {
                    assert!(keyed::starts_value(Some(b)), "{}: a value can start with {:?}", d.id, b as char);
                }
                checked += 1;
            }
            if d.pattern.contains(keyed::TAIL) {
                // The guard reads the value's fewest bytes too.
                let value = keyed_value(d.pattern).unwrap_or_else(|| panic!("{}: no value read", d.id));
                assert!(value.min >= 20 && !value.alphabet.contains(b' '), "{}: {}", d.id, value.min);
            }
        }
        assert!(checked >= 17, "{checked}");
    }

    /// Every catalogue pattern starts with a keyword of its `keyed!`
    /// alternations only there: the keyword's text appears in the pattern
    /// only in those alternations, and no other anchor of the detector is a
    /// prefix of a keyword or starts with one ([`keyed_anchors`]).
    #[test]
    fn catalogue_patterns_start_with_their_keywords_only_in_their_assignments() {
        let mut checked = 0;
        for d in detectors::CATALOGUE {
            let words = keyed::keywords(d.pattern);
            let Anchor::Literals(anchors) = d.anchor else { continue };
            for k in &words {
                let listed: usize = words.iter().map(|w| w.matches(k).count()).sum();
                assert_eq!(d.pattern.matches(k).count(), listed, "{}: {k} appears outside its alternation", d.id);
                for a in anchors.iter().filter(|a| !words.contains(a)) {
                    assert!(!a.starts_with(k) && !k.starts_with(a), "{}: anchor {a} and keyword {k}", d.id);
                }
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked}");
    }

    /// Findings that give way are dropped exactly where one of another
    /// detector overlaps them, as a test of every pair says.
    #[test]
    fn giving_way_is_decided_as_every_pair_would() {
        let all: Vec<_> = detectors::CATALOGUE.iter().collect();
        let scanner = Scanner::new(&all, Vec::new()).unwrap();
        let id = |name: &str| all.iter().position(|d| d.id == name).unwrap();
        let ids = [id("generic_credential"), id("phone_number"), id("credit_card"), id("us_ssn")];
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        let mut dropped = 0;
        for _ in 0..2000 {
            let hits: Vec<(usize, u64, u64)> = (0..rng.below(12))
                .map(|_| {
                    let start = rng.below(60) as u64;
                    (ids[rng.below(4)], start, start + 1 + rng.below(15) as u64)
                })
                .collect();
            let firm: Vec<_> = hits.iter().filter(|h| !scanner.gives_way(h.0)).collect();
            let want: Vec<_> = hits
                .iter()
                .filter(|h| !scanner.gives_way(h.0) || !firm.iter().any(|f| f.1 < h.2 && h.1 < f.2))
                .copied()
                .collect();
            let mut got = hits.clone();
            scanner.drop_yielding(&mut got, |h| *h);
            dropped += hits.len() - got.len();
            assert_eq!(got, want, "{hits:?}");
        }
        assert!(dropped > 1000, "{dropped}");
    }

    /// Where a detector's required bytes were looked for answers whether a
    /// window holds them as looking again would.
    #[test]
    fn required_bytes_are_answered_as_looking_again_would() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let required = [b'.', b'b'];
        let mut answers = [0usize; 2];
        for round in 0..300 {
            let data = data(&mut rng, 4000);
            let mut seen = Required::default();
            let mut start = 0;
            for _ in 0..200 {
                start = if round % 2 == 0 { (start + rng.below(60)).min(data.len()) } else { rng.below(data.len()) };
                let end = (start + rng.below(1500)).min(data.len());
                let want = required.iter().all(|b| data[start..end].contains(b));
                answers[usize::from(want)] += 1;
                assert_eq!(seen.all_in(&required, &data, start..end), want, "round {round}: {start}..{end}");
            }
        }
        assert!(answers.iter().all(|&n| n > 5000), "{answers:?}");
    }
}
