//! Tollgate's pure core, shared by the origin (native) and the edge Worker (wasm32).
//!
//! Everything both sides must agree on lives here exactly once, so the edge can never drift from
//! the origin: the access-token claims, JWT signing and verification with algorithms pinned per
//! key, the Redis key schema, the validation decision, the edge's identity assertion, the API error
//! codes and the Upstash REST wire types. No I/O, no async runtime and no clock: callers pass `now` in.
//!
//! # Layout
//! - [`claims`]: the access-token claim set.
//! - [`config`]: the configuration rules the origin and the edge share ([`config::Vars`]:
//!   empty is unset, `JWT_SECRET`, `REDIS_KEY_PREFIX`, issuer and audience) and [`config::ConfigError`].
//! - [`json`]: the strict JSON reader (serde) for every JSON `shared` parses.
//! - [`jwt`]: compact JWS parsing, verification (EdDSA, HS256) and signing; key sets and JWKS.
//! - [`keys`]: the Redis key schema, one function per key.
//! - [`records`]: the values stored under those keys (compact `.`-separated text, not JSON).
//! - [`decision`]: the five-layer validation decision from claims plus one Redis lookup, and
//!   the one bearer check both hops run ([`decision::check_bearer`]).
//! - [`assertion`]: the edge's signed identity assertion that upstreams verify without Redis.
//! - [`error`]: the API error codes and the JSON error body.
//! - [`upstash`]: Upstash REST request/response types and the validation pipeline.
//! - [`digest`]: SHA-256 in hex, for hashes and ids that must not reveal their input.
//! - [`redact`]: connection URLs with their credentials removed, for `Debug` and logs.
//! - Feature `openapi` (the origin only): `utoipa::ToSchema` on the wire types it documents.
//! - `hostile` (feature `hostile-cases`, tests only): the table of hostile tokens every
//!   verifier is tested against.

pub mod assertion;
pub mod claims;
pub mod config;
pub mod decision;
pub mod digest;
pub mod error;
#[cfg(feature = "hostile-cases")]
pub mod hostile;
pub mod json;
pub mod jwt;
pub mod keys;
pub mod records;
pub mod redact;
pub mod upstash;

pub use claims::AccessClaims;
pub use decision::{decide, Decision, Identity, Rejection};
pub use error::{ErrorBody, ErrorCode};
pub use keys::KeySchema;
