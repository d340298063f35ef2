//! Fuzz target: a `type = "jwt"` token (an HS256 JSON Web Token) as the bearer token, and a genuine token damaged by the input.
//!
//! The properties are in `session-core/tests/fuzz_checks/mod.rs`, shared with the
//! `fuzz_corpus` test that replays `fuzz/corpus/jwt/`.
#![no_main]

// Each target uses only its own check from the shared file.
#[allow(dead_code)]
#[path = "../../session-core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jwt(data));
