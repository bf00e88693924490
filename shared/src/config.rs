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
}
