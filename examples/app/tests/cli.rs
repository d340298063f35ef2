//! The example's command line: `--help` and `-h` print the usage on standard output with
//! status 0 and start no server; a wrong argument prints the usage on standard error with
//! a non-zero status.

#[path = "../../../xtask/tests/support/cli.rs"]
mod cli;

use cli::{answers_help, help, refuses};

const EXAMPLE: &str = env!("CARGO_BIN_EXE_session-example");

#[test]
fn help_prints_the_usage_and_exits_0() {
    // `--addr` first: had the help not stopped the program, it would listen there and the
    // test would hang rather than pass.
    answers_help(EXAMPLE, "session-example", &["--addr", "127.0.0.1:0"]);
    assert!(help(EXAMPLE, &["--help"], "session-example").contains("--config FILE"));
}

#[test]
fn a_wrong_argument_prints_the_usage_on_stderr() {
    refuses(
        EXAMPLE,
        "session-example",
        &[
            (&["--bogus"], "unknown argument --bogus"),
            (&["serve"], "unknown argument serve"),
            (&["--addr"], "--addr needs an address"),
            (&["--addr", "not-an-address"], "--addr not-an-address"),
        ],
    );
}

/// A store that cannot open stops the app with the whole cause chain on standard error,
/// not only the first part of it ("cannot create the session folder" and why).
#[test]
fn a_store_that_cannot_open_is_reported_with_its_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A regular file where the store's folder should be: the folder cannot be created.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"").expect("write");
    let output = std::process::Command::new(EXAMPLE)
        .args(["--addr", "127.0.0.1:0"])
        .env("SESSION__TYPE", "file")
        .env("SESSION__ADAPTER__FILE__PATH", blocker.join("session"))
        .output()
        .expect("run the example");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("session-example: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(line.contains("cannot create the session folder"), "{line}");
    assert!(
        line.contains("Not a directory") || line.contains("os error 20"),
        "the cause is missing: {line}"
    );
}
