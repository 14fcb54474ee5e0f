//! A minimal HTTP/2 client (prior knowledge, cleartext: what Envoy's
//! `codec_type: AUTO` takes on a plain listener), for what only HTTP/2
//! carries without configuration: request trailers. One request per
//! connection: the preface and an empty SETTINGS, the request headers,
//! the body in one DATA frame, the trailers as a last HEADERS frame that
//! ends the stream. Header blocks are HPACK literals without indexing or
//! Huffman coding, which every decoder takes. The answer is not decoded:
//! the client reads frames until the response's HEADERS (or a reset, or
//! the connection's end) and reports how the stream ended; what Envoy
//! decided is read from its access log and the upstream's recording.

use std::io::{self, Read, Write};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const STREAM: u32 = 1;

/// How the request's stream ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Envoy sent response headers.
    Answered,
    /// Envoy reset the stream or closed the connection first.
    Reset,
}

/// One HTTP/2 request: pseudo-headers and headers (names lowercase), a
/// body and trailers.
pub struct H2Request<'a> {
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub trailers: &'a [(&'a str, &'a str)],
}

/// Sends `request` on `stream` (a fresh connection) and waits for its
/// answer.
pub fn exchange<S: Read + Write>(mut stream: S, request: &H2Request<'_>) -> io::Result<Ending> {
    stream.write_all(PREFACE)?;
    write_frame(&mut stream, SETTINGS, 0, 0, &[])?;
    let ends_with_headers = request.body.is_empty() && request.trailers.is_empty();
    let flags = END_HEADERS | if ends_with_headers { END_STREAM } else { 0 };
    write_frame(&mut stream, HEADERS, flags, STREAM, &block(request.headers))?;
    if !request.body.is_empty() {
        let flags = if request.trailers.is_empty() { END_STREAM } else { 0 };
        write_frame(&mut stream, DATA, flags, STREAM, request.body)?;
    }
    if !request.trailers.is_empty() {
        write_frame(&mut stream, HEADERS, END_HEADERS | END_STREAM, STREAM, &block(request.trailers))?;
    }
    stream.flush()?;
    loop {
        let mut head = [0u8; 9];
        if stream.read_exact(&mut head).is_err() {
            return Ok(Ending::Reset);
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]);
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        match (kind, id) {
            (SETTINGS, 0) if flags & ACK == 0 => {
                write_frame(&mut stream, SETTINGS, ACK, 0, &[])?;
                stream.flush()?;
            }
            (HEADERS, STREAM) => return Ok(Ending::Answered),
            (RST_STREAM, STREAM) | (GOAWAY, 0) => return Ok(Ending::Reset),
            _ => {}
        }
    }
}

fn write_frame<W: Write>(out: &mut W, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> io::Result<()> {
    let len = payload.len();
    let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    out.write_all(&frame)
}

/// An HPACK block of literal fields without indexing, new names, no
/// Huffman coding (RFC 7541 §6.2.2).
fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        string(&mut out, name.as_bytes());
        string(&mut out, value.as_bytes());
    }
    out
}

/// A string literal: its length as a 7-bit-prefix integer, then the bytes.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut len = bytes.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128) as u8 | 0x80);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend_from_slice(bytes);
}

#[test]
fn hpack_lengths_use_the_seven_bit_prefix() {
    let mut out = Vec::new();
    string(&mut out, &[b'a'; 126]);
    assert_eq!(out[0], 126);
    let mut out = Vec::new();
    string(&mut out, &[b'a'; 1337]);
    // 1337 - 127 = 1210 = 0b1001_0111010: 0xba (58 | 0x80), then 9.
    assert_eq!(&out[..3], &[127, 0xba, 9]);
    assert_eq!(out.len(), 3 + 1337);
}
