//! `warden diff` on the example policies with the edits reviewers see: a
//! rule added, a wildcard widened, a DENY removed, a dry-run flipped, a
//! DLP action weakened; each report is a snapshot, each witness is run
//! through `warden explain` (the compiled filter in the harness) and must
//! reproduce the decision the diff reports, and `--fail-on` sets the exit
//! code.

use super::warden;
use serde_json::Value;
use std::path::{Path, PathBuf};
use warden::cli::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

const MULTI_TEAM: &str = "policies/multi-team/policy.yaml";
const DLP: &str = "policies/dlp/policy.yaml";

/// `policy` with `from` replaced by `to` (which must occur once), written
/// to `dir/name`.
fn edited(dir: &Path, name: &str, policy: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(policy).expect("example policy");
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once in {policy}");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// The diff of `policy` and its edited copy: the transcript with the
/// temporary directory's name replaced, and the JSON report.
fn diff_of(policy: &str, edits: &[(&str, &str)], format: &str) -> (String, Value, i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let new = edited(dir.path(), "new.yaml", policy, edits);
    let new = new.to_str().expect("UTF-8 path");
    let run = warden(&["diff", policy, new, "--format", format]);
    let json = warden(&["diff", policy, new, "--format", "json"]);
    assert_eq!(json.code, EXIT_OK, "{}", json.stderr);
    let report: Value = serde_json::from_str(&json.stdout).expect("JSON report");
    let shown = format!("exit code: {}\n{}{}", run.code, run.stdout, run.stderr)
        .replace(&format!("{}/", dir.path().display()), "NEW/");
    check_witnesses(&report, dir.path());
    (shown, report, run.code)
}

/// Runs every change's `explain` command and checks that the compiled
/// filter decides its witness as the diff says the new policy does.
fn check_witnesses(report: &Value, dir: &Path) {
    for change in report["changes"].as_array().expect("changes") {
        let command = change["explain"].as_str().expect("explain command");
        let words = shell_words(command);
        assert_eq!(words.first().map(String::as_str), Some("warden"), "{command}");
        let args: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
        let run = warden(&args);
        assert_eq!(run.code, EXIT_OK, "{command}\n{}{}", run.stdout, run.stderr);
        let decision = run.stdout.lines().find_map(|l| l.strip_prefix("decision   ")).unwrap_or("");
        let reason = run.stdout.lines().find_map(|l| l.strip_prefix("reason     ")).unwrap_or("");
        assert_eq!(decision, change["new"]["outcome"], "{command}\n{}", run.stdout);
        assert_eq!(reason, change["new"]["reason"], "{command}\n{}", run.stdout);
        assert!(run.stdout.contains("agree"), "{}", run.stdout);
    }
    let _ = dir;
}

/// Splits a command line the way the reports quote it ('...' only).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '\\' if !quoted => word.extend(chars.next()),
            ' ' if !quoted => words.push(std::mem::take(&mut word)),
            c => word.push(c),
        }
    }
    words.push(word);
    words.retain(|w| !w.is_empty());
    words
}

fn kinds(report: &Value) -> Vec<&str> {
    report["changes"].as_array().expect("changes").iter().map(|c| c["kind"].as_str().unwrap_or("")).collect()
}

#[test]
fn a_rule_added_widens_access_for_exactly_its_requests() {
    let (shown, report, code) = diff_of(
        MULTI_TEAM,
        &[(
            "              principals: [\"cluster.local/ns/data/sa/ml-*\", \"cluster.local/ns/support/sa/assistant\"]",
            "              principals: [\"cluster.local/ns/data/sa/ml-*\", \"cluster.local/ns/support/sa/assistant\", \"cluster.local/ns/support/sa/triage\"]",
        )],
        "human",
    );
    assert_eq!(code, EXIT_OK);
    assert!(kinds(&report).contains(&"widens"), "{shown}");
    assert!(shown.contains("spiffe://cluster.local/ns/support/sa/triage"), "{shown}");
    insta::assert_snapshot!("diff_rule_added", shown);
}

#[test]
fn a_wildcard_widened_in_the_registry_opens_hosts_only_as_far_as_the_rules_do() {
    // llm-apis lists its hosts: the new hosts are registered (denied, not
    // unregistered), and no request is newly allowed.
    let (shown, report, _) = diff_of(
        MULTI_TEAM,
        &[("{name: openai, hosts: [api.openai.com]", "{name: openai, hosts: [\"*.openai.com\"]")],
        "human",
    );
    assert!(!kinds(&report).is_empty(), "{shown}");
    assert!(kinds(&report).iter().all(|k| *k == "record"), "{shown}");
    for c in report["changes"].as_array().expect("changes") {
        assert_eq!(c["old"]["outcome"], "unregistered");
        assert_eq!(c["new"]["outcome"], "denied");
    }
}

#[test]
fn a_principal_wildcard_widened_opens_the_namespace() {
    let (shown, report, _) = diff_of(
        MULTI_TEAM,
        &[(
            "\"cluster.local/ns/data/sa/ml-*\", \"cluster.local/ns/support/sa/assistant\"]",
            "\"cluster.local/ns/data/*\", \"cluster.local/ns/support/sa/assistant\"]",
        )],
        "human",
    );
    assert!(kinds(&report).contains(&"widens"), "{shown}");
    let widened =
        report["changes"].as_array().expect("changes").iter().find(|c| c["kind"] == "widens").expect("a widening");
    assert_eq!(widened["new"]["policy"], "llm-apis");
    let principal = widened["witness"]["principal"].as_str().expect("a principal");
    assert!(principal.starts_with("spiffe://cluster.local/ns/data/") && !principal.contains("/sa/ml-"), "{principal}");
    insta::assert_snapshot!("diff_wildcard_widened", shown);
}

#[test]
fn a_deny_removed_lets_its_requests_through() {
    let text = std::fs::read_to_string(MULTI_TEAM).expect("example");
    let start = text.find("  # Only the treasury service account may move money out of Stripe.\n").expect("the DENY");
    let end = text.find("  # Refunds at any PSP need a refund ticket").expect("the next policy");
    let block = text.get(start..end).expect("the block");
    let (_, report, code) = diff_of(MULTI_TEAM, &[(block, "")], "json");
    assert_eq!(code, EXIT_OK);
    let changes = report["changes"].as_array().expect("changes");
    assert!(changes.iter().any(|c| c["kind"] == "widens"));
    // Everything that changed was decided by the DENY before.
    for c in changes {
        assert_eq!(c["old"]["policy"], "stripe-money-movement", "{c}");
        assert_ne!(c["new"]["policy"], "stripe-money-movement", "{c}");
    }
}

#[test]
fn a_deny_made_dry_run_lets_its_requests_through_and_records_them() {
    let (shown, report, _) = diff_of(
        MULTI_TEAM,
        &[(
            "  - name: stripe-money-movement\n    action: DENY\n",
            "  - name: stripe-money-movement\n    action: DENY\n    dryRun: true\n",
        )],
        "markdown",
    );
    // Made dry-run: enforced nowhere, recorded where it would have refused.
    assert!(kinds(&report).contains(&"widens"), "{shown}");
    let widened =
        report["changes"].as_array().expect("changes").iter().find(|c| c["kind"] == "widens").expect("a widening");
    assert_eq!(widened["old"]["policy"], "stripe-money-movement");
    assert_eq!(widened["new"]["dryRun"][0], "stripe-money-movement");
    insta::assert_snapshot!("diff_deny_dry_run", shown);
}

#[test]
fn a_dry_run_flipped_to_enforced_narrows_access() {
    let (shown, report, _) = diff_of(
        MULTI_TEAM,
        &[(
            "  - name: dry-run-retire-ad-platforms\n    action: DENY\n    dryRun: true\n",
            "  - name: dry-run-retire-ad-platforms\n    action: DENY\n",
        )],
        "human",
    );
    // Newly refused where it allowed; refused for another reason (the
    // DENY, no longer the missing ALLOW) where it refused already.
    let kinds = kinds(&report);
    assert!(kinds.contains(&"narrows") && !kinds.contains(&"widens"), "{shown}");
    // Every change is one the dry-run recorded and the enforced DENY no
    // longer records as dry-run.
    for c in report["changes"].as_array().expect("changes") {
        assert!(c["old"]["dryRun"].as_array().expect("dryRun").contains(&"dry-run-retire-ad-platforms".into()), "{c}");
        assert!(!c["new"]["dryRun"].as_array().expect("dryRun").contains(&"dry-run-retire-ad-platforms".into()), "{c}");
    }
    insta::assert_snapshot!("diff_dry_run_flipped", shown);
}

#[test]
fn a_dlp_action_weakened_is_a_widening_for_ci() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new = edited(
        dir.path(),
        "new.yaml",
        DLP,
        &[(
            "      detectors: [credit_card, iban]\n      action: BLOCK",
            "      detectors: [credit_card, iban]\n      action: AUDIT",
        )],
    );
    let new = new.to_str().expect("UTF-8 path");
    let run = warden(&["diff", DLP, new, "--fail-on", "widen"]);
    assert_eq!(run.code, EXIT_FAILED, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("WEAKENS httpbin.org: credit_card, iban in body, headers, query: BLOCK → AUDIT"),
        "{}",
        run.stdout
    );
    // Strengthening it back is a change, not a widening.
    let back = warden(&["diff", new, DLP, "--fail-on", "widen"]);
    assert_eq!(back.code, EXIT_OK, "{}", back.stdout);
    assert_eq!(warden(&["diff", new, DLP, "--fail-on", "any"]).code, EXIT_FAILED);
}

#[test]
fn identical_policies_differ_in_nothing() {
    let run = warden(&["diff", MULTI_TEAM, MULTI_TEAM, "--fail-on", "any"]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no change"), "{}", run.stdout);
    let json = warden(&["diff", MULTI_TEAM, MULTI_TEAM, "--format", "json"]);
    let report: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(report["changed"], false);
    assert_eq!(report["stats"]["explored"], 0);
    // Istio input and what `warden import` makes of it are the same policy.
    let istio = "policies/istio/egress-gateway-sidecar";
    let imported = warden(&["import", istio]);
    assert_eq!(imported.code, EXIT_OK, "{}", imported.stderr);
    let dir = tempfile::tempdir().expect("tempdir");
    let converted = dir.path().join("warden.yaml");
    std::fs::write(&converted, imported.stdout).expect("write");
    let run = warden(&["diff", istio, converted.to_str().expect("UTF-8"), "--fail-on", "any"]);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no change"), "{}", run.stdout);
}

#[test]
fn fail_on_widen_fails_a_widening_and_passes_a_narrowing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let narrower = edited(
        dir.path(),
        "narrow.yaml",
        MULTI_TEAM,
        &[(
            "  - name: dry-run-retire-ad-platforms\n    action: DENY\n    dryRun: true\n",
            "  - name: dry-run-retire-ad-platforms\n    action: DENY\n",
        )],
    );
    let narrower = narrower.to_str().expect("UTF-8");
    assert_eq!(warden(&["diff", MULTI_TEAM, narrower, "--fail-on", "widen"]).code, EXIT_OK);
    assert_eq!(warden(&["diff", narrower, MULTI_TEAM, "--fail-on", "widen"]).code, EXIT_FAILED);
    assert_eq!(warden(&["diff", MULTI_TEAM, narrower, "--fail-on", "any"]).code, EXIT_FAILED);
}

#[test]
fn an_invalid_policy_is_an_input_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nservices:\n  - name: a\n    hosts: [\"exa mple.com\"]\n").expect("write");
    let run = warden(&["diff", MULTI_TEAM, bad.to_str().expect("UTF-8")]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.stderr.contains("bad.yaml:4"), "{}", run.stderr);
    let missing = warden(&["diff", MULTI_TEAM, "no-such-file.yaml"]);
    assert_eq!(missing.code, EXIT_USAGE);
    assert!(missing.stderr.contains("no-such-file.yaml"), "{}", missing.stderr);
}

/// `REV:PATH` reads a policy from git without checking anything out.
#[test]
fn a_git_revision_is_read_without_a_checkout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(dir.path()).output().expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "ci@example.com"]);
    git(&["config", "user.name", "ci"]);
    std::fs::create_dir(dir.path().join("policies")).expect("mkdir");
    let policy = std::fs::read_to_string(MULTI_TEAM).expect("example");
    std::fs::write(dir.path().join("policies/egress.yaml"), &policy).expect("write");
    git(&["add", "."]);
    git(&["commit", "-qm", "policy"]);
    // The working tree removes the DENY on money movement.
    let edited = policy.replace(
        "  - name: stripe-money-movement\n    action: DENY\n",
        "  - name: stripe-money-movement\n    action: AUDIT\n",
    );
    std::fs::write(dir.path().join("policies/egress.yaml"), edited).expect("write");

    let exe = env!("CARGO_BIN_EXE_warden");
    let out = std::process::Command::new(exe)
        .args(["diff", "HEAD:policies", "policies", "--fail-on", "widen"])
        .current_dir(dir.path())
        .output()
        .expect("warden runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_FAILED), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("warden diff HEAD:policies policies"), "{stdout}");
    assert!(stdout.contains("before  denied (deny-policy: stripe-money-movement)"), "{stdout}");
    // A revision that does not exist is an input error.
    let bad = std::process::Command::new(exe)
        .args(["diff", "no-such-rev:policies", "policies"])
        .current_dir(dir.path())
        .output()
        .expect("warden runs");
    assert_eq!(bad.status.code(), Some(EXIT_USAGE));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a git revision"));
}

/// `--log` counts the requests of an access log in each change; a request
/// the change does not affect is counted as read only.
#[test]
fn a_log_counts_the_traffic_each_change_affects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new = edited(
        dir.path(),
        "new.yaml",
        MULTI_TEAM,
        &[(
            "notPrincipals: [\"cluster.local/ns/payments/sa/treasury\"]",
            "notPrincipals: [\"cluster.local/ns/payments/sa/treasury\", \"cluster.local/ns/payments/sa/payouts-bot\"]",
        )],
    );
    let line = |method: &str, authority: &str, path: &str, principal: &str| {
        format!(
            r#"{{"authority":"{authority}","method":"{method}","path":"{path}","protocol":"HTTP/1.1","downstream_local_address":"10.0.0.1:443","downstream_remote_address":"10.1.2.3:40000","peer":"{principal}"}}"#
        )
    };
    let log = [
        line("POST", "api.stripe.com", "/v1/payouts", "spiffe://cluster.local/ns/payments/sa/payouts-bot"),
        line("POST", "api.stripe.com", "/v1/transfers?x=1", "spiffe://cluster.local/ns/payments/sa/payouts-bot"),
        line("POST", "api.stripe.com", "/v1/payouts", "spiffe://cluster.local/ns/payments/sa/payments-api"),
        line("GET", "api.stripe.com", "/v1/balance", "spiffe://cluster.local/ns/payments/sa/payouts-bot"),
        r#"{"downstream_local_address":"10.0.0.1:443","requested_server_name":"api.stripe.com"}"#.to_owned(),
        "not json".to_owned(),
    ]
    .join("\n");
    let log_path = dir.path().join("access.log");
    std::fs::write(&log_path, log).expect("write");
    let args = [
        "diff",
        MULTI_TEAM,
        new.to_str().expect("UTF-8"),
        "--log",
        log_path.to_str().expect("UTF-8"),
        "--principal-field",
        "peer",
    ];
    let run = warden(&args);
    assert_eq!(run.code, EXIT_OK, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("5 requests and connections, 2 decided differently by the new policy (1 lines skipped)"),
        "{}",
        run.stdout
    );
    let json = warden(&[&args[..], &["--format", "json"]].concat());
    let report: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(report["log"]["changed"], 2);
    assert_eq!(report["log"]["unexplained"], 0);
    let widened: u64 = report["log"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["kind"] == "widens")
        .map(|g| g["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(widened, 2);
    // An empty log is an input error, not "no change".
    std::fs::write(&log_path, "").expect("write");
    assert_eq!(warden(&args).code, EXIT_USAGE);
}
