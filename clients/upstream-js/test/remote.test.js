// Keys from the edge's JWKS URL: a real local HTTP server publishes them and counts requests.

import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import { createVerifier, JWKS_PATH } from '../src/index.js';
import { AUDIENCE, ISSUER, claims, close, edgeKey, listen, sign } from './helpers.js';

/** A JWKS server whose keys a test can change; `fetches` counts what it answered. */
async function jwksServer(keys) {
  const state = { keys, fetches: 0 };
  const server = http.createServer((req, res) => {
    state.fetches += 1;
    res.setHeader('content-type', 'application/json');
    res.setHeader('connection', 'close');
    res.end(JSON.stringify({ keys: state.keys.map((k) => k.jwk) }));
  });
  const base = await listen(server);
  return { state, server, url: `${base}${JWKS_PATH}` };
}

function verifier(url, cacheMaxAge, cooldownDuration) {
  return createVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUrl: url,
    cacheMaxAge,
    cooldownDuration,
    timeoutDuration: 500,
    onFetchError: () => {},
  });
}

const request = { method: 'GET', path: '/api/notes/1' };
const assertionBy = (key) => sign(claims('GET', '/api/notes/1'), key);

test('keys are fetched once and then served from the cache', async (t) => {
  const e1 = await edgeKey('e1');
  const jwks = await jwksServer([e1]);
  t.after(() => close(jwks.server));
  const v = verifier(jwks.url, 60_000, 60_000);
  for (let i = 0; i < 5; i += 1) {
    assert.equal((await v.verifyAssertion(await assertionBy(e1), request)).userId, 'user-1');
  }
  assert.equal(jwks.state.fetches, 1);
});

test('a flood of made-up kids costs at most one fetch per cooldown', async (t) => {
  const e1 = await edgeKey('e1');
  const jwks = await jwksServer([e1]);
  t.after(() => close(jwks.server));
  const v = verifier(jwks.url, 60_000, 60_000);
  const forger = await edgeKey('unused');
  const flood = await Promise.allSettled(
    Array.from({ length: 100 }, async (_, i) =>
      v.verifyAssertion(await assertionBy({ ...forger, kid: `made-up-${i}` }), request),
    ),
  );
  assert.equal(flood.length, 100);
  assert.ok(flood.every((r) => r.status === 'rejected' && r.reason.code === 'assertion_invalid'));
  assert.equal(jwks.state.fetches, 1);
  // …and one after the other, once that fetch is done: still no more.
  for (let i = 0; i < 20; i += 1) {
    await assert.rejects(v.verifyAssertion(await assertionBy({ ...forger, kid: `late-${i}` }), request));
  }
  assert.equal(jwks.state.fetches, 1);
  await v.verifyAssertion(await assertionBy(e1), request);
  assert.equal(jwks.state.fetches, 1);
});

test('a key published later is picked up for its kid after the cooldown', async (t) => {
  const [e1, e2] = [await edgeKey('e1'), await edgeKey('e2')];
  const jwks = await jwksServer([e1]);
  t.after(() => close(jwks.server));
  const v = verifier(jwks.url, 60_000, 200);
  await v.verifyAssertion(await assertionBy(e1), request);
  jwks.state.keys = [e1, e2];
  await sleep(300);
  assert.equal((await v.verifyAssertion(await assertionBy(e2), request)).userId, 'user-1');
  assert.equal(jwks.state.fetches, 2);
  await v.verifyAssertion(await assertionBy(e1), request);
  assert.equal(jwks.state.fetches, 2);
});

/** A verifier that counts the fetches that failed. */
function counting(url, cacheMaxAge, cooldownDuration) {
  const failed = { count: 0 };
  const v = createVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUrl: url,
    cacheMaxAge,
    cooldownDuration,
    timeoutDuration: 500,
    onFetchError: () => {
      failed.count += 1;
    },
  });
  return { v, failed };
}

test('with the JWKS server down, known kids keep verifying and unknown ones are refused', async () => {
  const [e1, e2] = [await edgeKey('e1'), await edgeKey('e2')];
  const jwks = await jwksServer([e1]);
  const { v, failed } = counting(jwks.url, 200, 200);
  await v.verifyAssertion(await assertionBy(e1), request);
  await close(jwks.server);
  // Past the cache age and the cooldown: this call attempts a fetch, which fails.
  await sleep(300);
  assert.equal((await v.verifyAssertion(await assertionBy(e1), request)).userId, 'user-1');
  assert.equal(failed.count, 1);
  await assert.rejects(v.verifyAssertion(await assertionBy(e2), request), { code: 'assertion_invalid' });
  assert.equal(jwks.state.fetches, 1);
});

test('while fetches fail, a flood still costs one fetch attempt per cooldown', async () => {
  // jose's own cooldown counts from the last successful fetch, so without ours every one of
  // these calls would try the dead endpoint.
  const e1 = await edgeKey('e1');
  const jwks = await jwksServer([e1]);
  await close(jwks.server);
  const { v, failed } = counting(jwks.url, 60_000, 60_000);
  for (let i = 0; i < 20; i += 1) {
    await assert.rejects(v.verifyAssertion(await assertionBy({ ...e1, kid: `made-up-${i}` }), request), {
      code: 'assertion_invalid',
    });
  }
  assert.equal(failed.count, 1);
});

test('with the JWKS server down from the start, everything is refused', async () => {
  const e1 = await edgeKey('e1');
  const jwks = await jwksServer([e1]);
  await close(jwks.server);
  const v = verifier(jwks.url, 200, 200);
  await assert.rejects(v.verifyAssertion(await assertionBy(e1), request), { code: 'assertion_invalid' });
});
