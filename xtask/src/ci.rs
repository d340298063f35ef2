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

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("`ci` takes no arguments, got {args:?}"));
    }
    let script = workspace_root().join(".ci/run");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .map_err(|err| format!("cannot run {}: {err}", script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", script.display()))
    }
}
