// Hono middleware: refuses a request without a valid edge assertion with 401 and Tollgate's
// JSON error body, and sets `c.get('tollgate')` to the identity (or, with
// `{ anonymous: true }`, to the claims of a possibly anonymous assertion) otherwise.

import { AssertionError, HEADER, verifierFrom } from './index.js';

/**
 * @param {object} verifierOrOptions a `createVerifier` result, or its options
 * @param {object} [how]
 * @param {boolean} [how.anonymous] accept anonymous assertions (`public_signed` routes)
 */
export function tollgate(verifierOrOptions, { anonymous = false } = {}) {
  const verifier = verifierFrom(verifierOrOptions);
  const verify = anonymous ? verifier.verifyAssertionClaims : verifier.verifyAssertion;
  return async function tollgateMiddleware(c, next) {
    // Fetch `Headers` join a duplicated header with ", ", which the shape check refuses.
    const value = c.req.raw.headers.get(HEADER) ?? undefined;
    // The full path as received (sub-apps mounted with `app.route` still see the whole URL).
    const path = new URL(c.req.url).pathname;
    try {
      c.set('tollgate', await verify(value, { method: c.req.method, path }));
    } catch (error) {
      if (!(error instanceof AssertionError)) throw error;
      return c.json(error.toBody(), 401);
    }
    await next();
  };
}

export default tollgate;
