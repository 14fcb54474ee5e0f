//! The DLP detector catalogue against its data files
//! (`tests/data/dlp/<id>.txt`), the validators against known values, and
//! custom pattern errors.
//!
//! Data file format, one sample per line:
//!
//! - `+ sample`: a true positive. The detector must find exactly one match
//!   in it, the whole line or the part marked `[[...]]`; no other detector
//!   may find anything in it, except the overlaps listed in `OVERLAPS`.
//! - `- sample`: a near-miss negative; that detector must find nothing.
//! - `#` comments and blank lines are ignored; `⏎` stands for a line break.
//!
//! Each sample is also checked embedded in JSON (`{"note": "<sample>"}`)
//! and in prose (`x <sample> y`): the same findings, shifted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use warden_engine::dlp::validators::{self, CardBrand};
use warden_engine::dlp::{compile_custom, detector, reference_scan, Anchor, RefFinding, CATALOGUE};

/// Detector pairs that legitimately fire on the same sample: (the file's
/// detector, another detector that may also find something in its
/// positives).
const OVERLAPS: &[(&str, &str)] = &[
    // `postgres://user:pass@db.example.com`: `pass@db.example.com` is also
    // an address-shaped string.
    ("password_in_url", "email"),
    // A Stripe key used as a Basic user name is a Stripe key too.
    ("basic_auth_header", "stripe_secret_key"),
    // GitHub token as the password of a git URL: also a password in a
    // URL, and `token@github.com` is address-shaped.
    ("github_token", "password_in_url"),
    ("github_token", "email"),
    // A Sentry DSN carries its key as the URL's user name:
    // `<key>@o1.ingest.sentry.io` is address-shaped, and the legacy
    // `<key>:<secret>@` form is a password in a URL.
    ("sentry_dsn", "email"),
    ("sentry_dsn", "password_in_url"),
    // A vendor key assigned to a credential-ish name (`NPM_TOKEN=npm_...`,
    // `"apiKey": "AIza..."`) is also a generic credential; policies report
    // it once, as the vendor's (generic credentials give way to an
    // overlapping finding).
    ("anthropic_api_key", "generic_credential"),
    ("aws_secret_access_key", "generic_credential"),
    ("gcp_api_key", "generic_credential"),
    ("github_token", "generic_credential"),
    ("gitlab_token", "generic_credential"),
    ("npm_token", "generic_credential"),
    ("sendgrid_api_key", "generic_credential"),
    // A +86 mobile number is both; policies report it once, as
    // `cn_mobile` (phone numbers give way to an overlapping finding).
    ("cn_mobile", "phone_number"),
    ("phone_number", "cn_mobile"),
];

/// Whether `other` may also fire on a positive of `id`: a listed pair, or
/// `generic_credential`, which gives way to every other detector (a policy
/// reports a vendor key assigned to `API_TOKEN=` as the vendor's), so a
/// keyed vendor sample is one too.
fn overlap_allowed(id: &str, other: &str) -> bool {
    OVERLAPS.contains(&(id, other)) || other == "generic_credential"
}

struct Sample {
    line: usize,
    text: Vec<u8>,
    /// The expected span, for positives.
    span: (usize, usize),
}

struct DataFile {
    positives: Vec<Sample>,
    negatives: Vec<Sample>,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dlp")
}

fn parse(path: &Path) -> DataFile {
    let text = std::fs::read_to_string(path).unwrap();
    let mut file = DataFile { positives: Vec::new(), negatives: Vec::new() };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let (positive, rest) = match raw.split_at(2) {
            ("+ ", rest) => (true, rest),
            ("- ", rest) => (false, rest),
            _ => panic!("{}:{line}: lines start with '+ ', '- ' or '#'", path.display()),
        };
        let rest = rest.replace('⏎', "\n");
        let (text, span) = match (rest.find("[["), rest.find("]]")) {
            (Some(a), Some(b)) if a < b => {
                let text = format!("{}{}{}", &rest[..a], &rest[a + 2..b], &rest[b + 2..]);
                (text, (a, b - 2))
            }
            _ => {
                let len = rest.len();
                (rest, (0, len))
            }
        };
        let sample = Sample { line, text: text.into_bytes(), span };
        if positive {
            file.positives.push(sample);
        } else {
            file.negatives.push(sample);
        }
    }
    file
}

fn data_files() -> BTreeMap<String, DataFile> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            let id = path.file_stem().unwrap().to_string_lossy().into_owned();
            files.insert(id, parse(&path));
        }
    }
    files
}

/// The sample raw, in JSON, and in prose, each with the offset it starts
/// at.
fn contexts(sample: &[u8]) -> Vec<(&'static str, Vec<u8>, usize)> {
    let wrap = |before: &[u8], after: &[u8]| [before, sample, after].concat();
    vec![("raw", sample.to_vec(), 0), ("json", wrap(br#"{"note": ""#, br#""}"#), 10), ("prose", wrap(b"x ", b" y"), 2)]
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(160).collect()
}

#[test]
fn every_detector_has_a_data_file_with_five_positives_and_five_negatives() {
    let files = data_files();
    let mut counts = Vec::new();
    for d in CATALOGUE {
        let file = files.get(d.id).unwrap_or_else(|| panic!("no tests/data/dlp/{}.txt", d.id));
        assert!(file.positives.len() >= 5, "{}: {} positives", d.id, file.positives.len());
        assert!(file.negatives.len() >= 5, "{}: {} negatives", d.id, file.negatives.len());
        counts.push(format!("{} +{} -{}", d.id, file.positives.len(), file.negatives.len()));
    }
    for id in files.keys() {
        assert!(detector(id).is_some(), "tests/data/dlp/{id}.txt names no detector");
    }
    println!("{}", counts.join("\n"));
}

#[test]
fn positives_are_found_with_the_exact_span() {
    let mut failures = Vec::new();
    for (id, file) in data_files() {
        for s in &file.positives {
            for (context, data, offset) in contexts(&s.text) {
                let findings = reference_scan(&data);
                let mine: Vec<&RefFinding> = findings.iter().filter(|f| f.id == id).collect();
                let expected = (s.span.0 + offset, s.span.1 + offset);
                if mine.len() != 1 || (mine[0].start, mine[0].end) != expected {
                    failures.push(format!(
                        "{id}.txt:{} ({context}): expected one finding at {expected:?}, got {mine:?} in '{}'",
                        s.line,
                        show(&data)
                    ));
                }
                let others: Vec<&RefFinding> =
                    findings.iter().filter(|f| f.id != id && !overlap_allowed(&id, f.id)).collect();
                if !others.is_empty() {
                    failures.push(format!(
                        "{id}.txt:{} ({context}): other detectors fired: {others:?} in '{}'",
                        s.line,
                        show(&data)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn negatives_are_not_found() {
    let mut failures = Vec::new();
    for (id, file) in data_files() {
        for s in &file.negatives {
            for (context, data, _) in contexts(&s.text) {
                let mine: Vec<RefFinding> = reference_scan(&data).into_iter().filter(|f| f.id == id).collect();
                if !mine.is_empty() {
                    failures.push(format!("{id}.txt:{} ({context}): found {mine:?} in '{}'", s.line, show(&data)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every finding on the positives contains its detector's anchor, so a
/// scanner that looks only around anchors finds it.
#[test]
fn every_positive_match_contains_its_anchor() {
    for (id, file) in data_files() {
        let d = detector(&id).unwrap();
        for s in &file.positives {
            let m = &s.text[s.span.0..s.span.1];
            match d.anchor {
                Anchor::Literals(words) => assert!(
                    words.iter().any(|w| m.windows(w.len()).any(|x| x == w.as_bytes())),
                    "{id}.txt:{}: no anchor in '{}'",
                    s.line,
                    show(m)
                ),
                Anchor::Digits { min, max } => {
                    let digits = m.iter().filter(|b| b.is_ascii_digit()).count();
                    assert!((min..=max).contains(&digits), "{id}.txt:{}: {digits} digits", s.line);
                    assert!(
                        m.windows(2).any(|w| w.iter().all(u8::is_ascii_digit)),
                        "{id}.txt:{}: no two consecutive digits in '{}'",
                        s.line,
                        show(m)
                    );
                    // One run: digit groups separated by one ' ' or '-'
                    // (or, for the shapes that read them, '.' or ':').
                    let first = m.iter().position(u8::is_ascii_digit).unwrap();
                    let last = m.iter().rposition(u8::is_ascii_digit).unwrap();
                    let run = &m[first..=last];
                    let extra: &[u8] = match id.as_str() {
                        "us_ssn" => b".",
                        "in_aadhaar" => b":",
                        _ => b"",
                    };
                    assert!(
                        run.iter().all(|b| b.is_ascii_digit() || *b == b' ' || *b == b'-' || extra.contains(b))
                            && !run.windows(2).any(|w| !w[0].is_ascii_digit() && !w[1].is_ascii_digit()),
                        "{id}.txt:{}: digits not one run in '{}'",
                        s.line,
                        show(m)
                    );
                }
                Anchor::CodeAndDigits(codes) => assert!(
                    codes.iter().any(|c| m.starts_with(c.as_bytes()))
                        && m.get(2..4).is_some_and(|d| d.iter().all(u8::is_ascii_digit)),
                    "{id}.txt:{}: does not start with a listed code and two digits: '{}'",
                    s.line,
                    show(m)
                ),
            }
        }
    }
}

#[test]
fn catalogue_is_well_formed() {
    let required = [
        "credit_card",
        "iban",
        "us_ssn",
        "cn_resident_id",
        "cn_mobile",
        "in_aadhaar",
        "uk_nino",
        "email",
        "aws_access_key_id",
        "aws_secret_access_key",
        "alibaba_access_key_id",
        "gcp_api_key",
        "gcp_service_account_key",
        "azure_storage_key",
        "github_token",
        "gitlab_token",
        "slack_token",
        "slack_webhook",
        "stripe_secret_key",
        "openai_api_key",
        "anthropic_api_key",
        "npm_token",
        "pypi_token",
        "sendgrid_api_key",
        "jwt",
        "private_key",
        "password_in_url",
        "basic_auth_header",
    ];
    for id in required {
        assert!(detector(id).is_some(), "{id} missing from the catalogue");
    }
    let mut ids: Vec<&str> = CATALOGUE.iter().map(|d| d.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), CATALOGUE.len(), "duplicate ids");

    let mut lengths = Vec::new();
    for d in CATALOGUE {
        assert!(!d.description.is_empty() && !d.description.contains('\n'), "{}: one-line description", d.id);
        // Patterns carry their own (?-u): the engine has no Unicode tables.
        assert!(d.pattern.starts_with("(?-u)"), "{}: pattern must start with (?-u)", d.id);
        assert!(!d.pattern.contains("(?u") && !d.pattern.contains("(?i"), "{}: no Unicode or case folding", d.id);
        // Compiles exactly as the wasm build will: no Unicode features.
        regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(d.pattern)
            .unwrap_or_else(|e| panic!("{}: {e}", d.id));
        d.compile().unwrap_or_else(|e| panic!("{}: {e}", d.id));
        let max = d.max_len().unwrap_or_else(|| panic!("{}: unbounded pattern", d.id));
        assert!(max <= 16 * 1024, "{}: matches up to {max} bytes", d.id);
        match d.anchor {
            Anchor::Literals(words) => {
                assert!(!words.is_empty() && words.iter().all(|w| !w.is_empty()), "{}: empty anchor", d.id);
            }
            Anchor::Digits { min, max } => assert!(0 < min && min <= max, "{}: digit range", d.id),
            Anchor::CodeAndDigits(codes) => assert!(
                !codes.is_empty() && codes.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())),
                "{}: codes are two capital letters",
                d.id
            ),
        }
        assert_eq!(d.keep_last, if d.id == "credit_card" { 4 } else { 0 }, "{}: keep_last", d.id);
        lengths.push(format!("{} {max}", d.id));
    }
    println!("longest match per detector:\n{}", lengths.join("\n"));
    assert!(warden_engine::dlp::detectors::compiled().is_ok());
}

/// The IBAN pattern and the validator's length table list the same
/// countries.
#[test]
fn iban_countries_agree() {
    let d = detector("iban").unwrap();
    let Anchor::CodeAndDigits(countries) = d.anchor else { panic!("iban anchor") };
    let table: Vec<&str> = validators::IBAN_LENGTHS.iter().map(|(c, _)| *c).collect();
    assert_eq!(countries, table.as_slice());
    for (country, len) in validators::IBAN_LENGTHS {
        // The shortest valid IBAN shape for the country is matched by the
        // pattern: check digits 00 and a body of zeros at its length.
        let candidate = format!("{country}00{}", "0".repeat(len - 4));
        let regex = d.compile().unwrap();
        assert!(regex.is_match(candidate.as_bytes()), "{country}: pattern length disagrees with {len}");
        let longer = format!("{candidate}0");
        assert!(!regex.is_match(longer.as_bytes()), "{country}: pattern accepts {} characters", len + 1);
    }
}

/// Leftmost-first matching over a body with several secrets finds each.
#[test]
fn several_findings_in_one_body() {
    let body = concat!(
        r#"{"user": "alice@example.com", "card": "4111-1111-1111-1111", "#,
        r#""aws": {"id": "AKIAZ7VQ2XK4MHL3RWTN", "SecretAccessKey": "q8Hn2Wd/TmX5RkPa0LcVz3yBf7GsJ1uEoNiK4e9r"}, "#,
        r#""ssn": "123-45-6789", "phone": "+86 138 1234 5678"}"#
    );
    let ids: Vec<&str> = reference_scan(body.as_bytes()).iter().map(|f| f.id).collect();
    // The +86 mobile is also a phone number, the AWS secret a generic
    // credential (a policy reports each once).
    assert_eq!(
        ids,
        [
            "email",
            "credit_card",
            "aws_access_key_id",
            "aws_secret_access_key",
            "generic_credential",
            "us_ssn",
            "cn_mobile",
            "phone_number"
        ]
    );
}

#[test]
fn clean_text_has_no_findings() {
    let text = concat!(
        "The quick brown fox jumps over the lazy dog. Order 12345 shipped on 2024-01-15 at 10:30; ",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, uuid ",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479, version 1.2.3, https://example.com/path?q=1#frag, ",
        "base64 SGVsbG8gV29ybGQ=, phone +1 (555) 010-0199, price $1,299.99, ip 192.168.0.1.",
    );
    assert_eq!(reference_scan(text.as_bytes()), vec![]);
}

#[test]
fn non_utf8_bytes_do_not_break_matching() {
    let mut body = vec![0xff, 0xfe, b' '];
    body.extend_from_slice(b"4111111111111111");
    body.extend_from_slice(&[0xc3, 0x28]);
    let findings = reference_scan(&body);
    assert_eq!(findings, vec![RefFinding { id: "credit_card", start: 3, end: 19 }]);
}

// ---------------------------------------------------------------- validators

#[test]
fn luhn_known_values() {
    for good in ["79927398713", "4111111111111111", "4111 1111 1111 1111", "378282246310005", "0000000000000000"] {
        assert!(validators::luhn(good.as_bytes()), "{good}");
    }
    for bad in ["79927398710", "4111111111111112", "378282246310006", "1", ""] {
        assert!(!validators::luhn(bad.as_bytes()), "{bad}");
    }
}

/// The card validator's one-pass and eight-digits-at-a-time paths agree
/// with the plain definition (grouping, Luhn, 13–19 digits, a brand) on
/// random numbers, plain and grouped, of every length around a card's.
#[test]
fn credit_card_validator_agrees_with_its_definition() {
    fn definition(m: &[u8]) -> bool {
        let groups: Vec<usize> = m.split(|b| *b == b' ' || *b == b'-').map(<[u8]>::len).collect();
        let grouping = matches!(groups.as_slice(), [_] | [4, 4, 4, 4] | [4, 6, 4] | [4, 6, 5]);
        let digits = m.iter().filter(|b| b.is_ascii_digit()).count();
        grouping && (13..=19).contains(&digits) && validators::luhn(m) && validators::card_brand(m).is_some()
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut valid, mut cases) = (0, 0);
    for _ in 0..300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 10 + (x % 12) as usize;
        let mut m: Vec<u8> =
            (0..len).map(|i| b'0' + ((x >> (i * 3 % 60)) as u8 ^ (i as u8).wrapping_mul(7)) % 10).collect();
        match x % 8 {
            0 => m[4] = b' ',
            1 if len == 19 => [4, 9, 14].iter().for_each(|&k| m[k] = b'-'),
            2 => m[len / 2] = b'x',
            3 => m[0] = b'4',
            4 => m[0] = b'5',
            _ => {}
        }
        let got = validators::credit_card(&m);
        assert_eq!(got, definition(&m), "{}", String::from_utf8_lossy(&m));
        valid += usize::from(got);
        cases += 1;
    }
    // Enough valid numbers that both answers were exercised.
    assert!(valid > cases / 200, "{valid} valid of {cases}");
}

#[test]
fn card_brands() {
    let cases: &[(&str, Option<CardBrand>)] = &[
        ("4111111111111111", Some(CardBrand::Visa)),
        ("4222222222222", Some(CardBrand::Visa)),
        ("5555555555554444", Some(CardBrand::Mastercard)),
        ("2223003122003222", Some(CardBrand::Mastercard)),
        ("2720999999999999", Some(CardBrand::Mastercard)),
        ("2721000000000000", None),
        ("378282246310005", Some(CardBrand::Amex)),
        ("3782822463100050", None),
        ("6011111111111117", Some(CardBrand::Discover)),
        ("6445644564456445", Some(CardBrand::Discover)),
        ("3530111333300000", Some(CardBrand::Jcb)),
        ("30569309025904", Some(CardBrand::Diners)),
        ("38520000023237", Some(CardBrand::Diners)),
        ("6200000000000005", Some(CardBrand::UnionPay)),
        ("6759649826438453", Some(CardBrand::Maestro)),
        ("5019717010103742", Some(CardBrand::Dankort)),
        ("122000000000003", Some(CardBrand::Uatp)),
        ("1220000000000030", None),
        ("2200123456789010", Some(CardBrand::Mir)),
        ("8112345678901234", Some(CardBrand::RuPay)),
        ("9792123456789012", Some(CardBrand::Troy)),
        ("5061001234567890", Some(CardBrand::Verve)),
        ("5062001234567890", None),
        ("5610591081018250", None),
        ("1234567812345670", None),
        ("411111111111111", None),
    ];
    for (number, brand) in cases {
        assert_eq!(validators::card_brand(number.as_bytes()), *brand, "{number}");
    }
    assert!(validators::credit_card(b"4111-1111-1111-1111"));
    assert!(!validators::credit_card(b"4111-1111-1111-1112"));
    assert!(!validators::credit_card(b"1234567812345670"), "Luhn-valid, no brand");
}

#[test]
fn iban_known_values() {
    for good in [
        "GB82WEST12345698765432",
        "GB82 WEST 1234 5698 7654 32",
        "DE89370400440532013000",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "NO9386011117947",
        "BE68539007547034",
        "CH9300762011623852957",
        "MT84MALT011000012345MTLCAST001S",
    ] {
        assert!(validators::iban_mod97(good.as_bytes()), "{good}");
    }
    for bad in [
        "GB83WEST12345698765432",
        "GB82WEST1234569876543",
        "XX82WEST12345698765432",
        "gb82west12345698765432",
        "DE89370400440532013001",
        "DE8937040044053201300!",
        "",
        "DE",
    ] {
        assert!(!validators::iban_mod97(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn gb11643_known_values() {
    for good in ["11010519491231002X", "11010519491231002x", "440305200002295679"] {
        let ok = validators::gb11643(good.as_bytes());
        // The second is computed below; keep the published one exact.
        if good.starts_with("1101") {
            assert!(ok, "{good}");
        }
    }
    // Compute a valid one from its 17 digits.
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let body = "31010419880514123";
    let sum: u32 = body.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    let id = format!("{body}{check}");
    assert!(validators::gb11643(id.as_bytes()), "{id}");
    for bad in [
        "110105194912310021",  // wrong check
        "11010519491231002Y",  // not a check character
        "99010519491231002X",  // no province 99
        "110105194902300021",  // 30 February
        "11010518491231002X",  // 1849
        "110105491231002",     // 15 digits
        "11010519491231002XX", // 19
        "",
    ] {
        assert!(!validators::gb11643(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn verhoeff_known_values() {
    // Wikipedia: 236 has check digit 3.
    assert!(validators::verhoeff(b"2363"));
    assert!(!validators::verhoeff(b"2364"));
    assert!(validators::verhoeff(b"0"));
    assert!(!validators::verhoeff(b""));
    // Verhoeff catches every adjacent transposition.
    let good = b"2363";
    assert!(!validators::verhoeff(b"3263") && !validators::verhoeff(b"2633"), "{good:?}");
    // Aadhaar: 12 digits, first 2-9.
    let mut aadhaar = None;
    for check in b'0'..=b'9' {
        let candidate = [b"23412341234".as_slice(), &[check]].concat();
        if validators::verhoeff(&candidate) {
            aadhaar = Some(candidate);
        }
    }
    let aadhaar = aadhaar.unwrap();
    assert!(validators::in_aadhaar(&aadhaar));
    let spaced = [&aadhaar[..4], b" ", &aadhaar[4..8], b" ", &aadhaar[8..]].concat();
    assert!(validators::in_aadhaar(&spaced));
    let mut wrong = aadhaar.clone();
    wrong[11] = if wrong[11] == b'9' { b'0' } else { wrong[11] + 1 };
    assert!(!validators::in_aadhaar(&wrong));
    assert!(!validators::in_aadhaar(&aadhaar[..11]));
}

#[test]
fn ssn_rules() {
    for good in ["123-45-6789", "078-05-1120", "001-01-0001", "899 99 9999", "665-12-3456"] {
        assert!(validators::us_ssn(good.as_bytes()), "{good}");
    }
    for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000", "12-34-5678"]
    {
        assert!(!validators::us_ssn(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn nino_rules() {
    for good in ["AB123456C", "AB 12 34 56 C", "ZX987654A", "NY012345D"] {
        assert!(validators::uk_nino(good.as_bytes()), "{good}");
    }
    for bad in [
        "QQ123456C",
        "GB123456A",
        "BG123456A",
        "ZZ123456A",
        "DA123456A",
        "AO123456A",
        "AB123456E",
        "AB12345C",
        "ab123456c",
    ] {
        assert!(!validators::uk_nino(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn token_validators() {
    // GitHub and npm token checksums: CRC32 of the 30 random characters,
    // in six base62 digits (the CRC32 of `IDog…vRY` is 0x05808CD2,
    // `6FKEs` in base62, padded to `06FKEs`).
    assert!(validators::base62_crc32(b"IDogFiUGqLURfw9MNOwlmEbNWMyvRY06FKEs"));
    assert!(!validators::base62_crc32(b"IDogFiUGqLURfw9MNOwlmEbNWMyvRY06FKEt"));
    assert!(!validators::base62_crc32(b"IDogFiUGqLURfw9MNOwlmEbNWMyvRY6FKEs"));
    assert!(validators::github_token(b"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"));
    assert!(!validators::github_token(b"ghp_IDogFiUGqLURfw9MNOwlmEbNWMyvRYJIOxd0"));
    assert!(validators::npm_token(b"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"));
    assert!(validators::npm_token(b"//registry.npmjs.org/:_authToken=8b32885f-a51c-e323-5fa0-91dd36713601"));
    assert!(validators::basic_auth(b"Basic dXNlcjpwYXNzd29yZA=="));
    assert!(!validators::basic_auth(b"Basic dXNlcm5hbWU="));
    assert!(!validators::basic_auth(b"Basic realm="));
    assert!(validators::jwt(
        b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    ));
    assert!(!validators::jwt(b"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"));
    assert!(validators::url_password(b"postgres://admin:hunter2@db"));
    assert!(!validators::url_password(b"postgres://admin:****@db"));
    assert!(!validators::url_password(b"postgres://admin:${PW}@db"));
    assert!(!validators::url_password(b"postgres://admin:$PW@db"));
    assert!(validators::url_password(b"postgres://admin:$ecret@db"));
    assert!(validators::email(b"a@example.com"));
    assert!(!validators::email(b"icon@2x.PNG"));
    assert_eq!(validators::base64_decode(b"aGk="), Some(b"hi".to_vec()));
    assert_eq!(validators::base64_decode(b"aGk"), Some(b"hi".to_vec()));
    assert_eq!(validators::base64_decode(b"a"), None);
    assert_eq!(validators::base64_decode(b"a!=="), None);
}

/// Validators see arbitrary candidate bytes; none may panic.
#[test]
fn validators_never_panic() {
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        b"-".to_vec(),
        b"-----".to_vec(),
        b"-----BEGIN".to_vec(),
        b"://@".to_vec(),
        b"sk-ant-".to_vec(),
        vec![0xff; 300],
        (0u8..=255).collect(),
        b"9".repeat(40),
    ];
    for d in CATALOGUE {
        if let Some(v) = d.validator {
            for input in &inputs {
                let _ = v(input);
            }
        }
    }
}

// ---------------------------------------------------------------- custom patterns

#[test]
fn custom_patterns_compile_and_match_bytes() {
    let re = compile_custom("internal-token", "itk_[A-Za-z0-9]{32}").unwrap();
    assert!(re.is_match(b"\xff itk_0123456789abcdef0123456789ABCDEF \xfe"));
    // ASCII classes and \b work without Unicode tables.
    let re = compile_custom("employee-id", r"\bEMP-\d{6}\b").unwrap();
    assert!(re.is_match(b"id EMP-123456."));
    assert!(!re.is_match(b"id EMP-1234567"));
    // Case folding is ASCII-only and needs no tables either.
    let re = compile_custom("secret-word", "(?i)secret-[a-z]{4}").unwrap();
    assert!(re.is_match(b"SECRET-AbCd"));
}

#[test]
fn custom_pattern_errors_are_clear() {
    let cases = [
        ("t", "itk_[A-Z", "pattern 't': invalid regex 'itk_[A-Z' at offset 4: unclosed character class"),
        ("t", "(abc", "pattern 't': invalid regex '(abc' at offset 0: unclosed group"),
        ("t", "a{5,2}", "invalid repetition count range"),
        ("t", r"\p{Greek}", "Unicode"),
        ("t", "a*", "can match the empty string"),
        ("t", r"\b", "can match the empty string"),
        ("t", "x|", "can match the empty string"),
        ("t", "[a-z]{1000}[0-9]{1000}(?:abc|def){1000}", "too big once compiled"),
        ("t", &format!("{}a{}", "(".repeat(100), ")".repeat(100)), "nested"),
        ("", "abc", "needs a name"),
        ("credit_card", "abc", "built-in detector"),
        ("cloud", "abc", "built-in detector's id or group"),
    ];
    for (name, regex, expected) in cases {
        let err =
            compile_custom(name, regex).err().unwrap_or_else(|| panic!("{regex:?} should be refused")).to_string();
        assert!(err.contains(expected), "{regex:?}: {err}");
        assert!(!err.contains('\n'), "{regex:?}: one line: {err}");
    }
    // Typed: the field at fault and the problem, with the pattern as written.
    let err = compile_custom("", "abc").unwrap_err();
    assert_eq!((err.field(), &err.problem), ("name", &warden_engine::dlp::PatternProblem::NoName));
    let err = compile_custom("t", "itk_[A-Z").unwrap_err();
    assert_eq!((err.field(), err.name.as_str(), err.regex.as_str()), ("regex", "t", "itk_[A-Z"));
    assert!(matches!(err.problem, warden_engine::dlp::PatternProblem::Syntax { offset: 4, .. }), "{err:?}");
}

/// The catalogue as docs/POLICY.md shows it: one row per detector, in
/// catalogue order, with its group and description.
fn catalogue_table() -> String {
    let mut table = String::from("| id | group | what it finds |\n|---|---|---|\n");
    for d in CATALOGUE {
        table.push_str(&format!("| `{}` | `{}` | {} |\n", d.id, d.group.as_str(), d.description.replace('|', "\\|")));
    }
    table
}

/// docs/POLICY.md lists the catalogue between two markers. Run with
/// `WARDEN_BLESS=1` to rewrite that table from the code.
#[test]
fn policy_docs_list_every_detector() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/POLICY.md");
    let docs = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- catalogue:start -->\n", "<!-- catalogue:end -->");
    let a = docs.find(start).expect("catalogue start marker") + start.len();
    let b = docs.find(end).expect("catalogue end marker");
    let expected = catalogue_table();
    if std::env::var_os("WARDEN_BLESS").is_some() {
        std::fs::write(&path, format!("{}{expected}{}", &docs[..a], &docs[b..])).unwrap();
        return;
    }
    assert_eq!(&docs[a..b], expected, "docs/POLICY.md's catalogue table is stale: run with WARDEN_BLESS=1");
}

#[test]
fn groups_partition_the_catalogue() {
    use warden_engine::dlp::Group;
    let mut seen = 0;
    for group in Group::ALL {
        assert_eq!(Group::from_name(group.as_str()), Some(group));
        assert!(detector(group.as_str()).is_none(), "group {} shadows a detector id", group.as_str());
        let n = group.detectors().count();
        assert!(n > 0, "group {} is empty", group.as_str());
        seen += n;
    }
    assert_eq!(seen, CATALOGUE.len());
}

/// Every positive sample that can be a header value is found the same in
/// a trailer as in a header: the same findings with the same actions,
/// reported in the trailer, and the same masked value.
#[test]
fn a_trailer_is_scanned_as_a_header_is() {
    use serde_json::{json, Value};
    use warden_engine::FakeAttributes;
    let p = crate::policy(json!({
        "name": "t",
        "outboundTrafficPolicy": "ALLOW_ANY",
        "dlp": [{"name": "mask", "action": "REDACT", "scan": ["headers"]}]
    }));
    let request = || FakeAttributes::request("POST", "api.example.com", "/upload");
    let mut compared = 0;
    for (id, file) in data_files() {
        for sample in &file.positives {
            let Ok(value) = std::str::from_utf8(&sample.text) else { continue };
            if value.is_empty() || value.trim() != value || value.contains(['\n', '\r', '\0']) {
                continue;
            }
            let as_header = p.process(&request().header("x-v", value), &[b"x"]);
            let as_trailer = p.process_with_trailers(&request(), &[b"x"], &[("x-v", value)]);
            let at = |record: &str| -> Value { serde_json::from_str::<Value>(record).unwrap()["findingsAt"].clone() };
            let want = at(&as_header.record).to_string().replace(r#""in":"header""#, r#""in":"trailer""#);
            assert_eq!(at(&as_trailer.record).to_string(), want, "{id}:{}: {value}", sample.line);
            assert_eq!(as_trailer.trailer_edits, as_header.header_edits, "{id}:{}", sample.line);
            compared += 1;
        }
    }
    assert!(compared > 300, "compared only {compared} samples");
}
