//! Payment and commerce platform credentials beyond Stripe.

use super::keyed::keyed_value;
use super::{Anchor, Detector, Group};

pub(super) const SHOPIFY_TOKEN: Detector = Detector {
    id: "shopify_token",
    group: Group::Commerce,
    description: "Shopify Admin API access token (shpat_), custom app (shpca_), private app (shppa_) token or app shared secret (shpss_) + 32 hex",
    anchor: Anchor::Literals(&["shpat_", "shpca_", "shppa_", "shpss_"]),
    pattern: r"(?-u)\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const SQUARE_TOKEN: Detector = Detector {
    id: "square_token",
    group: Group::Commerce,
    description: "Square access token (EAAA + 60 characters, or legacy sq0atp- + 22) or OAuth application secret (sq0csp- + 43)",
    anchor: Anchor::Literals(&["EAAA", "sq0atp-", "sq0csp-"]),
    // Read one character past the longest token: a longer run is not one.
    pattern: r"(?-u)\b(?:EAAA[A-Za-z0-9_-]{60,61}|sq0atp-[A-Za-z0-9_-]{22,23}|sq0csp-[A-Za-z0-9_-]{43,44})",
    validator: Some(square_token),
    keep_last: 0,
};

fn square_token(m: &[u8]) -> bool {
    match m.get(..7) {
        Some(b"sq0atp-") => m.len() == 7 + 22,
        Some(b"sq0csp-") => m.len() == 7 + 43,
        _ => m.len() == 4 + 60,
    }
}

pub(super) const PLAID_TOKEN: Detector = Detector {
    id: "plaid_token",
    group: Group::Commerce,
    description: "Plaid access token (access-sandbox-/access-development-/access-production- + UUID), or a client id (24) or secret (30 characters) assigned to a plaid name",
    anchor: Anchor::Literals(&["access-sandbox-", "access-development-", "access-production-", "plaid", "Plaid", "PLAID"]),
    pattern: concat!(
        r"(?-u)(?:\baccess-(?:sandbox|development|production)-",
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|",
        keyed!("plaid|Plaid|PLAID"),
        r"(?:[A-Za-z0-9]{24}|[A-Za-z0-9]{30})\b)",
    ),
    validator: Some(plaid_token),
    keep_last: 0,
};

fn plaid_token(m: &[u8]) -> bool {
    m.starts_with(b"access-") || keyed_value(m)
}
