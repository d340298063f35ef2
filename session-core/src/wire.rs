//! A versioned binary layout for a whole [`Record`], for stores that keep a session as one
//! blob (a file, a SQL `data` column).
//!
//! ```text
//! magic   4 bytes  "SREC"
//! version 1 byte   1 for an unbound record, 2 for one bound to a user
//! expires 8 bytes  i64 little-endian, ms since the Unix epoch
//! created 8 bytes  i64 little-endian, ms since the Unix epoch
//! count   4 bytes  u32 little-endian
//! count × (key length u32 LE, key UTF-8 bytes, value length u32 LE, value bytes)
//! version 2 only: the owner
//! owner   1 byte   0 (unbound) or 1, then if 1:
//!         user length u32 LE, user UTF-8 bytes, label length u32 LE, label UTF-8 bytes
//! ```
//!
//! An unbound record is written in layout 1, byte for byte what earlier versions wrote and
//! read: while old and new processes share a store (a rolling upgrade), only sessions bound
//! to a user are unreadable to the old ones.
//!
//! Decoding checks every length against the bytes actually present before allocating, so
//! a corrupt or hostile blob costs at most its own size, and is a
//! [`ErrorKind::Decode`](crate::ErrorKind::Decode) error, never a panic.

use crate::{Data, Error, Owner, Record, Result, Timestamp, UserId};

/// The first bytes of every encoded record.
pub const MAGIC: &[u8; 4] = b"SREC";
/// The layout version of a record bound to a user.
pub const VERSION: u8 = 2;
/// The layout of an unbound record: no owner part.
const VERSION_1: u8 = 1;
/// Bytes before the entries: magic, version, expiry, creation, count.
pub const HEADER_LEN: usize = 4 + 1 + 8 + 8 + 4;

/// Encodes `record` (data, expiry, creation time and owner).
pub fn encode_record(record: &Record) -> Vec<u8> {
    let body: usize = record.data.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let owner = record
        .owner
        .as_ref()
        .map_or(0, |owner| 9 + owner.user.as_str().len() + owner.label.len());
    let mut out = Vec::with_capacity(HEADER_LEN + body + owner);
    out.extend_from_slice(MAGIC);
    out.push(if record.owner.is_some() {
        VERSION
    } else {
        VERSION_1
    });
    out.extend_from_slice(&record.expires_at.as_millis().to_le_bytes());
    out.extend_from_slice(&record.created_at.as_millis().to_le_bytes());
    out.extend_from_slice(&len_u32(record.data.len()).to_le_bytes());
    for (key, value) in &record.data {
        out.extend_from_slice(&len_u32(key.len()).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&len_u32(value.len()).to_le_bytes());
        out.extend_from_slice(value);
    }
    if let Some(owner) = &record.owner {
        out.push(1);
        for text in [owner.user.as_str(), &owner.label] {
            out.extend_from_slice(&len_u32(text.len()).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

/// Lengths are bounded far below 4 GiB by `max_value_size`; saturating keeps a corrupt
/// in-memory map from wrapping around (the decoder would then reject the blob).
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Decodes a whole record.
///
/// # Errors
/// [`ErrorKind::Decode`](crate::ErrorKind::Decode) for a wrong magic, an unknown version, a
/// truncated blob, a length past the end, a key that is not UTF-8, an owner that is not a
/// valid user id and label, or trailing bytes.
pub fn decode_record(bytes: &[u8]) -> Result<Record> {
    let mut reader = Reader { bytes, at: 0 };
    let (version, expires_at, created_at) = reader.header()?;
    let count = reader.u32()? as usize;
    // Each entry takes at least 8 bytes: refuse counts the input cannot hold before
    // reserving anything.
    if count > reader.remaining() / 8 {
        return Err(Error::decode("record claims more entries than it holds"));
    }
    let mut data = Data::with_capacity(count);
    for _ in 0..count {
        let key_len = reader.u32()? as usize;
        let key = std::str::from_utf8(reader.take(key_len)?)
            .map_err(|_| Error::decode("record key is not UTF-8"))?
            .to_owned();
        let value_len = reader.u32()? as usize;
        let value = reader.take(value_len)?.to_vec();
        data.insert(key, value);
    }
    let owner = if version == VERSION_1 {
        None
    } else {
        reader.owner()?
    };
    if reader.remaining() != 0 {
        return Err(Error::decode("trailing bytes after the record"));
    }
    Ok(Record {
        data,
        expires_at,
        created_at,
        revision: None,
        owner,
    })
}

/// Reads only the expiry from the header: what gc needs, without decoding the data.
///
/// # Errors
/// [`ErrorKind::Decode`](crate::ErrorKind::Decode) for a wrong magic, an unknown version or
/// a truncated header.
pub fn decode_expiry(bytes: &[u8]) -> Result<Timestamp> {
    Reader { bytes, at: 0 }
        .header()
        .map(|(_, expires_at, _)| expires_at)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(Error::decode("record truncated or length past its end"));
        }
        let slice = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64> {
        self.array().map(i64::from_le_bytes)
    }

    fn text(&mut self, what: &str) -> Result<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| Error::decode(format!("record {what} is not UTF-8")))
    }

    fn owner(&mut self) -> Result<Option<Owner>> {
        match self.array::<1>()?[0] {
            0 => Ok(None),
            1 => {
                let user = UserId::new(self.text("owner")?).map_err(|err| {
                    Error::decode("record owner is not a valid user id").with_source(err)
                })?;
                let label = self.text("label")?;
                Owner::new(user)
                    .with_label(label)
                    .map(Some)
                    .map_err(|err| Error::decode("record label is not valid").with_source(err))
            }
            flag => Err(Error::decode(format!("unknown record owner flag {flag}"))),
        }
    }

    /// The version, the expiry and the creation time.
    fn header(&mut self) -> Result<(u8, Timestamp, Timestamp)> {
        if self.take(4)? != MAGIC {
            return Err(Error::decode("not a session record (bad magic)"));
        }
        let version = self.array::<1>()?[0];
        if version != VERSION && version != VERSION_1 {
            return Err(Error::decode(format!(
                "unknown session record version {version}"
            )));
        }
        let expires_at = Timestamp::from_millis(self.i64()?);
        let created_at = Timestamp::from_millis(self.i64()?);
        Ok((version, expires_at, created_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn sample() -> Record {
        Record {
            data: Data::from([
                ("a.b".to_owned(), vec![0, 1, 2]),
                ("".to_owned(), vec![]),
                ("ключ".to_owned(), vec![255; 300]),
            ]),
            expires_at: Timestamp::from_millis(1_700_000_000_123),
            created_at: Timestamp::from_millis(-5),
            revision: None,
            owner: Some(
                Owner::new(UserId::new("ada@example.org").expect("valid"))
                    .with_label("Firefox on Linux")
                    .expect("valid"),
            ),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = encode_record(&sample());
        assert_eq!(decode_record(&bytes).expect("decode"), sample());
        assert_eq!(decode_expiry(&bytes).expect("expiry"), sample().expires_at);
        let empty = Record::default();
        assert_eq!(
            decode_record(&encode_record(&empty)).expect("decode"),
            empty
        );
    }

    #[test]
    fn unbound_records_keep_the_first_layout() {
        let mut record = sample();
        record.owner = None;
        let v1 = encode_record(&record);
        assert_eq!(v1[4], VERSION_1, "what earlier versions read");
        assert_eq!(decode_record(&v1).expect("decode"), record);
        assert_eq!(encode_record(&sample())[4], VERSION);
        // A layout-2 record that says "no owner" is read too.
        let mut v2 = v1;
        v2[4] = VERSION;
        v2.push(0);
        assert_eq!(decode_record(&v2).expect("decode"), record);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_a_valid_record() {
        let bytes = encode_record(&sample());
        for len in 0..bytes.len() {
            let err = decode_record(&bytes[..len]).expect_err("truncated");
            assert_eq!(err.kind(), ErrorKind::Decode);
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                // Flips in values or timestamps decode to a different valid record; the
                // rest must be rejected. Either way: no panic.
                let _ = decode_record(&flipped);
            }
        }
    }

    #[test]
    fn rejects_foreign_and_hostile_blobs() {
        let mut trailing = encode_record(&sample());
        trailing.push(0);
        let mut huge_count = encode_record(&Record::default());
        let count_at = HEADER_LEN - 4;
        huge_count[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut bad_owner = encode_record(&Record::default());
        bad_owner[4] = VERSION;
        bad_owner.push(2);
        let mut control_user = encode_record(&sample());
        let user_at = control_user.len() - 4 - "Firefox on Linux".len() - "ada@example.org".len();
        control_user[user_at] = b'\n';
        let mut version = encode_record(&sample());
        version[4] = 99;
        for bad in [
            b"".to_vec(),
            b"garbage that is long enough to hold a header".to_vec(),
            vec![0; 64],
            trailing,
            huge_count,
            bad_owner,
            control_user,
            version,
        ] {
            assert_eq!(
                decode_record(&bad).expect_err("bad").kind(),
                ErrorKind::Decode
            );
        }
    }
}
