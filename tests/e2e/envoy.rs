//! A real Envoy process for one test: started from a [`Bootstrap`] in its
//! own temporary directory, ready once its admin API answers and its
//! listeners are bound, killed when dropped.
//!
//! Envoy's own log (stdout and stderr, including the filter's `wasm log`
//! lines) and the access log are files in that directory. Set
//! `WARDEN_E2E_KEEP=1` to keep the directory after the test.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::bootstrap::{self, listener_name, Bootstrap};
use super::client::{Dial, Request, Response, Tls};
use super::gateway::WORKLOAD_PORT;
use super::install;
use super::netns::NetNs;
use std::sync::Arc;
use warden::testing::envoy::Hcm;

/// How long Envoy may take to become ready (it compiles the wasm module
/// with V8 first; on a loaded 2-core machine that takes a while).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an access-log line may take to appear.
const ACCESS_LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval between readiness and log polls.
const POLL: Duration = Duration::from_millis(25);
/// Access-log file flush interval, passed to Envoy. The default is 10 s.
const FILE_FLUSH_MSEC: &str = "20";

/// A running Envoy.
pub struct Envoy {
    child: Child,
    dir: Option<TempDir>,
    admin: SocketAddr,
    ports: Vec<u16>,
    netns: Arc<NetNs>,
}

/// Envoy exited, or never became ready.
#[derive(Debug)]
pub struct StartFailure {
    /// What went wrong.
    pub reason: String,
    /// Envoy's exit status, if it exited.
    pub exit: Option<ExitStatus>,
    /// Everything Envoy logged.
    pub log: String,
}

impl StartFailure {
    /// A failure before Envoy ran.
    fn setup(reason: String) -> StartFailure {
        StartFailure { reason, exit: None, log: String::new() }
    }
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n--- Envoy log ---\n{}", self.reason, tail(&self.log))
    }
}

/// How to start an Envoy.
pub struct Options {
    /// The HTTP filters before the router (`bootstrap::warden`, ...).
    pub filters: Vec<Value>,
    /// The upstream the cluster points at.
    pub upstream: SocketAddr,
    /// Listener ports (each plain and TLS).
    pub ports: Vec<u16>,
    /// The HTTP connection manager's settings.
    pub hcm: Hcm,
    /// The network namespace to run in.
    pub netns: Arc<NetNs>,
}

impl Envoy {
    /// Starts Envoy with the filter configured with `policy` (`None`: no
    /// filter) in front of `upstream`, listening on port 80 in `netns`
    /// with an Istio egress gateway's HCM, and waits until it serves.
    pub fn start(policy: Option<&Value>, upstream: SocketAddr, netns: Arc<NetNs>) -> Result<Envoy, StartFailure> {
        Envoy::launch(Options {
            filters: policy.map(bootstrap::warden).into_iter().collect(),
            upstream,
            ports: vec![WORKLOAD_PORT],
            hcm: Hcm::default(),
            netns,
        })
    }

    /// Starts Envoy as `options` say and waits until it serves.
    pub fn launch(options: Options) -> Result<Envoy, StartFailure> {
        let Options { filters, upstream, ports, hcm, netns } = options;
        let bootstrap = |access_log: &Path| {
            Bootstrap { filters: &filters, upstream, access_log, ports: &ports, hcm: &hcm }.to_value()
        };
        Envoy::launch_bootstrap(bootstrap, ports.clone(), netns)
    }

    /// Starts Envoy with the bootstrap `bootstrap` makes from the access
    /// log's path, and waits until it serves: its admin API answers and a
    /// listener named [`listener_name`] is bound on each of `ports`.
    pub fn launch_bootstrap(
        bootstrap: impl FnOnce(&Path) -> Value,
        ports: Vec<u16>,
        netns: Arc<NetNs>,
    ) -> Result<Envoy, StartFailure> {
        Envoy::launch_workers(bootstrap, ports, netns, 1)
    }

    /// Starts Envoy with `options` and `workers` worker threads, each
    /// listener spreading its connections evenly over them (Envoy's exact
    /// connection balance: without it the kernel may hand one worker all).
    pub fn launch_with_workers(options: Options, workers: u32) -> Result<Envoy, StartFailure> {
        let Options { filters, upstream, ports, hcm, netns } = options;
        let bootstrap = |access_log: &Path| {
            let mut config = Bootstrap { filters: &filters, upstream, access_log, ports: &ports, hcm: &hcm }.to_value();
            if let Some(listeners) = config["static_resources"]["listeners"].as_array_mut() {
                for listener in listeners {
                    listener["connection_balance_config"] = serde_json::json!({"exact_balance": {}});
                }
            }
            config
        };
        Envoy::launch_workers(bootstrap, ports.clone(), netns, workers)
    }

    /// [`Envoy::launch_bootstrap`] with `workers` worker threads.
    fn launch_workers(
        bootstrap: impl FnOnce(&Path) -> Value,
        ports: Vec<u16>,
        netns: Arc<NetNs>,
        workers: u32,
    ) -> Result<Envoy, StartFailure> {
        let envoy = install::envoy();
        let dir = tempfile::Builder::new()
            .prefix("warden-e2e-")
            .tempdir()
            .map_err(|e| StartFailure::setup(format!("cannot create a temporary directory: {e}")))?;
        let paths = Paths::in_dir(dir.path());
        let config = bootstrap(&paths.access_log);
        let yaml = serde_yaml_ng::to_string(&config)
            .map_err(|e| StartFailure::setup(format!("cannot write the bootstrap as YAML: {e}")))?;
        let spawned = fs::write(&paths.bootstrap, yaml)
            .and_then(|()| File::create(&paths.log))
            .and_then(|log| Ok((log.try_clone()?, log)))
            .and_then(|(stdout, stderr)| {
                netns.run(|| {
                    Command::new(envoy)
                        .arg("--config-path")
                        .arg(&paths.bootstrap)
                        .args(["--concurrency", &workers.to_string(), "--disable-hot-restart"])
                        .args(["--log-level", "info"])
                        .args(["--file-flush-interval-msec", FILE_FLUSH_MSEC])
                        .arg("--admin-address-path")
                        .arg(&paths.admin_address)
                        .stdin(Stdio::null())
                        .stdout(stdout)
                        .stderr(stderr)
                        .spawn()
                })
            });
        let child = spawned.map_err(|e| StartFailure::setup(format!("cannot start {}: {e}", envoy.display())))?;
        Starting { child, dir, paths, ports, netns }.wait_until_ready()
    }

    /// The listener on `port` (127.0.0.1 in the namespace).
    pub fn addr(&self, port: u16) -> SocketAddr {
        assert!(self.ports.contains(&port), "Envoy listens on {:?}, not {port}", self.ports);
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A plain-HTTP connection to `port`.
    pub fn plain(&self, port: u16) -> Dial<'_> {
        Dial::plain(self.addr(port)).within(&self.netns)
    }

    /// A TLS connection to `port`.
    pub fn tls<'a>(&'a self, port: u16, tls: Tls<'a>) -> Dial<'a> {
        Dial::tls(self.addr(port), tls).within(&self.netns)
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        self.paths().map(|p| read_lossy(&p.log)).unwrap_or_default()
    }

    /// The last lines of Envoy's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log())
    }

    /// GET `path` on the admin API.
    pub fn admin(&self, path: &str) -> Response {
        Dial::plain(self.admin)
            .within(&self.netns)
            .send(&Request::get(path).host("admin"))
            .unwrap_or_else(|e| panic!("admin GET {path}: {e}\n{}", self.log_tail()))
    }

    /// Every counter whose name contains `warden` (the filter's metrics,
    /// `wasmcustom.warden.*`), by full stat name.
    pub fn warden_stats(&self) -> BTreeMap<String, u64> {
        let response = self.admin("/stats?filter=warden");
        assert_eq!(response.status, 200, "admin /stats: {}", response.text());
        response
            .text()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// The first `count` access-log entries, waiting for them to be
    /// written (Envoy logs a request when its stream ends and flushes the
    /// file every few milliseconds). Panics if they do not appear.
    pub fn access_log(&self, count: usize) -> Vec<Value> {
        let path = self.paths().map(|p| p.access_log).unwrap_or_default();
        let deadline = Instant::now() + ACCESS_LOG_TIMEOUT;
        loop {
            let text = read_lossy(&path);
            let complete: Vec<&str> = text.split_inclusive('\n').filter(|l| l.ends_with('\n')).collect();
            if complete.len() >= count {
                return complete
                    .iter()
                    .map(|line| {
                        serde_json::from_str(line)
                            .unwrap_or_else(|e| panic!("access-log line is not JSON ({e}): {line}"))
                    })
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} access-log lines within {ACCESS_LOG_TIMEOUT:?}, got {}:\n{text}",
                complete.len()
            );
            thread::sleep(POLL);
        }
    }

    fn paths(&self) -> Option<Paths> {
        self.dir.as_ref().map(|d| Paths::in_dir(d.path()))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("WARDEN_E2E_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept Envoy's directory {}", dir.keep().display());
            }
        }
    }
}

/// The files of one Envoy run.
struct Paths {
    bootstrap: PathBuf,
    log: PathBuf,
    access_log: PathBuf,
    admin_address: PathBuf,
}

impl Paths {
    fn in_dir(dir: &Path) -> Paths {
        Paths {
            bootstrap: dir.join("bootstrap.yaml"),
            log: dir.join("envoy.log"),
            access_log: dir.join("access.log"),
            admin_address: dir.join("admin-address"),
        }
    }
}

/// An Envoy that was spawned and is not known to be ready yet.
struct Starting {
    child: Child,
    dir: TempDir,
    paths: Paths,
    ports: Vec<u16>,
    netns: Arc<NetNs>,
}

impl Starting {
    /// Polls until the admin API reports the server live and every
    /// listener bound; fails if Envoy exits first or the deadline passes.
    fn wait_until_ready(mut self) -> Result<Envoy, StartFailure> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(format!("Envoy exited during start-up ({status})"), Some(status)));
            }
            if let Some(admin) = self.probe() {
                let Starting { child, dir, ports, netns, .. } = self;
                return Ok(Envoy { child, dir: Some(dir), admin, ports, netns });
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait().ok();
                return Err(self.failure(format!("Envoy was not ready within {START_TIMEOUT:?}"), status));
            }
            thread::sleep(POLL);
        }
    }

    /// The admin address, once Envoy serves it and every listener.
    fn probe(&self) -> Option<SocketAddr> {
        let admin: SocketAddr = fs::read_to_string(&self.paths.admin_address).ok()?.trim().parse().ok()?;
        let get = |path: &str| Dial::plain(admin).within(&self.netns).send(&Request::get(path).host("admin")).ok();
        if get("/ready")?.status != 200 {
            return None;
        }
        let listeners: Value = serde_json::from_slice(&get("/listeners?format=json")?.body).ok()?;
        let statuses = listeners.get("listener_statuses")?.as_array()?;
        let bound = |port: u16| {
            statuses.iter().any(|l| {
                l.get("name").and_then(Value::as_str) == Some(&listener_name(port))
                    && l.pointer("/local_address/socket_address/port_value").and_then(Value::as_u64)
                        == Some(u64::from(port))
            })
        };
        self.ports.iter().all(|&p| bound(p)).then_some(admin)
    }

    fn failure(&self, reason: String, exit: Option<ExitStatus>) -> StartFailure {
        StartFailure { reason, exit, log: read_lossy(&self.paths.log) }
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// The last 60 lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines.get(lines.len().saturating_sub(60)..).unwrap_or_default().join("\n")
}
