//! From changed classes to a readable report: classes with the same pair of
//! verdicts are merged into boxes (a set of values per field) where the
//! merge is exact, i.e. two boxes that differ in one field only become one.

use crate::atoms::{self, Field, Value};
use crate::{Candidate, Change, ClassText, Dest, Diff, FieldSet, Group, Kind, Pair, Verdict};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use warden_engine::{normalize, ServiceId};

/// One changed class: its destination and one candidate per field.
pub(crate) struct Cell {
    pub pair: Pair,
    pub dest: usize,
    /// Per field, the candidate (`None`: any).
    pub idx: Vec<Option<u32>>,
    pub old: Verdict,
    pub new: Verdict,
}

/// A product of value sets: destinations, then one set per field.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Box {
    dims: Vec<BTreeSet<u32>>,
}

fn merge(mut boxes: Vec<Box>) -> Vec<Box> {
    let n = boxes.first().map_or(0, |b| b.dims.len());
    for _pass in 0..2 {
        for k in 0..n {
            let mut by_rest: FxHashMap<Vec<BTreeSet<u32>>, BTreeSet<u32>> = FxHashMap::default();
            let mut order: Vec<Vec<BTreeSet<u32>>> = Vec::new();
            for b in boxes {
                let mut rest = b.dims.clone();
                let mine = std::mem::take(rest.get_mut(k).unwrap_or(&mut BTreeSet::new()));
                let slot = by_rest.entry(rest.clone()).or_insert_with(|| {
                    order.push(rest);
                    BTreeSet::new()
                });
                slot.extend(mine);
            }
            boxes = order
                .into_iter()
                .filter_map(|mut rest| {
                    let mine = by_rest.remove(&rest)?;
                    if let Some(slot) = rest.get_mut(k) {
                        *slot = mine;
                    }
                    Some(Box { dims: rest })
                })
                .collect();
        }
    }
    boxes
}

/// The report's changes.
pub(crate) fn changes<'g>(
    cells: Vec<Cell>,
    group_of: &dyn Fn(&Pair) -> Option<&'g Group>,
    dests: &[Dest],
    diff: &Diff<'_>,
) -> Vec<Change> {
    let mut by_verdicts: FxHashMap<(Pair, Verdict, Verdict), Vec<Box>> = FxHashMap::default();
    let mut order = Vec::new();
    for c in cells {
        let Some(group) = group_of(&c.pair) else { continue };
        let mut dims = vec![BTreeSet::from([c.dest as u32])];
        dims.extend(c.idx.iter().zip(&group.candidates).map(|(i, list)| match i {
            Some(i) => BTreeSet::from([*i]),
            None => (0..list.len() as u32).collect(),
        }));
        let key = (c.pair, c.old, c.new);
        by_verdicts
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(Box { dims });
    }
    let mut out = Vec::new();
    for key in order {
        let Some(boxes) = by_verdicts.remove(&key) else { continue };
        let Some(group) = group_of(&key.0) else { continue };
        for b in merge(boxes) {
            let classes = b.dims.iter().map(|d| d.len() as u64).product();
            if let Some(change) = describe(&b, &key, group, dests, diff, classes) {
                out.push(change);
            }
        }
    }
    out.sort_by(|a, b| {
        (a.kind, &a.services.1, &a.services.0, &a.destinations).cmp(&(
            b.kind,
            &b.services.1,
            &b.services.0,
            &b.destinations,
        ))
    });
    out
}

fn service_name(diff: &Diff<'_>, old: bool, id: Option<ServiceId>) -> Option<String> {
    let policy = if old { diff.old } else { diff.new };
    id.and_then(|i| policy.registry().service(i)).map(|s| s.name.clone())
}

fn describe(
    b: &Box,
    key: &(Pair, Verdict, Verdict),
    group: &Group,
    dests: &[Dest],
    diff: &Diff<'_>,
    classes: u64,
) -> Option<Change> {
    let (dest_set, field_sets) = b.dims.split_first()?;
    let first_dest = dests.get(*dest_set.first()? as usize)?;
    let idx: Vec<u32> = field_sets.iter().map(|s| s.first().copied().unwrap_or(0)).collect();
    let witness = diff.probe(group, first_dest, &idx);
    let any_destination = dest_set.len() == group.dests.len();
    let destinations = dest_set
        .iter()
        .filter_map(|&d| dests.get(d as usize))
        .map(|d| {
            let connection = d.key.connection;
            let shown = |(authority, port): (&str, u16)| {
                if connection {
                    match authority {
                        "" => format!("no SNI on port {port}"),
                        sni => format!("SNI {sni} on port {port}"),
                    }
                } else if authority.ends_with(&format!(":{port}")) {
                    authority.to_owned()
                } else {
                    format!("{authority} on port {port}")
                }
            };
            let mut all = vec![shown((&d.authority, d.port))];
            all.extend(d.aliases.iter().map(|(a, p)| shown((a, *p))));
            all.join(" / ")
        })
        .collect();
    let mut fields = Vec::new();
    for ((field, set), list) in group.fields.iter().zip(field_sets).zip(&group.candidates) {
        if set.len() == list.len() {
            continue;
        }
        // The shorter list: the classes covered, or the ones left out.
        let except = set.len() * 2 > list.len();
        let classes = list
            .iter()
            .enumerate()
            .filter(|(i, _)| set.contains(&(*i as u32)) != except)
            .map(|(_, c)| class_text(diff, group, *field, c, &first_dest.host))
            .collect();
        fields.push(FieldSet { field: field_name(group, *field), except, classes });
    }
    let (pair, old, new) = key;
    Some(Change {
        kind: Kind::of(old, new),
        old: old.clone(),
        new: new.clone(),
        services: (service_name(diff, true, pair.0), service_name(diff, false, pair.1)),
        any_destination,
        destinations,
        fields,
        witness,
        classes,
    })
}

fn field_name(group: &Group, field: Field) -> String {
    match field {
        Field::Identity => "principal".to_owned(),
        Field::Method => "method".to_owned(),
        Field::Path => "path".to_owned(),
        Field::SourceIp => "source ip".to_owned(),
        Field::Sni => "sni".to_owned(),
        Field::Header(i) => format!("header {}", group.atoms.headers.get(i).map(|(n, _)| n.as_str()).unwrap_or("?")),
    }
}

/// A class as the patterns its example matches.
fn class_text(diff: &Diff<'_>, group: &Group, field: Field, c: &Candidate, host: &str) -> ClassText {
    let a = &group.atoms;
    let norm = |p: &str| normalize::normalize_path(p, diff.old.path_normalization()).into_owned();
    let (example, matches): (String, Vec<String>) = match c {
        Candidate::Principal(p) => {
            let bits = atoms::bits(a, field, Value::Identity(p.as_deref()));
            let names = a.names.iter().zip(bits.iter().skip(1)).filter(|(_, b)| **b).map(|(m, _)| m.to_string());
            match p {
                None => ("(none)".to_owned(), vec!["no principal".to_owned()]),
                Some(p) => (p.clone(), names.collect()),
            }
        }
        Candidate::Method(m) => {
            let bits = atoms::bits(a, field, Value::Method(m));
            (
                m.clone(),
                a.methods.iter().zip(bits.iter().skip(2)).filter(|(_, b)| **b).map(|(m, _)| m.to_string()).collect(),
            )
        }
        Candidate::Path(p) => {
            let n = norm(p);
            let bits = atoms::bits(a, field, Value::Path(Some((p, &n, &n))));
            let mut m: Vec<String> =
                a.paths.iter().zip(bits.iter().skip(2)).filter(|(_, b)| **b).map(|(m, _)| m.to_string()).collect();
            if bits.get(1) == Some(&true) {
                m.insert(0, "ambiguous (refused where rejectAmbiguousPaths)".to_owned());
            }
            (p.clone(), m)
        }
        Candidate::Ip(ip) => {
            let bits = atoms::bits(a, field, Value::SourceIp(*ip));
            (ip.to_string(), a.ips.iter().zip(&bits).filter(|(_, b)| **b).map(|(m, _)| m.to_string()).collect())
        }
        Candidate::Sni(s) => match s {
            None => ("(none)".to_owned(), vec!["no SNI".to_owned()]),
            Some(None) => (host.to_owned(), vec!["the request's host".to_owned()]),
            Some(Some(s)) => {
                let bits = atoms::bits(a, field, Value::Sni(Some(s), host));
                let mut m: Vec<String> =
                    a.snis.iter().zip(bits.iter().skip(2)).filter(|(_, b)| **b).map(|(m, _)| m.to_string()).collect();
                if bits.get(1) == Some(&true) {
                    m.push("the request's host".to_owned());
                }
                if m.is_empty() {
                    m.push("a name other than the host".to_owned());
                }
                (s.clone(), m)
            }
        },
        Candidate::Header(v) => {
            let patterns = match field {
                Field::Header(i) => a.headers.get(i).map(|(_, p)| p.as_slice()).unwrap_or_default(),
                _ => &[],
            };
            let bits = atoms::bits(a, field, Value::Header(v.as_deref()));
            match v {
                None => ("(absent)".to_owned(), vec!["absent".to_owned()]),
                Some(v) => (
                    format!("{v:?}"),
                    patterns.iter().zip(bits.iter().skip(1)).filter(|(_, b)| **b).map(|(m, _)| m.to_string()).collect(),
                ),
            }
        }
    };
    let matches = if matches.is_empty() { vec!["any other".to_owned()] } else { matches };
    ClassText { matches, example }
}
