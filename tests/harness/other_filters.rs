//! Filters that are not Warden's in the harness: the host runs any
//! proxy-wasm filter, built for either wasm target, as Envoy would.

use super::filters::{host, logs_at, run, vm, wasm, Filter, Target, TARGETS};
use warden::harness::{HostError, Request, UpstreamResponse};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter().map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())).collect()
}

#[test]
fn add_headers_changes_the_request_and_the_response() {
    for target in TARGETS {
        let host = host(Filter::AddHeaders, target);
        let mut vm = vm(&host, "x-from-config: hello\nx-team: platform");
        let mut request = Request::new("GET", "example.com", "/x").header("user-agent", "test");
        request.upstream =
            UpstreamResponse { status: 201, headers: pairs(&[("content-type", "text/plain")]), body: b"made".to_vec() };
        let outcome = run(&mut vm, &request);

        let forwarded = outcome.forwarded.expect("the request goes upstream");
        assert_eq!(
            forwarded.headers,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "example.com"),
                (":path", "/x"),
                ("user-agent", "test"),
                ("x-added", "yes"),
                ("x-from-config", "hello"),
                ("x-team", "platform"),
                ("x-request-number", "1"),
            ]),
            "{target:?}"
        );
        assert_eq!(forwarded.body, b"");
        assert_eq!(outcome.status, 201);
        assert_eq!(outcome.response_body, b"made");
        assert_eq!(
            outcome.response_headers,
            pairs(&[(":status", "201"), ("content-type", "text/plain"), ("x-response-added", "yes")])
        );
        assert_eq!(outcome.local_response, None);
    }
}

#[test]
fn add_headers_refuses_a_bad_configuration() {
    for target in TARGETS {
        match host(Filter::AddHeaders, target).vm(b"x-ok: 1\nno colon here") {
            Err(HostError::ConfigRejected(logs)) => {
                let errors: Vec<_> = logs.iter().filter(|l| l.level == "error").map(|l| l.message.as_str()).collect();
                assert_eq!(errors, ["add-headers: not `name: value`: no colon here"], "{target:?}");
            }
            Err(other) => panic!("expected the configuration to be refused, got {other}"),
            Ok(_) => panic!("expected the configuration to be refused"),
        }
    }
}

#[test]
fn state_leaks_between_streams_of_one_vm_and_a_new_vm_starts_clean() {
    for target in TARGETS {
        let host = host(Filter::AddHeaders, target);
        let number =
            |outcome: &warden::harness::Outcome| outcome.forwarded.as_ref().and_then(|f| f.header("x-request-number"));
        let mut first = vm(&host, "");
        let request = Request::new("GET", "example.com", "/");
        for expected in ["1", "2", "3"] {
            assert_eq!(number(&run(&mut first, &request)).as_deref(), Some(expected), "{target:?}");
        }
        let mut second = vm(&host, "");
        assert_eq!(number(&run(&mut second, &request)).as_deref(), Some("1"), "a new VM has its own globals");
        assert_eq!(number(&run(&mut first, &request)).as_deref(), Some("4"), "the old VM goes on counting");
    }
}

#[test]
fn a_buffering_filter_sees_every_chunk_and_its_rewrite_goes_upstream() {
    for target in TARGETS {
        let host = host(Filter::RewriteBody, target);
        let mut vm = vm(&host, "mode: buffer");
        let request = Request::new("POST", "example.com", "/upload")
            .header("content-length", "11")
            .chunk("hello ")
            .chunk("wor")
            .chunk("ld");
        let outcome = run(&mut vm, &request);

        // Paused with StopIterationAndBuffer, each call sees all data so far.
        assert_eq!(
            logs_at(&outcome, "info"),
            [
                "chunk 1: body_size=6 end_of_stream=false",
                "chunk 2: body_size=9 end_of_stream=false",
                "chunk 3: body_size=11 end_of_stream=true",
            ],
            "{target:?}"
        );
        assert_eq!(outcome.filter_state_str("wasm.rewrite.sizes").as_deref(), Some("6,9,11"));
        let forwarded = outcome.forwarded.expect("forwarded");
        assert_eq!(String::from_utf8_lossy(&forwarded.body), "HELLO WORLD");
        assert_eq!(forwarded.header("content-length"), None, "the filter dropped the stale length");
    }
}

#[test]
fn a_buffering_filter_replaces_a_word_split_across_chunks() {
    for target in TARGETS {
        let host = host(Filter::RewriteBody, target);
        let request = Request::new("POST", "example.com", "/").chunk("the sec").chunk("ret word");

        let mut buffering = vm(&host, "mode: buffer\nreplace: secret=>[redacted]");
        let forwarded = run(&mut buffering, &request).forwarded.expect("forwarded");
        assert_eq!(String::from_utf8_lossy(&forwarded.body), "the [redacted] word", "{target:?}");

        // Chunk by chunk, the word is never seen whole.
        let mut streaming = vm(&host, "mode: stream\nreplace: secret=>[redacted]");
        let outcome = run(&mut streaming, &request);
        assert_eq!(outcome.filter_state_str("wasm.rewrite.sizes").as_deref(), Some("7,8"));
        assert_eq!(String::from_utf8_lossy(&outcome.forwarded.expect("forwarded").body), "the secret word");
    }
}

#[test]
fn a_streaming_filter_sees_each_chunk_alone() {
    for target in TARGETS {
        let host = host(Filter::RewriteBody, target);
        let mut vm = vm(&host, "mode: stream");
        let outcome = run(&mut vm, &Request::new("POST", "example.com", "/").chunk("hello ").chunk("wor").chunk("ld"));
        assert_eq!(
            logs_at(&outcome, "info"),
            [
                "chunk 1: body_size=6 end_of_stream=false",
                "chunk 2: body_size=3 end_of_stream=false",
                "chunk 3: body_size=2 end_of_stream=true",
            ],
            "{target:?}"
        );
        assert_eq!(String::from_utf8_lossy(&outcome.forwarded.expect("forwarded").body), "HELLO WORLD");
    }
}

#[test]
fn a_headers_only_request_never_reaches_the_body_hook() {
    for target in TARGETS {
        let host = host(Filter::RewriteBody, target);
        let mut vm = vm(&host, "");
        let outcome = run(&mut vm, &Request::new("GET", "example.com", "/"));
        assert!(logs_at(&outcome, "info").is_empty(), "{:?}", outcome.logs);
        assert_eq!(outcome.filter_state_str("wasm.rewrite.sizes"), None);
        assert_eq!(outcome.forwarded.expect("forwarded").body, b"");
    }
}

#[test]
fn the_two_targets_export_the_allocator_under_different_names_and_both_run() {
    let exports = |target| {
        let module = wasm(Filter::AddHeaders, target);
        let has = |name: &str| module.windows(name.len()).any(|w| w == name.as_bytes());
        (has("proxy_on_memory_allocate"), has("malloc"), has("wasi_snapshot_preview1"))
    };
    assert_eq!(exports(Target::Wasip1), (true, false, true));
    assert_eq!(exports(Target::Unknown), (false, true, false));
    for target in TARGETS {
        // Every value the host hands over (configuration, header maps) is
        // written into memory the guest's allocator gave it.
        let host = host(Filter::AddHeaders, target);
        let mut vm = vm(&host, &format!("x-long: {}", "v".repeat(10_000)));
        let outcome = run(&mut vm, &Request::new("GET", "example.com", "/"));
        assert_eq!(outcome.forwarded.expect("forwarded").header("x-long").map(|v| v.len()), Some(10_000));

        let host = super::filters::host(Filter::Probe, target);
        let mut vm = super::filters::vm(&host, "");
        let big = "b".repeat(100_000);
        let outcome =
            run(&mut vm, &Request::new("GET", "example.com", "/").header("x-probe", "headers").header("x-big", &big));
        let forwarded = outcome.forwarded.expect("forwarded");
        assert_eq!(
            forwarded.header("x-r-names").as_deref(),
            Some(":method,:scheme,:authority,:path,x-probe,x-big,x-r-end-of-stream"),
            "{target:?}"
        );
        assert_eq!(forwarded.header("x-big"), Some(big));
    }
}
