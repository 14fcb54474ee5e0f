//! All host-side state of one VM, kept in `Store<HostState>`: no globals,
//! so VMs (and tests) run side by side.

use super::types::{Headers, HttpCall, LocalResponse, LogEntry, UpstreamResponse};
use std::collections::{BTreeMap, HashMap, VecDeque};
use wasmtime::{StoreLimits, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;

/// proxy-wasm status codes (ABI 0.2.1).
pub(crate) mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
    pub const BAD_ARGUMENT: u32 = 2;
    pub const SERIALIZATION_FAILURE: u32 = 3;
    pub const PARSE_FAILURE: u32 = 4;
    pub const EMPTY: u32 = 7;
    pub const CAS_MISMATCH: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
}

/// A metric the filter defined.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub name: String,
    pub kind: u32,
    pub value: i64,
}

/// A pending `proxy_http_call`, answered after the current hook returns.
#[derive(Debug, Clone)]
pub(crate) struct PendingCall {
    pub token: u32,
    pub answer: UpstreamResponse,
}

/// The state of the HTTP stream or the connection being run.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    pub request_headers: Headers,
    pub request_trailers: Headers,
    pub response_headers: Headers,
    pub response_trailers: Headers,
    /// The request body buffered so far (what `HttpRequestBody` reads).
    pub request_body: Vec<u8>,
    /// The response body buffered so far.
    pub response_body: Vec<u8>,
    pub local_response: Option<LocalResponse>,
    /// `proxy_continue_stream` was called for the request / response.
    pub continue_request: bool,
    pub continue_response: bool,
    /// A connection's client bytes buffered so far (`DownstreamData`).
    pub downstream_data: Vec<u8>,
    /// A connection's upstream bytes buffered so far (`UpstreamData`).
    pub upstream_data: Vec<u8>,
    /// `proxy_continue_stream(Downstream)` was called.
    pub continue_downstream: bool,
    /// `proxy_close_stream` was called, with this stream type.
    pub close_requested: Option<u32>,
    pub http_calls: Vec<HttpCall>,
    pub pending_calls: Vec<PendingCall>,
    /// The answer being delivered by `proxy_on_http_call_response`.
    pub call_response: Option<UpstreamResponse>,
    pub http_call_answers: Vec<(String, UpstreamResponse)>,
}

/// Everything the host knows about one VM.
pub(crate) struct HostState {
    pub wasi: WasiP1Ctx,
    pub limits: StoreLimits,
    /// The guest's allocator (`proxy_on_memory_allocate` or `malloc`).
    pub allocator: Option<TypedFunc<u32, u32>>,
    /// The guest's exported memory, once looked up.
    pub memory: Option<wasmtime::Memory>,
    pub plugin_config: Vec<u8>,
    pub vm_config: Vec<u8>,
    pub root_id: String,
    pub vm_id: String,
    /// Properties of the current stream, by path.
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    /// Filter state set by the guest (`wasm.<path>`) during the stream.
    pub filter_state: BTreeMap<String, Vec<u8>>,
    pub logs: Vec<LogEntry>,
    pub metrics: Vec<Metric>,
    pub shared_data: HashMap<String, (Vec<u8>, u32)>,
    pub queues: Vec<(String, VecDeque<Vec<u8>>)>,
    /// Queues enqueued to since `proxy_on_queue_ready` was last delivered,
    /// one entry per enqueue.
    pub queue_ready: Vec<u32>,
    pub tick_period_ms: u32,
    /// The context host calls act on (`proxy_set_effective_context`).
    pub effective_context: u32,
    /// The HTTP stream being run (its context id).
    pub stream_context: u32,
    pub next_token: u32,
    pub stream: StreamState,
}

impl HostState {
    pub fn new(
        wasi: WasiP1Ctx,
        limits: StoreLimits,
        root_id: String,
        vm_config: Vec<u8>,
        plugin_config: Vec<u8>,
    ) -> Self {
        HostState {
            wasi,
            limits,
            allocator: None,
            memory: None,
            plugin_config,
            vm_config,
            vm_id: root_id.clone(),
            root_id,
            properties: Vec::new(),
            filter_state: BTreeMap::new(),
            logs: Vec::new(),
            metrics: Vec::new(),
            shared_data: HashMap::new(),
            queues: Vec::new(),
            queue_ready: Vec::new(),
            tick_period_ms: 0,
            effective_context: 0,
            stream_context: 0,
            next_token: 1,
            stream: StreamState::default(),
        }
    }

    /// A header map by proxy-wasm `MapType`.
    pub fn map(&self, map_type: u32) -> Option<&Headers> {
        let s = &self.stream;
        Some(match map_type {
            0 => &s.request_headers,
            1 => &s.request_trailers,
            2 => &s.response_headers,
            3 => &s.response_trailers,
            6 => &s.call_response.as_ref()?.headers,
            _ => return None,
        })
    }

    /// A writable header map; the http-call response and gRPC maps are
    /// read-only.
    pub fn map_mut(&mut self, map_type: u32) -> Option<&mut Headers> {
        let s = &mut self.stream;
        Some(match map_type {
            0 => &mut s.request_headers,
            1 => &mut s.request_trailers,
            2 => &mut s.response_headers,
            3 => &mut s.response_trailers,
            _ => return None,
        })
    }

    /// A property by path: the request's, the plugin's, or filter state.
    pub fn property(&self, path: &[String]) -> Option<Vec<u8>> {
        if let Some((_, v)) = self.properties.iter().find(|(p, _)| p == path) {
            return Some(v.clone());
        }
        match path {
            [one] if one == "plugin_root_id" || one == "plugin_name" => Some(self.root_id.as_bytes().to_vec()),
            [one] if one == "plugin_vm_id" => Some(self.vm_id.as_bytes().to_vec()),
            // Envoy: `filter_state.KEY` is any filter-state object.
            [fs, key] if fs == "filter_state" => self.filter_state.get(key).cloned(),
            // Envoy: a value the filter set with set_property(NAME) reads
            // back as NAME.
            _ => self.filter_state.get(&format!("wasm.{}", path.join("."))).cloned(),
        }
    }
}
