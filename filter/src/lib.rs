//! Warden's proxy-wasm glue: the thin layer between Envoy and the policy
//! engine. The root context compiles the policy once per configuration;
//! each HTTP context asks the engine for a decision on the request headers
//! and carries it out with host calls.
//!
//! Nothing here may panic: a panic aborts the whole VM (every stream on the
//! worker). Host-call errors are treated as absent values, which the engine
//! turns into refusals where it matters.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};
use std::rc::Rc;
use warden_engine::{compile, Attributes, Decision, Outcome, Policy, Response};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(WardenRoot::default()) });
}}

/// The filter-state key; Envoy exposes it as `wasm.warden.decision`.
const DECISION_PROPERTY: &str = "warden.decision";
/// The response header that tells the client which kind of refusal it got.
const DECISION_HEADER: &str = "x-warden-decision";

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// The counters of SPEC §5, defined once per VM.
#[derive(Debug, Clone, Copy, Default)]
struct Metrics {
    requests: Option<u32>,
    allowed: Option<u32>,
    denied: Option<u32>,
    unregistered: Option<u32>,
    bad_request: Option<u32>,
    audit: Option<u32>,
    config_errors: Option<u32>,
    // DLP counters are defined now so dashboards can be built before DLP
    // policies exist; they stay at zero.
    #[allow(dead_code)]
    dlp_blocked: Option<u32>,
    #[allow(dead_code)]
    dlp_redacted: Option<u32>,
}

impl Metrics {
    fn define() -> Self {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            requests: counter("warden.requests"),
            allowed: counter("warden.allowed"),
            denied: counter("warden.denied"),
            unregistered: counter("warden.unregistered"),
            bad_request: counter("warden.bad_request"),
            audit: counter("warden.audit"),
            config_errors: counter("warden.config_errors"),
            dlp_blocked: counter("warden.dlp_blocked"),
            dlp_redacted: counter("warden.dlp_redacted"),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}

/// Owns the compiled policy for one plugin configuration.
#[derive(Default)]
struct WardenRoot {
    policy: Option<Rc<Policy>>,
    metrics: Metrics,
}

impl Context for WardenRoot {}

impl RootContext for WardenRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.metrics = Metrics::define();
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        if self.metrics.requests.is_none() {
            self.metrics = Metrics::define();
        }
        // A failed reconfiguration must not leave the previous policy in
        // force silently: drop it, so requests fail closed until a valid
        // configuration arrives (Envoy normally keeps the old filter chain).
        self.policy = None;
        let config = hostcalls::get_buffer(proxy_wasm::types::BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match compile::load(&config) {
            Ok(policy) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "warden: policy '{}' loaded: {} services, {} authorization policies",
                        policy.name(),
                        policy.registry().services().len(),
                        policy.authz_policies().len()
                    ),
                );
                self.policy = Some(Rc::new(policy));
                true
            }
            Err(err) => {
                Metrics::bump(self.metrics.config_errors);
                log(LogLevel::Error, &format!("warden: invalid configuration: {err}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(WardenStream { policy: self.policy.clone(), metrics: self.metrics }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The request as the engine sees it: header and property host calls.
struct EnvoyRequest;

impl Attributes for EnvoyRequest {
    fn header(&self, name: &str) -> Option<String> {
        let bytes = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name).ok().flatten()?;
        Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }
}

/// One HTTP stream.
struct WardenStream {
    policy: Option<Rc<Policy>>,
    metrics: Metrics,
}

impl Context for WardenStream {}

impl WardenStream {
    fn count(&self, decision: &Decision<'_>) {
        let m = &self.metrics;
        Metrics::bump(m.requests);
        Metrics::bump(match decision.outcome {
            Outcome::Allow => m.allowed,
            Outcome::Denied => m.denied,
            Outcome::Unregistered => m.unregistered,
            Outcome::BadRequest => m.bad_request,
        });
        if !decision.audit.is_empty() {
            Metrics::bump(m.audit);
        }
    }

    fn refuse(&self, decision: &Decision<'_>, response: &Response) -> Action {
        let headers = vec![(DECISION_HEADER, decision.outcome.as_str())];
        let _ = hostcalls::send_http_response(response.status, headers, Some(response.body.as_bytes()));
        Action::Pause
    }
}

impl HttpContext for WardenStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            // Fail closed: no valid configuration, no traffic.
            let decision = Decision::no_config();
            let _ = hostcalls::set_property(vec![DECISION_PROPERTY], Some(decision.record().as_bytes()));
            self.count(&decision);
            log(LogLevel::Warn, "warden: refusing request: no valid configuration");
            let response = Response { status: 503, body: "warden: no valid configuration".into() };
            return self.refuse(&decision, &response);
        };
        let decision = policy.decide(&EnvoyRequest);
        let record = decision.record();
        // Set before any local reply, so the access log of a refused request
        // carries the decision too.
        let _ = hostcalls::set_property(vec![DECISION_PROPERTY], Some(record.as_bytes()));
        self.count(&decision);

        if let Some(response) = policy.response_for(&decision) {
            let method = EnvoyRequest.header(":method").unwrap_or_default();
            let authority = EnvoyRequest.header(":authority").unwrap_or_default();
            log(LogLevel::Info, &format!("warden: {} {method} {authority} {record}", decision.outcome.as_str()));
            return self.refuse(&decision, response);
        }
        // The upstream must see exactly the path that was authorized. Only
        // possible here: after this hook returns, request headers can no
        // longer be changed.
        if let Some(path) = &decision.forward_path {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, ":path", Some(path));
        }
        Action::Continue
    }
}
