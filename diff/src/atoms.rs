//! The atoms of a pair of policies: every test a rule makes on one field of
//! a request. A request's class is the truth value of every atom; two
//! requests of one class are decided alike by both policies.

use std::net::IpAddr;
use warden_engine::authz::{AuthzPolicy, Test};
use warden_engine::matcher::{HostMatch, IpBlock, NameMatch, PathMatch, StringMatch};
use warden_engine::normalize;

/// The fields of a request besides its destination, each with its own atoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// The caller's principal.
    Identity,
    /// The method.
    Method,
    /// The normalized path.
    Path,
    /// The caller's address.
    SourceIp,
    /// The TLS server name.
    Sni,
    /// A request header, by its index in [`Atoms::headers`].
    Header(usize),
}

/// The atoms of the policies that apply to one destination, per field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Atoms {
    /// `principals`, `namespaces`, `trustDomains`, `serviceAccounts`.
    pub names: Vec<NameMatch>,
    /// `methods`.
    pub methods: Vec<StringMatch>,
    /// `paths`.
    pub paths: Vec<PathMatch>,
    /// `ipBlocks` and `remoteIpBlocks` (the probe's caller has one address).
    pub ips: Vec<IpBlock>,
    /// `connection.sni`.
    pub snis: Vec<StringMatch>,
    /// `request.headers[name]`, by lowercase name.
    pub headers: Vec<(String, Vec<StringMatch>)>,
}

fn push<T: PartialEq + Clone>(list: &mut Vec<T>, items: &[T]) {
    for item in items {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

/// Every test of every rule of `policies`.
fn tests<'p>(policies: impl IntoIterator<Item = &'p AuthzPolicy>) -> impl Iterator<Item = &'p Test> {
    policies.into_iter().flat_map(|p| &p.rules).flat_map(|r| r.checks()).map(|c| &c.test)
}

impl Atoms {
    /// The atoms of `policies`.
    pub fn of<'p>(policies: impl IntoIterator<Item = &'p AuthzPolicy>) -> Self {
        let mut a = Atoms::default();
        for test in tests(policies) {
            match test {
                Test::Identity(p) => push(&mut a.names, p),
                Test::SourceIp(b) | Test::RemoteIp(b) => push(&mut a.ips, b),
                Test::Method(p) => push(&mut a.methods, p),
                Test::Path(p) => push(&mut a.paths, p),
                Test::Sni(p) => push(&mut a.snis, p),
                Test::Header(name, p) => {
                    let name = name.to_ascii_lowercase();
                    match a.headers.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, list)) => push(list, p),
                        None => a.headers.push((name, p.clone())),
                    }
                }
                Test::Host(..) | Test::Port(..) => {}
            }
        }
        a.headers.sort_by(|x, y| x.0.cmp(&y.0));
        a
    }

    /// The fields with atoms, in a fixed order.
    pub fn fields(&self, sni: bool) -> Vec<Field> {
        let mut out = vec![Field::Identity, Field::Method, Field::Path, Field::SourceIp];
        if sni || !self.snis.is_empty() {
            out.push(Field::Sni);
        }
        out.extend((0..self.headers.len()).map(Field::Header));
        out
    }
}

/// The atoms about where a request goes, over both policies: `hosts` and
/// `ports` of every rule.
#[derive(Debug, Clone, Default)]
pub struct DestAtoms {
    /// `hosts`.
    pub hosts: Vec<HostMatch>,
    /// `ports`.
    pub ports: Vec<u16>,
    /// `connection.sni` patterns, read on the host: whether a request's
    /// host could be its own server name and match them.
    pub sni: Vec<StringMatch>,
}

impl DestAtoms {
    /// The destination atoms of `policies`.
    pub fn of<'p>(policies: impl IntoIterator<Item = &'p AuthzPolicy>) -> Self {
        let mut d = DestAtoms::default();
        for test in tests(policies) {
            match test {
                Test::Host(h, _) => push(&mut d.hosts, h),
                Test::Port(p, _) => push(&mut d.ports, p),
                Test::Sni(p) => push(&mut d.sni, p),
                _ => {}
            }
        }
        d
    }
}

/// One request's value of one field, as the atoms read it.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// The principal, if any.
    Identity(Option<&'a str>),
    /// The method.
    Method(&'a str),
    /// The path as sent, then its path part (no query) under each
    /// policy's normalization; `None` for a CONNECT.
    Path(Option<(&'a str, &'a str, &'a str)>),
    /// The caller's address.
    SourceIp(IpAddr),
    /// The server name and the request's host.
    Sni(Option<&'a str>, &'a str),
    /// A header's value, if present.
    Header(Option<&'a str>),
}

/// The truth value of every atom of `field` for `value`, as bits.
pub fn bits(atoms: &Atoms, field: Field, value: Value<'_>) -> Vec<bool> {
    match (field, value) {
        (Field::Identity, Value::Identity(p)) => {
            let mut out = vec![p.is_some()];
            out.extend(atoms.names.iter().map(|m| p.is_some_and(|p| m.matches(p))));
            out
        }
        (Field::Method, Value::Method(m)) => {
            let mut out = vec![m == "CONNECT", normalize::is_valid_method(m)];
            out.extend(atoms.methods.iter().map(|p| p.matches(m)));
            out
        }
        (Field::Path, Value::Path(p)) => {
            let ambiguous = |raw: &str| normalize::is_ambiguous(raw, normalize::split_path(raw).0);
            let mut out = vec![p.is_some(), p.is_some_and(|(raw, _, _)| ambiguous(raw))];
            for (i, path) in [p.map(|p| p.1), p.map(|p| p.2)].into_iter().enumerate() {
                if i == 1 && p.is_some_and(|(_, a, b)| a == b) {
                    break;
                }
                out.extend(atoms.paths.iter().map(|m| path.is_some_and(|path| m.matches(path))));
            }
            out
        }
        (Field::SourceIp, Value::SourceIp(ip)) => atoms.ips.iter().map(|b| b.contains(ip)).collect(),
        (Field::Sni, Value::Sni(sni, host)) => {
            let same = sni.is_some_and(|s| normalize::server_name(s).is_ok_and(|n| n == host));
            let mut out = vec![sni.is_some(), same];
            out.extend(atoms.snis.iter().map(|m| sni.is_some_and(|s| m.matches(s))));
            out
        }
        (Field::Header(i), Value::Header(v)) => {
            let mut out = vec![v.is_some()];
            if let Some((_, patterns)) = atoms.headers.get(i) {
                out.extend(patterns.iter().map(|m| v.is_some_and(|v| m.matches_header(v))));
            }
            out
        }
        _ => Vec::new(),
    }
}
