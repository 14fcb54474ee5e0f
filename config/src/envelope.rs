//! The `warden/v1` envelope: a policy document wrapped as a Kubernetes
//! resource (`apiVersion: warden/v1`, `kind: EgressPolicy`, `metadata`,
//! `spec`), and policy text read as YAML (which includes JSON).

/// Parses policy text (YAML, which includes JSON) and unwraps the
/// Kubernetes envelope.
pub fn parse(text: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML/JSON: {e}"))?;
    unwrap_envelope(value)
}

/// Unwraps the `warden/v1` envelope of a document, if it has one.
pub fn unwrap_envelope(value: serde_json::Value) -> Result<serde_json::Value, String> {
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
