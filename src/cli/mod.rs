//! The `warden` command line. `main.rs` only calls [`run`]; tests call
//! [`run_with`] and capture what it writes.
//!
//! Commands: `test` (test files through the compiled filter), `check`
//! (validate and lint), `explain` (one request, decision and trail),
//! `compile` (binary bundle), `wasm` (the filter module), `oci` (the module
//! as an OCI image), `wasmplugin` (the Istio manifest), `replay` (an access
//! log against a policy) and `import` (Istio resources to a policy). See
//! `docs/CLI.md`.

use crate::display::shown;
use crate::explain::{self, RequestAttributes};
use crate::package::{oci, wasmplugin};
use crate::testing::coverage;
use crate::testing::report::{self, Totals};
use crate::testing::runner::{self, Options};
use crate::testing::testfile::{self, Headers, RequestSpec};
use crate::{lint, replay};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::borrow::Cow;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use warden_engine::{bundle, compile};
use warden_harness::{Host, HostOptions};

/// Everything went as asked.
pub const EXIT_OK: i32 = 0;
/// A test or a check failed.
pub const EXIT_FAILED: i32 = 1;
/// The command line or an input was unusable.
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Egress policy filter for Envoy: test, check, explain, compile and ship policies",
    after_help = "Exit codes: 0 all good, 1 a test or check failed, 2 usage or input error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the cases of *.test.yaml files through the compiled filter.
    #[command(long_about = TEST_ABOUT)]
    Test(TestArgs),
    /// Validate policy files and lint them; errors and warnings name the exact field.
    #[command(long_about = CHECK_ABOUT)]
    Check {
        /// Policy files (YAML or JSON, bare or in a warden/v1 envelope).
        #[arg(required = true, value_name = "POLICY")]
        policies: Vec<PathBuf>,
        /// Exit 1 when a lint warns.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Show how the compiled filter decides one request, and the trail of rules behind it.
    #[command(long_about = EXPLAIN_ABOUT)]
    Explain(ExplainArgs),
    /// Compile a policy into the binary bundle the filter also accepts.
    Compile {
        /// The policy file.
        policy: PathBuf,
        /// Where to write the bundle.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write the filter module (warden.wasm) this CLI was built with.
    Wasm {
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write the filter as an OCI image (a layout directory, or a tar of one) for oci:// WasmPlugin urls.
    #[command(long_about = OCI_ABOUT)]
    Oci(OciArgs),
    /// Print the Istio WasmPlugin manifest that deploys the filter with a policy.
    #[command(long_about = WASMPLUGIN_ABOUT)]
    Wasmplugin(WasmpluginArgs),
    /// Replay an Envoy JSON access log against a policy: what it would allow, deny, and why.
    #[command(long_about = REPLAY_ABOUT)]
    Replay(ReplayArgs),
    /// Print the JSON Schema of a warden/v1 policy document, for editors.
    #[command(long_about = SCHEMA_ABOUT)]
    Schema {
        /// Write it to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Convert Istio resources (ServiceEntry, AuthorizationPolicy, mesh config) into a warden/v1 policy.
    #[command(long_about = IMPORT_ABOUT)]
    Import(ImportArgs),
}

const IMPORT_ABOUT: &str = "\
Convert Istio resources (ServiceEntry, AuthorizationPolicy, mesh config) into a warden/v1 policy.

Reads multi-document YAML: ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3) becomes a
service named <namespace>/<name>; AuthorizationPolicy (security.istio.io v1, v1beta1) becomes
an authorization policy named <namespace>/<name>, scoped to the ServiceEntries its targetRefs
name; the istio.io/dry-run annotation becomes dryRun; a mesh config (bare, in an IstioOperator,
in Helm values or in the istio ConfigMap) gives outboundTrafficPolicy (default REGISTRY_ONLY)
and pathNormalization (default BASE, Istio's). At most one warden/v1 document may give the
settings Istio has no word for (name, identity, gatewayPorts, responses). Other kinds are
skipped with a note on stderr; a field Warden cannot honour is an error naming the resource and
field. warden test, check, explain, compile and wasmplugin read the same input directly.

  warden import serviceentry.yaml authorizationpolicy.yaml -o policy.yaml

Exit codes: 0 converted, 2 unreadable or unconvertible input. See docs/ISTIO.md.";

/// `warden import`.
#[derive(Args)]
struct ImportArgs {
    /// Files of Istio YAML (and at most one warden/v1 document with settings).
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
enum OutboundMode {
    /// Unregistered hosts are refused (502).
    #[value(name = "REGISTRY_ONLY")]
    RegistryOnly,
    /// Unregistered hosts may be reached.
    #[value(name = "ALLOW_ANY")]
    AllowAny,
}

const OCI_ABOUT: &str = "\
Write the filter as an OCI image (a layout directory, or a tar of one) for oci:// WasmPlugin urls.

-o DIR writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) into DIR, which
must not exist or be empty; -o FILE.tar writes the same layout as one tar. The image is in the
format Istio pulls: by default the compat variant of the Wasm image specification (one
tar+gzip layer holding plugin.wasm, standard media types: every registry takes it, Istio tries
it first); --variant oci writes the wasme artifact format (the raw module as a
application/vnd.module.wasm.content.layer.v1+wasm layer). The output is reproducible: the same
module gives the same manifest digest, which is the spec.sha256 a WasmPlugin with an oci:// url
needs (warden wasmplugin --url oci://... prints it). Push it unchanged:

  warden oci -o warden-oci
  oras cp --from-oci-layout warden-oci:0.1.0 registry.example.com/warden:0.1.0
  crane push warden-oci registry.example.com/warden:0.1.0
  skopeo copy --preserve-digests oci:warden-oci:0.1.0 docker://registry.example.com/warden:0.1.0

Exit codes: 0 written, 2 unreadable module or unwritable output.";

/// `warden oci`.
#[derive(Args)]
struct OciArgs {
    /// A directory for the OCI image layout, or FILE.tar for the layout as one tar.
    #[arg(short, long, value_name = "DIR|FILE.tar")]
    output: PathBuf,
    /// The image format.
    #[arg(long, value_enum, default_value_t = OciVariant::Compat)]
    variant: OciVariant,
    /// The tag the layout's index.json gives the image (org.opencontainers.image.ref.name).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
    /// Package this build of the filter instead of the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
}

/// `--variant` of `warden oci`, `--oci-variant` of `warden wasmplugin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OciVariant {
    /// One tar+gzip layer holding plugin.wasm (standard media types; Istio's first choice).
    Compat,
    /// The raw module as an application/vnd.module.wasm.content.layer.v1+wasm layer (wasme's format).
    Oci,
}

impl From<OciVariant> for oci::Variant {
    fn from(v: OciVariant) -> Self {
        match v {
            OciVariant::Compat => oci::Variant::Compat,
            OciVariant::Oci => oci::Variant::Oci,
        }
    }
}

const REPLAY_ABOUT: &str = "\
Replay an Envoy JSON access log against a policy: what it would allow, deny, and why.

Reads one JSON object per line, as Istio gateways log with accessLogEncoding: JSON (text
before the first '{', e.g. from kubectl logs --timestamps, is ignored). authority, method and
path are required (other lines are skipped and counted); downstream_local_address gives the
destination port (default 80), downstream_remote_address the source address,
requested_server_name the SNI; user_agent and x_forwarded_for are sent as headers. The
principal comes from --principal-field NAME (a field logging %DOWNSTREAM_PEER_URI_SAN%, say)
or --principal VALUE, and reaches the filter through the policy's first identity source.
Each line runs through the compiled filter in the harness (one VM, reused) or, with
--engine native, through the native engine.

The report counts requests per outcome (allow, denied, unregistered, bad-request, dlp) and
groups them by deciding policy, reason or host, with the first --examples lines of each;
queries are never shown. DLP sees only the query and the logged headers: access logs carry no
bodies. If lines carry Warden's decision record (--decision-field, default warden), decisions
that would change are counted and shown. A progress bar runs on stderr when it is a terminal.

  warden replay policy.yaml access.log --principal-field downstream_peer_uri_san
  kubectl logs -n istio-system deploy/istio-egressgateway | warden replay policy.yaml -

Exit codes: 0 replayed (whatever the outcomes), 2 unreadable policy or log, invalid policy.";

/// `warden replay`.
#[derive(Args)]
struct ReplayArgs {
    /// The policy file (warden/v1, or Istio YAML).
    policy: PathBuf,
    /// The access log: JSON lines, gzipped if it ends in .gz, - for standard input.
    #[arg(value_name = "ACCESS_LOG")]
    access_log: PathBuf,
    /// The field of each line that holds the caller's principal (spiffe:// optional).
    #[arg(long, value_name = "NAME", conflicts_with = "principal")]
    principal_field: Option<String>,
    /// The same principal for every line.
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    /// The field holding Warden's decision record logged at the time, compared with the replay.
    #[arg(long, value_name = "NAME", default_value = replay::DEFAULT_DECISION_FIELD)]
    decision_field: String,
    /// How many example lines to show per outcome.
    #[arg(long, value_name = "N", default_value_t = 3)]
    examples: usize,
    /// What decides: the compiled filter in the harness, or the native engine.
    #[arg(long, value_enum, default_value_t = ReplayEngine::Filter)]
    engine: ReplayEngine,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReplayFormat::Human)]
    format: ReplayFormat,
    /// Replay with this build of the filter instead of the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
}

/// `--engine` of `warden replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReplayEngine {
    /// The compiled filter in the harness (wasmtime), one VM reused.
    Filter,
    /// The native engine (the same decisions, faster).
    Native,
}

/// `--format` of `warden replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReplayFormat {
    /// Counts, groups and examples.
    Human,
    /// One JSON document.
    Json,
}

const SCHEMA_ABOUT: &str = "\
Print the JSON Schema of a warden/v1 policy document, for editors.

Generated from the same types the filter parses, so it cannot drift from them: unknown fields
are refused (additionalProperties: false), enums list their values. Point an editor at it,
e.g. with the YAML language server's modeline at the top of a policy file:

  # yaml-language-server: $schema=./warden.schema.json

The schema checks shape; `warden check` checks meaning (templates, ports, references, lints).";

/// `warden wasmplugin`.
#[derive(clap::Args)]
struct WasmpluginArgs {
    /// The policy file (YAML or JSON, bare or in a warden/v1 envelope).
    policy: PathBuf,
    /// Where Istio pulls the module from: oci://REGISTRY/REPO:TAG, https://…/warden.wasm.
    #[arg(long)]
    url: String,
    /// A workload label KEY=VALUE for spec.selector (egress gateways), repeatable.
    #[arg(long = "selector", value_name = "KEY=VALUE", conflicts_with = "target_refs")]
    selector: Vec<String>,
    /// A KIND/NAME for spec.targetRefs (waypoints: Gateway/waypoint), repeatable.
    #[arg(long = "target-ref", value_name = "KIND/NAME")]
    target_refs: Vec<String>,
    /// metadata.name.
    #[arg(long, default_value = "warden")]
    name: String,
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

const TEST_ABOUT: &str = "\
Run the cases of *.test.yaml files through the compiled filter.

Finds every *.test.yaml under the paths (default: the current directory), loads the policy each
names, and sends every case through the filter in the harness (wasmtime), one VM per test file
shared by its cases like one Envoy worker (--isolate: a fresh VM per case).

Each request is sent as a workload's call through its sidecar to port 80: Envoy's
destination.port is 80, so a port-less authority is looked up on port 80 and an explicit
port (api.stripe.com:443) wins. A case with a principal arrives over mTLS (:scheme https)
with that principal as the peer certificate's URI SAN (spiffe:// added if absent); sourceIp
becomes source.address; a body comes with its content-length, bodyChunks as separate chunks.
This is how the end-to-end tests send the same cases to a real Envoy.

Prints one line per case (ok / FAIL), the request, expected and actual outcome of each
failure, and a closing line `N passed, M failed`.

Exit codes: 0 every case passed, 1 a case failed, 2 usage or input error (unreadable test
file, invalid policy, no test files found).";

const CHECK_ABOUT: &str = "\
Validate policy files and lint them; errors and warnings name the exact field.

Lints: unreachable or shadowed rules (after a rule that matches everything, identical to an
earlier rule), policies without rules (an ALLOW without rules denies everything), ALLOW with
notPaths, DENY with paths under pathNormalization: NONE, wildcards over a public suffix
(*.com, *.co.uk), methods with lowercase letters (never match), the header identity source
(any client can set it).

Exit codes: 0 valid (warnings allowed unless --deny-warnings), 1 invalid policy (or
warnings with --deny-warnings), 2 unreadable file.";

const EXPLAIN_ABOUT: &str = "\
Show how the compiled filter decides one request, and the trail of rules behind it.

The request runs through the filter in the harness, sent like `warden test` sends a case (to
port 80, the principal as the peer certificate's URI SAN); the native engine explains it: the
host, port and path as matched, every applicable authorization policy and which of its rules
matched. If the filter and the native engine disagree, that is reported and the exit code is 1.

  warden explain policy.yaml --method POST --authority httpbin.org --path /post \\
      --principal cluster.local/ns/default/sa/sleep
  warden explain policy.yaml --request 'POST httpbin.org/post'";

const WASMPLUGIN_ABOUT: &str = "\
Print the Istio WasmPlugin manifest that deploys the filter with a policy.

The policy (validated first) becomes spec.pluginConfig, spec.sha256 pins the module (the one
built into warden, or --filter FILE.wasm), phase is AUTHZ and failStrategy FAIL_CLOSE. For an
https:// or file:// url, sha256 is the module's: push exactly that file. For an oci:// url (or
one without a scheme), Istio checks the digest of the image manifest it pulls, so sha256 is
the manifest digest of the image `warden oci` writes for the module (--oci-variant if it was
written with --variant oci): push that image unchanged. Choose where it applies with --selector KEY=VALUE (a sidecar-mode
egress gateway: --selector istio=egressgateway) or --target-ref KIND/NAME (an ambient egress
waypoint: --target-ref Gateway/waypoint).

  warden wasmplugin policy.yaml --url oci://registry.example.com/warden:0.1.0 \\
      --namespace istio-egress --target-ref Gateway/waypoint

Exit codes: 0 written, 1 invalid policy, 2 usage or unreadable input.";

/// Output formats of `warden test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per case, failures in detail, a closing line.
    Human,
    /// One JSON document with every case's result.
    Json,
    /// JUnit XML, one testsuite per test file.
    Junit,
}

#[derive(Args)]
struct TestArgs {
    /// Test files, or directories to search for *.test.yaml [default: .]
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Test this build of the filter instead of the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// After the run, list the rules and services no case touched, per policy file.
    #[arg(long)]
    coverage: bool,
    /// A fresh VM for every case (default: one VM per test file).
    #[arg(long)]
    isolate: bool,
}

#[derive(Args)]
struct ExplainArgs {
    /// The policy file.
    policy: PathBuf,
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
    /// Explain with this build of the filter instead of the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("'{text}': expected NAME=VALUE"))?;
    if name.trim().is_empty() {
        return Err(format!("'{text}': the header name is empty"));
    }
    Ok((name.trim().to_owned(), value.to_owned()))
}

/// Runs the CLI with `args` (program name first), printing to stdout and
/// stderr, and returns the exit code.
pub fn run<I, T>(args: I, filter_wasm: &[u8]) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    use std::io::IsTerminal;
    let stdout = io::stdout();
    let stderr = io::stderr();
    let progress = stderr.is_terminal();
    run_inner(args, filter_wasm, &mut stdout.lock(), &mut stderr.lock(), progress)
}

/// Runs the CLI with `args` (program name first), writing what it prints
/// to `out` and `err`, and returns the exit code.
pub fn run_with<I, T>(args: I, filter_wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, filter_wasm, out, err, false)
}

/// [`run_with`], and whether progress bars may be drawn on the process's
/// stderr (only when it is a terminal; never for captured output).
fn run_inner<I, T>(args: I, filter_wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write, progress: bool) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
                EXIT_USAGE
            } else {
                let _ = out.write_all(text.as_bytes());
                EXIT_OK
            };
        }
    };
    let result = match cli.command {
        Command::Test(args) => test(args, filter_wasm, out, err),
        Command::Check { policies, deny_warnings } => check(&policies, deny_warnings, out, err),
        Command::Explain(args) => explain(args, filter_wasm, out, err),
        Command::Compile { policy, output } => compile_to(&policy, &output, out, err),
        Command::Wasm { output } => write(&output, filter_wasm, out, err),
        Command::Oci(args) => oci_image(args, filter_wasm, out, err),
        Command::Wasmplugin(args) => wasmplugin_manifest(args, filter_wasm, out, err),
        Command::Replay(args) => replay_log(args, filter_wasm, out, err, progress),
        Command::Schema { output } => schema(output.as_deref(), out, err),
        Command::Import(args) => import(args, out, err),
    };
    let code = result.unwrap_or(EXIT_USAGE);
    let _ = out.flush();
    let _ = err.flush();
    code
}

/// The filter to run: `--filter FILE.wasm`, else the built-in one.
fn filter_module<'a>(given: Option<&Path>, built_in: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
    match given {
        None => Ok(Cow::Borrowed(built_in)),
        Some(path) => std::fs::read(path).map(Cow::Owned).map_err(|e| format!("{}: cannot read: {e}", shown(path))),
    }
}

fn start_host(given: Option<&Path>, built_in: &[u8]) -> Result<Host, String> {
    let wasm = filter_module(given, built_in)?;
    let name = given.map_or_else(|| "the built-in filter".to_owned(), shown);
    Host::new(&wasm, HostOptions::default()).map_err(|e| format!("{name}: {e}"))
}

fn test(args: TestArgs, wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    let roots = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths };
    for root in &roots {
        if !root.exists() {
            writeln!(err, "error: {}: no such file or directory", shown(root))?;
            return Ok(EXIT_USAGE);
        }
    }
    let mut files: Vec<PathBuf> = roots.iter().flat_map(|r| testfile::discover(r)).collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        let list: Vec<String> = roots.iter().map(|r| shown(r)).collect();
        writeln!(err, "error: no *.test.yaml files under {}", list.join(", "))?;
        return Ok(EXIT_USAGE);
    }
    let host = match start_host(args.filter.as_deref(), wasm) {
        Ok(h) => h,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };

    let options = Options { isolate: args.isolate };
    let mut runs = Vec::with_capacity(files.len());
    for file in &files {
        let run = runner::run_file(&host, file, &options);
        if let Err(e) = &run.result {
            writeln!(err, "error: {e}")?;
        }
        if args.format == Format::Human {
            report::human_file(out, &run)?;
        }
        runs.push(run);
    }
    let totals = Totals::of(&runs);
    let coverage = args.coverage.then(|| coverage::compute(&runs));
    match args.format {
        Format::Human => {
            if let Some(c) = &coverage {
                report::human_coverage(out, c)?;
            }
            writeln!(out, "{}", totals.closing_line())?;
        }
        Format::Json => {
            let doc = report::json_report(&runs, coverage.as_deref());
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
            writeln!(out)?;
        }
        Format::Junit => {
            let xml = report::junit_report(&runs).to_string().map_err(io::Error::other)?;
            writeln!(out, "{xml}")?;
            if let Some(c) = &coverage {
                report::human_coverage(err, c)?;
            }
        }
    }
    if totals.errors > 0 {
        let files = if totals.errors == 1 { "file" } else { "files" };
        writeln!(err, "error: {} test {files} could not be run", totals.errors)?;
        return Ok(EXIT_USAGE);
    }
    Ok(if totals.failed > 0 { EXIT_FAILED } else { EXIT_OK })
}

fn check(policies: &[PathBuf], deny_warnings: bool, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    let mut code = EXIT_OK;
    for path in policies {
        let name = shown(path);
        let config = match warden_config::load_config(path) {
            Ok(c) => c,
            Err(e) => {
                writeln!(err, "error: {name}: {}", e.message)?;
                code = code.max(EXIT_USAGE);
                continue;
            }
        };
        let policy = match compile::load(&config) {
            Ok(p) => p,
            Err(e) => {
                writeln!(out, "error: {name}: {e}")?;
                code = code.max(EXIT_FAILED);
                continue;
            }
        };
        let lints = match (compile::parse_json(&config), serde_json::from_slice(&config)) {
            (Ok(doc), Ok(raw)) => lint::lint(&doc, &raw),
            _ => Vec::new(),
        };
        for l in &lints {
            writeln!(out, "warning: {name}: {}: {}", l.path, l.message)?;
        }
        let warnings = match lints.len() {
            0 => String::new(),
            1 => ", 1 warning".to_owned(),
            n => format!(", {n} warnings"),
        };
        writeln!(
            out,
            "{name}: ok ({} services, {} authorization policies){warnings}",
            policy.registry().services().len(),
            policy.authz_policies().len()
        )?;
        if deny_warnings && !lints.is_empty() {
            code = code.max(EXIT_FAILED);
        }
    }
    Ok(code)
}

/// `'POST httpbin.org/post'`, `'http://httpbin.org/get'`, `'httpbin.org'`:
/// method, scheme, authority, path.
fn parse_request_line(text: &str) -> Result<(String, Option<String>, String, String), String> {
    let mut words = text.split_whitespace();
    let (method, target) = match (words.next(), words.next(), words.next()) {
        (Some(target), None, None) => ("GET".to_owned(), target),
        (Some(method), Some(target), None) => (method.to_owned(), target),
        _ => return Err(format!("--request '{text}': expected 'METHOD authority/path' or a URL")),
    };
    let (scheme, rest) = match target.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_owned()), rest),
        None => (None, target),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(format!("--request '{text}': no authority"));
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

fn explain(args: ExplainArgs, wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    let usage = |err: &mut dyn Write, message: &str| -> io::Result<i32> {
        writeln!(err, "error: {message}")?;
        Ok(EXIT_USAGE)
    };
    let (method, scheme, authority, path) = match &args.request {
        Some(line) => match parse_request_line(line) {
            Ok(parts) => parts,
            Err(e) => return usage(err, &e),
        },
        None => {
            let Some(authority) = args.authority.clone() else {
                return usage(err, "the request needs --authority (or --request 'METHOD authority/path')");
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
        source_ip: args.source_ip.clone(),
        port: args.port,
    };
    let request = match runner::request_for(&spec, &Default::default()) {
        Ok(runner::Arrival::Filter(r)) => r,
        Ok(runner::Arrival::Refused(refused)) => {
            writeln!(out, "request    {} {}{}", spec.method, spec.authority, spec.path)?;
            writeln!(out, "outcome    refused by Envoy before any filter: {} ({})", refused.status, refused.reason)?;
            writeln!(out, "decision   none: the request never reaches Warden")?;
            return Ok(EXIT_OK);
        }
        Err(e) => return usage(err, &e),
    };
    let shown_policy = shown(&args.policy);
    let (config, policy) = match runner::load_policy(&args.policy, &shown_policy) {
        Ok(loaded) => loaded,
        Err(e) => return usage(err, &e),
    };
    let host = match start_host(args.filter.as_deref(), wasm) {
        Ok(h) => h,
        Err(e) => return usage(err, &e),
    };
    let mut vm = match host.vm(&config) {
        Ok(vm) => vm,
        Err(e) => return usage(err, &runner::vm_error(&e, &shown_policy)),
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

fn compile_to(policy: &Path, output: &Path, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    let config = match warden_config::load_config(policy) {
        Ok(c) => c,
        Err(e) => {
            writeln!(err, "error: {}: {}", shown(policy), e.message)?;
            return Ok(EXIT_USAGE);
        }
    };
    let bytes = match compile::load(&config).and_then(|p| bundle::encode(&p)) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: {}: {e}", shown(policy))?;
            return Ok(EXIT_FAILED);
        }
    };
    write(output, &bytes, out, err)
}

fn write(output: &Path, bytes: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    match std::fs::write(output, bytes) {
        Ok(()) => {
            writeln!(out, "wrote {} ({} bytes)", shown(output), bytes.len())?;
            Ok(EXIT_OK)
        }
        Err(e) => {
            writeln!(err, "error: cannot write {}: {e}", shown(output))?;
            Ok(EXIT_USAGE)
        }
    }
}

/// The JSON Schema of the policy document.
pub fn policy_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(warden_engine::Document)).unwrap_or_default();
    if let Some(map) = schema.as_object_mut() {
        map.insert("title".into(), "warden/v1 policy".into());
        map.insert(
            "description".into(),
            "An egress policy for the Warden Envoy filter: registry, authorization, responses.".into(),
        );
    }
    schema
}

fn schema(output: Option<&Path>, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    let text = match serde_json::to_string_pretty(&policy_schema()) {
        Ok(t) => t + "\n",
        Err(e) => {
            writeln!(err, "error: cannot write the schema: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    match output {
        Some(path) => write(path, text.as_bytes(), out, err),
        None => {
            out.write_all(text.as_bytes())?;
            Ok(EXIT_OK)
        }
    }
}

fn wasmplugin_manifest(
    args: WasmpluginArgs,
    built_in: &[u8],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<i32> {
    let target = if args.target_refs.is_empty() {
        let labels: Option<Vec<_>> = args.selector.iter().map(|s| wasmplugin::split_pair(s, '=')).collect();
        match labels {
            Some(labels) if !labels.is_empty() => wasmplugin::Target::Selector(labels),
            _ => {
                writeln!(err, "error: give --selector KEY=VALUE (gateways) or --target-ref KIND/NAME (waypoints)")?;
                return Ok(EXIT_USAGE);
            }
        }
    } else {
        match args.target_refs.iter().map(|s| wasmplugin::split_pair(s, '/')).collect::<Option<Vec<_>>>() {
            Some(refs) => wasmplugin::Target::TargetRefs(refs),
            None => {
                writeln!(err, "error: --target-ref takes KIND/NAME, e.g. Gateway/waypoint")?;
                return Ok(EXIT_USAGE);
            }
        }
    };
    let config = match warden_config::load_config(&args.policy) {
        Ok(c) => c,
        Err(e) => {
            writeln!(err, "error: {}: {}", shown(&args.policy), e.message)?;
            return Ok(EXIT_USAGE);
        }
    };
    // Never ship a policy the filter would refuse.
    if let Err(e) = compile::load(&config) {
        writeln!(err, "error: {}: {e}", shown(&args.policy))?;
        return Ok(EXIT_FAILED);
    }
    let wasm = match filter_module(args.filter.as_deref(), built_in) {
        Ok(w) => w,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let policy: serde_json::Value = match serde_json::from_slice(&config) {
        Ok(v) => v,
        Err(e) => {
            writeln!(err, "error: {}: {e}", shown(&args.policy))?;
            return Ok(EXIT_USAGE);
        }
    };
    let options = wasmplugin::Options {
        name: args.name,
        namespace: args.namespace,
        url: args.url,
        target,
        oci_variant: args.oci_variant.into(),
    };
    let manifest = match wasmplugin::manifest(&policy, &wasm, &options) {
        Ok(m) => m,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    match serde_yaml_ng::to_string(&manifest) {
        Ok(yaml) => {
            out.write_all(yaml.as_bytes())?;
            Ok(EXIT_OK)
        }
        Err(e) => {
            writeln!(err, "error: cannot write the manifest: {e}")?;
            Ok(EXIT_USAGE)
        }
    }
}

fn oci_image(args: OciArgs, built_in: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    let wasm = match filter_module(args.filter.as_deref(), built_in) {
        Ok(w) => w,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let module = args.filter.as_deref().map_or_else(|| "the built-in filter".to_owned(), shown);
    let variant = oci::Variant::from(args.variant);
    let image = match oci::Image::build(&wasm, variant, &args.tag) {
        Ok(i) => i,
        Err(e) => {
            writeln!(err, "error: {module}: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let output = shown(&args.output);
    let is_tar = args.output.extension().is_some_and(|e| e.eq_ignore_ascii_case("tar"));
    let written =
        if is_tar { oci::write_layout_tar(&image, &args.output) } else { oci::write_layout_dir(&image, &args.output) };
    if let Err(e) = written {
        writeln!(err, "error: cannot write {output}: {e}")?;
        return Ok(EXIT_USAGE);
    }
    let what = if is_tar { "OCI image layout tar" } else { "OCI image layout" };
    let tag = &image.tag;
    writeln!(out, "wrote {output} ({what}, {} variant, tag {tag})", variant.as_str())?;
    writeln!(out, "manifest  {}", image.manifest_digest())?;
    writeln!(out, "module    sha256:{} ({} bytes)", image.wasm_sha256, wasm.len())?;
    writeln!(out, "WasmPlugin spec.sha256 for an oci:// url: {}", image.manifest_digest_hex())?;
    writeln!(out, "push it unchanged (the digest must not change), e.g.:")?;
    if is_tar {
        writeln!(out, "  oras cp --from-oci-layout {output}:{tag} REGISTRY/REPOSITORY:{tag}")?;
        writeln!(
            out,
            "  skopeo copy --preserve-digests oci-archive:{output}:{tag} docker://REGISTRY/REPOSITORY:{tag}"
        )?;
    } else {
        writeln!(out, "  oras cp --from-oci-layout {output}:{tag} REGISTRY/REPOSITORY:{tag}")?;
        writeln!(out, "  crane push {output} REGISTRY/REPOSITORY:{tag}")?;
        writeln!(out, "  skopeo copy --preserve-digests oci:{output}:{tag} docker://REGISTRY/REPOSITORY:{tag}")?;
    }
    Ok(EXIT_OK)
}

/// Counts the bytes read through it, for the progress bar.
struct Counting<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: io::Read> io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

fn replay_log(
    args: ReplayArgs,
    built_in: &[u8],
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: bool,
) -> io::Result<i32> {
    let usage = |err: &mut dyn Write, message: &str| -> io::Result<i32> {
        writeln!(err, "error: {message}")?;
        Ok(EXIT_USAGE)
    };
    let shown_policy = shown(&args.policy);
    let (config, policy) = match runner::load_policy(&args.policy, &shown_policy) {
        Ok(loaded) => loaded,
        Err(e) => return usage(err, &e),
    };
    let stdin = args.access_log.as_os_str() == "-";
    let shown_log = if stdin { "standard input".to_owned() } else { shown(&args.access_log) };
    let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let (raw, size): (Box<dyn io::Read>, Option<u64>) = if stdin {
        (Box::new(io::stdin()), None)
    } else {
        match std::fs::File::open(&args.access_log) {
            Ok(f) => {
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(f), size)
            }
            Err(e) => return usage(err, &format!("{shown_log}: cannot read: {e}")),
        }
    };
    let counted = Counting { inner: raw, read: std::rc::Rc::clone(&read) };
    let gzipped = args.access_log.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let log: Box<dyn io::BufRead> = if gzipped {
        Box::new(io::BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(counted)))
    } else {
        Box::new(io::BufReader::with_capacity(1 << 16, counted))
    };

    let host;
    let dlp = !policy.dlp().is_empty();
    let mut decider = match args.engine {
        ReplayEngine::Native => replay::Decider::Native(Box::new(policy)),
        ReplayEngine::Filter => {
            host = match start_host(args.filter.as_deref(), built_in) {
                Ok(h) => h,
                Err(e) => return usage(err, &e),
            };
            match replay::Decider::filter(&host, &config) {
                Ok(d) => d,
                Err(e) => return usage(err, &runner::vm_error(&e, &shown_policy)),
            }
        }
    };
    let principal = match (args.principal_field, args.principal) {
        (Some(field), _) => replay::PrincipalSource::Field(field),
        (None, Some(p)) => replay::PrincipalSource::Fixed(p),
        (None, None) => replay::PrincipalSource::None,
    };
    let options = replay::Options {
        principal: principal.clone(),
        decision_field: Some(args.decision_field.clone()),
        examples: args.examples,
    };

    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(size, indicatif::ProgressDrawTarget::stderr());
        let template = if size.is_some() {
            "replaying {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)"
        } else {
            "replaying {spinner} {bytes} ({bytes_per_sec})"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar
    });
    let mut tick = |_: u64| {
        if let Some(bar) = &bar {
            bar.set_position(read.get());
        }
    };
    let result = replay::replay(log, &mut decider, &config, &options, &mut tick);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => return usage(err, &format!("{shown_log}: {e}")),
    };
    let context = replay::Context {
        access_log: shown_log,
        policy: shown_policy,
        engine: decider.name(),
        principal,
        decision_field: Some(args.decision_field),
        dlp,
        examples: args.examples,
    };
    match args.format {
        ReplayFormat::Human => out.write_all(replay::human(&report, &context).as_bytes())?,
        ReplayFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &replay::json(&report, &context)).map_err(io::Error::other)?;
            writeln!(out)?;
        }
    }
    if report.requests == 0 {
        writeln!(err, "note: no line had authority, method and path: is this an Envoy JSON access log?")?;
    }
    Ok(EXIT_OK)
}

fn import(args: ImportArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<i32> {
    use warden_config::istio;
    let sources = match args.files.iter().map(|f| istio::Source::read(f)).collect::<Result<Vec<_>, _>>() {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let outbound_traffic_policy = args.outbound_traffic_policy.map(|m| match m {
        OutboundMode::RegistryOnly => warden_engine::document::OutboundTrafficPolicy::RegistryOnly,
        OutboundMode::AllowAny => warden_engine::document::OutboundTrafficPolicy::AllowAny,
    });
    let options = istio::Options { name: args.name, outbound_traffic_policy };
    let imported = match istio::import(&sources, &options) {
        Ok(i) => i,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    for note in &imported.notes {
        writeln!(err, "note: {note}")?;
    }
    let yaml = match imported.to_yaml() {
        Ok(y) => y,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let Some(output) = args.output else {
        out.write_all(yaml.as_bytes())?;
        return Ok(EXIT_OK);
    };
    if let Err(e) = std::fs::write(&output, yaml.as_bytes()) {
        writeln!(err, "error: cannot write {}: {e}", shown(&output))?;
        return Ok(EXIT_USAGE);
    }
    let (services, policies) = imported.counts();
    writeln!(out, "wrote {} ({services} services, {policies} authorization policies)", shown(&output))?;
    Ok(EXIT_OK)
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
