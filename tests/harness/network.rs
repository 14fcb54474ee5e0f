//! Network filters in the harness (`Vm::connect`): the probe filter
//! (`tests/filters/probe`) as a network filter, root id `probe.network`, on
//! both wasm targets. Each expectation here is what Envoy 1.40 did with
//! the same probe in front of `tcp_proxy` (`tests/e2e/network_shapes.rs`).
//!
//! The probe logs one line per callback, `probe.network: CALLBACK
//! [size=N end=B got=N fnv=H | peer=P] sni=.. port=.. source=.. uri_san=..
//! peer_certificate=.. mtls=.. root_id=..`, and one per host call it was
//! told to make (`close_stream(downstream)=Ok`).

use super::filters::{host_with, vm, Filter, TARGETS};
use std::collections::BTreeMap;
use warden::harness::{ClosedBy, Connection, ConnectionOutcome, Fault, HostOptions, Vm};

const ROOT_ID: &str = "probe.network";
const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";

/// A VM of the network probe, configured with `config` lines, its
/// start-up logs taken.
fn network_vm(target: super::filters::Target, config: &str) -> Vm {
    let mut vm = started(target, config);
    vm.take_logs();
    vm
}

fn started(target: super::filters::Target, config: &str) -> Vm {
    let options = HostOptions { root_id: ROOT_ID.into(), ..HostOptions::default() };
    let host = host_with(Filter::Probe, target, options);
    vm(&host, config)
}

/// The probe's lines, `probe.network: ` stripped.
fn lines(outcome: &ConnectionOutcome) -> Vec<String> {
    outcome.logs.iter().filter_map(|l| l.message.strip_prefix("probe.network: ")).map(str::to_owned).collect()
}

/// What the filter went through: each callback with its data arguments or
/// peer, and each host call it reported; the properties left out.
pub fn trace(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let kept = |w: &&str| {
                !w.contains('=')
                    || ["size=", "end=", "peer="].iter().any(|p| w.starts_with(p))
                    || w.contains("_stream(")
            };
            line.split(' ').filter(kept).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// The `key=value` words of the first line of `callback`.
pub fn seen_at(lines: &[String], callback: &str) -> BTreeMap<String, String> {
    let line = lines
        .iter()
        .find(|l| l.split(' ').next() == Some(callback))
        .unwrap_or_else(|| panic!("no {callback} in {lines:#?}"));
    line.split(' ').filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// FNV-1a 64, as the probe logs it.
pub fn fnv1a(bytes: &[u8]) -> String {
    let hash =
        bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A client that sends, waits for the answer and closes, to an upstream
/// that answers and closes after it.
fn exchange(sent: &str, answer: &str) -> Connection {
    Connection::new().send(sent).answer(answer).end_downstream().end_upstream()
}

#[test]
fn the_root_id_makes_the_probe_a_network_filter() {
    for target in TARGETS {
        let mut vm = started(target, "");
        let configured: Vec<String> = vm.take_logs().into_iter().map(|l| l.message).collect();
        assert_eq!(configured, ["probe.network: on_configure root_id=probe.network", "probe: configured"]);
        let outcome = vm.connect(&Connection::new());
        assert_eq!(outcome.fault, None, "{target:?}");
        assert_eq!(seen_at(&lines(&outcome), "on_new_connection")["root_id"], ROOT_ID);
    }
}

#[test]
fn on_new_connection_sees_what_envoy_knows_when_it_accepts() {
    for target in TARGETS {
        let mut vm = network_vm(target, "");
        let connection =
            Connection::new().sni("allowed.example").source_ip("10.0.0.7").destination_port(9443).send("hello");
        let outcome = vm.connect(&connection);
        let seen = seen_at(&lines(&outcome), "on_new_connection");
        assert_eq!(seen["sni"], "allowed.example");
        // 8 little-endian bytes.
        assert_eq!(seen["port"], "e324000000000000", "9443");
        assert_eq!(seen["source"], "10.0.0.7:40000");
        assert_eq!((seen["uri_san"].as_str(), seen["peer_certificate"].as_str()), ("absent", "absent"));
        assert_eq!(seen["mtls"], "00");

        // Not given: port 443, no SNI.
        let outcome = vm.connect(&Connection::new());
        let seen = seen_at(&lines(&outcome), "on_new_connection");
        assert_eq!((seen["port"].as_str(), seen["sni"].as_str()), ("bb01000000000000", "absent"), "{target:?}");
    }
}

#[test]
fn continue_forwards_each_read_and_the_two_ends_close_the_connection() {
    for target in TARGETS {
        let mut vm = network_vm(target, "");
        let outcome = vm.connect(&exchange("hello", "world"));
        assert_eq!(outcome.fault, None);
        assert_eq!(
            trace(&lines(&outcome)),
            strings(&[
                "on_new_connection",
                "on_downstream_data size=5 end=false",
                "on_upstream_data size=5 end=false",
                "on_downstream_data size=0 end=true",
                "on_upstream_data size=0 end=true",
                "on_upstream_close peer=unknown",
                "on_downstream_close peer=local",
                "on_done",
                "on_log",
            ]),
            "{target:?}"
        );
        assert!(outcome.upstream_connected);
        assert_eq!((outcome.forwarded.as_slice(), outcome.returned.as_slice()), (&b"hello"[..], &b"world"[..]));
        assert_eq!(outcome.closed, Some(ClosedBy::Peers));
        let data = seen_at(&lines(&outcome), "on_downstream_data");
        assert_eq!((data["got"].as_str(), data["fnv"].clone()), ("5", fnv1a(b"hello")));
        // The filter state holds the last value set, after the close
        // callbacks: what tcp_proxy's access log reads.
        assert_eq!(
            outcome.filter_state_str("wasm.probe.seen").as_deref(),
            Some(
                "on_new_connection,on_downstream_data,on_upstream_data,on_downstream_data,on_upstream_data,\
                 on_upstream_close,on_downstream_close"
            )
        );

        // Neither side ends: the connection stays open, no close callback.
        let outcome = vm.connect(&Connection::new().send("a").answer("b"));
        assert_eq!(outcome.closed, None);
        assert_eq!(trace(&lines(&outcome)).last().map(String::as_str), Some("on_upstream_data size=1 end=false"));
    }
}

#[test]
fn a_pause_in_on_new_connection_stalls_the_connection_unless_the_filter_continues_it() {
    for target in TARGETS {
        let mut vm = network_vm(target, "on_new_connection: pause");
        let outcome = vm.connect(&exchange("client hello", "server hello"));
        assert!(matches!(outcome.fault, Some(Fault::Stalled(_))), "{target:?}: {:?}", outcome.fault);
        assert_eq!(trace(&lines(&outcome)), ["on_new_connection"], "no data callback, no close");
        assert!(!outcome.upstream_connected);
        assert!(outcome.forwarded.is_empty() && outcome.returned.is_empty());
        assert_eq!(outcome.closed, None);
        assert!(vm.fault().is_none(), "a stall does not kill the VM");

        // proxy_continue_stream(Downstream) from on_new_connection: as if
        // it had returned Continue.
        let mut vm = network_vm(target, "on_new_connection: resume");
        let outcome = vm.connect(&exchange("client hello", "server hello"));
        assert_eq!(outcome.fault, None);
        assert_eq!(
            trace(&lines(&outcome))[..3],
            strings(&["on_new_connection", "continue_stream(downstream)=Ok", "on_downstream_data size=12 end=false"])
        );
        assert!(outcome.upstream_connected);
        assert_eq!(outcome.forwarded, b"client hello");
        assert_eq!(outcome.closed, Some(ClosedBy::Peers));
    }
}

#[test]
fn a_paused_read_is_held_and_handed_over_with_the_next() {
    for target in TARGETS {
        let mut vm = network_vm(target, "on_downstream_data: pause, continue\non_upstream_data: pause, continue");
        let connection = Connection::new().send("ab").send("cd").answer("12").answer("34");
        let outcome = vm.connect(&connection);
        assert_eq!(
            trace(&lines(&outcome)),
            strings(&[
                "on_new_connection",
                "on_downstream_data size=2 end=false",
                "on_downstream_data size=4 end=false",
                "on_upstream_data size=2 end=false",
                "on_upstream_data size=4 end=false",
            ]),
            "{target:?}"
        );
        assert_eq!((outcome.forwarded.as_slice(), outcome.returned.as_slice()), (&b"abcd"[..], &b"1234"[..]));

        // proxy_continue_stream(Downstream) in a paused call hands the held
        // bytes on without calling the filter again.
        let mut vm = network_vm(target, "on_downstream_data: resume");
        let outcome = vm.connect(&exchange("hello", "world"));
        assert_eq!(
            trace(&lines(&outcome))[1..3],
            strings(&["on_downstream_data size=5 end=false", "continue_stream(downstream)=Ok"])
        );
        assert_eq!(outcome.forwarded, b"hello");
        assert_eq!(outcome.closed, Some(ClosedBy::Peers));

        // Paused for good: the client's end is held too, the connection
        // stays open.
        let mut vm = network_vm(target, "on_downstream_data: pause");
        let outcome = vm.connect(&Connection::new().send("hello").end_downstream());
        assert_eq!(
            trace(&lines(&outcome)),
            strings(&[
                "on_new_connection",
                "on_downstream_data size=5 end=false",
                "on_downstream_data size=5 end=true"
            ])
        );
        assert!(outcome.upstream_connected && outcome.forwarded.is_empty());
        assert_eq!(outcome.closed, None);

        // The upstream side cannot be continued.
        let mut vm = network_vm(target, "on_upstream_data: resume-upstream");
        let outcome = vm.connect(&Connection::new().answer("x"));
        assert!(lines(&outcome).contains(&"continue_stream(upstream)=Unimplemented".to_owned()));
        assert_eq!(outcome.returned, b"x");
    }
}

#[test]
fn the_filter_rewrites_the_bytes_in_either_direction() {
    for target in TARGETS {
        let mut vm = network_vm(target, "on_downstream_data: upper\non_upstream_data: upper");
        let outcome = vm.connect(&exchange("hello there", "second"));
        assert_eq!((outcome.forwarded.as_slice(), outcome.returned.as_slice()), (&b"HELLO THERE"[..], &b"SECOND"[..]));
        assert_eq!(outcome.closed, Some(ClosedBy::Peers), "{target:?}");
    }
}

#[test]
fn closing_ends_the_connection_when_the_callback_returns() {
    for target in TARGETS {
        // From on_new_connection: no upstream connection.
        let mut vm = network_vm(target, "on_new_connection: close");
        let outcome = vm.connect(&exchange("client hello", "server hello"));
        assert_eq!(
            trace(&lines(&outcome)),
            strings(&[
                "on_new_connection",
                "close_stream(downstream)=Ok",
                "on_downstream_close peer=local",
                "on_done",
                "on_log"
            ]),
            "{target:?}"
        );
        assert_eq!(outcome.closed, Some(ClosedBy::FilterDownstream));
        assert!(!outcome.upstream_connected && outcome.forwarded.is_empty());
        assert_eq!(
            outcome.filter_state_str("wasm.probe.seen").as_deref(),
            Some("on_new_connection,on_downstream_close")
        );

        // From on_downstream_data: the upstream is connected, and gets
        // nothing (the probe returns Continue after closing).
        for (step, closed) in [("close", ClosedBy::FilterDownstream), ("close-upstream", ClosedBy::FilterUpstream)] {
            let mut vm = network_vm(target, &format!("on_downstream_data: {step}"));
            let outcome = vm.connect(&exchange("client hello", "server hello"));
            assert_eq!(
                trace(&lines(&outcome))[1..4],
                strings(&[
                    "on_downstream_data size=12 end=false",
                    &format!("close_stream({})=Ok", if step == "close" { "downstream" } else { "upstream" }),
                    "on_downstream_close peer=local",
                ]),
                "{step}"
            );
            assert_eq!(outcome.closed, Some(closed));
            assert!(outcome.upstream_connected && outcome.forwarded.is_empty() && outcome.returned.is_empty());
        }

        // From on_upstream_data: the client gets nothing.
        let mut vm = network_vm(target, "on_upstream_data: close");
        let outcome = vm.connect(&exchange("client hello", "server hello"));
        assert_eq!((outcome.forwarded.as_slice(), outcome.returned.as_slice()), (&b"client hello"[..], &b""[..]));
        assert_eq!(outcome.closed, Some(ClosedBy::FilterDownstream));
    }
}

#[test]
fn the_peer_certificate_arrives_with_the_tls_handshake() {
    for target in TARGETS {
        let mut vm = network_vm(target, "");
        let outcome = vm.connect(&Connection::new().sni("localhost").peer_uri_san(SLEEP).send("hello over tls"));
        let lines = lines(&outcome);
        let accepted = seen_at(&lines, "on_new_connection");
        assert_eq!(
            (accepted["uri_san"].as_str(), accepted["peer_certificate"].as_str(), accepted["mtls"].as_str()),
            ("absent", "absent", "00"),
            "{target:?}"
        );
        assert_eq!(accepted["sni"], "localhost");
        let data = seen_at(&lines, "on_downstream_data");
        assert_eq!(
            (data["uri_san"].as_str(), data["peer_certificate"].as_str(), data["mtls"].as_str()),
            (SLEEP, "present", "01")
        );
    }
}

#[test]
fn a_fault_closes_the_connection_and_every_later_one() {
    for target in TARGETS {
        let mut vm = network_vm(target, "on_new_connection: trap");
        let outcome = vm.connect(&exchange("client hello", "server hello"));
        assert!(matches!(outcome.fault, Some(Fault::Trap(_))), "{target:?}: {:?}", outcome.fault);
        assert_eq!(outcome.closed, Some(ClosedBy::Fault));
        assert!(!outcome.upstream_connected);
        assert_eq!(trace(&lines(&outcome)), ["on_new_connection"], "no close callback from a dead VM");

        let outcome = vm.connect(&exchange("client hello", "server hello"));
        assert!(matches!(outcome.fault, Some(Fault::Trap(_))));
        assert_eq!(outcome.closed, Some(ClosedBy::Fault));
        assert!(outcome.logs.is_empty(), "the filter does not run");
    }
}
