// Drives the REST bridge with the official @upstash/redis client, on its defaults (base64
// response encoding on, automatic deserialization on), to prove the bridge speaks Upstash's
// protocol as that client expects it.
//
// Env: UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN (required);
//      UPSTASH_REDIS_REST_READONLY_TOKEN (optional: read-only checks);
//      BRIDGE_TEST_PREFIX (key prefix, so runs never touch each other's keys).
// Resolve @upstash/redis through NODE_PATH (ESM `import` ignores NODE_PATH, `require` honours it).
// Prints one line per check and `N passed, M failed`; exits 1 if any check failed.

import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Redis } = require("@upstash/redis");

const url = process.env.UPSTASH_REDIS_REST_URL;
const token = process.env.UPSTASH_REDIS_REST_TOKEN;
const readonlyToken = process.env.UPSTASH_REDIS_REST_READONLY_TOKEN;
const prefix = process.env.BRIDGE_TEST_PREFIX ?? `bridgetest:${process.pid}:${Date.now()}:`;
if (!url || !token) {
  console.error("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set");
  process.exit(2);
}

// Defaults on purpose; only retries are turned off so a failure shows at once.
const redis = new Redis({ url, token, retry: false, enableTelemetry: false });
const key = (name) => `${prefix}${name}`;

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check("set and get a plain string", async () => {
  assert.equal(await redis.set(key("plain"), "hello"), "OK");
  assert.equal(await redis.get(key("plain")), "hello");
});

check("unicode round-trips through base64", async () => {
  const value = "héllo wörld ☃ 🚀 日本語 — \"quoted\" \\ slash";
  await redis.set(key("unicode"), value);
  assert.equal(await redis.get(key("unicode")), value);
});

check("control characters and U+FFFD round-trip", async () => {
  const value = "nul\u0000 bell\u0007 tab\t newline\n del\u007f bad\ufffd end";
  await redis.set(key("controls"), value);
  assert.equal(await redis.get(key("controls")), value);
});

check("non-UTF-8 bytes from Redis arrive base64-encoded, not mangled by the bridge", async () => {
  // The script builds bytes 0xff 0x00 0x01; the client decodes base64 then UTF-8 (lossy).
  const raw = await redis.eval("return string.char(255, 0, 1)", [], []);
  assert.equal(raw, "\ufffd\u0000\u0001");
});

check("raw protocol: the base64 header encodes exact bytes and leaves OK plain", async () => {
  // The client tolerates a server that ignores the header, so check the wire itself.
  const send = async (command) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "upstash-encoding": "base64" },
      body: JSON.stringify(command),
    });
    return { status: res.status, body: await res.json() };
  };
  assert.deepEqual(await send(["SET", key("raw"), "héllo"]), { status: 200, body: { result: "OK" } });
  assert.deepEqual(await send(["GET", key("raw")]), {
    status: 200,
    body: { result: Buffer.from("héllo").toString("base64") },
  });
  assert.deepEqual(await send(["EVAL", "return string.char(255, 0, 1)", 0]), {
    status: 200,
    body: { result: "/wAB" },
  });
});

check("JSON values are stored as text and parsed back by the client", async () => {
  const value = { a: 1, nested: { list: [1, "two", null] }, emoji: "🙂" };
  await redis.set(key("json"), value);
  assert.deepEqual(await redis.get(key("json")), value);
});

check("missing keys are null, counters are numbers, mget mixes both", async () => {
  assert.equal(await redis.get(key("missing")), null);
  assert.equal(await redis.incr(key("counter")), 1);
  assert.equal(await redis.incrby(key("counter"), 41), 42);
  assert.deepEqual(await redis.mget(key("plain"), key("missing"), key("counter")), ["hello", null, 42]);
});

check("ping answers PONG (a status reply other than OK is base64 too)", async () => {
  assert.equal(await redis.ping(), "PONG");
});

check("hashes come back as objects", async () => {
  assert.equal(await redis.hset(key("hash"), { name: "ada", lang: "rust" }), 2);
  assert.deepEqual(await redis.hgetall(key("hash")), { name: "ada", lang: "rust" });
  assert.equal(await redis.hget(key("hash"), "name"), "ada");
});

check("sorted-set scores and ranges", async () => {
  await redis.zadd(key("zset"), { score: 1.5, member: "a" }, { score: 3, member: "b" });
  assert.equal(await redis.zscore(key("zset"), "a"), 1.5);
  assert.deepEqual(await redis.zrange(key("zset"), 0, -1), ["a", "b"]);
  assert.deepEqual(await redis.zrange(key("zset"), 0, -1, { withScores: true }), ["a", 1.5, "b", 3]);
});

check("set with ex, ttl, expire, persist", async () => {
  assert.equal(await redis.set(key("ttl"), "v", { ex: 100 }), "OK");
  const ttl = await redis.ttl(key("ttl"));
  assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
  assert.equal(await redis.expire(key("ttl"), 500), 1);
  const pttl = await redis.pttl(key("ttl"));
  assert.ok(pttl > 400_000 && pttl <= 500_000, `pttl ${pttl}`);
  assert.equal(await redis.persist(key("ttl")), 1);
  assert.equal(await redis.ttl(key("ttl")), -1);
  assert.equal(await redis.ttl(key("missing")), -2);
  assert.equal(await redis.set(key("nx"), "first", { nx: true, px: 60_000 }), "OK");
  assert.equal(await redis.set(key("nx"), "second", { nx: true }), null);
});

check("pipeline runs in order", async () => {
  const p = redis.pipeline();
  p.set(key("pipe"), "1");
  p.incr(key("pipe"));
  p.get(key("pipe"));
  p.del(key("pipe"));
  p.exists(key("pipe"));
  assert.deepEqual(await p.exec(), ["OK", 2, 2, 1, 0]);
});

check("pipeline keeps going past a failing command", async () => {
  const p = redis.pipeline();
  p.set(key("pipe-str"), "not a number");
  p.incr(key("pipe-str"));
  p.set(key("pipe-after"), "ran");
  const results = await p.exec({ keepErrors: true });
  assert.equal(results[0].result, "OK");
  assert.match(results[1].error, /not an integer/);
  assert.equal(results[2].result, "OK");
  assert.equal(await redis.get(key("pipe-after")), "ran");
  await assert.rejects(
    redis.pipeline().set(key("pipe-x"), "1").incr(key("pipe-str")).exec(),
    /not an integer/,
  );
});

check("multi (transaction) returns every result", async () => {
  const tx = redis.multi();
  tx.set(key("tx"), "a");
  tx.append(key("tx"), "bc");
  tx.get(key("tx"));
  tx.incr(key("tx-count"));
  tx.lpush(key("tx-list"), "x", "y");
  tx.lrange(key("tx-list"), 0, -1);
  assert.deepEqual(await tx.exec(), ["OK", 3, "abc", 1, 2, ["y", "x"]]);
});

check("eval passes keys and args and returns mixed arrays", async () => {
  const result = await redis.eval("return {KEYS[1], ARGV[1], 42, 'OK'}", [key("eval")], ["arg ☃"]);
  assert.deepEqual(result, [key("eval"), "arg ☃", 42, "OK"]);
  const set = await redis.eval("return redis.call('SET', KEYS[1], ARGV[1])", [key("eval")], ["v"]);
  assert.equal(set, "OK");
  assert.equal(await redis.get(key("eval")), "v");
});

check("scripts fall back from EVALSHA to EVAL on NOSCRIPT", async () => {
  const script = redis.createScript(`return ARGV[1] .. '-${Date.now()}-${Math.random()}'`);
  const result = await script.exec([], ["hi"]);
  assert.match(result, /^hi-/);
});

check("command errors reject with Redis's message", async () => {
  await redis.set(key("str"), "text");
  await assert.rejects(redis.lpush(key("str"), "x"), /WRONGTYPE/);
});

check("a pipeline of three costs one request and three commands (stats extension)", async () => {
  const stats = async () => {
    const res = await fetch(`${url}/_bridge/stats`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    return res.json();
  };
  const before = await stats();
  await redis.pipeline().get(key("plain")).get(key("missing")).incr(key("counter")).exec();
  const after = await stats();
  assert.equal(after.requests - before.requests, 1);
  assert.equal(after.commands - before.commands, 3);
});

if (readonlyToken) {
  const ro = new Redis({ url, token: readonlyToken, retry: false, enableTelemetry: false });
  check("read-only token reads but cannot write", async () => {
    assert.equal(await ro.get(key("plain")), "hello");
    await assert.rejects(ro.set(key("plain"), "changed"), /NOPERM/);
    assert.equal(await redis.get(key("plain")), "hello");
  });
}

check("a wrong token is refused", async () => {
  const bad = new Redis({ url, token: "definitely-not-the-token", retry: false, enableTelemetry: false });
  await assert.rejects(bad.get(key("plain")), /Unauthorized/);
});

let passed = 0;
let failed = 0;
for (const { name, fn } of checks) {
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}: ${error?.stack ?? error}`);
  }
}

try {
  // SCAN, not KEYS: the bridge's full token runs no administrative command unless enabled.
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, { match: `${prefix}*`, count: 1000 });
    if (keys.length > 0) await redis.del(...keys);
    cursor = String(next);
  } while (cursor !== "0");
} catch (error) {
  console.log(`# cleanup failed: ${error}`);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
