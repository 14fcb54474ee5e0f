//! Policy files as users write them: YAML or JSON, the warden/v1 envelope,
//! Istio resources and mesh configs. Reading, importing and compiling
//! never panic; an import that succeeds compiles.

#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_config::istio;
use warden_config::envelope;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(value) = envelope::parse(text) {
        if let Ok(json) = serde_json::to_vec(&value) {
            let _ = warden_engine::compile::load(&json);
        }
    }
    let source = istio::Source { file: "fuzz.yaml".into(), text: text.to_owned() };
    if let Ok(import) = istio::import(&[source], &istio::Options::default()) {
        warden_engine::compile::load(&import.config()).expect("an import is checked by compiling it");
    }
});
