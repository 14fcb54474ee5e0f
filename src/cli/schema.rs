//! `warden schema`: the JSON Schema of a `warden/v1` policy document, for editors.

use super::artifacts::write;
use super::exit::{CliError, Exit, EXIT_OK};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `warden schema`.
#[derive(Args)]
pub(super) struct SchemaArgs {
    /// Write it to this file instead of standard output.
    #[arg(short, long)]
    pub(super) output: Option<PathBuf>,
}

pub(super) const ABOUT: &str = "\
Print the JSON Schema of a warden/v1 policy document, for editors.

Generated from the same types the filter parses, so it cannot drift from them: unknown fields
are refused (additionalProperties: false), enums list their values. Point an editor at it,
e.g. with the YAML language server's modeline at the top of a policy file:

  # yaml-language-server: $schema=./warden.schema.json

The schema checks shape; `warden check` checks meaning (templates, ports, references, lints).";

/// The JSON Schema of the policy document.
pub fn policy_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(warden_engine::Document)).unwrap_or_default();
    if let Some(map) = schema.as_object_mut() {
        map.insert("title".into(), "warden/v1 policy".into());
        map.insert(
            "description".into(),
            "An egress policy for the Warden Envoy filter: registry, authorization, responses.".into(),
        );
    }
    schema
}

pub(super) fn schema(output: Option<&Path>, out: &mut dyn Write) -> Exit {
    let text = match serde_json::to_string_pretty(&policy_schema()) {
        Ok(t) => t + "\n",
        Err(e) => {
            return Err(CliError::Input(format!("cannot write the schema: {e}")));
        }
    };
    match output {
        Some(path) => write(path, text.as_bytes(), out),
        None => {
            out.write_all(text.as_bytes())?;
            Ok(EXIT_OK)
        }
    }
}
