//! `decide` on an arbitrary jti record: whatever the record holds, a token is accepted only if
//! the record (`exp.tokenId.version`, in the user's hash) names its session and version and the
//! user's current version equals it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_fuzz::{template, NOW};
use tollgate_shared::decision::parse_version;
use tollgate_shared::records::JtiRecord;
use tollgate_shared::decision::decide_reseeded;
use tollgate_shared::{AccessClaims, Rejection};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let claims = AccessClaims {
        sub: "u1".into(),
        sid: "s1".into(),
        ver: u64::from(selector & 0x0f),
        iat: NOW,
        ..template()
    };
    let current = u64::from(selector >> 4).checked_sub(1);
    // The raw value Redis (or Upstash) hands back is text; anything else never reaches decide.
    let record = String::from_utf8_lossy(rest);
    let got = decide_reseeded(&claims, Some(&record), current);
    // The oracle: the record's three parts, read apart from `JtiRecord::parse`, in the form
    // `JtiRecord::encode` writes them (the round trip of each number).
    let parts: Vec<&str> = record.split('.').collect();
    let matches = matches!(parts.as_slice(), [exp, sid, ver]
        if exp.parse::<i64>().is_ok_and(|e| e >= 0 && e.to_string() == *exp)
            && *sid == claims.sid
            && ver.parse::<u64>().is_ok_and(|v| v == claims.ver && v.to_string() == *ver));
    // Whatever parses writes itself back the same.
    if let Some(parsed) = JtiRecord::parse(&record) {
        assert_eq!(parsed.encode(), &*record);
    }
    let expected = if !matches {
        Err(Rejection::Revoked)
    } else if current.is_none() {
        Err(Rejection::UserUnknown)
    } else if current != Some(claims.ver) {
        Err(Rejection::Version)
    } else {
        Ok(())
    };
    match (expected, got) {
        (Ok(()), Ok(identity)) => {
            assert_eq!(identity.user_id, claims.sub);
            assert_eq!(identity.token_id, claims.sid);
            assert_eq!(identity.token_version, claims.ver);
        }
        (Err(want), got) => assert_eq!(got.map(|_| ()), Err(want), "record {record:?}"),
        (Ok(()), Err(r)) => panic!("refused a matching record with {r:?}: {record:?}"),
    }
    // A missing record is always a revoked token.
    assert_eq!(decide_reseeded(&claims, None, current), Err(Rejection::Revoked));
    // The version key is read only in the form Tollgate writes it, `u64::to_string`: the oracle
    // is that round trip, not the parser under test (`"+7"` or `"07"` parse as 7 but are not
    // what we write).
    let canonical = record
        .parse::<u64>()
        .ok()
        .filter(|v| v.to_string() == record);
    assert_eq!(
        parse_version(Some(&record)),
        canonical,
        "version {record:?}"
    );
});
