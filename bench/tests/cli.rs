//! The benchmark binaries' command lines: `--help` and `-h` print the usage on standard
//! output with status 0 and measure nothing; a wrong argument prints the usage on standard
//! error with a non-zero status.

#[path = "../../xtask/tests/support/cli.rs"]
mod cli;

use cli::{answers_help, help, refuses};

#[test]
fn the_benchmark_answers_help() {
    let program = env!("CARGO_BIN_EXE_session-bench");
    answers_help(program, "session-bench", &["--quick", "--stores", "memory"]);
    let usage = help(program, &["--help"], "session-bench");
    assert!(
        usage.contains("--scale-only")
            && usage.contains("--lock-only")
            && usage.contains("--actix-only")
    );
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
    let usage = help(
        env!("CARGO_BIN_EXE_session-bench-peer"),
        &["--help"],
        "session-bench-peer",
    );
    assert!(usage.contains("--pool N") && usage.contains("--ping on|off"));
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
            (&["--pool", "0"], "--pool 0: not a positive number"),
            (&["--ping", "maybe"], "--ping maybe: on or off"),
        ],
    );
}

#[test]
fn the_actix_peer_answers_help() {
    answers_help(
        env!("CARGO_BIN_EXE_session-bench-actix-peer"),
        "session-bench-actix-peer",
        &["--addr", "127.0.0.1:0", "--store", "redis"],
    );
}

#[test]
fn the_actix_peer_refuses_wrong_arguments() {
    refuses(
        env!("CARGO_BIN_EXE_session-bench-actix-peer"),
        "session-bench-actix-peer",
        &[
            (&["--bogus"], "unknown argument --bogus"),
            (
                &["--store", "memory"],
                "unknown store memory (this peer has only: redis)",
            ),
            (&["--store"], "--store needs a value"),
            (&["--addr", "somewhere"], "--addr somewhere"),
        ],
    );
}
