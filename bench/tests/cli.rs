//! The benchmark binaries' command lines: `--help` and `-h` print the usage on standard
//! output with status 0 and measure nothing; a wrong argument prints the usage on standard
//! error with a non-zero status.

use std::process::{Command, Output};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .expect("run the benchmark binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Checks `--help` and `-h`, also after other arguments (which would otherwise start a
/// benchmark or a server, so the test would hang or take minutes instead of passing).
fn answers_help(program: &str, name: &str, other_arguments: &[&str]) {
    for flag in ["--help", "-h"] {
        for args in [vec![flag], [other_arguments, &[flag]].concat()] {
            let output = run(program, &args);
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
        }
    }
}

/// Checks that each argument list fails with status 2, its message and the usage on
/// standard error, and nothing on standard output.
fn refuses(program: &str, name: &str, cases: &[(&[&str], &str)]) {
    for (args, message) in cases {
        let output = run(program, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let text = stderr(&output);
        assert!(text.contains(message), "{args:?}: {text}");
        assert!(text.contains(&format!("usage: {name}")), "{args:?}: {text}");
        assert_eq!(stdout(&output), "", "{args:?}");
    }
}

#[test]
fn the_benchmark_answers_help() {
    let program = env!("CARGO_BIN_EXE_session-bench");
    answers_help(program, "session-bench", &["--quick", "--stores", "memory"]);
    assert!(stdout(&run(program, &["--help"])).contains("--scale-only"));
}

#[test]
fn the_benchmark_refuses_wrong_arguments() {
    refuses(
        env!("CARGO_BIN_EXE_session-bench"),
        "session-bench",
        &[
            (&["--bogus"], "unknown argument --bogus"),
            (&["--rounds"], "--rounds needs a value"),
            (&["--rounds", "many"], "--rounds many: not a number"),
        ],
    );
}

#[test]
fn the_peer_answers_help() {
    answers_help(
        env!("CARGO_BIN_EXE_session-bench-peer"),
        "session-bench-peer",
        &["--addr", "127.0.0.1:0", "--store", "none"],
    );
}

#[test]
fn the_peer_refuses_wrong_arguments() {
    refuses(
        env!("CARGO_BIN_EXE_session-bench-peer"),
        "session-bench-peer",
        &[
            (&["--bogus"], "unknown argument --bogus"),
            (&["--store", "nosuch"], "unknown store nosuch"),
            (&["--store"], "--store needs a value"),
            (&["--addr", "somewhere"], "--addr somewhere"),
        ],
    );
}
