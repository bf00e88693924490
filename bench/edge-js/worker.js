// The same job as the Rust edge, written the way a JavaScript developer would: `jose` for the
// JWTs and `@upstash/redis` for the one pipeline per protected request. Public routes are pure
// routing; a protected route verifies the access token (memoised per isolate until its `exp`,
// like the Rust edge), reads fields `j:{jti}` and `v` of `tg:{sub}` in one pipeline, applies
// the same decision and forwards with a signed identity assertion (EdDSA).
// Bench only (bench/edge-js, scripts/bench-edge.sh): it is not a second implementation of the
// gateway, and its refusals are plain JSON without the origin's exact messages.
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from "jose";
import { Redis } from "@upstash/redis/cloudflare";

let state = null;

async function setup(env) {
  if (state && state.env === env) return state;
  const jwks = createLocalJWKSet(JSON.parse(env.TOLLGATE_JWKS));
  const signing = JSON.parse(env.EDGE_SIGNING_KEYS).keys[0];
  const key = await importJWK({ kty: "OKP", crv: "Ed25519", d: signing.d, x: signing.x }, "EdDSA");
  const redis = new Redis({
    url: env.UPSTASH_REDIS_REST_URL,
    token: env.UPSTASH_REDIS_REST_TOKEN,
    automaticDeserialization: false,
  });
  state = {
    env,
    jwks,
    key,
    kid: signing.kid,
    redis,
    prefix: env.REDIS_KEY_PREFIX || "",
    memo: new Map(),
  };
  return state;
}

function refuse(status, code) {
  return new Response(JSON.stringify({ error: { code, message: code } }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

async function verified(s, token, now) {
  const known = s.memo.get(token);
  if (known && now < known.exp) return known;
  const { payload } = await jwtVerify(token, s.jwks, {
    algorithms: ["EdDSA"],
    issuer: "tollgate",
    audience: "tollgate-api",
    typ: "at+jwt",
    maxTokenAge: 930,
  });
  if (s.memo.size >= 4096) s.memo.clear();
  s.memo.set(token, payload);
  return payload;
}

export default {
  async fetch(request, env) {
    const s = await setup(env);
    const url = new URL(request.url);
    const target = env.UPSTREAM + url.pathname + url.search;
    if (url.pathname === "/health") return fetch(target, request);
    if (!url.pathname.startsWith("/api/bench/")) return refuse(404, "not_found");
    const auth = request.headers.get("authorization") || "";
    if (!/^bearer /i.test(auth)) return refuse(401, "token_missing");
    const now = Math.floor(Date.now() / 1000);
    let claims;
    try {
      claims = await verified(s, auth.slice(7).trim(), now);
    } catch {
      return refuse(401, "token_signature");
    }
    let record, version;
    try {
      // One command in one pipeline, as the Rust edge sends it (the bench's edge token may run
      // HMGET only).
      [[record, version]] = await s.redis
        .pipeline()
        .hmget(`${s.prefix}tg:{${claims.sub}}`, `j:${claims.jti}`, "v")
        .exec();
    } catch {
      return refuse(503, "unavailable");
    }
    // `exp.tokenId.version` (shared/src/records.rs); the user is the hash's.
    const [, tokenId, tokenVersion] = typeof record === "string" ? record.split(".") : [];
    if (tokenId !== claims.sid || tokenVersion !== String(claims.ver)) {
      return refuse(401, "token_revoked");
    }
    if (String(claims.ver) !== version) return refuse(401, "token_version");
    const assertion = await new SignJWT({
      sub: claims.sub,
      sid: claims.sid,
      jti: claims.jti,
      ver: claims.ver,
      ver_checked: true,
      ip: request.headers.get("cf-connecting-ip") || undefined,
      htm: request.method,
      htu: url.pathname,
    })
      .setProtectedHeader({ alg: "EdDSA", typ: "tollgate-assertion+jwt", kid: s.kid })
      .setIssuer("tollgate-edge")
      .setAudience("echo")
      .setIssuedAt(now)
      .setExpirationTime(now + 30)
      .sign(s.key);
    const headers = new Headers(request.headers);
    headers.set("x-tollgate-assertion", assertion);
    return fetch(target, { method: request.method, headers, body: request.body, redirect: "manual" });
  },
};
