//! Headless Chromium driven through a local chromedriver (WebDriver) with fantoccini.
//!
//! [`ChromeDriver::start`] runs chromedriver on a free loopback port in a process group of its own; its
//! `Drop` SIGKILLs that group, so the browsers it started go with it even when a test panics. Every
//! session gets a fresh `--user-data-dir` and flags that keep Chromium off the network beyond loopback.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use tokio::time::Instant;

/// Where Debian's `chromium` and `chromium-driver` packages put the programs.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Flags for every session: headless, no sandbox (root in CI), and nothing that calls outside hosts.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,800",
];

/// The browser and its driver, when both are installed.
#[derive(Debug, Clone)]
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl Tools {
    /// Finds the programs: at `$CHROMIUM_BIN` / `$CHROMEDRIVER_BIN` when set, else at Debian's paths,
    /// else on `PATH`; the missing ones in `Err`.
    pub fn find() -> Result<Self, Vec<&'static str>> {
        let chromium = locate("CHROMIUM_BIN", CHROMIUM, "chromium");
        let chromedriver = locate("CHROMEDRIVER_BIN", CHROMEDRIVER, "chromedriver");
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Ok(Self {
                chromium,
                chromedriver,
            }),
            (chromium, chromedriver) => Err([
                chromium.is_none().then_some("chromium"),
                chromedriver.is_none().then_some("chromedriver"),
            ]
            .into_iter()
            .flatten()
            .collect()),
        }
    }

    /// The tools, or `None` after printing why the test is skipped. In CI (`CI` set) a missing tool
    /// is a failure: `.ci/run` installs them.
    pub fn find_or_skip(test: &str) -> Option<Self> {
        match Self::find() {
            Ok(tools) => Some(tools),
            Err(missing) if std::env::var_os("CI").is_some() => panic!(
                "{test}: {} not installed, and CI is set (.ci/run installs the Debian packages \
                 chromium and chromium-driver)",
                missing.join(" and ")
            ),
            Err(missing) => {
                eprintln!(
                    "SKIPPED {test}: {} not installed (apt-get install chromium chromium-driver); \
                     with CI set this fails instead",
                    missing.join(" and ")
                );
                None
            }
        }
    }
}

fn locate(variable: &str, standard: &str, name: &str) -> Option<PathBuf> {
    if let Some(chosen) = std::env::var_os(variable) {
        let chosen = PathBuf::from(chosen);
        return chosen.is_file().then_some(chosen);
    }
    let standard = Path::new(standard);
    if standard.is_file() {
        return Some(standard.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A running chromedriver; SIGKILLs its whole process group (and so the browsers) on drop.
pub struct ChromeDriver {
    child: Child,
    port: u16,
    chromium: PathBuf,
    log: PathBuf,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port, logging into `dir`, and waits (bounded) until it
    /// reports ready.
    pub async fn start(tools: &Tools, dir: &Path) -> Self {
        let port = system_tests::free_port();
        let log = dir.join("chromedriver.log");
        let out = File::create(&log).expect("the chromedriver log can be created");
        let err = out.try_clone().expect("a log file handle can be cloned");
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A group of its own: dropping the driver kills the browsers it started too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {}: {error}", tools.chromedriver.display())
            });
        let driver = Self {
            child,
            port,
            chromium: tools.chromium.clone(),
            log,
        };
        driver.wait_ready(Duration::from_secs(20)).await;
        driver
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What chromedriver logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&self, timeout: Duration) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("a plain HTTP client builds");
        let url = format!("{}/status", self.url());
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = http.get(&url).send().await
                && let Ok(status) = response.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "chromedriver did not get ready within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless browser session with its own profile in `profile` (a fresh, empty folder).
    pub async fn session(&self, profile: &Path) -> Client {
        self.session_with_flags(profile, &[]).await
    }

    /// [`ChromeDriver::session`] with `extra` Chromium flags after the usual ones.
    pub async fn session_with_flags(&self, profile: &Path, extra: &[&str]) -> Client {
        let mut args: Vec<String> = CHROMIUM_FLAGS
            .iter()
            .chain(extra)
            .map(|flag| flag.to_string())
            .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": self.chromium, "args": args }),
        );
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities);
        match tokio::time::timeout(Duration::from_secs(60), builder.connect(&self.url())).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!(
                "chromedriver could not start a browser session: {error}\nits log:\n{}",
                self.log()
            ),
            Err(_) => panic!("no browser session within 60 s; log:\n{}", self.log()),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Waits up to `timeout` for an element matching the CSS `selector`; panics with the page's URL
/// otherwise.
pub async fn wait_for(client: &Client, selector: &str, timeout: Duration) -> Element {
    match client
        .wait()
        .at_most(timeout)
        .every(Duration::from_millis(100))
        .for_element(Locator::Css(selector))
        .await
    {
        Ok(element) => element,
        Err(error) => {
            let url = client.current_url().await.map(|url| url.to_string());
            let source = client.source().await.unwrap_or_default();
            panic!(
                "no {selector:?} within {timeout:?} on {url:?}: {error}\npage:\n{}",
                excerpt(&source)
            )
        }
    }
}

/// Polls `check` every 100 ms until it answers `Some`, for at most `timeout`; panics with `what`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The texts of every element matching `selector` (empty when none, or on a driver error).
pub async fn texts(client: &Client, selector: &str) -> Vec<String> {
    let Ok(elements) = client.find_all(Locator::Css(selector)).await else {
        return Vec::new();
    };
    let mut texts = Vec::with_capacity(elements.len());
    for element in elements {
        if let Ok(text) = element.text().await {
            texts.push(text);
        }
    }
    texts
}

/// The first few kilobytes of a page, for failure messages.
pub fn excerpt(text: &str) -> &str {
    let mut end = text.len().min(4000);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
