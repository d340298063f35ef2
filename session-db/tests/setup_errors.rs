//! The set-up mistakes a SQL store meets when it opens, one test each: the error a person
//! sees (`{:#}`) names the cause, and carries the hint of what to do.
//!
//! Unreachable servers are closed loopback ports. The privilege and password cases make a
//! login of their own with a random name on the shared server (a PostgreSQL role without
//! CREATE on `public`, a MariaDB user without the CREATE grant or with another password)
//! and drop it afterwards, also when the test fails. Tables of another shape are made
//! under a random prefix and dropped. A test whose server is unreachable skips loudly, and
//! fails instead under `SESSION_REQUIRE_SERVICES=1`.

#![allow(unreachable_pub)]
// Which helpers a build uses depends on the features it has.
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code, unused_imports, unused_mut)
)]

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use session_core::SetupProblem;
use session_testkit::{TestError, TestResult, Tests, Trial, expect_setup_error};

fn main() -> std::process::ExitCode {
    let mut trials = Vec::new();
    #[cfg(feature = "postgres")]
    trials.extend(postgres::trials());
    #[cfg(feature = "mysql")]
    trials.extend(mysql::trials());
    #[cfg(feature = "sqlite")]
    trials.extend(sqlite::trials());
    Tests::new(trials).main()
}

/// A loopback port nothing listens on (at the time of the call).
fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// A random name for a login or a table prefix: `t` and 12 hex digits.
fn random_name() -> String {
    common::random_prefix().trim_end_matches('_').to_owned()
}

/// Runs its closure when dropped: the cleanup of a login made for a test, which must run
/// however the test ends, panics included.
struct Cleanup(Option<Box<dyn FnOnce() + Send>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(cleanup) = self.0.take() {
            cleanup();
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use session_db::sqlx::{self, PgPool};
    use session_db::{DbOptions, PostgresStore};

    use super::*;

    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "postgres::unreachable_server_names_the_refused_connection",
                unreachable_server_names_the_refused_connection,
            ),
            Trial::tokio(
                "postgres::unknown_role_is_an_authentication_failure",
                unknown_role_is_an_authentication_failure,
            ),
            Trial::tokio(
                "postgres::missing_database_is_named",
                missing_database_is_named,
            ),
            Trial::tokio(
                "postgres::role_without_create_gets_the_grant",
                role_without_create_gets_the_grant,
            ),
            Trial::tokio(
                "postgres::table_of_another_shape_is_named",
                table_of_another_shape_is_named,
            ),
        ]
    }

    fn admin_url() -> String {
        common::env_url(
            "SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
    }

    /// A pool on the shared server as its administrator, or the skip of an unreachable one.
    async fn admin() -> Result<PgPool, TestError> {
        let url = admin_url();
        PgPool::connect(&url).await.map_err(|err| {
            common::unreachable(&format!("PostgreSQL at {}", common::redacted(&url)), &err)
        })
    }

    /// The shared server's URL with `user` in place of its user.
    fn url_as(user: &str) -> String {
        let url = admin_url();
        let rest = url.rsplit_once('@').map_or(url.as_str(), |(_, rest)| rest);
        format!("postgres://{user}@{rest}")
    }

    /// Drops the role `role` when dropped.
    fn drop_role_later(role: &str) -> Cleanup {
        let (url, role) = (admin_url(), role.to_owned());
        Cleanup(Some(Box::new(move || {
            run_elsewhere(async move {
                if let Ok(admin) = PgPool::connect(&url).await {
                    let drop = format!("DROP ROLE IF EXISTS \"{role}\"");
                    if let Err(err) = sqlx::query(&drop).execute(&admin).await {
                        eprintln!("cleanup: {drop} failed: {err}");
                    }
                    admin.close().await;
                }
            });
        })))
    }

    async fn unreachable_server_names_the_refused_connection() -> TestResult {
        let port = closed_port();
        let mut options = DbOptions::new(format!("postgres://postgres@127.0.0.1:{port}/test"));
        options.acquire_timeout = Duration::from_millis(500);
        expect_setup_error(
            PostgresStore::connect(&options).await,
            SetupProblem::Unreachable,
            &["connect failed", "Connection refused"],
            &[&format!("127.0.0.1:{port}"), "adapter.db.url"],
        )
    }

    async fn unknown_role_is_an_authentication_failure() -> TestResult {
        admin().await?.close().await;
        let role = random_name();
        let options = DbOptions::new(url_as(&role));
        expect_setup_error(
            PostgresStore::connect(&options).await,
            SetupProblem::Authentication,
            &[&format!("role \"{role}\" does not exist")],
            &[&role, "adapter.db.url"],
        )
    }

    async fn missing_database_is_named() -> TestResult {
        admin().await?.close().await;
        let database = random_name();
        let url = admin_url();
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        let options = DbOptions::new(format!("{base}/{database}"));
        expect_setup_error(
            PostgresStore::connect(&options).await,
            SetupProblem::MissingDatabase,
            &[&format!("database \"{database}\" does not exist")],
            &[&format!("CREATE DATABASE {database}")],
        )
    }

    /// PostgreSQL 15 and later give no role but the database owner CREATE on `public`: a
    /// new login role cannot create the store's tables there.
    async fn role_without_create_gets_the_grant() -> TestResult {
        let admin = admin().await?;
        let role = random_name();
        sqlx::query(&format!("CREATE ROLE \"{role}\" LOGIN"))
            .execute(&admin)
            .await
            .map_err(|err| TestError::fail(format!("create the role: {err}")))?;
        let _cleanup = drop_role_later(&role);
        admin.close().await;
        let mut options = DbOptions::new(url_as(&role));
        options.prefix = common::random_prefix();
        expect_setup_error(
            PostgresStore::connect(&options).await,
            SetupProblem::Privilege,
            &["migrate failed", "permission denied for schema public"],
            &[
                &format!("GRANT CREATE ON SCHEMA public TO \"{role}\""),
                "migrate = false",
            ],
        )
    }

    async fn table_of_another_shape_is_named() -> TestResult {
        let admin = admin().await?;
        let prefix = common::random_prefix();
        let table = format!("\"{prefix}session\"");
        sqlx::query(&format!(
            "CREATE TABLE {table} (id SERIAL PRIMARY KEY, name TEXT)"
        ))
        .execute(&admin)
        .await
        .map_err(|err| TestError::fail(format!("create the table: {err}")))?;
        let mut options = DbOptions::new(admin_url());
        options.prefix = prefix;
        let opened = PostgresStore::connect(&options).await;
        let dropped = sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&admin)
            .await;
        admin.close().await;
        dropped.map_err(|err| TestError::fail(format!("drop the table: {err}")))?;
        expect_setup_error(
            opened,
            SetupProblem::TableShape,
            &[&table, "cookie, data, expire, version"],
            &["adapter.db.prefix"],
        )
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use session_db::sqlx::{self, MySqlPool};
    use session_db::{DbOptions, MySqlStore};

    use super::*;

    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "mysql::unreachable_server_names_the_refused_connection",
                unreachable_server_names_the_refused_connection,
            ),
            Trial::tokio(
                "mysql::wrong_password_is_an_authentication_failure",
                wrong_password_is_an_authentication_failure,
            ),
            Trial::tokio(
                "mysql::user_without_create_gets_the_grant",
                user_without_create_gets_the_grant,
            ),
            Trial::tokio(
                "mysql::table_of_another_shape_is_named",
                table_of_another_shape_is_named,
            ),
        ]
    }

    fn admin_url() -> String {
        common::env_url("SESSION_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    }

    async fn admin() -> Result<MySqlPool, TestError> {
        let url = admin_url();
        MySqlPool::connect(&url).await.map_err(|err| {
            common::unreachable(&format!("MariaDB at {}", common::redacted(&url)), &err)
        })
    }

    /// The shared server's URL with `user` and `password` in place of its credentials.
    fn url_as(user: &str, password: &str) -> String {
        let url = admin_url();
        let rest = url.rsplit_once('@').map_or(url.as_str(), |(_, rest)| rest);
        format!("mysql://{user}:{password}@{rest}")
    }

    /// The database of the shared server's URL.
    fn database() -> String {
        let url = admin_url();
        let path = url.rsplit_once('/').map_or("test", |(_, path)| path);
        path.split('?').next().unwrap_or("test").to_owned()
    }

    /// Creates the user `user` (any host) with `password`, granted `grant` on the test
    /// database when given; it is dropped when the returned cleanup is.
    async fn user(
        admin: &MySqlPool,
        user: &str,
        password: &str,
        grant: Option<&str>,
    ) -> Result<Cleanup, TestError> {
        sqlx::query(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"
        ))
        .execute(admin)
        .await
        .map_err(|err| TestError::fail(format!("create the user: {err}")))?;
        let (url, name) = (admin_url(), user.to_owned());
        let cleanup = Cleanup(Some(Box::new(move || {
            run_elsewhere(async move {
                if let Ok(admin) = MySqlPool::connect(&url).await {
                    let drop = format!("DROP USER IF EXISTS '{name}'@'%'");
                    if let Err(err) = sqlx::query(&drop).execute(&admin).await {
                        eprintln!("cleanup: {drop} failed: {err}");
                    }
                    admin.close().await;
                }
            });
        })));
        if let Some(grant) = grant {
            sqlx::query(&format!(
                "GRANT {grant} ON `{}`.* TO '{user}'@'%'",
                database()
            ))
            .execute(admin)
            .await
            .map_err(|err| TestError::fail(format!("grant: {err}")))?;
        }
        Ok(cleanup)
    }

    async fn unreachable_server_names_the_refused_connection() -> TestResult {
        let port = closed_port();
        let mut options = DbOptions::new(format!("mysql://root@127.0.0.1:{port}/test"));
        options.acquire_timeout = Duration::from_millis(500);
        expect_setup_error(
            MySqlStore::connect(&options).await,
            SetupProblem::Unreachable,
            &["connect failed", "Connection refused"],
            &[&format!("127.0.0.1:{port}"), "adapter.db.url"],
        )
    }

    async fn wrong_password_is_an_authentication_failure() -> TestResult {
        let admin = admin().await?;
        let name = random_name();
        let _cleanup = user(&admin, &name, "the-right-one", Some("ALL")).await?;
        admin.close().await;
        let options = DbOptions::new(url_as(&name, "a-wrong-one"));
        expect_setup_error(
            MySqlStore::connect(&options).await,
            SetupProblem::Authentication,
            &[&format!("Access denied for user '{name}'")],
            &[&name, "adapter.db.url"],
        )
    }

    async fn user_without_create_gets_the_grant() -> TestResult {
        let admin = admin().await?;
        let name = random_name();
        let cleanup = user(
            &admin,
            &name,
            "password",
            Some("SELECT, INSERT, UPDATE, DELETE"),
        )
        .await?;
        admin.close().await;
        let mut options = DbOptions::new(url_as(&name, "password"));
        options.prefix = common::random_prefix();
        let checked = expect_setup_error(
            MySqlStore::connect(&options).await,
            SetupProblem::Privilege,
            &["migrate failed", "CREATE command denied", &name],
            &["GRANT", "CREATE", "migrate = false"],
        );
        drop(cleanup);
        checked
    }

    async fn table_of_another_shape_is_named() -> TestResult {
        let admin = admin().await?;
        let prefix = common::random_prefix();
        let table = format!("`{prefix}session`");
        sqlx::query(&format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, name TEXT)"
        ))
        .execute(&admin)
        .await
        .map_err(|err| TestError::fail(format!("create the table: {err}")))?;
        let mut options = DbOptions::new(admin_url());
        options.prefix = prefix;
        let opened = MySqlStore::connect(&options).await;
        let dropped = sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&admin)
            .await;
        admin.close().await;
        dropped.map_err(|err| TestError::fail(format!("drop the table: {err}")))?;
        expect_setup_error(
            opened,
            SetupProblem::TableShape,
            &[&table, "cookie, data, expire, version"],
            &["adapter.db.prefix"],
        )
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use session_db::{DbOptions, SqliteStore};

    use super::*;

    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "sqlite::folder_under_a_file_is_named",
                folder_under_a_file_is_named,
            ),
            Trial::tokio("sqlite::missing_folder_is_named", missing_folder_is_named),
            Trial::tokio(
                "sqlite::missing_file_without_create_mode_is_named",
                missing_file_without_create_mode_is_named,
            ),
            Trial::tokio(
                "sqlite::table_of_another_shape_is_named",
                table_of_another_shape_is_named,
            ),
        ]
    }

    /// Tests run as root, whom permissions do not stop: a regular file where a folder
    /// should be makes the database file impossible to create for anyone.
    async fn folder_under_a_file_is_named() -> TestResult {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, b"").expect("write");
        let file = blocker.join("sessions.db");
        expect_setup_error(
            SqliteStore::open(&file).await,
            SetupProblem::Storage,
            &["connect failed", "unable to open database file"],
            &[&blocker.display().to_string(), "adapter.db.url"],
        )
    }

    async fn missing_folder_is_named() -> TestResult {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("no-such-folder");
        let file = folder.join("sessions.db");
        expect_setup_error(
            SqliteStore::open(&file).await,
            SetupProblem::Storage,
            &["unable to open database file"],
            &[&folder.display().to_string(), "does not exist"],
        )
    }

    async fn missing_file_without_create_mode_is_named() -> TestResult {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sessions.db");
        let options = DbOptions::new(format!("sqlite://{}", file.display()));
        expect_setup_error(
            SqliteStore::connect(&options).await,
            SetupProblem::Storage,
            &["unable to open database file"],
            &[&file.display().to_string(), "mode=rwc"],
        )
    }

    async fn table_of_another_shape_is_named() -> TestResult {
        use session_db::sqlx::{self, SqlitePool};

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sessions.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let pool = SqlitePool::connect(&url).await.expect("create the file");
        sqlx::query("CREATE TABLE \"think_session\" (id INTEGER PRIMARY KEY, cookie TEXT)")
            .execute(&pool)
            .await
            .expect("create the table");
        pool.close().await;
        expect_setup_error(
            SqliteStore::open(&file).await,
            SetupProblem::TableShape,
            &["\"think_session\"", "data, expire, version"],
            &["adapter.db.prefix"],
        )
    }
}

/// Runs `cleanup` to the end on a thread and runtime of its own: it runs from a `Drop`,
/// perhaps while the test's runtime is itself being torn down.
fn run_elsewhere(cleanup: impl Future<Output = ()> + Send + 'static) {
    let done = std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(cleanup),
            Err(err) => eprintln!("cleanup: no runtime: {err}"),
        }
    });
    let _ = done.join();
}
