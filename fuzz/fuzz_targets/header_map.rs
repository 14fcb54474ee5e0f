//! The proxy-wasm map encoding, both sides: the filter's in-place reader
//! (what Envoy hands Warden) and the harness's codec. Neither panics on
//! any bytes, and a map the harness encodes reads back entry for entry.

#![no_main]

#[path = "../../filter/src/header_map.rs"]
mod header_map;

use header_map::HeaderMap;
use libfuzzer_sys::fuzz_target;
use warden_harness::map::{decode_map, encode_map};

fuzz_target!(|data: &[u8]| {
    if let Some(map) = HeaderMap::parse(data.to_vec()) {
        map.for_each(&mut |_, _| {});
        let _ = map.get(":authority");
        let _ = map.any_value("x", &mut |v| v.is_empty());
    }
    let Some(decoded) = decode_map(data) else { return };
    let parsed = HeaderMap::parse(encode_map(&decoded)).expect("an encoded map reads back");
    let mut seen = Vec::new();
    parsed.for_each(&mut |n, v| seen.push((n.to_owned(), v.to_owned())));
    let expected: Vec<(String, String)> =
        decoded.iter().map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned())).collect();
    assert_eq!(seen, expected);
});
