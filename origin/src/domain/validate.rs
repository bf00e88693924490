//! Input rules for what clients send: emails, passwords, free text. Pure, and failing with
//! their own [`InvalidInput`], which [`ApiError`](crate::error::ApiError) maps to the
//! documented 400 in one place (so the rules need nothing of HTTP).

use unicode_normalization::UnicodeNormalization as _;

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

/// A value a rule refused; the text says which rule, for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// The form emails are compared in: trimmed, Unicode NFKC, lowercase. Two addresses that differ
/// only in case or normalisation are the same account.
pub fn normalize_email(email: &str) -> String {
    email.trim().nfkc().collect::<String>().to_lowercase()
}

/// Checks an email for the shape we accept (one `@`, non-empty parts, no spaces or controls).
pub fn validate_email(email: &str) -> Result<(), InvalidInput> {
    let e = email.trim();
    let ok = !e.is_empty()
        && e.len() <= MAX_EMAIL_BYTES
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(InvalidInput("email is not a valid address".into()))
    }
}

pub fn validate_password(password: &str) -> Result<(), InvalidInput> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(InvalidInput(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(InvalidInput(format!(
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
) -> Result<Option<String>, InvalidInput> {
    let Some(v) = value else { return Ok(None) };
    let v = v.trim();
    if v.chars().count() > max_chars {
        return Err(InvalidInput(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(InvalidInput(format!(
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
}
