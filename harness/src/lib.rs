//! A proxy-wasm host (ABI 0.2.1) on wasmtime that behaves like one Envoy
//! worker, for running filters off-cluster: Warden's, or any other.
//!
//! ```no_run
//! use warden_harness::{Host, HostOptions, Request};
//!
//! let wasm = std::fs::read("warden.wasm").unwrap();
//! let host = Host::new(&wasm, HostOptions::default()).unwrap();
//! let mut vm = host.vm(br#"{"name": "demo", "services": [{"name": "h", "hosts": ["httpbin.org"]}]}"#).unwrap();
//! let outcome = vm.run(&Request::new("GET", "httpbin.org", "/get"));
//! assert!(outcome.forwarded.is_some());
//! let outcome = vm.run(&Request::new("GET", "aliyun.com", "/"));
//! assert_eq!(outcome.status, 502);
//! ```
//!
//! - [`Host`] compiles a module once (cached on disk by the module's hash)
//!   and checks its imports; [`Host::vm`] starts a VM with a plugin
//!   configuration, like Envoy loading a filter config.
//! - [`Vm::run`] runs one HTTP stream: headers, body chunks (buffered as
//!   Envoy buffers them while the filter pauses), trailers, the upstream's
//!   response, `on_done`/`on_log`/`on_delete`. Many streams share one VM,
//!   as on an Envoy worker, so state leaking between requests shows.
//! - [`Vm::connect`] runs one connection through a network filter (the
//!   SDK's `StreamContext`) placed before `tcp_proxy`: the client's and the
//!   upstream's bytes, pauses, closes, the properties a TLS handshake
//!   brings, as measured in Envoy 1.40.
//! - Guest faults (traps, bad pointers, endless loops, memory past the
//!   limit) end the stream with a [`Fault`]; the VM is then dead, as in
//!   Envoy, and later streams get the same fault until a new VM is started.

mod abi;
mod cache;
mod connection;
pub mod map;
mod state;
mod types;

pub use types::{
    ClosedBy, Connection, ConnectionOutcome, Fault, Forwarded, Headers, HttpCall, LocalResponse, LogEntry, Outcome,
    Request, UpstreamResponse,
};

use state::{HostState, StreamState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store, StoreLimitsBuilder, Trap, TypedFunc};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

/// How a host runs guests.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The root id Envoy would pass (`root_id` in the filter config).
    pub root_id: String,
    /// The VM configuration (`vm_config.configuration`).
    pub vm_config: Vec<u8>,
    /// Linear memory limit per VM.
    pub memory_limit: usize,
    /// Wall-clock limit for one call into the guest.
    pub call_timeout: Duration,
    /// Where compiled modules are cached; `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// The Wasm plugin config's `allow_on_headers_stop_iteration` (Envoy
    /// 1.35 and later; off by default, as in Envoy): whether a paused
    /// request-headers callback still lets the body callbacks through
    /// (see [`Vm::run`]).
    pub allow_on_headers_stop_iteration: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            root_id: "warden".into(),
            vm_config: Vec::new(),
            memory_limit: 256 << 20,
            call_timeout: Duration::from_secs(5),
            cache_dir: cache::default_dir(),
            allow_on_headers_stop_iteration: false,
        }
    }
}

/// Why a module could not be loaded or a VM started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// Not a module, or not one this host can link (e.g. an unknown import,
    /// named in the message).
    Load(String),
    /// The VM did not start (`_initialize` or `proxy_on_vm_start` failed).
    Start(String),
    /// `proxy_on_configure` returned false: the filter refused its
    /// configuration, as Envoy would. Carries the filter's log lines.
    ConfigRejected(Vec<LogEntry>),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Load(m) => write!(f, "cannot load the filter: {m}"),
            HostError::Start(m) => write!(f, "the filter's VM did not start: {m}"),
            HostError::ConfigRejected(logs) => {
                write!(f, "the filter refused its configuration")?;
                for l in logs {
                    write!(f, "\n  [{}] {}", l.level, l.message)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for HostError {}

/// A compiled, linked filter module. Cheap to start VMs from; share it.
pub struct Host {
    engine: Engine,
    pre: InstancePre<HostState>,
    options: HostOptions,
    ticker: Arc<AtomicBool>,
}

/// Epoch ticks per second; call timeouts are counted in ticks.
const TICKS_PER_SECOND: u64 = 100;

impl Host {
    /// Compiles (or loads from the cache) and links `wasm`.
    pub fn new(wasm: &[u8], options: HostOptions) -> Result<Host, HostError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| HostError::Load(e.to_string()))?;
        let module = cache::load_or_compile(&engine, wasm, options.cache_dir.as_deref())?;

        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        if !exports.iter().any(|e| e.starts_with("proxy_abi_version_0_2")) {
            return Err(HostError::Load(format!(
                "not a proxy-wasm 0.2 filter: no proxy_abi_version_0_2_* export (exports: {})",
                exports.join(", ")
            )));
        }

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(|e| HostError::Load(e.to_string()))?;
        abi::add_to_linker(&mut linker).map_err(|e| HostError::Load(e.to_string()))?;
        let pre = linker.instantiate_pre(&module).map_err(|e| HostError::Load(unknown_import_message(&module, &e)))?;

        // Epoch ticker: lets a call that runs too long be interrupted.
        let ticker = Arc::new(AtomicBool::new(true));
        let (running, ticking) = (Arc::clone(&ticker), engine.clone());
        std::thread::Builder::new()
            .name("warden-epoch".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| HostError::Load(format!("cannot start the epoch thread: {e}")))?;
        Ok(Host { engine, pre, options, ticker })
    }

    /// Starts a VM with `plugin_config`, like Envoy loading the filter:
    /// `_initialize`, the root context, `proxy_on_vm_start`,
    /// `proxy_on_configure`.
    pub fn vm(&self, plugin_config: &[u8]) -> Result<Vm, HostError> {
        Vm::start(self, plugin_config, &self.options.root_id)
    }

    /// Like [`Host::vm`], with another root id than the host's
    /// ([`HostOptions::root_id`]): the same module loaded as another
    /// plugin, e.g. as a network filter where the root id selects that.
    pub fn vm_with_root_id(&self, plugin_config: &[u8], root_id: &str) -> Result<Vm, HostError> {
        Vm::start(self, plugin_config, root_id)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
    }
}

/// Explains a link failure, naming the import this host lacks.
fn unknown_import_message(module: &Module, err: &wasmtime::Error) -> String {
    let text = format!("{err:#}");
    for import in module.imports() {
        // Quoted as wasmtime quotes it: `env::proxy_log` must not match an
        // error about `env::proxy_log_v2`.
        let name = format!("`{}::{}`", import.module(), import.name());
        if text.contains(&name) {
            return format!(
                "the module imports {}.{}, which this host does not provide ({text})",
                import.module(),
                import.name()
            );
        }
    }
    text
}

/// The root context's id; stream contexts count up from 2.
pub(crate) const ROOT_CONTEXT: u32 = 1;

/// `proxy_on_http_call_response(context, token, headers, body size, trailers)`.
type HttpCallResponseHook = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// The exports a VM calls, looked up once.
struct Hooks {
    context_create: TypedFunc<(u32, u32), ()>,
    request_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    request_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    request_trailers: Option<TypedFunc<(u32, u32), u32>>,
    response_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    response_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    http_call_response: Option<HttpCallResponseHook>,
    done: Option<TypedFunc<u32, u32>>,
    log: Option<TypedFunc<u32, ()>>,
    delete: Option<TypedFunc<u32, ()>>,
    tick: Option<TypedFunc<u32, ()>>,
    queue_ready: Option<TypedFunc<(u32, u32), ()>>,
    new_connection: Option<TypedFunc<u32, u32>>,
    downstream_data: Option<TypedFunc<(u32, u32, u32), u32>>,
    downstream_close: Option<TypedFunc<(u32, u32), ()>>,
    upstream_data: Option<TypedFunc<(u32, u32, u32), u32>>,
    upstream_close: Option<TypedFunc<(u32, u32), ()>>,
}

/// One running filter VM: one root context and the streams run through it.
pub struct Vm {
    store: Store<HostState>,
    hooks: Hooks,
    next_context: u32,
    call_ticks: u64,
    /// Set once the guest faulted; the VM is dead from then on.
    dead: Option<Fault>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    stdout_seen: usize,
    stderr_seen: usize,
    /// The stream is a HEAD request: the client gets no response body.
    head_request: bool,
    /// See [`HostOptions::allow_on_headers_stop_iteration`].
    stop_iteration: bool,
    /// The guest's exported linear memory, if any.
    memory: Option<wasmtime::Memory>,
}

impl Vm {
    fn start(host: &Host, plugin_config: &[u8], root_id: &str) -> Result<Vm, HostError> {
        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let wasi = WasiCtxBuilder::new().stdout(stdout.clone()).stderr(stderr.clone()).build_p1();
        let limits =
            StoreLimitsBuilder::new().memory_size(host.options.memory_limit).trap_on_grow_failure(true).build();
        let state =
            HostState::new(wasi, limits, root_id.to_owned(), host.options.vm_config.clone(), plugin_config.to_vec());
        let mut store = Store::new(&host.engine, state);
        store.limiter(|s| &mut s.limits);
        let call_ticks = (host.options.call_timeout.as_millis() as u64 * TICKS_PER_SECOND / 1000).max(1);
        store.set_epoch_deadline(call_ticks);
        let instance = host.pre.instantiate(&mut store).map_err(|e| HostError::Start(format!("{e:#}")))?;

        let memory = instance.get_memory(&mut store, "memory");
        let alloc = instance
            .get_typed_func::<u32, u32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<u32, u32>(&mut store, "malloc"))
            .map_err(|_| {
                HostError::Start("the module exports no allocator (proxy_on_memory_allocate or malloc)".into())
            })?;
        store.data_mut().allocator = Some(alloc);

        let func = |store: &mut Store<HostState>, name: &str| instance.get_func(&mut *store, name);
        macro_rules! hook {
            ($name:literal) => {
                func(&mut store, $name).and_then(|f| f.typed(&store).ok())
            };
        }
        let context_create = hook!("proxy_on_context_create")
            .ok_or_else(|| HostError::Start("the module exports no proxy_on_context_create".into()))?;
        let hooks = Hooks {
            context_create,
            request_headers: hook!("proxy_on_request_headers"),
            request_body: hook!("proxy_on_request_body"),
            request_trailers: hook!("proxy_on_request_trailers"),
            response_headers: hook!("proxy_on_response_headers"),
            response_body: hook!("proxy_on_response_body"),
            http_call_response: hook!("proxy_on_http_call_response"),
            done: hook!("proxy_on_done"),
            log: hook!("proxy_on_log"),
            delete: hook!("proxy_on_delete"),
            tick: hook!("proxy_on_tick"),
            queue_ready: hook!("proxy_on_queue_ready"),
            new_connection: hook!("proxy_on_new_connection"),
            downstream_data: hook!("proxy_on_downstream_data"),
            downstream_close: hook!("proxy_on_downstream_connection_close"),
            upstream_data: hook!("proxy_on_upstream_data"),
            upstream_close: hook!("proxy_on_upstream_connection_close"),
        };
        let vm_start: Option<TypedFunc<(u32, u32), u32>> = hook!("proxy_on_vm_start");
        let configure: Option<TypedFunc<(u32, u32), u32>> = hook!("proxy_on_configure");
        let initialize: Option<TypedFunc<(), ()>> = hook!("_initialize");

        let mut vm = Vm {
            store,
            hooks,
            next_context: ROOT_CONTEXT + 1,
            call_ticks,
            dead: None,
            stdout,
            stderr,
            stdout_seen: 0,
            stderr_seen: 0,
            head_request: false,
            stop_iteration: host.options.allow_on_headers_stop_iteration,
            memory,
        };
        let start_error = |vm: &mut Vm, what: &str, e: wasmtime::Error| {
            let fault = vm.fault_of(e);
            HostError::Start(format!("{what}: {fault}"))
        };
        if let Some(init) = initialize {
            vm.arm();
            init.call(&mut vm.store, ()).map_err(|e| start_error(&mut vm, "_initialize", e))?;
        }
        vm.arm();
        let create = vm.hooks.context_create.clone();
        create
            .call(&mut vm.store, (ROOT_CONTEXT, 0))
            .map_err(|e| start_error(&mut vm, "proxy_on_context_create", e))?;
        if let Some(f) = vm_start {
            vm.arm();
            let size = vm.store.data().vm_config.len() as u32;
            let ok = f
                .call(&mut vm.store, (ROOT_CONTEXT, size))
                .map_err(|e| start_error(&mut vm, "proxy_on_vm_start", e))?;
            if ok == 0 {
                return Err(HostError::Start("proxy_on_vm_start returned false".into()));
            }
        }
        if let Some(f) = configure {
            vm.arm();
            let size = plugin_config.len() as u32;
            let ok = f
                .call(&mut vm.store, (ROOT_CONTEXT, size))
                .map_err(|e| start_error(&mut vm, "proxy_on_configure", e))?;
            if ok == 0 {
                vm.collect_stdio();
                return Err(HostError::ConfigRejected(std::mem::take(&mut vm.store.data_mut().logs)));
            }
        }
        Ok(vm)
    }

    /// Resets the time limit before a call into the guest.
    fn arm(&mut self) {
        self.store.set_epoch_deadline(self.call_ticks);
    }

    /// Classifies a guest error and marks the VM dead.
    fn fault_of(&mut self, err: wasmtime::Error) -> Fault {
        let text = format!("{err:#}");
        let fault = match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                Fault::Timeout(format!("a call took longer than {} ticks of 10 ms", self.call_ticks))
            }
            _ if text.contains("forcing trap when growing memory") || text.contains("memory minimum size") => {
                Fault::MemoryLimit(text)
            }
            _ => Fault::Trap(text),
        };
        self.dead = Some(fault.clone());
        fault
    }

    /// The size of the guest's linear memory in bytes (0 if it exports
    /// none). Wasm memory only grows, so after streams have run this is the
    /// VM's peak: the difference across a stream is what the stream made the
    /// filter grow by.
    pub fn memory_bytes(&self) -> usize {
        self.memory.map_or(0, |m| m.data_size(&self.store))
    }

    /// The filter's metrics: name → value.
    pub fn metrics(&self) -> Vec<(String, i64)> {
        self.store.data().metrics.iter().map(|m| (m.name.clone(), m.value)).collect()
    }

    /// A metric's value by name.
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.store.data().metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// Log lines written outside streams (start-up, ticks) and not yet taken.
    pub fn take_logs(&mut self) -> Vec<LogEntry> {
        self.collect_stdio();
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// The tick period the filter asked for (0: none).
    pub fn tick_period(&self) -> Duration {
        Duration::from_millis(u64::from(self.store.data().tick_period_ms))
    }

    /// Calls `proxy_on_tick` on the root context, as Envoy's timer would.
    pub fn tick(&mut self) -> Result<(), Fault> {
        if let Some(f) = &self.dead {
            return Err(f.clone());
        }
        self.call(|h| h.tick.as_ref(), ROOT_CONTEXT)?;
        self.deliver_queue_ready()
    }

    /// Shared data (`proxy_set_shared_data`) by key.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.store.data().shared_data.get(key).map(|(v, _)| v.clone())
    }

    /// Whether the VM has faulted (and refuses further streams).
    pub fn fault(&self) -> Option<&Fault> {
        self.dead.as_ref()
    }

    /// Moves what the guest wrote to stdout/stderr (WASI) into the logs.
    fn collect_stdio(&mut self) {
        let mut lines = Vec::new();
        for (pipe, seen, level) in
            [(&self.stdout, &mut self.stdout_seen, "stdout"), (&self.stderr, &mut self.stderr_seen, "stderr")]
        {
            let contents = pipe.contents();
            let new = contents.get(*seen..).unwrap_or_default();
            *seen = contents.len();
            for line in String::from_utf8_lossy(new).lines() {
                lines.push(LogEntry { level, message: line.to_owned() });
            }
        }
        self.store.data_mut().logs.extend(lines);
    }

    /// Runs one HTTP stream through the filter.
    ///
    /// A paused request-headers callback holds the headers back from the
    /// upstream; what Envoy does next depends on the plugin's
    /// `allow_on_headers_stop_iteration`, as measured in Envoy 1.40
    /// (`tests/e2e/header_hold.rs`):
    ///
    /// - off (Envoy's default): proxy-wasm hosts turn the pause into
    ///   `StopAllIterationAndWatermark`. Envoy buffers the body and calls no
    ///   body or trailers callback until the stream is resumed
    ///   (`proxy_continue_stream`, from another callback or from the root
    ///   context's timer, which this host fires while the stream waits);
    ///   then it hands the filter everything buffered in one body callback.
    ///   A stream nothing resumes ends in [`Fault::Stalled`];
    /// - on: the pause is `StopIteration`. The body and trailers callbacks
    ///   go on; the headers (and the body with them) go upstream when one
    ///   of those callbacks returns `Continue`, or the stream is resumed
    ///   (from a callback, or from the timer once every callback ran). A
    ///   local response before that leaves the upstream untouched.
    pub fn run(&mut self, request: &Request) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some(f) = &self.dead {
            outcome.fault = Some(f.clone());
            outcome.status = 503;
            return outcome;
        }
        let context = self.new_context_id();
        self.begin(request);
        let result = self.drive(context, request, &mut outcome);
        if let Err(fault) = result {
            // Envoy answers a stream whose filter faulted with 503.
            outcome.fault = Some(fault);
            outcome.status = 503;
            outcome.forwarded = None;
        }
        self.finish(&mut outcome);
        outcome
    }

    /// The id of the next stream context.
    fn new_context_id(&mut self) -> u32 {
        let context = self.next_context;
        self.next_context = self.next_context.wrapping_add(1).max(ROOT_CONTEXT + 1);
        context
    }

    fn begin(&mut self, request: &Request) {
        self.head_request = request.header_value(":method").as_deref() == Some("HEAD");
        let s = self.store.data_mut();
        s.stream = StreamState {
            request_headers: request.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect(),
            request_trailers: request.trailers.clone(),
            http_call_answers: request.http_call_answers.clone(),
            ..StreamState::default()
        };
        s.properties = request.properties.clone();
        if !s.properties.iter().any(|(p, _)| p == &["destination", "port"]) {
            // Envoy always knows the listener port; without one given, the
            // port the request was made to.
            let port = default_port(request);
            s.properties.push((vec!["destination".into(), "port".into()], u64::from(port).to_le_bytes().to_vec()));
        }
        s.filter_state.clear();
    }

    fn finish(&mut self, outcome: &mut Outcome) {
        self.collect_stdio();
        let s = self.store.data_mut();
        outcome.filter_state = std::mem::take(&mut s.filter_state);
        outcome.logs = std::mem::take(&mut s.logs);
        outcome.http_calls = std::mem::take(&mut s.stream.http_calls);
        s.stream = StreamState::default();
        s.properties.clear();
        s.stream_context = 0;
        s.effective_context = 0;
    }

    /// Calls a hook with the time limit armed. The hook is picked from
    /// `self.hooks` rather than cloned: cloning a `TypedFunc` clones its
    /// registered type, which measured as a large share of a request.
    fn call<P: wasmtime::WasmParams, T: wasmtime::WasmResults>(
        &mut self,
        pick: fn(&Hooks) -> Option<&TypedFunc<P, T>>,
        params: P,
    ) -> Result<Option<T>, Fault> {
        let Some(f) = pick(&self.hooks) else { return Ok(None) };
        self.store.set_epoch_deadline(self.call_ticks);
        match f.call(&mut self.store, params) {
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(self.fault_of(e)),
        }
    }

    /// Delivers `proxy_on_queue_ready` to the root context, once per item
    /// enqueued since the last delivery, as Envoy's dispatcher does after
    /// the call that enqueued returns.
    fn deliver_queue_ready(&mut self) -> Result<(), Fault> {
        // A filter that refills its own queue from on_queue_ready would
        // never let this end: give up after a while, as a busy event loop
        // would let other work in.
        const MAX_ROUNDS: usize = 1000;
        for _ in 0..MAX_ROUNDS {
            let ready = std::mem::take(&mut self.store.data_mut().queue_ready);
            if ready.is_empty() {
                break;
            }
            for id in ready {
                self.call(|h| h.queue_ready.as_ref(), (ROOT_CONTEXT, id))?;
            }
        }
        Ok(())
    }

    /// Delivers pending `proxy_http_call` answers (and queue notifications),
    /// each after the hook that made the call returned, as Envoy's
    /// dispatcher does.
    fn deliver_http_calls(&mut self, context: u32) -> Result<(), Fault> {
        loop {
            let pending = std::mem::take(&mut self.store.data_mut().stream.pending_calls);
            if pending.is_empty() {
                return self.deliver_queue_ready();
            }
            for call in pending {
                let (headers, body) = (call.answer.headers.len() as u32 + 1, call.answer.body.len() as u32);
                let mut answer = call.answer.clone();
                answer.headers.insert(0, (":status".into(), answer.status.to_string().into_bytes()));
                self.store.data_mut().stream.call_response = Some(answer);
                self.call(|h| h.http_call_response.as_ref(), (context, call.token, headers, body, 0))?;
                self.store.data_mut().stream.call_response = None;
            }
        }
    }

    fn local_response(&self) -> bool {
        self.store.data().stream.local_response.is_some()
    }

    fn drive(&mut self, context: u32, request: &Request, outcome: &mut Outcome) -> Result<(), Fault> {
        let s = self.store.data_mut();
        s.stream_context = context;
        s.effective_context = context;
        self.call(|h| Some(&h.context_create), (context, ROOT_CONTEXT))?;
        let result = self.request_phase(context, request, outcome);
        // The stream ends whatever happened: done, log, delete.
        if result.is_ok() {
            self.call(|h| h.done.as_ref(), context)?;
            self.call(|h| h.log.as_ref(), context)?;
            self.call(|h| h.delete.as_ref(), context)?;
            self.deliver_queue_ready()?;
        }
        result
    }

    fn request_phase(&mut self, context: u32, request: &Request, outcome: &mut Outcome) -> Result<(), Fault> {
        const CONTINUE: u32 = 0;
        let chunks = &request.body_chunks;
        let has_body = !chunks.is_empty();
        let has_trailers = !request.trailers.is_empty();
        let num_headers = request.headers.len() as u32;
        // A paused headers callback stops the whole stream unless the
        // plugin allows StopIteration (see `run`).
        let stop_all = !self.stop_iteration;

        // Headers. A paused stream waits for continue_stream, a callback
        // returning Continue (StopIteration only) or a local response.
        let end_of_stream = u32::from(!has_body && !has_trailers);
        let action =
            self.call(|h| h.request_headers.as_ref(), (context, num_headers, end_of_stream))?.unwrap_or(CONTINUE);
        self.deliver_http_calls(context)?;
        let mut headers_paused = action != CONTINUE && !self.take_continue_request();
        self.note_upstream(headers_paused, outcome);
        let mut forwarded_body = Vec::new();

        // Body, chunk by chunk. `Pause` (StopIterationAndBuffer) keeps the
        // data buffered: the next call sees it all. `Continue` releases it,
        // and headers still paused with it.
        let mut body_paused = false;
        let mut body_seen = false;
        for (i, chunk) in chunks.iter().enumerate() {
            if self.local_response() {
                break;
            }
            let end = i + 1 == chunks.len() && !has_trailers;
            self.store.data_mut().stream.request_body.extend_from_slice(chunk);
            if headers_paused && stop_all {
                continue;
            }
            body_seen = true;
            body_paused = self.request_body(context, end, &mut headers_paused)?;
            self.note_upstream(headers_paused, outcome);
            if !body_paused && !headers_paused {
                forwarded_body.append(&mut self.store.data_mut().stream.request_body);
            }
        }
        // Stopped whole: the stream waits for the filter's timer to resume
        // it, then Envoy hands over all it buffered in one callback.
        if headers_paused && stop_all && !self.local_response() {
            headers_paused = !self.tick_while_paused(context)?;
            self.note_upstream(headers_paused, outcome);
            if !headers_paused && has_body && !body_seen && !self.local_response() {
                body_paused = self.request_body(context, !has_trailers, &mut headers_paused)?;
            }
        }
        if has_trailers && !self.local_response() && !(headers_paused && stop_all) {
            let action = self
                .call(|h| h.request_trailers.as_ref(), (context, request.trailers.len() as u32))?
                .unwrap_or(CONTINUE);
            self.deliver_http_calls(context)?;
            if self.take_continue_request() || action == CONTINUE {
                headers_paused = false;
            }
            body_paused = action != CONTINUE && !headers_paused && body_paused;
        }
        // Paused (StopIteration) with every callback delivered: only the
        // filter's timer can resume it now.
        if headers_paused && !stop_all && !self.local_response() {
            headers_paused = !self.tick_while_paused(context)?;
            self.note_upstream(headers_paused, outcome);
        }

        if let Some(local) = self.store.data_mut().stream.local_response.take() {
            outcome.status = local.status;
            outcome.response_body = if self.head_request { Vec::new() } else { local.body.clone() };
            outcome.local_response = Some(local);
            return Ok(());
        }
        if headers_paused {
            return Err(Fault::Stalled(
                "the filter paused the request and neither resumed it (proxy_continue_stream) nor answered it".into(),
            ));
        }
        self.note_upstream(headers_paused, outcome);
        // At the end of the stream Envoy forwards whatever is still
        // buffered (a body paused on its last chunk is released by
        // end_of_stream in this model).
        let _ = body_paused;
        forwarded_body.append(&mut self.store.data_mut().stream.request_body);
        let headers = std::mem::take(&mut self.store.data_mut().stream.request_headers);
        let trailers = std::mem::take(&mut self.store.data_mut().stream.request_trailers);
        outcome.forwarded = Some(Forwarded { headers, body: forwarded_body, trailers });

        self.response_phase(context, &request.upstream, outcome)
    }

    /// One request-body callback over what is buffered; whether the body
    /// is still held (the callback paused). A `Continue`, or the stream
    /// resumed, releases headers still paused.
    fn request_body(&mut self, context: u32, end: bool, headers_paused: &mut bool) -> Result<bool, Fault> {
        const CONTINUE: u32 = 0;
        let size = self.store.data().stream.request_body.len() as u32;
        let action = self.call(|h| h.request_body.as_ref(), (context, size, u32::from(end)))?.unwrap_or(CONTINUE);
        self.deliver_http_calls(context)?;
        if self.take_continue_request() || action == CONTINUE {
            *headers_paused = false;
        }
        Ok(action != CONTINUE)
    }

    /// Records that the request's headers went upstream, once they are
    /// no longer paused and no local response was sent.
    fn note_upstream(&self, headers_paused: bool, outcome: &mut Outcome) {
        if !headers_paused && !self.local_response() {
            outcome.upstream_started = true;
        }
    }

    /// While a stream is stopped whole, time passes: the root context's
    /// timer fires (if the filter set one) until the filter resumes the
    /// stream or answers it. Whether it was resumed.
    fn tick_while_paused(&mut self, context: u32) -> Result<bool, Fault> {
        // Ten seconds of 100 ms ticks, or more of shorter ones: longer than
        // any wait a filter could mean as a timer.
        const MAX_TICKS: usize = 100;
        for _ in 0..MAX_TICKS {
            if self.store.data().tick_period_ms == 0 || self.local_response() {
                return Ok(false);
            }
            self.store.data_mut().effective_context = ROOT_CONTEXT;
            let ticked = self.call(|h| h.tick.as_ref(), ROOT_CONTEXT);
            self.store.data_mut().effective_context = context;
            if ticked?.is_none() {
                return Ok(false);
            }
            self.deliver_queue_ready()?;
            if self.take_continue_request() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn take_continue_request(&mut self) -> bool {
        std::mem::take(&mut self.store.data_mut().stream.continue_request)
    }

    fn response_phase(
        &mut self,
        context: u32,
        upstream: &UpstreamResponse,
        outcome: &mut Outcome,
    ) -> Result<(), Fault> {
        {
            let s = &mut self.store.data_mut().stream;
            s.response_headers = std::iter::once((":status".to_owned(), upstream.status.to_string().into_bytes()))
                .chain(upstream.headers.iter().cloned())
                .collect();
        }
        let has_body = !upstream.body.is_empty();
        let num = self.store.data().stream.response_headers.len() as u32;
        self.call(|h| h.response_headers.as_ref(), (context, num, u32::from(!has_body)))?;
        self.deliver_http_calls(context)?;
        if has_body && self.store.data().stream.local_response.is_none() {
            self.store.data_mut().stream.response_body = upstream.body.clone();
            self.call(|h| h.response_body.as_ref(), (context, upstream.body.len() as u32, 1))?;
            self.deliver_http_calls(context)?;
        }
        if let Some(local) = self.store.data_mut().stream.local_response.take() {
            outcome.status = local.status;
            outcome.response_body = if self.head_request { Vec::new() } else { local.body.clone() };
            outcome.local_response = Some(local);
            return Ok(());
        }
        let s = &mut self.store.data_mut().stream;
        outcome.status = s
            .response_headers
            .iter()
            .find(|(n, _)| n == ":status")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(u32::from(upstream.status));
        let body = std::mem::take(&mut s.response_body);
        outcome.response_body = if self.head_request { Vec::new() } else { body };
        outcome.response_headers = std::mem::take(&mut s.response_headers);
        Ok(())
    }
}

/// The port a request was made to: the authority's, else the scheme's.
fn default_port(request: &Request) -> u16 {
    let authority = request.header_value(":authority").unwrap_or_default();
    let port_text = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => authority.rsplit_once(':').map(|(_, p)| p),
    };
    let port = port_text.and_then(|p| p.parse().ok());
    port.unwrap_or(match request.header_value(":scheme").as_deref() {
        Some("https") => 443,
        _ => 80,
    })
}
