//! Why a policy file cannot be used: the file, where in it, and what is
//! wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// A policy file that cannot be used. Shown as
/// `file:line: resource: field: problem`, with the parts that are known:
/// `policies/istio/ap.yaml:12: AuthorizationPolicy egress/p:
/// spec.rules[0].from[0].source.requestPrincipals: JWT request principals
/// are not supported ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based) of the field, when it is in the file as written.
    /// (32 bits, like the column, keep the error small enough to return
    /// by value.)
    pub line: Option<u32>,
    /// The column (1-based), where the reader knows it (YAML syntax).
    pub column: Option<u32>,
    /// The Istio resource (`AuthorizationPolicy egress/p`), the YAML
    /// document (`document 2`) or the part of the input (`mesh config`) at
    /// fault, if the file holds more than one thing.
    pub resource: Option<String>,
    /// The field path (`spec.rules[0].from[0].source.requestPrincipals`),
    /// if one field is at fault.
    pub field: Option<String>,
    /// What is wrong, naming the value as written.
    pub problem: String,
    /// The compiler's kind of error, when the policy read did not compile
    /// (boxed: it is rare, and keeps the error small to return).
    pub kind: Option<Box<warden_engine::ErrorKind>>,
}

impl LoadError {
    /// A problem with a file as a whole.
    pub fn new(file: &Path, problem: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_owned(),
            line: None,
            column: None,
            resource: None,
            field: None,
            problem: problem.into(),
            kind: None,
        }
    }

    /// The same, about this resource.
    pub fn in_resource(mut self, resource: impl Into<String>) -> LoadError {
        self.resource = Some(resource.into());
        self
    }

    /// The same, about this field (an empty path is the whole).
    pub fn at_field(mut self, field: impl Into<String>) -> LoadError {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    /// The same, at this line.
    pub fn at_line(mut self, line: Option<usize>) -> LoadError {
        self.line = line.map(|l| u32::try_from(l).unwrap_or(u32::MAX));
        self
    }

    /// The same, with the compiler's kind of error.
    pub fn of_kind(mut self, kind: warden_engine::ErrorKind) -> LoadError {
        self.kind = Some(Box::new(kind));
        self
    }

    /// The same, at this column of its line.
    pub fn at_column(mut self, column: Option<usize>) -> LoadError {
        self.column = column.map(|c| u32::try_from(c).unwrap_or(u32::MAX));
        self
    }

    /// Everything but the file and line: `resource: field: problem`.
    pub fn message(&self) -> String {
        let mut text = String::new();
        for part in [&self.resource, &self.field].into_iter().flatten() {
            text.push_str(part);
            text.push_str(": ");
        }
        text.push_str(&self.problem);
        text
    }

    /// `file`, `file:line` or `file:line:column`, as shown to a user (and
    /// as editors jump to it).
    pub fn location(&self) -> String {
        let file = crate::display::shown(&self.file);
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            (None, _) => file,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message())
    }
}

impl std::error::Error for LoadError {}

/// A field of a document that cannot be used: where, and why. The part of
/// a [`LoadError`] a reader of one document knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `spec.rules[0].from[0].source.requestPrincipals`; empty for the
    /// document as a whole.
    pub path: String,
    /// What is wrong, naming the value where there is one.
    pub problem: String,
}

impl FieldError {
    /// A problem at a field.
    pub fn at(path: impl Into<String>, problem: impl Into<String>) -> FieldError {
        FieldError { path: path.into(), problem: problem.into() }
    }

    /// A problem with the document as a whole.
    pub fn whole(problem: impl Into<String>) -> FieldError {
        FieldError::at("", problem)
    }

    /// The same error, for a document found at `field` of a larger one.
    pub fn under(mut self, field: &str) -> FieldError {
        self.path = if self.path.is_empty() { field.to_owned() } else { format!("{field}.{}", self.path) };
        self
    }

    /// A deserialization error, at the path where it happened.
    pub fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        FieldError { path, problem: err.into_inner().to_string() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

impl std::error::Error for FieldError {}
