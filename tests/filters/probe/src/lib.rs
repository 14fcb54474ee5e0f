//! A test filter that exercises the proxy-wasm host functions on demand, so
//! the harness's tests can check each one as a filter sees it.
//!
//! The request header `x-probe` lists operations, comma-separated (see
//! [`ProbeStream::probe`]). Each operation reports what it saw as request
//! headers `x-r-NAME: VALUE`, which the test reads from the forwarded
//! request; a few answer locally or pause instead (`dump` with the headers
//! it was handed, `dump-trailers` with the trailers once they arrive).
//!
//! Plugin configuration, `key: value` lines:
//!
//! - `tick: MS`: ask for `on_tick` every MS milliseconds; each tick counts
//!   `probe.ticks` and logs `tick N`.
//! - `queue: NAME`: register shared queue NAME at configure time; when an
//!   item is enqueued, `on_queue_ready` drains it, logs
//!   `queue ready: ITEM`, and counts `probe.queue_ready`.
//!
//! With the root id `probe.network` it is a network filter instead (see
//! [`network`]): `on_*` lines of the same configuration say what each
//! connection callback does.

mod network;

use network::{NetworkConfig, ProbeConnection, NETWORK_ROOT_ID};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MetricType, Status};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot::default()) });
}}

// The raw import, to see the status Envoy would return where the SDK's
// wrapper would panic (`set_buffer` panics on anything but Ok).
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> Status;
}

/// What the root context knows, shared with the streams.
#[derive(Default)]
struct Shared {
    vm_config: String,
    plugin_config: String,
    queue: Option<u32>,
}

#[derive(Default)]
struct ProbeRoot {
    shared: Rc<Shared>,
    vm_config: String,
    ticks: Rc<Cell<u32>>,
    /// Set when the root id is [`NETWORK_ROOT_ID`]: a network filter.
    network: Option<NetworkConfig>,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.vm_config = String::from_utf8_lossy(&self.get_vm_configuration().unwrap_or_default()).into_owned();
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let plugin_config = String::from_utf8_lossy(&self.get_plugin_configuration().unwrap_or_default()).into_owned();
        let mut queue = None;
        for line in plugin_config.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("tick", ms)) => match ms.parse() {
                    Ok(ms) => self.set_tick_period(Duration::from_millis(ms)),
                    Err(_) => return false,
                },
                Some(("queue", name)) => queue = Some(self.register_shared_queue(name)),
                _ => {}
            }
        }
        let root_id = self.get_property(vec!["plugin_root_id"]).unwrap_or_default();
        if root_id == NETWORK_ROOT_ID.as_bytes() {
            hostcalls::log(LogLevel::Info, &format!("probe.network: on_configure root_id={NETWORK_ROOT_ID}")).ok();
            match NetworkConfig::parse(&plugin_config) {
                Ok(config) => self.network = Some(config),
                Err(problem) => {
                    hostcalls::log(LogLevel::Error, &format!("probe.network: {problem}")).ok();
                    return false;
                }
            }
        }
        hostcalls::log(LogLevel::Info, "probe: configured").ok();
        self.shared = Rc::new(Shared { vm_config: self.vm_config.clone(), plugin_config, queue });
        true
    }

    fn on_tick(&mut self) {
        self.ticks.set(self.ticks.get() + 1);
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, "probe.ticks") {
            hostcalls::increment_metric(id, 1).ok();
        }
        hostcalls::log(LogLevel::Info, &format!("tick {}", self.ticks.get())).ok();
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, "probe.queue_ready") {
            hostcalls::increment_metric(id, 1).ok();
        }
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            hostcalls::log(LogLevel::Info, &format!("queue ready: {}", String::from_utf8_lossy(&item))).ok();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeStream { shared: Rc::clone(&self.shared), ..ProbeStream::default() }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(ProbeConnection::new(self.network.clone().unwrap_or_default())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.network.is_some() { ContextType::StreamContext } else { ContextType::HttpContext })
    }
}

#[derive(Default)]
struct ProbeStream {
    shared: Rc<Shared>,
    /// Resume the paused request at the end of the body.
    resume_at_end: bool,
    /// Body operations to run at `end_of_stream`.
    splice_body: bool,
    /// Response operations.
    response_status: bool,
    response_body: bool,
    response_local: bool,
    lifecycle: bool,
    /// Answer with the request trailers when they arrive.
    dump_trailers: bool,
}

/// Reports a value as request header `x-r-NAME`.
fn report(name: &str, value: &str) {
    hostcalls::add_map_value(proxy_wasm::types::MapType::HttpRequestHeaders, &format!("x-r-{name}"), value).ok();
}

fn text(bytes: Option<Vec<u8>>) -> String {
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|| "none".into())
}

fn status<T>(result: Result<T, Status>) -> String {
    match result {
        Ok(_) => "Ok".into(),
        Err(s) => format!("{s:?}"),
    }
}

impl ProbeStream {
    /// Runs one operation of `x-probe`; `Some(action)` ends the hook.
    fn probe(&mut self, op: &str) -> Option<Action> {
        match op {
            "properties" => self.properties(),
            "metrics" => self.metrics(),
            "logs" => Self::logs(),
            "shared-data" => self.shared_data(),
            "queue" => self.queue(),
            "queue-notify" => {
                if let Some(id) = self.shared.queue {
                    report("enqueue", &status(self.enqueue_shared_queue(id, Some(b"ping"))));
                }
            }
            "time" => {
                let nanos = self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
                report("time-nanos", &nanos.to_string());
            }
            "headers" => self.headers(),
            "dump" => return Some(self.dump()),
            "dump-trailers" => self.dump_trailers = true,
            "replace-headers" => self.set_http_request_headers(vec![
                (":method", "PUT"),
                (":scheme", "http"),
                (":authority", "replaced.example"),
                (":path", "/replaced"),
                ("x-only", "yes"),
            ]),
            "config" => {
                report("vm-config", &self.shared.vm_config);
                report("plugin-config", &self.shared.plugin_config.replace('\n', ";"));
            }
            "http-call" => return Some(self.http_call("auth")),
            "http-call-unknown" => return Some(self.http_call("nowhere")),
            "http-call-no-authority" => {
                let headers = vec![(":method", "GET"), (":path", "/check")];
                let result = self.dispatch_http_call("auth", headers, None, vec![], Duration::from_secs(1));
                report("call-no-authority", &status(result));
            }
            "grpc-call" => {
                let result =
                    self.dispatch_grpc_call("grpc", "probe.Svc", "Check", vec![], None, Duration::from_secs(1));
                report("grpc-call", &status(result));
            }
            "local-response" => {
                self.send_http_response(418, vec![("x-teapot", "short and stout")], Some(b"I'm a teapot"));
                return Some(Action::Pause);
            }
            "local-response-continue" => {
                // Continuing after a local response must not forward anything.
                self.send_http_response(403, vec![], Some(b"no"));
                return Some(Action::Continue);
            }
            "pause" => {
                self.resume_at_end = true;
                return Some(Action::Pause);
            }
            "pause-forever" => return Some(Action::Pause),
            "splice-body" => self.splice_body = true,
            "response-status" => self.response_status = true,
            "response-body" => self.response_body = true,
            "response-local" => self.response_local = true,
            "lifecycle" => self.lifecycle = true,
            other => report("unknown-op", other),
        }
        None
    }

    fn properties(&self) {
        report("source-address", &text(self.get_property(vec!["source", "address"])));
        let port = match self.get_property(vec!["destination", "port"]) {
            Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                Ok(le) => u64::from_le_bytes(le).to_string(),
                Err(_) => format!("{} bytes", bytes.len()),
            },
            None => "none".into(),
        };
        report("destination-port", &port);
        report("root-id", &text(self.get_property(vec!["plugin_root_id"])));
        report("custom", &text(self.get_property(vec!["custom", "prop"])));
        report("missing", &text(self.get_property(vec!["no", "such", "property"])));
        self.set_property(vec!["probe.state"], Some(b"set-by-probe"));
        report("state", &text(self.get_property(vec!["probe.state"])));
        report("filter-state", &text(self.get_property(vec!["filter_state", "wasm.probe.state"])));
    }

    fn metrics(&self) {
        let (Ok(counter), Ok(gauge), Ok(histogram)) = (
            hostcalls::define_metric(MetricType::Counter, "probe.counter"),
            hostcalls::define_metric(MetricType::Gauge, "probe.gauge"),
            hostcalls::define_metric(MetricType::Histogram, "probe.histogram"),
        ) else {
            report("metrics", "define failed");
            return;
        };
        let again = hostcalls::define_metric(MetricType::Counter, "probe.counter");
        report("same-id", &(again == Ok(counter)).to_string());

        hostcalls::increment_metric(counter, 1).ok();
        hostcalls::increment_metric(counter, 2).ok();
        report("counter", &status_value(hostcalls::get_metric(counter)));
        report("counter-decrement", &status(hostcalls::increment_metric(counter, -1)));
        // Envoy adds a value recorded on a counter.
        hostcalls::record_metric(counter, 10).ok();
        report("counter-recorded", &status_value(hostcalls::get_metric(counter)));

        hostcalls::record_metric(gauge, 7).ok();
        hostcalls::increment_metric(gauge, -2).ok();
        report("gauge", &status_value(hostcalls::get_metric(gauge)));

        report("histogram-record", &status(hostcalls::record_metric(histogram, 42)));
        report("histogram-get", &status_value(hostcalls::get_metric(histogram)));
        report("histogram-increment", &status(hostcalls::increment_metric(histogram, 1)));
        report("unknown-metric", &status_value(hostcalls::get_metric(0xdead)));
    }

    fn logs() {
        for level in
            [LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error, LogLevel::Critical]
        {
            hostcalls::log(level, &format!("probe {level:?}")).ok();
        }
        report("log-level", &hostcalls::get_log_level().map(|l| format!("{l:?}")).unwrap_or_default());
        // WASI fd 1 and 2 (nowhere on wasm32-unknown-unknown).
        println!("probe stdout");
        eprintln!("probe stderr");
    }

    fn shared_data(&self) {
        let (value, cas) = self.get_shared_data("probe.missing");
        report("missing", &format!("{}/{cas:?}", text(value)));
        report("set", &status(self.set_shared_data("probe.key", Some(b"one"), None)));
        let (value, cas1) = self.get_shared_data("probe.key");
        report("value-1", &text(value));
        let cas1 = cas1.unwrap_or(0);
        report("cas-1-nonzero", &(cas1 != 0).to_string());
        report("bad-cas", &status(self.set_shared_data("probe.key", Some(b"two"), Some(cas1.wrapping_add(1)))));
        report("good-cas", &status(self.set_shared_data("probe.key", Some(b"two"), Some(cas1))));
        let (value, cas2) = self.get_shared_data("probe.key");
        report("value-2", &text(value));
        report("cas-changed", &(cas2 != Some(cas1)).to_string());
        // Envoy: a CAS only guards a key that exists.
        report("new-key-with-cas", &status(self.set_shared_data("probe.fresh", Some(b"x"), Some(12345))));
        report("fresh", &text(self.get_shared_data("probe.fresh").0));

        // A counter shared by every stream of the VM, updated with CAS.
        let hits = loop {
            let (value, cas) = self.get_shared_data("probe.hits");
            let hits: u64 = text(value).parse().unwrap_or(0) + 1;
            if self.set_shared_data("probe.hits", Some(hits.to_string().as_bytes()), cas).is_ok() {
                break hits;
            }
        };
        report("hits", &hits.to_string());
    }

    fn queue(&self) {
        let id = self.register_shared_queue("probe.queue");
        report("queue-resolved", &(self.resolve_shared_queue("vm", "probe.queue") == Some(id)).to_string());
        report("queue-unknown", &format!("{:?}", self.resolve_shared_queue("vm", "probe.nope")));
        report("enqueue-a", &status(self.enqueue_shared_queue(id, Some(b"a"))));
        report("enqueue-b", &status(self.enqueue_shared_queue(id, Some(b"b"))));
        let mut items = Vec::new();
        for _ in 0..3 {
            items.push(match self.dequeue_shared_queue(id) {
                Ok(item) => text(item),
                Err(s) => format!("{s:?}"),
            });
        }
        report("dequeued", &items.join(","));
        report("dequeue-bad-id", &status(self.dequeue_shared_queue(0xdead)));
        report("enqueue-bad-id", &status(self.enqueue_shared_queue(0xdead, Some(b"x"))));
    }

    fn headers(&self) {
        // The `_bytes` form: the String one panics on a value that is not UTF-8.
        let names: Vec<String> = self.get_http_request_headers_bytes().into_iter().map(|(n, _)| n).collect();
        report("names", &names.join(","));
        report("authority", &text(self.get_http_request_header(":authority").map(String::into_bytes)));
        report("dup", &text(self.get_http_request_header("x-dup").map(String::into_bytes)));
        report("mixed-case", &text(self.get_http_request_header("X-Dup").map(String::into_bytes)));
        report("absent", &text(self.get_http_request_header("x-absent").map(String::into_bytes)));
        let binary = self.get_http_request_header_bytes("x-binary").unwrap_or_default();
        report("binary", &binary.iter().map(|b| format!("{b:02x}")).collect::<String>());
        self.set_http_request_header("x-replace", Some("new"));
        self.set_http_request_header("x-set", Some("set"));
        self.add_http_request_header("x-multi", "two");
        self.remove_http_request_header("x-remove");
        self.set_http_request_header("x-remove-too", None);
        self.set_http_request_header(":path", Some("/rewritten"));
        // Response headers do not exist yet: an empty map, not an error.
        report("response-headers-now", &self.get_http_response_headers().len().to_string());
    }

    /// Answers locally with what the filter was handed: every request
    /// header pair in map order and the properties Warden may read (plus
    /// any dotted paths listed in `x-probe-properties`), one per line as
    /// `h NAME=HEX` and `p PATH=HEX` (`p PATH absent`), so byte-exact
    /// shapes can be compared between Envoy and the harness.
    fn dump(&self) -> Action {
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut out = String::new();
        for (name, value) in self.get_http_request_headers_bytes() {
            out.push_str(&format!("h {}={}\n", hex(name.as_bytes()), hex(&value)));
        }
        let mut paths: Vec<String> = [
            "source.address",
            "source.port",
            "destination.address",
            "destination.port",
            "connection.mtls",
            "connection.requested_server_name",
            "connection.uri_san_peer_certificate",
            "connection.dns_san_peer_certificate",
            "connection.subject_peer_certificate",
            "connection.peer_certificate",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(extra) = self.get_http_request_header("x-probe-properties") {
            paths.extend(extra.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
        }
        for path in paths {
            match self.get_property(path.split('.').collect()) {
                Some(v) => out.push_str(&format!("p {path}={}\n", hex(&v))),
                None => out.push_str(&format!("p {path} absent\n")),
            }
        }
        self.send_http_response(200, vec![("x-probe-dump", "1")], Some(out.as_bytes()));
        Action::Pause
    }

    fn http_call(&mut self, upstream: &str) -> Action {
        let headers =
            vec![(":method", "POST"), (":path", "/check"), (":authority", "auth.internal"), ("x-caller", "probe")];
        match self.dispatch_http_call(upstream, headers, Some(b"who?"), vec![], Duration::from_secs(5)) {
            // Wait for on_http_call_response.
            Ok(_token) => Action::Pause,
            Err(s) => {
                self.send_http_response(503, vec![], Some(format!("call refused: {s:?}").as_bytes()));
                Action::Pause
            }
        }
    }
}

fn status_value(result: Result<u64, Status>) -> String {
    match result {
        Ok(v) => v.to_string(),
        Err(s) => format!("{s:?}"),
    }
}

impl Context for ProbeStream {
    fn on_http_call_response(&mut self, _token_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        let body =
            String::from_utf8_lossy(&self.get_http_call_response_body(0, body_size).unwrap_or_default()).into_owned();
        // Envoy gives an empty map for absent trailers.
        let trailers = self.get_http_call_response_trailers();
        if status == "200" {
            report("call-status", &status);
            report("call-body", &body);
            report("call-headers", &num_headers.to_string());
            report("call-answer-header", &text(self.get_http_call_response_header("x-answer").map(String::into_bytes)));
            report("call-trailers", &format!("{num_trailers}/{}", trailers.len()));
            self.resume_http_request();
        } else {
            self.send_http_response(
                403,
                vec![("x-denied-by", "auth")],
                Some(format!("denied by auth: {body}").as_bytes()),
            );
        }
    }

    fn on_done(&mut self) -> bool {
        if self.lifecycle {
            hostcalls::log(LogLevel::Info, "probe: on_done").ok();
        }
        true
    }
}

impl HttpContext for ProbeStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        report("end-of-stream", &end_of_stream.to_string());
        let ops = self.get_http_request_header("x-probe").unwrap_or_default();
        for op in ops.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if let Some(action) = self.probe(op) {
                return action;
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        if self.splice_body {
            // Envoy lets a filter prepend, append or replace from the start;
            // anything else is BadArgument.
            let splice = |start: usize, size: usize, data: &[u8]| {
                // SAFETY: `data` is a live slice for the duration of the call.
                let s = unsafe {
                    proxy_set_buffer_bytes(BufferType::HttpRequestBody, start, size, data.as_ptr(), data.len())
                };
                format!("{s:?}")
            };
            let middle = splice(2, 1, b"*");
            let prepend = splice(0, 0, b"<");
            let length = self.get_http_request_body(0, usize::MAX).map(|b| b.len()).unwrap_or(0);
            let append = splice(length, 0, b">");
            let body = text(self.get_http_request_body(0, usize::MAX));
            self.set_property(vec!["probe.splice"], Some(format!("{middle} {prepend} {append} {body}").as_bytes()));
        }
        if self.resume_at_end {
            report("resumed-at-body-size", &body_size.to_string());
            self.resume_http_request();
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if !self.dump_trailers {
            return Action::Continue;
        }
        // Every trailer pair in map order, `t NAME=HEX`, as `dump` does
        // headers.
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut out = String::new();
        for (name, value) in self.get_http_request_trailers_bytes() {
            out.push_str(&format!("t {}={}\n", hex(name.as_bytes()), hex(&value)));
        }
        self.send_http_response(200, vec![("x-probe-dump", "1")], Some(out.as_bytes()));
        Action::Pause
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let upstream_status = self.get_http_response_header(":status").unwrap_or_default();
        self.add_http_response_header("x-upstream-status", &upstream_status);
        if self.response_status {
            self.set_http_response_header(":status", Some("299"));
        }
        if self.response_local {
            self.send_http_response(502, vec![("x-replaced", "yes")], Some(b"replaced upstream answer"));
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.response_body && end_of_stream {
            let body = self.get_http_response_body(0, body_size).unwrap_or_default();
            let upper = String::from_utf8_lossy(&body).to_uppercase();
            self.set_http_response_body(0, body_size, upper.as_bytes());
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.lifecycle {
            hostcalls::log(LogLevel::Info, "probe: on_log").ok();
        }
    }
}
