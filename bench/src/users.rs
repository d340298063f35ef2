//! `--users-only`: what sessions bound to users cost, store by store.
//!
//! For each store, through a [`SessionManager`] as an application drives it:
//! - a log-in (a new session with data, a fresh id) without and with `set_user` +
//!   `set_label`, as the mean time of sequential log-ins;
//! - listing a user who has 1,000 sessions (`sessions_of`), median of several listings;
//! - ending those 1,000 sessions (`revoke_user`).
//!
//! Each line gives the store calls the manager made (counted by `CountingStore`) and, where
//! the server can tell, the requests it served: client commands on Redis (`MONITOR`,
//! script-internal commands excluded; the commands of one pipeline count one each, though
//! they travel in one round trip), client statements on MariaDB (`Questions`), and
//! transactions on PostgreSQL (`pg_stat_database`, read once the pool has closed). The
//! store crates' own tests assert the round trips.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    Record, Registry, SessionConfig, SessionId, SessionManager, SessionStore, Timestamp, UserId,
};
use session_testkit::CountingStore;

use crate::{Monitor, mariadb, wipe};

/// Sequential log-ins per measurement.
const LOGINS: usize = 200;
/// Sessions of the user that is listed and revoked.
const SESSIONS: usize = 1000;

/// The configuration that opens `store`, with its files under `scratch`.
fn config(store: &str, scratch: &Path) -> Result<SessionConfig, String> {
    let (kind, url) = crate::our_store(store, &scratch.join("users.db"))?;
    let mut adapter = serde_json::json!({
        "file": {"path": scratch.join("files")},
        "db": {"prefix": "bench_"},
        "redis": {"prefix": "bench:"},
    });
    if let Some(url) = url {
        adapter[kind]["url"] = url.into();
    }
    SessionConfig::from_value(serde_json::json!({
        "type": kind,
        "gc": {"on": false},
        "adapter": adapter,
    }))
    .map_err(|e| e.to_string())
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    session_memory::register(&mut registry);
    session_file::register(&mut registry);
    session_db::register(&mut registry);
    session_redis::register(&mut registry);
    registry
}

/// The one memory store of a run: the others are opened anew for each measurement (and
/// find what the previous one left), but a memory store lives only as long as its handle.
static MEMORY: std::sync::OnceLock<Arc<dyn SessionStore>> = std::sync::OnceLock::new();

/// A manager over `store`, its calls counted.
async fn open(store: &str, scratch: &Path) -> Result<(SessionManager, Arc<CountingStore>), String> {
    let config = config(store, scratch)?;
    let inner = match store {
        "memory" => Arc::clone(MEMORY.get_or_init(|| Arc::new(session_memory::MemoryStore::new()))),
        _ => registry().open(&config).await.map_err(|e| e.to_string())?,
    };
    let counter = Arc::new(CountingStore::new(inner));
    let manager = SessionManager::new(Arc::clone(&counter) as Arc<dyn SessionStore>, config)
        .map_err(|e| e.to_string())?;
    Ok((manager, counter))
}

/// Counts what the server saw of a piece of work.
enum Server {
    None,
    Redis(Monitor),
    Mariadb,
    Postgres,
}

impl Server {
    fn for_store(store: &str, scratch: &Path) -> Result<Self, String> {
        Ok(match store {
            "redis" => Self::Redis(Monitor::start(scratch)?),
            "mysql" => Self::Mariadb,
            "postgres" => Self::Postgres,
            _ => Self::None,
        })
    }

    /// The server's counter now (after letting a monitor settle).
    async fn count(&self) -> Result<Option<u64>, String> {
        match self {
            Self::None => Ok(None),
            Self::Redis(monitor) => {
                tokio::time::sleep(Duration::from_millis(700)).await;
                Ok(Some(monitor.client_commands()))
            }
            Self::Mariadb => {
                let out = mariadb("SHOW GLOBAL STATUS LIKE 'Questions'")?;
                let value = out.split_whitespace().nth(1).unwrap_or_default();
                // The question itself is one.
                value
                    .parse::<u64>()
                    .map(|n| Some(n.saturating_sub(1)))
                    .map_err(|_| format!("Questions: {out:?}"))
            }
            Self::Postgres => crate::settled_postgres_transactions().await.map(Some),
        }
    }
}

/// One measured piece of work: its time, the store calls and the server's requests.
struct Cost {
    time: Duration,
    calls: u64,
    requests: Option<u64>,
}

impl Cost {
    fn describe(&self, per: usize) -> String {
        let per_f = per as f64;
        let trips = self.requests.map_or("–".to_owned(), |trips| {
            format!("{:.2}", trips as f64 / per_f)
        });
        format!(
            "{:.3} ms | {:.2} | {trips}",
            self.time.as_secs_f64() * 1000.0 / per_f,
            self.calls as f64 / per_f
        )
    }
}

/// Runs `work` on a fresh manager over `store` and measures it. PostgreSQL reports a
/// connection's transactions when it closes, so the manager is dropped before the count,
/// and what opening and closing cost is measured apart and taken off.
async fn measure<F, Fut>(store: &str, scratch: &Path, work: F) -> Result<Cost, String>
where
    F: FnOnce(SessionManager) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let server = Server::for_store(store, scratch)?;
    let overhead = if matches!(server, Server::Postgres) {
        let before = server.count().await?;
        drop(open(store, scratch).await?);
        let after = server.count().await?;
        after.zip(before).map_or(0, |(a, b)| a.saturating_sub(b))
    } else {
        0
    };
    let (manager, counter) = open(store, scratch).await?;
    let before = server.count().await?;
    let calls_before = counter.counts().total();
    let started = Instant::now();
    work(manager).await?;
    let time = started.elapsed();
    let calls = counter.counts().total() - calls_before;
    drop(counter);
    let after = server.count().await?;
    Ok(Cost {
        time,
        calls,
        requests: after
            .zip(before)
            .map(|(a, b)| a.saturating_sub(b).saturating_sub(overhead)),
    })
}

async fn logins(manager: SessionManager, bind: bool) -> Result<(), String> {
    let user = UserId::new("bench-user").map_err(|e| e.to_string())?;
    for i in 0..LOGINS {
        let session = manager.session_from_cookie_header(None);
        session.set("device", &i).await.map_err(|e| e.to_string())?;
        if bind {
            session
                .set_user(user.clone())
                .await
                .map_err(|e| e.to_string())?;
            session
                .set_label("Firefox on Linux")
                .await
                .map_err(|e| e.to_string())?;
        }
        session.cycle_id().await.map_err(|e| e.to_string())?;
        session.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Gives `user` [`SESSIONS`] bound sessions, straight through the store.
async fn fill(manager: &SessionManager, user: &UserId) -> Result<(), String> {
    let owner = Some(session_core::Owner::new(user.clone()));
    let expires_at = Timestamp::now() + Duration::from_secs(3600);
    for _ in 0..SESSIONS {
        let key = SessionId::generate(32)
            .map_err(|e| e.to_string())?
            .store_key();
        let record = Record::new(
            [("n".to_owned(), vec![1])].into(),
            expires_at,
            Timestamp::now(),
        )
        .with_owner(owner.clone());
        manager
            .store()
            .create(&key, &record)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn store_lines(store: &str) -> Result<Vec<String>, String> {
    wipe(store)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let scratch = scratch.path();
    let mut lines = Vec::new();
    let mut line = |what: &str, cost: Cost, per: usize| {
        let line = format!("| {store} | {what} | {} |", cost.describe(per));
        println!("  {line}");
        lines.push(line);
    };
    let plain = measure(store, scratch, |m| logins(m, false)).await?;
    line("log-in, unbound", plain, LOGINS);
    let bound = measure(store, scratch, |m| logins(m, true)).await?;
    line("log-in with `set_user` + `set_label`", bound, LOGINS);

    let user = UserId::new("bench-1000").map_err(|e| e.to_string())?;
    {
        let (manager, _) = open(store, scratch).await?;
        fill(&manager, &user).await?;
    }
    let listing = measure(store, scratch, |manager| {
        let user = user.clone();
        async move {
            let listed = manager
                .sessions_of(&user)
                .await
                .map_err(|e| e.to_string())?;
            if listed.len() == SESSIONS {
                Ok(())
            } else {
                Err(format!("listed {} of {SESSIONS} sessions", listed.len()))
            }
        }
    })
    .await?;
    line("list a user's 1,000 sessions", listing, 1);
    let revoke = measure(store, scratch, |manager| {
        let user = user.clone();
        async move {
            let ended = manager
                .revoke_user(&user, None)
                .await
                .map_err(|e| e.to_string())?;
            if ended == SESSIONS as u64 {
                Ok(())
            } else {
                Err(format!("revoked {ended} of {SESSIONS} sessions"))
            }
        }
    })
    .await?;
    line("revoke a user's 1,000 sessions", revoke, 1);
    wipe(store)?;
    Ok(lines)
}

/// Measures every store in `stores`; the table rows.
pub(crate) async fn run(stores: &[String]) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for store in stores {
        lines.extend(store_lines(store).await?);
    }
    Ok(lines)
}
