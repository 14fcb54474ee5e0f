//! Which bytes of a sixteen-byte block are digits, and where the scanner
//! reads numeric runs.
//!
//! [`digits`] uses the target's 128-bit SIMD where it has one: wasm
//! SIMD128 (the filter is built with `+simd128`: Envoy's V8, wasmtime and
//! WAMR run it), SSE2 on x86-64 (every x86-64 has it). [`digits_scalar`]
//! finds the same eight bytes at a time in 64-bit words; it is the path of
//! any other target, and the reference the tests hold the SIMD path to:
//! identical masks on random and hand-picked blocks, identical findings
//! from the scanner with either.

/// The digits (`0`–`9`) among the sixteen bytes `lo` (bytes 0–7,
/// little-endian) and `hi` (bytes 8–15): bit `k` is byte `k`.
#[inline(always)]
pub fn digits(lo: u64, hi: u64) -> u16 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{u64x2, u8x16_bitmask, u8x16_lt, u8x16_splat, u8x16_sub};
        // Unsigned: a byte below `0` wraps to 0xd0 or more.
        u8x16_bitmask(u8x16_lt(u8x16_sub(u64x2(lo, hi), u8x16_splat(b'0')), u8x16_splat(10)))
    }
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x, _mm_sub_epi8,
        };
        // SAFETY: these intrinsics need SSE2 and nothing else (no memory is
        // read: the block comes in registers); every x86-64 has SSE2 and
        // the target enables it.
        unsafe {
            // Unsigned `byte - '0' < 10`: min(byte - '0', 9) is byte - '0'.
            let d = _mm_sub_epi8(_mm_set_epi64x(hi as i64, lo as i64), _mm_set1_epi8(b'0' as i8));
            _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d)) as u16
        }
    }
    #[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
    {
        digits_scalar(lo, hi)
    }
}

/// Whether [`digits`] uses SIMD on this target.
pub const SIMD: bool = cfg!(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"));

/// [`digits`] without SIMD.
#[inline(always)]
pub fn digits_scalar(lo: u64, hi: u64) -> u16 {
    u16::from(word_digits(lo)) | u16::from(word_digits(hi)) << 8
}

/// The digits among the eight bytes of `word`, bit `k` for byte `k`: the
/// high bits of [`digit_bytes`] gathered into the top byte.
#[inline(always)]
fn word_digits(word: u64) -> u8 {
    gather(digit_bytes(word))
}

/// The high bits of the eight bytes of `high` (little-endian) as a byte,
/// bit `k` for byte `k`.
#[inline(always)]
fn gather(high: u64) -> u8 {
    ((high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// The high bit of each byte of `word` (little-endian) that is an ASCII
/// digit, and no other bit (exact per byte: no carry or borrow crosses
/// bytes).
#[inline(always)]
pub fn digit_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = word & (ONES * 0x7f);
    let at_most_9 = (ONES * (127 + 0x3a)).wrapping_sub(low);
    let at_least_0 = low + ONES * (127 - 0x2f);
    at_most_9 & !word & at_least_0 & HIGH
}

/// A superset of [`run_starts`], from the digits alone: two digits that
/// start three in a row, or two with no digit before them (the capitals
/// are looked at only there).
#[inline(always)]
pub fn run_candidates(digits: u64, any_digit: bool) -> u64 {
    let cur = (digits >> 16) & 0xFFFF;
    if any_digit {
        return cur;
    }
    let two = cur & (digits >> 17);
    two & ((digits >> 18) | !(digits >> 15))
}

/// Where a numeric run worth reading has two digits, in the block whose
/// digits are bits 16–31 of `digits` (bits 0–15: the block before, 32–47:
/// the block after), bit `k` for byte `k`: two digits that start three in
/// a row, or a group of exactly two digits after two capital letters, or
/// after two capitals and a space (`before(k, n)`: the byte `n` bytes
/// before the block's byte `k`, read only for such groups). Every match of
/// the catalogue's numeric patterns has one of those in the run it is read
/// from: card, SSN, resident id, mobile and Aadhaar numbers have a group
/// of three digits or more; an IBAN's check digits follow its country code
/// (`GB82…`); a National Insurance number's digits follow its two letters,
/// with a space between them or not (`AB 12 34 56 C`). `any_digit`: every
/// digit (a custom numeric detector, whose shape is not known).
#[inline(always)]
pub fn run_starts(digits: u64, any_digit: bool, before: impl Fn(usize, usize) -> u8) -> u64 {
    let cur = (digits >> 16) & 0xFFFF;
    if any_digit || cur == 0 {
        return cur;
    }
    let two = cur & (digits >> 17);
    let three = two & (digits >> 18);
    // Two digits alone: no digit before the first or after the second.
    let mut alone = two & !three & !(digits >> 15);
    let mut starts = three;
    while alone != 0 {
        let k = alone.trailing_zeros() as usize;
        alone &= alone - 1;
        let capital = |n: usize| before(k, n).is_ascii_uppercase();
        if capital(1) && capital(2) || before(k, 1) == b' ' && capital(2) && capital(3) {
            starts |= 1 << k;
        }
    }
    starts
}

/// Where the first byte equal to `a` or `b` is in `text` (`text.len()`
/// if none), sixteen bytes at a time with the target's SIMD: the body
/// decoder's search for the next escape (`\` in JSON, `%` or `+` in a
/// form), which a byte-at-a-time loop made cost a third as much as the
/// scan itself.
#[inline(never)]
pub fn find_either(text: &[u8], a: u8, b: u8) -> usize {
    let mut blocks = text.chunks_exact(16);
    let mut at = 0;
    for block in &mut blocks {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(block);
        let block = u128::from_le_bytes(bytes);
        let found = either(block as u64, (block >> 64) as u64, a, b);
        if found != 0 {
            return at + found.trailing_zeros() as usize;
        }
        at += 16;
    }
    at + blocks.remainder().iter().position(|&c| c == a || c == b).unwrap_or(blocks.remainder().len())
}

/// The bytes equal to `a` or `b` among the sixteen bytes `lo` (bytes 0–7,
/// little-endian) and `hi`: bit `k` is byte `k`.
#[inline(always)]
pub fn either(lo: u64, hi: u64, a: u8, b: u8) -> u16 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{u64x2, u8x16_bitmask, u8x16_eq, u8x16_splat, v128_or};
        let block = u64x2(lo, hi);
        u8x16_bitmask(v128_or(u8x16_eq(block, u8x16_splat(a)), u8x16_eq(block, u8x16_splat(b))))
    }
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x};
        // SAFETY: SSE2 only, on registers (as in `digits`).
        unsafe {
            let block = _mm_set_epi64x(hi as i64, lo as i64);
            let found = _mm_or_si128(
                _mm_cmpeq_epi8(block, _mm_set1_epi8(a as i8)),
                _mm_cmpeq_epi8(block, _mm_set1_epi8(b as i8)),
            );
            _mm_movemask_epi8(found) as u16
        }
    }
    #[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
    {
        either_scalar(lo, hi, a, b)
    }
}

/// [`either`] without SIMD.
#[inline(always)]
pub fn either_scalar(lo: u64, hi: u64, a: u8, b: u8) -> u16 {
    let word = |w: u64| u16::from(gather(equal_bytes(w, a) | equal_bytes(w, b)));
    word(lo) | word(hi) << 8
}

/// The high bit of each byte of `word` equal to `b`, and no other bit
/// (exact per byte: the low seven bits plus 0x7f carry into the high bit
/// only within the byte).
#[inline(always)]
fn equal_bytes(word: u64, b: u8) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(b));
    !(((x & LOW) + LOW) | x | LOW)
}
