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

/// Builds every Redis key Tollgate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySchema {
    prefix: String,
}

/// Why a key prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must not contain glob characters (* ? [ ] \\), whitespace or control characters")]
pub struct PrefixError;

impl KeySchema {
    /// A schema with `prefix`, unchecked: for prefixes the program itself makes.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// A schema with a configured prefix. Glob characters are refused because the prefix also
    /// starts the `SCAN MATCH` patterns: `a*` would count another deployment's keys as ours.
    pub fn configured(prefix: impl Into<String>) -> Result<Self, PrefixError> {
        let prefix = prefix.into();
        let bad = |c: char| {
            matches!(c, '*' | '?' | '[' | ']' | '\\') || c.is_whitespace() || c.is_control()
        };
        if prefix.chars().any(bad) {
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
    fn configured_prefixes_refuse_glob_characters() {
        assert!(KeySchema::configured("prod:").is_ok());
        assert!(KeySchema::configured("").is_ok());
        for bad in ["a*", "a?", "[ab]", "a\\b", "a b", "a\nb"] {
            assert_eq!(KeySchema::configured(bad), Err(PrefixError), "{bad:?}");
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
