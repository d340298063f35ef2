//! Request load for fault tests: workers that run counter requests through a
//! [`SessionManager`] while a test breaks the backend under them (pauses or kills a server,
//! kills its connections), and the figures such a test asserts on.
//!
//! Each worker keeps one session and, in a loop, reads its counter `n`, writes `n + 1` and
//! flushes, exactly as a `GET /incr` handler does. It remembers how many increments the
//! store acknowledged, so a counter read back lower than that is an acknowledged write the
//! store lost. A request that failed may or may not have reached the store; it is counted
//! as "unsure" until the next successful read settles it.
//!
//! ```no_run
//! # async fn run(manager: session_core::SessionManager) {
//! use std::time::Duration;
//! use session_testkit::Load;
//!
//! let load = Load::start(manager, 8);
//! tokio::time::sleep(Duration::from_secs(1)).await;
//! let fault = load.elapsed();
//! // ... break the backend here, then repair it ...
//! let repaired = load.elapsed();
//! tokio::time::sleep(Duration::from_secs(3)).await;
//! let report = load.stop().await;
//! assert_eq!(report.panics, 0);
//! assert_eq!(report.lost_increments, 0);
//! assert!(report.first_success_after(repaired).is_some());
//! # let _ = fault; }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use session_core::SessionManager;
use tokio::task::JoinSet;

/// How long one request may take before the worker gives up on it and records a hang.
/// Far above any store timeout: reaching it means a call did not honour its timeout.
pub const HANG: Duration = Duration::from_secs(30);

/// How long a worker waits after a failed request, so a dead backend is not hammered by a
/// tight loop of instant failures.
const BACKOFF: Duration = Duration::from_millis(5);

/// One finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the request started, since the load started.
    pub started: Duration,
    /// How long it took.
    pub latency: Duration,
    /// Whether it succeeded (read, wrote and flushed).
    pub ok: bool,
}

impl Event {
    /// When the request ended, since the load started.
    pub fn ended(&self) -> Duration {
        self.started + self.latency
    }
}

/// Counter requests running against a manager until [`Load::stop`].
#[derive(Debug)]
pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    workers: JoinSet<Worker>,
}

/// What one worker saw.
#[derive(Debug, Default)]
struct Worker {
    events: Vec<Event>,
    lost_increments: u64,
    extra_increments: u64,
    sessions_lost: u64,
    errors: Vec<String>,
}

/// What a load saw, for a fault test's assertions and figures.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Every request, ordered by start.
    pub events: Vec<Event>,
    /// Workers that panicked (a panic anywhere in a request ends its worker).
    pub panics: usize,
    /// Increments the store acknowledged and later did not have, over sessions that still
    /// existed: must be 0.
    pub lost_increments: u64,
    /// Increments found that no request made (above the acknowledged plus the failed
    /// ones): must be 0.
    pub extra_increments: u64,
    /// Sessions that were there and then gone (read back empty): expected only when the
    /// backend itself lost its data, such as a Redis server restarted without persistence.
    pub sessions_lost: u64,
    /// A few of the distinct error messages requests failed with, for the test's output.
    pub sample_errors: Vec<String>,
}

impl Load {
    /// Starts `workers` request loops on `manager`, each with its own session.
    pub fn start(manager: SessionManager, workers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..workers {
            let manager = manager.clone();
            let stop = Arc::clone(&stop);
            set.spawn(work(manager, stop, started));
        }
        Self {
            started,
            stop,
            workers: set,
        }
    }

    /// Time since the load started, to mark when a fault began or ended.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the workers after their current request and gathers what they saw.
    pub async fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = LoadReport::default();
        while let Some(joined) = self.workers.join_next().await {
            match joined {
                Ok(worker) => {
                    report.events.extend(worker.events);
                    report.lost_increments += worker.lost_increments;
                    report.extra_increments += worker.extra_increments;
                    report.sessions_lost += worker.sessions_lost;
                    for error in worker.errors {
                        if report.sample_errors.len() < 5 && !report.sample_errors.contains(&error)
                        {
                            report.sample_errors.push(error);
                        }
                    }
                }
                Err(err) if err.is_panic() => report.panics += 1,
                Err(_) => {}
            }
        }
        report.events.sort_by_key(|event| event.started);
        report
    }
}

impl LoadReport {
    /// Asserts what every fault test expects of a store that lost its backend during
    /// `fault_from..fault_to`: no panic, no acknowledged increment lost and none made up,
    /// requests that succeeded before the fault, failed during it (`failing_from` on, once
    /// calls already under way have had time to end), and succeeded again within `within`
    /// of `fault_to` and from then on. Returns how long after `fault_to` the first request
    /// succeeded, for the test's figure.
    ///
    /// # Panics
    /// With a message naming `what` and the expectation that failed.
    pub fn assert_recovered(
        &self,
        what: &str,
        fault_from: Duration,
        failing_from: Duration,
        fault_to: Duration,
        within: Duration,
    ) -> Duration {
        self.assert_recovered_losing_at_most(what, fault_from, failing_from, fault_to, within, 0)
    }

    /// [`LoadReport::assert_recovered`] for a backend that may lose up to `allowed`
    /// acknowledged increments by design (a Redis that flushes its append-only file once
    /// a second, a replica that takes over before an asynchronous copy arrived): the
    /// same expectations, with at most `allowed` increments lost instead of none.
    ///
    /// # Panics
    /// With a message naming `what` and the expectation that failed.
    pub fn assert_recovered_losing_at_most(
        &self,
        what: &str,
        fault_from: Duration,
        failing_from: Duration,
        fault_to: Duration,
        within: Duration,
        allowed: u64,
    ) -> Duration {
        println!(
            "{what}: {} requests ok, {} failed; errors seen: {:?}",
            self.succeeded(),
            self.failed(),
            self.sample_errors
        );
        assert_eq!(self.panics, 0, "{what}: workers panicked");
        assert!(
            self.lost_increments <= allowed,
            "{what}: {} acknowledged increments lost (at most {allowed} allowed)",
            self.lost_increments
        );
        assert_eq!(self.extra_increments, 0, "{what}: increments nobody made");
        assert!(
            self.succeeded_between(Duration::ZERO, fault_from) > 0,
            "{what}: no request succeeded before the fault"
        );
        assert!(
            self.failed_between(failing_from, fault_to) > 0,
            "{what}: no request failed during the fault"
        );
        let first = self
            .first_success_after(fault_to)
            .unwrap_or_else(|| panic!("{what}: no request succeeded after the fault"));
        assert!(
            first <= within,
            "{what}: first success {first:?} after the fault (limit {within:?})"
        );
        assert!(
            self.steady_after(fault_to),
            "{what}: requests kept failing after the first success"
        );
        first
    }

    /// Requests that succeeded.
    pub fn succeeded(&self) -> usize {
        self.events.iter().filter(|e| e.ok).count()
    }

    /// Requests that failed.
    pub fn failed(&self) -> usize {
        self.events.iter().filter(|e| !e.ok).count()
    }

    /// Requests that started within `from..to` and failed.
    pub fn failed_between(&self, from: Duration, to: Duration) -> usize {
        self.events
            .iter()
            .filter(|e| !e.ok && e.started >= from && e.started < to)
            .count()
    }

    /// Requests that succeeded and started within `from..to`.
    pub fn succeeded_between(&self, from: Duration, to: Duration) -> usize {
        self.events
            .iter()
            .filter(|e| e.ok && e.started >= from && e.started < to)
            .count()
    }

    /// When the last request that failed started; `None` if none failed. For a fault that
    /// breaks only part of the backend (one node of a cluster), where other requests keep
    /// succeeding throughout: errors have stopped once no request after this one fails.
    pub fn last_failure_started(&self) -> Option<Duration> {
        self.events
            .iter()
            .filter(|e| !e.ok)
            .map(|e| e.started)
            .max()
    }

    /// The longest request of all.
    pub fn slowest(&self) -> Duration {
        self.events
            .iter()
            .map(|e| e.latency)
            .max()
            .unwrap_or_default()
    }

    /// How long after `at` the first request that started at or after `at` succeeded
    /// (measured to its end); `None` if none did.
    pub fn first_success_after(&self, at: Duration) -> Option<Duration> {
        self.events
            .iter()
            .filter(|e| e.ok && e.started >= at)
            .map(|e| e.ended().saturating_sub(at))
            .min()
    }

    /// Whether every request started at or after `at` succeeded, once the first one did:
    /// the store recovered for good rather than flapping.
    pub fn steady_after(&self, at: Duration) -> bool {
        let Some(first) = self.events.iter().find(|e| e.ok && e.started >= at) else {
            return false;
        };
        self.events
            .iter()
            .filter(|e| e.started > first.ended())
            .all(|e| e.ok)
    }
}

/// One worker's loop: counter requests on its own session until told to stop.
async fn work(manager: SessionManager, stop: Arc<AtomicBool>, started: Instant) -> Worker {
    let mut worker = Worker::default();
    let mut cookie: Option<String> = None;
    // Increments the store acknowledged on the current session, and failed requests since
    // the last success (each may or may not have been applied).
    let mut acknowledged = 0u64;
    let mut unsure = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let begun = Instant::now();
        let outcome = tokio::time::timeout(HANG, request(&manager, cookie.as_deref())).await;
        let event = Event {
            started: begun.duration_since(started),
            latency: begun.elapsed(),
            ok: matches!(outcome, Ok(Ok(_))),
        };
        worker.events.push(event);
        match outcome {
            Ok(Ok((read, set_cookie))) => {
                if read == 0 && acknowledged > 0 {
                    worker.sessions_lost += 1;
                } else if read < acknowledged {
                    worker.lost_increments += acknowledged - read;
                } else if read > acknowledged + unsure {
                    worker.extra_increments += read - acknowledged - unsure;
                }
                acknowledged = read + 1;
                unsure = 0;
                if let Some(header) = set_cookie {
                    cookie = header;
                }
            }
            Ok(Err(message)) => {
                unsure += 1;
                if worker.errors.len() < 5 && !worker.errors.contains(&message) {
                    worker.errors.push(message);
                }
                tokio::time::sleep(BACKOFF).await;
            }
            Err(_) => {
                unsure += 1;
                worker.errors.push(format!("a request hung for {HANG:?}"));
            }
        }
    }
    worker
}

/// One counter request: the value read, and the cookie the response set (`Some(None)` when
/// it removed the cookie).
async fn request(
    manager: &SessionManager,
    cookie: Option<&str>,
) -> Result<(u64, Option<Option<String>>), String> {
    let session = manager.session_from_cookie_header(cookie);
    let n: u64 = session
        .get("n")
        .await
        .map_err(|err| err.to_string())?
        .unwrap_or(0);
    session
        .set("n", &(n + 1))
        .await
        .map_err(|e| e.to_string())?;
    let set_cookie = session.flush().await.map_err(|err| err.to_string())?;
    if let Some(err) = session.store_error().await {
        return Err(err.to_string());
    }
    let header =
        set_cookie.map(|c| (!c.value().is_empty()).then(|| format!("{}={}", c.name(), c.value())));
    Ok((n, header))
}
