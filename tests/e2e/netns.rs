//! A private network namespace per test gateway: Envoy listens on the very
//! ports the cases name (80, 443, 8080...) and clients connect *from* the
//! case's source address, added to the namespace's loopback. So
//! `destination.port` is a real listener port and `source.address` a real
//! peer, with no PROXY protocol standing in for either, and parallel tests
//! never collide.
//!
//! Linux keeps the network namespace per thread: [`NetNs::new`] makes one
//! on a thread of its own (`unshare(CLONE_NEWNET)`) and keeps a handle;
//! [`NetNs::run`] runs a closure on a thread that joined it (`setns`).
//! Sockets and processes created there live in the namespace; a socket,
//! once made, works from any thread. It needs CAP_SYS_ADMIN (root, as the
//! project's CI runs) and `ip` from iproute2; without them the tests fail
//! and say so.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;

/// A network namespace with loopback up and the given addresses on it.
pub struct NetNs {
    handle: File,
}

impl NetNs {
    /// A new namespace whose loopback also carries `addresses` (beside
    /// 127.0.0.0/8 and ::1).
    pub fn new(addresses: &[IpAddr]) -> Result<NetNs, String> {
        let addresses = addresses.to_vec();
        std::thread::spawn(move || -> Result<NetNs, String> {
            // SAFETY: unshare only changes this thread's namespaces.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(format!(
                    "cannot create a network namespace (unshare: {}); the end-to-end tests need CAP_SYS_ADMIN",
                    std::io::Error::last_os_error()
                ));
            }
            ip(&["link", "set", "lo", "up"])?;
            for address in addresses.iter().filter(|a| !a.is_loopback()) {
                let prefix = if address.is_ipv4() { 32 } else { 128 };
                ip(&["addr", "add", &format!("{address}/{prefix}"), "dev", "lo"])?;
            }
            let handle = File::open("/proc/thread-self/ns/net").map_err(|e| format!("open the namespace: {e}"))?;
            Ok(NetNs { handle })
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_owned())?
    }

    /// Runs `f` inside the namespace (on a thread that joined it).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let fd = self.handle.as_raw_fd();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    // SAFETY: setns on a namespace fd we keep open; it
                    // changes only this thread.
                    let joined = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
                    assert_eq!(joined, 0, "setns: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}
