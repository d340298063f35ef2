//! `cargo xtask torture [--long] [--report FILE]`: hostile input, races and faults against
//! every store, as one table of figures.
//!
//! 1. The `torture_*` conformance cases against every store of the workspace (tampered
//!    cookies, never-issued ids, oversize values, concurrent requests, slow requests racing
//!    a logout, `cycle_id` racing a delete, gc while sessions are touched).
//! 2. The store-specific fault tests (file writer SIGKILLed mid-write, a full disk by file
//!    size limit and a loop-mounted ext4 filled to its last block, Redis paused and
//!    killed with and without an append-only file, a Redis Cluster master killed, SQL
//!    connections killed server-side, whole PostgreSQL and MariaDB servers SIGKILLed
//!    under load, corrupt records, 1,000 requests abandoned by their clients on every
//!    store) and the id generator check. They print
//!    `figure: <store> | <scenario> | <figure>` lines.
//!
//! The quick form of all of it runs in the normal test suite; `--long` sets
//! `SESSION_TORTURE=long` for the full counts.

use std::process::Command;

use crate::ci::workspace_root;
use crate::conformance::{self, Row};

/// The fault tests: package, test target.
const FAULT_TESTS: &[(&str, &str)] = &[
    ("session-core", "ids"),
    ("session-file", "processes"),
    ("session-file", "full_disk"),
    ("session-redis", "faults"),
    ("session-redis", "cluster_failover"),
    ("session-db", "corruption"),
    ("session-db", "server_crash"),
    ("session-example", "disconnects"),
];

/// What `cargo xtask torture` was asked to run.
pub(crate) struct Options {
    /// The full counts (`SESSION_TORTURE=long`) instead of the quick ones.
    long: bool,
    /// Where to write the table as JSON, if anywhere.
    report: Option<String>,
}

pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        long: false,
        report: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--long" => options.long = true,
            "--report" => {
                options.report = Some(args.next().ok_or("--report needs a file")?.clone());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

pub(crate) fn run(options: Options) -> Result<(), String> {
    let Options { long, report } = options;
    let mode = if long { "long" } else { "quick" };
    let env = [("SESSION_TORTURE", mode)];
    let root = workspace_root();

    let targets = conformance::workspace_targets(&root)?;
    let (rows, broken) = conformance::collect(&targets, &["torture_".to_owned()], &env)?;
    conformance::print_table(&rows);

    let mut fault_rows: Vec<Row> = Vec::new();
    let mut fault_failures = Vec::new();
    for (package, test) in FAULT_TESTS {
        println!("running the fault test {package} ({test}), {mode}");
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "test",
                "-p",
                package,
                "--all-features",
                "--test",
                test,
                "--",
                "--nocapture",
                "--test-threads=1",
            ])
            .current_dir(&root)
            .envs(env)
            .output()
            .map_err(|e| crate::cannot_run("cargo", &e))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let outcome = if output.status.success() {
            "pass"
        } else {
            "fail"
        };
        let mut found = false;
        for line in stdout.lines() {
            // libtest may print its `test name ... ` prefix on the same line as the output.
            let Some(rest) = line
                .find("figure: ")
                .map(|at| &line[at + "figure: ".len()..])
            else {
                continue;
            };
            let mut parts = rest.splitn(3, " | ");
            let (Some(store), Some(scenario), Some(figure)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            found = true;
            fault_rows.push(Row {
                suite: store.to_owned(),
                case: scenario.to_owned(),
                outcome: outcome.to_owned(),
                reason: None,
                figures: vec![figure.to_owned()],
            });
        }
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            println!("  FAILED ({}):", output.status);
            for line in stdout
                .lines()
                .chain(stderr.lines())
                .filter(|l| l.contains("panicked") || l.contains("FAILED"))
                .take(10)
            {
                println!("    {line}");
            }
            fault_failures.push(format!("{package} ({test})"));
        } else if !found {
            println!("  (no figures printed)");
        }
    }
    println!("\nfaults and store-specific scenarios ({mode}):");
    let width = fault_rows.iter().map(|r| r.case.len()).max().unwrap_or(8);
    for row in &fault_rows {
        println!(
            "  {:<8} {:<width$}  {:<4}  {}",
            row.suite,
            row.case,
            row.outcome,
            row.figures.join("; ")
        );
    }

    let mut all = rows;
    all.extend(fault_rows);
    if let Some(path) = report {
        conformance::write_report(std::path::Path::new(&path), &all, &broken)?;
        println!("report written to {path}");
    }
    let mut broken = broken;
    broken.extend(fault_failures);
    conformance::verdict(&all, &broken)
}
