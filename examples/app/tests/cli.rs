//! The example's command line: `--help` and `-h` print the usage on standard output with
//! status 0 and start no server; a wrong argument prints the usage on standard error with
//! a non-zero status.

use std::process::{Command, Output};

fn example(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_session-example"))
        .args(args)
        // A configuration from the environment must not change how arguments are read.
        .env_remove("SESSION_CONFIG")
        .output()
        .expect("run session-example")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    // `--addr` first: had the help not stopped the program, it would listen there and the
    // test would hang rather than pass.
    for args in [
        &["--help"][..],
        &["-h"],
        &["--addr", "127.0.0.1:0", "--help"],
    ] {
        let output = example(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(
            text.starts_with("usage: session-example"),
            "{args:?}: {text}"
        );
        assert!(text.contains("--config FILE"), "{text}");
        assert_eq!(stderr(&output), "", "{args:?}");
    }
}

#[test]
fn a_wrong_argument_prints_the_usage_on_stderr() {
    let cases: [(&[&str], &str); 4] = [
        (&["--bogus"], "unknown argument --bogus"),
        (&["serve"], "unknown argument serve"),
        (&["--addr"], "--addr needs an address"),
        (&["--addr", "not-an-address"], "--addr not-an-address"),
    ];
    for (args, message) in cases {
        let output = example(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let text = stderr(&output);
        assert!(text.contains(message), "{args:?}: {text}");
        assert!(text.contains("usage: session-example"), "{args:?}: {text}");
        assert_eq!(stdout(&output), "", "{args:?}");
    }
}
