//! `phone_number`: international phone numbers in E.164 form, as people
//! write them.
//!
//! A match is `+`, the country code and the subscriber number, 8 to 15
//! digits in all, plain (`+442079460958`) or in groups separated by one
//! space, dash or dot, with a group in parentheses (`+44 20 7946 0958`,
//! `+1 (415) 555-2671`, `+44 (0)20 7946 0958`: a `(0)` trunk prefix is
//! not counted). The `+` follows no letter or digit (`1+2345678`,
//! `v1.2+20240101` are not numbers) and the last digit is followed by no
//! letter or digit.
//!
//! The validator ([`phone_number`]) checks what the regex cannot: the
//! country code is one the ITU has assigned ([`COUNTRY_CODES`]), the
//! country code is not split across groups, and the national number has a
//! plausible length and first digit: exactly 10 digits with valid area
//! and exchange codes (first digits 2-9, not N11; area codes N9X and 555
//! are not in service) for +1 (North America), 10 for
//! +7, 9 or 10 for +44, and 7 to 12 elsewhere, never starting with 0
//! (the trunk prefix is dropped after a country code) except in Italy
//! (+39). So UTC offsets (`+0530`, `+1000`), dates (`+2024-01-15`), sums
//! and version build numbers are not numbers. National formats without
//! `+` are out of scope: without the country code they are any digits.
//!
//! A Chinese mobile with +86 is also a `cn_mobile` finding: a policy
//! enabling both reports it once, as `cn_mobile` (phone numbers give way
//! to an overlapping finding of another detector; see
//! [`yields`](super::generic::yields)).

use super::{Anchor, Detector, Group};

/// A necessary condition for a `phone_number` match at the `+` at `at`
/// (the scanner's precheck): no letter, digit or `_` before the `+`
/// (`\B`), and the digits right after it end at a byte that is not one
/// either. Every match ends with a digit followed by no word byte, and
/// only a space, dot, dash or parenthesis can continue it past the first
/// digits; so `+5d` in base64 text is no start.
pub fn may_start(data: &[u8], at: usize) -> bool {
    let word = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
    if at.checked_sub(1).is_some_and(|k| word(data.get(k))) {
        return false;
    }
    let digits = data.get(at + 1..).unwrap_or_default().iter().take_while(|b| b.is_ascii_digit()).count();
    !word(data.get(at + 1 + digits))
}

/// The `phone_number` detector.
pub(super) const PHONE_NUMBER: Detector = Detector {
    id: "phone_number",
    group: Group::Pii,
    description: "International phone number (+, ITU-assigned country code, 8-15 digits, grouped with spaces, dashes, dots or parentheses); national length checked",
    // `+` and the first digit of the country code. A bare `+` would
    // look at every `+` of base64 text; form and query bodies are
    // decoded first, so their `+` (a space) is not seen at all.
    anchor: Anchor::Literals(&["+1", "+2", "+3", "+4", "+5", "+6", "+7", "+8", "+9"]),
    pattern: concat!(
        r"(?-u)\B\+[1-9][0-9]{0,14}",
        r"(?:(?:[ .-]|[ .-]?\([0-9]{1,4}\)[ .-]?)[0-9]{1,12}){0,6}\b",
    ),
    validator: Some(phone_number),
    keep_last: 0,
};

/// The country calling codes the ITU has assigned (E.164; ITU-T
/// Recommendation E.164 Annex to Operational Bulletin), including the
/// international networks and freephone codes. They form a prefix code:
/// at most one is a prefix of a number.
pub const COUNTRY_CODES: &[u16] = &[
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60,
    61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211, 212, 213, 216, 218, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246,
    247, 248, 249, 250, 251, 252, 253, 254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290,
    291, 297, 298, 299, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378,
    379, 380, 381, 382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590,
    591, 592, 593, 594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685,
    686, 687, 688, 689, 690, 691, 692, 800, 808, 850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888, 960,
    961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 992, 993, 994, 995, 996, 998,
];

/// The country code at the start of `digits` and its length.
fn country_code(digits: &[u8]) -> Option<(u16, usize)> {
    let mut code = 0u16;
    for (len, d) in digits.iter().take(3).enumerate() {
        code = code * 10 + u16::from(*d);
        if COUNTRY_CODES.binary_search(&code).is_ok() {
            return Some((code, len + 1));
        }
    }
    None
}

/// `phone_number`: country code, national length and first digit (module
/// docs).
pub fn phone_number(m: &[u8]) -> bool {
    // The digits (at most 16: one more is already too many), without a
    // `(0)` trunk prefix, and the length of the first group.
    let mut digits = [0u8; 16];
    let mut n = 0;
    let mut first_group = 0;
    let mut in_first = true;
    let mut i = 0;
    while let Some(&b) = m.get(i) {
        if m.get(i..i + 3) == Some(b"(0)".as_slice()) {
            in_first = false;
            i += 3;
            continue;
        }
        if b.is_ascii_digit() {
            let Some(slot) = digits.get_mut(n) else { return false };
            *slot = b - b'0';
            n += 1;
            if in_first {
                first_group += 1;
            }
        } else if b != b'+' {
            in_first = false;
        }
        i += 1;
    }
    let digits = digits.get(..n).unwrap_or_default();
    if !(8..=15).contains(&n) {
        return false;
    }
    let Some((code, code_len)) = country_code(digits) else { return false };
    let national = digits.get(code_len..).unwrap_or_default();
    let digit = |k: usize| national.get(k).copied().unwrap_or(0);
    let length_ok = match code {
        // NPA-NXX-XXXX: area and exchange codes start 2-9 and are not
        // N11 (service codes); area codes N9X (reserved for expansion)
        // and 555 are not in service.
        1 => {
            let n11 = |k: usize| digit(k + 1) == 1 && digit(k + 2) == 1;
            let area = (digit(0), digit(1), digit(2));
            national.len() == 10
                && digit(0) >= 2
                && digit(3) >= 2
                && !n11(0)
                && !n11(3)
                && digit(1) != 9
                && area != (5, 5, 5)
        }
        7 => national.len() == 10,
        44 => (9..=10).contains(&national.len()),
        _ => (7..=12).contains(&national.len()),
    };
    let trunk_ok = digit(0) != 0 || code == 39;
    first_group >= code_len && length_ok && trunk_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_and_prefix_free() {
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
        for &c in COUNTRY_CODES {
            let s = c.to_string();
            for &d in COUNTRY_CODES {
                let t = d.to_string();
                assert!(c == d || !t.starts_with(&s), "{c} is a prefix of {d}");
            }
        }
    }

    #[test]
    fn numbers() {
        for good in ["+44 20 7946 0958", "+1 (415) 555-2671", "+49 30 123456", "+86 138 0013 8000", "+44 (0)20 7946 0958"]
        {
            assert!(phone_number(good.as_bytes()), "{good}");
        }
        for bad in ["+1 (555) 010-0199", "+20240115", "+0530", "+1000", "+4 420 7946 0958", "+999 1234 5678"] {
            assert!(!phone_number(bad.as_bytes()), "{bad}");
        }
    }
}
