//! `warden wasmplugin`: the Istio WasmPlugin manifest that deploys the filter with a policy.

use super::artifacts::filter_module;
use super::exit::{CliError, Exit, EXIT_FAILED, EXIT_OK};
use super::notes::Notes;
use super::oci::OciVariant;
use crate::display::shown_list;
use crate::package::wasmplugin;
use std::io::Write;
use std::path::PathBuf;
use warden_config::istio::gateway;
use warden_config::{Loaded, PolicyLoadError};

pub(super) const ABOUT: &str = "\
Print the Istio WasmPlugin manifest that deploys the filter with a policy.

The policy (validated first) becomes spec.pluginConfig, spec.sha256 pins the module (the one
built into warden, or --filter FILE.wasm), phase is AUTHZ and failStrategy FAIL_CLOSE. For an
https:// or file:// url, sha256 is the module's: push exactly that file. For an oci:// url (or
one without a scheme), Istio checks the digest of the image manifest it pulls, so sha256 is
the manifest digest of the image `warden oci` writes for the module (--oci-variant if it was
written with --variant oci): push that image unchanged. Choose where it applies with --selector KEY=VALUE (a sidecar-mode
egress gateway: --selector istio=egressgateway) or --target-ref KIND/NAME (an ambient egress
waypoint: --target-ref Gateway/waypoint). With --type network the manifest deploys the same
module as a network filter (type: NETWORK, pluginName: warden.network), which decides TLS
passthrough and mesh-mTLS connections by server name; deploy both for a gateway that carries
both kinds of traffic.

  warden wasmplugin policy.yaml --url oci://registry.example.com/warden:0.1.0 \\
      --namespace istio-egress --target-ref Gateway/waypoint
  warden wasmplugin policy.yaml --url oci://registry.example.com/warden:0.1.0 \\
      --selector istio=egressgateway --type network

Exit codes: 0 written, 1 invalid policy, 2 usage or unreadable input.";

/// The largest object etcd stores (its default request limit), 1.5 MiB.
const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// The most all of an object's annotations may hold, 256 KiB: a client-side
/// `kubectl apply` copies the whole object into one.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// `warden wasmplugin`.
#[derive(clap::Args)]
pub(super) struct WasmpluginArgs {
    /// The policy: files, directories of them or - (standard input), read as one input.
    #[arg(required = true, value_name = "POLICY")]
    policy: Vec<PathBuf>,
    /// Where Istio pulls the module from: oci://REGISTRY/REPO:TAG, https://…/warden.wasm.
    #[arg(long)]
    url: String,
    /// A workload label KEY=VALUE for spec.selector (egress gateways), repeatable.
    #[arg(long = "selector", value_name = "KEY=VALUE", conflicts_with = "target_refs")]
    selector: Vec<String>,
    /// A KIND/NAME for spec.targetRefs (waypoints: Gateway/waypoint), repeatable.
    #[arg(long = "target-ref", value_name = "KIND/NAME")]
    target_refs: Vec<String>,
    /// metadata.name [default: warden, or warden-network with --type network]
    #[arg(long)]
    name: Option<String>,
    /// The filter chain: http (requests) or network (TLS passthrough and mesh-mTLS connections,
    /// Istio's type: NETWORK with pluginName warden.network).
    #[arg(long = "type", value_enum, default_value_t = PluginKind::Http)]
    plugin_type: PluginKind,
    /// metadata.namespace.
    #[arg(long, default_value = "istio-system")]
    namespace: String,
    /// The module the manifest pins (its sha256); default: the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
    /// For an oci:// url: the image format pushed there (warden oci --variant); sha256 pins its manifest.
    #[arg(long, value_enum, default_value_t = OciVariant::Compat)]
    oci_variant: OciVariant,
}

/// `--type`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum PluginKind {
    /// The HTTP filter chain.
    Http,
    /// The network filter chain.
    Network,
}

pub(super) fn wasmplugin_manifest(
    args: WasmpluginArgs,
    built_in: &[u8],
    notes: &mut Notes,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let target = if args.target_refs.is_empty() {
        let labels: Option<Vec<_>> = args.selector.iter().map(|s| wasmplugin::split_pair(s, '=')).collect();
        match labels {
            Some(labels) if !labels.is_empty() => wasmplugin::Target::Selector(labels),
            _ => {
                return Err(CliError::Input(
                    "give --selector KEY=VALUE (gateways) or --target-ref KIND/NAME (waypoints)".into(),
                ));
            }
        }
    } else {
        match args.target_refs.iter().map(|s| wasmplugin::split_pair(s, '/')).collect::<Option<Vec<_>>>() {
            Some(refs) => wasmplugin::Target::TargetRefs(refs),
            None => {
                return Err(CliError::Input("--target-ref takes KIND/NAME, e.g. Gateway/waypoint".into()));
            }
        }
    };
    // Istio's agent fetches modules over these schemes only; a url without
    // one is an OCI image reference.
    let (scheme, rest) = args.url.split_once("://").map_or((None, args.url.as_str()), |(s, r)| (Some(s), r));
    if let Some(scheme) = scheme {
        if !["oci", "https", "http", "file"].iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
            return Err(CliError::Input(format!(
                "--url {}: Istio fetches a module only from oci:// (the default when there is no scheme), \
                 https://, http:// or file:// urls",
                args.url
            )));
        }
    }
    // And it must name a module: a registry or host (a path for file://),
    // nothing a YAML reader or the agent would read otherwise.
    let file = scheme.is_some_and(|s| s.eq_ignore_ascii_case("file"));
    let names_nothing = if file { rest.is_empty() } else { rest.split('/').next().is_none_or(str::is_empty) };
    if names_nothing || args.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CliError::Input(format!(
            "--url '{}': names no module: give oci://REGISTRY/IMAGE:TAG (or REGISTRY/IMAGE:TAG), \
             https://HOST/PATH or file:///PATH",
            args.url.escape_debug()
        )));
    }
    // Never ship a policy the filter would refuse.
    let Loaded { config, policy: compiled, notes: mut noted } = match warden_config::load_policy(&args.policy) {
        Ok(loaded) => loaded,
        Err(PolicyLoadError::Unreadable(e)) => return Err(CliError::Input(e.to_string())),
        Err(PolicyLoadError::Invalid(e)) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_FAILED);
        }
    };
    let wasm = filter_module(args.filter.as_deref(), built_in)?;
    let policy: serde_json::Value = match serde_json::from_slice(&config) {
        Ok(v) => v,
        Err(e) => {
            return Err(CliError::Input(format!("{}: {e}", shown_list(&args.policy))));
        }
    };
    // Nor one that refuses every request, or does nothing.
    let listed = |key: &str| policy.get(key).and_then(serde_json::Value::as_array).is_some_and(|a| !a.is_empty());
    if !["services", "authorization", "dlp"].iter().any(|k| listed(k)) {
        writeln!(
            err,
            "error: {}: the policy is empty (no services, authorization or dlp): under REGISTRY_ONLY it would \
             refuse every request, under ALLOW_ANY let every one through; no WasmPlugin written",
            shown_list(&args.policy)
        )?;
        return Ok(EXIT_FAILED);
    }
    let plugin_type = match args.plugin_type {
        PluginKind::Http => wasmplugin::PluginType::Http,
        PluginKind::Network => wasmplugin::PluginType::Network,
    };
    let default_name = if plugin_type == wasmplugin::PluginType::Network { "warden-network" } else { "warden" };
    let options = wasmplugin::Options {
        name: args.name.unwrap_or_else(|| default_name.to_owned()),
        plugin_type,
        namespace: args.namespace,
        url: args.url,
        target,
        oci_variant: args.oci_variant.variant(),
    };
    let manifest = wasmplugin::manifest(&policy, &wasm, &options).map_err(|e| CliError::Input(e.to_string()))?;
    // Nor one that refuses everything where it goes, without a word.
    if !gateway::maps_ports(policy.get("gatewayPorts")) {
        if let Some(label) = gateway::egress_gateway_label(&manifest) {
            let file = match args.policy.as_slice() {
                [one] => Some(one.as_path()),
                _ => None,
            };
            noted.push(gateway::missing_gateway_ports(file, "the WasmPlugin", &label, "the policy"));
        }
    }
    if notes.print(&noted, err)? {
        return Ok(EXIT_FAILED);
    }
    // Nor one the API server would refuse.
    let size = serde_json::to_vec(&manifest).map_or(0, |json| json.len());
    if size > MAX_OBJECT_BYTES {
        let bundle = warden_engine::bundle::encode(&compiled).map_or(0, |b| b.len());
        writeln!(
            err,
            "error: {policy}: the WasmPlugin would be {size} bytes, more than a Kubernetes object may hold (etcd \
             refuses objects over 1.5 MiB), so the API server would refuse it. Compile the policy into the binary \
             bundle (`warden compile {policy} -o policy.bin`: {bundle} bytes) and load it with an EnvoyFilter whose \
             configuration is a google.protobuf.BytesValue (docs/ISTIO.md), or split the policy",
            policy = shown_list(&args.policy)
        )?;
        return Ok(EXIT_FAILED);
    }
    if size > MAX_ANNOTATIONS_BYTES {
        writeln!(
            err,
            "warning: {}: the WasmPlugin is {size} bytes: apply it with `kubectl apply --server-side` (a client-side \
             apply copies the object into an annotation, and annotations are limited to 256 KiB)",
            shown_list(&args.policy)
        )?;
    }
    match serde_yaml_ng::to_string(&manifest) {
        Ok(yaml) => {
            out.write_all(yaml.as_bytes())?;
            Ok(EXIT_OK)
        }
        Err(e) => Err(CliError::Input(format!("cannot write the manifest: {e}"))),
    }
}
