//! Why a DLP pattern or scanner could not be built.

use std::fmt;

/// A policy's custom pattern that cannot be used: its name, its regex and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern's name (`dlp[].patterns[].name`).
    pub name: String,
    /// The regex as written.
    pub regex: String,
    /// What is wrong.
    pub problem: PatternProblem,
}

/// What is wrong with a custom pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternProblem {
    /// No name.
    NoName,
    /// The name is a built-in detector's id.
    BuiltInName,
    /// The regex does not parse.
    Syntax {
        /// The byte offset in the regex.
        offset: usize,
        /// The parser's description.
        what: String,
    },
    /// The regex matches the empty string, so it would match everywhere.
    MatchesEmpty,
    /// The compiled program is over the size limit.
    TooBig {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The regex engine refused it for another reason.
    Invalid(String),
}

impl PatternError {
    #[cold]
    #[inline(never)]
    pub(crate) fn new(name: &str, regex: &str, problem: PatternProblem) -> PatternError {
        PatternError { name: name.to_owned(), regex: regex.to_owned(), problem }
    }

    /// The field at fault: `name` or `regex`.
    pub fn field(&self) -> &'static str {
        match self.problem {
            PatternProblem::NoName | PatternProblem::BuiltInName => "name",
            _ => "regex",
        }
    }
}

impl fmt::Display for PatternError {
    // Plain writes rather than one format string per problem: this runs
    // inside the size-budgeted filter too, where each `write!` costs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = |f: &mut fmt::Formatter<'_>, before: &str, value: &str, after: &str| {
            f.write_str(before)?;
            f.write_str(value)?;
            f.write_str(after)
        };
        match &self.problem {
            PatternProblem::NoName => {
                return f.write_str("a custom pattern needs a name (findings are reported by it)")
            }
            PatternProblem::BuiltInName => {
                return quoted(
                    f,
                    "'",
                    &self.name,
                    "' is a built-in detector's id or group; name the custom pattern differently",
                )
            }
            _ => quoted(f, "pattern '", &self.name, "': ")?,
        }
        match &self.problem {
            PatternProblem::Syntax { offset, what } => {
                quoted(f, "invalid regex '", &self.regex, "' at offset ")?;
                fmt::Display::fmt(offset, f)?;
                f.write_str(": ")?;
                f.write_str(what)?;
                if what.contains("Unicode") {
                    f.write_str(
                        " (patterns match bytes without Unicode tables: use ASCII classes such as [A-Za-z0-9])",
                    )?;
                }
                Ok(())
            }
            PatternProblem::MatchesEmpty => quoted(
                f,
                "'",
                &self.regex,
                "' can match the empty string, so it would match everywhere; require at least one character \
                 (e.g. '+' instead of '*')",
            ),
            PatternProblem::TooBig { limit } => {
                f.write_str("too big once compiled (over ")?;
                fmt::Display::fmt(limit, f)?;
                f.write_str(" bytes); use smaller repetition counts or fewer alternatives")
            }
            PatternProblem::Invalid(what) => quoted(f, "invalid regex: ", what, ""),
            PatternProblem::NoName | PatternProblem::BuiltInName => Ok(()),
        }
    }
}

impl std::error::Error for PatternError {}

/// A scanner or DLP set that cannot be built. Custom patterns were checked
/// with field paths when the policy compiled and the catalogue's own by its
/// tests, so any of these met when a bundle loads means the bundle is
/// damaged (or from another build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A policy's custom pattern does not compile.
    Pattern,
    /// A catalogue detector's regex does not compile.
    Detector,
    /// A detector id that is not in the catalogue.
    UnknownDetector,
    /// More numeric detectors than the scanner's 64-bit masks hold.
    TooManyNumeric,
    /// A policy index that points nowhere.
    PolicyIndex,
}

impl BuildError {
    /// What went wrong, in words.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildError::Pattern => "damaged bundle: a DLP pattern does not compile",
            BuildError::Detector => "a built-in DLP detector's pattern does not compile",
            BuildError::UnknownDetector => "damaged bundle: unknown DLP detector",
            BuildError::TooManyNumeric => "more than 64 numeric DLP detectors",
            BuildError::PolicyIndex => "damaged bundle: DLP policy index out of range",
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for BuildError {}
