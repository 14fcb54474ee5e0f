//! The Envoy bootstrap the tests run: two loopback listeners (plain HTTP and
//! mTLS) whose HTTP connection managers run the Warden wasm filter and then
//! the router, one static cluster (the recording upstream), and an admin
//! endpoint. Both listeners take an optional PROXY protocol header, which is
//! how the tests say "this connection was made to port 80". Every port is 0: Envoy binds free ports itself and the tests
//! read them back from the admin API, so parallel tests cannot collide.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};

use super::pki::Pki;

/// Listener name of the plain-HTTP listener.
pub const PLAIN_LISTENER: &str = "plain";
/// Listener name of the mTLS listener (client certificate required).
pub const MTLS_LISTENER: &str = "mtls";

/// What varies between test Envoys.
pub struct Bootstrap<'a> {
    /// The Warden policy (JSON); `None` runs Envoy without the filter.
    pub policy: Option<&'a Value>,
    /// The cluster's only endpoint.
    pub upstream: SocketAddr,
    /// Where the JSON access log goes.
    pub access_log: &'a Path,
    /// Like an ambient waypoint: a filter before Warden copies this request
    /// header into the filter state `io.istio.peer_principal`, standing in
    /// for the peer identity the waypoint learns over HBONE.
    pub peer_principal_header: Option<&'a str>,
}

impl Bootstrap<'_> {
    /// The bootstrap document.
    pub fn to_value(&self) -> Value {
        let tls = self.downstream_tls();
        json!({
            "admin": {"address": loopback()},
            "static_resources": {
                "listeners": [
                    {
                        "name": PLAIN_LISTENER,
                        "address": loopback(),
                        "listener_filters": [proxy_protocol()],
                        "filter_chains": [{"filters": [self.http_connection_manager(PLAIN_LISTENER)]}],
                    },
                    {
                        "name": MTLS_LISTENER,
                        "address": loopback(),
                        "listener_filters": [proxy_protocol()],
                        "filter_chains": [{
                            "transport_socket": tls,
                            "filters": [self.http_connection_manager(MTLS_LISTENER)],
                        }],
                    },
                ],
                "clusters": [{
                    "name": "upstream",
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": "upstream",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                            "address": self.upstream.ip().to_string(),
                            "port_value": self.upstream.port(),
                        }}}}]}],
                    },
                }],
            },
        })
    }

    /// The HCM: raw paths reach the filter (SPEC §7), the filter decides,
    /// the router forwards everything to the upstream.
    fn http_connection_manager(&self, stat_prefix: &str) -> Value {
        let mut http_filters: Vec<Value> = self.peer_principal_header.map(set_peer_principal).into_iter().collect();
        http_filters.extend(self.policy.map(wasm_filter));
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }));
        json!({
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": stat_prefix,
                "codec_type": "AUTO",
                "normalize_path": false,
                "merge_slashes": false,
                "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                "route_config": {
                    "name": "all",
                    "virtual_hosts": [{
                        "name": "all",
                        "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "10s"}}],
                    }],
                },
                "http_filters": http_filters,
                "access_log": [self.access_logger()],
            },
        })
    }

    /// JSON lines with the fields Istio egress gateways log, plus Warden's
    /// decision from filter state.
    fn access_logger(&self) -> Value {
        json!({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": self.access_log.display().to_string(),
                "log_format": {"json_format": {
                    "authority": "%REQ(:AUTHORITY)%",
                    "method": "%REQ(:METHOD)%",
                    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    "protocol": "%PROTOCOL%",
                    "response_code": "%RESPONSE_CODE%",
                    "response_flags": "%RESPONSE_FLAGS%",
                    "upstream_host": "%UPSTREAM_HOST%",
                    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
                    "downstream_peer_uri_san": "%DOWNSTREAM_PEER_URI_SAN%",
                    "warden": "%FILTER_STATE(wasm.warden.decision:PLAIN)%",
                }},
            },
        })
    }

    /// TLS for the mTLS listener: the test server certificate, and client
    /// certificates required and verified against the test CA.
    fn downstream_tls(&self) -> Value {
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
}

/// The Warden filter, configured with `policy` as a JSON string, failing
/// closed.
fn wasm_filter(policy: &Value) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "warden",
                "root_id": "warden",
                "fail_open": false,
                "vm_config": {
                    "vm_id": "warden",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": warden::FILTER_WASM_PATH}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": policy.to_string(),
                },
            },
        },
    })
}

/// Envoy's set_filter_state filter: `io.istio.peer_principal` from the
/// request header `header`, unset when the header is absent.
fn set_peer_principal(header: &str) -> Value {
    json!({
        "name": "envoy.filters.http.set_filter_state",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
            "on_request_headers": [{
                "object_key": "io.istio.peer_principal",
                "factory_key": "envoy.string",
                "format_string": {"text_format_source": {"inline_string": format!("%REQ({header})%")}, "omit_empty_values": true},
                "skip_if_empty": true,
            }],
        },
    })
}

/// Accepts a PROXY protocol header that names the destination port the
/// workload connected to (a sidecar's capture of port 80, in production),
/// so `destination.port` is 80 as on a real gateway. Connections without
/// the header are served as they are.
fn proxy_protocol() -> Value {
    json!({
        "name": "envoy.filters.listener.proxy_protocol",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol",
            "allow_requests_without_proxy_protocol": true,
        },
    })
}

fn loopback() -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": 0}})
}
