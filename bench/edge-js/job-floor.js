// The least a protected request's job costs on this platform, whatever the language: floor-2
// (the Upstash POST, then the forward) plus the platform work any edge doing the job must ask
// for — the lookup under a deadline (an AbortController and a timer cleared when it settles, as
// the Rust edge's `fetch_own`), an outbound request rebuilt from the client's headers (one
// deleted, `X-Forwarded-For` and the assertion set), and one Ed25519 signature through WebCrypto
// over an assertion-sized input, base64url-encoded. No routing, token, reply parsing or
// decision: what a Worker costs above this is its own code. Public routes (`/health`) pass
// straight through, as in floor.js.
let key = null;
// About the length of a real assertion's signing input (header and claims, base64url).
const SIGNING_INPUT = new TextEncoder().encode("e".repeat(420));

function base64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function lookup(env) {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), 2000);
  return fetch(`${env.UPSTASH_REDIS_REST_URL}/pipeline`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env.UPSTASH_REDIS_REST_TOKEN}`,
      "content-type": "application/json",
    },
    body: JSON.stringify([["HMGET", `${env.REDIS_KEY_PREFIX || ""}tg:{floor}`, "j:floor", "v"]]),
    signal: deadline.signal,
  })
    .then(async (r) => (r.status === 200 ? new Uint8Array(await r.arrayBuffer()) : r.status))
    .catch((e) => (deadline.signal.aborted ? null : String(e)))
    .finally(() => clearTimeout(timer));
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const target = env.UPSTREAM + url.pathname + url.search;
    if (url.pathname === "/health") return fetch(target, request);
    if (key === null) {
      const k = JSON.parse(env.EDGE_SIGNING_KEYS).keys[0];
      const jwk = { kty: "OKP", crv: "Ed25519", d: k.d, x: k.x };
      key = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
    }
    const out = new Request(target, {
      method: request.method,
      headers: request.headers,
      redirect: "manual",
    });
    out.headers.delete("connection");
    await lookup(env);
    const signature = await crypto.subtle.sign({ name: "Ed25519" }, key, SIGNING_INPUT);
    out.headers.set("x-forwarded-for", request.headers.get("cf-connecting-ip") || "127.0.0.1");
    out.headers.set("x-tollgate-assertion", `e.e.${base64url(new Uint8Array(signature))}`);
    return fetch(out);
  },
};
