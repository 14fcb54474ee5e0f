//! The baseline for `scripts/bench-envoy.py`: a proxy-wasm HTTP filter that
//! does the least a real filter does. On request headers it reads one
//! header and lets the request through.
//!
//! Comparing Warden against this filter (same runtime, same VM set-up, same
//! listener) separates the cost of *being a wasm filter at all* (VM entry,
//! context creation, the host-call ABI) from the cost of Warden's own work.
//!
//! For a breakdown of that work (`bench-envoy.py --breakdown`), the plugin
//! configuration may list extra host calls to make, comma-separated, the same
//! ones Warden makes for an allowed request, without any policy work:
//!
//! - `header-map`: read all request headers in one call
//!   (`proxy_get_header_map_pairs`, as Warden does) instead of `:authority`;
//! - `destination-port`: get the `destination.port` property;
//! - `set-property`: set a ~150-byte filter-state value, as Warden's decision record;
//! - `metrics`: increment two counters;
//! - `missing-property`: get a property Envoy does not have on a plaintext
//!   connection (`connection.requested_server_name`, which Warden reads to
//!   compare with the Host: "not found", no data returned);
//! - `repeat:N`: make each of the steps above N times per request
//!   (`bench-envoy.py --host-calls`: the cost of one host call of each
//!   kind, from the difference over the plain trivial filter).
//!
//! With the step `network` it is a network filter instead
//! (`envoy.filters.network.wasm`; the baseline of
//! `scripts/bench-envoy-tls.py --breakdown`): on each new connection it
//! reads the server name (`connection.requested_server_name`, the property
//! Warden's decision starts from) and lets the connection through; Envoy
//! still calls into the VM for the connection's context, its data and its
//! close, as for any wasm network filter. The steps `destination-port`,
//! `missing-property` (here `connection.peer_certificate`, which a
//! passthrough connection does not have), `source-address`, `set-property`
//! and `metrics` add those calls when the connection opens: all of them
//! are the calls Warden makes for an allowed passthrough connection.
//!
//! Build it like the real filter:
//!
//! ```sh
//! cargo build -p trivial-filter --lib --target wasm32-wasip1 --profile wasm --target-dir target/wasm
//! ```

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TrivialRoot::default()) });
}}

/// The header the filter reads by default: the one Warden reads first, too.
const READ_HEADER: &str = ":authority";
/// A filter-state value shaped like Warden's decision record.
const RECORD: &str = r#"{"decision":"allow","reason":"allow-policy","policy":"httpbin","rule":1,"service":"httpbin.org","principal":"cluster.local/ns/default/sa/sleep","findings":[],"dryRun":[],"audit":[]}"#;

/// Which host calls each request makes, beyond reading [`READ_HEADER`].
#[derive(Debug, Clone, Copy, Default)]
struct HostCalls {
    header_map: bool,
    destination_port: bool,
    set_property: bool,
    /// Counter ids, when `metrics` was asked for.
    metrics: Option<(u32, u32)>,
    missing_property: bool,
    /// `source.address` (what the network benchmark reads).
    source_address: bool,
    /// How many times each step is made.
    repeat: u32,
    /// A network filter instead of an HTTP one.
    network: bool,
}

/// Creates one [`TrivialStream`] per HTTP stream.
#[derive(Default)]
struct TrivialRoot {
    calls: HostCalls,
}

impl Context for TrivialRoot {}

impl RootContext for TrivialRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config =
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten().unwrap_or_default();
        let config = String::from_utf8_lossy(&config);
        let mut calls = HostCalls { repeat: 1, ..HostCalls::default() };
        for step in config.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match step {
                "header-map" => calls.header_map = true,
                "destination-port" => calls.destination_port = true,
                "set-property" => calls.set_property = true,
                "network" => calls.network = true,
                "missing-property" => calls.missing_property = true,
                "source-address" => calls.source_address = true,
                step if step.starts_with("repeat:") => match step["repeat:".len()..].parse() {
                    Ok(n @ 1..=1000) => calls.repeat = n,
                    _ => {
                        let _ = hostcalls::log(LogLevel::Error, &format!("trivial-filter: bad step '{step}'"));
                        return false;
                    }
                },
                "metrics" => {
                    let counter = |name| hostcalls::define_metric(MetricType::Counter, name).ok();
                    calls.metrics = counter("trivial.requests").zip(counter("trivial.allowed"));
                }
                other => {
                    let _ = hostcalls::log(LogLevel::Error, &format!("trivial-filter: unknown step '{other}'"));
                    return false;
                }
            }
        }
        self.calls = calls;
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TrivialStream { calls: self.calls }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(TrivialConnection { calls: self.calls }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.calls.network { ContextType::StreamContext } else { ContextType::HttpContext })
    }
}

/// One connection: reads the server name when it opens (and makes the
/// configured calls), then lets every byte through (the SDK's default data
/// callbacks continue).
struct TrivialConnection {
    calls: HostCalls,
}

impl Context for TrivialConnection {}

impl StreamContext for TrivialConnection {
    fn on_new_connection(&mut self) -> Action {
        let _server_name = hostcalls::get_property(vec!["connection", "requested_server_name"]);
        // A passthrough connection has no peer certificate.
        self.calls.make(&["connection", "peer_certificate"]);
        Action::Continue
    }
}

/// One HTTP stream: one host call (or the configured ones), then continue.
struct TrivialStream {
    calls: HostCalls,
}

impl Context for TrivialStream {}

impl HttpContext for TrivialStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if !self.calls.header_map {
            let _authority = self.get_http_request_header(READ_HEADER);
        }
        // A plain-HTTP connection has no server name.
        self.calls.make(&["connection", "requested_server_name"]);
        Action::Continue
    }
}

impl HostCalls {
    /// Makes the configured calls, [`HostCalls::repeat`] times; `missing`
    /// is the property Envoy does not have for this kind of stream.
    fn make(&self, missing: &[&str]) {
        // Values are fetched (copied into the VM) and dropped: the point is
        // the host calls, not what is done with them.
        for _ in 0..self.repeat {
            if self.header_map {
                let _headers = request_header_map();
            }
            if self.destination_port {
                let _port = hostcalls::get_property(vec!["destination", "port"]);
            }
            if self.missing_property {
                let _none = hostcalls::get_property(missing.to_vec());
            }
            if self.source_address {
                let _address = hostcalls::get_property(vec!["source", "address"]);
            }
            if self.set_property {
                let _ = hostcalls::set_property(vec!["trivial.decision"], Some(RECORD.as_bytes()));
            }
            if let Some((requests, allowed)) = self.metrics {
                let _ = hostcalls::increment_metric(requests, 1);
                let _ = hostcalls::increment_metric(allowed, 1);
            }
        }
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: MapType, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
}

/// All request headers in their ABI encoding, read the way Warden reads
/// them (the SDK's `get_map` would also build two strings per header).
fn request_header_map() -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to a buffer it allocated through
    // this module's `proxy_on_memory_allocate` (a `Vec<u8>` of capacity
    // `size`), which is taken ownership of exactly once.
    unsafe {
        if proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) != 0 || data.is_null() {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}
