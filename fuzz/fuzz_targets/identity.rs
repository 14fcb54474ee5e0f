//! Who the caller is: the XFCC grammar and the certificate reader never
//! panic on any bytes; an XFCC header that parses, written back in the
//! grammar, parses to the same elements; certificates the harness makes
//! read back to the SANs they were made with.

#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_engine::identity::{x509, xfcc};

/// An element list written back: values quoted when they must be.
fn write(elements: &[xfcc::Element]) -> String {
    let mut out = String::new();
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, (key, value)) in element.iter().enumerate() {
            if j > 0 {
                out.push(';');
            }
            out.push_str(key);
            out.push('=');
            let plain = value.bytes().all(|b| b > 0x20 && b != 0x7f && !b",;=\"\\".contains(&b));
            if plain {
                out.push_str(value);
            } else {
                out.push('"');
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let _ = x509::subject_alt_names(data);
    let _ = x509::pem_subject_alt_names(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(elements) = xfcc::parse(text) {
        let written = write(&elements);
        assert_eq!(xfcc::parse(&written), Ok(elements.clone()), "{text:?} written back as {written:?}");
        let _ = xfcc::nearest_uris(&elements);
    }
    // SANs from the input's lines (IA5: ASCII only).
    let uris: Vec<&str> = text.lines().filter(|l| l.is_ascii()).take(8).collect();
    let pem = x509::test_certificate_pem(&uris, &["dns.example"], "fuzz");
    let names = x509::pem_subject_alt_names(pem.as_bytes()).expect("a made certificate reads back");
    assert_eq!(names.uris, uris);
});
