//! Hostile bearer tokens: one table of forged, malformed and out-of-policy tokens, each with the
//! error code every Tollgate verifier must answer with.
//!
//! Built from the deployment's real key material ([`Signer`]), a valid claims template and `now`,
//! so the same table drives [`jwt::verify`] in this crate's tests, `GET /api/users/me` at the
//! origin and the Worker in the end-to-end tests: if one hop ever decides differently from
//! another, one of those tests fails. Every case breaks exactly one rule; [`controls`] are the
//! tokens that must still be accepted, so a case cannot pass for the wrong reason (say, a broken
//! key) without a control failing too.
//!
//! Behind the `hostile-cases` feature: normal builds, the Worker's included, carry none of it.
//!
//! # Layout
//! - [`Signer`]: the legitimate key (Ed25519 or an HS256 secret) and an impostor with its `kid`.
//! - [`cases`]: the table; [`Case::fits_header`] says whether a token can travel in an HTTP
//!   header at all (a NUL or CR/LF cannot: HTTP stacks refuse them before any verifier runs).
//! - [`controls`]: tokens with odd but harmless headers that must verify.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use hmac::{Mac as _, SimpleHmac};
use sha2::Sha256;

use crate::claims::AccessClaims;
use crate::error::ErrorCode;
use crate::jwt::{Algorithm, HmacSecret, KeyError, KeySet, SigningKey, Validation};

/// The attacker's own key material: a fixed Ed25519 seed and HMAC secret, never ours.
const ATTACKER_SEED: [u8; 32] = [0xA7; 32];

/// A legitimate signing key with the raw material needed to forge near-misses (the crate's
/// [`SigningKey`] only signs well-formed claims). `Debug` prints no key material.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    raw: Raw,
}

#[derive(Clone)]
enum Raw {
    EdDSA(ed25519_dalek::SigningKey),
    HS256(Vec<u8>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.algorithm().as_str())
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The deployment's Ed25519 signer. `None` for an HS256 key, whose secret the crate keeps
    /// private: build that one with [`Signer::hs256`] from the configured secret.
    pub fn from_signing_key(key: &SigningKey) -> Option<Self> {
        match key {
            SigningKey::EdDSA { key: ed, .. } => Some(Self {
                key: key.clone(),
                raw: Raw::EdDSA(ed.clone()),
            }),
            SigningKey::HS256 { .. } => None,
        }
    }

    /// An Ed25519 signer from a 32-byte seed (tests and fuzzing).
    pub fn ed25519(kid: impl Into<String>, seed: [u8; 32]) -> Self {
        let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
        Self {
            key: SigningKey::EdDSA {
                kid: kid.into(),
                key: ed.clone(),
            },
            raw: Raw::EdDSA(ed),
        }
    }

    /// An HS256 signer with the `kid` the origin and the edge derive from the secret.
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = secret.into();
        let secret = HmacSecret::new(bytes.clone())?;
        Ok(Self {
            key: SigningKey::HS256 {
                kid: secret.kid(),
                secret,
            },
            raw: Raw::HS256(bytes),
        })
    }

    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The crate's own signing key, as the origin uses it.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// A key set holding just this key, as a verifier configured for it would.
    pub fn key_set(&self) -> KeySet {
        let mut set = KeySet::new();
        set.insert(self.kid(), self.key.verifying_key());
        set
    }

    /// Signs well-formed claims exactly as the origin does.
    pub fn sign_claims(&self, claims: &AccessClaims) -> String {
        self.key.sign(claims)
    }

    /// `h64.p64.<signature over "h64.p64">`, whatever the segments hold.
    pub fn sign_segments(&self, h64: &str, p64: &str) -> String {
        let input = format!("{h64}.{p64}");
        let signature = URL_SAFE_NO_PAD.encode(self.signature(input.as_bytes()));
        format!("{input}.{signature}")
    }

    /// Encodes raw header and payload bytes and signs them.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        self.sign_segments(
            &URL_SAFE_NO_PAD.encode(header),
            &URL_SAFE_NO_PAD.encode(payload),
        )
    }

    fn signature(&self, input: &[u8]) -> Vec<u8> {
        match &self.raw {
            Raw::EdDSA(key) => key.sign(input).to_bytes().to_vec(),
            Raw::HS256(secret) => hmac_sha256(secret, input),
        }
    }

    /// Same `kid` and algorithm, the attacker's key: what a token "signed" via a `jku`, `x5u`
    /// or embedded `jwk` the attacker controls amounts to.
    fn impostor(&self) -> Self {
        let kid = self.kid().to_owned();
        match self.raw {
            Raw::EdDSA(_) => Self::ed25519(kid, ATTACKER_SEED),
            Raw::HS256(_) => {
                let secret = ATTACKER_SEED.to_vec();
                Self {
                    key: SigningKey::HS256 {
                        kid,
                        // 32 bytes: long enough, so this cannot fail.
                        secret: HmacSecret::new(secret.clone()).unwrap_or_else(|_| unreachable!()),
                    },
                    raw: Raw::HS256(secret),
                }
            }
        }
    }

    /// A header `{"alg":…,"typ":"at+jwt","kid":…}` plus `extra` members (raw JSON, may be empty).
    fn header(&self, extra: &str) -> String {
        let sep = if extra.is_empty() { "" } else { "," };
        format!(
            r#"{{"alg":"{}","typ":"at+jwt","kid":{}{sep}{extra}}}"#,
            self.algorithm().as_str(),
            json_str(self.kid())
        )
    }
}

fn hmac_sha256(secret: &[u8], input: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <SimpleHmac<Sha256> as hmac::Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!());
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn json_claims(c: &AccessClaims) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One hostile token and the code every verifier must refuse it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Stable, unique, `snake_case`: test output names the case that failed.
    pub name: &'static str,
    /// Why the token must be refused, in one line.
    pub reason: &'static str,
    pub token: String,
    pub expected: ErrorCode,
}

impl Case {
    /// Whether the token can be sent as `Authorization: Bearer <token>` at all.
    pub fn fits_header(&self) -> bool {
        fits_authorization_header(&self.token)
    }
}

/// Whether `Bearer <token>` is a header value HTTP stacks pass through unchanged: no control
/// characters (a NUL, CR or LF is refused by the HTTP parser before any verifier sees it), and
/// no leading or trailing whitespace (trimmed away in transit). Non-ASCII bytes are allowed:
/// HTTP calls them obs-text, and verifiers must refuse them themselves.
pub fn fits_authorization_header(token: &str) -> bool {
    !token.is_empty()
        && !token.starts_with([' ', '\t'])
        && !token.ends_with([' ', '\t'])
        && token
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || (b >= 0x21 && b != 0x7f))
}

/// A token with odd but harmless features that every verifier must still accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub name: &'static str,
    pub token: String,
}

/// Tokens signed by the legitimate key that must verify to `template`: the plain token, and the
/// same with `jku`, `x5u`, `x5c` and `jwk` headers pointing at an attacker (ignored: keys come only
/// from configuration, so these change nothing), an unknown header member, and `iat`/`nbf`
/// inside the leeway. `template` must itself be valid at `now`.
pub fn controls(
    signer: &Signer,
    template: &AccessClaims,
    validation: &Validation,
    now: i64,
) -> Vec<Control> {
    let payload = json_claims(template);
    let signed = |extra: &str| signer.sign_raw(signer.header(extra).as_bytes(), payload.as_bytes());
    let mut skewed = template.clone();
    let inside = now + validation.leeway / 2;
    skewed.iat = inside;
    skewed.nbf = Some(inside);
    vec![
        Control {
            name: "plain",
            token: signer.sign_claims(template),
        },
        Control {
            name: "jku_x5u_x5c_jwk_headers_signed_by_us",
            token: signed(&format!(
                r#""jku":"https://evil.example/jwks.json","x5u":"https://evil.example/cert.pem","x5c":["MIIBevil"],"jwk":{}"#,
                attacker_jwk()
            )),
        },
        Control {
            name: "unknown_header_member",
            token: signed(r#""zip":"none","cty":"JWT","x-tenant":"other""#),
        },
        Control {
            name: "typ_with_media_type_prefix_and_other_case",
            token: signer.sign_raw(
                format!(
                    r#"{{"alg":"{}","typ":"application/AT+JWT","kid":{}}}"#,
                    signer.algorithm().as_str(),
                    json_str(signer.kid())
                )
                .as_bytes(),
                payload.as_bytes(),
            ),
        },
        Control {
            name: "lifetime_at_the_policy_limit",
            token: {
                let mut c = template.clone();
                c.exp = c.iat + validation.max_lifetime + validation.leeway;
                signer.sign_claims(&c)
            },
        },
        Control {
            name: "iat_and_nbf_inside_the_leeway",
            token: signer.sign_claims(&skewed),
        },
    ]
}

fn attacker_jwk() -> String {
    let public = ed25519_dalek::SigningKey::from_bytes(&ATTACKER_SEED).verifying_key();
    format!(
        r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
        b64(public.as_bytes())
    )
}

/// The table. `template` must be a valid claim set at `now` (its `exp` at least a few minutes
/// ahead, so the cases stay valid-but-for-their-one-flaw while a test sends them) and
/// `validation` the verifier's. See each case's `reason`.
#[rustfmt::skip] // a table: one case per entry reads better than rustfmt's layout
pub fn cases(signer: &Signer, template: &AccessClaims, validation: &Validation, now: i64) -> Vec<Case> {
    use ErrorCode::{TokenClaims as Claims, TokenExpired as Expired, TokenMalformed as Malformed, TokenSignature as Signature};

    let mut out = Vec::new();
    let mut add = |name: &'static str, expected: ErrorCode, reason: &'static str, token: String| {
        out.push(Case {
            name,
            reason,
            token,
            expected,
        });
    };
    let alg = signer.algorithm().as_str();
    let kid = json_str(signer.kid());
    let payload = json_claims(template);
    let p64 = b64(&payload);
    let good_header = signer.header("");
    let h64 = b64(&good_header);
    let valid = signer.sign_claims(template);
    let valid_parts: Vec<&str> = valid.split('.').collect();
    let valid_sig = valid_parts.get(2).copied().unwrap_or_default();
    // Our key over arbitrary header / payload text.
    let ours = |header: &str, payload: &str| signer.sign_raw(header.as_bytes(), payload.as_bytes());
    let with_claims = |edit: &dyn Fn(&mut AccessClaims)| {
        let mut c = template.clone();
        edit(&mut c);
        signer.sign_claims(&c)
    };
    // Our key over the template payload with a header edited as raw JSON.
    let header_only = |header: &str| ours(header, &payload);
    let impostor = signer.impostor();

    // --- alg: none and algorithm confusion -------------------------------------------------
    add("alg_none_unsigned", Signature,
        "RFC 7519 unsecured JWT: no key has algorithm none",
        format!("{}.{p64}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#)));
    add("alg_none_with_our_kid", Signature,
        "alg none names our key, but the algorithm is pinned to the key",
        format!("{}.{p64}.", b64(format!(r#"{{"alg":"none","typ":"at+jwt","kid":{kid}}}"#))));
    add("alg_none_with_a_real_signature", Signature,
        "a valid signature does not make alg none acceptable",
        header_only(&format!(r#"{{"alg":"none","typ":"at+jwt","kid":{kid}}}"#)));
    add("alg_none_uppercase", Signature,
        "NONE is not our key's algorithm either",
        format!("{}.{p64}.", b64(format!(r#"{{"alg":"NONE","kid":{kid}}}"#))));
    match &signer.raw {
        Raw::EdDSA(key) => add("alg_confusion_hs256_keyed_with_our_public_key", Signature,
            "HS256 with the Ed25519 public key as HMAC secret: the kid's key is EdDSA-only",
            {
                let h = b64(format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":{kid}}}"#));
                let input = format!("{h}.{p64}");
                let mac = hmac_sha256(key.verifying_key().as_bytes(), input.as_bytes());
                format!("{input}.{}", b64(mac))
            }),
        Raw::HS256(_) => add("alg_confusion_eddsa_on_our_hmac_kid", Signature,
            "EdDSA signed by the attacker under our HS256 kid: the kid's key is HS256-only",
            {
                let attacker = Signer::ed25519(signer.kid(), ATTACKER_SEED);
                attacker.sign_raw(format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":{kid}}}"#).as_bytes(), payload.as_bytes())
            }),
    }
    add("alg_lowercase", Signature,
        "algorithm names are case-sensitive; ours is exactly one string",
        header_only(&format!(r#"{{"alg":{},"kid":{kid}}}"#, json_str(&alg.to_lowercase()))));
    add("alg_rs256", Signature,
        "an algorithm we never accept, over a signature by our key",
        header_only(&format!(r#"{{"alg":"RS256","kid":{kid}}}"#)));
    add("alg_missing", Malformed,
        "a header without alg is not a JWS header",
        header_only(&format!(r#"{{"typ":"at+jwt","kid":{kid}}}"#)));
    add("alg_not_a_string", Malformed,
        "alg must be a string",
        header_only(&format!(r#"{{"alg":[{}],"kid":{kid}}}"#, json_str(alg))));

    // --- kid ---------------------------------------------------------------------------------
    add("kid_unknown", Signature,
        "a kid not in the key set, though the signature is by our key",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"a-key-we-never-had"}}"#)));
    add("kid_missing", Signature,
        "without a kid there is no key to verify with (no guessing, no trying every key)",
        header_only(&format!(r#"{{"alg":"{alg}","typ":"at+jwt"}}"#)));
    add("kid_null", Signature,
        "a null kid is a missing kid",
        header_only(&format!(r#"{{"alg":"{alg}","kid":null}}"#)));
    add("kid_empty", Signature,
        "the empty kid names no key",
        header_only(&format!(r#"{{"alg":"{alg}","kid":""}}"#)));
    add("kid_path_traversal", Signature,
        "kid is a map key, never a path: ../ reaches no file",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"../../../../../../etc/passwd"}}"#)));
    add("kid_path_to_the_key_file", Signature,
        "not even the path of our own key file",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"../tollgate-keys.json"}}"#)));
    add("kid_dev_null", Signature,
        "the classic empty-key file trick (/dev/null as HMAC secret)",
        {
            let dev_null = b64(r#"{"alg":"HS256","kid":"/dev/null"}"#);
            let input = format!("{dev_null}.{p64}");
            format!("{input}.{}", b64(hmac_sha256(b"", input.as_bytes())))
        });
    add("kid_sql_injection", Signature,
        "kid is never put in a query: ' OR '1'='1 matches nothing",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"' OR '1'='1' --"}}"#)));
    add("kid_sql_union", Signature,
        "a UNION that would return a known secret, were kid ever SQL",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"x' UNION SELECT 'AAAA' --"}}"#)));
    add("kid_with_crlf", Signature,
        "CR/LF inside kid (JSON-escaped) injects nothing: kid is never echoed in a header or log",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"k\r\nX-Injected: 1"}}"#)));
    add("kid_ours_with_trailing_nul", Signature,
        "kid must match exactly, not up to a NUL",
        header_only(&format!(r#"{{"alg":"{alg}","kid":{}}}"#, json_str(&format!("{}\0", signer.kid())))));
    add("kid_ours_with_trailing_space", Signature,
        "kid must match exactly, not after trimming",
        header_only(&format!(r#"{{"alg":"{alg}","kid":{}}}"#, json_str(&format!("{} ", signer.kid())))));
    add("kid_overlong", Signature,
        "a 2000-character kid is just an unknown kid",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, "k".repeat(2000))));
    add("kid_not_a_string", Malformed,
        "kid must be a string",
        header_only(&format!(r#"{{"alg":"{alg}","kid":7}}"#)));

    // --- headers that point elsewhere for a key (ignored) --------------------------------------
    add("jku_to_attacker_jwks", Signature,
        "jku is ignored: signed by the key at the attacker's URL, not by ours",
        impostor.sign_raw(signer.header(r#""jku":"https://evil.example/jwks.json""#).as_bytes(), payload.as_bytes()));
    add("x5u_to_attacker_certificate", Signature,
        "x5u is ignored: signed by the attacker's certificate key, not by ours",
        impostor.sign_raw(signer.header(r#""x5u":"https://evil.example/cert.pem""#).as_bytes(), payload.as_bytes()));
    add("jwk_embedded_attacker_key", Signature,
        "an embedded jwk is ignored: a token cannot bring its own key",
        impostor.sign_raw(signer.header(&format!(r#""jwk":{}"#, attacker_jwk())).as_bytes(), payload.as_bytes()));
    add("x5c_embedded_attacker_chain", Signature,
        "an embedded x5c chain is ignored too",
        impostor.sign_raw(signer.header(r#""x5c":["MIIBevilcert"]"#).as_bytes(), payload.as_bytes()));
    add("signed_by_attacker_under_our_kid", Signature,
        "our kid and algorithm, the attacker's key",
        impostor.sign_claims(template));
    add("crit_extension", Malformed,
        "crit names an extension we do not understand (RFC 7515 4.1.11)",
        header_only(&signer.header(r#""crit":["exp"],"exp":1"#)));
    add("crit_empty", Malformed,
        "any crit member is refused, even an empty list",
        header_only(&signer.header(r#""crit":[]"#)));
    add("crit_null", Malformed,
        "a crit member is refused even when null (an Option would read it as absent)",
        header_only(&signer.header(r#""crit":null"#)));

    // --- typ: access tokens only (RFC 9068) ------------------------------------------------------
    add("typ_missing", Malformed,
        "an access token must say typ at+jwt; a JWT without typ may be any other token",
        header_only(&format!(r#"{{"alg":"{alg}","kid":{kid}}}"#)));
    add("typ_plain_jwt", Malformed,
        "typ JWT is some other JWT signed by our key (an ID token, say), not an access token",
        header_only(&format!(r#"{{"alg":"{alg}","typ":"JWT","kid":{kid}}}"#)));
    add("typ_edge_assertion", Malformed,
        "an edge identity assertion is never an access token",
        header_only(&format!(r#"{{"alg":"{alg}","typ":"tollgate-assertion+jwt","kid":{kid}}}"#)));
    add("lifetime_beyond_policy", Claims,
        "exp - iat longer than the configured access lifetime (a year-long token from a leaked key)",
        with_claims(&|c| { c.iat = now; c.exp = now + validation.max_lifetime + validation.leeway + 60; }));

    // --- claims out of policy (validly signed) -------------------------------------------------
    add("wrong_issuer", Claims,
        "iss must equal ours exactly",
        with_claims(&|c| c.iss = format!("{}.evil", validation.issuer)));
    add("wrong_audience", Claims,
        "aud must equal ours exactly (a token for another API)",
        with_claims(&|c| c.aud = format!("{}-other", validation.audience)));
    add("empty_issuer", Claims,
        "an empty iss is not ours",
        with_claims(&|c| c.iss.clear()));
    add("audience_as_array", Malformed,
        "aud is one string in our claim set, not a list to search",
        ours(&good_header, &payload.replace(&format!(r#""aud":{}"#, json_str(&template.aud)), &format!(r#""aud":[{}]"#, json_str(&validation.audience)))));
    add("expired", Expired,
        "exp two minutes ago",
        with_claims(&|c| { c.iat = now - 1020; c.exp = now - 120; }));
    add("expired_at_epoch", Expired,
        "exp = 0",
        with_claims(&|c| { c.iat = 0; c.exp = 0; }));
    add("expired_at_i64_min", Expired,
        "exp at the bottom of the range",
        with_claims(&|c| { c.iat = i64::MIN; c.exp = i64::MIN; }));
    add("iat_in_the_future", Claims,
        "issued two minutes beyond the leeway",
        with_claims(&|c| { c.iat = now + validation.leeway + 120; c.exp = c.iat + 900; }));
    add("nbf_in_the_future", Claims,
        "not valid until two minutes beyond the leeway",
        with_claims(&|c| c.nbf = Some(now + validation.leeway + 120)));
    add("nbf_at_i64_max", Claims,
        "nbf at the top of the range (no overflow when the leeway is added)",
        with_claims(&|c| { c.nbf = Some(i64::MAX); c.exp = i64::MAX; }));
    add("iat_at_i64_max", Claims,
        "iat at the top of the range",
        with_claims(&|c| { c.iat = i64::MAX; c.exp = i64::MAX; }));

    // --- tampering ---------------------------------------------------------------------------
    let mut evil = template.clone();
    evil.sub = format!("{}-admin", template.sub);
    add("tampered_sub_old_signature", Signature,
        "sub changed after signing",
        format!("{h64}.{}.{valid_sig}", b64(json_claims(&evil))));
    let mut evil = template.clone();
    evil.ver += 1;
    add("tampered_ver_old_signature", Signature,
        "version bumped after signing, to outlive a logout-all",
        format!("{h64}.{}.{valid_sig}", b64(json_claims(&evil))));
    let mut evil = template.clone();
    evil.exp += 86_400;
    add("tampered_exp_old_signature", Signature,
        "lifetime extended after signing",
        format!("{h64}.{}.{valid_sig}", b64(json_claims(&evil))));
    add("tampered_header_old_signature", Signature,
        "header changed after signing (the signature covers it too)",
        format!("{}.{p64}.{valid_sig}", b64(signer.header(r#""typ2":"x""#))));
    add("signature_of_another_token", Signature,
        "a genuine signature, over different claims",
        {
            let other = with_claims(&|c| c.jti = format!("{}-other", c.jti));
            let sig = other.rsplit('.').next().unwrap_or_default().to_owned();
            format!("{h64}.{p64}.{sig}")
        });
    let sig_bytes = URL_SAFE_NO_PAD.decode(valid_sig).unwrap_or_default();
    add("signature_bit_flipped", Signature,
        "one bit of the signature flipped",
        {
            let mut s = sig_bytes.clone();
            if let Some(b) = s.get_mut(5) { *b ^= 0x01; }
            format!("{h64}.{p64}.{}", b64(s))
        });
    add("signature_truncated", Signature,
        "last byte of the signature dropped",
        format!("{h64}.{p64}.{}", b64(&sig_bytes[..sig_bytes.len().saturating_sub(1)])));
    add("signature_extended", Signature,
        "a byte appended to the signature",
        format!("{h64}.{p64}.{}", b64([sig_bytes.as_slice(), &[0]].concat())));
    add("signature_empty", Signature,
        "no signature at all",
        format!("{h64}.{p64}."));
    add("signature_all_zero", Signature,
        "an all-zero signature of the right length",
        format!("{h64}.{p64}.{}", b64(vec![0u8; sig_bytes.len()])));

    // --- encoding ------------------------------------------------------------------------------
    add("signature_standard_base64_padded", Malformed,
        "base64 with + / and = padding instead of unpadded base64url",
        format!("{h64}.{p64}.{}", STANDARD.encode(&sig_bytes)));
    add("header_padded", Malformed,
        "= padding on the header segment",
        format!("{h64}=.{p64}.{valid_sig}"));
    add("payload_padded_and_signed", Malformed,
        "= padding on the payload, even when the signature covers it",
        signer.sign_segments(&h64, &format!("{p64}==")));
    add("header_with_plus", Malformed,
        "+ is not in the base64url alphabet",
        format!("+{}.{p64}.{valid_sig}", &h64[1..]));
    add("header_non_ascii", Malformed,
        "non-ASCII bytes in a segment",
        format!("{}\u{e9}{}.{p64}.{valid_sig}", &h64[..4], &h64[4..]));
    add("header_non_utf8_json", Malformed,
        "the header decodes to bytes that are not UTF-8",
        format!("{}.{p64}.{valid_sig}", b64([&[0xff, 0xfe][..], good_header.as_bytes()].concat())));
    add("payload_non_utf8_signed", Malformed,
        "a signed payload that is not UTF-8",
        signer.sign_segments(&h64, &b64([0xff, 0xfe, 0xfd])));
    add("header_with_utf8_bom", Malformed,
        "a byte-order mark before the header JSON",
        header_only(&format!("\u{feff}{good_header}")));
    add("space_inside_token", Malformed,
        "whitespace inside a segment",
        format!("{} .{p64}.{valid_sig}", h64));
    add("nul_inside_token", Malformed,
        "a NUL byte (cannot travel in an HTTP header; verifiers refuse it anyway)",
        format!("{h64}\0.{p64}.{valid_sig}"));
    add("crlf_inside_token", Malformed,
        "CR/LF (header injection; cannot travel in an HTTP header)",
        format!("{h64}\r\nX-Injected: 1.{p64}.{valid_sig}"));
    add("oversized_signed_token", Malformed,
        "a genuinely signed token of 8 KiB+: refused on length before any parsing",
        with_claims(&|c| c.sub = "u".repeat(6 * 1024)));
    add("signed_token_just_over_the_limit", Malformed,
        "a genuinely signed token a byte or two over the 4096-byte limit",
        {
            let mut token = valid.clone();
            for extra in 0.. {
                let t = with_claims(&|c| c.sid = format!("{}{}", c.sid, "s".repeat(extra)));
                if t.len() > crate::jwt::MAX_TOKEN_LEN { token = t; break; }
            }
            token
        });
    add("oversized_junk", Malformed,
        "16 KiB of base64url characters and dots",
        format!("{}.{}.{}", "A".repeat(8 * 1024), "B".repeat(4 * 1024), "C".repeat(4 * 1024)));

    // --- structure -----------------------------------------------------------------------------
    add("one_segment", Malformed, "not a compact JWS", h64.clone());
    add("two_segments", Malformed, "header and payload only", format!("{h64}.{p64}"));
    add("four_segments", Malformed, "a fourth segment after a valid token", format!("{valid}.AAAA"));
    add("five_segments_jwe_shape", Malformed, "a JWE (encrypted) shape", format!("{h64}.AAAA.AAAA.{p64}.{valid_sig}"));
    add("trailing_dot", Malformed, "a valid token with a trailing dot", format!("{valid}."));
    add("only_dots", Malformed, "empty segments", "..".to_owned());
    add("empty_header", Malformed, "an empty header segment", format!(".{p64}.{valid_sig}"));
    add("empty_payload_signed", Malformed,
        "an empty payload, though the signature covers it",
        signer.sign_segments(&h64, ""));
    add("header_not_an_object", Malformed, "the header is a JSON string", ours(&json_str(alg), &payload));
    add("header_an_array", Malformed, "the header is a JSON array", ours(&format!("[{good_header}]"), &payload));
    add("header_not_json", Malformed, "the header is not JSON", ours("alg=EdDSA", &payload));

    // --- duplicate keys ------------------------------------------------------------------------
    let close = payload.len().saturating_sub(1);
    add("duplicate_sub_claim", Malformed,
        "two subs: one parser would take the first, another the last",
        ours(&good_header, &format!(r#"{},"sub":"{}-admin"}}"#, &payload[..close], template.sub)));
    add("duplicate_exp_claim", Malformed,
        "a second, later exp after the real one",
        ours(&good_header, &format!(r#"{},"exp":{}}}"#, &payload[..close], i64::MAX)));
    add("duplicate_alg_header", Malformed,
        "alg none then our alg: no parser may pick one",
        header_only(&format!(r#"{{"alg":"none","alg":"{alg}","kid":{kid}}}"#)));
    add("duplicate_kid_header", Malformed,
        "an unknown kid then ours",
        header_only(&format!(r#"{{"alg":"{alg}","kid":"unknown","kid":{kid}}}"#)));

    // --- claims of the wrong type (validly signed) ---------------------------------------------
    let retyped = |field: &str, value: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        let mut map = match v { serde_json::Value::Object(m) => m, _ => serde_json::Map::new() };
        let new: serde_json::Value = serde_json::from_str(value).unwrap_or(serde_json::Value::Null);
        map.insert(field.to_owned(), new);
        ours(&good_header, &serde_json::Value::Object(map).to_string())
    };
    add("ver_as_string", Malformed, "ver must be an integer", retyped("ver", r#""1""#));
    add("ver_negative", Malformed, "ver is unsigned", retyped("ver", "-1"));
    add("exp_as_string", Malformed, "exp must be an integer", retyped("exp", &format!(r#""{}""#, template.exp)));
    add("exp_as_float", Malformed, "exp must be an integer, not a float", retyped("exp", &format!("{}.5", template.exp)));
    add("exp_null", Malformed, "exp is required", retyped("exp", "null"));
    add("exp_beyond_i64", Malformed, "exp past the i64 range", retyped("exp", "9223372036854775808"));
    add("sub_as_number", Malformed, "sub must be a string", retyped("sub", "42"));
    add("sub_as_object", Malformed, "sub must be a string", retyped("sub", r#"{"$ne":null}"#));
    add("jti_missing", Malformed, "every claim but nbf is required", {
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        let mut map = match v { serde_json::Value::Object(m) => m, _ => serde_json::Map::new() };
        map.remove("jti");
        ours(&good_header, &serde_json::Value::Object(map).to_string())
    });
    add("claims_an_array", Malformed, "the claims are a JSON array", ours(&good_header, &format!("[{payload}]")));
    add("claims_not_json", Malformed, "the claims are not JSON", ours(&good_header, "sub=admin"));
    add("claims_deeply_nested", Malformed,
        "600 levels of nesting (past serde_json's recursion limit)",
        ours(&good_header, &format!("{}{}", "[".repeat(600), "]".repeat(600))));

    out
}
