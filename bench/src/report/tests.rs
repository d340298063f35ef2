//! Tests of the report writer: summaries, the README table and the generated blocks.

use std::time::Duration;

use super::*;
use crate::cpu::PerRequest;
use crate::loadgen::LoadResult;

fn run_on(store: &str, side: Side, mode: &'static str, round: usize, ok: u64) -> Run {
    Run {
        store: store.into(),
        side,
        mode,
        round,
        result: LoadResult {
            ok,
            elapsed: Duration::from_secs(1),
            ..LoadResult::default()
        },
        lost: (side != Side::Baseline && mode == "existing").then_some(0),
        cpu: PerRequest::default(),
    }
}

fn run(side: Side, mode: &'static str, round: usize, ok: u64) -> Run {
    run_on("memory", side, mode, round, ok)
}

#[test]
fn ratios_pair_runs_of_the_same_round_and_take_the_median() {
    let runs = [
        run(Side::Ours, "new", 0, 300),
        run(Side::Ours, "new", 1, 100),
        run(Side::Ours, "new", 2, 200),
        // Listed out of order: pairing goes by round, not by position.
        run(Side::Baseline, "new", 2, 100),
        run(Side::Baseline, "new", 0, 100),
        run(Side::Baseline, "new", 1, 400),
        run(Side::Baseline, "existing", 0, 1),
    ];
    let ours = side_runs(&runs, Side::Ours, "memory", "new");
    let baseline: Vec<&Run> = runs
        .iter()
        .filter(|r| r.side == Side::Baseline && r.mode == "new")
        .collect();
    assert_eq!(round_ratios(&ours, &baseline), [3.0, 0.25, 2.0]);
    assert_eq!(ratio_by_round(&ours, &baseline), Some(2.0));
    assert_eq!(ratio_by_round(&ours, &[]), None);
}

/// Two rounds in the order a run measures them: the baseline, then memory (ours and
/// the peer), then file, which tower-sessions has no store for; both workloads each.
fn two_rounds() -> Vec<Run> {
    let mut runs = Vec::new();
    for (round, [ours, peer, base]) in [[1200, 1000, 1500], [1100, 1000, 1600]]
        .into_iter()
        .enumerate()
    {
        for (store, side, ok) in [
            ("none", Side::Baseline, base),
            ("memory", Side::Ours, ours),
            ("memory", Side::Peer, peer),
            ("file", Side::Ours, 100),
        ] {
            for mode in ["existing", "new"] {
                runs.push(run_on(store, side, mode, round, ok));
            }
        }
    }
    runs
}

#[test]
fn the_report_has_a_row_per_store_and_workload_with_each_round() {
    let md = markdown("Run of 2026-12-01 on a test.", &two_rounds(), &[], &[]);
    assert!(
        md.starts_with("Run of 2026-12-01 on a test. Ratios are medians"),
        "{md}"
    );
    assert!(
        md.contains(
            "| memory | existing | 1150 | 1000 | **1.15×** | 1.20, 1.10 | 0.00 / 0.00 | 0.00 / 0.00 | 0 / 0 |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| file | new | 100 | – | – | – | 0.00 / 0.00 | – | – |"),
        "{md}"
    );
    // Ours over the baseline: 0.80, 0.69; the baseline over the peer: 1.50, 1.60.
    assert!(md.contains("| 74% (80, 69) | 1.55× (1.50, 1.60) |"), "{md}");
    assert!(md.contains("Non-200 responses or transport errors over all runs: 0."));
    assert!(!md.contains("Store work per request"), "no trips, no table");
}

#[test]
fn the_summary_is_a_row_per_store_from_the_throughput_table() {
    let md = markdown(
        "Run of 2026-12-01 on a test: 2 rounds.",
        &two_rounds(),
        &[],
        &[],
    );
    assert_eq!(
        summary_table(&md).expect("summary"),
        "| store | existing sessions | new sessions |\n\
         |---|---:|---:|\n\
         | memory | 1.15× | 1.15× |\n\
         | file | – | – |\n\
         \nFrom the run of 2026-12-01 in [docs/benchmarks.md](docs/benchmarks.md).\n"
    );
    assert!(summary_table("no table here").is_err());
    let unknown = "| store | sessions | ours / peer |\n|---|---|---:|\n| memory | old | 1.0× |\n";
    assert!(
        summary_table(unknown)
            .expect_err("unknown mode")
            .contains("old")
    );
}

const TEST_BLOCK: Block = Block {
    file: "test.md",
    begin: "<!-- begin -->",
    end: "<!-- end -->",
};

#[test]
fn a_block_replaces_only_the_text_between_its_markers() {
    let text = "# Title\n\nBy hand.\n<!-- begin -->\nold\nlines\n<!-- end -->\nAlso by hand.\n";
    let replaced = TEST_BLOCK.replace(text, "new\n").expect("replace");
    assert_eq!(
        replaced,
        "# Title\n\nBy hand.\n<!-- begin -->\n\nnew\n\n<!-- end -->\nAlso by hand.\n"
    );
    assert_eq!(TEST_BLOCK.content(&replaced).expect("content"), "new");
    // Replacing again with the same text changes nothing.
    assert_eq!(
        TEST_BLOCK.replace(&replaced, "new").expect("again"),
        replaced
    );
}

#[test]
fn a_missing_repeated_or_misplaced_marker_is_an_error_naming_the_file() {
    for text in [
        "<!-- begin -->\nno end\n",
        "no begin\n<!-- end -->\n",
        "<!-- begin -->\n<!-- begin -->\n<!-- end -->\n",
        "<!-- end -->\n<!-- begin -->\n",
    ] {
        let err = TEST_BLOCK.replace(text, "x").expect_err(text);
        assert!(err.starts_with("test.md: "), "{err}");
    }
}

#[test]
fn the_readme_summary_matches_the_full_report() {
    let (expected, actual) = summaries(&workspace_root()).expect("both files and markers");
    assert_eq!(
        actual,
        expected.trim(),
        "the benchmark summary in README.md does not match docs/benchmarks.md: run `{FIX_SUMMARY}`"
    );
}

#[test]
fn the_full_report_has_its_scale_section() {
    let report = SCALE.read(&workspace_root()).expect("docs/benchmarks.md");
    assert!(
        SCALE
            .content(&report)
            .expect("markers")
            .contains("| scale | figure |")
    );
}

#[test]
fn civil_dates_follow_the_gregorian_calendar() {
    assert_eq!(civil_date(0), "1970-01-01");
    assert_eq!(civil_date(-1), "1969-12-31");
    assert_eq!(civil_date(11_016), "2000-02-29");
    assert_eq!(civil_date(11_017), "2000-03-01");
    assert_eq!(civil_date(20_788), "2026-12-01");
}

#[test]
fn the_lock_section_shows_lost_increments_targets_and_stores_without_locks() {
    use crate::lock::{Cost, CostFigures, Hot, HotFigures, LockResults, Workload};
    let figures = |acknowledged, counted, refused| {
        Ok(HotFigures {
            rps: 1000.0,
            acknowledged,
            counted,
            refused,
        })
    };
    let results = LockResults {
        hot: vec![
            Hot {
                store: "memory".into(),
                workload: Workload::IncrUnlocked,
                outcome: figures(10_000, 9_000, 0),
            },
            Hot {
                store: "memory".into(),
                workload: Workload::IncrLocked,
                outcome: figures(8_000, 8_000, 3),
            },
            Hot {
                store: "file".into(),
                workload: Workload::IncrLocked,
                outcome: Err("ours on file exited at start: `lock`: no | locks\nhere".into()),
            },
        ],
        cost: vec![
            Cost {
                store: "memory".into(),
                outcome: Ok(CostFigures {
                    unlocked: vec![1000.0, 1000.0, 1000.0],
                    locked: vec![950.0, 850.0, 920.0],
                    lost: [0, 0],
                    errors: [0, 1],
                }),
            },
            Cost {
                store: "redis".into(),
                outcome: Ok(CostFigures {
                    unlocked: vec![1000.0],
                    locked: vec![800.0],
                    ..CostFigures::default()
                }),
            },
            Cost {
                store: "postgres".into(),
                outcome: Err("not run here".into()),
            },
        ],
    };
    let md = lock_markdown("Run of 2026-12-01 on a test.", &results);
    assert!(md.starts_with("Run of 2026-12-01 on a test.\n"), "{md}");
    for row in [
        "| memory | `/incr`, lock off | 1000 | 10000 | 9000 | 1000 | 0 |",
        "| memory | `/incr`, lock on | 1000 | 8000 | 8000 | 0 | 3 |",
        // One line, no column separator of its own.
        "| file | `/incr`, lock on | – | – | – | – | not run: ours on file exited at start: `lock`: no \\| locks here |",
        // Ratios by round 0.95, 0.85, 0.92: median 0.92.
        "| memory | 1000 | 920 | **0.92×** | 0.95, 0.85, 0.92 | ≥ 0.90: met | 0 / 0 | 0 / 1 |",
        "| redis | 1000 | 800 | **0.80×** | 0.80 | ≥ 0.85: **missed** | 0 / 0 | 0 / 0 |",
        "| postgres | – | – | – | – | ≥ 0.85 | – | not run: not run here |",
    ] {
        assert!(md.contains(row), "missing {row} in\n{md}");
    }
}

#[test]
fn the_full_report_has_its_lock_section() {
    let report = LOCK.read(&workspace_root()).expect("docs/benchmarks.md"); // ok: test
    assert!(LOCK.content(&report).is_ok(), "markers");
}

#[test]
fn the_actix_section_has_ratios_lost_increments_cpu_and_the_target() {
    let with = |side, mode, round, ok, lost, app_us| Run {
        lost,
        cpu: PerRequest {
            app_us: Some(app_us),
            server_us: Some(20.0),
            generator_us: None,
        },
        ..run_on("redis", side, mode, round, ok)
    };
    let runs = vec![
        with(Side::OursActix, "existing", 0, 1300, Some(0), 30.0),
        with(Side::ActixPeer, "existing", 0, 1000, Some(0), 50.0),
        with(Side::ActixPeer, "existing", 1, 1000, Some(0), 60.0),
        with(Side::OursActix, "existing", 1, 1400, Some(0), 40.0),
        with(Side::OursActix, "new", 0, 1100, None, 45.0),
        with(Side::ActixPeer, "new", 0, 1000, None, 55.0),
    ];
    let md = actix_markdown("Run of 2026-12-01 on a test.", &runs);
    assert!(md.starts_with("Run of 2026-12-01 on a test. "), "{md}");
    for row in [
        // Ratios by round 1.30, 1.40: median 1.35.
        "| existing | 1350 | 1000 | **1.35×** | 1.30, 1.40 | ≥ 1.20: met | 0.00 / 0.00 | 0.00 / 0.00 | 0 / 0 |",
        "| new | 1100 | 1000 | **1.10×** | 1.10 | ≥ 1.20: **missed** | 0.00 / 0.00 | 0.00 / 0.00 | – |",
        "| existing | 35.0 | 20.0 | 55.0 | 20.0 |",
        "Target, ≥ 1.20× actix-session on both workloads and 0 lost increments for ours: **missed** (new sessions at 1.10×).",
    ] {
        assert!(md.contains(row), "missing {row} in\n{md}");
    }

    // Both workloads above the target, but ours lost increments: missed all the same.
    let mut lossy = runs.clone();
    lossy[0].lost = Some(3);
    for run in lossy
        .iter_mut()
        .filter(|r| r.mode == "new" && r.side == Side::OursActix)
    {
        run.result.ok = 1500;
    }
    let md = actix_markdown("Run.", &lossy);
    assert!(
        md.contains("| 3 / 0 |") && md.contains("**missed** (3 increments lost by ours)"),
        "{md}"
    );
    lossy[0].lost = Some(0);
    assert!(
        actix_markdown("Run.", &lossy).contains("lost increments for ours: met."),
        "all met"
    );
}

#[test]
fn the_full_report_has_its_actix_section() {
    let report = ACTIX.read(&workspace_root()).expect("docs/benchmarks.md");
    assert!(ACTIX.content(&report).is_ok(), "markers");
}

#[test]
fn database_runs_with_one_ping_setting_get_their_own_table_and_stay_out_of_the_readme() {
    let mut runs = Vec::new();
    for (store, ours, peer) in [
        ("postgres", 300, 200),
        ("postgres-ping", 250, 200),
        ("postgres-noping", 300, 250),
    ] {
        for mode in ["existing", "new"] {
            runs.push(run_on(store, Side::Ours, mode, 0, ours));
            runs.push(run_on(store, Side::Peer, mode, 0, peer));
        }
    }
    let md = markdown("Run of 2026-12-01 on a test: 1 round.", &runs, &[], &[]);
    assert!(
        md.contains(&format!("Both apps get pools of {DB_POOL} connections.")),
        "{md}"
    );
    for line in [
        "| PostgreSQL | each library's default (ours no, peer yes) | **1.50×** | **1.50×** | 300 / 300 | 200 / 200 |",
        "| PostgreSQL | both | **1.25×** | **1.25×** | 250 / 250 | 200 / 200 |",
        "| PostgreSQL | neither | **1.20×** | **1.20×** | 300 / 300 | 250 / 250 |",
    ] {
        assert!(md.contains(line), "{line} in {md}");
    }
    assert!(
        !md.contains("| MariaDB |"),
        "MariaDB was not measured: {md}"
    );
    assert_eq!(
        summary_table(&md).expect("summary"),
        "| store | existing sessions | new sessions |\n\
         |---|---:|---:|\n\
         | PostgreSQL | 1.50× | 1.50× |\n\
         \nFrom the run of 2026-12-01 in [docs/benchmarks.md](docs/benchmarks.md).\n"
    );
    // Without a database run, no such table.
    let md = markdown("Run of 2026-12-01 on a test.", &two_rounds(), &[], &[]);
    assert!(!md.contains("the pool and the ping"), "{md}");
}

#[test]
fn ours_on_redis_is_shown_as_a_share_of_redis_benchmark_in_each_round() {
    let runs = [
        run_on("redis", Side::Ours, "existing", 0, 30_000),
        run_on("redis", Side::Ours, "existing", 1, 20_000),
    ];
    let ceilings = [
        Ceiling {
            round: 0,
            reads: 100_000.0,
            writes: 50_000.0,
        },
        Ceiling {
            round: 1,
            reads: 100_000.0,
            writes: 100_000.0,
        },
    ];
    let md = markdown("Run of 2026-12-01 on a test.", &runs, &[], &ceilings);
    // 30,000 of 33,333 and 20,000 of 50,000.
    assert!(
        md.contains("| 2 round(s) | 100000 | 75000 | 41667 | 65% (90, 40) |"),
        "{md}"
    );
    let md = markdown("Run of 2026-12-01 on a test.", &runs, &[], &[]);
    assert!(!md.contains("redis-benchmark"), "{md}");
}
