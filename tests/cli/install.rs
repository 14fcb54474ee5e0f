//! The container recipe (`Dockerfile`, `.dockerignore`) refers to files,
//! targets and variables that exist. Not a `docker build` (no Docker
//! engine or base images in the test environment): a check of each
//! instruction against the tree, so a renamed binary, a moved file, a new
//! toolchain or an ignore rule that hides a source fails here first.

use std::path::Path;

/// The Dockerfile's instructions (continuation lines joined, comments
/// dropped), as (INSTRUCTION, arguments).
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string("Dockerfile").expect("a Dockerfile at the root");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                let (op, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// The `.dockerignore` patterns.
fn ignored() -> Vec<String> {
    let text = std::fs::read_to_string(".dockerignore").expect("a .dockerignore at the root");
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// Whether `.dockerignore` leaves `path` (relative to the root) out of the
/// build context. Only the pattern forms the file uses: a directory or
/// file name from the root, with an optional trailing `/`, and `**/NAME/`.
fn is_ignored(path: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim_end_matches('/');
        match p.strip_prefix("**/") {
            Some(name) => path.split('/').any(|part| part == name),
            None => path == p || path.starts_with(&format!("{p}/")),
        }
    })
}

/// The toolchain rust-toolchain.toml pins (`1.95.0`) and its targets.
fn toolchain() -> (String, Vec<String>) {
    let text = std::fs::read_to_string("rust-toolchain.toml").expect("rust-toolchain.toml");
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.trim_start().strip_prefix('=').map(|v| v.trim().to_owned()))
    };
    let channel = value("channel").expect("channel").trim_matches('"').to_owned();
    let targets = value("targets").expect("targets");
    let targets = targets.trim_matches(['[', ']']).split(',').map(|t| t.trim().trim_matches('"').to_owned()).collect();
    (channel, targets)
}

#[test]
fn dockerfile_builds_from_the_pinned_toolchain_and_a_matching_runtime() {
    let froms: Vec<String> = instructions().into_iter().filter(|(op, _)| op == "FROM").map(|(_, a)| a).collect();
    let [build, run] = froms.as_slice() else { panic!("two stages, build and run: {froms:?}") };
    let (channel, _) = toolchain();
    let (minor, _patch) = channel.rsplit_once('.').expect("a channel such as 1.95.0");
    // rust:1.95-slim-trixie AS build
    let image = build.split_whitespace().next().expect("an image");
    let tag = image.strip_prefix("rust:").expect("the build stage is the Rust image");
    assert!(tag.starts_with(&format!("{minor}-")), "{image}: rust-toolchain.toml pins {channel}");
    assert!(build.ends_with(" AS build"), "{build}");
    // The binary runs on the Debian release it was built on (its glibc).
    let release = tag.rsplit('-').next().expect("a Debian release");
    assert_eq!(run.as_str(), format!("debian:{release}-slim"), "run stage");
}

#[test]
fn dockerfile_copies_and_builds_what_exists() {
    let patterns = ignored();
    let (_, targets) = toolchain();
    let manifest = std::fs::read_to_string("Cargo.toml").expect("Cargo.toml");
    let mut produced = Vec::new();
    let mut checked = 0;
    for (op, args) in instructions() {
        match op.as_str() {
            "COPY" if args.starts_with("--from=build ") => {
                let source = args.split_whitespace().nth(1).expect("a source");
                assert!(produced.iter().any(|p| p == source), "COPY {args}: the build stage makes no {source}");
                checked += 1;
            }
            "COPY" => {
                let parts: Vec<&str> = args.split_whitespace().collect();
                let (sources, _destination) = parts.split_at(parts.len() - 1);
                for source in sources {
                    assert!(Path::new(source).exists(), "COPY {source}: no such file");
                    assert!(!is_ignored(source, &patterns), "COPY {source}: left out by .dockerignore");
                }
                checked += 1;
            }
            "RUN" => {
                for command in args.split("&&").map(str::trim) {
                    let words: Vec<&str> = command.split_whitespace().collect();
                    match words.as_slice() {
                        ["rustup", "toolchain", "install"] => {}
                        ["rustup", "target", "add", target] => {
                            assert!(targets.iter().any(|t| t == target), "{target} not in rust-toolchain.toml");
                            let build_rs = std::fs::read_to_string("build.rs").expect("build.rs");
                            assert!(
                                build_rs.contains(&format!("\"{target}\"")),
                                "build.rs builds the filter for another target"
                            );
                        }
                        ["cargo", "build", "--release", "--locked", "--bin", bin] => {
                            assert_eq!(*bin, "warden");
                            assert!(manifest.contains("\nname = \"warden\"\n"), "the root package is warden");
                            assert!(Path::new("src/main.rs").is_file(), "the warden binary is src/main.rs");
                            assert!(
                                Path::new("Cargo.lock").is_file() && !is_ignored("Cargo.lock", &patterns),
                                "--locked"
                            );
                        }
                        ["cp", from, to] => {
                            assert_eq!(*from, "target/release/warden", "where cargo build --release puts the binary");
                            produced.push((*to).to_owned());
                        }
                        [binary, "--version"] => {
                            assert!(produced.iter().any(|p| p == binary), "{binary} is not built");
                        }
                        other => panic!("a RUN command this check does not know: {other:?}"),
                    }
                    checked += 1;
                }
            }
            "ENV" | "ARG" => {
                let name = args.split(['=', ' ']).next().expect("a name");
                let readers = ["build.rs", "harness/src/cache.rs"];
                assert!(
                    readers
                        .iter()
                        .any(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(&format!("\"{name}\"")))),
                    "{op} {name}: read by none of {readers:?}"
                );
                checked += 1;
            }
            "ENTRYPOINT" => {
                let entry: Vec<String> = serde_json::from_str(&args).expect("exec form");
                assert_eq!(entry, ["warden"]);
                assert!(produced.iter().any(|p| p == "/usr/local/bin/warden"), "warden is on the PATH");
                checked += 1;
            }
            "FROM" | "WORKDIR" | "USER" | "CMD" => {}
            other => panic!("an instruction this check does not know: {other}"),
        }
    }
    assert!(checked >= 10, "{checked} instructions checked");
}

/// The context leaves out build outputs and local environments, and keeps
/// everything the build reads: every workspace member, the build script
/// and what it includes.
#[test]
fn dockerignore_leaves_out_outputs_and_keeps_the_sources() {
    let patterns = ignored();
    for out in ["target", "target/release/warden", ".venv", ".git"] {
        assert!(is_ignored(out, &patterns), "{out} is sent to the build");
    }
    let manifest = std::fs::read_to_string("Cargo.toml").expect("Cargo.toml");
    let members = manifest.split("members = [").nth(1).and_then(|m| m.split(']').next()).expect("workspace members");
    let members: Vec<&str> = members
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().trim_end_matches(',').trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    assert!(members.len() >= 5, "{members:?}");
    let needed =
        ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "build.rs", "src/main.rs", "benches/support/wasm_cargo.rs"];
    for path in members.iter().map(|m| format!("{m}/Cargo.toml")).chain(needed.iter().map(|p| (*p).to_owned())) {
        assert!(Path::new(&path).is_file(), "{path}: missing");
        assert!(!is_ignored(&path, &patterns), "{path}: left out by .dockerignore");
    }
}
