//! Crafted bodies against the DLP scanner: every literal anchor of the
//! catalogue repeated for 256 KiB, alone and followed by each of a few
//! endings (an assignment, a short value, a JSON key, a YAML key over a
//! map, ...), scanned natively. A body made of nothing but anchors costs far
//! more a byte than real traffic; this finds the costliest, and compares
//! two builds: the findings of every body must not change, and a change
//! that cuts instructions can still cost time (a `bcmp` call per name once
//! made a body of `_PASSWD.` 2.6 times slower with half the instructions).
//!
//! ```sh
//! cargo run -p warden-engine --features internals --release --example dlp_sweep -- \
//!     [--top N] [--reps N] [--out FILE] [--compare FILE]
//! ```
//!
//! `--out` writes every body's time (ms a MiB), findings and text, tab
//! separated; `--compare` reads such a file from another build and lists
//! the bodies whose findings differ (exit status 1 if any) and those more
//! than 1.5 times slower. The times are the best of `--reps` scans (3) on a
//! shared machine: compare builds run one after the other on a quiet one,
//! and time a body again before believing it.

use std::collections::BTreeMap;
use std::time::Instant;
use warden_engine::dlp::scanner::Scanner;
use warden_engine::dlp::{Anchor, CATALOGUE};

/// What follows each anchor in a body.
const ENDINGS: [&str; 13] =
    ["", " ", "=", ":\"a1", ".", "_", "-1", "=x ", ": \"ab\", ", "\": {", ":\n  x: ", "\": \"^1.2\", ", "=      a1 "];

const SIZE: usize = 256 << 10;

fn main() {
    if let Err(e) = run() {
        eprintln!("dlp_sweep: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let (mut top, mut reps, mut out, mut compare) = (15usize, 3usize, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--top" => top = args.next().and_then(|n| n.parse().ok()).ok_or("--top takes a number")?,
            "--reps" => {
                reps = args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0).ok_or("--reps takes a number")?
            }
            "--out" => out = Some(args.next().ok_or("--out takes a file")?),
            "--compare" => compare = Some(args.next().ok_or("--compare takes a file")?),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    let all: Vec<_> = CATALOGUE.iter().collect();
    let scanner = Scanner::new(&all, Vec::new()).map_err(|e| e.to_string())?;
    let mut units: Vec<String> = CATALOGUE
        .iter()
        .filter_map(|d| match d.anchor {
            Anchor::Literals(literals) => Some(literals),
            _ => None,
        })
        .flatten()
        .flat_map(|literal| ENDINGS.iter().map(move |ending| format!("{literal}{ending}")))
        .collect();
    units.sort();
    units.dedup();
    let mut rows: Vec<(f64, usize, String)> = Vec::with_capacity(units.len());
    for unit in units {
        let body: Vec<u8> = unit.bytes().cycle().take(SIZE).collect();
        let (mut best, mut found) = (f64::MAX, 0);
        for _ in 0..reps {
            let start = Instant::now();
            found = scanner.scan(std::hint::black_box(&body)).len();
            best = best.min(start.elapsed().as_secs_f64());
        }
        let ms_a_mib = best * 1000.0 * (1 << 20) as f64 / SIZE as f64;
        rows.push((ms_a_mib, found, format!("{unit:?}")));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("{} bodies of {} KiB; the slowest:", rows.len(), SIZE >> 10);
    for (ms, found, unit) in rows.iter().take(top) {
        println!("{ms:>8.1} ms a MiB {found:>7} findings  {unit}");
    }
    if let Some(path) = out {
        let text: String = rows.iter().map(|(ms, found, unit)| format!("{ms:.1}\t{found}\t{unit}\n")).collect();
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = compare {
        let before = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let before: BTreeMap<&str, (f64, usize)> = before
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, '\t');
                let ms = fields.next()?.parse().ok()?;
                let found = fields.next()?.parse().ok()?;
                Some((fields.next()?, (ms, found)))
            })
            .collect();
        let (mut differ, mut slower, mut missing) = (0, 0, 0);
        for (ms, found, unit) in &rows {
            let Some(&(was_ms, was_found)) = before.get(unit.as_str()) else {
                missing += 1;
                continue;
            };
            if was_found != *found {
                differ += 1;
                println!("FINDINGS {was_found} -> {found}  {unit}");
            } else if *ms > 1.5 * was_ms && *ms > 20.0 {
                slower += 1;
                println!("slower {was_ms:.1} -> {ms:.1} ms a MiB  {unit}");
            }
        }
        println!("against {path}: {differ} bodies with other findings, {slower} slower, {missing} not in it");
        if differ > 0 {
            std::process::exit(1);
        }
    }
    Ok(())
}
