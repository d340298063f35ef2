//! Tests of the command line: what each argument sets.

use super::*;

fn parse(args: &[&str]) -> Settings {
    parse_args(args.iter().map(|a| (*a).to_owned())).expect("valid arguments")
}

#[test]
fn only_a_full_run_replaces_the_published_figures() {
    assert!(parse(&[]).writes_docs);
    assert!(parse(&["--rounds", "3", "--scale"]).writes_docs);
    assert!(!parse(&["--quick"]).writes_docs);
    assert!(!parse(&["--stores", "memory,redis"]).writes_docs);
    assert!(!parse(&["--no-docs"]).writes_docs);
    // The scale figures do not depend on the HTTP settings.
    assert!(parse(&["--quick", "--scale-only"]).writes_docs);
    assert!(!parse(&["--scale-only", "--no-docs"]).writes_docs);
    assert_eq!(parse(&[]).task, Task::Measure);
    assert_eq!(parse(&["--check"]).task, Task::Check);
    assert_eq!(parse(&["--update-readme"]).task, Task::UpdateReadme);
    assert!(parse_args(["--bogus".to_owned()]).is_err());
}

#[test]
fn lock_only_measures_the_lock_and_publishes_only_a_full_run() {
    let settings = parse(&["--lock-only"]);
    assert!(settings.lock_only && settings.writes_docs);
    assert_eq!(settings.duration, Duration::from_secs(10));
    assert_eq!(settings.connections, 50);
    let quick = parse(&["--lock-only", "--quick"]);
    assert!(quick.lock_only && !quick.writes_docs);
    assert_eq!(quick.duration, Duration::from_secs(3));
    assert!(!parse(&["--lock-only", "--stores", "memory"]).writes_docs);
    assert!(!parse(&[]).lock_only);
}

#[test]
fn actix_only_measures_redis_and_publishes_only_a_full_run() {
    let settings = parse(&["--actix-only"]);
    assert!(settings.actix_only && settings.writes_docs);
    assert_eq!(settings.rounds, 5);
    let quick = parse(&["--actix-only", "--quick"]);
    assert!(quick.actix_only && !quick.writes_docs);
    assert_eq!(quick.duration, Duration::from_secs(3));
    // It measures Redis whatever `--stores` says, so the list does not hold its figures back.
    assert!(parse(&["--actix-only", "--stores", "redis"]).writes_docs);
    assert!(!parse(&["--actix-only", "--no-docs"]).writes_docs);
    assert!(!parse(&[]).actix_only);
}

#[test]
fn baseline_cookies_have_the_shape_of_ours() {
    let cookies = baseline_cookies(100).expect("cookies");
    assert_eq!(cookies.len(), 100);
    let name = format!("{}=", session_core::SessionConfig::default().name);
    for cookie in &cookies {
        let id = cookie.strip_prefix(&name).expect("our cookie name");
        assert!(session_core::SessionId::parse(id).is_ok(), "{cookie}");
        assert_eq!(id.len(), session_core::DEFAULT_ID_LENGTH);
    }
    let distinct: std::collections::HashSet<_> = cookies.iter().collect();
    assert_eq!(distinct.len(), 100);
}

#[test]
fn database_variants_run_on_their_database_with_one_ping_setting() {
    assert_eq!(store_variant("postgres"), ("postgres", None));
    assert_eq!(store_variant("postgres-ping"), ("postgres", Some(true)));
    assert_eq!(store_variant("postgres-noping"), ("postgres", Some(false)));
    assert_eq!(store_variant("mysql-ping"), ("mysql", Some(true)));
    assert_eq!(store_variant("mysql-noping"), ("mysql", Some(false)));
    // Other stores, and unknown suffixes, are themselves.
    assert_eq!(store_variant("memory-header"), ("memory-header", None));
    assert_eq!(store_variant("postgres-other"), ("postgres-other", None));
    assert_eq!(store_variant("redis"), ("redis", None));
    assert!(has_peer("mysql-noping") && has_peer("postgres-ping"));
    // A full run measures every variant, so it still replaces the published figures.
    assert!(parse(&["--stores", &ALL_STORES.join(",")]).writes_docs);
    assert!(!parse(&["--stores", "postgres,mysql"]).writes_docs);
}
