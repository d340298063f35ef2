//! Database servers of a test's own: a data folder in a temporary directory and a server
//! process on a spare loopback port, which the test may SIGKILL and start again on the
//! same folder. The shared servers of the machine are never touched.
//!
//! PostgreSQL runs as the `postgres` user (it refuses to run as root), MariaDB as the
//! current user. Both keep every durability setting on: PostgreSQL with `fsync` and
//! `synchronous_commit`, InnoDB flushing its log at every commit.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use session_testkit::TestError;

/// Which server a [`PrivateServer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL (`initdb`, then `postgres`).
    Postgres,
    /// MariaDB (`mariadb-install-db`, then `mariadbd`).
    MariaDb,
}

/// A server of the test's own; killed (SIGKILL, with every process it started) when
/// dropped, whatever happened in the test.
pub struct PrivateServer {
    kind: Kind,
    /// The server binary.
    binary: PathBuf,
    /// The user and group the server runs as, when not the current ones.
    run_as: Option<(u32, u32)>,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateServer {
    /// Creates a data folder and starts a server on it; a skip when this machine has no
    /// server binaries.
    pub fn start(kind: Kind) -> Result<Self, TestError> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (binary, run_as) = match kind {
            Kind::Postgres => {
                let initdb = on_path("initdb")
                    .ok_or_else(|| TestError::skip("no initdb on this machine"))?;
                // `postgres` sits beside the real `initdb` (which may be a symlink).
                let bin = std::fs::canonicalize(&initdb)
                    .expect("resolve initdb")
                    .with_file_name("postgres");
                let run_as = user_ids("postgres")?;
                // The server's user must own its folder.
                std::os::unix::fs::chown(dir.path(), Some(run_as.0), Some(run_as.1))
                    .expect("hand the data folder to the server's user");
                run(Command::new(&initdb)
                    .arg("--pgdata")
                    .arg(dir.path().join("data"))
                    .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
                    .uid(run_as.0)
                    .gid(run_as.1));
                (bin, Some(run_as))
            }
            Kind::MariaDb => {
                let install = on_path("mariadb-install-db")
                    .ok_or_else(|| TestError::skip("no mariadb-install-db on this machine"))?;
                let bin = on_path("mariadbd")
                    .or_else(|| Some(PathBuf::from("/usr/sbin/mariadbd")).filter(|p| p.is_file()))
                    .ok_or_else(|| TestError::skip("no mariadbd on this machine"))?;
                run(Command::new(install)
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", dir.path().join("data").display()))
                    .args(["--user=root", "--auth-root-authentication-method=normal"]));
                (bin, None)
            }
        };
        let mut server = Self {
            kind,
            binary,
            run_as,
            port: free_port(),
            dir,
            child: None,
        };
        server.resume();
        Ok(server)
    }

    /// The URL of a database on the server: `postgres` on PostgreSQL, `test` (which
    /// `mariadb-install-db` creates) on MariaDB.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            Kind::MariaDb => format!("mysql://root@127.0.0.1:{}/test", self.port),
        }
    }

    /// The server's loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server process (again) on the same data folder and port. It returns at
    /// once: the server accepts connections when it has finished starting (and, after a
    /// kill, recovering).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("server.log"))
            .expect("create the server's log");
        let mut command = Command::new(&self.binary);
        match self.kind {
            Kind::Postgres => {
                command
                    .arg("-D")
                    .arg(&data)
                    .args(["-p", &self.port.to_string()])
                    .arg("-k")
                    .arg(self.dir.path())
                    .args(["-c", "listen_addresses=127.0.0.1"])
                    .args(["-c", "fsync=on", "-c", "synchronous_commit=on"])
                    .args(["-c", "max_connections=50", "-c", "shared_buffers=16MB"]);
            }
            Kind::MariaDb => {
                command
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--port={}", self.port))
                    .arg("--bind-address=127.0.0.1")
                    .arg(format!(
                        "--socket={}",
                        self.dir.path().join("mysqld.sock").display()
                    ))
                    .args([
                        "--user=root",
                        "--skip-log-bin",
                        "--innodb-flush-log-at-trx-commit=1",
                        "--innodb-buffer-pool-size=16M",
                        "--max-connections=50",
                    ]);
            }
        }
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        // A process group of its own, so that a kill reaches every process it forks.
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(command.spawn().expect("start the server"));
    }

    /// Kills the server and every process it started (SIGKILL, as a crash or the
    /// out-of-memory killer would), and waits for the server process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The end of the server's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that nothing listens on (at the time of the call).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// `name` in a folder of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The user and group ids of `user`, from `id`.
fn user_ids(user: &str) -> Result<(u32, u32), TestError> {
    let id = |flag: &str| -> Result<u32, TestError> {
        let output = Command::new("id")
            .args([flag, user])
            .output()
            .expect("run id");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| TestError::skip(format!("no `{user}` user on this machine")))
    };
    Ok((id("-u")?, id("-g")?))
}

/// Runs a set-up command to its end; panics with its output when it fails.
fn run(command: &mut Command) {
    let output = command.output().expect("run a set-up command");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
