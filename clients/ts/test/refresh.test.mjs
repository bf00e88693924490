// Refresh against the real origin with 2-second access tokens: before expiry, after expiry, on
// a 401 token_expired, ten concurrent callers sharing one refresh, a lost refresh answer retried
// with the same token, and a stale refresh token surfacing as refresh_token_reused.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { TollgateClient, TollgateError, memoryStore } from "../dist/index.js";
import { newUser, sleep, startStack } from "./support/stack.mjs";
import { startProxy } from "./support/proxy.mjs";

const TTL_SECS = 2;
let stack;
let proxy;

before(async () => {
  stack = await startStack({ ACCESS_TOKEN_TTL_SECS: String(TTL_SECS) });
  proxy = await startProxy(stack.url);
});

after(async () => {
  await proxy?.close();
  await stack?.stop();
});

async function loggedIn(options = {}) {
  const user = newUser();
  const client = new TollgateClient({ baseUrl: proxy.url, ...options });
  await client.register(user);
  const tokens = await client.login({ email: user.email, password: user.password, deviceName: "node" });
  return { client, user, tokens };
}

/** Waits until the access token obtained now has certainly expired at the origin. */
const untilExpired = () => sleep(TTL_SECS * 1000 + 300);

/** The proxy's log entries from index `from` on, for `path`. */
const since = (from, path) => proxy.log.slice(from).filter((e) => e.path === path);

test("a token close to its expiry is refreshed before the call, not after a 401", async () => {
  const { client, tokens } = await loggedIn();
  await sleep(1200); // past the leeway (half the lifetime here), possibly still valid at the origin
  const mark = proxy.log.length;
  await client.me();
  const refreshes = since(mark, "/api/users/refresh");
  assert.equal(refreshes.length, 1);
  assert.equal(refreshes[0].requestBody.refresh_token, tokens.refreshToken);
  assert.deepEqual(since(mark, "/api/users/me").map((e) => e.status), [200]);
  const fresh = await client.tokens();
  assert.notEqual(fresh.jti, tokens.jti);
  assert.equal(fresh.tokenId, tokens.tokenId, "the device session stays the same");
  assert.notEqual(fresh.refreshToken, tokens.refreshToken, "the refresh token rotated");
});

test("an expired access token is refreshed automatically and the call succeeds", async () => {
  const { client, user, tokens } = await loggedIn();
  await untilExpired();
  const mark = proxy.log.length;
  assert.equal((await client.me()).email, user.email);
  assert.equal(since(mark, "/api/users/refresh").length, 1);
  assert.equal(since(mark, "/api/users/me").filter((e) => e.status === 401).length, 0);
  assert.notEqual((await client.tokens()).accessToken, tokens.accessToken);
});

test("ten concurrent calls with an expired token share exactly one refresh", async () => {
  const { client, user } = await loggedIn();
  await untilExpired();
  const mark = proxy.log.length;
  const answers = await Promise.all(Array.from({ length: 10 }, () => client.me()));
  assert.ok(answers.every((me) => me.email === user.email));
  assert.equal(since(mark, "/api/users/refresh").length, 1);
  const { sessions } = await client.sessions();
  assert.equal(sessions.length, 1);
  assert.equal(sessions[0].jti, (await client.tokens()).jti);
});

test("on a 401 token_expired ten concurrent calls refresh once and each retries once", async () => {
  // A clock that stands still: the client believes its token fresh, only the origin knows better
  // (a laptop waking from sleep, a device whose timers were paused).
  const frozen = Date.now();
  const { client, user, tokens } = await loggedIn({ now: () => frozen });
  await untilExpired();
  const mark = proxy.log.length;
  const answers = await Promise.all(Array.from({ length: 10 }, () => client.me()));
  assert.ok(answers.every((me) => me.email === user.email));
  const calls = since(mark, "/api/users/me");
  const expired = calls.filter((e) => e.status === 401);
  assert.equal(expired.length, 10);
  assert.ok(expired.every((e) => e.code === "token_expired" && e.authorization === `Bearer ${tokens.accessToken}`));
  assert.equal(calls.filter((e) => e.status === 200).length, 10, "each call was retried exactly once");
  assert.equal(since(mark, "/api/users/refresh").length, 1);
});

test("a lost refresh answer is retried with the same refresh token and gets the same answer", async () => {
  const { client, user, tokens } = await loggedIn();
  await untilExpired();
  const mark = proxy.log.length;
  proxy.loseNextRefreshAnswers(1);
  assert.equal((await client.me()).email, user.email);

  const refreshes = since(mark, "/api/users/refresh");
  assert.equal(refreshes.length, 2);
  assert.deepEqual(refreshes.map((e) => e.dropped), [true, false]);
  assert.ok(refreshes.every((e) => e.requestBody.refresh_token === tokens.refreshToken));
  assert.deepEqual(refreshes.map((e) => e.status), [200, 200]);
  assert.equal(refreshes[1].answer, refreshes[0].answer, "inside the grace window the origin repeats itself");
  const kept = JSON.parse(refreshes[0].answer).data;
  const now = await client.tokens();
  assert.equal(now.refreshToken, kept.refresh_token, "the client holds the chain's one new link");

  // The session goes on: the next rotation works and nothing was flagged as reuse.
  await untilExpired();
  await client.me();
  assert.equal(proxy.log.slice(mark).filter((e) => e.code === "refresh_token_reused").length, 0);
  assert.equal((await client.sessions()).total, 1);
});

test("a refresh whose answers are all lost fails with network_error and keeps the tokens", async () => {
  const { client, tokens } = await loggedIn({ refreshRetries: 1 });
  await untilExpired();
  proxy.loseNextRefreshAnswers(2);
  await assert.rejects(client.me(), (e) => e instanceof TollgateError && e.code === "network_error");
  assert.equal((await client.tokens()).refreshToken, tokens.refreshToken);
  // Still inside the grace window, the same token gets the rotation the origin made.
  assert.ok(await client.me());
});

test("a call whose token a concurrent refresh retired is retried with the new token", async () => {
  // The refresh runs between reading the token and the origin checking it, so the origin sees
  // an access token that the rotation already deleted (token_revoked): not a logout.
  let client;
  let raced = false;
  const racingFetch = async (url, init) => {
    if (!raced && String(url).endsWith("/api/users/me")) {
      raced = true;
      await client.refresh();
    }
    return fetch(url, init);
  };
  ({ client } = await loggedIn({ fetch: racingFetch }));
  const before = await client.tokens();
  const mark = proxy.log.length;
  const me = await client.me();
  assert.ok(me.email);
  const calls = since(mark, "/api/users/me");
  assert.deepEqual(calls.map((e) => [e.status, e.code]), [[401, "token_revoked"], [200, null]]);
  assert.notEqual((await client.tokens()).jti, before.jti);
});

test("refreshing with a refresh token the chain has left behind is refresh_token_reused", async () => {
  const ended = [];
  const { client, tokens } = await loggedIn();
  const stale = new TollgateClient({
    baseUrl: proxy.url,
    store: memoryStore(tokens),
    onSessionEnd: (e) => ended.push(e.code),
  });
  await client.refresh();
  await client.refresh(); // the first refresh token is now two links back: a replay
  await assert.rejects(stale.refresh(), (e) => e instanceof TollgateError && e.code === "refresh_token_reused");
  assert.deepEqual(ended, ["refresh_token_reused"]);
  assert.equal(await stale.tokens(), null);
  // The origin revoked the device session, so the legitimate holder is out too.
  await assert.rejects(client.refresh(), (e) => e.code === "invalid_refresh_token");
});
