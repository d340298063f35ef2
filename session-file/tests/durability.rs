//! Every durability setting (group commit, a flush per file, no flush) keeps every write
//! it acknowledged, under concurrent writers, as another handle on the folder reads it.

use std::sync::Arc;
use std::time::Duration;

use session_core::{ChangeSet, Record, SessionId, SessionStore, StoreKey, Timestamp};
use session_file::{FileStore, FileStoreOptions};

fn record(value: &[u8]) -> Record {
    Record {
        data: [("n".to_owned(), value.to_vec())].into(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

fn set(value: &[u8]) -> ChangeSet {
    ChangeSet {
        set: [("n".to_owned(), value.to_vec())].into(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        ..ChangeSet::default()
    }
}

/// 32 writers, each creating a session and updating it 20 times (a value that outgrows
/// its slot halfway, so that new files and in-place writes both happen), all at once.
async fn concurrent_writers_lose_nothing(mut options: FileStoreOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |options: FileStoreOptions| {
        Arc::new(FileStore::open(options.clone()).expect("open the file store"))
    };
    options.path = dir.path().to_owned();
    let store = open(options.clone());
    let writers: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = SessionId::generate(32).expect("id").store_key();
                assert!(store.create(&key, &record(b"0")).await.expect("create"));
                for i in 1..=20u8 {
                    let len = if i > 10 { 5000 } else { 1 };
                    let applied = store.update(&key, &set(&vec![i; len])).await;
                    assert!(applied.expect("update"), "the session is live");
                }
                key
            })
        })
        .collect();
    let mut keys: Vec<StoreKey> = Vec::new();
    for writer in writers {
        keys.push(writer.await.expect("writer"));
    }
    let reader = open(options);
    for key in &keys {
        let record = reader.load(key).await.expect("load").expect("session");
        assert_eq!(
            record.data["n"],
            vec![20u8; 5000],
            "the last acknowledged write"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_keeps_every_acknowledged_write() {
    concurrent_writers_lose_nothing(FileStoreOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_per_file_keeps_every_acknowledged_write() {
    concurrent_writers_lose_nothing(FileStoreOptions::default().group_commit(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_without_fsync_are_still_whole_and_seen_by_other_handles() {
    concurrent_writers_lose_nothing(FileStoreOptions::default().fsync(false)).await;
}

#[test]
fn group_commit_is_on_by_default_and_configurable() {
    let options = FileStoreOptions::default();
    assert!(options.fsync && options.group_commit);
    let parsed: FileStoreOptions =
        serde_json::from_str(r#"{"path": "/tmp/x", "group_commit": false}"#).expect("parse");
    assert!(parsed.fsync && !parsed.group_commit);
}
