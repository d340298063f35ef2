//! Turns runs into the Markdown table, the JSON file and the SVG chart under
//! `target/bench/`.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::json;

use crate::{RoundTrips, Run, Settings, Side};

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

/// The median over rounds of `a`'s throughput over `b`'s in the same round: each round's
/// runs were measured one after the other, under the same machine conditions.
fn ratio_by_round(a: &[&Run], b: &[&Run]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .filter_map(|x| {
            b.iter()
                .find(|y| y.round == x.round)
                .map(|y| x.result.rps() / y.result.rps())
        })
        .collect();
    (!ratios.is_empty()).then(|| median(ratios))
}

struct Row {
    store: String,
    mode: &'static str,
    ours: Summary,
    peer: Option<Summary>,
    ratio: Option<f64>,
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
    format!("{cores} cores, {cpu}")
}

/// Writes the scale figures alone to `target/bench/scale.md` (`--scale-only`).
pub(crate) fn write_scale(lines: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut md = format!("Machine: {}.\n\n| scale | figure |\n|---|---|\n", machine());
    for line in lines {
        let _ = writeln!(md, "{line}");
    }
    let path = dir.join("scale.md");
    std::fs::write(&path, md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("written: {}", path.display());
    Ok(())
}

pub(crate) fn write(
    settings: &Settings,
    runs: &[Run],
    trips: &[RoundTrips],
    scale: Option<&[String]>,
) -> Result<(), String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let rows = rows(runs);
    // The no-session app serves both workloads (with and without a cookie in the request),
    // and each row is compared with the baseline of its own workload.
    let baseline_runs = |mode: &str| side_runs(runs, Side::Baseline, "none", mode);
    let baseline_summary = |mode: &str| summary(&baseline_runs(mode));
    let baseline_app_us = |mode: &str| baseline_summary(mode).and_then(|b| b.app_us);

    let us = |value: Option<f64>| value.map_or("–".into(), |v| format!("{v:.1}"));
    let mut md = String::new();
    let _ = writeln!(md, "Machine: {}. {}.\n", machine(), settings.describe());
    let _ = writeln!(
        md,
        "| store | sessions | ours req/s | tower-sessions req/s | ours / peer | ours p50 / p99 ms | peer p50 / p99 ms | lost increments (ours / peer) |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let peer = row.peer.as_ref();
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {:.2} / {:.2} | {} | {} |",
            row.store,
            row.mode,
            row.ours.rps,
            peer.map_or("–".into(), |p| format!("{:.0}", p.rps)),
            row.ratio.map_or("–".into(), |r| format!("**{r:.2}×**")),
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
    for mode in ["existing", "new"] {
        let Some(baseline) = baseline_summary(mode) else {
            continue;
        };
        let _ = writeln!(
            md,
            "\nNo-session baseline (same axum stack, `/incr` without a session), {}: {:.0} req/s, {} µs of application CPU per request.",
            if mode == "existing" {
                "requests with a cookie as in the existing-session runs"
            } else {
                "requests without a cookie as in the new-session runs"
            },
            baseline.rps,
            us(baseline.app_us)
        );
        let generator_us = median_of(&baseline_runs(mode), |r| r.cpu.generator_us);
        if let Some(us) = generator_us {
            let _ = writeln!(
                md,
                "The load generator, on the same cores, spent {us:.1} µs of CPU per request of it."
            );
        }
        let Some(row) = rows.iter().find(|r| r.store == "memory" && r.mode == mode) else {
            continue;
        };
        let ours_runs = side_runs(runs, Side::Ours, "memory", mode);
        let peer_runs = side_runs(runs, Side::Peer, "memory", mode);
        if let Some(share) = ratio_by_round(&ours_runs, &baseline_runs(mode)) {
            let _ = writeln!(
                md,
                "Memory store, {mode} sessions: {:.0}% of the baseline.",
                100.0 * share
            );
        }
        // No session library can be faster than no session: the baseline over the peer is
        // the highest ratio this machine can show.
        if row.peer.is_some()
            && let Some(ceiling) = ratio_by_round(&baseline_runs(mode), &peer_runs)
        {
            let _ = writeln!(
                md,
                "The baseline is {ceiling:.2}× tower-sessions on memory, {mode} sessions: the ceiling of the ratio here."
            );
        }
    }
    let _ = writeln!(
        md,
        "\n| CPU µs per request | sessions | ours: app | ours: store server | tower-sessions: app | tower-sessions: store server | session cost, ours / peer (app above the baseline) |\n|---|---|---:|---:|---:|---:|---:|"
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
    let errors: u64 = rows
        .iter()
        .map(|r| r.ours.errors + r.peer.as_ref().map_or(0, |p| p.errors))
        .sum();
    let _ = writeln!(
        md,
        "Non-200 responses or transport errors over all runs: {errors}."
    );
    if !trips.is_empty() {
        let _ = writeln!(
            md,
            "\n| store work per request | read-only | write | new session |\n|---|---:|---:|---:|"
        );
        for t in trips {
            let [r, w, n] = t.per_request;
            let unit = if t.store == "redis" {
                "round trips (MONITOR)"
            } else {
                "transactions (pg_stat_database)"
            };
            let _ = writeln!(
                md,
                "| {} {} {unit} | {r:.2} | {w:.2} | {n:.2} |",
                t.side.label(),
                t.store
            );
            if let Some([r, w, n]) = t.commands {
                let _ = writeln!(
                    md,
                    "| {} {} commands executed, inside scripts too (INFO commandstats) | {r:.2} | {w:.2} | {n:.2} |",
                    t.side.label(),
                    t.store
                );
            }
        }
    }
    if let Some(scale) = scale {
        let _ = writeln!(md, "\n| scale | figure |\n|---|---|");
        for line in scale {
            let _ = writeln!(md, "{line}");
        }
    }
    std::fs::write(dir.join("results.md"), &md).map_err(|e| e.to_string())?;

    let baseline_json: Vec<_> = ["existing", "new"]
        .into_iter()
        .map(|mode| {
            json!({
                "mode": mode,
                "rps": baseline_summary(mode).map(|b| b.rps),
                "app_cpu_us": baseline_app_us(mode),
            })
        })
        .collect();
    let json = json!({
        "machine": machine(),
        "settings": settings.describe(),
        "baseline": baseline_json,
        "rows": rows.iter().map(|r| json!({
            "store": r.store, "mode": r.mode,
            "ours": {"rps": r.ours.rps, "p50_ms": r.ours.p50, "p99_ms": r.ours.p99, "errors": r.ours.errors, "lost": r.ours.lost,
                     "app_cpu_us": r.ours.app_us, "server_cpu_us": r.ours.server_us},
            "peer": r.peer.as_ref().map(|p| json!({"rps": p.rps, "p50_ms": p.p50, "p99_ms": p.p99, "errors": p.errors, "lost": p.lost,
                     "app_cpu_us": p.app_us, "server_cpu_us": p.server_us})),
            "ratio": r.ratio,
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
        "scale": scale,
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), text).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("ratios.svg"), svg(&rows)).map_err(|e| e.to_string())?;
    println!(
        "\n{md}\nwritten: {}/results.md, results.json, ratios.svg",
        dir.display()
    );
    Ok(())
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
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cpu::PerRequest;
    use crate::loadgen::LoadResult;

    fn run(side: Side, mode: &'static str, round: usize, ok: u64) -> Run {
        Run {
            store: "memory".into(),
            side,
            mode,
            round,
            result: LoadResult {
                ok,
                elapsed: Duration::from_secs(1),
                ..LoadResult::default()
            },
            lost: None,
            cpu: PerRequest::default(),
        }
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
        // Per round: 3.0, 0.25, 2.0.
        assert_eq!(ratio_by_round(&ours, &baseline), Some(2.0));
        assert_eq!(ratio_by_round(&ours, &[]), None);
    }
}
