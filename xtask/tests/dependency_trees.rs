//! Each published crate's dependency tree stays lean: a user who picks one integration or
//! store compiles none of the others' frameworks or drivers. Read from `cargo tree` over
//! the lock file (normal dependencies, default features, this machine's target).

use std::process::Command;

/// The packages `crate_name` depends on (itself included), by name.
fn tree(crate_name: &str) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "-p",
            crate_name,
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {crate_name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Fails naming every package of `crate_name`'s tree that starts with one of `banned`;
/// `needed`, a package it does depend on, shows that the tree was read.
fn pulls_none_of(crate_name: &str, needed: &str, banned: &[&str]) {
    let tree = tree(crate_name);
    assert!(
        tree.iter().any(|name| name == needed),
        "no {needed} in {tree:?}"
    );
    let pulled: Vec<&String> = tree
        .iter()
        .filter(|name| banned.iter().any(|prefix| name.starts_with(prefix)))
        .collect();
    assert!(
        pulled.is_empty(),
        "{crate_name} pulls {pulled:?} ({} packages in its tree)",
        tree.len()
    );
}

#[test]
fn session_actix_pulls_no_tower_or_axum() {
    pulls_none_of(
        "session-actix",
        "actix-web",
        &["tower", "axum", "hyper", "session-tower"],
    );
}

#[test]
fn session_tower_pulls_no_actix() {
    pulls_none_of("session-tower", "tower-layer", &["actix", "session-actix"]);
}

#[test]
fn session_core_pulls_no_web_framework() {
    pulls_none_of(
        "session-core",
        "cookie",
        &["actix", "tower", "axum", "hyper", "http"],
    );
}

#[test]
fn session_redis_pulls_no_sql_driver() {
    pulls_none_of(
        "session-redis",
        "redis",
        &["sqlx", "mongodb", "actix", "axum"],
    );
}
