//! A test filter that imports a host function no proxy-wasm host provides,
//! `env.proxy_not_a_real_function`: loading it must fail with an error
//! naming that import (as Envoy refuses to load such a module).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(UnknownImportRoot) });
}}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_not_a_real_function(value: u32) -> u32;
}

struct UnknownImportRoot;

impl Context for UnknownImportRoot {}

impl RootContext for UnknownImportRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(UnknownImportStream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct UnknownImportStream;

impl Context for UnknownImportStream {}

impl HttpContext for UnknownImportStream {
    fn on_http_request_headers(&mut self, num_headers: usize, _end_of_stream: bool) -> Action {
        // SAFETY: the host never provides it; the module does not load.
        let answer = unsafe { proxy_not_a_real_function(num_headers as u32) };
        if answer == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}
