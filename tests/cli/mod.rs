//! The `warden` CLI's output, checked with snapshots (`tests/cli/snapshots/`)
//! over the fixtures in `tests/cli/fixtures/`: passing and failing test
//! files (one case per kind of mismatch), input errors, coverage, lints,
//! explain. The CLI runs in-process through `run_with`, with the filter
//! built for this tree.
//!
//! After an intended change of output: `INSTA_UPDATE=always cargo test
//! --test main cli`, then review the `.snap` diff.

use warden::harness::cli::{self, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use warden::harness::quick_junit::{NonSuccessKind, Report, TestCaseStatus};

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
    assert_eq!(spec["sha256"], warden::harness::wasmplugin::sha256_hex(warden::FILTER_WASM));
    assert_eq!(spec["targetRefs"][0]["kind"], "Gateway");
    assert_eq!(spec["targetRefs"][0]["group"], "gateway.networking.k8s.io");
    assert_eq!(spec["targetRefs"][0]["name"], "waypoint");
    // pluginConfig is the policy, and the filter accepts it as its configuration.
    let config = warden::harness::policy_file::load_config(std::path::Path::new(policy)).unwrap();
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
    let tests = warden::harness::testfile::load(std::path::Path::new(&format!("{dir}/policy.test.yaml")))
        .unwrap_or_else(|e| panic!("{e}"));
    match tests.policy {
        warden::harness::testfile::PolicyRef::Many(files) => files.iter().map(|f| format!("{dir}/{f}")).collect(),
        warden::harness::testfile::PolicyRef::One(f) => vec![format!("{dir}/{f}")],
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
        "error: tests/cli/fixtures/istio-list/authorizationpolicy.yaml: AuthorizationPolicy default/httpbin: \
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
    let from_list: serde_json::Value =
        serde_json::from_slice(&warden::harness::policy_file::load_configs(&paths).unwrap()).unwrap();
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
        (run.code, run.stdout.as_str()),
        (EXIT_OK, "tests/cli/fixtures/istio-import/mixed.yaml: ok (2 services, 3 authorization policies)\n")
    );
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
        let policy: serde_json::Value =
            serde_json::from_slice(&warden::harness::policy_file::load_configs(&paths).unwrap()).unwrap();
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
    assert_eq!(schema["additionalProperties"], false, "typos must not validate");
    let defs = &schema["$defs"];
    for def in ["ServiceDoc", "AuthzPolicyDoc", "RuleDoc", "SourceDoc", "OperationDoc", "ConditionDoc"] {
        assert_eq!(defs[def]["additionalProperties"], false, "{def}");
    }
    // Every field the example policies use is a property the schema knows,
    // at the top level and in services and authorization policies.
    let known = |v: &serde_json::Value| -> Vec<String> {
        v["properties"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    };
    let (top, service, authz) = (known(&schema), known(&defs["ServiceDoc"]), known(&defs["AuthzPolicyDoc"]));
    for dir in std::fs::read_dir("policies").unwrap() {
        let path = dir.unwrap().path().join("policy.yaml");
        if !path.is_file() {
            continue;
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&warden::harness::policy_file::load_config(&path).unwrap()).unwrap();
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
