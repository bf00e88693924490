//! The origin's pure helpers, one module a job. Nothing here does I/O or knows HTTP; the route
//! handlers map what fails here to [`ApiError`](crate::error::ApiError).
//!
//! # Layout
//! - `validate`: input rules and limits (email, password, free text) failing with
//!   [`InvalidInput`]; email normalisation.
//! - `refresh`: [`RefreshSecret`] and [`RefreshHash`] as distinct types, and the one rule for a
//!   presented secret ([`classify_refresh`]).
//! - `seal`: sealing a refresh's answer for the holder of the presented secret.
//! - `clock`: the one clock ([`now`], [`now_ms`]) and [`rfc3339`].
//! - `ids`: [`new_id`].

mod clock;
mod ids;
mod refresh;
mod seal;
mod validate;

pub use clock::{now, now_ms, rfc3339};
pub use ids::new_id;
pub use refresh::{
    classify_refresh, hash_refresh_secret, new_refresh_secret, Presented, RefreshHash,
    RefreshSecret, REFRESH_SECRET_PREFIX,
};
pub use seal::{open_for_secret, seal_for_secret};
pub use validate::{
    clip, normalize_email, optional_text, validate_email, validate_password, InvalidInput,
    MAX_DEVICE_NAME_CHARS, MAX_EMAIL_BYTES, MAX_NAME_CHARS, MAX_PASSWORD_BYTES,
    MAX_REFRESH_TOKEN_BYTES, MAX_USER_AGENT_CHARS, MIN_PASSWORD_CHARS,
};
