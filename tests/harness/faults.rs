//! A misbehaving guest (`tests/filters/faults`, `tests/filters/unknown-import`)
//! becomes a [`Fault`] or a [`HostError`], never a host panic or a hung
//! test; the VM is then dead, as in Envoy, and a new one works.

use super::filters::{host_with, logs_at, run, wasm, Filter, Target, TARGETS};
use std::time::{Duration, Instant};
use warden::harness::{Fault, Host, HostError, HostOptions, Outcome, Request};

/// A short time limit and a small memory, so faults come quickly.
fn options() -> HostOptions {
    HostOptions { call_timeout: Duration::from_millis(300), memory_limit: 16 << 20, ..HostOptions::default() }
}

fn faults_host(target: Target) -> Host {
    host_with(Filter::Faults, target, options())
}

fn request(path: &str) -> Request {
    Request::new("GET", "example.com", path)
}

/// Runs the fault `mode` on `target`: the VM works, faults on `/fault`,
/// then reports that fault for every later stream; a new VM works.
/// Returns the faulting stream's outcome.
fn dies(target: Target, mode: &str, body: Option<Vec<u8>>) -> Outcome {
    let host = faults_host(target);
    let mut vm = super::filters::vm(&host, mode);
    assert!(run(&mut vm, &request("/ok")).forwarded.is_some(), "{mode} before the fault");

    let mut faulty = request("/fault");
    if let Some(body) = body {
        faulty = faulty.chunk(body);
    }
    let started = Instant::now();
    let outcome = vm.run(&faulty);
    assert!(started.elapsed() < Duration::from_secs(10), "{mode}: took {:?}", started.elapsed());
    let fault = outcome.fault.clone().unwrap_or_else(|| panic!("{mode} on {target:?}: no fault"));
    assert_eq!((outcome.status, &outcome.forwarded), (503, &None), "{mode}");
    assert!(outcome.local_response.is_none());

    // Dead: every later stream and tick reports the same fault.
    assert_eq!(vm.fault(), Some(&fault));
    let later = vm.run(&request("/ok"));
    assert_eq!(later.fault.as_ref(), Some(&fault), "{mode}: a dead VM stays dead");
    assert_eq!((later.status, later.forwarded), (503, None));
    assert_eq!(vm.tick(), Err(fault));

    // A new VM of the same module and configuration works.
    let mut fresh = super::filters::vm(&host, mode);
    assert!(run(&mut fresh, &request("/ok")).forwarded.is_some(), "{mode}: a new VM works");
    outcome
}

fn trap_message(outcome: &Outcome) -> String {
    match &outcome.fault {
        Some(Fault::Trap(message)) => message.clone(),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_panic_is_a_trap_and_its_message_is_logged() {
    for target in TARGETS {
        let outcome = dies(target, "panic", None);
        assert!(trap_message(&outcome).contains("unreachable"), "{:?}", outcome.fault);
        let critical = logs_at(&outcome, "critical");
        assert_eq!(critical.len(), 1, "{:?}", outcome.logs);
        assert!(critical[0].contains("deliberate panic in on_http_request_headers"), "{critical:?}");
    }
}

#[test]
fn an_unreachable_instruction_is_a_trap() {
    for target in TARGETS {
        let outcome = dies(target, "unreachable", None);
        assert!(trap_message(&outcome).contains("wasm `unreachable` instruction executed"), "{:?}", outcome.fault);
    }
}

#[test]
fn a_bad_pointer_given_to_the_host_is_a_trap_naming_the_call() {
    for target in TARGETS {
        let outcome = dies(target, "bad-pointer", None);
        let message = trap_message(&outcome);
        assert!(message.contains("proxy_log: out-of-bounds pointer 0xfffffff0+64 (memory is "), "{message}");
        assert!(outcome.logs.is_empty(), "nothing was logged: {:?}", outcome.logs);
    }
}

#[test]
fn a_bad_return_pointer_is_a_trap_naming_the_call() {
    for target in TARGETS {
        let outcome = dies(target, "bad-return-pointer", None);
        let message = trap_message(&outcome);
        assert!(message.contains("proxy_get_header_map_pairs: out-of-bounds pointer 0xfffffff0+4"), "{message}");
    }
}

#[test]
fn an_endless_loop_is_stopped_by_the_time_limit() {
    for target in TARGETS {
        for mode in ["loop", "loop-in-response"] {
            let outcome = dies(target, mode, None);
            match &outcome.fault {
                Some(Fault::Timeout(message)) => assert_eq!(message, "a call took longer than 30 ticks of 10 ms"),
                other => panic!("{mode} on {target:?}: expected a timeout, got {other:?}"),
            }
        }
    }
}

#[test]
fn growing_memory_past_the_limit_is_a_memory_fault() {
    for target in TARGETS {
        let outcome = dies(target, "grow", None);
        match &outcome.fault {
            Some(Fault::MemoryLimit(message)) => {
                assert!(message.contains("forcing trap when growing memory"), "{message}")
            }
            other => panic!("{target:?}: expected a memory fault, got {other:?}"),
        }
    }
}

#[test]
fn a_host_call_that_needs_more_guest_memory_than_the_limit_is_a_memory_fault() {
    for target in TARGETS {
        // The host must allocate the 32 MiB body in the guest (16 MiB max)
        // to hand it over.
        let outcome = dies(target, "read-body", Some(vec![b'x'; 32 << 20]));
        assert!(matches!(outcome.fault, Some(Fault::MemoryLimit(_))), "{target:?}: {:?}", outcome.fault);

        // A body that fits is read.
        let host = faults_host(target);
        let mut vm = super::filters::vm(&host, "read-body");
        let outcome = run(&mut vm, &request("/fault").chunk(vec![b'x'; 1 << 20]));
        assert_eq!(logs_at(&outcome, "info"), ["read 1048576 bytes"]);
    }
}

#[test]
fn faults_while_configuring_stop_the_vm_from_starting() {
    for target in TARGETS {
        let host = faults_host(target);
        let start = |mode: &str| match host.vm(mode.as_bytes()) {
            Err(e) => e,
            Ok(_) => panic!("{mode} on {target:?}: the VM started"),
        };
        match start("configure-panic") {
            HostError::Start(m) => {
                assert!(m.starts_with("proxy_on_configure: the filter trapped: "), "{m}");
                assert!(m.contains("unreachable"), "{m}");
            }
            other => panic!("expected a start error, got {other:?}"),
        }
        let started = Instant::now();
        assert_eq!(
            start("configure-loop"),
            HostError::Start(
                "proxy_on_configure: the filter ran past the time limit: a call took longer than 30 ticks of 10 ms"
                    .into()
            )
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        match start("configure-reject") {
            HostError::ConfigRejected(logs) => {
                let errors: Vec<_> = logs.iter().filter(|l| l.level == "error").map(|l| l.message.as_str()).collect();
                assert_eq!(errors, ["faults: configuration refused on purpose"]);
            }
            other => panic!("expected the configuration to be refused, got {other:?}"),
        }
        // The host is unharmed.
        let mut vm = super::filters::vm(&host, "");
        assert!(run(&mut vm, &request("/fault")).forwarded.is_some());
    }
}

#[test]
fn a_memory_limit_below_the_modules_own_minimum_stops_the_vm_from_starting() {
    for target in TARGETS {
        let options = HostOptions { memory_limit: 64 << 10, ..options() };
        let host = host_with(Filter::Faults, target, options);
        match host.vm(b"") {
            // Instantiating grows the memory to its declared minimum.
            Err(HostError::Start(m)) => assert!(m.starts_with("forcing trap when growing memory to "), "{m}"),
            Err(other) => panic!("expected a start error, got {other:?}"),
            Ok(_) => panic!("{target:?}: the VM started in 64 KiB"),
        }
    }
}

#[test]
fn an_unknown_import_is_a_load_error_naming_it() {
    for target in TARGETS {
        match Host::new(&wasm(Filter::UnknownImport, target), options()) {
            Err(HostError::Load(m)) => assert!(
                m.starts_with(
                    "the module imports env.proxy_not_a_real_function, which this host does not provide (unknown import: `env::proxy_not_a_real_function` has not been defined"
                ),
                "{m}"
            ),
            Err(other) => panic!("expected a load error, got {other:?}"),
            Ok(_) => panic!("{target:?}: a module with an unknown import loaded"),
        }
    }
}

/// A minimal module: functions imported from `env` as (name, params,
/// results), all i32, then `proxy_abi_version_0_2_1` if `proxy_wasm`.
fn module(imports: &[(&str, u8, u8)], proxy_wasm: bool) -> Vec<u8> {
    fn section(out: &mut Vec<u8>, id: u8, items: &[Vec<u8>]) {
        let mut body = vec![u8::try_from(items.len()).expect("few items")];
        for item in items {
            body.extend(item);
        }
        out.push(id);
        out.push(u8::try_from(body.len()).expect("a small section"));
        out.extend(body);
    }
    fn name(text: &str) -> Vec<u8> {
        let mut out = vec![u8::try_from(text.len()).expect("a short name")];
        out.extend(text.as_bytes());
        out
    }
    let mut types: Vec<Vec<u8>> = imports
        .iter()
        .map(|&(_, params, results)| {
            let mut t = vec![0x60, params];
            t.extend(std::iter::repeat_n(0x7f, params.into()));
            t.push(results);
            t.extend(std::iter::repeat_n(0x7f, results.into()));
            t
        })
        .collect();
    types.push(vec![0x60, 0, 0]);
    let own_type = u8::try_from(imports.len()).expect("few imports");
    let imports: Vec<Vec<u8>> = imports
        .iter()
        .enumerate()
        .map(|(i, (import, _, _))| {
            let mut entry = name("env");
            entry.extend(name(import));
            entry.extend([0x00, u8::try_from(i).expect("few imports")]);
            entry
        })
        .collect();

    let mut out = b"\0asm\x01\0\0\0".to_vec();
    section(&mut out, 1, &types);
    section(&mut out, 2, &imports);
    section(&mut out, 3, &[vec![own_type]]);
    if proxy_wasm {
        let mut export = name("proxy_abi_version_0_2_1");
        export.extend([0x00, own_type]);
        section(&mut out, 7, &[export]);
    }
    section(&mut out, 10, &[vec![2, 0x00, 0x0b]]);
    out
}

#[test]
fn an_unknown_import_named_like_a_known_one_is_named_exactly() {
    // proxy_log is provided; proxy_log_v2 is not, and its name starts
    // with proxy_log's.
    let wasm = module(&[("proxy_log", 3, 1), ("proxy_log_v2", 0, 0)], true);
    let uncached = || HostOptions { cache_dir: None, ..options() };
    match Host::new(&wasm, uncached()) {
        Err(HostError::Load(m)) => {
            assert!(m.starts_with("the module imports env.proxy_log_v2, which this host does not provide"), "{m}")
        }
        Err(other) => panic!("expected a load error, got {other:?}"),
        Ok(_) => panic!("a module with an unknown import loaded"),
    }
    // The same module without the unknown import loads.
    assert!(Host::new(&module(&[("proxy_log", 3, 1)], true), uncached()).is_ok());
}

#[test]
fn what_is_not_a_proxy_wasm_module_is_a_load_error() {
    let uncached = || HostOptions { cache_dir: None, ..options() };
    assert!(matches!(Host::new(b"not wasm at all", uncached()), Err(HostError::Load(_))));
    match Host::new(&module(&[("proxy_log", 3, 1)], false), uncached()) {
        Err(HostError::Load(m)) => assert!(m.starts_with("not a proxy-wasm 0.2 filter"), "{m}"),
        Err(other) => panic!("expected a load error, got {other:?}"),
        Ok(_) => panic!("a module without proxy_abi_version_0_2_* loaded"),
    }
}

#[test]
fn hosts_sharing_a_cache_directory_load_each_others_modules() {
    let cache = tempfile::tempdir().expect("a temporary directory");
    let options = HostOptions { cache_dir: Some(cache.path().to_owned()), ..options() };
    let module = wasm(Filter::Faults, Target::Wasip1);
    // Side by side, all compiling and writing the same cache entry.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let host = Host::new(&module, options.clone()).unwrap_or_else(|e| panic!("{e}"));
                let mut vm = super::filters::vm(&host, "");
                assert!(run(&mut vm, &request("/")).forwarded.is_some());
            });
        }
    });
    let entries: Vec<_> =
        std::fs::read_dir(cache.path()).expect("the cache").flatten().map(|e| e.file_name()).collect();
    assert_eq!(entries.len(), 1, "one entry, no temporary files left: {entries:?}");
    // And from the cache.
    let host = Host::new(&module, options).unwrap_or_else(|e| panic!("{e}"));
    let mut vm = super::filters::vm(&host, "");
    assert!(run(&mut vm, &request("/")).forwarded.is_some());
}
