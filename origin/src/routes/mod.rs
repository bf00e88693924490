//! HTTP routes, one module per area, merged once in [`crate::app::router`].

pub mod json;
pub mod meta;
pub mod oauth;
pub mod sessions;
pub mod users;
