//! The store contract is written once, in the `SessionStore` docs, naming the conformance
//! case that checks each rule: every store-level case must be named there, and every case
//! named there must exist, so the docs and the suite cannot drift apart.

use std::path::PathBuf;

fn workspace_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf();
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The names in the `cases![...]` list, in order.
fn case_names() -> Vec<String> {
    let list = workspace_file("session-testkit/src/cases/mod.rs");
    let start = list.rfind("cases![").expect("the list of cases");
    let end = start + list[start..].find("];").expect("the end of the list");
    list[start + "cases![".len()..end]
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The backticked words of the `SessionStore` docs that look like case names.
fn named_in_contract() -> Vec<String> {
    let docs = workspace_file("session-core/src/store.rs");
    docs.lines()
        .filter(|line| line.trim_start().starts_with("///"))
        .flat_map(|line| {
            line.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|word| {
            word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && word.matches('_').count() >= 2
        })
        .collect()
}

#[test]
fn every_store_case_is_named_in_the_contract_and_every_named_case_exists() {
    let cases = case_names();
    assert!(cases.len() >= 50, "{} cases found", cases.len());
    let named = named_in_contract();
    let missing: Vec<&String> = cases
        .iter()
        .filter(|case| !case.starts_with("session_") && !case.starts_with("torture_"))
        .filter(|case| !named.contains(case))
        .collect();
    assert!(
        missing.is_empty(),
        "store cases the SessionStore docs do not name: {missing:?}"
    );
    let unknown: Vec<&String> = named
        .iter()
        .filter(|word| !cases.contains(word))
        .filter(|word| {
            // Method, lint and configuration names that look like case names.
            ![
                "update_if_unchanged",
                "user_index_len",
                "lock_and_load",
                "update_and_unlock",
                "update_if_unchanged_and_unlock",
                "missing_trait_methods",
                "max_sessions_per_user",
            ]
            .contains(&word.as_str())
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "the SessionStore docs name cases that do not exist: {unknown:?}"
    );
}
