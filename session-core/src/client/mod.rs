//! Client-side sessions: the whole session travels in its token, and no store is called.
//!
//! - `type = "cookie"` (feature `cookie-session`): the record encrypted and
//!   authenticated with XChaCha20-Poly1305 under keys derived from `secret`.
//! - `type = "jwt"` (feature `jwt-session`): the data as the claims of an HS256
//!   JSON Web Token signed with `secret`, as ThinkJS 3's `think-session-jwt` writes it.
//!
//! Both keep the expiry (and the creation time, for `absolute_timeout`) inside what the
//! key authenticates, and the manager enforces both whatever the client sends. What they
//! cannot do, by their nature: end a session from the server before it expires (a copy
//! of an old token stays valid until then; `clear()` only replaces the client's copy),
//! list a user's sessions, or lock one.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Capabilities, ChangeSet, Error, ErrorKind, Record, Result, SessionConfig, SessionStore,
    StoreKey, Timestamp,
};

#[cfg(feature = "jwt-session")]
pub(crate) mod jwt;
#[cfg(feature = "cookie-session")]
pub(crate) mod sealed;

/// The store type of sessions kept whole in an encrypted cookie.
pub const COOKIE_TYPE: &str = "cookie";

/// The store type of sessions kept whole in a signed JSON Web Token.
pub const JWT_TYPE: &str = "jwt";

/// The longest token a client-side session may send back in a header of its own: larger
/// headers are refused by common servers and proxies (8 KiB is nginx's default).
pub const MAX_HEADER_TOKEN_LEN: usize = 8 * 1024;

/// The longest `Set-Cookie` a client-side session may send: browsers drop larger cookies
/// without a word (RFC 6265 asks them to keep at least 4,096 bytes of name, value and
/// attributes, and most keep no more).
pub const MAX_COOKIE_LEN: usize = 4096;

/// The store of a manager whose sessions live in their tokens: it holds nothing, and
/// every call but `gc` fails with [`ErrorKind::Unsupported`] naming `store_type`. What
/// [`SessionManager::client_side`](crate::SessionManager::client_side) uses; a test that
/// counts store calls can wrap it.
pub fn store(store_type: &str) -> Arc<dyn SessionStore> {
    Arc::new(NoStore::new(store_type))
}

/// How the session of a client-side type is written into, and read from, its token.
pub(crate) enum ClientFormat {
    /// `type = "cookie"`.
    #[cfg(feature = "cookie-session")]
    Sealed(sealed::Sealed),
    /// `type = "jwt"`: boxed, its keys and validation rules are large.
    #[cfg(feature = "jwt-session")]
    Jwt(Box<jwt::Jwt>),
}

// Without either feature the enum has no variant, and its methods use no argument.
#[cfg_attr(
    not(any(feature = "cookie-session", feature = "jwt-session")),
    allow(unused_variables)
)]
impl ClientFormat {
    /// The format of `config`'s client-side type, `None` for a server-side store type.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a client-side type whose feature is off, or without the
    /// secrets its keys come from.
    pub(crate) fn for_config(config: &SessionConfig) -> Result<Option<Self>> {
        match config.store_type.as_str() {
            COOKIE_TYPE => {
                #[cfg(feature = "cookie-session")]
                return sealed::Sealed::new(config).map(|f| Some(Self::Sealed(f)));
                #[cfg(not(feature = "cookie-session"))]
                return Err(Error::config(
                    "type",
                    "\"cookie\" needs session-core's `cookie-session` feature",
                ));
            }
            JWT_TYPE => {
                #[cfg(feature = "jwt-session")]
                return jwt::Jwt::new(config).map(|f| Some(Self::Jwt(Box::new(f))));
                #[cfg(not(feature = "jwt-session"))]
                return Err(Error::config(
                    "type",
                    "\"jwt\" needs session-core's `jwt-session` feature",
                ));
            }
            _ => Ok(None),
        }
    }

    /// The record `token` carries, if it is one this application issued under one of its
    /// keys; `None` (logged at debug level, without the token) for anything else.
    pub(crate) fn open(&self, token: &str) -> Option<Record> {
        match *self {
            #[cfg(feature = "cookie-session")]
            Self::Sealed(ref format) => format.open(token),
            #[cfg(feature = "jwt-session")]
            Self::Jwt(ref format) => format.open(token),
        }
    }

    /// The token carrying `record`.
    ///
    /// # Errors
    /// [`ErrorKind::Encode`] for data the format cannot carry (a JWT claim that is not
    /// JSON, or a key that is a registered claim name).
    pub(crate) fn seal(&self, record: &Record) -> Result<String> {
        match *self {
            #[cfg(feature = "cookie-session")]
            Self::Sealed(ref format) => format.seal(record),
            #[cfg(feature = "jwt-session")]
            Self::Jwt(ref format) => format.seal(record),
        }
    }
}

// Without either feature the enum has no variant, and its methods use no argument.
#[cfg_attr(
    not(any(feature = "cookie-session", feature = "jwt-session")),
    allow(unused_variables)
)]
impl std::fmt::Debug for ClientFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            #[cfg(feature = "cookie-session")]
            Self::Sealed(ref format) => format.fmt(f),
            #[cfg(feature = "jwt-session")]
            Self::Jwt(ref format) => format.fmt(f),
        }
    }
}

/// The store of a manager whose sessions live in their tokens: it holds nothing, and
/// every call is [`ErrorKind::Unsupported`] saying so. Sessions never call it; code that
/// reaches for the store of such a manager (listing a user's sessions, say) gets a clear
/// error instead of an empty answer.
#[derive(Debug)]
pub(crate) struct NoStore {
    store_type: Arc<str>,
}

impl NoStore {
    pub(crate) fn new(store_type: &str) -> Self {
        Self {
            store_type: store_type.into(),
        }
    }

    fn refuse<T>(&self) -> Result<T> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "type = \"{}\" keeps each session in its token: there is no store to call",
                self.store_type
            ),
        ))
    }
}

#[async_trait]
impl SessionStore for NoStore {
    async fn load(&self, _: &StoreKey) -> Result<Option<Record>> {
        self.refuse()
    }
    async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> {
        self.refuse()
    }
    async fn update(&self, _: &StoreKey, _: &ChangeSet) -> Result<bool> {
        self.refuse()
    }
    async fn touch(&self, _: &StoreKey, _: Timestamp) -> Result<bool> {
        self.refuse()
    }
    async fn delete(&self, _: &StoreKey) -> Result<bool> {
        self.refuse()
    }
    async fn gc(&self) -> Result<u64> {
        Ok(0)
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_native_ttl(true)
    }
}
