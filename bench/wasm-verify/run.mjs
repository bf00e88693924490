// Times the Worker's token check in V8: node run.mjs path/to/tollgate_bench_wasm.wasm
// Prints one JSON object: ns per verify+decide and per sign, for EdDSA and HS256.
import { readFileSync } from "node:fs";

const bytes = readFileSync(process.argv[2]);
const { instance } = await WebAssembly.instantiate(bytes, {});
const w = instance.exports;
w.setup();

function time(fn, alg, target) {
  fn(alg, 20); // first calls: compile tiers
  let n = 20;
  for (;;) {
    const t0 = process.hrtime.bigint();
    const ok = fn(alg, n);
    const ns = Number(process.hrtime.bigint() - t0);
    if (ok === 0) throw new Error("verification failed");
    if (ns > target) return ns / n;
    n *= 2;
  }
}

const out = { engine: `node ${process.version} (V8 ${process.versions.v8})`, wasm_bytes: bytes.length };
for (const [alg, name] of [[0, "EdDSA"], [1, "HS256"]]) {
  const samples = [];
  for (let i = 0; i < 5; i++) samples.push(time(w.verify_decide, alg, 3e8));
  samples.sort((a, b) => a - b);
  out[`${name}_verify_decide_ns`] = samples[2];
  out[`${name}_sign_ns`] = time(w.sign, alg, 3e8);
}
console.log(JSON.stringify(out));
