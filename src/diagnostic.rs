//! What `warden check` says about a policy file: errors and lint warnings,
//! each with a stable code (`E103`, `W110`) and name (`invalid-policy`,
//! `shadowed-rule`), the file, line, column and field where known, and
//! the three forms it prints them in: for people, as one JSON document,
//! and as GitHub Actions workflow commands (annotations on the pull
//! request). `docs/CLI.md` has the table of codes; a code never changes
//! meaning and is never reused.

use crate::display::{shown, Paint};
use crate::lint::{self, Lint};
use serde_json::{json, Value};
use std::path::Path;
use warden_config::istio::{Note, Severity as NoteSeverity};
use warden_config::{LoadError, PolicyLoadError};
use warden_engine::ErrorKind;

/// An error or a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The policy cannot be used (or the file not read).
    Error,
    /// A lint: the policy compiles but probably does not mean what it says;
    /// or input that will likely misbehave where it is deployed.
    Warning,
    /// Istio input read differently from how it is written, or a resource
    /// skipped.
    Note,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// Why a policy file is refused, by class, each with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// The file cannot be read (missing, a directory, no permission).
    Unreadable,
    /// Refused before it is parsed: too large, not UTF-8, nested too deep.
    InputLimit,
    /// Not YAML or JSON.
    Syntax,
    /// Readable, but no policy: empty, an IstioOperator or Helm values on
    /// their own, Istio input without a resource Warden reads, not a
    /// `warden/v1` envelope.
    NotAPolicy,
    /// An Istio resource that cannot be converted: a field Warden cannot
    /// honour, or a value the policy refuses.
    IstioResource,
    /// A `warden/v1` field that is unknown or of the wrong type.
    Schema,
    /// A pattern or value that cannot be used as written (a path template,
    /// a host, an IP block, a port).
    BadValue,
    /// A policy that does not hold together (a reference to a service
    /// that does not exist, a setting that contradicts another).
    InvalidPolicy,
}

impl ErrorClass {
    /// Every class.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Unreadable,
        ErrorClass::InputLimit,
        ErrorClass::Syntax,
        ErrorClass::NotAPolicy,
        ErrorClass::IstioResource,
        ErrorClass::Schema,
        ErrorClass::BadValue,
        ErrorClass::InvalidPolicy,
    ];

    /// The stable code: `E` and three digits (`E0xx`: the file, `E1xx`:
    /// the policy in it).
    pub fn code(self) -> &'static str {
        match self {
            ErrorClass::Unreadable => "E001",
            ErrorClass::InputLimit => "E002",
            ErrorClass::Syntax => "E003",
            ErrorClass::NotAPolicy => "E004",
            ErrorClass::IstioResource => "E005",
            ErrorClass::Schema => "E101",
            ErrorClass::BadValue => "E102",
            ErrorClass::InvalidPolicy => "E103",
        }
    }

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Unreadable => "unreadable",
            ErrorClass::InputLimit => "input-limit",
            ErrorClass::Syntax => "syntax",
            ErrorClass::NotAPolicy => "not-a-policy",
            ErrorClass::IstioResource => "istio-resource",
            ErrorClass::Schema => "schema",
            ErrorClass::BadValue => "bad-value",
            ErrorClass::InvalidPolicy => "invalid-policy",
        }
    }

    /// The class of an error loading a policy: for a policy
    /// that does not compile, by the compiler's kind of error.
    pub fn of(error: &PolicyLoadError) -> ErrorClass {
        match error {
            PolicyLoadError::Unreadable(e) => ErrorClass::of_unreadable(e),
            PolicyLoadError::Invalid(e) => match e.kind.as_deref() {
                Some(ErrorKind::Syntax(_)) => ErrorClass::Schema,
                Some(ErrorKind::Value(_)) => ErrorClass::BadValue,
                _ => ErrorClass::InvalidPolicy,
            },
        }
    }

    /// The class of a file that could not be read into a policy, from
    /// what `warden_config` says of it.
    fn of_unreadable(e: &LoadError) -> ErrorClass {
        let problem = e.problem.as_str();
        if problem.starts_with("cannot read") {
            ErrorClass::Unreadable
        } else if problem.starts_with("larger than")
            || problem.starts_with("not UTF-8")
            || problem.starts_with("nested more than")
        {
            ErrorClass::InputLimit
        } else if problem.starts_with("not valid YAML/JSON") {
            ErrorClass::Syntax
        } else if e.resource.as_deref() == Some(CONVERTED) {
            // Istio input and a warden/v1 document beside it that do not
            // compile together: the compiler's error, as text.
            let serde = ["unknown field", "invalid type", "missing field", "unknown variant", "invalid value"];
            if serde.iter().any(|p| problem.starts_with(p)) {
                ErrorClass::Schema
            } else {
                ErrorClass::InvalidPolicy
            }
        } else if e.resource.is_some() && e.field.is_some() {
            ErrorClass::IstioResource
        } else {
            ErrorClass::NotAPolicy
        }
    }
}

/// The resource `warden_config` names when Istio input converted into a
/// policy does not compile.
const CONVERTED: &str = "the converted policy";

/// One error or warning about a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The stable code, `E103` or `W110`.
    pub code: &'static str,
    /// The stable name, `invalid-policy` or `shadowed-rule`.
    pub name: &'static str,
    /// The file, as shown.
    pub file: String,
    /// The line (1-based) of the field, where it is written in the file.
    pub line: Option<u32>,
    /// The column (1-based), where known (YAML syntax, input limits).
    pub column: Option<u32>,
    /// The Istio resource or YAML document at fault, if any.
    pub resource: Option<String>,
    /// The field path (`authorization[1].rules[2]`), if one field is at
    /// fault.
    pub field: Option<String>,
    /// What is wrong (without the file, resource and field).
    pub message: String,
}

impl Diagnostic {
    /// An error loading a policy.
    pub fn error(error: &PolicyLoadError) -> Diagnostic {
        let class = ErrorClass::of(error);
        let (PolicyLoadError::Unreadable(e) | PolicyLoadError::Invalid(e)) = error;
        Diagnostic {
            severity: Severity::Error,
            code: class.code(),
            name: class.name(),
            file: shown(&e.file),
            line: e.line,
            column: e.column,
            resource: e.resource.clone(),
            field: e.field.clone(),
            message: e.problem.clone(),
        }
    }

    /// A lint of the policy in `file`, at the line of its field when the
    /// file is one `warden/v1` document (bare, in its envelope or in a
    /// WasmPlugin).
    pub fn warning(file: &Path, lint: &Lint) -> Diagnostic {
        let (line, resource) = lint_location(file, &lint.path);
        Diagnostic {
            severity: Severity::Warning,
            code: lint.kind.code(),
            name: lint.kind.name(),
            file: shown(file),
            line,
            column: None,
            resource,
            field: Some(lint.path.clone()),
            message: lint.message.clone(),
        }
    }

    /// What reading the policy noted (`warden_config::istio::Note`): a
    /// note (`N001`) or, for input that will likely misbehave where it is
    /// deployed, a warning (`W201`); an error under `--strict`, with the
    /// same code.
    pub fn note(note: &Note, strict: bool) -> Diagnostic {
        let (severity, code, name) = match note.severity {
            NoteSeverity::Warning => (Severity::Warning, DEPLOYMENT.0, DEPLOYMENT.1),
            NoteSeverity::Note | NoteSeverity::Info => (Severity::Note, IMPORT_NOTE.0, IMPORT_NOTE.1),
        };
        Diagnostic {
            severity: if strict && note.is_strict_error() { Severity::Error } else { severity },
            code,
            name,
            file: note.file.as_deref().map(shown).unwrap_or_default(),
            line: None,
            column: None,
            resource: None,
            field: None,
            message: note.message.clone(),
        }
    }

    /// `file`, `file:line` or `file:line:column`.
    fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.file),
            (Some(line), None) => format!("{}:{line}", self.file),
            (None, _) => self.file.clone(),
        }
    }

    /// `resource: field: message`, with the parts that are known.
    fn what(&self) -> String {
        let mut text = String::new();
        for part in [&self.resource, &self.field].into_iter().flatten() {
            text.push_str(part);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        text
    }

    /// For people: `warning[W110]: file:line: field: message`.
    pub fn human(&self, paint: Paint) -> String {
        let head = match self.severity {
            Severity::Error => paint.fail(&format!("error[{}]", self.code)),
            Severity::Warning => paint.warn(&format!("warning[{}]", self.code)),
            Severity::Note => format!("note[{}]", self.code),
        };
        if self.file.is_empty() {
            return format!("{head}: {}", self.what());
        }
        format!("{head}: {}: {}", self.location(), self.what())
    }

    /// As a GitHub Actions workflow command, which the run shows as an
    /// annotation on the file and line:
    /// `::warning file=F,line=L,title=W110 shadowed-rule::field: message`.
    pub fn github(&self) -> String {
        let mut properties = Vec::new();
        if !self.file.is_empty() {
            properties.push(format!("file={}", github_property(&self.file)));
        }
        if let Some(line) = self.line {
            properties.push(format!("line={line}"));
        }
        if let Some(column) = self.column {
            properties.push(format!("col={column}"));
        }
        properties.push(format!("title={}", github_property(&format!("{} {}", self.code, self.name))));
        let command = match self.severity {
            Severity::Note => "notice",
            other => other.as_str(),
        };
        format!("::{command} {}::{}", properties.join(","), github_data(&self.what()))
    }

    /// As a JSON object.
    pub fn json(&self) -> Value {
        json!({
            "severity": self.severity.as_str(),
            "code": self.code,
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "resource": self.resource,
            "field": self.field,
            "message": self.message,
        })
    }
}

/// The line of a lint's field, and the resource holding the policy (a
/// WasmPlugin), when the file is one `warden/v1` document.
fn lint_location(file: &Path, field: &str) -> (Option<u32>, Option<String>) {
    let Ok(source) = warden_config::istio::Source::read(file) else { return (None, None) };
    let Ok(Some(single)) = warden_config::istio::single_policy(&source) else { return (None, None) };
    let within = if single.at.is_empty() { field.to_owned() } else { format!("{}.{field}", single.at) };
    let line = warden_config::locate::line_of(&source.text, single.document, &within);
    (line.map(|l| u32::try_from(l).unwrap_or(u32::MAX)), single.resource)
}

/// A workflow command's message: `%`, CR and LF escaped.
fn github_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn github_property(text: &str) -> String {
    github_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Every lint and error code with its name, severity and meaning: the
/// table `docs/CLI.md` documents.
pub fn codes() -> Vec<(&'static str, &'static str, Severity)> {
    let errors = ErrorClass::ALL.iter().map(|c| (c.code(), c.name(), Severity::Error));
    let warnings = lint::Kind::ALL.iter().map(|k| (k.code(), k.name(), Severity::Warning));
    let notes = [(DEPLOYMENT.0, DEPLOYMENT.1, Severity::Warning), (IMPORT_NOTE.0, IMPORT_NOTE.1, Severity::Note)];
    errors.chain(warnings).chain(notes).collect()
}

/// The code of a warning about where the input deploys the policy (Istio's
/// egress gateway without `gatewayPorts`).
const DEPLOYMENT: (&str, &str) = ("W201", "deployment");

/// The code of a note made reading Istio input.
const IMPORT_NOTE: (&str, &str) = ("N001", "import-note");

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_lint_and_error_class_has_a_distinct_code_and_name() {
        let all = codes();
        let ids: BTreeSet<&str> = all.iter().map(|(c, _, _)| *c).collect();
        let names: BTreeSet<&str> = all.iter().map(|(_, n, _)| *n).collect();
        assert_eq!(ids.len(), all.len(), "codes are distinct: {all:?}");
        assert_eq!(names.len(), all.len(), "names are distinct: {all:?}");
        for (code, name, severity) in &all {
            let letter = match severity {
                Severity::Error => 'E',
                Severity::Warning => 'W',
                Severity::Note => 'N',
            };
            assert!(code.len() == 4 && code.starts_with(letter), "{code}");
            assert!(code[1..].bytes().all(|b| b.is_ascii_digit()), "{code}");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{name}");
        }
        // ALL lists every variant: a new one fails to compile here until
        // it is added.
        for kind in lint::Kind::ALL {
            match kind {
                lint::Kind::HeaderIdentity
                | lint::Kind::XfccIdentity
                | lint::Kind::PeerAddress
                | lint::Kind::NoServices
                | lint::Kind::PublicSuffixService
                | lint::Kind::PublicSuffixAllow
                | lint::Kind::UnanchoredPattern
                | lint::Kind::NoRules
                | lint::Kind::Unreachable
                | lint::Kind::Shadowed
                | lint::Kind::AllowNotPaths
                | lint::Kind::DenyPathsUnnormalized
                | lint::Kind::LowercaseMethod
                | lint::Kind::BodyOverEnvoyBuffer => {}
            }
        }
        assert_eq!(lint::Kind::ALL.len(), 14);
    }

    #[test]
    fn the_codes_table_in_the_docs_is_complete() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CLI.md")).unwrap();
        for (code, name, _) in codes() {
            assert!(docs.contains(&format!("| `{code}` | `{name}` |")), "docs/CLI.md lacks {code} {name}");
        }
    }

    #[test]
    fn github_commands_escape_what_would_end_them() {
        let d = Diagnostic {
            severity: Severity::Warning,
            code: "W110",
            name: "shadowed-rule",
            file: "a,b:c.yaml".into(),
            line: Some(3),
            column: None,
            resource: None,
            field: Some("authorization[1].rules[2]".into()),
            message: "100% shadowed\nreally".into(),
        };
        assert_eq!(
            d.github(),
            "::warning file=a%2Cb%3Ac.yaml,line=3,title=W110 shadowed-rule::authorization[1].rules[2]: 100%25 shadowed%0Areally"
        );
    }
}
