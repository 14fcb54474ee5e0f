//! A test filter of the kind every proxy-wasm tutorial starts with: it adds
//! headers. It proves the harness runs filters other than Warden's.
//!
//! - Request: `x-added: yes`; one header per `name: value` line of the
//!   plugin configuration; and `x-request-number: N`, where N counts the
//!   requests this VM has seen. The count lives in a global, so it leaks
//!   from one stream to the next exactly as it would on an Envoy worker,
//!   and a fresh VM starts again at 1.
//! - Response: `x-response-added: yes`.
//!
//! A configuration line without `:` is refused (`on_configure` returns
//! false), as a filter refuses a bad configuration.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AddHeadersRoot::default()) });
}}

/// Requests seen by this VM (a global: shared by every stream of the VM).
static REQUESTS: AtomicU32 = AtomicU32::new(0);

/// Owns the configured headers; hands each stream a reference.
#[derive(Default)]
struct AddHeadersRoot {
    headers: Rc<Vec<(String, String)>>,
}

impl Context for AddHeadersRoot {}

impl RootContext for AddHeadersRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let mut headers = Vec::new();
        for line in String::from_utf8_lossy(&config).lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                proxy_wasm::hostcalls::log(LogLevel::Error, &format!("add-headers: not `name: value`: {line}")).ok();
                return false;
            };
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        self.headers = Rc::new(headers);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AddHeadersStream { headers: Rc::clone(&self.headers) }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AddHeadersStream {
    headers: Rc<Vec<(String, String)>>,
}

impl Context for AddHeadersStream {}

impl HttpContext for AddHeadersStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // After this hook returns Continue the request headers are on their
        // way upstream: every change must happen here.
        let number = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        self.add_http_request_header("x-added", "yes");
        for (name, value) in self.headers.iter() {
            self.add_http_request_header(name, value);
        }
        self.set_http_request_header("x-request-number", Some(&number.to_string()));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-response-added", "yes");
        Action::Continue
    }
}
