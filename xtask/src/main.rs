//! Project automation, run as `cargo xtask <task>`.
//!
//! - `ci`: what CI runs (`.ci/run`): services, fmt, clippy, the whole test suite.
//! - `conformance`: the conformance suite against every store here, or a third-party
//!   adapter crate, as one table.
//! - `new-adapter NAME`: scaffolds a `session-NAME` store crate with its conformance test.
//! - `bench`: the HTTP benchmark against tower-sessions (release build, on demand); it
//!   writes the full report to `docs/benchmarks.md` and its summary into the README.
//! - `torture`: hostile input, races and faults against every store, as one table.
//! - `mutants`: mutation testing of the store implementations and the session logic, with
//!   the conformance suite as the test (`cargo-mutants`, on demand).

mod bench;
mod ci;
mod conformance;
mod mutants;
mod new_adapter;
mod torture;

use std::error::Error;
use std::fmt;
use std::io;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  ci                         start services if down, then fmt --check, clippy -D warnings and
                             the whole test suite (what CI runs)
  conformance [options]      run the conformance suite and print one table: store x case
      --adapter PATH         against the adapter crate at PATH (default: every store here)
      --case NAME            only this case (repeatable)
      --report FILE          also write the results as JSON to FILE
  new-adapter NAME [--path DIR]
                             scaffold the crate session-NAME (in this workspace, or at DIR)
  torture [--long] [--soak DURATION] [--report FILE]
                             hostile input, races and faults against every store: one table
                             of figures (quick by default; --long for the full counts;
                             --soak 30m runs only the soak, that long per store)
  mutants [options]          mutation testing (cargo-mutants, on demand: hours) of the memory and
                             file stores and the session logic, the conformance suite as the
                             test; fails on a surviving mutant without a reason in
                             xtask/mutants-explained.txt
      --target NAME          memory, file or core (repeatable; default all)
      --file GLOB            only the files of the target that match (repeatable)
      --jobs N               parallel builds
      --list                 only list the mutants
  bench [options]            HTTP benchmark, ours vs tower-sessions, every store (release build);
                             --quick, --rounds N, --duration SECONDS, --stores a,b, --scale,
                             --scale-only, --users-only, --lock-only, --actix-only, --no-docs; writes target/bench/results.{md,json} and ratios.svg, and after
                             a full run docs/benchmarks.md, docs/bench-ratios.svg and the README's summary
      --check                whether the README's summary matches docs/benchmarks.md (measures nothing)
      --update-readme        rewrite the README's summary from docs/benchmarks.md (measures nothing)
";

/// The tasks, as [`USAGE`] lists them; `main` dispatches on the same names.
const TASKS: [&str; 6] = [
    "ci",
    "conformance",
    "new-adapter",
    "torture",
    "mutants",
    "bench",
];

/// The status of a run whose arguments were wrong, apart from 1 (a task that ran and
/// failed), as most command-line tools do.
const USAGE_ERROR: u8 = 2;

/// Why a task did not finish.
enum Failure {
    /// The arguments were wrong; the task's usage follows the message.
    Usage(String),
    /// The task ran and failed.
    Failed(String),
}

/// Parses a task's arguments, then runs it, so that a wrong argument is told apart from a
/// task that ran and failed.
fn dispatch<O>(
    args: &[String],
    parse: fn(&[String]) -> Result<O, String>,
    run: fn(O) -> Result<(), String>,
) -> Result<(), Failure> {
    let options = parse(args).map_err(Failure::Usage)?;
    run(options).map_err(Failure::Failed)
}

/// `err` as a person should see it: its message, then `: cause` for each error of its
/// source chain (a cause whose text already ends the one before it is not repeated).
pub(crate) fn explain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut previous = text.clone();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !previous.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        previous = cause_text;
        source = cause.source();
    }
    text
}

/// The message for `program`, which could not be started: the cause, and on a line of its
/// own the hint of what to do where the program is missing.
pub(crate) fn cannot_run(program: impl fmt::Display, err: &io::Error) -> String {
    let mut text = format!("cannot run {program}: {}", explain(err));
    if err.kind() == io::ErrorKind::NotFound {
        text.push_str(&format!(
            "\nhint: {program} is not installed, or not on PATH: install it, or add its folder \
             to PATH"
        ));
    }
    text
}

/// Whether `line` is the first line of `task`'s entry in [`USAGE`]: indented by two spaces
/// exactly (option lines are indented further), starting with the task's name.
fn is_entry_of(line: &str, task: &str) -> bool {
    line.strip_prefix("  ")
        .is_some_and(|rest| !rest.starts_with(' ') && rest.split_whitespace().next() == Some(task))
}

/// A task's help: its synopsis, then its entry of [`USAGE`] (the task's line and the more
/// deeply indented lines under it). Taking it from the overview keeps the two from
/// disagreeing when an option is added.
fn task_usage(task: &str) -> String {
    let mut lines = USAGE.lines().skip_while(|line| !is_entry_of(line, task));
    let Some(first) = lines.next() else {
        return format!("usage: cargo xtask {task}\n");
    };
    // The synopsis ends at the gap of two or more spaces before the description.
    let synopsis = first.trim_start().split("  ").next().unwrap_or(task);
    let mut text = format!("usage: cargo xtask {synopsis}\n\n{first}\n");
    for line in lines.take_while(|line| line.starts_with("    ")) {
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    let task = task.as_str();
    if matches!(task, "help" | "--help" | "-h") {
        match rest.first().map(String::as_str) {
            None => print!("{USAGE}"),
            Some(topic) if TASKS.contains(&topic) => print!("{}", task_usage(topic)),
            Some(other) => {
                eprint!("xtask: unknown task `{other}`\n\n{USAGE}");
                return ExitCode::from(USAGE_ERROR);
            }
        }
        return ExitCode::SUCCESS;
    }
    // A help flag anywhere after a task asks for that task's help, and nothing runs: not
    // `.ci/run`, not a benchmark build.
    if TASKS.contains(&task) && rest.iter().any(|arg| arg == "--help" || arg == "-h") {
        print!("{}", task_usage(task));
        return ExitCode::SUCCESS;
    }
    let result = match task {
        "ci" => dispatch(rest, ci::parse, ci::run),
        "conformance" => dispatch(rest, conformance::parse, conformance::run),
        "new-adapter" => dispatch(rest, new_adapter::parse, new_adapter::run),
        "torture" => dispatch(rest, torture::parse, torture::run),
        "mutants" => dispatch(rest, mutants::parse, mutants::run),
        // The benchmark binary checks its own options (and prints its own usage), so they
        // pass through as they are.
        "bench" => bench::run(rest).map_err(Failure::Failed),
        other => {
            eprint!("xtask: unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprint!("xtask {task}: {message}\n\n{}", task_usage(task));
            ExitCode::from(USAGE_ERROR)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_show_their_chain_and_a_missing_program_its_hint() {
        let inner = io::Error::new(io::ErrorKind::PermissionDenied, "permission denied");
        let outer = io::Error::other(inner);
        assert_eq!(explain(&outer), "permission denied");
        #[derive(Debug)]
        struct Outer(io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("cannot write target/report.json")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(
            explain(&err),
            format!("cannot write target/report.json: {}", err.0)
        );

        let missing = std::process::Command::new("xtask-test-no-such-program")
            .status()
            .expect_err("no such program");
        let text = cannot_run("xtask-test-no-such-program", &missing);
        assert!(
            text.starts_with("cannot run xtask-test-no-such-program: "),
            "{text}"
        );
        assert!(
            text.contains("\nhint: xtask-test-no-such-program is not installed"),
            "{text}"
        );
        let other = cannot_run("cargo", &io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!other.contains("hint:"), "{other}");
    }

    #[test]
    fn every_task_has_an_entry_with_its_options() {
        for task in TASKS {
            let usage = task_usage(task);
            assert!(
                usage.starts_with(&format!("usage: cargo xtask {task}")),
                "{usage}"
            );
            assert!(usage.lines().count() >= 3, "no entry for {task}:\n{usage}");
        }
        let conformance = task_usage("conformance");
        assert!(conformance.contains("--adapter PATH"), "{conformance}");
        assert!(!conformance.contains("new-adapter"), "{conformance}");
        assert!(task_usage("ci").starts_with("usage: cargo xtask ci\n"));
        assert!(
            task_usage("new-adapter")
                .starts_with("usage: cargo xtask new-adapter NAME [--path DIR]\n")
        );
    }
}
