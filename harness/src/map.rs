//! The proxy-wasm map encoding (header maps, and the pairs of
//! `proxy_get_header_map_pairs`/`proxy_set_header_map_pairs`): a count,
//! (name length, value length) per entry, then each name and value
//! followed by NUL. Pure code, fuzzed on its own (`fuzz/`).

/// The proxy-wasm map encoding: count, (name length, value length)*, then
/// each name and value followed by NUL.
pub fn encode_map(map: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size: usize = 4 + map.iter().map(|(n, v)| 8 + n.len() + v.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend((map.len() as u32).to_le_bytes());
    for (n, v) in map {
        out.extend((n.len() as u32).to_le_bytes());
        out.extend((v.len() as u32).to_le_bytes());
    }
    for (n, v) in map {
        out.extend(n.as_bytes());
        out.push(0);
        out.extend(v);
        out.push(0);
    }
    out
}

/// Decodes the map encoding; `None` if it is malformed.
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(b) as usize)
    };
    let count = u32_at(0)?;
    let mut at = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut map = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let (nl, vl) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
        let name = bytes.get(at..at.checked_add(nl)?)?;
        at = at.checked_add(nl + 1)?;
        let value = bytes.get(at..at.checked_add(vl)?)?;
        at = at.checked_add(vl + 1)?;
        map.push((String::from_utf8_lossy(name).to_ascii_lowercase(), value.to_vec()));
    }
    Some(map)
}
