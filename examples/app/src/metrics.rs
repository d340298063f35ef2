//! `GET /metrics`: the session metrics in the Prometheus text format.

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// How often the recorder's histograms are compacted.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The Prometheus recorder of this process, as `/metrics` renders it.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the Prometheus recorder as the process's global recorder, and compacts its
    /// histograms every few seconds on the current tokio runtime. Install it before the
    /// `SessionManager` is built: the manager registers its metrics when it is.
    ///
    /// # Errors
    /// If a global recorder is installed already.
    pub fn install() -> Result<Self, BuildError> {
        let handle = PrometheusBuilder::new().install_recorder()?;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let upkeep = handle.clone();
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(UPKEEP).await;
                    upkeep.run_upkeep();
                }
            });
        }
        Ok(Self { handle })
    }

    /// The body of `GET /metrics`.
    pub(crate) fn render(&self) -> String {
        self.handle.render()
    }
}

/// The `Content-Type` of the Prometheus text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
