//! A raw HTTP/1.1 client: it writes the request bytes exactly as built, so
//! targets such as `//get`, `/%2Fpost` or `/get/../post` reach Envoy
//! unmodified, over plain TCP or over TLS with a client certificate.
//!
//! Connections are made inside the gateway's network namespace (see
//! `netns`), from a source address of the test's choosing.
//!
//! Each request uses its own connection (`connection: close`), and every
//! socket operation has a timeout, so a misbehaving proxy fails a test
//! instead of hanging it. [`Dial::open_tunnel`] keeps the connection
//! after a `CONNECT`'s response, as the tunnel.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::h2;
use super::http1::{BodyFraming, Headers, MessageReader};
use super::netns::NetNs;
use super::pki::{Identity, Pki};

/// Bound on connecting and on each read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 request, serialized byte for byte as built.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Sent with `transfer-encoding: chunked`, one write per chunk with a
    /// pause between them, instead of `body`.
    chunks: Option<(Vec<Vec<u8>>, Duration)>,
    /// Trailer lines after the last chunk (chunked bodies only).
    trailers: Vec<(String, String)>,
    /// The header lines are sent exactly as given: no `content-length`,
    /// `transfer-encoding` or `connection` added.
    raw: bool,
}

impl Request {
    /// A request with this method and raw request target and no headers.
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            chunks: None,
            trailers: Vec::new(),
            raw: false,
        }
    }

    /// A request whose header lines are exactly `headers` (the body and
    /// its framing too are up to the caller).
    pub fn raw(method: &str, target: &str, headers: Vec<(String, String)>) -> Request {
        Request { headers, raw: true, ..Request::new(method, target) }
    }

    /// `GET target`.
    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// `POST target`.
    pub fn post(target: &str) -> Request {
        Request::new("POST", target)
    }

    /// Sets the `Host` header (the `:authority` Envoy and the filter see).
    pub fn host(self, authority: &str) -> Request {
        self.header("host", authority)
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body; a `content-length` header is added when sent.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sends the body as these chunks (`transfer-encoding: chunked`), each
    /// flushed on its own with `pause` before the next, so the proxy sees
    /// them as separate reads.
    pub fn chunked(mut self, chunks: Vec<Vec<u8>>, pause: Duration) -> Request {
        self.chunks = Some((chunks, pause));
        self
    }

    /// Sends these trailer lines after the last chunk (with
    /// [`Request::chunked`]).
    pub fn trailers(mut self, trailers: Vec<(String, String)>) -> Request {
        self.trailers = trailers;
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target (path and query) as sent.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` header, if set.
    pub fn authority(&self) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")).map(|(_, v)| v.as_str())
    }

    /// The bytes put on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.raw {
            head.push_str("\r\n");
        } else {
            if self.chunks.is_some() {
                head.push_str("transfer-encoding: chunked\r\n");
            } else if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
                head.push_str(&format!("content-length: {}\r\n", self.body.len()));
            }
            head.push_str("connection: close\r\n\r\n");
        }
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.target)?;
        if let Some(host) = self.authority() {
            write!(f, " (host {host})")?;
        }
        Ok(())
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Headers,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Who the client is on a TLS connection.
#[derive(Clone, Copy)]
pub enum Tls<'a> {
    /// Present this client certificate.
    As(&'a Identity),
    /// Present no client certificate.
    Anonymous,
}

/// How to reach a server: its address, TLS or not (and the server name
/// the ClientHello asks for), from which source address, inside which
/// network namespace.
#[derive(Clone, Copy)]
pub struct Dial<'a> {
    addr: SocketAddr,
    tls: Option<Tls<'a>>,
    server_name: Option<&'a str>,
    source_ip: Option<std::net::IpAddr>,
    netns: Option<&'a NetNs>,
}

/// An open connection to the server, plain or TLS.
enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl<'a> Dial<'a> {
    /// Plain TCP to `addr`.
    pub fn plain(addr: SocketAddr) -> Dial<'a> {
        Dial { addr, tls: None, server_name: None, source_ip: None, netns: None }
    }

    /// TLS to `addr`, trusting the test CA for the server certificate
    /// (issued for 127.0.0.1, `localhost` and [`SERVER_NAMES`](super::pki::SERVER_NAMES)).
    /// The ClientHello carries no server name: rustls sends none for an
    /// IP address.
    pub fn tls(addr: SocketAddr, tls: Tls<'a>) -> Dial<'a> {
        Dial { addr, tls: Some(tls), server_name: None, source_ip: None, netns: None }
    }

    /// Asks for the DNS name `name` in the ClientHello (SNI) and verifies
    /// the server certificate for it; with TLS only.
    pub fn server_name(self, name: &'a str) -> Dial<'a> {
        Dial { server_name: Some(name), ..self }
    }

    /// Connects from inside `netns`.
    pub fn within(self, netns: &'a NetNs) -> Dial<'a> {
        Dial { netns: Some(netns), ..self }
    }

    /// Connects from `ip` (an address of the namespace's loopback), as a
    /// client there would: Envoy sees it as the peer.
    pub fn source_ip(self, ip: std::net::IpAddr) -> Dial<'a> {
        Dial { source_ip: Some(ip), ..self }
    }

    /// Sends `request` on a new connection and reads the response.
    pub fn send(&self, request: &Request) -> io::Result<Response> {
        exchange(self.open()?, request)
    }

    /// Sends `request` as HTTP/2 (prior knowledge, so on a plain
    /// connection) on a new connection; see [`h2::exchange`].
    pub fn send_h2c(&self, request: &h2::H2Request<'_>) -> io::Result<h2::Ending> {
        h2::exchange(self.open()?, request)
    }

    /// Sends `request` (a `CONNECT`, with any tunnel bytes as its body) on
    /// a new connection and reads the response head. A 2xx without framing
    /// opened the tunnel: its response has no body, and the connection is
    /// the tunnel. Anything else (a 2xx with `content-length` is a filter's
    /// local response) is a whole response, body included.
    pub fn open_tunnel(&self, request: &Request) -> io::Result<(Response, Option<Tunnel>)> {
        let mut stream = self.open()?;
        stream.write_all(&request.to_bytes())?;
        stream.flush()?;
        let mut reader = MessageReader::new(stream);
        let (status, headers) = read_response_head(&mut reader)?;
        if is_tunnel(request, status, &headers) {
            return Ok((Response { status, headers, body: Vec::new() }, Some(Tunnel { reader })));
        }
        let body = reader.read_body(headers.body_framing(true)?)?;
        Ok((Response { status, headers, body }, None))
    }

    /// A new connection, TLS set up (the handshake happens with the first
    /// write or read), every read and write bounded by a timeout.
    fn open(&self) -> io::Result<Stream> {
        let tcp = match self.netns {
            Some(ns) => ns.run(|| self.connect()),
            None => self.connect(),
        }?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let Some(tls) = self.tls else { return Ok(Stream::Plain(tcp)) };
        let config = tls_config(tls).map_err(io::Error::other)?;
        let server_name = match self.server_name {
            Some(name) => ServerName::try_from(name.to_owned()).map_err(io::Error::other)?,
            None => ServerName::IpAddress(self.addr.ip().into()),
        };
        let connection = ClientConnection::new(Arc::new(config), server_name).map_err(io::Error::other)?;
        Ok(Stream::Tls(Box::new(StreamOwned::new(connection, tcp))))
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let domain = socket2::Domain::for_address(self.addr);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        if let Some(ip) = self.source_ip {
            socket.bind(&SocketAddr::new(ip, 0).into())?;
        }
        socket.connect_timeout(&self.addr.into(), IO_TIMEOUT)?;
        Ok(socket.into())
    }
}

fn tls_config(tls: Tls<'_>) -> Result<ClientConfig, rustls::Error> {
    let pki = Pki::shared();
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone())?;
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    match tls {
        Tls::As(identity) => builder.with_client_auth_cert(identity.chain(), identity.key()),
        Tls::Anonymous => Ok(builder.with_no_client_auth()),
    }
}

/// Writes the request, reads one response.
fn exchange<S: Read + Write>(mut stream: S, request: &Request) -> io::Result<Response> {
    stream.write_all(&request.to_bytes())?;
    stream.flush()?;
    if let Some((chunks, pause)) = &request.chunks {
        // The proxy may answer (and stop reading) before the last chunk,
        // e.g. when it blocks the request: then read that answer.
        let mut send = || -> io::Result<()> {
            for chunk in chunks {
                stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                stream.write_all(chunk)?;
                stream.write_all(b"\r\n")?;
                stream.flush()?;
                std::thread::sleep(*pause);
            }
            let mut end = b"0\r\n".to_vec();
            for (name, value) in &request.trailers {
                end.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            end.extend_from_slice(b"\r\n");
            stream.write_all(&end)?;
            stream.flush()
        };
        let _ = send();
    }
    let mut reader = MessageReader::new(stream);
    let (status, headers) = read_response_head(&mut reader)?;
    // A 2xx to a CONNECT opened a tunnel: no body follows (RFC 9110
    // §9.3.6) and dropping the connection closes the tunnel; unless it is a
    // filter's local response, which Envoy frames as any other.
    let tunnel = is_tunnel(request, status, &headers);
    let no_body = request.method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
    let body = if no_body || tunnel { Vec::new() } else { reader.read_body(headers.body_framing(true)?)? };
    Ok(Response { status, headers, body })
}

/// Whether the response to `request` opened a tunnel: a 2xx to a
/// `CONNECT` that Envoy's router made (a local response of a filter has a
/// `content-length`).
fn is_tunnel(request: &Request, status: u16, headers: &Headers) -> bool {
    request.method == "CONNECT"
        && (200..300).contains(&status)
        && headers.get("content-length").is_none()
        && headers.get("transfer-encoding").is_none()
}

/// Reads a response's status line and headers.
fn read_response_head<S: Read>(reader: &mut MessageReader<S>) -> io::Result<(u16, Headers)> {
    let head = reader
        .read_head()?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"))?;
    let mut parsed = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut parsed);
    response.parse(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((response.code.unwrap_or_default(), Headers::from_parsed(response.headers)))
}

/// The tunnel a `CONNECT` opened: what is sent goes to the far end, what
/// is received comes from it.
pub struct Tunnel {
    reader: MessageReader<Stream>,
}

impl Tunnel {
    /// Writes `bytes` into the tunnel.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Reads exactly `len` bytes from the tunnel.
    pub fn receive(&mut self, len: usize) -> io::Result<Vec<u8>> {
        self.reader.read_body(BodyFraming::Length(len))
    }
}
