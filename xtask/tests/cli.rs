//! The command line of `cargo xtask`: every task answers `--help` and `-h` with its usage
//! on standard output and status 0 without running anything, and a wrong argument gets
//! the usage on standard error and a non-zero status.

mod support;

use support::cli::{help, refusal, refuses};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// The tasks `cargo xtask help` lists.
const TASKS: [&str; 5] = ["ci", "conformance", "new-adapter", "torture", "bench"];

#[test]
fn the_overview_answers_help() {
    for args in [&[][..], &["help"], &["--help"], &["-h"]] {
        let text = help(XTASK, args, "cargo xtask <task>");
        for task in TASKS {
            assert!(
                text.contains(&format!("\n  {task} ")),
                "{task} missing: {text}"
            );
        }
    }
}

#[test]
fn every_task_answers_help_without_running() {
    for task in TASKS {
        let name = format!("cargo xtask {task}");
        for args in [
            vec![task, "--help"],
            vec![task, "-h"],
            vec!["help", task],
            // A help flag after other arguments still only prints the help: `ci` would
            // otherwise start `.ci/run`, and `bench` a release build.
            vec![task, "--quick", "--help"],
        ] {
            help(XTASK, &args, &name);
        }
    }
    assert!(
        help(XTASK, &["conformance", "--help"], "cargo xtask conformance")
            .contains("--adapter PATH")
    );
    assert!(help(XTASK, &["torture", "-h"], "cargo xtask torture").contains("--long"));
}

#[test]
fn a_wrong_argument_gets_the_usage_on_stderr() {
    // `bench` is not here: its options pass through to the benchmark binary, which checks
    // them after the release build (its own test covers that check).
    let cases: [(&[&str], &str); 7] = [
        (&["no-such-task"], "cargo xtask <task>"),
        (&["help", "no-such-task"], "cargo xtask <task>"),
        (&["ci", "--quick"], "cargo xtask ci"),
        (&["conformance", "--bogus"], "cargo xtask conformance"),
        (&["conformance", "--case"], "cargo xtask conformance"),
        (&["new-adapter"], "cargo xtask new-adapter"),
        (&["torture", "--bogus"], "cargo xtask torture"),
    ];
    for (args, name) in cases {
        refusal(XTASK, args, name);
    }
    refuses(
        XTASK,
        "cargo xtask new-adapter",
        &[(&["new-adapter", "foo", "--bogus"], "unknown option --bogus")],
    );
}
