//! Infrastructure, identity and developer SaaS credentials.

use super::keyed::{digit_and_letter, keyed_value, len_after, mixed_case, value};
use super::{Anchor, Detector, Group};

pub(super) const VAULT_TOKEN: Detector = Detector {
    id: "vault_token",
    group: Group::Infrastructure,
    description: describe!("HashiCorp Vault service (hvs.), batch (hvb.) or recovery (hvr.) token, or a legacy s. + 24 token assigned to a vault name"),
    anchor: Anchor::Literals(&["hvs.", "hvb.", "hvr.", "vault", "Vault", "VAULT"]),
    pattern: concat!(
        r"(?-u)(?:\bhv[sbr]\.[\w-]{24,301}|",
        keyed!("vault|Vault|VAULT"),
        r"s\.[A-Za-z\d]{24}\b)",
    ),
    validator: Some(vault_token),
    keep_last: 0,
};

/// Prefixed tokens are at most 300 characters after the prefix, legacy
/// ones random (digits and both cases, unlike `s.SomeJavaIdentifier`).
fn vault_token(m: &[u8]) -> bool {
    // Batch tokens are base64 of binary data: runs of `A` are ordinary.
    if !m.starts_with(b"hvb.") && super::validators::placeholder(m) {
        return false;
    }
    if m.starts_with(b"hv") {
        m.len() <= 4 + 300
    } else {
        let v = value(m);
        let v = v.get(2..).unwrap_or_default();
        digit_and_letter(v) && mixed_case(v)
    }
}

pub(super) const TERRAFORM_CLOUD_TOKEN: Detector = Detector {
    id: "terraform_cloud_token",
    group: Group::Infrastructure,
    description: describe!("HCP Terraform / Terraform Enterprise API token: 14 characters .atlasv1. 60-70 characters"),
    anchor: Anchor::Literals(&[".atlasv1."]),
    pattern: r"(?-u)\b[A-Za-z\d]{14}\.atlasv1\.[\w=-]{60,71}",
    validator: Some(terraform_cloud_token),
    keep_last: 0,
};

fn terraform_cloud_token(m: &[u8]) -> bool {
    len_after(m, b".atlasv1.") <= 70
}

pub(super) const JFROG_TOKEN: Detector = Detector {
    id: "jfrog_token",
    group: Group::Infrastructure,
    description: describe!("JFrog API key (AKCp…), reference token (cmVmdGtu…), or 64/73 characters assigned to a jfrog / artifactory name"),
    anchor: Anchor::Literals(&[
        "AKCp", "cmVmdGtu", "jfrog", "JFrog", "Jfrog", "JFROG", "artifactory", "Artifactory", "ARTIFACTORY",
    ]),
    pattern: concat!(
        r"(?-u)(?:\bAKCp[A-Za-z\d]{69}\b|\bcmVmdGtu[A-Za-z\d]{56}\b|",
        keyed!("jfrog|JFrog|Jfrog|JFROG|artifactory|Artifactory|ARTIFACTORY"),
        r"(?:[A-Za-z\d]{64}|[A-Za-z\d]{73})\b)",
    ),
    validator: Some(jfrog_token),
    keep_last: 0,
};

fn jfrog_token(m: &[u8]) -> bool {
    m.starts_with(b"AKCp") || m.starts_with(b"cmVmdGtu") || keyed_value(m)
}

pub(super) const ATLASSIAN_API_TOKEN: Detector = Detector {
    id: "atlassian_api_token",
    group: Group::Infrastructure,
    description: describe!("Atlassian API token (ATATT3 + 186 characters), or a legacy 24-character token assigned to an atlassian / jira / confluence name"),
    anchor: Anchor::Literals(&[
        "ATATT3", "atlassian", "Atlassian", "ATLASSIAN", "jira", "Jira", "JIRA", "confluence", "Confluence", "CONFLUENCE",
    ]),
    pattern: concat!(
        r"(?-u)(?:\bATATT3[\w=-]{186,187}|",
        keyed!("atlassian|Atlassian|ATLASSIAN|jira|Jira|JIRA|confluence|Confluence|CONFLUENCE"),
        r"[A-Za-z\d]{24}\b)",
    ),
    validator: Some(atlassian_api_token),
    keep_last: 0,
};

fn atlassian_api_token(m: &[u8]) -> bool {
    if m.starts_with(b"ATATT3") {
        m.len() == 6 + 186
    } else {
        keyed_value(m)
    }
}

pub(super) const OKTA_API_TOKEN: Detector = Detector {
    id: "okta_api_token",
    group: Group::Infrastructure,
    description: describe!("Okta API token (00 + 40 characters) in an SSWS authorization or assigned to an okta name"),
    anchor: Anchor::Literals(&["SSWS ", "okta", "Okta", "OKTA"]),
    pattern: concat!(r"(?-u)(?:SSWS |", keyed!("okta|Okta|OKTA"), r")00[\w-]{40}\b"),
    validator: Some(okta_api_token),
    keep_last: 0,
};

fn okta_api_token(m: &[u8]) -> bool {
    m.get(m.len().saturating_sub(40)..).is_some_and(|v| digit_and_letter(v) && mixed_case(v))
}

pub(super) const ONEPASSWORD_SECRET: Detector = Detector {
    id: "onepassword_secret",
    group: Group::Infrastructure,
    description: describe!("1Password account Secret Key (A3-XXXXXX-…) or service account token (ops_eyJ…)"),
    anchor: Anchor::Literals(&["A3-", "ops_eyJ"]),
    pattern: concat!(
        r"(?-u)(?:\bA3-[A-Z\d]{6}-(?:[A-Z\d]{11}|[A-Z\d]{6}-[A-Z\d]{5})(?:-[A-Z\d]{5}){3}\b",
        r"|\bops_eyJ[A-Za-z\d+/]{250,4000}={0,3})",
    ),
    validator: Some(onepassword_secret),
    keep_last: 0,
};

/// A Secret Key is random: letters and digits.
fn onepassword_secret(m: &[u8]) -> bool {
    m.starts_with(b"ops_") || digit_and_letter(m.get(3..).unwrap_or_default())
}

pub(super) const POSTMAN_API_KEY: Detector = Detector {
    id: "postman_api_key",
    group: Group::Infrastructure,
    description: describe!("Postman API key: PMAK- + 24 hex - 34 hex"),
    anchor: Anchor::Literals(&["PMAK-"]),
    pattern: r"(?-u)\bPMAK-[\da-fA-F]{24}-[\da-fA-F]{34}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const FLYIO_TOKEN: Detector = Detector {
    id: "flyio_token",
    group: Group::Infrastructure,
    description: describe!("Fly.io access token: fo1_ + 43 characters, or fm1a_/fm1r_/fm2_ macaroon tokens"),
    anchor: Anchor::Literals(&["fo1_", "fm1a_", "fm1r_", "fm2_"]),
    pattern: r"(?-u)\b(?:fo1_[\w-]{43,44}|fm1[ar]_[A-Za-z\d+/]{100,4000}={0,3}|fm2_[A-Za-z\d+/]{100,4000}={0,3})",
    validator: Some(flyio_token),
    keep_last: 0,
};

/// fo1_ tokens are random text; the macaroons are base64 of binary, where
/// runs of A (zero bytes) are ordinary.
fn flyio_token(m: &[u8]) -> bool {
    !m.starts_with(b"fo1_") || (m.len() == 4 + 43 && !super::validators::placeholder(m))
}

pub(super) const DOPPLER_TOKEN: Detector = Detector {
    id: "doppler_token",
    group: Group::Infrastructure,
    description: describe!("Doppler token: personal (dp.pt.), service (dp.st.), service account (dp.sa.), CLI (dp.ct.), SCIM, audit"),
    anchor: Anchor::Literals(&["dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."]),
    pattern: r"(?-u)\bdp\.(?:pt|sa|ct|scim|audit|st(?:\.[a-z\d_-]{1,40})?)\.[A-Za-z\d]{40,44}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const PLANETSCALE_TOKEN: Detector = Detector {
    id: "planetscale_token",
    group: Group::Infrastructure,
    description: describe!("PlanetScale service token (pscale_tkn_), password (pscale_pw_) or OAuth token (pscale_oauth_)"),
    anchor: Anchor::Literals(&["pscale_tkn_", "pscale_pw_", "pscale_oauth_"]),
    pattern: r"(?-u)\bpscale_(?:tkn|pw|oauth)_[\w=.-]{32,65}",
    validator: Some(planetscale_token),
    keep_last: 0,
};

/// The secret after the prefix: at most 64 characters.
fn planetscale_token(m: &[u8]) -> bool {
    let prefix = if m.starts_with(b"pscale_oauth_") { 13 } else if m.starts_with(b"pscale_pw_") { 10 } else { 11 };
    m.len() <= prefix + 64
}

pub(super) const SNYK_TOKEN: Detector = Detector {
    id: "snyk_token",
    group: Group::Infrastructure,
    description: describe!("Snyk API or OAuth token: a UUID assigned to a snyk name"),
    anchor: Anchor::Literals(&["snyk", "Snyk", "SNYK"]),
    pattern: concat!(
        r"(?-u)",
        keyed!("snyk|Snyk|SNYK"),
        r"[\da-fA-F]{8}(?:-[\da-fA-F]{4}){3}-[\da-fA-F]{12}\b",
    ),
    validator: None,
    keep_last: 0,
};

pub(super) const HARNESS_TOKEN: Detector = Detector {
    id: "harness_token",
    group: Group::Infrastructure,
    description: describe!("Harness personal access (pat.) or service account (sat.) token: account id . token id . secret"),
    anchor: Anchor::Literals(&["pat.", "sat."]),
    pattern: r"(?-u)\b[ps]at\.[\w-]{22}\.[A-Za-z\d]{24}\.[A-Za-z\d]{20}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const LINEAR_API_KEY: Detector = Detector {
    id: "linear_api_key",
    group: Group::Infrastructure,
    description: describe!("Linear API key (lin_api_ + 40 alphanumerics), or an OAuth client secret (32 hex) assigned to a linear name"),
    anchor: Anchor::Literals(&["lin_api_", "linear", "Linear", "LINEAR"]),
    pattern: concat!(
        r"(?-u)(?:\blin_api_[A-Za-z\d]{40}\b|",
        keyed!("linear|Linear|LINEAR"),
        r"[\da-f]{32}\b)",
    ),
    validator: Some(linear_api_key),
    keep_last: 0,
};

fn linear_api_key(m: &[u8]) -> bool {
    m.starts_with(b"lin_api_") || keyed_value(m)
}
