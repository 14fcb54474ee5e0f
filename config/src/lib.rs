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
pub mod istio;

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

impl From<istio::ImportError> for LoadError {
    fn from(e: istio::ImportError) -> Self {
        LoadError { file: e.file, message: e.message }
    }
}

/// Reads a policy file and returns the filter configuration (JSON bytes).
/// A `warden/v1` document is not validated here;
/// [`warden_engine::compile::load`] does that, with field paths. Istio
/// input is converted and validated, so that errors name the Istio
/// resource and field.
pub fn load_config(path: &Path) -> Result<Vec<u8>, LoadError> {
    load_configs(&[path.to_owned()])
}

/// Reads the policy a test file's `policy:` names: one file (a `warden/v1`
/// document or Istio YAML) or several files of Istio YAML (with at most one
/// `warden/v1` document for the settings Istio has no word for), and
/// returns the filter configuration (JSON bytes).
pub fn load_configs(paths: &[PathBuf]) -> Result<Vec<u8>, LoadError> {
    let sources = paths.iter().map(|p| istio::Source::read(p)).collect::<Result<Vec<_>, _>>()?;
    match sources.as_slice() {
        [] => Err(LoadError { file: PathBuf::new(), message: "no policy file given".into() }),
        [one] if !istio::is_istio(&one.text) => {
            let error = |message: String| LoadError { file: one.file.clone(), message };
            let value = envelope::parse(&one.text).map_err(error)?;
            serde_json::to_vec(&value).map_err(|e| error(e.to_string()))
        }
        _ => Ok(istio::import(&sources, &istio::Options::default())?.config()),
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
        assert!(parse("apiVersion: v1\nkind: ConfigMap\n").unwrap_err().starts_with("apiVersion"));
        assert!(parse("apiVersion: warden/v1\nkind: Other\nspec: {}\n").unwrap_err().starts_with("kind"));
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
            e.message.starts_with("AuthorizationPolicy e/p: spec.rules[0].from[0].source.requestPrincipals"),
            "{e}"
        );
        let e = load_configs(&[se.clone(), dir.join("missing.yaml")]).unwrap_err();
        assert!(e.message.starts_with("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
