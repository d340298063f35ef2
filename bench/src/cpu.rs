//! CPU time spent by the application under test and by the store's server, read from
//! `/proc`, so that a run reports the work per request as well as the throughput.
//!
//! On a two-core machine the load generator, the application and the store's server share
//! the cores: the throughput of a run depends on how the scheduler shares them, while the
//! CPU time a process spends per request depends on that process alone.

use std::time::Duration;

/// The kernel's clock tick for the times in `/proc/<pid>/stat` (`USER_HZ`), which Linux
/// fixes at 100 on every architecture it exports to user space.
const USER_HZ: u64 = 100;

/// CPU time (user and system, all threads, finished ones included) of process `pid`.
pub(crate) fn process(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after it are
    // counted from the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state (3) ... utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// The server processes behind `store`: their command names in `/proc/<pid>/comm`.
fn server_names(store: &str) -> &'static [&'static str] {
    match store {
        "redis" => &["redis-server"],
        "postgres" => &["postgres"],
        "mysql" => &["mariadbd", "mysqld"],
        _ => &[],
    }
}

/// CPU time of every process serving `store` (PostgreSQL runs a process per connection),
/// or `None` for a store that runs inside the application.
pub(crate) fn store_server(store: &str) -> Option<Duration> {
    let names = server_names(store);
    if names.is_empty() {
        return None;
    }
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut total = Duration::ZERO;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if names.contains(&comm.trim()) {
            total += process(pid).unwrap_or_default();
        }
    }
    Some(total)
}

/// CPU times at one instant: the application's, and its store server's if it has one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    app: Option<Duration>,
    server: Option<Duration>,
    generator: Option<Duration>,
}

/// CPU spent per successful request over a run, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PerRequest {
    /// By the application process.
    pub(crate) app_us: Option<f64>,
    /// By the store's server processes (Redis, PostgreSQL, MariaDB).
    pub(crate) server_us: Option<f64>,
    /// By the load generator (this process).
    pub(crate) generator_us: Option<f64>,
}

impl Snapshot {
    pub(crate) fn take(app_pid: u32, store: &str) -> Self {
        Self {
            app: process(app_pid),
            server: store_server(store),
            generator: process(std::process::id()),
        }
    }

    /// What was spent between `self` and `later`, per one of `requests`.
    pub(crate) fn per_request(&self, later: &Self, requests: u64) -> PerRequest {
        let per = |before: Option<Duration>, after: Option<Duration>| {
            let spent = after?.checked_sub(before?)?;
            (requests > 0).then(|| spent.as_secs_f64() * 1e6 / requests as f64)
        };
        PerRequest {
            app_us: per(self.app, later.app),
            server_us: per(self.server, later.server),
            generator_us: per(self.generator, later.generator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_cpu_time() {
        let before = process(std::process::id()).expect("own stat");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        let mut after = before;
        // Spins until 50 ms of CPU time show up (the clock ticks every 10 ms).
        while after < before + Duration::from_millis(50) && std::time::Instant::now() < deadline {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = process(std::process::id()).expect("own stat");
        }
        assert!(
            after >= before + Duration::from_millis(50),
            "10 s of spinning shows as CPU time: {before:?} → {after:?}"
        );
    }

    #[test]
    fn per_request_divides_what_was_spent() {
        let before = Snapshot {
            app: Some(Duration::from_millis(100)),
            server: None,
            generator: Some(Duration::from_millis(50)),
        };
        let after = Snapshot {
            app: Some(Duration::from_millis(300)),
            server: None,
            generator: Some(Duration::from_millis(40)),
        };
        let per = before.per_request(&after, 1000);
        assert_eq!(per.app_us, Some(200.0));
        assert_eq!(per.server_us, None);
        assert_eq!(
            per.generator_us, None,
            "a clock that went back is no figure"
        );
        assert_eq!(before.per_request(&after, 0).app_us, None);
    }
}
