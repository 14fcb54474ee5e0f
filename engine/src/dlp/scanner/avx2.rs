//! The table loop on x86-64 CPUs with AVX2 (Intel's since 2013, AMD's
//! since 2015), chosen when the scanner is built: the classes of
//! thirty-two bytes in one compare each, read straight from the data,
//! where the portable loop ([`Scanner::pass_with`]) takes sixteen (SSE2 is
//! all every x86-64 has) and builds them from the words its pair tests
//! read. The pair tests, and where runs are read ([`classes::Lagged`],
//! on the classes of the block), are the same.
//!
//! It runs while a block and the two bytes after it are left to read,
//! and the portable loop goes on from where it stopped, with the runs'
//! stream where it was. The findings are the
//! portable loop's: the scanner tests hold the three loops (this one,
//! [`Scanner::portable`], [`Scanner::scalar`]) to the reference scan, and
//! the `dlp_simd` fuzzer holds them to each other.

use super::{classes, Queues, Runs, Scanner, State, BLOCK, HALF};
use core::arch::x86_64::{
    __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8, _mm256_or_si256,
    _mm256_set1_epi8, _mm256_sub_epi8,
};

/// The bytes one turn reads: its block, and the two after it (the last
/// pair's 32-bit word, [`super::Prefilter::test_block`]).
pub(super) const READ: usize = BLOCK + 2;

/// The classes of thirty-two bytes ([`classes::Marks`]'s), bit `k` for
/// byte `k`, in the low half of each word.
#[derive(Clone, Copy, Default)]
struct Marks {
    digits: u64,
    joiners: u64,
    colons: u64,
    capitals: u64,
}

/// The [`Marks`] of `bytes`.
#[target_feature(enable = "avx2")]
fn marks(bytes: &[u8; HALF]) -> Marks {
    // SAFETY: the load reads the thirty-two bytes of `bytes` (unaligned).
    let block = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast::<__m256i>()) };
    Marks {
        digits: within(block, b'0', 10),
        joiners: mask(_mm256_or_si256(is(block, b' '), _mm256_or_si256(is(block, b'-'), is(block, b'.')))),
        colons: mask(is(block, b':')),
        capitals: within(block, b'A', 26),
    }
}

/// The bytes of `block` from `first` on, `n` values: unsigned
/// `byte - first < n` is min(byte - first, n - 1) == byte - first.
#[target_feature(enable = "avx2")]
fn within(block: __m256i, first: u8, n: u8) -> u64 {
    let d = _mm256_sub_epi8(block, _mm256_set1_epi8(first as i8));
    mask(_mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(n.wrapping_sub(1) as i8)), d))
}

/// The bytes of `block` equal to `b`, as a vector of 0xFF and 0.
#[target_feature(enable = "avx2")]
fn is(block: __m256i, b: u8) -> __m256i {
    _mm256_cmpeq_epi8(block, _mm256_set1_epi8(b as i8))
}

/// The high bits of the bytes of `v`, bit `k` for byte `k`.
#[target_feature(enable = "avx2")]
fn mask(v: __m256i) -> u64 {
    u64::from(_mm256_movemask_epi8(v) as u32)
}

/// The [`Marks`] of the sixty-four bytes `bytes`: bit `k` for byte `k`.
#[target_feature(enable = "avx2")]
fn marks64(bytes: &[u8; BLOCK]) -> Marks {
    let (lo, hi) = (marks(half(bytes, 0)), marks(half(bytes, HALF)));
    Marks {
        digits: lo.digits | hi.digits << 32,
        joiners: lo.joiners | hi.joiners << 32,
        colons: lo.colons | hi.colons << 32,
        capitals: lo.capitals | hi.capitals << 32,
    }
}

/// The [`HALF`] bytes of `block` from `at`.
#[inline(always)]
fn half(block: &[u8; BLOCK], at: usize) -> &[u8; HALF] {
    block.get(at..).and_then(|s| s.first_chunk::<HALF>()).unwrap_or(&[0; HALF])
}

impl Scanner {
    /// [`Scanner::pass_with`] with AVX2, from the start while [`READ`]
    /// bytes are left; where it stopped (a multiple of [`BLOCK`]) and the
    /// runs' stream there, the queues looked at.
    ///
    /// The caller must know that the CPU has AVX2, BMI1 and BMI2.
    #[target_feature(enable = "avx2,bmi1,bmi2")]
    pub(super) fn pass_avx2(&self, data: &[u8], state: &mut State) -> (usize, classes::Lagged) {
        let pf = &self.prefilter;
        let any_digit = matches!(pf.runs, Some(Runs::AnyDigit));
        let numeric = pf.runs.is_some();
        let mut queues = Queues::default();
        let mut lagged = classes::Lagged::default();
        let mut i = 0;
        while let Some(block) = data.get(i..).and_then(|s| s.first_chunk::<READ>()) {
            let bits = pf.test_block(block);
            let (runs, digits) = if numeric {
                let m = marks64(block.first_chunk::<BLOCK>().unwrap_or(&[0; BLOCK]));
                lagged.next(m.digits, m.joiners, m.colons, m.capitals, any_digit)
            } else {
                (0, [0, 0])
            };
            if queues.push(i, bits, i.wrapping_sub(classes::LAG), runs, digits) {
                self.look(data, &mut queues, state);
            }
            i += BLOCK;
        }
        self.look(data, &mut queues, state);
        (i, lagged)
    }
}
