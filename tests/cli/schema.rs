//! `warden schema [policy|test]`: the schemas are valid JSON Schema
//! (draft 2020-12), every example file validates against its schema, and
//! the schemas refuse what the readers refuse — checked with a JSON Schema
//! validator of its own (`jsonschema`), not with schemars, which wrote them.

use super::warden;
use jsonschema::Validator;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use warden::cli::EXIT_OK;
use warden::testing::testfile::{self, TestFile};

/// `warden schema ARGS`, parsed, and a validator for it.
fn schema(args: &[&str]) -> (Value, Validator) {
    let run = warden(&[&["schema"][..], args].concat());
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let schema: Value = serde_json::from_str(&run.stdout).expect("the schema is JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    jsonschema::meta::validate(&schema).expect("a valid draft 2020-12 schema");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    (schema, validator)
}

/// Every YAML document of a file (`---` separated), as JSON values.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("YAML")
}

/// The validator's errors for `value`, one per line (empty: valid).
fn errors(validator: &Validator, value: &Value) -> String {
    validator.iter_errors(value).map(|e| format!("{}: {e}\n", e.instance_path())).collect()
}

/// Files under `dir`, recursively, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("readable").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------ policy files

#[test]
fn warden_schema_is_the_policy_schema_by_default() {
    assert_eq!(warden(&["schema"]).stdout, warden(&["schema", "policy"]).stdout);
    assert_ne!(warden(&["schema"]).stdout, warden(&["schema", "test"]).stdout);
    let run = warden(&["schema", "tests"]);
    assert_eq!(run.code, warden::cli::EXIT_USAGE);
    assert!(run.stderr.contains("possible values: policy, test"), "{}", run.stderr);
}

/// Every `warden/v1` document under `policies/` — bare, in the envelope,
/// or as the `pluginConfig` of a WasmPlugin — validates. Istio resources
/// are skipped by kind, and only the kinds listed here: a new kind must be
/// added on purpose. A file the policy reader takes as one `warden/v1`
/// policy (not Istio input) must have had all its documents validated.
#[test]
fn every_example_policy_validates() {
    let (_, validator) = schema(&[]);
    let istio_kinds = [
        "AuthorizationPolicy",
        "DestinationRule",
        "Gateway",
        "IstioOperator",
        "Namespace",
        "ServiceEntry",
        "VirtualService",
        "WasmPlugin",
        "mesh config",
    ];
    let (mut validated, mut skipped) = (Vec::new(), Vec::new());
    for path in files(Path::new("policies")) {
        let name = path.to_string_lossy().into_owned();
        let is_policy_text = name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
        if !is_policy_text || name.ends_with(".test.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut all_validated = true;
        for doc in documents(&text) {
            let api_version = doc.get("apiVersion").and_then(Value::as_str);
            let kind = match api_version {
                Some(v) if v.starts_with("warden/") => None,
                Some(_) => Some(doc["kind"].as_str().unwrap_or("(no kind)").to_owned()),
                None if doc.get("meshConfig").is_some() => Some("mesh config".to_owned()),
                None => None,
            };
            match kind {
                None => {
                    assert_eq!(errors(&validator, &doc), "", "{name} does not validate");
                    validated.push(name.clone());
                }
                Some(kind) => {
                    assert!(
                        istio_kinds.contains(&kind.as_str()),
                        "{name}: a {kind} is neither warden/v1 nor a known kind"
                    );
                    // A WasmPlugin that deploys Warden carries the policy.
                    if let Some(config) = doc.get("spec").and_then(|s| s.get("pluginConfig")) {
                        assert_eq!(errors(&validator, config), "", "{name}: spec.pluginConfig does not validate");
                        validated.push(format!("{name} (pluginConfig)"));
                    } else {
                        all_validated = false;
                        skipped.push(format!("{name}: {kind}"));
                    }
                }
            }
        }
        if !warden::config::istio::is_istio(&text) {
            assert!(all_validated, "{name} is one warden/v1 policy, yet a document of it was skipped");
        }
    }
    // The examples hold both forms, and the Istio ones their resources.
    for expected in [
        "policies/ambient-waypoint/policy.yaml",        // bare
        "policies/dlp/policy.yaml",                     // envelope
        "policies/istio/https-passthrough/warden.yaml", // envelope without spec.name
        "policies/istio/ambient-waypoint/wasmplugin.yaml (pluginConfig)",
    ] {
        assert!(validated.iter().any(|v| v == expected), "{expected} not validated: {validated:#?}");
    }
    assert!(validated.len() >= 12, "{validated:#?}");
    assert!(skipped.iter().any(|s| s.ends_with(": ServiceEntry")), "{skipped:#?}");
}

/// Whether the policy reader takes `text` as a well-formed `warden/v1`
/// policy: the envelope unwrapped (`warden_config::envelope`), then the
/// document read into the engine's types. Meaning (names, references,
/// patterns) is `warden check`'s, not the schema's.
fn reader_accepts_policy(text: &str) -> bool {
    warden::config::envelope::parse(text)
        .ok()
        .is_some_and(|v| serde_json::from_value::<warden::engine::Document>(v).is_ok())
}

/// The schema and the reader agree, case by case: both forms are taken,
/// and what the reader refuses (a wrong kind or apiVersion, a misspelt
/// field at any depth, a value outside an enum) the schema refuses.
#[test]
fn the_policy_schema_accepts_what_the_reader_accepts() {
    let (_, validator) = schema(&["policy"]);
    let envelope =
        |spec: &str| format!("apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {{name: p}}\nspec: {spec}\n");
    let valid = [
        "name: p\nservices: [{name: a, hosts: [a.example], ports: [80]}]\n".to_owned(),
        "{\"name\": \"p\", \"outboundTrafficPolicy\": \"ALLOW_ANY\"}".to_owned(),
        "name: p\nidentity: [{peerCertificate: {}}, {filterState: io.istio.peer_principal}, {header: x-id}]\n"
            .to_owned(),
        "name: p\nauthorization: [{name: a, rules: [{to: [{operation: {ports: [80, \"8080\"]}}]}]}]\n".to_owned(),
        "name: p\ndlp: [{name: d, action: REDACT, scan: [body], patterns: [{name: x, regex: x+}]}]\n".to_owned(),
        envelope("{services: [{name: a, hosts: [a.example]}]}"),
        envelope("{name: other}"),
        "apiVersion: warden/v1\nkind: EgressPolicy\nspec: {name: p}\n".to_owned(),
        "apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: p, namespace: n, labels: {a: b}}\nspec: {}\n"
            .to_owned(),
        "apiVersion: warden/v1\nkind: EgressPolicy\nmetadata:\nspec: {name: p}\n".to_owned(),
    ];
    let invalid = [
        // the envelope
        "apiVersion: warden/v1\nkind: ServiceEntry\nspec: {name: p}\n".to_owned(),
        "apiVersion: warden/v1\nspec: {name: p}\n".to_owned(),
        "apiVersion: warden/v2\nkind: EgressPolicy\nspec: {name: p}\n".to_owned(),
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nspec: {hosts: [a]}\n".to_owned(),
        "apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: p}\n".to_owned(),
        "apiVersion: warden/v1\nkind: EgressPolicy\nspec: []\n".to_owned(),
        "apiVersion: warden/v1\nkind: EgressPolicy\nmetdata: {name: p}\nspec: {}\n".to_owned(),
        "apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: 7}\nspec: {}\n".to_owned(),
        "kind: EgressPolicy\nname: p\n".to_owned(),
        // misspelt fields, at every depth, bare and in the envelope
        "name: p\nservics: []\n".to_owned(),
        envelope("{servics: []}"),
        envelope("{services: [{name: a, host: [a.example]}]}"),
        "name: p\nauthorization: [{name: a, rules: [{to: [{operation: {path: [/x]}}]}]}]\n".to_owned(),
        "name: p\nauthorization: [{name: a, rules: [{from: [{source: {principal: [x]}}]}]}]\n".to_owned(),
        "name: p\nidentity: [{peerCertificate: {x: 1}}]\n".to_owned(),
        "name: p\nresponses: {denied: {status: 403, bdy: no}}\n".to_owned(),
        // values
        "name: p\nauthorization: [{name: a, action: PERMIT}]\n".to_owned(),
        "name: p\noutboundTrafficPolicy: registry_only\n".to_owned(),
        "name: p\nservices: [{name: a, hosts: a.example}]\n".to_owned(),
        "name: p\nservices: [{name: a, hosts: [a.example], ports: [-1]}]\n".to_owned(),
        "name: p\ndlp: [{name: d, scan: [cookies]}]\n".to_owned(),
        "name: p\nrequireSniMatch: \"no\"\n".to_owned(),
        "- name: p\n".to_owned(),
    ];
    for text in &valid {
        assert!(reader_accepts_policy(text), "the reader refuses a case meant to be valid:\n{text}");
        assert_eq!(errors(&validator, &yaml(text)), "", "the schema refuses what the reader takes:\n{text}");
    }
    for text in &invalid {
        assert!(!reader_accepts_policy(text), "the reader takes a case meant to be invalid:\n{text}");
        assert!(!validator.is_valid(&yaml(text)), "the schema takes what the reader refuses:\n{text}");
    }
}

/// A validator's error names the field at fault in the form the file
/// uses: under `/spec` in the envelope, at the top in a bare document.
#[test]
fn policy_schema_errors_point_at_the_field() {
    let (_, validator) = schema(&[]);
    let bare = yaml("name: p\nservices: [{name: a, hosts: [a.example], prots: [80]}]\n");
    assert!(errors(&validator, &bare).contains("/services/0: "), "{}", errors(&validator, &bare));
    let enveloped =
        yaml("apiVersion: warden/v1\nkind: EgressPolicy\nspec: {services: [{name: a, hosts: [a], prots: []}]}\n");
    assert!(errors(&validator, &enveloped).contains("/spec/services/0: "), "{}", errors(&validator, &enveloped));
    let kind = yaml("apiVersion: warden/v1\nkind: Policy\nspec: {}\n");
    assert!(errors(&validator, &kind).contains("/kind: "), "{}", errors(&validator, &kind));
}

// -------------------------------------------------------------- test files

/// Every example test file validates against the test-file schema (and
/// the test files are found the way `warden test policies` finds them).
#[test]
fn every_example_test_file_validates() {
    let (schema, validator) = schema(&["test"]);
    assert_eq!(schema["title"], "warden test file");
    assert_eq!(schema["additionalProperties"], false, "typos must not validate");
    let found = testfile::discover(Path::new("policies"));
    assert!(found.len() >= 13, "{found:?}");
    let on_disk = files(Path::new("policies")).into_iter().filter(|p| p.to_string_lossy().ends_with(".test.yaml"));
    assert_eq!(found, on_disk.collect::<Vec<_>>(), "warden test and this test read the same files");
    for path in found {
        let text = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(errors(&validator, &yaml(&text)), "", "{} does not validate", path.display());
    }
}

/// Whether `warden test` takes the test file `text` as written: it reads
/// (serde, as `testfile::load`), and every case can be sent as written
/// (one of request and connection, one body, a connection's port and
/// expectations; `runner::incoming_for`).
fn reader_accepts_test_file(text: &str) -> bool {
    let Ok(file) = serde_yaml_ng::from_str::<TestFile>(text) else { return false };
    file.tests.iter().all(|case| warden::testing::runner::incoming_for(case, &file.gateway).is_ok())
}

/// The test-file schema and `warden test`'s reader agree, case by case:
/// the custom shapes (a policy or a list of them, headers as a map or as
/// pairs, one principal or several, a request or a connection) are taken
/// as the reader takes them, and what it refuses the schema refuses.
#[test]
fn the_test_file_schema_accepts_what_warden_test_accepts() {
    let (_, validator) = schema(&["test"]);
    let file = |case: &str| format!("policy: policy.yaml\ntests:\n  - {case}\n");
    let valid = [
        file("{name: a, request: {authority: a.example}, expect: {decision: allow}}"),
        file(
            "{name: a, request: {principal: [a/ns/b/sa/c, 'spiffe://d/ns/e/sa/f'], method: POST, authority: a.example, \
             path: /x, scheme: https, headers: {x-a: '1'}, body: b, sourceIp: 10.0.0.1, port: 8080, sni: a.example}, \
             expect: {decision: deny, status: 403, policy: p, findings: [aws_access_key], forwardedPath: /x, \
             forwardedBody: b}}",
        ),
        file("{name: a, request: {authority: a, headers: [[x-a, '1'], [x-a, '2']], bodyChunks: [a, b]}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a, headers: {}, bodyBase64: aGk=, body: null}, expect: {decision: allow}}"),
        file("{name: a, connection: {sni: a.example, port: 443, principal: a/ns/b/sa/c, data: hi}, expect: {decision: deny, policy: p}}"),
        file("{name: a, request: null, connection: {port: 443}, expect: {decision: allow, status: null}}"),
        "policy: [mesh.yaml, serviceentry.yaml]\ngateway: {useRemoteAddress: false, xffNumTrustedHops: 1, \
         forwardClientCert: APPEND_FORWARD}\ntests: []\n"
            .to_owned(),
    ];
    let invalid = [
        // unknown fields
        file("{name: a, request: {authority: a}, expect: {decision: allow, stauts: 200}}"),
        file("{name: a, request: {authority: a, heders: {}}, expect: {decision: allow}}"),
        file("{name: a, connection: {port: 443, host: a}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a}, expect: {decision: allow}, skip: true}"),
        "policy: policy.yaml\ntest: []\n".to_owned(),
        "policy: policy.yaml\ngateway: {useRemoteAdress: true}\ntests: []\n".to_owned(),
        // missing
        "tests: []\n".to_owned(),
        file("{name: a, request: {authority: a}}"),
        file("{name: a, request: {path: /}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: ''}, expect: {decision: allow}}"),
        file("{name: a, connection: {sni: a}, expect: {decision: allow}}"),
        // exactly one of request and connection; one body
        file("{name: a, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a}, connection: {port: 443}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a, body: x, bodyChunks: [x]}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a, body: x, bodyBase64: eA==}, expect: {decision: allow}}"),
        // what a connection cannot expect
        file("{name: a, connection: {port: 443}, expect: {decision: deny, status: 403}}"),
        file("{name: a, connection: {port: 443}, expect: {decision: deny, findings: []}}"),
        file("{name: a, connection: {port: 443}, expect: {decision: allow, forwardedPath: /}}"),
        // values
        file("{name: a, request: {authority: a}, expect: {decision: refuse}}"),
        file("{name: a, request: {authority: a, port: 70000}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a, headers: [[x-a, '1', '2']]}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a, headers: {x-a: 1}}, expect: {decision: allow}}"),
        file("{name: a, request: {authority: a, principal: {a: b}}, expect: {decision: allow}}"),
        "policy: {file: policy.yaml}\ntests: []\n".to_owned(),
        "policy: policy.yaml\ngateway: {forwardClientCert: SANITISE}\ntests: []\n".to_owned(),
    ];
    for text in &valid {
        assert!(reader_accepts_test_file(text), "warden test refuses a case meant to be valid:\n{text}");
        assert_eq!(errors(&validator, &yaml(text)), "", "the schema refuses what warden test takes:\n{text}");
    }
    for text in &invalid {
        assert!(!reader_accepts_test_file(text), "warden test takes a case meant to be invalid:\n{text}");
        assert!(!validator.is_valid(&yaml(text)), "the schema takes what warden test refuses:\n{text}");
    }
    // The CLI's own fixtures: the schema and the reader agree on each,
    // the one with a typo included.
    let fixtures = testfile::discover(Path::new(super::FIXTURES));
    assert!(fixtures.iter().any(|p| p.ends_with("bad-test-file/bad.test.yaml")), "{fixtures:?}");
    for path in fixtures {
        let text = std::fs::read_to_string(&path).expect("readable");
        let reader = reader_accepts_test_file(&text);
        assert_eq!(validator.is_valid(&yaml(&text)), reader, "{}: the schema and warden test disagree", path.display());
    }
}

/// The modeline the docs give works: a test file that starts with it is
/// still a test file (it is a comment), and `-o` writes the schema.
#[test]
fn warden_schema_test_writes_the_file_the_modeline_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("warden-test.schema.json");
    let run = warden(&["schema", "test", "-o", out.to_str().expect("UTF-8")]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let written: Value = serde_json::from_slice(&std::fs::read(&out).expect("written")).expect("JSON");
    assert_eq!(written, schema(&["test"]).0);
    let text = "# yaml-language-server: $schema=./warden-test.schema.json\npolicy: p.yaml\ntests: []\n";
    assert!(jsonschema::is_valid(&written, &yaml(text)));
    assert!(reader_accepts_test_file(text));
    assert!(!jsonschema::is_valid(&written, &json!({"policy": "p.yaml", "tests": [], "extra": 1})));
}
