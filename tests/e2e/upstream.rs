//! The recording upstream: a small HTTP/1.1 server on loopback that stands
//! in for the external service (aliyun.com, httpbin.org). It records every
//! request exactly as it arrived — method, raw path, headers, body — and
//! answers with a fixed status, so tests can assert on what went upstream,
//! including that nothing did: it also counts the connections it accepted,
//! whether or not a request came over them.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use super::http1::{Headers, MessageReader};

/// Body of every upstream response (none for HEAD).
pub const RESPONSE_BODY: &str = "hello from upstream\n";

/// How long a connection may stay idle before the upstream drops it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The method, as sent.
    pub method: String,
    /// The request target exactly as it was on the wire (path and query).
    pub path: String,
    /// The header fields.
    pub headers: Headers,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The trailer lines after a chunked body, names as received.
    pub trailers: Vec<(String, String)>,
}

/// A running upstream; stops accepting when dropped.
pub struct Upstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stopping: Arc<AtomicBool>,
    /// Requests cut off before their body completed.
    partial: Arc<Mutex<Vec<Received>>>,
    /// Connections accepted.
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    /// Starts an upstream on an ephemeral loopback port that answers every
    /// request with `status`.
    pub fn start(status: u16) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream on loopback");
        let addr = listener.local_addr().expect("upstream listener address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let partial = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (log, stop, incomplete) = (Arc::clone(&received), Arc::clone(&stopping), Arc::clone(&partial));
        let accepted = Arc::clone(&connections);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                let log = Arc::clone(&log);
                let incomplete = Arc::clone(&incomplete);
                thread::spawn(move || {
                    // Errors just end the connection; tests see the effect.
                    let _ = serve(stream, status, &log, &incomplete);
                });
            }
        });
        Upstream { addr, received, stopping, partial, connections }
    }

    /// How many connections were accepted so far (Envoy's to this
    /// upstream), whether or not a request came over them.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Where Envoy's cluster should point.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    /// Requests whose head arrived but whose body never completed, with
    /// the body bytes that did arrive.
    pub fn incomplete(&self) -> Vec<Received> {
        lock(&self.partial).clone()
    }

    /// The paths of every request received so far, oldest first.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.received).iter().map(|r| r.path.clone()).collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Serves one keep-alive connection until the peer closes it.
fn serve(
    stream: TcpStream,
    status: u16,
    log: &Mutex<Vec<Received>>,
    incomplete: &Mutex<Vec<Received>>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = MessageReader::new(stream);
    while let Some(head) = reader.read_head()? {
        let mut parsed = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut parsed);
        request.parse(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let method = request.method.unwrap_or_default().to_owned();
        let path = request.path.unwrap_or_default().to_owned();
        let headers = Headers::from_parsed(request.headers);
        let (body, trailers) = match reader.read_body_and_trailers(headers.body_framing(false)?) {
            Ok(read) => read,
            Err(e) => {
                // The proxy gave up on the request mid-body (a refusal
                // after the headers went on): keep what arrived of it.
                let body = reader.buffered().to_vec();
                lock(incomplete).push(Received { method, path, headers, body, trailers: Vec::new() });
                return Err(e);
            }
        };
        let close = headers.get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let head_only = method == "HEAD";
        // Record before answering: once the client has its response, the
        // request is in the log.
        lock(log).push(Received { method, path, headers, body, trailers });
        writer.write_all(&response(status, head_only, close))?;
        if close {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

fn response(status: u16, head_only: bool, close: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-upstream: recorder\r\n",
        reason(status),
        RESPONSE_BODY.len()
    );
    if (300..400).contains(&status) {
        out.push_str("location: https://www.example.org/\r\n");
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(RESPONSE_BODY);
    }
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        404 => "Not Found",
        _ => "Whatever",
    }
}

/// Locks the request log; a test thread that panicked while holding it
/// does not hide what was recorded.
fn lock(log: &Mutex<Vec<Received>>) -> MutexGuard<'_, Vec<Received>> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
