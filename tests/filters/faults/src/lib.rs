//! A test filter that misbehaves on demand, to prove a faulty guest becomes
//! a reported fault of the harness, never a host panic or a hung test.
//!
//! The plugin configuration names the fault. Request-time faults fire only
//! for requests to the path `/fault`; other requests pass untouched, so a
//! test can show a VM working, faulting, then staying dead.
//!
//! - `panic`: `panic!` (the SDK's hook logs it at critical, then the VM aborts);
//! - `unreachable`: the `unreachable` instruction;
//! - `bad-pointer`: `proxy_log` with a pointer past the end of memory;
//! - `bad-return-pointer`: `proxy_get_header_map_pairs` asked to write its
//!   results past the end of memory;
//! - `loop`: an endless loop in `on_http_request_headers`;
//! - `grow`: allocate 1 MiB after 1 MiB, forever;
//! - `read-body`: read the whole request body (the host must allocate it in
//!   the guest: with a large body this grows memory inside a host call);
//! - `loop-in-response`: an endless loop in `on_http_response_headers`;
//! - `configure-panic`, `configure-loop`, `configure-reject`: fail in
//!   `on_configure` instead.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, Status};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FaultRoot::default()) });
}}

// The SDK's own declarations, repeated: called here with pointers the SDK
// would never pass.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: LogLevel, message_data: *const u8, message_size: usize) -> Status;
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// An address past the end of any memory a test gives the guest.
const WILD: usize = 0xffff_fff0;

#[derive(Default)]
struct FaultRoot {
    mode: Rc<String>,
}

impl Context for FaultRoot {}

impl RootContext for FaultRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let mode = String::from_utf8_lossy(&config).trim().to_owned();
        match mode.as_str() {
            "configure-panic" => deliberate_panic("on_configure"),
            "configure-loop" => spin(),
            "configure-reject" => {
                proxy_wasm::hostcalls::log(LogLevel::Error, "faults: configuration refused on purpose").ok();
                return false;
            }
            _ => {}
        }
        self.mode = Rc::new(mode);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FaultStream { mode: Rc::clone(&self.mode), armed: false }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FaultStream {
    mode: Rc<String>,
    /// The request asked for the fault (path `/fault`).
    armed: bool,
}

impl Context for FaultStream {}

impl HttpContext for FaultStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.armed = self.get_http_request_header(":path").as_deref() == Some("/fault");
        if !self.armed {
            return Action::Continue;
        }
        match self.mode.as_str() {
            "panic" => deliberate_panic("on_http_request_headers"),
            "unreachable" => trap(),
            "bad-pointer" => {
                // SAFETY: none — the point is to hand the host a pointer it
                // must refuse.
                unsafe { proxy_log(LogLevel::Info, WILD as *const u8, 64) };
            }
            "bad-return-pointer" => {
                // SAFETY: as above: the host must refuse to write there.
                unsafe {
                    proxy_get_header_map_pairs(MapType::HttpRequestHeaders, WILD as *mut *mut u8, WILD as *mut usize)
                };
            }
            "loop" => spin(),
            "grow" => hoard(),
            _ => {}
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.armed && self.mode.as_str() == "read-body" && end_of_stream {
            let body = self.get_http_request_body(0, body_size).unwrap_or_default();
            proxy_wasm::hostcalls::log(LogLevel::Info, &format!("read {} bytes", body.len())).ok();
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.armed && self.mode.as_str() == "loop-in-response" {
            spin();
        }
        Action::Continue
    }
}

#[allow(clippy::panic)]
fn deliberate_panic(hook: &str) -> ! {
    panic!("deliberate panic in {hook}")
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Never returns: only the host's time limit ends it.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Never returns: only the host's memory limit ends it.
fn hoard() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}
