//! `cargo xtask bench`: builds the example app, the tower-sessions and actix-session peers
//! and the load generator in release mode, then runs `session-bench` with the given options. `--check`
//! and `--update-readme` measure nothing, so they run a debug build of `session-bench`
//! alone instead of building the whole benchmark in release mode.

use std::path::PathBuf;
use std::process::Command;

use crate::ci::workspace_root;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if args
        .iter()
        .any(|a| a == "--check" || a == "--update-readme")
    {
        let status = Command::new(&cargo)
            .args([
                "run",
                "--quiet",
                "-p",
                "session-bench",
                "--bin",
                "session-bench",
                "--",
            ])
            .args(args)
            .current_dir(&root)
            .status()
            .map_err(|e| crate::cannot_run("cargo", &e))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!(
                "session-bench {} failed ({status})",
                args.join(" ")
            ))
        };
    }
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "session-example",
            "-p",
            "session-bench",
        ])
        .current_dir(&root)
        .status()
        .map_err(|e| crate::cannot_run("cargo", &e))?;
    if !status.success() {
        return Err(format!("release build failed ({status})"));
    }
    // Where cargo put the build: `CARGO_TARGET_DIR` (relative to the root) if set.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(PathBuf::from(dir)));
    let bench = target.join("release/session-bench");
    let status = Command::new(&bench)
        .args(args)
        .current_dir(&root)
        .status()
        .map_err(|e| crate::cannot_run(bench.display(), &e))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the benchmark failed ({status})"))
    }
}
