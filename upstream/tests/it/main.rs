//! Integration tests of `tollgate-upstream` through real sockets: an axum app on loopback using
//! the `EdgeUser` extractor, called with reqwest, and (for the remote key set) a second local
//! server publishing the edge's JWKS and counting how often it is asked.

mod extractor;
mod helpers;
mod remote;
mod vectors;
