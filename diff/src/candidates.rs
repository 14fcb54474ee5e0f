//! Candidate values for each field: enough concrete values that every
//! combination of atoms one value can satisfy is met by at least one of
//! them. Built from the patterns' literal pieces and fillers that appear in
//! none of them.
//!
//! For patterns that are exact values, prefixes and suffixes the set is
//! complete: a value that meets some combination either equals one of the
//! exact values, or starts with the longest prefix it must have and ends
//! with the longest suffix it must have, and `prefix + filler + suffix`
//! meets the same combination as long as the filler starts and ends with a
//! character no longer pattern continues with (several fillers are tried).
//! Path templates and namespace globs are instantiated with the other
//! patterns' pieces; `warden diff`'s property tests measure the result.

use std::net::IpAddr;
use warden_engine::matcher::TrustDomainMatch;
use warden_engine::matcher::{IpBlock, NameMatch, PathMatch, StringMatch, TemplatePart};

/// Text that appears in no pattern of ordinary policies; several, so that
/// one of them avoids any pattern that continues a piece with its first
/// character.
const FILLERS: &[&str] = &["x", "q7", "zk9w"];

/// The pieces of string patterns.
#[derive(Debug, Default)]
pub struct Pieces {
    exact: Vec<String>,
    prefix: Vec<String>,
    suffix: Vec<String>,
}

impl Pieces {
    /// Adds a pattern.
    pub fn add(&mut self, m: &StringMatch) {
        match m {
            StringMatch::Exact(s) => self.exact.push(s.clone()),
            StringMatch::Prefix(s) => self.prefix.push(s.clone()),
            StringMatch::Suffix(s) => self.suffix.push(s.clone()),
            StringMatch::Presence => {}
        }
    }

    /// Adds an exact value.
    pub fn exact(&mut self, s: &str) {
        self.exact.push(s.to_owned());
    }

    /// Adds a suffix.
    pub fn suffix(&mut self, s: &str) {
        self.suffix.push(s.to_owned());
    }

    /// The candidates: every exact value, then `prefix + filler + suffix`
    /// for every prefix (and `base`) and every suffix (and none), with
    /// `fillers` mapped by `shape` (upper case for methods, say).
    pub fn candidates(&self, base: &str, shape: fn(&str) -> String) -> Vec<String> {
        let mut out = self.exact.clone();
        let mut prefixes: Vec<&str> = vec![base];
        prefixes.extend(self.prefix.iter().map(String::as_str));
        let mut suffixes: Vec<&str> = vec![""];
        suffixes.extend(self.suffix.iter().map(String::as_str));
        for p in &prefixes {
            for s in &suffixes {
                for f in FILLERS {
                    out.push(format!("{p}{}{s}", shape(f)));
                }
            }
        }
        dedup(&mut out);
        out
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = rustc_hash::FxHashSet::default();
    v.retain(|s| seen.insert(s.clone()));
}

fn same(s: &str) -> String {
    s.to_owned()
}

fn upper(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// Methods: the usual ones, every pattern's pieces, and methods no pattern
/// names.
pub fn methods(patterns: &[StringMatch]) -> Vec<String> {
    let mut pieces = Pieces::default();
    for m in ["GET", "POST", "CONNECT"] {
        pieces.exact(m);
    }
    patterns.iter().for_each(|p| pieces.add(p));
    pieces.candidates("", upper)
}

/// Paths: the root, every pattern's pieces, template instances, one
/// ambiguous path (an encoded slash), and, when the two policies normalize
/// paths differently (`normalizations_differ`), each of those written with
/// a dot segment, a doubled slash and encoded slashes, which one
/// normalization resolves and the other does not.
pub fn paths(patterns: &[PathMatch], normalizations_differ: bool) -> Vec<String> {
    let mut pieces = Pieces::default();
    pieces.exact("/");
    let mut segments: Vec<String> = vec!["x".to_owned()];
    for p in patterns {
        match p {
            PathMatch::Plain(m) => {
                pieces.add(m);
                if let StringMatch::Exact(s) | StringMatch::Prefix(s) | StringMatch::Suffix(s) = m {
                    segments.extend(s.split('/').filter(|s| !s.is_empty()).map(str::to_owned));
                }
            }
            PathMatch::Template(parts) => {
                for part in parts {
                    if let TemplatePart::Literal(l) = part {
                        segments.extend(l.split('/').filter(|s| !s.is_empty()).map(str::to_owned));
                    }
                }
            }
        }
    }
    dedup(&mut segments);
    segments.truncate(8);
    let mut out = pieces.candidates("/", same);
    for p in patterns {
        if let PathMatch::Template(parts) = p {
            out.extend(instances(parts, &segments));
        }
    }
    // Each written ambiguously: refused where rejectAmbiguousPaths, decoded
    // by DECODE_AND_MERGE_SLASHES where not.
    let plain = out.clone();
    out.extend(plain.iter().map(|p| format!("/{}", p.trim_start_matches('/').replace('/', "%2F"))));
    out.push("/x%2Fq7".to_owned());
    if normalizations_differ {
        let plain = out.clone();
        // One path that one normalization reads as `a` and the other as `b`.
        for a in plain.iter().take(24) {
            let Some(at) = a.rfind('/') else { continue };
            for b in plain.iter().take(24) {
                out.push(format!("{}../{}", a.get(..=at).unwrap_or("/"), b.trim_start_matches('/')));
            }
        }
        for p in plain {
            let rest = p.trim_start_matches('/');
            out.push(format!("/q7/../{rest}"));
            out.push(format!("/{rest}/../q7"));
            if let Some(at) = p.rfind('/') {
                out.push(format!("{}../q7", p.get(..=at).unwrap_or("/")));
            }
            out.push(format!("//{rest}"));
            out.push(format!("/{}", rest.replace('/', "//")));
        }
    }
    dedup(&mut out);
    out
}

/// A template's instances: `{*}` as each known segment, `{**}` as nothing,
/// one segment or two.
fn instances(parts: &[TemplatePart], segments: &[String]) -> Vec<String> {
    let mut out = vec![String::new()];
    for part in parts {
        let choices: Vec<String> = match part {
            TemplatePart::Literal(l) => vec![l.clone()],
            TemplatePart::Segment => segments.to_vec(),
            TemplatePart::Rest => vec![String::new(), "x".to_owned(), "x/q7".to_owned()],
        };
        let mut next = Vec::new();
        for prefix in &out {
            for c in &choices {
                next.push(format!("{prefix}{c}"));
                if next.len() >= 256 {
                    break;
                }
            }
        }
        out = next;
    }
    out.into_iter().filter(|p| p.starts_with('/')).collect()
}

/// Header values: absent, empty, and every pattern's pieces.
pub fn header_values(patterns: &[StringMatch]) -> Vec<Option<String>> {
    let mut pieces = Pieces::default();
    pieces.exact("");
    patterns.iter().for_each(|p| pieces.add(p));
    let mut out: Vec<Option<String>> = vec![None];
    out.extend(pieces.candidates("", same).into_iter().map(Some));
    out
}

/// Server names: none, the request's host (`None` in the list stands for
/// "the host": the caller fills it in), and every pattern's pieces.
pub fn server_names(patterns: &[StringMatch]) -> Vec<Option<Option<String>>> {
    let mut pieces = Pieces::default();
    patterns.iter().for_each(|p| pieces.add(p));
    let mut out: Vec<Option<Option<String>>> = vec![None, Some(None)];
    out.extend(pieces.candidates("", sni_filler).into_iter().filter(|s| !s.is_empty()).map(|s| Some(Some(s))));
    out
}

/// Server-name fillers differ from the hosts' so that "another name than
/// the host" is never the host by chance.
fn sni_filler(s: &str) -> String {
    format!("{s}-sni")
}

/// Addresses: a default, and the first and last address of every block
/// and the ones just outside it (the cells of nested and disjoint blocks
/// are intervals whose ends are among these).
pub fn addresses(blocks: &[IpBlock]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = vec![IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)];
    for b in blocks {
        let (first, last) = b.range();
        out.push(first);
        out.push(last);
        let (f, l) = (bits(first), bits(last));
        if let Some(before) = f.checked_sub(1) {
            out.push(b.address(before));
        }
        let max = if first.is_ipv4() { u128::from(u32::MAX) } else { u128::MAX };
        if l < max {
            out.push(b.address(l + 1));
        }
    }
    let mut seen = rustc_hash::FxHashSet::default();
    out.retain(|a| seen.insert(*a));
    out
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Principals: none, SPIFFE IDs built from every trust domain, namespace
/// and service account the patterns name (and ones they do not), and every
/// `principals` pattern's pieces.
pub fn principals(patterns: &[NameMatch]) -> Vec<Option<String>> {
    let mut tds: Vec<String> = vec!["cluster.local".to_owned(), "td-x".to_owned()];
    let mut nss: Vec<String> = vec!["x".to_owned()];
    let mut sas: Vec<String> = vec!["x".to_owned()];
    let mut pieces = Pieces::default();
    for p in patterns {
        match p {
            NameMatch::Principal(m) => {
                pieces.add(m);
                if let StringMatch::Exact(s) | StringMatch::Prefix(s) | StringMatch::Suffix(s) = m {
                    let parts: Vec<&str> = s.split('/').collect();
                    if let Some(td) = parts.first().filter(|t| !t.is_empty()) {
                        tds.push((*td).to_owned());
                    }
                    for w in parts.windows(2) {
                        match w {
                            ["ns", ns] if !ns.is_empty() => nss.push((*ns).to_owned()),
                            ["sa", sa] if !sa.is_empty() => sas.push((*sa).to_owned()),
                            _ => {}
                        }
                    }
                }
            }
            NameMatch::Namespace(glob) => {
                let text = glob.to_string();
                let ns = text.strip_prefix("*/ns/").and_then(|t| t.strip_suffix("/*")).unwrap_or(&text);
                nss.push(ns.replace('*', ""));
                nss.push(ns.replace('*', "x"));
            }
            NameMatch::TrustDomain(TrustDomainMatch::Exact(td)) => tds.push(td.clone()),
            NameMatch::TrustDomain(TrustDomainMatch::Split { prefix, suffix }) => {
                tds.push(format!("{prefix}{suffix}"));
                tds.push(format!("{prefix}x{suffix}"));
            }
            NameMatch::TrustDomain(TrustDomainMatch::Any) => {}
            NameMatch::ServiceAccount { namespace, name } => {
                nss.push(namespace.clone());
                sas.push(name.clone());
            }
        }
    }
    for v in [&mut tds, &mut nss, &mut sas] {
        dedup(v);
    }
    let mut out: Vec<String> = Vec::new();
    for td in &tds {
        for ns in &nss {
            for sa in &sas {
                out.push(format!("spiffe://{td}/ns/{ns}/sa/{sa}"));
            }
        }
    }
    out.extend(pieces.candidates("", same).into_iter().map(|p| format!("spiffe://{p}")));
    dedup(&mut out);
    let mut all: Vec<Option<String>> = vec![None];
    all.extend(out.into_iter().map(Some));
    all
}

/// Hosts (normalized): every registered host, wildcards filled, every
/// `hosts` pattern's host part, and hosts no pattern names.
pub fn hosts(pieces: &Pieces) -> Vec<String> {
    pieces.candidates("", same).into_iter().filter(|h| !h.is_empty() && !h.starts_with('.')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The distinct truth-value vectors `values` give `patterns`.
    fn classes<T>(values: &[T], test: impl Fn(&T) -> Vec<bool>) -> BTreeSet<Vec<bool>> {
        values.iter().map(test).collect()
    }

    #[test]
    fn string_pieces_meet_every_combination_of_prefix_suffix_and_exact() {
        let patterns: Vec<StringMatch> =
            ["GET", "PO*", "POST", "*T", "*ST", "*"].iter().map(|p| StringMatch::parse(p).unwrap()).collect();
        let values = methods(&patterns);
        let got = classes(&values, |v| patterns.iter().map(|p| p.matches(v)).collect());
        // GET, POST exactly; PO… without T; PO…T not ST; PO…ST other than
        // POST; …T not PO nor ST; …ST not PO; none of them.
        for want in [
            vec![true, false, false, true, false, true],
            vec![false, true, true, true, true, true],
            vec![false, true, false, false, false, true],
            vec![false, true, false, true, false, true],
            vec![false, true, false, true, true, true],
            vec![false, false, false, true, false, true],
            vec![false, false, false, true, true, true],
            vec![false, false, false, false, false, true],
        ] {
            assert!(got.contains(&want), "{want:?} not met by {values:?}");
        }
    }

    #[test]
    fn paths_instantiate_templates_with_known_segments_and_an_ambiguous_form() {
        let patterns: Vec<PathMatch> =
            ["/v1/{*}/refunds", "/v1/abc*", "/files/{**}"].iter().map(|p| PathMatch::parse(p).unwrap()).collect();
        let values = paths(&patterns, false);
        let got = classes(&values, |v| patterns.iter().map(|p| p.matches(v)).collect());
        // A template instance that also has the prefix: its segment is a
        // piece of the other pattern.
        assert!(got.contains(&vec![true, true, false]), "{values:?}");
        assert!(got.contains(&vec![true, false, false]), "{values:?}");
        assert!(got.contains(&vec![false, false, true]), "{values:?}");
        assert!(got.contains(&vec![false, false, false]), "{values:?}");
        assert!(values.iter().any(|v| v.contains("%2F")), "an ambiguous path: {values:?}");
    }

    #[test]
    fn addresses_meet_every_cell_of_nested_blocks() {
        let blocks: Vec<IpBlock> = ["10.0.0.0/8", "10.66.0.0/16", "10.66.1.7", "2001:db8::/32"]
            .iter()
            .map(|b| IpBlock::parse(b).unwrap())
            .collect();
        let values = addresses(&blocks);
        let got = classes(&values, |ip| blocks.iter().map(|b| b.contains(*ip)).collect());
        for want in [
            vec![false, false, false, false],
            vec![true, false, false, false],
            vec![true, true, false, false],
            vec![true, true, true, false],
            vec![false, false, false, true],
        ] {
            assert!(got.contains(&want), "{want:?} not met by {values:?}");
        }
    }

    #[test]
    fn principals_combine_trust_domains_namespaces_and_service_accounts() {
        let patterns = vec![
            NameMatch::Principal(StringMatch::parse("cluster.local/ns/pay/*").unwrap()),
            NameMatch::namespace("data"),
            NameMatch::trust_domain("other.td").unwrap(),
            NameMatch::service_account("data/etl").unwrap(),
        ];
        let values = principals(&patterns);
        let got = classes(&values, |p| patterns.iter().map(|m| p.as_deref().is_some_and(|p| m.matches(p))).collect());
        for want in [
            vec![false, false, false, false],
            vec![true, false, false, false],
            vec![false, true, false, false],
            vec![false, true, true, false],
            vec![false, true, false, true],
            vec![false, true, true, true],
            vec![false, false, true, false],
        ] {
            assert!(got.contains(&want), "{want:?} not met by {values:?}");
        }
        assert!(values.contains(&None), "no principal is a class of its own");
    }

    #[test]
    fn header_values_include_absent_and_empty() {
        let patterns: Vec<StringMatch> = ["RF-*", "*"].iter().map(|p| StringMatch::parse(p).unwrap()).collect();
        let values = header_values(&patterns);
        assert!(values.contains(&None));
        assert!(values.contains(&Some(String::new())));
        assert!(values.iter().flatten().any(|v| v.starts_with("RF-")));
    }
}
