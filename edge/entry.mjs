// The Worker's entry: worker-build's (edge/build/index.js) with the requests it can take on
// without awaiting inside the wasm driven from here, in JS. scripts/build-edge.sh copies this
// file next to worker-build's output as edge/build/entry.mjs, which wrangler.toml serves
// (`main`), hence the `./index.js` import.
//
// Awaiting inside the wasm costs more CPU than a whole JS pass-through (BENCHMARKS.md, issue 8
// §6), so the Rust code decides in synchronous steps (edge/src/entry.rs) and the awaits are here:
// - a public route: `FastPath.take` makes the routing decision, builds the outbound request and
//   hands back the pending subrequest;
// - a protected route with a token this isolate verified before: it hands back an `InFlight`,
//   whose Upstash lookup, assertion signature (WebCrypto) and forward are awaited here between
//   its synchronous steps, which decide exactly as the full handler does;
// - anything else goes to the full Rust handler, as before.
// Extending worker-build's entrypoint keeps its panic recovery: its proxy wraps this `fetch` too,
// and a trap in either half resets the wasm for the next request.
import Rust, { FastPath, InFlight } from "./index.js";

export default class Edge extends Rust {
  fetch(request) {
    const started = Date.now();
    const taken = FastPath.take(request, this.env, started);
    if (taken === undefined) return super.fetch(request);
    if (taken instanceof InFlight) return protectedRoute(taken);
    return taken.catch((cause) => FastPath.unreachable(request, this.env, cause, started));
  }
}

async function protectedRoute(inFlight) {
  try {
    const next = inFlight.decide(await inFlight.lookup);
    if (next === undefined) return await inFlight.originDecides();
    if (next instanceof Response) return next;
    let signature;
    try {
      signature = await next;
    } catch (cause) {
      return inFlight.unsigned(cause);
    }
    try {
      return await inFlight.send(signature);
    } catch (cause) {
      return inFlight.unreachable(cause);
    }
  } finally {
    inFlight.free();
  }
}
