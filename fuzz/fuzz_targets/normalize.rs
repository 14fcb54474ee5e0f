//! Authorities and paths as a hostile client writes them. Nothing panics;
//! normalizing twice changes nothing; a normalized path holds no `//`
//! (MERGE_SLASHES and up), `/./`, `/../` or backslash (BASE and up), nor an
//! encoded slash (DECODE_AND_MERGE_SLASHES); and the decision on a raw path
//! is the decision on the path Warden forwards for it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warden_engine::document::PathNormalization as N;
use warden_engine::normalize::{is_ambiguous, normalize_path, split_authority, split_path};
use warden_engine::{compile, FakeAttributes, Policy};

/// The policy under each normalization, compiled once.
fn policies() -> &'static [Policy; 4] {
    static POLICIES: OnceLock<[Policy; 4]> = OnceLock::new();
    POLICIES.get_or_init(|| MODES.map(|(_, name)| policy(name)))
}

const MODES: [(N, &str); 4] = [
    (N::None, "NONE"),
    (N::Base, "BASE"),
    (N::MergeSlashes, "MERGE_SLASHES"),
    (N::DecodeAndMergeSlashes, "DECODE_AND_MERGE_SLASHES"),
];

fn policy(mode: &str) -> Policy {
    let doc = format!(
        r#"{{"name": "n", "pathNormalization": "{mode}", "rejectAmbiguousPaths": false,
            "services": [{{"name": "h", "hosts": ["h.example"]}}],
            "authorization": [
              {{"name": "no-admin", "action": "DENY", "rules": [{{"to": [{{"operation": {{"paths": ["/admin", "/admin/*", "*/secret"]}}}}]}}]}},
              {{"name": "api", "action": "ALLOW", "rules": [{{"to": [{{"operation": {{"paths": ["/api/{{*}}/items", "/pub/{{**}}", "/"]}}}}]}}]}}
            ]}}"#
    );
    compile::load(doc.as_bytes()).expect("the fuzz policy compiles")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = split_authority(text);
    let (path, _, _) = split_path(text);
    for ((mode, name), p) in MODES.into_iter().zip(policies()) {
        let once = normalize_path(path, mode);
        assert_eq!(normalize_path(&once, mode), once, "{name}: normalizing twice changes {path:?}");
        if !path.starts_with('/') || mode == N::None {
            continue;
        }
        for bad in ["/./", "/../", "\\"] {
            assert!(!once.contains(bad), "{name}: {path:?} -> {once:?} holds {bad:?}");
        }
        assert!(!once.ends_with("/.") && !once.ends_with("/.."), "{name}: {path:?} -> {once:?}");
        if mode >= N::MergeSlashes {
            assert!(!once.contains("//"), "{name}: {path:?} -> {once:?}");
        }
        if mode == N::DecodeAndMergeSlashes {
            let upper = once.to_ascii_uppercase();
            assert!(!upper.contains("%2F") && !upper.contains("%5C"), "{name}: {path:?} -> {once:?}");
        }
        // The decision on the raw path is the decision on what is forwarded.
        if is_ambiguous(text, path) {
            continue;
        }
        let raw = p.decide(&FakeAttributes::get("h.example", text));
        let forwarded = raw.forward_path.clone().unwrap_or_else(|| text.to_owned());
        let again = p.decide(&FakeAttributes::get("h.example", &forwarded));
        assert_eq!(
            (raw.outcome, raw.policy, raw.rule),
            (again.outcome, again.policy, again.rule),
            "{name}: {text:?} forwarded as {forwarded:?}"
        );
    }
});
