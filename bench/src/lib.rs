//! Tollgate's benchmark suite, run by `scripts/bench.sh` (see `BENCHMARKS.md`).
//!
//! It measures what every API request pays for instant revocation against the physical limits
//! of the same machine: an HTTP route doing nothing, and one doing a single Redis `GET` through
//! the origin's own Redis connection. Benches are not tests: nothing here runs in `cargo test`.
//!
//! # Layout
//! - `benches/core.rs`: criterion micro-benchmarks of `tollgate-shared` (verify, decide, sign)
//!   and of Argon2id with the origin's parameters.
//! - [`target`]: the real origin (release build, SQLite by default) started in-process with the
//!   two limit routes merged into its router, plus fast ways to create users and sessions.
//! - [`wrk`]: the load generator (Debian's `wrk`) and its Lua scripts, one JSON result per run.
//! - [`redis_probe`]: a private `redis-server` on a free port, `MONITOR` to count commands, and
//!   `INFO`/`MEMORY USAGE` readings.
//! - [`origin_suite`]: the origin figures — throughput and latency per route and concurrency,
//!   Redis round trips, bytes per session, device scaling, Argon2id and the async workers.
//! - [`edge_suite`]: the Worker in `wrangler dev` — protected vs pass-through, wasm size.
//! - [`workerd_suite`]: the Worker under raw workerd beside a bare pass-through Worker and a
//!   JavaScript one, CPU per request above that floor (`scripts/bench-edge.sh`).
//! - [`report`]: merges the parts into `bench/results/latest.json`, judges the targets, and
//!   writes every table the same way ([`report::Table`]).
//!
//! # Adding a suite
//! 1. Measure in a module of its own that writes a JSON part; give each wrk run its `route`
//!    and the `label` the report shows (see `origin_suite::LoadRow`).
//! 2. Add the part as an `Option` field of [`report::Latest`] and a `--part` flag of the
//!    `report` command (and a step in `scripts/bench.sh`).
//! 3. In [`report::render`], push the suite's tables: for load runs, [`report::medians`] picks
//!    the median round per route and concurrency and [`report::load_cells`] fills the common
//!    columns; add the suite's own columns after them. Targets it can judge go in
//!    [`report::judge`] as [`report::Target`]s.
//!
//! `tollgate-bench render` re-prints a stored run, to check a change of the report.
//! - [`machine`]: what the figures were measured on, and the load while they were.

pub mod edge_suite;
pub mod machine;
pub mod origin_suite;
pub mod redis_probe;
pub mod report;
pub mod target;
pub mod workerd_suite;
pub mod wrk;

/// The password every benchmark user has.
pub const PASSWORD: &str = "correct horse battery";
