//! The built-in detector catalogue.
//!
//! Each [`Detector`] is data: an id, a description, an [`Anchor`] every
//! match contains, a `regex::bytes` pattern for the whole match and an
//! optional validator. The fast scanner finds anchors in one pass and runs
//! a detector's pattern only around them; [`reference_scan`] is the naive
//! oracle it is tested against (every pattern over the whole input).
//!
//! Conventions every pattern follows:
//!
//! - it starts with `(?-u)`: patterns match bytes, and the engine is built
//!   without the regex crate's Unicode tables (the wasm size budget), so
//!   `\b`, `\d` and `\s` are ASCII;
//! - its length is bounded (no `*`/`+`; see [`Detector::max_len`]) and its
//!   repetitions use classes that cannot run into unrelated text;
//! - numbers and tokens are delimited: `\b`, or, for tokens whose alphabet
//!   has `-` or `/` (where `\b` does not work), the pattern reads one
//!   character past the longest token and the validator refuses a match of
//!   that length, so a token embedded in a longer run is not a finding;
//! - key/value detectors (`aws_secret_access_key`, `azure_storage_key`,
//!   `gcp_service_account_key`) match from the key name to the end of the
//!   value, not including quotes, so redacting the span keeps JSON valid.
//!
//! Placeholders: a vendor credential that is a placeholder or a published
//! example (`AKIAIOSFODNN7EXAMPLE`, `ghp_xxxx…`, `AIzaSyabcdefgh…`) is not
//! a finding, by one rule ([`validators::placeholder`], see
//! [`Detector::rejects_placeholders`]). Test-mode keys in a real format
//! (Stripe's `sk_test_…`) are keys and are found; so are test card numbers
//! such as `4111 1111 1111 1111` (payment and personal data are always
//! findings). Values that break the format's own rules are not (HMRC's
//! `QQ 12 34 56 C`: `Q` is never a first letter).

pub(crate) mod generic;
mod phone;

#[cfg(feature = "internals")]
pub use generic::credential_end;

use super::validators;
use regex::bytes::Regex;
use std::sync::OnceLock;

/// A detector's description, for the docs, `warden explain` and the CLI.
/// The filter never shows one: it is built without the `descriptions`
/// feature, and the catalogue's ~7 KB of text stay out of its size budget.
#[cfg(feature = "descriptions")]
macro_rules! describe {
    ($text:expr) => {
        $text
    };
}

#[cfg(not(feature = "descriptions"))]
macro_rules! describe {
    ($text:expr) => {
        ""
    };
}

// Vendor detectors, one file per group; `keyed` holds what they share.
#[macro_use]
pub(crate) mod keyed;
mod ai;
mod cloud_more;
mod commerce;
mod infrastructure;
mod messaging;
mod observability;

/// What every match of a detector contains, so a scanner can look only
/// around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Case-sensitive byte strings; every match contains at least one of
    /// them (a prefix such as `AKIA`, or a marker inside the match such as
    /// OpenAI's `T3BlbkFJ` or the `@` of an address). The match may start
    /// before the literal: [`Detector::max_len`] bounds how far.
    Literals(&'static [&'static str]),
    /// Numeric detectors: every match contains between `min` and `max`
    /// ASCII digits (inclusive), at least two of them consecutive, written
    /// as one run in which consecutive digit groups are separated by at
    /// most one `' '` or `'-'`. The run found in the text may be longer
    /// than the match (a card followed by ` 123`); the pattern's
    /// boundaries decide. Two built-in shapes also read past the run: a
    /// US SSN's dotted groups (`123.45.6789`) and an Aadhaar number's
    /// colon groups (`2345:6789:0123`) follow the run of their first
    /// group. Letters around the run (a NINO's prefix and
    /// suffix, an ID's `X` check character, `+86`) lie within a few bytes
    /// of it.
    Digits {
        /// Fewest digits in a match.
        min: usize,
        /// Most digits in a match.
        max: usize,
    },
    /// Every match starts with one of these codes (two ASCII capital
    /// letters) immediately followed by two ASCII digits: an IBAN's
    /// country code and check digits. Two-letter literals would hit all
    /// over ordinary text, so the scanner finds these from the digits and
    /// looks at the two bytes before them.
    CodeAndDigits(&'static [&'static str]),
}

/// A family of detectors a policy can name in `detectors:` in place of
/// their ids (`detectors: [ai, cloud]`). Every detector is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Payment data: card numbers, bank accounts.
    Payment,
    /// Personal data: national identifiers, phone numbers, addresses.
    Pii,
    /// Cloud provider credentials.
    Cloud,
    /// LLM and AI API keys.
    Ai,
    /// Source hosting and package registry tokens.
    Source,
    /// Chat, SMS and e-mail service credentials and webhooks.
    Messaging,
    /// Monitoring and error-tracking credentials.
    Observability,
    /// Payment and commerce platform credentials.
    Commerce,
    /// Infrastructure, identity and developer SaaS credentials.
    Infrastructure,
    /// Credentials of no one vendor: private keys, JWTs, passwords.
    Generic,
}

impl Group {
    /// Every group, in the order the docs list them.
    pub const ALL: [Group; 10] = [
        Group::Payment,
        Group::Pii,
        Group::Cloud,
        Group::Ai,
        Group::Source,
        Group::Messaging,
        Group::Observability,
        Group::Commerce,
        Group::Infrastructure,
        Group::Generic,
    ];

    /// The name a policy uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Payment => "payment",
            Group::Pii => "pii",
            Group::Cloud => "cloud",
            Group::Ai => "ai",
            Group::Source => "source",
            Group::Messaging => "messaging",
            Group::Observability => "observability",
            Group::Commerce => "commerce",
            Group::Infrastructure => "infrastructure",
            Group::Generic => "generic",
        }
    }

    /// The group with this name.
    pub fn from_name(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Its detectors, in catalogue order.
    pub fn detectors(self) -> impl Iterator<Item = &'static Detector> {
        CATALOGUE.iter().filter(move |d| d.group == self)
    }
}

/// A built-in detector.
#[derive(Debug)]
pub struct Detector {
    /// The id a policy names in `detectors:` and findings report.
    pub id: &'static str,
    /// The group a policy may name instead of listing ids.
    pub group: Group,
    /// One line for docs and `warden explain` (empty in builds without
    /// the `descriptions` feature, such as the filter).
    pub description: &'static str,
    /// What every match contains.
    pub anchor: Anchor,
    /// A `regex::bytes` pattern for the whole match (what REDACT replaces).
    pub pattern: &'static str,
    /// A check on the matched bytes the regex cannot express; a match is a
    /// finding only if it passes.
    pub validator: Option<fn(&[u8]) -> bool>,
    /// Characters left visible at the end when redacting (4 for cards).
    pub keep_last: usize,
}

impl Detector {
    /// Compiles the pattern (the crate's defaults; the pattern carries its
    /// own `(?-u)`).
    pub fn compile(&self) -> Result<Regex, regex::Error> {
        Regex::new(self.pattern)
    }

    /// The longest match the pattern can produce, in bytes: how far a
    /// scanner must look around an anchor, and how much of a stream it
    /// must keep to find a match split across chunks.
    pub fn max_len(&self) -> Option<usize> {
        regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(self.pattern)
            .ok()
            .and_then(|hir| hir.properties().maximum_len())
    }

    /// Whether the matched bytes pass the validator (true with none) and,
    /// for a vendor credential, are not a placeholder
    /// ([`Detector::rejects_placeholders`]).
    pub fn validates(&self, m: &[u8]) -> bool {
        self.validator.is_none_or(|v| v(m)) && !(self.rejects_placeholders() && validators::placeholder(m))
    }

    /// Whether matches that look like placeholders or published examples
    /// (`validators::placeholder`) are passed over: vendor credentials
    /// only. Personal and payment data (a test card number is still a
    /// card number) and the generic detectors (a PEM body has runs of
    /// `A`; a URL's `example.com` host says nothing of its password) are
    /// always findings; so are the tokens that are base64 of binary data.
    pub fn rejects_placeholders(&self) -> bool {
        // Macaroons and Vault's batch tokens are base64 of binary data,
        // where runs of `A` (zero bytes) are ordinary.
        // (`flyio_token` and `vault_token` check their other tokens
        // themselves.)
        let binary = matches!(self.id, "pypi_token" | "flyio_token" | "vault_token");
        !matches!(self.group, Group::Payment | Group::Pii | Group::Generic) && !binary
    }
}

/// Brand prefixes and the shapes cards are written in: 13–19 digits in one
/// run, or grouped with spaces or dashes as 4-4-4-4 (16), 4-6-5 (Amex)
/// or 4-6-4 (Diners). A grouped card right after a four-character group
/// ending in a digit is part of a longer grouped number (a printed IBAN:
/// `RS35 2600 0560 1001 6113 79`): the pattern takes that group in and
/// the validator refuses the match.
const CREDIT_CARD: &str = concat!(
    r"(?-u)\b(?:[0-9]{13,19}|(?:[0-9A-Z]{3}[0-9][ -])?",
    r"(?:[0-9]{4}(?:(?: [0-9]{4}){3}| [0-9]{6} [0-9]{4,5})",
    r"|[0-9]{4}(?:(?:-[0-9]{4}){3}|-[0-9]{6}-[0-9]{4,5})))\b",
);

/// Countries grouped by IBAN length; each group allows the electronic form
/// (no spaces) or the printed one (groups of four after the check digits,
/// separated by spaces or dashes),
/// with exactly that country's length, so an IBAN followed by a word is not
/// read as a longer one. Kept in step with `validators::IBAN_LENGTHS`.
const IBAN: &str = concat!(
    r"(?-u)\b(?:",
    r"NO[0-9]{2}(?:[A-Z0-9]{11}|(?:[ -][A-Z0-9]{4}){2}[ -][A-Z0-9]{3})",
    r"|BE[0-9]{2}(?:[A-Z0-9]{12}|(?:[ -][A-Z0-9]{4}){3})",
    r"|(?:DK|FI|FK|FO|GL|NL|SD)[0-9]{2}(?:[A-Z0-9]{14}|(?:[ -][A-Z0-9]{4}){3}[ -][A-Z0-9]{2})",
    r"|(?:MK|SI)[0-9]{2}(?:[A-Z0-9]{15}|(?:[ -][A-Z0-9]{4}){3}[ -][A-Z0-9]{3})",
    r"|(?:AT|BA|EE|KZ|LT|LU|MN|XK)[0-9]{2}(?:[A-Z0-9]{16}|(?:[ -][A-Z0-9]{4}){4})",
    r"|(?:CH|HR|LI|LV)[0-9]{2}(?:[A-Z0-9]{17}|(?:[ -][A-Z0-9]{4}){4}[ -][A-Z0-9])",
    r"|(?:BG|BH|CR|DE|GB|GE|IE|ME|RS|VA)[0-9]{2}(?:[A-Z0-9]{18}|(?:[ -][A-Z0-9]{4}){4}[ -][A-Z0-9]{2})",
    r"|(?:AE|GI|IL|IQ|OM|SO|TL)[0-9]{2}(?:[A-Z0-9]{19}|(?:[ -][A-Z0-9]{4}){4}[ -][A-Z0-9]{3})",
    r"|(?:AD|CZ|ES|MD|PK|RO|SA|SE|SK|TN|VG)[0-9]{2}(?:[A-Z0-9]{20}|(?:[ -][A-Z0-9]{4}){5})",
    r"|(?:LY|PT|ST)[0-9]{2}(?:[A-Z0-9]{21}|(?:[ -][A-Z0-9]{4}){5}[ -][A-Z0-9])",
    r"|(?:IS|TR)[0-9]{2}(?:[A-Z0-9]{22}|(?:[ -][A-Z0-9]{4}){5}[ -][A-Z0-9]{2})",
    r"|(?:BI|DJ|FR|GR|IT|MC|MR|SM)[0-9]{2}(?:[A-Z0-9]{23}|(?:[ -][A-Z0-9]{4}){5}[ -][A-Z0-9]{3})",
    r"|(?:AL|AZ|BY|CY|DO|GT|HN|HU|LB|NI|PL|SV)[0-9]{2}(?:[A-Z0-9]{24}|(?:[ -][A-Z0-9]{4}){6})",
    r"|(?:BR|EG|PS|QA|UA)[0-9]{2}(?:[A-Z0-9]{25}|(?:[ -][A-Z0-9]{4}){6}[ -][A-Z0-9])",
    r"|(?:JO|KW|MU|YE)[0-9]{2}(?:[A-Z0-9]{26}|(?:[ -][A-Z0-9]{4}){6}[ -][A-Z0-9]{2})",
    r"|(?:MT|SC)[0-9]{2}(?:[A-Z0-9]{27}|(?:[ -][A-Z0-9]{4}){6}[ -][A-Z0-9]{3})",
    r"|LC[0-9]{2}(?:[A-Z0-9]{28}|(?:[ -][A-Z0-9]{4}){7})",
    r"|RU[0-9]{2}(?:[A-Z0-9]{29}|(?:[ -][A-Z0-9]{4}){7}[ -][A-Z0-9])",
    r")\b",
);

/// The IBAN countries (every IBAN starts with one and two check digits).
const IBAN_COUNTRIES: &[&str] = &[
    "AD", "AE", "AL", "AT", "AZ", "BA", "BE", "BG", "BH", "BI", "BR", "BY", "CH", "CR", "CY", "CZ", "DE", "DJ", "DK",
    "DO", "EE", "EG", "ES", "FI", "FK", "FO", "FR", "GB", "GE", "GI", "GL", "GR", "GT", "HN", "HR", "HU", "IE", "IL",
    "IQ", "IS", "IT", "JO", "KW", "KZ", "LB", "LC", "LI", "LT", "LU", "LV", "LY", "MC", "MD", "ME", "MK", "MN", "MR",
    "MT", "MU", "NI", "NL", "NO", "OM", "PK", "PL", "PS", "PT", "QA", "RO", "RS", "RU", "SA", "SC", "SD", "SE", "SI",
    "SK", "SM", "SO", "ST", "SV", "TL", "TN", "TR", "UA", "VA", "VG", "XK", "YE",
];

/// How a key name is followed by its value: `=`, `:`, `=>`, `:=`, XML's
/// `>`, optionally quoted (also with JSON's `\"`), or plain spaces
/// (`aws configure set aws_secret_access_key …`).
macro_rules! assignment {
    () => {
        r#"(?:\\?["']?\s{0,4}(?:=>|:=|[=:>])\s{0,4}\\?["']?|\s{1,4})"#
    };
}

/// A line break in a PEM block: real (`\n`, `\r\n`) or escaped as in JSON
/// strings and env files (a backslash and `n`).
macro_rules! pem_break {
    () => {
        r"(?:\r?\n|(?:\\r)?\\n)"
    };
}

/// The label of a PEM private key block.
macro_rules! pem_label {
    () => {
        r"(?:(?:RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY(?: BLOCK)?"
    };
}

/// The built-in detectors, in the order findings are reported. Ids are
/// unique.
pub static CATALOGUE: &[Detector] = &[
    // ------------------------------------------------------------ financial
    Detector {
        id: "credit_card",
        group: Group::Payment,
        description: describe!("Payment card number (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro, Dankort, UATP, Mir, RuPay, Troy, Verve), plain or grouped with spaces/dashes, brand prefix and length checked, Luhn"),
        // No literal: the digit run is the anchor. 13-19 digits.
        anchor: Anchor::Digits { min: 13, max: 19 },
        pattern: CREDIT_CARD,
        validator: Some(validators::credit_card),
        keep_last: 4,
    },
    Detector {
        id: "iban",
        group: Group::Payment,
        description: describe!("International Bank Account Number (89 countries, electronic or printed form with spaces or dashes), country length and ISO 7064 mod-97 check"),
        // The country code and check digits start every IBAN.
        anchor: Anchor::CodeAndDigits(IBAN_COUNTRIES),
        pattern: IBAN,
        validator: Some(validators::iban_mod97),
        keep_last: 0,
    },
    // ------------------------------------------------------------ national identifiers
    Detector {
        id: "us_ssn",
        group: Group::Pii,
        description: describe!("US Social Security number written 123-45-6789, 123 45 6789 or 123.45.6789; area not 000/666/9xx, group not 00, serial not 0000"),
        // Nine digits. Unformatted nine-digit numbers are not detected:
        // without the separators they are indistinguishable from any id.
        anchor: Anchor::Digits { min: 9, max: 9 },
        // Dotted (123.45.6789), the pattern takes a dotted group before
        // or after in (a longer dotted number) and the validator refuses it.
        pattern: concat!(
            r"(?-u)\b[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} )[0-9]{4}\b",
            r"|(?:[0-9]\.)?\b[0-9]{3}\.[0-9]{2}\.[0-9]{4}\b(?:\.[0-9])?",
        ),
        validator: Some(validators::us_ssn),
        keep_last: 0,
    },
    Detector {
        id: "cn_resident_id",
        group: Group::Pii,
        description: describe!("PRC resident identity card number (18 characters): province code, birth date, GB 11643 check character"),
        // 17 digits, plus the 18th when the check character is not X.
        anchor: Anchor::Digits { min: 17, max: 18 },
        pattern: r"(?-u)\b[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]\b",
        validator: Some(validators::gb11643),
        keep_last: 0,
    },
    Detector {
        id: "cn_mobile",
        group: Group::Pii,
        description: describe!("Mainland China mobile number (11 digits, allocated 13x-19x prefixes) after +86/0086/86, grouped 3-4-4, or plain after a word such as mobile, phone, tel, 手机 or 电话"),
        // 11 digits, 13 with 86, 15 with 0086.
        anchor: Anchor::Digits { min: 11, max: 15 },
        // Eleven digits in a row are often an id (a JSON number): plain,
        // they are a mobile number only after a word that says so. A `+`
        // other than +86 starts another country's number (+1 800…): the
        // pattern takes it in and the validator refuses the match.
        pattern: concat!(
            r"(?-u)(?:(?:\+86[ -]?|\+|\b(?:0086|86)[ -]?",
            r"|\b(?:[Mm]obile|MOBILE|[Pp]hone|PHONE|[Tt]el|TEL|[Cc]ell|CELL)[^0-9A-Za-z+\r\n][^0-9+\r\n]{0,19}",
            r"|(?:手机|电话)[^0-9+\r\n]{0,20})",
            r"1(?:3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-35-9])(?:[0-9]{8}|[ -][0-9]{4}[ -][0-9]{4})",
            r"|\b1(?:3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-35-9])[ -][0-9]{4}[ -][0-9]{4})\b",
        ),
        validator: Some(validators::cn_mobile),
        keep_last: 0,
    },
    Detector {
        id: "in_aadhaar",
        group: Group::Pii,
        description: describe!("Indian Aadhaar number (12 digits, first not 0/1), grouped 4-4-4 as printed (spaces, dashes or colons), or plain after the word Aadhaar; Verhoeff check digit"),
        anchor: Anchor::Digits { min: 12, max: 12 },
        // Twelve digits in a row are too common (ids, timestamps) to be
        // an Aadhaar number without the word nearby. A 4-4-4 group inside
        // a longer grouped number (a printed IBAN, a card) is not one
        // either, nor the middle of a UUID (`1c2f4b2e-4816-8657-0045-…`:
        // one in about 2,800 random UUIDs, Envoy's `x-request-id` among
        // them, has three such groups): the pattern takes a digit group, or
        // the UUID's first and last groups, in, and the validator refuses
        // the match.
        pattern: concat!(
            r"(?-u)(?:\b(?:[Aa]adhaa?r|AADHAA?R)[^0-9\r\n]{0,20}[2-9][0-9]{11}\b",
            r"|(?:\b(?:[0-9A-Z]{0,3}[0-9][ -]|[0-9A-Fa-f]{8}-))?\b[2-9][0-9]{3}(?: [0-9]{4} [0-9]{4}|-[0-9]{4}-[0-9]{4})",
            r"(?:[ -][0-9][0-9A-Z]{0,3}\b|-[0-9A-Fa-f]{12}\b|\b)",
            // Grouped with colons; a colon group before or after (an IPv6
            // address such as 2001:4860:4860::8888) is taken in and refused.
            r"|(?:[0-9A-Fa-f]{0,4}:)?\b[2-9][0-9]{3}:[0-9]{4}:[0-9]{4}\b(?::[0-9A-Fa-f]{0,4})?)",
        ),
        validator: Some(validators::in_aadhaar),
        keep_last: 0,
    },
    Detector {
        id: "uk_nino",
        group: Group::Pii,
        description: describe!("UK National Insurance number (AB 12 34 56 C), HMRC prefix rules; upper case only"),
        // No literal prefix (any allocated letter pair): the six digits
        // are the anchor; the letters lie within three bytes of them.
        // Upper case only: HMRC issues and prints the letters in capitals,
        // and in lower case the shape is common in generated names (a hex
        // hash segment such as `returns-ab123585b-pk4sj`), where a finding
        // would block ordinary traffic.
        anchor: Anchor::Digits { min: 6, max: 6 },
        pattern: r"(?-u)\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b",
        validator: Some(validators::uk_nino),
        keep_last: 0,
    },
    // ------------------------------------------------------------ personal data
    Detector {
        id: "email",
        group: Group::Pii,
        description: describe!("Email address (local part up to 64 characters, dotted domain with an alphabetic TLD); not a URL's user info (ssh://git@host, https://user:pass@host)"),
        anchor: Anchor::Literals(&["@"]),
        // The user info of a URL is address-shaped: the pattern takes the
        // scheme and user name before it in, and the validator refuses
        // such a match.
        pattern: concat!(
            r"(?-u)(?:\b[A-Za-z][A-Za-z0-9+.-]{1,30}://(?:[A-Za-z0-9._~%!$&'()*+,;=-]{0,64}:)?)?\b[A-Za-z0-9._%+-]{1,64}@",
            r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,6}[A-Za-z]{2,24}\b",
        ),
        validator: Some(validators::email),
        keep_last: 0,
    },
    phone::PHONE_NUMBER,
    // ------------------------------------------------------------ cloud credentials
    Detector {
        id: "aws_access_key_id",
        group: Group::Cloud,
        description: describe!("AWS access key id: AKIA (long-term), ASIA (temporary), ABIA, ACCA, A3T + 16 base32 characters"),
        anchor: Anchor::Literals(&["AKIA", "ASIA", "ABIA", "ACCA", "A3T"]),
        pattern: r"(?-u)\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b",
        validator: None,
        keep_last: 0,
    },
    Detector {
        id: "aws_secret_access_key",
        group: Group::Cloud,
        description: describe!("AWS secret access key: 40 base64 characters assigned to an aws_secret_access_key / SecretAccessKey-style name"),
        // A bare 40-character base64 string has no anchor and would flood
        // findings on hashes and base64 data; the key name it is assigned
        // to is the anchor. A secret with no name next to it is missed.
        anchor: Anchor::Literals(&[
            "secret_access_key",
            "SECRET_ACCESS_KEY",
            "SecretAccessKey",
            "secretAccessKey",
            "secret-access-key",
            "aws_secret",
            "AWS_SECRET",
            "awsSecretKey",
            "AWSSecretKey",
        ]),
        // The names of the AWS CLI and SDKs' config files and environment
        // variables, CloudFormation and Terraform.
        pattern: concat!(
            r"(?-u)(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY|secret_access_key|SECRET_ACCESS_KEY",
            r"|SecretAccessKey|secretAccessKey|aws-secret-access-key|secret-access-key|aws_secret_key|AWS_SECRET_KEY",
            r"|aws_secret|AWS_SECRET|awsSecretKey|AWSSecretKey)",
            assignment!(),
            r"[A-Za-z0-9/+]{40,41}",
        ),
        validator: Some(validators::aws_secret),
        keep_last: 0,
    },
    Detector {
        id: "alibaba_access_key_id",
        group: Group::Cloud,
        description: describe!("Alibaba Cloud AccessKey id: LTAI + 12-20 alphanumerics"),
        anchor: Anchor::Literals(&["LTAI"]),
        pattern: r"(?-u)\bLTAI[A-Za-z0-9]{12,20}\b",
        validator: None,
        keep_last: 0,
    },
    Detector {
        id: "gcp_api_key",
        group: Group::Cloud,
        description: describe!("Google Cloud / Firebase API key, also Gemini and Vertex AI keys: AIza + 35 characters"),
        anchor: Anchor::Literals(&["AIza"]),
        pattern: r"(?-u)\bAIza[0-9A-Za-z_-]{35,36}",
        validator: Some(validators::gcp_api_key),
        keep_last: 0,
    },
    Detector {
        id: "gcp_service_account_key",
        group: Group::Cloud,
        description: describe!("Google Cloud service account key file: its private_key_id (40 hex) or its \"type\": \"service_account\" field; the key itself is also found by private_key"),
        // Every service account JSON key has these fields; its PEM
        // private_key is found by `private_key`.
        anchor: Anchor::Literals(&["private_key_id", "service_account"]),
        pattern: concat!(
            r#"(?-u)private_key_id\\?["']\s{0,4}:\s{0,4}\\?["'][0-9a-f]{40}\b"#,
            r#"|\\?"type\\?"\s{0,4}:\s{0,4}\\?"service_account\\?""#,
        ),
        validator: None,
        keep_last: 0,
    },
    Detector {
        id: "azure_storage_key",
        group: Group::Cloud,
        description: describe!("Azure storage account key: 88 base64 characters ending == assigned to AccountKey (connection strings) or an account key name"),
        // Like the AWS secret: a bare 88-character base64 value is not
        // distinctive enough, the name it is assigned to is the anchor.
        anchor: Anchor::Literals(&[
            "AccountKey",
            "accountKey",
            "account_key",
            "account-key",
            "ACCOUNT_KEY",
            "AZURE_STORAGE_KEY",
            "azure_storage_key",
        ]),
        pattern: concat!(
            r"(?-u)(?:AZURE_STORAGE_ACCOUNT_KEY|azure_storage_account_key|AZURE_STORAGE_KEY|azure_storage_key",
            r"|AccountKey|accountKey|account_key|account-key|ACCOUNT_KEY)",
            assignment!(),
            r"[A-Za-z0-9/+]{86}==",
        ),
        validator: None,
        keep_last: 0,
    },
    // ------------------------------------------------------------ developer platforms
    Detector {
        id: "github_token",
        group: Group::Source,
        description: describe!("GitHub token: ghp_/gho_/ghu_/ghs_/ghr_ + 30 alphanumerics and their CRC32 checksum in 6, or a fine-grained github_pat_ token"),
        anchor: Anchor::Literals(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]),
        pattern: r"(?-u)\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
        // Every classic token GitHub issues ends in its checksum; a
        // string made to look like one (a regex-generated test value, a
        // typed example) almost never does.
        validator: Some(validators::github_token),
        keep_last: 0,
    },
    Detector {
        id: "gitlab_token",
        group: Group::Source,
        description: describe!("GitLab token: glpat- (personal, also routable), gldt- (deploy), glrt- (runner, also routable), glptt- (trigger), glft-, glimt-, glsoat-, gloas-, glcbt-, glagent-, glffct- (feature flags), each prefix with its own length"),
        anchor: Anchor::Literals(&[
            "glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glimt-", "glsoat-", "gloas-", "glcbt-", "glagent-", "glffct-",
        ]),
        // The body is read one character past the longest legacy token
        // (and a routable token's `.` suffix), the validator checks each
        // prefix's own length and alphabet.
        pattern: r"(?-u)\b(?:glpat|gldt|glrt|glptt|glft|glimt|glsoat|gloas|glcbt|glagent|glffct)-[0-9A-Za-z_-]{20,301}(?:\.[0-9a-z]{9,10})?",
        validator: Some(validators::gitlab_token),
        keep_last: 0,
    },
    Detector {
        id: "slack_token",
        group: Group::Messaging,
        description: describe!("Slack token: xoxb- (bot), xoxp- (user), xoxc- (client), legacy xoxs-/xoxo- and workspace xoxa-/xoxr- tokens, app-level xapp-, configuration and refresh xoxe- tokens"),
        anchor: Anchor::Literals(&["xoxa-", "xoxb-", "xoxc-", "xoxp-", "xoxo-", "xoxr-", "xoxs-", "xoxe", "xapp-"]),
        pattern: concat!(
            // Bot, user and client tokens: two to four numeric ids, then
            // the secret; legacy and configuration ones: three ids and 10
            // to 64 hex digits.
            r"(?-u)\b(?:xox[abcpr]-[0-9]{1,14}(?:-[0-9]{1,14}){1,3}-[A-Za-z0-9]{16,64}",
            // Legacy bot tokens: one id.
            r"|xoxb-[0-9]{8,14}-[A-Za-z0-9]{18,26}",
            r"|xox[ose]-[0-9]{1,14}(?:-[0-9]{1,14}){2}-[A-Fa-f0-9]{10,64}",
            // Legacy workspace and refresh tokens.
            r"|xox[ar]-(?:[0-9]-)?[0-9A-Za-z]{8,48}",
            r"|xapp-[0-9]-[A-Z0-9]{8,14}-[0-9]{8,14}-[A-Za-z0-9]{32,80}",
            r"|xoxe(?:\.xox[bp])?-[0-9]-[A-Za-z0-9]{64,250})\b",
        ),
        validator: None,
        keep_last: 0,
    },
    Detector {
        id: "slack_webhook",
        group: Group::Messaging,
        description: describe!("Slack incoming webhook, workflow or trigger URL on hooks.slack.com"),
        anchor: Anchor::Literals(&["hooks.slack.com"]),
        pattern: concat!(
            r"(?-u)(?:https?://)?hooks\.slack\.com/(?:services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{24}",
            r"|workflows/T[A-Z0-9]{6,12}/A[A-Z0-9]{6,12}/[0-9]{8,20}/[A-Za-z0-9]{24,32}",
            r"|triggers/T[A-Z0-9]{6,12}/[0-9]{8,20}/[A-Za-z0-9]{24,32})\b",
        ),
        validator: None,
        keep_last: 0,
    },
    Detector {
        id: "stripe_secret_key",
        group: Group::Commerce,
        description: describe!("Stripe secret or restricted key (sk_live_, sk_test_, sk_prod_, rk_live_, rk_test_, rk_prod_); publishable pk_ keys are not secrets"),
        anchor: Anchor::Literals(&["sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_"]),
        pattern: r"(?-u)\b[rs]k_(?:live|test|prod)_[0-9A-Za-z]{24,247}\b",
        validator: None,
        keep_last: 0,
    },
    Detector {
        id: "openai_api_key",
        group: Group::Ai,
        description: describe!("OpenAI API key: sk-, sk-proj-, sk-svcacct-, sk-admin- keys, which all carry the T3BlbkFJ marker"),
        // T3BlbkFJ ("OpenAI" in base64) is inside every key, and far more
        // distinctive than "sk-".
        anchor: Anchor::Literals(&["T3BlbkFJ"]),
        pattern: r"(?-u)\bsk-(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{20,100}T3BlbkFJ[A-Za-z0-9_-]{20,101}",
        validator: Some(validators::openai_api_key),
        keep_last: 0,
    },
    Detector {
        id: "anthropic_api_key",
        group: Group::Ai,
        description: describe!("Anthropic API or admin key: sk-ant-api03- / sk-ant-admin01- + 95 characters ending AA"),
        anchor: Anchor::Literals(&["sk-ant-"]),
        pattern: r"(?-u)\bsk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{93}AA[A-Za-z0-9_-]?",
        validator: Some(validators::anthropic_api_key),
        keep_last: 0,
    },
    Detector {
        id: "npm_token",
        group: Group::Source,
        description: describe!("npm access token (npm_ + 30 alphanumerics and their CRC32 checksum in 6), or a legacy UUID token on an .npmrc registry line (//host/:_authToken=…)"),
        // A UUID is only a token on the .npmrc line that assigns it to a
        // registry: `//registry.npmjs.org/:_authToken=…`.
        anchor: Anchor::Literals(&["npm_", "/:_authToken"]),
        pattern: concat!(
            r"(?-u)(?:\bnpm_[A-Za-z0-9]{36}\b",
            r"|//[A-Za-z0-9.-]{1,100}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%-]{1,64}){0,6}/:_authToken {0,4}= {0,4}",
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)",
        ),
        validator: Some(validators::npm_token),
        keep_last: 0,
    },
    Detector {
        id: "pypi_token",
        group: Group::Source,
        description: describe!("PyPI or TestPyPI API token (pypi- + a macaroon for pypi.org / test.pypi.org)"),
        anchor: Anchor::Literals(&["pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"]),
        // A macaroon's identifier and signature make at least 85
        // characters after its location.
        pattern: r"(?-u)\bpypi-Ag(?:EIcHlwaS5vcmc|ENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{85,401}",
        validator: Some(validators::pypi_token),
        keep_last: 0,
    },
    Detector {
        id: "sendgrid_api_key",
        group: Group::Messaging,
        description: describe!("SendGrid API key: SG. + 22 + . + 43 characters"),
        anchor: Anchor::Literals(&["SG."]),
        pattern: r"(?-u)\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43,44}",
        validator: Some(validators::sendgrid_api_key),
        keep_last: 0,
    },
    // ------------------------------------------------------------ generic credentials
    Detector {
        id: "jwt",
        group: Group::Generic,
        description: describe!("JSON Web Token: signed (header.payload.signature, header with an alg) or unsecured (alg none, empty signature)"),
        // "eyJ" is base64 for '{"': both header and payload start with it.
        anchor: Anchor::Literals(&["eyJ"]),
        // The signature may be empty (an unsecured token); the validator
        // refuses a short one.
        pattern: r"(?-u)\beyJ[A-Za-z0-9_-]{10,1000}\.eyJ[A-Za-z0-9_-]{2,6000}\.[A-Za-z0-9_-]{0,1401}",
        validator: Some(validators::jwt),
        keep_last: 0,
    },
    Detector {
        id: "private_key",
        group: Group::Generic,
        description: describe!("PEM/OpenSSH/PGP private key block (PKCS#1, PKCS#8, encrypted, EC, DSA, OpenSSH, PGP), with real or escaped \\n line breaks"),
        anchor: Anchor::Literals(&["-----BEGIN "]),
        pattern: concat!(
            r"(?-u)-----BEGIN ",
            pem_label!(),
            "-----",
            // Legacy encryption and armor headers (Proc-Type:, DEK-Info:,
            // Version:, Comment:).
            r"(?:",
            pem_break!(),
            r"[A-Za-z][A-Za-z0-9-]{0,30}: [^\r\n\\]{1,120}){0,4}",
            // The base64 body: lines of at most 80 characters (PEM
            // writes 64, OpenSSH 70), possibly indented (YAML), after an
            // optional blank line; the first line is at least 40
            // characters, so a truncated documentation sample ("MIIEv...")
            // is not a key. Up to 128 lines: an RSA-8192 or PGP key.
            pem_break!(),
            r"{1,2}[ \t]{0,8}[A-Za-z0-9+/=]{40,80}",
            r"(?:",
            pem_break!(),
            r"[ \t]{0,8}[A-Za-z0-9+/=]{1,80}){0,127}",
            r"(?:",
            pem_break!(),
            r"[ \t]{0,8}-----END ",
            pem_label!(),
            "-----)?",
        ),
        validator: Some(validators::pem_body),
        keep_last: 0,
    },
    Detector {
        id: "password_in_url",
        group: Group::Generic,
        description: describe!("URL with a password in its userinfo (scheme://user:password@host)"),
        anchor: Anchor::Literals(&["://"]),
        pattern: concat!(
            r#"(?-u)\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:@/?#\[\]"'<>\\]{0,64}:[^\s@/?#\[\]"'<>\\]{1,128}@"#,
            r"[A-Za-z0-9\[](?:[A-Za-z0-9.:\]_-]{0,200}[A-Za-z0-9\]])?",
        ),
        validator: Some(validators::url_password),
        keep_last: 0,
    },
    Detector {
        id: "basic_auth_header",
        group: Group::Generic,
        description: describe!("HTTP Basic credentials (Basic <base64 of user:password>), as in Authorization and Proxy-Authorization headers"),
        anchor: Anchor::Literals(&["Basic ", "basic ", "BASIC "]),
        pattern: r"(?-u)\b(?:Basic|basic|BASIC) {1,4}[A-Za-z0-9+/]{4,400}={0,2}",
        validator: Some(validators::basic_auth),
        keep_last: 0,
    },
    generic::GENERIC_CREDENTIAL,
    // ------------------------------------------------------------ vendor credentials
    ai::HUGGINGFACE_TOKEN,
    ai::AWS_BEDROCK_API_KEY,
    ai::PERPLEXITY_API_KEY,
    ai::COHERE_API_KEY,
    cloud_more::AZURE_AD_CLIENT_SECRET,
    cloud_more::AZURE_SAS_TOKEN,
    cloud_more::DIGITALOCEAN_TOKEN,
    cloud_more::CLOUDFLARE_API_KEY,
    cloud_more::HEROKU_API_KEY,
    cloud_more::DATABRICKS_TOKEN,
    cloud_more::YANDEX_CLOUD_KEY,
    observability::DATADOG_API_KEY,
    observability::NEW_RELIC_KEY,
    observability::SENTRY_TOKEN,
    observability::SENTRY_DSN,
    observability::GRAFANA_TOKEN,
    messaging::TWILIO_KEY,
    messaging::MAILGUN_KEY,
    messaging::MAILCHIMP_API_KEY,
    messaging::BREVO_API_KEY,
    messaging::TELEGRAM_BOT_TOKEN,
    messaging::DISCORD_WEBHOOK,
    messaging::DISCORD_TOKEN,
    messaging::TEAMS_WEBHOOK,
    commerce::SHOPIFY_TOKEN,
    commerce::SQUARE_TOKEN,
    commerce::PLAID_TOKEN,
    infrastructure::VAULT_TOKEN,
    infrastructure::TERRAFORM_CLOUD_TOKEN,
    infrastructure::JFROG_TOKEN,
    infrastructure::ATLASSIAN_API_TOKEN,
    infrastructure::OKTA_API_TOKEN,
    infrastructure::ONEPASSWORD_SECRET,
    infrastructure::POSTMAN_API_KEY,
    infrastructure::FLYIO_TOKEN,
    infrastructure::DOPPLER_TOKEN,
    infrastructure::PLANETSCALE_TOKEN,
    infrastructure::SNYK_TOKEN,
    infrastructure::HARNESS_TOKEN,
    infrastructure::LINEAR_API_KEY,
];

/// The detector with this id.
pub fn detector(id: &str) -> Option<&'static Detector> {
    CATALOGUE.iter().find(|d| d.id == id)
}

/// The catalogue's patterns, compiled once, in catalogue order; an error
/// names the detector whose pattern does not compile (the tests make sure
/// none does).
pub fn compiled() -> Result<&'static [Regex], &'static str> {
    static COMPILED: OnceLock<Result<Vec<Regex>, String>> = OnceLock::new();
    let compiled = COMPILED
        .get_or_init(|| CATALOGUE.iter().map(|d| d.compile().map_err(|e| format!("detector {}: {e}", d.id))).collect());
    match compiled {
        Ok(regexes) => Ok(regexes),
        Err(e) => Err(e),
    }
}

/// A finding of [`reference_scan`]: the detector and the byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefFinding {
    /// The detector's id.
    pub id: &'static str,
    /// Start of the match (inclusive).
    pub start: usize,
    /// End of the match (exclusive).
    pub end: usize,
}

/// The oracle: for every detector, every match of its pattern over all of
/// `data` (the regex crate's leftmost-first, non-overlapping matches),
/// kept when the validator passes. Sorted by start, end, then catalogue
/// order. Slow and simple on purpose; the fast scanner must agree with it.
/// Empty if the catalogue does not compile (it always does; see the tests).
pub fn reference_scan(data: &[u8]) -> Vec<RefFinding> {
    let Ok(regexes) = compiled() else { return Vec::new() };
    let mut findings: Vec<(usize, RefFinding)> = Vec::new();
    for (order, (detector, regex)) in CATALOGUE.iter().zip(regexes).enumerate() {
        for m in regex.find_iter(data) {
            if detector.validates(m.as_bytes()) {
                findings.push((order, RefFinding { id: detector.id, start: m.start(), end: m.end() }));
            }
        }
    }
    findings.sort_by_key(|(order, f)| (f.start, f.end, *order));
    findings.into_iter().map(|(_, f)| f).collect()
}
