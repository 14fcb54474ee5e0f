//! A new policy while the gateway serves, the way istiod's push reaches
//! Envoy: the listener comes from a file (LDS from a watched directory),
//! and a new version of the file replaces the filter's configuration. A
//! valid policy takes effect for new connections while a request already
//! in flight finishes under the policy it started with; an invalid one is
//! refused (Envoy rejects the update, the filter counts a configuration
//! error) and the previous policy keeps serving. No request is answered
//! by a filter without a policy, and none is let through by one.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warden::testing::envoy::Hcm;

use super::bootstrap::{self, Bootstrap};
use super::client::{Request, Response};
use super::envoy::Envoy;
use super::gateway::{namespace, WORKLOAD_PORT};
use super::upstream::Upstream;

const CARD: &str = "4111 1111 1111 1111";

/// Version 1: httpbin.org only, cards blocked in bodies.
fn httpbin_only() -> Value {
    json!({
        "name": "v1",
        "services": [{"name": "httpbin", "hosts": ["httpbin.org"], "ports": [80]}],
        "dlp": [{"name": "no-cards", "detectors": ["credit_card"], "action": "BLOCK"}],
    })
}

/// Version 2: example.com only.
fn example_only() -> Value {
    json!({"name": "v2", "services": [{"name": "example", "hosts": ["example.com"], "ports": [80]}]})
}

/// Not a policy the filter accepts (a port out of range).
fn invalid() -> Value {
    json!({"name": "v3", "services": [{"name": "x", "hosts": ["x.example"], "ports": [99999]}]})
}

/// A gateway whose listener comes from `lds.json` in its directory.
struct Dynamic {
    envoy: Arc<Envoy>,
    _upstream: Upstream,
    lds: PathBuf,
    upstream_addr: std::net::SocketAddr,
    version: u32,
}

impl Dynamic {
    fn start(policy: &Value) -> Dynamic {
        let netns = namespace(&[] as &[IpAddr]);
        let upstream = netns.run(|| Upstream::start(200));
        let upstream_addr = upstream.addr();
        let mut lds = PathBuf::new();
        let bootstrap = |access_log: &Path| {
            let dir = access_log.parent().unwrap_or(Path::new("/")).to_owned();
            lds = dir.join("lds.json");
            write_lds(&lds, &listeners(policy, upstream_addr, access_log), 1);
            let mut config = static_bootstrap(upstream_addr, access_log);
            config["static_resources"]["listeners"] = json!([]);
            // A control plane's client names itself; Envoy requires it for
            // dynamic resources.
            config["node"] = json!({"id": "warden-e2e", "cluster": "egress-gateway"});
            config["dynamic_resources"] = json!({"lds_config": {
                "resource_api_version": "V3",
                "path_config_source": {"path": lds.display().to_string(), "watched_directory": {"path": dir.display().to_string()}},
            }});
            config
        };
        let envoy = Envoy::launch_bootstrap(bootstrap, vec![WORKLOAD_PORT], netns)
            .unwrap_or_else(|failure| panic!("{failure}"));
        Dynamic { envoy: Arc::new(envoy), _upstream: upstream, lds, upstream_addr, version: 1 }
    }

    /// Pushes a new version of the listener with `policy`, as a control
    /// plane does (a new file moved into the watched directory), and waits
    /// until Envoy took or refused it: `true` when it took it.
    fn push(&mut self, policy: &Value) -> bool {
        let (taken, refused) = (self.lds_stat("update_success"), self.lds_stat("update_rejected"));
        self.version += 1;
        let access_log = self.lds.with_file_name("access.log");
        write_lds(&self.lds, &listeners(policy, self.upstream_addr, &access_log), self.version);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.lds_stat("update_success") > taken {
                return true;
            }
            if self.lds_stat("update_rejected") > refused {
                return false;
            }
            assert!(Instant::now() < deadline, "Envoy neither took nor refused LDS version {}", self.version);
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn lds_stat(&self, name: &str) -> u64 {
        let text = self.envoy.admin(&format!("/stats?filter=listener_manager\\.lds\\.{name}$")).text();
        text.lines().filter_map(|l| l.rsplit_once(": ")?.1.trim().parse::<u64>().ok()).sum()
    }

    fn send(&self, request: &Request) -> Response {
        self.envoy
            .plain(WORKLOAD_PORT)
            .send(request)
            .unwrap_or_else(|e| panic!("{request}: {e}\n{}", self.envoy.log_tail()))
    }
}

fn static_bootstrap(upstream: std::net::SocketAddr, access_log: &Path) -> Value {
    let filters = [bootstrap::warden(&json!({}))];
    Bootstrap { filters: &filters, upstream, access_log, ports: &[WORKLOAD_PORT], hcm: &Hcm::default() }.to_value()
}

/// The test bootstrap's listener, with Warden configured with `policy`.
fn listeners(policy: &Value, upstream: std::net::SocketAddr, access_log: &Path) -> Vec<Value> {
    let filters = [bootstrap::warden(policy)];
    let config =
        Bootstrap { filters: &filters, upstream, access_log, ports: &[WORKLOAD_PORT], hcm: &Hcm::default() }.to_value();
    config["static_resources"]["listeners"].as_array().cloned().unwrap_or_default()
}

/// Writes a discovery response with `listeners` next to `path` and moves
/// it over `path` in one step, so Envoy never reads half a file.
fn write_lds(path: &Path, listeners: &[Value], version: u32) {
    let resources: Vec<Value> = listeners
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
            l
        })
        .collect();
    let response = json!({"version_info": version.to_string(), "resources": resources});
    let staged = path.with_extension(format!("json.{version}"));
    fs::write(&staged, response.to_string()).expect("the LDS file");
    fs::rename(&staged, path).expect("moving the LDS file into place");
}

fn get(host: &str) -> Request {
    Request::get("/get").host(host)
}

#[test]
fn a_new_policy_takes_over_new_requests_and_an_invalid_one_is_refused() {
    let mut gateway = Dynamic::start(&httpbin_only());
    assert_eq!(gateway.send(&get("httpbin.org")).status, 200);
    assert_eq!(gateway.send(&get("example.com")).status, 502);

    // A request in flight when the policy changes: its headers and a first
    // chunk are in, the rest comes after the push.
    let in_flight = {
        let envoy = Arc::clone(&gateway.envoy);
        let request = Request::post("/post")
            .host("httpbin.org")
            .header("content-type", "application/json")
            .chunked(vec![br#"{"note": "#.to_vec(), br#""clean"}"#.to_vec()], Duration::from_millis(1500));
        thread::spawn(move || envoy.plain(WORKLOAD_PORT).send(&request).expect("the request in flight"))
    };
    thread::sleep(Duration::from_millis(300));
    assert!(gateway.push(&example_only()), "Envoy refused a valid policy:\n{}", gateway.envoy.log_tail());
    // New requests: the new policy.
    assert_eq!(gateway.send(&get("example.com")).status, 200);
    assert_eq!(gateway.send(&get("httpbin.org")).status, 502);
    // The one in flight finished under the policy it started with: its
    // service was registered then, and its clean body was scanned.
    let finished = in_flight.join().expect("the request in flight");
    assert_eq!(finished.status, 200, "the request in flight: {}", finished.text());

    // An invalid policy: refused, and the last valid one keeps serving.
    let errors_before = config_errors(&gateway.envoy);
    assert!(!gateway.push(&invalid()), "Envoy took a policy the filter refuses");
    assert_eq!(gateway.send(&get("example.com")).status, 200);
    assert_eq!(gateway.send(&get("httpbin.org")).status, 502);
    assert!(config_errors(&gateway.envoy) > errors_before, "warden.config_errors did not count the refusal");
    let log = gateway.envoy.log();
    assert!(log.contains("warden"), "the refusal's reason is not in Envoy's log:\n{}", gateway.envoy.log_tail());

    // And back: the first policy again, DLP included.
    assert!(gateway.push(&httpbin_only()));
    assert_eq!(gateway.send(&get("httpbin.org")).status, 200);
    let card = Request::post("/post").host("httpbin.org").body(format!(r#"{{"card": "{CARD}"}}"#).into_bytes());
    assert_eq!(gateway.send(&card).status, 403);
}

fn config_errors(envoy: &Envoy) -> u64 {
    envoy.warden_stats().iter().filter(|(k, _)| k.ends_with("warden.config_errors")).map(|(_, v)| *v).sum()
}

/// Requests keep coming while the policy flips between two versions:
/// every answer is one of the two policies' answers, none a refusal for
/// want of a policy, and once a push is taken, new connections get the
/// new policy's.
#[test]
fn requests_across_reloads_get_one_policy_or_the_other() {
    let mut gateway = Dynamic::start(&httpbin_only());
    let mut answered = 0;
    for round in 0..6 {
        let (policy, allowed, refused) = if round % 2 == 0 {
            (example_only(), "example.com", "httpbin.org")
        } else {
            (httpbin_only(), "httpbin.org", "example.com")
        };
        // Load during the push: a client thread sends as fast as it can.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = {
            let stop = Arc::clone(&stop);
            let envoy = Arc::clone(&gateway.envoy);
            thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for host in ["httpbin.org", "example.com"] {
                        let response = envoy.plain(WORKLOAD_PORT).send(&get(host)).expect("a request during the push");
                        seen.push((host, response.status, response.header("x-warden-decision").map(str::to_owned)));
                    }
                }
                seen
            })
        };
        thread::sleep(Duration::from_millis(100));
        assert!(gateway.push(&policy));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen = load.join().expect("the load thread");
        for (host, status, decision) in &seen {
            // One policy or the other: 200 forwarded, or 502 unregistered.
            let ok = matches!((*status, decision.as_deref()), (200, None) | (502, Some("unregistered")));
            assert!(ok, "round {round}: {host} got {status} {decision:?}");
        }
        answered += seen.len();
        assert_eq!(gateway.send(&get(allowed)).status, 200, "round {round}");
        assert_eq!(gateway.send(&get(refused)).status, 502, "round {round}");
    }
    assert!(answered > 0);
}
