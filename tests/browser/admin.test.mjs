// The admin page in Debian's Chromium: 403 for a normal user; once promoted with the
// `tollgate-origin user promote` CLI, the token statistics and their history as inline SVG
// charts, including logins and refreshes per minute counted from SQL.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";

import { ARTIFACTS, api, apiLogin, pageLogin, registeredUser, startPages } from "./support.mjs";

let pages;

before(async () => {
  // Redis counts at most 1 s old, so the page shows the traffic the test just made.
  pages = await startPages({ TOKEN_STATS_MAX_AGE_SECS: "1" });
});

after(async () => {
  await pages?.stop();
});

/** The number on the card labelled `label`. */
async function card(page, label) {
  const text = await page
    .locator(".cards .card", { hasText: label })
    .locator(".value")
    .textContent();
  return Number(text);
}

test("the admin page is refused to a normal user and charts the token history for an admin", async () => {
  const user = await registeredUser(pages.url);
  // Traffic for the charts: two logins and two refreshes through the JSON API.
  const first = await apiLogin(pages.url, user, "phone");
  await apiLogin(pages.url, user, "tablet");
  let refresh = first.refresh_token;
  let refreshedAccess = first.access_token;
  for (let i = 0; i < 2; i += 1) {
    const r = await api(pages.url, "POST", "/api/users/refresh", { body: { refresh_token: refresh } });
    assert.equal(r.status, 200);
    refresh = r.body.data.refresh_token;
    refreshedAccess = r.body.data.access_token;
  }
  const { context, page } = await pageLogin(pages, user);

  const refused = await page.goto(`${pages.url}/account/admin`);
  assert.equal(refused.status(), 403);
  assert.match(await page.textContent("h1"), /Admins only/);
  assert.equal(await page.locator("nav a", { hasText: "Admin" }).count(), 0);
  // The JSON route agrees.
  const stats = await api(pages.url, "GET", "/api/users/token-stats", { token: refreshedAccess });
  assert.equal(stats.status, 403);

  assert.match(pages.cli("user", "promote", user.email), /is now an admin/);

  // `/admin` leads to the page; the role holds from the next request.
  const shown = await page.goto(`${pages.url}/admin`);
  assert.equal(shown.status(), 200);
  assert.ok(page.url().endsWith("/account/admin"));
  assert.match(await page.textContent("h1"), /Token statistics/);
  assert.equal(await page.locator("nav a", { hasText: "Admin" }).count(), 1);

  // Two API logins and the page's own; two refreshes.
  assert.equal(await card(page, "Logins, last hour"), 3);
  assert.equal(await card(page, "Refreshes, last hour"), 2);
  assert.equal(await card(page, "Active sessions"), 3);
  assert.ok((await card(page, "Access tokens (jtis in Redis)")) >= 3);

  const lines = page.locator("#logins-chart polyline.series");
  assert.equal(await lines.count(), 2);
  for (const name of ["Logins", "Refreshes"]) {
    const points = await page.locator(`#logins-chart polyline[data-series="${name}"]`).getAttribute("points");
    assert.equal(points.trim().split(/\s+/).length, 60, `${name}: one point per minute`);
  }
  // The sampled series have at least this minute's sample.
  const jtis = await page
    .locator('#tokens-chart polyline[data-series="Access tokens (jtis)"]')
    .getAttribute("points");
  assert.ok(jtis.trim().length > 0);
  assert.ok((await page.locator("#tokens-chart circle").count()) >= 1);
  await page.screenshot({ path: join(ARTIFACTS, "admin.png"), fullPage: true });

  // Demoted: refused again on the next request.
  pages.cli("user", "demote", user.email);
  assert.equal((await page.goto(`${pages.url}/account/admin`)).status(), 403);
  await context.close();
});
