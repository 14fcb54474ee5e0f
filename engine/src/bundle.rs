//! The compiled bundle: a [`Policy`] serialized with postcard
//! behind a magic prefix and a format version.
//!
//! postcard, not bincode: bincode is unmaintained (RUSTSEC-2025-0141) and
//! its 3.0.0 release does not compile; postcard is maintained, `no_std`
//! friendly and compact, which suits a filter configuration.

use crate::error::{ErrorKind, PolicyError};
use crate::policy::Policy;

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"WARDEN\0B";

/// Bumped whenever the compiled form changes incompatibly.
pub const FORMAT_VERSION: u16 = 3;

/// Whether `bytes` starts like a bundle.
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Serializes a compiled policy.
pub fn encode(policy: &Policy) -> Result<Vec<u8>, PolicyError> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let body = postcard::to_allocvec(policy).map_err(|e| bundle_error(format!("cannot encode the policy: {e}")))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads a bundle back; a damaged bundle or one of another format version
/// is an error, never a partial policy.
pub fn decode(bytes: &[u8]) -> Result<Policy, PolicyError> {
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bundle_error("not a Warden bundle".into()))?;
    let (version, body) = rest.split_at_checked(2).ok_or_else(|| bundle_error("truncated header".into()))?;
    let version = u16::from_le_bytes([version.first().copied().unwrap_or(0), version.get(1).copied().unwrap_or(0)]);
    if version != FORMAT_VERSION {
        return Err(bundle_error(format!(
            "format version {version}, this filter reads version {FORMAT_VERSION}; recompile the policy with the matching warden"
        )));
    }
    let (policy, trailing): (Policy, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| bundle_error(format!("damaged bundle: {e}")))?;
    if !trailing.is_empty() {
        return Err(bundle_error(format!("damaged bundle: {} unexpected trailing bytes", trailing.len())));
    }
    policy.check_integrity().map_err(|what| bundle_error(what.to_owned()))?;
    Ok(policy)
}

fn bundle_error(message: String) -> PolicyError {
    PolicyError { path: String::new(), kind: ErrorKind::Bundle(message) }
}
