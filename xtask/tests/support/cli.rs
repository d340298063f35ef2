//! Checks of a command line, shared by the tests of every binary in the workspace (`xtask`,
//! `session-example`, the benchmark binaries), which include this file by path: `--help`
//! prints the usage on standard output with status 0, and a wrong argument prints it on
//! standard error with status 2.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `program` with `args`, with no configuration from the environment that could
/// change how arguments are read.
pub(crate) fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_remove("SESSION_CONFIG")
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"))
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Checks that `args` print the help (starting `usage: {name}`) on standard output, with
/// status 0 and nothing on standard error; returns the help.
pub(crate) fn help(program: &str, args: &[&str], name: &str) -> String {
    let output = run(program, args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        stderr(&output)
    );
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("usage: {name}")),
        "{args:?}: {text}"
    );
    assert_eq!(stderr(&output), "", "{args:?}");
    text
}

/// Checks that `args` are refused with status 2, the usage (`usage: {name}`) on standard
/// error and nothing on standard output; returns what was written on standard error.
pub(crate) fn refusal(program: &str, args: &[&str], name: &str) -> String {
    let output = run(program, args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        stderr(&output)
    );
    let text = stderr(&output);
    assert!(text.contains(&format!("usage: {name}")), "{args:?}: {text}");
    assert_eq!(stdout(&output), "", "{args:?}");
    text
}

/// Checks `--help` and `-h`, alone and after `other_arguments` (which would otherwise start
/// a benchmark, a build or a server, so the test would hang or take minutes instead of
/// passing).
pub(crate) fn answers_help(program: &str, name: &str, other_arguments: &[&str]) {
    for flag in ["--help", "-h"] {
        for args in [vec![flag], [other_arguments, &[flag]].concat()] {
            help(program, &args, name);
        }
    }
}

/// Checks that each argument list is refused with its message and the usage.
pub(crate) fn refuses(program: &str, name: &str, cases: &[(&[&str], &str)]) {
    for (args, message) in cases {
        let text = refusal(program, args, name);
        assert!(text.contains(message), "{args:?}: {text}");
    }
}
