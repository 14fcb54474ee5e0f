//! The `warden/v1` envelope: a policy document wrapped as a Kubernetes
//! resource (`apiVersion: warden/v1`, `kind: EgressPolicy`, `metadata`,
//! `spec`), and policy text read as YAML (which includes JSON).

use crate::error::FieldError;
use serde_json::Value;

/// Parses policy text (YAML, which includes JSON) and unwraps the
/// Kubernetes envelope.
pub fn parse(text: &str) -> Result<Value, FieldError> {
    let value: Value =
        serde_yaml_ng::from_str(text).map_err(|e| FieldError::whole(format!("not valid YAML/JSON: {e}")))?;
    unwrap_envelope(value)
}

/// Whether a document is in the envelope.
pub fn is_enveloped(value: &Value) -> bool {
    value.get("apiVersion").is_some()
}

/// The envelope's fields. Any other is an error, as everywhere in a
/// policy: a misspelt `metadata` must not silently lose the policy's name.
const FIELDS: [&str; 4] = ["apiVersion", "kind", "metadata", "spec"];

/// Unwraps the `warden/v1` envelope of a document, if it has one.
pub fn unwrap_envelope(value: Value) -> Result<Value, FieldError> {
    let Value::Object(mut map) = value else {
        return Ok(value);
    };
    let Some(api_version) = map.get("apiVersion").cloned() else {
        return Ok(Value::Object(map));
    };
    if api_version != "warden/v1" {
        return Err(FieldError::at("apiVersion", format!("expected warden/v1, found {api_version}")));
    }
    match map.get("kind").and_then(Value::as_str) {
        Some("EgressPolicy") => {}
        other => {
            return Err(FieldError::at("kind", format!("expected EgressPolicy, found {}", other.unwrap_or("nothing"))))
        }
    }
    if let Some(field) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(FieldError::at(
            field.clone(),
            "unknown field: the envelope has apiVersion, kind, metadata and spec (the policy goes under spec)",
        ));
    }
    let metadata_name = match map.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(metadata)) => match metadata.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(other) => return Err(FieldError::at("metadata.name", format!("expected a string, found {other}"))),
        },
        Some(_) => return Err(FieldError::at("metadata", "expected a mapping")),
    };
    let Some(Value::Object(mut spec)) = map.remove("spec") else {
        return Err(FieldError::at("spec", "required, the warden/v1 policy document"));
    };
    if let Some(name) = metadata_name {
        spec.entry("name").or_insert(Value::String(name));
    }
    Ok(Value::Object(spec))
}
