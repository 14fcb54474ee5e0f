//! Policy files as users keep them in git: YAML or JSON, either the bare
//! `warden/v1` document or wrapped in a Kubernetes envelope
//! (`apiVersion: warden/v1`, `kind: EgressPolicy`, `metadata`, `spec`).
//! The result is the JSON the filter takes as its configuration.

use std::fmt;
use std::path::{Path, PathBuf};

/// A policy file that could not be read.
#[derive(Debug)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// What went wrong, with the field path where there is one.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for LoadError {}

/// Reads a policy file and returns the filter configuration (JSON bytes).
/// The document is not validated here; [`warden_engine::compile::load`]
/// does that, with field paths.
pub fn load_config(path: &Path) -> Result<Vec<u8>, LoadError> {
    let error = |message: String| LoadError { file: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
    let value = parse(&text).map_err(error)?;
    serde_json::to_vec(&value).map_err(|e| error(e.to_string()))
}

/// Parses policy text (YAML, which includes JSON) and unwraps the
/// Kubernetes envelope.
pub fn parse(text: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML/JSON: {e}"))?;
    unwrap_envelope(value)
}

fn unwrap_envelope(value: serde_json::Value) -> Result<serde_json::Value, String> {
    let serde_json::Value::Object(mut map) = value else {
        return Ok(value);
    };
    let Some(api_version) = map.get("apiVersion").cloned() else {
        return Ok(serde_json::Value::Object(map));
    };
    if api_version != "warden/v1" {
        return Err(format!("apiVersion: expected warden/v1, found {api_version}"));
    }
    match map.get("kind").and_then(|k| k.as_str()) {
        Some("EgressPolicy") => {}
        other => return Err(format!("kind: expected EgressPolicy, found {}", other.unwrap_or("nothing"))),
    }
    let metadata_name = map.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).map(str::to_owned);
    let Some(serde_json::Value::Object(mut spec)) = map.remove("spec") else {
        return Err("spec: required, the warden/v1 policy document".into());
    };
    if let Some(name) = metadata_name {
        spec.entry("name").or_insert(serde_json::Value::String(name));
    }
    Ok(serde_json::Value::Object(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_unwrapped_and_named() {
        let v = parse("apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: team-a}\nspec:\n  services: []\n")
            .unwrap();
        assert_eq!(v, serde_json::json!({"name": "team-a", "services": []}));
        let bare = parse("{\"name\": \"x\"}").unwrap();
        assert_eq!(bare, serde_json::json!({"name": "x"}));
        assert!(parse("apiVersion: v1\nkind: ConfigMap\n").unwrap_err().starts_with("apiVersion"));
        assert!(parse("apiVersion: warden/v1\nkind: Other\nspec: {}\n").unwrap_err().starts_with("kind"));
    }
}
