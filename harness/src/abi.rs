//! The `env.proxy_*` imports of proxy-wasm ABI 0.2.1, as the Rust SDK 0.2.x
//! makes them, behaving like Envoy where a filter can tell.
//!
//! Every guest pointer is bounds-checked; a bad one traps with a message
//! naming the call, never a host panic.

use super::map::{decode_map, encode_map};
use super::state::{status, HostState, Metric, PendingCall};
use super::types::{HttpCall, LocalResponse, LogEntry};
use wasmtime::{Caller, Extern, Linker, Memory};

type Ctx<'a> = Caller<'a, HostState>;
type R<T> = wasmtime::Result<T>;

fn trap(message: String) -> wasmtime::Error {
    wasmtime::Error::msg(message)
}

fn memory(caller: &mut Ctx<'_>, call: &str) -> R<Memory> {
    // Looked up once per VM: an export lookup by name is a hash-map probe.
    if let Some(m) = caller.data().memory {
        return Ok(m);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => {
            caller.data_mut().memory = Some(m);
            Ok(m)
        }
        _ => Err(trap(format!("{call}: the module exports no memory"))),
    }
}

/// Copies `len` bytes at `ptr` out of guest memory.
fn read(caller: &mut Ctx<'_>, call: &str, ptr: u32, len: u32) -> R<Vec<u8>> {
    let mem = memory(caller, call)?;
    let start = ptr as usize;
    let end = start.checked_add(len as usize);
    end.and_then(|end| mem.data(&caller).get(start..end)).map(<[u8]>::to_vec).ok_or_else(|| {
        trap(format!("{call}: out-of-bounds pointer {ptr:#x}+{len} (memory is {} bytes)", mem.data_size(&caller)))
    })
}

fn read_string(caller: &mut Ctx<'_>, call: &str, ptr: u32, len: u32) -> R<String> {
    Ok(String::from_utf8_lossy(&read(caller, call, ptr, len)?).into_owned())
}

fn write(caller: &mut Ctx<'_>, call: &str, ptr: u32, bytes: &[u8]) -> R<()> {
    let mem = memory(caller, call)?;
    let start = ptr as usize;
    let size = mem.data_size(&caller);
    let slot = start.checked_add(bytes.len()).and_then(|end| mem.data_mut(&mut *caller).get_mut(start..end));
    match slot {
        Some(slot) => {
            slot.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(trap(format!("{call}: out-of-bounds pointer {ptr:#x}+{} (memory is {size} bytes)", bytes.len()))),
    }
}

fn write_u32(caller: &mut Ctx<'_>, call: &str, ptr: u32, value: u32) -> R<()> {
    write(caller, call, ptr, &value.to_le_bytes())
}

/// Hands `bytes` to the guest as Envoy does: memory from the guest's own
/// allocator, its address and size written to the two return pointers.
fn give(caller: &mut Ctx<'_>, call: &str, bytes: &[u8], ptr_ptr: u32, size_ptr: u32) -> R<u32> {
    let len = u32::try_from(bytes.len()).map_err(|_| trap(format!("{call}: value too large")))?;
    // Taken out and put back rather than cloned: cloning a TypedFunc
    // clones its registered type. A trap leaves it out; the VM is dead then.
    let Some(alloc) = caller.data_mut().allocator.take() else {
        return Err(trap(format!("{call}: the module exports no allocator (proxy_on_memory_allocate or malloc)")));
    };
    let result = alloc.call(&mut *caller, len);
    caller.data_mut().allocator = Some(alloc);
    let ptr = result?;
    if ptr == 0 && len > 0 {
        return Err(trap(format!("{call}: the guest allocator returned null for {len} bytes")));
    }
    write(caller, call, ptr, bytes)?;
    write_u32(caller, call, ptr_ptr, ptr)?;
    write_u32(caller, call, size_ptr, len)?;
    Ok(status::OK)
}

/// The last proxy-wasm `MapType` (`HttpCallResponseTrailers`).
const MAX_MAP_TYPE: u32 = 7;

/// proxy-wasm `MetricType`s.
const COUNTER: u32 = 0;
const HISTOGRAM: u32 = 2;

fn level_name(level: u32) -> &'static str {
    match level {
        0 => "trace",
        1 => "debug",
        2 => "info",
        3 => "warn",
        4 => "error",
        _ => "critical",
    }
}

/// Registers every `env.proxy_*` import.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> R<()> {
    // --- logging, time, ticks ---
    linker.func_wrap("env", "proxy_log", |mut c: Ctx<'_>, level: u32, ptr: u32, len: u32| -> R<u32> {
        let message = read_string(&mut c, "proxy_log", ptr, len)?;
        c.data_mut().logs.push(LogEntry { level: level_name(level), message });
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Ctx<'_>, ret: u32| -> R<u32> {
        write_u32(&mut c, "proxy_get_log_level", ret, 0)?; // trace: the harness keeps everything
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut c: Ctx<'_>, ret: u32| -> R<u32> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
        write(&mut c, "proxy_get_current_time_nanoseconds", ret, &now.unwrap_or(0).to_le_bytes())?;
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |mut c: Ctx<'_>, period: u32| -> u32 {
        c.data_mut().tick_period_ms = period;
        status::OK
    })?;
    // Envoy refuses a context that does not exist (any more); the host
    // knows the root context and the stream being run.
    linker.func_wrap("env", "proxy_set_effective_context", |mut c: Ctx<'_>, id: u32| -> u32 {
        let s = c.data_mut();
        if id != crate::ROOT_CONTEXT && (id != s.stream_context || s.stream_context == 0) {
            return status::BAD_ARGUMENT;
        }
        s.effective_context = id;
        status::OK
    })?;
    linker.func_wrap("env", "proxy_done", |_c: Ctx<'_>| -> u32 { status::OK })?;

    // --- buffers ---
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Ctx<'_>, kind: u32, start: u32, max: u32, ptr_ptr: u32, size_ptr: u32| -> R<u32> {
            let call = "proxy_get_buffer_bytes";
            let s = c.data();
            let buffer: &[u8] = match kind {
                0 => &s.stream.request_body,
                1 => &s.stream.response_body,
                2 => &s.stream.downstream_data,
                3 => &s.stream.upstream_data,
                4 => s.stream.call_response.as_ref().map(|r| r.body.as_slice()).unwrap_or_default(),
                6 => &s.vm_config,
                7 => &s.plugin_config,
                _ => return Ok(status::NOT_FOUND),
            };
            let start = (start as usize).min(buffer.len());
            let end = start.saturating_add(max as usize).min(buffer.len());
            let bytes = buffer.get(start..end).unwrap_or_default().to_vec();
            if bytes.is_empty() {
                return Ok(status::NOT_FOUND);
            }
            give(&mut c, call, &bytes, ptr_ptr, size_ptr)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Ctx<'_>, kind: u32, start: u32, size: u32, ptr: u32, len: u32| -> R<u32> {
            let data = read(&mut c, "proxy_set_buffer_bytes", ptr, len)?;
            let s = c.data_mut();
            let buffer = match kind {
                0 => &mut s.stream.request_body,
                1 => &mut s.stream.response_body,
                2 => &mut s.stream.downstream_data,
                3 => &mut s.stream.upstream_data,
                _ => return Ok(status::BAD_ARGUMENT),
            };
            // Envoy (`Buffer::copyFrom`): at 0, drop `size` bytes and
            // prepend; at or past the end, append; anything else is refused.
            let start = start as usize;
            if start != 0 && start < buffer.len() {
                return Ok(status::BAD_ARGUMENT);
            }
            let start = start.min(buffer.len());
            let end = start.saturating_add(size as usize).min(buffer.len());
            buffer.splice(start..end, data);
            Ok(status::OK)
        },
    )?;

    // --- header maps ---
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Ctx<'_>, kind: u32, ptr_ptr: u32, size_ptr: u32| -> R<u32> {
            // Envoy answers a map that does not exist (yet), e.g. the
            // trailers of an http call answered without any, with no pairs.
            if kind > MAX_MAP_TYPE {
                return Ok(status::BAD_ARGUMENT);
            }
            let bytes = encode_map(c.data().map(kind).map(Vec::as_slice).unwrap_or_default());
            give(&mut c, "proxy_get_header_map_pairs", &bytes, ptr_ptr, size_ptr)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Ctx<'_>, kind: u32, ptr: u32, len: u32| -> R<u32> {
            let bytes = read(&mut c, "proxy_set_header_map_pairs", ptr, len)?;
            let Some(map) = decode_map(&bytes) else { return Ok(status::SERIALIZATION_FAILURE) };
            match c.data_mut().map_mut(kind) {
                Some(slot) => {
                    *slot = map;
                    Ok(status::OK)
                }
                None => Ok(status::BAD_ARGUMENT),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Ctx<'_>, kind: u32, kp: u32, kl: u32, ptr_ptr: u32, size_ptr: u32| -> R<u32> {
            let key = read_string(&mut c, "proxy_get_header_map_value", kp, kl)?.to_ascii_lowercase();
            let Some(map) = c.data().map(kind) else { return Ok(status::BAD_ARGUMENT) };
            // Envoy returns the first value of a repeated header (its
            // `getHeaderMapValue` reads `entry[0]`), not the values joined.
            let Some(value) = map.iter().find(|(n, _)| *n == key).map(|(_, v)| v.clone()) else {
                return Ok(status::NOT_FOUND);
            };
            give(&mut c, "proxy_get_header_map_value", &value, ptr_ptr, size_ptr)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Ctx<'_>, kind: u32, kp: u32, kl: u32, vp: u32, vl: u32| -> R<u32> {
            let key = read_string(&mut c, "proxy_replace_header_map_value", kp, kl)?.to_ascii_lowercase();
            let value = read(&mut c, "proxy_replace_header_map_value", vp, vl)?;
            let Some(map) = c.data_mut().map_mut(kind) else { return Ok(status::BAD_ARGUMENT) };
            // Envoy's `setCopy`: every line of the name goes, and one is
            // added where an added line goes (measured for other names than
            // pseudo-headers: `e2e::shapes`).
            map.retain(|(n, _)| *n != key);
            insert_line(map, key, value);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Ctx<'_>, kind: u32, kp: u32, kl: u32, vp: u32, vl: u32| -> R<u32> {
            let key = read_string(&mut c, "proxy_add_header_map_value", kp, kl)?.to_ascii_lowercase();
            let value = read(&mut c, "proxy_add_header_map_value", vp, vl)?;
            let Some(map) = c.data_mut().map_mut(kind) else { return Ok(status::BAD_ARGUMENT) };
            insert_line(map, key, value);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Ctx<'_>, kind: u32, kp: u32, kl: u32| -> R<u32> {
            let key = read_string(&mut c, "proxy_remove_header_map_value", kp, kl)?.to_ascii_lowercase();
            let Some(map) = c.data_mut().map_mut(kind) else { return Ok(status::BAD_ARGUMENT) };
            map.retain(|(n, _)| *n != key);
            Ok(status::OK)
        },
    )?;

    // --- properties ---
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Ctx<'_>, pp: u32, pl: u32, ptr_ptr: u32, size_ptr: u32| -> R<u32> {
            let raw = read(&mut c, "proxy_get_property", pp, pl)?;
            let path: Vec<String> = raw.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
            match c.data().property(&path) {
                Some(value) => give(&mut c, "proxy_get_property", &value, ptr_ptr, size_ptr),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_set_property", |mut c: Ctx<'_>, pp: u32, pl: u32, vp: u32, vl: u32| -> R<u32> {
        let raw = read(&mut c, "proxy_set_property", pp, pl)?;
        let value = read(&mut c, "proxy_set_property", vp, vl)?;
        let path: Vec<String> = raw.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        // Envoy stores it as filter state `wasm.<name>`.
        c.data_mut().filter_state.insert(format!("wasm.{}", path.join(".")), value);
        Ok(status::OK)
    })?;

    // --- shared data and queues ---
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Ctx<'_>, kp: u32, kl: u32, ptr_ptr: u32, size_ptr: u32, cas_ptr: u32| -> R<u32> {
            let key = read_string(&mut c, "proxy_get_shared_data", kp, kl)?;
            let Some((value, cas)) = c.data().shared_data.get(&key).cloned() else { return Ok(status::NOT_FOUND) };
            write_u32(&mut c, "proxy_get_shared_data", cas_ptr, cas)?;
            if value.is_empty() {
                write_u32(&mut c, "proxy_get_shared_data", ptr_ptr, 0)?;
                write_u32(&mut c, "proxy_get_shared_data", size_ptr, 0)?;
                return Ok(status::OK);
            }
            give(&mut c, "proxy_get_shared_data", &value, ptr_ptr, size_ptr)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Ctx<'_>, kp: u32, kl: u32, vp: u32, vl: u32, cas: u32| -> R<u32> {
            let key = read_string(&mut c, "proxy_set_shared_data", kp, kl)?;
            let value = read(&mut c, "proxy_set_shared_data", vp, vl)?;
            // Envoy: a CAS only guards a key that exists; a new key is set
            // whatever CAS the caller passed.
            let shared = &mut c.data_mut().shared_data;
            match shared.get_mut(&key) {
                Some(entry) if cas != 0 && cas != entry.1 => Ok(status::CAS_MISMATCH),
                Some(entry) => {
                    *entry = (value, entry.1.wrapping_add(1).max(1));
                    Ok(status::OK)
                }
                None => {
                    shared.insert(key, (value, 1));
                    Ok(status::OK)
                }
            }
        },
    )?;
    linker.func_wrap("env", "proxy_register_shared_queue", |mut c: Ctx<'_>, np: u32, nl: u32, ret: u32| -> R<u32> {
        let name = read_string(&mut c, "proxy_register_shared_queue", np, nl)?;
        let queues = &mut c.data_mut().queues;
        let id = match queues.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                queues.push((name, Default::default()));
                queues.len() - 1
            }
        };
        write_u32(&mut c, "proxy_register_shared_queue", ret, id as u32 + 1)?;
        Ok(status::OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Ctx<'_>, _vp: u32, _vl: u32, np: u32, nl: u32, ret: u32| -> R<u32> {
            let name = read_string(&mut c, "proxy_resolve_shared_queue", np, nl)?;
            match c.data().queues.iter().position(|(n, _)| *n == name) {
                Some(i) => {
                    write_u32(&mut c, "proxy_resolve_shared_queue", ret, i as u32 + 1)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", |mut c: Ctx<'_>, id: u32, vp: u32, vl: u32| -> R<u32> {
        let value = read(&mut c, "proxy_enqueue_shared_queue", vp, vl)?;
        let s = c.data_mut();
        match s.queues.get_mut((id as usize).wrapping_sub(1)) {
            Some((_, q)) => {
                q.push_back(value);
                // Envoy then calls the registering VM's proxy_on_queue_ready.
                s.queue_ready.push(id);
                Ok(status::OK)
            }
            None => Ok(status::NOT_FOUND),
        }
    })?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Ctx<'_>, id: u32, ptr_ptr: u32, size_ptr: u32| -> R<u32> {
            let item = match c.data_mut().queues.get_mut((id as usize).wrapping_sub(1)) {
                Some((_, q)) => q.pop_front(),
                None => return Ok(status::NOT_FOUND),
            };
            match item {
                Some(value) => give(&mut c, "proxy_dequeue_shared_queue", &value, ptr_ptr, size_ptr),
                None => Ok(status::EMPTY),
            }
        },
    )?;

    // --- stream control ---
    // Stream types: HttpRequest 0, HttpResponse 1, Downstream 2, Upstream 3.
    // Envoy continues a connection's reading (the next filter gets the
    // held bytes) but not its upstream side (Unimplemented).
    linker.func_wrap("env", "proxy_continue_stream", |mut c: Ctx<'_>, kind: u32| -> u32 {
        if c.data().effective_context == crate::ROOT_CONTEXT {
            // The root context has no stream to continue (Envoy: no-op).
            return status::OK;
        }
        let s = &mut c.data_mut().stream;
        match kind {
            0 => s.continue_request = true,
            1 => s.continue_response = true,
            2 => s.continue_downstream = true,
            3 => return status::UNIMPLEMENTED,
            _ => return status::BAD_ARGUMENT,
        }
        status::OK
    })?;
    linker.func_wrap("env", "proxy_close_stream", |mut c: Ctx<'_>, kind: u32| -> u32 {
        if kind > 3 {
            return status::BAD_ARGUMENT;
        }
        c.data_mut().stream.close_requested.get_or_insert(kind);
        status::OK
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Ctx<'_>, code: u32, dp: u32, dl: u32, bp: u32, bl: u32, hp: u32, hl: u32, _grpc: i32| -> R<u32> {
            let call = "proxy_send_local_response";
            let details = read_string(&mut c, call, dp, dl)?;
            let body = read(&mut c, call, bp, bl)?;
            let headers = read(&mut c, call, hp, hl)?;
            let Some(headers) = decode_map(&headers) else { return Ok(status::SERIALIZATION_FAILURE) };
            c.data_mut().stream.local_response = Some(LocalResponse { status: code, headers, body, details });
            Ok(status::OK)
        },
    )?;

    // --- outgoing calls ---
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Ctx<'_>,
         up: u32,
         ul: u32,
         hp: u32,
         hl: u32,
         bp: u32,
         bl: u32,
         _tp: u32,
         _tl: u32,
         _timeout: u32,
         token_ptr: u32|
         -> R<u32> {
            let call = "proxy_http_call";
            let upstream = read_string(&mut c, call, up, ul)?;
            let headers = read(&mut c, call, hp, hl)?;
            let body = read(&mut c, call, bp, bl)?;
            let headers = decode_map(&headers).unwrap_or_default();
            // Envoy refuses a call without these headers, whatever the upstream.
            let complete = [":method", ":path", ":authority"].iter().all(|h| headers.iter().any(|(n, _)| n == h));
            let answer = c.data().stream.http_call_answers.iter().find(|(u, _)| *u == upstream).map(|(_, a)| a.clone());
            let answer = answer.filter(|_| complete);
            let answered = answer.is_some();
            c.data_mut().stream.http_calls.push(HttpCall { upstream, headers, body, answered });
            let Some(answer) = answer else { return Ok(status::BAD_ARGUMENT) };
            let token = c.data().next_token;
            c.data_mut().next_token = token.wrapping_add(1);
            c.data_mut().stream.pending_calls.push(PendingCall { token, answer });
            write_u32(&mut c, call, token_ptr, token)?;
            Ok(status::OK)
        },
    )?;
    // gRPC is not simulated: calls are refused as Envoy refuses an unknown
    // cluster, with ParseFailure (the SDK panics on any other refusal).
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |_c: Ctx<'_>,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32|
         -> u32 { status::PARSE_FAILURE },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_c: Ctx<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32| -> u32 {
            status::PARSE_FAILURE
        },
    )?;
    linker.func_wrap("env", "proxy_grpc_send", |_c: Ctx<'_>, _: u32, _: u32, _: u32, _: u32| -> u32 {
        status::NOT_FOUND
    })?;
    linker.func_wrap("env", "proxy_grpc_cancel", |_c: Ctx<'_>, _: u32| -> u32 { status::NOT_FOUND })?;
    linker.func_wrap("env", "proxy_grpc_close", |_c: Ctx<'_>, _: u32| -> u32 { status::NOT_FOUND })?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: Ctx<'_>, code_ptr: u32, ptr_ptr: u32, size_ptr: u32| -> R<u32> {
            // The status of the last http call response: 0 with no message.
            write_u32(&mut c, "proxy_get_status", code_ptr, 0)?;
            write_u32(&mut c, "proxy_get_status", ptr_ptr, 0)?;
            write_u32(&mut c, "proxy_get_status", size_ptr, 0)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_c: Ctx<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32| -> u32 { status::NOT_FOUND },
    )?;

    // --- metrics ---
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Ctx<'_>, kind: u32, np: u32, nl: u32, ret: u32| -> R<u32> {
            if kind > 2 {
                return Ok(status::BAD_ARGUMENT);
            }
            let name = read_string(&mut c, "proxy_define_metric", np, nl)?;
            let metrics = &mut c.data_mut().metrics;
            let id = match metrics.iter().position(|m| m.name == name) {
                Some(i) => i,
                None => {
                    metrics.push(Metric { name, kind, value: 0 });
                    metrics.len() - 1
                }
            };
            write_u32(&mut c, "proxy_define_metric", ret, id as u32)?;
            Ok(status::OK)
        },
    )?;
    // As Envoy: a counter only goes up (a non-positive increment is
    // refused, a recorded value is added), a gauge moves both ways or is
    // set, a histogram only records (and cannot be read back by the guest;
    // `Vm::metric` shows its last value).
    linker.func_wrap("env", "proxy_increment_metric", |mut c: Ctx<'_>, id: u32, offset: i64| -> u32 {
        match c.data_mut().metrics.get_mut(id as usize) {
            Some(m) if m.kind == COUNTER && offset <= 0 => status::BAD_ARGUMENT,
            Some(m) if m.kind != HISTOGRAM => {
                m.value = m.value.saturating_add(offset);
                status::OK
            }
            Some(_) => status::BAD_ARGUMENT,
            None => status::NOT_FOUND,
        }
    })?;
    linker.func_wrap("env", "proxy_record_metric", |mut c: Ctx<'_>, id: u32, value: u64| -> u32 {
        match c.data_mut().metrics.get_mut(id as usize) {
            Some(m) => {
                let value = i64::try_from(value).unwrap_or(i64::MAX);
                m.value = if m.kind == COUNTER { m.value.saturating_add(value) } else { value };
                status::OK
            }
            None => status::NOT_FOUND,
        }
    })?;
    linker.func_wrap("env", "proxy_get_metric", |mut c: Ctx<'_>, id: u32, ret: u32| -> R<u32> {
        let Some(metric) = c.data().metrics.get(id as usize) else { return Ok(status::NOT_FOUND) };
        if metric.kind == HISTOGRAM {
            return Ok(status::BAD_ARGUMENT);
        }
        let value = metric.value;
        write(&mut c, "proxy_get_metric", ret, &(value as u64).to_le_bytes())?;
        Ok(status::OK)
    })?;
    // ABI 0.1.0 names some older SDKs still import.
    linker.func_wrap("env", "proxy_continue_request", |mut c: Ctx<'_>| -> u32 {
        c.data_mut().stream.continue_request = true;
        status::OK
    })?;
    linker.func_wrap("env", "proxy_continue_response", |mut c: Ctx<'_>| -> u32 {
        c.data_mut().stream.continue_response = true;
        status::OK
    })?;
    linker.func_wrap("env", "proxy_clear_route_cache", |_c: Ctx<'_>| -> u32 { status::OK })?;
    Ok(())
}

/// Adds a line as Envoy's header map does: a pseudo-header after the other
/// pseudo-headers (its header list keeps them in front), any other name at
/// the end.
fn insert_line(map: &mut crate::Headers, key: String, value: Vec<u8>) {
    let at = if key.starts_with(':') { map.iter().position(|(n, _)| !n.starts_with(':')) } else { None };
    match at {
        Some(at) => map.insert(at, (key, value)),
        None => map.push((key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_encoding_round_trips() {
        let map = vec![(":authority".to_owned(), b"a.example".to_vec()), ("x-empty".to_owned(), Vec::new())];
        assert_eq!(decode_map(&encode_map(&map)), Some(map));
        assert_eq!(decode_map(&[]), Some(vec![]));
        let encoded = encode_map(&[("a".to_owned(), b"b".to_vec())]);
        for len in 1..encoded.len() - 1 {
            assert_eq!(decode_map(&encoded[..len]), None, "truncated at {len}");
        }
    }
}
