//! The probe as a network filter (`envoy.filters.network.wasm`, the SDK's
//! `StreamContext`), when its root id is [`NETWORK_ROOT_ID`].
//!
//! Each callback logs (info) one line, `probe.network: CALLBACK key=value
//! ...`, with the properties it could read there, and records the callbacks
//! seen so far in the filter state `wasm.probe.seen` (`proxy_set_property`).
//!
//! What each callback does is told by plugin configuration lines, a list of
//! actions per callback, one per call, the last one repeated:
//!
//! ```text
//! on_new_connection: pause
//! on_downstream_data: pause, continue
//! on_upstream_data: continue
//! ```
//!
//! Actions: `continue`, `pause`; `close` (`proxy_close_stream(Downstream)`,
//! then continue); `close-upstream` (`proxy_close_stream(Upstream)`, then
//! continue); `resume` (`proxy_continue_stream(Downstream)`, then pause);
//! `upper` (the data buffer replaced by its ASCII uppercase, then
//! continue); `trap` (the filter panics).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, PeerType};

/// The root id that makes the probe a network filter.
pub const NETWORK_ROOT_ID: &str = "probe.network";

/// proxy-wasm `StreamType`s (the SDK keeps its enum for its own wrappers).
const DOWNSTREAM: u32 = 2;
const UPSTREAM: u32 = 3;

// The raw imports, to see the status Envoy returns where the SDK's wrappers
// would panic on anything but Ok. The status is a plain number: Envoy
// answers with codes the SDK's `Status` lacks (`Unimplemented`, 12).
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_set_property(path: *const u8, path_size: usize, value: *const u8, value_size: usize) -> u32;
}

/// A proxy-wasm status code's name (ABI 0.2.1).
fn status_name(status: u32) -> String {
    let name = match status {
        0 => "Ok",
        1 => "NotFound",
        2 => "BadArgument",
        3 => "SerializationFailure",
        4 => "ParseFailure",
        5 => "BadExpression",
        6 => "InvalidMemoryAccess",
        7 => "Empty",
        8 => "CasMismatch",
        9 => "ResultMismatch",
        10 => "InternalFailure",
        11 => "BrokenConnection",
        12 => "Unimplemented",
        other => return format!("Status({other})"),
    };
    name.into()
}

/// What one callback does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Continue,
    Pause,
    Close,
    CloseUpstream,
    Resume,
    ResumeUpstream,
    Upper,
    Trap,
}

impl Step {
    fn parse(word: &str) -> Option<Step> {
        Some(match word {
            "continue" => Step::Continue,
            "pause" => Step::Pause,
            "close" => Step::Close,
            "close-upstream" => Step::CloseUpstream,
            "resume" => Step::Resume,
            "resume-upstream" => Step::ResumeUpstream,
            "upper" => Step::Upper,
            "trap" => Step::Trap,
            _ => return None,
        })
    }
}

/// A callback's actions, one per call; the last one repeats.
#[derive(Debug, Clone, Default)]
struct Script(Vec<Step>);

impl Script {
    fn step(&self, call: usize) -> Step {
        self.0.get(call).or(self.0.last()).copied().unwrap_or(Step::Continue)
    }
}

/// The network probe's configuration.
#[derive(Debug, Clone, Default)]
pub struct NetworkConfig {
    new_connection: Script,
    downstream_data: Script,
    upstream_data: Script,
}

impl NetworkConfig {
    /// Reads the `on_*: action, ...` lines; `Err` names a bad line.
    pub fn parse(config: &str) -> Result<NetworkConfig, String> {
        let mut parsed = NetworkConfig::default();
        for line in config.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some((key, value)) = line.split_once(':') else { continue };
            let slot = match key.trim() {
                "on_new_connection" => &mut parsed.new_connection,
                "on_downstream_data" => &mut parsed.downstream_data,
                "on_upstream_data" => &mut parsed.upstream_data,
                _ => continue,
            };
            let steps: Option<Vec<Step>> = value.split(',').map(|w| Step::parse(w.trim())).collect();
            *slot = Script(steps.ok_or_else(|| format!("bad actions in {line:?}"))?);
        }
        Ok(parsed)
    }
}

/// One connection through the network probe.
pub struct ProbeConnection {
    config: NetworkConfig,
    seen: Vec<&'static str>,
    downstream_calls: usize,
    upstream_calls: usize,
}

impl ProbeConnection {
    /// A connection run as `config` says.
    pub fn new(config: NetworkConfig) -> ProbeConnection {
        ProbeConnection { config, seen: Vec::new(), downstream_calls: 0, upstream_calls: 0 }
    }

    /// Logs `callback` with `details` and what it can read, and records it
    /// in the filter state.
    fn note(&mut self, callback: &'static str, details: &str) {
        self.seen.push(callback);
        let seen = self.seen.join(",");
        let path = b"probe.seen";
        // SAFETY: both slices live for the duration of the call.
        let status = unsafe { proxy_set_property(path.as_ptr(), path.len(), seen.as_ptr(), seen.len()) };
        let set = if status == 0 { String::new() } else { format!(" set_property={}", status_name(status)) };
        let space = if details.is_empty() { "" } else { " " };
        log(&format!("{callback}{space}{details} {}{set}", properties()));
    }

    /// Carries out `step` on the data buffer `buffer` (if any).
    fn act(&self, step: Step, buffer: Option<BufferType>) -> Action {
        match step {
            Step::Continue => Action::Continue,
            Step::Pause => Action::Pause,
            Step::Close => {
                // SAFETY: a host call with a plain argument.
                let status = unsafe { proxy_close_stream(DOWNSTREAM) };
                log(&format!("close_stream(downstream)={}", status_name(status)));
                Action::Continue
            }
            Step::CloseUpstream => {
                // SAFETY: a host call with a plain argument.
                let status = unsafe { proxy_close_stream(UPSTREAM) };
                log(&format!("close_stream(upstream)={}", status_name(status)));
                Action::Continue
            }
            Step::Resume => {
                // SAFETY: a host call with a plain argument.
                let status = unsafe { proxy_continue_stream(DOWNSTREAM) };
                log(&format!("continue_stream(downstream)={}", status_name(status)));
                Action::Pause
            }
            Step::ResumeUpstream => {
                // SAFETY: a host call with a plain argument.
                let status = unsafe { proxy_continue_stream(UPSTREAM) };
                log(&format!("continue_stream(upstream)={}", status_name(status)));
                Action::Continue
            }
            Step::Upper => {
                if let Some(buffer) = buffer {
                    let data = hostcalls::get_buffer(buffer, 0, usize::MAX).ok().flatten().unwrap_or_default();
                    let upper = data.to_ascii_uppercase();
                    // Envoy answers Ok for a whole-buffer replacement; the
                    // SDK would panic on anything else.
                    hostcalls::set_buffer(buffer, 0, data.len(), &upper).ok();
                }
                Action::Continue
            }
            #[allow(clippy::panic)]
            Step::Trap => panic!("probe.network: trap"),
        }
    }

    /// `size=N end=B fnv=HASH` of a data buffer.
    fn data(buffer: BufferType, size: usize, end: bool) -> String {
        let bytes = hostcalls::get_buffer(buffer, 0, size).ok().flatten().unwrap_or_default();
        format!("size={size} end={end} got={} fnv={:016x}", bytes.len(), fnv1a(&bytes))
    }
}

/// FNV-1a, 64 bits: enough to tell which bytes a callback saw.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn log(message: &str) {
    hostcalls::log(LogLevel::Info, &format!("probe.network: {message}")).ok();
}

fn property(path: &str) -> Option<Vec<u8>> {
    hostcalls::get_property(path.split('.').collect()).ok().flatten()
}

fn text(value: Option<Vec<u8>>) -> String {
    match value {
        Some(v) => String::from_utf8_lossy(&v).into_owned(),
        None => "absent".into(),
    }
}

fn hex(value: Option<Vec<u8>>) -> String {
    match value {
        Some(v) => v.iter().map(|b| format!("{b:02x}")).collect(),
        None => "absent".into(),
    }
}

/// The properties a policy filter reads, as `key=value` words.
fn properties() -> String {
    let peer_certificate = match property("connection.peer_certificate") {
        Some(pem) if !pem.is_empty() => "present",
        Some(_) => "empty",
        None => "absent",
    };
    format!(
        "sni={} port={} source={} uri_san={} peer_certificate={peer_certificate} mtls={} root_id={}",
        text(property("connection.requested_server_name")),
        hex(property("destination.port")),
        text(property("source.address")),
        text(property("connection.uri_san_peer_certificate")),
        hex(property("connection.mtls")),
        text(property("plugin_root_id")),
    )
}

fn peer(peer: PeerType) -> &'static str {
    match peer {
        PeerType::Unknown => "unknown",
        PeerType::Local => "local",
        PeerType::Remote => "remote",
        _ => "other",
    }
}

impl Context for ProbeConnection {
    fn on_done(&mut self) -> bool {
        log("on_done");
        true
    }
}

impl StreamContext for ProbeConnection {
    fn on_new_connection(&mut self) -> Action {
        self.note("on_new_connection", "");
        self.act(self.config.new_connection.step(0), None)
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        let details = Self::data(BufferType::DownstreamData, data_size, end_of_stream);
        self.note("on_downstream_data", &details);
        let step = self.config.downstream_data.step(self.downstream_calls);
        self.downstream_calls += 1;
        self.act(step, Some(BufferType::DownstreamData))
    }

    fn on_downstream_close(&mut self, peer_type: PeerType) {
        self.note("on_downstream_close", &format!("peer={}", peer(peer_type)));
    }

    fn on_upstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        let details = Self::data(BufferType::UpstreamData, data_size, end_of_stream);
        self.note("on_upstream_data", &details);
        let step = self.config.upstream_data.step(self.upstream_calls);
        self.upstream_calls += 1;
        self.act(step, Some(BufferType::UpstreamData))
    }

    fn on_upstream_close(&mut self, peer_type: PeerType) {
        self.note("on_upstream_close", &format!("peer={}", peer(peer_type)));
    }

    fn on_log(&mut self) {
        log("on_log");
    }
}
