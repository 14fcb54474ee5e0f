//! What happens to traffic when the filter cannot run, in a real Envoy:
//! its VM dies (the faults test filter panics on a marker request,
//! `/fault`, as a bug in Warden would) under each of Envoy's failure
//! policies, and the module cannot be fetched. docs/OPERATIONS.md has the
//! table these tests hold it to.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use warden::testing::envoy::Hcm;

use super::bootstrap;
use super::client::Request;
use super::envoy::{Envoy, Options};
use super::gateway::{namespace, Gateway, WORKLOAD_PORT};
use super::upstream::Upstream;
use crate::harness::filters::{self, Filter, Target};

fn gateway(failure_policy: Option<&str>) -> Gateway {
    let module = filters::path(Filter::Faults, Target::Wasip1);
    let filter = bootstrap::faults(&module, "panic", failure_policy);
    Gateway::launch(vec![filter], &[WORKLOAD_PORT], Hcm::default(), &[], 200)
}

/// Sends GET `path`; returns its status and how many requests the
/// upstream has received so far.
fn get(gateway: &Gateway, path: &str) -> (u16, usize) {
    let status = gateway.send(&Request::get(path).host("httpbin.org")).status;
    (status, gateway.upstream.received().len())
}

fn stat(gateway: &Gateway, name: &str) -> u64 {
    let text = gateway.envoy.admin(&format!("/stats?filter={name}$")).text();
    text.lines().filter_map(|l| l.rsplit_once(": ")?.1.trim().parse::<u64>().ok()).sum()
}

/// `fail_open: false`, what Warden's examples and `warden wasmplugin`
/// (`failStrategy: FAIL_CLOSE`) set: the VM that died stays dead, and
/// every later request on that worker gets 503 without reaching the
/// upstream, until the configuration changes or Envoy restarts.
#[test]
fn a_dead_vm_failing_closed_refuses_every_later_request() {
    for policy in [None, Some("FAIL_CLOSED")] {
        let gateway = gateway(policy);
        assert_eq!(get(&gateway, "/before"), (200, 1), "{policy:?}");
        assert_eq!(get(&gateway, "/fault"), (503, 1), "{policy:?}: the request that kills the VM");
        thread::sleep(Duration::from_millis(1500));
        for path in ["/after", "/much-later"] {
            assert_eq!(get(&gateway, path), (503, 1), "{policy:?} {path}: nothing more reaches the upstream");
        }
        assert_eq!(stat(&gateway, "wasm\\.faults\\.vm_reload_success"), 0, "{policy:?}");
    }
}

/// `FAIL_OPEN` (Istio's `failStrategy: FAIL_OPEN`): after the VM died,
/// requests go upstream unfiltered. The request that killed it got 503.
/// For a policy filter that is every policy switched off: never for Warden.
#[test]
fn a_dead_vm_failing_open_lets_every_later_request_through_unchecked() {
    let gateway = gateway(Some("FAIL_OPEN"));
    assert_eq!(get(&gateway, "/before"), (200, 1));
    assert_eq!(get(&gateway, "/fault"), (503, 1));
    assert_eq!(get(&gateway, "/after"), (200, 2), "forwarded with no filter deciding");
    assert_eq!(get(&gateway, "/fault"), (200, 3), "even the marker: no VM runs any more");
}

/// `FAIL_RELOAD` (Envoy's failure policy; plain Envoy configurations):
/// requests are refused while Envoy backs off, then a new VM is created
/// from the same module and configuration and filters again.
#[test]
fn a_dead_vm_reloading_refuses_until_a_new_vm_filters_again() {
    let gateway = gateway(Some("FAIL_RELOAD"));
    assert_eq!(get(&gateway, "/before"), (200, 1));
    assert_eq!(get(&gateway, "/fault"), (503, 1));
    assert_eq!(get(&gateway, "/during-backoff"), (503, 1), "refused while the VM is down");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut received = 1;
    while received == 1 {
        assert!(Instant::now() < deadline, "no new VM within 15 s");
        thread::sleep(Duration::from_millis(250));
        let (status, now) = get(&gateway, "/later");
        assert!(status == 503 || (status == 200 && now == 2), "{status} with {now} upstream");
        received = now;
    }
    assert!(stat(&gateway, "wasm\\.faults\\.vm_reload_success") >= 1);
    // The new VM runs the filter: the marker kills it again (503) rather
    // than passing through.
    assert_eq!(get(&gateway, "/fault").0, 503);
}

/// A module Envoy cannot fetch (here: the bytes do not match the pinned
/// sha256, as with a wrong image or a tampered download), failing closed:
/// Envoy starts, and every request gets 503 without reaching the upstream.
#[test]
fn a_module_that_cannot_be_fetched_refuses_every_request() {
    let module = filters::path(Filter::Faults, Target::Wasip1);
    let mut filter = bootstrap::faults(&module, "panic", None);
    filter["typed_config"]["config"]["vm_config"]["code"] = json!({"remote": {
        "http_uri": {"uri": "http://modules.example/warden.wasm", "cluster": "upstream", "timeout": "2s"},
        "sha256": "0".repeat(64),
        "retry_policy": {"num_retries": 1},
    }});
    let netns = namespace(&[]);
    let upstream = netns.run(|| Upstream::start(200));
    let options = Options {
        filters: vec![filter],
        upstream: upstream.addr(),
        ports: vec![WORKLOAD_PORT],
        hcm: Hcm::default(),
        netns,
    };
    let envoy = Envoy::launch(options).unwrap_or_else(|f| panic!("{f}"));
    for path in ["/a", "/b"] {
        let response = envoy.plain(WORKLOAD_PORT).send(&Request::get(path).host("httpbin.org")).expect("an answer");
        assert_eq!(response.status, 503, "{path}");
    }
    // The upstream served only Envoy's own attempts to fetch the module.
    assert!(!upstream.paths().is_empty(), "Envoy never tried to fetch the module");
    assert!(upstream.paths().iter().all(|p| p == "/warden.wasm"), "{:?}", upstream.paths());
    assert!(envoy.log().contains("Plugin configured to fail closed failed to load"), "{}", envoy.log_tail());
}
