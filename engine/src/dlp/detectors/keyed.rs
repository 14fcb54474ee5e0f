//! What the vendor detectors share: how a vendor keyword reaches its value
//! (`DATADOG_API_KEY = "…"`), and the checks on a value the regex cannot
//! express.
//!
//! A keyword-anchored detector fires only when the vendor's name is part of
//! an identifier (at most 20 more identifier characters, no spaces) that is
//! assigned the value: `=`, `:`, `=>`, `:=`, `::=`, `?=`, `.=`, XML's `>`,
//! or a quoted call argument (`"CF_API_KEY", "…"`), also after Go's type
//! (`var datadogKey string = "…"`). The name in prose
//! ("Datadog is down: …") does not reach a value.
//!
//! The checks are `#[inline(never)]`: they run only on candidates, and the
//! filter's opt-level 3 would otherwise copy them into every validator (the
//! wasm size budget).

/// A keyword alternation (`kw`, a regex fragment), its identifier tail and
/// the assignment up to the value's first byte (opening quote included).
macro_rules! keyed {
    ($kw:literal) => {
        concat!("(?:", $kw, keyed_tail!())
    };
}

/// What follows the keyword alternation in [`keyed!`]: the end of its
/// group, the identifier tail and the assignment. The scanner finds the
/// keywords of a pattern by it ([`keywords`]).
macro_rules! keyed_tail {
    () => {
        concat!(
            r#")[\w.-]{0,20}?(?: string)?(?:\\?["'`]?\s{0,4}(?:=>|\?=|\.=|:{1,3}=|[=:>])\s{0,5}\\?["'`]?"#,
            r#"|\\?["']\s{0,2},\s{0,4}\\?["'])"#,
        )
    };
}

/// [`keyed_tail!`] as a string.
pub(crate) const TAIL: &str = keyed_tail!();

/// The keywords of the [`keyed!`] alternations in `pattern`.
pub fn keywords(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(at) = rest.find(TAIL) {
        // The group opens at the last `(?:` before the tail (keywords are
        // plain words: no parenthesis in them).
        let head = rest.get(..at).unwrap_or_default();
        let open = head.bytes().rposition(|b| b == b'(').unwrap_or(0);
        if let Some(group) = head.get(open..).and_then(|g| g.strip_prefix("(?:")) {
            out.extend(group.split('|'));
        }
        rest = rest.get(at + TAIL.len()..).unwrap_or_default();
    }
    out
}

/// How many bytes after a keyword the assignment of [`keyed!`] shows one
/// of `=`, `:`, `>` or `,` at the latest: 20 identifier bytes, ` string`,
/// a backslash, a quote and 4 blanks before the operator, whose first two
/// bytes (`?=`, `.=`) hold one.
pub const ASSIGNMENT_WITHIN: usize = 20 + 7 + 1 + 1 + 4 + 2;

/// Whether the bytes after a keyword (`after`) can hold a [`keyed!`]
/// assignment: a necessary condition, checked before the regex runs.
pub fn assignment_near(after: &[u8]) -> bool {
    after.iter().take(ASSIGNMENT_WITHIN).any(|b| matches!(b, b'=' | b':' | b'>' | b','))
}

/// The value of a keyword-anchored match: what follows the last quote,
/// space or assignment sign. Only for values whose alphabet has none of
/// them.
#[inline(never)]
pub(super) fn value(m: &[u8]) -> &[u8] {
    let start = m.iter().rposition(|b| b" \t\r\n\"'`=:>,\\".contains(b)).map_or(0, |i| i + 1);
    m.get(start..).unwrap_or_default()
}

/// Whether `v` has both a digit and a letter: random keys do, words,
/// numbers and placeholders (`xxxxxxxx…`, `0000…`) do not.
#[inline(never)]
pub(super) fn digit_and_letter(v: &[u8]) -> bool {
    v.iter().any(u8::is_ascii_digit) && v.iter().any(u8::is_ascii_alphabetic)
}

/// Whether `v` has both upper- and lower-case letters.
#[inline(never)]
pub(super) fn mixed_case(v: &[u8]) -> bool {
    v.iter().any(u8::is_ascii_uppercase) && v.iter().any(u8::is_ascii_lowercase)
}

/// A keyword-anchored value that is random-looking: digits and letters,
/// and no placeholder run.
#[inline(never)]
pub(super) fn keyed_value(m: &[u8]) -> bool {
    digit_and_letter(value(m))
}

/// The length of `m` after the first occurrence of `sep` (0 without it).
#[inline(never)]
pub(super) fn len_after(m: &[u8], sep: &[u8]) -> usize {
    m.windows(sep.len()).position(|w| w == sep).map_or(0, |i| m.len() - i - sep.len())
}
