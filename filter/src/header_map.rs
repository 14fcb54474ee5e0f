//! A header map in the proxy-wasm encoding, as `proxy_get_header_map_pairs`
//! returns it, indexed in place: the one buffer the host wrote, never
//! copied per header. Bounds-checked throughout (the SDK's `get_map`
//! panics on a status it does not expect and on non-UTF-8 names). Pure
//! code, fuzzed on its own (`fuzz/`).

/// A header map in the proxy-wasm encoding (count, then name and value
/// lengths, then each name and value followed by a NUL), indexed in place.
#[derive(Default)]
pub struct HeaderMap {
    bytes: Vec<u8>,
    entries: Vec<(std::ops::Range<usize>, HeaderValue)>,
}

/// A value: a UTF-8 slice of the buffer, or (rarely) a lossy copy.
enum HeaderValue {
    Slice(std::ops::Range<usize>),
    Lossy(String),
}

impl HeaderMap {
    /// Indexes `bytes`; `None` when they are not a well-formed map.
    pub fn parse(bytes: Vec<u8>) -> Option<HeaderMap> {
        let u32_at = |at: usize| -> Option<usize> {
            let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
            Some(u32::from_le_bytes(b) as usize)
        };
        let count = u32_at(0)?;
        let mut at = 4usize.checked_add(count.checked_mul(8)?)?;
        let mut entries = Vec::with_capacity(count.min(256));
        for i in 0..count {
            let (name_len, value_len) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
            let name = at..at.checked_add(name_len)?;
            at = name.end.checked_add(1)?;
            let value = at..at.checked_add(value_len)?;
            at = value.end.checked_add(1)?;
            let raw = bytes.get(value.clone())?;
            bytes.get(name.clone())?;
            let value = match std::str::from_utf8(raw) {
                Ok(_) => HeaderValue::Slice(value),
                Err(_) => HeaderValue::Lossy(String::from_utf8_lossy(raw).into_owned()),
            };
            entries.push((name, value));
        }
        Some(HeaderMap { bytes, entries })
    }

    /// Every entry, in order (a name that is not UTF-8 lossily).
    pub fn for_each(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name_range, value) in &self.entries {
            let raw_name = self.bytes.get(name_range.clone()).unwrap_or_default();
            // A name that is not UTF-8 is still scanned, lossily.
            let name = String::from_utf8_lossy(raw_name);
            let value = match value {
                HeaderValue::Slice(range) => {
                    self.bytes.get(range.clone()).and_then(|v| std::str::from_utf8(v).ok()).unwrap_or_default()
                }
                HeaderValue::Lossy(s) => s.as_str(),
            };
            visit(&name, value);
        }
    }

    /// Whether `pred` holds for any value of `name`, entry by entry.
    pub fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        self.entries.iter().filter(|(n, _)| self.bytes.get(n.clone()) == Some(name.as_bytes())).any(|(_, value)| {
            match value {
                HeaderValue::Slice(range) => self.bytes.get(range.clone()).and_then(|v| std::str::from_utf8(v).ok()),
                HeaderValue::Lossy(s) => Some(s.as_str()),
            }
            .is_some_and(&mut *pred)
        })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (_, value) = self.entries.iter().find(|(n, _)| self.bytes.get(n.clone()) == Some(name.as_bytes()))?;
        match value {
            HeaderValue::Slice(range) => std::str::from_utf8(self.bytes.get(range.clone())?).ok(),
            HeaderValue::Lossy(s) => Some(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderMap;

    fn parse_header_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
        let map = HeaderMap::parse(bytes.to_vec())?;
        let names: Vec<String> =
            map.entries.iter().map(|(n, _)| String::from_utf8_lossy(&bytes[n.clone()]).into_owned()).collect();
        Some(
            names
                .into_iter()
                .map(|n| {
                    let v = map.get(&n).unwrap_or_default().to_owned();
                    (n, v)
                })
                .collect(),
        )
    }

    fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend(n.as_bytes());
            out.push(0);
            out.extend(v.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn parses_the_abi_map_encoding() {
        let bytes = encode(&[(":authority", "httpbin.org"), (":path", "/get"), ("x-empty", "")]);
        let map = parse_header_map(&bytes).unwrap();
        assert_eq!(
            map,
            vec![
                (":authority".to_owned(), "httpbin.org".to_owned()),
                (":path".to_owned(), "/get".to_owned()),
                ("x-empty".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn malformed_maps_are_refused_not_panicked_on() {
        let good = encode(&[(":authority", "httpbin.org"), (":path", "/get")]);
        for len in 0..good.len() - 1 {
            let _ = parse_header_map(&good[..len]);
        }
        assert!(parse_header_map(&[0xff, 0xff, 0xff, 0xff]).is_none());
        assert_eq!(parse_header_map(&0u32.to_le_bytes()), Some(vec![]));
    }

    #[test]
    fn invalid_utf8_values_are_replaced_not_dropped() {
        let mut bytes = encode(&[("x-a", "ab")]);
        let at = bytes.len() - 3;
        bytes[at] = 0xff;
        let map = HeaderMap::parse(bytes).unwrap();
        assert_eq!(map.get("x-a"), Some("\u{fffd}b"));
        assert_eq!(map.get("x-b"), None);
    }
}
