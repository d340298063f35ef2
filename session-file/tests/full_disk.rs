//! The file store on a disk that really fills: an 8 MiB ext4 file system of the test's own
//! (an image file in a temporary folder, loop-mounted), filled to its last block with
//! sessions and then a filler file. Expected, with fsync on (the default):
//!
//! - creates and writes that need new blocks fail with a typed error whose cause chain
//!   holds the operating system's "no space left" (`io::ErrorKind::StorageFull`);
//! - 0 existing sessions damaged: each loads as its last acknowledged version;
//! - gc runs, and 0 temporary files are left;
//! - once space is freed, creates and growing writes succeed again.
//!
//! Mounting needs root (or `CAP_SYS_ADMIN`): without it the test is skipped loudly, and
//! fails under `SESSION_REQUIRE_SERVICES=1`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use session_core::{ChangeSet, Record, SessionId, SessionStore, StoreKey, Timestamp};
use session_file::{FileStore, FileStoreOptions};
use session_testkit::{TestError, TestResult, Tests, Trial};

fn main() -> std::process::ExitCode {
    Tests::new([Trial::tokio(
        "a_full_file_system_fails_writes_and_damages_nothing",
        a_full_file_system_fails_writes_and_damages_nothing,
    )
    .multi_thread(2)])
    .main()
}

/// The size of the file system.
const IMAGE_BYTES: u64 = 8 * 1024 * 1024;

/// A loop-mounted ext4 file system in a temporary folder, unmounted when dropped.
struct SmallDisk {
    mountpoint: PathBuf,
    // Holds the image and the mount point; removed after the unmount.
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Makes and mounts the file system; a skip when this process may not mount.
    fn mount() -> Result<Self, TestError> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let image = dir.path().join("disk.img");
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).expect("the mount point");
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(IMAGE_BYTES))
            .expect("the image file");
        // No blocks reserved for root: the test runs as root and must see the disk full.
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&image)
            .output()
            .map_err(|err| TestError::skip(format!("cannot run mkfs.ext4: {err}")))?;
        if !made.status.success() {
            return Err(TestError::skip(format!(
                "mkfs.ext4 failed: {}",
                String::from_utf8_lossy(&made.stderr).trim()
            )));
        }
        let mounted = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mountpoint)
            .output()
            .map_err(|err| TestError::skip(format!("cannot run mount: {err}")))?;
        if !mounted.status.success() {
            return Err(TestError::skip(format!(
                "cannot mount a loop-backed ext4 file system here (needs root or \
                 CAP_SYS_ADMIN): {}",
                String::from_utf8_lossy(&mounted.stderr).trim()
            )));
        }
        Ok(Self {
            mountpoint,
            _dir: dir,
        })
    }

    /// Blocks left for an unprivileged writer.
    fn available_bytes(&self) -> u64 {
        let output = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.mountpoint)
            .output()
            .expect("run stat");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut fields = text
            .split_whitespace()
            .map(|f| f.parse::<u64>().expect("a number"));
        let (blocks, size) = (fields.next().expect("blocks"), fields.next().expect("size"));
        blocks * size
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mountpoint).status();
    }
}

fn record(payload: &[u8]) -> Record {
    Record {
        data: [("payload".to_owned(), payload.to_vec())].into(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

fn set_payload(payload: &[u8]) -> ChangeSet {
    ChangeSet {
        set: [("payload".to_owned(), payload.to_vec())].into(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        ..ChangeSet::default()
    }
}

/// Whether `err`'s cause chain holds the operating system's "no space left".
fn is_disk_full(err: &session_core::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        if current
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        {
            return true;
        }
        cause = current.source();
    }
    false
}

/// Asserts that `outcome` failed because the disk is full; `what` names the call.
fn assert_full<T: std::fmt::Debug>(what: &str, outcome: session_core::Result<T>) {
    match outcome {
        Ok(value) => panic!("{what} succeeded on a full disk: {value:?}"),
        Err(err) => assert!(
            is_disk_full(&err),
            "{what} failed, but not with \"no space left\": {}",
            session_core::Report::new(&err)
        ),
    }
}

/// Temporary files under `dir`.
fn temp_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".tmp") {
                count += 1;
            }
        }
    }
    count
}

/// Creates sessions holding `payload` until a create fails for want of space; returns how
/// many were created.
async fn create_until_full(
    store: &FileStore,
    payload: &[u8],
    sessions: &mut HashMap<StoreKey, Vec<u8>>,
) -> usize {
    let mut created = 0;
    loop {
        let key = SessionId::generate(32).expect("id").store_key();
        match store.create(&key, &record(payload)).await {
            Ok(fresh) => {
                assert!(fresh, "a fresh id was taken");
                sessions.insert(key, payload.to_vec());
                created += 1;
            }
            Err(err) => {
                assert!(
                    is_disk_full(&err),
                    "a create failed, but not with \"no space left\": {}",
                    session_core::Report::new(&err)
                );
                return created;
            }
        }
    }
}

async fn a_full_file_system_fails_writes_and_damages_nothing() -> TestResult {
    let disk = tokio::task::block_in_place(SmallDisk::mount)?;
    let folder = disk.mountpoint.join("sessions");
    let store = FileStore::open(FileStoreOptions::new(&folder)).expect("open the file store");
    let mut sessions = HashMap::new();

    // Large sessions first, then small ones into what is left, then a filler file for the
    // last blocks.
    let large = create_until_full(&store, &[b'L'; 48 * 1024], &mut sessions).await;
    let small = create_until_full(&store, b"small", &mut sessions).await;
    let filler_path = disk.mountpoint.join("filler");
    tokio::task::block_in_place(|| {
        use std::io::Write;
        let mut filler = std::fs::File::create(&filler_path).expect("the filler file");
        let block = [0u8; 1024];
        while filler
            .write_all(&block)
            .and_then(|()| filler.sync_data())
            .is_ok()
        {}
    });
    assert_eq!(disk.available_bytes(), 0, "the file system is not full");

    // A write that outgrows its session's slot needs a new file: it fails, and the session
    // keeps its acknowledged version.
    let (grown, _) = sessions.iter().next().expect("a session");
    let grown = grown.clone();
    assert_full(
        "a growing write",
        store
            .update(&grown, &set_payload(&[b'G'; 200 * 1024]))
            .await,
    );
    let fresh = SessionId::generate(32).expect("id").store_key();
    assert_full("a create", store.create(&fresh, &record(b"new")).await);
    // A write that fits a small session's slot (neither outgrowing it nor shrinking to a
    // quarter of it) goes in place and needs no new block: it may succeed; if it fails,
    // it fails for want of space and leaves the session as it was.
    let (rewritten, _) = sessions
        .iter()
        .find(|(key, payload)| **key != grown && payload.as_slice() == b"small")
        .expect("a small session");
    let rewritten = rewritten.clone();
    let in_place = store.update(&rewritten, &set_payload(b"rewritten")).await;
    match &in_place {
        Ok(_) => {
            sessions.insert(rewritten.clone(), b"rewritten".to_vec());
        }
        Err(err) => assert!(
            is_disk_full(err),
            "a write in place failed, but not with \"no space left\": {}",
            session_core::Report::new(err)
        ),
    }
    let collected = store.gc().await.expect("gc on a full disk");
    assert_eq!(collected, 0, "gc removed a live session");
    let stray = temp_files(&folder);
    assert_eq!(stray, 0, "temporary files left after gc");

    let mut damaged = 0;
    for (key, payload) in &sessions {
        let loaded = store.load(key).await.expect("load on a full disk");
        if loaded.map(|record| record.data["payload"].clone()).as_ref() != Some(payload) {
            damaged += 1;
        }
    }
    assert_eq!(damaged, 0, "sessions damaged by the full disk");

    // Space freed: creates and growing writes succeed again.
    std::fs::remove_file(&filler_path).expect("remove the filler");
    for key in sessions.keys().filter(|key| **key != grown).take(8) {
        assert!(store.delete(key).await.expect("delete"));
    }
    assert!(
        store
            .create(&fresh, &record(b"new"))
            .await
            .expect("a create once space is freed")
    );
    store
        .update(&grown, &set_payload(&[b'G'; 200 * 1024]))
        .await
        .expect("a growing write once space is freed");
    let loaded = store
        .load(&grown)
        .await
        .expect("load")
        .expect("the session");
    assert_eq!(loaded.data["payload"], vec![b'G'; 200 * 1024]);

    println!(
        "figure: file | a real full disk (8 MiB ext4, loop-mounted) | {} sessions ({large} of \
         48 KiB, {small} small) and a filler to the last block: creates and growing writes \
         fail with \"no space left\"; a write in place {}; gc ran; 0 of {} sessions damaged, \
         {stray} temporary files left; writes succeed again once space is freed",
        large + small,
        if in_place.is_ok() {
            "succeeded"
        } else {
            "failed with \"no space left\""
        },
        sessions.len(),
    );
    Ok(())
}
