//! Warden's proxy-wasm glue: the thin layer between Envoy and the policy
//! engine. The root context compiles the policy once per configuration;
//! each HTTP context asks the engine for a decision on the request headers
//! and carries it out with host calls. Loaded with the root id
//! [`NETWORK_ROOT_ID`] (a network filter before `tcp_proxy`), the same
//! module decides connections instead ([`connection`]).
//!
//! Nothing here may panic: a panic aborts the whole VM (every stream on the
//! worker). Host-call errors are treated as absent values, which the engine
//! turns into refusals where it matters.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use warden_engine::dlp::{BodyScan, BodyStep};
use warden_engine::identity::x509::{CertificateCache, CertificateError, SubjectAltNames};
use warden_engine::record::{metric, DECISION_HEADER, FILTER_STATE_PROPERTY, NETWORK_ROOT_ID};
use warden_engine::{compile, Attributes, Decision, Outcome, Policy, Response};

mod connection;
mod header_map;
mod hold;
mod memory;
use connection::WardenConnection;
use header_map::HeaderMap;
use hold::HeaderHold;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(WardenRoot::default()) });
}}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// The counters of docs/POLICY.md (*Decisions on the wire*), defined once per VM.
#[derive(Debug, Clone, Copy, Default)]
struct Metrics {
    requests: Option<u32>,
    allowed: Option<u32>,
    denied: Option<u32>,
    unregistered: Option<u32>,
    bad_request: Option<u32>,
    audit: Option<u32>,
    config_errors: Option<u32>,
    dlp_blocked: Option<u32>,
    dlp_redacted: Option<u32>,
    connections: Option<u32>,
    connections_allowed: Option<u32>,
    connections_denied: Option<u32>,
    connections_unregistered: Option<u32>,
    connections_bad_request: Option<u32>,
}

impl Metrics {
    fn define() -> Self {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            requests: counter(metric::REQUESTS),
            allowed: counter(metric::ALLOWED),
            denied: counter(metric::DENIED),
            unregistered: counter(metric::UNREGISTERED),
            bad_request: counter(metric::BAD_REQUEST),
            audit: counter(metric::AUDIT),
            config_errors: counter(metric::CONFIG_ERRORS),
            dlp_blocked: counter(metric::DLP_BLOCKED),
            dlp_redacted: counter(metric::DLP_REDACTED),
            connections: counter(metric::CONNECTIONS),
            connections_allowed: counter(metric::CONNECTIONS_ALLOWED),
            connections_denied: counter(metric::CONNECTIONS_DENIED),
            connections_unregistered: counter(metric::CONNECTIONS_UNREGISTERED),
            connections_bad_request: counter(metric::CONNECTIONS_BAD_REQUEST),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}

/// Owns the compiled policy for one plugin configuration, and what the
/// VM's streams share: the names of the peer certificates seen last.
#[derive(Default)]
struct WardenRoot {
    policy: Option<Rc<Policy>>,
    metrics: Metrics,
    certificates: Rc<RefCell<CertificateCache>>,
    /// Whether Envoy holds request headers while a body is scanned.
    hold: Rc<RefCell<HeaderHold>>,
    /// Loaded as a network filter: streams are connections.
    network: bool,
    /// Counted among the VM's root contexts ([`memory`]).
    counted: bool,
}

impl WardenRoot {
    /// Reads the root id Envoy loaded this plugin with.
    fn read_mode(&mut self) {
        let root_id = hostcalls::get_property(vec!["plugin_root_id"]).ok().flatten().unwrap_or_default();
        self.network = root_id == NETWORK_ROOT_ID.as_bytes();
    }
}

impl Context for WardenRoot {
    fn on_done(&mut self) -> bool {
        if std::mem::take(&mut self.counted) {
            memory::root_done();
        }
        true
    }
}

impl RootContext for WardenRoot {
    fn on_tick(&mut self) {
        // Requests whose headers waited a whole period for a body callback
        // that Envoy did not deliver: let their headers go ahead (the body
        // stays held), so that none stalls.
        let Ok(mut hold) = self.hold.try_borrow_mut() else { return };
        let mut resumed = false;
        for context in hold.expire() {
            resumed |= hostcalls::set_effective_context(context).is_ok() && hostcalls::resume_http_request().is_ok();
        }
        if resumed {
            hold.missed();
            log(
                LogLevel::Warn,
                "warden: no request body while its headers were held (allow_on_headers_stop_iteration off?): \
                 headers go ahead of held bodies",
            );
        }
        if hold.stop_timer() {
            let _ = hostcalls::set_tick_period(Duration::ZERO);
        }
    }

    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.metrics = Metrics::define();
        self.read_mode();
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        if self.metrics.requests.is_none() {
            self.metrics = Metrics::define();
        }
        // Every root context is configured, once or more: counted once.
        if !std::mem::replace(&mut self.counted, true) {
            memory::root_started();
        }
        self.read_mode();
        // A failed reconfiguration must not leave the previous policy in
        // force silently: drop it, so requests fail closed until a valid
        // configuration arrives (Envoy normally keeps the old filter chain).
        self.policy = None;
        let config =
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten().unwrap_or_default();
        match compile::load(&config) {
            Ok(policy) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "warden: policy '{}' loaded: {} services, {} authorization policies{}",
                        policy.name(),
                        policy.registry().services().len(),
                        policy.authz_policies().len(),
                        if self.network { ", deciding connections" } else { "" }
                    ),
                );
                self.policy = Some(Rc::new(policy));
                memory::report_exact();
                true
            }
            Err(err) => {
                Metrics::bump(self.metrics.config_errors);
                log(LogLevel::Error, &format!("warden: invalid configuration: {err}"));
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        memory::report();
        Some(Box::new(WardenStream {
            policy: self.policy.clone(),
            metrics: self.metrics,
            certificates: self.certificates.clone(),
            hold: self.hold.clone(),
            context_id,
            headers_held: false,
            body: None,
            seen: 0,
        }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        memory::report();
        Some(Box::new(WardenConnection::new(self.policy.clone(), self.metrics, self.certificates.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.network { ContextType::StreamContext } else { ContextType::HttpContext })
    }
}

/// The request as the engine sees it: every request header, fetched with
/// one host call (each host call that returns data costs Envoy a call back
/// into the VM to allocate it, as much as the whole decision), kept as the
/// one buffer the host wrote; properties on demand.
struct EnvoyRequest<'a> {
    headers: HeaderMap,
    certificates: &'a RefCell<CertificateCache>,
}

impl<'a> EnvoyRequest<'a> {
    fn fetch(certificates: &'a RefCell<CertificateCache>) -> Self {
        EnvoyRequest { headers: header_map(MapType::HttpRequestHeaders), certificates }
    }

    /// A connection's view: properties only, no headers.
    fn connection(certificates: &'a RefCell<CertificateCache>) -> Self {
        EnvoyRequest { headers: HeaderMap::default(), certificates }
    }
}

impl Attributes for EnvoyRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str)) {
        self.headers.for_each(visit);
    }

    fn any_header_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        self.headers.any_value(name, pred)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn peer_certificate_names(&self, pem: &[u8]) -> Result<SubjectAltNames, CertificateError> {
        match self.certificates.try_borrow_mut() {
            Ok(mut cache) => cache.subject_alt_names(pem),
            Err(_) => warden_engine::identity::x509::pem_subject_alt_names(pem),
        }
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: MapType, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
}

/// All request headers, or trailers. The SDK's `get_map` panics on a
/// status it does not expect and on non-UTF-8 names, and allocates two
/// strings per header; this reads the same ABI call and indexes the buffer
/// defensively.
fn header_map(map_type: MapType) -> HeaderMap {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to a buffer it allocated through
    // this module's `proxy_on_memory_allocate` (a `Vec<u8>` of capacity
    // `size`), which we take ownership of exactly once.
    let bytes = unsafe {
        if proxy_get_header_map_pairs(map_type, &mut data, &mut size) != 0 || data.is_null() {
            return HeaderMap::default();
        }
        Vec::from_raw_parts(data, size, size)
    };
    HeaderMap::parse(bytes).unwrap_or_default()
}

/// One HTTP stream.
struct WardenStream {
    policy: Option<Rc<Policy>>,
    metrics: Metrics,
    certificates: Rc<RefCell<CertificateCache>>,
    hold: Rc<RefCell<HeaderHold>>,
    context_id: u32,
    /// The request headers were paused until the body is scanned.
    headers_held: bool,
    /// The DLP scan of the request body, while one runs.
    body: Option<BodyScan>,
    /// Body bytes already scanned from Envoy's buffer while it is held.
    seen: usize,
}

impl Context for WardenStream {}

impl WardenStream {
    /// Counts a request once its outcome is final.
    fn count(&self, outcome: Outcome, redacted: bool, audited: bool) {
        let m = &self.metrics;
        Metrics::bump(m.requests);
        Metrics::bump(match outcome {
            Outcome::Allow => m.allowed,
            Outcome::Denied => m.denied,
            Outcome::Unregistered => m.unregistered,
            Outcome::BadRequest => m.bad_request,
            Outcome::DlpBlocked => m.dlp_blocked,
        });
        if redacted {
            Metrics::bump(m.dlp_redacted);
        }
        if audited {
            Metrics::bump(m.audit);
        }
    }

    fn refuse(&self, outcome: Outcome, response: &Response) -> Action {
        let headers = vec![(DECISION_HEADER, outcome.as_str())];
        let _ = hostcalls::send_http_response(response.status, headers, Some(response.body.as_bytes()));
        Action::Pause
    }

    /// The body scan is over: record it, count it, and refuse if it says so.
    fn finish_body(&mut self, policy: &Policy, scan: &BodyScan) -> Action {
        let outcome = scan.outcome();
        self.count(outcome, scan.redacted(), scan.audited());
        // The record set at the headers stands unless the body or the
        // trailers added to it.
        if !scan.record_changed() {
            return Action::Continue;
        }
        let record = scan.record();
        let _ = hostcalls::set_property(vec![FILTER_STATE_PROPERTY], Some(record.as_bytes()));
        match policy.response_for_outcome(outcome) {
            Some(response) => {
                log(LogLevel::Info, &format!("warden: {} request body {record}", outcome.as_str()));
                self.refuse(outcome, response)
            }
            None => Action::Continue,
        }
    }

    /// Scans the body bytes not scanned yet, [`BODY_PIECE`] bytes at a
    /// time: Envoy's buffer holds the whole body while it is held
    /// (`StopIterationAndBuffer`), else only this chunk, and a callback can
    /// bring a whole body at once (after paused headers resume). Reading
    /// it in pieces keeps the VM's copies of it (the bytes read, their
    /// decoded text) to a piece each, whatever the body's size.
    fn scan_new_bytes(&mut self, body_size: usize, held: bool, end_of_stream: bool) -> Action {
        let mut at = if held { self.seen.min(body_size) } else { 0 };
        loop {
            let want = (body_size - at).min(BODY_PIECE);
            let piece = if want > 0 { request_body(at, want).unwrap_or_default() } else { Vec::new() };
            at += piece.len();
            // The last piece: all of it read, or all the host would give
            // (a failed read refuses a held body: nothing goes on unscanned).
            let last = at >= body_size || piece.len() < want;
            if piece.len() < want {
                if let Some(scan) = self.body.as_mut() {
                    scan.unreadable();
                }
            }
            if held {
                self.seen = at;
            }
            let action = self.scan_body(&piece, end_of_stream && last);
            if last || self.body.is_none() {
                return action;
            }
        }
    }

    /// Whether to pause the request headers until the held body is
    /// scanned: where Envoy honours that pause, nothing of a blocked
    /// request reaches the upstream (see `hold`).
    fn pause_headers(&self) -> bool {
        let Ok(mut hold) = self.hold.try_borrow_mut() else { return false };
        let pause = hold.pause(self.context_id);
        if hold.start_timer() {
            let _ = hostcalls::set_tick_period(hold::TICK);
        }
        pause
    }

    /// A body or trailers callback while the headers are paused.
    fn body_arrived(&self) {
        let Ok(mut hold) = self.hold.try_borrow_mut() else { return };
        if hold.body_arrived(self.context_id) {
            log(LogLevel::Info, "warden: Envoy holds request headers while their body is scanned");
        }
        if hold.stop_timer() {
            let _ = hostcalls::set_tick_period(Duration::ZERO);
        }
    }

    /// Feeds the scan and carries out its step.
    fn scan_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Action {
        if self.headers_held {
            self.body_arrived();
        }
        let (Some(policy), Some(mut scan)) = (self.policy.clone(), self.body.take()) else {
            return Action::Continue;
        };
        match scan.feed(policy.dlp(), chunk, end_of_stream) {
            BodyStep::Hold => {
                self.body = Some(scan);
                Action::Pause
            }
            BodyStep::Forward if !end_of_stream => {
                self.body = Some(scan);
                Action::Continue
            }
            BodyStep::Forward | BodyStep::Block => self.finish_body(&policy, &scan),
            BodyStep::Redact => {
                self.redact_body(&policy, &mut scan);
                self.finish_body(&policy, &scan)
            }
        }
    }

    /// Masks the held body in Envoy's buffer: copied into the VM a piece
    /// at a time into one buffer of the body's size, masked in place and
    /// written back. A body that does not come back whole is refused, not
    /// masked in part (`BodyScan::redact`).
    fn redact_body(&self, policy: &Policy, scan: &mut BodyScan) {
        let mut whole = Vec::with_capacity(self.seen);
        while let Some(piece) = request_body(whole.len(), BODY_PIECE) {
            whole.extend_from_slice(&piece);
            if piece.len() < BODY_PIECE {
                break;
            }
        }
        if scan.redact(policy.dlp(), &mut whole) {
            let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, whole.len(), &whole);
        }
    }
}

impl HttpContext for WardenStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            // Fail closed: no valid configuration, no traffic.
            let decision = Decision::no_config();
            let _ = hostcalls::set_property(vec![FILTER_STATE_PROPERTY], Some(decision.record().as_bytes()));
            self.count(decision.outcome, false, false);
            log(LogLevel::Warn, "warden: refusing request: no valid configuration");
            let response = Response { status: 503, body: "warden: no valid configuration".into() };
            return self.refuse(decision.outcome, &response);
        };
        let request = EnvoyRequest::fetch(&self.certificates);
        let mut decision = policy.decide(&request);
        let record = decision.record();
        // Set before any local reply, so the access log of a refused request
        // carries the decision too.
        let _ = hostcalls::set_property(vec![FILTER_STATE_PROPERTY], Some(record.as_bytes()));

        // The upstream must see exactly the path that was authorized, with
        // REDACT applied; a refused request is masked too, for Envoy's
        // access log. Only possible here: after this hook returns, request
        // headers can no longer be changed.
        if matches!(decision.outcome, Outcome::Allow | Outcome::DlpBlocked) {
            if let Some(path) = &decision.forward_path {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, ":path", Some(path));
            }
            replace_lines(MapType::HttpRequestHeaders, &decision.header_edits);
        }
        if let Some(response) = policy.response_for(&decision) {
            self.count(decision.outcome, false, decision.audited());
            let method = request.header(":method").unwrap_or_default();
            let authority = request.header(":authority").unwrap_or_default();
            log(LogLevel::Info, &format!("warden: {} {method} {authority} {record}", decision.outcome.as_str()));
            return self.refuse(decision.outcome, response);
        }
        let body = if end_of_stream { None } else { decision.take_body() };
        match body {
            None => {
                self.count(decision.outcome, decision.redacted(), decision.audited());
                Action::Continue
            }
            Some(scan) => {
                // Counted when the body is done. A held body is held chunk
                // by chunk (StopIterationAndBuffer), so none of a blocked
                // one reaches the upstream. The headers wait for it too
                // where Envoy passes that pause on and still delivers the
                // body (`allow_on_headers_stop_iteration`); elsewhere they
                // go ahead, as a paused headers callback would stop the
                // body callbacks too (see `hold`).
                self.headers_held = scan.holds() && self.pause_headers();
                self.body = Some(scan);
                if self.headers_held {
                    Action::Pause
                } else {
                    Action::Continue
                }
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(scan) = self.body.as_ref() else { return Action::Continue };
        if !scan.reads_body() {
            // No policy scans the body, or its scan is over: only the end
            // of the stream (and trailers) still count.
            return if end_of_stream { self.scan_body(&[], true) } else { Action::Continue };
        }
        let held = scan.holds();
        self.scan_new_bytes(body_size, held, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers are scanned as headers are, then end the body. They can
        // still be changed here; a BLOCK finding in them refuses the
        // request, so they never go upstream (a body not held, and headers
        // not held with it, have gone already: see docs/POLICY.md).
        if let (Some(policy), Some(scan)) = (self.policy.as_deref(), self.body.as_mut()) {
            let trailers = header_map(MapType::HttpRequestTrailers);
            let edits = scan.trailers(policy.dlp(), &mut |visit| trailers.for_each(visit));
            replace_lines(MapType::HttpRequestTrailers, &edits);
        }
        self.scan_body(&[], true)
    }
}

/// Replaces header (or trailer) lines with DLP's edits: the lines of a
/// name are replaced by its entries, in order (replacing a name leaves one
/// line of it; the rest are added after it).
fn replace_lines(map: MapType, edits: &[(String, String)]) {
    for (i, (name, value)) in edits.iter().enumerate() {
        let first = edits.iter().position(|(n, _)| n == name) == Some(i);
        let _ = if first {
            hostcalls::set_map_value(map, name, Some(value))
        } else {
            hostcalls::add_map_value(map, name, value)
        };
    }
}

/// How much of a request body is copied into the VM at a time, to be
/// scanned or masked.
const BODY_PIECE: usize = 1 << 20;

/// A range of the request body (the SDK's accessor panics on unexpected
/// host statuses).
fn request_body(start: usize, max_size: usize) -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::HttpRequestBody, start, max_size).ok().flatten()
}
