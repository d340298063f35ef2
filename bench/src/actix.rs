//! `--actix-only`: the example app on actix-web (`--framework actix`, through the
//! `session-actix` crate) against actix-session's Redis store, on Redis.
//!
//! Each round measures both apps one after the other, on a wiped Redis database, with the
//! main benchmark's two workloads: existing sessions (`/incr` over `--sessions` sessions
//! in rotation, counters read back, lost increments counted) and a new session per
//! request. Which app goes first alternates from round to round, so that a drift of the
//! machine within a round does not favour one.

use crate::{Run, Settings, Side, measure};

/// The only store both apps share.
pub(crate) const STORE: &str = "redis";

/// The two apps, ours first.
pub(crate) const SIDES: [Side; 2] = [Side::OursActix, Side::ActixPeer];

/// The target: ours over actix-session on both workloads, at least.
pub(crate) const TARGET_RATIO: f64 = 1.2;

/// The order of the apps in `round`: ours first in even rounds, actix-session in odd.
pub(crate) fn order(round: usize) -> [Side; 2] {
    if round.is_multiple_of(2) {
        SIDES
    } else {
        [SIDES[1], SIDES[0]]
    }
}

/// Measures both apps on Redis over the rounds; every run, in the order measured.
pub(crate) async fn run(settings: &Settings) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    for round in 0..settings.rounds {
        println!("round {} / {}", round + 1, settings.rounds);
        for side in order(round) {
            measure(settings, side, STORE, round, &mut runs).await?;
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_app_alternates_by_round() {
        assert_eq!(order(0), [Side::OursActix, Side::ActixPeer]);
        assert_eq!(order(1), [Side::ActixPeer, Side::OursActix]);
        assert_eq!(order(2), order(0));
    }
}
