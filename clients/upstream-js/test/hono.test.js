// The Hono middleware in a real Hono app served by @hono/node-server on a loopback socket.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

import { tollgate } from '../src/hono.js';
import { AUDIENCE, ISSUER, call, claims, close, edgeKey, sign } from './helpers.js';

const e1 = await edgeKey('e1');

const notes = new Hono();
notes.use('*', tollgate({ issuer: ISSUER, audience: AUDIENCE, jwks: JSON.stringify({ keys: [e1.jwk] }) }));
notes.get('/notes/:id', (c) => c.json({ id: c.req.param('id'), who: c.get('tollgate') }));
notes.delete('/notes/:id', (c) => c.json({ id: c.req.param('id'), who: c.get('tollgate') }));
const app = new Hono();
app.route('/api', notes);

const server = await new Promise((resolve) => {
  const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
});
const base = `http://127.0.0.1:${server.address().port}`;
test.after(() => close(server));

test('a valid assertion reaches the handler as c.get("tollgate")', async () => {
  const { status, body } = await call(base, 'DELETE', '/api/notes/7', [await sign(claims('DELETE', '/api/notes/7'), e1)]);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.id, '7');
  assert.equal(body.who.userId, 'user-1');
  assert.equal(body.who.tokenId, 'session-1');
});

const refusals = [
  ['missing', async () => [], 'GET', '/api/notes/1', 'assertion_missing'],
  ['forged', async () => [await sign(claims('GET', '/api/notes/1'), { ...(await edgeKey('x')), kid: 'e1' })], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['unknown kid', async () => [await sign(claims('GET', '/api/notes/1'), await edgeKey('e9'))], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['expired', async () => [await sign(claims('GET', '/api/notes/1', { iat: 1_000, exp: 1_030 }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['lifetime over 60 s', async () => [await sign(claims('GET', '/api/notes/1', { exp: Math.floor(Date.now() / 1000) + 61 }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['other method', async () => [await sign(claims('GET', '/api/notes/1'), e1)], 'DELETE', '/api/notes/1', 'assertion_invalid'],
  ['other path', async () => [await sign(claims('GET', '/api/notes/1'), e1)], 'GET', '/api/notes/2', 'assertion_invalid'],
  ['other upstream', async () => [await sign(claims('GET', '/api/notes/1', { aud: 'billing' }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['unchecked', async () => [await sign(claims('GET', '/api/notes/1', { ver_checked: false }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['duplicated', async () => { const t = await sign(claims('GET', '/api/notes/1'), e1); return [t, t]; }, 'GET', '/api/notes/1', 'assertion_invalid'],
];
for (const [name, headers, method, path, code] of refusals) {
  test(`refused with 401 ${code}: ${name}`, async () => {
    const { status, body } = await call(base, method, path, await headers());
    assert.equal(status, 401);
    assert.equal(body.error.code, code);
  });
}
