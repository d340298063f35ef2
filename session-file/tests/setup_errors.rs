//! The set-up mistakes the file store meets when it opens: a session folder that cannot be
//! created, or cannot be written. The error a person sees (`{:#}`) names the path and the
//! cause, and carries the hint of what to do. Tests run as root, whom permissions do not
//! stop, so the folder is made impossible for anyone: a regular file where a folder should
//! be, or a folder where the store must create a file.

use std::path::Path;

use session_core::{Error, Registry, SessionConfig, SessionManager, SetupProblem};
use session_file::{FileStore, FileStoreOptions};

/// Asserts that `opened` failed, that the message a person sees names every one of
/// `causes`, and that it ends with a storage hint naming every one of `advice`.
fn check<T>(opened: Result<T, Error>, causes: &[&str], advice: &[&str]) {
    let Err(err) = opened else {
        panic!("the store opened");
    };
    let shown = format!("{err:#}");
    for cause in causes {
        assert!(
            shown.contains(cause),
            "the message does not name {cause:?}: {shown}"
        );
    }
    let hint = err.hint().unwrap_or_else(|| panic!("no hint: {shown}"));
    assert_eq!(hint.problem(), SetupProblem::Storage, "{shown}");
    assert!(
        shown.ends_with(&format!("\nhint: {hint}")),
        "the hint does not end the message: {shown}"
    );
    for word in advice {
        assert!(
            hint.text().contains(word),
            "the hint does not say {word:?}: {hint}"
        );
    }
}

/// A regular file at `dir/a-file`, under which no folder can be made.
fn blocker(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("a-file");
    std::fs::write(&file, b"").expect("write");
    file
}

#[test]
fn a_folder_under_a_file_is_named_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = blocker(dir.path()).join("session");
    let shown_root = root.display().to_string();
    check(
        FileStore::open(FileStoreOptions::new(&root)),
        &[
            &format!("cannot create the session folder {shown_root}"),
            "Not a directory",
        ],
        &[&shown_root, "is a file", "adapter.file.path"],
    );
}

#[test]
fn a_folder_that_cannot_be_written_is_named_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("session");
    // A folder where the store creates its first lock file.
    std::fs::create_dir_all(root.join(".locks").join("00")).expect("mkdir");
    let shown_root = root.display().to_string();
    check(
        FileStore::open(FileStoreOptions::new(&root)),
        &[
            &format!("cannot write in the session folder {shown_root}"),
            "Is a directory",
        ],
        &[&shown_root, "adapter.file.path"],
    );
}

/// Through the configuration, as an application opens it: `from_config` hands the
/// store's error on with its hint.
#[tokio::test]
async fn from_config_keeps_the_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = blocker(dir.path()).join("session");
    // A temporary folder's path needs no escaping beyond what `{:?}` does.
    let config = SessionConfig::from_json_str(&format!(
        r#"{{"type": "file", "adapter": {{"file": {{"path": {:?}}}}}}}"#,
        root.display().to_string()
    ))
    .expect("config");
    let mut registry = Registry::new();
    session_file::register(&mut registry);
    check(
        SessionManager::from_config(config, &registry).await,
        &["cannot create the session folder", "Not a directory"],
        &["is a file"],
    );
}
