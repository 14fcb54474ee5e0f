//! The baseline for `benches/dlp_filter.rs` and `scripts/v8-dlp-bench.js`:
//! DLP the naive way inside a proxy-wasm filter. The root context compiles
//! a `regex::bytes::RegexSet` of every pattern of Warden's default DLP
//! catalogue (`warden_engine::dlp::CATALOGUE`) once per configuration; each
//! request body chunk is read and matched against the whole set, and the
//! number of patterns that matched is added to the counter
//! `regexset.matches` (so the work cannot be optimized away).
//!
//! No validators, no decoding, no carry between chunks (a secret split
//! across two chunks is missed): the cost of running the catalogue's
//! regexes over the bytes, nothing more. The regex crate has the features
//! the engine gives it (`std` only, no `perf`), as in Warden's filter.
//!
//! Build it like the real filter:
//!
//! ```sh
//! cargo build -p regexset-filter --lib --target wasm32-wasip1 --profile wasm --target-dir target/wasm
//! ```

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MetricType};
use regex::bytes::RegexSet;
use std::rc::Rc;
use warden_engine::dlp::CATALOGUE;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RegexSetRoot::default()) });
}}

/// The counter of patterns matched, summed over chunks.
const MATCHES_METRIC: &str = "regexset.matches";

/// Owns the compiled set for one plugin configuration.
#[derive(Default)]
struct RegexSetRoot {
    set: Option<Rc<RegexSet>>,
    matches: Option<u32>,
}

impl Context for RegexSetRoot {}

impl RootContext for RegexSetRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.matches = hostcalls::define_metric(MetricType::Counter, MATCHES_METRIC).ok();
        match RegexSet::new(CATALOGUE.iter().map(|d| d.pattern)) {
            Ok(set) => {
                self.set = Some(Rc::new(set));
                true
            }
            Err(err) => {
                let _ = hostcalls::log(LogLevel::Error, &format!("regexset: cannot compile the catalogue: {err}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RegexSetStream { set: self.set.clone(), matches: self.matches }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct RegexSetStream {
    set: Option<Rc<RegexSet>>,
    matches: Option<u32>,
}

impl Context for RegexSetStream {}

impl HttpContext for RegexSetStream {
    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        let Some(set) = &self.set else { return Action::Continue };
        // Continue mode: Envoy's buffer holds only this chunk.
        let chunk = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size).ok().flatten().unwrap_or_default();
        let matched = set.matches(&chunk).iter().count();
        if let (Some(id), true) = (self.matches, matched > 0) {
            let _ = hostcalls::increment_metric(id, matched as i64);
        }
        Action::Continue
    }
}
