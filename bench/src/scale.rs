//! `--scale`: how costs grow with the number of sessions.
//!
//! - memory store: resident bytes per session, and gc time, at 10k, 100k and 1M sessions;
//! - file store: gc time at 10k, 100k and 1M files (8 KiB each on disk);
//! - SQL (PostgreSQL): gc time with 1M rows of which 1% expired.
//!
//! In each gc measurement 1% of the sessions have expired (10% for the file store, so the
//! sweep has work to do).

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{Record, SessionId, SessionStore, Timestamp};

fn resident_bytes() -> u64 {
    // /proc/self/statm: size resident shared ... in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn record(expires_at: Timestamp) -> Record {
    Record {
        data: [("n".to_owned(), vec![1, 2, 3, 4, 5, 6, 7, 8])].into(),
        expires_at,
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

async fn fill(store: &dyn SessionStore, count: usize, expired_every: usize) -> Result<(), String> {
    let live = Timestamp::now() + Duration::from_secs(3600);
    let soon = Timestamp::now() + Duration::from_millis(300);
    for i in 0..count {
        let key = SessionId::generate(32)
            .map_err(|e| e.to_string())?
            .store_key();
        let expires_at = if i % expired_every == 0 { soon } else { live };
        store
            .create(&key, &record(expires_at))
            .await
            .map_err(|e| e.to_string())?;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    Ok(())
}

pub(crate) async fn run() -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for count in [10_000usize, 100_000, 1_000_000] {
        let before = resident_bytes();
        let store = session_memory::MemoryStore::new();
        fill(&store, count, 100).await?;
        let per_session = resident_bytes().saturating_sub(before) as f64 / count as f64;
        let started = Instant::now();
        let removed = store.gc().await.map_err(|e| e.to_string())?;
        let line = format!(
            "| memory, {count} sessions | {per_session:.0} resident bytes per session; gc removed {removed} expired in {:.2} ms |",
            started.elapsed().as_secs_f64() * 1000.0
        );
        println!("  {line}");
        lines.push(line);
        drop(store);
    }
    for count in [10_000usize, 100_000, 1_000_000] {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = session_file::FileStore::open(
            session_file::FileStoreOptions::new(dir.path()).fsync(false),
        )
        .map_err(|e| e.to_string())?;
        fill(&store, count, 10).await?;
        let started = Instant::now();
        let removed = store.gc().await.map_err(|e| e.to_string())?;
        let line = format!(
            "| file, {count} files | gc removed {removed} expired in {:.0} ms |",
            started.elapsed().as_secs_f64() * 1000.0
        );
        println!("  {line}");
        lines.push(line);
    }
    lines.push(sql_gc().await?);
    Ok(lines)
}

/// 1M rows in a PostgreSQL table of the db store, 1% expired, then one `gc()`.
async fn sql_gc() -> Result<String, String> {
    let config = serde_json::json!({ "url": crate::POSTGRES_URL, "prefix": "bench_gc_" });
    let options = session_core::AdapterOptions::new("db", config);
    let mut registry = session_core::Registry::new();
    session_db::register(&mut registry);
    let session_config = session_core::SessionConfig::from_value(serde_json::json!({
        "type": "db", "adapter": {"db": options.value()}
    }))
    .map_err(|e| e.to_string())?;
    let store: Arc<dyn SessionStore> = registry
        .open(&session_config)
        .await
        .map_err(|e| e.to_string())?;
    // Bulk-load through SQL: generating 1M rows through the store would measure inserts.
    let now = Timestamp::now().as_millis();
    crate::psql(&format!(
        "TRUNCATE bench_gc_session; \
         INSERT INTO bench_gc_session (cookie, data, expire) \
         SELECT md5(i::text) || md5((i + 1)::text), '\\x00'::bytea, \
                CASE WHEN i % 100 = 0 THEN {expired} ELSE {live} END \
         FROM generate_series(1, 1000000) AS i; ANALYZE bench_gc_session;",
        expired = now - 1000,
        live = now + 3_600_000
    ))?;
    let started = Instant::now();
    let removed = store.gc().await.map_err(|e| e.to_string())?;
    let line = format!(
        "| PostgreSQL, 1,000,000 rows, 1% expired | gc removed {removed} in {:.0} ms |",
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!("  {line}");
    crate::psql("DROP TABLE IF EXISTS bench_gc_session")?;
    Ok(line)
}
