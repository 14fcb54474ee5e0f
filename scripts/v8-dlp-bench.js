#!/usr/bin/env node
// DLP scan throughput of proxy-wasm filters in V8 (the engine Envoy
// embeds), without Envoy: the same request bodies, in 64 KiB chunks (or
// --chunk-kib), through each filter's body hook, behind a stub host whose
// calls cost nothing but copying the chunk into the VM (as Envoy does).
//
// Inputs (the same bytes as benches/dlp.rs and benches/dlp_filter.rs): the
// DLP negative corpus's clean JSON (orders.json + events.jsonl +
// images.json, ~0.92 MiB) and 1 MiB of digit-dense JSON; and three more
// kinds of payload from the corpus, each as one body: its form bodies
// (form.txt, 98 KiB, application/x-www-form-urlencoded), its Kubernetes
// manifests (manifests.yaml, 148 KiB, application/yaml) and its npm
// lockfile (package-lock.json, 257 KiB, application/json).
//
// Every filter gets the same plugin configuration: a Warden policy with one
// AUDIT DLP policy of the whole catalogue (the body streams, nothing held).
// The first filter is also run with a policy without DLP (the cost of the
// hook calls alone); the ratios are to the second filter, the baseline.
//
//   cargo build -p warden-filter -p regexset-filter --lib --target wasm32-wasip1 --profile wasm --target-dir target/wasm
//   cargo build -p regexset-filter --features perf --lib --target wasm32-wasip1 --profile wasm \
//        --target-dir target/wasm-regex-perf
//   node scripts/v8-dlp-bench.js warden=target/wasm/wasm32-wasip1/wasm/warden_filter.wasm \
//        regexset=target/wasm/wasm32-wasip1/wasm/regexset_filter.wasm \
//        regexset-perf=target/wasm-regex-perf/wasm32-wasip1/wasm/regexset_filter.wasm \
//        [--seconds 3] [--chunk-kib 64]
//
// A filter is LABEL=PATH or just PATH. The no-DLP run reads no body (Warden
// skips the body hook's work without DLP): it is the per-request floor.
'use strict';
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
let seconds = 3;
let chunkSize = 64 << 10;
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--seconds') seconds = Number(args[++i]);
  else if (args[i] === '--chunk-kib') chunkSize = Number(args[++i]) << 10;
  else {
    // LABEL=PATH, or PATH (labelled by its file name).
    const [label, file] = args[i].includes('=') ? args[i].split(/=(.*)/s) : [path.basename(args[i]), args[i]];
    filters.push({ label, path: file });
  }
}
if (filters.length < 2 || !(seconds > 0) || !(chunkSize > 0)) {
  console.error('usage: v8-dlp-bench.js [LABEL=]WARDEN.wasm [LABEL=]BASELINE.wasm [[LABEL=]MORE.wasm ...] ' +
    '[--seconds S] [--chunk-kib K]');
  process.exit(2);
}

const DLP_POLICY = '{"name":"bench","outboundTrafficPolicy":"ALLOW_ANY","dlp":[{"name":"audit","action":"AUDIT"}]}';
const NO_DLP_POLICY = '{"name":"bench","outboundTrafficPolicy":"ALLOW_ANY"}';
const enc = new TextEncoder();
const dec = new TextDecoder();

function cleanJson() {
  const dir = path.join(__dirname, '..', 'engine', 'tests', 'data', 'dlp', 'corpus');
  const parts = ['orders.json', 'events.jsonl', 'images.json'].map((f) => fs.readFileSync(path.join(dir, f)));
  return Buffer.concat(parts).subarray(0, 1 << 20);
}

/** benches/dlp.rs's digit_dense(), byte for byte. */
function digitDense(size) {
  const mask = (1n << 64n) - 1n;
  let n = 7_340_123_456_789n;
  const parts = [];
  let len = 0;
  while (len < size) {
    n = (n * 6_364_136_223_846_793_005n + 1_442_695_040_888_963_407n) & mask;
    const id = 1_000_000_000_000_000n + (n % 8_000_000_000_000_000n);
    const ts = 1_700_000_000_000n + (n % 100_000_000_000n);
    const s = `{"order":${id},"ts":${ts},"amount":${n % 100_000n}.${String(n % 100n).padStart(2, '0')}},`;
    parts.push(s);
    len += s.length;
  }
  return Buffer.from(parts.join(''));
}

/** The proxy-wasm map encoding: count, (key len, value len)*, then key\0 value\0 ... */
function encodeMap(pairs) {
  const encoded = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4 + pairs.length * 8;
  for (const [k, v] of encoded) size += k.length + v.length + 2;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, pairs.length, true);
  let at = 4 + pairs.length * 8;
  encoded.forEach(([k, v], i) => {
    view.setUint32(4 + i * 8, k.length, true);
    view.setUint32(8 + i * 8, v.length, true);
    bytes.set(k, at); at += k.length + 1;
    bytes.set(v, at); at += v.length + 1;
  });
  return bytes;
}

/** The request's headers, with the input's content type (the filter decodes the body by it). */
function headersFor(contentType) {
  return [
    [':authority', 'api.example.com'], [':path', '/v1/upload'], [':method', 'POST'], [':scheme', 'http'],
    ['content-type', contentType], ['user-agent', 'bench'], ['x-request-id', '0f8c3a1e-5a7e-4a43-9d6c-3e9b6b0a1f22'],
  ];
}
let HEADERS = headersFor('application/json');
let headerMap = encodeMap(HEADERS);
const destinationPort = new Uint8Array(8);
new DataView(destinationPort.buffer).setUint32(0, 80, true);

const BUFFER_REQUEST_BODY = 0;
const BUFFER_PLUGIN_CONFIGURATION = 7;
const NOT_FOUND = 1;

/** One filter VM behind a stub host. */
function startVm(wasmPath, config) {
  const vm = { exports: null, body: new Uint8Array(0), metrics: new Map(), bodyBytesRead: 0 };
  const mem = () => vm.exports.memory.buffer;
  const give = (bytes, retPtr, retSize) => {
    const ptr = vm.exports.proxy_on_memory_allocate(bytes.length);
    new Uint8Array(mem()).set(bytes, ptr);
    const view = new DataView(mem());
    view.setUint32(retPtr, ptr, true);
    view.setUint32(retSize, bytes.length, true);
    return 0;
  };
  const env = new Proxy({}, {
    get(_, name) {
      switch (name) {
        case 'proxy_get_header_map_pairs':
          return (_type, retPtr, retSize) => give(headerMap, retPtr, retSize);
        case 'proxy_get_header_map_value':
          return (_type, keyPtr, keyLen, retPtr, retSize) => {
            const key = dec.decode(new Uint8Array(mem(), keyPtr, keyLen));
            const found = HEADERS.find(([k]) => k === key);
            return found ? give(enc.encode(found[1]), retPtr, retSize) : NOT_FOUND;
          };
        case 'proxy_get_buffer_bytes':
          return (type, start, max, retPtr, retSize) => {
            // i32 arguments arrive signed: usize::MAX is -1.
            start >>>= 0;
            max >>>= 0;
            const source = type === BUFFER_PLUGIN_CONFIGURATION ? config : type === BUFFER_REQUEST_BODY ? vm.body : null;
            if (!source) return NOT_FOUND;
            const bytes = source.subarray(start, Math.min(source.length, start + max));
            if (type === BUFFER_REQUEST_BODY) vm.bodyBytesRead += bytes.length;
            return give(bytes, retPtr, retSize);
          };
        case 'proxy_get_property':
          return (pathPtr, pathLen, retPtr, retSize) => {
            const p = dec.decode(new Uint8Array(mem(), pathPtr, pathLen));
            return p.startsWith('destination\0port') ? give(destinationPort, retPtr, retSize) : NOT_FOUND;
          };
        case 'proxy_define_metric':
          return (_type, namePtr, nameLen, retId) => {
            const metricName = dec.decode(new Uint8Array(mem(), namePtr, nameLen));
            const id = vm.metrics.size + 1;
            vm.metrics.set(id, { name: metricName, value: 0 });
            new DataView(mem()).setUint32(retId, id, true);
            return 0;
          };
        case 'proxy_increment_metric':
          return (id, delta) => {
            const m = vm.metrics.get(id);
            if (m) m.value += Number(delta);
            return 0;
          };
        case 'proxy_log':
          return (level, msgPtr, msgLen) => {
            if (level >= 3) console.error(`${path.basename(wasmPath)}: ${dec.decode(new Uint8Array(mem(), msgPtr, msgLen))}`);
            return 0;
          };
        case 'proxy_send_local_response':
          return () => { throw new Error(`${wasmPath}: sent a local response`); };
        default:
          return () => 0;
      }
    },
  });
  const wasi = new Proxy({}, { get: () => () => 0 });
  const module = new WebAssembly.Module(fs.readFileSync(wasmPath));
  vm.exports = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi }).exports;
  const g = vm.exports;
  if (g._initialize) g._initialize();
  g.proxy_on_context_create(1, 0);
  g.proxy_on_vm_start(1, 0);
  if (!g.proxy_on_configure(1, config.length)) {
    console.error(`${wasmPath}: proxy_on_configure refused the configuration`);
    process.exit(1);
  }
  vm.nextId = 2;
  return vm;
}

/** One POST with `chunks` as its body through `vm` (every chunk let go: Continue). */
function request(vm, chunks) {
  const g = vm.exports;
  const id = vm.nextId++;
  g.proxy_on_context_create(id, 1);
  g.proxy_on_request_headers(id, HEADERS.length, 0);
  for (let i = 0; i < chunks.length; i++) {
    vm.body = chunks[i];
    const action = g.proxy_on_request_body(id, chunks[i].length, i + 1 === chunks.length ? 1 : 0);
    if (action !== 0) throw new Error('the filter paused a streamed body');
    vm.body = new Uint8Array(0);
  }
  g.proxy_on_done(id);
  g.proxy_on_delete(id);
}

/** MiB/s of `vm` on `chunks`: warm-up (V8 tiers up), then at least `seconds`. */
function measure(vm, chunks, bytes) {
  const warmUntil = process.hrtime.bigint() + 1_000_000_000n;
  let n = 0;
  do { request(vm, chunks); n++; } while (process.hrtime.bigint() < warmUntil || n < 2);
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let runs = 0;
  let now;
  do { request(vm, chunks); runs++; now = process.hrtime.bigint(); } while (now < end || runs < 3);
  const s = Number(now - start) / 1e9;
  return { mibs: (bytes * runs) / s / (1 << 20), msPerBody: (s * 1000) / runs, runs };
}

/** One file of the negative corpus, sent whole as one body. */
function corpusFile(name) {
  return fs.readFileSync(path.join(__dirname, '..', 'engine', 'tests', 'data', 'dlp', 'corpus', name));
}

const JSON_TYPE = 'application/json';
const inputs = [
  ['clean JSON', cleanJson(), JSON_TYPE],
  ['digit-dense', digitDense(1 << 20), JSON_TYPE],
  ['form bodies', corpusFile('form.txt'), 'application/x-www-form-urlencoded'],
  ['YAML manifests', corpusFile('manifests.yaml'), 'application/yaml'],
  ['npm lockfile', corpusFile('package-lock.json'), JSON_TYPE],
];
const dlpConfig = Buffer.from(DLP_POLICY);
const vms = [
  { label: `${filters[0].label} (no DLP)`, vm: startVm(filters[0].path, Buffer.from(NO_DLP_POLICY)) },
  ...filters.map((f) => ({ label: f.label, vm: startVm(f.path, dlpConfig) })),
];
const baseline = vms[2];
console.log(`V8 ${process.versions.v8}, ${chunkSize >> 10} KiB chunks, >= ${seconds} s per measurement`);
for (const [name, data, contentType] of inputs) {
  HEADERS = headersFor(contentType);
  headerMap = encodeMap(HEADERS);
  const chunks = [];
  for (let at = 0; at < data.length; at += chunkSize) chunks.push(new Uint8Array(data.subarray(at, at + chunkSize)));
  console.log(`\n${name}: ${data.length} bytes in ${chunks.length} chunks`);
  const results = vms.map(({ label, vm }) => {
    vm.bodyBytesRead = 0;
    const r = measure(vm, chunks, data.length);
    return { label, ...r };
  });
  const base = results[vms.indexOf(baseline)].mibs;
  for (const r of results) {
    if (r.label.endsWith('(no DLP)')) {
      // No body is read: the floor of a request with a body in this host.
      console.log(`  ${r.label.padEnd(24)} ${(r.msPerBody * 1000).toFixed(1).padStart(9)} µs/request (reads no body)`);
      continue;
    }
    console.log(`  ${r.label.padEnd(24)} ${r.mibs.toFixed(1).padStart(9)} MiB/s  ${r.msPerBody.toFixed(2).padStart(9)} ms/body` +
      `  ${(r.mibs / base).toFixed(2).padStart(7)}x baseline  (${r.runs} runs)`);
  }
}
for (const { label, vm } of vms) {
  const counters = [...vm.metrics.values()].filter((m) => m.value > 0).map((m) => `${m.name}=${m.value}`);
  if (counters.length) console.log(`${label}: ${counters.join(' ')}`);
}
