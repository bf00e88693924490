// Keys, claims, signing and plain-HTTP calls for the tests.

import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

import { HEADER, TYP } from '../src/index.js';

export const ISSUER = 'tollgate-edge';
export const AUDIENCE = 'notes';

/** A fresh edge key: its private half and its public JWK under `kid`. */
export async function edgeKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  return { kid, privateKey, jwk };
}

/** What the edge signs for a fully checked user calling `method path` on `notes`. */
export function claims(method, path, overrides = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-1',
    sid: 'session-1',
    jti: 'jti-1',
    ver: 3,
    ver_checked: true,
    ip: '203.0.113.7',
    htm: method,
    htu: path,
    iat: now,
    exp: now + 30,
    ...overrides,
  };
}

export function sign(payload, key) {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'EdDSA', typ: TYP, kid: key.kid })
    .sign(key.privateKey);
}

/** Listens on a fresh loopback port; resolves to the base URL. */
export function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

export function close(server) {
  server.closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * One request with the given assertion header values (each sent as its own header line);
 * resolves to `{ status, body }` with the body parsed as JSON.
 */
export function call(base, method, path, assertions = []) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, agent: false });
    if (assertions.length > 0) req.setHeader(HEADER, assertions);
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(text) });
        } catch (e) {
          reject(new Error(`not JSON (${res.statusCode}): ${text}`, { cause: e }));
        }
      });
    });
    req.end();
  });
}
