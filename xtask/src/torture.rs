//! `cargo xtask torture [--long] [--soak DURATION] [--report FILE]`: hostile input, races
//! and faults against every store, as one table of figures.
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
//! `SESSION_TORTURE=long` for the full counts. `--soak 30m` runs only the soak instead:
//! the example app under a site's traffic on every store for that long each, with its
//! resources at warm-up and at the end (the suite runs it for 10 s per store).

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

/// The soak: package, test target.
const SOAK: &[(&str, &str)] = &[("session-example", "soak")];

/// What `cargo xtask torture` was asked to run.
pub(crate) struct Options {
    /// The full counts (`SESSION_TORTURE=long`) instead of the quick ones.
    long: bool,
    /// Where to write the table as JSON, if anywhere.
    report: Option<String>,
    /// The soak's length per store (`30m`), when only the soak is to run.
    soak: Option<String>,
}

pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        long: false,
        report: None,
        soak: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--long" => options.long = true,
            "--report" => {
                options.report = Some(args.next().ok_or("--report needs a file")?.clone());
            }
            "--soak" => {
                let length = args.next().ok_or("--soak needs a duration, such as 30m")?;
                humantime::parse_duration(length)
                    .map_err(|err| format!("--soak {length}: {err}"))?;
                options.soak = Some(length.clone());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

pub(crate) fn run(options: Options) -> Result<(), String> {
    let Options { long, report, soak } = options;
    let root = workspace_root();
    let (rows, broken, tests, mode) = match &soak {
        Some(length) => (
            Vec::new(),
            Vec::new(),
            SOAK,
            vec![("SESSION_SOAK", length.as_str())],
        ),
        None => {
            let mode = if long { "long" } else { "quick" };
            let env = [("SESSION_TORTURE", mode)];
            let targets = conformance::workspace_targets(&root)?;
            let (rows, broken) = conformance::collect(&targets, &["torture_".to_owned()], &env)?;
            conformance::print_table(&rows);
            (rows, broken, FAULT_TESTS, vec![("SESSION_TORTURE", mode)])
        }
    };
    let label = soak.as_deref().map_or_else(
        || mode[0].1.to_owned(),
        |length| format!("soak of {length} per store"),
    );

    let mut fault_rows: Vec<Row> = Vec::new();
    let mut fault_failures = Vec::new();
    for (package, test) in tests {
        println!("running {package} ({test}), {label}");
        let (rows, passed) = figures_of(&root, package, test, &mode)?;
        if !passed {
            fault_failures.push(format!("{package} ({test})"));
        } else if rows.is_empty() {
            println!("  (no figures printed)");
        }
        fault_rows.extend(rows);
    }
    println!("\nfaults and store-specific scenarios ({label}):");
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

/// Runs one test target with `env`, one test at a time, and returns the rows of the
/// `figure: <store> | <scenario> | <figure>` lines it printed and whether it passed
/// (printing what failed when it did not).
fn figures_of(
    root: &std::path::Path,
    package: &str,
    test: &str,
    env: &[(&str, &str)],
) -> Result<(Vec<Row>, bool), String> {
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
        .current_dir(root)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| crate::cannot_run("cargo", &e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let outcome = if output.status.success() {
        "pass"
    } else {
        "fail"
    };
    let mut rows = Vec::new();
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
        rows.push(Row {
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
    }
    Ok((rows, output.status.success()))
}
