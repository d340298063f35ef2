//! File-store guarantees of the session lock that the conformance suite cannot see: what
//! is on disk. Lease files are small text files apart from the session files, a corrupt
//! one counts as lapsed (never an error, never a panic), gc removes lapsed ones without
//! counting them and leaves hostile entries (folders, links, pipes, odd names) alone, and
//! a locked request leaves no lease file behind.
//!
//! One test prints a `figure: file | … | …` line: a locked request against an unlocked one.

use std::os::unix::fs::{FileTypeExt as _, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    LockToken, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey, Timestamp,
};
use session_file::{FileStore, FileStoreOptions};

const HEADER: &str = "session-file lease 1";
const MINUTE: Duration = Duration::from_secs(60);

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn token() -> LockToken {
    LockToken::generate().expect("token")
}

fn open(dir: &Path, depth: usize) -> FileStore {
    FileStore::open(FileStoreOptions::new(dir).path_depth(depth)).expect("open")
}

fn record(expires_at: Timestamp) -> Record {
    Record::new(
        [("k".to_owned(), b"v".to_vec())].into(),
        expires_at,
        Timestamp::now(),
    )
}

/// The token and expiry in the lease file at `path`, checked line by line.
fn lease_at(path: &Path) -> (String, i64) {
    let text = std::fs::read_to_string(path).expect("read the lease file");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        text.ends_with('\n'),
        "a lease file without its last newline"
    );
    assert_eq!(lines.len(), 3, "lines of a lease file: {lines:?}");
    assert_eq!(lines[0], HEADER);
    (
        lines[1].to_owned(),
        lines[2].parse().expect("an expiry in ms"),
    )
}

/// Every file (not folder) under `dir`, lock files left out.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                if entry.file_name() != ".locks" {
                    stack.push(entry.path());
                }
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

fn mkdir_parent(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("mkdir");
}

#[tokio::test]
async fn lease_files_are_text_apart_from_the_session_files() {
    for depth in [0, 1, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), depth);
        let key = key();
        assert!(
            store
                .create(&key, &record(Timestamp::now() + MINUTE))
                .await
                .expect("create")
        );
        let session_file = store.file_path(&key);
        let session_bytes = std::fs::read(&session_file).expect("session file");

        let holder = token();
        let before = Timestamp::now();
        assert!(store.lock(&key, &holder, MINUTE).await.expect("lock"));
        let after = Timestamp::now();
        let path = store.lease_path(&key);
        let mut expected = dir.path().join("leases");
        for digit in key.as_str().chars().take(depth) {
            expected.push(digit.to_string());
        }
        assert_eq!(path, expected.join(key.as_str()), "depth {depth}");
        let (written, expires) = lease_at(&path);
        assert_eq!(
            written,
            holder.as_str(),
            "depth {depth}: the holder's token"
        );
        let ttl = i64::try_from(MINUTE.as_millis()).expect("ms");
        assert!(
            (before.as_millis() + ttl..=after.as_millis() + ttl).contains(&expires),
            "depth {depth}: the expiry is the lock call's time plus the ttl"
        );
        assert_eq!(
            std::fs::read(&session_file).expect("session file"),
            session_bytes,
            "depth {depth}: locking changed the session file"
        );
        assert_eq!(
            files_under(dir.path()).len(),
            2,
            "depth {depth}: one session file and one lease file"
        );

        assert!(
            store
                .renew_lock(&key, &holder, 2 * MINUTE)
                .await
                .expect("renew")
        );
        let (_, renewed) = lease_at(&path);
        assert!(
            renewed >= expires + ttl,
            "depth {depth}: a renewal for two minutes moved the expiry by {} ms",
            renewed - expires
        );

        assert!(store.unlock(&key, &holder).await.expect("unlock"));
        assert!(!path.exists(), "depth {depth}: the released lease's file");
        assert_eq!(
            files_under(dir.path()),
            std::slice::from_ref(&session_file),
            "depth {depth}: files after the release"
        );

        // A lock on a key with no session creates its lease, and no session file.
        let empty = self::key();
        assert!(store.lock(&empty, &holder, MINUTE).await.expect("lock"));
        assert!(store.lease_path(&empty).exists());
        assert!(!store.file_path(&empty).exists(), "depth {depth}");
        assert_eq!(
            store.load(&empty).await.expect("load"),
            None,
            "depth {depth}"
        );
    }
}

#[tokio::test]
async fn corrupt_lease_files_count_as_lapsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let other = token();
    let whole = format!("{HEADER}\n{}\n{}\n", other.as_str(), i64::MAX);
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("header only", format!("{HEADER}\n").into_bytes()),
        ("truncated", whole.as_bytes()[..whole.len() - 1].to_vec()),
        ("torn token", whole.as_bytes()[..HEADER.len() + 10].to_vec()),
        ("garbage", b"{\"this is\": \"not a lease\"}".to_vec()),
        ("NUL-filled", vec![0; 128]),
        ("not UTF-8", vec![0xff; 128]),
        ("upper-case token", whole.to_uppercase().into_bytes()),
        (
            "other version",
            whole.replace("lease 1", "lease 9").into_bytes(),
        ),
        (
            "expiry not a number",
            whole.replace(&i64::MAX.to_string(), "soon").into_bytes(),
        ),
        (
            "expiry overflows",
            whole
                .replace(&i64::MAX.to_string(), &"9".repeat(40))
                .into_bytes(),
        ),
        ("trailing line", format!("{whole}more\n").into_bytes()),
        ("a megabyte", whole.repeat(1 << 14).into_bytes()),
        (
            "lapsed",
            format!("{HEADER}\n{}\n1\n", other.as_str()).into_bytes(),
        ),
    ];
    for (what, bytes) in corruptions {
        let key = key();
        let path = store.lease_path(&key);
        mkdir_parent(&path);
        std::fs::write(&path, &bytes).expect("write the lease file");
        assert!(
            !store.renew_lock(&key, &other, MINUTE).await.expect(what),
            "{what}: renewed"
        );
        let holder = token();
        assert!(
            store.lock(&key, &holder, MINUTE).await.expect(what),
            "{what}: the lock was refused"
        );
        assert_eq!(lease_at(&path).0, holder.as_str(), "{what}: replaced");
        assert!(
            !store.lock(&key, &other, MINUTE).await.expect(what),
            "{what}: the new lease was granted to another token"
        );
    }

    // Another token's unlock leaves a corrupt file as it was (the next lock replaces it).
    let key = key();
    let path = store.lease_path(&key);
    mkdir_parent(&path);
    std::fs::write(&path, b"garbage").expect("write");
    assert!(!store.unlock(&key, &other).await.expect("unlock"));
    assert_eq!(std::fs::read(&path).expect("read"), b"garbage");

    // A folder where a lease file belongs is an error, not a panic and not a grant.
    let key = self::key();
    let path = store.lease_path(&key);
    std::fs::create_dir_all(&path).expect("mkdir");
    let err = store
        .lock(&key, &other, MINUTE)
        .await
        .expect_err("a lock over a folder");
    assert_eq!(err.kind(), session_core::ErrorKind::Backend, "{err}");
    assert!(path.is_dir());
}

/// Hostile entries named like store keys (a folder, links, a pipe) and odd names in
/// `dir`; returns them all, to check they are still there.
fn plant_hostile_entries(dir: &Path, outside: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("mkdir");
    let folder = dir.join(key().as_str());
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("inside"), b"x").expect("write");
    let link = dir.join(key().as_str());
    symlink(outside, &link).expect("symlink");
    let dir_link = dir.join(key().as_str());
    symlink(outside.parent().expect("parent"), &dir_link).expect("symlink");
    let pipe = dir.join(key().as_str());
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let odd: PathBuf = {
        use std::os::unix::ffi::OsStrExt as _;
        dir.join(std::ffi::OsStr::from_bytes(b"\xff\xfe.lock"))
    };
    std::fs::write(&odd, b"x").expect("write");
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, b"an operator's notes").expect("write");
    let upper = dir.join(key().as_str().to_uppercase());
    std::fs::write(&upper, b"garbage").expect("write");
    vec![folder, link, dir_link, pipe, odd, notes, upper]
}

#[tokio::test]
async fn gc_removes_lapsed_leases_counts_only_sessions_and_leaves_hostile_files() {
    for depth in [0, 1, 2] {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("session");
        let store = open(&dir, depth);
        // A file outside the folder, which links inside point to: gc must not touch it.
        let outside = root.path().join("outside");
        std::fs::write(&outside, format!("{HEADER}\n{}\n1\n", token().as_str())).expect("write");

        let expired = key();
        assert!(
            store
                .create(&expired, &record(Timestamp::now() - MINUTE))
                .await
                .expect("create")
        );
        let (live, held) = (key(), token());
        assert!(store.lock(&live, &held, MINUTE).await.expect("lock"));
        let lapsed = key();
        assert!(
            store
                .lock(&lapsed, &token(), Duration::from_millis(1))
                .await
                .expect("lock")
        );
        let corrupt = key();
        mkdir_parent(&store.lease_path(&corrupt));
        std::fs::write(store.lease_path(&corrupt), b"torn").expect("write");
        let debris = key();
        let debris_path = store
            .lease_path(&debris)
            .with_file_name(format!(".{}.0011223344556677.tmp", debris.as_str()));
        mkdir_parent(&debris_path);
        std::fs::write(&debris_path, b"half a lease").expect("write");
        tokio::time::sleep(Duration::from_millis(20)).await;

        let lease_shard = store.lease_path(&key()).parent().expect("dir").to_owned();
        let session_shard = store.file_path(&key()).parent().expect("dir").to_owned();
        let mut hostile = plant_hostile_entries(&lease_shard, &outside);
        hostile.extend(plant_hostile_entries(&session_shard, &outside));
        if depth > 0 {
            // Odd entries beside the shard folders too.
            hostile.push(dir.join("leases").join("zz"));
            std::fs::create_dir(dir.join("leases").join("zz")).expect("mkdir");
            hostile.push(dir.join("leases").join("README"));
            std::fs::write(dir.join("leases").join("README"), b"x").expect("write");
        }

        let gc = store.gc();
        tokio::pin!(gc);
        let Ok(gc) = tokio::time::timeout(Duration::from_secs(20), &mut gc).await else {
            // A gc that opened a pipe waits for a writer. Opening the pipes for reading and
            // writing (which never blocks on Linux) lets it go on, so that the test fails
            // instead of hanging.
            loop {
                for path in &hostile {
                    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
                        let pipe = std::fs::OpenOptions::new()
                            .read(true)
                            .write(true)
                            .open(path);
                        drop(pipe);
                    }
                }
                if tokio::time::timeout(Duration::from_millis(100), &mut gc)
                    .await
                    .is_ok()
                {
                    panic!("depth {depth}: gc opened a pipe (and waited for a writer)");
                }
            }
        };
        let removed = gc.expect("gc");
        assert_eq!(
            removed, 1,
            "depth {depth}: gc counts the expired session only"
        );
        assert!(!store.file_path(&expired).exists(), "depth {depth}");
        assert!(
            store.lease_path(&live).exists(),
            "depth {depth}: gc removed a live lease"
        );
        assert!(
            !store.lock(&live, &token(), MINUTE).await.expect("lock"),
            "depth {depth}: the live lease no longer held after gc"
        );
        for (what, path) in [
            ("lapsed lease", store.lease_path(&lapsed)),
            ("corrupt lease", store.lease_path(&corrupt)),
            ("lease temp file", debris_path),
        ] {
            assert!(!path.exists(), "depth {depth}: {what} left by gc");
        }
        for path in &hostile {
            assert!(
                std::fs::symlink_metadata(path).is_ok(),
                "depth {depth}: gc removed {}",
                path.display()
            );
        }
        assert!(outside.exists(), "depth {depth}: a link's target removed");
        assert_eq!(
            store.gc().await.expect("gc"),
            0,
            "depth {depth}: a second gc"
        );
        assert!(store.unlock(&live, &held).await.expect("unlock"));
    }
}

#[tokio::test]
async fn figure_a_locked_request_leaves_no_lease_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(dir.path(), 1));
    let plain = SessionManager::new(
        Arc::clone(&store) as Arc<dyn SessionStore>,
        SessionConfig::default(),
    )
    .expect("manager");
    let locked = SessionManager::new(
        Arc::clone(&store) as Arc<dyn SessionStore>,
        SessionConfig::from_json_str(r#"{"lock": true}"#).expect("config"),
    )
    .expect("manager");
    let session = plain.session_from_cookie_header(None);
    session.set("n", &0u64).await.expect("set");
    let cookie = session.flush().await.expect("flush").expect("a cookie");
    let header = format!("{}={}", cookie.name(), cookie.value());

    let rounds = 20u32;
    let mut timings = Vec::new();
    for manager in [&plain, &locked] {
        let started = Instant::now();
        for _ in 0..rounds {
            let session = manager.session_from_cookie_header(Some(&header));
            let n: u64 = session.get("n").await.expect("get").unwrap_or(0);
            session.set("n", &(n + 1)).await.expect("set");
            session.flush().await.expect("flush");
            assert!(
                files_under(&dir.path().join("leases")).is_empty(),
                "a lease file left after the flush"
            );
        }
        timings.push(started.elapsed() / rounds);
    }
    let n: Option<u64> = plain
        .session_from_cookie_header(Some(&header))
        .get("n")
        .await
        .expect("get");
    assert_eq!(n, Some(2 * u64::from(rounds)));
    println!(
        "figure: file | a request with fsync | unlocked {:.1?}; locked {:.1?} (lease written \
         and deleted, not fsynced); 0 lease files left",
        timings[0], timings[1]
    );
}
