//! Each proxy-wasm host function as a filter sees it, through the probe
//! filter (`tests/filters/probe`), on both wasm targets. The probe reports
//! what it saw as `x-r-*` request headers.

use super::filters::{host, host_with, logs_at, run, vm, Filter, Target, TARGETS};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use warden::harness::{Fault, Forwarded, HostOptions, HttpCall, LogEntry, Outcome, Request, UpstreamResponse};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter().map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())).collect()
}

fn probe(ops: &str) -> Request {
    Request::new("GET", "api.example", "/").header("x-probe", ops)
}

fn forwarded(outcome: Outcome) -> Forwarded {
    outcome.forwarded.unwrap_or_else(|| panic!("the request was not forwarded: {:?}", outcome.local_response))
}

/// The probe's reports, `x-r-` stripped, in order.
fn reports(forwarded: &Forwarded) -> Vec<(String, String)> {
    forwarded
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("x-r-")?.to_owned(), String::from_utf8_lossy(v).into_owned())))
        .filter(|(n, _)| n != "end-of-stream")
        .collect()
}

fn expect(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn properties_come_from_the_request_the_plugin_and_the_filter_state() {
    for target in TARGETS {
        let options = HostOptions { root_id: "probe-root".into(), ..HostOptions::default() };
        let host = host_with(Filter::Probe, target, options);
        let mut vm = vm(&host, "");
        let request = Request::new("GET", "api.example:8443", "/")
            .header("x-probe", "properties")
            .source_ip("10.1.2.3")
            .property(&["custom", "prop"], "custom-value");
        let outcome = run(&mut vm, &request);
        assert_eq!(outcome.filter_state_str("wasm.probe.state").as_deref(), Some("set-by-probe"));
        assert_eq!(
            reports(&forwarded(outcome)),
            expect(&[
                ("source-address", "10.1.2.3:40000"),
                // Not given: the port the request was made to.
                ("destination-port", "8443"),
                ("root-id", "probe-root"),
                ("custom", "custom-value"),
                ("missing", "none"),
                ("state", "set-by-probe"),
                ("filter-state", "set-by-probe"),
            ]),
            "{target:?}"
        );

        // Given: 8 little-endian bytes, as Envoy encodes it. Filter state
        // and request properties do not outlive their stream.
        let outcome = run(&mut vm, &probe("properties").destination_port(15001));
        let reports = reports(&forwarded(outcome));
        assert_eq!(reports[0], ("source-address".into(), "none".into()));
        assert_eq!(reports[1], ("destination-port".into(), "15001".into()));
        assert_eq!(reports[3], ("custom".into(), "none".into()));
    }
}

#[test]
fn metrics_behave_as_envoys_counters_gauges_and_histograms() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = run(&mut vm, &probe("metrics"));
        assert_eq!(
            reports(&forwarded(outcome)),
            expect(&[
                ("same-id", "true"),
                ("counter", "3"),
                ("counter-decrement", "BadArgument"),
                ("counter-recorded", "13"),
                ("gauge", "5"),
                ("histogram-record", "Ok"),
                ("histogram-get", "BadArgument"),
                ("histogram-increment", "BadArgument"),
                ("unknown-metric", "NotFound"),
            ]),
            "{target:?}"
        );
        assert_eq!(vm.metric("probe.counter"), Some(13));
        assert_eq!(vm.metric("probe.gauge"), Some(5));
        assert_eq!(vm.metric("probe.histogram"), Some(42));
        assert_eq!(vm.metric("probe.nothing"), None);

        // Metrics belong to the VM: the next stream goes on from there.
        let outcome = run(&mut vm, &probe("metrics"));
        let reports = reports(&forwarded(outcome));
        assert_eq!(reports[1], ("counter".into(), "16".into()));
        assert_eq!(reports[3], ("counter-recorded".into(), "26".into()));
        assert_eq!(vm.metric("probe.counter"), Some(26));
        let names: Vec<String> = vm.metrics().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["probe.counter", "probe.gauge", "probe.histogram"]);
    }
}

#[test]
fn logs_at_every_level_and_wasi_stdout_stderr() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        assert_eq!(vm.take_logs(), [LogEntry { level: "info", message: "probe: configured".into() }]);
        assert_eq!(vm.take_logs(), []);
        let outcome = run(&mut vm, &probe("logs"));
        let mut expected: Vec<(&str, &str)> = vec![
            ("trace", "probe Trace"),
            ("debug", "probe Debug"),
            ("info", "probe Info"),
            ("warn", "probe Warn"),
            ("error", "probe Error"),
            ("critical", "probe Critical"),
        ];
        // WASI stdio exists only on wasip1; on wasm32-unknown-unknown std's
        // stdout is a sink.
        if target == Target::Wasip1 {
            expected.extend([("stdout", "probe stdout"), ("stderr", "probe stderr")]);
        }
        let logs: Vec<(&str, &str)> = outcome.logs.iter().map(|l| (l.level, l.message.as_str())).collect();
        assert_eq!(logs, expected, "{target:?}");
        assert_eq!(reports(&forwarded(outcome)), expect(&[("log-level", "Trace")]));
        assert_eq!(vm.take_logs(), [], "a stream's logs are its outcome's");
    }
}

#[test]
fn shared_data_with_compare_and_swap() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = run(&mut vm, &probe("shared-data"));
        assert_eq!(
            reports(&forwarded(outcome)),
            expect(&[
                ("missing", "none/None"),
                ("set", "Ok"),
                ("value-1", "one"),
                ("cas-1-nonzero", "true"),
                ("bad-cas", "CasMismatch"),
                ("good-cas", "Ok"),
                ("value-2", "two"),
                ("cas-changed", "true"),
                ("new-key-with-cas", "Ok"),
                ("fresh", "x"),
                ("hits", "1"),
            ]),
            "{target:?}"
        );
        let outcome = run(&mut vm, &probe("shared-data"));
        assert_eq!(reports(&forwarded(outcome)).last(), Some(&("hits".into(), "2".into())));
        assert_eq!(vm.shared_data("probe.hits").as_deref(), Some(&b"2"[..]));
        assert_eq!(vm.shared_data("probe.key").as_deref(), Some(&b"two"[..]));
        assert_eq!(vm.shared_data("probe.nothing"), None);
    }
}

#[test]
fn shared_queues_and_on_queue_ready() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = run(&mut vm, &probe("queue"));
        assert_eq!(
            reports(&forwarded(outcome)),
            expect(&[
                ("queue-resolved", "true"),
                ("queue-unknown", "None"),
                ("enqueue-a", "Ok"),
                ("enqueue-b", "Ok"),
                ("dequeued", "a,b,none"),
                ("dequeue-bad-id", "NotFound"),
                ("enqueue-bad-id", "NotFound"),
            ]),
            "{target:?}"
        );
        // One notification per item enqueued, after the hook returned.
        assert_eq!(vm.metric("probe.queue_ready"), Some(2));

        // A queue the root context registered: it hears of the item and
        // drains it.
        let mut vm = super::filters::vm(&host, "queue: jobs");
        let outcome = run(&mut vm, &probe("queue-notify"));
        assert!(logs_at(&outcome, "info").contains(&"queue ready: ping".to_owned()), "{:?}", outcome.logs);
        assert_eq!(reports(&forwarded(outcome)), expect(&[("enqueue", "Ok")]));
        assert_eq!(vm.metric("probe.queue_ready"), Some(1));
    }
}

#[test]
fn the_current_time_is_the_hosts_clock() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let nanos = || SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos();
        let before = nanos();
        let outcome = run(&mut vm, &probe("time"));
        let after = nanos();
        let seen: u128 = forwarded(outcome).header("x-r-time-nanos").expect("reported").parse().expect("a number");
        assert!(before <= seen && seen <= after, "{before} <= {seen} <= {after} ({target:?})");
    }
}

#[test]
fn tick_period_and_on_tick() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "tick: 250");
        assert_eq!(vm.tick_period(), Duration::from_millis(250));
        vm.take_logs();
        vm.tick().expect("tick");
        vm.tick().expect("tick");
        assert_eq!(vm.metric("probe.ticks"), Some(2));
        let logs: Vec<String> = vm.take_logs().into_iter().map(|l| l.message).collect();
        assert_eq!(logs, ["tick 1", "tick 2"], "{target:?}");

        let idle = super::filters::vm(&host, "");
        assert_eq!(idle.tick_period(), Duration::ZERO);
    }
}

#[test]
fn header_maps_get_set_add_remove_with_pseudo_headers() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let mut request = Request::new("GET", "api.example", "/orig")
            .header("x-probe", "headers")
            .header("x-dup", "first")
            .add_header("x-dup", "second")
            .header("x-replace", "a")
            .add_header("x-replace", "b")
            .header("x-remove", "gone")
            .header("x-remove-too", "gone");
        request.headers.push(("x-binary".into(), vec![0xff, 0xfe, 0x01]));
        let sent = forwarded(run(&mut vm, &request));
        assert_eq!(
            sent.headers,
            vec![
                (":method".to_owned(), b"GET".to_vec()),
                (":scheme".into(), b"http".to_vec()),
                (":authority".into(), b"api.example".to_vec()),
                (":path".into(), b"/rewritten".to_vec()),
                ("x-probe".into(), b"headers".to_vec()),
                ("x-dup".into(), b"first".to_vec()),
                ("x-dup".into(), b"second".to_vec()),
                ("x-binary".into(), vec![0xff, 0xfe, 0x01]),
                ("x-r-end-of-stream".into(), b"true".to_vec()),
                (
                    "x-r-names".into(),
                    b":method,:scheme,:authority,:path,x-probe,x-dup,x-dup,x-replace,x-replace,x-remove,x-remove-too,x-binary,x-r-end-of-stream".to_vec()
                ),
                ("x-r-authority".into(), b"api.example".to_vec()),
                // Envoy hands a filter the first of repeated values.
                ("x-r-dup".into(), b"first".to_vec()),
                ("x-r-mixed-case".into(), b"first".to_vec()),
                ("x-r-absent".into(), b"none".to_vec()),
                ("x-r-binary".into(), b"fffe01".to_vec()),
                // Replacing a name drops its lines and adds one at the end,
                // as Envoy does (`e2e::shapes`).
                ("x-replace".into(), b"new".to_vec()),
                ("x-set".into(), b"set".to_vec()),
                ("x-multi".into(), b"two".to_vec()),
                ("x-r-response-headers-now".into(), b"0".to_vec()),
            ],
            "{target:?}"
        );

        let sent = forwarded(run(&mut vm, &probe("replace-headers")));
        assert_eq!(
            sent.headers,
            pairs(&[
                (":method", "PUT"),
                (":scheme", "http"),
                (":authority", "replaced.example"),
                (":path", "/replaced"),
                ("x-only", "yes"),
            ])
        );
    }
}

#[test]
fn vm_and_plugin_configuration() {
    for target in TARGETS {
        let options = HostOptions { vm_config: b"vm-settings".to_vec(), ..HostOptions::default() };
        let host = host_with(Filter::Probe, target, options);
        let mut vm = vm(&host, "mode: test\nflag: on");
        let outcome = run(&mut vm, &probe("config"));
        assert_eq!(
            reports(&forwarded(outcome)),
            expect(&[("vm-config", "vm-settings"), ("plugin-config", "mode: test;flag: on")]),
            "{target:?}"
        );
    }
}

fn auth_answer(status: u16, body: &str) -> (String, UpstreamResponse) {
    ("auth".into(), UpstreamResponse { status, headers: pairs(&[("x-answer", "42")]), body: body.as_bytes().to_vec() })
}

#[test]
fn an_answered_http_call_resumes_the_request() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let mut request = probe("http-call");
        request.http_call_answers.push(auth_answer(200, "alice"));
        let outcome = run(&mut vm, &request);
        assert_eq!(
            outcome.http_calls,
            [HttpCall {
                upstream: "auth".into(),
                headers: pairs(&[
                    (":method", "POST"),
                    (":path", "/check"),
                    (":authority", "auth.internal"),
                    ("x-caller", "probe")
                ]),
                body: b"who?".to_vec(),
                answered: true,
            }],
            "{target:?}"
        );
        assert_eq!(outcome.status, 200);
        assert_eq!(
            reports(&forwarded(outcome)),
            expect(&[
                ("call-status", "200"),
                ("call-body", "alice"),
                ("call-headers", "2"),
                ("call-answer-header", "42"),
                // No trailers: an empty map, as Envoy gives.
                ("call-trailers", "0/0"),
            ])
        );
    }
}

#[test]
fn an_http_call_answer_can_end_the_stream_with_a_local_response() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let mut request = probe("http-call").chunk("body that never goes anywhere");
        request.http_call_answers.push(auth_answer(401, "nope"));
        let outcome = run(&mut vm, &request);
        assert_eq!(outcome.forwarded, None, "{target:?}");
        assert_eq!(outcome.status, 403);
        let local = outcome.local_response.expect("a local response");
        assert_eq!((local.status, local.body.as_slice()), (403, &b"denied by auth: nope"[..]));
        assert_eq!(local.header("x-denied-by").as_deref(), Some("auth"));
        assert_eq!(outcome.response_body, b"denied by auth: nope");
        assert!(outcome.response_headers.is_empty());
    }
}

#[test]
fn http_calls_to_unknown_upstreams_or_without_required_headers_are_refused() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let mut request = probe("http-call-unknown");
        request.http_call_answers.push(auth_answer(200, "alice"));
        let outcome = run(&mut vm, &request);
        assert_eq!(outcome.forwarded, None);
        let local = outcome.local_response.expect("a local response");
        assert_eq!((local.status, local.body.as_slice()), (503, &b"call refused: BadArgument"[..]), "{target:?}");
        assert_eq!(outcome.http_calls.len(), 1);
        assert_eq!((outcome.http_calls[0].upstream.as_str(), outcome.http_calls[0].answered), ("nowhere", false));

        // A known upstream with no answer in this request: refused too.
        let outcome = run(&mut vm, &probe("http-call"));
        assert_eq!(outcome.local_response.map(|l| l.body), Some(b"call refused: BadArgument".to_vec()));

        // Envoy refuses a call without :authority whatever the upstream.
        let mut request = probe("http-call-no-authority");
        request.http_call_answers.push(auth_answer(200, "alice"));
        let outcome = run(&mut vm, &request);
        assert_eq!(outcome.http_calls.len(), 1);
        assert!(!outcome.http_calls[0].answered);
        assert_eq!(reports(&forwarded(outcome)), expect(&[("call-no-authority", "BadArgument")]));
    }
}

#[test]
fn grpc_calls_are_refused_as_an_unknown_cluster() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = run(&mut vm, &probe("grpc-call"));
        assert_eq!(reports(&forwarded(outcome)), expect(&[("grpc-call", "ParseFailure")]), "{target:?}");
    }
}

#[test]
fn a_local_response_ends_the_stream_and_nothing_is_forwarded() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = run(&mut vm, &probe("lifecycle,local-response").chunk("a").chunk("b"));
        assert_eq!(outcome.forwarded, None, "{target:?}");
        assert_eq!(outcome.status, 418);
        assert_eq!(outcome.response_body, b"I'm a teapot");
        let local = outcome.local_response.clone().expect("a local response");
        assert_eq!(local.headers, pairs(&[("x-teapot", "short and stout")]));
        assert_eq!(local.details, "");
        // The stream still ends properly: on_done, then on_log.
        let probe_logs: Vec<String> =
            logs_at(&outcome, "info").into_iter().filter(|m| m.starts_with("probe: on_")).collect();
        assert_eq!(probe_logs, ["probe: on_done", "probe: on_log"]);

        // Answering locally and continuing does not send the request on.
        let outcome = run(&mut vm, &probe("local-response-continue"));
        assert_eq!((outcome.forwarded, outcome.status), (None, 403));
    }
}

#[test]
fn a_request_paused_at_headers_gets_no_body_callbacks() {
    // Without the plugin's allow_on_headers_stop_iteration (the default),
    // Envoy's proxy-wasm host turns a paused headers callback into
    // StopAllIterationAndWatermark: the body is buffered and no data
    // callback runs until the stream is resumed, so a filter that waits
    // for its body before resuming stalls (as it does in Envoy:
    // e2e::header_hold measures it).
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = vm.run(&probe("pause").chunk("a").chunk("bc").chunk("def"));
        assert!(matches!(outcome.fault, Some(Fault::Stalled(_))), "{:?} ({target:?})", outcome.fault);
        assert_eq!(outcome.forwarded, None);
        assert_eq!(vm.fault(), None);
    }
}

#[test]
fn a_request_paused_for_good_stalls_but_the_vm_lives_on() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = vm.run(&probe("pause-forever"));
        assert!(matches!(outcome.fault, Some(Fault::Stalled(_))), "{:?} ({target:?})", outcome.fault);
        assert_eq!((outcome.forwarded, outcome.status), (None, 503));
        assert_eq!(vm.fault(), None, "a stalled stream is not a dead VM");
        assert!(run(&mut vm, &probe("")).forwarded.is_some());
    }
}

#[test]
fn a_body_can_be_prepended_or_appended_but_not_spliced() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let outcome = run(&mut vm, &probe("splice-body").chunk("abc").chunk("def"));
        // As Envoy's Buffer::copyFrom: the middle is refused, 0 prepends,
        // the end appends.
        assert_eq!(
            outcome.filter_state_str("wasm.probe.splice").as_deref(),
            Some("BadArgument Ok Ok <abcdef>"),
            "{target:?}"
        );
        assert_eq!(forwarded(outcome).body, b"<abcdef>");
    }
}

#[test]
fn the_response_passes_through_the_filter() {
    for target in TARGETS {
        let host = host(Filter::Probe, target);
        let mut vm = vm(&host, "");
        let mut request = probe("response-status,response-body");
        request.upstream = UpstreamResponse {
            status: 201,
            headers: pairs(&[("content-type", "text/plain")]),
            body: b"upstream body".to_vec(),
        };
        let outcome = run(&mut vm, &request);
        assert_eq!(outcome.status, 299, "{target:?}");
        assert_eq!(outcome.response_body, b"UPSTREAM BODY");
        assert_eq!(
            outcome.response_headers,
            pairs(&[(":status", "299"), ("content-type", "text/plain"), ("x-upstream-status", "201")])
        );

        // A local response from the response path replaces the upstream's.
        let outcome = run(&mut vm, &probe("response-local"));
        assert!(outcome.forwarded.is_some());
        assert_eq!(outcome.status, 502);
        assert_eq!(outcome.response_body, b"replaced upstream answer");
        assert_eq!(outcome.local_response.map(|l| l.headers), Some(pairs(&[("x-replaced", "yes")])));
    }
}
