//! Integration tests for the origin, over real Redis and real SQLite/PostgreSQL. One binary;
//! each behaviour runs once per database backend.

mod helpers;

mod accounts;
mod cluster;
mod deletion;
mod entrypoint;
mod eviction;
mod exposition;
mod faults;
mod hostile;
mod keys;
mod limits;
mod logout;
mod logs;
mod memory;
mod metrics;
mod oauth;
mod openapi;
mod pages;
mod refresh;
mod tokens;
