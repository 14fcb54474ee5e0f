//! `warden --version` names the build (version, commit, the filter module's
//! SHA-256), and `warden completions SHELL` prints a completion script that
//! knows every command.

use super::warden;
use sha2::{Digest, Sha256};
use warden::cli::{EXIT_OK, EXIT_USAGE};

#[test]
fn version_names_the_commit_and_the_embedded_filter() {
    let digest: String = Sha256::digest(warden::FILTER_WASM).iter().map(|b| format!("{b:02x}")).collect();
    for flag in ["--version", "-V"] {
        let run = warden(&[flag]);
        assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", run.stdout);
        assert_eq!(lines[0], format!("warden {}", env!("CARGO_PKG_VERSION")));
        assert_eq!(lines[1], format!("commit {}", warden::cli::GIT_COMMIT));
        assert_eq!(lines[2], format!("filter sha256:{digest} ({} bytes)", warden::FILTER_WASM.len()));
    }
    // The commit is a full hash, or `unknown` outside a git checkout.
    let commit = warden::cli::GIT_COMMIT;
    assert!(commit == "unknown" || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())), "{commit}");
}

/// The tree under test is a git checkout (the tests run from one), so the
/// build found its commit: the same one git names now, or an ancestor
/// when commits were made since the last build.
#[test]
fn version_commit_is_this_checkout() {
    let git = |args: &[&str]| std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success());
    let Some(head) = git(&["rev-parse", "HEAD"]) else {
        assert_eq!(warden::cli::GIT_COMMIT, "unknown", "not a git checkout");
        return;
    };
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let commit = warden::cli::GIT_COMMIT;
    assert!(
        commit == head || git(&["merge-base", "--is-ancestor", commit, "HEAD"]).is_some(),
        "built from {commit}, checked out at {head}"
    );
}

/// The subcommands, read from `warden --help` (not from the code that
/// generates the scripts).
fn subcommands() -> Vec<String> {
    let help = warden(&["--help"]).stdout;
    let commands = help.split("Commands:\n").nth(1).expect("a command list");
    let names: Vec<String> = commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 11, "{names:?}");
    for expected in ["test", "check", "schema", "completions"] {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
    names
}

#[test]
fn bash_completion_knows_every_command() {
    let run = warden(&["completions", "bash"]);
    assert_eq!(run.code, EXIT_OK, "{}", run.stderr);
    assert!(run.stdout.contains("complete -F _warden"), "not a bash completion script");
    for name in subcommands() {
        // Each subcommand is a word of the top-level candidates and has a case of its own.
        assert!(run.stdout.contains(&format!("warden,{name})")), "bash completion lacks {name}");
    }
    // The schema kinds and the shells are completed as values.
    assert!(run.stdout.contains("policy test"), "schema kinds");
    assert!(run.stdout.contains("bash elvish fish powershell zsh"), "shells");
}

/// The script is one bash accepts and that completes a command name.
#[test]
fn bash_completion_runs_in_bash() {
    let script = warden(&["completions", "bash"]).stdout;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("warden.bash");
    std::fs::write(&path, script).expect("written");
    let probe = format!(
        "source {}; COMP_WORDS=(warden sch); COMP_CWORD=1; COMP_LINE='warden sch'; COMP_POINT=10; \
         _warden warden sch warden; echo \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let Ok(out) = std::process::Command::new("bash").args(["--norc", "-c", &probe]).output() else {
        panic!("bash is needed for this test");
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "schema");
}

#[test]
fn every_shell_gets_a_script() {
    for (shell, marker) in [
        ("bash", "_warden()"),
        ("zsh", "#compdef warden"),
        ("fish", "complete -c warden"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[warden]"),
    ] {
        let run = warden(&["completions", shell]);
        assert_eq!(run.code, EXIT_OK, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}: no {marker}");
        assert!(run.stdout.contains("wasmplugin"), "{shell}: lacks a command");
    }
    let run = warden(&["completions", "tcsh"]);
    assert_eq!(run.code, EXIT_USAGE);
}
