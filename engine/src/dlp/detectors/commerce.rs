//! Payment and commerce platform credentials beyond Stripe.

use super::keyed::{keyed_value};
use super::{Anchor, Detector, Group};

pub(super) const SHOPIFY_TOKEN: Detector = Detector {
    id: "shopify_token",
    group: Group::Commerce,
    description: describe!("Shopify access token (shpat_, shpca_, shppa_) or app shared secret (shpss_) + 32 hex"),
    anchor: Anchor::Literals(&["shpat_", "shpca_", "shppa_", "shpss_"]),
    pattern: r"(?-u)\bshp(?:at|ca|pa|ss)_[\da-fA-F]{32}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const SQUARE_TOKEN: Detector = Detector {
    id: "square_token",
    group: Group::Commerce,
    description: describe!("Square access token (EAAA + 60 characters, or legacy sq0atp- + 22) or OAuth application secret (sq0csp- + 43)"),
    anchor: Anchor::Literals(&["EAAA", "sq0atp-", "sq0csp-"]),
    // Read one character past the longest token: a longer run is not one.
    pattern: r"(?-u)\b(?:EAAA[\w-]{60,61}|sq0atp-[\w-]{22,23}|sq0csp-[\w-]{43,44})",
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
    description: describe!("Plaid access token (access-<environment>- + UUID), or a client id (24) or secret (30) assigned to a plaid name"),
    anchor: Anchor::Literals(&["access-sandbox-", "access-development-", "access-production-", "plaid", "Plaid", "PLAID"]),
    pattern: concat!(
        r"(?-u)(?:\baccess-(?:sandbox|development|production)-",
        r"[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}\b|",
        keyed!("plaid|Plaid|PLAID"),
        r"(?:[A-Za-z\d]{24}|[A-Za-z\d]{30})\b)",
    ),
    validator: Some(plaid_token),
    keep_last: 0,
};

fn plaid_token(m: &[u8]) -> bool {
    m.starts_with(b"access-") || keyed_value(m)
}
