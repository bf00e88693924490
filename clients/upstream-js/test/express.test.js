// The Express middleware in a real Express app on a loopback socket.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';

import { createVerifier } from '../src/index.js';
import { tollgate } from '../src/express.js';
import { AUDIENCE, ISSUER, call, claims, close, edgeKey, listen, sign } from './helpers.js';

const e1 = await edgeKey('e1');
const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [e1.jwk] } });

const app = express();
const notes = express.Router();
notes.get('/notes/:id', (req, res) => res.json({ id: req.params.id, who: req.tollgate }));
notes.post('/notes/:id', (req, res) => res.json({ id: req.params.id, who: req.tollgate }));
app.use('/api', tollgate(verifier), notes);
// The same routes mounted again elsewhere: the binding is to the full path received.
app.use('/api/v2', tollgate(verifier), notes);
app.get('/public/ping', tollgate(verifier, { anonymous: true }), (req, res) => res.json({ ip: req.tollgate.ip ?? null }));

const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
test.after(() => close(server));

test('a valid assertion reaches the handler as req.tollgate', async () => {
  const { status, body } = await call(base, 'GET', '/api/notes/1?x=1', [await sign(claims('GET', '/api/notes/1'), e1)]);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.id, '1');
  assert.equal(body.who.userId, 'user-1');
  assert.equal(body.who.tokenVersion, 3);
  assert.equal(body.who.clientIp, '203.0.113.7');
});

test('under a second mount point the full path is what counts', async () => {
  const ok = await call(base, 'GET', '/api/v2/notes/1', [await sign(claims('GET', '/api/v2/notes/1'), e1)]);
  assert.equal(ok.status, 200);
  const replayed = await call(base, 'GET', '/api/v2/notes/1', [await sign(claims('GET', '/api/notes/1'), e1)]);
  assert.equal(replayed.status, 401);
  assert.equal(replayed.body.error.code, 'assertion_invalid');
});

const refusals = [
  ['missing', async () => [], 'GET', '/api/notes/1', 'assertion_missing'],
  ['forged', async () => [await sign(claims('GET', '/api/notes/1'), { ...(await edgeKey('x')), kid: 'e1' })], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['unknown kid', async () => [await sign(claims('GET', '/api/notes/1'), await edgeKey('e9'))], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['expired', async () => [await sign(claims('GET', '/api/notes/1', { iat: 1_000, exp: 1_030 }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['other method', async () => [await sign(claims('GET', '/api/notes/1'), e1)], 'POST', '/api/notes/1', 'assertion_invalid'],
  ['other path', async () => [await sign(claims('GET', '/api/notes/1'), e1)], 'GET', '/api/notes/2', 'assertion_invalid'],
  ['other upstream', async () => [await sign(claims('GET', '/api/notes/1', { aud: 'billing' }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['unchecked', async () => [await sign(claims('GET', '/api/notes/1', { ver_checked: false }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['anonymous', async () => [await sign(claims('GET', '/api/notes/1', { sub: undefined, sid: undefined, jti: undefined, ver: undefined }), e1)], 'GET', '/api/notes/1', 'assertion_invalid'],
  ['duplicated', async () => { const t = await sign(claims('GET', '/api/notes/1'), e1); return [t, t]; }, 'GET', '/api/notes/1', 'assertion_invalid'],
];
for (const [name, headers, method, path, code] of refusals) {
  test(`refused with 401 ${code}: ${name}`, async () => {
    const { status, body } = await call(base, method, path, await headers());
    assert.equal(status, 401);
    assert.equal(body.error.code, code);
    assert.equal(typeof body.error.message, 'string');
  });
}

test('an anonymous assertion is accepted where the route allows it', async () => {
  const anon = claims('GET', '/public/ping', { sub: undefined, sid: undefined, jti: undefined, ver: undefined, ver_checked: false });
  const { status, body } = await call(base, 'GET', '/public/ping', [await sign(anon, e1)]);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.ip, '203.0.113.7');
});
