#!/usr/bin/env node
// The in-VM cost of a proxy-wasm filter in V8, without Envoy.
//
// A minimal proxy-wasm host (the few imports a headers-only filter uses,
// each answering at once) runs the filter in Node's V8 -- the engine Envoy
// embeds -- and times one request: context create, on_request_headers,
// done, delete. Host calls here cost next to nothing, so the difference
// between two filters is the work they do inside the VM. Envoy's own cost
// per host call is what scripts/bench-envoy.py --breakdown measures.
//
//   python3 scripts/bench-envoy.py --print-policy 80 > /tmp/policy.json
//   node scripts/v8-filter-bench.js target/wasm/wasm32-wasip1/wasm/warden_filter.wasm /tmp/policy.json
//   node scripts/v8-filter-bench.js target/wasm/wasm32-wasip1/wasm/trivial_filter.wasm
//
// PEER_CERT=cert.pem: the connection also shows this client certificate
// (connection.peer_certificate and its first URI SAN), for a policy whose
// identity is the peer certificate.
//
// CONNECTION=1: a TLS passthrough connection through the network filter
// instead (plugin_root_id warden.network; the trivial filter's `network`
// configuration): context create, on_new_connection, the handshake's and
// the exchange's data callbacks (4 downstream, 4 upstream, as in
// scripts/bench-envoy-tls.py), both closes, done, log, delete. Server name
// `localhost`, destination port 8443, source 127.0.0.1:40000:
//
//   python3 scripts/bench-envoy-tls.py --print-policy 8443 > /tmp/tls-policy.json
//   CONNECTION=1 node scripts/v8-filter-bench.js target/wasm/wasm32-wasip1/wasm/warden_filter.wasm /tmp/tls-policy.json
//   CONNECTION=1 node scripts/v8-filter-bench.js target/wasm/wasm32-wasip1/wasm/trivial_filter.wasm network
//
// COLD=4096: before each request or connection, evict the caches by writing
// to a 4 MiB buffer, and time the filter's calls alone: the cost of its work
// when it runs cold, as inside Envoy, where Envoy's own work (the TLS
// handshake, the HTTP codec) runs between two calls into the filter.
'use strict';
const fs = require('fs');

const [wasmPath, configPath, iterations = '300000'] = process.argv.slice(2);
if (!wasmPath) {
  console.error('usage: v8-filter-bench.js FILTER.wasm [CONFIG.json] [ITERATIONS]');
  process.exit(2);
}
const connection = process.env.CONNECTION === '1';
// The trivial filter takes its steps as the configuration text.
const config = !configPath ? Buffer.alloc(0)
  : fs.existsSync(configPath) ? fs.readFileSync(configPath) : Buffer.from(configPath);
const enc = new TextEncoder();
const dec = new TextDecoder();

// The benchmark request of scripts/bench-envoy.py, with the headers Envoy adds.
const HEADERS = [
  [':authority', 'httpbin.org'], [':path', '/get'], [':method', 'GET'], [':scheme', 'http'],
  ['user-agent', 'wrk'], ['x-warden-principal', 'cluster.local/ns/default/sa/sleep'],
  ['x-forwarded-proto', 'http'], ['x-request-id', '0f8c3a1e-5a7e-4a43-9d6c-3e9b6b0a1f22'],
];

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

const headerMap = encodeMap(HEADERS);
const peerCert = process.env.PEER_CERT ? fs.readFileSync(process.env.PEER_CERT) : null;
const firstUriSan = peerCert ? enc.encode('spiffe://cluster.local/ns/default/sa/sleep') : null;
const destinationPort = new Uint8Array(8);
new DataView(destinationPort.buffer).setUint32(0, connection ? 8443 : 80, true);
const rootId = enc.encode(connection ? 'warden.network' : 'warden');
const serverName = enc.encode('localhost');
const sourceAddress = enc.encode('127.0.0.1:40000');

let guest;
let hostCalls = 0;
let localResponses = 0;
const view = () => new DataView(guest.memory.buffer);

/** Returns bytes to the guest as Envoy does: allocated by the guest's allocator. */
function give(bytes, retPtr, retSize) {
  const ptr = guest.proxy_on_memory_allocate(bytes.length);
  new Uint8Array(guest.memory.buffer).set(bytes, ptr);
  view().setUint32(retPtr, ptr, true);
  view().setUint32(retSize, bytes.length, true);
  return 0;
}

const NOT_FOUND = 1;
const env = new Proxy({}, {
  get(_, name) {
    switch (name) {
      case 'proxy_get_header_map_pairs':
        return (_type, retPtr, retSize) => { hostCalls++; return give(headerMap, retPtr, retSize); };
      case 'proxy_get_header_map_value':
        return (_type, keyPtr, keyLen, retPtr, retSize) => {
          hostCalls++;
          const key = dec.decode(new Uint8Array(guest.memory.buffer, keyPtr, keyLen));
          const found = HEADERS.find(([k]) => k === key);
          return found ? give(enc.encode(found[1]), retPtr, retSize) : NOT_FOUND;
        };
      case 'proxy_get_buffer_bytes':
        return (_type, _start, _max, retPtr, retSize) => give(config, retPtr, retSize);
      case 'proxy_get_property':
        return (pathPtr, pathLen, retPtr, retSize) => {
          hostCalls++;
          const path = dec.decode(new Uint8Array(guest.memory.buffer, pathPtr, pathLen));
          if (path.startsWith('destination\0port')) return give(destinationPort, retPtr, retSize);
          if (path.startsWith('plugin_root_id')) return give(rootId, retPtr, retSize);
          if (connection && path.startsWith('connection\0requested_server_name')) return give(serverName, retPtr, retSize);
          if (connection && path.startsWith('source\0address')) return give(sourceAddress, retPtr, retSize);
          if (peerCert && path.startsWith('connection\0peer_certificate')) return give(peerCert, retPtr, retSize);
          if (peerCert && path.startsWith('connection\0uri_san_peer_certificate')) return give(firstUriSan, retPtr, retSize);
          return NOT_FOUND;
        };
      case 'proxy_define_metric':
        return (_type, _namePtr, _nameLen, retId) => { view().setUint32(retId, 1, true); return 0; };
      case 'proxy_set_property':
      case 'proxy_increment_metric':
      case 'proxy_replace_header_map_value':
        return () => { hostCalls++; return 0; };
      case 'proxy_send_local_response':
      case 'proxy_close_downstream':
        return () => { hostCalls++; localResponses++; return 0; };
      default:
        return () => 0;
    }
  },
});
const wasi = new Proxy({}, { get: () => () => 0 });

const wasmModule = new WebAssembly.Module(fs.readFileSync(wasmPath));
guest = new WebAssembly.Instance(wasmModule, { env, wasi_snapshot_preview1: wasi }).exports;
if (guest._initialize) guest._initialize();
guest.proxy_on_context_create(1, 0);
guest.proxy_on_vm_start(1, 0);
if (!guest.proxy_on_configure(1, config.length)) {
  console.error(`${wasmPath}: proxy_on_configure refused the configuration`);
  process.exit(1);
}

function runRequests(count, firstId) {
  for (let id = firstId; id < firstId + count; id++) {
    guest.proxy_on_context_create(id, 1);
    guest.proxy_on_request_headers(id, HEADERS.length, 1);
    guest.proxy_on_done(id);
    guest.proxy_on_delete(id);
  }
}

function runConnections(count, firstId) {
  for (let id = firstId; id < firstId + count; id++) {
    guest.proxy_on_context_create(id, 1);
    guest.proxy_on_new_connection(id);
    for (let i = 0; i < 4; i++) {
      guest.proxy_on_downstream_data(id, 512, 0);
      guest.proxy_on_upstream_data(id, 512, 0);
    }
    guest.proxy_on_downstream_connection_close(id, 1);
    guest.proxy_on_upstream_connection_close(id, 1);
    guest.proxy_on_done(id);
    guest.proxy_on_log(id);
    guest.proxy_on_delete(id);
  }
}

// COLD (see the header): one byte of every 64-byte line of the buffer is
// written between two requests or connections, and only the filter's calls
// are timed.
const coldKiB = Number(process.env.COLD || 0);
const thrash = new Uint8Array(coldKiB << 10);
function evict() {
  for (let i = 0; i < thrash.length; i += 64) thrash[i]++;
}
const each = connection ? runConnections : runRequests;
let coldNs = 0n;
const run = coldKiB ? (count, firstId) => {
  for (let id = firstId; id < firstId + count; id++) {
    evict();
    const t = process.hrtime.bigint();
    each(1, id);
    coldNs += process.hrtime.bigint() - t;
  }
} : each;

const n = Number(iterations);
run(50000, 10); // warm-up: lets V8 tier up
hostCalls = 0;
localResponses = 0;
coldNs = 0n;
const start = process.hrtime.bigint();
run(n, 100000);
const ns = coldKiB ? Number(coldNs) / n : Number(process.hrtime.bigint() - start) / n;
const unit = connection ? 'connection' : 'request';
console.log(`${wasmPath.split('/').pop()}: ${ns.toFixed(0)} ns/${unit}, ` +
  `${(hostCalls / n).toFixed(1)} host calls/${unit}, ${localResponses} local ${connection ? 'closes' : 'responses'}`);
