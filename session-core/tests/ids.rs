//! Generated ids: no duplicates among 100,000 (1,000,000 with `SESSION_TORTURE=long`), each
//! 32 characters of 6 random bits (192 bits, over the 128 required), and every one of the 64
//! symbols used at every position (no stuck bits).

use std::collections::HashSet;

use session_core::{DEFAULT_ID_LENGTH, SessionId};

// 6 bits per character: the default id carries at least the 128 bits required.
const _: () = assert!(DEFAULT_ID_LENGTH * 6 >= 128);

#[test]
fn generated_ids_are_unique_and_use_every_bit() {
    let count = if std::env::var("SESSION_TORTURE").is_ok_and(|v| v == "long") {
        1_000_000
    } else {
        100_000
    };
    let mut seen = HashSet::with_capacity(count);
    let mut symbols_at = vec![HashSet::new(); DEFAULT_ID_LENGTH];
    for _ in 0..count {
        let id = SessionId::generate(DEFAULT_ID_LENGTH).expect("OS random number generator");
        for (position, byte) in id.expose().bytes().enumerate() {
            symbols_at[position].insert(byte);
        }
        seen.insert(id.expose().to_owned());
    }
    let duplicates = count - seen.len();
    let full_positions = symbols_at.iter().filter(|s| s.len() == 64).count();
    println!(
        "figure: core | {count} generated ids | {duplicates} duplicates; {} bits each; \
         all 64 symbols seen at {full_positions} of {DEFAULT_ID_LENGTH} positions",
        DEFAULT_ID_LENGTH * 6
    );
    assert_eq!(duplicates, 0);
    assert_eq!(
        full_positions, DEFAULT_ID_LENGTH,
        "some position never takes some symbol"
    );
}
