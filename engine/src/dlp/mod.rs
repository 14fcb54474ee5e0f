//! Data loss prevention: the detectors that find secrets and personal data
//! in what a request carries.
//!
//! - [`CATALOGUE`]: the built-in detectors, one [`Detector`] per id a
//!   policy may name, and [`reference_scan`], the slow, obviously-correct
//!   oracle the fast scanner is tested against;
//! - [`compile_custom`]: a policy's own `patterns`, with limits;
//! - [`DlpSet`]: a policy's DLP policies compiled into scanners, and
//!   [`BodyScan`], the streaming scan of one request's body.
//!
//! The scanner's parts (decoding, the catalogue's internals, the scanner,
//! the check-digit validators) are private; the `internals` feature makes
//! them public for the engine's tests, the benchmarks and the fuzz targets.
//!
//! ```
//! use warden_engine::dlp::{compile_custom, reference_scan};
//!
//! let body = br#"{"card": "4111 1111 1111 1111", "key": "AKIAIOSFODNN7EXAMPLE"}"#;
//! let ids: Vec<&str> = reference_scan(body).iter().map(|f| f.id).collect();
//! assert_eq!(ids, ["credit_card", "aws_access_key_id"]);
//!
//! let itk = compile_custom("internal-token", "itk_[A-Za-z0-9]{32}").unwrap();
//! assert!(itk.is_match(b"token=itk_0123456789abcdef0123456789ABCDEF"));
//! assert!(compile_custom("bad", "itk_[A-Z").unwrap_err().to_string().contains("unclosed character class"));
//! ```

pub(crate) mod body;
mod error;
pub(crate) mod finding;
pub(crate) mod policy;

// The scanner's parts, public with the `internals` feature only: for the
// engine's own tests, the benchmarks and the fuzz targets, not for users
// (each module's own docs say what it holds).
macro_rules! internals {
    ($($name:ident),*) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code)]
        pub(crate) mod $name;
    )*};
}

internals!(decode, detectors, scanner, validators);

pub use body::{BodyScan, BodyStep};
pub use detectors::{detector, reference_scan, Anchor, Detector, RefFinding, CATALOGUE};
pub use error::{BuildError, PatternError, PatternProblem};
pub use finding::{Finding, Location, MAX_LOCATIONS};
pub use policy::{DlpPolicy, DlpSet, DlpSpec, DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES_LIMIT};
pub use scanner::custom_anchors;

use regex::bytes::{Regex, RegexBuilder};

/// Most heap a custom pattern's compiled program may use.
pub const CUSTOM_SIZE_LIMIT: usize = 256 * 1024;
/// Most heap a custom pattern's lazy DFA cache may use.
pub const CUSTOM_DFA_SIZE_LIMIT: usize = 512 * 1024;
/// Deepest nesting of groups and repetitions in a custom pattern.
pub const CUSTOM_NEST_LIMIT: u32 = 64;

/// Compiles a policy's custom detector (`dlp[].patterns[]`): `name` is the
/// id its findings carry, `regex` the pattern. Patterns match bytes with
/// ASCII classes (`\w`, `\d`, `\b` and `.` never need Unicode tables);
/// the compiled size is limited. Refused, with a one-line message naming
/// the problem: an empty name or one that is a built-in detector's id, a
/// syntax error (with its position), a pattern that can match the empty
/// string (it would "find" something at every offset), or one too big.
pub fn compile_custom(name: &str, regex: &str) -> Result<Regex, PatternError> {
    let refuse = |problem| PatternError::new(name, regex, problem);
    if name.trim().is_empty() {
        return Err(refuse(PatternProblem::NoName));
    }
    if detector(name).is_some() {
        return Err(refuse(PatternProblem::BuiltInName));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .nest_limit(CUSTOM_NEST_LIMIT)
        .build()
        .parse(regex)
        .map_err(|e| refuse(syntax_error(&e)))?;
    if hir.properties().minimum_len() == Some(0) {
        return Err(refuse(PatternProblem::MatchesEmpty));
    }
    RegexBuilder::new(regex)
        .unicode(false)
        .nest_limit(CUSTOM_NEST_LIMIT)
        .size_limit(CUSTOM_SIZE_LIMIT)
        .dfa_size_limit(CUSTOM_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => refuse(PatternProblem::TooBig { limit }),
            other => refuse(PatternProblem::Invalid(one_line(&other.to_string()))),
        })
}

/// A parse error on one line: what is wrong and where.
fn syntax_error(e: &regex_syntax::Error) -> PatternProblem {
    let (what, offset) = match e {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span().start.offset),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), e.span().start.offset),
        other => (one_line(&other.to_string()), 0),
    };
    PatternProblem::Syntax { offset, what }
}

/// Joins a multi-line message into one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
