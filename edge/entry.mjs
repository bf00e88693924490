// The Worker's entry: worker-build's (edge/build/index.js) with public routes forwarded here,
// in JS. scripts/build-edge.sh copies this file next to worker-build's output as
// edge/build/entry.mjs, which wrangler.toml serves (`main`), hence the `./index.js` import.
//
// Awaiting a subrequest inside the wasm costs more CPU than a whole JS pass-through (BENCHMARKS.md,
// issue 8 §6), so the Rust code decides synchronously (`PublicRoutes.forward`, edge/src/entry.rs:
// the same routing, path checks and header hygiene as the full handler) and, for a public route,
// hands back the pending subrequest; every other request goes to the full Rust handler as before.
// Extending worker-build's entrypoint keeps its panic recovery: its proxy wraps this `fetch` too,
// and a trap in either half resets the wasm for the next request.
import Rust, { PublicRoutes } from "./index.js";

export default class Edge extends Rust {
  fetch(request) {
    const started = Date.now();
    const forwarded = PublicRoutes.forward(request, this.env);
    if (forwarded === undefined) return super.fetch(request);
    return forwarded.catch((cause) => PublicRoutes.unreachable(request, this.env, cause, started));
  }
}
