//! The Redis key schema: one function per key, so the origin and the edge cannot disagree.
//!
//! | key | type | value | TTL |
//! |---|---|---|---|
//! | `token:jti:{jti}` | string | JSON [`JtiRecord`](crate::records::JtiRecord) | access-token lifetime |
//! | `tokens:user:{userId}` | sorted set | member `jti`, score = its expiry (unix s) | latest member's expiry |
//! | `refresh:{tokenId}` | string | JSON [`RefreshStatus`](crate::records::RefreshStatus) | refresh lifetime |
//! | `refresh_grace:{hash}` | string | the last refresh answer, sealed with a key derived from the rotated-away secret | refresh grace window |
//! | `user:ver:{userId}` | string | the user's current `token_version` | refresh lifetime, renewed at login/refresh; re-seeded from SQL when missing |
//! | `ratelimit:{scope}:{subject}` | string | counter | the window |
//!
//! `tokens:user:{userId}` is a sorted set rather than the seed's plain set: members are scored by
//! expiry and pruned (`ZREMRANGEBYSCORE`) on every write, and the key itself expires with its
//! newest token, so it never grows without bound as tokens lapse.
//!
//! Every key is prefixed by a deployment-chosen prefix (empty by default) so several
//! deployments or test runs can share one Redis without colliding.
//!
//! # Why no two keys meet
//! A key is `prefix + fixed part + id`. A configured prefix ([`KeySchema::configured`]) is empty
//! or one segment `NAME:` — `NAME` made of `[A-Za-z0-9_.-]`, not one of the fixed parts' first
//! words ([`RESERVED_PREFIX_NAMES`]) — so, whatever the ids hold (colons included):
//! - the text before a key's first `:` is `NAME` for a prefixed key and a reserved word for an
//!   unprefixed one, so it tells the prefix: two deployments never share a key, nor match each
//!   other's `SCAN` patterns;
//! - under one prefix the fixed parts are prefix-free (none starts another), so the fixed part
//!   and then the id follow: two kinds or two ids never share a key.
//!
//! Nested prefixes would break the first point: with `a:` and `a:tokens:`,
//! `user_tokens("ver:b")` and `user_version("b")` are both `a:tokens:user:ver:b`.

/// Builds every Redis key Tollgate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySchema {
    prefix: String,
}

/// The first word of every fixed part. A configured prefix may not be one of them, or an
/// unprefixed deployment's key could read as that prefix's (`refresh:` + `token:jti:x` is
/// `refresh:token:jti:x`, a refresh key with the id `token:jti:x`).
pub const RESERVED_PREFIX_NAMES: &[&str] = &[
    "token",
    "tokens",
    "refresh",
    "refresh_grace",
    "user",
    "ratelimit",
];

/// Why a key prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be empty or one name of letters, digits, `_`, `.` or `-` followed by a single `:` \
     (e.g. `prod:`), and the name must not be one of the key schema's own words \
     (token, tokens, refresh, refresh_grace, user, ratelimit)"
)]
pub struct PrefixError;

impl KeySchema {
    /// A schema with `prefix`, unchecked: for prefixes the program itself makes.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// A schema with a configured prefix: empty, or `NAME:` with `NAME` of `[A-Za-z0-9_.-]+` and
    /// not in [`RESERVED_PREFIX_NAMES`]. That makes keys injective across deployments (see the
    /// module doc), and it leaves no glob character, which matters because the prefix also
    /// starts the `SCAN MATCH` patterns: `a*` would count another deployment's keys as ours.
    pub fn configured(prefix: impl Into<String>) -> Result<Self, PrefixError> {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Ok(Self::new(prefix));
        }
        let name = prefix.strip_suffix(':').ok_or(PrefixError)?;
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
        if name.is_empty() || !name.bytes().all(allowed) || RESERVED_PREFIX_NAMES.contains(&name) {
            return Err(PrefixError);
        }
        Ok(Self::new(prefix))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `token:jti:{jti}`: the access token's record; its existence is what keeps the token alive.
    pub fn jti(&self, jti: &str) -> String {
        format!("{}token:jti:{jti}", self.prefix)
    }

    /// `SCAN` pattern matching every jti record of this deployment.
    pub fn jti_pattern(&self) -> String {
        format!("{}token:jti:*", self.prefix)
    }

    /// `tokens:user:{userId}`: the user's live jtis, scored by expiry.
    pub fn user_tokens(&self, user_id: &str) -> String {
        format!("{}tokens:user:{user_id}", self.prefix)
    }

    /// `refresh:{tokenId}`: the mirrored status of a device session's refresh token.
    pub fn refresh(&self, token_id: &str) -> String {
        format!("{}refresh:{token_id}", self.prefix)
    }

    /// `SCAN` pattern matching every refresh-status key of this deployment.
    pub fn refresh_pattern(&self) -> String {
        format!("{}refresh:*", self.prefix)
    }

    /// `refresh_grace:{hash}`: a refresh's answer, sealed with a key derived from the secret
    /// it rotated away, kept for the grace window so a repeated refresh gets the same answer.
    pub fn refresh_grace(&self, secret_hash: &str) -> String {
        format!("{}refresh_grace:{secret_hash}", self.prefix)
    }

    /// `user:ver:{userId}`: the user's current token version, read by every validation.
    pub fn user_version(&self, user_id: &str) -> String {
        format!("{}user:ver:{user_id}", self.prefix)
    }

    /// `ratelimit:{scope}:{subject}`: a fixed-window counter.
    pub fn rate_limit(&self, scope: &str, subject: &str) -> String {
        format!("{}ratelimit:{scope}:{subject}", self.prefix)
    }
}

/// Whether `s` is a canonical lowercase hyphenated UUID, the only form Tollgate issues for user
/// ids, jtis and token ids. Checked before an id from a request reaches a key or a query.
pub fn is_canonical_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_and_the_seed_layout() {
        let k = KeySchema::new("t1:");
        assert_eq!(k.jti("abc"), "t1:token:jti:abc");
        assert_eq!(k.user_tokens("u"), "t1:tokens:user:u");
        assert_eq!(k.refresh("r"), "t1:refresh:r");
        assert_eq!(k.user_version("u"), "t1:user:ver:u");
        assert_eq!(k.jti_pattern(), "t1:token:jti:*");
        assert_eq!(KeySchema::default().jti("x"), "token:jti:x");
    }

    #[test]
    fn configured_prefixes_are_empty_or_one_unreserved_name_and_a_colon() {
        for good in ["", "prod:", "Tenant_1.eu-west:", "e2e-0f8fad5b:"] {
            assert!(KeySchema::configured(good).is_ok(), "{good:?}");
        }
        for bad in [
            "a*:",
            "a?:",
            "[ab]:",
            "a\\b:",
            "a b:",
            "a\nb:",
            "prod",
            ":",
            "a::",
            "a:tokens:",
            "a:b",
            "tokens:",
            "user:",
            "refresh:",
            "ratelimit:",
            "token:",
            "refresh_grace:",
            "é:",
        ] {
            assert_eq!(KeySchema::configured(bad), Err(PrefixError), "{bad:?}");
        }
    }

    #[test]
    fn every_fixed_part_starts_with_a_reserved_word() {
        let k = KeySchema::default();
        for key in [
            k.jti("x"),
            k.user_tokens("x"),
            k.refresh("x"),
            k.refresh_grace("x"),
            k.user_version("x"),
            k.rate_limit("login:ip", "x"),
        ] {
            let first = key.split(':').next().unwrap_or_default();
            assert!(RESERVED_PREFIX_NAMES.contains(&first), "{key}");
        }
    }

    #[test]
    fn only_canonical_uuids_pass() {
        assert!(is_canonical_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_canonical_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
        assert!(!is_canonical_uuid("0f8fad5b-d9cb-469f-a165-70867728950"));
        assert!(!is_canonical_uuid("0f8fad5b-d9cb-469f-a165-70867728950e*"));
        assert!(!is_canonical_uuid("../../etc/passwd-aaaaaaaaaaaaaaaaaaaaa"));
    }
}
