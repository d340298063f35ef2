//! End to end in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against the example binary on the file store, served by axum and by actix-web (the same
//! test code for each). Logs in, reloads and stays logged in,
//! checks that page JavaScript cannot read the HttpOnly session cookie, logs out and stays
//! logged out; then logs one user in from two separate browsers, ends one browser's
//! session from the other's "Your sessions" page, and shows the ended one logged out on
//! reload while the other stays in. The first test runs again on `type = "cookie"`, the
//! whole session in an encrypted cookie, with nothing else changed.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the test reads `skipped: REASON`, or fails under `SESSION_REQUIRE_SERVICES=1`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use session_testkit::{TestError, TestResult, Tests, Trial};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn main() -> std::process::ExitCode {
    let on_cookie = ["axum", "actix"].map(|framework| {
        Trial::tokio(
            format!("log_in_reload_log_out_on_the_cookie_type_in_headless_chromium_on_{framework}"),
            move || log_in_reload_log_out_in_headless_chromium(framework, "cookie"),
        )
    });
    Tests::new(
        ["axum", "actix"]
            .into_iter()
            .flat_map(|framework| {
                [
                    Trial::tokio(
                        format!("log_in_reload_log_out_in_headless_chromium_on_{framework}"),
                        move || log_in_reload_log_out_in_headless_chromium(framework, "file"),
                    ),
                    Trial::tokio(
                        format!("end_another_browsers_session_in_headless_chromium_on_{framework}"),
                        move || end_another_browsers_session_in_headless_chromium(framework),
                    ),
                ]
            })
            .chain(on_cookie),
    )
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

/// The example app on the file store and a chromedriver, both stopped when dropped.
struct Rig {
    dir: tempfile::TempDir,
    base: String,
    driver_port: u16,
    _app: Guard,
    _driver: Guard,
}

impl Rig {
    /// Starts both, the app on `framework` with the session type `store_type` (`file`,
    /// or `cookie`: the one setting that moves sessions into the cookie), or skips if
    /// Chromium is not installed.
    async fn start(framework: &str, store_type: &str) -> Result<Self, TestError> {
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
        let app = Guard(
            Command::new(env!("CARGO_BIN_EXE_session-example"))
                .args(["--addr", &format!("127.0.0.1:{app_port}")])
                .args(["--framework", framework])
                .env("SESSION__TYPE", store_type)
                .env("SESSION__ADAPTER__FILE__PATH", dir.path().join("session"))
                // Long enough to be a key, for the cookie type.
                .env(
                    "SESSION__SECRET",
                    "the browser test's secret, 32 bytes or more",
                )
                .stdout(Stdio::null())
                .spawn()
                .expect("start the example app"),
        );
        let driver_port = free_port();
        let driver = Guard(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={driver_port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        wait_for_port(app_port).await;
        wait_for_port(driver_port).await;
        Ok(Self {
            dir,
            base: format!("http://127.0.0.1:{app_port}/"),
            driver_port,
            _app: app,
            _driver: driver,
        })
    }

    /// A headless browser with a profile of its own (cookies included) named `name`.
    async fn browser(&self, name: &str) -> Client {
        let profile = self.dir.path().join(format!("profile-{name}"));
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
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.driver_port))
            .await
            .expect("connect to chromedriver")
    }
}

/// Logs `name` in through the form of `base`.
async fn log_in(client: &Client, base: &str, name: &str) -> Result<(), CmdError> {
    client.goto(base).await?;
    client
        .find(Locator::Css("input[name=username]"))
        .await?
        .send_keys(name)
        .await?;
    client.find(Locator::Id("login")).await?.click().await?;
    client.wait().for_element(Locator::Id("greeting")).await?;
    Ok(())
}

/// The text of the element `id` on the page at `url`, once it is there.
async fn text_at(client: &Client, url: &str, id: &str) -> Result<String, CmdError> {
    client.goto(url).await?;
    client
        .wait()
        .for_element(Locator::Id(id))
        .await?
        .text()
        .await
}

/// The text of the element `id` of the current page once `done` holds for it, or its last
/// text after 10 s; an element that went stale while the page changed is looked up again.
async fn text_once(
    client: &Client,
    id: &str,
    done: impl Fn(&str) -> bool,
) -> Result<String, CmdError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = match client.find(Locator::Id(id)).await {
            Ok(element) => match element.text().await {
                Ok(text) => Some(text),
                Err(err) if is_stale(&err) => None,
                Err(err) => return Err(err),
            },
            Err(err) if is_stale(&err) => None,
            Err(err) => return Err(err),
        };
        match text {
            Some(text) if done(&text) || Instant::now() > deadline => return Ok(text),
            _ if Instant::now() > deadline => {
                return client.find(Locator::Id(id)).await?.text().await;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Whether `err` says an element was looked up on a page that has since been replaced, or
/// is not on the page (yet). Chromium sometimes reports the first as an unknown error,
/// "Node with given id does not belong to the document", when the page is replaced
/// between the lookup and the read.
fn is_stale(err: &CmdError) -> bool {
    use fantoccini::error::ErrorStatus::{NoSuchElement, StaleElementReference, UnknownError};
    let CmdError::Standard(e) = err else {
        return false;
    };
    match e.error {
        StaleElementReference | NoSuchElement => true,
        UnknownError => e.message.contains("does not belong to the document"),
        _ => false,
    }
}

async fn end_another_browsers_session_in_headless_chromium(framework: &str) -> TestResult {
    let rig = Rig::start(framework, "file").await?;
    let laptop = rig.browser("laptop").await;
    let phone = rig.browser("phone").await;
    let base = rig.base.clone();
    let sessions = format!("{base}sessions");
    let result = async {
        log_in(&laptop, &base, "ada").await?;
        log_in(&phone, &base, "ada").await?;

        // The laptop's page lists both sessions; the phone's row has the only End button.
        let table = text_at(&laptop, &sessions, "sessions").await?;
        assert_eq!(table.matches("Chrome on Linux").count(), 2, "{table}");
        assert_eq!(table.matches("this device").count(), 1, "{table}");
        let ends = laptop.find_all(Locator::Css("button.revoke")).await?;
        assert_eq!(ends.len(), 1, "one other session to end");
        ends[0].clone().click().await?;
        // The form posts and the page reloads: until it has, the old table is still there
        // (or gone stale under the finder), so wait for the new one's contents.
        let table = text_once(&laptop, "sessions", |table| {
            table.matches("Chrome on Linux").count() == 1
        })
        .await?;
        assert_eq!(table.matches("Chrome on Linux").count(), 1, "{table}");

        // The phone is logged out on its next request; the laptop stays in.
        phone.refresh().await?;
        let status = text_at(&phone, &base, "status").await?;
        assert!(
            status.contains("not logged in"),
            "the ended session: {status}"
        );
        let greeting = text_at(&laptop, &base, "greeting").await?;
        assert_eq!(greeting, "Hello, ada!");
        Ok::<(), CmdError>(())
    }
    .await;
    laptop.close().await.expect("close the laptop's browser");
    phone.close().await.expect("close the phone's browser");
    result.expect("browser sessions");
    Ok(())
}

/// The texts of the flash messages on the page, in order.
async fn flash_texts(client: &Client) -> Result<Vec<String>, CmdError> {
    let mut texts = Vec::new();
    for flash in client.find_all(Locator::Css(".flash")).await? {
        texts.push(flash.text().await?);
    }
    Ok(texts)
}

async fn log_in_reload_log_out_in_headless_chromium(
    framework: &str,
    store_type: &str,
) -> TestResult {
    let rig = Rig::start(framework, store_type).await?;
    let client = rig.browser("main").await;

    let base = rig.base.clone();
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
        // The login's flash message, once: the reload below shows it no more.
        assert_eq!(
            flash_texts(&client).await?,
            ["Welcome back, Ada <b>"],
            "the flash after the login's redirect"
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
        assert!(
            flash_texts(&client).await?.is_empty(),
            "the login's flash showed again on reload"
        );

        // The session cookie exists, is HttpOnly, and page JavaScript cannot see it.
        let cookies = client.get_all_cookies().await?;
        let session_cookie = cookies
            .iter()
            .find(|c| c.name() == "thinkjs")
            .expect("session cookie");
        assert_eq!(session_cookie.http_only(), Some(true));
        assert_eq!(format!("{:?}", session_cookie.same_site()), "Some(Lax)");
        // "Remember me" was not ticked: the browser keeps the cookie until it closes.
        assert!(
            session_cookie.expires().is_none(),
            "a login without \"Remember me\" got a persistent cookie: {session_cookie:?}"
        );
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
        assert_eq!(
            flash_texts(&client).await?,
            ["Logged out"],
            "the flash after the logout's redirect"
        );
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
        assert!(
            flash_texts(&client).await?.is_empty(),
            "the logout's flash showed again on reload"
        );

        // "Remember me" ticked: a cookie that outlives the browser, for weeks.
        client
            .find(Locator::Css("input[name=username]"))
            .await?
            .send_keys("Ada")
            .await?;
        client.find(Locator::Id("remember")).await?.click().await?;
        client.find(Locator::Id("login")).await?.click().await?;
        client.wait().for_element(Locator::Id("greeting")).await?;
        let cookies = client.get_all_cookies().await?;
        let remembered = cookies
            .iter()
            .find(|c| c.name() == "thinkjs")
            .expect("session cookie");
        let expires = remembered
            .expires_datetime()
            .map(|at| at.unix_timestamp())
            .unwrap_or_default();
        let in_a_week = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|now| now.as_secs() as i64 + 7 * 86_400)
            .unwrap_or_default();
        assert!(
            expires > in_a_week,
            "a remembered login's cookie should last weeks: {remembered:?}"
        );
        Ok::<(), CmdError>(())
    }
    .await;
    client.close().await.expect("close the browser");
    result.expect("browser session");
    Ok(())
}
