//! DLP policies end to end in the engine: where each place is scanned,
//! BLOCK / REDACT / AUDIT, scoping, decoders, streaming and oversize
//! bodies, and that no record ever holds a secret.

use crate::policy;
use serde_json::{json, Value};
use warden_engine::{FakeAttributes, Outcome, Policy};

const CARD: &str = "4111 1111 1111 1111";
const AWS: &str = "AKIAZ7VQ2XK4MHL3RWTN";
const GITHUB: &str = "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";
const SECRETS: [&str; 4] = [CARD, "4111111111111111", AWS, GITHUB];

/// httpbin.org and api.stripe.com registered, everything allowed, and the
/// given DLP policies.
fn with_dlp(dlp: Value) -> Policy {
    policy(json!({
        "name": "dlp-test",
        "services": [
            {"name": "httpbin.org", "hosts": ["httpbin.org"]},
            {"name": "stripe", "hosts": ["api.stripe.com"]}
        ],
        "dlp": dlp
    }))
}

fn post(body_type: &str) -> FakeAttributes {
    FakeAttributes::request("POST", "httpbin.org", "/post").header("content-type", body_type)
}

fn json_record(record: &str) -> Value {
    serde_json::from_str(record).unwrap()
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret {secret:?} leaked into: {text}");
    }
}

#[test]
fn a_card_in_a_json_body_is_blocked_and_the_record_names_only_the_detector() {
    let p = with_dlp(json!([{"name": "no-cards", "detectors": ["credit_card"], "action": "BLOCK"}]));
    let body = format!(r#"{{"card": "{CARD}", "amount": 10}}"#);
    let out = p.process(&post("application/json"), &[body.as_bytes()]);
    assert_eq!(out.outcome, Outcome::DlpBlocked);
    assert_eq!(out.forwarded_body, None);
    let record = json_record(&out.record);
    assert_eq!(record["decision"], "dlp");
    assert_eq!(record["reason"], "dlp-finding");
    assert_eq!(record["policy"], "no-cards");
    assert_eq!(record["findings"], json!(["credit_card"]));
    assert_eq!(record["findingsAt"], json!([{"id": "credit_card", "in": "body", "offset": 10, "action": "BLOCK"}]));
    assert_no_secret(&out.record);
    assert_eq!(p.response_for_outcome(out.outcome).unwrap().status, 403);
}

#[test]
fn a_clean_body_goes_on_unchanged() {
    let p = with_dlp(json!([{"name": "all"}]));
    let body = br#"{"order": "ORD-2024-000123", "sku": "SKU-99812", "at": "2024-06-01T10:00:00Z"}"#;
    let out = p.process(&post("application/json"), &[&body[..20], &body[20..]]);
    assert_eq!(out.outcome, Outcome::Allow, "{}", out.record);
    assert_eq!(out.forwarded_body.as_deref(), Some(&body[..]));
    assert_eq!(json_record(&out.record)["findings"], json!([]));
}

#[test]
fn a_secret_split_across_chunks_is_found_at_every_split() {
    let p = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id", "credit_card"]}]));
    let body = format!(r#"{{"note": "{}", "key": "{AWS}", "card": "{CARD}"}}"#, "x".repeat(700));
    let bytes = body.as_bytes();
    for split in 1..bytes.len() {
        let out = p.process(&post("application/json"), &[&bytes[..split], &bytes[split..]]);
        assert_eq!(out.outcome, Outcome::DlpBlocked, "split at {split}");
        let ids = &json_record(&out.record)["findings"];
        assert!(ids.as_array().unwrap().contains(&json!("aws_access_key_id")), "split at {split}: {ids}");
    }
}

#[test]
fn json_escapes_and_form_encoding_are_decoded_before_matching() {
    let p = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id", "credit_card", "private_key"]}]));
    // \u escapes hide the key from a raw scan.
    let escaped = r#"{"key": "\u0041KIAZ7VQ2XK4MHL3RW\u0054N"}"#;
    assert_eq!(p.process(&post("application/json"), &[escaped.as_bytes()]).outcome, Outcome::DlpBlocked);
    // Mislabeled JSON is still decoded.
    assert_eq!(p.process(&post("text/plain"), &[escaped.as_bytes()]).outcome, Outcome::DlpBlocked);
    let form = "name=a&card=4111+1111+1111+1111&x=%41KIAZ7VQ2XK4MHL3RWTN";
    let out = p.process(&post("application/x-www-form-urlencoded"), &[form.as_bytes()]);
    assert_eq!(out.outcome, Outcome::DlpBlocked);
    assert_eq!(json_record(&out.record)["findings"], json!(["credit_card", "aws_access_key_id"]));
}

#[test]
fn gzip_and_deflate_bodies_are_inflated_for_scanning() {
    use flate2::write::{GzEncoder, ZlibEncoder};
    use std::io::Write;
    let p = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id"]}]));
    let body = format!(r#"{{"aws_access_key_id": "{AWS}"}}"#);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let mut zl = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(body.as_bytes()).unwrap();
    let zl = zl.finish().unwrap();
    for (encoding, data) in [("gzip", &gz), ("deflate", &zl)] {
        let req = post("application/json").header("content-encoding", encoding);
        let chunks: Vec<&[u8]> = data.chunks(7).collect();
        let out = p.process(&req, &chunks);
        assert_eq!(out.outcome, Outcome::DlpBlocked, "{encoding}");
        assert_eq!(json_record(&out.record)["findings"], json!(["aws_access_key_id"]));
    }
    // Corrupt data and unknown encodings cannot be scanned: onOversize.
    let req = post("application/json").header("content-encoding", "gzip");
    let out = p.process(&req, &[b"not gzip at all"]);
    assert_eq!(
        (out.outcome, json_record(&out.record)["reason"].clone()),
        (Outcome::DlpBlocked, json!("dlp-unscannable"))
    );
    let req = post("application/json").header("content-encoding", "br");
    assert_eq!(p.process(&req, &[b"\x1b\x00"]).outcome, Outcome::DlpBlocked);
    let lenient = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id"], "onOversize": "ALLOW"}]));
    let out = lenient.process(&req, &[b"\x1b\x00"]);
    assert_eq!(out.outcome, Outcome::Allow);
    assert_eq!(json_record(&out.record)["bodyUnscanned"], json!(true));
}

/// A header the body is read by, sent twice: the upstream may read the
/// body by either line (or by the list Envoy joins them into), so Warden
/// reads it by the whole list. A form type after `text/plain` would have
/// hidden a percent-encoded key from a scan of the raw bytes; a `gzip`
/// after `identity`, a compressed one.
#[test]
fn a_body_type_or_coding_sent_twice_is_read_by_every_line() {
    use std::io::Write;
    let p = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id"]}]));
    let encoded: String = AWS.bytes().map(|b| format!("%{b:02X}")).collect();
    let form = format!("id=1&key={encoded}");
    let unscannable = |out: &warden_engine::Processed| {
        (out.outcome, json_record(&out.record)["reason"].clone()) == (Outcome::DlpBlocked, json!("dlp-unscannable"))
    };
    // One line each way: the form is decoded, the raw bytes hide nothing
    // (so the two-line cases below are refused for the listing alone).
    let out = p.process(&post("application/x-www-form-urlencoded"), &[form.as_bytes()]);
    assert_eq!(json_record(&out.record)["findings"], json!(["aws_access_key_id"]));
    let out = p.process(&post("text/plain"), &[form.as_bytes()]);
    assert_eq!(out.outcome, Outcome::Allow, "{}", out.record);
    for types in
        [["text/plain", "application/x-www-form-urlencoded"], ["application/x-www-form-urlencoded", "text/plain"]]
    {
        let req = post(types[0]).add_header("content-type", types[1]);
        let out = p.process(&req, &[form.as_bytes()]);
        assert!(unscannable(&out), "{types:?}: {}", out.record);
        // Joined by Envoy into one value: the same.
        let out = p.process(&post(&types.join(",")), &[form.as_bytes()]);
        assert!(unscannable(&out), "{types:?} joined: {}", out.record);
    }

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("key={AWS}").as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    for codings in [["identity", "gzip"], ["gzip", "identity"], ["gzip", "gzip"]] {
        let req = post("text/plain").header("content-encoding", codings[0]).add_header("content-encoding", codings[1]);
        let out = p.process(&req, &[&gz]);
        assert!(unscannable(&out), "{codings:?}: {}", out.record);
    }
    let out = p.process(&post("text/plain").header("content-encoding", "gzip"), &[&gz]);
    assert_eq!(json_record(&out.record)["findings"], json!(["aws_access_key_id"]));
}

/// A body in UTF-16 or UTF-32 (said by its charset, its byte order mark,
/// or, to a JSON reader, by its zero bytes) has no `AKIA…` in its bytes:
/// it is unscannable, not scanned and let through.
#[test]
fn text_whose_ascii_is_not_ascii_bytes_is_unscannable() {
    let p = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id"]}]));
    let text = format!(r#"{{"key": "{AWS}"}}"#);
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let le32: Vec<u8> = text.chars().flat_map(|c| u32::from(c).to_le_bytes()).collect();
    let bom = |b: &[u8], mark: &[u8]| [mark, b].concat();
    let unscannable = |req: &FakeAttributes, body: &[u8]| {
        // Fed whole, and a byte at a time (the zero bytes come later).
        for chunks in [vec![body], body.chunks(1).collect()] {
            let out = p.process(req, &chunks);
            let reason = json_record(&out.record)["reason"].clone();
            assert_eq!((out.outcome, reason), (Outcome::DlpBlocked, json!("dlp-unscannable")), "{req:?} {body:?}");
        }
    };
    unscannable(&post("application/json; charset=utf-16le"), &le);
    unscannable(&post("application/json; charset=\"UTF-16\""), &bom(&be, b"\xFE\xFF"));
    unscannable(&post("text/plain; charset=utf-32"), &le32);
    unscannable(&post("text/plain"), &bom(&le, b"\xFF\xFE"));
    unscannable(&post("application/octet-stream"), &bom(&be, b"\xFE\xFF"));
    unscannable(&post("application/json"), &le);
    unscannable(&post("application/json"), &be);
    unscannable(&post("text/plain"), &le);
    unscannable(&post("application/json"), &le32);
    // Whatever the label (readers such as Python's `json` detect the
    // encoding and ignore the type), blanks first or not.
    let blanks: Vec<u8> = format!(" \r\n {text}").encode_utf16().flat_map(u16::to_le_bytes).collect();
    unscannable(&post("text/plain"), &be);
    unscannable(&post("application/octet-stream"), &blanks);
    unscannable(&FakeAttributes::request("POST", "httpbin.org", "/post"), &blanks);
    // The same text in an ASCII charset is scanned, whatever it is called.
    for label in [
        "application/json; charset=utf-8",
        "text/plain; charset=ISO-8859-1",
        "application/json; charset=\"windows-1252\"",
    ] {
        let out = p.process(&post(label), &[text.as_bytes()]);
        assert_eq!(json_record(&out.record)["findings"], json!(["aws_access_key_id"]), "{label}");
    }
    // Binary data that opens with zero bytes is scanned as it is: a gRPC
    // frame of 2,600 bytes (`00 00 00 0a 28`) holding the key.
    let mut frame = vec![0, 0, 0, 0x0a, 0x28, 0x0a, 20];
    frame.extend_from_slice(AWS.as_bytes());
    frame.resize(5 + 0x0a28, b' ');
    let out = p.process(&post("application/grpc"), &frame.chunks(1).collect::<Vec<_>>());
    assert_eq!(json_record(&out.record)["findings"], json!(["aws_access_key_id"]), "{}", out.record);
    let lenient = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id"], "onOversize": "ALLOW"}]));
    let out = lenient.process(&post("application/json"), &[&le]);
    assert_eq!(out.outcome, Outcome::Allow);
    assert_eq!(json_record(&out.record)["bodyUnscanned"], json!(true));
}

/// A tracer's ids in their headers are random digits and hex: a 19-digit
/// Datadog id passes a card's checks about one time in a hundred, so they
/// are not scanned in their protocol's exact format; anything else in the
/// same header is.
#[test]
fn trace_ids_in_their_headers_are_not_cards() {
    let p = with_dlp(json!([{"name": "cards", "detectors": ["credit_card", "aws_access_key_id"]}]));
    // A Visa-shaped, Luhn-valid 19-digit number, and the same as hex ids.
    let id = "4582661622865954733";
    // An all-digit X-Ray parent id that passes Visa's checks.
    let card16 = "4582661622865951";
    for card in [id, card16] {
        assert_eq!(p.process(&post("text/plain").header("x-card", card), &[]).outcome, Outcome::DlpBlocked);
    }
    for (name, value) in [
        ("x-datadog-trace-id", id.to_owned()),
        ("x-datadog-parent-id", id.to_owned()),
        ("x-b3-spanid", id[..16].to_owned()),
        ("traceparent", format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", &id[..16])),
        ("x-cloud-trace-context", format!("105445aa7843bc8bf206b12000100000/{id};o=1")),
        ("x-amzn-trace-id", format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent={card16};Sampled=1")),
        ("tracestate", format!("dd=s:1;p:{card16};t.dm:-0")),
        ("elastic-apm-traceparent", format!("00-0af7651916cd43dd8448eb211c80319c-{card16}-01")),
        ("x-instana-s", card16.to_owned()),
    ] {
        let out = p.process(&post("text/plain").header(name, &value), &[]);
        assert_eq!(out.outcome, Outcome::Allow, "{name}: {value}: {}", out.record);
    }
    for (name, value) in [
        ("x-datadog-trace-id", "4111 1111 1111 1111".to_owned()),
        ("x-datadog-trace-id", format!("{id} ")),
        ("x-b3-spanid", id.to_owned()),
        ("x-datadog-trace-id", "AKIAZ7VQ2XK4MHL3RWTN".to_owned()),
        ("x-amzn-trace-id", format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent={card16};Sampled=1;")),
        (
            "x-amzn-trace-id",
            format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent={card16};Note=AKIAZ7VQ2XK4MHL3RWTN"),
        ),
        ("tracestate", format!("dd=s:1;p:{card16},rojo=00f067aa0ba902b7")),
        ("tracestate", format!("dd=s:1;t.usr.id:{card16}")),
    ] {
        let out = p.process(&post("text/plain").header(name, &value), &[]);
        assert_eq!(out.outcome, Outcome::DlpBlocked, "{name}: {value:?}: {}", out.record);
    }
}

#[test]
fn redact_masks_the_same_length_and_keeps_a_cards_last_four() {
    let p = with_dlp(json!([{"name": "mask", "detectors": ["credit_card", "aws_access_key_id"], "action": "REDACT"}]));
    let body = format!(r#"{{"card": "{CARD}", "key": "{AWS}"}}"#);
    let out = p.process(&post("application/json"), &[&body.as_bytes()[..15], &body.as_bytes()[15..]]);
    assert_eq!(out.outcome, Outcome::Allow);
    let forwarded = String::from_utf8(out.forwarded_body.unwrap()).unwrap();
    assert_eq!(forwarded, r#"{"card": "***************1111", "key": "********************"}"#);
    assert_eq!(forwarded.len(), body.len());
    let record = json_record(&out.record);
    assert_eq!(record["findings"], json!(["credit_card", "aws_access_key_id"]));
    assert_no_secret(&out.record);

    // Escapes are masked in the bytes as sent: the length is kept.
    let escaped = r#"{"key": "\u0041KIAZ7VQ2XK4MHL3RW\u0054N"}"#;
    let out = p.process(&post("application/json"), &[escaped.as_bytes()]);
    assert_eq!(String::from_utf8(out.forwarded_body.unwrap()).unwrap(), format!(r#"{{"key": "{}"}}"#, "*".repeat(30)));

    // A compressed body cannot be masked in place: refused.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let out = p.process(&post("application/json").header("content-encoding", "gzip"), &[&gz.finish().unwrap()]);
    assert_eq!(out.outcome, Outcome::DlpBlocked);
    assert_eq!(json_record(&out.record)["reason"], "dlp-unredactable");
}

/// The filter masks the body it reads back from the host; a body that does
/// not come back whole (a shorter or longer read than what was scanned) is
/// refused, never forwarded masked in part.
#[test]
fn a_body_that_does_not_come_back_whole_is_refused_not_masked_in_part() {
    use warden_engine::dlp::BodyStep;
    let p = with_dlp(json!([{"name": "mask", "detectors": ["credit_card"], "action": "REDACT"}]));
    let body = format!(r#"{{"card": "{CARD}", "more": "{CARD}"}}"#);
    let attrs = post("application/json");
    let scan_of = || {
        let mut decision = p.decide(&attrs);
        let mut scan = decision.take_body().expect("a REDACT policy scans the body");
        assert_eq!(scan.feed(p.dlp(), &body.as_bytes()[..20], false), BodyStep::Hold);
        assert_eq!(scan.feed(p.dlp(), &body.as_bytes()[20..], true), BodyStep::Redact);
        scan
    };
    let mut whole = body.clone().into_bytes();
    let mut scan = scan_of();
    assert!(scan.redact(p.dlp(), &mut whole));
    assert_eq!(scan.outcome(), Outcome::Allow);
    assert!(!String::from_utf8(whole).unwrap().contains(CARD));

    for raw in [&body.as_bytes()[..20], &[body.as_bytes(), b" "].concat()[..]] {
        let mut raw = raw.to_vec();
        let mut scan = scan_of();
        assert!(!scan.redact(p.dlp(), &mut raw), "a body of {} bytes for {} scanned", raw.len(), body.len());
        assert_eq!(scan.outcome(), Outcome::DlpBlocked);
        assert_eq!(json_record(&scan.record())["reason"], "dlp-unredactable");
        assert_no_secret(&scan.record());
    }
}

/// A body the filter cannot read from the host: a held one is refused
/// whatever `onOversize` says, one only audited goes on marked unscanned.
#[test]
fn a_body_that_cannot_be_read_is_refused_when_held_and_marked_unscanned_otherwise() {
    use warden_engine::dlp::BodyStep;
    let body = br#"{"note": "nothing to find here"}"#;
    for (action, step, outcome) in
        [("REDACT", BodyStep::Block, Outcome::DlpBlocked), ("AUDIT", BodyStep::Forward, Outcome::Allow)]
    {
        let p = with_dlp(json!([{"name": "p", "detectors": ["credit_card"], "action": action, "onOversize": "ALLOW"}]));
        let mut decision = p.decide(&post("application/json"));
        let mut scan = decision.take_body().expect("the body is scanned");
        scan.feed(p.dlp(), &body[..10], false);
        scan.unreadable();
        assert_eq!(scan.feed(p.dlp(), &[], true), step, "{action}");
        assert_eq!(scan.outcome(), outcome, "{action}");
        let record = json_record(&scan.record());
        if outcome == Outcome::DlpBlocked {
            assert_eq!(record["reason"], "dlp-unscannable", "{record}");
        } else {
            assert_eq!(record["bodyUnscanned"], json!(true), "{record}");
        }
    }
}

#[test]
fn audit_forwards_unchanged_and_records_findings_and_policy() {
    let p = with_dlp(json!([{"name": "watch", "action": "AUDIT"}]));
    let body = format!("card={CARD}&email=alice@example.com");
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(5).collect();
    let out = p.process(&post("text/plain"), &chunks);
    assert_eq!(out.outcome, Outcome::Allow);
    assert_eq!(out.forwarded_body.as_deref(), Some(body.as_bytes()));
    let record = json_record(&out.record);
    assert_eq!(record["findings"], json!(["credit_card", "email"]));
    assert_eq!(record["audit"], json!(["watch"]));
    assert_no_secret(&out.record);
}

#[test]
fn headers_query_and_path_are_scanned_where_the_policy_says() {
    let p =
        with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id", "github_token", "basic_auth_header"]}]));
    let req = FakeAttributes::get("httpbin.org", "/get").header("x-api-key", AWS);
    let d = p.decide(&req);
    assert_eq!(d.outcome, Outcome::DlpBlocked);
    let record = json_record(&d.record());
    assert_eq!(
        record["findingsAt"],
        json!([{"id": "aws_access_key_id", "in": "header", "name": "x-api-key", "action": "BLOCK"}])
    );
    // Percent-encoded in the query.
    let req = FakeAttributes::get("httpbin.org", "/get?token=%67hp_IDogFiUGqLURfw9MNOwlmEbNWMyvRY06FKEs&a=1");
    let d = p.decide(&req);
    assert_eq!(d.outcome, Outcome::DlpBlocked);
    assert_eq!(json_record(&d.record())["findingsAt"][0]["in"], "query");
    let req = FakeAttributes::get("httpbin.org", &format!("/keys/{AWS}"));
    assert_eq!(json_record(&p.decide(&req).record())["findingsAt"][0]["in"], "path");
    let req = FakeAttributes::get("httpbin.org", "/get").header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    assert_eq!(p.decide(&req).outcome, Outcome::DlpBlocked);

    // A policy that scans only the body leaves headers alone.
    let body_only = with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id"], "scan": ["body"]}]));
    let req = FakeAttributes::get("httpbin.org", &format!("/get?k={AWS}")).header("x-api-key", AWS);
    assert_eq!(body_only.decide(&req).outcome, Outcome::Allow);
    let out = body_only.process(&post("text/plain"), &[AWS.as_bytes()]);
    assert_eq!(out.outcome, Outcome::DlpBlocked);
}

#[test]
fn a_credential_header_is_seen_with_its_name_and_broad_findings_give_way() {
    let p = with_dlp(json!([{"name": "creds", "detectors": ["generic", "github_token", "pii"], "action": "REDACT"}]));
    // The header is scanned as `x-api-key: <value>`: the name makes the
    // value a credential, and only the value is masked.
    let req = FakeAttributes::get("httpbin.org", "/get").header("x-api-key", "7Hk2Lq9Vx4Np8Rt3Wm6Zb1Yc");
    let d = p.decide(&req);
    assert!(d.redacted());
    assert_eq!(
        json_record(&d.record())["findingsAt"],
        json!([{"id": "generic_credential", "in": "header", "name": "x-api-key", "action": "REDACT"}])
    );
    assert_eq!(d.header_edits, vec![("x-api-key".to_owned(), "*".repeat(24))]);
    // A GitHub token assigned to a token name is a `github_token`, a +86
    // mobile a `cn_mobile`: the broad detectors give way.
    let body = format!(r#"{{"GITHUB_TOKEN": "{GITHUB}", "phone": "+86 138 0013 8000", "tel": "+44 20 7946 0958"}}"#);
    let out = p.process(&post("application/json"), &[body.as_bytes()]);
    assert_eq!(json_record(&out.record)["findings"], json!(["github_token", "cn_mobile", "phone_number"]));
    assert_no_secret(&out.record);
}

#[test]
fn redact_in_headers_and_query_rewrites_what_is_forwarded() {
    let p = with_dlp(json!([{"name": "mask", "detectors": ["credit_card", "aws_access_key_id"], "action": "REDACT"}]));
    let req = FakeAttributes::get("httpbin.org", "/pay?card=4111-1111-1111-1111&k=%41KIAZ7VQ2XK4MHL3RWTN")
        .header("x-card", "card 4111111111111111 end");
    let d = p.decide(&req);
    assert_eq!(d.outcome, Outcome::Allow);
    assert!(d.redacted());
    assert_eq!(d.forward_path.as_deref(), Some("/pay?card=***************1111&k=**********************"));
    assert_eq!(d.header_edits, vec![("x-card".to_owned(), "card ************1111 end".to_owned())]);
    assert_no_secret(&d.record());
}

#[test]
fn dlp_policies_apply_to_their_services_and_the_strongest_action_wins() {
    let p = with_dlp(json!([
        {"name": "audit-all", "detectors": ["credit_card", "email"], "action": "AUDIT"},
        {"name": "block-stripe", "services": ["stripe"], "detectors": ["credit_card"], "action": "BLOCK"}
    ]));
    let body = format!("card={CARD}");
    let to = |host: &str| FakeAttributes::request("POST", host, "/v1/charges").header("content-type", "text/plain");
    let out = p.process(&to("httpbin.org"), &[body.as_bytes()]);
    assert_eq!(out.outcome, Outcome::Allow);
    assert_eq!(json_record(&out.record)["audit"], json!(["audit-all"]));
    let out = p.process(&to("api.stripe.com"), &[body.as_bytes()]);
    assert_eq!(out.outcome, Outcome::DlpBlocked);
    assert_eq!(json_record(&out.record)["policy"], "block-stripe");
    // email is only audited, even for stripe.
    let out = p.process(&to("api.stripe.com"), &[b"alice@example.com"]);
    assert_eq!(out.outcome, Outcome::Allow);
    assert_eq!(json_record(&out.record)["findings"], json!(["email"]));
}

#[test]
fn denied_requests_are_not_scanned() {
    let p = policy(json!({
        "name": "t",
        "services": [{"name": "httpbin.org", "hosts": ["httpbin.org"]}],
        "authorization": [{"name": "deny-post", "action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}],
        "dlp": [{"name": "all"}]
    }));
    let d = p.decide(&post("text/plain").header("x-key", AWS));
    assert_eq!(d.outcome, Outcome::Denied);
    assert_eq!(json_record(&d.record())["findings"], json!([]));
}

#[test]
fn oversize_bodies_follow_on_oversize() {
    let block = with_dlp(json!([{"name": "b", "detectors": ["credit_card"], "maxBodyBytes": 64}]));
    let big = [b'a'; 100];
    let out = block.process(&post("text/plain"), &[&big[..50], &big[50..]]);
    assert_eq!(out.outcome, Outcome::DlpBlocked);
    assert_eq!(json_record(&out.record)["reason"], "dlp-unscannable");
    let allow =
        with_dlp(json!([{"name": "b", "detectors": ["credit_card"], "maxBodyBytes": 64, "onOversize": "ALLOW"}]));
    let out = allow.process(&post("text/plain"), &[&big[..50], &big[50..]]);
    assert_eq!(out.outcome, Outcome::Allow);
    assert_eq!(out.forwarded_body.as_deref(), Some(&big[..]));
    assert_eq!(json_record(&out.record)["bodyUnscanned"], json!(true));
    // Exactly at the limit is still scanned whole.
    let at_limit = [b'a'; 64];
    let out = block.process(&post("text/plain"), &[&at_limit[..]]);
    assert_eq!(out.outcome, Outcome::Allow);
    // AUDIT never holds a body, so any size is scanned.
    let audit = with_dlp(json!([{"name": "a", "detectors": ["credit_card"], "maxBodyBytes": 64, "action": "AUDIT"}]));
    let mut long = b"lorem ipsum ".repeat(1000);
    long.extend_from_slice(CARD.as_bytes());
    let chunks: Vec<&[u8]> = long.chunks(1000).collect();
    let out = audit.process(&post("text/plain"), &chunks);
    assert_eq!(json_record(&out.record)["findings"], json!(["credit_card"]));
}

#[test]
fn custom_patterns_find_their_name() {
    let p = with_dlp(json!([{"name": "internal", "patterns": [
        {"name": "internal-token", "regex": "itk_[A-Za-z0-9]{32}"},
        {"name": "employee-id", "regex": "\\bE[0-9]{7}\\b"}
    ]}]));
    let out = p.process(&post("text/plain"), &[b"t=itk_0123456789abcdef0123456789ABCDEF"]);
    assert_eq!(json_record(&out.record)["findings"], json!(["internal-token"]));
    let out = p.process(&post("text/plain"), &[b"id E1234567 ok"]);
    assert_eq!(json_record(&out.record)["findings"], json!(["employee-id"]));
    // Only the custom patterns: the catalogue is not implied.
    let out = p.process(&post("text/plain"), &[CARD.as_bytes()]);
    assert_eq!(out.outcome, Outcome::Allow);
}

#[test]
fn dlp_survives_the_bundle() {
    let p = with_dlp(json!([
        {"name": "mask", "services": ["stripe"], "detectors": ["credit_card"], "action": "REDACT"},
        {"name": "t", "patterns": [{"name": "internal-token", "regex": "itk_[A-Za-z0-9]{32}"}]}
    ]));
    let bundle = warden_engine::bundle::encode(&p).unwrap();
    let q = warden_engine::compile::load(&bundle).unwrap();
    let req = FakeAttributes::request("POST", "api.stripe.com", "/x").header("content-type", "text/plain");
    let body: &[&[u8]] = &[b"card 4111111111111111 itk", b"_0123456789abcdef0123456789ABCDEF"];
    assert_eq!(p.process(&req, body), q.process(&req, body));
    assert_eq!(q.process(&req, body).outcome, Outcome::DlpBlocked);
}

/// A finding that gives way to an overlapping one (`generic_credential`
/// around an e-mail address) does so whatever the chunks: the address is
/// final before the assignment around it, which ends further on, and a
/// chunk can end between the two.
#[test]
fn a_finding_gives_way_whatever_the_chunks() {
    let p = with_dlp(json!([{"name": "mask", "action": "REDACT"}]));
    let filler = "lorem ipsum ".repeat(100);
    let body = format!("{filler}pwd=U11@l2.IC/STOR {filler}");
    let bytes = body.as_bytes();
    let whole = p.process(&post("text/plain"), &[bytes]);
    let masked = String::from_utf8(whole.forwarded_body.clone().unwrap()).unwrap();
    assert!(masked.contains("pwd=*********/STOR"), "the address alone is masked: {masked}");
    assert_eq!(json_record(&whole.record)["findings"], json!(["email"]), "{}", whole.record);
    for cut in 1..bytes.len() {
        let out = p.process(&post("text/plain"), &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(out.record, whole.record, "cut at {cut}");
        assert_eq!(out.forwarded_body, whole.forwarded_body, "cut at {cut}");
    }
}

/// Long detectors (PEM keys, JWTs) next to short ones and anchors in the
/// middle of their match (the `@` of an address), far apart in a body much
/// longer than the scan window, cut around every secret: the findings
/// equal those of the body in one piece.
#[test]
fn chunked_bodies_find_what_the_whole_body_finds() {
    let p = with_dlp(json!([{"name": "watch", "action": "AUDIT"}]));
    let sample = |id: &str| {
        let text = std::fs::read_to_string(format!("{}/tests/data/dlp/{id}.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let line = text.lines().find(|l| l.starts_with("+ ")).unwrap();
        line[2..].replace("[[", "").replace("]]", "").replace('⏎', "\n")
    };
    let filler = "lorem ipsum ".repeat(2500);
    let secrets = [
        sample("private_key"),
        sample("jwt"),
        CARD.to_owned(),
        sample("github_token"),
        "firstname.lastname+tag@example.com".to_owned(),
    ];
    let mut body = String::new();
    let mut at = Vec::new();
    for secret in &secrets {
        body.push_str(&filler);
        body.push(' ');
        at.push((body.len(), secret.len()));
        body.push_str(secret);
        body.push(' ');
    }
    body.push_str(&filler);
    let bytes = body.as_bytes();
    let whole = p.process(&post("text/plain"), &[bytes]).record;
    assert_eq!(
        json_record(&whole)["findings"],
        json!(["private_key", "jwt", "credit_card", "github_token", "email"]),
        "{whole}"
    );
    for (start, len) in at {
        for cut in (start - 40..start + len + 40).step_by(7) {
            let out = p.process(&post("text/plain"), &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(out.record, whole, "cut at {cut}");
            let far = cut.saturating_sub(20_000);
            let out = p.process(&post("text/plain"), &[&bytes[..far], &bytes[far..cut], &bytes[cut..]]);
            assert_eq!(out.record, whole, "cut at {far} and {cut}");
            assert_eq!(out.forwarded_body.as_deref(), Some(bytes));
        }
    }
}

/// A finding that is final later (an e-mail address, which ends further
/// on) is recorded where one pass over the body puts it: before a token
/// inside its local part that was final a chunk earlier. The record does
/// not depend on where Envoy cut the body.
#[test]
fn findings_are_recorded_in_body_order_whatever_the_chunks() {
    let p = with_dlp(json!([{"name": "watch", "action": "AUDIT"}]));
    let body = format!("to: ops%glcbt-4a_Kx9LpN4vRt6ZbY3mQ8sW@mail.example.com, {}", "lorem ipsum ".repeat(60));
    let found = |record: &str| {
        let r = json_record(record);
        (r["findings"].clone(), r["findingsAt"].clone())
    };
    let whole = p.process(&post("text/plain"), &[body.as_bytes()]).record;
    assert_eq!(found(&whole).0, json!(["email", "gitlab_token"]), "{whole}");
    for cut in 1..body.len() {
        let (head, tail) = body.as_bytes().split_at(cut);
        let out = p.process(&post("text/plain"), &[head, tail]).record;
        assert_eq!(found(&out), found(&whole), "cut at {cut}");
    }
}

#[test]
fn a_group_name_enables_its_detectors_and_only_them() {
    let p = with_dlp(json!([{"name": "cloud-keys", "detectors": ["cloud"], "scan": ["headers"]}]));
    let blocked = p.process(&FakeAttributes::request("GET", "httpbin.org", "/").header("x-note", AWS), &[]);
    assert_eq!(blocked.outcome, Outcome::DlpBlocked);
    assert_eq!(json_record(&blocked.record)["findings"], json!(["aws_access_key_id"]));
    // A GitHub token is in the `source` group, not `cloud`.
    let other = p.process(&FakeAttributes::request("GET", "httpbin.org", "/").header("x-note", GITHUB), &[]);
    assert_eq!(other.outcome, Outcome::Allow);
    // A group and one of its ids together name each detector once.
    let both = with_dlp(json!([{"name": "n", "detectors": ["aws_access_key_id", "cloud", "github_token"]}]));
    let out =
        both.process(&FakeAttributes::request("GET", "httpbin.org", "/").header("x-a", AWS).header("x-b", GITHUB), &[]);
    assert_eq!(json_record(&out.record)["findings"], json!(["aws_access_key_id", "github_token"]));
}

#[test]
fn an_unknown_detector_name_lists_the_groups_and_ids() {
    let doc = json!({"name": "t", "dlp": [{"name": "n", "detectors": ["cloud", "clouds"]}]});
    let err = warden_engine::compile::load(doc.to_string().as_bytes()).expect_err("refused").to_string();
    assert!(err.contains("dlp[0].detectors[1]"), "{err}");
    assert!(err.contains("unknown detector 'clouds' (groups: payment, pii, cloud,"), "{err}");
}

/// A finding that gives way, under a BLOCK policy, to one of another
/// detector under AUDIT: the assignment `pwd=Zq7x9Kp2-4111…` is a card
/// number, and the body goes on, however it is cut (the assignment ends
/// first and is final a chunk before the card can be). Alone, the same
/// assignment blocks the body in every cut, and before its end when the
/// body goes on long enough.
#[test]
fn a_block_that_gives_way_waits_for_what_it_gives_way_to() {
    use warden_engine::dlp::BodyStep;
    let p = with_dlp(json!([
        {"name": "creds", "detectors": ["generic_credential"], "action": "BLOCK"},
        {"name": "cards", "detectors": ["credit_card"], "action": "AUDIT"}
    ]));
    let filler = "lorem ipsum ".repeat(100);
    let body = format!("{filler}pwd=Zq7x9Kp2-{CARD} {filler}");
    let bytes = body.as_bytes();
    let whole = p.process(&post("text/plain"), &[bytes]);
    assert_eq!(whole.outcome, Outcome::Allow, "{}", whole.record);
    assert_eq!(json_record(&whole.record)["findings"], json!(["credit_card"]), "{}", whole.record);
    for cut in 1..bytes.len() {
        let out = p.process(&post("text/plain"), &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(out.record, whole.record, "cut at {cut}");
        assert_eq!(out.forwarded_body.as_deref(), Some(bytes), "cut at {cut}");
    }

    let long = "lorem ipsum ".repeat(8000);
    let body = format!("{filler}pwd=Zq7x9Kp2-Xy {long}");
    let bytes = body.as_bytes();
    let whole = p.process(&post("text/plain"), &[bytes]);
    assert_eq!(whole.outcome, Outcome::DlpBlocked, "{}", whole.record);
    assert_eq!(json_record(&whole.record)["policy"], "creds", "{}", whole.record);
    for cut in (1..4000).step_by(3) {
        let out = p.process(&post("text/plain"), &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(out.record, whole.record, "cut at {cut}");
        assert_eq!(out.forwarded_body, None, "cut at {cut}");
    }
    let mut decision = p.decide(&post("text/plain"));
    let mut scan = decision.take_body().expect("a BLOCK policy scans the body");
    // The end of the body never comes: settled on the way.
    let steps: Vec<_> = bytes.chunks(4096).map(|chunk| scan.feed(p.dlp(), chunk, false)).collect();
    assert_eq!(steps.last(), Some(&BodyStep::Block), "blocked before the body ends: {steps:?}");
    assert_eq!(scan.record(), whole.record);

    // With a JWT detector beside it, what could take the finding back
    // reaches far; the body outgrows `maxBodyBytes` first, and goes on
    // unscanned per `onOversize: ALLOW`: the finding already made blocks.
    let p = with_dlp(json!([
        {"name": "creds", "detectors": ["generic_credential"], "action": "BLOCK", "maxBodyBytes": 4096, "onOversize": "ALLOW"},
        {"name": "tokens", "detectors": ["jwt", "credit_card"], "action": "AUDIT"}
    ]));
    let out = p.process(&post("text/plain"), &bytes.chunks(1024).collect::<Vec<_>>());
    assert_eq!(out.outcome, Outcome::DlpBlocked, "{}", out.record);
    assert_eq!(json_record(&out.record)["policy"], "creds", "{}", out.record);
    let clean = format!("{filler}{long}");
    let out = p.process(&post("text/plain"), &clean.as_bytes().chunks(1024).collect::<Vec<_>>());
    assert_eq!(out.outcome, Outcome::Allow, "{}", out.record);
    assert_eq!(json_record(&out.record)["bodyUnscanned"], json!(true), "{}", out.record);
}

/// Two BLOCK policies with findings in one body: the record names the
/// policy of the first finding in the body, whether the body comes in one
/// piece or in chunks.
#[test]
fn a_body_blocked_by_two_policies_names_the_first_finding_s() {
    let p = with_dlp(json!([
        {"name": "keys", "detectors": ["aws_access_key_id"], "action": "BLOCK"},
        {"name": "cards", "detectors": ["credit_card"], "action": "BLOCK"}
    ]));
    let body = format!(r#"{{"card": "{CARD}", "key": "{AWS}"}}"#);
    let bytes = body.as_bytes();
    for cut in 1..bytes.len() {
        let out = p.process(&post("application/json"), &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(out.outcome, Outcome::DlpBlocked, "cut at {cut}");
        assert_eq!(json_record(&out.record)["policy"], "cards", "cut at {cut}: {}", out.record);
    }
    let whole = p.process(&post("application/json"), &[bytes]);
    assert_eq!(json_record(&whole.record)["policy"], "cards", "{}", whole.record);
}

/// Trailers (header lines sent after the body) are scanned by the policies
/// that scan headers, whether or not any scans the body: a BLOCK finding
/// refuses the request at its end, REDACT masks the trailer's value.
#[test]
fn trailers_are_scanned_where_headers_are() {
    let headers_only = |action: &str| {
        with_dlp(json!([{"name": "keys", "detectors": ["aws_access_key_id"], "action": action, "scan": ["headers"]}]))
    };
    let key = [("x-checksum", "sha256=abc"), ("x-api-key", AWS)];
    let at =
        |action: &str| json!([{"id": "aws_access_key_id", "in": "trailer", "name": "x-api-key", "action": action}]);

    let block = headers_only("BLOCK");
    for body in [&[b"hello".as_slice()][..], &[]] {
        let out = block.process_with_trailers(&post("text/plain"), body, &key);
        assert_eq!(out.outcome, Outcome::DlpBlocked, "{body:?}");
        assert_eq!(out.forwarded_body, None);
        let record = json_record(&out.record);
        assert_eq!((&record["reason"], &record["policy"]), (&json!("dlp-finding"), &json!("keys")));
        assert_eq!(record["findingsAt"], at("BLOCK"));
        assert_eq!(out.trailer_edits, vec![("x-api-key".to_owned(), "*".repeat(20))], "masked for the access log");
        assert_no_secret(&out.record);
    }
    let clean = block.process_with_trailers(&post("text/plain"), &[b"hello"], &[("x-checksum", "sha256=abc")]);
    assert_eq!((clean.outcome, clean.forwarded_body.as_deref()), (Outcome::Allow, Some(b"hello".as_slice())));
    assert!(clean.trailer_edits.is_empty());
    // In a trailer's name.
    let out = block.process_with_trailers(&post("text/plain"), &[b"x"], &[(&format!("x-{AWS}").to_lowercase(), "1")]);
    assert_eq!(out.outcome, Outcome::Allow, "names arrive lowercased and a key id is upper case");
    let custom =
        with_dlp(json!([{"name": "n", "patterns": [{"name": "tok", "regex": "tok-[0-9]{6}"}], "action": "BLOCK"}]));
    let out = custom.process_with_trailers(&post("text/plain"), &[b"x"], &[("x-tok-123456", "1")]);
    assert_eq!(json_record(&out.record)["findingsAt"], json!([{"id": "tok", "in": "trailer-name", "action": "BLOCK"}]));

    let redact = headers_only("REDACT").process_with_trailers(&post("text/plain"), &[b"hello"], &key);
    assert_eq!(redact.outcome, Outcome::Allow);
    assert_eq!(redact.forwarded_body.as_deref(), Some(b"hello".as_slice()));
    assert_eq!(redact.trailer_edits, vec![("x-api-key".to_owned(), "*".repeat(20))]);
    assert_eq!(json_record(&redact.record)["findingsAt"], at("REDACT"));

    let audit = headers_only("AUDIT").process_with_trailers(&post("text/plain"), &[b"hello"], &key);
    assert_eq!((audit.outcome, audit.trailer_edits.len()), (Outcome::Allow, 0));
    assert_eq!(json_record(&audit.record)["audit"], json!(["keys"]));
    assert_eq!(json_record(&audit.record)["findingsAt"], at("AUDIT"));

    // A policy that scans only the body does not read trailers.
    let body_only = with_dlp(json!([{"name": "b", "detectors": ["aws_access_key_id"], "scan": ["body"]}]));
    assert_eq!(body_only.process_with_trailers(&post("text/plain"), &[b"hello"], &key).outcome, Outcome::Allow);
}

/// With the body held, its findings come first: a body blocked for its own
/// finding names that policy, and the trailers' findings follow the
/// body's in the record; a trailer masked while the body is masked too.
#[test]
fn trailers_follow_a_held_body() {
    let p = with_dlp(json!([
        {"name": "cards", "detectors": ["credit_card"], "action": "BLOCK", "scan": ["body"]},
        {"name": "keys", "detectors": ["aws_access_key_id"], "action": "BLOCK", "scan": ["headers"]}
    ]));
    let body = format!("card {CARD}");
    let trailer = [("x-api-key", AWS)];
    let out = p.process_with_trailers(&post("text/plain"), &[body.as_bytes()], &trailer);
    assert_eq!(out.outcome, Outcome::DlpBlocked);
    let record = json_record(&out.record);
    assert_eq!(record["policy"], "cards", "the body's finding comes first");
    assert_eq!(record["findings"], json!(["credit_card", "aws_access_key_id"]));
    let out = p.process_with_trailers(&post("text/plain"), &[b"no card here"], &trailer);
    assert_eq!((out.outcome, json_record(&out.record)["policy"].clone()), (Outcome::DlpBlocked, json!("keys")));

    let mask =
        with_dlp(json!([{"name": "mask", "detectors": ["credit_card", "aws_access_key_id"], "action": "REDACT"}]));
    let out = mask.process_with_trailers(&post("text/plain"), &[body.as_bytes()], &trailer);
    assert_eq!(out.outcome, Outcome::Allow);
    assert_eq!(out.forwarded_body.as_deref(), Some(b"card ***************1111".as_slice()));
    assert_eq!(out.trailer_edits, vec![("x-api-key".to_owned(), "*".repeat(20))]);
    assert_no_secret(&out.record);
}

/// A request counted when its body is done counts what its headers had
/// too: an AUDIT finding in a header, or a REDACT one, with a body (and
/// trailers) still to come.
#[test]
fn a_body_scan_counts_what_the_headers_found() {
    use warden_engine::dlp::BodyStep;
    let p = with_dlp(json!([
        {"name": "record-mail", "detectors": ["email"], "scan": ["headers"], "action": "AUDIT"},
        {"name": "mask-keys", "detectors": ["aws_access_key_id"], "scan": ["headers"], "action": "REDACT"},
        {"name": "cards", "detectors": ["credit_card"], "scan": ["body"], "action": "BLOCK"}
    ]));
    for (header, audited, redacted) in
        [(("x-by", "jane@example.com"), true, false), (("x-key", AWS), false, true), (("x-n", "1"), false, false)]
    {
        let mut decision = p.decide(&post("text/plain").header(header.0, header.1));
        let at_headers = decision.record();
        let mut scan = decision.take_body().expect("a body policy and a headers policy apply");
        assert_eq!(scan.feed(p.dlp(), b"no card", true), BodyStep::Forward);
        assert_eq!((scan.audited(), scan.redacted()), (audited, redacted), "{header:?}");
        // Nothing found after the headers: the record set then stands (the
        // filter does not write it again), and it is the final one.
        assert!(!scan.record_changed());
        assert_eq!(scan.record(), at_headers, "{header:?}");
    }
    let mut decision = p.decide(&post("text/plain").header("x-by", "jane@example.com"));
    let mut scan = decision.take_body().expect("a body scan");
    assert_eq!(scan.feed(p.dlp(), format!("card {CARD}").as_bytes(), true), BodyStep::Block);
    assert!(scan.record_changed());
    let mut decision = p.decide(&post("text/plain"));
    let mut scan = decision.take_body().expect("a body scan");
    let _ = scan.trailers(p.dlp(), &mut |visit| visit("x-by", "jane@example.com"));
    assert_eq!(scan.feed(p.dlp(), b"", true), BodyStep::Forward);
    assert!(scan.record_changed(), "an AUDIT finding in a trailer is recorded");
}

/// A name that came on several lines is replaced whole, each line masked
/// or as it came, in order: replacing the name alone would leave one line
/// (the masked one) and lose the clean ones.
#[test]
fn a_masked_line_of_a_repeated_name_keeps_the_others() {
    let p = with_dlp(json!([{"name": "mask", "detectors": ["aws_access_key_id"], "action": "REDACT"}]));
    let stars = "*".repeat(AWS.len());
    let req = FakeAttributes::get("httpbin.org", "/get")
        .add_header("x-k", "first")
        .add_header("x-other", AWS)
        .add_header("x-k", AWS)
        .add_header("x-k", "last");
    let d = p.decide(&req);
    let edits: Vec<(&str, &str)> = d.header_edits.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    // In the order they came; the filter replaces each name at its first
    // entry and adds the others, so each name's lines keep their order.
    assert_eq!(edits, [("x-k", "first"), ("x-other", stars.as_str()), ("x-k", stars.as_str()), ("x-k", "last")]);
    // A name on one line: that line only.
    let d = p.decide(&FakeAttributes::get("httpbin.org", "/get").header("x-k", AWS).header("x-n", "1"));
    assert_eq!(d.header_edits, vec![("x-k".to_owned(), stars.clone())]);
    // Trailers alike.
    let out = p.process_with_trailers(&post("text/plain"), &[b"x"], &[("x-t", "clean"), ("x-t", AWS)]);
    assert_eq!(out.trailer_edits, vec![("x-t".to_owned(), "clean".to_owned()), ("x-t".to_owned(), stars)]);
}
