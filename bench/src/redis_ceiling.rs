//! Redis's own ceiling for the existing-sessions workload: `redis-benchmark` sending the
//! commands one of our requests sends, at the same concurrency, in the same round.
//!
//! A request on an existing session costs ours two round trips: an `HGETALL` of the
//! session's hash and an `EVALSHA` of the update script. Both are caught with `MONITOR`
//! as our app sends them for one real request; the session's hash is copied to
//! `--sessions` keys that `redis-benchmark -r` rotates over (`__rand_int__`), and each
//! command is run on its own with `-c --connections`. A request needs one of each, so
//! Redis can serve at most `1 / (1 / reads + 1 / writes)` of them a second: the figure
//! our throughput is compared with.

use std::process::Command;
use std::time::Duration;

use crate::{Monitor, Settings, Side, loadgen, start, wipe};

/// The store measured.
const STORE: &str = "redis";

/// The keys the session's hash is copied to: `redis-benchmark -r N` puts 12 digits from
/// 0 to N − 1 in place of `__rand_int__`.
const KEY_PATTERN: &str = "bench:ceiling:__rand_int__";

/// What `redis-benchmark` gave in one round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ceiling {
    pub(crate) round: usize,
    /// The `HGETALL` of a session, per second.
    pub(crate) reads: f64,
    /// The update script's `EVALSHA`, per second.
    pub(crate) writes: f64,
}

impl Ceiling {
    /// Requests a second that need one read and one write each.
    pub(crate) fn requests(&self) -> f64 {
        1.0 / (1.0 / self.reads + 1.0 / self.writes)
    }
}

/// Runs `redis-benchmark` on the commands of one of our existing-session requests.
pub(crate) async fn measure(settings: &Settings, round: usize) -> Result<Ceiling, String> {
    wipe(STORE)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (read, write) = {
        let server = start(Side::Ours, STORE, scratch.path()).await?;
        let cookie = loadgen::create_sessions(server.addr, 1)
            .await?
            .pop()
            .ok_or("no session")?;
        let monitor = Monitor::start(scratch.path())?;
        loadgen::sequential(server.addr, "/incr", Some(cookie.as_str()), 1).await?;
        // MONITOR output arrives asynchronously: let it settle.
        tokio::time::sleep(Duration::from_millis(700)).await;
        request_commands(&monitor.client_commands_seen()?)?
    };
    let key = read.get(1).ok_or("HGETALL without a key")?.clone();
    copy_session(&key, settings.sessions)?;
    let requests = (settings.duration.as_secs() * 50_000).max(10_000);
    let run = |command: &[String]| {
        redis_benchmark(
            settings.connections,
            requests,
            settings.sessions,
            &with_key(command, &key),
        )
    };
    let ceiling = Ceiling {
        round,
        reads: run(&read)?,
        writes: run(&write)?,
    };
    wipe(STORE)?;
    Ok(ceiling)
}

/// The `HGETALL` and the `EVALSHA` among the commands of one request.
fn request_commands(commands: &[Vec<String>]) -> Result<(Vec<String>, Vec<String>), String> {
    let find = |name: &str| {
        commands
            .iter()
            .find(|c| c.first().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .cloned()
            .ok_or(format!(
                "no {name} among the request's commands: {commands:?}"
            ))
    };
    Ok((find("HGETALL")?, find("EVALSHA")?))
}

/// `command` with every argument equal to `key` replaced by [`KEY_PATTERN`].
fn with_key(command: &[String], key: &str) -> Vec<String> {
    command
        .iter()
        .map(|arg| {
            if arg == key {
                KEY_PATTERN.to_owned()
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// Copies the session at `key` to `count` keys of [`KEY_PATTERN`], in one script.
fn copy_session(key: &str, count: usize) -> Result<(), String> {
    const SCRIPT: &str = "for i = 0, tonumber(ARGV[1]) - 1 do \
        redis.call('COPY', KEYS[1], string.format(ARGV[2], i), 'REPLACE') end";
    let pattern = KEY_PATTERN.replace("__rand_int__", "%012d");
    crate::redis_cli(&["EVAL", SCRIPT, "1", key, &count.to_string(), &pattern]).map(drop)
}

/// Requests a second `redis-benchmark` gives for `command` over `requests` requests from
/// `connections` clients, with `__rand_int__` below `keys`.
fn redis_benchmark(
    connections: usize,
    requests: u64,
    keys: usize,
    command: &[String],
) -> Result<f64, String> {
    let mut args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        "6379",
        "--dbnum",
        "9",
        "--csv",
        "-c",
        &connections.to_string(),
        "-n",
        &requests.to_string(),
        "-r",
        &keys.to_string(),
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(command);
    let output = Command::new("redis-benchmark")
        .args(&args)
        .output()
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "redis-benchmark {}: {}{}",
            command.first().map_or("", String::as_str),
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    csv_rps(&stdout).ok_or(format!("redis-benchmark's output has no rate: {stdout}"))
}

/// The requests a second of `redis-benchmark --csv`'s one test: the second field of the
/// line after the header.
fn csv_rps(output: &str) -> Option<f64> {
    let line = output
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with("\"test\""))?;
    let field = line.split("\",\"").nth(1)?;
    field.trim_matches('"').parse().ok()
}

/// The arguments of a command as `MONITOR` prints it: `"HGETALL" "key"`, each quoted, with
/// `\"`, `\\`, `\n`, `\r`, `\t`, `\a`, `\b` and `\xHH` escapes. `None` if an argument
/// holds a byte that a command line cannot carry (NUL, or one that is not UTF-8).
pub(crate) fn monitor_args(line: &str) -> Option<Vec<String>> {
    let start = line.find("] \"")? + 2;
    let mut chars = line[start..].chars();
    let mut args = Vec::new();
    loop {
        match chars.next() {
            None => break,
            Some(' ') => continue,
            Some('"') => {}
            Some(_) => return None,
        }
        let mut bytes = Vec::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => bytes.push(b'\n'),
                    'r' => bytes.push(b'\r'),
                    't' => bytes.push(b'\t'),
                    'a' => bytes.push(7),
                    'b' => bytes.push(8),
                    'x' => {
                        let hex: String = [chars.next()?, chars.next()?].iter().collect();
                        bytes.push(u8::from_str_radix(&hex, 16).ok()?);
                    }
                    other => {
                        let mut buf = [0; 4];
                        bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    }
                },
                other => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if bytes.contains(&0) {
            return None;
        }
        args.push(String::from_utf8(bytes).ok()?);
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_give_their_arguments() {
        let line = r#"1733500000.123456 [9 127.0.0.1:40000] "EVALSHA" "ab12" "1" "bench:k" "d:n" "\"5\"" "a\\b" "\xc3\xa9" "x\ny""#;
        assert_eq!(
            monitor_args(line).expect("arguments"),
            [
                "EVALSHA", "ab12", "1", "bench:k", "d:n", "\"5\"", "a\\b", "é", "x\ny"
            ]
        );
        assert_eq!(
            monitor_args(r#"1.0 [9 127.0.0.1:1] "SET" "k" "a\x00b""#),
            None,
            "a NUL cannot be an argument"
        );
        assert_eq!(
            monitor_args(r#"1.0 [9 127.0.0.1:1] "GET" "unterminated"#),
            None
        );
        assert_eq!(monitor_args("OK"), None);
    }

    #[test]
    fn the_key_is_replaced_by_the_pattern_and_the_request_needs_both_commands() {
        let commands = vec![
            vec!["HGETALL".to_owned(), "bench:k".to_owned()],
            vec![
                "EVALSHA".to_owned(),
                "ab12".to_owned(),
                "1".to_owned(),
                "bench:k".to_owned(),
                "9".to_owned(),
            ],
        ];
        let (read, write) = request_commands(&commands).expect("both");
        assert_eq!(with_key(&read, "bench:k"), ["HGETALL", KEY_PATTERN]);
        assert_eq!(
            with_key(&write, "bench:k"),
            ["EVALSHA", "ab12", "1", KEY_PATTERN, "9"]
        );
        assert!(request_commands(&commands[..1]).is_err());
    }

    #[test]
    fn the_ceiling_of_requests_needs_a_read_and_a_write_each() {
        let ceiling = Ceiling {
            round: 0,
            reads: 100_000.0,
            writes: 50_000.0,
        };
        assert!((ceiling.requests() - 100_000.0 / 3.0).abs() < 1e-6);
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"HGETALL bench:ceiling:__rand_int__\",\"98765.43\",\"0.263\"\n";
        assert_eq!(csv_rps(csv), Some(98765.43));
        assert_eq!(csv_rps("\"test\",\"rps\"\n"), None);
    }
}
