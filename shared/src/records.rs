//! Values stored in Redis and the one shape both hops read. Each field value of a user's hash
//! starts with the unix second it falls due (see [`crate::keys`]), then the rest, `.`-separated:
//! compact where the seed kept JSON, because a value is paid for per session, and nothing here
//! is what only SQL needs (device, timestamps stay in SQL).

/// Field `j:{jti}` of the user's hash, for as long as the access token lives:
/// `{exp}.{tokenId}.{tokenVersion}`. The user is the hash's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JtiRecord {
    /// The access token's `exp`: when the field may be pruned.
    pub exp: i64,
    /// The device session (`token_id`) this access token belongs to.
    pub token_id: String,
    pub token_version: u64,
}

impl JtiRecord {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.exp, self.token_id, self.token_version)
    }

    /// Reads only what [`encode`](Self::encode) writes (canonical numbers, a non-empty token
    /// id without `.`); anything else is `None`, which every caller treats as revoked.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (exp, token_id, version) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || token_id.is_empty() {
            return None;
        }
        Some(Self {
            exp: i64::try_from(canonical_u64(exp)?).ok()?,
            token_id: token_id.to_owned(),
            token_version: canonical_u64(version)?,
        })
    }
}

/// Field `s:{tokenId}`: the mirror of a device session's refresh-token status,
/// `{until}.0` (live) or `{until}.1` (revoked), `until` being when the refresh token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionMirror {
    pub until: i64,
    pub revoked: bool,
}

impl SessionMirror {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.until, u8::from(self.revoked))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let (until, flag) = raw.split_once('.')?;
        let revoked = match flag {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        Some(Self {
            until: i64::try_from(canonical_u64(until)?).ok()?,
            revoked,
        })
    }
}

/// A `u64` in the only form Tollgate writes: ASCII digits, no sign, no whitespace, no leading
/// zero except `0` itself. (`u64::from_str` alone would take `+7`, and a value we never wrote is
/// not one to trust.)
pub fn canonical_u64(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_record_reads_back_what_it_wrote_and_nothing_else() {
        let r = JtiRecord {
            exp: 1_700_000_900,
            token_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            token_version: 3,
        };
        assert_eq!(
            r.encode(),
            "1700000900.0f8fad5b-d9cb-469f-a165-70867728950e.3"
        );
        assert_eq!(JtiRecord::parse(&r.encode()), Some(r));
        for bad in [
            "",
            "1.s",
            "1.s.3.4",
            "1..3",
            "01.s.3",
            "1.s.+3",
            "1.s.03",
            "-1.s.3",
            "1.s.3 ",
            "{}",
            "1.s.18446744073709551616",
        ] {
            assert_eq!(JtiRecord::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_session_mirror_is_live_or_revoked() {
        let m = SessionMirror {
            until: 99,
            revoked: true,
        };
        assert_eq!(m.encode(), "99.1");
        assert_eq!(SessionMirror::parse("99.1"), Some(m));
        assert_eq!(SessionMirror::parse("99.0").map(|m| m.revoked), Some(false));
        for bad in ["99", "99.2", "99.", ".1", "x.1", "99.1.1"] {
            assert_eq!(SessionMirror::parse(bad), None, "{bad:?}");
        }
    }
}
