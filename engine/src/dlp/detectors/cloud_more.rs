//! Cloud provider credentials beyond AWS, Google Cloud, Azure storage and
//! Alibaba: Entra ID secrets, SAS URLs, and the smaller clouds.

use super::keyed::{keyed_value, len_after};
use super::{Anchor, Detector, Group};

pub(super) const AZURE_AD_CLIENT_SECRET: Detector = Detector {
    id: "azure_ad_client_secret",
    group: Group::Cloud,
    description: describe!("Microsoft Entra ID (Azure AD) application client secret: 3 characters, a digit, Q~, 31-34 characters"),
    // Q~ sits at a fixed offset in every secret issued since 2021.
    anchor: Anchor::Literals(&["Q~"]),
    pattern: r"(?-u)(?:\b\w|[~.])[\w~.]{2}\dQ~[\w~.-]{31,35}",
    validator: Some(azure_ad_client_secret),
    keep_last: 0,
};

/// 35 characters after Q~ is a longer run, not a secret.
fn azure_ad_client_secret(m: &[u8]) -> bool {
    len_after(m, b"Q~") <= 34
}

pub(super) const AZURE_SAS_TOKEN: Detector = Detector {
    id: "azure_sas_token",
    group: Group::Cloud,
    description: describe!("Azure shared access signature: a URL query with sv= (version), se= (expiry) and its sig= signature"),
    anchor: Anchor::Literals(&["sig="]),
    pattern: concat!(
        r"(?-u)\b(?:[a-z]{2,5}=[\w%:.,-]{1,64}&(?:amp;)?){2,10}",
        r"sig=[A-Za-z\d%+/]{40,120}={0,2}",
    ),
    validator: Some(azure_sas_token),
    keep_last: 0,
};

/// The query has a signed version and an expiry: what every SAS carries,
/// and other signed URLs do not.
fn azure_sas_token(m: &[u8]) -> bool {
    let param = |name: &[u8]| m.split(|&b| b == b'&' || b == b';').any(|p| p.starts_with(name));
    param(b"sv=") && param(b"se=")
}

pub(super) const DIGITALOCEAN_TOKEN: Detector = Detector {
    id: "digitalocean_token",
    group: Group::Cloud,
    description: describe!("DigitalOcean personal access (dop_v1_), OAuth access (doo_v1_) or refresh (dor_v1_) token + 64 hex"),
    anchor: Anchor::Literals(&["dop_v1_", "doo_v1_", "dor_v1_"]),
    pattern: r"(?-u)\bdo[opr]_v1_[\da-f]{64}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const CLOUDFLARE_API_KEY: Detector = Detector {
    id: "cloudflare_api_key",
    group: Group::Cloud,
    description: describe!("Cloudflare Origin CA key (v1.0-…), or an API token (40) or global API key (37 hex) assigned to a cloudflare / CF_API name"),
    anchor: Anchor::Literals(&["v1.0-", "cloudflare", "Cloudflare", "CLOUDFLARE", "CF_API_"]),
    pattern: concat!(
        r"(?-u)(?:\bv1\.0-[\da-f]{24}-[\da-f]{146}\b|",
        keyed!("cloudflare|Cloudflare|CLOUDFLARE|CF_API_"),
        r"(?:[\da-f]{37}|[\w-]{40})\b)",
    ),
    validator: Some(cloudflare_api_key),
    keep_last: 0,
};

fn cloudflare_api_key(m: &[u8]) -> bool {
    m.starts_with(b"v1.0-") || keyed_value(m)
}

pub(super) const HEROKU_API_KEY: Detector = Detector {
    id: "heroku_api_key",
    group: Group::Cloud,
    description: describe!("Heroku API key: HRKU-AA + 58 characters, or a legacy UUID key assigned to a heroku name"),
    anchor: Anchor::Literals(&["HRKU-AA", "heroku", "Heroku", "HEROKU"]),
    pattern: concat!(
        r"(?-u)(?:\bHRKU-AA[\w-]{58,59}|",
        keyed!("heroku|Heroku|HEROKU"),
        r"[\da-fA-F]{8}(?:-[\da-fA-F]{4}){3}-[\da-fA-F]{12}\b)",
    ),
    validator: Some(heroku_api_key),
    keep_last: 0,
};

/// 59 characters after HRKU-AA is a longer run.
fn heroku_api_key(m: &[u8]) -> bool {
    !m.starts_with(b"HRKU-AA") || m.len() == 7 + 58
}

pub(super) const DATABRICKS_TOKEN: Detector = Detector {
    id: "databricks_token",
    group: Group::Cloud,
    description: describe!("Databricks personal access token: dapi + 32 hex (optionally -N)"),
    anchor: Anchor::Literals(&["dapi"]),
    pattern: r"(?-u)\bdapi[\da-f]{32}(?:-\d)?\b",
    validator: None,
    keep_last: 0,
};

pub(super) const YANDEX_CLOUD_KEY: Detector = Detector {
    id: "yandex_cloud_key",
    group: Group::Cloud,
    description: describe!("Yandex Cloud API key (AQVN…), or a static key secret (YC…) or IAM token (t1.…) assigned to a yandex name"),
    anchor: Anchor::Literals(&["AQVN", "yandex", "Yandex", "YANDEX"]),
    pattern: concat!(
        r"(?-u)(?:\bAQVN[\w-]{35,38}\b|",
        keyed!("yandex|Yandex|YANDEX"),
        r"(?:YC[\w-]{38}|t1\.[\w-]{1,200}={0,2}\.[\w-]{86}={0,2})\b)",
    ),
    validator: None,
    keep_last: 0,
};
