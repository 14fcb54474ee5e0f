//! What the bytes of a sixteen-byte block are (digits, the joiners
//! between digit groups, colons, capitals), and where the scanner reads
//! numeric runs.
//!
//! [`marks`] uses the target's 128-bit SIMD where it has one: wasm
//! SIMD128 (the filter is built with `+simd128`: Envoy's V8, wasmtime and
//! WAMR run it), SSE2 on x86-64 (every x86-64 has it). [`marks_scalar`]
//! finds the same eight bytes at a time in 64-bit words; it is the path of
//! any other target, and the reference the tests hold the SIMD path to:
//! identical masks on random and hand-picked blocks, identical findings
//! from the scanner with either. (Natively on a CPU with AVX2, the
//! scanner's own loop, `scanner/avx2.rs`, finds the same classes
//! thirty-two bytes at a time.) [`Lagged`] finds where runs are read in
//! the classes of sixty-four bytes, whichever loop found them.

/// Which bytes of a block are of each class the scanner needs: bit `k`
/// for byte `k`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// `0`–`9`.
    pub digits: u16,
    /// Space, `-` and `.`: what joins the groups of a grouped or dotted
    /// number.
    pub joiners: u16,
    /// `:` (a colon-grouped Aadhaar number).
    pub colons: u16,
    /// `A`–`Z` (the country code of an IBAN, a National Insurance number's
    /// letters).
    pub capitals: u16,
}

/// The [`Marks`] of the sixteen bytes `lo` (bytes 0–7, little-endian) and
/// `hi` (bytes 8–15). A loop over many blocks makes a [`Classifier`] once
/// instead.
#[inline(always)]
pub fn marks(lo: u64, hi: u64) -> Marks {
    Classifier::new().marks(lo, hi)
}

/// What [`Classifier::marks`] compares a block with, made once for a
/// scan. In wasm, the constant vectors, hidden from the optimizer: it
/// would otherwise write them as constants at each use, which V8 builds
/// again in every turn of the scanner's loop (a load, a move and an
/// unpack each); as values made before the loop they are loaded once a
/// turn or kept in registers.
#[derive(Clone, Copy)]
pub struct Classifier {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    splats: [core::arch::wasm32::v128; 8],
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new()
    }
}

impl Classifier {
    /// The classifier of this target.
    #[inline(always)]
    pub fn new() -> Classifier {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            use core::arch::wasm32::u8x16_splat;
            // The ranges' bounds moved by 128 for a signed compare
            // (`marks`).
            Classifier {
                splats: core::hint::black_box([
                    u8x16_splat(b'0'.wrapping_add(128)),
                    u8x16_splat(10u8.wrapping_sub(128)),
                    u8x16_splat(b' '),
                    u8x16_splat(b'-'),
                    u8x16_splat(b'.'),
                    u8x16_splat(b':'),
                    u8x16_splat(b'A'.wrapping_add(128)),
                    u8x16_splat(26u8.wrapping_sub(128)),
                ]),
            }
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        Classifier {}
    }

    /// The [`Marks`] of the sixteen bytes `lo` (bytes 0–7, little-endian)
    /// and `hi` (bytes 8–15).
    #[inline(always)]
    pub fn marks(&self, lo: u64, hi: u64) -> Marks {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            use core::arch::wasm32::{i8x16_lt, u64x2, u8x16_bitmask, u8x16_eq, u8x16_sub, v128_or};
            let [zero, ten, space, dash, dot, colon, a, twenty_six] = self.splats;
            let block = u64x2(lo, hi);
            // Unsigned `byte - first < n` is `byte - first - 128 < n - 128`
            // signed (a byte below the range's first wraps above it): one
            // x86 instruction, where V8 writes an unsigned compare as four.
            let within = |first, n| u8x16_bitmask(i8x16_lt(u8x16_sub(block, first), n));
            Marks {
                digits: within(zero, ten),
                joiners: u8x16_bitmask(v128_or(u8x16_eq(block, space), v128_or(u8x16_eq(block, dash), u8x16_eq(block, dot)))),
                colons: u8x16_bitmask(u8x16_eq(block, colon)),
                capitals: within(a, twenty_six),
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{
                _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
                _mm_sub_epi8,
            };
            // SAFETY: these intrinsics need SSE2 and nothing else (no
            // memory is read: the block comes in registers); every x86-64
            // has SSE2 and the target enables it.
            unsafe {
                let block = _mm_set_epi64x(hi as i64, lo as i64);
                // Unsigned `byte - first < n`: min(byte - first, n - 1) is
                // byte - first.
                let within = |first: u8, n: u8| {
                    let d = _mm_sub_epi8(block, _mm_set1_epi8(first as i8));
                    _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8((n - 1) as i8)), d)) as u16
                };
                let is = |b: u8| _mm_cmpeq_epi8(block, _mm_set1_epi8(b as i8));
                Marks {
                    digits: within(b'0', 10),
                    joiners: _mm_movemask_epi8(_mm_or_si128(is(b' '), _mm_or_si128(is(b'-'), is(b'.')))) as u16,
                    colons: _mm_movemask_epi8(is(b':')) as u16,
                    capitals: within(b'A', 26),
                }
            }
        }
        #[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
        {
            marks_scalar(lo, hi)
        }
    }
}

/// Whether [`marks`] uses SIMD on this target.
pub const SIMD: bool = cfg!(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"));

/// [`marks`] without SIMD.
#[inline(always)]
pub fn marks_scalar(lo: u64, hi: u64) -> Marks {
    Marks {
        digits: both(lo, hi, digit_bytes),
        joiners: both(lo, hi, |w| equal_bytes(w, b' ') | equal_bytes(w, b'-') | equal_bytes(w, b'.')),
        colons: both(lo, hi, |w| equal_bytes(w, b':')),
        capitals: both(lo, hi, |w| range_bytes(w, b'A', b'Z')),
    }
}

/// The bytes of `lo` and `hi` whose high bit `bytes` sets, as a mask.
#[inline(always)]
fn both(lo: u64, hi: u64, bytes: impl Fn(u64) -> u64) -> u16 {
    u16::from(gather(bytes(lo))) | u16::from(gather(bytes(hi))) << 8
}

/// The high bits of the eight bytes of `high` (little-endian) as a byte,
/// bit `k` for byte `k`.
#[inline(always)]
fn gather(high: u64) -> u8 {
    ((high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// The high bit of each byte of `word` (little-endian) that is an ASCII
/// digit, and no other bit.
#[inline(always)]
pub fn digit_bytes(word: u64) -> u64 {
    range_bytes(word, b'0', b'9')
}

/// The high bit of each byte of `word` (little-endian) from `first` to
/// `last` (ASCII, `first <= last`), and no other bit (exact per byte: no
/// carry or borrow crosses bytes).
#[inline(always)]
fn range_bytes(word: u64, first: u8, last: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = word & (ONES * 0x7f);
    // Per byte: 128 + last - low has its high bit when low <= last, and
    // low + 128 - first when low >= first; neither leaves its byte.
    let at_most = (ONES * (128 + u64::from(last))).wrapping_sub(low);
    let at_least = low + ONES * (128 - u64::from(first));
    at_most & !word & at_least & HIGH
}

/// How far behind the block it is given [`Lagged::next`] reports: the
/// places of sixty-four bytes starting this many before the block.
pub const LAG: usize = 16;

/// Where the scanner reads numeric runs, found over a stream of
/// sixty-four-byte blocks: one word of bit arithmetic a class and a
/// block (bit `k` for byte `k`), for a place each a digit of the run to
/// read (a run is read from its start, wherever its digit is).
///
/// Every match of the catalogue's numeric patterns spans eleven bytes or
/// more of digits and single joiners between them (a card's 13–19 digits
/// or its groups, an SSN's `123-45-6789` or `123.45.6789`, a resident id's
/// 17–18, a mobile's 11 or its groups, Aadhaar's 12 or 4-4-4), follows two
/// capitals (an IBAN's check digits, `GB82`; a National Insurance number's
/// digits, `AB123456C` or `AB 12 34 56 C`), or is Aadhaar's colon-grouped
/// `1234:5678:…`. So the digits read are those where eleven such bytes
/// begin, two digits after two capitals (a joiner may stand between), and
/// four digits before a colon and four more. What everyday JSON is made
/// of is none of these: dates (`2024-03-07`, ten bytes), times, decimals,
/// short numbers, hex and base64 without capitals before.
///
/// Only where eleven begin, not every digit of the stretch: a match's
/// first digit starts eleven bytes of the stretch (the match is made of
/// them from there), so it is at most ten bytes from the stretch's start
/// from its end; the runs read are then those from the stretch's start
/// up to the last place eleven begin, the runs a match can start in and
/// every run before them (a dotted SSN's group taken in before its
/// first, `1.123.45.6789`).
///
/// A place's rule looks eleven bytes ahead and three back. Looking only
/// back, at the block and the one before, each place is known [`LAG`]
/// bytes late: what is kept of the block before is its classes and the
/// steps of the arithmetic, a word each. (A test holds the places to the
/// rule written a byte at a time, on random text.)
#[derive(Clone, Copy, Debug, Default)]
pub struct Lagged {
    digits: u64,
    joiners: u64,
    colons: u64,
    capitals: u64,
    /// `g1`–`g11`: 1, 2, 4, 8 and 11 digits or single joiners between
    /// two in a row, ending at the byte before (a joiner's digit after
    /// it is the byte itself).
    g1: u64,
    g2: u64,
    g4: u64,
    g8: u64,
    g11: u64,
    /// Two and four digits in a row ending at the byte.
    d2: u64,
    d4: u64,
    /// Two capitals ending at the byte.
    c2: u64,
}

impl Lagged {
    /// The digits of the last block given (bit `k` for byte `k`).
    #[inline(always)]
    pub fn digits(&self) -> u64 {
        self.digits
    }

    /// The places to read runs at among the block before's last [`LAG`]
    /// bytes and this block's first forty-eight, bit `k` for byte
    /// `k - LAG` of the block (`digits` and the others: the block's
    /// classes, bit `k` for byte `k`), and the digits of the block before
    /// and of this one, which a run at a place is read from. A block of
    /// no marks after the last gives the last [`LAG`] bytes' places.
    /// `any_digit`: every digit (a custom numeric detector, whose shape is
    /// not known).
    #[inline(always)]
    pub fn next(&mut self, digits: u64, joiners: u64, colons: u64, capitals: u64, any_digit: bool) -> (u64, [u64; 2]) {
        let before = *self;
        // Bit `k` of `x` as it is `s` bytes later: byte `k - s`, from the
        // block before where `k < s` (one `shld`).
        let late = |x: u64, x_before: u64, s: u32| x << s | x_before >> (64 - s);
        let d = digits;
        let d1 = late(d, before.digits, 1);
        // A digit, or a joiner between two, at the byte before.
        let g1 = d1 | (late(joiners, before.joiners, 1) & late(d, before.digits, 2) & d);
        let g2 = late(g1, before.g1, 1) & g1;
        let g4 = late(g2, before.g2, 2) & g2;
        let g8 = late(g4, before.g4, 4) & g4;
        let g11 = late(g8, before.g8, 3) & late(g2, before.g2, 1) & g1;
        let d2 = d1 & d;
        let d4 = late(d2, before.d2, 2) & d2;
        let c2 = late(capitals, before.capitals, 1) & capitals;
        *self = Lagged { digits, joiners, colons, capitals, g1, g2, g4, g8, g11, d2, d4, c2 };
        let both = [before.digits, digits];
        if any_digit {
            return (late(d, before.digits, LAG as u32), both);
        }
        // For byte `p = k - LAG` (the shifts below are for a `LAG` of
        // sixteen): a digit where eleven begin (they end ten bytes on:
        // `g11` eleven after that), ...
        let eleven = late(d, before.digits, LAG as u32) & late(g11, before.g11, 5);
        // ... four digits, a colon, four digits ...
        let colon = late(d4, before.d4, 13) & late(colons, before.colons, 12) & late(d4, before.d4, 8);
        // ... two digits after two capitals, or after two and a joiner.
        let capitals =
            late(c2, before.c2, 17) | (late(joiners, before.joiners, 17) & late(c2, before.c2, 18));
        (eleven | colon | (late(d2, before.d2, 15) & capitals), both)
    }
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
