//! Session configuration with ThinkJS's keys and defaults, loadable from TOML or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::codec::Codec;
use crate::id::{DEFAULT_ID_LENGTH, MAX_ID_LENGTH, MIN_ID_LENGTH};
use crate::transport::{DEFAULT_TOKEN_HEADER, Transport, Transports, is_token_header_name};
use crate::{Error, ErrorKind, Result};

/// The largest value size that may be configured: 16 MiB. Decoding never allocates more
/// than this for one value, whatever a corrupt length prefix claims.
pub const MAX_VALUE_SIZE_LIMIT: usize = 16 * 1024 * 1024;

/// The whole session configuration, as in ThinkJS's `session` config block.
///
/// Every field has the ThinkJS default, so an empty document is a valid configuration.
/// Durations are seconds (`86400`) or human-readable strings (`"24h"`, `"1day"`).
///
/// ```
/// use std::time::Duration;
/// use session_core::SessionConfig;
///
/// let config = SessionConfig::from_json_str(r#"{
///     "type": "memory",
///     "name": "sid",
///     "secret": ["new secret", "old secret"],
///     "timeout": "2h",
///     "cookie": { "secure": true, "same_site": "strict" }
/// }"#)?;
/// assert_eq!(config.store_type, "memory");
/// assert_eq!(config.timeout, Duration::from_secs(7200));
/// assert_eq!(config.secret.len(), 2);
/// assert!(config.cookie.http_only);
///
/// let err = SessionConfig::from_json_str(r#"{ "cookie": { "length": 8 } }"#).unwrap_err();
/// assert!(err.to_string().contains("cookie.length"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The store type, as registered in the [`Registry`](crate::Registry) (`"file"` by default).
    #[serde(rename = "type")]
    pub store_type: String,
    /// The cookie name (`"thinkjs"` by default, as in ThinkJS).
    pub name: String,
    /// Secrets that sign the cookie: one string or a list (the first signs, all verify).
    /// Without a secret the cookie holds the bare id.
    pub secret: Secrets,
    /// Idle timeout: a session not used for this long expires (one day by default).
    #[serde(deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    /// Idle timeout of a session the user asked to be remembered
    /// ([`Session::remember`](crate::Session::remember) with `true`, the "Remember me" box
    /// of a login form): 30 days by default. Such a session also gets a persistent cookie,
    /// whatever `cookie.persistent` says; `absolute_timeout` bounds it as any other.
    #[serde(deserialize_with = "deserialize_duration")]
    pub remember_timeout: Duration,
    /// Absolute lifetime from creation, whatever the activity (none by default).
    #[serde(deserialize_with = "optional_duration")]
    pub absolute_timeout: Option<Duration>,
    /// Whether each use pushes the idle expiry forward (`true` by default).
    pub rolling: bool,
    /// A read-only request refreshes the expiry only when the last refresh is at least this
    /// old, so read-only traffic does not write on every hit (60 seconds by default).
    #[serde(deserialize_with = "deserialize_duration")]
    pub touch_after: Duration,
    /// Cookie attributes.
    pub cookie: CookieConfig,
    /// Per-store options: `adapter.<type>` is a free-form table the chosen store parses.
    pub adapter: BTreeMap<String, serde_json::Value>,
    /// Garbage collection of expired sessions.
    pub gc: GcConfig,
    /// How session values are encoded.
    pub codec: Codec,
    /// The largest encoded value accepted by `Session::set`, in bytes (4 MiB by default,
    /// at most [`MAX_VALUE_SIZE_LIMIT`]).
    pub max_value_size: usize,
    /// The most live sessions one user may have: binding a session beyond it
    /// ([`Session::set_user`](crate::Session::set_user)) ends that user's least recently
    /// active other sessions (no limit by default; needs a store with a user index).
    pub max_sessions_per_user: Option<usize>,
    /// Whether requests hold their session's lock ([`LockMode::Exclusive`](crate::LockMode))
    /// from its first use until the flush, so that requests of one session run one at a
    /// time (`false` by default; needs a store with [`Capabilities::lock`](crate::Capabilities)).
    pub lock: bool,
    /// How long a request waits for its session's lock before failing with
    /// [`ErrorKind::Locked`](crate::ErrorKind::Locked) (5 seconds by default).
    #[serde(deserialize_with = "deserialize_duration")]
    pub lock_timeout: Duration,
    /// How long a lease on the lock lives without renewal (10 seconds by default). The
    /// holder renews it every third of this while it holds it, so a crashed or stalled
    /// holder blocks the others for at most this long.
    #[serde(deserialize_with = "deserialize_duration")]
    pub lock_ttl: Duration,
    /// The longest one store call may take (5 seconds by default): the manager bounds
    /// every call it and the sessions make to the store, whatever the store, and a call
    /// still unanswered then fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
    /// naming the operation, so a hung store never hangs a request. It cannot be turned
    /// off (a very long value does that); gc runs are bounded by `gc.interval` instead.
    /// A store's own timeouts (Redis's `response_timeout`, SQL's `acquire_timeout`)
    /// should be shorter, so that their more specific errors come first.
    #[serde(deserialize_with = "deserialize_duration")]
    pub store_timeout: Duration,
    /// Where the session token travels ([`Transport`]): one name or a list, in order of
    /// precedence. The cookie by default; `Authorization: Bearer` for `type = "jwt"`. Read
    /// it through [`SessionConfig::transports`], which applies that default.
    pub transport: Option<Transports>,
    /// The header of [`Transport::Header`] (request and response) and the response header
    /// of [`Transport::Bearer`]: `x-session-token` by default, lowercase.
    pub token_header: String,
    /// Encrypts every stored value (server-side types only); off by default.
    pub encrypt_at_rest: Option<EncryptAtRestConfig>,
}

/// `encrypt_at_rest`: every value a server-side store keeps is encrypted and authenticated
/// (XChaCha20-Poly1305), bound to its session's store key and its field name, so a value
/// copied into another session or field does not decrypt. Stores still move bytes.
///
/// ```toml
/// [encrypt_at_rest]
/// keys = ["a new key of 32 bytes or more...", "the previous key, still read......"]
/// accept_plaintext = true   # while records written before the option are still live
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EncryptAtRestConfig {
    /// The keys: the first encrypts, every one decrypts (rotation). At least one, each at
    /// least 32 bytes.
    pub keys: Secrets,
    /// Whether a value that is not encrypted (written before the option was turned on) is
    /// read as it is (`false` by default). Turn it on to migrate a live store, and off
    /// once every session written before has expired or been written again.
    pub accept_plaintext: bool,
}

/// The shortest secret accepted where it becomes a key (the `cookie` and `jwt` types'
/// `secret`, `encrypt_at_rest.keys`), in bytes: as long as the key (256 bits), so the secret
/// is never the weak point; RFC 7518 asks as much of an HS256 key.
pub const MIN_KEY_SECRET_LEN: usize = 32;

/// Fails with [`ErrorKind::Config`] naming `key[i]` for the first of `secrets` shorter than
/// [`MIN_KEY_SECRET_LEN`], or naming `key` when there is none.
pub(crate) fn check_key_secrets<'a>(
    secrets: impl IntoIterator<Item = &'a SecretString>,
    key: &str,
) -> Result<()> {
    let mut count = 0;
    for (index, secret) in secrets.into_iter().enumerate() {
        let len = secret.expose_secret().len();
        if len < MIN_KEY_SECRET_LEN {
            return Err(Error::config(
                &format!("{key}[{index}]"),
                format!(
                    "must be at least {MIN_KEY_SECRET_LEN} bytes to be a key (this one has \
                     {len}); generate one with `openssl rand -base64 32`"
                ),
            ));
        }
        count += 1;
    }
    if count == 0 {
        return Err(Error::config(
            key,
            "needs at least one secret to make its key from",
        ));
    }
    Ok(())
}

/// The shortest `lock_ttl` accepted: the holder renews every third of it.
pub const MIN_LOCK_TTL: Duration = Duration::from_millis(30);

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            store_type: "file".to_owned(),
            name: "thinkjs".to_owned(),
            secret: Secrets::default(),
            timeout: Duration::from_secs(86_400),
            remember_timeout: Duration::from_secs(30 * 86_400),
            absolute_timeout: None,
            rolling: true,
            touch_after: Duration::from_secs(60),
            cookie: CookieConfig::default(),
            adapter: BTreeMap::new(),
            gc: GcConfig::default(),
            codec: Codec::default(),
            max_value_size: 4 * 1024 * 1024,
            max_sessions_per_user: None,
            lock: false,
            lock_timeout: Duration::from_secs(5),
            lock_ttl: Duration::from_secs(10),
            store_timeout: Duration::from_secs(5),
            transport: None,
            token_header: DEFAULT_TOKEN_HEADER.to_owned(),
            encrypt_at_rest: None,
        }
    }
}

/// Cookie attributes (`cookie.*`). ThinkJS's camelCase spellings (`httpOnly`, `sameSite`,
/// `maxAge`) are accepted too.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Length of generated session ids, in characters of 6 random bits each: 32 by default,
    /// at least 22 (132 bits, at least 128).
    pub length: usize,
    /// Cookie `Path` (`/` by default).
    pub path: String,
    /// Cookie `Domain` (none by default: the cookie goes back to the exact host only).
    pub domain: Option<String>,
    /// Cookie `HttpOnly`: hidden from page JavaScript (`true` by default).
    #[serde(alias = "httpOnly")]
    pub http_only: bool,
    /// Cookie `Secure`: sent over HTTPS only (`false` by default; set it in production).
    pub secure: bool,
    /// Cookie `SameSite` (`lax` by default).
    #[serde(alias = "sameSite")]
    pub same_site: SameSite,
    /// Cookie `Max-Age`. When unset, the cookie lives exactly as long as the session does
    /// on the server, and is refreshed whenever the server extends it.
    #[serde(alias = "maxAge", deserialize_with = "optional_duration")]
    pub max_age: Option<Duration>,
    /// Whether the cookie outlives the browser (`true` by default). `false` sends it
    /// without `Max-Age` and `Expires`, so the browser drops it when it closes; the session
    /// still ends on the server after `timeout`. A session given
    /// [`Session::remember`](crate::Session::remember) decides for itself: `true` gets a
    /// persistent cookie, `false` a browser-session one.
    pub persistent: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            length: DEFAULT_ID_LENGTH,
            path: "/".to_owned(),
            domain: None,
            http_only: true,
            secure: false,
            same_site: SameSite::Lax,
            max_age: None,
            persistent: true,
        }
    }
}

/// The cookie's `SameSite` attribute.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with same-site requests.
    #[serde(rename = "strict", alias = "Strict")]
    Strict,
    /// Sent with same-site requests and top-level cross-site navigations (the default).
    #[default]
    #[serde(rename = "lax", alias = "Lax")]
    Lax,
    /// Sent with every request; browsers require `Secure` with it.
    #[serde(rename = "none", alias = "None")]
    None,
}

/// Garbage collection settings (`gc.*`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GcConfig {
    /// Whether the application runs the gc scheduler (`true` by default).
    pub on: bool,
    /// Time between two gc runs (one hour by default), jittered by ±10%.
    #[serde(deserialize_with = "deserialize_duration")]
    pub interval: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            on: true,
            interval: Duration::from_secs(3600),
        }
    }
}

/// Signing secrets: a single string or a list. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Secrets(Vec<SecretString>);

impl Secrets {
    /// Secrets from strings; the first one signs.
    pub fn new(secrets: impl IntoIterator<Item = SecretString>) -> Self {
        Self(secrets.into_iter().collect())
    }

    /// Whether no secret is configured (cookies then carry the bare id).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many secrets are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The secrets, first (signing) one first.
    pub fn iter(&self) -> impl Iterator<Item = &SecretString> {
        self.0.iter()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[REDACTED; {}]", self.0.len())
    }
}

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretsVisitor;
        impl<'de> Visitor<'de> for SecretsVisitor {
            type Value = Secrets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string or a list of secret strings")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Secrets, E> {
                Ok(Secrets(vec![SecretString::from(value)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Secrets, A::Error> {
                let mut secrets = Vec::new();
                while let Some(secret) = seq.next_element::<String>()? {
                    secrets.push(SecretString::from(secret));
                }
                Ok(Secrets(secrets))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Secrets, E> {
                Ok(Secrets::default())
            }
        }
        deserializer.deserialize_any(SecretsVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds or a duration such as \"24h\" or \"30min\"")
    }
    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(seconds))
    }
    fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
        u64::try_from(seconds)
            .map(Duration::from_secs)
            .map_err(|_| E::custom("a duration cannot be negative"))
    }
    fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(seconds).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        humantime::parse_duration(text).map_err(E::custom)
    }
}

/// Deserializes a [`Duration`] written the way every duration of the configuration is: a
/// number of seconds (`5`, `0.5`) or text such as `"500ms"`, `"30min"` or `"24h"`.
///
/// For stores' own option structs, so their durations read like the core's:
///
/// ```
/// # use std::time::Duration;
/// #[derive(serde::Deserialize)]
/// struct Options {
///     #[serde(deserialize_with = "session_core::deserialize_duration")]
///     timeout: Duration,
/// }
/// let options: Options = serde_json::from_str(r#"{ "timeout": "500ms" }"#).unwrap();
/// assert_eq!(options.timeout, Duration::from_millis(500));
/// let options: Options = serde_json::from_str(r#"{ "timeout": 2 }"#).unwrap();
/// assert_eq!(options.timeout, Duration::from_secs(2));
/// ```
///
/// # Errors
/// A negative number, or text that is not a duration.
pub fn deserialize_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "deserialize_duration")] Duration);
    Option::<Wrapped>::deserialize(deserializer).map(|wrapped| wrapped.map(|Wrapped(d)| d))
}

impl SessionConfig {
    /// Parses and validates a JSON document.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the offending key.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let config: Self =
            serde_path_to_error::deserialize(&mut deserializer).map_err(path_error)?;
        deserializer
            .end()
            .map_err(|err| Error::new(ErrorKind::Config, "trailing characters").with_source(err))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates a TOML document.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the offending key or the TOML syntax error.
    #[cfg(feature = "toml")]
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_value(toml_to_value(text)?)
    }

    /// Loads the configuration the way applications usually do: the file at `path` if any
    /// (`.json`, or `.toml` with the `toml` feature), then environment variables named
    /// `<prefix>__<key>__<sub-key>` on top (for example with prefix `SESSION`:
    /// `SESSION__TYPE=redis`, `SESSION__ADAPTER__REDIS__URL=redis://10.0.0.5`,
    /// `SESSION__COOKIE__SECURE=true`). Keys are the configuration's keys in upper case;
    /// values are JSON when they parse as JSON (`true`, `3600`, `["a","b"]`), text otherwise.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an unreadable file or invalid content, naming the key.
    pub fn load(path: Option<&Path>, env_prefix: &str) -> Result<Self> {
        let mut value = match path {
            Some(path) => read_file_value(path)?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        apply_env_overrides(&mut value, env_prefix, std::env::vars());
        Self::from_value(value)
    }

    /// Parses and validates a configuration already read into a JSON value (for example a
    /// section of a larger application config).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the offending key.
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        let config: Self = serde_path_to_error::deserialize(value).map_err(path_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a `.json` or (with the `toml` feature) `.toml` file.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an unreadable file, an unknown extension or invalid content.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_value(read_file_value(path.as_ref())?)
    }

    /// Checks the values that parsing alone cannot: ranges, and characters that would break
    /// the `Set-Cookie` header.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the first offending key.
    pub fn validate(&self) -> Result<()> {
        if self.store_type.is_empty() {
            return Err(Error::config("type", "must name a store type"));
        }
        if self.name.is_empty() || !self.name.bytes().all(is_cookie_name_byte) {
            return Err(Error::config(
                "name",
                "must be a non-empty cookie name (letters, digits and !#$%&'*+-.^_`|~)",
            ));
        }
        // `Signer::new` refuses an empty secret too; refusing it here as well means a
        // configuration that validates always builds a manager, before any store is opened.
        if let Some(index) = self
            .secret
            .iter()
            .position(|s| s.expose_secret().is_empty())
        {
            return Err(Error::config(
                &format!("secret[{index}]"),
                "must not be empty",
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be longer than zero"));
        }
        if self.remember_timeout.is_zero() {
            return Err(Error::config(
                "remember_timeout",
                "must be longer than zero",
            ));
        }
        if self.rolling && self.touch_after >= self.remember_timeout {
            return Err(Error::config(
                "touch_after",
                "must be shorter than `remember_timeout`, or read-only use could let a \
                 remembered session expire",
            ));
        }
        if self.absolute_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::config(
                "absolute_timeout",
                "must be longer than zero",
            ));
        }
        if self.rolling && self.touch_after >= self.timeout {
            return Err(Error::config(
                "touch_after",
                "must be shorter than `timeout`, or read-only use could let a session expire",
            ));
        }
        let cookie = &self.cookie;
        if !(MIN_ID_LENGTH..=MAX_ID_LENGTH).contains(&cookie.length) {
            return Err(Error::config(
                "cookie.length",
                format!(
                    "must be between {MIN_ID_LENGTH} (132 bits, at least 128) and {MAX_ID_LENGTH}, not {}",
                    cookie.length
                ),
            ));
        }
        if !cookie.path.starts_with('/') || !cookie.path.bytes().all(is_attribute_byte) {
            return Err(Error::config(
                "cookie.path",
                "must start with '/' and contain no ';', spaces or control characters",
            ));
        }
        if let Some(domain) = &cookie.domain
            && (domain.is_empty() || !domain.bytes().all(is_attribute_byte))
        {
            return Err(Error::config(
                "cookie.domain",
                "must be a host name without ';', spaces or control characters",
            ));
        }
        if cookie.same_site == SameSite::None && !cookie.secure {
            return Err(Error::config(
                "cookie.same_site",
                "`none` requires `cookie.secure = true`; browsers reject it otherwise",
            ));
        }
        if self.gc.interval.is_zero() {
            return Err(Error::config("gc.interval", "must be longer than zero"));
        }
        if self.max_value_size == 0 || self.max_value_size > MAX_VALUE_SIZE_LIMIT {
            return Err(Error::config(
                "max_value_size",
                format!("must be between 1 and {MAX_VALUE_SIZE_LIMIT} bytes"),
            ));
        }
        if self.max_sessions_per_user == Some(0) {
            return Err(Error::config(
                "max_sessions_per_user",
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        if self.lock_timeout.is_zero() {
            return Err(Error::config("lock_timeout", "must be longer than zero"));
        }
        if self.lock_ttl < MIN_LOCK_TTL {
            return Err(Error::config(
                "lock_ttl",
                format!(
                    "must be at least {} ms: the holder renews its lease every third of it",
                    MIN_LOCK_TTL.as_millis()
                ),
            ));
        }
        self.validate_transport()?;
        if self.store_timeout.is_zero() {
            return Err(Error::config(
                "store_timeout",
                "must be longer than zero (it cannot be turned off; a long value such as \"1h\" \
                 bounds calls loosely)",
            ));
        }
        Ok(())
    }

    /// The transports in force: `transport` as configured, or its default for the type
    /// (`Authorization: Bearer` for `type = "jwt"`, the cookie for every other type).
    pub fn transports(&self) -> Transports {
        match &self.transport {
            Some(transports) => transports.clone(),
            None if self.store_type == crate::client::JWT_TYPE => {
                Transports::new([Transport::Bearer])
            }
            None => Transports::default(),
        }
    }

    /// Whether `type` keeps each session whole in its token (`"cookie"` or `"jwt"`)
    /// rather than in a store.
    pub fn is_client_side(&self) -> bool {
        [crate::client::COOKIE_TYPE, crate::client::JWT_TYPE].contains(&self.store_type.as_str())
    }

    fn validate_transport(&self) -> Result<()> {
        if self.transports().as_slice().is_empty() {
            return Err(Error::config(
                "transport",
                "must name at least one of \"cookie\", \"header\" and \"bearer\"",
            ));
        }
        if !is_token_header_name(&self.token_header) {
            return Err(Error::config(
                "token_header",
                "must be a lowercase header name (letters, digits and !#$%&'*+-.^_`|~) \
                 other than cookie, set-cookie, authorization and HTTP's own",
            ));
        }
        if self.is_client_side() {
            let refuse = |key: &str, what: &str| {
                Err(Error::config(
                    key,
                    format!(
                        "type = \"{}\" keeps each session in its token, with no store: {what}",
                        self.store_type
                    ),
                ))
            };
            if self.secret.is_empty() {
                return refuse("secret", "its keys come from `secret`, so set at least one");
            }
            check_key_secrets(self.secret.iter(), "secret")?;
            if self.max_sessions_per_user.is_some() {
                return refuse(
                    "max_sessions_per_user",
                    "there is no user index to enforce it",
                );
            }
            if self.lock {
                return refuse("lock", "there is no store to keep session locks");
            }
            if self.encrypt_at_rest.is_some() {
                return refuse(
                    "encrypt_at_rest",
                    "nothing is stored (and \"cookie\" encrypts anyway)",
                );
            }
        }
        if let Some(at_rest) = &self.encrypt_at_rest {
            check_key_secrets(at_rest.keys.iter(), "encrypt_at_rest.keys")?;
        }
        Ok(())
    }

    /// The options of the configured store type (`adapter.<type>`), or an empty table.
    pub fn adapter_options(&self) -> serde_json::Value {
        self.adapter
            .get(&self.store_type)
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()))
    }
}

#[cfg(feature = "toml")]
fn toml_to_value(text: &str) -> Result<serde_json::Value> {
    let table: toml::Table = toml::from_str(text).map_err(|err| {
        Error::new(
            ErrorKind::Config,
            format!("invalid TOML: {}", err.message()),
        )
        .with_source(err)
    })?;
    serde_json::to_value(table)
        .map_err(|err| Error::new(ErrorKind::Config, "unsupported TOML value").with_source(err))
}

fn read_file_value(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Error::new(ErrorKind::Config, format!("cannot read {}", path.display())).with_source(err)
    })?;
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|err| {
            Error::new(
                ErrorKind::Config,
                format!("{}: invalid JSON: {err}", path.display()),
            )
            .with_source(err)
        }),
        #[cfg(feature = "toml")]
        Some("toml") => toml_to_value(&text),
        _ => Err(Error::new(
            ErrorKind::Config,
            format!(
                "{}: configuration files must end in .json{}",
                path.display(),
                if cfg!(feature = "toml") {
                    " or .toml"
                } else {
                    ""
                }
            ),
        )),
    }
}

/// Writes `<prefix>__A__B=value` variables into `value` at `a.b`.
fn apply_env_overrides(
    value: &mut serde_json::Value,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) {
    let marker = format!("{prefix}__");
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix(&marker) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            continue;
        }
        let parsed = serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw));
        let mut node = &mut *value;
        for key in &keys {
            if !node.is_object() {
                *node = serde_json::Value::Object(serde_json::Map::new());
            }
            let serde_json::Value::Object(map) = node else {
                break;
            };
            node = map.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
        *node = parsed;
    }
}

fn path_error<E: fmt::Display>(err: serde_path_to_error::Error<E>) -> Error {
    let path = err.path().to_string();
    let inner = err.inner().to_string();
    if path == "." {
        Error::new(ErrorKind::Config, inner)
    } else {
        Error::config(&path, inner)
    }
}

/// RFC 6265 token characters.
fn is_cookie_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Characters allowed in a `Path` or `Domain` attribute value.
fn is_attribute_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b';'
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn empty_document_gives_the_thinkjs_defaults() {
        let config = SessionConfig::from_json_str("{}").expect("valid");
        assert_eq!(config.store_type, "file");
        assert_eq!(config.name, "thinkjs");
        assert_eq!(config.timeout, Duration::from_secs(86_400));
        assert!(config.secret.is_empty());
        assert_eq!(config.cookie.length, 32);
        assert!(config.cookie.http_only);
        assert!(!config.cookie.secure);
        assert_eq!(config.cookie.same_site, SameSite::Lax);
        assert_eq!(config.cookie.path, "/");
        assert!(config.gc.on);
        assert_eq!(config.gc.interval, Duration::from_secs(3600));
        assert_eq!(config.store_timeout, Duration::from_secs(5));
    }

    #[test]
    fn secret_is_a_string_or_a_list() {
        let one = SessionConfig::from_json_str(r#"{"secret": "s"}"#).expect("one");
        assert_eq!(one.secret.len(), 1);
        let two = SessionConfig::from_json_str(r#"{"secret": ["a", "b"]}"#).expect("two");
        let exposed: Vec<&str> = two.secret.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(exposed, ["a", "b"]);
        assert!(!format!("{two:?}").contains("\"a\""));
        let err = SessionConfig::from_json_str(r#"{"secret": 5}"#).expect_err("number");
        assert!(err.to_string().contains("`secret`"), "{err}");
    }

    #[test]
    fn empty_secrets_are_refused_by_validation() {
        // Found by the `config` fuzz target (`secret = ""`): the configuration parsed and
        // validated, and only `SessionManager::new` refused it, after `from_config` had
        // already opened the store.
        for (text, key) in [
            (r#"{"secret": ""}"#, "`secret[0]`"),
            (r#"{"secret": ["new", ""]}"#, "`secret[1]`"),
        ] {
            let err = SessionConfig::from_json_str(text).expect_err(text);
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        #[cfg(feature = "toml")]
        {
            let err = SessionConfig::from_toml_str(r#"secret = """#).expect_err("empty");
            assert!(err.to_string().contains("`secret[0]`"), "{err}");
        }
        let none = SessionConfig::from_json_str(r#"{"secret": []}"#).expect("no secret");
        assert!(none.secret.is_empty());
    }

    #[test]
    fn durations_are_seconds_or_text() {
        let config = SessionConfig::from_json_str(
            r#"{"timeout": "2h", "absolute_timeout": 604800, "touch_after": "5min",
                "cookie": {"maxAge": "1day"}, "gc": {"interval": 60}, "store_timeout": "250ms"}"#,
        )
        .expect("valid");
        assert_eq!(config.timeout, Duration::from_secs(7200));
        assert_eq!(config.absolute_timeout, Some(Duration::from_secs(604_800)));
        assert_eq!(config.touch_after, Duration::from_secs(300));
        assert_eq!(config.cookie.max_age, Some(Duration::from_secs(86_400)));
        assert_eq!(config.gc.interval, Duration::from_secs(60));
        assert_eq!(config.store_timeout, Duration::from_millis(250));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (r#"{"timeout": "soon"}"#, "`timeout`"),
            (r#"{"timeout": -1}"#, "`timeout`"),
            (
                r#"{"cookie": {"same_site": "sometimes"}}"#,
                "`cookie.same_site`",
            ),
            (r#"{"cookie": {"length": 21}}"#, "`cookie.length`"),
            (r#"{"cookie": {"lenght": 40}}"#, "lenght"),
            (r#"{"cookie": {"path": "/; Domain=evil"}}"#, "`cookie.path`"),
            (r#"{"cookie": {"same_site": "none"}}"#, "`cookie.same_site`"),
            (r#"{"name": "bad name"}"#, "`name`"),
            (r#"{"gc": {"interval": 0}}"#, "`gc.interval`"),
            (r#"{"touch_after": 90000}"#, "`touch_after`"),
            (r#"{"max_value_size": 999999999}"#, "`max_value_size`"),
            (r#"{"max_sessions_per_user": 0}"#, "`max_sessions_per_user`"),
            (r#"{"codec": "xml"}"#, "`codec`"),
            (r#"{"store_timeout": 0}"#, "`store_timeout`"),
            (r#"{"store_timeout": "off"}"#, "`store_timeout`"),
            (r#"{"timeout": 10} trailing"#, "trailing"),
        ];
        for (text, key) in cases {
            let err = SessionConfig::from_json_str(text).expect_err(text);
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn adapter_tables_are_free_form() {
        let config = SessionConfig::from_json_str(
            r#"{"type": "file", "adapter": {"file": {"path": "/tmp/s", "path_depth": 2}}}"#,
        )
        .expect("valid");
        assert_eq!(config.adapter_options()["path_depth"], 2);
        let other = SessionConfig::from_json_str(r#"{"type": "memory"}"#).expect("valid");
        assert!(
            other
                .adapter_options()
                .as_object()
                .is_some_and(|o| o.is_empty())
        );
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let mut value = serde_json::json!({"type": "file", "cookie": {"secure": false}});
        let vars = [
            ("SESSION__TYPE", "redis"),
            ("SESSION__COOKIE__SECURE", "true"),
            ("SESSION__TIMEOUT", "3600"),
            ("SESSION__ADAPTER__REDIS__URL", "redis://10.0.0.5:6379"),
            ("SESSION__SECRET", "[\"new\", \"old\"]"),
            ("OTHER__TYPE", "memory"),
            ("SESSION__", "ignored"),
        ];
        apply_env_overrides(
            &mut value,
            "SESSION",
            vars.map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let config = SessionConfig::from_value(value).expect("valid");
        assert_eq!(config.store_type, "redis");
        assert!(config.cookie.secure);
        assert_eq!(config.timeout, Duration::from_secs(3600));
        assert_eq!(config.adapter_options()["url"], "redis://10.0.0.5:6379");
        assert_eq!(config.secret.len(), 2);
    }

    #[cfg(feature = "toml")]
    #[test]
    fn reads_toml() {
        let config = SessionConfig::from_toml_str(
            r#"
            type = "redis"
            secret = "k"
            timeout = "1h"
            [cookie]
            secure = true
            same_site = "strict"
            [adapter.redis]
            url = "redis://127.0.0.1:6379"
            "#,
        )
        .expect("valid");
        assert_eq!(config.store_type, "redis");
        assert_eq!(config.cookie.same_site, SameSite::Strict);
        assert_eq!(config.adapter_options()["url"], "redis://127.0.0.1:6379");
        let err = SessionConfig::from_toml_str("timeout = [").expect_err("syntax");
        assert_eq!(err.kind(), ErrorKind::Config);
        let err = SessionConfig::from_toml_str("[cookie]\nhttp_only = 1").expect_err("type");
        assert!(err.to_string().contains("cookie.http_only"), "{err}");
    }
}
