//! What a policy's rules read of a request, worked out when it is
//! compiled: the request path reads only that, and refuses a request when
//! an enforced rule needs what Envoy cannot say.

use crate::authz::{AuthzPolicy, Rule, Test};

/// What the rules read, so the request path reads only that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Needs {
    /// `source.address` (any address check).
    pub addresses: bool,
    /// The peer certificate's subject (patterns that can match it).
    pub subject: bool,
    /// The SNI.
    pub sni: bool,
}

/// What the enforced policies applying to a request need to know: when
/// Envoy cannot say, the request is refused rather than guessed at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Required {
    /// The direct peer's address (`ipBlocks`, `source.ip`).
    pub direct_address: bool,
    /// The remote address (`remoteIpBlocks`, `remote.ip`).
    pub remote_address: bool,
    /// The caller's names.
    pub identity: bool,
}

impl Required {
    pub(crate) fn of<'a>(policies: impl Iterator<Item = &'a AuthzPolicy>) -> Self {
        let mut out = Required::default();
        for test in policies.flat_map(|p| &p.rules).flat_map(Rule::checks).map(|c| &c.test) {
            match test {
                Test::SourceIp(_) => out.direct_address = true,
                Test::RemoteIp(_) => out.remote_address = true,
                Test::Identity(_) => out.identity = true,
                _ => {}
            }
        }
        out
    }

    pub(crate) fn or(self, other: Required) -> Required {
        Required {
            direct_address: self.direct_address || other.direct_address,
            remote_address: self.remote_address || other.remote_address,
            identity: self.identity || other.identity,
        }
    }
}
