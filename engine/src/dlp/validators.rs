//! Validators: the checks a regex cannot express (check digits, number
//! ranges, decoded contents, exact token lengths).
//!
//! Every validator takes the whole matched bytes, separators included, and
//! strips what it does not need itself, so a detector's `validator` is just
//! a function pointer. None of them panics on any input; all run only on
//! candidates the detector's regex has already found, so they favour
//! clarity over speed.

/// The ASCII digits of `m`, in order (separators such as `' '` and `'-'`
/// dropped).
fn digits(m: &[u8]) -> impl DoubleEndedIterator<Item = u8> + Clone + '_ {
    m.iter().filter(|b| b.is_ascii_digit()).map(|b| b - b'0')
}

/// The digits of `m` as a number, if there are at most 18 of them.
fn number(m: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    for (i, d) in digits(m).enumerate() {
        if i >= 18 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

/// The number formed by the first `k` digits of `m` (0 if shorter).
fn prefix(m: &[u8], k: usize) -> u32 {
    digits(m).take(k).fold(0, |n, d| n * 10 + u32::from(d))
}

// ---------------------------------------------------------------- cards

/// Luhn (mod 10) over the digits of `m`; separators are ignored. False for
/// fewer than two digits.
pub fn luhn(m: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for (i, d) in digits(m).rev().enumerate() {
        let d = u32::from(d);
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
        count += 1;
    }
    count >= 2 && sum % 10 == 0
}

/// A payment card brand, recognised by its issuer prefix (IIN) and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardBrand {
    /// `4`, 13, 16 or 19 digits.
    Visa,
    /// `51`–`55` and the 2-series `2221`–`2720`, 16 digits.
    Mastercard,
    /// `34`, `37`, 15 digits.
    Amex,
    /// `6011`, `644`–`649`, `65`, 16–19 digits.
    Discover,
    /// `3528`–`3589`, 16–19 digits.
    Jcb,
    /// `300`–`305`, `3095`, `36`, `38`, `39`, 14–19 digits.
    Diners,
    /// `62` (including the `622126`–`622925` range co-branded with
    /// Discover), 16–19 digits.
    UnionPay,
    /// `5018`, `5020`, `5038`, `5893`, `6304`, `6759`, `6761`–`6763`,
    /// 13–19 digits (its 12-digit cards are too short to tell from other
    /// numbers).
    Maestro,
    /// Denmark's `5019`, 16 digits.
    Dankort,
    /// Airline cards: `1`, 15 digits.
    Uatp,
    /// Russia's `2200`–`2204`, 16–19 digits.
    Mir,
    /// India's `60` (but `6011`), `81`, `82`, `508`, 16 digits.
    RuPay,
    /// Turkey's `9792`, 16 digits.
    Troy,
    /// Nigeria's `506099`–`506198`, 16–19 digits.
    Verve,
}

/// The brand of the card number in `m` (digits only; separators are
/// ignored), or `None` when no brand the catalogue knows has that prefix
/// and length.
pub fn card_brand(m: &[u8]) -> Option<CardBrand> {
    let len = digits(m).count();
    brand(prefix(m, 6), len)
}

/// The brand of a card number of `len` digits whose first six are `p6`.
fn brand(p6: u32, len: usize) -> Option<CardBrand> {
    // Every brand has 13 to 19 digits.
    if !(13..=19).contains(&len) {
        return None;
    }
    let p4 = p6 / 100;
    let (p1, p2, p3) = (p4 / 1000, p4 / 100, p4 / 10);
    if p2 == 34 || p2 == 37 {
        (len == 15).then_some(CardBrand::Amex)
    } else if p1 == 4 {
        matches!(len, 13 | 16 | 19).then_some(CardBrand::Visa)
    } else if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
        (len == 16).then_some(CardBrand::Mastercard)
    } else if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 {
        (16..=19).contains(&len).then_some(CardBrand::Discover)
    } else if (3528..=3589).contains(&p4) {
        (16..=19).contains(&len).then_some(CardBrand::Jcb)
    } else if (300..=305).contains(&p3) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39 {
        (14..=19).contains(&len).then_some(CardBrand::Diners)
    } else if p2 == 62 {
        (16..=19).contains(&len).then_some(CardBrand::UnionPay)
    } else if matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761..=6763) {
        Some(CardBrand::Maestro)
    } else if p4 == 5019 {
        (len == 16).then_some(CardBrand::Dankort)
    } else if p1 == 1 {
        (len == 15).then_some(CardBrand::Uatp)
    } else if (2200..=2204).contains(&p4) {
        (16..=19).contains(&len).then_some(CardBrand::Mir)
    } else if p2 == 60 || p2 == 81 || p2 == 82 || p3 == 508 {
        (len == 16).then_some(CardBrand::RuPay)
    } else if p4 == 9792 {
        (len == 16).then_some(CardBrand::Troy)
    } else if (506_099..=506_198).contains(&p6) {
        (16..=19).contains(&len).then_some(CardBrand::Verve)
    } else {
        None
    }
}

/// `credit_card`: a major brand's prefix and length, and the Luhn check.
/// The scanner calls it for every 13- to 19-digit number it sees, so a
/// plain number's first digit and length come first, then the Luhn sum
/// eight digits at a time (it rejects nine numbers in ten), and the brand
/// only after.
pub fn credit_card(m: &[u8]) -> bool {
    // One pass from the right: the group lengths (one run, or the groups
    // cards are printed in: a group before them, which the pattern takes
    // in, makes a longer number) and the Luhn sum, every second digit from
    // the right doubled and its digits summed. The scanner calls this for
    // every plain run of 13 to 19 digits: it is the hot path on numeric
    // JSON.
    if let Some(words) = plain_words(m) {
        // Most long numbers in JSON (timestamps, ids) cannot be a card:
        // their first digit and length say so before the sum.
        let n = m.len();
        return m.first().is_some_and(|&d| card_length(d, n))
            && luhn_sum_words(words) % 10 == 0
            && brand(prefix(m, 6), n).is_some();
    }
    const DOUBLED: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];
    let mut groups = [0usize; 5];
    let mut group = 0;
    let (mut len, mut sum) = (0usize, 0u32);
    for &b in m.iter().rev() {
        if b == b' ' || b == b'-' {
            group += 1;
            if group == groups.len() {
                return false;
            }
            continue;
        }
        if let Some(slot) = groups.get_mut(group) {
            *slot += 1;
        }
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            let d = usize::from(d);
            sum += if len % 2 == 1 { DOUBLED.get(d).copied().unwrap_or(0) } else { d as u32 };
            len += 1;
            if len > 19 {
                return false;
            }
        }
    }
    // Right to left: one run, 4-4-4-4, 4-6-4 or 5-6-4.
    matches!(groups, [_, 0, 0, 0, 0] | [4, 4, 4, 4, 0] | [4 | 5, 6, 4, 0, 0])
        && len >= 13
        && sum % 10 == 0
        && brand(prefix(m, 6), len).is_some()
}

/// Per first digit, bit `n - 13` set when some brand has cards of `n`
/// digits starting with it ([`brand`]; a unit test derives it from there).
/// No card starts with 0 or 7, and 1, 8 and 9 start cards of one length.
const CARD_LENGTHS: [u8; 10] = [0, 0b000_0100, 0b111_1000, 0b111_1110, 0b100_1001, 0b111_1111, 0b111_1111, 0, 0b000_1000, 0b000_1000];

/// Whether a card of `n` digits can start with the digit `first`.
fn card_length(first: u8, n: usize) -> bool {
    let bits = CARD_LENGTHS.get(usize::from(first.wrapping_sub(b'0'))).copied().unwrap_or(0);
    (13..=19).contains(&n) && bits >> (n - 13) & 1 == 1
}

/// `m` when it is 8 to 24 ASCII digits, right-aligned in three
/// little-endian words of digit values (zeros before it), read eight bytes
/// at a time; `None` for anything else. Plain numbers are most of what the
/// scanner hands [`credit_card`].
fn plain_words(m: &[u8]) -> Option<[u64; 3]> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const ZEROS: u64 = ONES * 0x30;
    let n = m.len();
    if !(8..=24).contains(&n) {
        return None;
    }
    let load = |end: usize| m.get(end.wrapping_sub(8)..end).and_then(|s| <[u8; 8]>::try_from(s).ok()).map(u64::from_le_bytes);
    let mut words = [ZEROS; 3];
    for (k, word) in words.iter_mut().rev().enumerate() {
        // The eight bytes ending `8k` bytes before the end; before the
        // start, `0`s.
        *word = match n.checked_sub(8 * k) {
            Some(end) if end >= 8 => load(end)?,
            Some(end) if end > 0 => {
                let pad = 8 * (8 - end);
                load(8)? << pad | ZEROS & ((1 << pad) - 1)
            }
            _ => ZEROS,
        };
        // Every byte 0x30..=0x39: high nibble 3, and still 3 after adding 6.
        let w = *word;
        if w & (ONES * 0xF0) != ZEROS || (w + ONES * 6) & (ONES * 0xF0) != ZEROS {
            return None;
        }
        *word = w - ZEROS;
    }
    Some(words)
}

/// The Luhn sum of a number in [`plain_words`]' form, eight digits at a
/// time: the digits in odd places from the right are doubled, less 9
/// where the double has two digits (a digit of 5 or more).
fn luhn_sum_words(words: [u64; 3]) -> u32 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Bytes 0, 2, 4, 6 of a word: odd places from the right once the
    // number is right-aligned in 24 bytes.
    const DOUBLED: u64 = 0x00FF_00FF_00FF_00FF;
    let mut sum = 0;
    for d in words {
        let (doubled, plain) = (d & DOUBLED, d & !DOUBLED);
        // 1 in the lanes whose doubled digit is 5 or more (no carry: 9 + 0x7B < 0x100).
        let big = ((doubled + ONES * 0x7B) & (ONES * 0x80)) >> 7 & DOUBLED;
        let lanes = plain + 2 * doubled - 9 * big;
        // Eight lanes of at most 9: their sum fits the top byte.
        sum += (lanes.wrapping_mul(ONES) >> 56) as u32;
    }
    sum
}

// ---------------------------------------------------------------- IBAN

/// IBAN length by country (ISO 13616 registry): every country the
/// `iban` detector's pattern lists.
pub const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// A necessary condition for an `iban` match whose country code starts at
/// `at` (the scanner's candidate: two listed capitals, two digits, no word
/// byte before): the country's registered length holds either the
/// electronic form (that many capitals and digits) or the printed one
/// (groups of four and the rest, each after a space or a dash), and no
/// word byte follows, as the pattern's `\b` requires. A crafted body of
/// `GB82 GB82 …` ran the pattern (89 countries' alternation) at every
/// code.
pub fn iban_may_match(data: &[u8], at: usize) -> bool {
    let code = data.get(at..at + 2);
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| Some(c.as_bytes()) == code) else { return false };
    let rest = data.get(at + 4..).unwrap_or_default();
    let char = |k: usize| rest.get(k).is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let ends = |k: usize| !super::scanner::is_word(rest.get(k).copied());
    let bban = len.saturating_sub(4);
    if (0..bban).all(char) && ends(bban) {
        return true;
    }
    // Printed: a separator before each group of four and before the rest.
    let mut k = 0;
    let mut left = bban;
    while left > 0 {
        let group = left.min(4);
        if !matches!(rest.get(k), Some(b' ' | b'-')) || !(k + 1..k + 1 + group).all(char) {
            return false;
        }
        k += 1 + group;
        left -= group;
    }
    ends(k)
}

/// `iban`: the country's registered length and the ISO 7064 mod-97-10
/// check (the number, with its first four characters moved to the end and
/// letters as 10–35, is 1 mod 97). Spaces are ignored; lowercase letters
/// are not accepted.
pub fn iban_mod97(m: &[u8]) -> bool {
    let chars: Vec<u8> = m.iter().copied().filter(|b| *b != b' ' && *b != b'-').collect();
    let (Some(country), Some(check)) = (chars.get(..2), chars.get(2..4)) else { return false };
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == country) else { return false };
    if chars.len() != len || !check.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let (head, tail) = chars.split_at(4);
    let mut rem: u32 = 0;
    for &c in tail.iter().chain(head) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

// ---------------------------------------------------------------- national ids

/// Whether `year-month-day` is a calendar date.
fn is_date(year: u32, month: u32, day: u32) -> bool {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// GB 11643-1999 province codes (first two digits): the mainland provinces,
/// plus 71 (Taiwan), 81 (Hong Kong), 82 (Macao) and 83 (residence permits
/// for Taiwan residents).
fn cn_province(code: u32) -> bool {
    matches!(code, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83)
}

/// `cn_resident_id`: an 18-character PRC resident identity number: a known
/// province code, a birth date between 1900 and 2099 that exists, and the
/// GB 11643 (ISO 7064 MOD 11-2) check character (`0`–`9` or `X`/`x`).
/// The 15-digit first-generation numbers have no check digit and are not
/// accepted.
pub fn gb11643(m: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if m.len() != 18 {
        return false;
    }
    let (body, last) = m.split_at(17);
    if !body.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d = |from: usize, to: usize| body.get(from..to).map_or(0, |s| prefix(s, to - from));
    if !cn_province(d(0, 2)) {
        return false;
    }
    let (year, month, day) = (d(6, 10), d(10, 12), d(12, 14));
    if !(1900..=2099).contains(&year) || !is_date(year, month, day) {
        return false;
    }
    let sum: u32 = body.iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let expected = CHECK.get((sum % 11) as usize).copied();
    let got = last.first().map(u8::to_ascii_uppercase);
    expected.is_some() && expected == got
}

/// The Verhoeff multiplication table (dihedral group D5).
const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];

/// The Verhoeff permutation table.
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// The Verhoeff check over the digits of `m` (check digit last);
/// separators are ignored. False with no digits.
pub fn verhoeff(m: &[u8]) -> bool {
    let mut c = 0u8;
    let mut any = false;
    for (i, d) in digits(m).rev().enumerate() {
        let p = VERHOEFF_P.get(i % 8).and_then(|row| row.get(usize::from(d))).copied().unwrap_or(0);
        c = VERHOEFF_D.get(usize::from(c)).and_then(|row| row.get(usize::from(p))).copied().unwrap_or(1);
        any = true;
    }
    any && c == 0
}

/// `in_aadhaar`: 12 digits, the first not 0 or 1 (UIDAI never issues
/// those), and the Verhoeff check digit; no digit group of a longer
/// grouped number, nor a UUID's first or last group, before or after them
/// (the pattern takes one in), and after the word Aadhaar, the 12 digits
/// in one run ending the match.
pub fn in_aadhaar(m: &[u8]) -> bool {
    let keyword = m.first().is_some_and(u8::is_ascii_alphabetic);
    let run_at_end = m.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    // Grouped with colons: exactly the two between the groups (a third is
    // a longer, IPv6-like sequence the pattern took in).
    let colons = m.iter().filter(|b| **b == b':').count();
    let shape = if keyword {
        run_at_end == 12
    } else {
        // A group taken in before starts with a digit or a letter (the
        // keyword case), one after adds digits or ends with a letter.
        m.first().is_some_and(u8::is_ascii_digit)
            && m.last().is_some_and(u8::is_ascii_digit)
            && (colons == 0 || colons == 2)
    };
    shape && digits(m).count() == 12 && digits(m).next().is_some_and(|d| d >= 2) && verhoeff(m)
}

/// `cn_mobile`: a number after a `+` is Chinese only after `+86`.
pub fn cn_mobile(m: &[u8]) -> bool {
    !m.starts_with(b"+") || m.starts_with(b"+86")
}

/// `us_ssn`: area (first three digits) not 000, 666 or 900–999, group
/// (next two) not 00, serial (last four) not 0000. Numbers the SSA
/// published as examples (078-05-1120, 123-45-6789) pass these rules and
/// are detected.
pub fn us_ssn(m: &[u8]) -> bool {
    if digits(m).count() != 9 {
        return false;
    }
    let Some(n) = number(m) else { return false };
    let (area, group, serial) = (n / 1_000_000, (n / 10_000) % 100, n % 10_000);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// `uk_nino`: the National Insurance number's prefix rules: first letter
/// not D, F, I, Q, U or V; second letter not D, F, I, O, Q, U or V; the
/// prefixes BG, GB, KN, NK, NT, TN and ZZ are never allocated; suffix A–D.
/// HMRC's example `QQ 12 34 56 C` is therefore not a valid number.
pub fn uk_nino(m: &[u8]) -> bool {
    let chars: Vec<u8> = m.iter().copied().filter(|b| *b != b' ').collect();
    let [a, b, d @ .., s] = chars.as_slice() else { return false };
    d.len() == 6
        && d.iter().all(u8::is_ascii_digit)
        && !b"DFIQUV".contains(a)
        && a.is_ascii_uppercase()
        && !b"DFIOQUV".contains(b)
        && b.is_ascii_uppercase()
        && !matches!(&[*a, *b], b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ")
        && (b'A'..=b'D').contains(s)
}

// ---------------------------------------------------------------- text and tokens

/// `email`: rejects matches whose "top-level domain" is an image file
/// extension: `icon@2x.png` is a retina asset name, not an address.
pub fn email(m: &[u8]) -> bool {
    if m.windows(3).any(|w| w == b"://") {
        return false;
    }
    let tld = m.rsplit(|b| *b == b'.').next().unwrap_or_default();
    let tld = tld.to_ascii_lowercase();
    !matches!(
        tld.as_slice(),
        b"png" | b"jpg" | b"jpeg" | b"gif" | b"svg" | b"webp" | b"ico" | b"bmp" | b"tif" | b"tiff"
    )
}

/// The length of the run of bytes in `class` that ends `m`.
fn tail_run(m: &[u8], class: impl Fn(u8) -> bool) -> usize {
    m.iter().rev().take_while(|b| class(**b)).count()
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// `aws_secret_access_key`: the value after the key name is exactly 40
/// base64 characters (the pattern reads one more when the run goes on, so
/// a longer run is refused here) and mixes upper case, lower case and a
/// digit or `/`/`+`, as a random key does (placeholders rarely do).
pub fn aws_secret(m: &[u8]) -> bool {
    let n = tail_run(m, is_base64);
    let Some(value) = m.get(m.len() - n..) else { return false };
    n == 40
        && value.iter().any(u8::is_ascii_uppercase)
        && value.iter().any(u8::is_ascii_lowercase)
        && value.iter().any(|b| b.is_ascii_digit() || *b == b'/' || *b == b'+')
}

/// `gcp_api_key`: exactly 39 characters (`AIza` + 35); the pattern reads
/// a 36th when the run goes on.
pub fn gcp_api_key(m: &[u8]) -> bool {
    m.len() == 39
}

/// `sendgrid_api_key`: exactly 69 characters (`SG.` + 22 + `.` + 43); the
/// pattern reads one more when the run goes on.
pub fn sendgrid_api_key(m: &[u8]) -> bool {
    m.len() == 69
}

/// `gitlab_token`: each prefix's own length: 20 to 50 characters for
/// most, 25 for `glimt-`, 50 to 300 for `glagent-`, 64 for `gloas-`, 40
/// for `glptt-`, 20 after an optional 1-5 character id and `_` for `glcbt-`;
/// routable `glpat-` and `glrt-` tokens carry 27-300 characters, a `.` and
/// 9 more. A longer run is not a token (the pattern reads one more).
pub fn gitlab_token(m: &[u8]) -> bool {
    let Some((prefix, body)) = split_once(m, b'-') else { return false };
    if let Some((before, after)) = split_once(body, b'.') {
        return matches!(prefix, b"glpat" | b"glrt") && (27..=300).contains(&before.len()) && after.len() == 9;
    }
    match prefix {
        b"glptt" => body.len() == 40,
        b"glimt" => body.len() == 25,
        b"glagent" => (50..=300).contains(&body.len()),
        b"gloas" => body.len() == 64,
        b"glcbt" => {
            body.len() == 20
                || split_once(body, b'_').is_some_and(|(id, rest)| {
                    (1..=5).contains(&id.len()) && id.iter().all(u8::is_ascii_alphanumeric) && rest.len() == 20
                })
        }
        _ => (20..=50).contains(&body.len()),
    }
}

/// Whether a vendor credential is a placeholder or a published example
/// rather than a key: it contains `EXAMPLE` (AWS's documented
/// `AKIAIOSFODNN7EXAMPLE`; in capitals, so an `example.com` host next to
/// a token does not count), one character six or more times in a row
/// (`ghp_xxxxxxxx…`, `AKIAXXXX…`), sixteen for a digit (numeric ids such as
/// `3111111111111` are not placeholders), or eight or more consecutive
/// ascending letters or digits (`abcdefgh…`, `12345678`). Random keys of
/// the catalogue's lengths almost never do (a run of six equal characters
/// in 40 random base62 characters: about 1 in 25 million).
pub fn placeholder(m: &[u8]) -> bool {
    if m.windows(7).any(|w| w == b"EXAMPLE") {
        return true;
    }
    let (mut same, mut ascending) = (1, 1);
    for pair in m.windows(2) {
        let [a, b] = [pair.first().copied().unwrap_or(0), pair.get(1).copied().unwrap_or(0)];
        same = if a == b { same + 1 } else { 1 };
        ascending = if a.is_ascii_alphanumeric() && b == a.wrapping_add(1) && b.is_ascii_alphanumeric() {
            ascending + 1
        } else {
            1
        };
        let filler = if a.is_ascii_digit() { 16 } else { 6 };
        if same >= filler || ascending >= 8 {
            return true;
        }
    }
    false
}

/// The bytes before and after the first `sep`.
fn split_once(m: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = m.iter().position(|b| *b == sep)?;
    Some((m.get(..at)?, m.get(at + 1..)?))
}

/// `openai_api_key`: at most 100 characters after the `T3BlbkFJ` marker
/// (the pattern reads a 101st when the run goes on).
pub fn openai_api_key(m: &[u8]) -> bool {
    let marker: &[u8] = b"T3BlbkFJ";
    let last = m.windows(marker.len()).rposition(|w| w == marker);
    last.is_some_and(|i| m.len() - i - marker.len() <= 100)
}

/// `anthropic_api_key`: after `sk-ant-<kind><NN>-`, exactly 95 characters
/// ending in `AA`.
pub fn anthropic_api_key(m: &[u8]) -> bool {
    let dashes: Vec<usize> = m.iter().enumerate().filter(|(_, b)| **b == b'-').map(|(i, _)| i).take(3).collect();
    let Some(&third) = dashes.get(2) else { return false };
    m.len() - third - 1 == 95 && m.ends_with(b"AA")
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it) of `data`, a bit
/// at a time: it runs only on candidate tokens, and a lookup table would
/// add 1 KB to the filter.
#[inline(never)]
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Whether `body` is 30 base62 characters followed by their CRC-32 in six
/// base62 digits (`0-9A-Za-z`, most significant first, padded with `0`):
/// the checksum GitHub's classic tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`,
/// `ghr_`) and npm's access tokens (`npm_`) end in. A random string
/// passes one time in 2^32, so this tells a token issued by GitHub or npm
/// from a string typed or generated to look like one.
pub fn base62_crc32(body: &[u8]) -> bool {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let (Some(random), Some(check)) = (body.get(..30), body.get(30..)) else { return false };
    if check.len() != 6 || !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let mut n = crc32(random);
    for &c in check.iter().rev() {
        if BASE62.get((n % 62) as usize) != Some(&c) {
            return false;
        }
        n /= 62;
    }
    n == 0
}

/// `github_token`: a classic token (`gh?_` + 36) carries its checksum
/// ([`base62_crc32`]); a fine-grained `github_pat_` token, whose check is
/// not published, passes.
pub fn github_token(m: &[u8]) -> bool {
    match m.strip_prefix(b"github_pat_".as_slice()) {
        Some(_) => true,
        None => m.get(4..).is_some_and(base62_crc32),
    }
}

/// `npm_token`: an `npm_` token carries its checksum ([`base62_crc32`]);
/// a legacy UUID token on an `.npmrc` line passes.
pub fn npm_token(m: &[u8]) -> bool {
    m.strip_prefix(b"npm_".as_slice()).is_none_or(base62_crc32)
}

/// `pypi_token`: at most 400 characters after the macaroon's fixed
/// `pypi-AgE…` prefix (the pattern reads a 401st when the run goes on).
pub fn pypi_token(m: &[u8]) -> bool {
    let rest = m
        .strip_prefix(b"pypi-AgEIcHlwaS5vcmc".as_slice())
        .or_else(|| m.strip_prefix(b"pypi-AgENdGVzdC5weXBpLm9yZw".as_slice()));
    rest.is_some_and(|r| r.len() <= 400)
}

/// Decodes standard or URL-safe base64, padded or not. `None` on any other
/// byte, misplaced padding or an impossible length.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let s = s.strip_suffix(b"==").or_else(|| s.strip_suffix(b"=")).unwrap_or(s);
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `jwt`: the header decodes to a whole JSON object with an `"alg"`
/// member (JWS and JWE both require one), and the signature is 16 to 1400
/// characters (an RSA-8192 signature is 1366; the pattern reads a 1401st
/// when the run goes on), or empty in an unsecured token (RFC 7519 §6:
/// `"alg":"none"`, whose claims a verifier that accepts `none` trusts),
/// whose payload must decode to a whole JSON object too.
pub fn jwt(m: &[u8]) -> bool {
    let mut parts = m.split(|b| *b == b'.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let object = |part: &[u8]| {
        base64_decode(part).filter(|h| h.first() == Some(&b'{') && h.trim_ascii_end().last() == Some(&b'}'))
    };
    // The header is a whole JSON object (a truncated sample is not).
    let Some(header) = object(header) else { return false };
    if !contains(&header, b"\"alg\"") {
        return false;
    }
    match signature.len() {
        0 => contains(&header, b"\"none\"") && object(payload).is_some(),
        16..=1400 => true,
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `private_key`: the base64 body is not a placeholder: it uses at least
/// 20 distinct base64 characters (a DER key always does; `AAAA…` or
/// `XXXX…` do not).
pub fn pem_body(m: &[u8]) -> bool {
    let mut seen = [false; 256];
    // The body starts after the BEGIN line's closing dashes and stops at
    // the END line, if any: the markers' letters must not count.
    let marker_end = m.get(5..).and_then(|rest| rest.windows(5).position(|w| w == b"-----")).map_or(0, |i| i + 10);
    let body = m.get(marker_end..).unwrap_or_default();
    let end = body.windows(9).position(|w| w == b"-----END ").unwrap_or(body.len());
    for &b in body.get(..end).unwrap_or_default() {
        if is_base64(b) {
            if let Some(slot) = seen.get_mut(usize::from(b)) {
                *slot = true;
            }
        }
    }
    seen.iter().filter(|s| **s).count() >= 20
}

/// `password_in_url`: the password is not an obvious placeholder: not
/// made only of `*` or `x`/`X` (masked or template values such as
/// `****`), not a variable reference (`${…}`, `$(…)`, `{{…}}`, `%s`, an
/// all-caps `$NAME`).
pub fn url_password(m: &[u8]) -> bool {
    let Some(scheme_end) = m.windows(3).position(|w| w == b"://") else { return false };
    let Some(userinfo) = m.get(scheme_end + 3..) else { return false };
    let Some(at) = userinfo.iter().rposition(|b| *b == b'@') else { return false };
    let Some(userinfo) = userinfo.get(..at) else { return false };
    let Some(colon) = userinfo.iter().position(|b| *b == b':') else { return false };
    let Some(password) = userinfo.get(colon + 1..) else { return false };
    let masked = password.iter().all(|b| *b == b'*') || password.iter().all(|b| *b == b'x' || *b == b'X');
    let template = password.starts_with(b"${")
        || password.starts_with(b"$(")
        || password.starts_with(b"{{")
        || password == b"%s"
        || (password.len() > 1
            && password.first() == Some(&b'$')
            && password.iter().skip(1).all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_'));
    !password.is_empty() && !masked && !template && !dictionary_placeholder(password)
}

/// A password that is a documentation template's wording: `my` or `your`
/// and a word for a password (`mypass`, `yourpassword`, `my_secret`; any
/// case). Bare words (`password`, `secret`, `test`) are default passwords
/// people really use, like `guest:guest`, and stay findings.
fn dictionary_placeholder(password: &[u8]) -> bool {
    const WORDS: &[&[u8]] = &[b"pass", b"password", b"passwd", b"pwd", b"secret"];
    let lower = password.to_ascii_lowercase();
    let word = [b"my".as_slice(), b"your"]
        .iter()
        .find_map(|p| lower.strip_prefix(*p))
        .map(|rest| rest.strip_prefix(b"_").or_else(|| rest.strip_prefix(b"-")).unwrap_or(rest));
    word.is_some_and(|w| WORDS.contains(&w))
}

/// `basic_auth_header`: the credentials decode (padded base64, RFC 7617) to
/// mostly printable text containing the `:` between user id and password,
/// so prose such as "Basic auth" or "Basic realm=" is not a finding, nor
/// a JSON object (the header of a JWT sent as `Basic <JWT>`).
pub fn basic_auth(m: &[u8]) -> bool {
    let token = m.rsplit(|b| *b == b' ').next().unwrap_or_default();
    if token.len() % 4 != 0 {
        return false;
    }
    let Some(decoded) = base64_decode(token) else { return false };
    // user:password, in any encoding (RFC 7617 leaves it to the server;
    // Latin-1 passwords are common), but not a JWT or other base64 data:
    // a `:` after a non-empty user name, no control characters, and
    // mostly printable ASCII.
    let printable = decoded.iter().filter(|b| b.is_ascii_graphic() || **b == b' ').count();
    decoded.len() >= 2
        && !decoded.starts_with(b"{\"")
        && decoded.iter().skip(1).any(|b| *b == b':')
        && !decoded.iter().any(|b| b.is_ascii_control())
        && printable * 10 >= decoded.len() * 9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_lengths_are_the_brands() {
        for first in 0..10u32 {
            for n in 13..=19 {
                let any = (first * 100_000..(first + 1) * 100_000).any(|p6| brand(p6, n).is_some());
                assert_eq!(card_length(b'0' + first as u8, n), any, "first digit {first}, {n} digits");
            }
        }
    }
}
