//! What the DLP scanner decodes before it matches: a body's
//! `content-encoding` (gzip, deflate) is undone by an [`Inflater`], then
//! its text is unescaped by a [`TextDecoder`] according to its [`View`]
//! (JSON escapes, form url-encoding); the query string is percent-decoded
//! by [`decode_query`]. Detectors see `4111 1111 1111 1111` whether the
//! client sent it plainly, as `4111\u00201111…` in JSON or as
//! `4111+1111…` in a form.
//!
//! Both decoders stream: feed chunks as they arrive and an escape or a
//! compressed block split across two chunks is completed by the next one,
//! with a few bytes of state, never the whole body. REDACT rewrites the
//! raw text, so [`raw_offsets`] maps offsets in the decoded text back to
//! it, by the same rules the decoder applies.
//!
//! ```
//! use std::io::Write;
//! use warden_engine::dlp::decode::{
//!     decode_query, raw_offsets, Encoding, Inflater, TextDecoder, View,
//! };
//!
//! // A JSON body hiding a space behind an escape, split mid-escape.
//! let raw = br#"{"card": "4111\u00201111 1111 1111"}"#;
//! let view = View::for_body(Some("application/json; charset=utf-8"), raw);
//! assert_eq!(view, Some(View::Json));
//! let view = View::Json;
//! let mut text = TextDecoder::new(view);
//! let mut decoded = Vec::new();
//! text.feed(&raw[..18], false, &mut decoded); // ends with `\u00`
//! text.feed(&raw[18..], true, &mut decoded);
//! assert_eq!(decoded, br#"{"card": "4111 1111 1111 1111"}"#);
//!
//! // Where the card's first digit, the decoded space, the digit after it
//! // and the end of the text are in the raw body.
//! let end = decoded.len() as u64;
//! assert_eq!(raw_offsets(View::Json, raw, &[10, 14, 15, end]), [10, 14, 20, raw.len()]);
//!
//! // The query string: percent-decoded, '+' as space, with a raw offset
//! // for every decoded byte.
//! let (query, map) = decode_query(b"pan=4111%201111+1111");
//! assert_eq!(query, b"pan=4111 1111 1111");
//! assert_eq!((map[8], map[9], map[13]), (8, 11, 15));
//!
//! // A gzip body, decoded with a cap on its decoded size.
//! let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
//! gz.write_all(b"ssn=078-05-1120").unwrap();
//! let body = gz.finish().unwrap();
//! let mut inflater = Inflater::new(Encoding::from_header(Some("gzip")), 1 << 20).unwrap();
//! let mut plain = Vec::new();
//! for chunk in body.chunks(5) {
//!     inflater.feed(chunk, &mut plain).unwrap();
//! }
//! inflater.finish(&mut plain).unwrap();
//! assert_eq!(plain, b"ssn=078-05-1120");
//! ```

use super::classes;
use flate2::{Crc, Decompress, FlushDecompress, Status};

/// How a body's text is decoded before scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Scanned as sent: every byte stands for itself.
    Raw,
    /// JSON: backslash escapes are decoded wherever they appear (not only
    /// inside strings, so structure cannot hide a value).
    Json,
    /// `application/x-www-form-urlencoded`: `+` is a space and `%XX` a byte.
    Form,
}

impl View {
    /// From the request's content-type (case-insensitive, parameters
    /// ignored): `application/x-www-form-urlencoded` → `Form`; any type
    /// whose subtype is `json` or ends in `+json` → `Json`; otherwise, if
    /// the first non-whitespace byte of `first_bytes` (after a UTF-8 byte
    /// order mark, if any) is `{` or `[` → `Json` (a mislabeled JSON body
    /// is still decoded); else `Raw`.
    ///
    /// `None` when the body is unscannable, because how the upstream reads
    /// it cannot be known or its characters are not the bytes the
    /// detectors look for:
    ///
    /// - the content-type lists several media types ([`lists_types`]:
    ///   repeated `content-type` lines, which Envoy joins with `,`):
    ///   `text/plain` here, a form there, and `%41KIA…` is a key;
    /// - its charset is not one in which ASCII is ASCII
    ///   ([`ascii_charset`]: `utf-16`, `utf-7`, EBCDIC, or unknown);
    /// - the body opens with a UTF-16 or UTF-32 byte order mark, or (to be
    ///   decoded as JSON or a form) with a zero byte among its first
    ///   [`MIN_LEAD`] bytes, where a JSON reader detects UTF-16 or UTF-32
    ///   without a mark (`{\0"\0`); or, whatever its type, it reads as
    ///   JSON in UTF-16 or UTF-32 ([`opens_wide_json`]), which readers that
    ///   ignore the type and detect the encoding (Python's `json`,
    ///   Jackson) decode.
    ///
    /// `first_bytes`: at least what [`lead_undecided`] waits for.
    pub fn for_body(content_type: Option<&str>, first_bytes: &[u8]) -> Option<View> {
        if content_type.is_some_and(|t| lists_types(t) || !ascii_charset(t)) {
            return None;
        }
        if first_bytes.starts_with(b"\xFE\xFF") || first_bytes.starts_with(b"\xFF\xFE") || opens_wide_json(first_bytes) {
            return None;
        }
        let view = Self::for_one_type(content_type, first_bytes);
        if view != View::Raw && first_bytes.iter().take(MIN_LEAD).any(|&b| b == 0) {
            return None;
        }
        Some(view)
    }

    fn for_one_type(content_type: Option<&str>, first_bytes: &[u8]) -> View {
        if let Some(content_type) = content_type {
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return View::Form;
            }
            if let Some((_, subtype)) = essence.split_once('/') {
                let subtype = subtype.trim().as_bytes();
                let plus_json = subtype
                    .len()
                    .checked_sub(5)
                    .and_then(|at| subtype.get(at..))
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(b"+json"));
                if plus_json || subtype.eq_ignore_ascii_case(b"json") {
                    return View::Json;
                }
            }
        }
        let text = first_bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(first_bytes);
        match text.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
            Some(b'{' | b'[') => View::Json,
            _ => View::Raw,
        }
    }
}

/// How many of a body's first bytes [`View::for_body`] needs to see (fewer
/// only when the body is shorter): enough for a UTF-16 or UTF-32 body's
/// zero bytes.
pub const MIN_LEAD: usize = 4;

/// Whether a body's first bytes are too few to choose its [`View`]: up to
/// the first byte that is neither a blank nor zero (JSON may open with
/// blanks, in UTF-16 or UTF-32 too, before its `{`), and [`MIN_LEAD`]
/// bytes from there, so that the unit that byte is part of is whole.
pub fn lead_undecided(lead: &[u8]) -> bool {
    lead.iter()
        .position(|&b| !b.is_ascii_whitespace() && b != 0)
        .is_none_or(|first| lead.len() < first + MIN_LEAD)
}

/// Whether `bytes`, read as UTF-16 or UTF-32 in either byte order, are
/// blanks and then `{` or `[`: JSON that a reader detecting the encoding
/// from zero bytes decodes, though it holds no ASCII text a scanner of
/// bytes can see. Binary data that opens with zero bytes (a gRPC frame's
/// `00 00 00 0A`, an MP4 box) does not go on as such text.
pub fn opens_wide_json(bytes: &[u8]) -> bool {
    [(2, false), (2, true), (4, false), (4, true)].into_iter().any(|(width, big_endian)| {
        for unit in bytes.chunks_exact(width) {
            let split = if big_endian { unit.split_last() } else { unit.split_first() };
            let Some((&ascii, rest)) = split else { return false };
            if rest.iter().any(|&b| b != 0) {
                return false;
            }
            match ascii {
                b' ' | b'\t' | b'\r' | b'\n' => continue,
                b'{' | b'[' => return true,
                _ => return false,
            }
        }
        false
    })
}

/// Whether the `charset` parameters of a content-type (none: yes) name a
/// charset in which every ASCII character is its ASCII byte, so that what
/// the detectors look for is in the bytes: UTF-8, US-ASCII, the ISO 8859
/// and Windows single-byte sets, KOI8, and the East Asian multibyte sets
/// (Shift_JIS, EUC-JP, EUC-KR, GBK, GB 18030, Big5). Any other, UTF-16 and
/// UTF-32 and UTF-7 and EBCDIC among them, or a name not known here, is
/// not: the key in `A\0K\0I\0A\0…` is not `AKIA…` to a scanner of bytes.
pub fn ascii_charset(content_type: &str) -> bool {
    content_type.as_bytes().split(|&b| b == b';').skip(1).all(|param| {
        let Some(eq) = param.iter().position(|&b| b == b'=') else { return true };
        let (name, value) = param.split_at(eq);
        if !name.trim_ascii().eq_ignore_ascii_case(b"charset") {
            return true;
        }
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let value = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value).trim_ascii();
        ASCII_CHARSETS.split(|&b| b == b' ').any(|known| written(value, known))
    })
}

/// Whether `value` is `name` (lowercase) written in any case, with `_` for
/// any `-`.
fn written(value: &[u8], name: &[u8]) -> bool {
    value.len() == name.len()
        && value.iter().zip(name).all(|(&v, &n)| v.to_ascii_lowercase() == n || (v == b'_' && n == b'-'))
}

/// The charsets of [`ascii_charset`] (lowercase), one string: a list of
/// strings, or numbers parsed after a prefix, cost kilobytes of code.
static ASCII_CHARSETS: &[u8] = b"utf-8 utf8 us-ascii ascii latin1 latin-1 l1 koi8-r koi8-u shift-jis sjis windows-31j cp932 \
    euc-jp euc-kr gbk gb2312 gb18030 big5 iso-8859-1 iso-8859-2 iso-8859-3 iso-8859-4 iso-8859-5 \
    iso-8859-6 iso-8859-7 iso-8859-8 iso-8859-9 iso-8859-10 iso-8859-11 iso-8859-13 iso-8859-14 \
    iso-8859-15 iso-8859-16 iso8859-1 iso8859-2 iso8859-3 iso8859-4 iso8859-5 iso8859-6 iso8859-7 \
    iso8859-8 iso8859-9 iso8859-10 iso8859-11 iso8859-13 iso8859-14 iso8859-15 iso8859-16 \
    windows-1250 windows-1251 windows-1252 windows-1253 windows-1254 windows-1255 windows-1256 \
    windows-1257 windows-1258 cp1250 cp1251 cp1252 cp1253 cp1254 cp1255 cp1256 cp1257 cp1258";

/// Whether a content-type value is a list: a `,` outside a quoted string.
/// One media type has none (its parameters are tokens or quoted strings,
/// RFC 9110), so a comma means lines joined (`text/plain,application/json`)
/// or a value written to be read two ways.
pub fn lists_types(content_type: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for b in content_type.bytes() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return true,
            _ => {}
        }
    }
    false
}

/// The longest escape, in raw bytes: a surrogate pair `\uD83D\uDE00`.
/// Whether the bytes at some offset start an escape is always decided
/// within this many bytes, so a decoder never holds more than this minus
/// one across chunks.
const MAX_ESCAPE: usize = 12;

/// U+FFFD REPLACEMENT CHARACTER in UTF-8: what a lone surrogate decodes to.
const REPLACEMENT: [u8; 3] = [0xEF, 0xBF, 0xBD];

/// Streaming text decoder: feed raw chunks in order, get the decoded bytes
/// appended to `out`. An escape split across two chunks is completed when
/// the next chunk arrives (at most 11 raw bytes are held in between).
///
/// JSON escapes: `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t`, and `\uXXXX`
/// (hex in any case) as the code point's UTF-8; a high surrogate followed
/// by `\uDC00`–`\uDFFF` is one 4-byte character, a lone surrogate is
/// U+FFFD. Form: `+` is a space, `%XX` (any case) that byte. An invalid or
/// unfinished escape (`\x`, `\u12G4`, `%4`, one cut off by the end of the
/// stream) is kept literally; other bytes pass through.
#[derive(Debug, Clone)]
pub struct TextDecoder {
    view: View,
    /// The start of an escape the last chunk ended in the middle of.
    held: [u8; MAX_ESCAPE],
    held_len: usize,
    raw_len: u64,
    decoded_len: u64,
}

impl TextDecoder {
    /// A decoder for a body seen through `view`.
    pub fn new(view: View) -> Self {
        TextDecoder { view, held: [0; MAX_ESCAPE], held_len: 0, raw_len: 0, decoded_len: 0 }
    }

    /// Decodes the next chunk `raw`, appending to `out` everything that is
    /// decided; with `end_of_stream`, also whatever was held back (an
    /// unfinished escape, then kept literally). A feed after the end of
    /// the stream starts afresh.
    pub fn feed(&mut self, raw: &[u8], end_of_stream: bool, out: &mut Vec<u8>) {
        let before = out.len();
        let mut rest = raw;
        if self.held_len > 0 {
            // The held bytes plus enough of this chunk to decide the
            // escape they start.
            let take = rest.len().min(MAX_ESCAPE);
            let mut joint = [0u8; 2 * MAX_ESCAPE];
            let held = self.held_len;
            let total = held + take;
            for (slot, byte) in joint.iter_mut().zip(self.held.iter().take(held).chain(rest.iter().take(take))) {
                *slot = *byte;
            }
            let joint = joint.get(..total).unwrap_or_default();
            let last = end_of_stream && take == rest.len();
            let used = decode_slice(self.view, joint, 0, last, out);
            self.held_len = 0;
            if let Some(skip) = used.checked_sub(held) {
                // The held escape is decided; go on in the chunk itself.
                rest = rest.get(skip..).unwrap_or_default();
            } else {
                // Still undecided: this chunk was short and is all held.
                rest = rest.get(take..).unwrap_or_default();
                self.hold(joint.get(used..).unwrap_or_default(), out);
            }
        }
        if self.held_len == 0 {
            let used = decode_slice(self.view, rest, 0, end_of_stream, out);
            self.hold(rest.get(used..).unwrap_or_default(), out);
        }
        self.raw_len += raw.len() as u64;
        self.decoded_len += (out.len() - before) as u64;
    }

    /// Keeps `bytes`, the unfinished start of an escape, for the next feed.
    fn hold(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if bytes.len() > MAX_ESCAPE {
            // Cannot happen: an escape is decided within MAX_ESCAPE bytes.
            // Were it to, the bytes go out as they are rather than be lost.
            out.extend_from_slice(bytes);
            return;
        }
        for (slot, byte) in self.held.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        self.held_len = bytes.len();
    }

    /// Raw bytes fed so far, including the few held back while an escape
    /// is unfinished.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// Decoded bytes produced so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }
}

/// For REDACT: given the whole raw text and decoded offsets, the raw
/// offset of each, in the same order: the offset of the first raw byte
/// that produced that decoded byte (every byte of a multi-byte `\uXXXX`
/// decoding maps to its backslash). A position equal to (or beyond) the
/// decoded length maps to `raw.len()`. Agrees exactly with what
/// [`TextDecoder`] produces for the same view. Positions are expected in
/// ascending order; others are answered too, at the cost of a sort.
pub fn raw_offsets(view: View, raw: &[u8], positions: &[u64]) -> Vec<usize> {
    if !positions.is_sorted() {
        // Answered in order, then looked up (a sort of the positions
        // themselves: the filter sorts offsets this way already, and a sort
        // of indices by position would be code of its own in the filter).
        let mut sorted = positions.to_vec();
        sorted.sort_unstable();
        let found = raw_offsets(view, raw, &sorted);
        let at = |p: &u64| sorted.binary_search(p).ok().and_then(|i| found.get(i)).copied().unwrap_or(raw.len());
        return positions.iter().map(at).collect();
    }
    let mut sink = OffsetSink { positions, next: 0, decoded: 0, found: vec![raw.len(); positions.len()] };
    decode_slice(view, raw, 0, true, &mut sink);
    sink.found
}

/// The query string for scanning: percent-decoded, `+` as space; with the
/// raw offset of every decoded byte (`map.len() == decoded.len() + 1`, the
/// last entry `raw.len()`). Malformed escapes are kept literally.
pub fn decode_query(raw: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let mut sink = MapSink { decoded: Vec::with_capacity(raw.len()), map: Vec::with_capacity(raw.len() + 1) };
    decode_slice(View::Form, raw, 0, true, &mut sink);
    sink.map.push(raw.len());
    (sink.decoded, sink.map)
}

/// Where the text decoder's output goes: the decoded bytes, or where each
/// came from.
trait Sink {
    /// `bytes` pass through unchanged, the first from raw offset `at`.
    fn literal(&mut self, bytes: &[u8], at: usize);
    /// The escape at raw offset `at` decodes to `bytes`.
    fn escape(&mut self, bytes: &[u8], at: usize);
}

impl Sink for Vec<u8> {
    fn literal(&mut self, bytes: &[u8], _at: usize) {
        self.extend_from_slice(bytes);
    }

    fn escape(&mut self, bytes: &[u8], _at: usize) {
        self.extend_from_slice(bytes);
    }
}

/// Collects the decoded text and the raw offset of each decoded byte.
struct MapSink {
    decoded: Vec<u8>,
    map: Vec<usize>,
}

impl Sink for MapSink {
    fn literal(&mut self, bytes: &[u8], at: usize) {
        self.decoded.extend_from_slice(bytes);
        self.map.extend(at..at + bytes.len());
    }

    fn escape(&mut self, bytes: &[u8], at: usize) {
        self.decoded.extend_from_slice(bytes);
        self.map.extend(std::iter::repeat_n(at, bytes.len()));
    }
}

/// Answers [`raw_offsets`] as the text is decoded, without a full map.
struct OffsetSink<'a> {
    /// In ascending order.
    positions: &'a [u64],
    /// How many of `positions` are answered.
    next: usize,
    /// Decoded bytes so far.
    decoded: u64,
    found: Vec<usize>,
}

impl OffsetSink<'_> {
    /// Answers the positions among the next `len` decoded bytes, the one
    /// `k` bytes in mapping to `raw_at(k)`.
    fn advance(&mut self, len: usize, raw_at: impl Fn(usize) -> usize) {
        let end = self.decoded + len as u64;
        while let Some(&position) = self.positions.get(self.next) {
            if position >= end {
                break;
            }
            let k = usize::try_from(position.saturating_sub(self.decoded)).unwrap_or(0);
            if let Some(slot) = self.found.get_mut(self.next) {
                *slot = raw_at(k);
            }
            self.next += 1;
        }
        self.decoded = end;
    }
}

impl Sink for OffsetSink<'_> {
    fn literal(&mut self, bytes: &[u8], at: usize) {
        self.advance(bytes.len(), |k| at + k);
    }

    fn escape(&mut self, bytes: &[u8], at: usize) {
        self.advance(bytes.len(), |_| at);
    }
}

/// What the bytes at the start of a slice decode to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// They may start an escape; only more bytes can tell.
    NeedMore,
    /// The first byte stands for itself.
    Literal,
    /// The first `consumed` bytes are one escape, decoding to `bytes[..len]`.
    Escape { consumed: usize, bytes: [u8; 4], len: usize },
}

impl Token {
    /// An escape of `consumed` raw bytes decoding to `decoded` (≤ 4 bytes).
    fn escape(consumed: usize, decoded: &[u8]) -> Token {
        let mut bytes = [0u8; 4];
        for (slot, byte) in bytes.iter_mut().zip(decoded) {
            *slot = *byte;
        }
        Token::Escape { consumed, bytes, len: decoded.len().min(4) }
    }

    /// An escape of `consumed` raw bytes decoding to code point `cp`.
    fn scalar(consumed: usize, cp: u32) -> Token {
        match char::from_u32(cp) {
            Some(c) => Token::escape(consumed, c.encode_utf8(&mut [0u8; 4]).as_bytes()),
            None => Token::escape(consumed, &REPLACEMENT),
        }
    }
}

/// `token` if the stream has ended, else wait for more bytes.
fn unless_more(end_of_stream: bool, token: Token) -> Token {
    if end_of_stream {
        token
    } else {
        Token::NeedMore
    }
}

/// The bytes that may start an escape in `view` (none when raw).
fn escape_bytes(view: View) -> Option<(u8, u8)> {
    match view {
        View::Raw => None,
        View::Json => Some((b'\\', b'\\')),
        View::Form => Some((b'%', b'+')),
    }
}

/// Decodes `text` (raw offset `base` in the stream) into `sink` and
/// returns how many bytes it used: all of them, or, when not at the end of
/// the stream, all but an unfinished escape at the end (fewer than
/// [`MAX_ESCAPE`] bytes).
fn decode_slice<S: Sink>(view: View, text: &[u8], base: usize, end_of_stream: bool, sink: &mut S) -> usize {
    let mut at = 0;
    while let Some(rest) = text.get(at..).filter(|rest| !rest.is_empty()) {
        let plain = escape_bytes(view).map_or(rest.len(), |(a, b)| classes::find_either(rest, a, b));
        if plain > 0 {
            sink.literal(rest.get(..plain).unwrap_or_default(), base + at);
            at += plain;
            continue;
        }
        let token = match view {
            View::Raw => Token::Literal,
            View::Json => json_token(rest, end_of_stream),
            View::Form => form_token(rest, end_of_stream),
        };
        match token {
            Token::NeedMore => break,
            Token::Literal => {
                sink.literal(rest.get(..1).unwrap_or_default(), base + at);
                at += 1;
            }
            Token::Escape { consumed, bytes, len } => {
                sink.escape(bytes.get(..len).unwrap_or_default(), base + at);
                at += consumed;
            }
        }
    }
    at
}

/// The JSON token at the start of `s`, which starts with a backslash.
fn json_token(s: &[u8], end_of_stream: bool) -> Token {
    let Some(&c) = s.get(1) else { return unless_more(end_of_stream, Token::Literal) };
    let byte = match c {
        b'"' | b'\\' | b'/' => c,
        b'b' => 0x08,
        b'f' => 0x0C,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return json_unicode(s, end_of_stream),
        _ => return Token::Literal,
    };
    Token::escape(2, &[byte])
}

/// The token at the start of `s`, which starts with `\u`.
fn json_unicode(s: &[u8], end_of_stream: bool) -> Token {
    let unit = match hex4(s.get(2..).unwrap_or_default()) {
        Hex::Value(unit) => unit,
        Hex::Partial => return unless_more(end_of_stream, Token::Literal),
        Hex::Invalid => return Token::Literal,
    };
    let lone = Token::escape(6, &REPLACEMENT);
    match unit {
        0xD800..=0xDBFF => match s.get(6..).unwrap_or_default() {
            [] | [b'\\'] => unless_more(end_of_stream, lone),
            [b'\\', b'u', digits @ ..] => match hex4(digits) {
                Hex::Value(low @ 0xDC00..=0xDFFF) => {
                    let cp = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    Token::scalar(12, cp)
                }
                Hex::Partial => unless_more(end_of_stream, lone),
                _ => lone,
            },
            _ => lone,
        },
        0xDC00..=0xDFFF => lone,
        _ => Token::scalar(6, u32::from(unit)),
    }
}

/// The form token at the start of `s`, which starts with `%` or `+`.
fn form_token(s: &[u8], end_of_stream: bool) -> Token {
    match s {
        [b'+', ..] => Token::escape(1, b" "),
        [b'%', high, low, ..] => match (hex_digit(*high), hex_digit(*low)) {
            (Some(high), Some(low)) => Token::escape(3, &[high << 4 | low]),
            _ => Token::Literal,
        },
        [b'%', high] if hex_digit(*high).is_some() => unless_more(end_of_stream, Token::Literal),
        [b'%'] => unless_more(end_of_stream, Token::Literal),
        _ => Token::Literal,
    }
}

/// The four hex digits of a `\u` escape.
enum Hex {
    Value(u16),
    /// All there are are hex digits, but fewer than four.
    Partial,
    Invalid,
}

fn hex4(digits: &[u8]) -> Hex {
    let mut value = 0u16;
    for k in 0..4 {
        let Some(&byte) = digits.get(k) else { return Hex::Partial };
        let Some(digit) = hex_digit(byte) else { return Hex::Invalid };
        value = value << 4 | u16::from(digit);
    }
    Hex::Value(value)
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A body's content-encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not encoded: scanned as it is.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// HTTP's "deflate": zlib-wrapped (RFC 1950), or raw deflate as some
    /// clients send it.
    Deflate,
    /// Anything Warden cannot decode (br, zstd, stacked codings, …): the
    /// body is handled per the policy's `onOversize`.
    Unsupported,
}

impl Encoding {
    /// From the content-encoding header: absent, empty or `identity` →
    /// `Identity`; `gzip` or `x-gzip` → `Gzip`; `deflate` → `Deflate`
    /// (case-insensitive, surrounding whitespace ignored); anything else,
    /// including stacked codings like `gzip, br`, → `Unsupported`.
    pub fn from_header(value: Option<&str>) -> Encoding {
        let value = value.unwrap_or_default().trim();
        let is = |name: &str| value.eq_ignore_ascii_case(name);
        if value.is_empty() || is("identity") {
            Encoding::Identity
        } else if is("gzip") || is("x-gzip") {
            Encoding::Gzip
        } else if is("deflate") {
            Encoding::Deflate
        } else {
            Encoding::Unsupported
        }
    }
}

/// Why an [`Inflater`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Not valid gzip / zlib / deflate data, or cut off before its end.
    Corrupt,
    /// The decoded body would be larger than the limit.
    TooLarge,
}

/// Decoded bytes produced per decompression step: the most the inflater
/// holds besides what it appends to the caller's buffer.
const STEP: usize = 16 * 1024;

/// Streaming decompressor for gzip or deflate with a cap on the output
/// (decompression bombs): it works in fixed 16 KiB output steps and stops
/// as soon as the cap is hit.
///
/// gzip: the header's optional fields are skipped (the header CRC is not
/// checked), each member's CRC-32 and size are checked, and a body of
/// several members is decoded whole, as `gzip -d` does; bytes after a
/// member that do not start another one are [`InflateError::Corrupt`].
/// deflate: a zlib header (CM 8, window ≤ 32 KiB, `(CMF·256 + FLG) % 31 ==
/// 0`) selects zlib, whose Adler-32 is checked; anything else is taken as
/// raw deflate (a raw stream whose first two bytes happen to pass that
/// check, a stored block of a particular length, is misread as zlib and
/// reported corrupt). Bytes after the end of a deflate stream are corrupt.
/// An empty body decodes to nothing.
#[derive(Debug)]
pub struct Inflater {
    gzip: bool,
    stage: Stage,
    inflate: Decompress,
    /// The current gzip member's CRC-32 and size.
    crc: Crc,
    limit: u64,
    produced: u64,
    /// Whether any compressed byte has arrived.
    started: bool,
}

/// Where an [`Inflater`] is in its stream.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// In a gzip member's header.
    Header(GzipHeader),
    /// deflate: waiting for the first two bytes, to tell zlib from raw.
    Sniff { first: Option<u8> },
    /// In the compressed data.
    Body,
    /// In a gzip member's trailer (CRC-32 and size).
    Trailer { bytes: [u8; 8], len: usize },
    /// gzip: after a member; more bytes start another.
    MemberEnd,
    /// deflate: after the end of the stream.
    End,
    /// Stopped; every later call answers this.
    Failed(InflateError),
}

impl Inflater {
    /// `None` for `Identity` and `Unsupported`. `limit` is the most decoded
    /// bytes it will ever produce in total.
    pub fn new(encoding: Encoding, limit: u64) -> Option<Inflater> {
        let stage = match encoding {
            Encoding::Gzip => Stage::Header(GzipHeader::new()),
            Encoding::Deflate => Stage::Sniff { first: None },
            Encoding::Identity | Encoding::Unsupported => return None,
        };
        Some(Inflater {
            gzip: encoding == Encoding::Gzip,
            stage,
            inflate: Decompress::new(false),
            crc: Crc::new(),
            limit,
            produced: 0,
            started: false,
        })
    }

    /// Decompresses `compressed` (the next chunk), appending to `out`.
    /// `Err(TooLarge)` once the total output would exceed the limit (`out`
    /// then holds the output up to the limit), `Err(Corrupt)` on invalid
    /// data; after an error every call returns it again.
    pub fn feed(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
        if let Stage::Failed(error) = self.stage {
            return Err(error);
        }
        self.started |= !compressed.is_empty();
        let result = self.run(compressed, out);
        self.fail_on(result)
    }

    /// Call at the end of the stream: `Err(Corrupt)` if the compressed
    /// stream was truncated.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), InflateError> {
        let result = match self.stage {
            Stage::Failed(error) => Err(error),
            Stage::MemberEnd | Stage::End => Ok(()),
            _ if !self.started => Ok(()),
            // The decompressor may still hold the end of a raw deflate
            // stream; a gzip member would still need its trailer.
            Stage::Body => match self.inflate_some(&[], out) {
                Err(error) => Err(error),
                Ok(_) if matches!(self.stage, Stage::End) => Ok(()),
                Ok(_) => Err(InflateError::Corrupt),
            },
            _ => Err(InflateError::Corrupt),
        };
        self.fail_on(result)
    }

    /// Remembers an error so later calls answer it.
    fn fail_on(&mut self, result: Result<(), InflateError>) -> Result<(), InflateError> {
        if let Err(error) = result {
            self.stage = Stage::Failed(error);
        }
        result
    }

    /// Runs `input` through the stages.
    fn run(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
        while let Some((&byte, after)) = input.split_first() {
            match self.stage {
                Stage::Failed(error) => return Err(error),
                Stage::Header(mut header) => {
                    let (used, done) = header.parse(input)?;
                    input = input.get(used..).unwrap_or_default();
                    self.stage = if done { Stage::Body } else { Stage::Header(header) };
                }
                Stage::Sniff { first: None } => {
                    self.stage = Stage::Sniff { first: Some(byte) };
                    input = after;
                }
                Stage::Sniff { first: Some(cmf) } => {
                    self.inflate.reset(is_zlib_header(cmf, byte));
                    self.stage = Stage::Body;
                    if self.inflate_some(&[cmf], out)? != 1 {
                        return Err(InflateError::Corrupt);
                    }
                }
                Stage::Body => {
                    let used = self.inflate_some(input, out)?;
                    if used == 0 && matches!(self.stage, Stage::Body) {
                        // The decompressor took nothing though it had room.
                        return Err(InflateError::Corrupt);
                    }
                    input = input.get(used..).unwrap_or_default();
                }
                Stage::Trailer { mut bytes, len } => {
                    let take = bytes.len().saturating_sub(len).min(input.len());
                    for (slot, b) in bytes.iter_mut().skip(len).zip(input.iter().take(take)) {
                        *slot = *b;
                    }
                    input = input.get(take..).unwrap_or_default();
                    let len = len + take;
                    self.stage = Stage::Trailer { bytes, len };
                    if len == bytes.len() {
                        let [c0, c1, c2, c3, s0, s1, s2, s3] = bytes;
                        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
                        let size = u32::from_le_bytes([s0, s1, s2, s3]);
                        if crc != self.crc.sum() || size != self.crc.amount() {
                            return Err(InflateError::Corrupt);
                        }
                        self.stage = Stage::MemberEnd;
                    }
                }
                Stage::MemberEnd => {
                    self.inflate.reset(false);
                    self.crc.reset();
                    self.stage = Stage::Header(GzipHeader::new());
                }
                Stage::End => return Err(InflateError::Corrupt),
            }
        }
        Ok(())
    }

    /// Inflates from `input` in fixed-size output steps until it is used
    /// up or the compressed stream ends, appending to `out`; returns how
    /// many input bytes it used.
    fn inflate_some(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, InflateError> {
        let mut step = [0u8; STEP];
        let mut used = 0usize;
        loop {
            let left = self.limit.saturating_sub(self.produced);
            // One byte more than the limit allows, to see whether there is more.
            let room = usize::try_from(left.saturating_add(1)).map_or(STEP, |room| room.min(STEP));
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(
                    input.get(used..).unwrap_or_default(),
                    step.get_mut(..room).unwrap_or_default(),
                    FlushDecompress::None,
                )
                .map_err(|_| InflateError::Corrupt)?;
            let took = usize::try_from(self.inflate.total_in().wrapping_sub(in_before)).unwrap_or(usize::MAX);
            let made = usize::try_from(self.inflate.total_out().wrapping_sub(out_before)).unwrap_or(usize::MAX);
            used = used.saturating_add(took).min(input.len());
            let fresh = step.get(..made).unwrap_or_default();
            if made as u64 > left {
                let allowed = usize::try_from(left).unwrap_or(0);
                out.extend_from_slice(fresh.get(..allowed).unwrap_or_default());
                self.produced = self.limit;
                return Err(InflateError::TooLarge);
            }
            out.extend_from_slice(fresh);
            if self.gzip {
                self.crc.update(fresh);
            }
            self.produced += made as u64;
            if status == Status::StreamEnd {
                self.stage = if self.gzip { Stage::Trailer { bytes: [0; 8], len: 0 } } else { Stage::End };
                return Ok(used);
            }
            if (took == 0 && made == 0) || (used == input.len() && made < room) {
                return Ok(used);
            }
        }
    }
}

/// Whether `cmf`, `flg` start a zlib stream (RFC 1950): deflate with a
/// window of at most 32 KiB and a valid header check.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0F == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// gzip header flags (RFC 1952 §2.3.1).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xE0;

/// Skips a gzip member's header as it streams in.
#[derive(Debug, Clone, Copy)]
struct GzipHeader {
    part: HeaderPart,
    /// The optional fields still to come.
    flags: u8,
}

/// The part of a gzip header being read.
#[derive(Debug, Clone, Copy)]
enum HeaderPart {
    /// The fixed 10 bytes: ID1 ID2 CM FLG MTIME(4) XFL OS; this many seen.
    Fixed(u8),
    /// FEXTRA's 2-byte length; its low byte once seen.
    ExtraLen(Option<u8>),
    /// FEXTRA's data; this many bytes left.
    Extra(u16),
    /// FNAME, up to its zero byte.
    Name,
    /// FCOMMENT, up to its zero byte.
    Comment,
    /// FHCRC; this many bytes left.
    HeaderCrc(u8),
}

impl GzipHeader {
    fn new() -> Self {
        GzipHeader { part: HeaderPart::Fixed(0), flags: 0 }
    }

    /// Reads header bytes from `input`: how many it used and whether the
    /// header is complete.
    fn parse(&mut self, input: &[u8]) -> Result<(usize, bool), InflateError> {
        for (at, &byte) in input.iter().enumerate() {
            let field_done = match self.part {
                HeaderPart::Fixed(seen) => {
                    let valid = match seen {
                        0 => byte == 0x1F,
                        1 => byte == 0x8B,
                        2 => byte == 8,
                        3 => byte & FRESERVED == 0,
                        _ => true,
                    };
                    if !valid {
                        return Err(InflateError::Corrupt);
                    }
                    if seen == 3 {
                        self.flags = byte;
                    }
                    self.part = HeaderPart::Fixed(seen + 1);
                    seen + 1 == 10
                }
                HeaderPart::ExtraLen(None) => {
                    self.part = HeaderPart::ExtraLen(Some(byte));
                    false
                }
                HeaderPart::ExtraLen(Some(low)) => {
                    let len = u16::from_le_bytes([low, byte]);
                    self.part = HeaderPart::Extra(len);
                    len == 0
                }
                HeaderPart::Extra(left) => {
                    let left = left.saturating_sub(1);
                    self.part = HeaderPart::Extra(left);
                    left == 0
                }
                HeaderPart::Name | HeaderPart::Comment => byte == 0,
                HeaderPart::HeaderCrc(left) => {
                    let left = left.saturating_sub(1);
                    self.part = HeaderPart::HeaderCrc(left);
                    left == 0
                }
            };
            if field_done && self.next_field() {
                return Ok((at + 1, true));
            }
        }
        Ok((input.len(), false))
    }

    /// Moves on to the next optional field; true when there is none left.
    fn next_field(&mut self) -> bool {
        let (flag, part) = if self.flags & FEXTRA != 0 {
            (FEXTRA, HeaderPart::ExtraLen(None))
        } else if self.flags & FNAME != 0 {
            (FNAME, HeaderPart::Name)
        } else if self.flags & FCOMMENT != 0 {
            (FCOMMENT, HeaderPart::Comment)
        } else if self.flags & FHCRC != 0 {
            (FHCRC, HeaderPart::HeaderCrc(2))
        } else {
            return true;
        };
        self.flags &= !flag;
        self.part = part;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::{Compression, GzBuilder};
    use std::io::Write;

    fn decode(view: View, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        TextDecoder::new(view).feed(raw, true, &mut out);
        out
    }

    fn json(raw: &str) -> Vec<u8> {
        decode(View::Json, raw.as_bytes())
    }

    #[test]
    fn json_simple_escapes() {
        assert_eq!(json(r#"\"\\\/\b\f\n\r\t"#), b"\"\\/\x08\x0C\n\r\t");
        assert_eq!(json(r#"{"a":"x\ty"}"#), b"{\"a\":\"x\ty\"}");
        // Decoded outside strings too.
        assert_eq!(json(r#"{\u0022k\u0022: 1}"#), br#"{"k": 1}"#);
    }

    #[test]
    fn json_unicode_escapes() {
        assert_eq!(json(r"\u0041\u00e9\u20AC\u00C9"), "Aé€É".as_bytes());
        assert_eq!(json(r"\u0000"), b"\0");
        assert_eq!(json(r"4111\u00201111"), b"4111 1111");
        assert_eq!(json(r"\uFFFF"), "\u{FFFF}".as_bytes());
    }

    #[test]
    fn json_surrogates() {
        assert_eq!(json(r"\uD83D\uDE00"), "😀".as_bytes());
        assert_eq!(json(r"\ud83d\ude00!"), "😀!".as_bytes());
        assert_eq!(json(r"\uDBFF\uDFFF"), "\u{10FFFF}".as_bytes());
        // Lone surrogates.
        assert_eq!(json(r"\uD83Dx"), "\u{FFFD}x".as_bytes());
        assert_eq!(json(r"\uD83D"), "\u{FFFD}".as_bytes());
        assert_eq!(json(r"\uDE00"), "\u{FFFD}".as_bytes());
        assert_eq!(json(r"\uDE00\uD83D"), "\u{FFFD}\u{FFFD}".as_bytes());
        assert_eq!(json(r"\uD83D\uD83D\uDE00"), "\u{FFFD}😀".as_bytes());
        assert_eq!(json(r"\uD83D\u0041"), "\u{FFFD}A".as_bytes());
        assert_eq!(json(r"\uD83D\n"), "\u{FFFD}\n".as_bytes());
        assert_eq!(json(r"\uD83D\"), "\u{FFFD}\\".as_bytes());
        assert_eq!(json(r"\uD83D\u"), "\u{FFFD}\\u".as_bytes());
        assert_eq!(json(r"\uD83D\uDE"), "\u{FFFD}\\uDE".as_bytes());
        assert_eq!(json(r"\uD83D\uDEZZ"), "\u{FFFD}\\uDEZZ".as_bytes());
    }

    #[test]
    fn json_invalid_escapes_are_kept() {
        assert_eq!(json(r"\x"), br"\x");
        assert_eq!(json(r"\u12G4"), br"\u12G4");
        assert_eq!(json(r"\u12"), br"\u12");
        assert_eq!(json(r"\u"), br"\u");
        assert_eq!(json("\\"), b"\\");
        assert_eq!(json(r"a\"), br"a\");
        assert_eq!(json(r"\u12\n"), b"\\u12\n");
        assert_eq!(json(r"\x\\"), b"\\x\\");
        assert_eq!(json(r"\U0041"), br"\U0041");
        assert_eq!(json(r"\u-041"), br"\u-041");
    }

    #[test]
    fn form_decoding() {
        let form = |raw: &str| decode(View::Form, raw.as_bytes());
        assert_eq!(form("a+b%20c%2Fd%2f"), b"a b c/d/");
        assert_eq!(form("%zz%4"), b"%zz%4");
        assert_eq!(form("%"), b"%");
        assert_eq!(form("%%41"), b"%A");
        assert_eq!(form("%4G"), b"%4G");
        assert_eq!(form("%00%ff%FF"), b"\0\xff\xff");
        // JSON escapes mean nothing in a form, and the reverse.
        assert_eq!(form(r"\u0041"), br"\u0041");
        assert_eq!(json("a+b%20"), b"a+b%20");
    }

    #[test]
    fn raw_passes_bytes_through() {
        let raw = b"a+b%20\\u0041\\n\xff";
        assert_eq!(decode(View::Raw, raw), raw);
        assert_eq!(raw_offsets(View::Raw, raw, &[0, 5, 13, 99]), [0, 5, 13, raw.len()]);
    }

    /// Inputs with every kind of escape, valid and not, at every position.
    const JSON_CASES: &[&str] = &[
        r#"{"card": "4111\u00201111 1111 1111", "k": "a\"b\\c\/d\n"}"#,
        r"\uD83D\uDE00\uD83Dx\uDE00\uD83D\uD83D\uDE00\u12G4\x\u12\n",
        r"\uD83D\u0041\uD83D\n\ud83d\ude00 \u00e9\u20ac",
        r"\\\\\\u0041\\\u0041",
        r"\uD83D",
        r"\uD83D\u",
        r"\uD83D\uDE0",
        r"abc\",
        r"\u00",
    ];

    const FORM_CASES: &[&str] =
        &["a+b%20c%2Fd%2f%zz%4", "%%41%4G+%", "%41", "%4", "card=4111+1111%201111%2B1111&x=%E2%82%AC"];

    fn all_cases() -> Vec<(View, &'static [u8])> {
        let mut cases: Vec<(View, &[u8])> = Vec::new();
        cases.extend(JSON_CASES.iter().map(|c| (View::Json, c.as_bytes())));
        cases.extend(FORM_CASES.iter().map(|c| (View::Form, c.as_bytes())));
        cases.extend(JSON_CASES.iter().chain(FORM_CASES).map(|c| (View::Raw, c.as_bytes())));
        cases
    }

    fn feed_chunks(view: View, chunks: &[&[u8]]) -> (Vec<u8>, TextDecoder) {
        let mut decoder = TextDecoder::new(view);
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            decoder.feed(chunk, i + 1 == chunks.len(), &mut out);
        }
        (out, decoder)
    }

    #[test]
    fn every_chunk_split_decodes_the_same() {
        for (view, raw) in all_cases() {
            let whole = decode(view, raw);
            // Byte by byte.
            let bytes: Vec<&[u8]> = raw.chunks(1).collect();
            assert_eq!(feed_chunks(view, &bytes).0, whole, "{view:?} byte by byte: {}", String::from_utf8_lossy(raw));
            // Then an empty final feed.
            let (out, _) = feed_chunks(view, &[raw, b""]);
            assert_eq!(out, whole);
            // Every split point, and every pair of split points.
            for i in 0..=raw.len() {
                let (a, b) = raw.split_at(i);
                assert_eq!(feed_chunks(view, &[a, b]).0, whole, "{view:?} split at {i}");
                for j in i..=raw.len() {
                    let chunks = [&raw[..i], &raw[i..j], &raw[j..]];
                    assert_eq!(feed_chunks(view, &chunks).0, whole, "{view:?} split at {i}, {j}");
                }
            }
        }
    }

    #[test]
    fn held_bytes_are_few_and_lengths_are_counted() {
        for (view, raw) in all_cases() {
            let mut decoder = TextDecoder::new(view);
            let mut out = Vec::new();
            for (i, byte) in raw.iter().enumerate() {
                decoder.feed(std::slice::from_ref(byte), false, &mut out);
                assert_eq!(decoder.raw_len(), i as u64 + 1);
                assert_eq!(decoder.decoded_len(), out.len() as u64);
                assert!(decoder.held_len < MAX_ESCAPE);
            }
            decoder.feed(b"", true, &mut out);
            assert_eq!(decoder.held_len, 0);
            assert_eq!(decoder.raw_len(), raw.len() as u64);
            assert_eq!(decoder.decoded_len(), out.len() as u64);
            assert_eq!(out, decode(view, raw));
        }
    }

    #[test]
    fn raw_offsets_agree_with_the_decoder() {
        for (view, raw) in all_cases() {
            let decoded = decode(view, raw);
            let positions: Vec<u64> = (0..=decoded.len() as u64).collect();
            let offsets = raw_offsets(view, raw, &positions);
            assert_eq!(offsets.len(), positions.len());
            assert_eq!(offsets.last(), Some(&raw.len()));
            assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{view:?} offsets not monotonic");
            for (p, &r) in offsets.iter().enumerate() {
                // Decoding the raw text before a decoded byte's origin gives
                // exactly the decoded bytes before the first one from there.
                let first_from_r = offsets.iter().position(|&o| o == r).unwrap();
                let prefix = decode(view, &raw[..r]);
                assert_eq!(prefix, &decoded[..first_from_r], "{view:?} {} at {p}", String::from_utf8_lossy(raw));
                // And the origin starts the bytes at `p`: decoding from it
                // reproduces them.
                if p < decoded.len() {
                    let from = decode(view, &raw[r..]);
                    assert_eq!(from, &decoded[first_from_r..], "{view:?} from raw {r}");
                }
            }
            // The query map is the same mapping for a form.
            if view == View::Form {
                let (query, map) = decode_query(raw);
                assert_eq!(query, decoded);
                assert_eq!(map, offsets);
            }
            // Unsorted and out-of-range positions.
            let n = decoded.len() as u64;
            let asked = [n + 5, n, 0, n / 2];
            let expected: Vec<usize> =
                asked.iter().map(|&p| if p >= n { raw.len() } else { offsets[p as usize] }).collect();
            assert_eq!(raw_offsets(view, raw, &asked), expected);
        }
    }

    #[test]
    fn raw_offsets_examples() {
        let raw = br#"a\u00e9\uD83D\uDE00\nb"#;
        assert_eq!(decode(View::Json, raw), "aé😀\nb".as_bytes());
        // a | é é | 😀 ×4 | \n | b | end
        let all: Vec<u64> = (0..=10).collect();
        assert_eq!(raw_offsets(View::Json, raw, &all), [0, 1, 1, 7, 7, 7, 7, 19, 21, 22, 22]);
        assert_eq!(raw_offsets(View::Json, raw, &[]), Vec::<usize>::new());
    }

    #[test]
    fn query_decoding() {
        let (decoded, map) = decode_query(b"q=a+b%20c&x=%zz%4");
        assert_eq!(decoded, b"q=a b c&x=%zz%4");
        assert_eq!(map, [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
        assert_eq!(decode_query(b""), (Vec::new(), vec![0]));
        assert_eq!(decode_query(b"%41"), (b"A".to_vec(), vec![0, 3]));
        assert_eq!(decode_query(b"%"), (b"%".to_vec(), vec![0, 1]));
    }

    #[test]
    fn view_from_content_type() {
        let v = |t, b| View::for_body(t, b).expect("one media type");
        assert_eq!(v(Some("application/x-www-form-urlencoded"), b"{"), View::Form);
        assert_eq!(v(Some("Application/X-WWW-Form-URLEncoded; charset=UTF-8"), b""), View::Form);
        assert_eq!(v(Some("application/json"), b""), View::Json);
        assert_eq!(v(Some("APPLICATION/JSON;charset=utf-8"), b"x"), View::Json);
        assert_eq!(v(Some("text/json"), b""), View::Json);
        assert_eq!(v(Some("application/vnd.api+json"), b""), View::Json);
        assert_eq!(v(Some("application/problem+JSON ; q=1"), b""), View::Json);
        assert_eq!(v(Some("application/jsonp"), b""), View::Raw);
        assert_eq!(v(Some("text/plain"), b"hello"), View::Raw);
        assert_eq!(v(Some("text/plain"), b" \r\n\t{\"a\":1}"), View::Json);
        assert_eq!(v(None, b"[1]"), View::Json);
        assert_eq!(v(None, b"\xEF\xBB\xBF {}"), View::Json);
        assert_eq!(v(None, b""), View::Raw);
        assert_eq!(v(None, b"a=1"), View::Raw);
        assert_eq!(v(Some("multipart/form-data; boundary=x"), b"--x"), View::Raw);
        assert_eq!(v(Some(""), b"{"), View::Json);
        assert_eq!(v(Some("multipart/form-data; boundary=\"a,b\""), b"--a,b"), View::Raw);
        assert_eq!(v(Some("text/plain; x=\"a\\\",b\""), b"{"), View::Json);
    }

    /// Text whose ASCII is not ASCII bytes (a charset, a byte order mark,
    /// a JSON reader's guess from zero bytes) cannot be scanned as bytes.
    #[test]
    fn text_that_is_not_ascii_bytes_has_no_view() {
        for charset in ["utf-16", "UTF-16LE", "\"utf-16be\"", "utf-32", "UCS-2", "utf-7", "IBM037", "cp500", "x-unknown", ""] {
            let t = format!("application/json; charset={charset}");
            assert!(!ascii_charset(&t), "{t}");
            assert_eq!(View::for_body(Some(&t), b"{}"), None, "{t}");
        }
        for charset in ["utf-8", "UTF-8", " \"utf-8\" ", "us-ascii", "ISO-8859-1", "iso_8859-15", "windows-1252", "Shift_JIS", "gb18030"] {
            let t = format!("text/plain; format=flowed; charset={charset}");
            assert!(ascii_charset(&t), "{t}");
            assert_eq!(View::for_body(Some(&t), b"{}"), Some(View::Json), "{t}");
        }
        assert!(!ascii_charset("text/plain; charset=utf-8; charset=utf-16"));
        assert!(ascii_charset("text/plain; charset"));
        for bom in [&b"\xFF\xFE{\0"[..], b"\xFE\xFF\0{", b"\xFF\xFE\0\0{\0\0\0", b"\xFF\xFEhello"] {
            assert_eq!(View::for_body(None, bom), None, "{bom:?}");
            assert_eq!(View::for_body(Some("text/plain"), bom), None, "{bom:?}");
        }
        // UTF-16 and UTF-32 without a mark, to be read as JSON or a form.
        for wide in [&b"{\0\"\0"[..], b" \0{\0", b"{\0\0\0", b"\0\0\0{"] {
            assert_eq!(View::for_body(Some("application/json"), wide), None, "{wide:?}");
            assert_eq!(View::for_body(Some("application/x-www-form-urlencoded"), wide), None, "{wide:?}");
        }
        assert_eq!(View::for_body(None, b"{\0\"\0"), None);
        // JSON in UTF-16 or UTF-32 whatever the label, blanks first or not.
        for wide in [
            &b" \0 \0{\0\"\0"[..],
            b"\0{\0\"",
            b"\0 \0\n\0[\0\"",
            b"\n\0\0\0[\0\0\0",
            b"\0\0\0 \0\0\0{",
        ] {
            assert!(opens_wide_json(wide), "{wide:?}");
            assert_eq!(View::for_body(Some("text/plain"), wide), None, "{wide:?}");
            assert_eq!(View::for_body(None, wide), None, "{wide:?}");
        }
        // Binary data with zero bytes, and wide text that is not JSON.
        for binary in [
            &b"\0\0\0\n\x08\x01\x12\x03"[..],
            b"\0\0\0\0 \x08",
            b"\0\0\0\x18ftypmp42",
            b"\n\0\x12\x03abc",
            b"\x1f\x8b\x08\0\0\0",
            b"\x89PNG\r\n\x1a\n",
            b"H\0e\0l\0l\0",
            b" \0 \0",
        ] {
            assert!(!opens_wide_json(binary), "{binary:?}");
            assert_eq!(View::for_body(Some("application/octet-stream"), binary), Some(View::Raw), "{binary:?}");
        }
        assert!(lead_undecided(b"{\0\""));
        assert!(lead_undecided(b" \0 \0\r\0\n\0"));
        assert!(lead_undecided(b" \0{\0\""));
        assert!(!lead_undecided(b" \0{\0\"\0"));
        assert!(!lead_undecided(b"{\"a\""));
        // Binary bodies have zero bytes: scanned as they are.
        assert_eq!(View::for_body(Some("application/octet-stream"), b"\0\0\x01\0"), Some(View::Raw));
        assert_eq!(View::for_body(Some("application/json"), b"{\"a\":\0}"), Some(View::Json));
    }

    /// Repeated content-type lines, as Envoy joins them, or a list in one:
    /// the upstream may read the body by any of them.
    #[test]
    fn a_content_type_that_lists_types_has_no_view() {
        for listed in [
            "text/plain,application/x-www-form-urlencoded",
            "text/plain, application/json",
            "application/json,",
            ",application/json",
            "text/plain; charset=utf-8,application/x-www-form-urlencoded",
            "text/plain; x=\"a\",application/json",
            "text/plain; x=\"a\\\"\",application/json",
        ] {
            assert!(lists_types(listed), "{listed}");
            assert_eq!(View::for_body(Some(listed), b"{}"), None, "{listed}");
        }
        for one in ["application/json", "multipart/form-data; boundary=\"a,b\"", "text/plain; x=\"a\\\",\"", ""] {
            assert!(!lists_types(one), "{one}");
        }
    }

    #[test]
    fn encoding_from_header() {
        let e = |v| Encoding::from_header(v);
        assert_eq!(e(None), Encoding::Identity);
        assert_eq!(e(Some("")), Encoding::Identity);
        assert_eq!(e(Some("  ")), Encoding::Identity);
        assert_eq!(e(Some("Identity")), Encoding::Identity);
        assert_eq!(e(Some("gzip")), Encoding::Gzip);
        assert_eq!(e(Some(" GZIP ")), Encoding::Gzip);
        assert_eq!(e(Some("x-gzip")), Encoding::Gzip);
        assert_eq!(e(Some("deflate")), Encoding::Deflate);
        assert_eq!(e(Some("Deflate\t")), Encoding::Deflate);
        assert_eq!(e(Some("br")), Encoding::Unsupported);
        assert_eq!(e(Some("zstd")), Encoding::Unsupported);
        assert_eq!(e(Some("gzip, br")), Encoding::Unsupported);
        assert_eq!(e(Some("gzip,gzip")), Encoding::Unsupported);
        assert_eq!(e(Some("compress")), Encoding::Unsupported);
        assert!(Inflater::new(Encoding::Identity, 10).is_none());
        assert!(Inflater::new(Encoding::Unsupported, 10).is_none());
    }

    /// About 100 KiB of text that compresses, but not to nothing.
    fn sample() -> Vec<u8> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut text = Vec::new();
        while text.len() < 100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let word = ["card", "4111 1111 1111 1111", "ssn", "078-05-1120", "x", "{\"a\":", "}\n"];
            text.extend_from_slice(word[(state % word.len() as u64) as usize].as_bytes());
            text.push(b'a' + (state >> 32) as u8 % 26);
        }
        text
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn inflate(encoding: Encoding, compressed: &[u8], chunk: usize, limit: u64) -> (Vec<u8>, Result<(), InflateError>) {
        let mut inflater = Inflater::new(encoding, limit).unwrap();
        let mut out = Vec::new();
        for piece in compressed.chunks(chunk) {
            if let Err(e) = inflater.feed(piece, &mut out) {
                return (out, Err(e));
            }
        }
        let result = inflater.finish(&mut out);
        (out, result)
    }

    #[test]
    fn round_trips_in_small_chunks() {
        let data = sample();
        let bodies =
            [(Encoding::Gzip, gzip(&data)), (Encoding::Deflate, zlib(&data)), (Encoding::Deflate, raw_deflate(&data))];
        for (encoding, body) in &bodies {
            for chunk in [1, 7, 4096, body.len()] {
                let (out, result) = inflate(*encoding, body, chunk, 1 << 20);
                assert_eq!(result, Ok(()), "{encoding:?} in chunks of {chunk}");
                assert!(out == data, "{encoding:?} in chunks of {chunk}: wrong output");
            }
        }
        // Empty payloads, and an empty body.
        for (encoding, body) in
            [(Encoding::Gzip, gzip(b"")), (Encoding::Deflate, zlib(b"")), (Encoding::Deflate, raw_deflate(b""))]
        {
            assert_eq!(inflate(encoding, &body, 1, 10), (Vec::new(), Ok(())), "{encoding:?} {body:?}");
            assert_eq!(inflate(encoding, b"", 1, 10), (Vec::new(), Ok(())));
        }
    }

    #[test]
    fn gzip_header_fields_and_members() {
        let mut e = GzBuilder::new()
            .filename("card.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4, 5])
            .write(Vec::new(), Compression::default());
        e.write_all(b"4111 1111 1111 1111").unwrap();
        let fields = e.finish().unwrap();
        assert_eq!(inflate(Encoding::Gzip, &fields, 1, 100), (b"4111 1111 1111 1111".to_vec(), Ok(())));

        // FHCRC: two more header bytes (not checked).
        let plain = gzip(b"hello");
        let mut with_hcrc = plain[..10].to_vec();
        with_hcrc[3] |= FHCRC;
        with_hcrc.extend_from_slice(&[0xAB, 0xCD]);
        with_hcrc.extend_from_slice(&plain[10..]);
        assert_eq!(inflate(Encoding::Gzip, &with_hcrc, 1, 100), (b"hello".to_vec(), Ok(())));

        // Several members are decoded whole.
        let mut members = gzip(b"first ");
        members.extend(gzip(b"second ")); // the card is in here
        members.extend(fields);
        for chunk in [1, 7, 4096] {
            assert_eq!(
                inflate(Encoding::Gzip, &members, chunk, 100),
                (b"first second 4111 1111 1111 1111".to_vec(), Ok(()))
            );
        }
        // The limit counts all members.
        assert_eq!(inflate(Encoding::Gzip, &members, 7, 10), (b"first seco".to_vec(), Err(InflateError::TooLarge)));
    }

    #[test]
    fn a_bomb_is_stopped_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        const LIMIT: u64 = 1 << 20;
        for (encoding, body) in [
            (Encoding::Gzip, gzip(&zeros)),
            (Encoding::Deflate, zlib(&zeros)),
            (Encoding::Deflate, raw_deflate(&zeros)),
        ] {
            assert!(body.len() < 20_000);
            for chunk in [7, 4096, body.len()] {
                let mut inflater = Inflater::new(encoding, LIMIT).unwrap();
                let mut out = Vec::new();
                let mut result = Ok(());
                for piece in body.chunks(chunk) {
                    let before = out.len();
                    result = inflater.feed(piece, &mut out);
                    // Capacity grows with what is appended, not with the bomb.
                    assert!(out.capacity() <= 2 * LIMIT as usize + STEP, "{}", out.capacity() - before);
                    if result.is_err() {
                        break;
                    }
                }
                assert_eq!(result, Err(InflateError::TooLarge), "{encoding:?} in chunks of {chunk}");
                assert_eq!(out.len() as u64, LIMIT);
                assert!(out.iter().all(|&b| b == 0));
                // It stays stopped.
                assert_eq!(inflater.feed(b"more", &mut out), Err(InflateError::TooLarge));
                assert_eq!(inflater.finish(&mut out), Err(InflateError::TooLarge));
                assert_eq!(out.len() as u64, LIMIT);
            }
        }
        // Exactly at the limit is fine; one byte over is not.
        let data = sample();
        let n = data.len() as u64;
        assert_eq!(inflate(Encoding::Gzip, &gzip(&data), 4096, n).1, Ok(()));
        let (out, result) = inflate(Encoding::Deflate, &zlib(&data), 4096, n - 1);
        assert_eq!(result, Err(InflateError::TooLarge));
        assert_eq!(out, &data[..data.len() - 1]);
        assert_eq!(inflate(Encoding::Gzip, &gzip(b"x"), 1, 0), (Vec::new(), Err(InflateError::TooLarge)));
    }

    #[test]
    fn corrupt_and_truncated_streams() {
        let garbage = b"this is not compressed at all, not even a little";
        for encoding in [Encoding::Gzip, Encoding::Deflate] {
            assert_eq!(inflate(encoding, garbage, 7, 1 << 20).1, Err(InflateError::Corrupt), "{encoding:?}");
        }
        let data = sample();
        for (encoding, body) in
            [(Encoding::Gzip, gzip(&data)), (Encoding::Deflate, zlib(&data)), (Encoding::Deflate, raw_deflate(&data))]
        {
            // Cut anywhere, from one byte in to one byte short of the end:
            // an error at finish at the latest.
            for cut in [1, 2, 5, 10, 11, body.len() / 2, body.len() - 8, body.len() - 4, body.len() - 1] {
                let mut inflater = Inflater::new(encoding, 1 << 20).unwrap();
                let mut out = Vec::new();
                let fed = inflater.feed(&body[..cut], &mut out);
                assert_eq!(fed.and(inflater.finish(&mut out)), Err(InflateError::Corrupt), "{encoding:?} cut at {cut}");
                assert_eq!(inflater.feed(b"", &mut out), Err(InflateError::Corrupt));
            }
            // Trailing bytes after the end.
            let mut trailing = body.clone();
            trailing.extend_from_slice(b"junk");
            assert_eq!(inflate(encoding, &trailing, 4096, 1 << 20).1, Err(InflateError::Corrupt), "{encoding:?}");
        }
        // A wrong CRC or size in the gzip trailer.
        let good = gzip(b"hello world");
        for at in [good.len() - 8, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert_eq!(inflate(Encoding::Gzip, &bad, 3, 100).1, Err(InflateError::Corrupt));
        }
        // A wrong Adler-32 in the zlib trailer.
        let mut bad = zlib(b"hello world");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(inflate(Encoding::Deflate, &bad, 3, 100).1, Err(InflateError::Corrupt));
        // Bad gzip magic, method and reserved flags.
        for (at, value) in [(0, 0x1E), (1, 0x8C), (2, 7), (3, 0x20)] {
            let mut bad = good.clone();
            bad[at] = value;
            assert_eq!(inflate(Encoding::Gzip, &bad, 1, 100).1, Err(InflateError::Corrupt), "byte {at}");
        }
    }

    #[test]
    fn zlib_header_detection() {
        assert!(is_zlib_header(0x78, 0x9C));
        assert!(is_zlib_header(0x78, 0x01));
        assert!(is_zlib_header(0x78, 0xDA));
        assert!(is_zlib_header(0x58, 0x85));
        assert!(!is_zlib_header(0x78, 0x9D));
        assert!(!is_zlib_header(0x88, 0x1C)); // window too large
        let raw = raw_deflate(b"hello hello hello");
        assert!(!is_zlib_header(raw[0], raw[1]));
    }
}
