// The devices page in Debian's Chromium through the real origin: sign in, every device session
// listed with this one marked, revoke one / all others / all, and a revoked device's next API
// call refused; the page's own session revoked elsewhere signs it out; forged posts change
// nothing; tokens only in HttpOnly, SameSite=Strict, Secure cookies, never in web storage.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest } from "node:http";
import { join } from "node:path";

import {
  ARTIFACTS,
  SESSION_COOKIES,
  api,
  apiLogin,
  deviceRows,
  me,
  pageLogin,
  submit,
  registeredUser,
  sessionCookies,
  startPages,
} from "./support.mjs";

let pages;

before(async () => {
  pages = await startPages();
});

after(async () => {
  await pages?.stop();
});

test("signing in lists every device session with this one marked, tokens kept in HttpOnly cookies", async () => {
  const user = await registeredUser(pages.url);
  const phone = await apiLogin(pages.url, user, "Pixel 9 <b>phone</b>");
  const { context, page } = await pageLogin(pages, user, "Work laptop");

  const rows = await deviceRows(page);
  assert.equal(rows.length, 2);
  const current = rows.filter((r) => r.current);
  assert.equal(current.length, 1, "exactly one row is this device");
  assert.notEqual(current[0].tokenId, phone.token_id);
  assert.match(current[0].text, /Work laptop/);
  assert.match(current[0].text, /This device/);
  assert.match(current[0].text, /HeadlessChrome|Chrome/, "the browser's user agent is shown");
  assert.match(current[0].text, /127\.0\.0\.1/);
  const other = rows.find((r) => r.tokenId === phone.token_id);
  // The device name is text, escaped, not markup.
  assert.match(other.text, /Pixel 9 <b>phone<\/b>/);
  assert.equal(await page.locator("table.devices b").count(), 0);

  const cookies = await sessionCookies(context);
  for (const name of SESSION_COOKIES) {
    const c = cookies[name];
    assert.ok(c, `${name} set`);
    assert.equal(c.httpOnly, true, `${name} HttpOnly`);
    assert.equal(c.sameSite, "Strict", `${name} SameSite`);
    assert.equal(c.secure, true, `${name} Secure`);
    assert.equal(c.path, "/account", `${name} scoped to /account`);
  }
  const storage = await page.evaluate(() => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
  }));
  assert.deepEqual(storage, { local: 0, session: 0, cookie: "" }, "no token reachable from script");

  const response = await page.goto(`${pages.url}/account/devices`);
  const headers = response.headers();
  assert.match(headers["content-security-policy"], /default-src 'self'/);
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.equal(headers["cache-control"], "no-store");
  assert.equal(headers["x-frame-options"], "DENY");
  await page.screenshot({ path: join(ARTIFACTS, "devices.png"), fullPage: true });
  await context.close();
});

test("a device revoked on the page is refused on its next API call", async () => {
  const user = await registeredUser(pages.url);
  const phone = await apiLogin(pages.url, user, "phone");
  const tablet = await apiLogin(pages.url, user, "tablet");
  assert.equal((await me(pages.url, phone.access_token)).status, 200);
  const { context, page } = await pageLogin(pages, user);

  await submit(page, `tr[data-token-id="${phone.token_id}"] button`);
  assert.ok(page.url().endsWith("/account/devices"), page.url());
  const rows = await deviceRows(page);
  assert.equal(rows.length, 2, "the revoked device is gone from the list");
  assert.ok(!rows.some((r) => r.tokenId === phone.token_id));
  assert.deepEqual(await me(pages.url, phone.access_token), { status: 401, code: "token_revoked" });
  const refresh = await api(pages.url, "POST", "/api/users/refresh", {
    body: { refresh_token: phone.refresh_token },
  });
  assert.equal(refresh.status, 401, "its refresh token died with it");
  assert.equal((await me(pages.url, tablet.access_token)).status, 200, "other devices live on");
  await context.close();
});

test("signing out all other devices keeps only this one", async () => {
  const user = await registeredUser(pages.url);
  const phone = await apiLogin(pages.url, user, "phone");
  const tablet = await apiLogin(pages.url, user, "tablet");
  const { context, page } = await pageLogin(pages, user);
  assert.equal((await deviceRows(page)).length, 3);

  await submit(page, "text=Sign out all other devices");
  assert.ok(page.url().endsWith("/account/devices"), page.url());
  const rows = await deviceRows(page);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].current, true);
  assert.equal((await me(pages.url, phone.access_token)).status, 401);
  assert.equal((await me(pages.url, tablet.access_token)).status, 401);
  // Still signed in here.
  await page.reload();
  assert.ok(page.url().endsWith("/account/devices"));
  await context.close();
});

test("signing out everywhere signs the page out too and clears its cookies", async () => {
  const user = await registeredUser(pages.url);
  const phone = await apiLogin(pages.url, user, "phone");
  const { context, page } = await pageLogin(pages, user);

  await submit(page, "text=Sign out everywhere");
  assert.ok(page.url().endsWith("/account/login"), page.url());
  assert.equal((await me(pages.url, phone.access_token)).status, 401);
  const cookies = await sessionCookies(context);
  for (const name of SESSION_COOKIES) assert.equal(cookies[name], undefined, `${name} cleared`);
  await page.goto(`${pages.url}/account/devices`);
  assert.ok(page.url().endsWith("/account/login"), "the devices page wants a sign-in again");
  await context.close();
});

test("the page's own session revoked from another device signs the page out", async () => {
  const user = await registeredUser(pages.url);
  const phone = await apiLogin(pages.url, user, "phone");
  const { context, page } = await pageLogin(pages, user);
  const mine = (await deviceRows(page)).find((r) => r.current).tokenId;

  const r = await api(pages.url, "POST", `/api/users/logout-device/${mine}`, {
    token: phone.access_token,
  });
  assert.equal(r.status, 200);
  await page.goto(`${pages.url}/account/devices`);
  assert.ok(page.url().endsWith("/account/login"), `still signed in at ${page.url()}`);
  await context.close();
});

test("the sign-out button revokes this device session", async () => {
  const user = await registeredUser(pages.url);
  const phone = await apiLogin(pages.url, user, "phone");
  const { context, page } = await pageLogin(pages, user);
  const mine = (await deviceRows(page)).find((r) => r.current).tokenId;

  await submit(page, "header button");
  assert.ok(page.url().endsWith("/account/login"), page.url());
  const list = await api(pages.url, "GET", "/api/users/sessions", { token: phone.access_token });
  assert.deepEqual(
    list.body.data.map((s) => s.token_id),
    [phone.token_id],
    "the page's session is gone, the phone's stays",
  );
  assert.ok(mine);
  await context.close();
});

test("a wrong password shows the form again with an error", async () => {
  const user = await registeredUser(pages.url);
  const context = await pages.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${pages.url}/account/login`);
  await page.fill("input[name=email]", user.email);
  await page.fill("input[name=password]", "not the password");
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/account/login") && r.request().method() === "POST"),
    page.click("button[type=submit]"),
  ]);
  assert.equal(response.status(), 401);
  assert.match(await page.textContent(".error"), /incorrect/);
  assert.equal((await sessionCookies(context))["__Secure-tg_rt"], undefined);
  await context.close();
});

/** POSTs from Node with the page's cookies and chosen headers; resolves the status. */
function forgedPost(url, cookieHeader, headers, body) {
  return new Promise((ok, fail) => {
    const req = httpRequest(
      url,
      {
        method: "POST",
        headers: {
          cookie: cookieHeader,
          "content-type": "application/x-www-form-urlencoded",
          "content-length": Buffer.byteLength(body),
          ...headers,
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => ok(res.statusCode));
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

test("forged posts are refused and revoke nothing", async () => {
  const user = await registeredUser(pages.url);
  const phone = await apiLogin(pages.url, user, "phone");
  const { context, page } = await pageLogin(pages, user);
  const revokeAll = `${pages.url}/account/devices/revoke-all`;

  // From the page itself (same origin), but without the token, or with a wrong one.
  const statuses = await page.evaluate(async (target) => {
    const post = (body) =>
      fetch(target, { method: "POST", body: new URLSearchParams(body), redirect: "manual" }).then(
        (r) => r.status,
      );
    return [await post({}), await post({ csrf: "wrong" }), await post({ csrf: "" })];
  }, revokeAll);
  assert.deepEqual(statuses, [403, 403, 403]);

  // With the real cookies and even the real token, but from another origin.
  const cookies = await sessionCookies(context);
  const cookieHeader = Object.values(cookies)
    .map((c) => `${c.name}=${c.value}`)
    .join("; ");
  const csrf = cookies["__Secure-tg_csrf"].value;
  const body = `csrf=${encodeURIComponent(csrf)}`;
  assert.equal(await forgedPost(revokeAll, cookieHeader, { origin: "http://evil.example" }, body), 403);
  assert.equal(await forgedPost(revokeAll, cookieHeader, { "sec-fetch-site": "cross-site" }, body), 403);
  assert.equal(await forgedPost(revokeAll, cookieHeader, { origin: "null" }, body), 403);
  assert.equal(await forgedPost(revokeAll, cookieHeader, {}, body), 403, "no Origin, no Sec-Fetch-Site");

  // A real cross-site page (localhost is another site than 127.0.0.1) that auto-submits a form.
  const evil = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(
      `<form id=f method=post action="${revokeAll}"><input name=csrf value="${csrf}"></form>` +
        `<script>document.getElementById("f").submit()</script>`,
    );
  });
  await new Promise((ok) => evil.listen(0, "127.0.0.1", ok));
  try {
    const attacker = await context.newPage();
    const [response] = await Promise.all([
      attacker.waitForResponse((r) => r.url() === revokeAll),
      attacker.goto(`http://localhost:${evil.address().port}/`),
    ]);
    assert.equal(response.status(), 403);
    await attacker.close();
  } finally {
    evil.close();
  }

  // Nothing was revoked.
  assert.equal((await me(pages.url, phone.access_token)).status, 200);
  await page.goto(`${pages.url}/account/devices`);
  assert.ok(page.url().endsWith("/account/devices"), "the page is still signed in");
  assert.equal((await deviceRows(page)).length, 2);

  // And the real form, with the real token, works (the checks refuse forgeries only).
  await submit(page, "text=Sign out everywhere");
  assert.ok(page.url().endsWith("/account/login"), page.url());
  assert.equal((await me(pages.url, phone.access_token)).status, 401);
  await context.close();
});
