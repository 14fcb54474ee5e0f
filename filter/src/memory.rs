//! The VM's memory as two gauges, so that a gateway's dashboards show what
//! each filter VM holds beside Envoy's own figures:
//!
//! - `warden.vm_heap_bytes`: bytes the filter's allocator has handed out
//!   and not taken back (the compiled policy, the scanner, the streams in
//!   flight): a leak is a line that keeps rising;
//! - `warden.vm_memory_bytes`: the VM's linear memory, which only grows
//!   (the allocator reuses what is freed inside it): the VM's peak.
//!
//! Envoy keeps one stat per name for all the VMs of a plugin (one per
//! worker), and adds the offsets each VM reports: a VM reports the change
//! since its last report, so each gauge is the sum over the VMs. A report
//! costs a host call, so it is made when a stream or connection starts,
//! only once the heap moved by [`HEAP_STEP`] or the memory grew, and when a
//! plugin configuration is removed (the VM's share taken back with the last
//! one). A VM that crashes cannot take its share back: the gauge then
//! over-counts by its last report, and Envoy's
//! `wasm.envoy.wasm.runtime.v8.created` shows the crash.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::Cell;
use warden_engine::record::metric;

/// The heap's movement that is worth a host call.
pub(crate) const HEAP_STEP: usize = 64 * 1024;

#[cfg(target_arch = "wasm32")]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The system allocator, counting the bytes it has out. (A wasm32-wasip1
    /// VM has one thread: the atomic is a plain add.)
    pub(super) struct Counting;

    pub(super) static LIVE: AtomicUsize = AtomicUsize::new(0);

    // SAFETY: every call is passed to `System` unchanged; only the count is
    // added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract is `System`'s.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as `alloc`.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as `alloc`.
            unsafe { System.dealloc(ptr, layout) };
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: as `alloc`.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                LIVE.fetch_add(new_size, Ordering::Relaxed);
            }
            p
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;
}

/// Bytes the allocator has out now.
fn heap_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        counting::LIVE.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// The linear memory's size.
fn memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size::<0>() * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// What this VM has reported, shared by its plugin configurations (the
/// gauges are per VM, the root contexts several).
#[derive(Default)]
struct Reported {
    /// Gauge ids, once defined.
    ids: Option<(Option<u32>, Option<u32>)>,
    heap: usize,
    memory: usize,
    /// Root contexts alive in this VM.
    roots: usize,
}

thread_local! {
    static REPORTED: Cell<Option<Reported>> = const { Cell::new(None) };
}

fn with_reported(f: impl FnOnce(&mut Reported)) {
    REPORTED.with(|cell| {
        let mut reported = cell.take().unwrap_or_default();
        f(&mut reported);
        cell.set(Some(reported));
    });
}

/// Adds the change since the last report to a gauge.
fn move_gauge(id: Option<u32>, from: usize, to: usize) {
    let Some(id) = id else { return };
    let delta = i64::try_from(to).unwrap_or(i64::MAX).saturating_sub(i64::try_from(from).unwrap_or(i64::MAX));
    if delta != 0 {
        let _ = hostcalls::increment_metric(id, delta);
    }
}

fn report_now(r: &mut Reported, force: bool) {
    let Some((heap_id, memory_id)) = r.ids else { return };
    let heap = heap_bytes();
    if force || heap.abs_diff(r.heap) >= HEAP_STEP {
        move_gauge(heap_id, r.heap, heap);
        r.heap = heap;
    }
    let memory = memory_bytes();
    if memory != r.memory {
        move_gauge(memory_id, r.memory, memory);
        r.memory = memory;
    }
}

/// A root context starts: defines the gauges once per VM.
pub(crate) fn root_started() {
    with_reported(|r| {
        r.roots += 1;
        if r.ids.is_none() {
            let gauge = |name: &str| hostcalls::define_metric(MetricType::Gauge, name).ok();
            r.ids = Some((gauge(metric::VM_HEAP_BYTES), gauge(metric::VM_MEMORY_BYTES)));
        }
    });
}

/// After a configuration: the policy's size counts at once.
pub(crate) fn report_exact() {
    with_reported(|r| report_now(r, true));
}

/// A stream or connection starts: reports what moved enough.
pub(crate) fn report() {
    with_reported(|r| report_now(r, false));
}

/// A root context is done: the last one takes the VM's share back.
pub(crate) fn root_done() {
    with_reported(|r| {
        r.roots = r.roots.saturating_sub(1);
        if r.roots == 0 {
            if let Some((heap_id, memory_id)) = r.ids {
                move_gauge(heap_id, r.heap, 0);
                move_gauge(memory_id, r.memory, 0);
            }
            r.heap = 0;
            r.memory = 0;
        }
    });
}
