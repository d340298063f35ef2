//! `--lock-only`: same-session concurrency, store by store, through the example app.
//!
//! - One hot session: every connection sends the same session's cookie for the run's
//!   duration, to `/incr` (a plain `get` then `set`) with the configuration's `lock` off
//!   and on, and to `/count` (`Session::update`) with it off. Acknowledged increments
//!   (200 responses) are compared with the counter read back afterwards: with the lock
//!   off some are lost, with the lock or with `update` none may be.
//! - The lock's cost on distinct sessions: the main benchmark's existing-sessions workload
//!   (`/incr` over many sessions, none shared by two connections) with the lock off and
//!   on, alternately within each round, and the throughput ratio on / off.
//!
//! A store that keeps no session locks makes the app refuse `lock = true` at start; the
//! row says so, with the app's reason, and the other rows are measured as usual.

use std::path::Path;
use std::sync::Arc;

use crate::loadgen::{self, LoadResult};
use crate::{Launch, Server, Settings, Side, start_with, wipe};

/// What one hot-session run drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    /// `/incr` with the lock off: increments may be lost.
    IncrUnlocked,
    /// `/incr` with the configuration's `lock` on.
    IncrLocked,
    /// `/count` (`Session::update`) with the lock off.
    Count,
}

impl Workload {
    /// Every workload, in the order of the report.
    pub(crate) const ALL: [Self; 3] = [Self::IncrUnlocked, Self::IncrLocked, Self::Count];

    /// The name of the workload in the report.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::IncrUnlocked => "`/incr`, lock off",
            Self::IncrLocked => "`/incr`, lock on",
            Self::Count => "`/count` (`update`), lock off",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::IncrUnlocked | Self::IncrLocked => "/incr",
            Self::Count => "/count",
        }
    }

    fn locked(self) -> bool {
        self == Self::IncrLocked
    }
}

/// The figures of one hot-session run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HotFigures {
    /// Successful requests per second.
    pub(crate) rps: f64,
    /// 200 responses: increments the app said it made.
    pub(crate) acknowledged: u64,
    /// Increments the counter shows afterwards.
    pub(crate) counted: u64,
    /// Other responses (a 503 for a lock not granted in time, a 500) and transport errors.
    pub(crate) refused: u64,
}

impl HotFigures {
    /// Acknowledged increments the counter does not show.
    pub(crate) fn lost(&self) -> i64 {
        self.acknowledged as i64 - self.counted as i64
    }
}

/// One hot-session row: a store, a workload, and its figures or why there are none.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Hot {
    pub(crate) store: String,
    pub(crate) workload: Workload,
    pub(crate) outcome: Result<HotFigures, String>,
}

/// The lock's cost on distinct sessions for one store, over the rounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CostFigures {
    /// Requests per second with the lock off, by round.
    pub(crate) unlocked: Vec<f64>,
    /// Requests per second with the lock on, by round.
    pub(crate) locked: Vec<f64>,
    /// Lost increments over all rounds, lock off and on.
    pub(crate) lost: [i64; 2],
    /// Other responses and transport errors over all rounds, lock off and on.
    pub(crate) errors: [u64; 2],
}

impl CostFigures {
    /// Lock on over lock off in each round.
    pub(crate) fn ratios(&self) -> Vec<f64> {
        self.locked
            .iter()
            .zip(&self.unlocked)
            .map(|(on, off)| on / off)
            .collect()
    }
}

/// One cost row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cost {
    pub(crate) store: String,
    pub(crate) outcome: Result<CostFigures, String>,
}

/// Everything `--lock-only` measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LockResults {
    pub(crate) hot: Vec<Hot>,
    pub(crate) cost: Vec<Cost>,
}

/// The target for the lock's cost on `store`: the lowest acceptable ratio of
/// throughput with the lock on over without it.
pub(crate) fn target(store: &str) -> Option<f64> {
    match store {
        "memory" => Some(0.9),
        "redis" | "postgres" => Some(0.85),
        _ => None,
    }
}

/// Starts the example app on `store`, with the configuration's `lock` on if `locked`. If
/// it does not start, the error carries the last line it wrote (a store without locks:
/// "this store keeps no session locks").
async fn serve(store: &str, scratch: &Path, locked: bool) -> Result<Server, String> {
    let log = scratch.join("server.log");
    let env: &[(&str, &str)] = if locked {
        &[("SESSION__LOCK", "true")]
    } else {
        &[]
    };
    let launch = Launch {
        env,
        stderr: Some(&log),
    };
    match start_with(Side::Ours, store, scratch, &launch).await {
        Ok(server) => Ok(server),
        Err(err) => {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Err(match text.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(reason) => format!(
                    "{err}: {}",
                    reason.trim().trim_start_matches("session-example: ")
                ),
                None => err,
            })
        }
    }
}

/// Drives `workload` on one session of `store` for the run's duration.
async fn hot_run(
    settings: &Settings,
    store: &str,
    workload: Workload,
) -> Result<HotFigures, String> {
    wipe(store)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = serve(store, scratch.path(), workload.locked()).await?;
    // The session starts with its counter at 1.
    let cookies = loadgen::create_sessions(server.addr, 1).await?;
    let result = loadgen::run(
        server.addr,
        workload.path(),
        Arc::new(cookies.clone()),
        settings.connections,
        settings.duration,
    )
    .await;
    let counter = loadgen::read_counters(server.addr, &cookies)
        .await?
        .first()
        .copied()
        .ok_or("no counter read back")?;
    drop(server);
    wipe(store)?;
    Ok(HotFigures {
        rps: result.rps(),
        acknowledged: result.ok,
        counted: counter.saturating_sub(1),
        refused: result.errors,
    })
}

/// The main benchmark's existing-sessions workload on `store`, lock off or on: the load's
/// result and the increments lost.
async fn distinct_run(
    settings: &Settings,
    store: &str,
    locked: bool,
) -> Result<(LoadResult, i64), String> {
    wipe(store)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = serve(store, scratch.path(), locked).await?;
    let cookies = Arc::new(loadgen::create_sessions(server.addr, settings.sessions).await?);
    let result = loadgen::run(
        server.addr,
        "/incr",
        Arc::clone(&cookies),
        settings.connections,
        settings.duration,
    )
    .await;
    let counters = loadgen::read_counters(server.addr, &cookies).await?;
    let increments: i64 = counters.iter().map(|&c| c as i64 - 1).sum();
    drop(server);
    wipe(store)?;
    let lost = result.ok as i64 - increments;
    Ok((result, lost))
}

/// The lock's cost on `store` over the rounds.
async fn cost_runs(settings: &Settings, store: &str) -> Result<CostFigures, String> {
    let mut figures = CostFigures::default();
    for round in 0..settings.rounds {
        // Which goes first alternates, so that a drift of the machine within a round does
        // not favour one; the first round starts with the lock on, which a store without
        // locks refuses at once.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for locked in order {
            let (result, lost) = distinct_run(settings, store, locked).await?;
            println!(
                "  {store:<8} distinct sessions, lock {:<3} round {}  {:>9.0} req/s  p99 {:>6.2} ms  errors {}  lost {lost}",
                if locked { "on" } else { "off" },
                round + 1,
                result.rps(),
                result.quantile_ms(0.99),
                result.errors,
            );
            let slot = usize::from(locked);
            figures.lost[slot] += lost;
            figures.errors[slot] += result.errors;
            if locked {
                figures.locked.push(result.rps());
            } else {
                figures.unlocked.push(result.rps());
            }
        }
    }
    Ok(figures)
}

/// Measures every store of `settings`. A store that cannot run a part (no locks, a server
/// down) gets a row saying why, and the others are measured all the same.
pub(crate) async fn run(settings: &Settings) -> Result<LockResults, String> {
    let mut results = LockResults::default();
    for store in &settings.stores {
        // An unknown store is a mistake on the command line, not a store's failure.
        crate::our_store(store, Path::new(""))?;
        for workload in Workload::ALL {
            let outcome = hot_run(settings, store, workload).await;
            match &outcome {
                Ok(f) => println!(
                    "  {store:<8} one session, {:<30} {:>9.0} req/s  acknowledged {}  counted {}  lost {}  other responses {}",
                    workload.label(),
                    f.rps,
                    f.acknowledged,
                    f.counted,
                    f.lost(),
                    f.refused
                ),
                Err(err) => println!(
                    "  {store:<8} one session, {:<30} not run: {err}",
                    workload.label()
                ),
            }
            results.hot.push(Hot {
                store: store.clone(),
                workload,
                outcome,
            });
        }
        let outcome = cost_runs(settings, store).await;
        if let Err(err) = &outcome {
            println!("  {store:<8} distinct sessions: not run: {err}");
        }
        results.cost.push(Cost {
            store: store.clone(),
            outcome,
        });
    }
    Ok(results)
}
