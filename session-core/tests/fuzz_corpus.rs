//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! property checks, without libFuzzer: the short fuzz run of the ordinary test suite.
//!
//! The checks live in `fuzz_checks/mod.rs`, which the fuzz targets include too, so a seed
//! that passes here passes there. A missing or empty corpus folder fails the test, so it can
//! never pass by checking nothing.

mod fuzz_checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Runs `target`'s check on every file of its corpus and fails with the names of the files
/// whose check panicked.
fn replay(target: &str) {
    let (_, check) = targets()
        .into_iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz check named {target}"));
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|err| panic!("corpus folder {} is unreadable: {err}", folder.display()))
        .map(|entry| entry.expect("corpus folder entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus folder {} holds no file: nothing would be checked",
        folder.display()
    );

    let mut failed = Vec::new();
    for file in &files {
        let input = std::fs::read(file).expect("corpus file is readable");
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            failed.push(
                file.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    println!(
        "{target}: {} corpus files replayed, {} failing",
        files.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{target}: checks failed for {failed:?}");
}

/// Every check this build has: the client-side ones need their features.
fn targets() -> Vec<(&'static str, fuzz_checks::Check)> {
    let mut targets = fuzz_checks::TARGETS.to_vec();
    #[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
    targets.extend(fuzz_checks::CLIENT_TARGETS);
    targets
}

#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
#[test]
fn sealed_corpus() {
    replay("sealed");
}

#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
#[test]
fn jwt_corpus() {
    replay("jwt");
}

#[test]
fn cookie_corpus() {
    replay("cookie");
}

#[test]
fn session_id_corpus() {
    replay("session_id");
}

#[test]
fn codec_corpus() {
    replay("codec");
}

#[test]
fn config_corpus() {
    replay("config");
}

/// Every check has a corpus test above, so a new target cannot go unreplayed.
#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = targets().iter().map(|(name, _)| *name).collect();
    let mut expected = vec!["cookie", "session_id", "codec", "config"];
    if cfg!(all(feature = "cookie-session", feature = "jwt-session")) {
        expected.extend(["sealed", "jwt"]);
    }
    assert_eq!(names, expected);
}
