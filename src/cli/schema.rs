//! `warden schema`: the JSON Schemas of a `warden/v1` policy file and of a
//! `*.test.yaml` file, for editors.

use super::artifacts::write;
use super::exit::{CliError, Exit, EXIT_OK};
use clap::{Args, ValueEnum};
use schemars::{generate::SchemaSettings, JsonSchema};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `warden schema`.
#[derive(Args)]
pub(super) struct SchemaArgs {
    /// Which file's schema: a policy file, or a test file (*.test.yaml).
    #[arg(value_enum, value_name = "KIND", default_value_t = SchemaOf::Policy)]
    pub(super) of: SchemaOf,
    /// Write it to this file instead of standard output.
    #[arg(short, long)]
    pub(super) output: Option<PathBuf>,
}

/// The files `warden schema` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum SchemaOf {
    /// A warden/v1 policy file: the bare document, or the document in its
    /// `apiVersion: warden/v1`, `kind: EgressPolicy` envelope.
    Policy,
    /// A `*.test.yaml` file: the policy it names and its cases.
    Test,
}

pub(super) const ABOUT: &str = "\
Print the JSON Schema of a warden/v1 policy file (default) or of a test file (*.test.yaml), for
editors.

Generated from the same types the filter and `warden test` parse, so it cannot drift from them:
unknown fields are refused (additionalProperties: false), enums list their values. The policy
schema takes the bare document and the `apiVersion: warden/v1`, `kind: EgressPolicy` envelope.
Point an editor at it, e.g. with the YAML language server's modeline at the top of the file:

  # yaml-language-server: $schema=./warden.schema.json
  # yaml-language-server: $schema=./warden-test.schema.json

The schemas check shape; `warden check` checks meaning (templates, ports, references, lints).";

// A type for the schema only: `warden_config::envelope` reads the envelope
// (from any YAML value), and tests/cli/schema.rs requires the two to agree.
/// The `warden/v1` policy document wrapped as a Kubernetes resource.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "EgressPolicy")]
#[allow(dead_code)]
struct EgressPolicy {
    /// `warden/v1`.
    api_version: ApiVersion,
    /// `EgressPolicy`.
    kind: EnvelopeKind,
    /// The resource's metadata; Warden reads its `name` only.
    #[serde(default)]
    metadata: Option<Metadata>,
    /// The `warden/v1` policy document.
    spec: warden_engine::Document,
}

/// The envelope's API version.
#[derive(JsonSchema)]
#[allow(dead_code)]
enum ApiVersion {
    /// The only one.
    #[serde(rename = "warden/v1")]
    V1,
}

/// The envelope's kind.
#[derive(JsonSchema)]
#[allow(dead_code)]
enum EnvelopeKind {
    /// The only one.
    EgressPolicy,
}

/// Kubernetes object metadata (`namespace`, `labels`, ... are allowed and
/// ignored).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Metadata {
    /// The policy's name, unless `spec.name` gives one.
    #[serde(default)]
    name: Option<String>,
}

/// The JSON Schema of a `warden/v1` policy file: a document with an
/// `apiVersion` is the envelope (`then`), one without is the bare policy
/// document (`else`). `if`/`then`/`else` rather than `oneOf`, so that a
/// validator's error names the field at fault in the form the file uses.
pub fn policy_schema() -> serde_json::Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let document = generator.subschema_for::<warden_engine::Document>();
    let envelope = generator.subschema_for::<EgressPolicy>();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "warden/v1 policy",
        "description": "An egress policy for the Warden Envoy filter: registry, authorization, DLP, \
                        responses. The bare document, or the document under `spec` of the \
                        `apiVersion: warden/v1`, `kind: EgressPolicy` envelope.",
        "if": {"type": "object", "required": ["apiVersion"]},
        "then": envelope,
        "else": document,
        "$defs": generator.take_definitions(true),
    })
}

/// The JSON Schema of a `*.test.yaml` file.
pub fn test_file_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(crate::testing::testfile::TestFile)).unwrap_or_default();
    if let Some(map) = schema.as_object_mut() {
        map.insert("title".into(), "warden test file".into());
        map.insert(
            "description".into(),
            "A `*.test.yaml` file: the policy it tests and the requests and connections it must \
             allow or refuse (`warden test`)."
                .into(),
        );
    }
    schema
}

pub(super) fn schema(of: SchemaOf, output: Option<&Path>, out: &mut dyn Write) -> Exit {
    let schema = match of {
        SchemaOf::Policy => policy_schema(),
        SchemaOf::Test => test_file_schema(),
    };
    let text = match serde_json::to_string_pretty(&schema) {
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
