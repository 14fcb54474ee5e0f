//! The habits of the ecosystem's policy tools (`opa test`, `conftest`,
//! `istioctl analyze`, kubeconform): expectations on every field of the
//! decision record, `warden test --run`, `--watch`, coverage as a
//! percentage with `--threshold`, `warden replay --fail-on`, `warden check
//! --format json|github` with stable codes, and colour only on a terminal.

use super::{fixture, transcript, warden};
use warden::cli::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

// ------------------------------------------- expectations on the record

#[test]
fn record_expectations_hold_and_fail_field_by_field() {
    let pass = fixture("record-fields/pass.test.yaml");
    let run = warden(&["test", &pass]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.lines().last(), Some("5 passed, 0 failed"));

    let fail = fixture("record-fields/fail.test.yaml");
    let run = warden(&["test", "--format", "json", &fail]);
    assert_eq!(run.code, EXIT_FAILED);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let mismatches: Vec<(String, serde_json::Value)> = doc["files"][0]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or_default().to_owned(), c["mismatches"].clone()))
        .collect();
    let m = |field: &str, expected: &str, actual: &str| serde_json::json!([{"field": field, "expected": expected, "actual": actual}]);
    assert_eq!(
        mismatches,
        [
            ("wrong reason".to_owned(), m("reason", "deny-policy", "no-allow-match")),
            ("wrong service".to_owned(), m("service", "stripe", "httpbin")),
            ("wrong dryRun".to_owned(), m("dryRun", "[]", "[shadow-deny-posts]")),
            ("wrong audit".to_owned(), m("audit", "[audit-posts]", "[]")),
            ("wrong service of a connection".to_owned(), m("service", "httpbin", "stripe")),
        ]
    );
    assert_eq!(doc["files"][0]["cases"][2]["expected"]["dryRun"], serde_json::json!([]));
    insta::assert_snapshot!(transcript(&["test", &fail]));
}

#[test]
fn record_expectations_are_fields_of_the_test_file_format() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::copy(fixture("record-fields/policy.yaml"), dir.path().join("policy.yaml")).expect("the policy");
    let file = dir.path().join("typo.test.yaml");
    std::fs::write(
        &file,
        "policy: policy.yaml\ntests:\n  - name: t\n    request: {authority: httpbin.org}\n    \
         expect: {decision: allow, dry_run: []}\n",
    )
    .expect("the test file");
    let run = warden(&["test", file.to_str().expect("UTF-8")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.contains("unknown field `dry_run`"), "{}", run.stderr);
    assert!(run.stderr.contains("`reason`, `service`, `dryRun`, `audit`"), "{}", run.stderr);
}
