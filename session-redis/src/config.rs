//! The options of `adapter.redis`: where Redis is, the key prefix, and the time limits.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The Redis server used when no URL is configured.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The key prefix used when none is configured: sessions live at
/// `think_session:<64 hex digits>`.
pub const DEFAULT_PREFIX: &str = "think_session:";

/// How long opening a connection may take when none is configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one store call may take when none is configured.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the Redis store keeps sessions and how long it waits: the `adapter.redis` table.
///
/// Every field has a default, so an empty table connects to [`DEFAULT_URL`]. Durations
/// are seconds (`2`, `0.5`) or human-readable strings (`"2s"`, `"500ms"`), like every
/// duration of the session configuration.
///
/// ```
/// use std::time::Duration;
/// use session_redis::RedisConfig;
///
/// let config: RedisConfig = session_core::AdapterOptions::new(
///     "redis",
///     serde_json::json!({
///         "url": "redis://:secret@cache.internal:6379/2",
///         "prefix": "shop:session:",
///         "connect_timeout": "500ms",
///         "response_timeout": 1,
///     }),
/// )
/// .parse()?;
/// assert_eq!(config.prefix, "shop:session:");
/// assert_eq!(config.connect_timeout, Duration::from_millis(500));
/// assert_eq!(config.response_timeout, Duration::from_secs(1));
/// // The password never shows up in logs.
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server's URL: `redis://[[user]:password@]host[:port][/db]`, `rediss://...`
    /// (with the `tls` feature) or `redis+unix:///path/to/socket`.
    /// [`DEFAULT_URL`] by default. Ignored when [`RedisConfig::nodes`] is set.
    pub url: String,
    /// Redis Cluster: the URLs of some of the cluster's nodes (the others are discovered).
    /// Needs the `cluster` feature; empty (a single server at `url`) by default.
    pub nodes: Vec<String>,
    /// Prepended to every key the store writes ([`DEFAULT_PREFIX`] by default), so that
    /// several applications can share one Redis database.
    pub prefix: String,
    /// How long opening a connection may take, at start-up and for each reconnection
    /// attempt ([`DEFAULT_CONNECT_TIMEOUT`] by default).
    #[serde(deserialize_with = "session_core::deserialize_duration")]
    pub connect_timeout: Duration,
    /// The longest one store call may take, end to end, including the wait for a
    /// reconnection; past it the call fails with
    /// [`ErrorKind::Timeout`](session_core::ErrorKind::Timeout)
    /// ([`DEFAULT_RESPONSE_TIMEOUT`] by default).
    #[serde(deserialize_with = "session_core::deserialize_duration")]
    pub response_timeout: Duration,
    /// Open the store without waiting for Redis: the first call connects. Lets the
    /// application start while Redis is down (`false` by default: a wrong URL or an
    /// unreachable server is reported at start-up).
    pub lazy: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            nodes: Vec::new(),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            lazy: false,
        }
    }
}

impl RedisConfig {
    /// The defaults, with `url` as the server.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Sets [`RedisConfig::nodes`] (Redis Cluster).
    #[must_use]
    pub fn with_nodes(mut self, nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.nodes = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`RedisConfig::prefix`].
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`RedisConfig::connect_timeout`].
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`RedisConfig::response_timeout`].
    #[must_use]
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets [`RedisConfig::lazy`].
    #[must_use]
    pub fn with_lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Where the store connects, with any password replaced by `***`: safe to log.
    pub fn target(&self) -> String {
        if self.nodes.is_empty() {
            redact_url(&self.url)
        } else {
            let nodes: Vec<String> = self.nodes.iter().map(|n| redact_url(n)).collect();
            format!("cluster [{}]", nodes.join(", "))
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "nodes",
                &self.nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("lazy", &self.lazy)
            .finish()
    }
}

/// `url` with the password of its user information (if any) replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                // `redis://secret@host` puts the password in the user part.
                "***".to_owned()
            };
            format!("{scheme}://{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use session_core::{AdapterOptions, ErrorKind};

    use super::*;

    fn parse(value: serde_json::Value) -> session_core::Result<RedisConfig> {
        AdapterOptions::new("redis", value).parse()
    }

    #[test]
    fn empty_table_gives_the_defaults() {
        let config = parse(serde_json::Value::Null).expect("defaults");
        assert_eq!(config, RedisConfig::default());
        assert_eq!(config.url, DEFAULT_URL);
        assert_eq!(config.prefix, DEFAULT_PREFIX);
        assert!(config.nodes.is_empty());
        assert!(!config.lazy);
    }

    #[test]
    fn durations_are_seconds_or_text() {
        let config = parse(serde_json::json!({
            "connect_timeout": 0.25,
            "response_timeout": "1s 500ms",
        }))
        .expect("valid");
        assert_eq!(config.connect_timeout, Duration::from_millis(250));
        assert_eq!(config.response_timeout, Duration::from_millis(1500));
        let config = parse(serde_json::json!({"connect_timeout": 3})).expect("valid");
        assert_eq!(config.connect_timeout, Duration::from_secs(3));
    }

    #[test]
    fn errors_name_the_key() {
        for (value, key) in [
            (
                serde_json::json!({"response_timeout": "soon"}),
                "adapter.redis.response_timeout",
            ),
            (
                serde_json::json!({"connect_timeout": -1}),
                "adapter.redis.connect_timeout",
            ),
            (serde_json::json!({"prefix": 7}), "adapter.redis.prefix"),
            (
                serde_json::json!({"nodes": "redis://a"}),
                "adapter.redis.nodes",
            ),
            (serde_json::json!({"ur": "redis://a"}), "ur"),
        ] {
            let err = parse(value.clone()).expect_err("invalid");
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(key), "{value}: {err}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://user:pa:ss@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("rediss://:pw@host"), "rediss://:***@host");
        assert_eq!(redact_url("redis://pw@host/1"), "redis://***@host/1");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock"),
            "redis+unix:///run/redis.sock"
        );
        let config = RedisConfig::new("redis://u:hunter2@h")
            .with_nodes(["redis://:hunter3@a:7000", "redis://b:7001"]);
        let shown = format!("{config:?} {}", config.target());
        assert!(!shown.contains("hunter"), "{shown}");
        assert_eq!(
            config.target(),
            "cluster [redis://:***@a:7000, redis://b:7001]"
        );
    }
}
