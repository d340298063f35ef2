//! How session values become bytes: one value at a time, with bounded decoding.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::MAX_VALUE_SIZE_LIMIT;
use crate::{Error, ErrorKind, Result};

/// The encoding of session values.
///
/// Values are encoded one by one, so a change set names single keys and stores can update
/// single fields. Stores only ever see bytes: the codec can change without touching them.
///
/// - `bincode` (the default, feature `bincode`): compact and fast. It cannot decode
///   self-describing types such as `serde_json::Value` or `#[serde(untagged)]` enums; use
///   JSON for those.
/// - `json` (always available, and the default without the `bincode` feature): readable in
///   the store, works with any serde type.
///
/// Decoding never allocates more than [`MAX_VALUE_SIZE_LIMIT`] for one value, whatever a
/// corrupt length prefix claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Codec {
    /// bincode 2, standard configuration (varint integers).
    #[cfg(feature = "bincode")]
    #[cfg_attr(feature = "bincode", default)]
    Bincode,
    /// JSON via `serde_json`.
    #[cfg_attr(not(feature = "bincode"), default)]
    Json,
}

#[cfg(feature = "bincode")]
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_VALUE_SIZE_LIMIT>()
}

impl Codec {
    /// Encodes `value`, refusing results larger than `max_size` bytes.
    ///
    /// # Errors
    /// [`ErrorKind::Encode`] if serde refuses the value, [`ErrorKind::TooLarge`] if it is too big.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T, max_size: usize) -> Result<Vec<u8>> {
        let bytes = match self {
            #[cfg(feature = "bincode")]
            Self::Bincode => {
                bincode::serde::encode_to_vec(value, bincode_config()).map_err(|err| {
                    Error::new(ErrorKind::Encode, "bincode encoding failed").with_source(err)
                })?
            }
            Self::Json => serde_json::to_vec(value).map_err(|err| {
                Error::new(ErrorKind::Encode, "JSON encoding failed").with_source(err)
            })?,
        };
        if bytes.len() > max_size {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "an encoded session value is {} bytes; the limit (`max_value_size`) is {max_size}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// Decodes one value; the whole input must be consumed.
    ///
    /// # Errors
    /// [`ErrorKind::Decode`] for corrupt bytes, trailing bytes, or bytes of another type.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T> {
        if bytes.len() > MAX_VALUE_SIZE_LIMIT {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "a stored value exceeds the size limit",
            ));
        }
        match self {
            #[cfg(feature = "bincode")]
            Self::Bincode => {
                let (value, read) = bincode::serde::decode_from_slice(bytes, bincode_config())
                    .map_err(|err| Error::decode("bincode decoding failed").with_source(err))?;
                if read != bytes.len() {
                    return Err(Error::decode(format!(
                        "bincode value has {} trailing bytes",
                        bytes.len() - read
                    )));
                }
                Ok(value)
            }
            Self::Json => serde_json::from_slice(bytes)
                .map_err(|err| Error::decode("JSON decoding failed").with_source(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        id: u64,
        name: String,
        roles: Vec<String>,
        extra: BTreeMap<String, Option<i32>>,
    }

    fn codecs() -> Vec<Codec> {
        vec![
            #[cfg(feature = "bincode")]
            Codec::Bincode,
            Codec::Json,
        ]
    }

    #[test]
    fn round_trips_typed_values() {
        let user = User {
            id: 7,
            name: "Zoë 🦀".into(),
            roles: vec!["admin".into()],
            extra: BTreeMap::from([("a".into(), Some(-1)), ("b".into(), None)]),
        };
        for codec in codecs() {
            let bytes = codec.encode(&user, 1 << 20).expect("encode");
            assert_eq!(codec.decode::<User>(&bytes).expect("decode"), user);
        }
    }

    #[test]
    fn refuses_oversize_values() {
        for codec in codecs() {
            let err = codec.encode(&"x".repeat(100), 50).expect_err("too big");
            assert_eq!(err.kind(), ErrorKind::TooLarge);
        }
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn corrupt_length_prefix_does_not_allocate_gigabytes() {
        // Varint marker 0xFD announces a u64 length; u64::MAX would be 16 EiB.
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        let err = Codec::Bincode
            .decode::<String>(&bytes)
            .expect_err("corrupt");
        assert_eq!(err.kind(), ErrorKind::Decode);
        let err = Codec::Bincode
            .decode::<Vec<u64>>(&bytes)
            .expect_err("corrupt");
        assert_eq!(err.kind(), ErrorKind::Decode);
    }

    #[test]
    fn rejects_garbage_and_trailing_bytes() {
        for codec in codecs() {
            let mut bytes = codec.encode(&42u32, 1024).expect("encode");
            bytes.extend_from_slice(b"\xff\xff");
            assert_eq!(
                codec.decode::<u32>(&bytes).expect_err("trailing").kind(),
                ErrorKind::Decode
            );
            assert!(codec.decode::<User>(b"\x00\x01\x02").is_err());
        }
    }
}
