//! Small pure helpers: input rules, email normalisation, refresh secrets, time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization as _;

use crate::error::ApiError;

/// Longest password accepted, in bytes: Argon2 cost grows with input, so an unbounded password
/// would be a CPU denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_EMAIL_BYTES: usize = 254;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DEVICE_NAME_CHARS: usize = 100;
pub const MAX_USER_AGENT_CHARS: usize = 256;
/// A refresh token is `rt_` + 43 base64url characters; anything much longer is junk.
pub const MAX_REFRESH_TOKEN_BYTES: usize = 128;

/// Current unix time in seconds.
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Current unix time in milliseconds: the one clock the refresh grace window is judged by.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What a presented refresh secret is to its device session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The current secret: rotate.
    Current,
    /// The immediate predecessor, rotated away less than the grace window ago: only the very
    /// answer of that rotation may be given (or, if it is gone, a refusal as reuse).
    InGrace,
    /// Any other secret once issued for the session: a replay.
    Reused,
}

/// The one rule for a presented secret (compared in constant time). The window is judged in
/// milliseconds from `rotated_at_ms`, taken from the same clock as `now_ms`; a rotation "in the
/// future" (another instance's clock ahead of ours) counts as inside the window.
pub fn classify_refresh(
    presented: &str,
    current: &str,
    previous: Option<&str>,
    rotated_at_ms: Option<i64>,
    now_ms: i64,
    grace_ms: i64,
) -> Presented {
    use subtle::ConstantTimeEq as _;
    if bool::from(presented.as_bytes().ct_eq(current.as_bytes())) {
        return Presented::Current;
    }
    let is_previous =
        previous.is_some_and(|p| bool::from(presented.as_bytes().ct_eq(p.as_bytes())));
    let in_window = rotated_at_ms.is_some_and(|at| now_ms.saturating_sub(at) < grace_ms);
    if is_previous && in_window {
        Presented::InGrace
    } else {
        Presented::Reused
    }
}

/// RFC 3339 form of a unix timestamp.
pub fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The form emails are compared in: trimmed, Unicode NFKC, lowercase. Two addresses that differ
/// only in case or normalisation are the same account.
pub fn normalize_email(email: &str) -> String {
    email.trim().nfkc().collect::<String>().to_lowercase()
}

/// Checks an email for the shape we accept (one `@`, non-empty parts, no spaces or controls).
pub fn validate_email(email: &str) -> Result<(), ApiError> {
    let e = email.trim();
    let ok = !e.is_empty()
        && e.len() <= MAX_EMAIL_BYTES
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_input("email is not a valid address"))
    }
}

pub fn validate_password(password: &str) -> Result<(), ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_input(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid_input(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Trims an optional free-text field, refusing control characters and overlong values.
pub fn optional_text(
    field: &str,
    value: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    let v = v.trim();
    if v.chars().count() > max_chars {
        return Err(ApiError::invalid_input(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid_input(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

/// Truncates header-derived text (the User-Agent) instead of refusing the request over it.
pub fn clip(value: &str, max_chars: usize) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// How every refresh secret starts; an access token (a JWT) never does.
pub const REFRESH_SECRET_PREFIX: &str = "rt_";

/// A fresh refresh secret (256 bits) and the SHA-256 hash that is all the database keeps.
pub fn new_refresh_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{REFRESH_SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_refresh_secret(&secret);
    (secret, hash)
}

/// Hex SHA-256 of a refresh secret. A plain hash suffices: the secret has 256 bits of entropy.
pub fn hash_refresh_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encrypts `plaintext` for the holder of a refresh secret: XChaCha20-Poly1305 under a key
/// derived from the secret, a fresh random 192-bit nonce per seal (so a retry that seals another
/// answer for the same secret never repeats a key/nonce pair), and the secret's hash as
/// associated data (so the entry opens only under the key it was stored for). Only a holder of
/// the secret can open it; the stored hash does not derive the key (different domain).
pub fn seal_for_secret(secret: &str, secret_hash: &str, plaintext: &[u8]) -> Option<String> {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&sealing_key(secret).into());
    let mut nonce = chacha20poly1305::XNonce::default();
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let payload = Payload {
        msg: plaintext,
        aad: secret_hash.as_bytes(),
    };
    let sealed = cipher.encrypt(&nonce, payload).ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Opens what [`seal_for_secret`] sealed; `None` unless both the secret and its hash are the
/// ones it was sealed for and nothing was altered.
pub fn open_for_secret(secret: &str, secret_hash: &str, sealed: &str) -> Option<Vec<u8>> {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < NONCE_BYTES {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&sealing_key(secret).into());
    let payload = Payload {
        msg: sealed,
        aad: secret_hash.as_bytes(),
    };
    cipher
        .decrypt(chacha20poly1305::XNonce::from_slice(nonce), payload)
        .ok()
}

/// XChaCha20's nonce, stored in front of the ciphertext.
const NONCE_BYTES: usize = 24;

fn sealing_key(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tollgate/refresh-grace/v2\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_differing_in_case_or_normalisation_collide() {
        assert_eq!(normalize_email(" Alice@Example.COM "), "alice@example.com");
        // "é" precomposed vs "e" + combining acute
        assert_eq!(
            normalize_email("jos\u{e9}@x.io"),
            normalize_email("jose\u{301}@x.io")
        );
    }

    #[test]
    fn email_shape_is_checked() {
        assert!(validate_email("a@b.co").is_ok());
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a b@c.de",
            "a@b.co\r\nBcc: x@y.z",
            "a@.co",
            "a@@b.co",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_are_bounded_both_ways() {
        assert!(validate_password("short").is_err());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(validate_password("correct horse").is_ok());
    }

    #[test]
    fn sealed_answers_open_only_with_their_secret() {
        let (a, ha) = new_refresh_secret();
        let (b, hb) = new_refresh_secret();
        let sealed = seal_for_secret(&a, &ha, b"answer").expect("seal");
        assert_eq!(
            open_for_secret(&a, &ha, &sealed).as_deref(),
            Some(&b"answer"[..])
        );
        assert_eq!(open_for_secret(&b, &hb, &sealed), None);
        assert_eq!(open_for_secret(&b, &ha, &sealed), None);
        assert!(!sealed.contains("answer"));
    }

    #[test]
    fn two_seals_of_the_same_answer_differ() {
        let (a, ha) = new_refresh_secret();
        let one = seal_for_secret(&a, &ha, b"answer").expect("seal");
        let two = seal_for_secret(&a, &ha, b"answer").expect("seal");
        assert_ne!(one, two, "a seal repeated its nonce");
        // The nonces themselves differ (the first 32 characters encode the first 24 bytes).
        assert_ne!(one[..32], two[..32]);
        assert_eq!(
            open_for_secret(&a, &ha, &two).as_deref(),
            Some(&b"answer"[..])
        );
    }

    #[test]
    fn a_seal_opens_only_with_its_hash_as_associated_data() {
        let (a, ha) = new_refresh_secret();
        let (_, hb) = new_refresh_secret();
        let sealed = seal_for_secret(&a, &ha, b"answer").expect("seal");
        assert_eq!(open_for_secret(&a, &hb, &sealed), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).expect("b64");
        let last = bytes.len() - 1;
        for i in [0, NONCE_BYTES, last] {
            bytes[i] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(open_for_secret(&a, &ha, &tampered), None, "byte {i}");
            bytes[i] ^= 1;
        }
        assert_eq!(open_for_secret(&a, &ha, "c2hvcnQ"), None);
    }

    #[test]
    fn the_grace_window_is_judged_in_milliseconds() {
        let at = Some(10_900);
        let class = |p: &str, now: i64| classify_refresh(p, "cur", Some("prev"), at, now, 1000);
        assert_eq!(class("cur", 99_999), Presented::Current);
        assert_eq!(class("prev", 10_900), Presented::InGrace);
        assert_eq!(class("prev", 11_899), Presented::InGrace);
        assert_eq!(class("prev", 11_900), Presented::Reused);
        assert_eq!(class("prev", 10_000), Presented::InGrace);
        assert_eq!(class("older", 10_901), Presented::Reused);
        assert_eq!(
            classify_refresh("prev", "cur", Some("prev"), None, 0, 1000),
            Presented::Reused
        );
        assert_eq!(
            classify_refresh("prev", "cur", Some("prev"), at, 10_900, 0),
            Presented::Reused
        );
    }

    #[test]
    fn refresh_secrets_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = new_refresh_secret();
        let (b, _) = new_refresh_secret();
        assert_ne!(a, b);
        assert_eq!(ha, hash_refresh_secret(&a));
        assert_eq!(ha.len(), 64);
        assert!(a.len() <= MAX_REFRESH_TOKEN_BYTES);
    }
}
