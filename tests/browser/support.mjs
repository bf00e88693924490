// What the page tests share: the real stack (clients/ts's harness: a private redis-server and
// the real `tollgate-origin serve` binary on SQLite), Debian's Chromium through playwright-core
// (never a downloaded browser), and small helpers for the JSON API and the pages.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { newUser, originBinary, sleep, startStack } from "../../clients/ts/test/support/stack.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
export const ARTIFACTS = join(HERE, "artifacts");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const SESSION_COOKIES = ["__Secure-tg_at", "__Secure-tg_rt", "__Secure-tg_csrf"];

/**
 * The stack plus a browser. `settings`: extra origin environment. The database and key file are
 * ours, so the `tollgate-origin user promote` CLI can reach the same database.
 */
export async function startPages(settings = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-pages-"));
  const env = {
    // SQLite by default; TOLLGATE_PAGES_DATABASE_URL runs the pages on another database
    // (e.g. a fresh PostgreSQL database).
    DATABASE_URL:
      process.env.TOLLGATE_PAGES_DATABASE_URL ?? `sqlite://${join(dir, "tollgate.db")}?mode=rwc`,
    KEYS_FILE: join(dir, "keys.json"),
  };
  const stack = await startStack({ ...env, ...settings });
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  } catch (e) {
    await stack.stop();
    throw e;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    url: stack.url,
    browser,
    /** Runs the origin's CLI against this stack's database. */
    cli(...args) {
      return execFileSync(originBinary(), args, {
        env: { ...process.env, ...env, LOG_FORMAT: "json" },
        encoding: "utf8",
      });
    },
    async stop() {
      await browser.close();
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** JSON API call; resolves `{ status, body }`. */
export async function api(base, method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: json };
}

/** A registered fresh user. */
export async function registeredUser(base) {
  const user = newUser();
  const r = await api(base, "POST", "/api/users/register", { body: user });
  if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
  return user;
}

/** Logs in through the JSON API as another device; resolves the token pair. */
export async function apiLogin(base, user, deviceName) {
  const r = await api(base, "POST", "/api/users/login", {
    body: { email: user.email, password: user.password, device_name: deviceName },
  });
  if (r.status !== 200) throw new Error(`login: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data;
}

/** `/api/users/me` with this access token: `{ status, code }`. */
export async function me(base, accessToken) {
  const r = await api(base, "GET", "/api/users/me", { token: accessToken });
  return { status: r.status, code: r.body?.error?.code ?? null };
}

/** Signs in on the page in a fresh browser context; resolves `{ context, page }`. */
export async function pageLogin(pages, user, deviceName = "") {
  const context = await pages.browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${pages.url}/account/login`);
  await page.fill("input[name=email]", user.email);
  await page.fill("input[name=password]", user.password);
  if (deviceName) await page.fill("input[name=device_name]", deviceName);
  await submit(page, "button[type=submit]");
  if (!page.url().endsWith("/account/devices")) throw new Error(`sign-in ended at ${page.url()}`);
  return { context, page };
}

/** Clicks a form's button and waits for the page its answer leads to. */
export async function submit(page, selector) {
  await Promise.all([page.waitForEvent("load"), page.click(selector)]);
}

/** The device rows on the devices page: `[{ tokenId, current, text }]`. */
export async function deviceRows(page) {
  return page.$$eval("table.devices tbody tr", (rows) =>
    rows.map((r) => ({
      tokenId: r.getAttribute("data-token-id"),
      current: r.classList.contains("current"),
      text: r.textContent,
    })),
  );
}

/** The page session's cookies by name. */
export async function sessionCookies(context) {
  const all = await context.cookies();
  return Object.fromEntries(all.map((c) => [c.name, c]));
}

export { newUser, sleep };
