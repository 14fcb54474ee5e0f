//! HTTP/1.1 message framing shared by the test client and the recording
//! upstream: read a message head, then its body as `Content-Length`,
//! `chunked` or read-until-close says.
//!
//! Only what the tests need, but strict about it: a malformed message is an
//! `io::Error`, never a guess, and sizes are bounded so a confused peer
//! cannot make a test eat memory.

use std::io::{self, Read};

/// Largest message head (request/status line plus headers) we accept.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body we accept.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Header fields in the order received, names as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// Collects headers parsed by `httparse` (values decoded lossily).
    pub fn from_parsed(parsed: &[httparse::Header<'_>]) -> Self {
        Headers(parsed.iter().map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned())).collect())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// How the body that follows these headers is delimited (RFC 9112 §6.3),
    /// for a message that may have a body at all.
    pub fn body_framing(&self, until_close_allowed: bool) -> io::Result<BodyFraming> {
        if let Some(te) = self.get("transfer-encoding") {
            return if te.trim().eq_ignore_ascii_case("chunked") {
                Ok(BodyFraming::Chunked)
            } else {
                Err(invalid(format!("unsupported transfer-encoding {te:?}")))
            };
        }
        match self.get("content-length") {
            Some(len) => {
                len.trim().parse().map(BodyFraming::Length).map_err(|_| invalid(format!("bad content-length {len:?}")))
            }
            None if until_close_allowed => Ok(BodyFraming::UntilClose),
            None => Ok(BodyFraming::Length(0)),
        }
    }
}

/// Trailer lines after a chunked body: name as sent, value trimmed.
pub type Trailers = Vec<(String, String)>;

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the peer closes (responses only).
    UntilClose,
}

/// Reads HTTP/1.1 messages from a byte stream, keeping what it read past the
/// end of one message for the next (keep-alive).
pub struct MessageReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> MessageReader<R> {
    /// Wraps a stream.
    pub fn new(inner: R) -> Self {
        MessageReader { inner, buf: Vec::new() }
    }

    /// The stream, to write to it (a tunnel's bytes after its response
    /// head).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes read from the stream and not consumed yet (what arrived of a
    /// body that never completed).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads one message head, up to and including the empty line.
    /// `Ok(None)` if the peer closed the connection before sending a byte.
    pub fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let rest = self.buf.split_off(end + 4);
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid(format!("message head longer than {MAX_HEAD} bytes")));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-head"))
                };
            }
        }
    }

    /// Reads a body delimited as `framing` says.
    pub fn read_body(&mut self, framing: BodyFraming) -> io::Result<Vec<u8>> {
        Ok(self.read_body_and_trailers(framing)?.0)
    }

    /// Reads a body delimited as `framing` says, and the trailer lines
    /// after a chunked one (name and value as sent, the value trimmed).
    pub fn read_body_and_trailers(&mut self, framing: BodyFraming) -> io::Result<(Vec<u8>, Trailers)> {
        match framing {
            BodyFraming::Length(len) => Ok((self.take(len)?, Vec::new())),
            BodyFraming::Chunked => self.read_chunked(),
            BodyFraming::UntilClose => {
                while self.fill()? > 0 {
                    if self.buf.len() > MAX_BODY {
                        return Err(invalid(format!("body longer than {MAX_BODY} bytes")));
                    }
                }
                Ok((std::mem::take(&mut self.buf), Vec::new()))
            }
        }
    }

    fn read_chunked(&mut self) -> io::Result<(Vec<u8>, Trailers)> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size_text)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| invalid(format!("bad chunk size line {:?}", String::from_utf8_lossy(&line))))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                let mut trailers = Vec::new();
                loop {
                    let line = self.read_line()?;
                    if line.is_empty() {
                        return Ok((body, trailers));
                    }
                    let line = String::from_utf8_lossy(&line).into_owned();
                    let (name, value) = line.split_once(':').ok_or_else(|| invalid(format!("bad trailer {line:?}")))?;
                    trailers.push((name.to_owned(), value.trim().to_owned()));
                }
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid(format!("body longer than {MAX_BODY} bytes")));
            }
            body.extend(self.take(size)?);
            if !self.read_line()?.is_empty() {
                return Err(invalid("chunk not followed by CRLF".to_owned()));
            }
        }
    }

    /// One line without its CRLF.
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let rest = self.buf.split_off(end + 2);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.truncate(end);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("line too long".to_owned()));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-line"));
            }
        }
    }

    /// Exactly `len` bytes.
    fn take(&mut self, len: usize) -> io::Result<Vec<u8>> {
        if len > MAX_BODY {
            return Err(invalid(format!("body of {len} bytes is longer than {MAX_BODY}")));
        }
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-body"));
            }
        }
        let rest = self.buf.split_off(len);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Appends what the stream has; returns how many bytes (0 at EOF).
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.inner.read(&mut chunk)?;
        self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
