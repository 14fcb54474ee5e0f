//! The echo upstream: a TCP server on loopback that stands in for the
//! external service at the far end of a tunnel (a `CONNECT` Envoy ends and
//! relays as TCP). It records every connection it accepted, with the bytes
//! that arrived, and writes each byte back, so tests can assert that a
//! tunnel carried bytes both ways, or that no connection was made at all.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use super::netns::NetNs;

/// How long a connection may stay idle before the upstream drops it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection as the upstream saw it.
#[derive(Clone, Debug, Default)]
pub struct Accepted {
    /// Every byte that arrived, in order.
    pub bytes: Vec<u8>,
    /// The peer ended its side.
    pub ended: bool,
}

type Log = Arc<Mutex<Vec<Arc<Mutex<Accepted>>>>>;

/// A running echo upstream; stops accepting when dropped.
pub struct Echo {
    addr: SocketAddr,
    accepted: Log,
    stopping: Arc<AtomicBool>,
}

impl Echo {
    /// Starts an echo upstream on an ephemeral port of `netns`'s loopback.
    pub fn start(netns: &NetNs) -> Echo {
        let listener = netns.run(|| TcpListener::bind("127.0.0.1:0")).expect("bind the echo upstream");
        let addr = listener.local_addr().expect("echo upstream address");
        let accepted: Log = Arc::default();
        let stopping = Arc::new(AtomicBool::new(false));
        let (log, stop) = (Arc::clone(&accepted), Arc::clone(&stopping));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let seen = Arc::new(Mutex::new(Accepted::default()));
                lock(&log).push(Arc::clone(&seen));
                thread::spawn(move || echo(stream, &seen));
            }
        });
        Echo { addr, accepted, stopping }
    }

    /// Where Envoy's cluster should point.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every connection accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<Accepted> {
        lock(&self.accepted).iter().map(|c| lock(c).clone()).collect()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag (the wake-up connection
        // is recorded too, after the test has looked).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Echoes until the peer ends its side, then ends ours.
fn echo(mut stream: TcpStream, seen: &Mutex<Accepted>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            lock(seen).ended = true;
            break;
        }
        lock(seen).bytes.extend_from_slice(&buf[..n]);
        if stream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Locks a record; a thread that panicked holding it does not hide it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
