//! `cargo xtask bench`: builds the example app, the tower-sessions peer and the load
//! generator in release mode, then runs `session-bench` with the given options.

use std::process::Command;

use crate::ci::workspace_root;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
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
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("release build failed ({status})"));
    }
    let bench = root.join("target/release/session-bench");
    let status = Command::new(&bench)
        .args(args)
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bench.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the benchmark failed ({status})"))
    }
}
