//! Network filters: one downstream connection through a filter's stream
//! context, as Envoy 1.40 runs `envoy.filters.network.wasm` in front of
//! `envoy.filters.network.tcp_proxy`. What Envoy does here was measured
//! (`tests/e2e/network_shapes.rs` runs the same probe filter in Envoy).

use super::types::{ClosedBy, Connection, ConnectionOutcome, Fault, MTLS};
use super::{Vm, ROOT_CONTEXT};
use warden_engine::request::{encode_port, property};

/// `proxy_on_*` results and arguments.
const CONTINUE: u32 = 0;
/// proxy-wasm `PeerType`s, as Envoy passes them to the close callbacks.
const PEER_UNKNOWN: u32 = 0;
const PEER_LOCAL: u32 = 1;
/// The connection's stream types (`proxy_close_stream`).
const DOWNSTREAM: u32 = 2;
const UPSTREAM: u32 = 3;

/// The listener port a connection has when none is given.
const DEFAULT_PORT: u16 = 443;

/// The connection's state between callbacks.
enum Step {
    /// Still open.
    Open,
    /// Closed (and the context deleted); stop.
    Closed,
}

impl Vm {
    /// Runs one downstream connection through a network filter, like
    /// Envoy 1.40 with the filter before `tcp_proxy` (`fail_open: false`).
    ///
    /// Measured in Envoy (see `tests/e2e/network_shapes.rs`):
    ///
    /// - **`on_new_connection`** has `source.address`, `destination.port`
    ///   (8 little-endian bytes), `connection.requested_server_name` (the
    ///   TLS inspector read the ClientHello before the connection was
    ///   made) and `connection.mtls` (false); `plugin_root_id` is the
    ///   filter's `root_id`. On a listener that terminates TLS the
    ///   handshake has not happened yet: the peer certificate is there
    ///   from the first data callback on.
    /// - **Pause from `on_new_connection` stalls the connection**:
    ///   `tcp_proxy` disables reading when the filter chain is made and
    ///   enables it only once it has connected upstream, which it does in
    ///   its own `on_new_connection`. So no data callback ever comes (not
    ///   the ClientHello, not the client's close), no upstream connection
    ///   is made, and the connection hangs. This is a
    ///   [`Fault::Stalled`] here. `proxy_continue_stream(Downstream)`
    ///   called from `on_new_connection` lets it go on as if it had
    ///   returned Continue. A filter therefore decides from the
    ///   properties at `on_new_connection`, or lets the upstream
    ///   connection be made before it sees any byte.
    /// - **Continue** from `on_new_connection`: `tcp_proxy` connects the
    ///   upstream before any data is read. Then each read is one
    ///   `on_downstream_data(size, false)`: Continue forwards the buffer;
    ///   Pause keeps it, and the next call sees the kept bytes followed by
    ///   the new ones (the upstream side is the same with
    ///   `on_upstream_data`). `proxy_continue_stream(Downstream)` during a
    ///   paused call forwards the kept bytes after the call, without
    ///   calling the filter again; `proxy_continue_stream(Upstream)` is
    ///   `Unimplemented`.
    /// - The client's end is one more `on_downstream_data(kept, true)`;
    ///   the upstream's end one more `on_upstream_data(kept, true)`
    ///   followed by `on_upstream_connection_close(Unknown)`. Once both
    ///   went through, Envoy closes the connection:
    ///   `on_downstream_connection_close(Local)`, then `on_done`,
    ///   `on_log`, `on_delete`. A paused end is held: the connection
    ///   stays open.
    /// - **`proxy_close_stream(Downstream)`** (and `Upstream`, which in a
    ///   network filter closes the same, downstream, connection) takes
    ///   effect when the callback returns, whatever it returned: nothing
    ///   of that call is forwarded, no later filter runs, and the
    ///   connection ends with `on_downstream_connection_close(Local)`,
    ///   `on_done`, `on_log`, `on_delete`. From `on_new_connection` no
    ///   upstream connection is made (and the client, whose ClientHello
    ///   is unread, gets a reset); from a data callback the upstream was
    ///   already connected but gets none of those bytes.
    /// - A fault closes the connection (and every later one: the VM is
    ///   dead) with no further callback.
    /// - Filter state set with `proxy_set_property` is the connection's:
    ///   `tcp_proxy`'s access log reads it (`%FILTER_STATE(wasm.NAME:PLAIN)%`)
    ///   after the close callbacks ran.
    ///
    /// The script's order is fixed: `on_new_connection`, the client's
    /// chunks, the upstream's chunks, the client's end, the upstream's end
    /// (the order Envoy showed for a client that sends, waits for the
    /// answer, and closes, to an upstream that closes after it). Envoy may
    /// deliver a client's last bytes and its end in one call when they
    /// arrive together; here they are two. Defaults: `destination.port`
    /// 443 and `connection.mtls` false unless given. Upstream connection
    /// failures are not modelled.
    pub fn connect(&mut self, connection: &Connection) -> ConnectionOutcome {
        let mut outcome = ConnectionOutcome::default();
        if let Some(fault) = &self.dead {
            // Envoy closes a connection to a failed VM at once.
            outcome.fault = Some(fault.clone());
            outcome.closed = Some(ClosedBy::Fault);
            return outcome;
        }
        let context = self.new_context_id();
        self.begin_connection(connection);
        let s = self.store.data_mut();
        s.stream_context = context;
        s.effective_context = context;
        if let Err(fault) = self.drive_connection(context, connection, &mut outcome) {
            if !matches!(fault, Fault::Stalled(_)) {
                outcome.closed = Some(ClosedBy::Fault);
            }
            outcome.fault = Some(fault);
        }
        self.collect_stdio();
        let s = self.store.data_mut();
        s.stream_context = 0;
        s.effective_context = 0;
        outcome.filter_state = std::mem::take(&mut s.filter_state);
        outcome.logs = std::mem::take(&mut s.logs);
        s.stream = Default::default();
        s.properties.clear();
        outcome
    }

    fn begin_connection(&mut self, connection: &Connection) {
        let s = self.store.data_mut();
        s.stream = Default::default();
        s.properties = connection.properties.clone();
        let has = |properties: &[(Vec<String>, Vec<u8>)], path: &[&str]| properties.iter().any(|(p, _)| p == path);
        if !has(&s.properties, property::DESTINATION_PORT) {
            let port = encode_port(DEFAULT_PORT);
            s.properties.push((property::DESTINATION_PORT.iter().map(|p| (*p).to_owned()).collect(), port));
        }
        if !has(&s.properties, MTLS) {
            s.properties.push((MTLS.iter().map(|p| (*p).to_owned()).collect(), vec![0]));
        }
        s.filter_state.clear();
    }

    /// The TLS handshake is done: its properties become visible.
    fn reveal_handshake(&mut self, connection: &Connection) {
        let s = self.store.data_mut();
        for (path, value) in &connection.handshake_properties {
            s.properties.retain(|(p, _)| p != path);
            s.properties.push((path.clone(), value.clone()));
        }
    }

    fn drive_connection(
        &mut self,
        context: u32,
        connection: &Connection,
        outcome: &mut ConnectionOutcome,
    ) -> Result<(), Fault> {
        self.call(|h| Some(&h.context_create), (context, ROOT_CONTEXT))?;
        let action = self.call(|h| h.new_connection.as_ref(), context)?.unwrap_or(CONTINUE);
        self.deliver_http_calls(context)?;
        if let Step::Closed = self.closed_by_filter(context, outcome)? {
            return Ok(());
        }
        if action != CONTINUE && !self.take_continue_downstream() {
            return Err(Fault::Stalled(
                "the filter paused the connection in on_new_connection and did not continue it \
                 (proxy_continue_stream(Downstream)): Envoy's tcp_proxy keeps reading disabled until it \
                 connects upstream, so no data callback would ever come"
                    .into(),
            ));
        }
        outcome.upstream_connected = true;

        let mut handshake_done = false;
        for chunk in &connection.downstream {
            self.store.data_mut().stream.downstream_data.extend_from_slice(chunk);
            if let Step::Closed = self.downstream_data(context, connection, &mut handshake_done, false, outcome)? {
                return Ok(());
            }
        }
        for chunk in &connection.upstream {
            self.store.data_mut().stream.upstream_data.extend_from_slice(chunk);
            if let Step::Closed = self.upstream_data(context, connection, &mut handshake_done, false, outcome)? {
                return Ok(());
            }
        }
        let mut downstream_ended = false;
        if connection.downstream_end {
            match self.downstream_data(context, connection, &mut handshake_done, true, outcome)? {
                Step::Closed => return Ok(()),
                // Forwarded: nothing is held back any more.
                Step::Open => downstream_ended = self.store.data().stream.downstream_data.is_empty(),
            }
        }
        let mut upstream_ended = false;
        if connection.upstream_end {
            match self.upstream_data(context, connection, &mut handshake_done, true, outcome)? {
                Step::Closed => return Ok(()),
                Step::Open => upstream_ended = self.store.data().stream.upstream_data.is_empty(),
            }
            // Envoy reports the upstream's close right after its end,
            // whatever the filter returned.
            self.call(|h| h.upstream_close.as_ref(), (context, PEER_UNKNOWN))?;
            self.deliver_http_calls(context)?;
            if let Step::Closed = self.closed_by_filter(context, outcome)? {
                return Ok(());
            }
        }
        if downstream_ended && upstream_ended {
            outcome.closed = Some(ClosedBy::Peers);
            self.end_connection(context)?;
        }
        Ok(())
    }

    /// One `on_downstream_data` over the bytes buffered so far.
    fn downstream_data(
        &mut self,
        context: u32,
        connection: &Connection,
        handshake_done: &mut bool,
        end: bool,
        outcome: &mut ConnectionOutcome,
    ) -> Result<Step, Fault> {
        if !std::mem::replace(handshake_done, true) {
            self.reveal_handshake(connection);
        }
        let size = self.store.data().stream.downstream_data.len() as u32;
        let action = self.call(|h| h.downstream_data.as_ref(), (context, size, u32::from(end)))?.unwrap_or(CONTINUE);
        self.deliver_http_calls(context)?;
        if let Step::Closed = self.closed_by_filter(context, outcome)? {
            return Ok(Step::Closed);
        }
        // proxy_continue_stream(Downstream) hands the held bytes to the
        // next filter once the call returned.
        if self.take_continue_downstream() || action == CONTINUE {
            outcome.forwarded.append(&mut self.store.data_mut().stream.downstream_data);
        }
        Ok(Step::Open)
    }

    /// One `on_upstream_data` over the bytes buffered so far.
    fn upstream_data(
        &mut self,
        context: u32,
        connection: &Connection,
        handshake_done: &mut bool,
        end: bool,
        outcome: &mut ConnectionOutcome,
    ) -> Result<Step, Fault> {
        if !std::mem::replace(handshake_done, true) {
            self.reveal_handshake(connection);
        }
        let size = self.store.data().stream.upstream_data.len() as u32;
        let action = self.call(|h| h.upstream_data.as_ref(), (context, size, u32::from(end)))?.unwrap_or(CONTINUE);
        self.deliver_http_calls(context)?;
        if let Step::Closed = self.closed_by_filter(context, outcome)? {
            return Ok(Step::Closed);
        }
        // A continue of a stream other than this one does not release it.
        self.take_continue_downstream();
        if action == CONTINUE {
            outcome.returned.append(&mut self.store.data_mut().stream.upstream_data);
        }
        Ok(Step::Open)
    }

    fn take_continue_downstream(&mut self) -> bool {
        std::mem::take(&mut self.store.data_mut().stream.continue_downstream)
    }

    /// If the filter called `proxy_close_stream` in the callback that just
    /// returned, Envoy closes the connection now.
    fn closed_by_filter(&mut self, context: u32, outcome: &mut ConnectionOutcome) -> Result<Step, Fault> {
        // Closing an HTTP stream type does nothing in a network filter.
        let closed = match self.store.data_mut().stream.close_requested.take() {
            Some(DOWNSTREAM) => ClosedBy::FilterDownstream,
            Some(UPSTREAM) => ClosedBy::FilterUpstream,
            _ => return Ok(Step::Open),
        };
        outcome.closed = Some(closed);
        self.end_connection(context)?;
        Ok(Step::Closed)
    }

    /// Envoy closed the connection: the close callback, then the context's
    /// end (`on_done`, `on_log`, `on_delete`).
    fn end_connection(&mut self, context: u32) -> Result<(), Fault> {
        self.call(|h| h.downstream_close.as_ref(), (context, PEER_LOCAL))?;
        self.call(|h| h.done.as_ref(), context)?;
        self.call(|h| h.log.as_ref(), context)?;
        self.call(|h| h.delete.as_ref(), context)?;
        self.deliver_queue_ready()
    }
}
