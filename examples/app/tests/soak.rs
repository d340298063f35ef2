//! The example app driven for a while on each store, on axum, with the traffic of a site:
//! new visitors, counter writes (`GET /incr`), reads (`GET /read`), log-outs
//! (`POST /logout`), sessions left to expire, and gc every second. Expected: 0 errors, and
//! once warmed up (the first fifth of the run, at least until the first sessions left
//! alone have expired and been collected) flat resources: the process's resident memory,
//! its open files and its connections to the store's server, and the store's size
//! bounded by the sessions alive at the end.
//!
//! `SESSION_SOAK` sets the length per store (`30m`; 10 s by default, the quick form the
//! suite runs). `cargo xtask torture --soak 30m` runs it and collects the `figure:` lines.
//! A store whose server is unreachable is skipped loudly (a failure under
//! `SESSION_REQUIRE_SERVICES=1`).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use session_core::{SessionManager, SessionStore};
use session_example::Framework;
use session_testkit::{TestError, TestResult, Tests, Trial};
use support::stores::*;
use support::{App, fetch, get, post};

/// Clients, each with sessions of its own.
const CLIENTS: usize = 8;
/// Sessions a client keeps using; an older one is left to expire.
const KEPT: usize = 20;
/// The sessions' idle timeout: a session left alone expires after this.
const TIMEOUT: Duration = Duration::from_secs(3);
/// How often gc runs.
const GC_INTERVAL: Duration = Duration::from_secs(1);

fn main() -> std::process::ExitCode {
    Tests::new(STORES.iter().map(|&store| {
        Trial::tokio(format!("soak_on_{store}"), move || soak(store)).multi_thread(2)
    }))
    // Each measures the process's memory and open files.
    .one_at_a_time()
    .main()
}

/// The length of the run on each store: `SESSION_SOAK`, or 10 s.
fn duration() -> Duration {
    match std::env::var("SESSION_SOAK") {
        Ok(text) => humantime::parse_duration(&text)
            .unwrap_or_else(|err| panic!("SESSION_SOAK={text} is not a duration: {err}")),
        Err(_) => Duration::from_secs(10),
    }
}

/// The process's resident memory, in KiB.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What the soak watches, at one moment.
#[derive(Debug, Clone, Copy)]
struct Resources {
    resident_kib: u64,
    /// Open files apart from the store's own and its connections.
    other_files: usize,
    store_files: usize,
    connections: usize,
    /// Records (files, rows, keys) in the store.
    stored: u64,
}

async fn resources(
    store: &str,
    name: &str,
    folder: &Path,
    memory: Option<&session_memory::MemoryStore>,
) -> Resources {
    let (store_files, connections, other_files) = open_files(folder, server_port(store));
    Resources {
        resident_kib: resident_kib(),
        other_files,
        store_files,
        connections,
        stored: stored_records(store, name, folder, memory).await,
    }
}

/// Counters the clients share.
#[derive(Default)]
struct Traffic {
    requests: AtomicU64,
    errors: AtomicU64,
    created: AtomicU64,
    logouts: AtomicU64,
    /// Sessions each client holds now.
    held: AtomicUsize,
}

/// One client until `until`: a new session one time in ten, a log-out one in twenty, a
/// read one in four, a counter write otherwise, on one of its last [`KEPT`] sessions.
async fn client(app: Arc<App>, traffic: Arc<Traffic>, until: Instant, seed: u64) {
    let mut sessions: Vec<String> = Vec::new();
    let mut state = seed | 1;
    let mut held = 0;
    while Instant::now() < until {
        // xorshift: a different mix per client.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let roll = state % 20;
        let pick = usize::try_from(state >> 32).unwrap_or(0) % sessions.len().max(1);
        let (status, cookie, _) = if sessions.is_empty() || roll < 2 {
            let answer = fetch(&app.client, app.addr, app.framework, get("/incr", None)).await;
            if let Some(cookie) = &answer.1 {
                traffic.created.fetch_add(1, Ordering::Relaxed);
                sessions.push(cookie.clone());
                if sessions.len() > KEPT {
                    // Left alone: it expires and gc removes it.
                    sessions.remove(0);
                }
            }
            answer
        } else if roll == 2 {
            let cookie = sessions.swap_remove(pick);
            traffic.logouts.fetch_add(1, Ordering::Relaxed);
            fetch(
                &app.client,
                app.addr,
                app.framework,
                post("/logout", Some(&cookie), ""),
            )
            .await
        } else if roll < 8 {
            fetch(
                &app.client,
                app.addr,
                app.framework,
                get("/read", Some(&sessions[pick])),
            )
            .await
        } else {
            fetch(
                &app.client,
                app.addr,
                app.framework,
                get("/incr", Some(&sessions[pick])),
            )
            .await
        };
        traffic.requests.fetch_add(1, Ordering::Relaxed);
        if !matches!(status, 200 | 303) {
            traffic.errors.fetch_add(1, Ordering::Relaxed);
        }
        let _ = cookie;
        let now = sessions.len();
        if now != held {
            if now > held {
                traffic.held.fetch_add(now - held, Ordering::Relaxed);
            } else {
                traffic.held.fetch_sub(held - now, Ordering::Relaxed);
            }
            held = now;
        }
    }
}

async fn soak(store: &str) -> TestResult {
    let name = unique("soak", store, Framework::Axum);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let config = config(
        store,
        &name,
        folder.path(),
        serde_json::json!({
            "timeout": format!("{}s", TIMEOUT.as_secs()),
            "touch_after": "1s",
            "gc": {"on": true, "interval": format!("{}s", GC_INTERVAL.as_secs())},
        }),
    );
    // The memory store is made here, so that its size can be read.
    let memory = (store == "memory").then(|| Arc::new(session_memory::MemoryStore::new()));
    let manager = match &memory {
        Some(memory) => SessionManager::new(Arc::clone(memory) as Arc<dyn SessionStore>, config)
            .map_err(|err| TestError::fail(err.to_string()))?,
        None => manager_for(store, config).await?,
    };
    let gc = manager.spawn_gc().expect("gc");
    let app = Arc::new(App::over(Framework::Axum, manager));
    let traffic = Arc::new(Traffic::default());
    let length = duration();
    let started = Instant::now();
    let until = started + length;
    let mut clients = tokio::task::JoinSet::new();
    for seed in 0..CLIENTS {
        clients.spawn(client(
            Arc::clone(&app),
            Arc::clone(&traffic),
            until,
            0x9E37_79B9_7F4A_7C15 ^ (seed as u64 + 1),
        ));
    }
    // Warmed up once the first sessions left alone have expired and been collected.
    let settled = TIMEOUT + 2 * GC_INTERVAL;
    tokio::time::sleep((length / 5).max(settled).min(length / 2)).await;
    let warm = resources(store, &name, folder.path(), memory.as_deref()).await;
    while clients.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let end = resources(store, &name, folder.path(), memory.as_deref()).await;
    if let Some(gc) = gc {
        gc.stop().await;
    }
    let requests = traffic.requests.load(Ordering::Relaxed);
    let errors = traffic.errors.load(Ordering::Relaxed);
    let created = traffic.created.load(Ordering::Relaxed);
    let logouts = traffic.logouts.load(Ordering::Relaxed);
    let held = traffic.held.load(Ordering::Relaxed) as u64;

    assert_eq!(errors, 0, "{store}: {errors} of {requests} requests failed");
    // Memory may settle a little after warm-up (allocator arenas, caches filling up); a
    // leak grows with the run.
    assert!(
        end.resident_kib <= warm.resident_kib + warm.resident_kib / 4 + 16 * 1024,
        "{store}: resident memory grew from {} KiB to {} KiB",
        warm.resident_kib,
        end.resident_kib
    );
    assert!(
        end.other_files <= warm.other_files + CLIENTS,
        "{store}: open files grew from {} to {}",
        warm.other_files,
        end.other_files
    );
    assert!(
        end.store_files <= store_files_bound(store),
        "{store}: {} of the store's files open",
        end.store_files
    );
    assert!(
        end.connections <= POOL.max(warm.connections),
        "{store}: {} connections to the server",
        end.connections
    );
    // Alive at the end: the sessions the clients hold, and the ones they left or created
    // (a log-out creates one for its flash) within the last timeout and two gc intervals,
    // one record each (no log-in binds a user, the lock is off). Without expiry or gc the
    // store would hold every session ever created.
    let per_second = (created + logouts) as f64 / elapsed.as_secs_f64();
    let recent = (per_second * settled.as_secs_f64()).ceil() as u64;
    let bound = held + recent + 16;
    assert!(
        end.stored <= bound,
        "{store}: {} records stored at the end, more than the {bound} the live sessions explain",
        end.stored
    );
    println!(
        "figure: {store} | soak of {elapsed:.0?} on axum ({CLIENTS} clients: new sessions, \
         writes, reads, log-outs, expiry, gc every {GC_INTERVAL:?}) | {requests} requests, \
         {errors} errors, {created} sessions created, {logouts} log-outs; after warm-up → end: \
         resident memory {} → {} KiB, open files {} → {}, store files {} → {}, connections \
         {} → {}, records stored {} → {} (bound {bound})",
        warm.resident_kib,
        end.resident_kib,
        warm.other_files,
        end.other_files,
        warm.store_files,
        end.store_files,
        warm.connections,
        end.connections,
        warm.stored,
        end.stored,
    );
    Ok(())
}
