//! The protected-route decision: local JWT verification (memoised per isolate), then one
//! Upstash round trip and the shared decision — the same bearer check as the origin's
//! `AuthUser`, from the same code ([`tollgate_shared::decision::check_token`], after the same
//! [`tollgate_shared::jwt::bearer_token`]).

use std::cell::RefCell;
use std::collections::HashMap;

use tollgate_shared::decision::{self, check_token, Decision, RevocationLookup};
use tollgate_shared::upstash::ValidationLookup;
use tollgate_shared::{jwt, AccessClaims, Rejection};

use tollgate_shared::jwt::{KeySet, VerifyingKey};
use worker::console_error;

use crate::config::Settings;
use crate::crypto;
use crate::keys::{self, Keys};
use crate::log::Answer;
use crate::respond;
use crate::upstash::{Upstash, UpstashFailure};

/// What to do with a protected request.
#[derive(Debug)]
pub(crate) enum Access {
    /// All five layers passed, for the token with these claims.
    Granted(AccessClaims),
    /// The token verifies and its jti record is live, but the user's version key is missing
    /// from Redis (evicted, or Redis was flushed). Only the origin can re-seed it from SQL, so
    /// it must decide: refusing here would log out every user after an eviction, accepting
    /// would skip the version check.
    OriginDecides(AccessClaims),
}

/// Why a protected request does not reach its upstream.
#[derive(Debug)]
pub(crate) enum Denied {
    /// 401 with the rejection's code.
    Token(Rejection),
    /// 503: revocation state unknown, fail closed.
    Upstash(UpstashFailure),
    /// 503: the token names a key we do not know and the origin's JWKS cannot be fetched.
    KeysUnavailable,
}

/// Verified tokens this isolate has seen, by their exact text, until their `exp`: a token seen
/// before costs no signature check. Revocation is untouched — the jti and version are read from
/// Upstash on every request. Bounded: when full it is simply emptied.
const MEMO_CAPACITY: usize = 4096;

thread_local! {
    static VERIFIED: RefCell<HashMap<String, AccessClaims>> = RefCell::new(HashMap::new());
}

/// The claims of `token` if this isolate verified it before and its `exp` has not passed: no
/// signature check needed (the JS entry's fast path takes only such tokens, [`crate::entry`]).
pub(crate) fn memoised(token: &str, now: i64) -> Option<AccessClaims> {
    VERIFIED.with(|m| m.borrow().get(token).filter(|c| now < c.exp).cloned())
}

async fn verified_claims(
    token: &str,
    keys: &KeySet,
    settings: &Settings,
    now: i64,
) -> Result<AccessClaims, Rejection> {
    if token.len() > jwt::MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    if let Some(claims) = memoised(token, now) {
        return Ok(claims);
    }
    // The JOSE rules are shared's; only the signature primitive is ours (WebCrypto for
    // Ed25519, shared's constant-time HMAC for HS256).
    let jws = jwt::parse_jws(token, keys, jwt::ACCESS_TOKEN_TYP)?;
    let valid = match (
        jws.key.verify_hmac(jws.signing_input, &jws.signature),
        jws.key,
    ) {
        (Some(valid), _) => valid,
        (None, VerifyingKey::EdDSA(public)) => {
            match crypto::verify_ed25519(public.as_bytes(), jws.signing_input, &jws.signature).await
            {
                Ok(valid) => valid,
                Err(e) => {
                    // A key WebCrypto will not take: nothing verifies with it (fail closed).
                    console_error!("refusing a token: {e}");
                    false
                }
            }
        }
        (None, VerifyingKey::HS256(_)) => false,
    };
    let payload = jws.finish(valid)?;
    let claims = jwt::access_claims(&payload, &settings.validation, now)?;
    VERIFIED.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_CAPACITY {
            m.clear();
        }
        m.insert(token.to_owned(), claims.clone());
    });
    Ok(claims)
}

impl RevocationLookup for Upstash<'_> {
    type Error = UpstashFailure;

    async fn lookup(&self, claims: &AccessClaims) -> Result<ValidationLookup, UpstashFailure> {
        self.validation_lookup(claims).await
    }
}

/// Decides a protected request from its `Authorization` header. A token that fails locally
/// (malformed, forged, expired, wrong issuer/audience/type) is refused before any Redis call.
/// `strict` reads revocation state from the strict (primary) database.
pub(crate) async fn authorize(
    authorization: Option<&str>,
    settings: &Settings,
    strict: bool,
    now: i64,
) -> Result<Access, Denied> {
    // A missing or malformed `Authorization` is a 401 before anything else: it needs no key,
    // so it never waits for (or fails on) a JWKS fetch.
    let token = jwt::bearer_token(authorization).map_err(Denied::Token)?;
    // Only a JWKS_URL deployment needs the kid before verifying (to decide on a fetch); with
    // static keys the header is parsed once, by the verifier. A token that is not three parts
    // or whose header has no readable kid matches no key, fetched or not, so the static keys
    // refuse it just the same (malformed / signature) without a fetch.
    let kid = match settings.jwks {
        Some(_) if token.split('.').count() == 3 => jwt::header_kid(token),
        _ => None,
    };
    let fetched;
    let keys: &KeySet = match kid {
        None => &settings.key_set,
        Some(kid) => match keys::for_kid(settings, &kid).await {
            Keys::Static(keys) => keys,
            Keys::Ready(keys) => {
                fetched = keys;
                &fetched
            }
            Keys::Unavailable => return Err(Denied::KeysUnavailable),
        },
    };
    // The signature check is async (WebCrypto), `check_token`'s verifier is not: verify
    // first and hand it the outcome.
    let verified = verified_claims(token, keys, settings, now).await;
    let checked = check_token(token, |_| verified, &Upstash::new(settings, strict))
        .await
        .map_err(Denied::Upstash)?
        .map_err(Denied::Token)?;
    outcome(checked.claims, checked.decision)
}

/// [`authorize`] for a memoised token (`claims`, from [`memoised`]) on the lookup the JS
/// entry has already awaited ([`crate::entry`]): the same shared decision
/// ([`tollgate_shared::decision::decide`], which `check_token` ends with), the same outcomes.
/// Only the awaits moved: `check_token` cannot be handed a lookup JS awaited.
pub(crate) fn decide(
    claims: AccessClaims,
    lookup: Result<ValidationLookup, UpstashFailure>,
) -> Result<Access, Denied> {
    let decision = decision::decide(&claims, &lookup.map_err(Denied::Upstash)?);
    outcome(claims, decision)
}

/// What the shared decision on `claims` means here.
fn outcome(claims: AccessClaims, decision: Decision) -> Result<Access, Denied> {
    match decision {
        Decision::Accept(_) => Ok(Access::Granted(claims)),
        Decision::Reject(rejection) => Err(Denied::Token(rejection)),
        Decision::VersionMissing => Ok(Access::OriginDecides(claims)),
    }
}

impl Denied {
    /// The edge's answer: 401 with the rejection's code, or 503 (logged with the cause).
    pub(crate) fn answer(self) -> worker::Result<Answer> {
        match self {
            Self::Token(rejection) => respond::rejection(rejection),
            Self::Upstash(failure) => {
                Ok(respond::unavailable()?.because(format_args!("failing closed: {failure}")))
            }
            Self::KeysUnavailable => Ok(respond::unavailable()?
                .because("failing closed: unknown key id and the JWKS cannot be fetched")),
        }
    }
}
