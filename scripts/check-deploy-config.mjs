// Checks the deployed environments of a wrangler config (default: the repository's
// wrangler.toml) as wrangler itself resolves them (`unstable_readConfig`, with its inheritance
// rules: `vars` and bindings are not inherited by environments). Run by scripts/check-deploy.sh.
//
//   node scripts/check-deploy-config.mjs [CONFIG]
//
// For each of the environments DEPLOY.md deploys it requires: its own Worker name; a route or a
// custom domain; every var the edge needs in production, and every var the top level sets; no
// ALLOW_INSECURE_HTTP; https:// URLs only (Upstash, JWKS, every upstream); the same routes as the
// top-level table (paths, methods, access, upstream names); and no secret among the vars.
// Exits 1 with one line per problem.
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(ROOT, ".tools/node/package.json"));
const wrangler = require("wrangler");

const config = process.argv[2] ?? join(ROOT, "wrangler.toml");
const ENVS = ["staging", "production"];
// What the edge needs once deployed (edge/src/config.rs reads them; DEPLOY.md sets them). The
// origin's keys come from JWKS_URL, so a key rotation needs no redeploy.
const REQUIRED = [
  "TOLLGATE_ROUTES",
  "UPSTASH_REDIS_REST_URL",
  "JWKS_URL",
  "REDIS_KEY_PREFIX",
  "JWT_ISSUER",
  "JWT_AUDIENCE",
  "ACCESS_TOKEN_TTL_SECS",
  "EDGE_ISSUER",
];
const SECRETS = ["UPSTASH_REDIS_REST_TOKEN", "EDGE_SIGNING_KEYS", "TOLLGATE_JWKS", "JWT_SECRET"];

const read = (env) => wrangler.unstable_readConfig({ config, env }, { hideWarnings: true });
const routesOf = (vars) => {
  const table = vars.TOLLGATE_ROUTES;
  return typeof table === "string" ? JSON.parse(table) : table;
};

const problems = [];
const top = read(undefined);
const topRoutes = routesOf(top.vars);
const names = new Set([top.name]);
for (const secret of SECRETS) {
  if (secret in top.vars) problems.push(`top level: secret ${secret} is a plain var`);
}

for (const env of ENVS) {
  const say = (msg) => problems.push(`env.${env}: ${msg}`);
  let c;
  try {
    c = read(env);
  } catch (e) {
    say(`cannot be read: ${e.message}`);
    continue;
  }
  if (!c.vars || Object.keys(c.vars).length === 0) {
    say("has no vars (vars are not inherited from the top level)");
    continue;
  }
  if (names.has(c.name)) say(`Worker name "${c.name}" is not its own`);
  names.add(c.name);
  if (!(c.routes?.length || c.route)) say("has no route or custom domain");
  for (const v of REQUIRED) {
    if (!(v in c.vars)) say(`var ${v} is missing`);
  }
  for (const v of Object.keys(top.vars)) {
    if (!(v in c.vars)) say(`var ${v} is set at the top level but not here (vars are not inherited)`);
  }
  for (const secret of SECRETS) {
    if (secret in c.vars) say(`secret ${secret} is a plain var (use wrangler secret put)`);
  }
  if ("ALLOW_INSECURE_HTTP" in c.vars && String(c.vars.ALLOW_INSECURE_HTTP) !== "false") {
    say("ALLOW_INSECURE_HTTP is set (local development only)");
  }
  const https = (what, url) => {
    if (typeof url !== "string" || !url.startsWith("https://")) say(`${what} is not an https:// URL: ${url}`);
  };
  for (const v of ["UPSTASH_REDIS_REST_URL", "JWKS_URL"]) if (v in c.vars) https(v, c.vars[v]);
  let table;
  try {
    table = routesOf(c.vars);
  } catch (e) {
    say(`TOLLGATE_ROUTES is not JSON: ${e.message}`);
  }
  if (table) {
    for (const [name, upstream] of Object.entries(table.upstreams ?? {})) {
      if (!upstream.service) https(`upstream ${name}`, upstream.url);
    }
    if (!isDeepStrictEqual(Object.keys(table.upstreams ?? {}).sort(), Object.keys(topRoutes.upstreams ?? {}).sort())) {
      say("TOLLGATE_ROUTES names other upstreams than the top-level table");
    }
    if (!isDeepStrictEqual(table.routes, topRoutes.routes)) {
      say("TOLLGATE_ROUTES routes differ from the top-level table (a route added in one place only?)");
    }
  }
}

if (problems.length) {
  for (const p of problems) console.error(`[check-deploy] ${p}`);
  process.exit(1);
}
console.log(`[check-deploy] vars: ${ENVS.join(", ")} each set every required var, https only, same routes as the top level`);
