//! Settings, read once from the environment (and `.env`).

/// Where the edge's public assertion keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKeys {
    /// `EDGE_JWKS`: the edge's JWKS document itself.
    Jwks(String),
    /// `EDGE_JWKS_URL`: the edge's `/.well-known/tollgate-edge-jwks.json`, fetched and cached.
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `BIND_ADDR`: where to listen (default `127.0.0.1:8090`).
    pub bind_addr: String,
    /// `DATABASE_URL`: the SQLite database (default `sqlite://notes.db`, created if missing).
    pub database_url: String,
    /// `EDGE_JWKS` or `EDGE_JWKS_URL` (exactly one).
    pub edge_keys: EdgeKeys,
    /// `EDGE_ISSUER`: the edge's `iss` (default `tollgate-edge`).
    pub edge_issuer: String,
    /// `EDGE_AUDIENCE`: this API's upstream name in the edge's route table (default `notes`).
    pub edge_audience: String,
}

/// A setting that is missing or invalid, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any source of variables (tests pass a table). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let edge_keys = match (get("EDGE_JWKS"), get("EDGE_JWKS_URL")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    var: "EDGE_JWKS",
                    reason: "set EDGE_JWKS or EDGE_JWKS_URL, not both".into(),
                })
            }
            (Some(jwks), None) => EdgeKeys::Jwks(jwks),
            (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {
                EdgeKeys::Url(url)
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    var: "EDGE_JWKS_URL",
                    reason: "must be an http(s) URL".into(),
                })
            }
            (None, None) => {
                return Err(ConfigError {
                    var: "EDGE_JWKS_URL",
                    reason: "the edge's keys are needed: set EDGE_JWKS_URL or EDGE_JWKS".into(),
                })
            }
        };
        Ok(Self {
            bind_addr: get("BIND_ADDR").unwrap_or_else(|| "127.0.0.1:8090".into()),
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://notes.db".into()),
            edge_keys,
            edge_issuer: get("EDGE_ISSUER").unwrap_or_else(|| "tollgate-edge".into()),
            edge_audience: get("EDGE_AUDIENCE").unwrap_or_else(|| "notes".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_need_only_the_edge_keys() {
        let s = load(&[(
            "EDGE_JWKS_URL",
            "http://127.0.0.1:8787/.well-known/tollgate-edge-jwks.json",
        )])
        .expect("valid");
        assert_eq!(s.edge_audience, "notes");
        assert_eq!(s.edge_issuer, "tollgate-edge");
        assert_eq!(s.bind_addr, "127.0.0.1:8090");
        assert!(matches!(s.edge_keys, EdgeKeys::Url(_)));
    }

    #[test]
    fn each_bad_setting_is_named() {
        assert_eq!(load(&[]).expect_err("no keys").var, "EDGE_JWKS_URL");
        assert_eq!(
            load(&[("EDGE_JWKS", "{}"), ("EDGE_JWKS_URL", "http://x/")])
                .expect_err("both")
                .var,
            "EDGE_JWKS"
        );
        assert_eq!(
            load(&[("EDGE_JWKS_URL", "file:///etc/passwd")])
                .expect_err("scheme")
                .var,
            "EDGE_JWKS_URL"
        );
    }

    #[test]
    fn every_setting_is_read() {
        let s = load(&[
            ("EDGE_JWKS", r#"{"keys":[]}"#),
            ("BIND_ADDR", "0.0.0.0:9000"),
            ("DATABASE_URL", "sqlite:///tmp/n.db"),
            ("EDGE_ISSUER", "my-edge"),
            ("EDGE_AUDIENCE", "notes-eu"),
        ])
        .expect("valid");
        assert_eq!(s.edge_keys, EdgeKeys::Jwks(r#"{"keys":[]}"#.into()));
        assert_eq!(
            (
                s.bind_addr.as_str(),
                s.database_url.as_str(),
                s.edge_issuer.as_str(),
                s.edge_audience.as_str()
            ),
            ("0.0.0.0:9000", "sqlite:///tmp/n.db", "my-edge", "notes-eu")
        );
    }
}
