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

// ----------------------------------------------------------- test --run

#[test]
fn run_selects_cases_by_name_or_file_and_name() {
    let dirs = [fixture("failing"), fixture("coverage")];
    let run = warden(&["test", "--run", "^wrong (status|policy)$", &dirs[0], &dirs[1]]);
    assert_eq!(run.code, EXIT_FAILED);
    let cases: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("ok ") || l.starts_with("FAIL ")).collect();
    assert_eq!(
        cases,
        [
            "FAIL tests/cli/fixtures/failing/failing.test.yaml › wrong status",
            "FAIL tests/cli/fixtures/failing/failing.test.yaml › wrong policy",
        ]
    );
    assert_eq!(run.stdout.lines().last(), Some("0 passed, 2 failed, 11 filtered out"));

    // `FILE: NAME`, the file as shown.
    let run = warden(&["test", "--run", "writes.test.yaml: ", &dirs[0], &dirs[1]]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.lines().last(), Some("1 passed, 0 failed, 12 filtered out"));

    let run = warden(&["test", "--format", "json", "--run", "passes", &dirs[0]]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!((doc["passed"].as_u64(), doc["filteredOut"].as_u64()), (Some(1), Some(8)));

    // No filter, no count.
    assert_eq!(warden(&["test", &dirs[1]]).stdout.lines().last(), Some("4 passed, 0 failed"));
}

#[test]
fn run_matching_no_case_is_an_input_error() {
    insta::assert_snapshot!(transcript(&["test", "--run", "no such case", &fixture("coverage")]));
    let run = warden(&["test", "--run", "(", &fixture("coverage")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.starts_with("error: --run: regex parse error"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

// --------------------------------------------------- coverage threshold

#[test]
fn coverage_has_a_percentage_and_a_threshold() {
    let dir = fixture("coverage");
    // 9 items: 4 rules of enforced policies, 2 AUDIT or dry-run policies,
    // 3 services; 3 untouched (see warden_test_coverage).
    let run = warden(&["test", "--coverage", &dir]);
    assert_eq!(run.code, EXIT_OK);
    assert!(run.stdout.contains("policy.yaml (4 cases): 66.6% covered (6 of 9), 3 not touched\n"), "{}", run.stdout);
    let below = warden(&["test", "--threshold", "66.7", &dir]);
    assert_eq!(below.code, EXIT_FAILED, "below the threshold fails though every case passed");
    assert!(below.stdout.contains("coverage:"), "--threshold implies --coverage");
    assert_eq!(
        below.stderr,
        "error: coverage 66.6% is below the threshold of 66.7%: 6 of 9 rules, AUDIT and dry-run policies and \
         services touched\n"
    );
    let at = warden(&["test", "--threshold", "66.6", &dir]);
    assert_eq!(at.code, EXIT_OK, "{}", at.stderr);
    assert!(at.stderr.is_empty());

    // Failed cases still fail; input errors still win.
    assert_eq!(warden(&["test", "--threshold", "0", &fixture("failing")]).code, EXIT_FAILED);
    assert_eq!(warden(&["test", "--threshold", "0", &fixture("invalid-policy")]).code, EXIT_USAGE);
    let bad = warden(&["test", "--threshold", "120", &dir]);
    assert_eq!(bad.code, EXIT_USAGE);
    assert!(bad.stderr.contains("120 is not a percentage (0-100)"), "{}", bad.stderr);

    let run = warden(&["test", "--format", "json", "--threshold", "80", &dir, &fixture("failing")]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(
        doc["coverageTotal"],
        serde_json::json!({"items": 12, "touched": 9, "percent": 75.0, "threshold": 80.0, "belowThreshold": true})
    );
    assert_eq!((doc["coverage"][0]["items"].as_u64(), doc["coverage"][0]["touched"].as_u64()), (Some(9), Some(6)));
    assert_eq!(doc["coverage"][0]["percent"], 66.6);
}

// ----------------------------------------------------- replay --fail-on

#[test]
fn replay_fail_on_turns_the_report_into_a_check() {
    let policy = fixture("replay/policy.yaml");
    let log = fixture("replay/access.log");
    let replay = |extra: &[&str]| {
        let mut args = vec!["replay", policy.as_str(), log.as_str(), "--principal-field", "downstream_peer_uri_san"];
        args.extend_from_slice(extra);
        warden(&args)
    };
    let report = replay(&[]);
    assert_eq!(report.code, EXIT_OK, "a report by default: {}", report.stderr);
    // The fixture log: 13 requests and 1 connection, of which 2 + 1
    // denied, 3 unregistered, 2 bad requests, 1 DLP; 1 decision changed;
    // shadow-deletes would refuse 2 requests and the connection.
    let expected = [
        ("refused", "9 lines would be refused"),
        ("denied", "3 lines would be denied by an authorization policy"),
        ("unregistered", "3 lines would be refused as unregistered"),
        ("bad-request", "2 lines would be refused as bad requests"),
        ("dlp", "1 line would be refused by DLP"),
        ("changed", "1 line would be decided otherwise than the logged decision"),
        ("dry-run", "3 lines (counted once per dry-run policy) would be refused by a dry-run policy"),
    ];
    for (what, message) in expected {
        let run = replay(&["--fail-on", what]);
        assert_eq!(run.code, EXIT_FAILED, "{what}");
        assert_eq!(run.stderr, format!("error: --fail-on {what}: {message}\n"), "{what}");
        assert_eq!(run.stdout, report.stdout, "the report is the same");
    }
    let run = replay(&["--fail-on", "dlp,changed", "--fail-on", "dlp"]);
    assert_eq!(run.code, EXIT_FAILED);
    assert_eq!(run.stderr.lines().count(), 2, "{}", run.stderr);

    // Traffic the policy allows, as logged: nothing to fail on.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let allowed = dir.path().join("allowed.log");
    let text = std::fs::read_to_string(&log).expect("the log");
    std::fs::write(&allowed, text.lines().take(2).map(|l| format!("{l}\n")).collect::<String>()).expect("the log");
    let run = warden(&[
        "replay",
        &policy,
        allowed.to_str().expect("UTF-8"),
        "--principal-field",
        "downstream_peer_uri_san",
        "--fail-on",
        "refused,changed,dry-run",
    ]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("allow                                   2"), "{}", run.stdout);

    let run = replay(&["--fail-on", "sometimes"]);
    assert_eq!(run.code, EXIT_USAGE);
}
