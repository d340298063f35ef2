//! Project automation, run as `cargo xtask <task>`.
//!
//! - `ci`: what CI runs (`.ci/run`): services, fmt, clippy, the whole test suite.
//! - `conformance`: the conformance suite against every store here, or a third-party
//!   adapter crate, as one table.
//! - `new-adapter NAME`: scaffolds a `session-NAME` store crate with its conformance test.
//! - `bench`: the HTTP benchmark against tower-sessions (release build, on demand); it
//!   writes the full report to `docs/benchmarks.md` and its summary into the README.
//! - `torture`: hostile input, races and faults against every store, as one table.

mod bench;
mod ci;
mod conformance;
mod new_adapter;
mod torture;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  ci                         start services if down, then fmt --check, clippy -D warnings and
                             the whole test suite (what CI runs)
  conformance [options]      run the conformance suite and print one table: store x case
      --adapter PATH         against the adapter crate at PATH (default: every store here)
      --case NAME            only this case (repeatable)
      --report FILE          also write the results as JSON to FILE
  new-adapter NAME [--path DIR]
                             scaffold the crate session-NAME (in this workspace, or at DIR)
  torture [--long] [--report FILE]
                             hostile input, races and faults against every store: one table
                             of figures (quick by default; --long for the full counts)
  bench [options]            HTTP benchmark, ours vs tower-sessions, every store (release build);
                             --quick, --rounds N, --duration SECONDS, --stores a,b, --scale, --scale-only,
                             --no-docs; writes target/bench/results.{md,json} and ratios.svg, and after
                             a full run docs/benchmarks.md, docs/bench-ratios.svg and the README's summary
      --check                whether the README's summary matches docs/benchmarks.md (measures nothing)
      --update-readme        rewrite the README's summary from docs/benchmarks.md (measures nothing)
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("ci") => ci::run(&rest),
        Some("conformance") => conformance::run(&rest),
        Some("new-adapter") => new_adapter::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("torture") => torture::run(&rest),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
