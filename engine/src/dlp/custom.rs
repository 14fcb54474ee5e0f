//! A policy's own DLP patterns (`dlp[].patterns[]`): compiled with limits,
//! refused with a typed error that names the field at fault.

use super::detectors::{detector, Group};
use super::error::{PatternError, PatternProblem};
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
    if detector(name).is_some() || Group::from_name(name).is_some() {
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
