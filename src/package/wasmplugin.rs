//! `warden wasmplugin`: the Istio `WasmPlugin` manifest that deploys the
//! filter with a policy.
//!
//! The policy goes in as `pluginConfig` (Istio hands it to the filter as
//! JSON), `sha256` pins the exact build (see [`pinned_sha256`]: the module's
//! digest for `http(s)://` and `file://` urls, the image manifest's for
//! `oci://`), `phase: AUTHZ` places
//! the filter where Istio's own authorization runs, and
//! `failStrategy: FAIL_CLOSE` refuses traffic when the filter cannot load.

use crate::package::oci::{self, Variant};
use serde_json::{json, Map, Value};

/// Where the plugin applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `selector.matchLabels` (sidecar-mode egress gateways), e.g.
    /// `istio=egressgateway`.
    Selector(Vec<(String, String)>),
    /// `targetRefs` (ambient waypoints, Gateway API gateways): kind and name,
    /// e.g. `Gateway` / `waypoint`.
    TargetRefs(Vec<(String, String)>),
}

/// Which filter chain the plugin joins (Istio's WasmPlugin `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PluginType {
    /// The HTTP filter: requests (Istio's default).
    #[default]
    Http,
    /// The network filter, before `tcp_proxy`: TLS passthrough and mesh-mTLS
    /// connections, decided once each. `pluginName` (Envoy's root id) is
    /// `warden.network`, which makes the module a network filter.
    Network,
}

/// What the manifest says besides the policy.
#[derive(Debug, Clone)]
pub struct Options {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// Where Istio pulls the module from (`oci://…`, `https://…`, `file://…`).
    pub url: String,
    /// Where the plugin applies.
    pub target: Target,
    /// For an `oci://` url: the image format pushed there (`warden oci
    /// --variant`), whose manifest digest the manifest pins.
    pub oci_variant: Variant,
    /// The filter chain.
    pub plugin_type: PluginType,
}

pub use super::oci::sha256_hex;

/// The `spec.sha256` that pins `wasm` at `url`, as Istio checks it: for
/// `http(s)://` (and `file://`) urls the SHA-256 of the module; for `oci://`
/// urls (and urls without a scheme, which Istio reads as `oci://`) the
/// digest of the image manifest, which is what Istio compares after a pull
/// (`pkg/wasm/cache.go`) — the image `warden oci --variant VARIANT` writes
/// for the same module. A url that already pins a digest (`…@sha256:HEX`)
/// must name that same manifest.
pub fn pinned_sha256(url: &str, wasm: &[u8], oci_variant: Variant) -> Result<String, PinError> {
    let scheme = url.split_once("://").map_or("oci", |(scheme, _)| scheme);
    if !scheme.eq_ignore_ascii_case("oci") {
        return Ok(sha256_hex(wasm));
    }
    let digest = oci::manifest_digest(wasm, oci_variant).map_err(PinError::Image)?;
    if let Some((_, pinned)) = url.rsplit_once("@sha256:") {
        if !pinned.eq_ignore_ascii_case(&digest) {
            return Err(PinError::OtherImage { pinned: pinned.to_owned(), digest, variant: oci_variant });
        }
    }
    Ok(digest)
}

/// Why a WasmPlugin's `sha256` cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinError {
    /// The image for the module cannot be built.
    Image(oci::OciError),
    /// The url pins a digest that is not the image's.
    OtherImage {
        /// The digest the url pins (hex).
        pinned: String,
        /// The digest of the image `warden oci` writes (hex).
        digest: String,
        /// The image variant.
        variant: Variant,
    },
}

impl std::fmt::Display for PinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinError::Image(e) => write!(f, "the module: {e}"),
            PinError::OtherImage { pinned, digest, variant } => write!(
                f,
                "--url pins sha256:{pinned}, but the image `warden oci --variant {}` writes for this module is \
                 sha256:{digest}",
                variant.as_str()
            ),
        }
    }
}

impl std::error::Error for PinError {}

/// The group of a `targetRefs` kind: Gateway API kinds and the core ones
/// Istio accepts.
fn group_of(kind: &str) -> &'static str {
    match kind {
        "Gateway" | "GatewayClass" => "gateway.networking.k8s.io",
        "ServiceEntry" => "networking.istio.io",
        _ => "",
    }
}

/// The manifest for `policy` (the warden/v1 document as JSON) and `wasm`;
/// fails when the url pins another image (see [`pinned_sha256`]).
pub fn manifest(policy: &Value, wasm: &[u8], options: &Options) -> Result<Value, PinError> {
    let sha256 = pinned_sha256(&options.url, wasm, options.oci_variant)?;
    let mut spec = Map::new();
    match &options.target {
        Target::Selector(labels) => {
            let labels: Map<String, Value> =
                labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            spec.insert("selector".into(), json!({ "matchLabels": labels }));
        }
        Target::TargetRefs(refs) => {
            let refs: Vec<Value> = refs
                .iter()
                .map(|(kind, name)| {
                    let group = group_of(kind);
                    if group.is_empty() {
                        json!({"kind": kind, "name": name})
                    } else {
                        json!({"kind": kind, "group": group, "name": name})
                    }
                })
                .collect();
            spec.insert("targetRefs".into(), Value::Array(refs));
        }
    }
    if options.plugin_type == PluginType::Network {
        spec.insert("type".into(), Value::String("NETWORK".into()));
        spec.insert("pluginName".into(), Value::String(warden_engine::record::NETWORK_ROOT_ID.into()));
    }
    spec.insert("url".into(), Value::String(options.url.clone()));
    spec.insert("sha256".into(), Value::String(sha256));
    spec.insert("phase".into(), Value::String("AUTHZ".into()));
    spec.insert("failStrategy".into(), Value::String("FAIL_CLOSE".into()));
    spec.insert("pluginConfig".into(), policy.clone());
    Ok(json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": options.name, "namespace": options.namespace},
        "spec": Value::Object(spec),
    }))
}

/// Parses `KEY=VALUE` (selector labels) or `KIND/NAME` (target refs).
pub fn split_pair(text: &str, separator: char) -> Option<(String, String)> {
    let (a, b) = text.split_once(separator)?;
    (!a.trim().is_empty() && !b.trim().is_empty()).then(|| (a.trim().to_owned(), b.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_carries_policy_digest_phase_and_fail_closed() {
        let policy = json!({"name": "p", "services": []});
        let options = Options {
            name: "warden".into(),
            namespace: "istio-egress".into(),
            url: "oci://registry.example/warden:1".into(),
            target: Target::TargetRefs(vec![("Gateway".into(), "waypoint".into())]),
            oci_variant: Variant::Compat,
            plugin_type: PluginType::Http,
        };
        let m = manifest(&policy, b"\0asm", &options).unwrap();
        assert!(m["spec"].get("type").is_none() && m["spec"].get("pluginName").is_none(), "HTTP is Istio's default");
        let network =
            manifest(&policy, b"\0asm", &Options { plugin_type: PluginType::Network, ..options.clone() }).unwrap();
        assert_eq!(
            (&network["spec"]["type"], &network["spec"]["pluginName"]),
            (&json!("NETWORK"), &json!("warden.network"))
        );
        assert_eq!(m["kind"], "WasmPlugin");
        assert_eq!(m["spec"]["pluginConfig"], policy);
        assert_eq!(m["spec"]["sha256"], oci::manifest_digest(b"\0asm", Variant::Compat).unwrap());
        assert_eq!(m["spec"]["sha256"].as_str().map(str::len), Some(64));
        assert_eq!(m["spec"]["phase"], "AUTHZ");
        assert_eq!(m["spec"]["failStrategy"], "FAIL_CLOSE");
        assert_eq!(
            m["spec"]["targetRefs"][0],
            json!({"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "waypoint"})
        );
        assert!(m["spec"].get("selector").is_none());
    }

    #[test]
    fn oci_urls_pin_the_image_manifest_and_others_the_module() {
        let wasm = b"\0asm\x01\0\0\0";
        let module = sha256_hex(wasm);
        let compat = oci::manifest_digest(wasm, Variant::Compat).unwrap();
        let pin = |url: &str, variant| pinned_sha256(url, wasm, variant);
        assert_eq!(pin("https://example.com/warden.wasm", Variant::Compat), Ok(module.clone()));
        assert_eq!(pin("file:///opt/warden.wasm", Variant::Oci), Ok(module));
        assert_eq!(pin("oci://registry.example/warden:1", Variant::Compat), Ok(compat.clone()));
        assert_eq!(pin("registry.example/warden:1", Variant::Compat), Ok(compat.clone()), "no scheme: oci");
        assert_eq!(pin(&format!("oci://r/w@sha256:{compat}"), Variant::Compat), Ok(compat.clone()));
        assert_eq!(pin("oci://r/w:1", Variant::Oci), Ok(oci::manifest_digest(wasm, Variant::Oci).unwrap()));
        let err = pin(&format!("oci://r/w@sha256:{}", "0".repeat(64)), Variant::Compat).unwrap_err();
        assert!(matches!(&err, PinError::OtherImage { digest, .. } if *digest == compat), "{err}");
        assert!(err.to_string().contains(&compat), "{err}");
    }

    #[test]
    fn pairs() {
        assert_eq!(split_pair("istio=egressgateway", '='), Some(("istio".into(), "egressgateway".into())));
        assert_eq!(split_pair("Gateway/waypoint", '/'), Some(("Gateway".into(), "waypoint".into())));
        assert_eq!(split_pair("nothing", '='), None);
        assert_eq!(split_pair("=x", '='), None);
    }
}
