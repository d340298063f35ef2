//! The whole conformance suite against the file store, each case in a temporary folder.

use std::sync::Arc;

use session_file::{FileStore, FileStoreOptions};
use session_testkit::{Fixture, Suite, Unavailable};

fn main() -> std::process::ExitCode {
    Suite::new("file", || async {
        let dir = tempfile::tempdir()
            .map_err(|err| Unavailable::new(format!("no temp folder: {err}")))?;
        let open = |path| {
            FileStore::open(FileStoreOptions::new(path))
                .map_err(|err| Unavailable::new(err.to_string()))
        };
        let store = open(dir.path().join("session"))?;
        // A second handle on the same folder: what another process of the app would open.
        let second = open(dir.path().join("session"))?;
        // A store whose folder was replaced by a regular file: every access fails.
        let broken_path = dir.path().join("broken");
        let unreachable = open(broken_path.clone())?;
        std::fs::remove_dir_all(&broken_path).map_err(|err| Unavailable::new(err.to_string()))?;
        std::fs::write(&broken_path, b"not a folder")
            .map_err(|err| Unavailable::new(err.to_string()))?;
        Ok(Fixture::new(Arc::new(store))
            .with_second_handle(Arc::new(second))
            .with_unreachable(Arc::new(unreachable))
            .with_cleanup(async move { drop(dir) }))
    })
    .main()
}
