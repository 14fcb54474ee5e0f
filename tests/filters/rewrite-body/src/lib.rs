//! A test filter that rewrites the request body, to prove the harness
//! buffers body chunks the way Envoy does.
//!
//! Plugin configuration, `key: value` lines:
//!
//! - `mode: buffer` (default): pause on every chunk until `end_of_stream`,
//!   so the host keeps buffering; then rewrite the whole body at once.
//! - `mode: stream`: rewrite each chunk as it passes and continue.
//! - `replace: FROM=>TO`: replace every FROM with TO. Without it the body
//!   is uppercased.
//!
//! Each `on_http_request_body` call logs `chunk N: body_size=S end_of_stream=E`
//! and the sizes seen are kept as filter state `rewrite.sizes`, so a test
//! can tell exactly what the filter saw.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RewriteRoot::default()) });
}}

#[derive(Default)]
struct Config {
    stream: bool,
    replace: Option<(String, String)>,
}

impl Config {
    fn rewrite(&self, body: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(body);
        match &self.replace {
            Some((from, to)) => text.replace(from.as_str(), to).into_bytes(),
            None => text.to_uppercase().into_bytes(),
        }
    }
}

#[derive(Default)]
struct RewriteRoot {
    config: Rc<Config>,
}

impl Context for RewriteRoot {}

impl RootContext for RewriteRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        let mut config = Config::default();
        for line in String::from_utf8_lossy(&raw).lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("mode", "buffer")) => config.stream = false,
                Some(("mode", "stream")) => config.stream = true,
                Some(("replace", pair)) => match pair.split_once("=>") {
                    Some((from, to)) => config.replace = Some((from.to_owned(), to.to_owned())),
                    None => return false,
                },
                _ => {
                    proxy_wasm::hostcalls::log(LogLevel::Error, &format!("rewrite-body: bad line: {line}")).ok();
                    return false;
                }
            }
        }
        self.config = Rc::new(config);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RewriteStream { config: Rc::clone(&self.config), sizes: Vec::new() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct RewriteStream {
    config: Rc<Config>,
    /// `body_size` of every `on_http_request_body` call.
    sizes: Vec<usize>,
}

impl Context for RewriteStream {}

impl HttpContext for RewriteStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // The body will change length: the upstream must not trust the
        // client's content-length. Only now can headers still be changed.
        if !end_of_stream {
            self.set_http_request_header("content-length", None);
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.sizes.push(body_size);
        let message = format!("chunk {}: body_size={body_size} end_of_stream={end_of_stream}", self.sizes.len());
        proxy_wasm::hostcalls::log(LogLevel::Info, &message).ok();
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        self.set_property(vec!["rewrite.sizes"], Some(sizes.join(",").as_bytes()));

        if !self.config.stream && !end_of_stream {
            // StopIterationAndBuffer: the host keeps this chunk and the next
            // call sees everything received so far.
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let rewritten = self.config.rewrite(&body);
        self.set_http_request_body(0, body_size, &rewritten);
        Action::Continue
    }
}
