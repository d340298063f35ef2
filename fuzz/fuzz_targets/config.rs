//! Fuzz target: `SessionConfig::from_json_str` and `from_toml_str` on arbitrary text.
//!
//! The properties are in `session-core/tests/fuzz_checks/mod.rs`, shared with the
//! `fuzz_corpus` test that replays `fuzz/corpus/config/`.
#![no_main]

// Each target uses only its own check from the shared file.
#[allow(dead_code)]
#[path = "../../session-core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::config(data));
