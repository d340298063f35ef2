//! The benchmark report. Every run writes Markdown, JSON and an SVG chart under
//! `target/bench/`. A full run also rewrites the generated sections of the full report,
//! `docs/benchmarks.md`, its chart `docs/bench-ratios.svg`, and the README's summary table,
//! which is derived from the report's throughput table so that the two cannot disagree.
//!
//! The hand-written parts of those files (how the figures are measured, what they say) are
//! left alone: a generated section is the text between two marker lines ([`Block`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::actix::{self, TARGET_RATIO};
use crate::lock::{LockResults, target};
use crate::redis_ceiling::Ceiling;
use crate::{DB_POOL, RoundTrips, Run, SEQUENTIAL_REQUESTS, Settings, Side, store_variant};

/// A generated section of a file that is otherwise written by hand: the text between two
/// marker lines. Markers are HTML comments, so they do not show when the Markdown renders.
pub(crate) struct Block {
    /// The file, relative to the workspace root.
    file: &'static str,
    begin: &'static str,
    end: &'static str,
}

/// The latest full run, in the full report.
const RESULTS: Block = Block {
    file: "docs/benchmarks.md",
    begin: "<!-- results: written by `cargo xtask bench`, replaced by each full run -->",
    end: "<!-- end of results -->",
};

/// The scale figures, in the full report; measured only on request, so kept apart.
const SCALE: Block = Block {
    file: "docs/benchmarks.md",
    begin: "<!-- scale: written by `cargo xtask bench --scale` or `--scale-only` -->",
    end: "<!-- end of scale -->",
};

const USERS: Block = Block {
    file: "docs/benchmarks.md",
    begin: "<!-- users: written by `cargo xtask bench --users-only` -->",
    end: "<!-- end of users -->",
};

/// Same-session concurrency and the lock's cost, in the full report.
const LOCK: Block = Block {
    file: "docs/benchmarks.md",
    begin: "<!-- lock: written by `cargo xtask bench --lock-only` -->",
    end: "<!-- end of lock -->",
};

/// The example app on actix-web against actix-session, in the full report.
const ACTIX: Block = Block {
    file: "docs/benchmarks.md",
    begin: "<!-- actix: written by `cargo xtask bench --actix-only` -->",
    end: "<!-- end of actix -->",
};

/// The README's summary table, derived from [`RESULTS`].
const SUMMARY: Block = Block {
    file: "README.md",
    begin: "<!-- benchmark summary: written by `cargo xtask bench` from docs/benchmarks.md -->",
    end: "<!-- end of benchmark summary -->",
};

/// The chart of the latest full run, shown by the README and the full report.
const CHART: &str = "docs/bench-ratios.svg";

/// The header of the throughput column the README's summary is made of.
const RATIO_HEADER: &str = "ours / peer";

/// The command that brings the README's summary back in line with the full report.
const FIX_SUMMARY: &str = "cargo xtask bench --update-readme";

impl Block {
    /// The positions of the end of the begin marker and of the start of the end marker.
    fn bounds(&self, text: &str) -> Result<(usize, usize), String> {
        let find = |marker: &str| match text
            .match_indices(marker)
            .map(|(i, _)| i)
            .collect::<Vec<_>>()[..]
        {
            [at] => Ok(at),
            [] => Err(format!(
                "{}: the marker line `{marker}` is missing; put it back around the generated section",
                self.file
            )),
            _ => Err(format!(
                "{}: the marker line `{marker}` appears more than once",
                self.file
            )),
        };
        let inner = find(self.begin)? + self.begin.len();
        let end = find(self.end)?;
        if end < inner {
            return Err(format!(
                "{}: `{}` comes before `{}`",
                self.file, self.end, self.begin
            ));
        }
        Ok((inner, end))
    }

    /// The generated text, without the blank lines around it.
    fn content<'a>(&self, text: &'a str) -> Result<&'a str, String> {
        let (inner, end) = self.bounds(text)?;
        Ok(text[inner..end].trim())
    }

    /// `text` with the generated section replaced by `content`, set off by blank lines so
    /// that Markdown starts a new block after the marker.
    fn replace(&self, text: &str, content: &str) -> Result<String, String> {
        let (inner, end) = self.bounds(text)?;
        Ok(format!(
            "{}\n\n{}\n\n{}",
            &text[..inner],
            content.trim(),
            &text[end..]
        ))
    }

    fn read(&self, root: &Path) -> Result<String, String> {
        let path = root.join(self.file);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Replaces the generated section in the file under `root`.
    fn write(&self, root: &Path, content: &str) -> Result<(), String> {
        let path = root.join(self.file);
        let text = self.replace(&self.read(root)?, content)?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("written: {} (its generated section)", path.display());
        Ok(())
    }
}

fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.join(".."), Path::to_path_buf)
}

/// `target/bench/`, where every run's own results go.
fn results_dir() -> Result<PathBuf, String> {
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Medians of one store, mode and side over the rounds.
struct Summary {
    rps: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    lost: Option<i64>,
    /// Application CPU time per request, µs.
    app_us: Option<f64>,
    /// Store server CPU time per request, µs.
    server_us: Option<f64>,
}

/// The median of the figures the runs have.
fn median_of(runs: &[&Run], figure: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter_map(|r| figure(r)).collect();
    (!values.is_empty()).then(|| median(values))
}

fn summary(runs: &[&Run]) -> Option<Summary> {
    if runs.is_empty() {
        return None;
    }
    Some(Summary {
        rps: median(runs.iter().map(|r| r.result.rps()).collect()),
        p50: median(runs.iter().map(|r| r.result.quantile_ms(0.5)).collect()),
        p99: median(runs.iter().map(|r| r.result.quantile_ms(0.99)).collect()),
        errors: runs.iter().map(|r| r.result.errors).sum(),
        lost: runs.iter().map(|r| r.lost).sum(),
        app_us: median_of(runs, |r| r.cpu.app_us),
        server_us: median_of(runs, |r| r.cpu.server_us),
    })
}

/// `a`'s throughput over `b`'s in each round both ran, in the order of `a`'s runs: each
/// round's runs were measured one after the other, under the same machine conditions, so
/// only a ratio within a round means anything.
fn round_ratios(a: &[&Run], b: &[&Run]) -> Vec<f64> {
    a.iter()
        .filter_map(|x| {
            b.iter()
                .find(|y| y.round == x.round)
                .map(|y| x.result.rps() / y.result.rps())
        })
        .collect()
}

/// The median of [`round_ratios`], if any round has both.
fn ratio_by_round(a: &[&Run], b: &[&Run]) -> Option<f64> {
    let ratios = round_ratios(a, b);
    (!ratios.is_empty()).then(|| median(ratios))
}

/// Per-round figures as a short list, `1.20, 1.09, 1.13`.
fn list(values: &[f64], scale: f64, decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{:.*}", decimals, v * scale))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Per-round shares as their median percentage and the rounds', `83% (100, 69, 83)`;
/// `–` when there are none.
fn share_by_round(shares: &[f64]) -> String {
    if shares.is_empty() {
        return "–".into();
    }
    format!(
        "{:.0}% ({})",
        100.0 * median(shares.to_vec()),
        list(shares, 100.0, 0)
    )
}

struct Row {
    store: String,
    mode: &'static str,
    ours: Summary,
    peer: Option<Summary>,
    ratio: Option<f64>,
    /// Ours over the peer in each round.
    rounds: Vec<f64>,
}

fn rows(runs: &[Run]) -> Vec<Row> {
    let mut keys: Vec<(String, &'static str)> = Vec::new();
    for run in runs.iter().filter(|r| r.side == Side::Ours) {
        if !keys.contains(&(run.store.clone(), run.mode)) {
            keys.push((run.store.clone(), run.mode));
        }
    }
    keys.into_iter()
        .filter_map(|(store, mode)| {
            let ours_runs = side_runs(runs, Side::Ours, &store, mode);
            let peer_runs = side_runs(runs, Side::Peer, &store, mode);
            Some(Row {
                ours: summary(&ours_runs)?,
                peer: summary(&peer_runs),
                ratio: ratio_by_round(&ours_runs, &peer_runs),
                rounds: round_ratios(&ours_runs, &peer_runs),
                store,
                mode,
            })
        })
        .collect()
}

/// The runs of one application on one store and mode, over the rounds.
fn side_runs<'a>(runs: &'a [Run], side: Side, store: &str, mode: &str) -> Vec<&'a Run> {
    runs.iter()
        .filter(|r| r.side == side && r.store == store && r.mode == mode)
        .collect()
}

/// The name readers know a store by, for the README and the store-work table.
fn store_label(store: &str) -> &str {
    match store {
        "sqlite" => "SQLite",
        "postgres" => "PostgreSQL",
        "mysql" => "MariaDB",
        "redis" => "Redis",
        other => other,
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores ({cpu})")
}

/// The civil date (UTC) of `days` since 1970-01-01, as `YYYY-MM-DD`: the proleptic
/// Gregorian calendar, by Howard Hinnant's `civil_from_days`.
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(i64::try_from(secs / 86_400).unwrap_or(0))
}

/// The first line of a report: when, where and how it was measured. [`summary_table`]
/// reads the date back from it.
fn intro(date: &str, machine: &str, servers: &[String], settings: &str) -> String {
    let servers = if servers.is_empty() {
        String::new()
    } else {
        format!("; {} on loopback", servers.join(", "))
    };
    format!("Run of {date} on {machine}{servers}: {settings}.")
}

/// The report of one run: throughput, the no-session baseline, CPU time and store work
/// per request. Pure, so the tests can feed it a few made-up runs.
fn markdown(intro: &str, runs: &[Run], trips: &[RoundTrips], ceilings: &[Ceiling]) -> String {
    let rows = rows(runs);
    // The no-session app serves both workloads (with and without a cookie in the request),
    // and each row is compared with the baseline of its own workload.
    let baseline_runs = |mode: &str| side_runs(runs, Side::Baseline, "none", mode);
    let baseline_app_us = |mode: &str| summary(&baseline_runs(mode)).and_then(|b| b.app_us);
    let us = |value: Option<f64>| value.map_or("–".into(), |v| format!("{v:.1}"));

    let mut md = String::new();
    let _ = writeln!(
        md,
        "{intro} Ratios are medians of the per-round ratios; a round measures every app \
         one after the other, on a wiped store.\n"
    );
    let _ = writeln!(md, "### Throughput\n");
    let _ = writeln!(
        md,
        "| store | sessions | ours req/s | tower-sessions req/s | {RATIO_HEADER} | {RATIO_HEADER} by round | ours p50 / p99 ms | peer p50 / p99 ms | lost increments (ours / peer) |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let peer = row.peer.as_ref();
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {} | {:.2} / {:.2} | {} | {} |",
            row.store,
            row.mode,
            row.ours.rps,
            peer.map_or("–".into(), |p| format!("{:.0}", p.rps)),
            row.ratio.map_or("–".into(), |r| format!("**{r:.2}×**")),
            if row.rounds.is_empty() {
                "–".into()
            } else {
                list(&row.rounds, 1.0, 2)
            },
            row.ours.p50,
            row.ours.p99,
            peer.map_or("–".into(), |p| format!("{:.2} / {:.2}", p.p50, p.p99)),
            match (row.ours.lost, peer.and_then(|p| p.lost)) {
                (Some(o), Some(p)) => format!("{o} / {p}"),
                (Some(o), None) => o.to_string(),
                _ => "–".into(),
            }
        );
    }
    let errors: u64 = rows
        .iter()
        .map(|r| r.ours.errors + r.peer.as_ref().map_or(0, |p| p.errors))
        .sum();
    let _ = writeln!(
        md,
        "\nNon-200 responses or transport errors over all runs: {errors}."
    );

    pool_section(&mut md, &rows);
    redis_ceiling_section(&mut md, runs, ceilings);

    if ["existing", "new"]
        .iter()
        .any(|mode| !baseline_runs(mode).is_empty())
    {
        let _ = writeln!(
            md,
            "\n### No-session baseline\n\n\
             The same axum stack serving `/incr` without a session: the ceiling of the HTTP \
             stack on this machine. No session library can show a higher ratio over \
             tower-sessions than the baseline's.\n\n\
             | workload | req/s | app CPU µs per request | load generator CPU µs per request | memory store, share of the baseline | baseline / tower-sessions on memory |\n\
             |---|---:|---:|---:|---:|---:|"
        );
    }
    for mode in ["existing", "new"] {
        let base_runs = baseline_runs(mode);
        let Some(baseline) = summary(&base_runs) else {
            continue;
        };
        let ours_runs = side_runs(runs, Side::Ours, "memory", mode);
        let peer_runs = side_runs(runs, Side::Peer, "memory", mode);
        let share = round_ratios(&ours_runs, &base_runs);
        let ceiling = round_ratios(&base_runs, &peer_runs);
        let _ = writeln!(
            md,
            "| {} | {:.0} | {} | {} | {} | {} |",
            if mode == "existing" {
                "existing sessions (requests carry a cookie of our shape, which it ignores)"
            } else {
                "new sessions (requests carry no cookie)"
            },
            baseline.rps,
            us(baseline.app_us),
            us(median_of(&base_runs, |r| r.cpu.generator_us)),
            share_by_round(&share),
            if ceiling.is_empty() {
                "–".into()
            } else {
                format!(
                    "{:.2}× ({})",
                    median(ceiling.clone()),
                    list(&ceiling, 1.0, 2)
                )
            },
        );
    }

    let _ = writeln!(
        md,
        "\n### CPU time per request\n\n\
         Medians of the rounds, µs. Session cost is the application's CPU above the \
         no-session app's on the same workload.\n\n\
         | store | sessions | ours: app | ours: store server | tower-sessions: app | tower-sessions: store server | session cost, ours / peer |\n\
         |---|---|---:|---:|---:|---:|---:|"
    );
    for row in &rows {
        let peer = row.peer.as_ref();
        let cost = |s: Option<&Summary>| Some(s?.app_us? - baseline_app_us(row.mode)?);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} / {} |",
            row.store,
            row.mode,
            us(row.ours.app_us),
            us(row.ours.server_us),
            us(peer.and_then(|p| p.app_us)),
            us(peer.and_then(|p| p.server_us)),
            us(cost(Some(&row.ours))),
            us(cost(peer)),
        );
    }

    if !trips.is_empty() {
        let _ = writeln!(
            md,
            "\n### Store work per request\n\n\
             | counted on the server around {SEQUENTIAL_REQUESTS} sequential requests of each kind | read-only | write | new session |\n\
             |---|---:|---:|---:|"
        );
        for t in trips {
            let [r, w, n] = t.per_request;
            let unit = if t.store == "redis" {
                "round trips (`MONITOR`)"
            } else {
                "transactions (`pg_stat_database`)"
            };
            let _ = writeln!(
                md,
                "| {}, {} {unit} | {r:.2} | {w:.2} | {n:.2} |",
                t.side.label(),
                store_label(&t.store)
            );
            if let Some([r, w, n]) = t.commands {
                let _ = writeln!(
                    md,
                    "| {}, {} commands executed, scripts' inner commands too (`INFO commandstats`) | {r:.2} | {w:.2} | {n:.2} |",
                    t.side.label(),
                    store_label(&t.store)
                );
            }
        }
    }
    md
}

/// PostgreSQL and MariaDB with equal pools, at each library's default ping-before-use
/// setting and with one setting for both, when the run measured any of them.
fn pool_section(md: &mut String, rows: &[Row]) {
    let bases = ["postgres", "mysql"];
    let measured = |store: &str| rows.iter().any(|r| r.store == store && r.peer.is_some());
    if !bases.iter().any(|base| measured(base)) {
        return;
    }
    let _ = writeln!(
        md,
        "\n### PostgreSQL and MariaDB: the pool and the ping\n\n\
         Both apps get pools of {DB_POOL} connections. By default sqlx's pool, the peer's, \
         pings a connection before handing it out (`test_before_acquire`), and ours does not \
         (`adapter.db.test_before_acquire = false`); the other two settings give both apps \
         the same one, so that what comes from the setting and what from the store show \
         apart.\n\n\
         | database | ping before use | ours / peer, existing | ours / peer, new | ours req/s, existing / new | peer req/s, existing / new |\n\
         |---|---|---:|---:|---:|---:|"
    );
    for base in bases {
        for (suffix, setting) in [
            ("", "each library's default (ours no, peer yes)"),
            ("-ping", "both"),
            ("-noping", "neither"),
        ] {
            let store = format!("{base}{suffix}");
            if !measured(&store) {
                continue;
            }
            let row = |mode: &str| rows.iter().find(|r| r.store == store && r.mode == mode);
            let ratio = |mode: &str| {
                row(mode)
                    .and_then(|r| r.ratio)
                    .map_or("–".into(), |r| format!("**{r:.2}×**"))
            };
            let rps = |mode: &str, ours: bool| {
                row(mode)
                    .and_then(|r| if ours { Some(&r.ours) } else { r.peer.as_ref() })
                    .map_or("–".into(), |s| format!("{:.0}", s.rps))
            };
            let _ = writeln!(
                md,
                "| {} | {setting} | {} | {} | {} / {} | {} / {} |",
                store_label(base),
                ratio("existing"),
                ratio("new"),
                rps("existing", true),
                rps("new", true),
                rps("existing", false),
                rps("new", false),
            );
        }
    }
}

/// The share of Redis's own ceiling (`redis-benchmark` on the commands of one request, in
/// the same round) that ours served on existing sessions, when the run measured it.
fn redis_ceiling_section(md: &mut String, runs: &[Run], ceilings: &[Ceiling]) {
    if ceilings.is_empty() {
        return;
    }
    let ours = side_runs(runs, Side::Ours, "redis", "existing");
    let shares: Vec<f64> = ceilings
        .iter()
        .filter_map(|c| {
            let ours = ours.iter().find(|r| r.round == c.round)?;
            Some(ours.result.rps() / c.requests())
        })
        .collect();
    let median_of = |figure: fn(&Ceiling) -> f64| median(ceilings.iter().map(figure).collect());
    let _ = writeln!(
        md,
        "\n### Redis against `redis-benchmark`\n\n\
         Each round, right after the Redis runs, `redis-benchmark` sends the two commands one \
         of our existing-session requests sends (its `HGETALL` and its update script's \
         `EVALSHA`, caught with `MONITOR`) with as many clients as the load generator has \
         connections, over as many copies of the session as it has sessions. A request \
         needs one of each, so Redis serves at most `1 / (1 / reads + 1 / writes)` requests \
         a second: the ceiling ours is measured against.\n\n\
         | redis-benchmark, median of the rounds | HGETALL / s | EVALSHA / s | one of each / s | ours, existing sessions, share of it |\n\
         |---|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        md,
        "| {} round(s) | {:.0} | {:.0} | {:.0} | {} |",
        ceilings.len(),
        median_of(|c| c.reads),
        median_of(|c| c.writes),
        median_of(Ceiling::requests),
        share_by_round(&shares),
    );
}

/// The scale section: one line per figure, as `scale` measured them.
fn scale_markdown(intro: &str, lines: &[String]) -> String {
    let mut md = format!("{intro}\n\n| scale | figure |\n|---|---|\n");
    for line in lines {
        let _ = writeln!(md, "{line}");
    }
    md
}

/// The README's summary, from the full report's results section: one row per store, with
/// its throughput over tower-sessions' on existing and on new sessions, and the date of
/// the run.
fn summary_table(results: &str) -> Result<String, String> {
    fn cells(line: &str) -> Vec<&str> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect()
    }
    let mut lines = results.lines();
    let header = lines
        .by_ref()
        .find(|l| l.starts_with("| store | sessions |"))
        .ok_or("no throughput table (a line starting with `| store | sessions |`)")?;
    let column = cells(header)
        .iter()
        .position(|c| *c == RATIO_HEADER)
        .ok_or(format!(
            "the throughput table has no `{RATIO_HEADER}` column"
        ))?;
    let mut stores: Vec<(&str, [&str; 2])> = Vec::new();
    // The separator line, then the rows up to the end of the table.
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let row = cells(line);
        let (Some(store), Some(mode), Some(ratio)) = (row.first(), row.get(1), row.get(column))
        else {
            return Err(format!("a throughput row with too few cells: {line}"));
        };
        // The README shows each store at its defaults; the runs with one ping setting for
        // both apps stay in the full report.
        if store_variant(store).1.is_some() {
            continue;
        }
        let slot = match *mode {
            "existing" => 0,
            "new" => 1,
            other => return Err(format!("unknown sessions `{other}` in: {line}")),
        };
        let ratio = ratio.trim_matches('*');
        match stores.iter_mut().find(|(s, _)| s == store) {
            Some((_, ratios)) => ratios[slot] = ratio,
            None => {
                let mut ratios = ["–"; 2];
                ratios[slot] = ratio;
                stores.push((store, ratios));
            }
        }
    }
    if stores.is_empty() {
        return Err("the throughput table has no rows".into());
    }
    let mut md = String::from("| store | existing sessions | new sessions |\n|---|---:|---:|\n");
    for (store, [existing, new]) in &stores {
        let _ = writeln!(md, "| {} | {existing} | {new} |", store_label(store));
    }
    let date = results
        .lines()
        .find_map(|l| l.strip_prefix("Run of "))
        .and_then(|rest| rest.split_whitespace().next());
    if let Some(date) = date {
        let _ = writeln!(
            md,
            "\nFrom the run of {date} in [docs/benchmarks.md](docs/benchmarks.md)."
        );
    }
    Ok(md)
}

/// The README's summary as the full report's results imply it, and as the README has it.
fn summaries(root: &Path) -> Result<(String, String), String> {
    let report = RESULTS.read(root)?;
    let expected =
        summary_table(RESULTS.content(&report)?).map_err(|e| format!("{}: {e}", RESULTS.file))?;
    let readme = SUMMARY.read(root)?;
    Ok((expected, SUMMARY.content(&readme)?.to_owned()))
}

/// `--check`: whether the README's summary matches the full report.
pub(crate) fn check() -> Result<(), String> {
    let (expected, actual) = summaries(&workspace_root())?;
    if expected.trim() == actual {
        println!("{} agrees with {}", SUMMARY.file, RESULTS.file);
        Ok(())
    } else {
        Err(format!(
            "the benchmark summary in {} does not match {}; run `{FIX_SUMMARY}`",
            SUMMARY.file, RESULTS.file
        ))
    }
}

/// `--update-readme`: rewrites the README's summary from the full report.
pub(crate) fn update_readme() -> Result<(), String> {
    let root = workspace_root();
    let (expected, _) = summaries(&root)?;
    SUMMARY.write(&root, &expected)
}

/// Writes the scale figures alone (`--scale-only`) to `target/bench/scale.md`, and to the
/// full report's scale section when `settings` allow it.
pub(crate) fn write_scale(settings: &Settings, lines: &[String]) -> Result<(), String> {
    let md = scale_markdown(
        &intro(&today(), &machine(), &[], "the scale measurements alone"),
        lines,
    );
    let path = results_dir()?.join("scale.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("written: {}", path.display());
    if settings.writes_docs {
        SCALE.write(&workspace_root(), &md)?;
    }
    Ok(())
}

/// Writes the costs of sessions bound to users to `target/bench/users.md`, and into the
/// full report when every store was measured.
pub(crate) fn write_users(settings: &Settings, lines: &[String]) -> Result<(), String> {
    let mut md = format!(
        "{}\n\n| store | work | time | store calls | server requests |\n|---|---|---:|---:|---:|\n",
        intro(&today(), &machine(), &[], "sessions of users alone")
    );
    for line in lines {
        let _ = writeln!(md, "{line}");
    }
    let path = results_dir()?.join("users.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("written: {}", path.display());
    if settings.writes_docs {
        USERS.write(&workspace_root(), &md)?;
    }
    Ok(())
}

/// The same-session concurrency section: the hot session's increments, acknowledged and
/// counted, and the lock's cost on distinct sessions. Pure, so the tests can feed it
/// made-up results.
fn lock_markdown(intro: &str, results: &LockResults) -> String {
    let mut md = format!(
        "{intro}\n\n#### One hot session\n\n\
         | store | workload | req/s | acknowledged | counted | lost | other responses |\n\
         |---|---|---:|---:|---:|---:|---:|\n"
    );
    for hot in &results.hot {
        let _ = match &hot.outcome {
            Ok(f) => writeln!(
                md,
                "| {} | {} | {:.0} | {} | {} | {} | {} |",
                hot.store,
                hot.workload.label(),
                f.rps,
                f.acknowledged,
                f.counted,
                f.lost(),
                f.refused
            ),
            Err(err) => writeln!(
                md,
                "| {} | {} | – | – | – | – | not run: {} |",
                hot.store,
                hot.workload.label(),
                cell(err)
            ),
        };
    }
    let _ = write!(
        md,
        "\n#### The lock's cost on distinct sessions\n\n\
         | store | lock off req/s | lock on req/s | on / off | on / off by round | target | lost (off / on) | other responses (off / on) |\n\
         |---|---:|---:|---:|---:|---|---:|---:|\n"
    );
    for cost in &results.cost {
        let _ = match &cost.outcome {
            Ok(f) => {
                let ratios = f.ratios();
                let ratio = (!ratios.is_empty()).then(|| median(ratios.clone()));
                let verdict = match (target(&cost.store), ratio) {
                    (Some(t), Some(r)) if r >= t => format!("≥ {t:.2}: met"),
                    (Some(t), Some(_)) => format!("≥ {t:.2}: **missed**"),
                    (Some(t), None) => format!("≥ {t:.2}"),
                    (None, _) => "–".to_owned(),
                };
                writeln!(
                    md,
                    "| {} | {:.0} | {:.0} | {} | {} | {verdict} | {} / {} | {} / {} |",
                    cost.store,
                    median(f.unlocked.clone()),
                    median(f.locked.clone()),
                    ratio.map_or("–".into(), |r| format!("**{r:.2}×**")),
                    list(&ratios, 1.0, 2),
                    f.lost[0],
                    f.lost[1],
                    f.errors[0],
                    f.errors[1],
                )
            }
            Err(err) => writeln!(
                md,
                "| {} | – | – | – | – | {} | – | not run: {} |",
                cost.store,
                target(&cost.store).map_or("–".into(), |t| format!("≥ {t:.2}")),
                cell(err)
            ),
        };
    }
    md
}

/// `text` as one Markdown table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// Writes same-session concurrency and the lock's cost to `target/bench/lock.md`, and into
/// the full report after a full run of every store.
pub(crate) fn write_lock(settings: &Settings, results: &LockResults) -> Result<(), String> {
    let describe = format!(
        "same-session concurrency alone, {} connections, {} s per run; the lock's cost over \
         {} existing sessions, {} round(s) of lock off and on",
        settings.connections,
        settings.duration.as_secs(),
        settings.sessions,
        settings.rounds
    );
    let md = lock_markdown(&intro(&today(), &machine(), &[], &describe), results);
    let path = results_dir()?.join("lock.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\n{md}\nwritten: {}", path.display());
    if settings.writes_docs {
        LOCK.write(&workspace_root(), &md)?;
    } else {
        println!(
            "{} left as it was: only a full run of every store (no --quick, --stores or --no-docs) replaces its figures",
            LOCK.file
        );
    }
    Ok(())
}

/// The actix-web section: ours on actix-web against actix-session on Redis, both
/// workloads, with the target's verdict. Pure, so the tests can feed it made-up runs.
fn actix_markdown(intro: &str, runs: &[Run]) -> String {
    let [ours, peer] = actix::SIDES;
    let us = |value: Option<f64>| value.map_or("–".into(), |v| format!("{v:.1}"));
    let latency =
        |s: Option<&Summary>| s.map_or("–".into(), |s| format!("{:.2} / {:.2}", s.p50, s.p99));
    let mut md = format!(
        "{intro} Ratios are medians of the per-round ratios; a round measures both apps one \
         after the other (which goes first alternates), each on a wiped Redis database.\n\n\
         | sessions | {} req/s | {} req/s | ours / actix-session | by round | target | ours p50 / p99 ms | actix-session p50 / p99 ms | lost increments (ours / actix-session) |\n\
         |---|---:|---:|---:|---:|---|---:|---:|---:|\n",
        ours.label(),
        peer.label(),
    );
    let mut cpu = String::from(
        "| sessions | ours: app | ours: Redis | actix-session: app | actix-session: Redis |\n\
         |---|---:|---:|---:|---:|\n",
    );
    // What keeps the target from being met, workload by workload.
    let mut misses = Vec::new();
    let mut errors = 0;
    for mode in ["existing", "new"] {
        let ours_runs = side_runs(runs, ours, actix::STORE, mode);
        let peer_runs = side_runs(runs, peer, actix::STORE, mode);
        let (o, p) = (summary(&ours_runs), summary(&peer_runs));
        let ratios = round_ratios(&ours_runs, &peer_runs);
        let ratio = (!ratios.is_empty()).then(|| median(ratios.clone()));
        let verdict = match ratio {
            Some(r) if r >= TARGET_RATIO => format!("≥ {TARGET_RATIO:.2}: met"),
            Some(r) => {
                misses.push(format!("{mode} sessions at {r:.2}×"));
                format!("≥ {TARGET_RATIO:.2}: **missed**")
            }
            None => {
                misses.push(format!("{mode} sessions not measured on both apps"));
                format!("≥ {TARGET_RATIO:.2}")
            }
        };
        let ours_lost = o.as_ref().and_then(|s| s.lost);
        if let Some(lost) = ours_lost.filter(|&lost| lost != 0) {
            misses.push(format!("{lost} increments lost by ours"));
        }
        errors += o.as_ref().map_or(0, |s| s.errors) + p.as_ref().map_or(0, |s| s.errors);
        let rps = |s: Option<&Summary>| s.map_or("–".into(), |s| format!("{:.0}", s.rps));
        let _ = writeln!(
            md,
            "| {mode} | {} | {} | {} | {} | {verdict} | {} | {} | {} |",
            rps(o.as_ref()),
            rps(p.as_ref()),
            ratio.map_or("–".into(), |r| format!("**{r:.2}×**")),
            if ratios.is_empty() {
                "–".into()
            } else {
                list(&ratios, 1.0, 2)
            },
            latency(o.as_ref()),
            latency(p.as_ref()),
            match (ours_lost, p.as_ref().and_then(|s| s.lost)) {
                (Some(o), Some(p)) => format!("{o} / {p}"),
                (Some(o), None) => format!("{o} / –"),
                (None, Some(p)) => format!("– / {p}"),
                (None, None) => "–".into(),
            }
        );
        let _ = writeln!(
            cpu,
            "| {mode} | {} | {} | {} | {} |",
            us(o.as_ref().and_then(|s| s.app_us)),
            us(o.as_ref().and_then(|s| s.server_us)),
            us(p.as_ref().and_then(|s| s.app_us)),
            us(p.as_ref().and_then(|s| s.server_us)),
        );
    }
    let _ = write!(
        md,
        "\nNon-200 responses or transport errors over all runs: {errors}.\n\n\
         CPU time per request, medians of the rounds, µs:\n\n{cpu}\n\
         Target, ≥ {TARGET_RATIO:.2}× actix-session on both workloads and 0 lost increments \
         for ours: {}.\n",
        if misses.is_empty() {
            "met".to_owned()
        } else {
            format!("**missed** ({})", misses.join("; "))
        }
    );
    md
}

/// Writes ours on actix-web against actix-session to `target/bench/actix.md`, and into
/// the full report after a full run.
pub(crate) fn write_actix(settings: &Settings, runs: &[Run]) -> Result<(), String> {
    let describe = format!(
        "ours on actix-web against actix-session, Redis, {}",
        settings.describe()
    );
    let servers = crate::server_versions(&[actix::STORE.to_owned()]);
    let md = actix_markdown(&intro(&today(), &machine(), &servers, &describe), runs);
    let path = results_dir()?.join("actix.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "
{md}
written: {}",
        path.display()
    );
    if settings.writes_docs {
        ACTIX.write(&workspace_root(), &md)?;
    } else {
        println!(
            "{} left as it was: only a full run (no --quick or --no-docs) replaces its figures",
            ACTIX.file
        );
    }
    Ok(())
}

/// Writes the results of a run to `target/bench/`, and after a full run into the full
/// report, its chart and the README's summary.
pub(crate) fn write(
    settings: &Settings,
    servers: &[String],
    runs: &[Run],
    trips: &[RoundTrips],
    ceilings: &[Ceiling],
    scale: Option<&[String]>,
) -> Result<(), String> {
    let dir = results_dir()?;
    let date = today();
    let intro = intro(&date, &machine(), servers, &settings.describe());
    let rows = rows(runs);
    let md = markdown(&intro, runs, trips, ceilings);
    let scale_md = scale.map(|lines| scale_markdown(&intro, lines));
    let mut all = md.clone();
    if let Some(scale_md) = &scale_md {
        let _ = write!(all, "\n### Scale\n\n{scale_md}");
    }
    std::fs::write(dir.join("results.md"), &all).map_err(|e| e.to_string())?;

    let baseline = |mode: &str| summary(&side_runs(runs, Side::Baseline, "none", mode));
    let baseline_json: Vec<_> = ["existing", "new"]
        .into_iter()
        .map(|mode| {
            json!({
                "mode": mode,
                "rps": baseline(mode).map(|b| b.rps),
                "app_cpu_us": baseline(mode).and_then(|b| b.app_us),
            })
        })
        .collect();
    let json = json!({
        "date": date,
        "machine": machine(),
        "servers": servers,
        "settings": settings.describe(),
        "baseline": baseline_json,
        "rows": rows.iter().map(|r| json!({
            "store": r.store, "mode": r.mode,
            "ours": {"rps": r.ours.rps, "p50_ms": r.ours.p50, "p99_ms": r.ours.p99, "errors": r.ours.errors, "lost": r.ours.lost,
                     "app_cpu_us": r.ours.app_us, "server_cpu_us": r.ours.server_us},
            "peer": r.peer.as_ref().map(|p| json!({"rps": p.rps, "p50_ms": p.p50, "p99_ms": p.p99, "errors": p.errors, "lost": p.lost,
                     "app_cpu_us": p.app_us, "server_cpu_us": p.server_us})),
            "ratio": r.ratio,
            "ratio_by_round": r.rounds,
        })).collect::<Vec<_>>(),
        "per_request": trips.iter().map(|t| json!({
            "store": t.store, "app": t.side.label(),
            "unit": if t.store == "redis" { "round trips" } else { "transactions" },
            "read_only": t.per_request[0], "write": t.per_request[1], "new_session": t.per_request[2],
            "redis_commands_executed": t.commands,
        })).collect::<Vec<_>>(),
        "runs": runs.iter().map(|r| json!({
            "store": r.store, "app": r.side.label(), "mode": r.mode, "round": r.round,
            "rps": r.result.rps(), "p50_ms": r.result.quantile_ms(0.5), "p99_ms": r.result.quantile_ms(0.99),
            "ok": r.result.ok, "errors": r.result.errors, "lost": r.lost,
            "app_cpu_us": r.cpu.app_us, "server_cpu_us": r.cpu.server_us, "generator_cpu_us": r.cpu.generator_us,
        })).collect::<Vec<_>>(),
        "redis_benchmark": ceilings.iter().map(|c| json!({
            "round": c.round, "hgetall_per_s": c.reads, "evalsha_per_s": c.writes,
            "requests_per_s": c.requests(),
        })).collect::<Vec<_>>(),
        "scale": scale,
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), text).map_err(|e| e.to_string())?;
    let chart = svg(&rows);
    std::fs::write(dir.join("ratios.svg"), &chart).map_err(|e| e.to_string())?;
    println!(
        "\n{all}\nwritten: {}/results.md, results.json, ratios.svg",
        dir.display()
    );

    if !settings.writes_docs {
        println!(
            "{} and {} left as they were: only a full run (no --quick, --stores or --no-docs) replaces their figures",
            RESULTS.file, SUMMARY.file
        );
        return Ok(());
    }
    let root = workspace_root();
    RESULTS.write(&root, &md)?;
    if let Some(scale_md) = &scale_md {
        SCALE.write(&root, scale_md)?;
    }
    let path = root.join(CHART);
    std::fs::write(&path, &chart).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("written: {}", path.display());
    update_readme()
}

/// A horizontal bar per store and mode: ours / tower-sessions, with the 1× line.
fn svg(rows: &[Row]) -> String {
    let bars: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|r| {
            r.ratio
                .map(|ratio| (format!("{} ({})", r.store, r.mode), ratio))
        })
        .collect();
    let max = bars.iter().map(|(_, r)| *r).fold(2.0_f64, f64::max).ceil();
    let (left, width, bar_h, gap) = (170.0, 460.0, 22.0, 8.0);
    let height = 60.0 + bars.len() as f64 * (bar_h + gap);
    let x = |ratio: f64| left + width * ratio / max;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <text x=\"10\" y=\"20\" font-size=\"14\">Throughput ratio, ours / tower-sessions (higher is better)</text>",
        left + width + 60.0
    );
    for (i, (label, ratio)) in bars.iter().enumerate() {
        let y = 40.0 + i as f64 * (bar_h + gap);
        let color = if *ratio >= 1.0 { "#2b8a3e" } else { "#c92a2a" };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{ratio:.2}×</text>",
            left - 6.0,
            y + 15.0,
            x(*ratio) - left,
            x(*ratio) + 4.0,
            y + 15.0
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{0:.1}\" y1=\"32\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">1×</text></svg>",
        x(1.0),
        height - 14.0,
        height - 2.0
    );
    out
}

#[cfg(test)]
mod tests;
