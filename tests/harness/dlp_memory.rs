//! The filter's memory while a request body streams through DLP: bounded
//! by `maxBodyBytes`, never by the body's size. The goal: a
//! 100 MiB body scanned in AUDIT grows the filter's linear memory by less
//! than `maxBodyBytes` + 1 MiB.
//!
//! Wasm memory only grows, so the VM's memory size after a stream is its
//! peak during the stream; the growth a stream caused is the size after it
//! minus the size after a warm-up request (which sizes the allocator for
//! one chunk and the scanner's window).

use serde_json::{json, Value};
use warden::harness::{Host, HostOptions, Outcome, Request, Vm};

/// What Envoy typically hands a filter per data callback.
const CHUNK: usize = 64 << 10;
/// The policies' `maxBodyBytes`.
const MAX_BODY: usize = 1 << 20;

const AWS_KEY: &str = "AKIAZ7VQ2XK4MHL3RWTN";
const CARD: &str = "4111 1111 1111 1111";
const GITHUB_TOKEN: &str = "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";
const EMAIL: &str = "jane.doe@acme-corp.io";

fn host() -> Host {
    Host::new(warden::FILTER_WASM, HostOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn policy(action: &str) -> String {
    format!(
        r#"{{"name":"memory","outboundTrafficPolicy":"ALLOW_ANY",
            "dlp":[{{"name":"scan","action":"{action}","maxBodyBytes":{MAX_BODY}}}]}}"#
    )
}

/// The negative corpus's log lines (`events.jsonl`, no findings) without
/// JSON escapes, so offsets in the decoded body are offsets in the bytes.
fn log_lines() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/engine/tests/data/dlp/corpus/events.jsonl");
    let text = std::fs::read(path).expect("the DLP corpus");
    let lines: Vec<Vec<u8>> = text
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| !line.contains(&b'\\') && line.ends_with(b"\n"))
        .map(<[u8]>::to_vec)
        .collect();
    assert!(lines.len() > 100, "the corpus has log lines");
    lines
}

/// A request body of exactly `size` bytes written straight into
/// [`CHUNK`]-sized request chunks: corpus log lines over and over, and a
/// log line carrying each planted secret at exactly its offset.
struct Body {
    chunks: Vec<Vec<u8>>,
    len: usize,
    size: usize,
}

impl Body {
    /// `plants`: (secret, offset), by offset.
    fn new(size: usize, plants: &[(&str, usize)]) -> Body {
        const PREFIX: &str =
            r#"{"ts":"2024-02-01T00:00:00.000Z","level":"info","service":"billing","event":"note","value":""#;
        const SUFFIX: &str = "\"}\n";
        const PAD: (&str, &str) = (r#"{"pad":""#, "\"}\n");
        let lines = log_lines();
        let mut body = Body { chunks: Vec::with_capacity(size / CHUNK + 1), len: 0, size };
        let mut next = lines.iter().cycle();
        for &(secret, at) in plants {
            let line_start = at - PREFIX.len();
            loop {
                let line = next.next().expect("cycle");
                if body.len + line.len() + PAD.0.len() + PAD.1.len() > line_start {
                    break;
                }
                body.push(line);
            }
            let fill = line_start - body.len - PAD.0.len() - PAD.1.len();
            body.push(PAD.0.as_bytes());
            body.push(&vec![b'x'; fill]);
            body.push(PAD.1.as_bytes());
            assert_eq!(body.len + PREFIX.len(), at);
            body.push(format!("{PREFIX}{secret}{SUFFIX}").as_bytes());
        }
        while body.len < size {
            body.push(next.next().expect("cycle"));
        }
        body
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.len < self.size {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
            let last = self.chunks.last_mut().expect("a chunk");
            let take = (CHUNK - last.len()).min(bytes.len()).min(self.size - self.len);
            last.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.len += take;
        }
    }

    fn request(self) -> Request {
        let mut request =
            Request::new("POST", "api.example.com", "/v1/logs").header("content-type", "application/json");
        request.body_chunks = self.chunks;
        request
    }
}

/// Runs `request`, which must be allowed with its whole body forwarded;
/// returns the outcome and the decision record.
fn forwarded(vm: &mut Vm, request: &Request) -> (Outcome, Value) {
    let outcome = vm.run(request);
    assert_eq!(outcome.fault, None, "logs: {:?}", outcome.logs);
    assert_eq!(outcome.status, 200, "logs: {:?}", outcome.logs);
    let record = outcome.filter_state_str("wasm.warden.decision").expect("a decision record");
    let record: Value = serde_json::from_str(&record).expect("the record is JSON");
    let sent: usize = request.body_chunks.iter().map(Vec::len).sum();
    let body = &outcome.forwarded.as_ref().expect("forwarded").body;
    assert_eq!(body.len(), sent, "the whole body is forwarded");
    (outcome, record)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[test]
fn streaming_100_mib_in_audit_stays_under_max_body_bytes_plus_1_mib() {
    let host = host();
    let mut vm = host.vm(policy("AUDIT").as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let started = vm.memory_bytes();

    // Warm-up: a small body with a finding.
    let (_, record) = forwarded(&mut vm, &Body::new(2 * CHUNK, &[(AWS_KEY, 1000)]).request());
    assert_eq!(record["findings"], json!(["aws_access_key_id"]));
    let warm = vm.memory_bytes();

    // 100 MiB in 1600 chunks of 64 KiB, four secrets planted, one of them
    // across the boundary between chunks 800 and 801.
    let size = 100 << 20;
    let plants = [(AWS_KEY, 5_000_003), (CARD, 800 * CHUNK - 9), (GITHUB_TOKEN, 90 << 20), (EMAIL, size - 10_000)];
    let request = Body::new(size, &plants).request();
    assert_eq!(request.body_chunks.len(), 1600);
    let (outcome, record) = forwarded(&mut vm, &request);
    let peak = vm.memory_bytes();

    let body = &outcome.forwarded.as_ref().expect("forwarded").body;
    for (i, chunk) in request.body_chunks.iter().enumerate() {
        assert!(body[i * CHUNK..][..chunk.len()] == chunk[..], "chunk {i} is forwarded unchanged");
    }
    assert_eq!(record["decision"], "allow", "{record}");
    assert_eq!(record["findings"], json!(["aws_access_key_id", "credit_card", "github_token", "email"]));
    let at = |id: &str, offset: usize| json!({"id": id, "in": "body", "offset": offset, "action": "AUDIT"});
    assert_eq!(
        record["findingsAt"],
        json!([
            at("aws_access_key_id", plants[0].1),
            at("credit_card", plants[1].1),
            at("github_token", plants[2].1),
            at("email", plants[3].1)
        ])
    );
    assert_eq!(record["audit"], json!(["scan"]));
    assert!(record.get("bodyUnscanned").is_none(), "{record}");

    let growth = peak - warm;
    eprintln!(
        "filter memory: {:.2} MiB configured, {:.2} MiB after the warm-up, {:.2} MiB after the 100 MiB body: \
         grew {:.3} MiB (limit: maxBodyBytes + 1 MiB = {:.0} MiB)",
        mib(started),
        mib(warm),
        mib(peak),
        mib(growth),
        mib(MAX_BODY + (1 << 20))
    );
    assert!(growth < MAX_BODY + (1 << 20), "the filter grew by {growth} bytes streaming a 100 MiB body");
}

/// The measurement sees body-sized buffers in the filter: a REDACT body is
/// held and masked whole inside the VM, so its size shows.
#[test]
fn a_body_held_for_redaction_shows_in_the_filters_memory() {
    let host = host();
    let redact = policy("REDACT").replace(&format!(":{MAX_BODY}"), &format!(":{}", 16 << 20));
    let mut vm = host.vm(redact.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    forwarded(&mut vm, &Body::new(2 * CHUNK, &[(CARD, 1000)]).request());
    let warm = vm.memory_bytes();

    let size = 8 << 20;
    let request = Body::new(size, &[(CARD, 4 << 20)]).request();
    let (outcome, record) = forwarded(&mut vm, &request);
    let growth = vm.memory_bytes() - warm;
    assert_eq!(record["findings"], json!(["credit_card"]), "{record}");
    let body = &outcome.forwarded.as_ref().expect("forwarded").body;
    let masked = &body[4 << 20..][..CARD.len()];
    assert!(masked != CARD.as_bytes() && masked.ends_with(b"1111"), "{}", String::from_utf8_lossy(masked));
    eprintln!("filter memory: grew {:.2} MiB holding and masking an 8 MiB body", mib(growth));
    // Memory freed after the warm-up is reused, so a little under 8 MiB.
    assert!(growth >= size - (1 << 20), "a held 8 MiB body grew the filter by only {growth} bytes");
    // One copy: the body is masked in place, not into a second buffer.
    assert!(growth < size + size / 2, "holding an 8 MiB body grew the filter by {growth} bytes");
}

/// The heap's movement the filter reports (a host call each time).
const HEAP_STEP: usize = 64 << 10;

/// The gauges `warden.vm_memory_bytes` and `warden.vm_heap_bytes`, read.
fn gauges(vm: &Vm) -> (usize, usize) {
    let read = |name: &str| {
        let value = vm.metric(name).unwrap_or_else(|| panic!("{name} is defined: {:?}", vm.metrics()));
        usize::try_from(value).unwrap_or_else(|_| panic!("{name} is {value}"))
    };
    (read("warden.vm_memory_bytes"), read("warden.vm_heap_bytes"))
}

/// The filter reports its own memory: the linear memory exactly, and the
/// bytes its allocator has out, which go back down once a held body is
/// gone (a leak would keep them up). Reports are made as the next stream
/// starts, so a small request follows each measured one.
#[test]
fn the_filter_reports_its_memory_and_heap_as_gauges() {
    let host = host();
    let redact = policy("REDACT").replace(&format!(":{MAX_BODY}"), &format!(":{}", 16 << 20));
    let mut vm = host.vm(redact.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let (memory, heap) = gauges(&vm);
    assert_eq!(memory, vm.memory_bytes(), "the gauge is the VM's memory once configured");
    // The compiled policy and its scanner are on the heap, within the memory.
    assert!(heap > 64 << 10 && heap < memory, "heap {heap} of memory {memory}");

    let small = || Body::new(2 * CHUNK, &[(CARD, 1000)]).request();
    forwarded(&mut vm, &small());
    forwarded(&mut vm, &small());
    let (_, warm_heap) = gauges(&vm);

    // An 8 MiB body held and masked: the memory grows for it; once it is
    // forwarded and the stream gone, the heap is back where it was.
    forwarded(&mut vm, &Body::new(8 << 20, &[(CARD, 4 << 20)]).request());
    forwarded(&mut vm, &small());
    let (memory, heap) = gauges(&vm);
    let vm_memory_after = memory;
    assert_eq!(memory, vm.memory_bytes(), "the gauge follows the memory's growth");
    assert!(memory > 8 << 20, "memory {memory} after holding 8 MiB");
    assert!(heap.abs_diff(warm_heap) <= 2 * HEAP_STEP, "heap {heap} after, {warm_heap} before");

    // What stays allocated shows: a VM holding a policy of 2,000 services
    // reports a larger heap than one holding a policy of none.
    let services: Vec<Value> =
        (0..2000).map(|i| json!({"name": format!("svc-{i}"), "hosts": [format!("svc-{i}.example.com")]})).collect();
    let large = json!({"name": "large", "outboundTrafficPolicy": "REGISTRY_ONLY", "services": services});
    let vm = host.vm(large.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let (memory, large_heap) = gauges(&vm);
    assert_eq!(memory, vm.memory_bytes());
    let empty = host.vm(br#"{"name":"empty","outboundTrafficPolicy":"ALLOW_ANY"}"#).unwrap_or_else(|e| panic!("{e}"));
    let (_, empty_heap) = gauges(&empty);
    eprintln!(
        "filter gauges: memory {:.2} MiB, heap {:.2} MiB after the 8 MiB body ({:.2} MiB before); \
         heap {:.2} MiB with 2,000 services, {:.2} MiB with none",
        mib(vm_memory_after),
        mib(heap),
        mib(warm_heap),
        mib(large_heap),
        mib(empty_heap)
    );
    assert!(large_heap > empty_heap + (256 << 10), "2,000 services: heap {large_heap}; none: {empty_heap}");
}

/// Held bodies back to back, each with a finding to mask: the filter
/// reads a body into the VM a piece (1 MiB) at a time, to scan it and to
/// mask it, so a VM holds one body and a piece or two, whatever came
/// before. (When it read a body that arrived in one callback whole, and
/// then read it whole again to mask it, six 8 MiB bodies grew it by 8 and
/// then 24 MiB.) The bound the docs give per held body.
#[test]
fn held_bodies_back_to_back_stay_within_one_body_and_two_pieces_of_memory() {
    let host = host();
    let redact = policy("REDACT").replace(&format!(":{MAX_BODY}"), &format!(":{}", 16 << 20));
    let mut vm = host.vm(redact.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    forwarded(&mut vm, &Body::new(2 * CHUNK, &[(CARD, 1000)]).request());
    let base = vm.memory_bytes();
    let size = 8 << 20;
    let mut after = Vec::new();
    for _ in 0..6 {
        forwarded(&mut vm, &Body::new(size, &[(CARD, size / 2)]).request());
        after.push(vm.memory_bytes() - base);
    }
    let shown: Vec<String> = after.iter().map(|&b| format!("{:.2}", mib(b))).collect();
    eprintln!("filter memory over six 8 MiB bodies held back to back: {} MiB over the warm VM", shown.join(", "));
    let peak = after.iter().copied().max().unwrap_or_default();
    let piece = 1 << 20;
    assert!(peak <= size + 2 * piece + (1 << 20), "six held 8 MiB bodies grew the filter by {peak} bytes");
    assert_eq!(after[2..].iter().max(), after[2..].iter().min(), "no growth after the second body: {shown:?}");
}

/// A body that arrives in one callback (as when paused headers resume) is
/// read into the VM a piece (1 MiB) at a time: a secret across two pieces
/// is still found, masked in place under REDACT and refused under BLOCK.
#[test]
fn a_secret_across_two_pieces_of_one_callbacks_body_is_found() {
    let host = host();
    let at = (1 << 20) - 7;
    let whole: Vec<u8> = Body::new(3 << 20, &[(CARD, at)]).chunks.concat();
    assert_eq!(&whole[at..at + CARD.len()], CARD.as_bytes());
    let mut request = Request::new("POST", "api.example.com", "/v1/logs").header("content-type", "application/json");
    request.body_chunks = vec![whole.clone()];
    let limit = |p: String| p.replace(&format!(":{MAX_BODY}"), &format!(":{}", 16 << 20));

    let mut vm = host.vm(limit(policy("REDACT")).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let (outcome, record) = forwarded(&mut vm, &request);
    assert_eq!(record["findings"], json!(["credit_card"]), "{record}");
    let body = &outcome.forwarded.as_ref().expect("forwarded").body;
    assert_eq!(&body[at..at + CARD.len()], b"***************1111");
    assert_eq!(body[..at], whole[..at]);
    assert_eq!(body[at + CARD.len()..], whole[at + CARD.len()..]);

    let mut vm = host.vm(limit(policy("BLOCK")).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let outcome = vm.run(&request);
    assert_eq!(outcome.fault, None, "logs: {:?}", outcome.logs);
    assert_eq!(outcome.status, 403);
    assert!(outcome.forwarded.is_none(), "a blocked body is not forwarded");
}
