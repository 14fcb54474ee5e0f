//! The `warden` CLI's output, checked with snapshots (`tests/cli/snapshots/`)
//! over the fixtures in `tests/cli/fixtures/`: passing and failing test
//! files (one case per kind of mismatch), input errors, coverage, lints,
//! explain, replay (and a generated log of 100,000 requests,
//! `replay_log.rs`); the OCI images `warden oci` writes are read back and
//! checked structurally. The CLI runs in-process through `run_with`, with
//! the filter built for this tree.
//!
//! After an intended change of output: `INSTA_UPDATE=always cargo test
//! --test main cli`, then review the `.snap` diff.

mod diff;
mod habits;
mod inputs;
mod install;
mod replay_log;
mod schema;
mod version;

use warden::cli::{self, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use warden::quick_junit::{NonSuccessKind, Report, TestCaseStatus};

const FIXTURES: &str = "tests/cli/fixtures";

/// What one `warden` invocation did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `warden ARGS` in-process. Fixture paths are relative: cargo runs
/// integration tests from the package root.
fn warden(args: &[&str]) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("warden").chain(args.iter().copied());
    let code = cli::run_with(argv, warden::FILTER_WASM, &mut out, &mut err);
    Run {
        code,
        stdout: String::from_utf8(out).expect("UTF-8 stdout"),
        stderr: String::from_utf8(err).expect("UTF-8 stderr"),
    }
}

/// The invocation, exit code and both streams, for a snapshot.
fn transcript(args: &[&str]) -> String {
    let run = warden(args);
    let shell: Vec<String> =
        args.iter().map(|a| if a.contains([' ', '?', '*']) { format!("'{a}'") } else { (*a).to_owned() }).collect();
    format!(
        "$ warden {}\nexit code: {}\n--- stdout\n{}--- stderr\n{}",
        shell.join(" "),
        run.code,
        run.stdout,
        run.stderr
    )
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

// ------------------------------------------------------------- warden test

#[test]
fn warden_test_passing_file() {
    let run = warden(&["test", &fixture("passing")]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!(transcript(&["test", &fixture("passing")]));
}

#[test]
fn warden_test_failing_file_shows_each_kind_of_mismatch() {
    let run = warden(&["test", &fixture("failing")]);
    assert_eq!(run.code, EXIT_FAILED);
    assert_eq!(run.stdout.lines().last(), Some("1 passed, 8 failed"));
    insta::assert_snapshot!(transcript(&["test", &fixture("failing")]));
}

#[test]
fn warden_test_isolated_vms_give_the_same_results() {
    for dir in ["passing", "failing"] {
        let shared = warden(&["test", &fixture(dir)]);
        let isolated = warden(&["test", "--isolate", &fixture(dir)]);
        assert_eq!((shared.code, &shared.stdout), (isolated.code, &isolated.stdout), "{dir}");
    }
}

#[test]
fn warden_test_with_the_filter_given_as_a_file() {
    let run = warden(&["test", "--filter", warden::FILTER_WASM_PATH, &fixture("passing")]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, warden(&["test", &fixture("passing")]).stdout);
}

#[test]
fn warden_test_input_errors() {
    insta::assert_snapshot!("warden_test_invalid_policy", transcript(&["test", &fixture("invalid-policy")]));
    insta::assert_snapshot!("warden_test_bad_test_file", transcript(&["test", &fixture("bad-test-file")]));
    insta::assert_snapshot!("warden_test_policy_list", transcript(&["test", &fixture("istio-list")]));
    insta::assert_snapshot!("warden_test_no_test_files", transcript(&["test", &fixture("lints")]));
    insta::assert_snapshot!("warden_test_missing_path", transcript(&["test", &fixture("missing")]));
    insta::assert_snapshot!(
        "warden_test_missing_filter",
        transcript(&["test", "--filter", &fixture("missing.wasm"), &fixture("passing")])
    );
    // Not a wasm module at all.
    let run = warden(&["test", "--filter", &fixture("passing/policy.json"), &fixture("passing")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(
        run.stderr.starts_with("error: tests/cli/fixtures/passing/policy.json: cannot load the filter"),
        "{}",
        run.stderr
    );
    // Errors win over failures in the exit code; the other files still run.
    let run = warden(&["test", &fixture("failing"), &fixture("invalid-policy")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert_eq!(run.stdout.lines().last(), Some("1 passed, 8 failed"));
}

#[test]
fn warden_test_coverage() {
    insta::assert_snapshot!(transcript(&["test", "--coverage", &fixture("coverage")]));
}

#[test]
fn warden_test_json_report() {
    let run = warden(&["test", "--format", "json", "--coverage", &fixture("failing"), &fixture("coverage")]);
    assert_eq!(run.code, EXIT_FAILED);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!((doc["passed"].as_u64(), doc["failed"].as_u64(), doc["errors"].as_u64()), (Some(5), Some(8), Some(0)));
    let files = doc["files"].as_array().expect("files");
    let file = |name: &str| files.iter().find(|f| f["file"] == name).unwrap_or_else(|| panic!("{name} in {files:?}"));
    let reads = file("tests/cli/fixtures/coverage/reads.test.yaml")["cases"].as_array().expect("cases");
    assert!(reads.len() == 3 && reads.iter().all(|c| c["result"] == "ok"));
    let wrong_status = &file("tests/cli/fixtures/failing/failing.test.yaml")["cases"][3];
    assert_eq!(
        wrong_status["mismatches"],
        serde_json::json!([{"field": "status", "expected": "401", "actual": "403"}])
    );
    assert_eq!(doc["coverage"][0]["untouched"].as_array().map(Vec::len), Some(3));
    insta::assert_snapshot!(transcript(&["test", "--format", "json", &fixture("failing")]));
}

#[test]
fn warden_test_junit_report_is_xml_a_ci_reads() {
    let run =
        warden(&["test", "--format", "junit", &fixture("passing"), &fixture("failing"), &fixture("invalid-policy")]);
    assert_eq!(run.code, EXIT_USAGE);
    let report =
        Report::deserialize_from_str(&run.stdout).unwrap_or_else(|e| panic!("not JUnit XML: {e}\n{}", run.stdout));
    assert_eq!((report.tests, report.failures, report.errors), (20, 8, 1));
    let suites: Vec<(&str, usize, usize, usize)> =
        report.test_suites.iter().map(|s| (s.name.as_str(), s.tests, s.failures, s.errors)).collect();
    assert_eq!(
        suites,
        [
            ("tests/cli/fixtures/failing/failing.test.yaml", 9, 8, 0),
            ("tests/cli/fixtures/invalid-policy/invalid.test.yaml", 1, 0, 1),
            ("tests/cli/fixtures/passing/passing.test.yaml", 10, 0, 0),
        ]
    );
    let failing = &report.test_suites[0];
    let wrong_status = failing.test_cases.iter().find(|c| c.name.as_str() == "wrong status").expect("the case");
    match &wrong_status.status {
        TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, description, .. } => {
            assert_eq!(message.as_ref().map(|m| m.as_str()), Some("status: expected 401, got 403"));
            assert!(description.as_ref().is_some_and(|d| d.as_str().contains("status 401  ✗")));
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(failing.test_cases.iter().all(|c| c.classname.as_ref().map(|n| n.as_str()) == Some(failing.name.as_str())));
    insta::assert_snapshot!(transcript(&[
        "test",
        "--format",
        "junit",
        &fixture("failing"),
        &fixture("invalid-policy")
    ]));
}

#[test]
fn the_example_policies_pass_in_the_harness() {
    let run = warden(&["test", "policies"]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    let last = run.stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

// ------------------------------------------------------------ warden check

#[test]
fn warden_check_lints() {
    insta::assert_snapshot!(transcript(&["check", &fixture("lints/lints.yaml")]));
    assert_eq!(warden(&["check", "--deny-warnings", &fixture("lints/lints.yaml")]).code, EXIT_FAILED);
    assert_eq!(warden(&["check", "--deny-warnings", &fixture("passing/policy.json")]).code, EXIT_OK);
}

#[test]
fn warden_check_errors() {
    insta::assert_snapshot!(transcript(&[
        "check",
        &fixture("passing/policy.json"),
        &fixture("invalid-policy/policy.yaml"),
    ]));
    insta::assert_snapshot!("warden_check_unreadable", transcript(&["check", &fixture("missing.yaml")]));
}

/// Errors name the line where the field is written, in the file as the
/// user wrote it (YAML or JSON, bare or in its envelope), never a position
/// in the JSON Warden converts it to.
#[test]
fn warden_check_names_the_line_of_the_field() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cases = [
        ("bare.yaml", "name: t\nservices:\n- name: a\n  hosts: [a.com]\n  hostz: [b.com]\n", "bare.yaml:5: services[0].hostz: unknown field `hostz`, expected one of `name`, `hosts`, `ports`\n"),
        (
            "envelope.yaml",
            "apiVersion: warden/v1\nkind: EgressPolicy\nmetadata: {name: t}\nspec:\n  services:\n  - name: a\n    hosts: ['*']\n",
            "envelope.yaml:7: services[0].hosts[0]: '*' would register every host; use outboundTrafficPolicy: ALLOW_ANY instead\n",
        ),
        ("policy.json", "{\n  \"name\": \"t\",\n  \"gatewayPorts\": {\"8080\": 70000}\n}\n", "policy.json:3: gatewayPorts.8080: 70000 is not a port (1-65535)\n"),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let run = warden(&["check", path.to_str().unwrap()]);
        assert_eq!(run.code, EXIT_FAILED, "{name}: {}", run.stderr);
        assert!(run.stdout.starts_with("error[E10") && run.stdout.ends_with(expected), "{name}: {}", run.stdout);
        assert!(!run.stdout.contains("column"), "{name}: {}", run.stdout);
    }
}

/// Trailers follow a chunked body: a case that gives them where they
/// cannot be sent is an input error naming the case and the field.
#[test]
fn warden_test_refuses_trailers_that_cannot_be_sent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("policy.yaml"), "name: t\noutboundTrafficPolicy: ALLOW_ANY\n").unwrap();
    let cases = [
        (
            "{method: CONNECT, authority: 'a.com:443', trailers: {x-a: b}}",
            "request.trailers: a CONNECT has no body for trailers to follow",
        ),
        (
            "{method: POST, authority: a.com, headers: {Content-Length: '1'}, body: x, trailers: {x-a: b}}",
            "request.trailers: trailers follow a chunked body, not one of a content-length",
        ),
    ];
    for (request, expected) in cases {
        let file = dir.path().join("t.test.yaml");
        let text = format!(
            "policy: policy.yaml\ntests:\n  - name: c\n    request: {request}\n    expect: {{decision: allow}}\n"
        );
        std::fs::write(&file, text).unwrap();
        let run = warden(&["test", file.to_str().unwrap()]);
        assert_eq!(run.code, EXIT_USAGE, "{request}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("tests[0] (c): {expected}")), "{request}: {}", run.stderr);
    }
    // Where they can: a body, or none, sent chunked with them.
    let file = dir.path().join("t.test.yaml");
    let text = "policy: policy.yaml\ntests:\n  - name: c\n    request: {method: POST, authority: a.com, trailers: {x-a: b}}\n    expect: {decision: allow}\n";
    std::fs::write(&file, text).unwrap();
    let run = warden(&["test", file.to_str().unwrap()]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
}

#[test]
fn warden_check_example_policies_are_clean() {
    let policies: Vec<String> = std::fs::read_dir("policies")
        .expect("policies/")
        .flatten()
        .map(|e| e.path().join("policy.yaml"))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["check", "--deny-warnings"];
    args.extend(policies.iter().map(String::as_str));
    let run = warden(&args);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
}

/// Each example's README shows the command that runs its test cases and
/// the count it prints: the count must be what the command prints now.
#[test]
fn example_readmes_show_the_counts_their_tests_give() {
    let mut readmes = vec![std::path::PathBuf::from("policies/README.md")];
    for entry in walkdir::WalkDir::new("policies").into_iter().flatten() {
        if entry.file_name() == "README.md" && entry.depth() > 0 {
            readmes.push(entry.into_path());
        }
    }
    let mut checked = 0;
    for readme in readmes {
        let text = std::fs::read_to_string(&readme).unwrap();
        let mut target: Option<&str> = None;
        for line in text.lines() {
            if let Some(rest) = line.split_once("-- test ").map(|(_, r)| r) {
                target = rest.split_whitespace().next();
            } else if let (Some(dir), true) = (target, line.ends_with(" failed") && line.contains(" passed, ")) {
                let run = warden(&["test", dir]);
                let last = run.stdout.lines().last().unwrap_or_default().to_owned();
                assert_eq!(last, line, "{}: `warden test {dir}` prints another count", readme.display());
                target = None;
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} counts found in the READMEs");
}

// ---------------------------------------------------------- warden explain

#[test]
fn warden_explain_a_denied_request() {
    insta::assert_snapshot!(transcript(&[
        "explain",
        &fixture("passing/policy.json"),
        "--method",
        "POST",
        "--authority",
        "httpbin.org",
        "--path",
        "/anything/lab/../x",
        "--principal",
        "cluster.local/ns/default/sa/sleep",
        "--header",
        "content-type=application/json",
    ]));
}

#[test]
fn warden_explain_an_allowed_request_in_short() {
    insta::assert_snapshot!(transcript(&[
        "explain",
        &fixture("passing/policy.json"),
        "--request",
        "GET httpbin.org//anything/lab?x=1",
        "--source-ip",
        "192.0.2.1",
    ]));
    insta::assert_snapshot!(
        "warden_explain_allowed_by_rule_1",
        transcript(&["explain", &fixture("passing/policy.json"), "--request", "http://httpbin.org/get"])
    );
}

#[test]
fn warden_explain_unregistered_and_bad_requests() {
    insta::assert_snapshot!(transcript(&["explain", &fixture("passing/policy.json"), "--request", "aliyun.com"]));
    insta::assert_snapshot!(
        "warden_explain_bad_request",
        transcript(&["explain", &fixture("passing/policy.json"), "--request", "get httpbin.org/get"])
    );
}

#[test]
fn warden_explain_usage_errors() {
    let run = warden(&["explain", &fixture("passing/policy.json")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert_eq!(run.stderr, "error: the request needs --authority (or --request 'METHOD authority/path')\n");
    let run = warden(&["explain", &fixture("invalid-policy/policy.yaml"), "--authority", "httpbin.org"]);
    assert_eq!(run.code, EXIT_USAGE);
    let run = warden(&["explain", &fixture("passing/policy.json"), "--request", "x", "--method", "GET"]);
    assert_eq!(run.code, EXIT_USAGE, "--request conflicts with --method");
    let run = warden(&["explain", &fixture("passing/policy.json"), "--authority", "h", "--source-ip", "nope"]);
    assert_eq!((run.code, run.stderr.as_str()), (EXIT_USAGE, "error: sourceIp: 'nope' is not an IP address\n"));
}

// ------------------------------------------------------------ the rest

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(warden(&[]).code, EXIT_USAGE);
    assert_eq!(warden(&["frobnicate"]).code, EXIT_USAGE);
    assert_eq!(warden(&["test", "--format", "xml"]).code, EXIT_USAGE);
    let help = warden(&["test", "--help"]);
    assert_eq!(help.code, EXIT_OK);
    assert!(help.stdout.contains("port 80"), "{}", help.stdout);
}

#[test]
fn compile_and_wasm_write_their_artifacts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bundle = dir.path().join("bundle.bin");
    let run = warden(&["compile", &fixture("passing/policy.json"), "-o", bundle.to_str().expect("UTF-8 path")]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert!(std::fs::read(&bundle).expect("the bundle").starts_with(b"WARDEN\0B"));
    let wasm = dir.path().join("warden.wasm");
    let run = warden(&["wasm", "-o", wasm.to_str().expect("UTF-8 path")]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert_eq!(std::fs::read(&wasm).expect("the module"), warden::FILTER_WASM);
    assert_eq!(warden(&["compile", &fixture("invalid-policy/policy.yaml"), "-o", "/dev/null"]).code, EXIT_FAILED);
}

// ------------------------------------------------------- warden wasmplugin

#[test]
fn warden_wasmplugin_pins_the_module_and_carries_the_policy() {
    let policy = "policies/ambient-waypoint/policy.yaml";
    let run = warden(&[
        "wasmplugin",
        policy,
        "--url",
        "oci://registry.example.com/warden:0.1.0",
        "--namespace",
        "istio-egress",
        "--target-ref",
        "Gateway/waypoint",
    ]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let manifest: serde_json::Value = serde_yaml_ng::from_str(&run.stdout).expect("the manifest is YAML");
    assert_eq!(manifest["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(manifest["kind"], "WasmPlugin");
    assert_eq!(manifest["metadata"]["namespace"], "istio-egress");
    let spec = &manifest["spec"];
    assert_eq!(spec["phase"], "AUTHZ");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert_eq!(spec["url"], "oci://registry.example.com/warden:0.1.0");
    // For oci:// urls Istio checks the image manifest's digest (see warden oci).
    let image = warden::package::oci::manifest_digest(warden::FILTER_WASM, warden::package::oci::Variant::Compat);
    assert_eq!(spec["sha256"], image.expect("the image"));
    assert_eq!(spec["targetRefs"][0]["kind"], "Gateway");
    assert_eq!(spec["targetRefs"][0]["group"], "gateway.networking.k8s.io");
    assert_eq!(spec["targetRefs"][0]["name"], "waypoint");
    // pluginConfig is the policy, and the filter accepts it as its configuration.
    let config = warden::config::load_config(std::path::Path::new(policy)).unwrap();
    let expected: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(spec["pluginConfig"], expected);
    let plugin_config = serde_json::to_vec(&spec["pluginConfig"]).unwrap();
    assert!(warden::engine::compile::load(&plugin_config).is_ok());

    // A sidecar-mode gateway is selected by labels.
    let run =
        warden(&["wasmplugin", policy, "--url", "https://example.com/w.wasm", "--selector", "istio=egressgateway"]);
    let manifest: serde_json::Value = serde_yaml_ng::from_str(&run.stdout).expect("YAML");
    assert_eq!(manifest["spec"]["selector"]["matchLabels"]["istio"], "egressgateway");
    assert!(manifest["spec"].get("targetRefs").is_none());
    // For https:// urls Istio checks the module's own digest.
    assert_eq!(manifest["spec"]["sha256"], warden::package::wasmplugin::sha256_hex(warden::FILTER_WASM));
}

#[test]
fn warden_wasmplugin_refuses_an_invalid_policy_or_no_target() {
    let invalid = fixture("invalid-policy/policy.yaml");
    let run = warden(&["wasmplugin", &invalid, "--url", "oci://r/w:1", "--selector", "istio=egressgateway"]);
    assert_eq!(run.code, EXIT_FAILED, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "no manifest for an invalid policy");
    let run = warden(&["wasmplugin", "policies/ambient-waypoint/policy.yaml", "--url", "oci://r/w:1"]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.contains("--selector") && run.stderr.contains("--target-ref"), "{}", run.stderr);
}

// ----------------------------------------------------------- warden import

/// The Istio YAML of an example, in the order its test file lists it.
fn istio_example(name: &str) -> Vec<String> {
    let dir = format!("policies/istio/{name}");
    let tests = warden::testing::testfile::load(std::path::Path::new(&format!("{dir}/policy.test.yaml")))
        .unwrap_or_else(|e| panic!("{e}"));
    match tests.policy {
        warden::testing::testfile::PolicyRef::Many(files) => files.iter().map(|f| format!("{dir}/{f}")).collect(),
        warden::testing::testfile::PolicyRef::One(f) => vec![format!("{dir}/{f}")],
    }
}

#[test]
fn warden_import_prints_the_policy_and_notes_what_it_skipped() {
    let files = istio_example("ambient-waypoint");
    let mut args = vec!["import"];
    args.extend(files.iter().map(String::as_str));
    let run = warden(&args);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    insta::assert_snapshot!(transcript(&args));
    insta::assert_snapshot!(
        "warden_import_mixed",
        transcript(&[
            "import",
            &fixture("istio-import/mixed.yaml"),
            "--name",
            "mixed",
            "--outbound-traffic-policy",
            "ALLOW_ANY"
        ])
    );
}

#[test]
fn warden_import_errors_name_the_resource_and_field() {
    insta::assert_snapshot!(transcript(&["import", &fixture("istio-import/custom.yaml")]));
    let run =
        warden(&["import", &fixture("istio-list/serviceentry.yaml"), &fixture("istio-list/authorizationpolicy.yaml")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(
        run.stderr,
        "error: tests/cli/fixtures/istio-list/authorizationpolicy.yaml:14: AuthorizationPolicy default/httpbin: \
         spec.rules[0].from[0].source.requestPrincipals: JWT request principals are not supported: Warden does not \
         validate JWTs; use principals (the mTLS peer identity)\n"
    );
    // Without the ServiceEntry its targetRefs name, the policy cannot be scoped.
    let run = warden(&["import", &fixture("istio-list/authorizationpolicy.yaml")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(
        run.stderr.contains("spec.targetRefs[0]: ServiceEntry default/httpbin is not in the input"),
        "{}",
        run.stderr
    );
    let run = warden(&["import", &fixture("missing.yaml")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.starts_with("error: tests/cli/fixtures/missing.yaml: cannot read"), "{}", run.stderr);
    assert_eq!(warden(&["import"]).code, EXIT_USAGE, "at least one file");
    assert_eq!(
        warden(&["import", &fixture("istio-import/mixed.yaml"), "--outbound-traffic-policy", "SOME"]).code,
        EXIT_USAGE
    );
}

#[test]
fn warden_import_writes_a_policy_the_other_commands_take() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("policy.yaml");
    let output = output.to_str().expect("UTF-8 path");
    let files = istio_example("egress-gateway-sidecar");
    let mut args = vec!["import", "-o", output];
    args.extend(files.iter().map(String::as_str));
    let run = warden(&args);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert_eq!(run.stdout, format!("wrote {output} (1 services, 3 authorization policies)\n"));
    assert!(run.stderr.lines().all(|l| l.starts_with("note: ")), "{}", run.stderr);
    // The file is the policy `warden test` builds from the same list.
    let paths: Vec<std::path::PathBuf> = files.iter().map(std::path::PathBuf::from).collect();
    let from_list: serde_json::Value = serde_json::from_slice(&warden::config::load_configs(&paths).unwrap()).unwrap();
    let written: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(output).unwrap()).unwrap();
    assert_eq!(written, from_list);
    assert_eq!(from_list["name"], "httpbin-egress-gateway", "named by warden.yaml");
    assert_eq!(from_list["gatewayPorts"], serde_json::json!({"8080": 80, "8443": 443}));
    let run = warden(&["check", "--deny-warnings", output]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
}

#[test]
fn istio_input_is_read_wherever_a_policy_file_is() {
    let mixed = fixture("istio-import/mixed.yaml");
    let run = warden(&["check", &mixed]);
    assert_eq!(
        (run.code, run.stdout.lines().last()),
        (EXIT_OK, Some("tests/cli/fixtures/istio-import/mixed.yaml: ok (2 services, 3 authorization policies)"))
    );
    // What the import noted comes first, as `warden import` prints it
    // (with its code).
    let notes: Vec<String> =
        run.stdout.lines().filter_map(|l| l.strip_prefix("note[N001]: ")).map(|l| format!("note: {l}")).collect();
    assert_eq!(notes.len() + 1, run.stdout.lines().count(), "{}", run.stdout);
    assert_eq!(notes.join("\n") + "\n", warden(&["import", &mixed]).stderr);
    insta::assert_snapshot!(
        "warden_explain_istio_input",
        transcript(&[
            "explain",
            &mixed,
            "--request",
            "GET httpbin.org//admin/x",
            "--principal",
            "cluster.local/ns/egress/sa/reader",
        ])
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bundle = dir.path().join("bundle.bin");
    let run = warden(&["compile", &mixed, "-o", bundle.to_str().expect("UTF-8 path")]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let run = warden(&["wasmplugin", &mixed, "--url", "oci://r/w:1", "--selector", "istio=egressgateway"]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let manifest: serde_json::Value = serde_yaml_ng::from_str(&run.stdout).expect("YAML");
    assert_eq!(manifest["spec"]["pluginConfig"]["services"][1]["name"], "egress/payments");
    // An Istio file Warden cannot honour is an input error for every command.
    let custom = fixture("istio-import/custom.yaml");
    let run = warden(&["check", &custom]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.contains("AuthorizationPolicy egress/ext-authz: spec.action: CUSTOM"), "{}", run.stderr);
}

#[test]
fn the_istio_examples_wasmplugins_carry_the_imported_policy() {
    for example in ["ambient-waypoint", "egress-gateway-sidecar"] {
        let paths: Vec<std::path::PathBuf> = istio_example(example).iter().map(std::path::PathBuf::from).collect();
        let policy: serde_json::Value = serde_json::from_slice(&warden::config::load_configs(&paths).unwrap()).unwrap();
        let file = format!("policies/istio/{example}/wasmplugin.yaml");
        let manifest: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).expect("the WasmPlugin")).expect("YAML");
        assert_eq!(manifest["kind"], "WasmPlugin", "{file}");
        assert_eq!(
            manifest["spec"]["pluginConfig"], policy,
            "{file} is stale: regenerate it with the commands in policies/istio/{example}/README.md"
        );
        assert_eq!(manifest["spec"]["failStrategy"], "FAIL_CLOSE");
        assert_eq!(manifest["spec"]["sha256"].as_str().map(str::len), Some(64), "{file}");
    }
}

// ----------------------------------------------------------- warden schema

#[test]
fn warden_schema_describes_the_policy_document() {
    let run = warden(&["schema"]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).expect("the schema is JSON");
    assert_eq!(schema["title"], "warden/v1 policy");
    let defs = &schema["$defs"];
    // A bare document is the `Document`; the envelope's `spec` is too.
    assert_eq!(schema["else"]["$ref"], "#/$defs/Document");
    assert_eq!(defs["EgressPolicy"]["properties"]["spec"]["$ref"], "#/$defs/Document");
    let document = &defs["Document"];
    assert_eq!(document["additionalProperties"], false, "typos must not validate");
    for def in ["ServiceDoc", "AuthzPolicyDoc", "RuleDoc", "SourceDoc", "OperationDoc", "ConditionDoc"] {
        assert_eq!(defs[def]["additionalProperties"], false, "{def}");
    }
    // Every field the example policies use is a property the schema knows,
    // at the top level and in services and authorization policies.
    let known = |v: &serde_json::Value| -> Vec<String> {
        v["properties"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    };
    let (top, service, authz) = (known(document), known(&defs["ServiceDoc"]), known(&defs["AuthzPolicyDoc"]));
    for dir in std::fs::read_dir("policies").unwrap() {
        let path = dir.unwrap().path().join("policy.yaml");
        if !path.is_file() {
            continue;
        }
        let doc: serde_json::Value = serde_json::from_slice(&warden::config::load_config(&path).unwrap()).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
        };
        for k in keys(&doc) {
            assert!(top.contains(&k), "{}: {k} not in the schema", path.display());
        }
        for s in doc["services"].as_array().into_iter().flatten() {
            assert!(keys(s).iter().all(|k| service.contains(k)), "{}: {s}", path.display());
        }
        for p in doc["authorization"].as_array().into_iter().flatten() {
            assert!(keys(p).iter().all(|k| authz.contains(k)), "{}: {p}", path.display());
        }
    }
    // The actions are the enum's values.
    let actions: Vec<&str> =
        defs["Action"]["oneOf"].as_array().unwrap().iter().filter_map(|v| v["const"].as_str()).collect();
    assert_eq!(actions, ["ALLOW", "DENY", "AUDIT"]);
}

// -------------------------------------------------------------- warden oci

/// The files of an OCI image layout, read back from a directory or a tar
/// (by a reader of its own, not the one that wrote it).
fn layout_files(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    if path.is_dir() {
        for entry in walk(path) {
            let name = entry.strip_prefix(path).expect("inside").to_str().expect("UTF-8").replace('\\', "/");
            files.insert(name, std::fs::read(&entry).expect("readable"));
        }
        return files;
    }
    let tar = std::fs::read(path).expect("the tar");
    for (name, content) in untar(&tar) {
        if !name.ends_with('/') {
            files.insert(name, content);
        }
    }
    files
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The entries of a ustar archive: name and content.
fn untar(mut tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while tar.len() >= 512 && tar[..512].iter().any(|b| *b != 0) {
        let field = |range: std::ops::Range<usize>| {
            let raw = &tar[range];
            String::from_utf8_lossy(&raw[..raw.iter().position(|b| *b == 0).unwrap_or(raw.len())]).into_owned()
        };
        let (prefix, name) = (field(345..500), field(0..100));
        let name = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let size = usize::from_str_radix(field(124..136).trim(), 8).expect("an octal size");
        let checksum = usize::from_str_radix(field(148..156).trim(), 8).expect("an octal checksum");
        let sum: usize =
            tar[..512].iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as usize }).sum();
        assert_eq!(sum, checksum, "{name}: header checksum");
        out.push((name, tar[512..512 + size].to_vec()));
        tar = &tar[512 + size.div_ceil(512) * 512..];
    }
    out
}

fn sha256(bytes: &[u8]) -> String {
    warden::package::wasmplugin::sha256_hex(bytes)
}

/// Checks a layout as a registry client would read it: index → manifest →
/// config and layers, every digest and size; returns the manifest digest
/// (hex) and the module the image carries.
fn check_layout(files: &std::collections::BTreeMap<String, Vec<u8>>, variant: &str) -> (String, Vec<u8>) {
    let blob = |digest: &str| -> &Vec<u8> {
        let hex = digest.strip_prefix("sha256:").unwrap_or_else(|| panic!("{digest}: not sha256"));
        let bytes = files.get(&format!("blobs/sha256/{hex}")).unwrap_or_else(|| panic!("no blob {digest}"));
        assert_eq!(sha256(bytes), hex, "blob {digest} has another digest");
        bytes
    };
    let json = |bytes: &[u8]| -> serde_json::Value { serde_json::from_slice(bytes).expect("JSON") };
    let described = |descriptor: &serde_json::Value| -> &Vec<u8> {
        let bytes = blob(descriptor["digest"].as_str().expect("a digest"));
        assert_eq!(descriptor["size"].as_u64(), Some(bytes.len() as u64), "size of {descriptor}");
        bytes
    };
    assert_eq!(json(&files["oci-layout"]), serde_json::json!({"imageLayoutVersion": "1.0.0"}));
    let index = json(&files["index.json"]);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifests[0]["annotations"]["org.opencontainers.image.ref.name"], "v1");
    let manifest_bytes = described(&manifests[0]);
    let manifest = json(manifest_bytes);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["annotations"]["module.wasm.image/variant"], variant);
    let config = described(&manifest["config"]);
    let layers = manifest["layers"].as_array().expect("layers");
    let types: Vec<&str> = layers.iter().map(|l| l["mediaType"].as_str().expect("a media type")).collect();
    let wasm = match variant {
        "compat" => {
            // Istio: the last layer, tar+gzip, holding a file named plugin.wasm.
            assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
            assert_eq!(types, ["application/vnd.oci.image.layer.v1.tar+gzip"]);
            let gz = described(&layers[0]);
            let mut tar = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut tar).expect("gzip");
            let config = json(config);
            assert_eq!((config["os"].as_str(), config["architecture"].as_str()), (Some("wasip1"), Some("wasm")));
            assert_eq!(config["rootfs"]["diff_ids"][0], format!("sha256:{}", sha256(&tar)), "diff_id");
            let entries = untar(&tar);
            assert_eq!(entries.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["plugin.wasm"]);
            entries[0].1.clone()
        }
        _ => {
            // Istio: exactly two layers, one of them the raw module.
            assert_eq!(manifest["config"]["mediaType"], "application/vnd.module.wasm.config.v1+json");
            assert_eq!(
                types,
                ["application/vnd.module.wasm.config.v1+json", "application/vnd.module.wasm.content.layer.v1+wasm"]
            );
            assert_eq!(json(config)["type"], "envoy_proxy");
            described(&layers[1]).clone()
        }
    };
    (sha256(manifest_bytes), wasm)
}

#[test]
fn warden_oci_writes_an_image_layout_istio_pulls() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut digests = Vec::new();
    for variant in ["compat", "oci"] {
        for output in [format!("{variant}-layout"), format!("{variant}.tar")] {
            let path = dir.path().join(&output);
            let path_text = path.to_str().expect("UTF-8 path");
            let run = warden(&["oci", "-o", path_text, "--variant", variant, "--tag", "v1"]);
            assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
            let (digest, wasm) = check_layout(&layout_files(&path), variant);
            assert!(wasm == warden::FILTER_WASM, "{output}: the image carries another module");
            assert!(run.stdout.contains(&format!("manifest  sha256:{digest}\n")), "{}", run.stdout);
            assert!(run.stdout.contains(&format!("module    sha256:{}", sha256(&wasm))), "{}", run.stdout);
            // The WasmPlugin pins what Istio checks: the manifest for oci://,
            // the module for https://.
            let plugin = |url: &str| -> String {
                let run = warden(&[
                    "wasmplugin",
                    "policies/ambient-waypoint/policy.yaml",
                    "--url",
                    url,
                    "--oci-variant",
                    variant,
                    "--selector",
                    "istio=egressgateway",
                ]);
                assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
                let manifest: serde_json::Value = serde_yaml_ng::from_str(&run.stdout).expect("YAML");
                manifest["spec"]["sha256"].as_str().expect("sha256").to_owned()
            };
            assert_eq!(plugin("oci://registry.example.com/warden:v1"), digest, "{output}");
            assert_eq!(plugin(&format!("oci://registry.example.com/warden@sha256:{digest}")), digest, "{output}");
            assert_eq!(plugin("https://example.com/warden.wasm"), sha256(&wasm), "{output}");
            digests.push((variant, digest));
        }
    }
    // Reproducible: a directory and a tar of the same variant hold the same image.
    assert_eq!(digests[0].1, digests[1].1);
    assert_eq!(digests[2].1, digests[3].1);
    assert_ne!(digests[0].1, digests[2].1);

    let layout = dir.path().join("compat-layout");
    let run = warden(&["oci", "-o", layout.to_str().expect("UTF-8 path")]);
    assert_eq!(run.code, EXIT_USAGE, "a layout is never written over");
    assert!(run.stderr.contains("the directory is not empty"), "{}", run.stderr);
    let run = warden(&[
        "oci",
        "-o",
        dir.path().join("x").to_str().expect("UTF-8"),
        "--filter",
        &fixture("passing/policy.json"),
    ]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (EXIT_USAGE, "error: tests/cli/fixtures/passing/policy.json: not a WebAssembly module (no \\0asm header)\n")
    );
    let wrong = format!("oci://r/w@sha256:{}", "0".repeat(64));
    let run = warden(&["wasmplugin", "policies/ambient-waypoint/policy.yaml", "--url", &wrong, "--selector", "a=b"]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.contains("--url pins sha256:000"), "{}", run.stderr);
}

#[test]
fn warden_oci_output() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let digests = regex::Regex::new("[0-9a-f]{64}").expect("a regex");
    let sizes = regex::Regex::new(r"\(\d+ bytes\)").expect("a regex");
    let mut text = String::new();
    for output in ["warden-oci", "warden-oci.tar"] {
        let path = dir.path().join(output);
        let run = warden(&["oci", "-o", path.to_str().expect("UTF-8 path"), "--tag", "0.1.0"]);
        let shown = run.stdout.replace(&format!("{}/", dir.path().display()), "");
        text.push_str(&format!("$ warden oci -o {output} --tag 0.1.0\nexit code: {}\n{shown}", run.code));
    }
    let text = digests.replace_all(&text, "<sha256>");
    insta::assert_snapshot!(sizes.replace_all(&text, "(<size> bytes)"));
}

// ----------------------------------------------------------- warden replay

const REPLAY_POLICY: &str = "tests/cli/fixtures/replay/policy.yaml";
const REPLAY_LOG: &str = "tests/cli/fixtures/replay/access.log";

#[test]
fn warden_replay_counts_outcomes_groups_and_examples() {
    let args = ["replay", REPLAY_POLICY, REPLAY_LOG, "--principal-field", "downstream_peer_uri_san"];
    let run = warden(&args);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert!(!run.stdout.contains(replay_log::SECRET), "DLP findings are never shown");
    assert!(!run.stdout.contains("show_env"), "queries are never shown");
    insta::assert_snapshot!(transcript(&args));
    // The native engine decides the same.
    let native = warden(&[
        "replay",
        REPLAY_POLICY,
        REPLAY_LOG,
        "--principal-field",
        "downstream_peer_uri_san",
        "--engine",
        "native",
    ]);
    assert_eq!(native.code, EXIT_OK);
    assert_eq!(native.stdout.replace("through the native engine", "through the filter in the harness"), run.stdout);
}

#[test]
fn warden_replay_json_report() {
    let run = warden(&[
        "replay",
        REPLAY_POLICY,
        REPLAY_LOG,
        "--principal-field",
        "downstream_peer_uri_san",
        "--format",
        "json",
        "--examples",
        "1",
    ]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!((doc["lines"].as_u64(), doc["requests"].as_u64()), (Some(16), Some(13)));
    let count = |kind: &str| doc["outcomes"][kind]["count"].as_u64();
    assert_eq!(
        ["allow", "denied", "unregistered", "bad-request", "dlp"].map(count),
        [Some(5), Some(2), Some(3), Some(2), Some(1)]
    );
    assert_eq!(
        doc["outcomes"]["denied"]["groups"],
        serde_json::json!([
            {"policy": "deny-admin", "count": 1},
            {"reason": "no-allow-match", "service": "httpbin.org", "count": 1},
        ])
    );
    assert_eq!(doc["outcomes"]["unregistered"]["groups"][0], serde_json::json!({"host": "aliyun.com", "count": 2}));
    assert_eq!(doc["outcomes"]["dlp"]["groups"], serde_json::json!([{"findings": ["aws_access_key_id"], "count": 1}]));
    assert_eq!(doc["outcomes"]["dlp"]["examples"][0]["path"], "<withheld: DLP findings>");
    assert_eq!(doc["outcomes"]["allow"]["examples"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["skipped"]["notJson"], serde_json::json!({"count": 1, "firstLines": [4]}));
    // Line 9 is a tcp_proxy line: a connection, not an incomplete request.
    // The fixture's DENY on paths applies to it with its HTTP-only fields
    // dropped (Istio's TCP semantics).
    assert_eq!(doc["skipped"]["incomplete"], serde_json::json!({"count": 0, "firstLines": []}));
    assert_eq!(doc["connections"]["count"], 1);
    assert_eq!(
        doc["connections"]["outcomes"]["denied"]["groups"],
        serde_json::json!([{"policy": "deny-admin", "count": 1}])
    );
    assert_eq!(doc["dryRun"], serde_json::json!([{"policy": "shadow-deletes", "count": 2}]));
    assert_eq!((doc["changes"]["compared"].as_u64(), doc["changes"]["changed"].as_u64()), (Some(4), Some(1)));
    assert_eq!(doc["changes"]["transitions"][0]["from"], "allow");
    assert_eq!(doc["changes"]["transitions"][0]["to"], "denied");
    assert_eq!(doc["errors"]["count"], 0);
    assert!(!run.stdout.contains(replay_log::SECRET));
}

#[test]
fn warden_replay_principals_fixed_or_absent() {
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["replay", REPLAY_POLICY, REPLAY_LOG, "--format", "json"];
        args.extend_from_slice(extra);
        let run = warden(&args);
        assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
        serde_json::from_str(&run.stdout).expect("JSON")
    };
    // Without principals the admin's POST /post and DELETE /delete are refused too.
    let anonymous = json(&[]);
    assert_eq!(anonymous["principal"], serde_json::Value::Null);
    assert_eq!(anonymous["outcomes"]["denied"]["count"], 4);
    // As the admin, every request to httpbin.org passes ALLOW (the DENY on /admin still wins).
    let admin = json(&["--principal", "cluster.local/ns/default/sa/admin"]);
    assert_eq!(admin["principal"], serde_json::json!({"value": "cluster.local/ns/default/sa/admin"}));
    assert_eq!(admin["outcomes"]["denied"]["groups"], serde_json::json!([{"policy": "deny-admin", "count": 1}]));
    assert_eq!(admin["outcomes"]["allow"]["count"], 6);
}

#[test]
fn warden_replay_reads_gzip_and_reports_input_errors() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let gz = dir.path().join("access.log.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).expect("a file"), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &std::fs::read(REPLAY_LOG).expect("the log")).expect("gzip");
    encoder.finish().expect("gzip");
    let plain = warden(&["replay", REPLAY_POLICY, REPLAY_LOG, "--format", "json"]);
    let zipped = warden(&["replay", REPLAY_POLICY, gz.to_str().expect("UTF-8 path"), "--format", "json"]);
    assert_eq!(zipped.code, EXIT_OK, "{}", zipped.stderr);
    let strip = |text: &str| -> serde_json::Value {
        let mut doc: serde_json::Value = serde_json::from_str(text).expect("JSON");
        doc["accessLog"] = serde_json::Value::Null;
        doc
    };
    assert_eq!(strip(&zipped.stdout), strip(&plain.stdout));

    let run = warden(&["replay", REPLAY_POLICY, &fixture("replay/missing.log")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.starts_with("error: tests/cli/fixtures/replay/missing.log: cannot read"), "{}", run.stderr);
    let run = warden(&["replay", &fixture("invalid-policy/policy.yaml"), REPLAY_LOG]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.contains("invalid policy"), "{}", run.stderr);
    let run = warden(&["replay", REPLAY_POLICY, REPLAY_LOG, "--principal", "a", "--principal-field", "b"]);
    assert_eq!(run.code, EXIT_USAGE, "one principal source");
    // Not an access log: the report says what was skipped, and nothing
    // replayed is an input error, even for a check that found nothing.
    for fail_on in [&[][..], &["--fail-on", "refused,changed"]] {
        let run = warden(&[&["replay", REPLAY_POLICY, REPLAY_POLICY][..], fail_on].concat());
        assert_eq!(run.code, EXIT_USAGE, "{}", run.stderr);
        assert!(run.stdout.contains("requests                                0\n"), "{}", run.stdout);
        let skipped = run.stdout.lines().find_map(|l| l.strip_prefix("skipped")).expect("a skipped row");
        let skipped: u64 = skipped.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count");
        assert!(skipped > 10, "every non-blank line of the policy: {}", run.stdout);
        let error = format!("error: {REPLAY_POLICY}: nothing to replay: {skipped} lines skipped: no line had");
        assert!(run.stderr.starts_with(&error), "{}", run.stderr);
    }
    // An empty log (the wrong pod's, a gateway without access logs).
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").expect("a file");
    let run = warden(&["replay", REPLAY_POLICY, empty.to_str().expect("UTF-8 path"), "--fail-on", "refused"]);
    assert_eq!(run.code, EXIT_USAGE, "{}", run.stderr);
    assert!(run.stderr.ends_with("empty.log: nothing to replay: the log is empty\n"), "{}", run.stderr);
}

/// A log of at least 100,000 lines is replayed
/// through the compiled filter and the report's counts are exact.
#[test]
fn warden_replay_a_generated_log_of_100_000_requests() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("access.log");
    let mut file = std::fs::File::create(&log).expect("a file");
    let expected = replay_log::write(&mut file, 100_000, 2024).expect("the log");
    drop(file);
    assert!(expected.lines >= 100_000);

    let started = std::time::Instant::now();
    let run = warden(&[
        "replay",
        replay_log::POLICY,
        log.to_str().expect("UTF-8 path"),
        "--principal-field",
        replay_log::PRINCIPAL_FIELD,
        "--format",
        "json",
    ]);
    eprintln!("replayed {} lines in {:.1?}", expected.lines, started.elapsed());
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert!(!run.stdout.contains(replay_log::SECRET));
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["engine"], "filter");
    assert_eq!(doc["lines"].as_u64(), Some(expected.lines));
    assert_eq!(doc["requests"].as_u64(), Some(expected.requests));
    assert_eq!(doc["errors"]["count"], 0, "{}", doc["errors"]);
    assert_eq!(doc["skipped"]["notJson"]["count"].as_u64(), Some(expected.not_json));
    assert_eq!(doc["skipped"]["incomplete"]["count"].as_u64(), Some(expected.incomplete));
    let mut outcomes = std::collections::BTreeMap::new();
    let mut groups = std::collections::BTreeMap::new();
    for (kind, outcome) in doc["outcomes"].as_object().expect("outcomes") {
        let count = outcome["count"].as_u64().expect("a count");
        if count > 0 {
            outcomes.insert(kind.clone(), count);
        }
        for g in outcome["groups"].as_array().expect("groups") {
            let (key, value) = g
                .as_object()
                .expect("a group")
                .iter()
                .find(|(k, _)| *k != "count" && *k != "service")
                .expect("a group key");
            let value = match value {
                serde_json::Value::Array(ids) => ids.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                other => other.as_str().expect("text").to_owned(),
            };
            groups.insert((kind.clone(), key.clone(), value), g["count"].as_u64().expect("a count"));
        }
    }
    let want_outcomes: std::collections::BTreeMap<String, u64> =
        expected.outcomes.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    assert_eq!(outcomes, want_outcomes);
    let want_groups: std::collections::BTreeMap<(String, String, String), u64> = expected
        .groups
        .iter()
        .map(|((kind, key, value), n)| (((*kind).to_owned(), (*key).to_owned(), (*value).to_owned()), *n))
        .collect();
    assert_eq!(groups, want_groups);
    assert_eq!(doc["dryRun"], serde_json::json!([{"policy": "shadow-deletes", "count": expected.dry_run}]));
}

// --------------------------------------------------------------- bad input

/// Each bad input of `tests/cli/fixtures/bad-input/` and the message it
/// gets: nothing a gateway would choke on is "ok".
#[test]
fn bad_input_is_never_ok() {
    let bad = |name: &str| fixture(&format!("bad-input/{name}"));
    // What ships: a WasmPlugin is checked as the policy it deploys.
    insta::assert_snapshot!("check_wasmplugin_bogus", transcript(&["check", &bad("wasmplugin-bogus.yaml")]));
    assert_eq!(warden(&["check", &bad("wasmplugin-bogus.yaml")]).code, EXIT_FAILED);
    for empty in ["empty.yaml", "only-separator.yaml", "only-comments.yaml"] {
        let run = warden(&["check", &bad(empty)]);
        assert_eq!(run.code, EXIT_USAGE, "{empty}: {}", run.stdout);
        insta::assert_snapshot!(format!("check_{empty}"), transcript(&["check", &bad(empty)]));
    }
    insta::assert_snapshot!("check_no_services", transcript(&["check", &bad("no-services.yaml")]));
    // Positions in the file as written.
    insta::assert_snapshot!("check_yaml_syntax", transcript(&["check", &bad("yaml-syntax.yaml")]));
    insta::assert_snapshot!(
        "check_yaml_syntax_second_document",
        transcript(&["check", &bad("yaml-syntax-second-document.yaml")])
    );
    insta::assert_snapshot!(
        "check_istio_with_bad_setting",
        transcript(&["check", &bad("istio-with-bad-setting.yaml")])
    );
    insta::assert_snapshot!("check_bom", transcript(&["check", &bad("bom.yaml")]));
    // Istio's installation settings are not a policy.
    for install in
        ["istiooperator.yaml", "istiooperator-fragment.yaml", "helm-values.yaml", "helm-values-without-mesh.yaml"]
    {
        let run = warden(&["check", &bad(install)]);
        assert_eq!(run.code, EXIT_USAGE, "{install}: {}", run.stdout);
        insta::assert_snapshot!(format!("check_{install}"), transcript(&["check", &bad(install)]));
    }
    // Beside a ServiceEntry, an IstioOperator fragment gives the mesh setting.
    let run = warden(&["import", &fixture("istio-list/serviceentry.yaml"), &bad("istiooperator-fragment.yaml")]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert!(run.stdout.contains("outboundTrafficPolicy: REGISTRY_ONLY"), "{}", run.stdout);
}

#[test]
fn a_wasmplugin_is_read_as_the_policy_it_deploys() {
    // What `warden wasmplugin` writes checks as the policy it carries.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let policy = "policies/ambient-waypoint/policy.yaml";
    let run = warden(&["wasmplugin", policy, "--url", "oci://r/w:1", "--target-ref", "Gateway/waypoint"]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let manifest = dir.path().join("wasmplugin.yaml");
    std::fs::write(&manifest, &run.stdout).expect("the manifest");
    let check = warden(&["check", manifest.to_str().expect("UTF-8 path")]);
    let direct = warden(&["check", policy]);
    assert_eq!(check.code, EXIT_OK, "{}{}", check.stdout, check.stderr);
    let counts = |out: &str| out.lines().last().and_then(|l| l.split_once(": ok")).map(|(_, c)| c.to_owned());
    assert_eq!(counts(&check.stdout), counts(&direct.stdout));
    assert_eq!(
        warden::config::load_config(&manifest).expect("the pluginConfig"),
        warden::config::load_config(std::path::Path::new(policy)).expect("the policy")
    );
}

#[test]
fn wasmplugin_refuses_what_istio_or_kubernetes_would() {
    let policy = "policies/ambient-waypoint/policy.yaml";
    let plugin = |policy: &str, url: &str| {
        transcript(&["wasmplugin", policy, "--url", url, "--selector", "istio=egressgateway"])
    };
    insta::assert_snapshot!("wasmplugin_url_scheme", plugin(policy, "s3://bucket/warden.wasm"));
    for url in ["registry.example.com/warden:0.1.0", "HTTPS://example.com/w.wasm", "file:///opt/warden.wasm"] {
        let run = warden(&["wasmplugin", policy, "--url", url, "--selector", "istio=egressgateway"]);
        assert_eq!(run.code, EXIT_OK, "{url}: {}", run.stderr);
    }
    // A url that names no module, or that YAML and the agent would read
    // as something else, writes no manifest.
    for url in [
        "",
        "oci://",
        "oci:///warden:1",
        "https:///w.wasm",
        "file://",
        "/warden:1",
        "r.example/w:1 ",
        "r.example/w\n:1",
    ] {
        let run = warden(&["wasmplugin", policy, "--url", url, "--selector", "istio=egressgateway"]);
        assert_eq!(run.code, EXIT_USAGE, "{url:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{url:?}: no manifest");
        assert!(run.stderr.contains("names no module: give oci://REGISTRY/IMAGE:TAG"), "{url:?}: {}", run.stderr);
    }
    insta::assert_snapshot!(
        "wasmplugin_settings_only",
        plugin(&fixture("bad-input/settings-only.yaml"), "oci://r/w:1")
    );
    insta::assert_snapshot!("wasmplugin_empty", plugin(&fixture("bad-input/empty.yaml"), "oci://r/w:1"));

    // A policy too large for a Kubernetes object: 20,000 services.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let big = dir.path().join("big.yaml");
    let mut text = String::from("name: big\nservices:\n");
    for i in 0..20_000 {
        text.push_str(&format!("- {{name: s{i}, hosts: [service-{i}.partner-{i}.example.com], ports: [443]}}\n"));
    }
    std::fs::write(&big, text).expect("the policy");
    let run = warden(&["wasmplugin", big.to_str().expect("UTF-8"), "--url", "oci://r/w:1", "--selector", "a=b"]);
    assert_eq!(run.code, EXIT_FAILED);
    assert!(run.stdout.is_empty(), "no manifest");
    let shown = run.stderr.replace(&format!("{}/", dir.path().display()), "");
    let sizes = regex::Regex::new(r"\d+ bytes").expect("a regex");
    insta::assert_snapshot!("wasmplugin_too_large", sizes.replace_all(&shown, "<n> bytes"));
}

#[test]
fn oci_refuses_a_tag_registries_refuse() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("layout");
    for tag in ["v1/rc", ".hidden", "-x", "a b"] {
        let run = warden(&["oci", "-o", out.to_str().expect("UTF-8"), "--tag", tag]);
        assert_eq!(run.code, EXIT_USAGE, "{tag}");
        assert!(!out.exists(), "nothing written for {tag}");
    }
    let run = warden(&["oci", "-o", out.to_str().expect("UTF-8"), "--tag", "v1/rc"]);
    insta::assert_snapshot!("oci_bad_tag", run.stderr);
}

/// 200 KB of nested brackets is refused before the YAML parser sees it
/// (which spent 10 s on it, 38 s in a debug build), for policies and test files.
#[test]
fn deeply_nested_input_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let nested = dir.path().join("nested.yaml");
    std::fs::write(&nested, "[".repeat(200_000)).expect("the file");
    let run = warden(&["check", nested.to_str().expect("UTF-8")]);
    assert_eq!(run.code, EXIT_USAGE);
    let shown = run.stderr.replace(&format!("{}/", dir.path().display()), "");
    insta::assert_snapshot!("check_nested", shown);
    let test_file = dir.path().join("nested.test.yaml");
    std::fs::write(&test_file, format!("policy: x.yaml\ntests: {}", "{a: ".repeat(100_000))).expect("the file");
    let run = warden(&["test", test_file.to_str().expect("UTF-8")]);
    assert_eq!(run.code, EXIT_USAGE);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("nested.test.yaml:2:"), "{said}");
    assert!(said.contains("nested more than 64 mappings or sequences deep"), "{said}");
}
