//! Refresh secrets and their hashes, as two types: the database keeps only the hash, the client
//! only the secret, and no call can take one for the other.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use tollgate_shared::digest::sha256_hex;

/// How every refresh secret starts; an access token (a JWT) never does.
pub const REFRESH_SECRET_PREFIX: &str = "rt_";

/// A refresh secret as the client holds it (`rt_` + 256 random bits). Never stored; `Debug`
/// prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshSecret(String);

impl RefreshSecret {
    /// A fresh secret from the OS random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!(
            "{REFRESH_SECRET_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// A secret as a client presented it (unchecked: it may be one we never issued).
    pub fn presented(secret: String) -> Self {
        Self(secret)
    }

    /// The hash the database keeps for this secret.
    pub fn hash(&self) -> RefreshHash {
        hash_refresh_secret(&self.0)
    }

    /// The secret itself, to hand to its holder (a response body) or to derive a key from.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshSecret(<redacted>)")
    }
}

/// Hex SHA-256 of a refresh secret: what the database stores and looks sessions up by. It
/// derefs to `str` for the queries, which take it as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshHash(String);

impl std::ops::Deref for RefreshHash {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A fresh refresh secret and the hash that is all the database keeps.
pub fn new_refresh_secret() -> (RefreshSecret, RefreshHash) {
    let secret = RefreshSecret::generate();
    let hash = secret.hash();
    (secret, hash)
}

/// Hex SHA-256 of a refresh secret. A plain hash suffices: the secret has 256 bits of entropy.
pub fn hash_refresh_secret(secret: &str) -> RefreshHash {
    RefreshHash(sha256_hex(secret.as_bytes()))
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

/// The one rule for a presented secret, by its hash against the session's stored hashes
/// (compared in constant time). The window is judged in milliseconds from `rotated_at_ms`,
/// taken from the same clock as `now_ms`; a rotation "in the future" (another instance's clock
/// ahead of ours) counts as inside the window.
pub fn classify_refresh(
    presented: &RefreshHash,
    current: &str,
    previous: Option<&str>,
    rotated_at_ms: Option<i64>,
    now_ms: i64,
    grace_ms: i64,
) -> Presented {
    use subtle::ConstantTimeEq as _;
    let presented = presented.as_bytes();
    if bool::from(presented.ct_eq(current.as_bytes())) {
        return Presented::Current;
    }
    let is_previous = previous.is_some_and(|p| bool::from(presented.ct_eq(p.as_bytes())));
    let in_window = rotated_at_ms.is_some_and(|at| now_ms.saturating_sub(at) < grace_ms);
    if is_previous && in_window {
        Presented::InGrace
    } else {
        Presented::Reused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MAX_REFRESH_TOKEN_BYTES;

    #[test]
    fn the_grace_window_is_judged_in_milliseconds() {
        let h = hash_refresh_secret;
        let (cur, prev) = (h("cur"), h("prev"));
        let at = Some(10_900);
        let class = |p: &str, now: i64| classify_refresh(&h(p), &cur, Some(&prev), at, now, 1000);
        assert_eq!(class("cur", 99_999), Presented::Current);
        assert_eq!(class("prev", 10_900), Presented::InGrace);
        assert_eq!(class("prev", 11_899), Presented::InGrace);
        assert_eq!(class("prev", 11_900), Presented::Reused);
        assert_eq!(class("prev", 10_000), Presented::InGrace);
        assert_eq!(class("older", 10_901), Presented::Reused);
        assert_eq!(
            classify_refresh(&prev, &cur, Some(&prev), None, 0, 1000),
            Presented::Reused
        );
        assert_eq!(
            classify_refresh(&prev, &cur, Some(&prev), at, 10_900, 0),
            Presented::Reused
        );
    }

    #[test]
    fn refresh_secrets_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = new_refresh_secret();
        let (b, _) = new_refresh_secret();
        assert_ne!(a, b);
        assert_eq!(ha, hash_refresh_secret(a.expose()));
        assert_eq!(ha.len(), 64);
        assert!(a.expose().len() <= MAX_REFRESH_TOKEN_BYTES);
    }

    #[test]
    fn a_secret_debugs_as_redacted() {
        let (a, _) = new_refresh_secret();
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.expose()), "{shown}");
        assert_eq!(shown, "RefreshSecret(<redacted>)");
    }
}
