//! Where the session token travels: the cookie, a header of its own, or
//! `Authorization: Bearer`, and how a request's token is found among its headers.
//!
//! The token is the same in every transport (a session id, signed when a secret is set,
//! or a whole client-side session for `type = "cookie"` and `type = "jwt"`), and so is its
//! validation: a token is read from the first configured transport the request carries
//! it in, and a response sends a new or changed token back the same way.
//!
//! The query string is not offered: URLs end up in access logs, browser history and the
//! `Referer` header of every outgoing link, and a token there is a session for whoever
//! reads them.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The name of the request header whose value is the `Bearer` token.
pub const AUTHORIZATION: &str = "authorization";

/// The name of the request header the browser sends its cookies in.
pub const COOKIE: &str = "cookie";

/// The default `token_header`: the request and response header of the
/// [`Transport::Header`] transport, and the response header of [`Transport::Bearer`].
pub const DEFAULT_TOKEN_HEADER: &str = "x-session-token";

/// One way a session token travels between a client and the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Transport {
    /// The session cookie (`name`, with the `cookie.*` attributes): what browsers use.
    #[default]
    Cookie,
    /// A header of its own (`token_header`, `x-session-token` by default), in the request
    /// and in the response: for mobile apps and API clients that keep the token
    /// themselves.
    Header,
    /// `Authorization: Bearer <token>` in the request; a new or changed token comes back
    /// in the `token_header` response header, since HTTP has no response counterpart of
    /// `Authorization`.
    Bearer,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cookie => "cookie",
            Self::Header => "header",
            Self::Bearer => "bearer",
        })
    }
}

/// The transports a configuration accepts, in order of precedence: a request's token is
/// taken from the first of them that carries one, and a request that carries none gets
/// its new token in the first.
///
/// Written as one name (`transport = "bearer"`) or a list
/// (`transport = ["cookie", "header"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transports(Vec<Transport>);

impl Transports {
    /// The transports in `list`, in order; duplicates after the first are dropped.
    pub fn new(list: impl IntoIterator<Item = Transport>) -> Self {
        let mut kept = Vec::new();
        for transport in list {
            if !kept.contains(&transport) {
                kept.push(transport);
            }
        }
        Self(kept)
    }

    /// The transports, in order of precedence.
    pub fn as_slice(&self) -> &[Transport] {
        &self.0
    }

    /// Whether `transport` is accepted.
    pub fn accepts(&self, transport: Transport) -> bool {
        self.0.contains(&transport)
    }

    /// The transport a request without a token gets its new token in: the first.
    pub fn primary(&self) -> Transport {
        self.0.first().copied().unwrap_or(Transport::Cookie)
    }
}

impl Default for Transports {
    /// The cookie alone.
    fn default() -> Self {
        Self(vec![Transport::Cookie])
    }
}

impl<'de> Deserialize<'de> for Transports {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TransportsVisitor;
        impl<'de> Visitor<'de> for TransportsVisitor {
            type Value = Transports;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""cookie", "header", "bearer", or a list of them"#)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Transports, E> {
                let transport = Transport::deserialize(de::value::StrDeserializer::new(value))?;
                Ok(Transports(vec![transport]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Transports, A::Error> {
                let mut list = Vec::new();
                while let Some(transport) = seq.next_element::<Transport>()? {
                    list.push(transport);
                }
                Ok(Transports::new(list))
            }
        }
        deserializer.deserialize_any(TransportsVisitor)
    }
}

/// The token of a `Authorization` header value of the `Bearer` scheme (RFC 6750: the
/// scheme's name in any case, one or more spaces, the token), or `None`.
pub(crate) fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || !rest.starts_with(b" ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Whether `name` is usable as `token_header`: a lowercase header name (RFC 9110's token
/// characters) that is none of the headers HTTP or this crate already give a meaning.
pub(crate) fn is_token_header_name(name: &str) -> bool {
    const TAKEN: [&str; 7] = [
        COOKIE,
        "set-cookie",
        AUTHORIZATION,
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
    ];
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
        && !TAKEN.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_taken_from_the_scheme_in_any_case() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER abc"), Some(&b"abc"[..]));
        for refused in [
            &b"Basic abc"[..],
            b"Bearerabc",
            b"Bearer",
            b"Bearer ",
            b"",
            b"Bear",
        ] {
            assert_eq!(bearer_token(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn token_header_names_are_lowercase_tokens_of_their_own() {
        assert!(is_token_header_name("x-session-token"));
        assert!(is_token_header_name("x-auth"));
        for refused in [
            "",
            "X-Session",
            "cookie",
            "authorization",
            "a b",
            "a:b",
            "é",
        ] {
            assert!(!is_token_header_name(refused), "{refused}");
        }
    }

    #[test]
    fn transports_read_one_name_or_a_list_and_keep_the_first_of_duplicates() {
        let one: Transports = serde_json::from_str(r#""bearer""#).expect("one");
        assert_eq!(one.as_slice(), [Transport::Bearer]);
        let list: Transports =
            serde_json::from_str(r#"["header", "cookie", "header"]"#).expect("list");
        assert_eq!(list.as_slice(), [Transport::Header, Transport::Cookie]);
        assert_eq!(list.primary(), Transport::Header);
        assert!(serde_json::from_str::<Transports>(r#""query""#).is_err());
        assert!(
            serde_json::from_str::<Transports>("[]")
                .expect("empty")
                .as_slice()
                .is_empty()
        );
    }
}
