//! `cargo xtask conformance`: runs the conformance suite against every store of the
//! workspace (or one adapter crate) and prints one table, store × case.
//!
//! Each store's `tests/conformance*.rs` binary is run through `cargo test` with
//! `SESSION_CONFORMANCE_REPORT` pointing at a file; the suite appends one JSON line per
//! case, which this task gathers.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::ci::workspace_root;

/// One `cargo test` invocation that runs a conformance binary.
pub(crate) struct Target {
    label: String,
    args: Vec<String>,
}

/// One case's outcome for one store.
pub(crate) struct Row {
    pub(crate) suite: String,
    pub(crate) case: String,
    pub(crate) outcome: String,
    pub(crate) reason: Option<String>,
    pub(crate) figures: Vec<String>,
}

/// What `cargo xtask conformance` was asked to run.
#[derive(Default)]
pub(crate) struct Options {
    adapter: Option<PathBuf>,
    cases: Vec<String>,
    report: Option<PathBuf>,
}

pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().cloned().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--adapter" => options.adapter = Some(PathBuf::from(value("--adapter")?)),
            "--case" => options.cases.push(value("--case")?),
            "--report" => options.report = Some(PathBuf::from(value("--report")?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

pub(crate) fn run(options: Options) -> Result<(), String> {
    let root = workspace_root();
    let targets = match &options.adapter {
        Some(path) => vec![adapter_target(path)?],
        None => workspace_targets(&root)?,
    };
    let (rows, broken) = collect(&targets, &options.cases, &[])?;
    print_table(&rows);
    if let Some(path) = &options.report {
        write_report(path, &rows, &broken)?;
        println!("report written to {}", path.display());
    }
    verdict(&rows, &broken)
}

/// Fails when any case failed or a target could not run at all.
pub(crate) fn verdict(rows: &[Row], broken: &[String]) -> Result<(), String> {
    let failed = rows.iter().filter(|r| r.outcome == "fail").count();
    if failed > 0 || !broken.is_empty() {
        return Err(format!(
            "{failed} case(s) failed{}",
            if broken.is_empty() {
                String::new()
            } else {
                format!("; could not run: {}", broken.join(", "))
            }
        ));
    }
    if rows.is_empty() {
        return Err("no conformance case ran".into());
    }
    Ok(())
}

/// Runs each target's conformance binary and gathers the rows its suite reported; also
/// returns the targets that failed before reporting anything (a build failure, say).
pub(crate) fn collect(
    targets: &[Target],
    cases: &[String],
    env: &[(&str, &str)],
) -> Result<(Vec<Row>, Vec<String>), String> {
    let root = workspace_root();
    let lines_file = root
        .join("target")
        .join(format!("conformance-{}.jsonl", std::process::id()));
    fs::create_dir_all(root.join("target")).map_err(|e| crate::explain(&e))?;
    let _ = fs::remove_file(&lines_file);

    let mut broken = Vec::new();
    for target in targets {
        println!("running the conformance suite: {}", target.label);
        let before = read_rows(&lines_file).len();
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .args(&target.args)
            .current_dir(&root)
            .env("SESSION_CONFORMANCE_REPORT", &lines_file);
        if cases.is_empty() {
            command.env_remove("SESSION_CONFORMANCE_CASES");
        } else {
            command.env("SESSION_CONFORMANCE_CASES", cases.join(","));
        }
        command.envs(env.iter().copied());
        let output = command
            .output()
            .map_err(|e| crate::cannot_run("cargo", &e))?;
        let produced = read_rows(&lines_file).len() - before;
        if produced == 0 {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() {
                // The binary chose not to run the suite (e.g. no server configured); show why.
                let why = skip_reasons(stdout.lines().chain(stderr.lines()));
                println!(
                    "  no cases ran: {}",
                    if why.is_empty() {
                        "nothing reported".to_owned()
                    } else {
                        why.join(" / ")
                    }
                );
            } else {
                println!("  FAILED before running any case ({}):", output.status);
                for line in stderr
                    .lines()
                    .rev()
                    .take(25)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    println!("    {line}");
                }
                broken.push(target.label.clone());
            }
        }
    }
    let rows = read_rows(&lines_file);
    let _ = fs::remove_file(&lines_file);
    Ok((rows, broken))
}

/// The reasons a binary gave for skipping, each once: the text after `... skipped: ` of
/// its test lines (every case of a suite that did not run gives the same one), or a line
/// that shouts `SKIP`.
fn skip_reasons<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut reasons = Vec::new();
    for line in lines {
        let reason = match line.split_once(" ... skipped: ") {
            Some((_, reason)) => reason,
            None if line.contains("SKIP") => line,
            None => continue,
        };
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    reasons
}

fn adapter_target(path: &Path) -> Result<Target, String> {
    let manifest = path.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(format!("{} has no Cargo.toml", path.display()));
    }
    if !path.join("tests/conformance.rs").is_file() {
        return Err(format!(
            "{} has no tests/conformance.rs calling session_testkit::Suite (see docs/writing-an-adapter.md)",
            path.display()
        ));
    }
    Ok(Target {
        label: path.display().to_string(),
        args: vec![
            "test".into(),
            "--manifest-path".into(),
            manifest.display().to_string(),
            "--test".into(),
            "conformance".into(),
        ],
    })
}

/// Every test target named `conformance*` of the workspace's packages.
pub(crate) fn workspace_targets(root: &Path) -> Result<Vec<Target>, String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .map_err(|e| crate::cannot_run("cargo metadata", &e))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata: {}", crate::explain(&e)))?;
    let mut targets = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(name) = package["name"].as_str() else {
            continue;
        };
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_test = target["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"));
            let Some(test) = target["name"].as_str() else {
                continue;
            };
            if is_test && test.starts_with("conformance") {
                targets.push(Target {
                    label: format!("{name} ({test})"),
                    args: ["test", "-p", name, "--all-features", "--test", test]
                        .map(String::from)
                        .to_vec(),
                });
            }
        }
    }
    if targets.is_empty() {
        return Err("no conformance test target found in the workspace".into());
    }
    Ok(targets)
}

fn read_rows(path: &Path) -> Vec<Row> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| Row {
            suite: v["suite"].as_str().unwrap_or("?").to_owned(),
            case: v["case"].as_str().unwrap_or("?").to_owned(),
            outcome: v["outcome"].as_str().unwrap_or("?").to_owned(),
            reason: v["reason"].as_str().map(str::to_owned),
            figures: v["figures"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

pub(crate) fn print_table(rows: &[Row]) {
    let mut suites: Vec<&str> = Vec::new();
    let mut cases: Vec<&str> = Vec::new();
    let mut cells: BTreeMap<(&str, &str), &Row> = BTreeMap::new();
    for row in rows {
        if !suites.contains(&row.suite.as_str()) {
            suites.push(&row.suite);
        }
        if !cases.contains(&row.case.as_str()) {
            cases.push(&row.case);
        }
        cells.insert((row.case.as_str(), row.suite.as_str()), row);
    }
    // Reasons are numbered once each and referenced from the cells.
    let mut reasons: Vec<String> = Vec::new();
    let case_width = cases.iter().map(|c| c.len()).max().unwrap_or(4).max(4);
    let width = suites.iter().map(|s| s.len()).max().unwrap_or(4).max(9);
    print!("\n{:case_width$}", "case");
    for suite in &suites {
        print!("  {suite:>width$}");
    }
    println!();
    for case in &cases {
        print!("{case:case_width$}");
        for suite in &suites {
            let cell = match cells.get(&(*case, *suite)) {
                None => "-".to_owned(),
                Some(row) => {
                    let label = match row.outcome.as_str() {
                        "pass" => "pass".to_owned(),
                        "fail" => "FAIL".to_owned(),
                        other => other.to_owned(),
                    };
                    let note = row
                        .reason
                        .clone()
                        .or_else(|| (!row.figures.is_empty()).then(|| row.figures.join("; ")));
                    match &note {
                        Some(reason) => {
                            let n = reasons.iter().position(|r| r == reason).unwrap_or_else(|| {
                                reasons.push(reason.clone());
                                reasons.len() - 1
                            });
                            format!("{label}[{}]", n + 1)
                        }
                        None => label,
                    }
                }
            };
            print!("  {cell:>width$}");
        }
        println!();
    }
    if !reasons.is_empty() {
        println!();
        for (i, reason) in reasons.iter().enumerate() {
            println!("[{}] {reason}", i + 1);
        }
    }
    println!();
    for suite in &suites {
        let count = |o: &str| {
            rows.iter()
                .filter(|r| r.suite == *suite && r.outcome == o)
                .count()
        };
        println!(
            "{suite}: {} passed, {} failed, {} skipped",
            count("pass"),
            count("fail"),
            count("skip")
        );
    }
    let count = |o: &str| rows.iter().filter(|r| r.outcome == o).count();
    println!(
        "total: {} passed, {} failed, {} skipped ({} stores × {} cases)",
        count("pass"),
        count("fail"),
        count("skip"),
        suites.len(),
        cases.len()
    );
}

pub(crate) fn write_report(path: &Path, rows: &[Row], broken: &[String]) -> Result<(), String> {
    let results: Vec<Value> = rows
        .iter()
        .map(
            |r| json!({"store": r.suite, "case": r.case, "outcome": r.outcome, "reason": r.reason}),
        )
        .collect();
    let count = |o: &str| rows.iter().filter(|r| r.outcome == o).count();
    let report = json!({
        "results": results,
        "totals": {"passed": count("pass"), "failed": count("fail"), "skipped": count("skip")},
        "could_not_run": broken,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| crate::explain(&e))?;
    fs::write(path, text)
        .map_err(|e| format!("cannot write {}: {}", path.display(), crate::explain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_are_given_once_each() {
        let output = "\nrunning 3 tests\n\
            test a ... skipped: SESSION_TEST_MONGODB_URL not set\n\
            test b ... skipped: SESSION_TEST_MONGODB_URL not set\n\
            test c ... ok (1ms)\n\
            SKIPPED: a line from a binary with a harness of its own\n\
            test result: ok. 1 passed, 0 failed, 2 skipped, 0 filtered out\n";
        assert_eq!(
            skip_reasons(output.lines()),
            [
                "SESSION_TEST_MONGODB_URL not set",
                "SKIPPED: a line from a binary with a harness of its own"
            ]
        );
    }
}
