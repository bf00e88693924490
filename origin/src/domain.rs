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
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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

/// A fresh refresh secret (256 bits) and the SHA-256 hash that is all the database keeps.
pub fn new_refresh_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("rt_{}", URL_SAFE_NO_PAD.encode(bytes));
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

/// Encrypts `plaintext` under a key derived from a refresh secret (ChaCha20-Poly1305; the key
/// is used for this one message only, so a fixed nonce is safe). Only a holder of the secret
/// can open it; the stored hash of the secret does not derive the key (different domain).
pub fn seal_for_secret(secret: &str, plaintext: &[u8]) -> String {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&sealing_key(secret).into());
    let sealed = cipher
        .encrypt(&chacha20poly1305::Nonce::default(), plaintext)
        .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(sealed)
}

/// Opens what [`seal_for_secret`] sealed; `None` if the secret is not the one it was sealed for.
pub fn open_for_secret(secret: &str, sealed: &str) -> Option<Vec<u8>> {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _};
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&sealing_key(secret).into());
    cipher
        .decrypt(&chacha20poly1305::Nonce::default(), bytes.as_slice())
        .ok()
}

fn sealing_key(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tollgate/refresh-grace/v1\0");
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
        let (a, _) = new_refresh_secret();
        let (b, _) = new_refresh_secret();
        let sealed = seal_for_secret(&a, b"answer");
        assert_eq!(
            open_for_secret(&a, &sealed).as_deref(),
            Some(&b"answer"[..])
        );
        assert_eq!(open_for_secret(&b, &sealed), None);
        assert!(!sealed.contains("answer"));
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
