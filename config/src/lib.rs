//! Policy files as users keep them in git, read into the JSON the filter
//! takes as its configuration: YAML or JSON, either the bare `warden/v1`
//! document or wrapped in a Kubernetes envelope (`apiVersion: warden/v1`,
//! `kind: EgressPolicy`, `metadata`, `spec`; see [`envelope`]), or Istio
//! resources (ServiceEntry, AuthorizationPolicy, mesh config; see
//! [`istio`]), in one file or several.
//!
//! ```no_run
//! let config = warden_config::load_config(std::path::Path::new("policies/httpbin/policy.yaml"))?;
//! let policy = warden_engine::compile::load(&config)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod display;
pub mod envelope;
mod error;
pub mod input;
pub mod istio;
pub mod locate;

pub use error::{FieldError, LoadError};

use std::path::{Path, PathBuf};
use warden_engine::{ErrorKind, Policy, PolicyError};

/// Reads a policy file and returns the filter configuration (JSON bytes).
/// A `warden/v1` document is not validated here; [`load_policy`] and
/// [`warden_engine::compile::load`] do that. Istio input is converted and
/// validated, so that errors name the Istio resource and field.
pub fn load_config(path: &Path) -> Result<Vec<u8>, LoadError> {
    load_configs(&[path.to_owned()])
}

/// Reads the policy a test file's `policy:` names: one file (a `warden/v1`
/// document or Istio YAML) or several files of Istio YAML (with at most one
/// `warden/v1` document for the settings Istio has no word for), and
/// returns the filter configuration (JSON bytes).
pub fn load_configs(paths: &[PathBuf]) -> Result<Vec<u8>, LoadError> {
    convert(&read_sources(paths)?).map(|(config, _)| config)
}

/// What stands for standard input where a policy file is expected.
pub const STDIN: &str = "-";

/// The files a command line's policy paths stand for, read: a file is
/// itself, a directory every policy file under it (`*.yaml`, `*.yml`,
/// `*.json`, not `*.test.yaml`, not hidden, in path order), `-` standard
/// input (once). Together they are one input, like one file holding them
/// all.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<istio::Source>, LoadError> {
    let mut sources = Vec::new();
    let mut stdin_read = false;
    for path in paths {
        if path.as_os_str() == STDIN {
            if std::mem::replace(&mut stdin_read, true) {
                return Err(LoadError::new(path, "standard input can be read only once"));
            }
            let name = Path::new("<stdin>");
            sources.push(istio::Source::new(name, input::read_from(std::io::stdin().lock(), name)?));
        } else if path.is_dir() {
            let files = policy_files(path)?;
            if files.is_empty() {
                return Err(LoadError::new(path, "a directory with no policy files (*.yaml, *.yml, *.json) under it"));
            }
            for file in files {
                sources.push(istio::Source::read(&file)?);
            }
        } else {
            sources.push(istio::Source::read(path)?);
        }
    }
    Ok(sources)
}

/// The policy files under a directory, in path order: YAML and JSON files,
/// not test files (`*.test.yaml`), nothing hidden.
fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let hidden = |e: &walkdir::DirEntry| e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.');
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name().into_iter().filter_entry(|e| !hidden(e)) {
        let entry = entry.map_err(|e| LoadError::new(e.path().unwrap_or(dir), format!("cannot read: {e}")))?;
        let name = entry.file_name().to_string_lossy();
        let policy = [".yaml", ".yml", ".json"].iter().any(|ext| name.ends_with(ext))
            && ![".test.yaml", ".test.yml"].iter().any(|ext| name.ends_with(ext));
        if entry.file_type().is_file() && policy {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// The filter configuration of read sources, and the notes made on the
/// way: one source may hold one policy; otherwise they are Istio input.
fn convert(sources: &[istio::Source]) -> Result<(Vec<u8>, Vec<istio::Note>), LoadError> {
    match sources {
        [] => Err(LoadError::new(Path::new(""), "no policy file given")),
        [one] => match istio::single_policy(one)? {
            Some(single) => serde_json::to_vec(&single.policy)
                .map(|config| (config, single.notes))
                .map_err(|e| LoadError::new(&one.file, e.to_string())),
            None => istio::import(sources, &istio::Options::default()).map(|i| (i.config(), i.notes)),
        },
        _ => istio::import(sources, &istio::Options::default()).map(|i| (i.config(), i.notes)),
    }
}

/// Why [`load_policy`] refused a policy (the error boxed: results stay
/// small where a policy loads).
#[derive(Debug)]
pub enum PolicyLoadError {
    /// A file cannot be read, is not YAML or JSON, or is Istio input that
    /// cannot be converted.
    Unreadable(Box<LoadError>),
    /// A `warden/v1` document that does not compile: the file, the line
    /// where the field is, the field and the compiler's kind of error.
    Invalid(Box<LoadError>),
}

impl std::fmt::Display for PolicyLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyLoadError::Unreadable(e) | PolicyLoadError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PolicyLoadError {}

/// A policy read and compiled.
#[derive(Debug)]
pub struct Loaded {
    /// The filter configuration (JSON bytes).
    pub config: Vec<u8>,
    /// The policy, compiled natively.
    pub policy: Policy,
    /// What reading it noted or warns about (Istio input read differently
    /// from how it is written, settings that look wrong for where it is
    /// deployed): never fatal unless the user asks (`--strict`).
    pub notes: Vec<istio::Note>,
}

/// Reads a policy (as [`load_configs`]) and compiles it natively: the
/// filter configuration, the policy and the notes. An error names the
/// file, the field and, where the field is written in the file, its line.
pub fn load_policy(paths: &[PathBuf]) -> Result<Loaded, PolicyLoadError> {
    let unreadable = |e| PolicyLoadError::Unreadable(Box::new(e));
    let sources = read_sources(paths).map_err(unreadable)?;
    let (config, notes) = convert(&sources).map_err(unreadable)?;
    match warden_engine::compile::load(&config) {
        Ok(policy) => Ok(Loaded { config, policy, notes }),
        Err(e) => Err(PolicyLoadError::Invalid(Box::new(match sources.as_slice() {
            [one] => invalid_in(one, &e),
            _ => LoadError::new(sources.first().map_or(Path::new(""), |s| s.file.as_path()), e.message())
                .at_field(e.path.clone())
                .of_kind(e.kind),
        }))),
    }
}

/// An error of the compiler on the policy read from `source`, with the
/// line of the field at fault. Positions the JSON reader gives refer to the
/// JSON the file was converted to, not to the file, so they are left out.
fn invalid_in(source: &istio::Source, err: &PolicyError) -> LoadError {
    located(source, &err.path, problem(err)).of_kind(err.kind.clone())
}

/// What the compiler says is wrong, without the position its JSON reader
/// adds: that is a position in the JSON the file was converted to, not in
/// the file.
pub(crate) fn problem(err: &PolicyError) -> String {
    match &err.kind {
        ErrorKind::Syntax(message) => strip_position(message).to_owned(),
        _ => err.message().into_owned(),
    }
}

/// A YAML reader's error in `file`: its line and column in the file, and
/// the problem without them.
pub(crate) fn yaml_error(file: &Path, e: &serde_yaml_ng::Error) -> LoadError {
    let text = e.to_string();
    let location = e.location();
    let problem = match &location {
        Some(l) => text.replacen(&format!(" at line {} column {}", l.line(), l.column()), "", 1),
        None => text,
    };
    LoadError::new(file, format!("not valid YAML/JSON: {problem}"))
        .at_line(location.as_ref().map(|l| l.line()))
        .at_column(location.as_ref().map(|l| l.column()))
}

/// An error at a field of a one-policy file, with its line: the field is
/// looked up where the policy is (under `spec` in the envelope, under
/// `spec.pluginConfig` in a WasmPlugin), and named there for a WasmPlugin.
fn located(source: &istio::Source, field: &str, problem: String) -> LoadError {
    let single = istio::single_policy(source).ok().flatten();
    let (document, at, resource) = single.map_or((0, "", None), |s| (s.document, s.at, s.resource));
    let within = match (at, field) {
        ("", _) => field.to_owned(),
        (_, "") => at.to_owned(),
        _ => format!("{at}.{field}"),
    };
    let line =
        locate::line_of(&source.text, document, &within).or_else(|| locate::line_of(&source.text, document, field));
    match resource {
        Some(resource) => LoadError::new(&source.file, problem).in_resource(resource).at_line(line).at_field(within),
        None => LoadError::new(&source.file, problem).at_line(line).at_field(field),
    }
}

/// `message at line 1 column 32` → `message`.
fn strip_position(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((head, position))
            if position.split_once(" column ").is_some_and(|(l, c)| {
                !l.is_empty() && !c.is_empty() && (l.bytes().chain(c.bytes())).all(|b| b.is_ascii_digit())
            }) =>
        {
            head
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::parse;

    #[test]
    fn envelope_is_unwrapped_and_named() {
        let v = parse("apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: team-a}\nspec:\n  services: []\n")
            .unwrap();
        assert_eq!(v, serde_json::json!({"name": "team-a", "services": []}));
        let bare = parse("{\"name\": \"x\"}").unwrap();
        assert_eq!(bare, serde_json::json!({"name": "x"}));
        assert_eq!(parse("apiVersion: v1\nkind: ConfigMap\n").unwrap_err().path, "apiVersion");
        assert_eq!(parse("apiVersion: warden/v1\nkind: Other\nspec: {}\n").unwrap_err().path, "kind");
        let envelope = |rest: &str| parse(&format!("apiVersion: warden/v1\nkind: EgressPolicy\n{rest}"));
        assert_eq!(envelope("metdata: {name: a}\nspec: {}\n").unwrap_err().path, "metdata");
        assert_eq!(envelope("metadata: {name: 7}\nspec: {}\n").unwrap_err().path, "metadata.name");
        assert_eq!(envelope("metadata: [a]\nspec: {}\n").unwrap_err().path, "metadata");
        assert_eq!(envelope("spec: {name: b}\n").unwrap(), serde_json::json!({"name": "b"}));
        assert_eq!(envelope("metadata: {namespace: n, labels: {a: b}}\nspec: {}\n").unwrap(), serde_json::json!({}));
    }

    #[test]
    fn istio_files_are_converted_one_or_several() {
        let dir = std::env::temp_dir().join(format!("warden-policy-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let se = dir.join("se.yaml");
        let ap = dir.join("ap.yaml");
        let bare = dir.join("bare.yaml");
        std::fs::write(
            &se,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: h, namespace: e}\n\
             spec: {hosts: [h.org], ports: [{number: 80}]}\n",
        )
        .unwrap();
        std::fs::write(
            &ap,
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: e}\n\
             spec:\n  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: h}]\n  \
             rules: [{from: [{source: {requestPrincipals: ['*']}}]}]\n",
        )
        .unwrap();
        std::fs::write(&bare, "name: x\n").unwrap();
        let json = |bytes: Vec<u8>| serde_json::from_slice::<serde_json::Value>(&bytes).unwrap();
        assert_eq!(json(load_config(&se).unwrap())["services"][0]["name"], "e/h");
        assert_eq!(json(load_config(&bare).unwrap()), serde_json::json!({"name": "x"}));
        let e = load_configs(&[se.clone(), ap.clone()]).unwrap_err();
        assert_eq!(e.file, ap);
        assert!(
            e.message().starts_with("AuthorizationPolicy e/p: spec.rules[0].from[0].source.requestPrincipals"),
            "{e}"
        );
        let e = load_configs(&[se.clone(), dir.join("missing.yaml")]).unwrap_err();
        assert!(e.message().starts_with("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
