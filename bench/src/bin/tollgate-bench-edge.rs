//! The edge Worker's cost under raw workerd and `wrangler dev` (issue 8 §6), run by
//! `scripts/bench-edge.sh`: prints a Markdown table (medians over rounds) and writes every run
//! as JSON.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tollgate_bench::workerd_suite::{self, Config};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    workerd: PathBuf,
    #[arg(long)]
    esbuild: PathBuf,
    /// `LABEL=DIR` of a worker-build bundle; repeat for before/after.
    #[arg(long = "rust", required = true)]
    rust: Vec<String>,
    /// `LABEL=DIR` of a pass-through bundle measured like the floor (every route passes, a
    /// forged token too): the bare workers-rs Worker (`bench/wasm-bare/build`), or a variant of
    /// it. Repeatable.
    #[arg(long = "bare")]
    bare: Vec<String>,
    /// Only these routes (`health`, `protected`, `forged`); all by default.
    #[arg(long, value_delimiter = ',')]
    routes: Vec<String>,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    levels: Vec<u32>,
    #[arg(long)]
    no_wrangler: bool,
    #[arg(long)]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bundles = |list: &[String], flag: &str| {
        list.iter()
            .map(|r| {
                let (label, dir) = r
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--{flag} wants LABEL=DIR, got {r}"))?;
                Ok((label.to_owned(), PathBuf::from(dir)))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let rust = bundles(&args.rust, "rust")?;
    let bare = bundles(&args.bare, "bare")?;
    let cfg = Config {
        root: args.root,
        duration: Duration::from_secs(args.seconds),
        rounds: args.rounds,
        levels: args.levels,
        rust,
        bare,
        routes: args.routes,
        wrangler: !args.no_wrangler,
        workerd: args.workerd,
        esbuild: args.esbuild,
        workdir: std::env::temp_dir(),
    };
    let report = workerd_suite::run(&cfg).await?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("{}", workerd_suite::markdown(&report));
    Ok(())
}
