//! `cargo xtask ci`: runs `.ci/run`, so local runs and CI cannot drift apart.

use std::path::PathBuf;
use std::process::Command;

/// The workspace root (the parent of this crate's folder).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Checks that no arguments were given: CI runs one way only, so a local run is the same.
pub(crate) fn parse(args: &[String]) -> Result<(), String> {
    match args.first() {
        None => Ok(()),
        Some(arg) => Err(format!("`ci` takes no arguments, got {arg}")),
    }
}

pub(crate) fn run((): ()) -> Result<(), String> {
    let script = workspace_root().join(".ci/run");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .map_err(|err| crate::cannot_run(format!("bash {}", script.display()), &err))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", script.display()))
    }
}
