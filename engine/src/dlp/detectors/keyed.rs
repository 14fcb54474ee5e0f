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

/// Whether the bytes after a keyword (`after`) can start a [`keyed!`]
/// tail and its value: a necessary condition, checked before the regex
/// runs. The identifier tail (`[\w.-]{0,20}?`) ends where the assignment
/// starts, and of its bytes only `.` (of `.=`) can start one, so it ends at
/// a `.=` or at the first byte that is not an identifier's, within 20
/// bytes. Then, after Go's ` string` or not, an optional backslash and
/// quote, up to four blanks (`\s`) and an operator, or the call form's
/// quote, blanks and comma; and after it the value's first byte
/// ([`value_follows`]). A vendor's name as a value (`name:
/// newrelic-infra-agent`, `image: sentry:24`) or in prose fails it within
/// a few bytes, and so does a name that keys something else than a value
/// (`"twilio": "^5.3.0"`, `datadog:` above a nested YAML map). Bytes
/// outside ASCII pass (every keyed pattern is ASCII-only, `(?-u)`; this
/// leaves that to the regex).
///
/// `value` is asked about the bytes from the value's first one on: the
/// detector's own necessary condition on its value ([`Compiled`]'s: its
/// fewest bytes, all of its alphabet).
///
/// [`Compiled`]: crate::dlp::scanner::Compiled
pub fn tail_may_follow(after: &[u8], value: impl Fn(&[u8]) -> bool) -> bool {
    // 20 identifier bytes, ` string`, `\"`, 4 blanks, `:::=`, 5 blanks,
    // `\"` and the value's first byte fit.
    let head = after.get(..after.len().min(64)).unwrap_or_default();
    if !head.is_ascii() {
        return true;
    }
    let ident = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let run = head.iter().take(21).take_while(|b| ident(b)).count();
    if head.windows(2).take(21).any(|w| w == b".=") {
        return true;
    }
    if run > 20 {
        return false;
    }
    let rest = after.get(run..).unwrap_or_default();
    let assignment = |rest: &[u8]| {
        let rest = rest.strip_prefix(b"\\").unwrap_or(rest);
        let rest = match rest.first() {
            Some(b'"' | b'\'' | b'`') => rest.get(1..).unwrap_or_default(),
            _ => rest,
        };
        let blanks = rest.iter().take(4).take_while(|b| is_space(**b)).count();
        let op = rest.get(blanks..).unwrap_or_default();
        let after = |n: usize| value_follows(op.get(n..).unwrap_or_default(), &value);
        match op {
            // `=`, `=>`, `>`; `?=`, `.=`; `:`, `:=`, `::=`, `:::=`.
            [b'=', ..] => after(1) || after(2) && op.get(1) == Some(&b'>'),
            [b'>', ..] => after(1),
            [b'?' | b'.', b'=', ..] => after(2),
            [b':', ..] => {
                let colons = op.iter().take(3).take_while(|&&b| b == b':').count();
                after(1) || op.get(colons) == Some(&b'=') && after(colons + 1)
            }
            // The call form: `\s{0,4}\\?["']` and the value.
            [b',', more @ ..] => {
                let blanks = more.iter().take(5).take_while(|b| is_space(**b)).count();
                let quoted = more.get(blanks..).unwrap_or_default();
                let quoted = quoted.strip_prefix(b"\\").unwrap_or(quoted);
                let starts = quoted.get(1..).unwrap_or_default();
                blanks <= 4
                    && matches!(quoted.first(), Some(b'"' | b'\''))
                    && starts_value(starts.first().copied())
                    && value(starts)
            }
            _ => false,
        }
    };
    assignment(rest) || rest.strip_prefix(b" string").is_some_and(assignment)
}

/// Whether a value can follow an operator, as `\s{0,5}\\?["'`]?` and the
/// value do in [`keyed_tail!`]: no value starts with a blank, a
/// backslash or a quote (a test holds every keyed pattern to
/// [`starts_value`]), so the blanks, the backslash and the quote are
/// all there is before it, and the byte after them starts the value.
fn value_follows(rest: &[u8], value: impl Fn(&[u8]) -> bool) -> bool {
    let blanks = rest.iter().take(6).take_while(|b| is_space(**b)).count();
    let rest = rest.get(blanks..).unwrap_or_default();
    let rest = rest.strip_prefix(b"\\").unwrap_or(rest);
    let rest = match rest.first() {
        Some(b'"' | b'\'' | b'`') => rest.get(1..).unwrap_or_default(),
        _ => rest,
    };
    blanks <= 5 && starts_value(rest.first().copied()) && value(rest)
}

/// Whether `b` can be a keyed value's first byte: every [`keyed!`]
/// pattern's value starts with a word byte or `-`.
pub(crate) fn starts_value(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `\s` of an ASCII pattern.
fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b
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
