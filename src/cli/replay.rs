//! `warden replay`: an Envoy access log against a policy.

use super::artifacts::start_host;
use super::exit::{CliError, Exit, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use super::notes::Notes;
use crate::display::shown;
use crate::replay;
use crate::testing::runner;
use clap::{Args, ValueEnum};
use std::io::{self, Write};
use std::path::PathBuf;
use warden_config::Loaded;
use warden_engine::Outcome;

pub(super) const ABOUT: &str = "\
Replay an Envoy JSON access log against a policy: what it would allow, deny, and why.

Reads one JSON object per line, as Istio gateways log with accessLogEncoding: JSON (text
before the first '{', e.g. from kubectl logs --timestamps, is ignored). A line is:

  a request     when it has authority, method and path. downstream_local_address gives the
                destination port (default 80), downstream_remote_address the source address,
                requested_server_name the SNI; user_agent and x_forwarded_for are sent as
                headers.
  a connection  when it has none of authority, method and path, no protocol, and a
                downstream_local_address with a port: the line tcp_proxy logs for TLS
                passthrough and mesh mTLS traffic. requested_server_name is the SNI (absent
                or -: none), downstream_local_address the destination port,
                downstream_remote_address the source.
  skipped       otherwise (counted, as are lines that are not JSON).

The principal comes from --principal-field NAME (a field logging %DOWNSTREAM_PEER_URI_SAN%,
say) or --principal VALUE. A request gets it through the policy's first identity source; a
connection as the peer certificate of its TLS handshake (or the filter state the policy reads
first). Requests run through the compiled filter in the harness (one VM, reused), connections
through the same filter loaded as a network filter (root id warden.network, a second VM);
with --engine native, through the native engine.

The report counts requests per outcome (allow, denied, unregistered, bad-request, dlp) and,
apart, connections (allow, denied, unregistered, bad-request), grouped by deciding policy,
reason, host or server name, with the first --examples lines of each (connections show
sni=... port=...); queries are never shown. DLP sees only the query and the logged headers:
access logs carry no bodies, and connections are not scanned. If lines carry Warden's
decision record (--decision-field, default warden), decisions that would change are counted
and shown. A progress bar runs on stderr when it is a terminal.

  warden replay policy.yaml access.log --principal-field downstream_peer_uri_san
  kubectl logs -n istio-system deploy/istio-egressgateway | warden replay policy.yaml -

--fail-on makes it a check for CI: exit 1 when any request or connection would be refused
(refused: any outcome but allow; or only denied, unregistered, bad-request, dlp), when any
decision would change from the one logged (changed), or when a dry-run policy would refuse
(dry-run). Several: --fail-on denied,changed.

  warden replay policy.yaml access.log --fail-on changed

Exit codes: 0 replayed (whatever the outcomes, unless --fail-on), 1 what --fail-on names
happened, 2 unreadable policy or log, invalid policy, or a log with no request or connection
line (empty, or not an Envoy JSON access log).";

/// `warden replay`.
#[derive(Args)]
pub(super) struct ReplayArgs {
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
    /// Exit 1 when the replay finds this (comma-separated, or repeated).
    #[arg(long, value_enum, value_name = "WHAT", value_delimiter = ',')]
    fail_on: Vec<FailOn>,
}

/// `--fail-on` of `warden replay`: what makes a replay fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum FailOn {
    /// Any request or connection the policy would refuse (every outcome but allow).
    Refused,
    /// Refused by an authorization policy.
    Denied,
    /// Refused as unregistered.
    Unregistered,
    /// Refused as a bad request.
    BadRequest,
    /// Refused by DLP.
    Dlp,
    /// A decision that differs from the one logged (--decision-field).
    Changed,
    /// A dry-run policy that would refuse.
    DryRun,
}

impl FailOn {
    /// How many requests and connections of `report` this names, and
    /// what they are, for the message.
    fn count(self, report: &replay::Report) -> (u64, &'static str) {
        let parts = [report.part(replay::Traffic::Request), report.part(replay::Traffic::Connection)];
        let outcomes =
            |kinds: &[Outcome]| -> u64 { parts.iter().flat_map(|p| kinds.iter().map(|k| p.tally(*k).count)).sum() };
        match self {
            FailOn::Refused => (
                outcomes(&[Outcome::Denied, Outcome::Unregistered, Outcome::BadRequest, Outcome::DlpBlocked]),
                "would be refused",
            ),
            FailOn::Denied => (outcomes(&[Outcome::Denied]), "would be denied by an authorization policy"),
            FailOn::Unregistered => (outcomes(&[Outcome::Unregistered]), "would be refused as unregistered"),
            FailOn::BadRequest => (outcomes(&[Outcome::BadRequest]), "would be refused as bad requests"),
            FailOn::Dlp => (outcomes(&[Outcome::DlpBlocked]), "would be refused by DLP"),
            FailOn::Changed => {
                (parts.iter().map(|p| p.changes.changed()).sum(), "would be decided otherwise than the logged decision")
            }
            FailOn::DryRun => (
                parts.iter().flat_map(|p| p.dry_run.values()).sum(),
                "(counted once per dry-run policy) would be refused by a dry-run policy",
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            FailOn::Refused => "refused",
            FailOn::Denied => "denied",
            FailOn::Unregistered => "unregistered",
            FailOn::BadRequest => "bad-request",
            FailOn::Dlp => "dlp",
            FailOn::Changed => "changed",
            FailOn::DryRun => "dry-run",
        }
    }
}

/// `--engine` of `warden replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum ReplayEngine {
    /// The compiled filter in the harness (wasmtime), one VM reused.
    Filter,
    /// The native engine (the same decisions, faster).
    Native,
}

/// `--format` of `warden replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum ReplayFormat {
    /// Counts, groups and examples.
    Human,
    /// One JSON document.
    Json,
}

/// Counts the bytes read through it, for the progress bar.
pub(super) struct Counting<R> {
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

pub(super) fn replay_log(
    args: ReplayArgs,
    built_in: &[u8],
    notes: &mut Notes,
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: bool,
) -> Exit {
    let shown_policy = shown(&args.policy);
    let Loaded { config, policy, notes: noted } = match runner::load_policy(std::slice::from_ref(&args.policy)) {
        Ok(loaded) => loaded,
        Err(e) => return Err(CliError::Input(runner::policy_error(&e))),
    };
    if notes.print(&noted, err)? {
        return Ok(EXIT_USAGE);
    }
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
            Err(e) => return Err(CliError::Input(format!("{shown_log}: cannot read: {e}"))),
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
            host = start_host(args.filter.as_deref(), built_in)?;
            match replay::Decider::filter(&host, &config) {
                Ok(d) => d,
                Err(e) => return Err(CliError::Input(runner::vm_error(&e, &shown_policy))),
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
        Err(e) => return Err(CliError::Input(format!("{shown_log}: {e}"))),
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
    // Nothing replayed is no evidence about the policy: an empty log (a
    // `kubectl logs` of the wrong pod, an access log not enabled) or a file
    // of something else must not pass a `--fail-on` check. The report
    // above says what was skipped and why.
    if report.requests == 0 && report.connections.count == 0 {
        let why = match (report.lines, report.skipped()) {
            (0, _) => "the log is empty".to_owned(),
            (_, 0) => "the log has only blank lines".to_owned(),
            (_, n) => format!(
                "{n} {} skipped: no line had authority, method and path, nor was a connection (a \
                 downstream_local_address and no request). Is this an Envoy JSON access log?",
                if n == 1 { "line" } else { "lines" }
            ),
        };
        writeln!(err, "error: {}: nothing to replay: {why}", context.access_log)?;
        return Ok(EXIT_USAGE);
    }
    let mut code = EXIT_OK;
    let mut fail_on: Vec<FailOn> = Vec::new();
    for what in args.fail_on {
        if fail_on.contains(&what) {
            continue;
        }
        fail_on.push(what);
        let (count, happened) = what.count(&report);
        if count > 0 {
            let lines = if count == 1 { "line" } else { "lines" };
            writeln!(err, "error: --fail-on {}: {count} {lines} {happened}", what.name())?;
            code = EXIT_FAILED;
        }
    }
    Ok(code)
}
