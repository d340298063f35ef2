//! The layout of a session file: two slots, written in turn, so that a write replaces the
//! older version in place and never the one readers may be reading.
//!
//! ```text
//! slot 0    bytes [0, S)
//! slot 1    bytes [S, 2S)     S, the slot size: a power of two pages of 4096 bytes
//!
//! each slot:
//! magic     4 bytes   "SFSL"
//! version   1 byte    1
//! reserved  3 bytes   0
//! sequence  8 bytes   u64 little-endian: the write that filled the slot
//! length    4 bytes   u32 little-endian: the bytes of the record
//! digest   32 bytes   SHA-256 of the 20 bytes above and the record
//! record    `length` bytes, in `session_core::wire`'s layout
//! (the rest of the slot is unused)
//! ```
//!
//! The current version is the intact slot (its digest matches) with the higher sequence.
//! A write, under the session's stripe lock, puts the next version (sequence + 1) in the
//! other slot and, with fsync on, `fdatasync`s it: an overwrite of blocks the file already
//! has, with no new inode, no rename and no folder to sync. A reader that races the write
//! finds the slot being written torn (its digest does not match) and reads the current
//! one; a crash mid-write leaves the same torn slot and the previous version intact.
//! The slots sit on separate pages, so even a disk that tears the page being written
//! cannot damage the acknowledged version in the other one.
//!
//! A record that outgrows its slot (or shrinks to a quarter of it) is written as a new
//! file of the right size, atomically (a temporary file renamed over the old one), as is
//! the first version of a file in the older layout.
//!
//! **The older layout** (before the slots): the record alone, starting with
//! [`wire::MAGIC`]. Such files are read as they are, and each is rewritten in this
//! layout by its next write, so a folder written by an earlier version needs no migration.

use session_core::{Error, Result, wire};
use sha2::{Digest as _, Sha256};

/// The unit of slot sizes: a page, and the block of most file systems.
pub(crate) const PAGE: usize = 4096;
/// The first bytes of every slot written.
const MAGIC: &[u8; 4] = b"SFSL";
/// The version of the slot layout.
const VERSION: u8 = 1;
/// Magic, version, reserved bytes, sequence and length: what the digest covers before the
/// record.
const PREFIX_LEN: usize = 4 + 1 + 3 + 8 + 4;
/// The bytes of a slot before its record.
const SLOT_HEADER_LEN: usize = PREFIX_LEN + 32;

/// What a session file holds: the current record and where the next version goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Contents<'a> {
    /// The current record, in [`wire`]'s layout.
    pub(crate) record: &'a [u8],
    /// Where the next version goes.
    pub(crate) next: Next,
}

/// Where the next version of a session file goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Into slot `slot` (0 or 1) of `slot_len` bytes, with `sequence`, if it fits.
    InPlace {
        /// The slot that does not hold the current version.
        slot: usize,
        /// The size of each slot.
        slot_len: usize,
        /// The sequence the next version carries.
        sequence: u64,
    },
    /// A whole new file (the older layout, or a sequence that cannot grow), with
    /// `sequence`.
    NewFile {
        /// The sequence the next version carries.
        sequence: u64,
    },
}

impl Next {
    /// Where the next version of a file that does not exist (or is replaced whole) goes.
    pub(crate) const FIRST: Self = Self::NewFile { sequence: 1 };

    /// The slot offset and bytes to write in place for `record`, or `None` if it needs a
    /// new file: it does not fit in its slot, or would fit in a quarter of one.
    pub(crate) fn in_place(self, record: &[u8]) -> Option<(u64, Vec<u8>)> {
        let Self::InPlace {
            slot,
            slot_len,
            sequence,
        } = self
        else {
            return None;
        };
        let fits = SLOT_HEADER_LEN + record.len() <= slot_len;
        if !fits || slot_len >= 4 * slot_len_for(record.len()) {
            return None;
        }
        let offset = u64::try_from(slot * slot_len).ok()?;
        Some((offset, encode_slot(sequence, record)))
    }

    /// A whole new file holding `record`, as the next version.
    pub(crate) fn new_file(self, record: &[u8]) -> Vec<u8> {
        let sequence = match self {
            Self::InPlace { sequence, .. } | Self::NewFile { sequence } => sequence,
        };
        let slot_len = slot_len_for(record.len());
        let mut file = encode_slot(sequence, record);
        // Both slots are allocated now, so that later writes only overwrite blocks.
        file.resize(2 * slot_len, 0);
        file
    }
}

/// Parses a session file.
///
/// # Errors
/// [`session_core::ErrorKind::Decode`] for a file in neither layout, or with no intact slot.
pub(crate) fn parse(bytes: &[u8]) -> Result<Contents<'_>> {
    if bytes.starts_with(wire::MAGIC) {
        return Ok(Contents {
            record: bytes,
            next: Next::FIRST,
        });
    }
    if bytes.len() < 2 * PAGE || !bytes.len().is_multiple_of(2 * PAGE) {
        return Err(Error::decode(format!(
            "not a session file ({} bytes, not two whole slots)",
            bytes.len()
        )));
    }
    let slot_len = bytes.len() / 2;
    let (first, second) = bytes.split_at(slot_len);
    let current = [first, second]
        .into_iter()
        .enumerate()
        .filter_map(|(slot, bytes)| decode_slot(bytes).map(|(seq, record)| (slot, seq, record)))
        .max_by_key(|&(_, sequence, _)| sequence);
    let Some((slot, sequence, record)) = current else {
        return Err(Error::decode("no intact slot in the session file"));
    };
    let next = match sequence.checked_add(1) {
        Some(sequence) => Next::InPlace {
            slot: 1 - slot,
            slot_len,
            sequence,
        },
        // A sequence that cannot grow (only a forged file has one): starts over.
        None => Next::FIRST,
    };
    Ok(Contents { record, next })
}

/// The sequence and record of an intact slot.
fn decode_slot(slot: &[u8]) -> Option<(u64, &[u8])> {
    let header = slot.get(..SLOT_HEADER_LEN)?;
    if &header[..4] != MAGIC || header[4] != VERSION {
        return None;
    }
    let sequence = u64::from_le_bytes(header[8..16].try_into().ok()?);
    let len = usize::try_from(u32::from_le_bytes(header[16..20].try_into().ok()?)).ok()?;
    let record = slot.get(SLOT_HEADER_LEN..SLOT_HEADER_LEN.checked_add(len)?)?;
    (digest(&header[..PREFIX_LEN], record)[..] == header[PREFIX_LEN..])
        .then_some((sequence, record))
}

/// A slot's header and record (without the unused rest).
fn encode_slot(sequence: u64, record: &[u8]) -> Vec<u8> {
    let mut slot = Vec::with_capacity(SLOT_HEADER_LEN + record.len());
    slot.extend_from_slice(MAGIC);
    slot.extend_from_slice(&[VERSION, 0, 0, 0]);
    slot.extend_from_slice(&sequence.to_le_bytes());
    // Records are bounded far below 4 GiB by `max_value_size`; one that is not would fail
    // its digest check on reading, never be read wrong.
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    slot.extend_from_slice(&len.to_le_bytes());
    let digest = digest(&slot, record);
    slot.extend_from_slice(&digest);
    slot.extend_from_slice(record);
    slot
}

fn digest(prefix: &[u8], record: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(prefix)
        .chain_update(record)
        .finalize()
        .into()
}

/// The slot size for a record of `len` bytes: the fewest pages that hold it, rounded up to
/// a power of two so that a growing record changes size rarely.
fn slot_len_for(len: usize) -> usize {
    (SLOT_HEADER_LEN + len).div_ceil(PAGE).next_power_of_two() * PAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: usize) -> Vec<u8> {
        let mut bytes = wire::MAGIC.to_vec();
        bytes.resize(len, 7);
        bytes
    }

    /// Applies the next write of `record` to `file` as the store does: in place if it can.
    fn write(file: &mut Vec<u8>, record: &[u8]) {
        let next = parse(file).expect("parse").next;
        match next.in_place(record) {
            Some((offset, bytes)) => {
                let offset = usize::try_from(offset).expect("offset");
                file[offset..offset + bytes.len()].copy_from_slice(&bytes);
            }
            None => *file = next.new_file(record),
        }
    }

    #[test]
    fn writes_alternate_between_the_slots_and_the_latest_is_read() {
        let mut file = Next::FIRST.new_file(b"one");
        assert_eq!(file.len(), 2 * PAGE);
        assert_eq!(parse(&file).expect("parse").record, b"one");
        let mut slots = Vec::new();
        for (i, text) in ["two", "three", "four"].into_iter().enumerate() {
            let Next::InPlace { slot, sequence, .. } = parse(&file).expect("parse").next else {
                panic!("in place");
            };
            assert_eq!(sequence, i as u64 + 2);
            slots.push(slot);
            write(&mut file, text.as_bytes());
            assert_eq!(parse(&file).expect("parse").record, text.as_bytes());
            assert_eq!(file.len(), 2 * PAGE, "no new file");
        }
        assert_eq!(slots, [1, 0, 1]);
    }

    #[test]
    fn a_torn_slot_leaves_the_previous_version() {
        let mut file = Next::FIRST.new_file(b"old");
        let (offset, bytes) = parse(&file)
            .expect("parse")
            .next
            .in_place(b"new")
            .expect("fits");
        let offset = usize::try_from(offset).expect("offset");
        // Every prefix of the write: what a crash or a racing reader can see.
        for torn in 0..bytes.len() {
            let mut copy = file.clone();
            copy[offset..offset + torn].copy_from_slice(&bytes[..torn]);
            assert_eq!(parse(&copy).expect("parse").record, b"old", "{torn} bytes");
        }
        file[offset..offset + bytes.len()].copy_from_slice(&bytes);
        // A flipped bit in the new version's record: its digest fails.
        let mut flipped = file.clone();
        *flipped
            .get_mut(offset + SLOT_HEADER_LEN)
            .expect("record byte") ^= 1;
        assert_eq!(parse(&flipped).expect("parse").record, b"old");
        assert_eq!(parse(&file).expect("parse").record, b"new");
    }

    #[test]
    fn records_that_outgrow_or_shrink_far_below_their_slot_get_a_new_file() {
        let mut file = Next::FIRST.new_file(&record(10));
        write(&mut file, &record(PAGE));
        assert_eq!(file.len(), 4 * PAGE, "two pages per slot");
        assert_eq!(parse(&file).expect("parse").record, record(PAGE));
        write(&mut file, &record(3 * PAGE));
        assert_eq!(file.len(), 8 * PAGE, "four pages per slot");
        write(&mut file, &record(2 * PAGE));
        assert_eq!(
            file.len(),
            8 * PAGE,
            "kept: more than a quarter of the slot"
        );
        write(&mut file, &record(10));
        assert_eq!(file.len(), 2 * PAGE, "shrunk");
        assert_eq!(parse(&file).expect("parse").record, record(10));
        let Next::InPlace { sequence, .. } = parse(&file).expect("parse").next else {
            panic!("in place");
        };
        assert_eq!(sequence, 6, "the sequence carries over to new files");
    }

    #[test]
    fn files_in_the_older_layout_are_read_and_replaced_whole() {
        let legacy = record(30);
        let contents = parse(&legacy).expect("parse");
        assert_eq!(contents.record, &legacy[..]);
        assert_eq!(contents.next.in_place(b"x"), None);
        assert_eq!(contents.next, Next::FIRST);
    }

    #[test]
    fn files_in_neither_layout_or_with_no_intact_slot_are_decode_errors() {
        let intact = Next::FIRST.new_file(b"x");
        let mut both_torn = intact.clone();
        both_torn[SLOT_HEADER_LEN] ^= 1;
        let mut bad_version = intact.clone();
        bad_version[4] = 9;
        let mut long_length = intact.clone();
        long_length[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        for (what, bytes) in [
            ("empty", Vec::new()),
            ("one page", intact[..PAGE].to_vec()),
            ("three pages", [intact.clone(), vec![0; PAGE]].concat()),
            ("zeros", vec![0; 2 * PAGE]),
            ("both slots torn", both_torn),
            ("unknown version", bad_version),
            ("length past the slot", long_length),
        ] {
            assert!(parse(&bytes).is_err(), "{what}");
        }
    }

    #[test]
    fn a_sequence_that_cannot_grow_starts_over_in_a_new_file() {
        let mut file = Next::NewFile { sequence: u64::MAX }.new_file(b"x");
        assert_eq!(parse(&file).expect("parse").next, Next::FIRST);
        write(&mut file, b"y");
        assert_eq!(parse(&file).expect("parse").record, b"y");
    }
}
