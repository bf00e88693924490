// Express / Connect middleware: refuses a request without a valid edge assertion with 401 and
// Tollgate's JSON error body, and sets `req.tollgate` to the identity (or, with
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
  return function tollgateMiddleware(req, res, next) {
    // `headersDistinct` (Node >= 18.3) keeps a duplicated header as two values.
    const value = req.headersDistinct?.[HEADER] ?? req.headers[HEADER];
    // The path the request arrived with: `originalUrl` survives Express's mounting (`req.url`
    // and `req.path` lose the mount prefix), and it is not normalised.
    const path = (req.originalUrl ?? req.url).split('?')[0];
    verify(value, { method: req.method, path }).then(
      (identity) => {
        req.tollgate = identity;
        next();
      },
      (error) => {
        if (!(error instanceof AssertionError)) return next(error);
        res.statusCode = 401;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(error.toBody()));
      },
    );
  };
}

export default tollgate;
