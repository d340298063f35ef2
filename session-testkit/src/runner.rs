//! A runner for ordinary test binaries whose tests can skip: each test is a named trial
//! that passes, fails with a reason, or is skipped with a reason, and a skip reads as a
//! skip in the output, never as `ok`.
//!
//! A test file opts in with `harness = false` in its `[[test]]` entry and a `main` that
//! hands its trials to [`Tests`] (whose docs show one).
//!
//! The binary prints `test NAME ... ok (TIME)`, `test NAME ... skipped: REASON` or
//! `test NAME ... FAILED: REASON` for each test, then
//! `test result: ok. N passed, N failed, N skipped, N filtered out`, and exits non-zero
//! when any test failed. A panic is a failure (the panic hook still prints where it
//! happened on stderr). A [`TestError::Skip`] is a failure under
//! `SESSION_REQUIRE_SERVICES=1`, and its line says so. Output of the tests themselves is
//! not captured: it comes before the test's line.
//!
//! The arguments are those `cargo test` and `cargo nextest` pass, parsed as the
//! conformance [`Suite`](crate::Suite) parses them: filters, `--exact`, `--skip`, `--list`
//! (`--format terse` is the only format), `--ignored` and `--include-ignored` (no trial is
//! ignored, so the first selects nothing and the second changes nothing), and
//! `--test-threads N` (or `RUST_TEST_THREADS`; by default one thread per core, as
//! libtest). Each test runs on a thread of its own named after it, and an async test in
//! a tokio runtime of its own, as `#[tokio::test]` gives it.
//!
//! # Why not libtest-mimic
//!
//! `libtest-mimic` (0.8) runs a trial as a function returning `Result<(), Failed>`, and a
//! trial can be marked ignored only before it runs (`with_ignored_flag`): a test that
//! finds out while running that it cannot run can only pass or fail. The tests here learn
//! it only when they try (a connection refused, a binary missing), and the reason is what
//! a reader of the log needs. Extending the
//! project's own harness keeps one argument parser, one output format and one meaning of
//! `SESSION_REQUIRE_SERVICES` for the conformance suite and the other tests.
//!
//! Under `cargo nextest` a skipped test is reported as passed, because nextest judges a
//! test by its exit status alone; the reason is in the test's output
//! (`--no-capture`, or `--success-output immediate`).

use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use crate::harness::{Args, Outcome, Unavailable, outcome_line, services_required, unexpected};

/// What a test returns: `Ok(())` when it passed.
pub type TestResult = Result<(), TestError>;

/// Why a test did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TestError {
    /// The test failed; the text says how.
    Fail(String),
    /// The test cannot run here for want of a server, a binary or a browser; the text
    /// says which. Reported as skipped, or as failed under `SESSION_REQUIRE_SERVICES=1`.
    Skip(String),
    /// The test does not apply to this run whatever the machine offers, such as a suite
    /// for a server that no variable names and none of these machines can host. Reported
    /// as skipped, even under `SESSION_REQUIRE_SERVICES=1`.
    NotApplicable(String),
}

impl TestError {
    /// A failure, saying how the test failed.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self::Fail(reason.into())
    }

    /// A skip for want of a server, a binary or a browser (say which, and where it was
    /// looked for).
    pub fn skip(reason: impl Into<String>) -> Self {
        Self::Skip(reason.into())
    }

    /// A skip of a test that does not apply to this run (say why).
    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self::NotApplicable(reason.into())
    }

    /// The reason given.
    pub fn reason(&self) -> &str {
        match self {
            Self::Fail(reason) | Self::Skip(reason) | Self::NotApplicable(reason) => reason,
        }
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fail(reason) => write!(f, "failed: {reason}"),
            Self::Skip(reason) | Self::NotApplicable(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

impl std::error::Error for TestError {}

/// An unexpected error fails the test, with its whole chain of sources.
impl From<session_core::Error> for TestError {
    fn from(err: session_core::Error) -> Self {
        Self::Fail(unexpected(&err))
    }
}

/// A backend that cannot be reached skips the test (or fails it when services are
/// required), as it skips a conformance case.
impl From<Unavailable> for TestError {
    fn from(unavailable: Unavailable) -> Self {
        Self::Skip(unavailable.reason().to_owned())
    }
}

type SyncBody = Box<dyn FnOnce() -> TestResult + Send>;
type AsyncBody = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = TestResult>>> + Send>;

enum Body {
    Sync(SyncBody),
    Async { body: AsyncBody, runtime: Runtime },
}

/// The tokio runtime an async trial gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runtime {
    CurrentThread,
    MultiThread { worker_threads: usize },
}

/// One named test.
pub struct Trial {
    name: String,
    body: Body,
}

impl fmt::Debug for Trial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runtime = match &self.body {
            Body::Sync(_) => None,
            Body::Async { runtime, .. } => Some(*runtime),
        };
        f.debug_struct("Trial")
            .field("name", &self.name)
            .field("runtime", &runtime)
            .finish_non_exhaustive()
    }
}

impl Trial {
    /// A test that runs `body` on a thread of its own, with no runtime.
    pub fn test(
        name: impl Into<String>,
        body: impl FnOnce() -> TestResult + Send + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            body: Body::Sync(Box::new(body)),
        }
    }

    /// An async test: `body()` runs to completion in a fresh current-thread tokio
    /// runtime, as under `#[tokio::test]`. [`Trial::multi_thread`] asks for worker
    /// threads instead.
    pub fn tokio<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = TestResult> + 'static,
    {
        Self {
            name: name.into(),
            body: Body::Async {
                body: Box::new(move || Box::pin(body())),
                runtime: Runtime::CurrentThread,
            },
        }
    }

    /// Runs an async test in a multi-threaded runtime with `worker_threads` workers (at
    /// least one), as `#[tokio::test(flavor = "multi_thread", worker_threads = N)]` does;
    /// needed by tests that block a worker or spawn work that must run in parallel. No
    /// effect on a test made with [`Trial::test`], which has no runtime.
    #[must_use]
    pub fn multi_thread(mut self, worker_threads: usize) -> Self {
        if let Body::Async { runtime, .. } = &mut self.body {
            *runtime = Runtime::MultiThread {
                worker_threads: worker_threads.max(1),
            };
        }
        self
    }

    /// The test's name, as listed and filtered.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the body; a panic escapes to the caller (the thread running the trial).
    fn run(self) -> TestResult {
        match self.body {
            Body::Sync(body) => body(),
            Body::Async { body, runtime } => {
                let mut builder = match runtime {
                    Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
                    Runtime::MultiThread { worker_threads } => {
                        let mut builder = tokio::runtime::Builder::new_multi_thread();
                        builder.worker_threads(worker_threads);
                        builder
                    }
                };
                let runtime = builder.enable_all().build().map_err(|err| {
                    TestError::fail(format!("cannot start a tokio runtime: {err}"))
                })?;
                runtime.block_on(body())
            }
        }
    }
}

/// The outcomes of one run of a test binary.
#[derive(Clone, Debug, Default)]
pub struct TestReport {
    /// Each test run, with its outcome, in the order they finished.
    pub results: Vec<(String, Outcome)>,
    /// How many tests the arguments left out.
    pub filtered_out: usize,
}

/// How many tests of a run passed, failed and were skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that were skipped, each with its reason.
    pub skipped: usize,
}

impl TestReport {
    /// How many tests passed, failed and were skipped.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (_, outcome) in &self.results {
            match outcome {
                Outcome::Passed => counts.passed += 1,
                Outcome::Failed(_) => counts.failed += 1,
                Outcome::Skipped(_) => counts.skipped += 1,
            }
        }
        counts
    }

    /// The outcome of test `name`, if it ran.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.results.iter().find(|(n, _)| n == name).map(|(_, o)| o)
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.counts();
        write!(
            f,
            "test result: {}. {} passed, {} failed, {} skipped, {} filtered out",
            if counts.failed == 0 { "ok" } else { "FAILED" },
            counts.passed,
            counts.failed,
            counts.skipped,
            self.filtered_out
        )
    }
}

/// The tests of one test binary, and its entry point.
///
/// ```no_run
/// use session_testkit::{TestError, TestResult, Tests, Trial};
///
/// // tests/server.rs, with `[[test]] name = "server" harness = false` in Cargo.toml.
/// fn main() -> std::process::ExitCode {
///     Tests::new([
///         Trial::test("parses_a_number", parses_a_number),
///         Trial::tokio("talks_to_the_server", talks_to_the_server).multi_thread(2),
///     ])
///     .main()
/// }
///
/// fn parses_a_number() -> TestResult {
///     assert_eq!("42".parse::<u32>().ok(), Some(42));
///     Ok(())
/// }
///
/// async fn talks_to_the_server() -> TestResult {
///     let binary = std::path::Path::new("/usr/bin/redis-server");
///     if !binary.exists() {
///         return Err(TestError::skip(format!("no {}", binary.display())));
///     }
///     // ... start it, connect, assert ...
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Tests {
    trials: Vec<Trial>,
    services_required: bool,
    one_at_a_time: bool,
}

impl Tests {
    /// The binary's tests. Whether a skip for want of a server is a failure comes from
    /// `SESSION_REQUIRE_SERVICES` ([`services_required`](crate::services_required)).
    pub fn new(trials: impl IntoIterator<Item = Trial>) -> Self {
        Self {
            trials: trials.into_iter().collect(),
            services_required: services_required(),
            one_at_a_time: false,
        }
    }

    /// Runs the tests one after another, whatever `--test-threads` says: for tests that
    /// measure the whole process (its open files, its memory), which a test running
    /// beside them would disturb.
    #[must_use]
    pub fn one_at_a_time(mut self) -> Self {
        self.one_at_a_time = true;
        self
    }

    /// Whether a [`TestError::Skip`] fails the test, whatever the environment says.
    #[must_use]
    pub fn require_services(mut self, required: bool) -> Self {
        self.services_required = required;
        self
    }

    /// The entry point of a `harness = false` test binary: runs the tests the command
    /// line selects, prints one line per test and the counts, and fails when any test
    /// failed.
    pub fn main(self) -> ExitCode {
        let report = self.run(std::env::args().skip(1), &mut std::io::stdout());
        if report.counts().failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Runs (or with `--list`, lists) the tests `args` select, writing the output to
    /// `out`, and returns what happened.
    pub fn run(self, args: impl IntoIterator<Item = String>, out: &mut dyn Write) -> TestReport {
        let args = Args::parse(args.into_iter());
        let total = self.trials.len();
        let mut seen = HashSet::new();
        let duplicates: Vec<String> = self
            .trials
            .iter()
            .filter(|trial| !seen.insert(trial.name.clone()))
            .map(|trial| trial.name.clone())
            .collect();
        // No trial is ignored: `--ignored` selects none, and `--include-ignored` adds none.
        let selected: VecDeque<Trial> = self
            .trials
            .into_iter()
            .filter(|trial| !args.ignored_only && args.selects(&trial.name))
            .collect();
        let mut report = TestReport {
            results: Vec::new(),
            filtered_out: total - selected.len(),
        };

        if args.list {
            for trial in &selected {
                say(out, format_args!("{}: test", trial.name));
            }
            return report;
        }
        let plural = if selected.len() == 1 { "" } else { "s" };
        say(
            out,
            format_args!("\nrunning {} test{plural}", selected.len()),
        );
        for name in duplicates {
            // Two tests of one name cannot be told apart by `--exact`, so nextest would run
            // the pair twice: a mistake in the test file, reported as a failure.
            let outcome = Outcome::Failed("two tests have this name".to_owned());
            say(
                out,
                format_args!("{}", outcome_line(&name, &outcome, None, &[])),
            );
            report.results.push((name, outcome));
        }

        let threads = args
            .test_threads
            .or_else(|| {
                std::env::var("RUST_TEST_THREADS")
                    .ok()
                    .and_then(|n| n.parse().ok())
            })
            .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
            .unwrap_or(1)
            .clamp(1, selected.len().max(1));
        let threads = if self.one_at_a_time { 1 } else { threads };
        let required = self.services_required;
        let queue = Mutex::new(selected);
        let mut wanting = 0;
        let started = Instant::now();
        std::thread::scope(|scope| {
            let (sender, finished) = mpsc::channel();
            for _ in 0..threads {
                let sender = sender.clone();
                let queue = &queue;
                scope.spawn(move || {
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .pop_front();
                        let Some(trial) = next else { break };
                        if sender.send(run_trial(trial)).is_err() {
                            break;
                        }
                    }
                });
            }
            // Only the workers' senders are left: the loop ends when the last worker does.
            drop(sender);
            for (name, result, elapsed) in finished {
                if matches!(result, Err(TestError::Skip(_))) {
                    wanting += 1;
                }
                let outcome = conclude(result, required);
                say(
                    out,
                    format_args!("{}", outcome_line(&name, &outcome, Some(elapsed), &[])),
                );
                report.results.push((name, outcome));
            }
        });

        let failures: Vec<&str> = report
            .results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .map(|(name, _)| name.as_str())
            .collect();
        if !failures.is_empty() {
            say(out, format_args!("\nfailures:"));
            for name in failures {
                say(out, format_args!("    {name}"));
            }
        }
        if wanting > 0 && !required {
            say(
                out,
                format_args!(
                    "\n{wanting} test(s) skipped for want of a server, a binary or a browser; \
                     SESSION_REQUIRE_SERVICES=1 makes such a skip a failure"
                ),
            );
        }
        let counts = report.counts();
        if counts.skipped > 0 && counts.passed == 0 && counts.failed == 0 {
            say(
                out,
                format_args!("\nWARNING: every test was skipped; nothing was checked"),
            );
        }
        say(
            out,
            format_args!("\n{report} (in {:.2?})\n", started.elapsed()),
        );
        report
    }
}

/// Runs `trial` on a thread named after it (so a panic message names the test) and
/// returns its name, its result and how long it took.
fn run_trial(trial: Trial) -> (String, TestResult, Duration) {
    let name = trial.name.clone();
    let started = Instant::now();
    let result = match std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || trial.run())
    {
        Err(err) => Err(TestError::fail(format!("cannot start a thread: {err}"))),
        Ok(thread) => thread.join().unwrap_or_else(|payload| {
            Err(TestError::fail(format!(
                "panicked: {}",
                panic_message(payload.as_ref())
            )))
        }),
    };
    (name, result, started.elapsed())
}

/// The outcome a result is reported as.
fn conclude(result: TestResult, services_required: bool) -> Outcome {
    match result {
        Ok(()) => Outcome::Passed,
        Err(TestError::Fail(reason)) => Outcome::Failed(reason),
        Err(TestError::Skip(reason)) if services_required => Outcome::Failed(format!(
            "cannot run here and SESSION_REQUIRE_SERVICES=1: {reason}"
        )),
        Err(TestError::Skip(reason) | TestError::NotApplicable(reason)) => Outcome::Skipped(reason),
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "non-text panic payload".to_owned())
}

/// Writes one line of output. A closed stdout is no reason to stop the tests, whose
/// outcome is also the exit status.
fn say(out: &mut dyn Write, line: fmt::Arguments<'_>) {
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `trials` with `args` on one thread and returns the report and the output.
    fn run(trials: Vec<Trial>, args: &[&str], required: bool) -> (TestReport, String) {
        let mut out = Vec::new();
        let args = ["--test-threads=1"]
            .iter()
            .chain(args)
            .map(|s| (*s).to_owned());
        let report = Tests::new(trials)
            .require_services(required)
            .run(args, &mut out);
        (report, String::from_utf8_lossy(&out).into_owned())
    }

    fn sample() -> Vec<Trial> {
        vec![
            Trial::test("store::passes", || Ok(())),
            Trial::test("store::fails", || Err(TestError::fail("2 != 3"))),
            Trial::test("store::wants_a_server", || {
                Err(TestError::skip("no server at 127.0.0.1:1"))
            }),
            Trial::test("store::does_not_apply", || {
                Err(TestError::not_applicable("no URL set"))
            }),
            Trial::tokio("store::async_passes", || async {
                tokio::task::yield_now().await;
                Ok(())
            }),
        ]
    }

    #[test]
    fn counts_each_outcome_and_prints_one_line_per_test() {
        let (report, out) = run(sample(), &[], false);
        assert_eq!(
            {
                let c = report.counts();
                (c.passed, c.failed, c.skipped)
            },
            (2, 1, 2)
        );
        assert_eq!(report.filtered_out, 0);
        assert!(out.contains("test store::passes ... ok ("), "{out}");
        assert!(
            out.contains("test store::fails ... FAILED: 2 != 3"),
            "{out}"
        );
        assert!(
            out.contains("test store::wants_a_server ... skipped: no server at 127.0.0.1:1"),
            "{out}"
        );
        assert!(
            out.contains("test store::does_not_apply ... skipped: no URL set"),
            "{out}"
        );
        assert!(out.contains("\nfailures:\n    store::fails\n"), "{out}");
        assert!(
            out.contains("1 test(s) skipped for want of a server, a binary or a browser"),
            "{out}"
        );
        assert!(
            out.contains("test result: FAILED. 2 passed, 1 failed, 2 skipped, 0 filtered out"),
            "{out}"
        );
    }

    #[test]
    fn a_skip_for_want_of_a_server_fails_when_services_are_required() {
        let (report, out) = run(sample(), &["store::wants", "store::does"], true);
        assert_eq!(
            report.outcome("store::wants_a_server"),
            Some(&Outcome::Failed(
                "cannot run here and SESSION_REQUIRE_SERVICES=1: no server at 127.0.0.1:1"
                    .to_owned()
            ))
        );
        // A test that does not apply stays a skip.
        assert_eq!(
            report.outcome("store::does_not_apply"),
            Some(&Outcome::Skipped("no URL set".to_owned()))
        );
        assert!(!out.contains("for want of"), "{out}");
        assert!(
            out.contains("test result: FAILED. 0 passed, 1 failed, 1 skipped, 3 filtered out"),
            "{out}"
        );
    }

    #[test]
    fn a_panic_is_a_failure_with_its_message() {
        let trials = vec![
            Trial::test("panics", || panic!("the record was {}", "gone")),
            Trial::tokio("panics_in_a_runtime", || async {
                tokio::task::yield_now().await;
                panic!("a value");
            })
            .multi_thread(2),
            Trial::test("passes_after", || Ok(())),
        ];
        let (report, _) = run(trials, &[], false);
        assert_eq!(
            report.outcome("panics"),
            Some(&Outcome::Failed("panicked: the record was gone".to_owned()))
        );
        assert_eq!(
            report.outcome("panics_in_a_runtime"),
            Some(&Outcome::Failed("panicked: a value".to_owned()))
        );
        assert_eq!(report.outcome("passes_after"), Some(&Outcome::Passed));
    }

    #[test]
    fn async_trials_get_the_runtime_they_ask_for() {
        let flavor = || async {
            let flavor = tokio::runtime::Handle::current().runtime_flavor();
            let workers = tokio::runtime::Handle::current().metrics().num_workers();
            Err(TestError::fail(format!("{flavor:?} {workers}")))
        };
        let trials = vec![
            Trial::tokio("current", flavor),
            Trial::tokio("multi", flavor).multi_thread(3),
        ];
        let (report, _) = run(trials, &[], false);
        assert_eq!(
            report.outcome("current"),
            Some(&Outcome::Failed("CurrentThread 1".to_owned()))
        );
        assert_eq!(
            report.outcome("multi"),
            Some(&Outcome::Failed("MultiThread 3".to_owned()))
        );
    }

    #[test]
    fn selects_tests_as_cargo_test_and_nextest_ask() {
        // A substring filter and a skip.
        let (report, _) = run(sample(), &["store::", "--skip", "fails"], false);
        assert_eq!(report.results.len(), 4);
        assert!(report.outcome("store::fails").is_none());
        assert_eq!(report.filtered_out, 1);
        // nextest lists, then runs one test by its exact name.
        let (report, out) = run(sample(), &["--list", "--format", "terse"], false);
        assert!(report.results.is_empty());
        assert_eq!(
            out,
            "store::passes: test\nstore::fails: test\nstore::wants_a_server: test\n\
             store::does_not_apply: test\nstore::async_passes: test\n"
        );
        let (_, out) = run(
            sample(),
            &["--list", "--format", "terse", "--ignored"],
            false,
        );
        assert_eq!(out, "", "no test is ignored");
        let (report, _) = run(
            sample(),
            &["--exact", "store::passes", "--nocapture"],
            false,
        );
        assert_eq!(
            report.results,
            [("store::passes".to_owned(), Outcome::Passed)]
        );
        let (report, _) = run(sample(), &["--exact", "store::pass"], false);
        assert!(report.results.is_empty());
        // `--ignored` runs nothing; `--include-ignored` runs everything.
        let (report, _) = run(sample(), &["--ignored"], false);
        assert_eq!((report.results.len(), report.filtered_out), (0, 5));
        let (report, _) = run(sample(), &["--include-ignored"], false);
        assert_eq!(report.results.len(), 5);
    }

    #[test]
    fn one_at_a_time_runs_no_two_tests_together() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let trial = |name: &str| {
            let (running, most) = (
                std::sync::Arc::clone(&running),
                std::sync::Arc::clone(&most),
            );
            Trial::test(name, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(50));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        };
        let mut out = Vec::new();
        let report = Tests::new([trial("a"), trial("b"), trial("c")])
            .require_services(false)
            .one_at_a_time()
            .run(["--test-threads".to_owned(), "3".to_owned()], &mut out);
        assert_eq!(report.counts().passed, 3);
        assert_eq!(most.load(Ordering::SeqCst), 1, "two tests ran at once");
    }

    #[test]
    fn runs_tests_in_parallel_when_asked() {
        // Two tests that each wait for the other: they finish only if both run at once.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let trial = |name: &str| {
            let barrier = std::sync::Arc::clone(&barrier);
            Trial::test(name, move || {
                barrier.wait();
                Ok(())
            })
        };
        let mut out = Vec::new();
        let report = Tests::new([trial("a"), trial("b")])
            .require_services(false)
            .run(["--test-threads".to_owned(), "2".to_owned()], &mut out);
        assert_eq!(report.counts().passed, 2);
    }

    #[test]
    fn two_tests_of_one_name_fail() {
        let (report, _) = run(
            vec![
                Trial::test("same", || Ok(())),
                Trial::test("same", || Ok(())),
            ],
            &[],
            false,
        );
        assert_eq!(report.counts().failed, 1);
        assert_eq!(report.counts().passed, 2);
    }

    #[test]
    fn everything_skipped_is_a_warning() {
        let (report, out) = run(
            vec![Trial::test("skips", || Err(TestError::skip("no browser")))],
            &[],
            false,
        );
        assert_eq!(report.counts().skipped, 1);
        assert!(out.contains("WARNING: every test was skipped"), "{out}");
    }

    #[test]
    fn errors_convert_to_the_right_kind() {
        let unavailable: TestError = Unavailable::new("Redis at 127.0.0.1:1").into();
        assert_eq!(unavailable, TestError::skip("Redis at 127.0.0.1:1"));
        let error: TestError =
            session_core::Error::new(session_core::ErrorKind::Backend, "connection reset").into();
        assert!(
            matches!(&error, TestError::Fail(reason) if reason.contains("connection reset")),
            "{error:?}"
        );
    }
}
