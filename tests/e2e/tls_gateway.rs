//! An egress gateway for TLS: Warden as a network filter (root id
//! `warden.network`) before `tcp_proxy`, on listeners with the TLS
//! inspector, in front of the echo upstream, in a network namespace of its
//! own. Each port has two filter chains: connections to 127.0.0.1 pass TLS
//! through (Istio's `PASSTHROUGH`), connections to 127.0.0.2 end mesh mTLS
//! at the gateway with a client certificate from the test CA required
//! (Istio's `ISTIO_MUTUAL` around the application's TLS), and forward the
//! bytes inside. `tcp_proxy`'s access log prints the decision record.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use serde_json::{json, Value};

use super::bootstrap::listener_name;
use super::echo::Echo;
use super::envoy::Envoy;
use super::gateway::namespace;
use super::netns::NetNs;
use super::pki::{Identity, Pki};

/// Where mTLS-terminating connections go; passthrough ones go to 127.0.0.1.
pub const MTLS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How long a client waits for bytes that may not come.
const QUIET: Duration = Duration::from_millis(1500);

/// Envoy with Warden deciding connections, and the echo upstream.
pub struct TlsGateway {
    /// The Envoy process.
    pub envoy: Envoy,
    /// The upstream every allowed connection reaches.
    pub echo: Echo,
    netns: Arc<NetNs>,
}

/// What happened to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The upstream accepted a connection for it.
    pub upstream_connected: bool,
    /// The bytes the upstream received.
    pub forwarded: Vec<u8>,
    /// The client's first bytes came back (echoed): the connection was
    /// let through.
    pub echoed: bool,
}

impl TlsGateway {
    /// Warden with `policy` on each of `ports`; `addresses` are added to
    /// the namespace for clients to connect from.
    pub fn launch(policy: &Value, ports: &[u16], addresses: &[IpAddr]) -> TlsGateway {
        let netns = namespace(addresses);
        let echo = Echo::start(&netns);
        let upstream = echo.addr();
        let bootstrap = |access_log: &Path| bootstrap(policy, ports, upstream, access_log);
        let envoy = Envoy::launch_bootstrap(bootstrap, ports.to_vec(), Arc::clone(&netns))
            .unwrap_or_else(|failure| panic!("{failure}"));
        TlsGateway { envoy, echo, netns }
    }

    /// Connects to `port` from `source`: with `identity`, over mesh mTLS
    /// (to [`MTLS_ADDRESS`]) with `sni` as the outer server name, then
    /// sends `data` inside; without, a TLS ClientHello for `sni` passed
    /// through (no SNI when `None`).
    pub fn connect(
        &self,
        port: u16,
        source: IpAddr,
        sni: Option<&str>,
        identity: Option<&Identity>,
        data: &[u8],
    ) -> Attempt {
        let before = self.echo.accepted().len();
        let echoed = self.netns.run(|| match identity {
            Some(identity) => mtls(SocketAddr::from((MTLS_ADDRESS, port)), source, sni, identity, data),
            None => passthrough(SocketAddr::from(([127, 0, 0, 1], port)), source, sni),
        });
        // The upstream's view settles once the client is done.
        std::thread::sleep(Duration::from_millis(50));
        let accepted = self.echo.accepted();
        let new: Vec<_> = accepted.get(before..).unwrap_or_default().to_vec();
        Attempt {
            upstream_connected: !new.is_empty(),
            forwarded: new.iter().flat_map(|a| a.bytes.clone()).collect(),
            echoed,
        }
    }
}

/// Sends a real ClientHello and reports whether it came back.
fn passthrough(addr: SocketAddr, source: IpAddr, sni: Option<&str>) -> bool {
    let hello = client_hello(sni);
    let Ok(mut stream) = dial(addr, source) else { return false };
    if stream.write_all(&hello).is_err() {
        return false;
    }
    read_back(&mut stream, hello.len()) == hello
}

/// Ends mTLS with Envoy as `identity`, sends `data` inside, and reports
/// whether it came back.
fn mtls(addr: SocketAddr, source: IpAddr, sni: Option<&str>, identity: &Identity, data: &[u8]) -> bool {
    let Ok(stream) = dial(addr, source) else { return false };
    let name = server_name(sni);
    let Ok(connection) = ClientConnection::new(client_config(Some(identity)), name) else { return false };
    let mut tls = StreamOwned::new(connection, stream);
    if tls.write_all(data).and_then(|()| tls.flush()).is_err() {
        return false;
    }
    read_back(&mut tls, data.len()) == data
}

fn dial(addr: SocketAddr, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(QUIET))?;
    Ok(stream)
}

/// Reads until `want` bytes, the end, or quiet.
fn read_back(stream: &mut impl Read, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while got.len() < want {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    got
}

/// `sni` as rustls's server name; an IP address sends no SNI.
fn server_name(sni: Option<&str>) -> ServerName<'static> {
    match sni {
        Some(name) => ServerName::try_from(name.to_owned()).unwrap_or_else(|_| panic!("{name} is not a DNS name")),
        None => ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into()),
    }
}

/// A real TLS ClientHello for `sni`, as rustls writes it.
fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let mut connection = ClientConnection::new(client_config(None), server_name(sni)).expect("a client connection");
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).expect("the ClientHello");
    hello
}

/// A client that presents `identity` and takes any server certificate:
/// the gateway's certificate is not what these tests are about, and the
/// server names are the external services'.
fn client_config(identity: Option<&Identity>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain(), id.key()).expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn bootstrap(policy: &Value, ports: &[u16], upstream: SocketAddr, access_log: &Path) -> Value {
    let listeners: Vec<Value> = ports
        .iter()
        .map(|&port| {
            let filters = || json!([warden_network(policy), tcp_proxy(port, access_log)]);
            json!({
                "name": listener_name(port),
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
                "listener_filters": [{
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
                }],
                "filter_chains": [
                    {
                        "filter_chain_match": {"prefix_ranges": [{"address_prefix": MTLS_ADDRESS.to_string(), "prefix_len": 32}]},
                        "transport_socket": mesh_mtls(),
                        "filters": filters(),
                    },
                    {"filters": filters()},
                ],
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

/// Warden as a network filter, failing closed.
pub fn warden_network(policy: &Value) -> Value {
    json!({
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": "warden-network",
                "root_id": warden::engine::record::NETWORK_ROOT_ID,
                "fail_open": false,
                "vm_config": {
                    "vm_id": "warden-network",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": warden::FILTER_WASM_PATH}},
                },
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": policy.to_string()},
            },
        },
    })
}

/// `tcp_proxy` to the echo upstream, with the access log Istio gateways
/// write for TCP, plus Warden's record.
fn tcp_proxy(port: u16, access_log: &Path) -> Value {
    json!({
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": format!("tls-{port}"),
            "cluster": "upstream",
            "access_log": [{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log.display().to_string(),
                    "log_format": {"json_format": {
                        "requested_server_name": "%REQUESTED_SERVER_NAME%",
                        "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
                        "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
                        "downstream_peer_uri_san": "%DOWNSTREAM_PEER_URI_SAN%",
                        "upstream_host": "%UPSTREAM_HOST%",
                        "warden": "%FILTER_STATE(wasm.warden.decision:PLAIN)%",
                    }},
                },
            }],
        },
    })
}

/// Mesh mTLS ended at the gateway: a client certificate from the test CA
/// required.
fn mesh_mtls() -> Value {
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
