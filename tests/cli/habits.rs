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

// ------------------------------------------ check --format, stable codes

/// Every error class of `warden check`, from a file that has it, and the
/// code it gets in each format.
#[test]
fn check_errors_have_a_stable_code_per_class() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("the file");
        path.to_str().expect("UTF-8").to_owned()
    };
    let cases = [
        (fixture("missing.yaml"), "E001", "unreadable", EXIT_USAGE),
        (write("nested.yaml", &"[".repeat(100)), "E002", "input-limit", EXIT_USAGE),
        (fixture("bad-input/yaml-syntax.yaml"), "E003", "syntax", EXIT_USAGE),
        (fixture("bad-input/empty.yaml"), "E004", "not-a-policy", EXIT_USAGE),
        (fixture("bad-input/istiooperator.yaml"), "E004", "not-a-policy", EXIT_USAGE),
        (fixture("istio-import/custom.yaml"), "E005", "istio-resource", EXIT_USAGE),
        (write("schema.yaml", "name: t\nservices:\n- name: a\n  hostz: [b.com]\n"), "E101", "schema", EXIT_FAILED),
        (fixture("bad-input/istio-with-bad-setting.yaml"), "E101", "schema", EXIT_USAGE),
        (fixture("invalid-policy/policy.yaml"), "E102", "bad-value", EXIT_FAILED),
        (
            write("reference.yaml", "name: t\nservices: [{name: a, hosts: [a.com]}]\nauthorization:\n- {name: p, services: [nope], rules: [{}]}\n"),
            "E103",
            "invalid-policy",
            EXIT_FAILED,
        ),
    ];
    for (file, code, name, exit) in &cases {
        let human = warden(&["check", file]);
        assert_eq!(human.code, *exit, "{file}");
        let said = format!("{}{}", human.stdout, human.stderr);
        assert!(said.starts_with(&format!("error[{code}]: ")), "{file}: {said}");

        let json = warden(&["check", "--format", "json", file]);
        assert_eq!(json.code, *exit, "{file}");
        assert!(json.stderr.is_empty(), "{file}: {}", json.stderr);
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
        let error = &doc["files"][0]["errors"][0];
        assert_eq!((error["code"].as_str(), error["name"].as_str()), (Some(*code), Some(*name)), "{file}");
        assert_eq!(doc["files"][0]["valid"], false);

        let github = warden(&["check", "--format", "github", file]);
        assert_eq!(github.code, *exit, "{file}");
        assert!(github.stdout.starts_with("::error file="), "{file}: {}", github.stdout);
        assert!(github.stdout.contains(&format!(",title={code} {name}::")), "{file}: {}", github.stdout);
    }
}

#[test]
fn check_json_has_every_warning_with_its_code_line_and_field() {
    let lints = fixture("lints/lints.yaml");
    let run = warden(&["check", "--format", "json", &lints, &fixture("passing/policy.json")]);
    assert_eq!(run.code, EXIT_OK);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!((doc["errors"].as_u64(), doc["warnings"].as_u64()), (Some(0), Some(12)));
    let file = &doc["files"][0];
    assert_eq!((file["valid"].as_bool(), file["services"].as_u64()), (Some(true), Some(3)));
    let shadowed =
        file["warnings"].as_array().expect("warnings").iter().find(|w| w["code"] == "W110").expect("the shadowed rule");
    assert_eq!(
        shadowed,
        &serde_json::json!({
            "severity": "warning", "code": "W110", "name": "shadowed-rule", "file": lints, "line": 20,
            "column": null, "resource": null, "field": "authorization[1].rules[2]",
            "message": "shadowed: identical to rules[0], so it never decides a request",
        })
    );
    // The human report and the JSON document say the same.
    let human = warden(&["check", &lints]);
    let codes = |text: &str| -> Vec<String> {
        text.lines().filter_map(|l| l.strip_prefix("warning[")).map(|l| l[..4].to_owned()).collect()
    };
    let json_codes: Vec<String> = file["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["code"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(codes(&human.stdout), json_codes);
    assert_eq!(doc["files"][1]["warnings"], serde_json::json!([]));
}

#[test]
fn check_github_annotations() {
    insta::assert_snapshot!(transcript(&[
        "check",
        "--format",
        "github",
        &fixture("lints/lints.yaml"),
        &fixture("invalid-policy/policy.yaml"),
        &fixture("bad-input/yaml-syntax.yaml"),
    ]));
    // --deny-warnings applies whatever the format.
    let run = warden(&["check", "--format", "github", "--deny-warnings", &fixture("lints/lints.yaml")]);
    assert_eq!(run.code, EXIT_FAILED);
}

/// Captured output is never coloured (colour needs a terminal).
#[test]
fn captured_output_is_plain() {
    for args in [
        vec!["check".to_owned(), fixture("lints/lints.yaml"), fixture("missing.yaml")],
        vec!["test".to_owned(), fixture("failing")],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = warden(&args);
        assert!(!run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'), "{args:?}");
    }
}

// -------------------------------------------------------------- pre-commit

/// The hooks of `.pre-commit-hooks.yaml` run commands the CLI takes, on
/// the files they select: a hook that broke would fail every commit of
/// every repository that uses it.
#[test]
fn pre_commit_hooks_run_warden_commands_that_work() {
    let text = std::fs::read_to_string(".pre-commit-hooks.yaml").expect(".pre-commit-hooks.yaml");
    let hooks: Vec<serde_json::Value> = serde_yaml_ng::from_str(&text).expect("a list of hooks");
    let hook = |id: &str| hooks.iter().find(|h| h["id"] == id).unwrap_or_else(|| panic!("hook {id}"));
    let entry = |id: &str| -> Vec<String> {
        let entry = hook(id)["entry"].as_str().expect("entry");
        let words: Vec<String> = entry.split_whitespace().map(str::to_owned).collect();
        assert_eq!(words.first().map(String::as_str), Some("warden"), "{entry}");
        words.into_iter().skip(1).collect()
    };
    let pattern = |id: &str, key: &str| hook(id)[key].as_str().map(|p| regex::Regex::new(p).expect("a regex"));
    // What pre-commit passes a hook: `files` matches, `exclude` does not.
    let selects = |id: &str, path: &str| {
        pattern(id, "files").is_none_or(|f| f.is_match(path))
            && pattern(id, "exclude").is_none_or(|e| !e.is_match(path))
    };

    // warden-check: the example policies are selected, their test files not.
    for path in ["policies/multi-team/policy.yaml", "egress-policy.json", "policies/istio/x/policy.yml"] {
        assert!(selects("warden-check", path), "{path}");
    }
    for path in ["policies/dlp/policy.test.yaml", "deploy/gateway.yaml", "policy.md"] {
        assert!(!selects("warden-check", path), "{path}");
    }
    let mut args = entry("warden-check");
    args.extend(["policies/multi-team/policy.yaml".to_owned(), "policies/dlp/policy.yaml".to_owned()]);
    let run = warden(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    let mut args = entry("warden-check");
    args.push(fixture("lints/lints.yaml"));
    assert_eq!(warden(&args.iter().map(String::as_str).collect::<Vec<_>>()).code, EXIT_FAILED, "warnings fail");

    // warden-test: no file names, the directories as args.
    assert_eq!(hook("warden-test")["pass_filenames"], false);
    assert!(selects("warden-test", "policies/dlp/policy.test.yaml") && selects("warden-test", "a/policy.yaml"));
    let mut args = entry("warden-test");
    args.push(fixture("passing"));
    let run = warden(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
}
