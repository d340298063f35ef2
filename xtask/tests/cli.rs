//! The command line of `cargo xtask`: every task answers `--help` and `-h` with its usage
//! on standard output and status 0 without running anything, and a wrong argument gets
//! the usage on standard error and a non-zero status.

use std::process::{Command, Output};

/// The tasks `cargo xtask help` lists.
const TASKS: [&str; 5] = ["ci", "conformance", "new-adapter", "torture", "bench"];

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_overview_answers_help() {
    for args in [&[][..], &["help"], &["--help"], &["-h"]] {
        let output = xtask(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(
            text.starts_with("usage: cargo xtask <task>"),
            "{args:?}: {text}"
        );
        for task in TASKS {
            assert!(
                text.contains(&format!("\n  {task} ")),
                "{task} missing: {text}"
            );
        }
        assert_eq!(stderr(&output), "", "{args:?}");
    }
}

#[test]
fn every_task_answers_help_without_running() {
    for task in TASKS {
        for args in [
            vec![task, "--help"],
            vec![task, "-h"],
            vec!["help", task],
            // A help flag after other arguments still only prints the help: `ci` would
            // otherwise start `.ci/run`, and `bench` a release build.
            vec![task, "--quick", "--help"],
        ] {
            let output = xtask(&args);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{args:?}: {}",
                stderr(&output)
            );
            let text = stdout(&output);
            assert!(
                text.starts_with(&format!("usage: cargo xtask {task}")),
                "{args:?}: {text}"
            );
            assert_eq!(stderr(&output), "", "{args:?}");
        }
    }
    assert!(stdout(&xtask(&["conformance", "--help"])).contains("--adapter PATH"));
    assert!(stdout(&xtask(&["torture", "-h"])).contains("--long"));
}

#[test]
fn a_wrong_argument_gets_the_usage_on_stderr() {
    // `bench` is not here: its options pass through to the benchmark binary, which checks
    // them after the release build (its own test covers that check).
    let cases: [(&[&str], &str); 7] = [
        (&["no-such-task"], "usage: cargo xtask <task>"),
        (&["help", "no-such-task"], "usage: cargo xtask <task>"),
        (&["ci", "--quick"], "usage: cargo xtask ci"),
        (
            &["conformance", "--bogus"],
            "usage: cargo xtask conformance",
        ),
        (&["conformance", "--case"], "usage: cargo xtask conformance"),
        (&["new-adapter"], "usage: cargo xtask new-adapter"),
        (&["torture", "--bogus"], "usage: cargo xtask torture"),
    ];
    for (args, usage) in cases {
        let output = xtask(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(usage),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "{args:?}");
    }
    let output = xtask(&["new-adapter", "foo", "--bogus"]);
    assert!(
        stderr(&output).contains("unknown option --bogus"),
        "{}",
        stderr(&output)
    );
}
