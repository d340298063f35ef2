//! File-store guarantees of the user index that the conformance suite cannot see: what is
//! on disk. Index files are replaced whole and stay parseable, corrupt or hostile ones are
//! rebuilt or ignored (never a panic, never a lost entry), gc prunes the entries of the
//! sessions it removes and never takes index files for sessions, and a request that does
//! not change a binding never touches an index file.
//!
//! Two tests print `figure: file | … | …` lines: listing and ending 1,000 sessions of one
//! user, and the files a log-in writes with and without a binding.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    ChangeSet, Owner, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey,
    Timestamp, UserId,
};
use session_file::{FileStore, FileStoreOptions};

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn user(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

fn bound(user: &UserId, expires_in: Duration) -> Record {
    Record::new(
        [("k".to_owned(), b"v".to_vec())].into(),
        Timestamp::now() + expires_in,
        Timestamp::now(),
    )
    .with_owner(Some(Owner::new(user.clone())))
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

fn open(dir: &Path, depth: usize) -> FileStore {
    FileStore::open(FileStoreOptions::new(dir).path_depth(depth)).expect("open")
}

async fn create_bound(store: &FileStore, user: &UserId, expires_in: Duration) -> StoreKey {
    let key = key();
    assert!(
        store
            .create(&key, &bound(user, expires_in))
            .await
            .expect("create")
    );
    key
}

async fn listed(store: &FileStore, user: &UserId) -> HashSet<StoreKey> {
    store
        .sessions_of(user)
        .await
        .expect("list")
        .into_iter()
        .map(|session| session.key)
        .collect()
}

/// Every file under `dir`, folders of lock files left out.
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

fn temp_files(dir: &Path) -> usize {
    files_under(dir)
        .iter()
        .filter(|path| path.to_string_lossy().ends_with(".tmp"))
        .count()
}

/// The inode and modification time of a file: a replaced file gets a new inode.
fn identity(path: &Path) -> Option<(u64, i64, i64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.mtime(), meta.mtime_nsec()))
}

#[tokio::test]
async fn index_files_are_named_by_a_hash_and_hold_only_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let hostile = user("../../etc/passwd\u{202e} ada@example.org");
    let first = create_bound(&store, &hostile, hour()).await;
    let second = create_bound(&store, &hostile, hour()).await;
    let path = store.user_index_path(&hostile);
    assert!(path.starts_with(dir.path().join("users")), "{path:?}");
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    assert_eq!(name.len(), 64);
    assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
    let text = std::fs::read_to_string(&path).expect("index file");
    assert!(
        !text.contains("passwd"),
        "the user id leaked into the index"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two keys: {text:?}");
    let keys: HashSet<&str> = lines[1..].iter().copied().collect();
    assert_eq!(keys, HashSet::from([first.as_str(), second.as_str()]));
    assert_eq!(temp_files(dir.path()), 0, "temporary files left by binds");
}

#[tokio::test]
async fn index_stays_parseable_while_writers_replace_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let ada = user("ada");
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, ada) = (store.clone(), ada.clone());
            tokio::spawn(async move {
                let mut keys = Vec::new();
                for i in 0..50 {
                    keys.push(create_bound(&store, &ada, hour()).await);
                    if i % 3 == 2 {
                        let gone = keys.remove(0);
                        assert!(store.delete(&gone).await.expect("delete"));
                    }
                }
                keys
            })
        })
        .collect();
    // Read the index with no lock as fast as possible while it is rewritten: every read
    // sees a whole file.
    let mut reads = 0u32;
    while !writers.iter().all(|writer| writer.is_finished()) {
        store
            .user_index_len(&ada)
            .await
            .expect("a whole index file");
        reads += 1;
        tokio::task::yield_now().await;
    }
    let mut expected = HashSet::new();
    for writer in writers {
        expected.extend(writer.await.expect("writer"));
    }
    assert!(reads > 0);
    assert_eq!(listed(&store, &ada).await, expected);
    assert_eq!(
        store.user_index_len(&ada).await.expect("len"),
        expected.len() as u64,
        "deleted sessions are pruned at delete"
    );
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn a_corrupt_index_file_is_rebuilt_from_the_session_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 2);
    let (ada, bob) = (user("ada"), user("bob"));
    let adas = HashSet::from([
        create_bound(&store, &ada, hour()).await,
        create_bound(&store, &ada, hour()).await,
    ]);
    create_bound(&store, &bob, hour()).await;
    let path = store.user_index_path(&ada);
    for garbage in [
        &b""[..],
        b"garbage",
        b"SREC\x02",
        &[0u8; 4096],
        b"session-file user index 9\n",
    ] {
        std::fs::write(&path, garbage).expect("corrupt the index");
        let err = store.user_index_len(&ada).await.expect_err("corrupt index");
        assert_eq!(err.kind(), session_core::ErrorKind::Decode, "{err}");
        assert_eq!(listed(&store, &ada).await, adas, "rebuilt by a listing");
        assert_eq!(store.user_index_len(&ada).await.expect("len"), 2);

        // A bind to a user whose index is corrupt rebuilds it too, and loses nothing.
        std::fs::write(&path, garbage).expect("corrupt the index");
        let third = create_bound(&store, &ada, hour()).await;
        let mut with_third = adas.clone();
        with_third.insert(third.clone());
        assert_eq!(listed(&store, &ada).await, with_third, "rebuilt by a bind");
        assert!(store.delete(&third).await.expect("delete"));
        assert_eq!(store.user_index_len(&ada).await.expect("len"), 2);
    }
    assert_eq!(listed(&store, &bob).await.len(), 1, "bob's index untouched");
}

#[tokio::test]
async fn hostile_index_lines_are_ignored_and_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let (ada, bob) = (user("ada"), user("bob"));
    let adas = create_bound(&store, &ada, hour()).await;
    let bobs = create_bound(&store, &bob, hour()).await;
    let unbound = key();
    assert!(
        store
            .create(
                &unbound,
                &Record::new(
                    Default::default(),
                    Timestamp::now() + hour(),
                    Timestamp::now()
                )
            )
            .await
            .expect("create")
    );
    let path = store.user_index_path(&ada);
    let mut text = std::fs::read(&path).expect("index");
    for line in [
        bobs.as_str().as_bytes(),                   // another user's session
        unbound.as_str().as_bytes(),                // a session bound to nobody
        key().as_str().as_bytes(),                  // no such session
        adas.as_str().as_bytes(),                   // a repeat
        b"../../../../etc/passwd",                  // a path
        &adas.as_str().to_uppercase().into_bytes(), // not a store key
        b"\xff\xfe\x00",                            // not text
    ] {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    std::fs::write(&path, &text).expect("hostile index");
    assert_eq!(
        store.user_index_len(&ada).await.expect("len"),
        4,
        "valid keys counted once, hostile lines ignored"
    );
    assert_eq!(listed(&store, &ada).await, HashSet::from([adas.clone()]));
    assert_eq!(
        store.user_index_len(&ada).await.expect("len"),
        1,
        "pruned by the listing"
    );
    let rewritten = std::fs::read_to_string(&path).expect("index");
    assert_eq!(rewritten.lines().count(), 2, "{rewritten:?}");
    assert!(rewritten.ends_with(&format!("{}\n", adas.as_str())));
    assert_eq!(listed(&store, &bob).await, HashSet::from([bobs]));
}

#[tokio::test]
async fn gc_prunes_entries_and_never_takes_index_files_for_sessions() {
    for depth in [0, 1, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), depth);
        let (ada, bob) = (user("ada"), user("bob"));
        let mut live = HashSet::new();
        for _ in 0..5 {
            live.insert(create_bound(&store, &ada, hour()).await);
            create_bound(&store, &ada, Duration::from_millis(100)).await;
        }
        let expiring_bob = create_bound(&store, &bob, Duration::from_millis(100)).await;
        // Debris of an index write cut short, next to the index files.
        let index_dir = store
            .user_index_path(&ada)
            .parent()
            .expect("index folder")
            .to_path_buf();
        let debris = index_dir.join(format!(".{}.0011223344556677.tmp", "ab".repeat(32)));
        std::fs::write(&debris, b"half an index").expect("debris");
        assert_eq!(store.user_index_len(&ada).await.expect("len"), 10);
        tokio::time::sleep(Duration::from_millis(200)).await;

        assert_eq!(
            store.gc().await.expect("gc"),
            6,
            "depth {depth}: the expired sessions, not index files or their debris"
        );
        assert!(!debris.exists(), "depth {depth}: index debris left by gc");
        assert_eq!(
            store.user_index_len(&ada).await.expect("len"),
            5,
            "depth {depth}: gc prunes the entries of the sessions it removes"
        );
        assert!(
            !store.user_index_path(&bob).exists(),
            "depth {depth}: an index file with no entry left is removed"
        );
        assert!(store.load(&expiring_bob).await.expect("load").is_none());
        assert_eq!(listed(&store, &ada).await, live, "depth {depth}");
        assert_eq!(
            store.gc().await.expect("gc"),
            0,
            "depth {depth}: nothing left"
        );
        assert_eq!(store.user_index_len(&ada).await.expect("len"), 5);
    }
}

#[tokio::test]
async fn rebinding_moves_the_entry_between_index_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let (ada, bob) = (user("ada"), user("bob"));
    let key = create_bound(&store, &ada, hour()).await;
    let keep = create_bound(&store, &ada, hour()).await;
    let to_bob = ChangeSet {
        expires_at: Timestamp::now() + hour(),
        owner: Some(Owner::new(bob.clone()).with_label("phone").expect("label")),
        ..ChangeSet::default()
    };
    assert!(store.update(&key, &to_bob).await.expect("rebind"));
    assert_eq!(store.user_index_len(&ada).await.expect("len"), 1);
    assert_eq!(store.user_index_len(&bob).await.expect("len"), 1);
    assert_eq!(listed(&store, &ada).await, HashSet::from([keep.clone()]));
    let bobs = store.sessions_of(&bob).await.expect("list");
    assert_eq!(bobs.len(), 1);
    assert_eq!(
        (bobs[0].key.clone(), bobs[0].label.as_str()),
        (key.clone(), "phone")
    );
    assert!(store.delete(&keep).await.expect("delete"));
    assert!(
        !store.user_index_path(&ada).exists(),
        "an emptied index file is removed"
    );
}

#[tokio::test]
async fn requests_that_keep_the_binding_never_touch_index_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let users_dir = dir.path().join("users");

    // Unbound sessions: create, update, touch, delete, gc; no index folder appears.
    let unbound = key();
    let record = Record::new(
        Default::default(),
        Timestamp::now() + hour(),
        Timestamp::now(),
    );
    assert!(store.create(&unbound, &record).await.expect("create"));
    let changes = ChangeSet {
        set: [("cart".to_owned(), b"book".to_vec())].into(),
        expires_at: Timestamp::now() + hour(),
        ..ChangeSet::default()
    };
    assert!(store.update(&unbound, &changes).await.expect("update"));
    assert!(
        store
            .touch(&unbound, Timestamp::now() + hour())
            .await
            .expect("touch")
    );
    store.gc().await.expect("gc");
    assert!(store.delete(&unbound).await.expect("delete"));
    assert!(
        !users_dir.exists(),
        "unbound sessions created the index folder"
    );

    // A bound session: data changes, touches, a new label, the same user again.
    let ada = user("ada");
    let key = create_bound(&store, &ada, hour()).await;
    let path = store.user_index_path(&ada);
    let before = identity(&path).expect("index file");
    assert!(store.update(&key, &changes).await.expect("update"));
    assert!(
        store
            .touch(&key, Timestamp::now() + hour())
            .await
            .expect("touch")
    );
    let relabel = ChangeSet {
        owner: Some(
            Owner::new(ada.clone())
                .with_label("renamed")
                .expect("label"),
        ),
        expires_at: Timestamp::now() + hour(),
        ..ChangeSet::default()
    };
    assert!(store.update(&key, &relabel).await.expect("relabel"));
    assert_eq!(
        identity(&path),
        Some(before),
        "a request that keeps the binding rewrote the index file"
    );
    let listing = store.sessions_of(&ada).await.expect("list");
    assert_eq!(listing.len(), 1);
    assert_eq!(
        listing[0].label, "renamed",
        "the label lives in the session file"
    );
    assert_eq!(
        identity(&path),
        Some(before),
        "a clean listing writes nothing"
    );
}

#[tokio::test]
async fn figure_listing_and_ending_a_thousand_sessions_of_one_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Filled without fsync (the figure is about reading and deleting); measured with it.
    let setup = FileStore::open(FileStoreOptions::new(dir.path()).fsync(false)).expect("open");
    let store = open(dir.path(), 1);
    let ada = user("ada");
    let count = 1000;
    let started = Instant::now();
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(create_bound(&setup, &ada, hour()).await);
    }
    let filled = started.elapsed();
    // Sessions of other users beside them: a listing must not read those.
    for i in 0..200 {
        create_bound(&setup, &user(&format!("other {i}")), hour()).await;
    }

    let started = Instant::now();
    let listing = store.sessions_of(&ada).await.expect("list");
    let listed_in = started.elapsed();
    assert_eq!(listing.len(), count);

    let started = Instant::now();
    let ended = store.delete_many(&keys).await.expect("delete_many");
    let deleted_in = started.elapsed();
    assert_eq!(ended, count as u64);
    assert_eq!(store.user_index_len(&ada).await.expect("len"), 0);
    assert!(listed(&store, &ada).await.is_empty());
    println!(
        "figure: file | user with {count} sessions | listed in {listed_in:.1?} (1 index read + \
         {count} session reads), ended by one delete_many in {deleted_in:.1?} ({count} unlinks, \
         1 index update); {count} binds without fsync took {filled:.1?}"
    );
}

#[tokio::test]
async fn figure_files_written_by_a_log_in_with_and_without_a_binding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let manager =
        SessionManager::new(Arc::new(store.clone()), SessionConfig::default()).expect("manager");
    let ada = user("ada");
    let rounds = 20u32;
    let mut timings = Vec::new();
    for bind in [false, true] {
        let before: HashSet<_> = files_under(dir.path())
            .into_iter()
            .filter_map(|path| identity(&path).map(|id| (path, id)))
            .collect();
        let started = Instant::now();
        for _ in 0..rounds {
            let session = manager.session_from_cookie_header(None);
            session.set("cart", "book").await.expect("set");
            if bind {
                session.set_user(ada.clone()).await.expect("set_user");
            }
            session.flush().await.expect("flush").expect("a cookie");
        }
        timings.push(started.elapsed() / rounds);
        let written: Vec<PathBuf> = files_under(dir.path())
            .into_iter()
            .filter(|path| identity(path).is_some_and(|id| !before.contains(&(path.clone(), id))))
            .collect();
        let index_files = written
            .iter()
            .filter(|path| path.starts_with(dir.path().join("users")))
            .count();
        let session_files = written.len() - index_files;
        assert_eq!(
            session_files, rounds as usize,
            "bind {bind}: one file per log-in"
        );
        assert_eq!(
            index_files,
            usize::from(bind),
            "bind {bind}: index files written (the one file of the user)"
        );
    }
    println!(
        "figure: file | log-in with fsync | unbound: 1 file written (2 fsyncs), {:.1?}; \
         bound: 2 files written (4 fsyncs), {:.1?}",
        timings[0], timings[1]
    );
}

#[tokio::test]
async fn a_corrupt_session_file_is_left_out_of_its_user_s_listing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1);
    let ada = user("ada");
    let kept = create_bound(&store, &ada, hour()).await;
    let torn = create_bound(&store, &ada, hour()).await;
    std::fs::write(store.file_path(&torn), b"torn").expect("corrupt the file");
    assert_eq!(
        listed(&store, &ada).await,
        HashSet::from([kept]),
        "the listing skips a session file that does not decode, without an error"
    );
}
