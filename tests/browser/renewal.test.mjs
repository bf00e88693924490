// A page session outlives its short access token: the next page view rotates the refresh
// cookie through the API's own refresh and stays the same device session.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import {
  deviceRows,
  pageLogin,
  registeredUser,
  sessionCookies,
  sleep,
  startPages,
  submit,
} from "./support.mjs";

const TTL_SECS = 2;
let pages;

before(async () => {
  pages = await startPages({ ACCESS_TOKEN_TTL_SECS: String(TTL_SECS) });
});

after(async () => {
  await pages?.stop();
});

test("an expired access cookie is renewed by rotating the refresh cookie, same device session", async () => {
  const user = await registeredUser(pages.url);
  const { context, page } = await pageLogin(pages, user);
  const before = await sessionCookies(context);
  const session = (await deviceRows(page)).find((r) => r.current).tokenId;

  await sleep(TTL_SECS * 1000 + 1200);
  await page.goto(`${pages.url}/account/devices`);
  assert.ok(page.url().endsWith("/account/devices"), "still signed in");
  const after = await sessionCookies(context);
  assert.notEqual(after["__Secure-tg_rt"].value, before["__Secure-tg_rt"].value, "refresh rotated");
  assert.notEqual(after["__Secure-tg_at"].value, before["__Secure-tg_at"].value, "new access token");
  assert.equal(after["__Secure-tg_csrf"].value, before["__Secure-tg_csrf"].value, "same CSRF token");
  const rows = await deviceRows(page);
  assert.deepEqual(
    rows.map((r) => [r.tokenId, r.current]),
    [[session, true]],
    "one device session, still this one",
  );
  // A form still works after the rotation (its token is bound to the session, not the secret).
  await submit(page, "text=Sign out everywhere");
  assert.ok(page.url().endsWith("/account/login"), page.url());
  await context.close();
});
