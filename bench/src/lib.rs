//! Tollgate's benchmark suite, run by `scripts/bench.sh` (see `BENCHMARKS.md`).
//!
//! It measures what every API request pays for instant revocation against the physical limits
//! of the same machine: an HTTP route doing nothing, and one doing a single Redis `GET` through
//! the origin's own Redis connection. Benches are not tests: nothing here runs in `cargo test`.
//!
//! # Layout
//! - `benches/core.rs`: criterion micro-benchmarks of `tollgate-shared` (verify, decide, sign)
//!   and of Argon2id with the origin's parameters.
//! - `src/bin/tollgate-bench.rs`: the command line of every suite below (`origin`, `workerd`,
//!   `report`, `render`); `src/bin/tollgate-replica-window.rs`: the revocation window
//!   with read replicas (`scripts/bench-replicas.sh`); `src/bin/tollgate-bytes-per-session.rs`:
//!   Redis bytes per session, the seed's layout against ours (`scripts/bytes-per-session.sh`).
//! - `edge-js/`: the JavaScript Workers the workerd suite measures beside ours (the bare
//!   pass-through floor, and the same job with `jose` and `@upstash/redis`); `wasm-bare/`: the
//!   same pass-through in workers-rs, built by `scripts/build-edge.sh --bare`.
//! - [`target`]: the real origin (release build, SQLite by default) started in-process with the
//!   two limit routes merged into its router, plus fast ways to create users and sessions (the
//!   API calls are `tollgate-testkit`'s).
//! - [`wrk`]: the load generator (Debian's `wrk`) and its Lua scripts, one JSON result per run,
//!   and the [`wrk::Plan`] every suite runs it by (duration, rounds, levels).
//! - [`redis_probe`]: a private `redis-server` on a free port, `MONITOR` to count commands, and
//!   `INFO`/`MEMORY USAGE` readings.
//! - [`origin_suite`]: the origin figures — throughput and latency per route and concurrency,
//!   Redis round trips, bytes per session, device scaling, Argon2id and the async workers.
//! - [`workerd_suite`]: the Worker under raw workerd beside a bare pass-through Worker and a
//!   JavaScript one, CPU per request above that floor, and under `wrangler dev`; wasm sizes
//!   (`scripts/bench-edge.sh`).
//! - [`report`]: merges the parts into `bench/results/latest.json` and writes every table the
//!   same way ([`report::Table`]). It judges nothing: BENCHMARKS.md reads the figures against
//!   the targets of the issues that set them.
//! - [`machine`]: what the figures were measured on, the load while they were, and CPU time
//!   read from `/proc` (of this process's threads, of a process, of a process group).
//!
//! # Adding a suite
//! 1. Measure in a module of its own that writes a JSON part; run wrk by a [`wrk::Plan`] and
//!    give each run its `route` and the `label` the report shows (see `origin_suite::LoadRow`).
//! 2. Add the part as an `Option` field of [`report::Latest`] and a flag of the `report`
//!    command (like `--workerd`), and a step in `scripts/bench.sh`.
//! 3. In [`report::render`], push the suite's [`report::Table`]s: for wrk rows,
//!    [`report::medians`] picks the median round per route and concurrency and
//!    [`report::load_cells`] fills the common columns (of `origin_suite::LoadRow`s); the workerd
//!    suite writes its own ([`workerd_suite::markdown`]).
//!
//! `tollgate-bench render [LATEST_JSON]` re-prints a stored run, to check a change of the report
//! (`cargo run -q -p tollgate-bench -- render | diff - bench/results/latest.md`; a test checks
//! the committed pair).

pub mod machine;
pub mod origin_suite;
pub mod redis_probe;
pub mod report;
pub mod target;
pub mod workerd_suite;
pub mod wrk;

/// The password every benchmark user has (the test trees' own).
pub use tollgate_testkit::PASSWORD;
