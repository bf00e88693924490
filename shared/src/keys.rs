//! The Redis key schema: one function per key or field, so the origin and the edge cannot
//! disagree.
//!
//! Everything Tollgate keeps about a user lives in **one hash per user**, `tg:{userId}`:
//!
//! | field | value | gone when |
//! |---|---|---|
//! | `v` | the user's current `token_version` (decimal) | with the hash; re-seeded from SQL when missing |
//! | `j:{jti}` | a live access token: [`JtiRecord`](crate::records::JtiRecord) `exp.tokenId.version` | deleted by a logout; pruned once `exp` passed |
//! | `s:{tokenId}` | a device session's refresh mirror: [`SessionMirror`](crate::records::SessionMirror) `until.0` (live) or `until.1` (revoked) | pruned once `until` (the refresh lifetime) passed |
//! | `g:{secretHash}` | `until.`: a refresh's answer is kept for its grace window under `tg:{userId}:g:{secretHash}` | pruned once `until` passed |
//!
//! Beside the hash, in the same slot (same hash tag):
//! - `tg:{userId}:g:{secretHash}`, a string: the refresh's answer sealed with a key derived from
//!   the rotated-away secret, expiring (`PX`) with the grace window. It is hundreds of bytes
//!   and lives seconds, so it stays out of the hash, which Redis keeps as a compact listpack
//!   only while every value is small; the `g:` field lets an account deletion find it.
//!
//! and one string per rate-limit counter, `rl:{scope}:{subject}`, expiring with its window.
//!
//! The hash expires a refresh lifetime after its last write (every write renews it), which is
//! never before anything in it is due; fields that fell due earlier are pruned by the next
//! write of the same user (linear in that user's devices, never in all users). Every field
//! value starts with the unix second it falls due, so pruning needs no parsing beyond that.
//!
//! # Why one hash per user
//! - **Redis Cluster.** `{userId}` is a hash tag: every key a request or a script touches is the
//!   user's one key, so every Lua script and the edge's one lookup (`HMGET tg:{u} j:{jti} v`) stay
//!   in one slot, where the seed's layout (`token:jti:{jti}`, `user:ver:{userId}`, …) puts one
//!   request's keys in different slots (`CROSSSLOT`). The edge knows the user from `sub`.
//! - **Bytes per session.** A small hash is one listpack: one key, one expiry and a few fields,
//!   where the seed's layout pays a key, an object header and an expiry for each of five keys
//!   and keeps JSON of what only SQL needs (device, timestamps). Measured side by side by
//!   `scripts/bytes-per-session.sh` (BENCHMARKS.md).
//!
//! # The seed's layout, and moving from it
//! | seed key | here |
//! |---|---|
//! | `token:jti:{jti}` (JSON record) | field `j:{jti}` of `tg:{userId}` (`exp.tokenId.version`; device and times stay in SQL) |
//! | `tokens:user:{userId}` (set of jtis) | the `j:` fields of `tg:{userId}` themselves |
//! | `refresh:{tokenId}` (JSON status) | field `s:{tokenId}` |
//! | `user:ver:{userId}` | field `v` |
//! | `refresh_grace:{hash}` | `tg:{userId}:g:{hash}` (and field `g:{hash}` naming it) |
//! | `ratelimit:{scope}:{subject}` | `rl:{scope}:{subject}` |
//!
//! Deploying this layout over the old one needs no migration step: SQL is the authority for
//! refresh tokens and versions, so the old keys are simply never read again and lapse by their
//! TTLs; access tokens minted before the deploy find no `j:` field and are refused as revoked,
//! so each client refreshes once (its refresh token works: its state is in SQL) — a deploy
//! costs every client one refresh, never a login. Deploy the origin and the edge together.
//!
//! # Prefixes: why no two deployments meet
//! Every key is prefixed by a deployment-chosen prefix (empty by default) so several
//! deployments or test runs can share one Redis. A configured prefix ([`KeySchema::configured`])
//! is empty or one segment `NAME:` — `NAME` made of `[A-Za-z0-9_.-]`, not one of the fixed
//! parts' first words ([`RESERVED_PREFIX_NAMES`]) — so the text before a key's first `:` tells
//! the prefix (a reserved word for an unprefixed key): two deployments never share a key, nor
//! match each other's `SCAN` patterns, and the prefix holds no `{`, so the hash tag is always the
//! user id. Nested prefixes (`a:` and `a:tg:`) would break that, hence one segment.

/// Builds every Redis key Tollgate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySchema {
    prefix: String,
}

/// The first word of every fixed part. A configured prefix may not be one of them, or an
/// unprefixed deployment's key could read as that prefix's.
pub const RESERVED_PREFIX_NAMES: &[&str] = &["tg", "rl"];

/// Why a key prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be empty or one name of letters, digits, `_`, `.` or `-` followed by a single `:` \
     (e.g. `prod:`), and the name must not be one of the key schema's own words (tg, rl)"
)]
pub struct PrefixError;

/// The fields of a user's hash (see the module doc).
pub mod field {
    /// The user's current token version.
    pub const VERSION: &str = "v";
    /// Starts every access-token field.
    pub const JTI: &str = "j:";
    /// Starts every refresh-mirror field.
    pub const SESSION: &str = "s:";
    /// Starts every field naming a kept grace answer.
    pub const GRACE: &str = "g:";

    /// `j:{jti}`: the access token's record; its presence is what keeps the token alive.
    pub fn jti(jti: &str) -> String {
        format!("{JTI}{jti}")
    }

    /// `s:{tokenId}`: the mirrored status of a device session's refresh token.
    pub fn session(token_id: &str) -> String {
        format!("{SESSION}{token_id}")
    }

    /// `g:{hash}`: names the user's kept grace answer for a rotated-away secret
    /// ([`KeySchema::grace`](super::KeySchema::grace)), with when it falls due.
    pub fn grace(secret_hash: &str) -> String {
        format!("{GRACE}{secret_hash}")
    }
}

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

    /// `tg:{userId}`: the user's hash, its id a hash tag so Redis Cluster keeps it in one slot.
    pub fn user(&self, user_id: &str) -> String {
        format!("{}tg:{{{user_id}}}", self.prefix)
    }

    /// `tg:{userId}:g:{hash}`: a refresh's answer, sealed with a key derived from the secret it
    /// rotated away, kept for the grace window so a repeated refresh gets the same answer. In
    /// the user's slot, so the script that writes the hash writes it too.
    pub fn grace(&self, user_id: &str, secret_hash: &str) -> String {
        format!("{}{secret_hash}", self.grace_prefix(user_id))
    }

    /// What every grace answer of the user starts with (`tg:{userId}:g:`): the account deletion
    /// script appends the hashes its `g:` fields name.
    pub fn grace_prefix(&self, user_id: &str) -> String {
        format!("{}{GRACE_SUFFIX}", self.user(user_id))
    }

    /// `SCAN` pattern matching every user hash of this deployment (and their grace answers:
    /// scan with `TYPE hash` for the hashes alone).
    pub fn user_pattern(&self) -> String {
        format!("{}tg:*", self.prefix)
    }

    /// `rl:{scope}:{subject}`: a fixed-window counter.
    pub fn rate_limit(&self, scope: &str, subject: &str) -> String {
        format!("{}{scope}:{subject}", self.rate_limit_prefix())
    }

    /// What every rate-limit counter of this deployment starts with (`rl:`).
    pub fn rate_limit_prefix(&self) -> String {
        format!("{}rl:", self.prefix)
    }
}

/// What follows a user key in the name of one of its grace answers.
pub const GRACE_SUFFIX: &str = ":g:";

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
    fn keys_carry_the_prefix_and_the_user_as_hash_tag() {
        let k = KeySchema::new("t1:");
        assert_eq!(k.user("u"), "t1:tg:{u}");
        assert_eq!(k.user_pattern(), "t1:tg:*");
        assert_eq!(
            k.rate_limit("login:ip", "1.2.3.4"),
            "t1:rl:login:ip:1.2.3.4"
        );
        assert_eq!(KeySchema::default().user("x"), "tg:{x}");
        assert_eq!(field::jti("a"), "j:a");
        assert_eq!(field::session("s"), "s:s");
        assert_eq!(field::grace("h"), "g:h");
        assert_eq!(k.grace("u", "ab12"), "t1:tg:{u}:g:ab12");
        assert_eq!(k.grace_prefix("u"), "t1:tg:{u}:g:");
        assert_eq!(k.rate_limit_prefix(), "t1:rl:");
    }

    #[test]
    fn configured_prefixes_are_empty_or_one_unreserved_name_and_a_colon() {
        for good in ["", "prod:", "Tenant_1.eu-west:", "e2e-0f8fad5b:"] {
            assert!(KeySchema::configured(good).is_ok(), "{good:?}");
        }
        for bad in [
            "a*:", "a?:", "[ab]:", "a\\b:", "a b:", "a\nb:", "prod", ":", "a::", "a:tg:", "a:b",
            "tg:", "rl:", "{x}:", "a{:", "é:",
        ] {
            assert_eq!(KeySchema::configured(bad), Err(PrefixError), "{bad:?}");
        }
    }

    #[test]
    fn every_fixed_part_starts_with_a_reserved_word() {
        let k = KeySchema::default();
        for key in [
            k.user("x"),
            k.grace("x", "h"),
            k.rate_limit("login:ip", "x"),
        ] {
            let first = key.split(':').next().unwrap_or_default();
            assert!(RESERVED_PREFIX_NAMES.contains(&first), "{key}");
        }
    }

    /// The hash tag Redis Cluster reads is the text between the first `{` and the next `}`:
    /// for a user key, whatever the prefix, that is the user id.
    #[test]
    fn the_hash_tag_of_a_user_key_is_the_user_id() {
        for prefix in ["", "prod:", "e2e-1:"] {
            let k = KeySchema::configured(prefix).expect("prefix");
            for key in [k.user("0f8f-u"), k.grace("0f8f-u", "ab")] {
                let open = key.find('{').expect("{");
                let close = key[open..].find('}').expect("}") + open;
                assert_eq!(&key[open + 1..close], "0f8f-u", "{key}");
            }
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
