//! End to end in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against the example binary on the file store. Logs in, reloads and stays logged in,
//! checks that page JavaScript cannot read the HttpOnly session cookie, logs out and stays
//! logged out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the test reads `skipped: REASON`, or fails under `SESSION_REQUIRE_SERVICES=1`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use session_testkit::{TestError, TestResult, Tests, Trial};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn main() -> std::process::ExitCode {
    Tests::new([Trial::tokio(
        "log_in_reload_log_out_in_headless_chromium",
        log_in_reload_log_out_in_headless_chromium,
    )])
    .main()
}

/// Kills the child process when dropped, so a failing test leaves nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "nothing listened on port {port} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn log_in_reload_log_out_in_headless_chromium() -> TestResult {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if !missing.is_empty() {
        return Err(TestError::skip(format!(
            "{} not found (apt-get install chromium chromium-driver)",
            missing.join(" and ")
        )));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let app_port = free_port();
    let _app = Guard(
        Command::new(env!("CARGO_BIN_EXE_session-example"))
            .args(["--addr", &format!("127.0.0.1:{app_port}")])
            .env("SESSION__TYPE", "file")
            .env("SESSION__ADAPTER__FILE__PATH", dir.path().join("session"))
            .env("SESSION__SECRET", "browser test secret")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the example app"),
    );
    let driver_port = free_port();
    let _driver = Guard(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    wait_for_port(app_port).await;
    wait_for_port(driver_port).await;

    let profile = dir.path().join("profile");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("connect to chromedriver");

    let base = format!("http://127.0.0.1:{app_port}/");
    let result = async {
        client.goto(&base).await?;
        assert!(
            client
                .find(Locator::Id("status"))
                .await?
                .text()
                .await?
                .contains("not logged in")
        );

        client
            .find(Locator::Css("input[name=username]"))
            .await?
            .send_keys("Ada <b>")
            .await?;
        client.find(Locator::Id("login")).await?.click().await?;
        let greeting = client
            .wait()
            .for_element(Locator::Id("greeting"))
            .await?
            .text()
            .await?;
        assert_eq!(
            greeting, "Hello, Ada <b>!",
            "the name is shown as text, not markup"
        );
        assert_eq!(
            client.find(Locator::Id("visits")).await?.text().await?,
            "Visits this session: 1"
        );

        client.refresh().await?;
        assert_eq!(
            client.find(Locator::Id("greeting")).await?.text().await?,
            "Hello, Ada <b>!"
        );
        assert_eq!(
            client.find(Locator::Id("visits")).await?.text().await?,
            "Visits this session: 2"
        );

        // The session cookie exists, is HttpOnly, and page JavaScript cannot see it.
        let cookies = client.get_all_cookies().await?;
        let session_cookie = cookies
            .iter()
            .find(|c| c.name() == "thinkjs")
            .expect("session cookie");
        assert_eq!(session_cookie.http_only(), Some(true));
        assert_eq!(format!("{:?}", session_cookie.same_site()), "Some(Lax)");
        let visible = client.execute("return document.cookie", vec![]).await?;
        assert!(
            !visible.as_str().unwrap_or_default().contains("thinkjs"),
            "document.cookie shows {visible}"
        );

        client.find(Locator::Id("logout")).await?.click().await?;
        let status = client
            .wait()
            .for_element(Locator::Id("status"))
            .await?
            .text()
            .await?;
        assert!(status.contains("not logged in"));
        client.refresh().await?;
        assert!(
            client
                .find(Locator::Id("status"))
                .await?
                .text()
                .await?
                .contains("not logged in")
        );
        assert!(
            client.find(Locator::Id("greeting")).await.is_err(),
            "still logged in after logout"
        );
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    client.close().await.expect("close the browser");
    result.expect("browser session");
    Ok(())
}
