//! What Envoy 1.40 does with a proxy-wasm network filter, measured: the
//! probe filter (`tests/filters/probe`, root id `probe.network`) runs as
//! `envoy.filters.network.wasm` (V8, `fail_open: false`) before
//! `envoy.filters.network.tcp_proxy`, on listeners with the TLS inspector,
//! in front of an upstream that records each connection and echoes its
//! bytes. The probe logs each callback with the properties it could read
//! and records them in the filter state `wasm.probe.seen`, which the
//! `tcp_proxy` access log prints. Each test then runs the same connection
//! through the harness (`Vm::connect`) and requires the same callbacks.
//!
//! The answers (also in `harness/src/connection.rs`):
//!
//! - Q1: at `on_new_connection` of a TLS passthrough listener Envoy has
//!   `connection.requested_server_name` (the TLS inspector read the
//!   ClientHello), `destination.port` (8 little-endian bytes) and
//!   `source.address` (`ip:port`); `connection.mtls` is false.
//! - Q2: Pause from `on_new_connection` stalls the connection: `tcp_proxy`
//!   disabled reading when the chain was made and enables it only after it
//!   connected upstream, in its own `on_new_connection`, which never runs.
//!   No upstream connection, no `on_downstream_data` (not even for the
//!   ClientHello), not even the client's close. With
//!   `proxy_continue_stream(Downstream)` from `on_new_connection`,
//!   `tcp_proxy` connects and forwards the ClientHello as sent.
//! - Q3: `proxy_close_stream(Downstream)` from `on_new_connection`: no
//!   upstream connection; the client gets a reset (its ClientHello was
//!   never read). From `on_downstream_data`: the upstream was connected (on
//!   Continue from `on_new_connection`, before any read) and gets no byte;
//!   the client gets an orderly close. Both end with
//!   `on_downstream_connection_close(Local)`, `on_done`, `on_log`.
//! - Q4: on a listener that terminates TLS, the peer certificate is absent
//!   at `on_new_connection` (no handshake yet) and present at the first
//!   `on_downstream_data`, with `connection.mtls` true.
//! - Q5: the filter state a network filter sets is in `tcp_proxy`'s access
//!   log (`%FILTER_STATE(wasm.probe.seen:PLAIN)%`), with its value after the
//!   close callbacks.
//! - Q6: `plugin_root_id` is the configured `root_id` (`probe.network`),
//!   in the root's `on_configure` and in the connection's callbacks.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};
use warden::harness::{ClosedBy, Connection, ConnectionOutcome, Fault, Host, HostOptions};

use super::bootstrap::listener_name;
use super::envoy::Envoy;
use super::gateway::namespace;
use super::netns::NetNs;
use super::pki::{Pki, SLEEP};
use crate::harness::filters::{self, Filter, Target};
use crate::harness::network::{fnv1a, seen_at, trace};

const ROOT_ID: &str = "probe.network";
/// The server name the client asks for.
const SNI: &str = "allowed.example";
/// How long a client waits for bytes that may not come.
const QUIET: Duration = Duration::from_millis(1500);
/// Bound on any wait for Envoy's log.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// One listener: its port, the probe's plugin name and VM id (unique, so
/// its log lines can be told apart), its configuration lines, and whether
/// it terminates TLS (requiring a client certificate from the test CA).
struct Listener {
    port: u16,
    name: &'static str,
    config: &'static str,
    tls: bool,
}

/// The upstream: records each connection's bytes and whether the peer
/// ended it, and echoes everything back, closing its side after the
/// peer's end.
struct Echo {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<Arc<Mutex<Received>>>>>,
}

#[derive(Debug, Clone, Default)]
struct Received {
    bytes: Vec<u8>,
    ended: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Echo {
    fn start(netns: &NetNs) -> Echo {
        let listener = netns.run(|| TcpListener::bind("127.0.0.1:0")).expect("bind the echo upstream");
        let addr = listener.local_addr().expect("echo address");
        let connections: Arc<Mutex<Vec<Arc<Mutex<Received>>>>> = Arc::default();
        let all = Arc::clone(&connections);
        // Accepts for the life of the test process; each connection ends
        // when its peer does (or after the idle timeout).
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let received = Arc::new(Mutex::new(Received::default()));
                lock(&all).push(Arc::clone(&received));
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            lock(&received).ended = true;
                            break;
                        }
                        lock(&received).bytes.extend_from_slice(&buf[..n]);
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = stream.shutdown(Shutdown::Write);
                });
            }
        });
        Echo { addr, connections }
    }

    /// Every connection so far, oldest first.
    fn received(&self) -> Vec<Received> {
        lock(&self.connections).iter().map(|r| lock(r).clone()).collect()
    }
}

/// Envoy with these listeners in front of an echo upstream.
struct Network {
    envoy: Envoy,
    echo: Echo,
    netns: Arc<NetNs>,
}

impl Network {
    fn start(listeners: &[Listener]) -> Network {
        let netns = namespace(&[]);
        let echo = Echo::start(&netns);
        let probe = filters::path(Filter::Probe, Target::Wasip1);
        let ports = listeners.iter().map(|l| l.port).collect();
        let bootstrap = |access_log: &Path| bootstrap(listeners, &probe, echo.addr, access_log);
        let envoy =
            Envoy::launch_bootstrap(bootstrap, ports, Arc::clone(&netns)).unwrap_or_else(|failure| panic!("{failure}"));
        Network { envoy, echo, netns }
    }

    /// A TCP connection to `port`, from 127.0.0.1.
    fn dial(&self, port: u16) -> TcpStream {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream =
            self.netns.run(|| TcpStream::connect_timeout(&addr, Duration::from_secs(5))).expect("connect to Envoy");
        stream.set_read_timeout(Some(QUIET)).expect("read timeout");
        stream
    }

    /// The probe's lines of `listener` (`probe.network: ` stripped), once
    /// `done` holds for them; panics after a while.
    fn probe_lines(&self, listener: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let marker = format!(" {listener}: probe.network: ");
        let deadline = Instant::now() + LOG_TIMEOUT;
        loop {
            let lines: Vec<String> = self
                .envoy
                .log()
                .lines()
                .filter_map(|l| l.split_once(&marker).map(|(_, m)| m.to_owned()))
                .filter(|m| !m.starts_with("on_configure"))
                .collect();
            if done(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{listener}: the probe logged only {lines:#?}\n{}",
                self.envoy.log_tail()
            );
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The access-log entry of `listener`'s connection, waiting for
    /// `count` entries in all.
    fn access_log(&self, listener: &str, count: usize) -> Value {
        let entries = self.envoy.access_log(count);
        entries
            .into_iter()
            .find(|e| e["listener"] == listener)
            .unwrap_or_else(|| panic!("no access-log entry for {listener}"))
    }
}

fn bootstrap(listeners: &[Listener], probe: &Path, upstream: SocketAddr, access_log: &Path) -> Value {
    let listeners: Vec<Value> = listeners
        .iter()
        .map(|l| {
            let mut chain = json!({"filters": [wasm(probe, l.name, l.config), tcp_proxy(l.name, access_log)]});
            if l.tls {
                chain["transport_socket"] = downstream_tls();
            }
            json!({
                "name": listener_name(l.port),
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": l.port}},
                "listener_filters": [{
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
                }],
                "filter_chains": [chain],
            })
        })
        .collect();
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": listeners,
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                    "socket_address": {"address": upstream.ip().to_string(), "port_value": upstream.port()},
                }}}]}]},
            }],
        },
    })
}

/// The probe as a network filter, failing closed.
fn wasm(probe: &Path, name: &str, config: &str) -> Value {
    json!({
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": ROOT_ID,
                "fail_open": false,
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": probe.display().to_string()}},
                },
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config},
            },
        },
    })
}

/// `tcp_proxy` to the echo upstream, with an access log that prints the
/// probe's filter state.
fn tcp_proxy(name: &str, access_log: &Path) -> Value {
    json!({
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": name,
            "cluster": "upstream",
            "access_log": [{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log.display().to_string(),
                    "log_format": {"json_format": {
                        "listener": name,
                        "seen": "%FILTER_STATE(wasm.probe.seen:PLAIN)%",
                        "upstream_host": "%UPSTREAM_HOST%",
                        "sni": "%REQUESTED_SERVER_NAME%",
                    }},
                },
            }],
        },
    })
}

/// TLS with a client certificate from the test CA required.
fn downstream_tls() -> Value {
    let pki = Pki::shared();
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": {
                "tls_certificates": [{
                    "certificate_chain": {"inline_string": pki.server.cert_pem},
                    "private_key": {"inline_string": pki.server.key_pem},
                }],
                "validation_context": {"trusted_ca": {"inline_string": pki.ca_pem}},
            },
        },
    })
}

/// A client config trusting the test CA, presenting SLEEP's certificate.
fn client_config() -> Arc<ClientConfig> {
    let pki = Pki::shared();
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone()).expect("the test CA");
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(Pki::shared().sleep.chain(), Pki::shared().sleep.key())
        .expect("client certificate");
    Arc::new(config)
}

/// A real TLS ClientHello for `SNI`, as rustls writes it.
fn client_hello() -> Vec<u8> {
    let name = ServerName::try_from(SNI).expect("a DNS name");
    let mut connection = ClientConnection::new(client_config(), name).expect("a client connection");
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).expect("the ClientHello");
    hello
}

/// How a read ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The peer closed its side.
    Eof,
    /// The peer reset the connection.
    Reset,
    /// Nothing more came within `QUIET`.
    Quiet,
}

/// Reads until `want` bytes came, the peer closed, or nothing came for a
/// while.
fn read_some(stream: &mut impl Read, want: usize) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if want > 0 && got.len() >= want {
            return (got, End::Quiet);
        }
        match stream.read(&mut buf) {
            Ok(0) => return (got, End::Eof),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, End::Reset),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return (got, End::Quiet),
            Err(e) => panic!("reading from Envoy: {e}"),
        }
    }
}

/// The harness with the same probe, as Envoy loads it.
fn harness_vm(config: &str) -> warden::harness::Vm {
    let wasm = std::fs::read(filters::path(Filter::Probe, Target::Wasip1)).expect("the probe");
    let host = Host::new(&wasm, HostOptions { root_id: ROOT_ID.into(), ..HostOptions::default() }).expect("probe");
    let mut vm = host.vm(config.as_bytes()).expect("probe VM");
    vm.take_logs();
    vm
}

fn harness_lines(outcome: &ConnectionOutcome) -> Vec<String> {
    outcome.logs.iter().filter_map(|l| l.message.strip_prefix("probe.network: ")).map(str::to_owned).collect()
}

/// Envoy's and the harness's callbacks must be the same.
fn same_callbacks(listener: &str, envoy: &[String], harness: &[String]) {
    assert_eq!(trace(envoy), trace(harness), "{listener}: Envoy's callbacks (left) and the harness's (right)");
}

/// `port` as Envoy encodes `destination.port`, in hex.
fn port_hex(port: u16) -> String {
    u64::from(port).to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_passthrough_connection_the_filter_continues() {
    let listener = Listener { port: 9001, name: "q1-passthrough", config: "", tls: false };
    let network = Network::start(&[listener]);
    let hello = client_hello();
    let mut client = network.dial(9001);
    let client_port = client.local_addr().expect("client address").port();
    client.write_all(&hello).expect("send the ClientHello");
    let (echoed, _) = read_some(&mut client, hello.len());
    assert_eq!(echoed, hello, "the upstream's echo reached the client");
    client.shutdown(Shutdown::Write).expect("half-close");
    let (_, end) = read_some(&mut client, 0);
    assert_eq!(end, End::Eof);

    let lines = network.probe_lines("q1-passthrough", |l| l.iter().any(|m| m == "on_log"));
    // Q1: what on_new_connection can read.
    let accepted = seen_at(&lines, "on_new_connection");
    assert_eq!(accepted["sni"], SNI);
    assert_eq!(accepted["port"], port_hex(9001), "8 little-endian bytes");
    assert_eq!(accepted["source"], format!("127.0.0.1:{client_port}"));
    assert_eq!((accepted["peer_certificate"].as_str(), accepted["mtls"].as_str()), ("absent", "00"));
    // Q6, in the connection and in the root's on_configure.
    assert_eq!(accepted["root_id"], ROOT_ID);
    assert!(network.envoy.log().contains("probe.network: on_configure root_id=probe.network"));
    let data = seen_at(&lines, "on_downstream_data");
    assert_eq!((data["size"].clone(), data["fnv"].clone()), (hello.len().to_string(), fnv1a(&hello)));
    assert_eq!(network.echo.received().len(), 1);
    assert_eq!(network.echo.received()[0].bytes, hello);

    // Q5: the filter state, in tcp_proxy's access log.
    let entry = network.access_log("q1-passthrough", 1);
    assert_eq!(
        entry["seen"],
        "on_new_connection,on_downstream_data,on_upstream_data,on_downstream_data,on_upstream_data,on_upstream_close,\
         on_downstream_close"
    );
    assert_eq!(entry["sni"], SNI);

    let mut vm = harness_vm("");
    let connection = Connection::new()
        .sni(SNI)
        .destination_port(9001)
        .send(hello.clone())
        .answer(hello.clone())
        .end_downstream()
        .end_upstream();
    let outcome = vm.connect(&connection);
    same_callbacks("q1-passthrough", &lines, &harness_lines(&outcome));
    assert_eq!(outcome.filter_state_str("wasm.probe.seen").as_deref(), entry["seen"].as_str());
    assert_eq!((outcome.forwarded, outcome.closed), (hello, Some(ClosedBy::Peers)));
}

#[test]
fn a_pause_in_on_new_connection_stalls_unless_the_filter_continues() {
    let paused = Listener { port: 9002, name: "q2-paused", config: "on_new_connection: pause", tls: false };
    let resumed = Listener { port: 9003, name: "q2-resumed", config: "on_new_connection: resume", tls: false };
    let network = Network::start(&[paused, resumed]);
    let hello = client_hello();

    // Paused: nothing comes back, the upstream sees no connection, and the
    // filter sees neither the ClientHello nor the client's close.
    let mut client = network.dial(9002);
    client.write_all(&hello).expect("send the ClientHello");
    assert_eq!(read_some(&mut client, 0), (Vec::new(), End::Quiet));
    client.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_some(&mut client, 0), (Vec::new(), End::Quiet));
    let lines = network.probe_lines("q2-paused", |l| !l.is_empty());
    assert_eq!(trace(&lines), ["on_new_connection"]);

    // Continued with proxy_continue_stream(Downstream): tcp_proxy connects
    // and forwards the ClientHello as sent.
    let mut client = network.dial(9003);
    client.write_all(&hello).expect("send the ClientHello");
    let (echoed, _) = read_some(&mut client, hello.len());
    assert_eq!(echoed, hello);
    client.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_some(&mut client, 0).1, End::Eof);
    let resumed = network.probe_lines("q2-resumed", |l| l.iter().any(|m| m == "on_log"));
    assert_eq!(seen_at(&resumed, "on_downstream_data")["fnv"], fnv1a(&hello));

    // Still nothing from the paused one, and one upstream connection in all.
    let lines = network.probe_lines("q2-paused", |l| !l.is_empty());
    assert_eq!(trace(&lines), ["on_new_connection"], "the paused connection never saw data nor its close");
    let received = network.echo.received();
    assert_eq!(received.len(), 1, "only the continued connection reached the upstream");
    assert_eq!(received[0].bytes, hello);
    let entry = network.access_log("q2-resumed", 1);
    assert_eq!(entry["upstream_host"], network.echo.addr.to_string());

    let exchange = Connection::new().sni(SNI).send(hello.clone()).answer(hello.clone()).end_downstream().end_upstream();
    let outcome = harness_vm("on_new_connection: pause").connect(&exchange);
    same_callbacks("q2-paused", &lines, &harness_lines(&outcome));
    assert!(matches!(outcome.fault, Some(Fault::Stalled(_))));
    assert!(!outcome.upstream_connected);
    let outcome = harness_vm("on_new_connection: resume").connect(&exchange);
    same_callbacks("q2-resumed", &resumed, &harness_lines(&outcome));
    assert_eq!(outcome.forwarded, hello);
}

#[test]
fn closing_from_on_new_connection_and_from_on_downstream_data() {
    let at_accept = Listener { port: 9004, name: "q3-close-accept", config: "on_new_connection: close", tls: false };
    let at_data = Listener { port: 9005, name: "q3-close-data", config: "on_downstream_data: close", tls: false };
    let trap = Listener { port: 9006, name: "q3-trap", config: "on_new_connection: trap", tls: false };
    let network = Network::start(&[at_accept, at_data, trap]);
    let hello = client_hello();

    // From on_new_connection: no upstream connection; the ClientHello is
    // unread, so the client gets a reset.
    let mut client = network.dial(9004);
    client.write_all(&hello).expect("send the ClientHello");
    assert_eq!(read_some(&mut client, 0), (Vec::new(), End::Reset));
    let closed_at_accept = network.probe_lines("q3-close-accept", |l| l.iter().any(|m| m == "on_log"));
    assert!(network.echo.received().is_empty(), "no upstream connection");

    // From on_downstream_data: the upstream was connected and gets nothing.
    let mut client = network.dial(9005);
    client.write_all(&hello).expect("send the ClientHello");
    assert_eq!(read_some(&mut client, 0), (Vec::new(), End::Eof));
    let closed_at_data = network.probe_lines("q3-close-data", |l| l.iter().any(|m| m == "on_log"));
    let deadline = Instant::now() + LOG_TIMEOUT;
    while !network.echo.received().first().is_some_and(|r| r.ended) {
        assert!(Instant::now() < deadline, "the upstream connection was not closed");
        thread::sleep(Duration::from_millis(25));
    }
    let received = network.echo.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].bytes.is_empty(), "no byte reached the upstream");

    // A fault closes the connection too, and every later one: the filter
    // no longer runs.
    for _ in 0..2 {
        let mut client = network.dial(9006);
        client.write_all(&hello).expect("send the ClientHello");
        assert_eq!(read_some(&mut client, 0), (Vec::new(), End::Reset));
    }
    let trapped = network.probe_lines("q3-trap", |l| !l.is_empty());
    assert_eq!(network.echo.received().len(), 1, "still only the q3-close-data connection");

    let entries = network.envoy.access_log(4);
    let seen: Vec<&Value> = ["q3-close-accept", "q3-close-data"]
        .iter()
        .map(|name| &entries.iter().find(|e| e["listener"] == *name).expect("an entry")["seen"])
        .collect();
    assert_eq!(
        seen,
        ["on_new_connection,on_downstream_close", "on_new_connection,on_downstream_data,on_downstream_close"]
    );
    let trap_entries: Vec<&Value> = entries.iter().filter(|e| e["listener"] == "q3-trap").map(|e| &e["seen"]).collect();
    assert_eq!(trap_entries, [&json!("on_new_connection"), &Value::Null]);

    let exchange = Connection::new().sni(SNI).send(hello.clone()).answer(hello.clone()).end_downstream().end_upstream();
    let outcome = harness_vm("on_new_connection: close").connect(&exchange);
    same_callbacks("q3-close-accept", &closed_at_accept, &harness_lines(&outcome));
    assert_eq!((outcome.closed, outcome.upstream_connected), (Some(ClosedBy::FilterDownstream), false));
    let outcome = harness_vm("on_downstream_data: close").connect(&exchange);
    same_callbacks("q3-close-data", &closed_at_data, &harness_lines(&outcome));
    assert_eq!((outcome.closed, outcome.upstream_connected), (Some(ClosedBy::FilterDownstream), true));
    assert!(outcome.forwarded.is_empty());
    let mut vm = harness_vm("on_new_connection: trap");
    let outcome = vm.connect(&exchange);
    same_callbacks("q3-trap", &trapped, &harness_lines(&outcome));
    assert_eq!(outcome.closed, Some(ClosedBy::Fault));
    assert_eq!(vm.connect(&exchange).closed, Some(ClosedBy::Fault));
}

#[test]
fn the_peer_certificate_comes_with_the_first_data_on_a_tls_listener() {
    let listener = Listener { port: 9007, name: "q4-mtls", config: "", tls: true };
    let network = Network::start(&[listener]);
    let tcp = network.dial(9007);
    let name = ServerName::try_from("localhost").expect("a DNS name");
    let tls = ClientConnection::new(client_config(), name).expect("a TLS client");
    let mut client = StreamOwned::new(tls, tcp);
    let message = b"hello over tls";
    client.write_all(message).expect("send over TLS");
    let (echoed, _) = read_some(&mut client, message.len());
    assert_eq!(echoed, message);

    let lines = network.probe_lines("q4-mtls", |l| l.iter().any(|m| m.starts_with("on_upstream_data")));
    let accepted = seen_at(&lines, "on_new_connection");
    assert_eq!(
        (accepted["uri_san"].as_str(), accepted["peer_certificate"].as_str(), accepted["mtls"].as_str()),
        ("absent", "absent", "00"),
        "no handshake yet at on_new_connection"
    );
    assert_eq!(accepted["sni"], "localhost");
    let data = seen_at(&lines, "on_downstream_data");
    assert_eq!(
        (data["uri_san"].as_str(), data["peer_certificate"].as_str(), data["mtls"].as_str()),
        (SLEEP, "present", "01")
    );

    let outcome = harness_vm("")
        .connect(&Connection::new().sni("localhost").peer_uri_san(SLEEP).send(&message[..]).answer(&message[..]));
    let harness = harness_lines(&outcome);
    same_callbacks("q4-mtls", &lines[..3], &harness);
    for callback in ["on_new_connection", "on_downstream_data"] {
        let (envoy, harness) = (seen_at(&lines, callback), seen_at(&harness, callback));
        for key in ["uri_san", "peer_certificate", "mtls"] {
            assert_eq!(envoy[key], harness[key], "{callback} {key}");
        }
    }
}

#[test]
fn a_paused_read_is_handed_over_with_the_next() {
    let config = "on_downstream_data: pause, continue\non_upstream_data: resume-upstream";
    let listener = Listener { port: 9008, name: "held", config, tls: false };
    let network = Network::start(&[listener]);
    let hello = client_hello();
    let mut client = network.dial(9008);
    client.write_all(&hello).expect("send the ClientHello");
    // Held: nothing reaches the upstream, nothing comes back.
    assert_eq!(read_some(&mut client, 0).0, Vec::<u8>::new());
    assert!(network.echo.received().first().is_none_or(|r| r.bytes.is_empty()));
    client.write_all(b"tail").expect("send more");
    let mut whole = hello.clone();
    whole.extend_from_slice(b"tail");
    let (echoed, _) = read_some(&mut client, whole.len());
    assert_eq!(echoed, whole, "both reads went on together");
    client.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_some(&mut client, 0).1, End::Eof);

    let lines = network.probe_lines("held", |l| l.iter().any(|m| m == "on_log"));
    let data: Vec<String> = trace(&lines).into_iter().filter(|l| l.starts_with("on_downstream_data")).collect();
    assert_eq!(
        data,
        [
            format!("on_downstream_data size={} end=false", hello.len()),
            format!("on_downstream_data size={} end=false", whole.len()),
            "on_downstream_data size=0 end=true".to_owned(),
        ]
    );
    assert!(lines.contains(&"continue_stream(upstream)=Unimplemented".to_owned()));
    assert_eq!(network.echo.received()[0].bytes, whole);

    let connection =
        Connection::new().send(hello.clone()).send(&b"tail"[..]).answer(whole.clone()).end_downstream().end_upstream();
    let outcome = harness_vm(config).connect(&connection);
    same_callbacks("held", &lines, &harness_lines(&outcome));
    assert_eq!((outcome.forwarded, outcome.returned), (whole.clone(), whole));
}
