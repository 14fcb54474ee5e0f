//! Monitoring and error-tracking credentials.

use super::keyed::{keyed_value, len_after};
use super::{validators, Anchor, Detector, Group};

pub(super) const DATADOG_API_KEY: Detector = Detector {
    id: "datadog_api_key",
    group: Group::Observability,
    description: describe!("Datadog API key (32 hex) or application key (40 characters) assigned to a datadog / DD_API_KEY / DD_APP_KEY name"),
    // Datadog keys are bare hex: only the name they are assigned to tells
    // them apart from hashes.
    anchor: Anchor::Literals(&[
        "datadog", "Datadog", "DATADOG", "DD_API_KEY", "DD_APP_KEY", "DD_APPLICATION_KEY", "dd_api_key", "dd_app_key",
    ]),
    pattern: concat!(
        r"(?-u)",
        keyed!("datadog|Datadog|DATADOG|DD_API_KEY|DD_APP_KEY|DD_APPLICATION_KEY|dd_api_key|dd_app_key"),
        r"(?:[\da-f]{32}|[A-Za-z\d]{40})\b",
    ),
    validator: Some(keyed_value),
    keep_last: 0,
};

pub(super) const NEW_RELIC_KEY: Detector = Detector {
    id: "new_relic_key",
    group: Group::Observability,
    description: describe!("New Relic key: NRAK- (user), NRAA- (admin), NRII- (insert), NRJS- (browser), or 64 characters assigned to a newrelic name"),
    anchor: Anchor::Literals(&["NRAK-", "NRAA-", "NRII-", "NRJS-", "newrelic", "new_relic", "new-relic", "NEW_RELIC", "NEWRELIC", "NewRelic"]),
    pattern: concat!(
        r"(?-u)(?:\bNRA[AK]-[A-Za-z\d]{27}\b|\bNRII-[A-Za-z\d-]{32,33}|\bNRJS-[\da-f]{19}\b|",
        keyed!("newrelic|new_relic|new-relic|NEW_RELIC|NEWRELIC|NewRelic"),
        r"[A-Za-z\d]{64}\b)",
    ),
    validator: Some(new_relic_key),
    keep_last: 0,
};

/// A 33rd character after NRII- is a longer run.
fn new_relic_key(m: &[u8]) -> bool {
    if m.starts_with(b"NR") {
        !m.starts_with(b"NRII-") || m.len() == 5 + 32
    } else {
        keyed_value(m)
    }
}

pub(super) const SENTRY_TOKEN: Detector = Detector {
    id: "sentry_token",
    group: Group::Observability,
    description: describe!("Sentry organization auth token (sntrys_eyJ…), user auth token (sntryu_ + 64 hex), or a 64-hex token assigned to a sentry name"),
    anchor: Anchor::Literals(&["sntrys_eyJ", "sntryu_", "sentry", "Sentry", "SENTRY"]),
    pattern: concat!(
        r"(?-u)(?:\bsntrys_eyJ[A-Za-z\d+/]{10,600}={0,2}_[A-Za-z\d+/]{43,44}|\bsntryu_[\da-f]{64}\b|",
        keyed!("sentry|Sentry|SENTRY"),
        r"[\da-f]{64}\b)",
    ),
    validator: Some(sentry_token),
    keep_last: 0,
};

/// An org token's secret after its last `_` is 43 characters.
fn sentry_token(m: &[u8]) -> bool {
    if m.starts_with(b"sntrys_") {
        m.rsplit(|&b| b == b'_').next().is_some_and(|s| s.len() == 43)
    } else {
        m.starts_with(b"sntryu_") || keyed_value(m)
    }
}

pub(super) const SENTRY_DSN: Detector = Detector {
    id: "sentry_dsn",
    group: Group::Observability,
    description: describe!("Sentry DSN with its key: https://<32 hex>@[o<org>.ingest[.<region>].]sentry.io/<project>"),
    // Browser SDKs ship a DSN in public JavaScript: a policy that sees
    // front-end bundles may leave this one out.
    anchor: Anchor::Literals(&["sentry.io/"]),
    pattern: r"(?-u)\bhttps?://[\da-f]{32}(?::[\da-f]{32})?@(?:o\d{1,12}\.ingest(?:\.[a-z]{2,4})?\.)?sentry\.io/\d{1,12}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const GRAFANA_TOKEN: Detector = Detector {
    id: "grafana_token",
    group: Group::Observability,
    description: describe!("Grafana service account token (glsa_ + 32 + _ + CRC32 check), Cloud access policy token (glc_eyJ…), or legacy API key (eyJrIjoi…)"),
    anchor: Anchor::Literals(&["glsa_", "glc_eyJ", "eyJrIjoi"]),
    pattern: concat!(
        r"(?-u)\b(?:glsa_[A-Za-z\d]{32}_[\da-f]{8}\b",
        r"|glc_eyJ[A-Za-z\d+/]{29,600}={0,3}",
        r"|eyJrIjoi[A-Za-z\d]{70,400}={0,3})",
    ),
    validator: Some(grafana_token),
    keep_last: 0,
};

/// A service account token ends with the CRC32 of `glsa_<secret>`, its
/// four bytes little-endian in hex.
fn grafana_token(m: &[u8]) -> bool {
    if !m.starts_with(b"glsa_") || len_after(m, b"glsa_") != 32 + 1 + 8 {
        return !m.starts_with(b"glsa_");
    }
    let (token, check) = m.split_at(m.len() - 8);
    let crc = validators::crc32(token.get(..token.len() - 1).unwrap_or_default()).to_le_bytes();
    let hex = |n: u8| b"0123456789abcdef".get(usize::from(n)).copied().unwrap_or(0);
    crc.iter().flat_map(|&b| [hex(b >> 4), hex(b & 15)]).eq(check.iter().copied())
}
