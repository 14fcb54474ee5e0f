//! What `warden test` prints: one line per case and a closing line for
//! people (`human`), one JSON document (`json`), or JUnit XML for CI
//! (`junit`, one `<testsuite>` per test file).
//!
//! Output is deterministic: no timings, and paths as given or relative to
//! the current directory.

use crate::display::{quoted, quoted_bytes, shown, Paint, WITHHELD};
use crate::testing::coverage::{PolicyCoverage, Total};
use crate::testing::runner::{decision_word, CaseRun, Field, FileRun};
use crate::testing::testfile::{ConnectionSpec, Expect, RequestSpec, Sent};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::{json, Value};
use std::io::{self, Write};
use warden_engine::record::DECISION_HEADER;

/// Cases passed and failed, and files that could not be run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Cases whose expectations all held.
    pub passed: usize,
    /// Cases with at least one expectation that did not hold.
    pub failed: usize,
    /// Test files that could not be run (input errors).
    pub errors: usize,
    /// Cases not run: `--run` did not select them.
    pub filtered_out: usize,
}

impl Totals {
    /// Counts a run.
    pub fn of(runs: &[FileRun]) -> Totals {
        let mut t = Totals::default();
        for run in runs {
            t.filtered_out += run.filtered_out;
            match &run.result {
                Ok(cases) => {
                    let failed = cases.iter().filter(|c| !c.passed()).count();
                    t.failed += failed;
                    t.passed += cases.len() - failed;
                }
                Err(_) => t.errors += 1,
            }
        }
        t
    }

    /// The closing line: `N passed, M failed`, and `, K filtered out`
    /// when `--run` left cases out.
    pub fn closing_line(&self) -> String {
        match self.filtered_out {
            0 => format!("{} passed, {} failed", self.passed, self.failed),
            n => format!("{} passed, {} failed, {n} filtered out", self.passed, self.failed),
        }
    }
}

/// `<file> › <case>`.
fn label(run: &FileRun, case: &CaseRun) -> String {
    format!("{} › {}", shown(&run.file), case.name)
}

/// The human lines of one test file's cases (input errors are reported
/// separately); `ok` and `FAIL` in colour when `paint` is on.
pub fn human_file(out: &mut dyn Write, run: &FileRun, paint: Paint) -> io::Result<()> {
    for case in run.cases() {
        if case.passed() {
            writeln!(out, "{}   {}", paint.ok("ok"), label(run, case))?;
        } else {
            writeln!(out, "{} {}", paint.fail("FAIL"), label(run, case))?;
            out.write_all(failure_block(case).as_bytes())?;
        }
    }
    Ok(())
}

/// The request, the expected and the actual outcome of a failed case,
/// indented; expectations that did not hold are marked `✗`.
pub fn failure_block(case: &CaseRun) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();
    let withhold = withheld(case);
    match &case.sent {
        Sent::Request(spec) => {
            for line in request_lines(spec, withhold) {
                lines.push(("request", line));
            }
        }
        Sent::Connection(spec) => lines.push(("connection", connection_line(spec))),
    }
    for (field, line) in expected_lines(&case.expect, withhold) {
        let mark = if case.failed_on(field) { "  ✗" } else { "" };
        lines.push(("expected", format!("{line}{mark}")));
    }
    for line in actual_lines(case) {
        lines.push(("actual", line));
    }
    let mut text = String::new();
    let mut last = "";
    for (section, line) in lines {
        let head = if section == last { "" } else { section };
        last = section;
        text.push_str(&format!("    {head:<9} {line}\n"));
    }
    text
}

/// Whether a case's data stays out of reports: DLP found something in it,
/// and reports never carry what DLP finds. Its request body,
/// query, header values and forwarded data are shown as [`WITHHELD`](crate::display::WITHHELD).
/// A record that cannot be read withholds too: what it found is unknown.
pub fn withheld(case: &CaseRun) -> bool {
    match (&case.actual.record, case.actual.parsed_record()) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(_), Some(record)) => !record.findings.is_empty(),
    }
}

/// The path with its query withheld.
fn path_shown(path: &str, withhold: bool) -> String {
    match path.split_once('?') {
        Some((p, _)) if withhold => format!("{p}?{WITHHELD}"),
        _ => path.to_owned(),
    }
}

/// A mismatch as reports show it: forwarded data withheld (see
/// [`withheld`]).
fn shown_mismatch(m: &crate::testing::runner::Mismatch, withhold: bool) -> crate::testing::runner::Mismatch {
    let mut m = m.clone();
    if withhold && matches!(m.field, Field::ForwardedBody | Field::ForwardedPath) {
        m.expected = WITHHELD.to_owned();
        m.actual = WITHHELD.to_owned();
    }
    m
}

/// The connection of a case, as given: `sni=… port=…` and the principal
/// and source address if any. The bytes sent are not shown.
pub fn connection_line(spec: &ConnectionSpec) -> String {
    let mut line = match &spec.sni {
        Some(sni) => format!("sni={sni}"),
        None => "no sni".to_owned(),
    };
    if let Some(port) = spec.port {
        line.push_str(&format!(" port={port}"));
    }
    if let Some(p) = &spec.principal {
        line.push_str(&format!(" principal {p}"));
    }
    if let Some(ip) = &spec.source_ip {
        line.push_str(&format!(" from {ip}"));
    }
    line
}

fn connection_json(spec: &ConnectionSpec) -> Value {
    let mut c = json!({ "sni": spec.sni, "port": spec.port });
    if let Some(map) = c.as_object_mut() {
        if let Some(p) = &spec.principal {
            map.insert("principal".into(), json!(p));
        }
        if let Some(ip) = &spec.source_ip {
            map.insert("sourceIp".into(), json!(ip));
        }
    }
    c
}

/// The request of a case, as given (`withhold`: see [`withheld`]).
pub fn request_lines(spec: &RequestSpec, withhold: bool) -> Vec<String> {
    if withhold {
        let mut lines =
            vec![format!("{} {}://{}{}", spec.method, spec.scheme, spec.authority, path_shown(&spec.path, true))];
        if let Some(p) = &spec.principal {
            lines.push(format!("principal {p}"));
        }
        for (name, _) in spec.headers.pairs() {
            lines.push(format!("header {name}: {WITHHELD}"));
        }
        if spec.body.is_some() || spec.body_chunks.is_some() || spec.body_base64.is_some() {
            lines.push(format!("body {WITHHELD}"));
        }
        for (name, _) in spec.trailers.pairs() {
            lines.push(format!("trailer {name}: {WITHHELD}"));
        }
        return lines;
    }
    let mut lines = vec![format!("{} {}://{}{}", spec.method, spec.scheme, spec.authority, spec.path)];
    if let Some(p) = &spec.principal {
        lines.push(format!("principal {p}"));
    }
    if let Some(ip) = &spec.source_ip {
        lines.push(format!("source IP {ip}"));
    }
    for (name, value) in spec.headers.pairs() {
        lines.push(format!("header {name}: {value}"));
    }
    if let Some(body) = &spec.body {
        lines.push(format!("body {}", quoted(body)));
    }
    if let Some(chunks) = &spec.body_chunks {
        let list: Vec<String> = chunks.iter().map(|c| quoted(c)).collect();
        lines.push(format!("body chunks [{}]", list.join(", ")));
    }
    if let Some(b64) = &spec.body_base64 {
        lines.push(format!("body base64 {b64}"));
    }
    for (name, value) in spec.trailers.pairs() {
        lines.push(format!("trailer {name}: {value}"));
    }
    lines
}

/// The expectations of a case, each with its field.
fn expected_lines(expect: &Expect, withhold: bool) -> Vec<(Field, String)> {
    let mut lines = vec![(Field::Decision, format!("decision {}", decision_word(expect.decision)))];
    if let Some(s) = expect.status {
        lines.push((Field::Status, format!("status {s}")));
    }
    if let Some(p) = &expect.policy {
        lines.push((Field::Policy, format!("policy {p}")));
    }
    if let Some(r) = &expect.reason {
        lines.push((Field::Reason, format!("reason {r}")));
    }
    if let Some(s) = &expect.service {
        lines.push((Field::Service, format!("service {s}")));
    }
    if let Some(f) = &expect.findings {
        lines.push((Field::Findings, format!("findings [{}]", f.join(", "))));
    }
    if let Some(d) = &expect.dry_run {
        lines.push((Field::DryRun, format!("dryRun [{}]", d.join(", "))));
    }
    if let Some(a) = &expect.audit {
        lines.push((Field::Audit, format!("audit [{}]", a.join(", "))));
    }
    if let Some(p) = &expect.forwarded_path {
        lines.push((Field::ForwardedPath, format!("forwarded path {}", path_shown(p, withhold))));
    }
    if let Some(b) = &expect.forwarded_body {
        let shown = if withhold { WITHHELD.to_owned() } else { quoted(b) };
        lines.push((Field::ForwardedBody, format!("forwarded body {shown}")));
    }
    lines
}

/// What happened: decision, status, record, what went upstream.
fn actual_lines(case: &CaseRun) -> Vec<String> {
    let a = &case.actual;
    let mut lines = Vec::new();
    if let Some(fault) = &a.fault {
        lines.push(format!("fault {fault}"));
    } else {
        let nothing = match case.sent {
            Sent::Request(_) => "nothing (neither forwarded nor answered)",
            Sent::Connection(_) => "nothing (the connection neither reached the upstream nor was closed)",
        };
        let decision = a.decision.map_or(nothing, decision_word);
        match &a.decision_header {
            Some(h) => lines.push(format!("decision {decision} ({DECISION_HEADER}: {h})")),
            None => lines.push(format!("decision {decision}")),
        }
    }
    if let Sent::Connection(_) = case.sent {
        lines.push(format!("record {}", a.record.as_deref().unwrap_or("none")));
        return lines;
    }
    lines.push(format!("status {}", a.status));
    lines.push(format!("record {}", a.record.as_deref().unwrap_or("none")));
    match (&a.forwarded_path, &a.forwarded_body) {
        (None, None) => lines.push("forwarded nothing".into()),
        (path, body) => {
            let withhold = withheld(case);
            let path = path.as_deref().map_or_else(|| "(none)".to_owned(), |p| path_shown(p, withhold));
            lines.push(format!("forwarded path {path}"));
            if let Some(body) = body.as_deref().filter(|b| !b.is_empty() || case.expect.forwarded_body.is_some()) {
                let shown = if withhold { WITHHELD.to_owned() } else { quoted_bytes(body) };
                lines.push(format!("forwarded body {shown}"));
            }
        }
    }
    lines
}

/// The coverage section of the human report.
pub fn human_coverage(out: &mut dyn Write, coverage: &[PolicyCoverage]) -> io::Result<()> {
    writeln!(out, "coverage:")?;
    if coverage.is_empty() {
        writeln!(out, "  no policy file was run")?;
    }
    for c in coverage {
        let cases = if c.cases == 1 { "1 case".to_owned() } else { format!("{} cases", c.cases) };
        let total = c.total();
        if c.untouched.is_empty() {
            writeln!(out, "  {} ({cases}): {total}, every rule and service was touched", c.policy_file)?;
            continue;
        }
        writeln!(out, "  {} ({cases}): {total}, {} not touched", c.policy_file, c.untouched.len())?;
        let width = c.untouched.iter().map(|u| u.path().len()).max().unwrap_or(0);
        for u in &c.untouched {
            writeln!(out, "    {:<width$}  {}", u.path(), u.describe())?;
        }
    }
    if coverage.len() > 1 {
        writeln!(out, "  total: {}", Total::of(coverage))?;
    }
    Ok(())
}

fn request_json(spec: &RequestSpec, withhold: bool) -> Value {
    let mut r = json!({
        "method": spec.method,
        "authority": spec.authority,
        "path": path_shown(&spec.path, withhold),
        "scheme": spec.scheme,
    });
    if withhold {
        let headers: Vec<(String, &str)> = spec.headers.pairs().into_iter().map(|(n, _)| (n, WITHHELD)).collect();
        let trailers: Vec<(String, &str)> = spec.trailers.pairs().into_iter().map(|(n, _)| (n, WITHHELD)).collect();
        if let Some(map) = r.as_object_mut() {
            if let Some(p) = &spec.principal {
                map.insert("principal".into(), json!(p));
            }
            if !headers.is_empty() {
                map.insert("headers".into(), json!(headers));
            }
            if spec.body.is_some() || spec.body_chunks.is_some() || spec.body_base64.is_some() {
                map.insert("body".into(), json!(WITHHELD));
            }
            if !trailers.is_empty() {
                map.insert("trailers".into(), json!(trailers));
            }
        }
        return r;
    }
    let mut set = |key: &str, value: Value| {
        if let Some(map) = r.as_object_mut() {
            map.insert(key.to_owned(), value);
        }
    };
    if let Some(p) = &spec.principal {
        set("principal", json!(p));
    }
    if let Some(ip) = &spec.source_ip {
        set("sourceIp", json!(ip));
    }
    let headers = spec.headers.pairs();
    if !headers.is_empty() {
        set("headers", json!(headers));
    }
    if let Some(b) = &spec.body {
        set("body", json!(b));
    }
    if let Some(c) = &spec.body_chunks {
        set("bodyChunks", json!(c));
    }
    if let Some(b) = &spec.body_base64 {
        set("bodyBase64", json!(b));
    }
    let trailers = spec.trailers.pairs();
    if !trailers.is_empty() {
        set("trailers", json!(trailers));
    }
    r
}

fn expect_json(e: &Expect, withhold: bool) -> Value {
    let mut v = json!({ "decision": decision_word(e.decision) });
    if let Some(map) = v.as_object_mut() {
        if let Some(s) = e.status {
            map.insert("status".into(), json!(s));
        }
        if let Some(p) = &e.policy {
            map.insert("policy".into(), json!(p));
        }
        if let Some(r) = &e.reason {
            map.insert("reason".into(), json!(r));
        }
        if let Some(s) = &e.service {
            map.insert("service".into(), json!(s));
        }
        if let Some(f) = &e.findings {
            map.insert("findings".into(), json!(f));
        }
        if let Some(d) = &e.dry_run {
            map.insert("dryRun".into(), json!(d));
        }
        if let Some(a) = &e.audit {
            map.insert("audit".into(), json!(a));
        }
        if let Some(p) = &e.forwarded_path {
            map.insert("forwardedPath".into(), json!(path_shown(p, withhold)));
        }
        if let Some(b) = &e.forwarded_body {
            map.insert("forwardedBody".into(), if withhold { json!(WITHHELD) } else { json!(b) });
        }
    }
    v
}

fn case_json(case: &CaseRun) -> Value {
    let a = &case.actual;
    let withhold = withheld(case);
    let forwarded_body = a.forwarded_body.as_deref().map(|b| match std::str::from_utf8(b) {
        _ if withhold => json!(WITHHELD),
        Ok(text) => json!(text),
        Err(_) => json!({ "base64": quoted_bytes(b).trim_start_matches("base64:") }),
    });
    let forwarded_path = a.forwarded_path.as_deref().map(|p| path_shown(p, withhold));
    let (key, sent) = match &case.sent {
        Sent::Request(spec) => ("request", request_json(spec, withhold)),
        Sent::Connection(spec) => ("connection", connection_json(spec)),
    };
    let mut v = json!({
        "name": case.name,
        "result": if case.passed() { "ok" } else { "fail" },
        "expected": expect_json(&case.expect, withhold),
        "actual": {
            "decision": a.decision.map(decision_word),
            "status": a.status,
            "decisionHeader": a.decision_header,
            "record": a.record_json(),
            "forwardedPath": forwarded_path,
            "forwardedBody": forwarded_body,
            "fault": a.fault,
        },
        "mismatches": case.mismatches.iter().map(|m| {
            let m = shown_mismatch(m, withhold);
            json!({ "field": m.field.as_str(), "expected": m.expected, "actual": m.actual })
        }).collect::<Vec<_>>(),
    });
    if let Some(map) = v.as_object_mut() {
        map.insert(key.to_owned(), sent);
    }
    v
}

fn coverage_json(coverage: &[PolicyCoverage]) -> Value {
    Value::Array(
        coverage
            .iter()
            .map(|c| {
                let total = c.total();
                json!({
                    "policyFile": c.policy_file,
                    "cases": c.cases,
                    "items": total.items,
                    "touched": total.touched,
                    "percent": total.percent(),
                    "untouched": c.untouched.iter().map(|u| {
                        let mut v = json!({ "path": u.path(), "description": u.describe() });
                        if let Some(map) = v.as_object_mut() {
                            match u {
                                crate::testing::coverage::Untouched::Rule { policy, action, rule, .. } => {
                                    map.insert("kind".into(), json!("rule"));
                                    map.insert("policy".into(), json!(policy));
                                    map.insert("action".into(), json!(action));
                                    map.insert("rule".into(), json!(rule));
                                }
                                crate::testing::coverage::Untouched::Policy { policy, kind, .. } => {
                                    map.insert("kind".into(), json!("policy"));
                                    map.insert("policy".into(), json!(policy));
                                    map.insert("action".into(), json!(kind));
                                }
                                crate::testing::coverage::Untouched::Service { name, .. } => {
                                    map.insert("kind".into(), json!("service"));
                                    map.insert("service".into(), json!(name));
                                }
                            }
                        }
                        v
                    }).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// The whole run as one JSON document; with coverage, `coverage` per
/// policy file and `coverageTotal` (with `threshold` and `belowThreshold`
/// when one is given).
pub fn json_report(runs: &[FileRun], coverage: Option<&[PolicyCoverage]>, threshold: Option<f64>) -> Value {
    let totals = Totals::of(runs);
    let files: Vec<Value> = runs
        .iter()
        .map(|run| {
            json!({
                "file": shown(&run.file),
                "policyFile": run.policy_file.as_deref().map(shown),
                "error": run.result.as_ref().err(),
                "cases": run.cases().iter().map(case_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut doc = json!({
        "passed": totals.passed,
        "failed": totals.failed,
        "errors": totals.errors,
        "filteredOut": totals.filtered_out,
        "files": files,
    });
    if let (Some(c), Some(map)) = (coverage, doc.as_object_mut()) {
        map.insert("coverage".into(), coverage_json(c));
        let total = Total::of(c);
        let mut sum = json!({ "items": total.items, "touched": total.touched, "percent": total.percent() });
        if let (Some(t), Some(sum)) = (threshold, sum.as_object_mut()) {
            sum.insert("threshold".into(), json!(t));
            sum.insert("belowThreshold".into(), json!(total.below(t)));
        }
        map.insert("coverageTotal".into(), sum);
    }
    doc
}

/// The whole run as a JUnit report: one `<testsuite>` per test file, one
/// `<testcase>` per case (classname: the file); a file that could not be
/// run is a suite with one errored case.
pub fn junit_report(runs: &[FileRun]) -> Report {
    let mut report = Report::new("warden test");
    for run in runs {
        let file = shown(&run.file);
        let mut suite = TestSuite::new(file.as_str());
        match &run.result {
            Err(e) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(first_line(e)).set_type("input error").set_description(e.as_str());
                let mut case = TestCase::new("(load)", status);
                case.set_classname(file.as_str());
                suite.add_test_case(case);
            }
            Ok(cases) => {
                for c in cases {
                    let status = if c.passed() {
                        TestCaseStatus::success()
                    } else {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        let summary: Vec<String> =
                            c.mismatches.iter().map(|m| shown_mismatch(m, withheld(c)).to_string()).collect();
                        let ty = if c.failed_on(Field::Fault) { "fault" } else { "mismatch" };
                        s.set_message(summary.join("; ")).set_type(ty).set_description(failure_block(c));
                        s
                    };
                    let mut case = TestCase::new(c.name.as_str(), status);
                    case.set_classname(file.as_str());
                    suite.add_test_case(case);
                }
            }
        }
        report.add_test_suite(suite);
    }
    report
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::runner::Actual;

    fn case_with_record(record: Option<&str>) -> CaseRun {
        CaseRun {
            name: "c".into(),
            sent: Sent::Request(Box::new(serde_yaml_ng::from_str("{method: GET, authority: h, path: /}").unwrap())),
            expect: serde_yaml_ng::from_str("{decision: allow}").unwrap(),
            actual: Actual { record: record.map(str::to_owned), ..Actual::default() },
            mismatches: Vec::new(),
        }
    }

    /// Data stays out of reports when DLP found something, and when the
    /// record cannot be read (what it found is unknown): fail closed.
    #[test]
    fn data_is_withheld_on_findings_and_on_an_unreadable_record() {
        let found = r#"{"decision":"dlp","reason":"dlp-finding","findings":["aws_access_key"]}"#;
        let clean = r#"{"decision":"allow","reason":"no-policy","findings":[]}"#;
        assert!(withheld(&case_with_record(Some(found))));
        assert!(withheld(&case_with_record(Some("{not json"))));
        assert!(withheld(&case_with_record(Some(r#"{"decision":"maybe","findings":[]}"#))));
        assert!(!withheld(&case_with_record(Some(clean))));
        assert!(!withheld(&case_with_record(None)));
    }
}
