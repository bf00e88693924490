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

    /// `REDIS_CLUSTER_URLS` (comma-separated node URLs, e.g.
    /// `redis://10.0.0.1:6379,redis://10.0.0.2:6379`) as the one `redis+cluster://` URL both
    /// services connect with ([`redis_cluster_nodes`]); `None` when unset. The nodes must share
    /// a scheme and credentials, as a cluster's nodes do.
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
        let mut shared: Option<(&str, Option<&str>)> = None;
        let mut hosts = Vec::new();
        for node in list.split(',').map(str::trim) {
            let (scheme, rest) = node.split_once("://").ok_or_else(bad)?;
            let (auth, host) = match rest.rsplit_once('@') {
                Some((auth, host)) => (Some(auth), host),
                None => (None, rest),
            };
            let host = host.trim_end_matches('/');
            let plain_host = host.rsplit_once(':').is_some_and(|(h, port)| {
                !h.is_empty() && port.parse::<u16>().is_ok() && !h.contains(['/', ',', '@'])
            });
            if !matches!(scheme, "redis" | "rediss") || !plain_host {
                return Err(bad());
            }
            match shared {
                None => shared = Some((scheme, auth)),
                Some(first) if first == (scheme, auth) => {}
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

/// The node URLs of a Redis Cluster written as one URL, `redis+cluster://[auth@]h1:p1,h2:p2`
/// (`rediss+cluster://` for TLS): `["redis://[auth@]h1:p1", …]`, the credentials applying to
/// every node. `None` for a one-node URL (or a cluster URL naming no node).
pub fn redis_cluster_nodes(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.strip_suffix("+cluster")?;
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let nodes: Vec<String> = hosts
        .trim_end_matches('/')
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("{scheme}://{auth}{h}"))
        .collect();
    (!nodes.is_empty()).then_some(nodes)
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
            "redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7001/",
        )]);
        let url = v.redis_cluster_urls().expect("valid").expect("set");
        assert_eq!(url, "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001");
        assert_eq!(
            redis_cluster_nodes(&url),
            Some(vec![
                "redis://:pw@10.0.0.1:7000".to_owned(),
                "redis://:pw@10.0.0.2:7001".to_owned()
            ])
        );
        assert_eq!(
            redis_cluster_nodes("rediss+cluster://a:1"),
            Some(vec!["rediss://a:1".to_owned()])
        );
        assert_eq!(redis_cluster_nodes("redis://a:1"), None);
        assert_eq!(redis_cluster_nodes("redis+cluster://"), None);
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
}
