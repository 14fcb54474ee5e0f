//! Errors that name the offending field.

use std::fmt;

/// A policy that cannot be used, with the path of the field at fault
/// (`authorization[2].rules[0].to[0].operation.paths[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Where in the document; empty for the document as a whole.
    pub path: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The document is not valid JSON/YAML or a field has the wrong type or
    /// name.
    Syntax(String),
    /// A value is well-formed but not acceptable.
    Invalid(String),
    /// A compiled bundle is damaged or from another format version.
    Bundle(String),
}

impl PolicyError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError { path: path.into(), kind: ErrorKind::Invalid(message.into()) }
    }

    /// The message without the path.
    pub fn message(&self) -> &str {
        match &self.kind {
            ErrorKind::Syntax(m) | ErrorKind::Invalid(m) | ErrorKind::Bundle(m) => m,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            f.write_str(self.message())
        } else {
            write!(f, "{}: {}", self.path, self.message())
        }
    }
}

impl std::error::Error for PolicyError {}
