//! The configuration rules the origin and the edge read alike: one error shape that names the
//! variable (never its value), "empty is unset", whole numbers above zero, and the variables
//! both sides must agree on — `JWT_SECRET`, `REDIS_KEY_PREFIX`, `JWT_ISSUER` and
//! `JWT_AUDIENCE` with their defaults. Each service keeps its own settings struct; where a
//! setting means the same on both, it is read here.

use crate::jwt::HmacSecret;
use crate::keys::KeySchema;

/// The `iss` tokens carry when `JWT_ISSUER` is unset.
pub const DEFAULT_ISSUER: &str = "tollgate";
/// The `aud` tokens carry when `JWT_AUDIENCE` is unset.
pub const DEFAULT_AUDIENCE: &str = "tollgate-api";

/// Why the configuration was refused; names the variable (or route entry), never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

/// Variables read through a lookup (the process environment, a Worker's `Env`, a test's map),
/// where a value that is empty or only blanks counts as unset — so `FOO=` in a `.env` file or
/// an empty Worker variable means "the default", the same on every service.
#[derive(Debug)]
pub struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn new(lookup: F) -> Self {
        Self(lookup)
    }

    /// The variable's value; empty counts as unset.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.get(var)
            .ok_or_else(|| ConfigError::new(var, "is not set"))
    }

    /// The variable parsed as `T` (surrounding blanks ignored), or `default` when unset.
    pub fn parse<T: std::str::FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::new(var, e.to_string())),
        }
    }

    /// A whole number greater than 0, or `default` when unset.
    pub fn positive(&self, var: &str, default: u64) -> Result<u64, ConfigError> {
        match self.parse(var, default) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::new(
                var,
                "must be a whole number greater than 0",
            )),
        }
    }

    /// `true` or `false`, or `default` when unset.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ConfigError::new(var, "must be true or false")),
        }
    }

    /// `JWT_SECRET`: the HS256 secret, if set (refused if too short).
    pub fn jwt_secret(&self) -> Result<Option<HmacSecret>, ConfigError> {
        self.get("JWT_SECRET")
            .map(|s| {
                HmacSecret::new(s.into_bytes())
                    .map_err(|e| ConfigError::new("JWT_SECRET", e.to_string()))
            })
            .transpose()
    }

    /// `REDIS_KEY_PREFIX` (default empty): the key schema, which both sides must share.
    pub fn key_schema(&self) -> Result<KeySchema, ConfigError> {
        KeySchema::configured(self.get("REDIS_KEY_PREFIX").unwrap_or_default())
            .map_err(|e| ConfigError::new("REDIS_KEY_PREFIX", e.to_string()))
    }

    /// `REDIS_CLUSTER_URLS` ([`cluster_seed_list`], e.g.
    /// `redis://10.0.0.1:6379,redis://10.0.0.2:6379`) as the one `redis+cluster://` URL the
    /// origin connects with ([`cluster_url_seeds`]); `None` when unset. The nodes must be plain
    /// `host:port`s sharing a scheme and credentials, as a cluster's nodes do.
    pub fn redis_cluster_urls(&self) -> Result<Option<String>, ConfigError> {
        const VAR: &str = "REDIS_CLUSTER_URLS";
        let Some(list) = self.get(VAR) else {
            return Ok(None);
        };
        let bad = || {
            ConfigError::new(
                VAR,
                "must be comma-separated redis://[user:password@]host:port URLs (or rediss://) \
                 sharing one scheme and one set of credentials",
            )
        };
        let seeds = cluster_seed_list(&list).map_err(|reason| ConfigError::new(VAR, reason))?;
        let mut shared: Option<(String, Option<&str>)> = None;
        let mut hosts = Vec::new();
        for node in &seeds {
            // Schemes are case-insensitive (`REDIS://` is `redis://`), credentials are not.
            let (scheme, rest) = node.split_once("://").ok_or_else(bad)?;
            let scheme = scheme.to_ascii_lowercase();
            let (auth, host) = match rest.rsplit_once('@') {
                Some((auth, host)) => (Some(auth), host),
                None => (None, rest),
            };
            let host = host.trim_end_matches('/');
            let plain_host = host.rsplit_once(':').is_some_and(|(h, port)| {
                !h.is_empty() && port.parse::<u16>().is_ok() && !h.contains(['/', ',', '@', '?'])
            });
            if !plain_host {
                return Err(bad());
            }
            match &shared {
                None => shared = Some((scheme, auth)),
                Some(first) if *first == (scheme, auth) => {}
                Some(_) => return Err(bad()),
            }
            hosts.push(host);
        }
        let (scheme, auth) = shared.ok_or_else(bad)?;
        let auth = auth.map(|a| format!("{a}@")).unwrap_or_default();
        Ok(Some(format!(
            "{scheme}+cluster://{auth}{}",
            hosts.join(",")
        )))
    }

    /// `JWT_ISSUER` (default [`DEFAULT_ISSUER`]).
    pub fn issuer(&self) -> String {
        self.get("JWT_ISSUER")
            .unwrap_or_else(|| DEFAULT_ISSUER.into())
    }

    /// `JWT_AUDIENCE` (default [`DEFAULT_AUDIENCE`]).
    pub fn audience(&self) -> String {
        self.get("JWT_AUDIENCE")
            .unwrap_or_else(|| DEFAULT_AUDIENCE.into())
    }
}

/// `REDIS_CLUSTER_URLS`: a Redis Cluster's seed nodes as a comma-separated list of `redis://` or
/// `rediss://` URLs, one node each. The one grammar both services read (the bridge checks each
/// seed with its Redis client on top); an error names the entry, never its value.
pub fn cluster_seed_list(list: &str) -> Result<Vec<String>, String> {
    list.split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, seed)| {
            let scheme = seed.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            if seed.is_empty() {
                Err(format!("entry {} is empty", i + 1))
            } else if !matches!(scheme.as_deref(), Some("redis" | "rediss")) {
                Err(format!(
                    "entry {} is not a redis:// or rediss:// URL",
                    i + 1
                ))
            } else {
                Ok(seed.to_owned())
            }
        })
        .collect()
}

/// The seed nodes of a Redis Cluster written as one URL,
/// `redis+cluster://[user:password@]h1:p1,h2:p2[/0][?query]` (`rediss+cluster://` for TLS):
/// one `redis://` (`rediss://`) URL per node, each carrying the same credentials and query.
/// `None` when `url` is not of that scheme (one Redis). The one grammar both services read; an
/// error never repeats the URL, which may hold a password.
pub fn cluster_url_seeds(url: &str) -> Option<Result<Vec<String>, String>> {
    let (scheme, rest) = url.split_once("://")?;
    let base = match scheme.to_ascii_lowercase().as_str() {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return None,
    };
    // Credentials end at the last `@`: an unencoded password may hold `@`, `,` or `/`.
    let (credentials, location) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let (hosts, tail) = location.split_at(location.find(['/', '?']).unwrap_or(location.len()));
    let (path, query) = tail.split_at(tail.find('?').unwrap_or(tail.len()));
    if !matches!(path, "" | "/" | "/0") {
        return Some(Err("a Redis Cluster has only database 0".to_owned()));
    }
    Some(
        hosts
            .split(',')
            .map(str::trim)
            .enumerate()
            .map(|(i, host)| match host {
                "" => Err(format!("node {} is empty", i + 1)),
                host => Ok(format!("{base}://{credentials}{host}{query}")),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(
        pairs: &'static [(&'static str, &'static str)],
    ) -> Vars<impl Fn(&str) -> Option<String>> {
        Vars::new(move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn empty_and_blank_values_count_as_unset() {
        let v = vars(&[("A", ""), ("B", "   "), ("JWT_ISSUER", " ")]);
        assert_eq!(v.get("A"), None);
        assert_eq!(v.get("B"), None);
        assert_eq!(v.positive("A", 7), Ok(7));
        assert_eq!(v.issuer(), DEFAULT_ISSUER);
        assert_eq!(v.audience(), DEFAULT_AUDIENCE);
        assert_eq!(v.required("B").map_err(|e| e.var), Err("B".to_owned()));
    }

    #[test]
    fn refusals_name_the_variable_and_never_its_value() {
        let v = vars(&[
            ("N", "0"),
            ("M", "-3"),
            ("JWT_SECRET", "short-secret-value"),
            ("REDIS_KEY_PREFIX", "tenant*"),
            ("F", "yes"),
        ]);
        for err in [
            v.positive("N", 1).expect_err("zero"),
            v.positive("M", 1).expect_err("negative"),
            v.jwt_secret().expect_err("short"),
            v.key_schema().expect_err("bad prefix"),
            v.flag("F", false).expect_err("not a flag"),
        ] {
            let shown = err.to_string();
            assert!(shown.starts_with("invalid configuration: "), "{shown}");
            assert!(!shown.contains("short-secret-value"), "{shown}");
        }
        assert_eq!(v.positive("N", 1).expect_err("zero").var, "N");
    }

    #[test]
    fn a_cluster_is_one_url_however_it_was_configured() {
        let v = vars(&[(
            "REDIS_CLUSTER_URLS",
            "redis://:pw@10.0.0.1:7000, REDIS://:pw@10.0.0.2:7001/",
        )]);
        let url = v.redis_cluster_urls().expect("valid").expect("set");
        assert_eq!(url, "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001");
        assert_eq!(
            cluster_url_seeds(&url),
            Some(Ok(vec![
                "redis://:pw@10.0.0.1:7000".to_owned(),
                "redis://:pw@10.0.0.2:7001".to_owned()
            ]))
        );
        assert_eq!(vars(&[]).redis_cluster_urls(), Ok(None));
        for bad in [
            "10.0.0.1:7000",
            "redis://a:1,rediss://b:2",
            "redis://:x@a:1,redis://:y@b:2",
            "redis://a",
            "redis://a:notaport",
            "http://a:1",
            "redis://a:1,",
        ] {
            let err = Vars::new(|k: &str| (k == "REDIS_CLUSTER_URLS").then(|| bad.to_owned()))
                .redis_cluster_urls()
                .expect_err(bad);
            assert_eq!(err.var, "REDIS_CLUSTER_URLS", "{bad}");
            assert!(!err.to_string().contains(":x@"), "{err}");
        }
    }

    #[test]
    fn a_cluster_url_names_its_seeds_with_one_set_of_credentials() {
        let seeds = |url: &str| cluster_url_seeds(url).expect("a cluster URL");
        assert_eq!(
            seeds("REDISS+cluster://u:p@ss,w/rd@a:1, b:2/0?protocol=resp3"),
            Ok(vec![
                "rediss://u:p@ss,w/rd@a:1?protocol=resp3".to_owned(),
                "rediss://u:p@ss,w/rd@b:2?protocol=resp3".to_owned(),
            ])
        );
        assert_eq!(
            seeds("redis+cluster://a:1/"),
            Ok(vec!["redis://a:1".to_owned()])
        );
        assert_eq!(cluster_url_seeds("redis://a:1"), None);
        assert_eq!(cluster_url_seeds("not a url"), None);
        for (url, reason) in [
            ("redis+cluster://:secret@", "node 1 is empty"),
            ("redis+cluster://a:1,,b:2", "node 2 is empty"),
            (
                "redis+cluster://:secret@a:1/1",
                "a Redis Cluster has only database 0",
            ),
        ] {
            assert_eq!(seeds(url), Err(reason.to_owned()), "{url}");
        }
    }

    #[test]
    fn a_seed_list_refuses_empty_entries_and_other_schemes_by_position() {
        assert_eq!(
            cluster_seed_list(" redis://a:1 ,Rediss://b:2"),
            Ok(vec!["redis://a:1".to_owned(), "Rediss://b:2".to_owned()])
        );
        for (list, reason) in [
            ("redis://a:1,", "entry 2 is empty"),
            (
                "unix:///tmp/secret.sock",
                "entry 1 is not a redis:// or rediss:// URL",
            ),
            (
                "redis+cluster://a:1",
                "entry 1 is not a redis:// or rediss:// URL",
            ),
            ("a:1", "entry 1 is not a redis:// or rediss:// URL"),
        ] {
            assert_eq!(cluster_seed_list(list), Err(reason.to_owned()), "{list}");
        }
    }
}
