// The SDK against the real origin (15-minute access tokens): accounts, the authenticated fetch,
// typed errors, sessions and the four logouts, each followed by the call that must now fail.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import { TollgateClient, TollgateError, isTollgateError, memoryStore } from "../dist/index.js";
import { newUser, startStack } from "./support/stack.mjs";
import { startProxy } from "./support/proxy.mjs";

let stack;
let proxy;

before(async () => {
  stack = await startStack();
  proxy = await startProxy(stack.url);
});

after(async () => {
  await proxy?.close();
  await stack?.stop();
});

/** A registered user with one logged-in client per device name. */
async function userWithDevices(...devices) {
  const user = newUser();
  await new TollgateClient({ baseUrl: proxy.url }).register(user);
  const clients = [];
  for (const deviceName of devices) {
    const client = new TollgateClient({ baseUrl: proxy.url });
    await client.login({ email: user.email, password: user.password, deviceName });
    clients.push(client);
  }
  return { user, clients };
}

/** A second client holding a copy of `client`'s current tokens (a stale copy after a logout). */
async function copyOf(client, options = {}) {
  return new TollgateClient({ baseUrl: proxy.url, store: memoryStore(await client.tokens()), ...options });
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof TollgateError, `expected a TollgateError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test("register then login gives a token pair and me answers with the account", async () => {
  const user = newUser();
  const client = new TollgateClient({ baseUrl: proxy.url });
  const registered = await client.register(user);
  assert.equal(registered.email, user.email);
  assert.equal(registered.name, user.name);

  const tokens = await client.login({ email: user.email, password: user.password, deviceName: "laptop" });
  assert.equal(typeof tokens.accessToken, "string");
  assert.equal(tokens.expiresIn, 900);
  assert.deepEqual(await client.tokens(), tokens);

  const me = await client.me();
  assert.equal(me.id, registered.id);
  assert.equal(me.email, user.email);
  const call = proxy.requests("/api/users/me").at(-1);
  assert.equal(call.authorization, `Bearer ${tokens.accessToken}`);
});

test("the authenticated fetch returns the response and sends the bearer only to the API", async () => {
  const { clients: [client] } = await userWithDevices("laptop");
  const response = await client.fetch("/api/users/sessions");
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.data.length, 1);
  assert.equal(body.data[0].device_name, "laptop");

  const missing = await client.fetch(`${proxy.url}/api/users/nothing-here`);
  assert.equal(missing.status, 404);
  await rejectsWith(client.request("/api/users/nothing-here"), "not_found");

  await assert.rejects(client.fetch("http://127.0.0.2:9/api/users/me"), TypeError);
});

test("failures are typed errors carrying the documented code and status", async () => {
  const user = newUser();
  const client = new TollgateClient({ baseUrl: proxy.url });
  await client.register(user);

  const taken = await client.register(user).catch((e) => e);
  assert.ok(isTollgateError(taken, "email_taken"));
  assert.equal(taken.status, 409);

  const wrong = await client.login({ email: user.email, password: "not the password at all" }).catch((e) => e);
  assert.ok(isTollgateError(wrong, "invalid_credentials"));
  assert.equal(wrong.status, 401);
  assert.equal(wrong.endsSession, false);

  await rejectsWith(client.register({ email: "not-an-email", password: "x" }), "invalid_input");
  await rejectsWith(client.me(), "not_logged_in");
  await rejectsWith(
    new TollgateClient({ baseUrl: "http://127.0.0.1:9" }).login({ email: user.email, password: user.password }),
    "network_error",
  );
});

test("sessions lists every device of the user and marks this one", async () => {
  const { clients: [laptop, phone] } = await userWithDevices("laptop", "phone");
  const { sessions, total, currentJti } = await phone.sessions();
  assert.equal(total, 2);
  const phoneTokens = await phone.tokens();
  assert.equal(currentJti, phoneTokens.jti);
  const current = sessions.filter((s) => s.is_current);
  assert.equal(current.length, 1);
  assert.equal(current[0].device_name, "phone");
  assert.equal(current[0].token_id, phoneTokens.tokenId);
  assert.deepEqual(sessions.map((s) => s.device_name).sort(), ["laptop", "phone"]);
  assert.equal((await laptop.sessions()).total, 2);
});

test("logout ends this device: its next call fails with token_revoked, the other device works", async () => {
  const { user, clients: [laptop, phone] } = await userWithDevices("laptop", "phone");
  const ended = [];
  const stale = await copyOf(laptop, { onSessionEnd: (e) => ended.push(e.code) });

  await laptop.logout();
  assert.equal(await laptop.tokens(), null);
  await rejectsWith(laptop.me(), "not_logged_in");

  await rejectsWith(stale.me(), "token_revoked");
  assert.deepEqual(ended, ["token_revoked"]);
  assert.equal(await stale.tokens(), null, "a session-ending rejection drops the tokens");

  assert.equal((await phone.me()).email, user.email, "the phone is untouched");
});

test("logout-all ends every device: the other device's next call fails, its refresh too", async () => {
  const { clients: [laptop, phone] } = await userWithDevices("laptop", "phone");
  const phoneCopy = await copyOf(phone);

  const result = await laptop.logoutAll();
  assert.equal(result.revoked_sessions, 2);
  assert.equal(await laptop.tokens(), null);

  await rejectsWith(phone.me(), "token_revoked");
  assert.equal(await phone.tokens(), null);
  await rejectsWith(phoneCopy.refresh(), "invalid_refresh_token");
});

test("logout-device-jti ends the device holding that access token", async () => {
  const { clients: [laptop, phone] } = await userWithDevices("laptop", "phone");
  const phoneTokens = await phone.tokens();

  const result = await laptop.logoutDeviceJti(phoneTokens.jti);
  assert.equal(result.token_id, phoneTokens.tokenId);
  assert.notEqual(await laptop.tokens(), null, "the caller's own device stays logged in");

  await rejectsWith(phone.me(), "token_revoked");
  await rejectsWith(laptop.logoutDeviceJti(phoneTokens.jti), "not_found");
  const left = await laptop.sessions();
  assert.deepEqual(left.sessions.map((s) => s.device_name), ["laptop"]);
});

test("logout-device ends that device session; naming one's own logs this client out", async () => {
  const { clients: [laptop, phone] } = await userWithDevices("laptop", "phone");
  const phoneTokens = await phone.tokens();
  const laptopCopy = await copyOf(laptop);

  await laptop.logoutDevice(phoneTokens.tokenId);
  await rejectsWith(phone.me(), "token_revoked");
  assert.equal((await laptop.sessions()).total, 1);

  await laptop.logoutDevice((await laptop.tokens()).tokenId);
  assert.equal(await laptop.tokens(), null);
  await rejectsWith(laptopCopy.me(), "token_revoked");
});

test("an answer that is not the documented error body is invalid_response, with its status", async () => {
  // What a misconfigured load balancer in front of the API might say.
  const gateway = createServer((_req, res) => {
    res.writeHead(502, { "content-type": "text/html", "retry-after": "7" });
    res.end("<html><body>Bad Gateway</body></html>");
  });
  await new Promise((ok) => gateway.listen(0, "127.0.0.1", ok));
  try {
    const client = new TollgateClient({ baseUrl: `http://127.0.0.1:${gateway.address().port}` });
    const e = await client.login({ email: "a@example.com", password: "whatever it is" }).catch((e) => e);
    assert.ok(isTollgateError(e, "invalid_response"), String(e));
    assert.equal(e.status, 502);
    assert.equal(e.retryAfter, 7);
  } finally {
    gateway.closeAllConnections();
    await new Promise((ok) => gateway.close(ok));
  }
});
