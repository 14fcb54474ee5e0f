//! Several workers: Envoy runs one VM of the filter per worker thread, so
//! a gateway with `--concurrency 2` decides with two copies of Warden that
//! share nothing. Their counters must add up to the requests sent, each
//! request must get its own decision record, and two streams interleaved
//! on one worker (one VM) must not see each other's state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::bootstrap;
use super::client::{Request, Response};
use super::envoy::{Envoy, Options};
use super::gateway::{namespace, WORKLOAD_PORT};
use super::upstream::Upstream;
use warden::testing::envoy::Hcm;

const CARD: &str = "4111 1111 1111 1111";

/// A registry, a DENY on a path and DLP on bodies: every outcome a
/// request can have but a bad request.
fn policy() -> Value {
    json!({
        "name": "workers",
        "services": [{"name": "httpbin", "hosts": ["httpbin.org"], "ports": [80]}],
        "authorization": [{
            "name": "no-admin",
            "action": "DENY",
            "rules": [{"to": [{"operation": {"paths": ["/admin/*"]}}]}],
        }],
        "dlp": [{"name": "no-cards", "detectors": ["credit_card"], "action": "BLOCK"}],
    })
}

/// The kinds of request sent, and what each must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Allowed,
    Denied,
    Unregistered,
    Blocked,
}

impl Kind {
    fn request(self, n: usize) -> Request {
        match self {
            Kind::Allowed => Request::get(&format!("/get?n={n}")).host("httpbin.org"),
            Kind::Denied => Request::get(&format!("/admin/users?n={n}")).host("httpbin.org"),
            Kind::Unregistered => Request::get(&format!("/?n={n}")).host("unregistered.example"),
            Kind::Blocked => Request::post(&format!("/post?n={n}"))
                .host("httpbin.org")
                .header("content-type", "application/json")
                .body(format!(r#"{{"n": {n}, "card": "{CARD}"}}"#).into_bytes()),
        }
    }

    /// Status and the decision record's `decision`.
    fn expected(self) -> (u16, &'static str) {
        match self {
            Kind::Allowed => (200, "allow"),
            Kind::Denied => (403, "denied"),
            Kind::Unregistered => (502, "unregistered"),
            Kind::Blocked => (403, "dlp"),
        }
    }

    /// The counter that must count it.
    fn counter(self) -> &'static str {
        match self {
            Kind::Allowed => "warden.allowed",
            Kind::Denied => "warden.denied",
            Kind::Unregistered => "warden.unregistered",
            Kind::Blocked => "warden.dlp_blocked",
        }
    }
}

fn gateway(workers: u32) -> (Envoy, Upstream) {
    let netns = namespace(&[] as &[IpAddr]);
    let upstream = netns.run(|| Upstream::start(200));
    let options = Options {
        filters: vec![bootstrap::warden(&policy())],
        upstream: upstream.addr(),
        ports: vec![WORKLOAD_PORT],
        hcm: Hcm::default(),
        netns,
    };
    let envoy = Envoy::launch_with_workers(options, workers).unwrap_or_else(|failure| panic!("{failure}"));
    (envoy, upstream)
}

fn send(envoy: &Envoy, request: &Request) -> Response {
    envoy.plain(WORKLOAD_PORT).send(request).unwrap_or_else(|e| panic!("{request}: {e}\n{}", envoy.log_tail()))
}

/// The counter `name` (`warden.allowed`) as Envoy's stats show it: the
/// sum over every worker's VM.
fn counter(stats: &BTreeMap<String, u64>, name: &str) -> u64 {
    stats.iter().filter(|(k, _)| k.ends_with(name)).map(|(_, v)| *v).sum()
}

/// The `n` query parameter of a logged path.
fn n_of(path: &str) -> Option<usize> {
    path.split_once("n=")?.1.split('&').next()?.parse().ok()
}

#[test]
fn two_workers_count_every_request_once_and_record_each_on_its_own() {
    const PER_KIND: usize = 12;
    const KINDS: [Kind; 4] = [Kind::Allowed, Kind::Denied, Kind::Unregistered, Kind::Blocked];
    let (envoy, _upstream) = gateway(2);
    let envoy = Arc::new(envoy);
    // Four clients at once, each sending every kind in turn, one
    // connection per request: request n is of kind n % 4.
    let total = PER_KIND * KINDS.len();
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let envoy = Arc::clone(&envoy);
            thread::spawn(move || {
                (client..total)
                    .step_by(4)
                    .map(|n| {
                        let kind = KINDS[n % KINDS.len()];
                        (n, kind, send(&envoy, &kind.request(n)))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut responses: Vec<(usize, Kind, Response)> =
        clients.into_iter().flat_map(|c| c.join().expect("a client thread")).collect();
    responses.sort_by_key(|(n, ..)| *n);
    for (n, kind, response) in &responses {
        let (status, decision) = kind.expected();
        assert_eq!(response.status, status, "request {n} ({kind:?}): {}", response.text());
        if *kind != Kind::Allowed {
            assert_eq!(response.header("x-warden-decision"), Some(decision), "request {n} ({kind:?})");
        }
    }

    // Both workers served: Envoy spread the connections (exact balance).
    let listener = envoy.admin("/stats?filter=worker_.\\.downstream_cx_total").text();
    let per_worker: Vec<u64> = listener.lines().filter_map(|l| l.rsplit_once(": ")?.1.trim().parse().ok()).collect();
    assert_eq!(per_worker.len(), 2, "per-worker listener stats: {listener}");
    assert!(per_worker.iter().all(|&c| c >= 8), "each worker took its share: {listener}");

    // The counters of the two VMs add up to what was sent, kind by kind.
    let stats = envoy.warden_stats();
    assert_eq!(counter(&stats, "warden.requests"), total as u64, "{stats:?}");
    for kind in KINDS {
        assert_eq!(counter(&stats, kind.counter()), PER_KIND as u64, "{kind:?}: {stats:?}");
    }

    // The filter's own memory, as gauges summed over the VMs (the two
    // workers' and those on the main thread): every live VM reported at
    // least the 2 MiB a VM holding this policy and its scanner needs
    // (about 7 in the harness), in whole wasm pages, the heap within it.
    let vms = envoy.admin("/stats?filter=wasm\\.envoy\\.wasm\\.runtime\\.v8\\.active").text();
    let vms: u64 = vms.lines().find_map(|l| l.rsplit_once(": ")?.1.trim().parse().ok()).unwrap_or(0);
    let (memory, heap) = (counter(&stats, "warden.vm_memory_bytes"), counter(&stats, "warden.vm_heap_bytes"));
    assert!(vms >= 2, "one VM per worker at least: {vms}");
    assert!(memory % 65536 == 0 && memory >= vms * (2 << 20), "{vms} VMs, {memory} bytes of memory: {stats:?}");
    assert!(heap > 0 && heap < memory, "heap {heap}, memory {memory}: {stats:?}");

    // Each request's record is its own: the decision of its kind, the
    // findings only on the blocked ones.
    let log = envoy.access_log(total);
    assert_eq!(log.len(), total);
    let mut seen = vec![false; total];
    for line in &log {
        let path = line["path"].as_str().unwrap_or_default();
        let n = n_of(path).unwrap_or_else(|| panic!("no n in {line}"));
        let kind = KINDS[n % KINDS.len()];
        let record: Value = serde_json::from_str(line["warden"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("request {n}: the record is not JSON ({e}): {line}"));
        assert_eq!(record["decision"], kind.expected().1, "request {n}: {record}");
        let findings = record["findings"].as_array().map_or(0, Vec::len);
        assert_eq!(findings > 0, kind == Kind::Blocked, "request {n}: {record}");
        assert!(!std::mem::replace(&mut seen[n], true), "request {n} logged twice");
    }
}

#[test]
fn streams_interleaved_on_one_worker_keep_their_own_bodies_and_decisions() {
    let (envoy, upstream) = gateway(1);
    let envoy = Arc::new(envoy);
    // A: a clean body in two chunks with a long pause; while A's stream
    // waits for its second chunk, B (a card in its body) and C (clean)
    // are decided in the same VM.
    let slow = {
        let envoy = Arc::clone(&envoy);
        thread::spawn(move || {
            let request =
                Request::post("/post?stream=a").host("httpbin.org").header("content-type", "application/json").chunked(
                    vec![br#"{"stream": "a", "#.to_vec(), br#""note": "clean"}"#.to_vec()],
                    Duration::from_millis(1500),
                );
            send(&envoy, &request)
        })
    };
    thread::sleep(Duration::from_millis(300));
    let blocked = send(&envoy, &Kind::Blocked.request(1));
    let clean = send(&envoy, &Kind::Allowed.request(2));
    let slow = slow.join().expect("stream A");
    assert_eq!(blocked.status, 403, "B: {}", blocked.text());
    assert_eq!(clean.status, 200, "C: {}", clean.text());
    assert_eq!(slow.status, 200, "A, decided after B's block in the same VM: {}", slow.text());

    // A's body went upstream whole and untouched; B's never did.
    let received = upstream.received();
    let a = received.iter().find(|r| r.path.contains("stream=a")).expect("A upstream");
    assert_eq!(a.body, br#"{"stream": "a", "note": "clean"}"#);
    assert!(received.iter().all(|r| !r.path.starts_with("/post?n=")), "B reached the upstream: {:?}", upstream.paths());

    // Each record speaks of its own stream, in the order the streams ended.
    let log = envoy.access_log(3);
    let records: Vec<(String, Value)> = log
        .iter()
        .map(|l| {
            let record = serde_json::from_str(l["warden"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
            (l["path"].as_str().unwrap_or_default().to_owned(), record)
        })
        .collect();
    let paths: Vec<&str> = records.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/post?n=1", "/get?n=2", "/post?stream=a"], "{records:?}");
    let decisions: Vec<&Value> = records.iter().map(|(_, r)| &r["decision"]).collect();
    assert_eq!(decisions, [&json!("dlp"), &json!("allow"), &json!("allow")], "{records:?}");
    assert_eq!(records[2].1["findings"], json!([]), "A's record carries no finding of B's: {:?}", records[2].1);
    let stats = envoy.warden_stats();
    assert_eq!((counter(&stats, "warden.requests"), counter(&stats, "warden.dlp_blocked")), (3, 1), "{stats:?}");
}
