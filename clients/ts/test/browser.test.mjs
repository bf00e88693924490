// Two tabs of one browser (Debian's Chromium through playwright-core) share one device session
// and find its access token expired at the same moment. With the SDK's Web Lock and
// BroadcastChannel exactly one of them refreshes; the other takes over the new tokens: no
// refresh_token_reused, no logout, one rotation. A screenshot of each tab goes to artifacts/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { newUser, sleep, startStack } from "./support/stack.mjs";
import { startProxy } from "./support/proxy.mjs";

const TTL_SECS = 2;
const HERE = fileURLToPath(new URL(".", import.meta.url));
const ARTIFACTS = join(HERE, "../artifacts");
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

let stack;
let proxy;
let profile;
let browser;

before(async () => {
  stack = await startStack({ ACCESS_TOKEN_TTL_SECS: String(TTL_SECS) });
  // The page, the built SDK and the API on one origin: the origin sends no CORS headers.
  proxy = await startProxy(stack.url, {
    "/": join(HERE, "browser/page.html"),
    "/sdk/": join(HERE, "../dist"),
  });
  profile = mkdtempSync(join(tmpdir(), "tollgate-sdk-chromium-"));
  // One persistent context = one profile: its tabs share Web Locks and BroadcastChannel.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await proxy?.close();
  await stack?.stop();
});

async function openTab(name, query = "") {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${proxy.url}/?tab=${name}${query}`);
  await page.waitForFunction(() => window.tollgate !== undefined);
  return { page, errors };
}

/** Both tabs call `me()` at the same wall-clock instant; returns what each got. */
async function meAtOnce(tabs) {
  const when = Date.now() + 400;
  return Promise.all(
    tabs.map(({ page }) =>
      page.evaluate(async (when) => {
        const { client, log, status, at } = window.tollgate;
        try {
          const me = await at(when, () => client.me());
          const tokens = await client.tokens();
          log(`me → ${me.email} with access token jti ${tokens.jti}`);
          status("refreshed, still logged in");
          return { ok: true, email: me.email, tokens };
        } catch (e) {
          log(`me failed: ${e.code ?? e}`);
          status(`failed: ${e.code ?? e}`);
          return { ok: false, code: e.code ?? String(e) };
        }
      }, when),
    ),
  );
}

test("two tabs refreshing at once: one refresh, one rotation, no reuse, nobody logged out", async () => {
  const user = newUser();
  const one = await openTab("tab 1");
  const login = await one.page.evaluate(async (user) => {
    const { client, log } = window.tollgate;
    await client.register(user);
    const tokens = await client.login({ email: user.email, password: user.password, deviceName: "chromium" });
    log(`logged in: device session ${tokens.tokenId}`);
    return tokens;
  }, user);

  // The second tab gets the session from the first over BroadcastChannel, not from storage.
  const two = await openTab("tab 2");
  const synced = await two.page.evaluate(async () => {
    const { client, log } = window.tollgate;
    const ok = await client.syncFromOtherTabs(3000);
    log(ok ? "tokens received from the other tab" : "no tokens from the other tab");
    return client.tokens();
  });
  assert.deepEqual(synced, login);
  const stored = await two.page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  assert.ok(!stored.includes(login.refreshToken), "no refresh token in Web Storage");

  await sleep(TTL_SECS * 1000 + 300); // both tabs' access token is now expired at the origin
  const mark = proxy.log.length;
  const results = await meAtOnce([one, two]);
  await one.page.screenshot({ path: join(ARTIFACTS, "two-tabs-tab1.png") });
  await two.page.screenshot({ path: join(ARTIFACTS, "two-tabs-tab2.png") });

  assert.deepEqual(results.map((r) => r.ok), [true, true], JSON.stringify(results));
  assert.ok(results.every((r) => r.email === user.email));
  const refreshes = proxy.log.slice(mark).filter((e) => e.path === "/api/users/refresh");
  assert.equal(refreshes.length, 1, "exactly one tab refreshed");
  assert.equal(refreshes[0].requestBody.refresh_token, login.refreshToken);
  assert.equal(proxy.log.filter((e) => e.code === "refresh_token_reused").length, 0);
  const [a, b] = results.map((r) => r.tokens);
  assert.deepEqual(a, b, "both tabs hold the one rotated token set");
  assert.notEqual(a.refreshToken, login.refreshToken);
  assert.equal(a.tokenId, login.tokenId);

  // The origin agrees: one live device session, whose access token is the tabs' token.
  const sessions = await one.page.evaluate(() => window.tollgate.client.sessions());
  assert.equal(sessions.total, 1);
  assert.equal(sessions.sessions[0].jti, a.jti);
  assert.deepEqual([...one.errors, ...two.errors], []);
});

test("without the cross-tab lock each tab refreshes on its own (only the grace window saves it)", async () => {
  // The control for the test above: the same race with coordination off sends two refreshes
  // of the same token, which the server accepts only because the second lands in its grace
  // window. The proxy's count therefore tells coordinated tabs from uncoordinated ones.
  const user = newUser();
  const one = await openTab("uncoordinated 1", "&crossTab=off");
  const two = await openTab("uncoordinated 2", "&crossTab=off");
  const login = await one.page.evaluate(async (user) => {
    const { client } = window.tollgate;
    await client.register(user);
    return client.login({ email: user.email, password: user.password, deviceName: "chromium" });
  }, user);
  await two.page.evaluate((tokens) => {
    // With coordination off there is no channel: hand the session over by hand.
    const { TollgateClient, memoryStore } = window.tollgate;
    window.tollgate.client = new TollgateClient({ crossTab: false, store: memoryStore(tokens) });
  }, login);
  await sleep(TTL_SECS * 1000 + 300);
  const mark = proxy.log.length;
  const results = await meAtOnce([one, two]);
  assert.deepEqual(results.map((r) => r.ok), [true, true], JSON.stringify(results));
  const refreshes = proxy.log.slice(mark).filter((e) => e.path === "/api/users/refresh");
  assert.equal(refreshes.length, 2);
  assert.equal(refreshes[0].answer, refreshes[1].answer, "the second got the first one's answer");
});

test("the sessionStorage store keeps the refresh token out of storage unless told otherwise", async () => {
  const user = newUser();
  const { page } = await openTab("storage");
  const seen = await page.evaluate(async (user) => {
    const { TollgateClient, webStorageStore } = window.tollgate;
    const client = new TollgateClient({ crossTab: false, store: webStorageStore(sessionStorage) });
    await client.register(user);
    const tokens = await client.login({ email: user.email, password: user.password });
    const stored = sessionStorage.getItem("tollgate.tokens");
    const me = await client.me();
    // A reload loses the in-memory refresh token: the stored access token alone is not a session.
    const reloaded = await webStorageStore(sessionStorage).load();
    const opted = webStorageStore(sessionStorage, { key: "opted", persistRefreshToken: true });
    await opted.save(tokens);
    return { tokens, stored, me, reloaded, opted: sessionStorage.getItem("opted") };
  }, user);
  assert.equal(seen.me.email, user.email);
  assert.ok(seen.stored.includes(seen.tokens.accessToken));
  assert.ok(!seen.stored.includes(seen.tokens.refreshToken));
  assert.equal(seen.reloaded, null);
  assert.ok(seen.opted.includes(seen.tokens.refreshToken));
});

test("a logout in one tab ends the session in the other tab too", async () => {
  const user = newUser();
  const one = await openTab("logout 1");
  await one.page.evaluate(async (user) => {
    const { client } = window.tollgate;
    await client.register(user);
    await client.login({ email: user.email, password: user.password, deviceName: "chromium" });
  }, user);
  const two = await openTab("logout 2");
  assert.ok(await two.page.evaluate(() => window.tollgate.client.syncFromOtherTabs(3000)));

  await one.page.evaluate(() => window.tollgate.client.logout());
  const cleared = await two.page.evaluate(async () => {
    for (let i = 0; i < 100; i += 1) {
      if ((await window.tollgate.client.tokens()) === null) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  });
  assert.ok(cleared, "the other tab dropped the tokens");
  const code = await two.page.evaluate(() => window.tollgate.client.me().then(() => "ok", (e) => e.code));
  assert.equal(code, "not_logged_in");
});
