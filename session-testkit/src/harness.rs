//! Running cases: fixtures, outcomes, reports, and the test-binary entry point.

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::SessionStore;

use crate::cases::{CASES, Case, CaseError, Ctx};
use crate::limit::{DEFAULT_CALL_LIMIT, Limited, Trip};

/// Cases in a row whose store stopped answering (a call over the per-call limit) after
/// which the rest of a run is failed without running: a store that hangs on every call
/// gets its whole verdict in seconds, not one limit per case.
const HUNG_CASES_BEFORE_GIVING_UP: usize = 3;

type Cleanup = Pin<Box<dyn Future<Output = ()> + Send>>;
type OpenFuture = Pin<Box<dyn Future<Output = Result<Fixture, Unavailable>> + Send>>;
type OpenFn = Arc<dyn Fn() -> OpenFuture + Send + Sync>;

/// Whether `SESSION_REQUIRE_SERVICES=1` is set: an unreachable server must fail the run
/// rather than skip it (CI sets it).
pub fn services_required() -> bool {
    std::env::var("SESSION_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A store opened for one case, in a namespace of its own.
pub struct Fixture {
    pub(crate) store: Arc<dyn SessionStore>,
    /// A client-side type (`"cookie"`, `"jwt"`) whose sessions the session cases drive,
    /// in place of a store.
    pub(crate) client_side: Option<String>,
    pub(crate) second: Option<Arc<dyn SessionStore>>,
    pub(crate) unreachable: Option<Arc<dyn SessionStore>>,
    cleanup: Option<Cleanup>,
    call_limit: Option<Duration>,
}

impl Fixture {
    /// A fixture around `store`, which must start empty and share nothing with the stores
    /// of other fixtures (a temp folder, a random key prefix or table name, ...).
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            store,
            client_side: None,
            second: None,
            unreachable: None,
            cleanup: None,
            call_limit: None,
        }
    }

    /// A fixture for a client-side session type (`"cookie"` or `"jwt"`): the session
    /// cases run with `type = store_type` (and a secret of the right length), the store
    /// cases are skipped (there is no store), and so is every session case that cannot
    /// hold for sessions kept in their tokens, with the reason.
    pub fn client_side(store_type: &str) -> Self {
        Self {
            client_side: Some(store_type.to_owned()),
            ..Self::new(session_core::client::store(store_type))
        }
    }

    /// How long one store call of this fixture may take before the case fails, naming
    /// the operation: for a backend slower than the suite's limit allows
    /// ([`Suite::with_call_limit`], 5 s by default).
    #[must_use]
    pub fn with_call_limit(mut self, limit: Duration) -> Self {
        self.call_limit = Some(limit);
        self
    }

    /// A second store instance on the same namespace, as another process would open it.
    /// Cases about sharing across processes need it (and the `shared` capability).
    #[must_use]
    pub fn with_second_handle(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.second = Some(store);
        self
    }

    /// A store of the same type configured against a backend that is down (a closed port,
    /// a path that cannot be a folder). Error-handling cases need it.
    #[must_use]
    pub fn with_unreachable(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.unreachable = Some(store);
        self
    }

    /// Work to run after the case, pass or fail: drop the table, remove the keys, ...
    #[must_use]
    pub fn with_cleanup(mut self, cleanup: impl Future<Output = ()> + Send + 'static) -> Self {
        self.cleanup = Some(Box::pin(cleanup));
        self
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("store", &self.store)
            .field("second", &self.second.is_some())
            .field("unreachable", &self.unreachable.is_some())
            .finish_non_exhaustive()
    }
}

/// The store's backend cannot be reached, so no case can run against it.
#[derive(Clone, Debug)]
pub struct Unavailable {
    reason: String,
}

impl Unavailable {
    /// Why the backend is unavailable (say which server, at which address).
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The reason given.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// "unexpected error: " and `err` with its whole chain of sources, for a failure reason.
pub(crate) fn unexpected(err: &dyn std::error::Error) -> String {
    let mut message = format!("unexpected error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// How a case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The store kept the contract.
    Passed,
    /// The store broke the contract; the text says how.
    Failed(String),
    /// The case could not run; the text says why.
    Skipped(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Self::Passed => "pass",
            Self::Failed(_) => "fail",
            Self::Skipped(_) => "skip",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Self::Passed => None,
            Self::Failed(reason) | Self::Skipped(reason) => Some(reason),
        }
    }
}

/// The outcomes of one run of the suite.
#[derive(Clone, Debug)]
pub struct Report {
    /// The suite's (store's) name.
    pub suite: String,
    /// Each case run, with its outcome, in order.
    pub results: Vec<(&'static str, Outcome)>,
}

impl Report {
    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed))
    }

    /// How many cases failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    /// How many cases were skipped.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    /// The outcome of case `name`, if it ran.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, o)| o)
    }

    /// The names of the failed cases.
    pub fn failures(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .map(|(name, _)| *name)
            .collect()
    }

    fn count(&self, predicate: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| predicate(o)).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance `{}`: {} passed, {} failed, {} skipped",
            self.suite,
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// The conformance suite bound to one store type.
#[derive(Clone)]
pub struct Suite {
    name: String,
    open: OpenFn,
    case_timeout: Duration,
    call_limit: Duration,
}

/// A case that ran: its outcome, its figures, and whether it ended on a store call over
/// the per-call limit.
struct Ran {
    outcome: Outcome,
    figures: Vec<String>,
    hung: bool,
}

impl fmt::Debug for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suite")
            .field("name", &self.name)
            .field("case_timeout", &self.case_timeout)
            .field("call_limit", &self.call_limit)
            .finish_non_exhaustive()
    }
}

impl Suite {
    /// The suite for store `name`; `open` is called once per case and returns a fresh,
    /// isolated [`Fixture`], or [`Unavailable`] when the backend is down.
    pub fn new<F, Fut>(name: impl Into<String>, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Fixture, Unavailable>> + Send + 'static,
    {
        Self {
            name: name.into(),
            open: Arc::new(move || Box::pin(open())),
            case_timeout: Duration::from_secs(120),
            call_limit: DEFAULT_CALL_LIMIT,
        }
    }

    /// How long one case may take before it fails as hung (120 s by default): the outer
    /// bound, behind the per-call limit.
    #[must_use]
    pub fn with_case_timeout(mut self, timeout: Duration) -> Self {
        self.case_timeout = timeout;
        self
    }

    /// How long one store call may take before its case fails at once, naming the
    /// operation ("`load` did not return within 5s"); 5 s by default
    /// ([`DEFAULT_CALL_LIMIT`](crate::DEFAULT_CALL_LIMIT)). A fixture can set its own
    /// ([`Fixture::with_call_limit`]). After three cases in a row end that way, the rest
    /// of the run fails without running: the store has stopped answering.
    #[must_use]
    pub fn with_call_limit(mut self, limit: Duration) -> Self {
        self.call_limit = limit;
        self
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one case on a fresh fixture: a panic or a hang is a failure, never a crash of
    /// the run. Call it inside a multi-threaded tokio runtime.
    pub async fn run_case(&self, case: &Case) -> Outcome {
        self.run_case_with_figures(case).await.0
    }

    /// Like [`Suite::run_case`], also returning the figures the case recorded with
    /// [`Ctx::note`].
    pub async fn run_case_with_figures(&self, case: &Case) -> (Outcome, Vec<String>) {
        let ran = self.run_one(case).await;
        (ran.outcome, ran.figures)
    }

    async fn run_one(&self, case: &Case) -> Ran {
        let ran = |outcome| Ran {
            outcome,
            figures: Vec::new(),
            hung: false,
        };
        let mut fixture = match (self.open)().await {
            Ok(fixture) => fixture,
            Err(unavailable) if services_required() => {
                return ran(Outcome::Failed(format!(
                    "backend unavailable and SESSION_REQUIRE_SERVICES=1: {unavailable}"
                )));
            }
            Err(unavailable) => {
                return ran(Outcome::Skipped(format!(
                    "backend unavailable: {unavailable}"
                )));
            }
        };
        let cleanup = fixture.cleanup.take();
        let limit = fixture.call_limit.unwrap_or(self.call_limit);
        let trip = Arc::new(Trip::default());
        fixture.store = Limited::wrap(fixture.store, limit, &trip);
        fixture.second = fixture
            .second
            .map(|store| Limited::wrap(store, limit, &trip));
        fixture.unreachable = fixture
            .unreachable
            .map(|store| Limited::wrap(store, limit, &trip));
        let ctx = Arc::new(Ctx::from_fixture(fixture));
        if let Some(store_type) = ctx.client_side()
            && !(case.name.starts_with("session_") || case.name.starts_with("torture_"))
        {
            return ran(Outcome::Skipped(format!(
                "type = \"{store_type}\" keeps each session in its token: there is no store \
                 to hold to the store contract"
            )));
        }
        let run = case.run;
        let task_ctx = Arc::clone(&ctx);
        let mut task = tokio::spawn(async move { run(&task_ctx).await });
        let abort = task.abort_handle();
        let mut hung = false;
        let outcome = tokio::select! {
            finished = tokio::time::timeout(self.case_timeout, &mut task) => match finished {
                Err(_) => {
                    abort.abort();
                    Outcome::Failed(format!("did not finish within {:?}", self.case_timeout))
                }
                Ok(Err(join)) if join.is_panic() => {
                    let payload = join.into_panic();
                    let message = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "non-text panic payload".to_owned());
                    Outcome::Failed(format!("panicked: {message}"))
                }
                Ok(Err(join)) => Outcome::Failed(format!("task failed: {join}")),
                Ok(Ok(Ok(()))) => Outcome::Passed,
                Ok(Ok(Err(CaseError::Fail(reason)))) => Outcome::Failed(reason),
                Ok(Ok(Err(CaseError::Skip(reason)))) => Outcome::Skipped(reason),
            },
            reason = trip.tripped() => {
                abort.abort();
                hung = true;
                Outcome::Failed(reason)
            }
        };
        if let Some(cleanup) = cleanup {
            cleanup.await;
        }
        Ran {
            outcome,
            figures: ctx.take_notes(),
            hung,
        }
    }

    /// Runs `cases` in order, giving each outcome to `each` as it comes, and fails the
    /// rest without running them once [`HUNG_CASES_BEFORE_GIVING_UP`] cases in a row
    /// ended on a store call over the limit.
    async fn run_each<'a>(
        &self,
        cases: impl IntoIterator<Item = &'a Case>,
        mut each: impl FnMut(&'a Case, &Outcome, &[String], Duration),
    ) -> Report {
        let mut results = Vec::new();
        let mut hung_in_a_row = 0;
        for case in cases {
            let started = Instant::now();
            let ran = if hung_in_a_row >= HUNG_CASES_BEFORE_GIVING_UP {
                Ran {
                    outcome: Outcome::Failed(format!(
                        "not run: the store stopped answering ({hung_in_a_row} cases in a \
                         row had a store call over the per-call limit)"
                    )),
                    figures: Vec::new(),
                    hung: true,
                }
            } else {
                self.run_one(case).await
            };
            hung_in_a_row = if ran.hung { hung_in_a_row + 1 } else { 0 };
            each(case, &ran.outcome, &ran.figures, started.elapsed());
            results.push((case.name, ran.outcome));
        }
        Report {
            suite: self.name.clone(),
            results,
        }
    }

    /// Runs `cases` one after the other and collects the outcomes. Once three cases in a
    /// row ended on a store call over the per-call limit, the rest fail without running.
    pub async fn run<'a>(&self, cases: impl IntoIterator<Item = &'a Case>) -> Report {
        self.run_each(cases, |_, _, _, _| {}).await
    }

    /// The entry point of a `harness = false` test binary: understands the arguments
    /// `cargo test` and `cargo nextest` pass (filters, `--exact`, `--skip`, `--list`),
    /// prints one line per case and the counts, and fails when any case failed.
    pub fn main(self) -> ExitCode {
        let args = Args::parse(std::env::args().skip(1));
        // Set but empty means "no filter", so tools can always pass the variable.
        let only: Option<Vec<String>> = std::env::var("SESSION_CONFORMANCE_CASES")
            .ok()
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|names| !names.is_empty());
        let selected: Vec<&Case> = CASES
            .iter()
            .filter(|case| args.selects(case.name))
            .filter(|case| {
                only.as_ref()
                    .is_none_or(|only| only.iter().any(|n| case.name.contains(n.as_str())))
            })
            .collect();

        if args.list {
            if !args.ignored_only {
                for case in &selected {
                    println!("{}: test", case.name);
                }
            }
            return ExitCode::SUCCESS;
        }
        if args.ignored_only {
            // The suite has no ignored cases: skips are decided at run time, with a reason.
            println!("\nconformance `{}`: no ignored cases", self.name);
            return ExitCode::SUCCESS;
        }

        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("cannot start a tokio runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "\nrunning {} conformance cases against `{}`",
            selected.len(),
            self.name
        );
        let mut report_file = std::env::var_os("SESSION_CONFORMANCE_REPORT").and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .inspect_err(|err| eprintln!("cannot open the report file {path:?}: {err}"))
                .ok()
        });
        let started = Instant::now();
        let report =
            runtime.block_on(self.run_each(selected, |case, outcome, figures, elapsed| {
                println!(
                    "{}",
                    outcome_line(case.name, outcome, Some(elapsed), figures)
                );
                if let Some(file) = report_file.as_mut() {
                    let line = serde_json::json!({
                        "suite": self.name,
                        "case": case.name,
                        "outcome": outcome.label(),
                        "reason": outcome.reason(),
                        "figures": figures,
                        "millis": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                    });
                    if let Err(err) = writeln!(file, "{line}") {
                        eprintln!("cannot write the report file: {err}");
                    }
                }
            }));
        let failures = report.failures();
        if !failures.is_empty() {
            println!("\nfailures:");
            for name in &failures {
                println!("    {name}");
            }
        }
        if report.skipped() > 0 && report.passed() == 0 {
            println!(
                "\nWARNING: every case of `{}` was skipped; nothing was checked",
                self.name
            );
        }
        println!("\n{report} (in {:.2?})\n", started.elapsed());
        if failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// The line a test or a case is reported with: `test NAME ... ok (TIME)`, with the
/// figures after a colon if there are any, `test NAME ... FAILED: REASON` or
/// `test NAME ... skipped: REASON`. The conformance suite and [`Tests`](crate::Tests)
/// share it, so one reading of a log fits both.
pub(crate) fn outcome_line(
    name: &str,
    outcome: &Outcome,
    elapsed: Option<Duration>,
    figures: &[String],
) -> String {
    match outcome {
        Outcome::Passed => {
            let mut line = format!("test {name} ... ok");
            if let Some(elapsed) = elapsed {
                line.push_str(&format!(" ({elapsed:.2?})"));
            }
            if !figures.is_empty() {
                line.push_str(": ");
                line.push_str(&figures.join("; "));
            }
            line
        }
        Outcome::Failed(reason) => format!("test {name} ... FAILED: {reason}"),
        Outcome::Skipped(reason) => format!("test {name} ... skipped: {reason}"),
    }
}

/// The subset of libtest's command line that a test binary is handed.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub(crate) filters: Vec<String>,
    pub(crate) skips: Vec<String>,
    pub(crate) exact: bool,
    pub(crate) list: bool,
    pub(crate) ignored_only: bool,
    /// `--test-threads N`: how many tests may run at once (the suite runs its cases one
    /// at a time and does not read it).
    pub(crate) test_threads: Option<usize>,
}

impl Args {
    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Self {
        let mut parsed = Self::default();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => parsed.exact = true,
                "--list" => parsed.list = true,
                "--ignored" => parsed.ignored_only = true,
                // Nothing is ignored, so including the ignored tests changes nothing.
                "--include-ignored" => {}
                "--skip" => parsed.skips.extend(args.next()),
                "--test-threads" => parsed.test_threads = args.next().and_then(|n| n.parse().ok()),
                other if other.starts_with("--test-threads=") => {
                    parsed.test_threads = other["--test-threads=".len()..].parse().ok();
                }
                // Options with a value we accept and do not need.
                "--format" | "--color" | "--logfile" | "--shuffle-seed" | "-Z" => {
                    args.next();
                }
                other if other.starts_with('-') => {}
                filter => parsed.filters.push(filter.to_owned()),
            }
        }
        parsed
    }

    pub(crate) fn selects(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn understands_cargo_test_arguments() {
        let a = args(&[
            "update",
            "--skip",
            "update_clear",
            "--test-threads",
            "1",
            "--nocapture",
        ]);
        assert!(a.selects("update_sets_and_removes_keys"));
        assert!(!a.selects("update_clear_then_set"));
        assert!(!a.selects("delete_removes_record"));
        let exact = args(&["--exact", "delete_removes_record"]);
        assert!(exact.selects("delete_removes_record"));
        assert!(!exact.selects("delete_removes_record_twice"));
        let list = args(&["--list", "--format", "terse"]);
        assert!(list.list && list.selects("anything"));
        assert_eq!(args(&["--test-threads", "3"]).test_threads, Some(3));
        assert_eq!(args(&["--test-threads=1"]).test_threads, Some(1));
        assert_eq!(args(&["--include-ignored"]).filters, Vec::<String>::new());
    }
}
