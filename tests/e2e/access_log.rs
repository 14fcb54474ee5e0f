//! Decisions as operators see them: the gateway's JSON access log
//! carries Warden's decision record from filter state next to the fields
//! Istio egress gateways log, and the filter's counters show up in Envoy's
//! stats as `wasmcustom.warden.*`.

use serde_json::{json, Value};

use super::client::{Request, Response};
use super::gateway::Gateway;
use super::pki::{Identity, Pki};

/// One request of the mix below and what the gateway should make of it.
struct Case {
    /// Client certificate on the mTLS listener; `None`: plain listener.
    who: Option<&'static Identity>,
    request: Request,
    status: u16,
    /// The fields of the decision record this case determines.
    record: Value,
}

/// One request per decision kind, on the ambient-waypoint policy.
fn cases() -> Vec<Case> {
    let pki = Pki::shared();
    let admin = "cluster.local/ns/default/sa/admin";
    let sleep = "cluster.local/ns/default/sa/sleep";
    let httpbin = |request: Request| request.host("httpbin.org");
    vec![
        Case {
            who: Some(&pki.admin),
            request: httpbin(Request::post("/post")),
            status: 200,
            record: json!({"decision": "allow", "policy": "httpbin", "rule": 0, "service": "httpbin.org", "principal": admin}),
        },
        Case {
            who: Some(&pki.sleep),
            request: httpbin(Request::get("/get")),
            status: 200,
            record: json!({"decision": "allow", "policy": "httpbin", "rule": 1, "service": "httpbin.org", "principal": sleep}),
        },
        Case {
            who: Some(&pki.sleep),
            request: httpbin(Request::post("/post")),
            status: 403,
            record: json!({"decision": "denied", "service": "httpbin.org", "principal": sleep}),
        },
        Case {
            who: None,
            request: Request::get("/get").host("example.com"),
            status: 502,
            record: json!({"decision": "unregistered", "policy": null, "service": null, "principal": null}),
        },
        Case {
            who: None,
            request: httpbin(Request::get("/%2Fpost")),
            status: 400,
            record: json!({"decision": "bad-request", "policy": null, "principal": null}),
        },
    ]
}

fn send(gw: &Gateway, case: &Case) -> Response {
    let response = match case.who {
        Some(identity) => gw.send_as(identity, &case.request),
        None => gw.send(&case.request),
    };
    assert_eq!(response.status, case.status, "{}: {response:?}", case.request);
    response
}

/// The keys every decision record has.
const RECORD_KEYS: [&str; 7] = ["decision", "policy", "rule", "service", "principal", "findings", "dryRun"];

#[test]
fn access_log_records_each_decision() {
    let gw = Gateway::example("ambient-waypoint");
    let cases = cases();
    for case in &cases {
        send(&gw, case);
    }

    let entries = gw.envoy.access_log(cases.len());
    assert_eq!(entries.len(), cases.len(), "one access-log line per request");
    for case in &cases {
        let principal = case.record["principal"].as_str().map(|p| format!("spiffe://{p}"));
        // Found by what was sent rather than by position: lines are written
        // when streams end, which need not be the order they started.
        let entry = entries
            .iter()
            .find(|e| {
                e["authority"].as_str() == case.request.authority()
                    && e["method"] == case.request.method()
                    && e["path"] == case.request.target()
                    && e["downstream_peer_uri_san"].as_str() == principal.as_deref()
            })
            .unwrap_or_else(|| panic!("no access-log line for {} from {principal:?} in {entries:#?}", case.request));
        let what = format!("access log of {}: {entry}", case.request);
        let forwarded = case.status == 200;

        assert_eq!(entry["protocol"], "HTTP/1.1", "{what}");
        assert_eq!(entry["response_code"], case.status, "{what}");
        assert!(entry["downstream_remote_address"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{what}");
        let upstream_host = entry["upstream_host"].as_str().unwrap_or_default();
        if forwarded {
            assert_eq!(upstream_host, gw.upstream.addr().to_string(), "{what}");
        } else {
            assert!(matches!(upstream_host, "" | "-"), "a refused request has no upstream host: {what}");
        }

        let record: Value = entry["warden"]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_else(|| panic!("`warden` should hold the decision record as JSON text: {what}"));
        for key in RECORD_KEYS {
            assert!(record.get(key).is_some(), "the record lacks {key:?}: {what}");
        }
        for (key, expected) in case.record.as_object().expect("expected fields are an object") {
            assert_eq!(&record[key], expected, "record field {key:?}: {what}");
        }
        assert_eq!(record["findings"], json!([]), "no DLP in this policy: {what}");
        assert_eq!(record["dryRun"], json!([]), "no dry-run policies here: {what}");
    }
}

#[test]
fn counters_count_each_decision() {
    let gw = Gateway::example("ambient-waypoint");
    for case in cases() {
        send(&gw, &case);
    }

    let stats = gw.envoy.warden_stats();
    let expected = [
        ("wasmcustom.warden.requests", 5),
        ("wasmcustom.warden.allowed", 2),
        ("wasmcustom.warden.denied", 1),
        ("wasmcustom.warden.unregistered", 1),
        ("wasmcustom.warden.bad_request", 1),
        ("wasmcustom.warden.config_errors", 0),
    ];
    for (name, count) in expected {
        assert_eq!(stats.get(name), Some(&count), "{name} in Envoy's stats: {stats:#?}");
    }
}
