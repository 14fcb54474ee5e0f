//! `warden diff`'s reports: a [`warden_diff::Report`] for a terminal, a
//! pull-request comment (markdown) or a program (JSON), each change with
//! the `warden explain` command that reproduces its witness.

use crate::replay::{self, LineKind};
use serde_json::{json, Value};
use std::fmt::Write as _;
use warden_diff::{Change, Diff, DlpChange, FieldSet, Kind, Probe, Report, Verdict};
use warden_engine::document::IdentitySource;
use warden_engine::Policy;

/// A verdict in words: `allow (allow-policy: stripe-refunds)`, `denied
/// (no-allow-match)`, with dry-run and AUDIT records.
pub fn verdict_text(v: &Verdict) -> String {
    let mut s = format!("{} ({}", v.outcome, v.reason);
    if let Some(p) = &v.policy {
        let _ = write!(s, ": {p}");
    }
    s.push(')');
    if !v.dry_run.is_empty() {
        let _ = write!(s, ", dry-run would refuse: {}", v.dry_run.join(", "));
    }
    if !v.audit.is_empty() {
        let _ = write!(s, ", audited by {}", v.audit.join(", "));
    }
    s
}

fn shell_word(s: &str) -> String {
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `warden explain` command that sends `probe` to `policy` (shown as
/// `shown`), the caller's principal where the policy reads it.
pub fn explain_command(shown: &str, probe: &Probe, policy: &Policy) -> String {
    let mut args = vec!["warden".to_owned(), "explain".to_owned(), shell_word(shown)];
    if probe.connection {
        args.push("--connection".to_owned());
    }
    let mut push = |flag: &str, value: &str| {
        args.push(flag.to_owned());
        args.push(shell_word(value));
    };
    if probe.connection {
        if let Some(sni) = &probe.sni {
            push("--sni", sni);
        }
        push("--port", &probe.port.to_string());
        if let Some(p) = &probe.principal {
            push("--principal", p);
        }
        if probe.source_ip != std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
            push("--source-ip", &probe.source_ip.to_string());
        }
        return args.join(" ");
    }
    push("--method", &probe.method);
    push("--authority", &probe.authority);
    if let Some(path) = &probe.path {
        push("--path", path);
    }
    push("--port", &probe.port.to_string());
    if let Some(p) = &probe.principal {
        let sources = policy.identity_sources();
        if sources.is_empty() || sources.iter().any(|s| matches!(s, IdentitySource::PeerCertificate(_))) {
            push("--principal", p);
        }
        for s in sources {
            match s {
                IdentitySource::Header(name) => push("--header", &format!("{name}={p}")),
                IdentitySource::Xfcc(_) => push("--header", &format!("x-forwarded-client-cert=URI={p}")),
                _ => {}
            }
        }
    }
    for (name, value) in &probe.headers {
        push("--header", &format!("{name}={value}"));
    }
    if probe.source_ip != std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
        push("--source-ip", &probe.source_ip.to_string());
    }
    if let Some(sni) = &probe.sni {
        push("--sni", sni);
    }
    args.join(" ")
}

fn kind_title(kind: Kind) -> &'static str {
    match kind {
        Kind::Widens => "newly allowed",
        Kind::Narrows => "newly refused",
        Kind::Record => "decided differently",
    }
}

fn service_text(c: &Change) -> String {
    match &c.services {
        (Some(a), Some(b)) if a == b => a.clone(),
        (Some(a), Some(b)) => format!("{a} → {b}"),
        (None, Some(b)) => format!("(none) → {b}"),
        (Some(a), None) => format!("{a} → (none)"),
        (None, None) => "(none: hosts in no service)".to_owned(),
    }
}

fn destination_text(c: &Change, limit: usize) -> String {
    let mut s = c.destinations.iter().take(limit).cloned().collect::<Vec<_>>().join(", ");
    if c.destinations.len() > limit {
        let _ = write!(s, " and {} more", c.destinations.len() - limit);
    }
    if c.any_destination && c.destinations.len() > 1 {
        s.push_str(" (every destination of the service)");
    }
    s
}

fn field_text(f: &FieldSet) -> String {
    let classes = f
        .classes
        .iter()
        .map(|c| match c.matches.as_slice() {
            [only] if *only == c.example => only.clone(),
            _ => format!("{} (e.g. {})", c.matches.join(" & "), c.example),
        })
        .collect::<Vec<_>>()
        .join("; or ");
    if f.except {
        format!("any but: {classes}")
    } else {
        classes
    }
}

fn services_text(d: &DlpChange) -> String {
    let names: Vec<&str> = d.services.iter().map(|s| s.as_deref().unwrap_or("(hosts in no service)")).collect();
    names.join(", ")
}

fn dlp_text(d: &DlpChange) -> String {
    let service = services_text(d);
    if d.places == ["body limit"] {
        let word = |a: Option<&str>| a.unwrap_or("no such limit").to_owned();
        let limits: Vec<String> = d.detectors.iter().map(|l| l.replace("maxBodyBytes ", "")).collect();
        return format!(
            "{service}: a body over maxBodyBytes {} bytes: {} → {}",
            limits.join(" or "),
            word(d.old),
            word(d.new)
        );
    }
    let word = |a: Option<&str>| a.unwrap_or("not scanned").to_owned();
    format!("{service}: {} in {}: {} → {}", d.detectors.join(", "), d.places.join(", "), word(d.old), word(d.new))
}

/// Names to show the policies by, and the policies (for the witnesses'
/// commands: the new one's identity sources).
pub struct Inputs<'a> {
    /// The old policy as given.
    pub old: &'a str,
    /// The new policy as given.
    pub new: &'a str,
    /// The new policy.
    pub policy: &'a Policy,
}

fn summary(report: &Report) -> String {
    let groups = grouped(&report.changes);
    let count = |k: Kind| groups.iter().filter(|g| g.first().is_some_and(|c| c.kind == k)).count();
    let weakens = report.dlp.iter().filter(|d| d.weakens()).count();
    format!(
        "{} widen, {} narrow, {} change the record; DLP: {} weaken, {} other; {} settings",
        count(Kind::Widens),
        count(Kind::Narrows),
        count(Kind::Record),
        weakens,
        report.dlp.len() - weakens,
        report.settings.len()
    )
}

/// Changes with the same kind, services and verdicts, in report order.
fn grouped(changes: &[Change]) -> Vec<Vec<&Change>> {
    let mut groups: Vec<Vec<&Change>> = Vec::new();
    for c in changes {
        let same = |g: &Vec<&Change>| {
            g.first().is_some_and(|f| {
                f.kind == c.kind
                    && f.services == c.services
                    && f.old == c.old
                    && f.new == c.new
                    && f.witness.connection == c.witness.connection
            })
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups
}

/// How many sets of requests the human report details per group: every
/// widening one up to `limit`, one of each other group.
fn shown_sets(kind: Kind, limit: usize) -> usize {
    match kind {
        Kind::Widens | Kind::Narrows => limit,
        Kind::Record => 1,
    }
}

/// The report for a terminal: changes grouped by kind, service and
/// verdicts, each group with its first sets of requests (`limit` for
/// widening and narrowing groups, one for the others) and their witnesses.
pub fn human(report: &Report, inputs: &Inputs<'_>, limit: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "warden diff {} {}", inputs.old, inputs.new);
    if !report.any() {
        let _ = writeln!(s, "\nno change: every request is decided alike by both policies");
    }
    if !report.settings.is_empty() {
        let _ = writeln!(s, "\nsettings");
        for c in &report.settings {
            let _ = writeln!(s, "  {}: {} → {}", c.name, c.old, c.new);
        }
    }
    let mut hidden = 0;
    for group in grouped(&report.changes) {
        let Some(first) = group.first() else { continue };
        let what = if first.witness.connection { " (connections)" } else { "" };
        let _ = writeln!(
            s,
            "\n{} {}{what}: {}",
            first.kind.as_str().to_uppercase(),
            kind_title(first.kind),
            service_text(first)
        );
        let _ = writeln!(s, "  before  {}", verdict_text(&first.old));
        let _ = writeln!(s, "  after   {}", verdict_text(&first.new));
        let show = shown_sets(first.kind, limit);
        for (i, c) in group.iter().take(show).enumerate() {
            let _ = writeln!(
                s,
                "  requests{}",
                if group.len() > 1 { format!(" ({} of {})", i + 1, group.len()) } else { String::new() }
            );
            let _ = writeln!(s, "    destination  {}", destination_text(c, 6));
            for f in &c.fields {
                let _ = writeln!(s, "    {:<12} {}", f.field, field_text(f));
            }
            if c.fields.is_empty() {
                let who = if c.witness.connection { "any caller" } else { "any request" };
                let _ = writeln!(s, "    {:<12} {who}", "");
            }
            let _ = writeln!(s, "    witness      {}", explain_command(inputs.new, &c.witness, inputs.policy));
        }
        if group.len() > show {
            hidden += group.len() - show;
            let _ = writeln!(s, "  and {} more sets of requests with the same change", group.len() - show);
        }
    }
    if !report.dlp.is_empty() {
        let _ = writeln!(s, "\nDLP");
        for d in &report.dlp {
            let tag = if d.weakens() { "WEAKENS " } else { "        " };
            let _ = writeln!(s, "  {tag}{}", dlp_text(d));
        }
    }
    let st = &report.stats;
    let _ = writeln!(
        s,
        "\n{} ({} sets of requests in {} groups{}; {} destination classes, {} explored, {} requests decided)",
        summary(report),
        report.changes.len(),
        grouped(&report.changes).len(),
        if hidden > 0 { format!(", {hidden} not shown: --limit or --format json") } else { String::new() },
        st.destinations,
        st.explored,
        st.probes,
    );
    s
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The report as markdown, for a pull-request comment.
pub fn markdown(report: &Report, inputs: &Inputs<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### `warden diff {} {}`\n", inputs.old, inputs.new);
    let _ = writeln!(s, "{}\n", summary(report));
    if !report.any() {
        let _ = writeln!(s, "No change: every request is decided alike by both policies.");
        return s;
    }
    if !report.settings.is_empty() {
        let _ = writeln!(s, "| setting | before | after |\n|---|---|---|");
        for c in &report.settings {
            let _ = writeln!(s, "| `{}` | `{}` | `{}` |", c.name, md_cell(&c.old), md_cell(&c.new));
        }
        s.push('\n');
    }
    if !report.changes.is_empty() {
        let _ =
            writeln!(s, "| change | service | destination | requests | before | after |\n|---|---|---|---|---|---|");
        for c in &report.changes {
            let fields: Vec<String> =
                c.fields.iter().map(|f| format!("{}: {}", f.field, md_cell(&field_text(f)))).collect();
            let fields = if fields.is_empty() { "any".to_owned() } else { fields.join("<br>") };
            let mark = match c.kind {
                Kind::Widens => "⚠️ widens",
                Kind::Narrows => "narrows",
                Kind::Record => "record",
            };
            let _ = writeln!(
                s,
                "| {mark} | {} | {} | {} | {} | {} |",
                md_cell(&service_text(c)),
                md_cell(&destination_text(c, 3)),
                fields,
                md_cell(&verdict_text(&c.old)),
                md_cell(&verdict_text(&c.new))
            );
        }
        s.push('\n');
        let _ = writeln!(s, "<details><summary>Witnesses</summary>\n\n```sh");
        for c in &report.changes {
            let _ = writeln!(s, "{}", explain_command(inputs.new, &c.witness, inputs.policy));
        }
        let _ = writeln!(s, "```\n</details>\n");
    }
    if !report.dlp.is_empty() {
        let _ = writeln!(s, "| DLP | services | places | detectors | before | after |\n|---|---|---|---|---|---|");
        for d in &report.dlp {
            let _ = writeln!(
                s,
                "| {} | {} | {} | `{}` | {} | {} |",
                if d.weakens() { "⚠️ weakens" } else { "" },
                md_cell(&services_text(d)),
                d.places.join(", "),
                md_cell(&d.detectors.join("`, `")),
                d.old.unwrap_or("—"),
                d.new.unwrap_or("—")
            );
        }
    }
    s
}

/// The report as JSON.
pub fn json(report: &Report, inputs: &Inputs<'_>) -> Value {
    let changes: Vec<Value> = report
        .changes
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("explain".into(), Value::String(explain_command(inputs.new, &c.witness, inputs.policy)));
            }
            v
        })
        .collect();
    let dlp: Vec<Value> = report
        .dlp
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("weakens".into(), Value::Bool(d.weakens()));
            }
            v
        })
        .collect();
    json!({
        "old": inputs.old,
        "new": inputs.new,
        "widens": report.widens(),
        "changed": report.any(),
        "settings": report.settings,
        "changes": changes,
        "dlp": dlp,
        "stats": report.stats,
    })
}

/// How an access log's requests fall into a report's changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCounts {
    /// Request and connection lines read.
    pub requests: u64,
    /// Lines that are neither (incomplete, not JSON).
    pub skipped: u64,
    /// Requests whose decision the change changes.
    pub changed: u64,
    /// Per group of changes (as the human report groups them), its requests.
    pub per_group: Vec<u64>,
    /// Changed requests in no reported change: a bug in the diff, if ever
    /// not 0.
    pub unexplained: u64,
}

/// The request a log entry describes, as the diff's probes are made:
/// the listener port from `downstream_local_address` (default 80), the
/// caller from `downstream_remote_address`, `user-agent` and
/// `x-forwarded-for` as headers.
fn probe_of(entry: &replay::Entry<'_>, principal: Option<&str>) -> Option<Probe> {
    let port = entry.local_address.as_deref().and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| p.parse().ok());
    let source_ip = entry
        .remote_address
        .as_deref()
        .and_then(|a| a.parse::<std::net::SocketAddr>().map(|s| s.ip()).ok().or_else(|| a.parse().ok()))
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let mut headers = Vec::new();
    if let Some(ua) = &entry.user_agent {
        headers.push(("user-agent".to_owned(), ua.to_string()));
    }
    if let Some(xff) = &entry.forwarded_for {
        headers.push(("x-forwarded-for".to_owned(), xff.to_string()));
    }
    if entry.kind() == LineKind::Connection {
        return Some(Probe {
            connection: true,
            method: String::new(),
            authority: String::new(),
            path: None,
            port: port?,
            principal: principal.map(warden_engine::request::spiffe_uri),
            headers: Vec::new(),
            source_ip,
            sni: entry.sni.as_deref().map(str::to_owned),
        });
    }
    let method = entry.method.as_deref()?.to_owned();
    Some(Probe {
        connection: false,
        path: (method != "CONNECT").then(|| entry.path.as_deref().unwrap_or("/").to_owned()),
        method,
        authority: entry.authority.as_deref()?.to_owned(),
        port: port.unwrap_or(80),
        principal: principal.map(warden_engine::request::spiffe_uri),
        headers,
        source_ip,
        sni: entry.sni.as_deref().map(str::to_owned),
    })
}

/// Reads an access log (one JSON object per line, as `warden replay`
/// reads it) and counts its requests in each group of changes.
pub fn count_log(
    diff: &Diff<'_>,
    report: &Report,
    log: &mut dyn std::io::BufRead,
    principal_field: Option<&str>,
    principal: Option<&str>,
) -> std::io::Result<LogCounts> {
    let groups = grouped(&report.changes);
    let options = replay::Options {
        principal: match principal_field {
            Some(f) => replay::PrincipalSource::Field(f.to_owned()),
            None => replay::PrincipalSource::None,
        },
        decision_field: None,
        examples: 0,
    };
    let mut counts = LogCounts { per_group: vec![0; groups.len()], ..LogCounts::default() };
    let mut line = Vec::new();
    loop {
        line.clear();
        if log.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let Some(entry) = replay::parse_entry(&line, &options) else {
            counts.skipped += 1;
            continue;
        };
        if entry.kind() == LineKind::Incomplete {
            counts.skipped += 1;
            continue;
        }
        let who = entry.principal.as_deref().or(principal);
        let Some(probe) = probe_of(&entry, who) else {
            counts.skipped += 1;
            continue;
        };
        counts.requests += 1;
        let (old, new) = diff.decide(&probe);
        if old == new {
            continue;
        }
        counts.changed += 1;
        let at = groups.iter().position(|g| {
            g.first().is_some_and(|c| c.old == old && c.new == new && c.witness.connection == probe.connection)
        });
        match at.and_then(|i| counts.per_group.get_mut(i)) {
            Some(n) => *n += 1,
            None => counts.unexplained += 1,
        }
    }
    Ok(counts)
}

/// The log's counts for a terminal.
pub fn log_text(report: &Report, counts: &LogCounts, shown_log: &str) -> String {
    let mut s = format!(
        "\n{shown_log}: {} requests and connections, {} decided differently by the new policy ({} lines skipped)\n",
        counts.requests, counts.changed, counts.skipped
    );
    for (group, n) in grouped(&report.changes).iter().zip(&counts.per_group) {
        let Some(first) = group.first() else { continue };
        let _ = writeln!(
            s,
            "  {:>8}  {} {}: {} → {}",
            n,
            first.kind.as_str().to_uppercase(),
            service_text(first),
            verdict_text(&first.old),
            verdict_text(&first.new)
        );
    }
    if counts.unexplained > 0 {
        let _ = writeln!(
            s,
            "  {:>8}  in no reported change (please report this: the diff missed them)",
            counts.unexplained
        );
    }
    s
}

/// The log's counts as JSON.
pub fn log_json(report: &Report, counts: &LogCounts) -> Value {
    let groups: Vec<Value> = grouped(&report.changes)
        .iter()
        .zip(&counts.per_group)
        .filter_map(|(g, n)| {
            let c = g.first()?;
            Some(json!({"kind": c.kind, "services": c.services, "old": c.old, "new": c.new, "requests": n}))
        })
        .collect();
    json!({
        "requests": counts.requests,
        "skipped": counts.skipped,
        "changed": counts.changed,
        "unexplained": counts.unexplained,
        "groups": groups,
    })
}
