//! How every command takes its policy: files, a directory or standard
//! input as one input; what reading it noted, shown by every command and
//! refused under `--strict`; the warning for Istio's classic egress
//! gateway without `gatewayPorts`, on the YAML of Istio's own egress
//! gateway task (`fixtures/egress-gateway-task/`).

use super::{fixture, transcript, warden};
use warden::cli::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

const TASK: &str = "tests/cli/fixtures/egress-gateway-task";
const PORTS: &str = "tests/cli/fixtures/egress-gateway-ports/warden.yaml";
const PLUGIN: &str = "tests/cli/fixtures/egress-gateway-plugin/wasmplugin.yaml";

/// The warning's opening words, for each way the input can say it.
const WARNING: &str = "which looks like Istio's egress gateway: its Envoy listens on 8080 for port 80";

#[test]
fn the_egress_gateway_task_warns_about_its_listener_ports() {
    insta::assert_snapshot!("egress_gateway_task_import", transcript(&["import", TASK]));
    insta::assert_snapshot!("egress_gateway_task_check", transcript(&["check", TASK]));
    let run = warden(&["check", "--deny-warnings", TASK]);
    assert_eq!(run.code, EXIT_FAILED, "{}", run.stdout);
    // A WasmPlugin that deploys a policy at the gateway, checked on its own.
    let run = warden(&["check", PLUGIN]);
    assert_eq!(run.code, EXIT_OK);
    assert!(run.stdout.contains(&format!("WasmPlugin istio-system/warden selects istio=egressgateway, {WARNING}")));
    assert!(run.stdout.contains("in spec.pluginConfig"), "{}", run.stdout);
    // The manifest `warden wasmplugin` writes for the gateway.
    let run = warden(&[
        "wasmplugin",
        TASK,
        "--url",
        "oci://registry.example.com/warden:1",
        "--selector",
        "istio=egressgateway",
    ]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("the WasmPlugin selects istio=egressgateway, {WARNING}")), "{}", run.stderr);
    assert!(run.stdout.starts_with("apiVersion: extensions.istio.io/"), "the manifest is still written");
}

#[test]
fn the_warning_is_right_and_gateway_ports_silence_it() {
    // What the warning predicts: at the gateway's listener port the
    // task's policy refuses the request as unregistered...
    let at_gateway = ["--request", "edition.cnn.com/", "--port", "8080"];
    let run = warden(&[&["explain", TASK][..], &at_gateway].concat());
    assert!(run.stdout.contains("decision   unregistered"), "{}", run.stdout);
    // ...and with gatewayPorts beside it, allows it, with no warning.
    let run = warden(&[&["explain", TASK, PORTS][..], &at_gateway].concat());
    assert!(run.stdout.contains("decision   allow"), "{}", run.stdout);
    assert!(!run.stderr.contains(WARNING), "{}", run.stderr);
    let run = warden(&["check", "--combine", "--deny-warnings", TASK, PORTS]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stdout);
    assert!(!run.stdout.contains("warning"), "{}", run.stdout);
    // A policy with nothing of the egress gateway in it warns only where
    // the manifest selects the gateway.
    let policy = fixture("passing/policy.json");
    let url = "oci://registry.example.com/warden:1";
    for (target, warns) in [
        (["--selector", "istio=egressgateway"], true),
        (["--selector", "app=sleep"], false),
        (["--target-ref", "Gateway/waypoint"], false),
    ] {
        let run = warden(&[&["wasmplugin", &policy, "--url", url][..], &target].concat());
        assert_eq!((run.code, run.stderr.contains(WARNING)), (EXIT_OK, warns), "{target:?}: {}", run.stderr);
    }
}

#[test]
fn strict_turns_notes_and_warnings_into_errors() {
    // Skipped routing resources stay notes; the warning is an error.
    insta::assert_snapshot!("egress_gateway_task_check_strict", transcript(&["check", "--strict", TASK]));
    let run = warden(&["import", "--strict", TASK]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stdout.is_empty(), "no policy is written: {}", run.stdout);
    assert!(run.stderr.contains(&format!("error: {TASK}/egress-gateway.yaml: Gateway default/istio-egressgateway")));
    for args in [
        &["explain", "--strict", TASK, "--request", "edition.cnn.com/"][..],
        &["replay", "--strict", TASK, "tests/cli/fixtures/replay/access.log"],
    ] {
        let run = warden(args);
        assert_eq!(run.code, EXIT_USAGE, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    for args in [
        &["compile", "--strict", TASK, "-o", "/dev/null"][..],
        &["wasmplugin", "--strict", TASK, "--url", "oci://r.example.com/w:1", "--target-ref", "Gateway/waypoint"],
        &["check", "--strict", PLUGIN],
    ] {
        let run = warden(args);
        assert_eq!(run.code, EXIT_FAILED, "{args:?}: {}{}", run.stdout, run.stderr);
    }
    // Without notes --strict changes nothing.
    let run = warden(&["check", "--strict", "--combine", TASK, PORTS]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stdout);
    let run = warden(&["test", "--strict", &fixture("passing")]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
}

#[test]
fn test_shows_the_notes_of_the_policies_it_reads_once() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        std::fs::write(
            dir.path().join(format!("{name}.test.yaml")),
            format!(
                "policy: {}\ntests:\n  - name: the listener port\n    request: {{authority: edition.cnn.com, port: 8080}}\n    \
                 expect: {{decision: deny, status: 502}}\n",
                std::fs::canonicalize(TASK).unwrap().display()
            ),
        )
        .unwrap();
    }
    let run = warden(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.matches(WARNING).count(), 1, "{}", run.stderr);
    let run = warden(&["test", "--strict", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, EXIT_USAGE, "{}", run.stdout);
    assert!(run.stderr.contains("--strict: the notes above are errors"), "{}", run.stderr);
    assert_eq!(run.stdout.lines().last(), Some("0 passed, 0 failed"), "{}", run.stdout);
}

#[test]
fn several_files_and_directories_are_one_input() {
    // Checked one by one, the AuthorizationPolicy lacks its ServiceEntry...
    let list = fixture("istio-list");
    let (se, ap) = (format!("{list}/serviceentry.yaml"), format!("{list}/authorizationpolicy.yaml"));
    // (Istio input that cannot be converted is an input error.)
    let run = warden(&["check", &se, &ap]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stdout.contains(&format!("\n{se}: ok (1 services")), "{}", run.stdout);
    assert!(run.stderr.contains("ServiceEntry default/httpbin is not in the input"), "{}", run.stderr);
    // ...together (or as their directory) they are read as one, and its
    // own error shows.
    for args in [&["check", "--combine", &se, &ap][..], &["check", &list]] {
        let run = warden(args);
        assert_eq!(run.code, EXIT_USAGE, "{args:?}");
        assert!(!run.stderr.contains("is not in the input"), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("authorizationpolicy.yaml:14: AuthorizationPolicy default/httpbin: spec.rules[0].from[0].source.requestPrincipals"), "{args:?}: {}", run.stderr);
    }
    // A directory's test files are not policy files.
    let run = warden(&["compile", TASK, "-o", "/dev/null"]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("only.test.yaml"), "policy: x.yaml\ntests: []\n").unwrap();
    let run = warden(&["check", empty.path().to_str().unwrap()]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.contains("a directory with no policy files (*.yaml, *.yml, *.json) under it"), "{}", run.stderr);
}

/// `-`: the policy from standard input, through the built binary.
#[test]
fn standard_input_is_a_policy_file() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let run = |args: &[&str], input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let output = child.wait_with_output().unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (output.status.code(), text(output.stdout), text(output.stderr))
    };
    let plugin = std::fs::read(PLUGIN).unwrap();
    let (code, stdout, _) = run(&["check", "-"], &plugin);
    assert_eq!(code, Some(EXIT_OK));
    assert!(
        stdout.contains(&format!(
            "warning[W201]: <stdin>: WasmPlugin istio-system/warden selects istio=egressgateway, {WARNING}"
        )),
        "{stdout}"
    );
    assert!(stdout.ends_with("<stdin>: ok (1 services, 0 authorization policies), 1 warning\n"), "{stdout}");
    // Standard input with files, as one input.
    let ports = std::fs::read(PORTS).unwrap();
    let (code, stdout, stderr) =
        run(&["explain", TASK, "-", "--request", "edition.cnn.com/", "--port", "8080"], &ports);
    assert_eq!(code, Some(EXIT_OK), "{stderr}");
    assert!(stdout.contains("decision   allow"), "{stdout}");
    // Errors name it, with the line.
    let (code, stdout, _) = run(&["check", "-"], b"name: x\nservices: [{name: a, hosts: [a.com], ports: [99999]}]\n");
    assert_eq!(code, Some(EXIT_FAILED));
    assert!(stdout.starts_with("error[E102]: <stdin>:2: services[0].ports[0]: 99999 is not a port"), "{stdout}");
    let (code, _, stderr) = run(&["check", "--combine", "-", "-"], b"name: x\n");
    assert_eq!(code, Some(EXIT_USAGE));
    assert!(stderr.contains("standard input can be read only once"), "{stderr}");
}

/// The mesh config in the istio ConfigMap is a string: its errors name
/// the line (and column) in the file where the string is a literal block.
#[test]
fn errors_in_the_configmaps_mesh_string_name_the_files_line() {
    let dir = fixture("configmap-mesh");
    let check =
        |file: &str| warden(&["check", "--combine", &format!("{dir}/serviceentry.yaml"), &format!("{dir}/{file}")]);
    let run = check("bad-mode.yaml");
    assert_eq!(run.code, EXIT_USAGE);
    assert!(
        run.stderr.starts_with(&format!(
            "error[E005]: {dir}/bad-mode.yaml:12: mesh config: outboundTrafficPolicy.mode: unknown variant `REGISTRY-ONLY`"
        )),
        "{}",
        run.stderr
    );
    let run = check("bad-syntax.yaml");
    assert_eq!(run.stderr, format!("error[E005]: {dir}/bad-syntax.yaml:10:31: document 1: data.mesh: not valid YAML: mapping values are not allowed in this context\n"));
    // A quoted string's lines are not the file's: the line of data.mesh.
    let run = check("bad-mode-quoted.yaml");
    assert!(
        run.stderr.starts_with(&format!(
            "error[E005]: {dir}/bad-mode-quoted.yaml:6: mesh config: outboundTrafficPolicy.mode:"
        )),
        "{}",
        run.stderr
    );
}
