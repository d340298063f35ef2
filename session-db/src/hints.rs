//! What a SQL store tells a person when it cannot open: the set-up mistakes it recognises
//! in the driver's errors (each dialect's codes are in its own module), a check that the
//! table with the store's name is the store's, and the real cause behind a pool timeout.

use std::error::Error as StdError;
use std::fmt;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use std::io;
use std::time::Duration;

use session_core::{Hint, SetupProblem};

/// The columns the store's statements need that no upgrade adds: a table with the
/// store's name that lacks one of them is not the store's (or not yet: ThinkJS's own
/// table has no `version`).
pub(crate) const REQUIRED_COLUMNS: [&str; 5] = ["id", "cookie", "data", "expire", "version"];

/// The required columns `found` (a table's column names) lacks; all of them when the
/// table does not exist (`found` is empty), which the caller tells apart.
pub(crate) fn missing_columns(found: &[String]) -> Vec<&'static str> {
    REQUIRED_COLUMNS
        .into_iter()
        .filter(|column| !found.iter().any(|name| name.eq_ignore_ascii_case(column)))
        .collect()
}

/// The hint for a table of another shape.
pub(crate) fn table_shape(table: &str, missing: &[&str]) -> Hint {
    Hint::new(
        SetupProblem::TableShape,
        format!(
            "a table {table} exists but was not made by this store (it has no {}): set \
             another `adapter.db.prefix` (the store's table is `<prefix>session`), or rename \
             or drop that table; a ThinkJS table needs the columns of the DDL in session-db's \
             docs added",
            missing.join(", ")
        ),
    )
}

/// The hint for an I/O error met while connecting to the server at `address`, or `None`
/// when it is not one of the known mistakes.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn io_hint(err: &io::Error, server: &str, address: &str) -> Option<Hint> {
    let text = match err.kind() {
        io::ErrorKind::ConnectionRefused => format!(
            "nothing accepts connections at {address}: start {server} there, or fix the host \
             and port in `adapter.db.url`"
        ),
        io::ErrorKind::NotFound if address.starts_with('/') => format!(
            "no socket at {address}: start {server}, or fix the socket path in `adapter.db.url`"
        ),
        io::ErrorKind::TimedOut
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => format!(
            "no answer from {address}: check the host and port in `adapter.db.url`, and that \
             the network (or a firewall) lets the connection through"
        ),
        // Name resolution failures come as uncategorised errors; their text says so.
        _ if err.to_string().contains("lookup") => {
            format!("the host of {address} cannot be resolved: fix the host in `adapter.db.url`")
        }
        _ => return None,
    };
    Some(Hint::new(SetupProblem::Unreachable, text))
}

/// The hint for a login the server refused.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn authentication(server: &str, user: &str, address: &str) -> Hint {
    Hint::new(
        SetupProblem::Authentication,
        format!(
            "{server} at {address} refused the login of user `{user}`: check the user and \
             password in `adapter.db.url`, and that the user exists and may log in from here"
        ),
    )
}

/// The hint for a database that does not exist.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn missing_database(database: &str) -> Hint {
    Hint::new(
        SetupProblem::MissingDatabase,
        format!(
            "the database `{database}` does not exist: create it (`CREATE DATABASE {database}`), \
             or fix the database name at the end of `adapter.db.url`"
        ),
    )
}

/// Why no connection could be opened while the store was opening: the pool gave up after
/// `waited` (sqlx retries a refused connection until its acquire timeout, and then reports
/// only the timeout), and one more attempt made directly failed with `last`, the real
/// cause.
#[derive(Debug)]
pub(crate) struct NoConnection {
    pub(crate) waited: Duration,
    pub(crate) last: sqlx::Error,
}

impl fmt::Display for NoConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no connection could be opened within {:?} (`adapter.db.acquire_timeout`); the \
             last attempt failed",
            self.waited
        )
    }
}

impl StdError for NoConnection {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.last)
    }
}

/// The hint for a pool timeout at open when one more direct attempt timed out too: the
/// server never answered.
pub(crate) fn no_answer(server: &str, address: &str, waited: Duration) -> Hint {
    Hint::new(
        SetupProblem::Unreachable,
        format!(
            "{server} at {address} did not answer within {waited:?}: check that it runs and \
             that the host and port in `adapter.db.url` are right, or raise \
             `adapter.db.acquire_timeout` if it is only slow"
        ),
    )
}

/// The hint for a pool timeout at open after which a direct attempt succeeded: the server
/// came up, or answered, only after the wait.
pub(crate) fn slow_start(server: &str, waited: Duration) -> Hint {
    Hint::new(
        SetupProblem::Unreachable,
        format!(
            "{server} accepted a connection only after {waited:?}: it was starting or is \
             slow to answer; raise `adapter.db.acquire_timeout`, or start the application \
             once it is up"
        ),
    )
}

/// `host:port`, or the socket path where the options name one.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn address(host: &str, port: u16, socket: Option<&std::path::Path>) -> String {
    match socket {
        Some(socket) => socket.display().to_string(),
        None if host.contains(':') => format!("[{host}]:{port}"),
        None => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_columns_are_those_the_statements_need() {
        let ours: Vec<String> = ["id", "cookie", "data", "expire", "version", "user_id"]
            .map(str::to_owned)
            .to_vec();
        assert!(missing_columns(&ours).is_empty());
        let thinkjs: Vec<String> = ["ID", "cookie", "data", "expire"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(missing_columns(&thinkjs), ["version"]);
        assert_eq!(missing_columns(&[]).len(), REQUIRED_COLUMNS.len());
    }

    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[test]
    fn refused_connections_name_the_address() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let hint = io_hint(&refused, "PostgreSQL", "127.0.0.1:1").expect("a hint");
        assert_eq!(hint.problem(), SetupProblem::Unreachable);
        assert!(hint.text().contains("127.0.0.1:1"), "{hint}");
        assert!(io_hint(&io::Error::other("disk on fire"), "x", "y").is_none());
        assert_eq!(address("::1", 5432, None), "[::1]:5432");
    }
}
