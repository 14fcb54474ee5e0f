//! The Envoy bootstrap the tests run: one listener per port the test
//! needs, each serving plain HTTP and TLS (client certificates optional,
//! told apart by `tls_inspector`, as an Istio port in PERMISSIVE mode),
//! whose HTTP connection managers run the Warden wasm filter and then the
//! router; one static cluster (the recording upstream); an admin endpoint.
//! HTTP/1.1 trailers are enabled from client to upstream (an HTTP/2
//! client's always reach the filter). The gateway is also a forward
//! proxy: a `CONNECT host:port` is routed to the cluster, Envoy ends it
//! and relays the tunnel's bytes over TCP.
//! The HCM's settings are the harness's [`Hcm`], so Envoy and the harness
//! model of it are configured from one value. Envoy runs in the test's own
//! network namespace (see `netns`): the listeners are on the real ports.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};
use warden::testing::envoy::Hcm;

use super::pki::Pki;

/// What varies between test Envoys.
pub struct Bootstrap<'a> {
    /// The HTTP filters before the router (see [`warden`], [`probe`],
    /// [`set_peer_principal`]); none: Envoy alone.
    pub filters: &'a [Value],
    /// The cluster's only endpoint.
    pub upstream: SocketAddr,
    /// Where the JSON access log goes.
    pub access_log: &'a Path,
    /// The ports to listen on (on 127.0.0.1).
    pub ports: &'a [u16],
    /// The HTTP connection manager's settings.
    pub hcm: &'a Hcm,
}

/// The listener name for `port`.
pub fn listener_name(port: u16) -> String {
    format!("port-{port}")
}

impl Bootstrap<'_> {
    /// The bootstrap document.
    pub fn to_value(&self) -> Value {
        let listeners: Vec<Value> = self
            .ports
            .iter()
            .map(|&port| {
                json!({
                    "name": listener_name(port),
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "listener_filters": [{
                        "name": "envoy.filters.listener.tls_inspector",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
                    }],
                    "filter_chains": [
                        {
                            "filter_chain_match": {"transport_protocol": "tls"},
                            "transport_socket": self.downstream_tls(),
                            "filters": [self.http_connection_manager(port)],
                        },
                        {"filters": [self.http_connection_manager(port)]},
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
                    // Request trailers go on to the HTTP/1.1 upstream.
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}},
                        },
                    },
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

    /// The HCM: raw paths reach the filter (path normalization is
    /// Warden's), the filter decides, the router forwards everything to
    /// the upstream.
    fn http_connection_manager(&self, port: u16) -> Value {
        let mut http_filters: Vec<Value> = self.filters.to_vec();
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }));
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": listener_name(port),
            "codec_type": "AUTO",
            // HTTP/1.1 trailers reach the filters (HTTP/2 ones always do).
            "http_protocol_options": {"enable_trailers": true},
            "normalize_path": false,
            "merge_slashes": false,
            "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
            "use_remote_address": self.hcm.use_remote_address,
            "xff_num_trusted_hops": self.hcm.xff_num_trusted_hops,
            "forward_client_cert_details": self.hcm.forward_client_cert.as_str(),
            "upgrade_configs": [{"upgrade_type": "CONNECT"}],
            // Only a CONNECT matches `connect_matcher` (nothing else
            // changes). `connect_config` makes the router end the CONNECT
            // and relay bytes over TCP (answering 200 once connected);
            // without it Envoy 1.40 sends the CONNECT on as an HTTP request.
            // No timeout: a tunnel lasts as long as its client wants.
            "route_config": {
                "name": "all",
                "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"connect_matcher": {}},
                            "route": {
                                "cluster": "upstream",
                                "timeout": "0s",
                                "upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}],
                            },
                        },
                        {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "10s"}},
                    ],
                }],
            },
            "http_filters": http_filters,
            "access_log": [self.access_logger()],
        });
        // Istio's gateways describe the client certificate this way.
        if let Some(map) = hcm.as_object_mut() {
            map.insert(
                "set_current_client_cert_details".into(),
                json!({"subject": true, "cert": true, "dns": true, "uri": true}),
            );
        }
        json!({"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm})
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

    /// TLS: the test server certificate; client certificates optional and,
    /// when shown, verified against the test CA.
    fn downstream_tls(&self) -> Value {
        let pki = Pki::shared();
        json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": false,
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
/// closed, with `allow_on_headers_stop_iteration` (request headers wait
/// while a held body is scanned), as docs/POLICY.md recommends.
pub fn warden(policy: &Value) -> Value {
    warden_with(policy, true)
}

/// The Warden filter, with `allow_on_headers_stop_iteration` as given
/// (false: left out, Envoy's default).
pub fn warden_with(policy: &Value, allow_on_headers_stop_iteration: bool) -> Value {
    // (Envoy's field is a BoolValue; absent reads as false.)
    let mut filter = wasm(warden::FILTER_WASM_PATH, "warden", &policy.to_string());
    if allow_on_headers_stop_iteration {
        filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] = json!(true);
    }
    filter
}

/// Another proxy-wasm filter (the probe of `tests/filters/probe`).
pub fn probe(module: &Path) -> Value {
    probe_with(module, false)
}

/// The probe, with `allow_on_headers_stop_iteration` as given.
pub fn probe_with(module: &Path, allow_on_headers_stop_iteration: bool) -> Value {
    let mut filter = wasm(&module.display().to_string(), "probe", "");
    if allow_on_headers_stop_iteration {
        filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] = json!(true);
    }
    filter
}

/// The faults test filter (`tests/filters/faults`), misbehaving as
/// `fault` says on requests to `/fault`, with Envoy's `failure_policy`
/// (`FAIL_CLOSED`, `FAIL_OPEN`, `FAIL_RELOAD`; `None`: left out).
pub fn faults(module: &Path, fault: &str, failure_policy: Option<&str>) -> Value {
    let mut filter = wasm(&module.display().to_string(), "faults", fault);
    if let Some(policy) = failure_policy {
        let config = &mut filter["typed_config"]["config"];
        if let Some(map) = config.as_object_mut() {
            map.remove("fail_open");
        }
        config["failure_policy"] = json!(policy);
    }
    filter
}

fn wasm(module: &str, name: &str, configuration: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": name,
                "fail_open": false,
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
            },
        },
    })
}

/// Like an ambient waypoint: Envoy's set_filter_state filter copies the
/// request header `header` into the filter state `io.istio.peer_principal`
/// (unset when the header is absent), standing in for the peer identity
/// the waypoint learns over HBONE.
pub fn set_peer_principal(header: &str) -> Value {
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
