// The real stack for the SDK's tests: a private redis-server on a free port and the real
// `tollgate-origin serve` binary (SQLite and key file in a temp dir), each test file its own.
// Nothing is mocked; the recording proxy (proxy.mjs) sits in front when a test counts requests.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";

const REPO = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../../..");

/** The origin binary: `TOLLGATE_ORIGIN_BIN`, else the workspace's debug build. */
export function originBinary() {
  const bin = process.env.TOLLGATE_ORIGIN_BIN ?? join(REPO, "target/debug/tollgate-origin");
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`cargo build -p tollgate-origin\` (scripts/test-clients.sh does)`);
  }
  return bin;
}

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function redisPing(port) {
  return new Promise((ok) => {
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(500);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (d) => {
      socket.destroy();
      ok(d.toString().startsWith("+PONG"));
    });
    socket.once("error", () => ok(false));
    socket.once("timeout", () => {
      socket.destroy();
      ok(false);
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  for (let i = 0; i < 100; i += 1) {
    if (await redisPing(port)) return { url: `redis://127.0.0.1:${port}`, child };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error("redis-server did not come up");
}

/** Starts the origin; resolves once it logged the port it listens on. */
function startOrigin(env) {
  const child = spawn(originBinary(), ["serve"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`origin did not start:\n${log}`)), 30_000);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log += chunk;
      for (const line of log.split("\n")) {
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        if (entry.fields?.message === "tollgate-origin listening") {
          clearTimeout(timer);
          child.stderr.removeAllListeners("data");
          child.stderr.resume();
          ok({ child, url: `http://127.0.0.1:${entry.fields.port}` });
          return;
        }
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`origin exited with ${code}:\n${log}`));
    });
  });
}

/**
 * Redis + origin. `settings` are extra origin environment variables (e.g.
 * `ACCESS_TOKEN_TTL_SECS`). Returns `{ url, stop() }`.
 */
export async function startStack(settings = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-sdk-"));
  const redis = await startRedis();
  let origin;
  try {
    origin = await startOrigin({
      BIND_ADDR: "127.0.0.1:0",
      DATABASE_URL: `sqlite://${join(dir, "tollgate.db")}?mode=rwc`,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `sdk-test-${randomUUID()}:`,
      KEYS_FILE: join(dir, "keys.json"),
      // Every test logs in from 127.0.0.1; the limits are tested in the origin's own suite.
      LOGIN_RATE_LIMIT_PER_IP: "10000",
      LOGIN_RATE_LIMIT_PER_EMAIL: "10000",
      CLEANUP_INTERVAL_SECS: "0",
      LOG_FORMAT: "json",
      RUST_LOG: "info",
      ...settings,
    });
  } catch (e) {
    redis.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const children = [origin.child, redis.child];
  const killAll = () => children.forEach((c) => c.exitCode === null && c.kill("SIGKILL"));
  process.once("exit", killAll);
  return {
    url: origin.url,
    async stop() {
      process.removeListener("exit", killAll);
      for (const child of children) {
        if (child.exitCode !== null) continue;
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh user's credentials (each test arranges its own user). */
export function newUser() {
  return {
    email: `sdk-${randomUUID()}@example.com`,
    password: "correct horse battery staple",
    name: "SDK test",
  };
}

export { sleep };
