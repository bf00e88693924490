// A recording reverse proxy in front of the origin: it forwards every request unchanged, keeps a
// log of what passed (method, path, request body, status, error code, answer), can swallow the
// answer to the next refresh (the origin did the work, the client sees the connection die), and
// can serve static files from the same origin (the browser test's page and the built SDK).

import { createServer, request as httpRequest } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".map": "application/json" };
const FORWARDED = ["content-type", "authorization", "user-agent", "accept"];
const RETURNED = ["content-type", "www-authenticate", "retry-after"];

/**
 * `target`: the origin's URL. `files`: `{ "/prefix/": "/dir" }` served statically, plus
 * `{ "/": "/file.html" }` for single files.
 */
export async function startProxy(target, files = {}) {
  const log = [];
  let dropRefreshAnswers = 0;
  const server = createServer(async (req, res) => {
    try {
      const path = new URL(req.url, "http://x").pathname;
      const file = staticFile(files, path);
      if (file) return await serveFile(res, file);
      const body = await readBody(req);
      const answer = await forward(target, req, body);
      const entry = {
        method: req.method,
        path,
        requestBody: parseJson(body.toString("utf8")),
        authorization: req.headers.authorization ?? null,
        status: answer.status,
        code: parseJson(answer.body.toString("utf8"))?.error?.code ?? null,
        answer: answer.body.toString("utf8"),
        dropped: false,
      };
      log.push(entry);
      if (path === "/api/users/refresh" && dropRefreshAnswers > 0) {
        dropRefreshAnswers -= 1;
        entry.dropped = true;
        req.socket.destroy(); // the origin answered; the client never hears it
        return;
      }
      const headers = {};
      for (const name of RETURNED) if (answer.headers[name]) headers[name] = answer.headers[name];
      res.writeHead(answer.status, headers);
      res.end(answer.body);
    } catch (e) {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(String(e));
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    log,
    /** Requests to `path` so far (optionally only those with `status`). */
    requests(path, status) {
      return log.filter((e) => e.path === path && (status === undefined || e.status === status));
    },
    /** The next `n` refresh answers are lost on the way back. */
    loseNextRefreshAnswers(n = 1) {
      dropRefreshAnswers = n;
    },
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(ok);
      }),
  };
}

function staticFile(files, path) {
  for (const [prefix, dir] of Object.entries(files)) {
    if (prefix.endsWith("/") && prefix !== "/" && path.startsWith(prefix)) {
      const rel = normalize(path.slice(prefix.length));
      if (rel.startsWith("..")) return null;
      return join(dir, rel);
    }
    if (path === prefix) return dir;
  }
  return null;
}

async function serveFile(res, file) {
  try {
    const content = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(content);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  }
}

function readBody(req) {
  return new Promise((ok, fail) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => ok(Buffer.concat(chunks)));
    req.on("error", fail);
  });
}

function forward(target, req, body) {
  const headers = {};
  for (const name of FORWARDED) if (req.headers[name]) headers[name] = req.headers[name];
  headers["content-length"] = String(body.length);
  return new Promise((ok, fail) => {
    const upstream = httpRequest(new URL(req.url, target), { method: req.method, headers }, (r) => {
      const chunks = [];
      r.on("data", (c) => chunks.push(c));
      r.on("end", () => ok({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks) }));
      r.on("error", fail);
    });
    upstream.on("error", fail);
    upstream.end(body);
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
