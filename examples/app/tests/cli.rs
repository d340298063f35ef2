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
