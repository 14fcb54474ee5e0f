//! `generic_credential`: a credential of no known vendor, found by the
//! name it is assigned to.
//!
//! The match runs from the credential word of the key name (or the `_`
//! before it: `DB[_PASSWORD=...]`) to the end of the value, quotes
//! excluded, as for the other key/value detectors, so redacting it keeps
//! JSON valid; it starts at its anchor, so the scanner reads one match
//! at each key word it meets, from the bytes ([`credential_end`], held to
//! the pattern by a test), never a search around it. A key name
//! is credential-ish when it *ends* with one of these words (so
//! `token_type`, `passwordPolicy`, `secretKeyRef` and `max_tokens` are not):
//!
//! - `password`, `passwd`, `pwd` (and `PASS` in upper case: `DB_PASS`),
//! - `secret`, `secret_key`,
//! - `token`,
//! - `api_key`, `access_key`, `private_key` (also `apikey`, `api-key`,
//!   `apiKey`, `ApiKey`, `APIKey`, ...),
//! - `credential`, `credentials`.
//!
//! Lower- and upper-case words start the name or follow `_`, `-` or `.`
//! (`DB_PASSWORD`, `x-api-key`, `spring.datasource.password`; not
//! `bypass`, `compass`); a capitalised word may follow anything
//! (`clientSecret`, `ETSYToken`). Names of tokens that are not
//! credentials are left out: CSRF and XSRF tokens, pagination and sync
//! tokens (`nextPageToken`, `continuation_token`, `syncToken`), captcha,
//! authenticity, idempotency and public tokens (matched as names of their
//! own, which the validator refuses).
//!
//! The assignment is any of `=`, `:`, `=>`, `:=`, `?=`, `.=`, `+=`, `::=`,
//! or XML's `>` right after the name, with optional quotes around name and
//! value (also JSON's `\"`). The value is 8 to 128 bytes of printable
//! ASCII up to the first quote, space, `&`, `,`, `;`, `\`, bracket or
//! angle bracket.
//!
//! The value test ([`generic_credential`]): a value is a finding only when
//! it has both letters and digits, is long and varied enough (passwords 8
//! bytes and a Shannon entropy of 2.5 bits per byte, other credentials 12
//! bytes and 3.0 bits), and is not a placeholder. **The placeholder rule**:
//! a value is a placeholder when it is a variable or a reference (starts
//! with `$` or `%`: `$DB_PASSWORD`, `${TOKEN}`, `%PASSWORD%`), a path or a
//! URL (starts with `/`, `./`, `~/`, or contains `://`), a mask (four
//! identical characters in a row: `xxxx`, `****`, `0000`), elided
//! (contains `...` or ends with `..`), counts up (a third or more of its
//! characters are followed by the next one: `12345678`, `abcd1234`), or contains
//! one of the words `example`, `sample`, `placeholder`, `changeme`,
//! `change_me`, `dummy`, `redacted`, `your`, `fake`, `password`, `passwd`,
//! `secret`, `token` (any case). Template syntax (`{{ .Values.x }}`,
//! `<password>`) never matches: braces and angle brackets end a value.
//! A value that is padded base64 of printable text (a Kubernetes Secret's
//! `data:`, a Docker `auth`) is judged by the text it encodes, so
//! `cGFzc3dvcmQ=` (`password`) is a placeholder too.

use super::{validators, Anchor, Detector, Group};

/// Words that make a name credential-ish when the name ends with them and
/// they start a segment: after no word character, or after `_` (the match
/// then starts at the `_`). Every alternative starts with an anchor.
macro_rules! segment_words {
    () => {
        concat!(
            r"password|passwd|pwd|secret|secret_key|secret-key|secretkey|secretKey|token",
            r"|accesstoken|authtoken|apitoken|api_key|api-key|apikey|apiKey|access_key|access-key|accesskey",
            r"|accessKey|private_key|private-key|privatekey|privateKey|credentials?",
            r"|PASSWORD|PASSWD|PWD|PASS|SECRET|SECRET_KEY|SECRET-KEY|SECRETKEY|TOKEN|ACCESSTOKEN|AUTHTOKEN",
            r"|APITOKEN|API_KEY|API-KEY|APIKEY|ACCESS_KEY|ACCESS-KEY|ACCESSKEY|PRIVATE_KEY|PRIVATE-KEY",
            r"|PRIVATEKEY|CREDENTIALS?",
        )
    };
}

/// The same after `_` (`DB_PASSWORD`, `x_api_key`).
macro_rules! underscore_words {
    () => {
        concat!(
            r"password|passwd|pwd|secret|secret_key|secretKey|token|api_key|apikey|apiKey|access_key",
            r"|accessKey|private_key|privateKey|credentials?|PASSWORD|PASSWD|PWD|PASS|SECRET|SECRET_KEY|TOKEN",
            r"|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?",
        )
    };
}

/// Capitalised words, which start a segment wherever they are
/// (`clientSecret`, `ETSYToken`).
macro_rules! capital_words {
    () => {
        r"Password|Passwd|Pwd|Secret|SecretKey|Token|ApiKey|APIKey|AccessKey|PrivateKey|Credentials?"
    };
}

/// Names of tokens that are not credentials. They are matched like the
/// others, so that a match starts at them rather than at the `Token` or
/// `_token` inside them, and the validator refuses them.
macro_rules! not_credentials {
    () => {
        concat!(
            r"page_token|pageToken|PageToken|PAGE_TOKEN|next_token|nextToken|NextToken|NEXT_TOKEN",
            r"|continuation_token|continuationToken|ContinuationToken|sync_token|syncToken|SyncToken",
            r"|csrf_token|csrf-token|csrfToken|CsrfToken|CSRFToken|CSRF_TOKEN|CSRF-TOKEN",
            r"|xsrf_token|xsrf-token|xsrfToken|XsrfToken|XSRFToken|XSRF_TOKEN|XSRF-TOKEN",
            r"|authenticity_token|idempotency_token|idempotencyToken|IdempotencyToken",
            r"|public_token|publicToken|PublicToken|captcha_token|captchaToken",
        )
    };
}

/// The most bytes of a value; the pattern reads one more, and a value that
/// long is refused (it runs on: not a value of this size).
const MAX_VALUE: usize = 128;

/// The `generic_credential` detector.
pub(super) const GENERIC_CREDENTIAL: Detector = Detector {
    id: "generic_credential",
    group: Group::Generic,
    description: "Credential assigned to a credential-ish name (password, secret, token, api_key, access_key, private_key, credentials) in JSON, forms, YAML, env, INI, XML or code; value with letters and digits, entropy checked, placeholders ignored",
    // Every match starts with one of these: the key words in the casings
    // names are written in, after `_`, and the names of tokens that are
    // not credentials. Matches start at their anchor, so the scanner runs
    // an anchored regex there, never a search around it. Lower-case
    // `pass` is left out: it is everywhere in prose, and
    // `password`/`passwd` cover most names.
    anchor: Anchor::Literals(&[
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "accesstoken",
        "authtoken",
        "apitoken",
        "api_key",
        "api-key",
        "apikey",
        "apiKey",
        "access_key",
        "access-key",
        "accesskey",
        "accessKey",
        "private_key",
        "private-key",
        "privatekey",
        "privateKey",
        "credential",
        "PASSWORD",
        "PASSWD",
        "PWD",
        "PASS",
        "SECRET",
        "TOKEN",
        "ACCESSTOKEN",
        "AUTHTOKEN",
        "APITOKEN",
        "API_KEY",
        "API-KEY",
        "APIKEY",
        "ACCESS_KEY",
        "ACCESS-KEY",
        "ACCESSKEY",
        "PRIVATE_KEY",
        "PRIVATE-KEY",
        "PRIVATEKEY",
        "CREDENTIAL",
        "Password",
        "Passwd",
        "Pwd",
        "Secret",
        "Token",
        "ApiKey",
        "APIKey",
        "AccessKey",
        "PrivateKey",
        "Credential",
        "_password",
        "_passwd",
        "_pwd",
        "_secret",
        "_token",
        "_api_key",
        "_apikey",
        "_apiKey",
        "_access_key",
        "_accessKey",
        "_private_key",
        "_privateKey",
        "_credential",
        "_PASSWORD",
        "_PASSWD",
        "_PWD",
        "_PASS",
        "_SECRET",
        "_TOKEN",
        "_API_KEY",
        "_APIKEY",
        "_ACCESS_KEY",
        "_PRIVATE_KEY",
        "_CREDENTIAL",
        "page_token",
        "pageToken",
        "PageToken",
        "PAGE_TOKEN",
        "next_token",
        "nextToken",
        "NextToken",
        "NEXT_TOKEN",
        "continuation_token",
        "continuationToken",
        "ContinuationToken",
        "sync_token",
        "syncToken",
        "SyncToken",
        "csrf_token",
        "csrf-token",
        "csrfToken",
        "CsrfToken",
        "CSRFToken",
        "CSRF_TOKEN",
        "CSRF-TOKEN",
        "xsrf_token",
        "xsrf-token",
        "xsrfToken",
        "XsrfToken",
        "XSRFToken",
        "XSRF_TOKEN",
        "XSRF-TOKEN",
        "authenticity_token",
        "idempotency_token",
        "idempotencyToken",
        "IdempotencyToken",
        "public_token",
        "publicToken",
        "PublicToken",
        "captcha_token",
        "captchaToken",
    ]),
    pattern: concat!(
        // The name, from its credential word to its end.
        r"(?-u)(?:\b(?:",
        segment_words!(),
        r")|_(?:",
        underscore_words!(),
        r")|(?:",
        capital_words!(),
        r")|(?:",
        not_credentials!(),
        r"))",
        // The assignment.
        r#"\\?["'`]?(?:>\s{0,8}|[ \t]{0,4}(?:[:?.+]{0,3}=|=>|:)[ \t]{0,4})\\?["'`]?"#,
        // The value, one byte longer than the longest accepted.
        r"[A-Za-z0-9!#$%*/@^_|~-][A-Za-z0-9!#$%*+./:=?@^_|~-]{7,128}",
    ),
    validator: Some(generic_credential),
    keep_last: 0,
};

/// Whether findings of detector `id` give way to an overlapping finding of
/// a detector that does not: the two broad detectors, whose findings a
/// specific one names better (a GitHub token assigned to `GITHUB_TOKEN`
/// is a `github_token`; a +86 mobile number is a `cn_mobile`).
pub fn yields(id: &str) -> bool {
    matches!(id, "generic_credential" | "phone_number")
}

/// A cheap test the scanner runs at a literal anchor (`data`, the anchor's
/// offset) before it builds a window and runs the detector's regex
/// there: false only where no match can contain that occurrence of the
/// anchor. For the detectors whose anchors meet most text that comes to
/// nothing: `+5` in base64, `@` in handles and decorators, URLs without
/// a password, country codes. (`generic_credential` needs none: its match
/// at a key word is read from the bytes, [`credential_end`], as cheaply.)
pub fn precheck(id: &str) -> Option<fn(&[u8], usize) -> bool> {
    match id {
        "phone_number" => Some(super::phone::may_start),
        "iban" => Some(crate::dlp::validators::iban_may_match),
        "password_in_url" => Some(userinfo_follows),
        "email" => Some(|data, at| {
            // The local part ends right before the `@` (no part of the
            // pattern before the domain has an `@` of its own), and a
            // domain label of at most 63 bytes starts right after it and
            // ends with a dot: `image@sha256:…` digests are not addresses.
            let local = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
            let label = || {
                let rest = data.get(at + 1..).unwrap_or_default();
                rest.iter().take(64).take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count()
            };
            at.checked_sub(1).and_then(|k| data.get(k)).is_some_and(local)
                && data.get(at + 1).is_some_and(u8::is_ascii_alphanumeric)
                && {
                    let label = label();
                    label <= 63 && data.get(at + 1 + label) == Some(&b'.')
                }
        }),
        _ => None,
    }
}

/// `password_in_url`'s necessary condition at its `://` (`data`, the
/// anchor's offset): the userinfo the pattern needs right after it. A
/// match holds one `://` (no other part takes a `/`), and after it the
/// user (up to 64 bytes, no `:`), `:`, the password (1 to 128 bytes, no
/// `@`), `@` and a host's first byte: each part ends at the first byte it
/// cannot take, so the bytes decide. Nearly every URL in real payloads has
/// no password (`https://registry.npmjs.org/…`, `git+ssh://git@host`),
/// and each ran the pattern over a window of ~300 bytes: a
/// `package-lock.json` spent half its scan there.
fn userinfo_follows(data: &[u8], at: usize) -> bool {
    let ends_part = |b: u8| {
        b.is_ascii_whitespace()
            || b == 0x0b
            || matches!(b, b'@' | b'/' | b'?' | b'#' | b'[' | b']' | b'"' | b'\'' | b'<' | b'>' | b'\\')
    };
    // A part longer than its bound is followed by one more of its bytes,
    // not by the `:` or `@` after it.
    let rest = data.get(at + 3..).unwrap_or_default();
    let user = rest.iter().take(64).take_while(|&&b| !ends_part(b) && b != b':').count();
    if rest.get(user) != Some(&b':') {
        return false;
    }
    let rest = rest.get(user + 1..).unwrap_or_default();
    let password = rest.iter().take(128).take_while(|&&b| !ends_part(b)).count();
    password > 0
        && rest.get(password) == Some(&b'@')
        && rest.get(password + 1).is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'[')
}

/// The end of a match that starts at a candidate (the data, the
/// candidate's offset), if one does.
pub type EndAt = fn(&[u8], usize) -> Option<usize>;

/// The end of the catalogue detector `id`'s match that starts at a
/// candidate (`data`, the candidate's offset), read from the bytes where
/// that is far cheaper than the anchored regex ([`credential_end`]).
pub fn anchored_end(id: &str) -> Option<EndAt> {
    match id {
        "generic_credential" => Some(credential_end),
        _ => None,
    }
}

/// The end of the `generic_credential` match that starts at `at` in `hay`,
/// if one does: what the detector's regex, anchored there, finds, read
/// from the bytes directly (the names in the pattern's order, then the
/// one way on [`assignment_and_value`] has).
/// The regex costs ~40,000 instructions a run on the PikeVM (the name
/// alternation is ~130 literals, the value a repetition of 128), and every
/// `csrf_token=…` of a form body ran it; this costs a few hundred. A test
/// holds the two to each other at every offset of generated text.
pub fn credential_end(hay: &[u8], at: usize) -> Option<usize> {
    let names = credential_names();
    let first = usize::from(*hay.get(at)?);
    let from = usize::from(names.starts.get(first).copied().unwrap_or(0));
    let to = usize::from(names.starts.get(first + 1).copied().unwrap_or(0));
    let boundary = !crate::dlp::scanner::is_word(at.checked_sub(1).and_then(|p| hay.get(p)).copied());
    let head = crate::dlp::scanner::word_at(hay, at);
    let after_head = hay.get(at + 8..).unwrap_or_default();
    for name in names.list.get(from..to).unwrap_or_default() {
        if matches!(name.kind, NameKind::Segment) && !boundary {
            continue;
        }
        // Most names fit in their head: no call to compare an empty tail
        // (a `bcmp` call each made a body of `_PASSWD.` 2.6 times slower
        // than a `starts_with` per name had, with half the instructions).
        let written = (head ^ name.head) & name.mask == 0 && (name.tail.is_empty() || after_head.starts_with(name.tail));
        if !written {
            continue;
        }
        if let Some(end) = assignment_and_value(hay, at + name.len) {
            return Some(end);
        }
    }
    None
}

/// One of the pattern's names as it is written (a word after `_` with
/// its `_`): its first eight bytes compared at once (`head`, the bytes
/// under `mask`, little-endian), then the bytes after them (`tail`).
struct Name {
    kind: NameKind,
    len: usize,
    head: u64,
    mask: u64,
    tail: &'static [u8],
}

impl Name {
    fn new(kind: NameKind, word: &'static [u8]) -> Name {
        let (head, mask) = crate::dlp::scanner::head_and_mask(word);
        let (prefix, head, mask) = match kind {
            // `_` and the word's first seven bytes.
            NameKind::Underscore => (1, head << 8 | u64::from(b'_'), mask << 8 | 0xff),
            _ => (0, head, mask),
        };
        Name { kind, len: prefix + word.len(), head, mask, tail: word.get(8 - prefix..).unwrap_or_default() }
    }
}

/// How a name of the pattern is written: a segment word after `\b`, a
/// word after `_`, or anywhere (capitalised words, names of tokens that
/// are not credentials).
#[derive(Clone, Copy)]
enum NameKind {
    Segment,
    Underscore,
    Anywhere,
}

/// The pattern's names in its order, `s?` spelled both ways (with the
/// `s` first, as the greedy `?` tries), grouped by the first byte they
/// are written with.
struct Names {
    list: Vec<Name>,
    /// Where the names starting with each byte begin in `list`.
    starts: [u16; 257],
}

fn credential_names() -> &'static Names {
    static NAMES: std::sync::OnceLock<Names> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut all: Vec<(NameKind, &'static [u8])> = Vec::new();
        let groups: [(NameKind, &'static str); 4] = [
            (NameKind::Segment, segment_words!()),
            (NameKind::Underscore, underscore_words!()),
            (NameKind::Anywhere, capital_words!()),
            (NameKind::Anywhere, not_credentials!()),
        ];
        for (kind, words) in groups {
            for word in words.split('|') {
                // `credentials?`: with its last letter, then without.
                match word.strip_suffix('?') {
                    Some(longer) => {
                        all.push((kind, longer.as_bytes()));
                        all.push((kind, longer.as_bytes().split_last().map_or(&[][..], |(_, stem)| stem)));
                    }
                    None => all.push((kind, word.as_bytes())),
                }
            }
        }
        let first = |&(kind, word): &(NameKind, &[u8])| match kind {
            NameKind::Underscore => Some(b'_'),
            _ => word.first().copied(),
        };
        let mut list = Vec::with_capacity(all.len());
        let mut starts = [0u16; 257];
        for (b, start) in (0..=255u8).zip(starts.iter_mut()) {
            *start = u16::try_from(list.len()).unwrap_or(u16::MAX);
            list.extend(all.iter().filter(|n| first(n) == Some(b)).map(|&(kind, word)| Name::new(kind, word)));
        }
        if let Some(end) = starts.last_mut() {
            *end = u16::try_from(list.len()).unwrap_or(u16::MAX);
        }
        Names { list, starts }
    })
}

/// The rest of the pattern after a name ending at `p`:
/// `\\?["'`]?(?:>\s{0,8}|[ \t]{0,4}(?:[:?.+]{0,3}=|=>|:)[ \t]{0,4})\\?["'`]?`
/// and the value, `[A-Za-z0-9!#$%*/@^_|~-]` and 7 to 128 more of those or
/// `+./:=?`: the value's end. Every choice the regex has here has one way
/// on at most: an optional byte left out leaves that byte for a part that
/// cannot take it, blanks (or spaces after `>`) are not what follows them,
/// and of `[:?.+]{0,3}=`, `=>` and `:` one at most reaches a value (nor
/// does a name end where a longer one goes on: names are letters, `_` and
/// `-`, none of which can start an assignment). So the one way found is
/// the regex's.
fn assignment_and_value(hay: &[u8], p: usize) -> Option<usize> {
    let p = past(hay, p, |b| b == b'\\');
    let p = past(hay, p, is_quote);
    let assigned = if hay.get(p) == Some(&b'>') {
        p + 1 + run(hay, p + 1, 8, |b| b.is_ascii_whitespace() || b == 0x0b)
    } else {
        let q = p + run(hay, p, 4, is_blank);
        let signs = run(hay, q, 3, |b| matches!(b, b':' | b'?' | b'.' | b'+'));
        let operator_end = if hay.get(q..q + 2) == Some(b"=>".as_slice()) {
            q + 2
        } else if hay.get(q + signs) == Some(&b'=') {
            q + signs + 1
        } else if hay.get(q) == Some(&b':') {
            q + 1
        } else {
            return None;
        };
        operator_end + run(hay, operator_end, 4, is_blank)
    };
    let p = past(hay, assigned, |b| b == b'\\');
    let p = past(hay, p, is_quote);
    let starts = hay.get(p).is_some_and(|&b| VALUE_BYTES.get(usize::from(b)) == Some(&FIRST));
    let more = run(hay, p + 1, MAX_VALUE, |b| VALUE_BYTES.get(usize::from(b)).is_some_and(|c| c & (FIRST | MORE) != 0));
    (starts && more >= 7).then_some(p + 1 + more)
}

/// Past an optional byte (`x?`) at `p`.
fn past(hay: &[u8], p: usize, is: impl Fn(u8) -> bool) -> usize {
    p + usize::from(hay.get(p).is_some_and(|&b| is(b)))
}

/// How many bytes from `p` on are `is`, up to `most`.
fn run(hay: &[u8], p: usize, most: usize, is: impl Fn(u8) -> bool) -> usize {
    hay.get(p..).unwrap_or_default().iter().take(most).take_while(|&&b| is(b)).count()
}

fn is_quote(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'`')
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// What a byte can be in a `generic_credential` value, by byte
/// ([`assignment_and_value`]): a value's first byte (and any other), or a
/// value's byte after the first only. Built at compile time, where an
/// index out of bounds would fail the build.
#[allow(clippy::indexing_slicing)]
static VALUE_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let first = matches!(c, b'!' | b'#' | b'$' | b'%' | b'*' | b'/' | b'@' | b'^' | b'_' | b'|' | b'~' | b'-');
        table[b] = if c.is_ascii_alphanumeric() || first {
            FIRST
        } else if matches!(c, b'+' | b'.' | b':' | b'=' | b'?') {
            MORE
        } else {
            0
        };
        b += 1;
    }
    table
};
/// [`VALUE_BYTES`]: a byte a value can start with (and have anywhere).
const FIRST: u8 = 2;
/// [`VALUE_BYTES`]: a byte a value can have after its first (`+./:=?`).
const MORE: u8 = 4;

/// How the names of tokens that are not credentials start (see
/// `not_credentials!`).
const NOT_CREDENTIALS: &[&[u8]] = &[
    b"csrf",
    b"xsrf",
    b"authenticity",
    b"page",
    b"next",
    b"continuation",
    b"sync",
    b"captcha",
    b"idempotency",
    b"public",
];

/// Words that make a value a placeholder (compared in lower case).
const PLACEHOLDER_WORDS: &[&[u8]] = &[
    b"example",
    b"sample",
    b"placeholder",
    b"changeme",
    b"change_me",
    b"dummy",
    b"redacted",
    b"your",
    b"fake",
    b"password",
    b"passwd",
    b"secret",
    b"token",
];

/// Bytes of a key name.
fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// `generic_credential`: the name is not a non-credential token's, and the
/// value passes the value test (see the module docs).
pub fn generic_credential(m: &[u8]) -> bool {
    let name_len = m.iter().take_while(|&&b| is_name(b)).count();
    let (name, rest) = m.split_at(name_len);
    let value_at = rest
        .iter()
        .take_while(|&&b| matches!(b, b'\\' | b'"' | b'\'' | b'`' | b' ' | b'\t' | b'\r' | b'\n' | b':' | b'=' | b'>' | b'?' | b'.' | b'+'))
        .count();
    let Some(value) = rest.get(value_at..) else { return false };
    let mut lower_name = [0u8; 64];
    let mut n = 0;
    for &b in name.iter().filter(|b| b.is_ascii_alphanumeric()) {
        if let Some(slot) = lower_name.get_mut(n) {
            *slot = b.to_ascii_lowercase();
            n += 1;
        }
    }
    let lower_name = lower_name.get(..n).unwrap_or_default();
    if NOT_CREDENTIALS.iter().any(|w| lower_name.starts_with(w)) {
        return false;
    }
    let password = [b"password".as_slice(), b"passwd", b"pwd", b"pass"].iter().any(|w| lower_name.ends_with(w));
    if value.len() > MAX_VALUE {
        return false;
    }
    // Base64 of printable text (a Kubernetes Secret's `data:`, a Docker
    // `auth`) is judged by the text it encodes.
    match printable_base64(value) {
        Some(text) => credible(&text, password),
        None => credible(value, password),
    }
}

/// The value test: length, letters and digits, entropy, not a
/// placeholder.
fn credible(value: &[u8], password: bool) -> bool {
    // Entropy in sixteenths of a bit per byte: 2.5 and 3.0.
    let (min_len, min_entropy) = if password { (8, 40) } else { (12, 48) };
    value.len() >= min_len
        && value.iter().any(u8::is_ascii_alphabetic)
        && value.iter().any(u8::is_ascii_digit)
        && !is_placeholder(value)
        && entropy_at_least(value, min_entropy)
}

/// The text `value` encodes, when it is padded base64 of printable ASCII.
fn printable_base64(value: &[u8]) -> Option<Vec<u8>> {
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    if value.len() % 4 != 0 || !value.iter().all(alphabet) {
        return None;
    }
    let text = validators::base64_decode(value)?;
    (!text.is_empty() && text.iter().all(|b| (0x20..0x7f).contains(b))).then_some(text)
}

/// The placeholder rule (module docs).
fn is_placeholder(value: &[u8]) -> bool {
    let reference = matches!(value.first(), Some(b'$' | b'%'));
    let path = matches!(value.first(), Some(b'/')) || value.starts_with(b"./") || value.starts_with(b"~/");
    let url = contains(value, b"://");
    let mask = value.windows(4).any(|w| w.iter().all(|&b| Some(&b) == w.first()));
    let elided = contains(value, b"...") || value.ends_with(b"..");
    // Counting up (`12345678`, `abcd1234`): a third of the steps or more.
    let steps = value.windows(2).filter(|w| w.first().map(|&b| b.wrapping_add(1)) == w.get(1).copied()).count();
    let sequence = 3 * steps >= value.len().saturating_sub(1);
    let mut lower = [0u8; MAX_VALUE];
    let n = value.len().min(MAX_VALUE);
    for (slot, b) in lower.iter_mut().zip(value) {
        *slot = b.to_ascii_lowercase();
    }
    let lower = lower.get(..n).unwrap_or_default();
    reference || path || url || mask || elided || sequence || PLACEHOLDER_WORDS.iter().any(|w| contains(lower, w))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `c * log2(c)` in sixteenths of a bit, for counts up to 129 (a value
/// is at most 129 bytes): entropy without floating point, which the
/// filter would pay for in size.
const C_LOG2_C: [u16; 130] = [
    0, 0, 32, 76, 128, 186, 248, 314, 384, 456, 532, 609, 688, 770, 853, 938, 1024, 1112, 1201, 1291, 1383, 1476,
    1570, 1665, 1761, 1858, 1955, 2054, 2154, 2254, 2355, 2457, 2560, 2663, 2768, 2872, 2978, 3084, 3191, 3298,
    3406, 3515, 3624, 3733, 3843, 3954, 4065, 4177, 4289, 4402, 4515, 4629, 4743, 4857, 4972, 5088, 5203, 5320,
    5436, 5553, 5671, 5788, 5907, 6025, 6144, 6263, 6383, 6503, 6623, 6744, 6865, 6986, 7108, 7230, 7352, 7475,
    7597, 7721, 7844, 7968, 8092, 8216, 8341, 8466, 8591, 8717, 8843, 8969, 9095, 9221, 9348, 9475, 9603, 9730,
    9858, 9986, 10115, 10243, 10372, 10501, 10630, 10760, 10889, 11019, 11150, 11280, 11411, 11541, 11672, 11804,
    11935, 12067, 12199, 12331, 12463, 12596, 12728, 12861, 12994, 13128, 13261, 13395, 13529, 13663, 13797, 13932,
    14066, 14201, 14336, 14471
];

/// Whether the Shannon entropy of the bytes of `value` is at least
/// `sixteenths` / 16 bits per byte: `n log2 n - sum c log2 c >= H n`.
fn entropy_at_least(value: &[u8], sixteenths: u32) -> bool {
    let mut counts = [0u8; 256];
    for &b in value {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c = c.saturating_add(1);
        }
    }
    let term = |c: usize| C_LOG2_C.get(c).copied().map_or(u32::MAX, u32::from);
    let n = value.len();
    let sum: u32 = counts.iter().map(|&c| term(usize::from(c))).fold(0, u32::saturating_add);
    term(n).saturating_sub(sum) >= sixteenths.saturating_mul(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert!(generic_credential(b"password=hunter22"));
        assert!(generic_credential(br#"api_key": "Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB"#));
        assert!(!generic_credential(b"password=aaaa1111"));
        assert!(!generic_credential(b"password=changeme1"));
        assert!(!generic_credential(b"token=abcdefghijklmnop"));
        assert!(!generic_credential(b"nextPageToken=Zf3D0LXCM3EIMbgJpUNnkRtO"));
        assert!(!generic_credential(b"api_key=${API_KEY_2024}"));
        assert!(!generic_credential(b"secret=https://vault/v1/k8"));
        assert!(entropy_at_least(b"abcd", 32) && !entropy_at_least(b"abcd", 33));
        assert!(entropy_at_least(b"hunter22", 40) && !entropy_at_least(b"aaaa1111", 17));
    }
}
