//! File-store guarantees that need real OS processes, real folders and real signals:
//!
//! - two processes writing distinct keys of one session concurrently lose nothing;
//! - a writer killed (SIGKILL) at random points of a write loop leaves every file readable
//!   as an old or a new version, and gc then removes every stray temporary file;
//! - a write that hits the file-size limit (`RLIMIT_FSIZE`, standing in for a full disk)
//!   is an error and damages no existing session;
//! - hostile ids never lead to a file-system access, and corrupt files are "no session"
//!   and are replaced by the next write;
//! - two processes binding, ending and rebinding sessions of one user concurrently lose no
//!   index entry, and a binder killed at random points leaves every index file whole and
//!   no live bound session missing from it;
//! - two processes each running 25 concurrent read-modify-write increments of one session
//!   lose none, under the session lock and with `Session::update` without it (the lease
//!   files hold the lock across the processes).
//!
//! The binary is its own child: with `SESSION_FILE_CHILD` set it runs one child role
//! instead of the scenarios. `SESSION_TORTURE=long` runs 1,000 kill trials instead of 40.
//! Each scenario prints a `figure: file | <scenario> | <figure>` line for
//! `cargo xtask torture`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashSet;

use session_core::{
    ChangeSet, ErrorKind, Owner, Record, SessionConfig, SessionId, SessionManager, SessionStore,
    StoreKey, Timestamp, UserId, wire,
};
use session_file::{FileStore, FileStoreOptions};
use session_testkit::CountingStore;

const CHILD_ENV: &str = "SESSION_FILE_CHILD";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn open(path: &Path) -> FileStore {
    FileStore::open(FileStoreOptions::new(path)).expect("open the file store")
}

fn live(pairs: &[(&str, &[u8])]) -> Record {
    Record {
        data: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

fn set_one(key: &str, value: &[u8]) -> ChangeSet {
    ChangeSet {
        set: [(key.to_owned(), value.to_vec())].into(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        ..ChangeSet::default()
    }
}

fn child(role: &str, args: &[String]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current exe"));
    command
        .env(CHILD_ENV, role)
        .args(args)
        .stdout(Stdio::null());
    command
}

// ---------------------------------------------------------------------------------------
// Child roles

fn child_main(role: &str) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = runtime();
    let result = rt.block_on(async {
        match role {
            // args: folder, key, process tag, count
            "writer" => {
                let store = open(Path::new(&args[0]));
                let key = StoreKey::parse(&args[1]).expect("key");
                let count: u32 = args[3].parse().expect("count");
                for i in 0..count {
                    let applied = store
                        .update(
                            &key,
                            &set_one(&format!("{}-{i}", args[2]), &i.to_le_bytes()),
                        )
                        .await?;
                    assert!(applied, "the session vanished");
                }
                Ok(())
            }
            // args: folder, keys...; writes forever until killed.
            "loop" => {
                let store = open(Path::new(&args[0]));
                let keys: Vec<StoreKey> = args[1..]
                    .iter()
                    .map(|k| StoreKey::parse(k).expect("key"))
                    .collect();
                let mut i = 0u64;
                loop {
                    let key = &keys[(i as usize) % keys.len()];
                    let size = 1 + (i as usize * 7919) % (64 * 1024);
                    store
                        .update(key, &set_one("payload", &vec![(i % 251) as u8; size]))
                        .await?;
                    i += 1;
                }
            }
            // args: folder, key; runs under a small RLIMIT_FSIZE.
            "disk-full" => {
                let store = open(Path::new(&args[0]));
                let key = StoreKey::parse(&args[1]).expect("key");
                let err = store
                    .update(&key, &set_one("big", &vec![7u8; 1024 * 1024]))
                    .await
                    .expect_err("a write past the file-size limit must fail");
                assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
                let fresh = SessionId::generate(32).expect("id").store_key();
                let err = store
                    .create(&fresh, &live(&[("big", &vec![7u8; 1024 * 1024])]))
                    .await
                    .expect_err("a create past the file-size limit must fail");
                assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
                Ok(())
            }
            // args: folder, user, count; binds `count` sessions, ending every fourth one's
            // predecessor and moving every fifth to another user.
            "binder" => {
                let store = open(Path::new(&args[0]));
                let user = UserId::new(args[1].as_str()).expect("user");
                let count: u32 = args[2].parse().expect("count");
                bind_loop(&store, &user, Some(count)).await
            }
            // args: folder, user; binds until killed.
            "bind-loop" => {
                let store = open(Path::new(&args[0]));
                let user = UserId::new(args[1].as_str()).expect("user");
                bind_loop(&store, &user, None).await
            }
            // args: folder, cookie header, mode (lock | update | plain), count, start
            // (wall-clock ms); runs `count` concurrent increments of the session from then.
            "incrementer" => {
                let store = Arc::new(open(Path::new(&args[0])));
                let mode = Increment::parse(&args[2]);
                let count: u32 = args[3].parse().expect("count");
                let start = Timestamp::from_millis(args[4].parse().expect("start"));
                let manager = Arc::new(SessionManager::new(store, mode.config())?);
                tokio::time::sleep(start.saturating_duration_since(Timestamp::now())).await;
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..count {
                    let (manager, header) = (Arc::clone(&manager), args[1].clone());
                    tasks.spawn(async move { mode.run(&manager, &header).await });
                }
                while let Some(done) = tasks.join_next().await {
                    done.expect("an increment panicked")?;
                }
                Ok(())
            }
            other => panic!("unknown child role {other}"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err::<(), session_core::Error>(err) => {
            eprintln!("child {role} failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds sessions to `user` (`count` of them, or until killed); after every fourth it
/// deletes the one before, after every fifth it moves that one to `OTHER_USER`.
async fn bind_loop(
    store: &FileStore,
    user: &UserId,
    count: Option<u32>,
) -> session_core::Result<()> {
    let other = UserId::new(OTHER_USER)?;
    let mut previous: Option<StoreKey> = None;
    let mut i = 0u32;
    while count.is_none_or(|count| i < count) {
        let key = SessionId::generate(32)?.store_key();
        let record = live(&[("i", &i.to_le_bytes())]).with_owner(Some(Owner::new(user.clone())));
        assert!(store.create(&key, &record).await?, "a fresh key was taken");
        if i % 4 == 3
            && let Some(previous) = previous.take()
        {
            store.delete(&previous).await?;
        } else if i % 5 == 4 {
            let mut rebind = set_one("moved", b"1");
            rebind.owner = Some(Owner::new(other.clone()));
            store.update(&key, &rebind).await?;
        }
        previous = Some(key);
        i += 1;
    }
    Ok(())
}

const OTHER_USER: &str = "someone else";

/// How an `incrementer` child adds one to the counter `n` of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Increment {
    /// Read, pause, write, with `lock = true`: the lease serializes the requests.
    Locked,
    /// `Session::update` without the lock.
    Update,
    /// Read, pause, write, with neither: the control, which loses increments.
    Plain,
}

impl Increment {
    const ALL: [Self; 3] = [Self::Locked, Self::Update, Self::Plain];

    fn parse(text: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|mode| mode.name() == text)
            .expect("an increment mode")
    }

    fn name(self) -> &'static str {
        match self {
            Self::Locked => "lock",
            Self::Update => "update",
            Self::Plain => "plain",
        }
    }

    fn config(self) -> SessionConfig {
        let lock = self == Self::Locked;
        // Generous: 50 requests queue for one lease on a machine that may be busy.
        SessionConfig::from_json_str(&format!(r#"{{"lock": {lock}, "lock_timeout": "60s"}}"#))
            .expect("config")
    }

    async fn run(self, manager: &SessionManager, header: &str) -> session_core::Result<()> {
        let session = manager.session_from_cookie_header(Some(header));
        if self == Self::Update {
            session
                .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                .await?;
        } else {
            let n: u64 = session.get("n").await?.unwrap_or(0);
            // Other tasks run meanwhile, as while a handler awaits a database.
            tokio::time::sleep(Duration::from_millis(1)).await;
            session.set("n", &(n + 1)).await?;
        }
        session.flush().await?;
        Ok(())
    }
}

/// How many sessions [`bind_loop`] leaves bound to its user and to `OTHER_USER` after
/// `count` binds.
fn bind_loop_outcome(count: u32) -> (usize, usize) {
    // Per session: whether it is alive and whether it was moved.
    let mut sessions: Vec<(bool, bool)> = Vec::new();
    for i in 0..count {
        sessions.push((true, false));
        let last = sessions.len() - 1;
        if i % 4 == 3 && last > 0 {
            sessions[last - 1].0 = false;
        } else if i % 5 == 4 {
            sessions[last].1 = true;
        }
    }
    let alive = sessions.iter().filter(|(alive, _)| *alive);
    let moved = alive.clone().filter(|(_, moved)| *moved).count();
    (alive.count() - moved, moved)
}

/// The live sessions bound to `user`, found by reading every session file: the truth the
/// index must agree with.
fn bound_by_files(dir: &Path, user: &UserId) -> HashSet<StoreKey> {
    let now = Timestamp::now();
    files_under(dir)
        .into_iter()
        .filter(|path| !path.starts_with(dir.join("users")))
        .filter_map(|path| {
            let key = StoreKey::parse(path.file_name()?.to_str()?).ok()?;
            let record = session_file::decode_session_file(&std::fs::read(&path).ok()?).ok()?;
            let bound = record
                .owner
                .as_ref()
                .is_some_and(|owner| &owner.user == user);
            (bound && !record.is_expired(now)).then_some(key)
        })
        .collect()
}

/// The keys in `user`'s index file, read with no lock, as a whole file must read.
fn index_entries(store: &FileStore, user: &UserId) -> HashSet<StoreKey> {
    let path = store.user_index_path(user);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return HashSet::new(),
        Err(err) => panic!("cannot read the index file: {err}"),
    };
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("session-file user index 1"),
        "a torn index file"
    );
    lines
        .map(|line| StoreKey::parse(line).expect("a torn index line"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Scenarios

fn two_processes_writing_distinct_keys_lose_nothing(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let key = SessionId::generate(32).expect("id").store_key();
    rt.block_on(store.create(&key, &live(&[("base", b"0")])))
        .expect("create");
    let per_process = 200;
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            child(
                "writer",
                &[
                    dir.path().display().to_string(),
                    key.as_str().to_owned(),
                    (*tag).to_owned(),
                    per_process.to_string(),
                ],
            )
            .spawn()
            .expect("spawn writer")
        })
        .collect();
    for mut child in children {
        assert!(
            child.wait().expect("wait").success(),
            "a writer process failed"
        );
    }
    let data = rt
        .block_on(store.load(&key))
        .expect("load")
        .expect("session")
        .data;
    let missing: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|tag| (0..per_process).map(move |i| format!("{tag}-{i}")))
        .filter(|k| !data.contains_key(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} keys lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(data.len(), 2 * per_process as usize + 1);
    println!(
        "figure: file | two writer processes | {per_process} writes each to one session: 0 of {} keys lost",
        2 * per_process
    );
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
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

/// Creates `count` sessions holding `payload` in the store on `dir`, and the `loop`
/// child's arguments that rewrite them (the folder, then the keys).
fn sessions_for_the_loop_writer(
    rt: &tokio::runtime::Runtime,
    store: &FileStore,
    dir: &Path,
    count: usize,
    payload: &[u8],
) -> (Vec<StoreKey>, Vec<String>) {
    let keys: Vec<StoreKey> = (0..count)
        .map(|_| SessionId::generate(32).expect("id").store_key())
        .collect();
    for key in &keys {
        rt.block_on(store.create(key, &live(&[("payload", payload)])))
            .expect("create");
    }
    let mut args = vec![dir.display().to_string()];
    args.extend(keys.iter().map(|k| k.as_str().to_owned()));
    (keys, args)
}

fn killed_writer_leaves_no_torn_files(rt: &tokio::runtime::Runtime) {
    let trials = if std::env::var("SESSION_TORTURE").is_ok_and(|v| v == "long") {
        1000
    } else {
        40
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (keys, args) = sessions_for_the_loop_writer(rt, &store, dir.path(), 8, b"initial");
    let mut torn = 0;
    let mut seed = u64::from(std::process::id());
    for _ in 0..trials {
        let mut writer = child("loop", &args).spawn().expect("spawn loop");
        // A random point of the write loop: 5–60 ms after start (process start included).
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(5 + (seed >> 33) % 56));
        writer.kill().expect("SIGKILL");
        writer.wait().expect("reap");
        for path in files_under(dir.path()) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if name.ends_with(".tmp") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            if session_file::decode_session_file(&bytes).is_err() {
                torn += 1;
            }
        }
        for key in &keys {
            assert!(
                rt.block_on(store.load(key)).expect("load").is_some(),
                "a session vanished"
            );
        }
        // The killed writer's temporary file does not stand in the way of the next write.
        let later = Timestamp::now() + Duration::from_secs(3600);
        for key in &keys {
            assert!(
                rt.block_on(store.touch(key, later))
                    .expect("a write after the kill"),
                "a live session"
            );
        }
    }
    let is_temp = |p: &PathBuf| p.to_string_lossy().ends_with(".tmp");
    let temp_left = files_under(dir.path())
        .iter()
        .filter(|p| is_temp(p))
        .count();
    let removed = rt.block_on(store.gc()).expect("gc");
    let stray = files_under(dir.path())
        .iter()
        .filter(|p| is_temp(p))
        .count();
    assert_eq!(torn, 0, "torn session files after SIGKILL");
    assert_eq!(
        removed, temp_left as u64,
        "gc removed something other than the stray temp files"
    );
    assert_eq!(stray, 0, "temporary files left after gc");
    println!(
        "figure: file | writer SIGKILLed mid-write | {trials} kills at random points: 0 torn files; \
         {temp_left} stray temp files, gc removed {removed}, 0 left"
    );
}

fn write_past_file_size_limit_damages_nothing(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let key = SessionId::generate(32).expect("id").store_key();
    let original = live(&[("user", b"ada")]);
    rt.block_on(store.create(&key, &original)).expect("create");
    let exe = std::env::current_exe().expect("exe");
    // RLIMIT_FSIZE of 64 blocks, with SIGXFSZ ignored so the write fails with EFBIG instead
    // of killing the process: the same error path as a full disk.
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 64; exec "$0" "$@""#)
        .arg(&exe)
        .arg(dir.path())
        .arg(key.as_str())
        .env(CHILD_ENV, "disk-full")
        .status()
        .expect("spawn disk-full child");
    assert!(status.success(), "the disk-full child failed: {status}");
    let after = rt
        .block_on(store.load(&key))
        .expect("load")
        .expect("session still there");
    assert_eq!(after, original, "the existing session changed");
    let stray = files_under(dir.path())
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(stray, 0, "a failed write left its temporary file");
    println!(
        "figure: file | disk full (RLIMIT_FSIZE) | writes fail with errors; 0 sessions damaged, 0 temp files left"
    );
}

fn hostile_ids_never_touch_the_file_system(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let session_dir = dir.path().join("session");
    let counting = Arc::new(CountingStore::new(Arc::new(open(&session_dir))));
    let manager = SessionManager::new(
        Arc::clone(&counting) as Arc<dyn SessionStore>,
        SessionConfig::default(),
    )
    .expect("manager");
    let mut hostile: Vec<String> = Vec::new();
    let seeds = [
        "../",
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows",
        "\\\\server\\share",
        "a\0b",
        "%2e%2e%2f",
        "%2e%2e/%2e%2e/etc",
        "....//",
        "/",
        ".",
        "..",
        "~root",
        "C:\\",
        "%00",
        "\u{202e}",
    ];
    for i in 0..1000usize {
        let seed = seeds[i % seeds.len()];
        let value = match i % 4 {
            0 => seed.to_owned(),
            1 => format!("{}{seed}", "A".repeat(i % 40)),
            2 => format!("{seed}{}", "a".repeat(22 + i % 20)),
            _ => seed
                .repeat(10_000 / seed.len().max(1))
                .chars()
                .take(10_000)
                .collect(),
        };
        hostile.push(value);
    }
    rt.block_on(async {
        for value in &hostile {
            assert!(
                StoreKey::parse(value).is_err(),
                "a hostile string parsed as a store key"
            );
            let session = manager.session_from_cookie_header(Some(&format!("thinkjs={value}")));
            assert_eq!(session.get::<String>("user").await.expect("get"), None);
            assert!(session.flush().await.expect("flush").is_none());
        }
    });
    let counts = counting.counts();
    assert_eq!(
        counts.total(),
        0,
        "hostile cookies reached the store: {counts:?}"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        entries,
        ["session"],
        "something appeared outside the session folder"
    );
    assert!(
        files_under(&session_dir).is_empty(),
        "a session file was created"
    );
    println!(
        "figure: file | 1000 hostile ids | 0 store operations, 0 files created, 0 accesses outside the folder"
    );
}

/// Kills and reaps a child process when dropped, even by a panic.
struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A reader in one process while another writes the same sessions, in place and as new
/// files (the writer's record sizes cross slot sizes): every read is a whole version.
fn readers_racing_a_writer_in_another_process_see_whole_versions(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (keys, args) = sessions_for_the_loop_writer(rt, &store, dir.path(), 2, b"0000");
    let mut writer = child("loop", &args).spawn().expect("spawn loop");
    // Killed however the reads end, so that a failed assertion leaves no writer behind.
    let writer_guard = KillOnDrop(&mut writer);
    let (mut reads, mut versions) = (0u64, HashSet::new());
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        for key in &keys {
            let record = rt
                .block_on(store.load(key))
                .expect("a read racing the writer")
                .expect("the session");
            let payload = &record.data["payload"];
            // The writer's payloads are one byte repeated: a mix of two is a torn read.
            assert!(
                payload.iter().all(|&byte| byte == payload[0]),
                "a read mixed two versions"
            );
            versions.insert(payload.clone());
            reads += 1;
        }
    }
    drop(writer_guard);
    assert!(versions.len() > 2, "the reads raced the writer's versions");
    println!(
        "figure: file | a reader racing a writer process | {reads} reads of {} versions, 0 torn, 0 errors",
        versions.len()
    );
}

/// Files written by earlier versions (the record alone) are read, gc'd, and rewritten in
/// the slot layout by their next write.
fn a_folder_in_the_older_layout_is_read_and_rewritten(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (old, expired) = (
        SessionId::generate(32).expect("id").store_key(),
        SessionId::generate(32).expect("id").store_key(),
    );
    let mut gone = live(&[("user", b"bob")]);
    gone.expires_at = Timestamp::now() - Duration::from_secs(1);
    for (key, record) in [(&old, live(&[("user", b"ada")])), (&expired, gone)] {
        let path = store.file_path(key);
        std::fs::create_dir_all(path.parent().expect("shard")).expect("mkdir");
        std::fs::write(&path, wire::encode_record(&record)).expect("write the older layout");
    }
    rt.block_on(async {
        let loaded = store
            .load(&old)
            .await
            .expect("load")
            .expect("read as it is");
        assert_eq!(loaded.data["user"], b"ada");
        assert_eq!(store.gc().await.expect("gc"), 1, "the expired one");
        assert!(!store.file_path(&expired).exists());
        assert!(
            store
                .update(&old, &set_one("n", b"1"))
                .await
                .expect("update")
        );
        let bytes = std::fs::read(store.file_path(&old)).expect("read");
        assert!(
            !bytes.starts_with(wire::MAGIC) && bytes.len().is_multiple_of(8192),
            "rewritten in slots"
        );
        let record = session_file::decode_session_file(&bytes).expect("decode");
        assert_eq!(
            (&record.data["user"][..], &record.data["n"][..]),
            (&b"ada"[..], &b"1"[..])
        );
        assert!(
            store
                .update(&old, &set_one("n", b"2"))
                .await
                .expect("update")
        );
        let reloaded = store.load(&old).await.expect("load").expect("session");
        assert_eq!(reloaded.data["n"], b"2");
    });
    println!(
        "figure: file | a folder in the older layout | read, gc'd and rewritten in slots, 0 lost"
    );
}

fn corrupt_files_are_no_session_and_get_replaced(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let manager =
        SessionManager::new(Arc::new(store.clone()), SessionConfig::default()).expect("manager");
    // A record as earlier versions wrote it (the whole file), and a file in today's layout
    // (two slots), each corrupted in the ways a crash, a disk or a person can.
    let valid = wire::encode_record(&live(&[("user", b"ada")]));
    let slotted = {
        let key = SessionId::generate(32).expect("id").store_key();
        rt.block_on(store.create(&key, &live(&[("user", b"ada")])))
            .expect("create");
        let path = store.file_path(&key);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::remove_file(&path).expect("remove");
        bytes
    };
    let mut slot_flipped = slotted.clone();
    slot_flipped[60] ^= 1;
    let mut bit_flipped = valid.clone();
    bit_flipped[2] ^= 0x40;
    let mut unknown_version = valid.clone();
    unknown_version[4] = 200;
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", valid[..valid.len() - 3].to_vec()),
        ("header only", valid[..10].to_vec()),
        ("garbage", b"{\"this is\": \"not a session\"}".to_vec()),
        ("NUL-filled", vec![0; 512]),
        ("bit-flipped magic", bit_flipped),
        ("unknown version", unknown_version),
        (
            "trailing garbage",
            [valid.clone(), b"junk".to_vec()].concat(),
        ),
        ("slots: one page of two", slotted[..4096].to_vec()),
        ("slots: the only version's record flipped", slot_flipped),
        ("slots: zero-filled", vec![0; slotted.len()]),
        (
            "slots: a page too many",
            [slotted.clone(), vec![0; 4096]].concat(),
        ),
    ];
    rt.block_on(async {
        for (what, bytes) in corruptions {
            let id = SessionId::generate(32).expect("id");
            let key = id.store_key();
            let path = store.file_path(&key);
            std::fs::create_dir_all(path.parent().expect("shard")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write corrupt file");
            let err = store.load(&key).await.expect_err(what);
            assert_eq!(err.kind(), ErrorKind::Decode, "{what}: {err}");
            let session =
                manager.session_from_cookie_header(Some(&format!("thinkjs={}", id.expose())));
            assert_eq!(
                session.get::<String>("user").await.expect("get"),
                None,
                "{what}"
            );
            assert!(
                store
                    .create(&key, &live(&[("fresh", b"1")]))
                    .await
                    .expect("create"),
                "{what}: not replaced"
            );
            let loaded = store
                .load(&key)
                .await
                .expect("load")
                .expect("replaced record");
            assert!(loaded.data.contains_key("fresh"), "{what}");
        }
        // gc removes a corrupt file nobody writes again.
        let key = SessionId::generate(32).expect("id").store_key();
        let path = store.file_path(&key);
        std::fs::create_dir_all(path.parent().expect("shard")).expect("mkdir");
        std::fs::write(&path, b"garbage").expect("write");
        assert_eq!(store.gc().await.expect("gc"), 1);
        assert!(!path.exists());
    });
    println!(
        "figure: file | corrupt records (12 kinds) | each treated as absent, 0 panics, replaced by the next write"
    );
}

fn two_processes_binding_one_user_lose_no_entry(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (ada, other) = (
        UserId::new("ada").expect("user"),
        UserId::new(OTHER_USER).expect("user"),
    );
    let per_process = 200;
    let children: Vec<_> = (0..2)
        .map(|_| {
            child(
                "binder",
                &[
                    dir.path().display().to_string(),
                    ada.to_string(),
                    per_process.to_string(),
                ],
            )
            .spawn()
            .expect("spawn binder")
        })
        .collect();
    for mut child in children {
        assert!(
            child.wait().expect("wait").success(),
            "a binder process failed"
        );
    }
    for user in [&ada, &other] {
        let truth = bound_by_files(dir.path(), user);
        let listed: HashSet<StoreKey> = rt
            .block_on(store.sessions_of(user))
            .expect("list")
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(
            listed, truth,
            "{user}: the listing against the session files"
        );
        assert_eq!(
            index_entries(&store, user),
            truth,
            "{user}: entries lost or left stale"
        );
    }
    let adas = bound_by_files(dir.path(), &ada).len();
    let (expected_adas, expected_others) = bind_loop_outcome(per_process);
    assert_eq!(adas, 2 * expected_adas, "ada's live sessions");
    assert_eq!(
        bound_by_files(dir.path(), &other).len(),
        2 * expected_others,
        "sessions moved to another user"
    );
    println!(
        "figure: file | two processes binding one user | {per_process} binds each, with deletes \
         and rebinds: 0 index entries lost ({adas} listed, as the session files say)"
    );
}

fn killed_binder_leaves_whole_index_files(rt: &tokio::runtime::Runtime) {
    let trials = if std::env::var("SESSION_TORTURE").is_ok_and(|v| v == "long") {
        300
    } else {
        20
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let users = [
        UserId::new("ada").expect("user"),
        UserId::new(OTHER_USER).expect("user"),
    ];
    let args = [dir.path().display().to_string(), users[0].to_string()];
    let mut seed = u64::from(std::process::id());
    let mut stale = 0;
    for trial in 0..trials {
        let mut binder = child("bind-loop", &args).spawn().expect("spawn");
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(5 + (seed >> 33) % 56));
        binder.kill().expect("SIGKILL");
        binder.wait().expect("reap");
        for user in &users {
            let entries = index_entries(&store, user);
            let truth = bound_by_files(dir.path(), user);
            let missing = truth.difference(&entries).count();
            assert_eq!(
                missing, 0,
                "{user}: live bound sessions missing from the index"
            );
            if trial + 1 == trials {
                stale += entries.difference(&truth).count();
            }
        }
    }
    let is_temp = |p: &PathBuf| p.to_string_lossy().ends_with(".tmp");
    let index_temp = files_under(&dir.path().join("users"))
        .iter()
        .filter(|p| is_temp(p))
        .count();
    rt.block_on(store.gc()).expect("gc");
    let left = files_under(dir.path())
        .iter()
        .filter(|p| is_temp(p))
        .count();
    assert_eq!(left, 0, "temporary files left after gc");
    for user in &users {
        let truth = bound_by_files(dir.path(), user);
        let listed = rt.block_on(store.sessions_of(user)).expect("list").len();
        assert_eq!(
            listed,
            truth.len(),
            "{user}: listed against the session files"
        );
        assert_eq!(
            index_entries(&store, user),
            truth,
            "{user}: pruned by the listing"
        );
    }
    println!(
        "figure: file | binder SIGKILLed mid-write | {trials} kills: 0 torn index files, 0 live \
         sessions missing; {stale} stale entries left (pruned by a listing), {index_temp} stray \
         index temp files removed by gc"
    );
}

fn two_processes_incrementing_one_session_lose_nothing(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let manager =
        SessionManager::new(Arc::new(store.clone()), SessionConfig::default()).expect("manager");
    let per_process = 25u32;
    let total = u64::from(2 * per_process);
    let mut figures = Vec::new();
    for mode in Increment::ALL {
        let header = rt.block_on(async {
            let session = manager.session_from_cookie_header(None);
            session.set("n", &0u64).await.expect("set");
            let cookie = session.flush().await.expect("flush").expect("a cookie");
            format!("{}={}", cookie.name(), cookie.value())
        });
        // Both start at one instant, well after either process is up.
        let start = Timestamp::now() + Duration::from_millis(500);
        let children: Vec<_> = (0..2)
            .map(|_| {
                child(
                    "incrementer",
                    &[
                        dir.path().display().to_string(),
                        header.clone(),
                        mode.name().to_owned(),
                        per_process.to_string(),
                        start.as_millis().to_string(),
                    ],
                )
                .spawn()
                .expect("spawn incrementer")
            })
            .collect();
        for mut child in children {
            assert!(
                child.wait().expect("wait").success(),
                "an incrementer process failed ({})",
                mode.name()
            );
        }
        let took = Timestamp::now().saturating_duration_since(start);
        let n: u64 = rt
            .block_on(manager.session_from_cookie_header(Some(&header)).get("n"))
            .expect("get")
            .expect("the counter");
        let lost = total.saturating_sub(n);
        match mode {
            Increment::Locked => {
                assert_eq!(n, total, "the counter after {total} locked increments");
                let leases = files_under(&dir.path().join("leases"));
                assert!(leases.is_empty(), "lease files left: {}", leases.len());
                figures.push(format!(
                    "2 × {per_process} locked increments: {lost} of {total} lost, {took:.0?}"
                ));
            }
            Increment::Update => {
                assert_eq!(n, total, "the counter after {total} updates");
                figures.push(format!(
                    "2 × {per_process} Session::update without the lock: {lost} of {total} \
                     lost, {took:.0?}"
                ));
            }
            // Not asserted: how many a race loses is up to the scheduler.
            Increment::Plain => {
                figures.push(format!("control without either: {lost} of {total} lost"))
            }
        }
    }
    println!(
        "figure: file | two processes, one session | {}",
        figures.join("; ")
    );
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        return child_main(&role);
    }
    // `cargo test -- --list` (nextest) expects test names; this binary is one test.
    if std::env::args().any(|a| a == "--list") {
        println!("processes: test");
        return ExitCode::SUCCESS;
    }
    let rt = runtime();
    let started = Instant::now();
    two_processes_writing_distinct_keys_lose_nothing(&rt);
    killed_writer_leaves_no_torn_files(&rt);
    write_past_file_size_limit_damages_nothing(&rt);
    hostile_ids_never_touch_the_file_system(&rt);
    corrupt_files_are_no_session_and_get_replaced(&rt);
    readers_racing_a_writer_in_another_process_see_whole_versions(&rt);
    a_folder_in_the_older_layout_is_read_and_rewritten(&rt);
    two_processes_binding_one_user_lose_no_entry(&rt);
    killed_binder_leaves_whole_index_files(&rt);
    two_processes_incrementing_one_session_lose_nothing(&rt);
    println!(
        "file store process tests passed in {:.1?}",
        started.elapsed()
    );
    ExitCode::SUCCESS
}
