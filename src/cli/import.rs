//! `warden import`: Istio resources as a `warden/v1` policy.

use super::exit::{CliError, Exit, EXIT_OK, EXIT_USAGE};
use super::notes::Notes;
use crate::display::shown;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

pub(super) const ABOUT: &str = "\
Convert Istio resources (ServiceEntry, AuthorizationPolicy, mesh config) into a warden/v1 policy.

Reads multi-document YAML: ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3) becomes a
service named <namespace>/<name>; AuthorizationPolicy (security.istio.io v1, v1beta1) becomes
an authorization policy named <namespace>/<name>, scoped to the ServiceEntries its targetRefs
name; the istio.io/dry-run annotation becomes dryRun; a mesh config (bare, in an IstioOperator,
in Helm values or in the istio ConfigMap) gives outboundTrafficPolicy (default REGISTRY_ONLY)
and pathNormalization (default BASE, Istio's). At most one warden/v1 document may give the
settings Istio has no word for (name, identity, gatewayPorts, responses). Other kinds are
skipped with a note on stderr; a field Warden cannot honour is an error naming the resource and
field. Input that selects Istio's egress gateway (istio: egressgateway) without gatewayPorts
gets a warning: the gateway listens on 8080/8443, and without the mapping every request there
is refused as unregistered. With --strict, notes and warnings are errors. Files, directories
and - (standard input) are one input. warden test, check, explain, compile and wasmplugin read
the same input directly.

  warden import serviceentry.yaml authorizationpolicy.yaml -o policy.yaml
  warden import istio/ settings.yaml --strict -o policy.yaml

Exit codes: 0 converted, 2 unreadable or unconvertible input. See docs/ISTIO.md.";

/// `warden import`.
#[derive(Args)]
pub(super) struct ImportArgs {
    /// Files of Istio YAML (and at most one warden/v1 document with settings), directories of
    /// them, or - (standard input).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write the policy to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The policy's name [default: the warden/v1 document's, else istio]
    #[arg(long)]
    name: Option<String>,
    /// Overrides the mesh config's outboundTrafficPolicy.mode [default: the mesh config's, else REGISTRY_ONLY]
    #[arg(long, value_enum, ignore_case = true, value_name = "MODE")]
    outbound_traffic_policy: Option<OutboundMode>,
}

/// `--outbound-traffic-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum OutboundMode {
    /// Unregistered hosts are refused (502).
    #[value(name = "REGISTRY_ONLY")]
    RegistryOnly,
    /// Unregistered hosts may be reached.
    #[value(name = "ALLOW_ANY")]
    AllowAny,
}

pub(super) fn import(args: ImportArgs, notes: &mut Notes, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    use warden_config::istio;
    let sources = warden_config::read_sources(&args.files).map_err(|e| CliError::Input(e.to_string()))?;
    let outbound_traffic_policy = args.outbound_traffic_policy.map(|m| match m {
        OutboundMode::RegistryOnly => warden_engine::document::OutboundTrafficPolicy::RegistryOnly,
        OutboundMode::AllowAny => warden_engine::document::OutboundTrafficPolicy::AllowAny,
    });
    let options = istio::Options { name: args.name, outbound_traffic_policy };
    let imported = istio::import(&sources, &options).map_err(|e| CliError::Input(e.to_string()))?;
    if notes.print(&imported.notes, err)? {
        return Ok(EXIT_USAGE);
    }
    let yaml = imported.to_yaml().map_err(|e| CliError::Input(e.to_string()))?;
    let Some(output) = args.output else {
        out.write_all(yaml.as_bytes())?;
        return Ok(EXIT_OK);
    };
    if let Err(e) = std::fs::write(&output, yaml.as_bytes()) {
        return Err(CliError::Input(format!("cannot write {}: {e}", shown(&output))));
    }
    let (services, policies) = imported.counts();
    writeln!(out, "wrote {} ({services} services, {policies} authorization policies)", shown(&output))?;
    Ok(EXIT_OK)
}
