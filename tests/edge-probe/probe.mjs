// Test-only main module (tests/tests/edge_entry.rs, `EdgeConfig::main`): the edge's own entry,
// unchanged, with a count of the requests its protected fast path decided and of those it left to
// the origin, read at GET /__probe. It is how a test knows a request took the fast path (the
// answers are the same by design, so nothing else shows it). Never deployed: wrangler.toml's
// `main` is edge/build/entry.mjs.
import Edge from "../../edge/build/entry.mjs";
import { InFlight } from "../../edge/build/index.js";

const counts = { decide: 0, originDecides: 0 };
for (const method of Object.keys(counts)) {
  const original = InFlight.prototype[method];
  InFlight.prototype[method] = function (...args) {
    counts[method] += 1;
    return original.apply(this, args);
  };
}

export default class Probe extends Edge {
  fetch(request) {
    if (new URL(request.url).pathname === "/__probe") return Response.json(counts);
    return super.fetch(request);
  }
}
