//! `warden explain`: one request through the filter, and the trail of rules behind its decision.

use super::artifacts::start_host;
use super::exit::{CliError, Exit, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use super::notes::Notes;
use crate::display::shown_list;
use crate::explain::{self, RequestAttributes};
use crate::testing::runner;
use crate::testing::testfile::{self, Headers, RequestSpec};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use warden_config::Loaded;

pub(super) const ABOUT: &str = "\
Show how the compiled filter decides one request, and the trail of rules behind it.

The request runs through the filter in the harness, sent like `warden test` sends a case (to
port 80, the principal as the peer certificate's URI SAN); the native engine explains it: the
host, port and path as matched, every applicable authorization policy and which of its rules
matched. If the filter and the native engine disagree, that is reported and the exit code is 1.

With --connection it explains a connection instead, as the filter decides it when loaded as a
network filter (TLS passthrough, or mesh mTLS terminated at the gateway): from the server name,
the destination port, the principal and the source address, with Istio's TCP semantics.

  warden explain policy.yaml --method POST --authority httpbin.org --path /post \\
      --principal cluster.local/ns/default/sa/sleep
  warden explain policy.yaml --request 'POST httpbin.org/post'
  warden explain policy.yaml --connection --sni api.stripe.com --port 443";

#[derive(Args)]
pub(super) struct ExplainArgs {
    /// The policy: files, directories of them or - (standard input), read as one input.
    #[arg(required = true, value_name = "POLICY")]
    policy: Vec<PathBuf>,
    /// The request in short: 'METHOD authority/path' or a URL ('http://httpbin.org/get').
    #[arg(long, value_name = "REQUEST", conflicts_with_all = ["method", "authority", "path"])]
    request: Option<String>,
    /// The method [default: GET]
    #[arg(long)]
    method: Option<String>,
    /// The authority (host, optionally :port).
    #[arg(long)]
    authority: Option<String>,
    /// The path, with query [default: /]
    #[arg(long)]
    path: Option<String>,
    /// The caller's principal (peer certificate URI SAN; spiffe:// added if absent).
    #[arg(long)]
    principal: Option<String>,
    /// A request header; repeat for more.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The caller's IP address (source.address).
    #[arg(long)]
    source_ip: Option<String>,
    /// The destination (listener) port [default: the authority's, else 443 for https, else 80]
    #[arg(long)]
    port: Option<u16>,
    /// The TLS server name (SNI): of the connection, or the one the request came with where the
    /// gateway terminates TLS.
    #[arg(long)]
    sni: Option<String>,
    /// Explain a connection (the network filter) instead of a request: give --port, and --sni,
    /// --principal, --source-ip as the connection has them.
    #[arg(long, conflicts_with_all = ["request", "method", "authority", "path", "headers"], requires = "port")]
    connection: bool,
    /// Explain with this build of the filter instead of the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
}

/// A request given on the command line that cannot be read: the text, and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ArgError {
    /// `--header` without `=`.
    NotNameValue(String),
    /// `--header` with an empty name.
    EmptyName(String),
    /// `--request` that is neither `METHOD target` nor a URL.
    NotARequest(String),
    /// `--request` without an authority.
    NoAuthority(String),
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgError::NotNameValue(text) => write!(f, "'{text}': expected NAME=VALUE"),
            ArgError::EmptyName(text) => write!(f, "'{text}': the header name is empty"),
            ArgError::NotARequest(text) => write!(f, "--request '{text}': expected 'METHOD authority/path' or a URL"),
            ArgError::NoAuthority(text) => write!(f, "--request '{text}': no authority"),
        }
    }
}

impl std::error::Error for ArgError {}

pub(super) fn parse_header(text: &str) -> Result<(String, String), ArgError> {
    let (name, value) = text.split_once('=').ok_or_else(|| ArgError::NotNameValue(text.to_owned()))?;
    if name.trim().is_empty() {
        return Err(ArgError::EmptyName(text.to_owned()));
    }
    Ok((name.trim().to_owned(), value.to_owned()))
}

/// `'POST httpbin.org/post'`, `'http://httpbin.org/get'`, `'httpbin.org'`:
/// method, scheme, authority, path.
pub(super) fn parse_request_line(text: &str) -> Result<(String, Option<String>, String, String), ArgError> {
    let mut words = text.split_whitespace();
    let (method, target) = match (words.next(), words.next(), words.next()) {
        (Some(target), None, None) => ("GET".to_owned(), target),
        (Some(method), Some(target), None) => (method.to_owned(), target),
        _ => return Err(ArgError::NotARequest(text.to_owned())),
    };
    let (scheme, rest) = match target.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_owned()), rest),
        None => (None, target),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(ArgError::NoAuthority(text.to_owned()));
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok((method, scheme, authority.to_owned(), path))
}

pub(super) fn explain(
    mut args: ExplainArgs,
    wasm: &[u8],
    notes: &mut Notes,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    // `REV:PATH` (what `warden diff` prints for a policy from git) is read
    // from git, as `warden diff` reads it.
    let mut revisions = Vec::new();
    for (i, p) in args.policy.iter_mut().enumerate() {
        let Some(text) = p.to_str().map(str::to_owned) else { continue };
        let input = super::diff::input(&text, &format!("explain-{i}"))?;
        *p = input.path.clone();
        revisions.push(input);
    }
    if args.connection {
        return explain_connection(&args, wasm, notes, out, err);
    }
    let (method, scheme, authority, path) = match &args.request {
        Some(line) => match parse_request_line(line) {
            Ok(parts) => parts,
            Err(e) => return Err(CliError::Input(e.to_string())),
        },
        None => {
            let Some(authority) = args.authority.clone() else {
                return Err(CliError::Input(
                    "the request needs --authority (or --request 'METHOD authority/path')".into(),
                ));
            };
            let method = args.method.clone().unwrap_or_else(|| "GET".into());
            (method, None, authority, args.path.clone().unwrap_or_else(|| "/".into()))
        }
    };
    let spec = RequestSpec {
        principal: args.principal.clone().map(testfile::Principal::One),
        method,
        authority,
        path,
        scheme: scheme.unwrap_or_else(|| "http".into()),
        headers: Headers::Pairs(args.headers.clone()),
        body: None,
        body_chunks: None,
        body_base64: None,
        trailers: Headers::default(),
        source_ip: args.source_ip.clone(),
        port: args.port,
        sni: args.sni.clone(),
    };
    let request = match runner::request_for(&spec, &Default::default()) {
        Ok(runner::Arrival::Filter(r)) => r,
        Ok(runner::Arrival::Refused(refused)) => {
            writeln!(out, "request    {} {}{}", spec.method, spec.authority, spec.path)?;
            writeln!(out, "outcome    refused by Envoy before any filter: {} ({})", refused.status, refused.reason)?;
            writeln!(out, "decision   none: the request never reaches Warden")?;
            return Ok(EXIT_OK);
        }
        Err(e) => return Err(CliError::Input(e.to_string())),
    };
    let shown_policy = shown_list(&args.policy);
    let Loaded { config, policy, notes: noted } = match runner::load_policy(&args.policy) {
        Ok(loaded) => loaded,
        Err(e) => return Err(CliError::Input(runner::policy_error(&e))),
    };
    if notes.print(&noted, err)? {
        return Ok(EXIT_USAGE);
    }
    let host = start_host(args.filter.as_deref(), wasm)?;
    let mut vm = match host.vm(&config) {
        Ok(vm) => vm,
        Err(e) => return Err(CliError::Input(runner::vm_error(&e, &shown_policy))),
    };
    let outcome = vm.run(&request);
    let (native, trace) = policy.explain(&RequestAttributes(&request));
    let document: serde_json::Value = serde_json::from_slice(&config).unwrap_or_default();
    out.write_all(explain::render(&request, &outcome, &native, &trace, &document).as_bytes())?;
    let differences = explain::disagreements(&outcome, &request, &policy, &native);
    if differences.is_empty() {
        writeln!(out, "the filter in the harness and the native engine agree")?;
        return Ok(EXIT_OK);
    }
    writeln!(out, "DISAGREEMENT: the filter in the harness and the native engine decided differently:")?;
    for d in differences {
        writeln!(out, "  {d}")?;
    }
    Ok(EXIT_FAILED)
}

fn explain_connection(
    args: &ExplainArgs,
    wasm: &[u8],
    notes: &mut Notes,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let spec = testfile::ConnectionSpec {
        sni: args.sni.clone(),
        port: args.port,
        principal: args.principal.clone().map(testfile::Principal::One),
        source_ip: args.source_ip.clone(),
        data: None,
    };
    let connection = runner::tcp_connection_for(&spec).map_err(|e| CliError::Input(e.to_string()))?;
    let shown_policy = shown_list(&args.policy);
    let Loaded { config, policy, notes: noted } = match runner::load_policy(&args.policy) {
        Ok(loaded) => loaded,
        Err(e) => return Err(CliError::Input(runner::policy_error(&e))),
    };
    if notes.print(&noted, err)? {
        return Ok(EXIT_USAGE);
    }
    let host = start_host(args.filter.as_deref(), wasm)?;
    let mut vm = match host.vm_with_root_id(&config, warden_engine::record::NETWORK_ROOT_ID) {
        Ok(vm) => vm,
        Err(e) => return Err(CliError::Input(runner::vm_error(&e, &shown_policy))),
    };
    let outcome = vm.connect(&connection);
    let (native, trace) = policy.explain_connection(&explain::ConnectionAttributes(&connection));
    let document: serde_json::Value = serde_json::from_slice(&config).unwrap_or_default();
    out.write_all(explain::render_connection(&connection, &outcome, &native, &trace, &document).as_bytes())?;
    let differences = explain::connection_disagreements(&outcome, &native);
    if differences.is_empty() {
        writeln!(out, "the filter in the harness and the native engine agree")?;
        return Ok(EXIT_OK);
    }
    writeln!(out, "DISAGREEMENT: the filter in the harness and the native engine decided differently:")?;
    for d in differences {
        writeln!(out, "  {d}")?;
    }
    Ok(EXIT_FAILED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let p = |s: &str| parse_request_line(s).unwrap();
        assert_eq!(p("POST httpbin.org/post"), ("POST".into(), None, "httpbin.org".into(), "/post".into()));
        assert_eq!(p("httpbin.org"), ("GET".into(), None, "httpbin.org".into(), "/".into()));
        assert_eq!(
            p("https://api.stripe.com:443/v1/charges?x=1"),
            ("GET".into(), Some("https".into()), "api.stripe.com:443".into(), "/v1/charges?x=1".into())
        );
        assert_eq!(p("GET h.org?q"), ("GET".into(), None, "h.org".into(), "/?q".into()));
        assert!(parse_request_line("a b c").is_err());
        assert!(parse_request_line("GET /path").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header("x-a=1=2").unwrap(), ("x-a".into(), "1=2".into()));
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=v").is_err());
    }
}
