// Runs a wasm32-wasip1 program (a test binary built by cargo) in V8, the
// engine Envoy embeds, through Node's WASI: the arguments after the module
// go to the program. Used by scripts/v8-simd-tests.sh.
//
//   node --no-warnings scripts/wasi-run.mjs PROGRAM.wasm [ARGS...]
import { readFile } from 'node:fs/promises';
import { argv, exit } from 'node:process';
import { WASI } from 'node:wasi';

if (argv.length < 3) {
  console.error('usage: wasi-run.mjs PROGRAM.wasm [ARGS...]');
  exit(2);
}
const wasi = new WASI({ version: 'preview1', args: argv.slice(2), env: {}, preopens: { '/': '/' } });
const module = await WebAssembly.compile(await readFile(argv[2]));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
