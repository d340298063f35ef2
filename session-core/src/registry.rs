//! From a configured `type` name to a store: how `type = "redis"` finds the Redis store.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{Error, ErrorKind, Result, SessionConfig, SessionStore};

type OpenFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn SessionStore>>> + Send>>;
type Opener = Arc<dyn Fn(AdapterOptions) -> OpenFuture + Send + Sync>;

/// Store constructors by type name.
///
/// Each store crate offers a `register(&mut Registry)` function; a third-party crate does
/// the same, and `type = "foo"` in the configuration then selects it.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Registry, SessionConfig, SessionStore};
/// # use session_core::{Capabilities, ChangeSet, Record, Result, StoreKey, Timestamp};
/// # #[derive(Debug)] struct FooStore { prefix: String }
/// # #[async_trait::async_trait] impl SessionStore for FooStore {
/// #   async fn load(&self, _: &StoreKey) -> Result<Option<Record>> { Ok(None) }
/// #   async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> { Ok(true) }
/// #   async fn update(&self, _: &StoreKey, _: &ChangeSet) -> Result<bool> { Ok(false) }
/// #   async fn touch(&self, _: &StoreKey, _: Timestamp) -> Result<bool> { Ok(false) }
/// #   async fn delete(&self, _: &StoreKey) -> Result<bool> { Ok(false) }
/// #   async fn gc(&self) -> Result<u64> { Ok(0) }
/// #   fn capabilities(&self) -> Capabilities { Capabilities::new() }
/// # }
///
/// #[derive(serde::Deserialize)]
/// struct FooOptions { prefix: String }
///
/// let mut registry = Registry::new();
/// registry.register("foo", |options| async move {
///     let options: FooOptions = options.parse()?;
///     Ok(Arc::new(FooStore { prefix: options.prefix }) as Arc<dyn SessionStore>)
/// });
///
/// let config = SessionConfig::from_json_str(r#"{"type": "foo", "adapter": {"foo": {"prefix": "s:"}}}"#)?;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = registry.open(&config).await?;
/// # Ok::<(), session_core::Error>(()) }).unwrap();
///
/// let bad = SessionConfig::from_json_str(r#"{"type": "foo", "adapter": {"foo": {"prefix": 1}}}"#)?;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let err = registry.open(&bad).await.unwrap_err();
/// assert!(err.to_string().contains("adapter.foo.prefix"));
/// # Ok::<(), session_core::Error>(()) }).unwrap();
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    openers: BTreeMap<String, Opener>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the constructor for store type `name`.
    pub fn register<F, Fut>(&mut self, name: &str, open: F) -> &mut Self
    where
        F: Fn(AdapterOptions) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn SessionStore>>> + Send + 'static,
    {
        let opener: Opener = Arc::new(move |options| Box::pin(open(options)));
        self.openers.insert(name.to_owned(), opener);
        self
    }

    /// Whether a constructor is registered for `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.openers.contains_key(name)
    }

    /// The registered type names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.openers.keys().map(String::as_str)
    }

    /// Opens the store `config.store_type` with `adapter.<type>` as its options.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an unknown type (listing the known ones) or invalid options;
    /// whatever the store's constructor returns.
    pub async fn open(&self, config: &SessionConfig) -> Result<Arc<dyn SessionStore>> {
        let name = &config.store_type;
        let Some(open) = self.openers.get(name) else {
            let known: Vec<&str> = self.names().collect();
            return Err(Error::config(
                "type",
                format!(
                    "unknown store type {name:?}; registered: {} (is its crate added and its `register` called?)",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        open(AdapterOptions {
            type_name: name.clone(),
            value: config.adapter_options(),
        })
        .await
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("types", &self.openers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A store's `adapter.<type>` table, handed to its constructor.
#[derive(Clone, Debug)]
pub struct AdapterOptions {
    type_name: String,
    value: serde_json::Value,
}

impl AdapterOptions {
    /// Options for store type `type_name` from a JSON value (an object, or null for none).
    pub fn new(type_name: impl Into<String>, value: serde_json::Value) -> Self {
        Self {
            type_name: type_name.into(),
            value,
        }
    }

    /// The store type these options are for.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The raw table.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// Deserializes the table into the store's options type.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the key as `adapter.<type>.<key>`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        let value = match &self.value {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => other.clone(),
        };
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let key = if path == "." {
                format!("adapter.{}", self.type_name)
            } else {
                format!("adapter.{}.{path}", self.type_name)
            };
            Error::new(ErrorKind::Config, format!("`{key}`: {}", err.inner()))
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::test_store::Counted;

    fn config(json: &str) -> SessionConfig {
        SessionConfig::from_json_str(json).expect("configuration")
    }

    #[tokio::test]
    async fn the_configured_type_opens_its_store_with_its_own_options() {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let mut registry = Registry::new();
        let record = Arc::clone(&seen);
        registry.register("foo", move |options: AdapterOptions| {
            let record = Arc::clone(&record);
            async move {
                *record.lock().expect("lock") =
                    Some((options.type_name().to_owned(), options.value().clone()));
                Ok(Arc::new(Counted::default()) as Arc<dyn SessionStore>)
            }
        });
        registry.register("bar", |_| async {
            Err(Error::new(ErrorKind::Backend, "bar must not be opened"))
        });
        assert!(registry.contains("foo") && !registry.contains("baz"));
        assert_eq!(registry.names().collect::<Vec<_>>(), ["bar", "foo"]);
        let store = registry
            .open(&config(
                r#"{"type": "foo", "adapter": {"foo": {"depth": 2}, "bar": {"x": 1}}}"#,
            ))
            .await
            .expect("foo opens");
        assert_eq!(
            store.capabilities(),
            crate::Capabilities::new().with_user_index(true)
        );
        let (name, value) = seen
            .lock()
            .expect("lock")
            .clone()
            .expect("foo's opener ran");
        assert_eq!(name, "foo");
        assert_eq!(value, serde_json::json!({"depth": 2}));
    }

    #[tokio::test]
    async fn an_unknown_type_names_the_registered_ones() {
        let mut registry = Registry::new();
        let err = registry
            .open(&config(r#"{"type": "foo"}"#))
            .await
            .expect_err("none registered");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("registered: none"), "{err}");
        registry.register("memory", |_| async {
            Ok(Arc::new(Counted::default()) as Arc<dyn SessionStore>)
        });
        let err = registry
            .open(&config(r#"{"type": "foo"}"#))
            .await
            .expect_err("unknown");
        assert!(
            err.to_string().contains(r#""foo""#) && err.to_string().contains("registered: memory"),
            "{err}"
        );
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct FooOptions {
        path: String,
        depth: u8,
    }

    #[test]
    fn options_parse_with_defaults_and_errors_name_the_key() {
        let absent = AdapterOptions::new("foo", serde_json::Value::Null);
        assert_eq!(
            absent.parse::<FooOptions>().expect("defaults"),
            FooOptions::default()
        );
        let given = AdapterOptions::new("foo", serde_json::json!({"path": "/tmp/s", "depth": 2}));
        assert_eq!(
            given.parse::<FooOptions>().expect("parse"),
            FooOptions {
                path: "/tmp/s".into(),
                depth: 2
            }
        );
        let wrong = AdapterOptions::new("foo", serde_json::json!({"depth": 300}));
        let err = wrong.parse::<FooOptions>().expect_err("out of range");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("`adapter.foo.depth`"), "{err}");
        let unknown = AdapterOptions::new("foo", serde_json::json!({"colour": "red"}));
        let err = unknown.parse::<FooOptions>().expect_err("unknown key");
        assert!(err.to_string().contains("adapter.foo"), "{err}");
    }
}
