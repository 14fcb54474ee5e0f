//! What DLP found: which detector, where and what it did. Never the
//! matched bytes.

use crate::document::DlpAction;

/// Locations listed per decision record; findings beyond are counted by id
/// only.
pub const MAX_LOCATIONS: usize = 16;

/// The three places DLP looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Headers,
    Target,
    Body,
}

/// Where a finding was made. Never the matched bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In the value of this header.
    Header(String),
    /// In a header's name (the name is not repeated: it holds the secret).
    HeaderName,
    /// In the value of this request trailer (a header sent after the
    /// body), which the policies that scan headers scan too.
    Trailer(String),
    /// In a trailer's name.
    TrailerName,
    /// In the request path.
    Path,
    /// In the query string (offset into the decoded query).
    Query,
    /// In the body, at this offset of the decoded body.
    Body(u64),
}

/// A finding: which detector, where, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The detector's id (`credit_card`, or a custom pattern's name).
    pub detector: String,
    /// Where.
    pub location: Location,
    /// The action it caused (the strongest of the policies that apply).
    pub action: DlpAction,
    /// The DLP policy that decided the action.
    pub policy: String,
}

/// Replaces `data[from..to]` with `*`.
pub(crate) fn mask(data: &mut [u8], from: usize, to: usize) {
    if let Some(span) = data.get_mut(from..to.max(from)) {
        span.fill(b'*');
    }
}
