//! Compact JWS (JWT) signing and verification, with the algorithm pinned per key.
//!
//! Written here rather than taken from `jsonwebtoken` for two reasons: the edge Worker must stay
//! small (that crate's `rust_crypto` backend drags RSA and ECDSA into the wasm, ~345 KB gzipped),
//! and the origin and the edge must make byte-for-byte the same decision on hostile input.
//!
//! Rules, in the order they are applied:
//! 1. At most [`MAX_TOKEN_LEN`] bytes, exactly three base64url (unpadded, canonical) segments.
//! 2. Any `crit` member at all (even `null` or `[]`) is refused (RFC 7515 §4.1.11).
//! 3. The header names a `kid` present in the [`KeySet`]; its `alg` must equal that key's
//!    algorithm. `none` and unknown algorithms are refused; `jku`, `x5u`, `jwk` and other
//!    headers are ignored (keys only ever come from configuration).
//! 4. The signature verifies (Ed25519 `verify_strict`; HMAC compared in constant time), and then
//!    the header's `typ` is the one expected for this kind of token (`at+jwt` for access tokens,
//!    RFC 9068 §4, compared case-insensitively with an optional `application/` prefix), so an
//!    edge assertion or any other JWT signed by a trusted key is never taken for an access token.
//! 5. Only then is the payload parsed ([`crate::json`], as every JSON here): duplicate keys are refused, `exp` is strict, `iat`/`nbf`
//!    may be at most `leeway` seconds in the future, `exp − iat` may not exceed the configured
//!    lifetime (plus leeway) so a token minted for a year by a leaked key is still refused,
//!    `iss` and `aud` must match exactly.
//!
//! Rules 1–4 are [`verify_jws`], shared with the edge's identity assertions
//! ([`crate::assertion`]); rule 5 is specific to access tokens ([`access_claims`]).
//!
//! # The signature primitive is pluggable
//! [`parse_jws`] applies every rule up to the signature and hands back an [`UnverifiedJws`]:
//! the signing input, the decoded signature and the pinned key. Whoever holds it checks the
//! signature however it can and calls [`UnverifiedJws::finish`] with the verdict, which applies
//! the rules that come after. [`verify_jws`] does exactly that with the compiled-in Ed25519
//! (`ed25519-dalek`, feature `ed25519-dalek`, on by default) and HMAC; the edge Worker turns the
//! feature off and checks Ed25519 through the platform's WebCrypto, which is faster there and
//! keeps ~100 KB of curve code out of its wasm. The rules themselves exist once, here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
#[cfg(feature = "ed25519-dalek")]
use ed25519_dalek::Signer as _;
use hmac::{Mac as _, SimpleHmac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::claims::AccessClaims;
use crate::decision::Rejection;

/// Longest token accepted; anything larger is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Clock skew tolerated for `iat`/`nbf` in the future, at every hop.
pub const DEFAULT_LEEWAY_SECS: i64 = 30;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Shortest accepted HS256 secret, in bytes (RFC 7518 §3.2 asks for at least the hash size).
pub const MIN_HMAC_SECRET_LEN: usize = 32;

type HmacSha256 = SimpleHmac<Sha256>;

/// A signature algorithm Tollgate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EdDSA,
    HS256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
        }
    }
}

/// An HMAC secret. `Debug` never prints it.
#[derive(Clone)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    /// Refuses secrets shorter than [`MIN_HMAC_SECRET_LEN`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_HMAC_SECRET_LEN {
            return Err(KeyError::SecretTooShort);
        }
        Ok(Self(bytes))
    }

    /// A stable key id derived from the secret, so the origin and the edge agree on it without
    /// configuring one. 64 bits of SHA-256 reveal nothing usable about a 256-bit secret.
    pub fn kid(&self) -> String {
        format!("hs256-{}", &crate::digest::sha256_hex(&self.0)[..16])
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        <HmacSha256 as hmac::Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }
}

impl std::fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecret(<redacted>)")
    }
}

/// Why key material was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("HMAC secret must be at least {MIN_HMAC_SECRET_LEN} bytes")]
    SecretTooShort,
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    #[error("invalid Ed25519 key")]
    Ed25519,
}

/// An Ed25519 public key as its 32 bytes, for builds without `ed25519-dalek` (the edge Worker):
/// the point is checked by whoever verifies with it (WebCrypto's import), not here.
#[cfg(not(feature = "ed25519-dalek"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey([u8; 32]);

#[cfg(not(feature = "ed25519-dalek"))]
impl Ed25519PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        Ok(Self(*bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The Ed25519 public key type of this build: `ed25519-dalek`'s (validated point) with the
/// feature, the raw bytes without it. Both have `from_bytes` and `as_bytes`.
#[cfg(feature = "ed25519-dalek")]
pub type Ed25519PublicKey = ed25519_dalek::VerifyingKey;

/// A key that verifies tokens, with its algorithm fixed.
#[derive(Debug, Clone)]
pub enum VerifyingKey {
    EdDSA(Ed25519PublicKey),
    HS256(HmacSecret),
}

impl VerifyingKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::EdDSA(_) => Algorithm::EdDSA,
            Self::HS256(_) => Algorithm::HS256,
        }
    }

    /// Checks an HMAC signature (constant time). `None` for an Ed25519 key: that check is the
    /// caller's primitive ([`Self::verify`] with `ed25519-dalek`, WebCrypto at the edge).
    pub fn verify_hmac(&self, signing_input: &[u8], signature: &[u8]) -> Option<bool> {
        match self {
            Self::EdDSA(_) => None,
            Self::HS256(secret) => {
                let mut mac = secret.mac();
                mac.update(signing_input);
                // `verify_slice` compares in constant time.
                Some(mac.verify_slice(signature).is_ok())
            }
        }
    }

    /// Checks a signature with the compiled-in primitives (Ed25519 `verify_strict`, HMAC).
    #[cfg(feature = "ed25519-dalek")]
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::EdDSA(key) => match ed25519_dalek::Signature::from_slice(signature) {
                Ok(sig) => key.verify_strict(signing_input, &sig).is_ok(),
                Err(_) => false,
            },
            Self::HS256(_) => self.verify_hmac(signing_input, signature) == Some(true),
        }
    }
}

/// The set of keys tokens may be verified with, by `kid`. Holding old keys here is what lets
/// signing keys rotate without logging anyone out.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<(String, VerifyingKey)>,
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; a later key with the same `kid` replaces the earlier one.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        let kid = kid.into();
        self.keys.retain(|(k, _)| *k != kid);
        self.keys.push((kid, key));
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The public JWKS (RFC 7517/8037) of the asymmetric keys; HMAC secrets are never published.
    pub fn to_jwks(&self) -> Jwks {
        let keys = self
            .keys
            .iter()
            .filter_map(|(kid, key)| match key {
                VerifyingKey::EdDSA(k) => Some(Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: URL_SAFE_NO_PAD.encode(k.as_bytes()),
                    kid: kid.clone(),
                    alg: Some("EdDSA".into()),
                    use_: Some("sig".into()),
                }),
                VerifyingKey::HS256(_) => None,
            })
            .collect();
        Jwks { keys }
    }

    /// Adds every Ed25519 key of a JWKS. Keys of other types, or with an `alg` other than
    /// `EdDSA`, or a `use` other than `sig`, are an error rather than silently skipped.
    pub fn extend_from_jwks(&mut self, jwks: &Jwks) -> Result<(), KeyError> {
        for jwk in &jwks.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                return Err(KeyError::Jwks(format!(
                    "key {} is not OKP/Ed25519",
                    jwk.kid
                )));
            }
            if jwk.alg.as_deref().is_some_and(|a| a != "EdDSA") {
                return Err(KeyError::Jwks(format!(
                    "key {} has alg other than EdDSA",
                    jwk.kid
                )));
            }
            if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
                return Err(KeyError::Jwks(format!(
                    "key {} is not a signing key",
                    jwk.kid
                )));
            }
            let bytes = URL_SAFE_NO_PAD
                .decode(&jwk.x)
                .map_err(|_| KeyError::Jwks(format!("key {}: x is not base64url", jwk.kid)))?;
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| KeyError::Jwks(format!("key {}: x is not 32 bytes", jwk.kid)))?;
            let key = Ed25519PublicKey::from_bytes(&bytes).map_err(|_| KeyError::Ed25519)?;
            self.insert(jwk.kid.clone(), VerifyingKey::EdDSA(key));
        }
        Ok(())
    }
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public Ed25519 JWK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub crv: String,
    #[serde(default)]
    pub x: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// A key that signs tokens. `Debug` never prints private material.
// On 32-bit targets (the edge's wasm32) the Ed25519 variant outweighs the HMAC one past clippy's
// threshold; there are a handful of long-lived keys, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum SigningKey {
    /// Only with `ed25519-dalek`: the edge signs its assertions through WebCrypto, with
    /// [`signing_input`] and [`append_signature`].
    #[cfg(feature = "ed25519-dalek")]
    EdDSA {
        kid: String,
        key: ed25519_dalek::SigningKey,
    },
    HS256 {
        kid: String,
        secret: HmacSecret,
    },
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm().as_str())
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SignHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

impl SigningKey {
    pub fn kid(&self) -> &str {
        match self {
            #[cfg(feature = "ed25519-dalek")]
            Self::EdDSA { kid, .. } => kid,
            Self::HS256 { kid, .. } => kid,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            #[cfg(feature = "ed25519-dalek")]
            Self::EdDSA { .. } => Algorithm::EdDSA,
            Self::HS256 { .. } => Algorithm::HS256,
        }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            #[cfg(feature = "ed25519-dalek")]
            Self::EdDSA { key, .. } => VerifyingKey::EdDSA(key.verifying_key()),
            Self::HS256 { secret, .. } => VerifyingKey::HS256(secret.clone()),
        }
    }

    /// Signs access-token `claims` into a compact JWS with `typ: at+jwt`.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        self.sign_jws(ACCESS_TOKEN_TYP, claims)
    }

    /// Signs any claim set into a compact JWS with the given `typ` header.
    pub fn sign_jws(&self, typ: &str, claims: &impl Serialize) -> String {
        let input = signing_input(self.algorithm(), self.kid(), typ, claims);
        let signature = match self {
            #[cfg(feature = "ed25519-dalek")]
            Self::EdDSA { key, .. } => key.sign(input.as_bytes()).to_bytes().to_vec(),
            Self::HS256 { secret, .. } => {
                let mut mac = secret.mac();
                mac.update(input.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
        };
        append_signature(input, &signature)
    }
}

/// `base64url(header).base64url(claims)`: the bytes a JWS signature covers, with the header
/// `{"alg","typ","kid"}` every Tollgate signer writes. A caller with its own primitive signs this
/// and finishes the token with [`append_signature`]; [`SigningKey::sign_jws`] does both.
pub fn signing_input(alg: Algorithm, kid: &str, typ: &str, claims: &impl Serialize) -> String {
    let header = SignHeader {
        alg: alg.as_str(),
        typ,
        kid,
    };
    // Serialising these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    out
}

/// The compact JWS: `input` (from [`signing_input`]), a dot, the signature in base64url.
pub fn append_signature(mut input: String, signature: &[u8]) -> String {
    input.push('.');
    input.push_str(&URL_SAFE_NO_PAD.encode(signature));
    input
}

/// What a token's claims must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub issuer: String,
    pub audience: String,
    /// Seconds `iat`/`nbf` may lie in the future (clock skew between issuer and verifier).
    pub leeway: i64,
    /// The access-token lifetime the issuer is configured with: `exp − iat` may exceed it by
    /// at most `leeway`.
    pub max_lifetime: i64,
}

impl Validation {
    /// Issuer, audience and lifetime, with [`DEFAULT_LEEWAY_SECS`].
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, max_lifetime: i64) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY_SECS,
            max_lifetime,
        }
    }
}

/// The token from an `Authorization` header value, `Bearer <token>` with the scheme
/// case-insensitive (RFC 6750 §2.1). No header or another scheme is [`Rejection::Missing`]; an
/// empty token is left for [`verify`] to call malformed. The origin and the edge both parse
/// with this one function.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, Rejection> {
    let value = authorization.ok_or(Rejection::Missing)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(Rejection::Missing),
    }
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// Whether a `crit` member is present at all. Any critical extension is one we do not
    /// understand (RFC 7515 §4.1.11); `Option<Value>` would read `"crit": null` as absent.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Whether a header's `typ` names `expected` (RFC 7515 §4.1.9: case-insensitive, and the
/// `application/` prefix may be omitted).
fn typ_matches(typ: Option<&str>, expected: &str) -> bool {
    let Some(typ) = typ else { return false };
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case(expected)
}

/// The `kid` a compact JWS names, read without verifying anything: only to decide whether a key
/// set must be refetched before [`verify_jws`] runs. Never trust it for anything else.
pub fn header_kid(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let h64 = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(h64).ok()?;
    crate::json::from_slice::<Header>(&bytes).ok()?.kid
}

/// A compact JWS that passed rules 1–3, waiting for its signature check (rule 4). Built by
/// [`parse_jws`]; [`Self::finish`] takes the verdict and applies what comes after it.
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    /// The key the header's `kid` names, whose algorithm is the header's `alg`.
    pub key: &'a VerifyingKey,
    /// `h64.p64`, the bytes the signature covers.
    pub signing_input: &'a [u8],
    /// The decoded signature (any length: a wrong length is simply a failed check).
    pub signature: Vec<u8>,
    p64: &'a str,
    typ_ok: bool,
}

impl UnverifiedJws<'_> {
    /// Rule 4 and after, given whether the signature verified: a bad signature is
    /// [`Rejection::Signature`] whatever else is wrong; then the `typ`; then the payload bytes.
    pub fn finish(self, signature_valid: bool) -> Result<Vec<u8>, Rejection> {
        if !signature_valid {
            return Err(Rejection::Signature);
        }
        // After the signature, so that a forged header is always "signature", whatever its typ.
        if !self.typ_ok {
            return Err(Rejection::Malformed);
        }
        URL_SAFE_NO_PAD
            .decode(self.p64)
            .map_err(|_| Rejection::Malformed)
    }
}

/// Rules 1–3 for any compact JWS of ours: size and shape, no `crit`, a known `kid` whose
/// algorithm is the header's, a decodable signature. The signature itself is not checked: see
/// [`UnverifiedJws`].
pub fn parse_jws<'a>(
    token: &'a str,
    keys: &'a KeySet,
    typ: &str,
) -> Result<UnverifiedJws<'a>, Rejection> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(h64)
        .map_err(|_| Rejection::Malformed)?;
    let header: Header =
        crate::json::from_slice(&header_bytes).map_err(|_| Rejection::Malformed)?;
    if header.crit {
        return Err(Rejection::Malformed);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.get(kid))
        .ok_or(Rejection::Signature)?;
    if header.alg != key.algorithm().as_str() {
        return Err(Rejection::Signature);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|_| Rejection::Malformed)?;
    let signing_input_len = h64.len() + 1 + p64.len();
    Ok(UnverifiedJws {
        key,
        signing_input: &token.as_bytes()[..signing_input_len],
        signature,
        p64,
        typ_ok: typ_matches(header.typ.as_deref(), typ),
    })
}

/// Rules 1–4 for any compact JWS of ours: size and shape, `typ`, no `crit`, a known `kid` whose
/// algorithm is the header's, a valid signature. Returns the decoded payload, not yet parsed.
#[cfg(feature = "ed25519-dalek")]
pub fn verify_jws(token: &str, keys: &KeySet, typ: &str) -> Result<Vec<u8>, Rejection> {
    let jws = parse_jws(token, keys, typ)?;
    let valid = jws.key.verify(jws.signing_input, &jws.signature);
    jws.finish(valid)
}

/// Verifies access token `token` and returns its claims, or the first rule it breaks.
#[cfg(feature = "ed25519-dalek")]
pub fn verify(
    token: &str,
    keys: &KeySet,
    validation: &Validation,
    now: i64,
) -> Result<AccessClaims, Rejection> {
    let payload = verify_jws(token, keys, ACCESS_TOKEN_TYP)?;
    access_claims(&payload, validation, now)
}

/// Rule 5: the verified payload of an access token ([`ACCESS_TOKEN_TYP`]) as its claims, or the
/// rule they break. For callers that check the signature themselves ([`parse_jws`]).
pub fn access_claims(
    payload: &[u8],
    validation: &Validation,
    now: i64,
) -> Result<AccessClaims, Rejection> {
    let claims: AccessClaims =
        crate::json::from_slice(payload).map_err(|_| Rejection::Malformed)?;
    if now >= claims.exp {
        return Err(Rejection::Expired);
    }
    let latest = now.saturating_add(validation.leeway);
    if claims.iat > latest || claims.nbf.is_some_and(|nbf| nbf > latest) {
        return Err(Rejection::Claims);
    }
    if claims.exp.saturating_sub(claims.iat)
        > validation.max_lifetime.saturating_add(validation.leeway)
    {
        return Err(Rejection::Claims);
    }
    if claims.iss != validation.issuer || claims.aud != validation.audience {
        return Err(Rejection::Claims);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            sub: "u".into(),
            jti: "j".into(),
            ver: 1,
            sid: "s".into(),
            iat: now,
            exp: now + 900,
            nbf: None,
            iss: "tollgate".into(),
            aud: "tollgate-api".into(),
        }
    }

    fn validation() -> Validation {
        Validation {
            leeway: 5,
            ..Validation::new("tollgate", "tollgate-api", 900)
        }
    }

    fn ed_key(kid: &str) -> SigningKey {
        SigningKey::EdDSA {
            kid: kid.into(),
            key: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    fn set_of(keys: &[&SigningKey]) -> KeySet {
        let mut set = KeySet::new();
        for k in keys {
            set.insert(k.kid(), k.verifying_key());
        }
        set
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(Rejection::Missing));
        assert_eq!(bearer_token(Some("Basic abc")), Err(Rejection::Missing));
        assert_eq!(bearer_token(Some("Bearer")), Err(Rejection::Missing));
        assert_eq!(bearer_token(Some("Bearer ")), Ok(""));
    }

    #[test]
    fn eddsa_round_trip_and_rotation() {
        let old = ed_key("k1");
        let new = ed_key("k2");
        let set = set_of(&[&old, &new]);
        let now = 1_700_000_000;
        for key in [&old, &new] {
            let t = key.sign(&claims(now));
            assert_eq!(verify(&t, &set, &validation(), now), Ok(claims(now)));
        }
    }

    #[test]
    fn hs256_round_trip_with_derived_kid() {
        let secret = HmacSecret::new(vec![7u8; 32]).expect("long enough");
        let key = SigningKey::HS256 {
            kid: secret.kid(),
            secret,
        };
        let set = set_of(&[&key]);
        let t = key.sign(&claims(10));
        assert!(verify(&t, &set, &validation(), 10).is_ok());
        assert!(HmacSecret::new(vec![1u8; 31]).is_err());
    }

    #[test]
    fn expiry_is_strict_and_future_iat_is_refused() {
        let key = ed_key("k");
        let set = set_of(&[&key]);
        let t = key.sign(&claims(100));
        assert_eq!(
            verify(&t, &set, &validation(), 1000),
            Err(Rejection::Expired)
        );
        assert_eq!(verify(&t, &set, &validation(), 94), Err(Rejection::Claims));
        assert!(verify(&t, &set, &validation(), 95).is_ok());
    }

    #[test]
    fn tampered_payload_fails_the_signature() {
        let key = ed_key("k");
        let set = set_of(&[&key]);
        let t = key.sign(&claims(100));
        let mut evil = claims(100);
        evil.sub = "admin".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).expect("json"));
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            verify(&forged, &set, &validation(), 100),
            Err(Rejection::Signature)
        );
    }
}
