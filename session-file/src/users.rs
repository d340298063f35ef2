//! The user index: one file per user listing the store keys of the sessions bound to them.
//!
//! Layout, under the session folder:
//!
//! ```text
//! users/<shard digits>/<SHA-256 of the user id, 64 hex digits>
//! ```
//!
//! sharded by the first hex digits of the file name like the session files
//! (`path_depth`). The user id itself never becomes a path: it can be any text. A file
//! holds one header line and then one store key per line:
//!
//! ```text
//! session-file user index 1
//! 3f5c…(64 hex digits)
//! …
//! ```
//!
//! The session files stay the truth: each carries its owner, and a listing checks every
//! entry against its session file, so an entry that went stale (a crash between the two
//! writes, a session removed as corrupt) is never listed, and is pruned on the spot.
//!
//! Locking keeps one invariant: **a live session file bound to a user is in that user's
//! index.** Index files have their own 256 lock stripes (by the file name's first byte),
//! always taken after the session's stripe and never two at once, so no two operations
//! can wait for each other in a cycle:
//!
//! - Binding holds the user's lock across both writes, the index first: the entry exists
//!   before the session file names the user, and a pruner (which holds the same lock) sees
//!   either neither or both.
//! - Unbinding (delete, rebinding, gc) changes the session file first, then prunes: under
//!   the user's lock it removes an entry only if the session file, read again, is no longer
//!   live and bound to that user. A crash in between leaves a stale entry, never a missing
//!   one.
//!
//! An index file that cannot be parsed (bad header) is rebuilt, under its lock, from a scan
//! of the session files, with a warning: slow, but it loses no entry. A line that is not a
//! store key is ignored and dropped at the next rewrite.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use session_core::{Error, ErrorKind, IndexedSession, Result, StoreKey, Timestamp, UserId};
use sha2::{Digest as _, Sha256};

use crate::{Inner, LockSet, dir_entries, io_error, temp_file_key};

/// The folder of index files, inside the session folder.
pub(crate) const USER_DIR: &str = "users";
/// The first line of every index file.
const HEADER: &[u8] = b"session-file user index 1\n";

/// The name of a user's index file: the SHA-256 of the user id, as 64 hex digits (a
/// [`StoreKey`] gives the hex and the digest for free).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexName(StoreKey);

impl IndexName {
    pub(crate) fn of(user: &UserId) -> Self {
        Self(StoreKey::from_digest(
            Sha256::digest(user.as_str().as_bytes()).into(),
        ))
    }

    fn as_str(&self) -> &str {
        self.0.as_str()
    }

    fn short(&self) -> &str {
        self.0.short()
    }

    /// The lock stripe of the file.
    fn stripe(&self) -> u8 {
        self.0.digest()[0]
    }
}

/// The entries of one index file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Entries {
    /// The store keys, each once, in file order.
    keys: Vec<StoreKey>,
    /// Lines that were not store keys (or repeated one): dropped at the next rewrite.
    ignored: usize,
}

impl Entries {
    fn parse(bytes: &[u8]) -> Result<Self> {
        let Some(body) = bytes.strip_prefix(HEADER) else {
            return Err(Error::decode("not a user index file (bad header)"));
        };
        let mut seen = HashSet::new();
        let mut entries = Self::default();
        for line in body.split(|&byte| byte == b'\n') {
            if line.is_empty() {
                continue;
            }
            match std::str::from_utf8(line).map(StoreKey::parse) {
                Ok(Ok(key)) if seen.insert(key.clone()) => entries.keys.push(key),
                _ => entries.ignored += 1,
            }
        }
        Ok(entries)
    }

    fn encode(keys: &[StoreKey]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER.len() + keys.len() * (StoreKey::HEX_LEN + 1));
        out.extend_from_slice(HEADER);
        for key in keys {
            out.extend_from_slice(key.as_str().as_bytes());
            out.push(b'\n');
        }
        out
    }
}

impl Inner {
    fn index_dir(&self, name: &IndexName) -> PathBuf {
        let mut dir = self.root.join(USER_DIR);
        for digit in name.as_str().chars().take(self.depth) {
            dir.push(digit.to_string());
        }
        dir
    }

    pub(crate) fn index_path(&self, name: &IndexName) -> PathBuf {
        self.index_dir(name).join(name.as_str())
    }

    /// Runs `operation` holding the lock of the user's index file.
    fn user_locked<T>(&self, name: &IndexName, operation: impl FnOnce() -> Result<T>) -> Result<T> {
        self.stripe_locked(LockSet::Users, name.stripe(), operation)
    }

    /// The entries of the user's index file: none if there is no file, a decode error if it
    /// is not an index file. Takes no lock: the file is only ever replaced by a rename.
    fn read_index(&self, name: &IndexName) -> Result<Entries> {
        let path = self.index_path(name);
        match fs::read(&path) {
            Ok(bytes) => Entries::parse(&bytes).map_err(|err| {
                Error::decode(format!(
                    "user index file {}…: {}",
                    name.short(),
                    err.message()
                ))
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Entries::default()),
            Err(err) => Err(io_error(
                format!("cannot read user index file {}…", name.short()),
                err,
            )),
        }
    }

    /// Like [`Inner::read_index`], for a caller holding the user's lock: an index file that
    /// cannot be parsed is rebuilt from the session files first.
    fn read_index_locked(&self, user: &UserId, name: &IndexName) -> Result<Entries> {
        match self.read_index(name) {
            Err(err) if err.kind() == ErrorKind::Decode => {
                tracing::warn!(
                    index = name.short(),
                    error = %format_args!("{err:#}"),
                    "corrupt user index file; rebuilding it from the session files"
                );
                let keys = self.scan_bound(user)?;
                self.write_index(name, &keys)?;
                Ok(Entries { keys, ignored: 0 })
            }
            other => other,
        }
    }

    /// Replaces the user's index file with `keys`, removing it when there are none.
    fn write_index(&self, name: &IndexName, keys: &[StoreKey]) -> Result<()> {
        if keys.is_empty() {
            self.remove(&self.index_path(name))?;
            return Ok(());
        }
        let what = format!("user index file {}…", name.short());
        self.replace_file(
            &self.index_dir(name),
            name.as_str(),
            &Entries::encode(keys),
            &what,
        )
    }

    /// Runs `write` (the write of the session file at `key` bound to `user`) holding the
    /// user's lock, after making sure the index lists `key`.
    ///
    /// The file is not parsed line by line here: a bind looks for the key's line and copies
    /// the bytes with one line added, so a log-in costs a copy of the index, not a parse of
    /// every key in it. Lines a parse would ignore are kept until the next prune.
    pub(crate) fn bind_and_write(
        &self,
        user: &UserId,
        key: &StoreKey,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let name = IndexName::of(user);
        self.user_locked(&name, || {
            let path = self.index_path(&name);
            let mut bytes = match fs::read(&path) {
                Ok(bytes) if bytes.starts_with(HEADER) => bytes,
                // Not an index file: rebuilt from the session files, then added to.
                Ok(_) => Entries::encode(&self.read_index_locked(user, &name)?.keys),
                Err(err) if err.kind() == io::ErrorKind::NotFound => HEADER.to_vec(),
                Err(err) => {
                    return Err(io_error(
                        format!("cannot read user index file {}…", name.short()),
                        err,
                    ));
                }
            };
            if !lists(&bytes, key) {
                if bytes.last() != Some(&b'\n') {
                    bytes.push(b'\n');
                }
                bytes.extend_from_slice(key.as_str().as_bytes());
                bytes.push(b'\n');
                let what = format!("user index file {}…", name.short());
                self.replace_file(&self.index_dir(&name), name.as_str(), &bytes, &what)?;
            }
            write()
        })
    }

    /// The live session at `key` if its file binds it to `user`, as an index entry. A
    /// missing or corrupt session file is no session; other read failures are errors.
    fn bound_session(
        &self,
        user: &UserId,
        key: &StoreKey,
        now: Timestamp,
    ) -> Result<Option<IndexedSession>> {
        let record = match self.read(key) {
            Ok(record) => record,
            Err(err) if err.kind() == ErrorKind::Decode => None,
            Err(err) => return Err(err),
        };
        Ok(record
            .filter(|record| !record.is_expired(now))
            .and_then(|record| {
                let owner = record.owner.filter(|owner| &owner.user == user)?;
                Some(IndexedSession {
                    key: key.clone(),
                    created_at: record.created_at,
                    expires_at: record.expires_at,
                    label: owner.label,
                })
            }))
    }

    /// The live sessions bound to `user`, pruning the entries that went stale.
    pub(crate) fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let name = IndexName::of(user);
        let now = Timestamp::now();
        let entries = match self.read_index(&name) {
            Ok(entries) => entries,
            // Rebuilt under the lock (unless a writer has replaced it meanwhile).
            Err(err) if err.kind() == ErrorKind::Decode => {
                self.user_locked(&name, || self.read_index_locked(user, &name))?
            }
            Err(err) => return Err(err),
        };
        let mut sessions = Vec::with_capacity(entries.keys.len());
        let mut stale = Vec::new();
        for key in entries.keys {
            match self.bound_session(user, &key, now)? {
                Some(session) => sessions.push(session),
                None => stale.push(key),
            }
        }
        if !stale.is_empty() || entries.ignored > 0 {
            self.prune_quietly(user, &stale);
        }
        Ok(sessions)
    }

    /// How many entries the user's index file holds, stale ones included.
    pub(crate) fn index_len(&self, user: &UserId) -> Result<u64> {
        let entries = self.read_index(&IndexName::of(user))?;
        Ok(u64::try_from(entries.keys.len()).unwrap_or(u64::MAX))
    }

    /// Removes the entries among `candidates` whose session file, read again under the
    /// user's lock, is no longer live and bound to `user`; rewrites the file only if that
    /// removes something (or drops ignored lines).
    pub(crate) fn prune(&self, user: &UserId, candidates: &[StoreKey]) -> Result<()> {
        let name = IndexName::of(user);
        self.user_locked(&name, || {
            let entries = self.read_index_locked(user, &name)?;
            let candidates: HashSet<&StoreKey> = candidates.iter().collect();
            let now = Timestamp::now();
            let mut kept = Vec::with_capacity(entries.keys.len());
            let mut removed = 0usize;
            for key in entries.keys {
                if candidates.contains(&key) && self.bound_session(user, &key, now)?.is_none() {
                    removed += 1;
                } else {
                    kept.push(key);
                }
            }
            if removed > 0 || entries.ignored > 0 {
                self.write_index(&name, &kept)?;
            }
            Ok(())
        })
    }

    /// [`Inner::prune`] after the sessions were removed or rebound: a failure leaves stale
    /// entries, which the next listing prunes, so it is a warning, not the caller's error.
    pub(crate) fn prune_quietly(&self, user: &UserId, candidates: &[StoreKey]) {
        if let Err(err) = self.prune(user, candidates) {
            tracing::warn!(
                error = %format_args!("{err:#}"),
                "cannot prune a user index file; the next listing retries"
            );
        }
    }

    /// Prunes, user by user, the entries of sessions that were removed or rebound.
    pub(crate) fn prune_all(&self, unbound: HashMap<UserId, Vec<StoreKey>>) {
        for (user, keys) in unbound {
            self.prune_quietly(&user, &keys);
        }
    }

    /// Every live session bound to `user`, found by reading every session file: the
    /// rebuild of a corrupt index file.
    fn scan_bound(&self, user: &UserId) -> Result<Vec<StoreKey>> {
        let now = Timestamp::now();
        let mut keys = Vec::new();
        self.walk(&self.root, 0, &mut |dir| {
            for entry in dir_entries(dir)? {
                let entry = entry?;
                let Some(key) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| StoreKey::parse(n).ok())
                else {
                    continue;
                };
                if self.bound_session(user, &key, now)?.is_some() {
                    keys.push(key);
                }
            }
            Ok(())
        })?;
        Ok(keys)
    }

    /// Removes the temporary index files a crash left in `dir` (a folder of index files).
    /// They are not sessions, so gc does not count them.
    pub(crate) fn gc_index_dir(&self, dir: &Path) -> Result<()> {
        for entry in dir_entries(dir)? {
            let entry = entry?;
            let Some(hash) = entry.file_name().to_str().and_then(temp_file_key) else {
                continue;
            };
            // Written only under their lock: holding it, no writer is using one.
            self.user_locked(&IndexName(hash), || self.remove(&entry.path()))?;
        }
        Ok(())
    }
}

/// Whether the index file `bytes` has a line holding exactly `key`.
fn lists(bytes: &[u8], key: &StoreKey) -> bool {
    let key = key.as_str().as_bytes();
    bytes.split(|&byte| byte == b'\n').any(|line| line == key)
}

/// The owner a session file names, if it decodes; what unbinding needs to know.
pub(crate) fn owner_of(bytes: &[u8]) -> Option<UserId> {
    crate::decode_session_file(bytes)
        .ok()
        .and_then(|record| record.owner)
        .map(|owner| owner.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> StoreKey {
        StoreKey::from_digest([byte; 32])
    }

    #[test]
    fn entries_round_trip() {
        let keys = vec![key(1), key(2), key(3)];
        let parsed = Entries::parse(&Entries::encode(&keys)).expect("parse");
        assert_eq!(parsed, Entries { keys, ignored: 0 });
        assert_eq!(
            Entries::parse(&Entries::encode(&[])).expect("parse"),
            Entries::default()
        );
    }

    #[test]
    fn hostile_lines_are_ignored_and_bad_headers_refused() {
        let mut bytes = Entries::encode(&[key(1), key(2)]);
        bytes.extend_from_slice(b"../../etc/passwd\n");
        bytes.extend_from_slice(key(1).as_str().as_bytes());
        bytes.extend_from_slice(b"\n\xff\xfe\n");
        bytes.extend_from_slice(key(2).as_str().to_uppercase().as_bytes());
        bytes.extend_from_slice(b"\n\n");
        bytes.extend_from_slice(&key(3).as_str().as_bytes()[..10]);
        let parsed = Entries::parse(&bytes).expect("parse");
        assert_eq!(parsed.keys, vec![key(1), key(2)]);
        assert_eq!(
            parsed.ignored, 5,
            "path, repeat, non-UTF-8, uppercase, torn"
        );

        for bad in [
            &b""[..],
            b"session-file user index 2\n",
            b"session-file user index 1",
            b"SREC",
            &[0u8; 64],
        ] {
            assert_eq!(
                Entries::parse(bad).expect_err("bad header").kind(),
                ErrorKind::Decode
            );
        }
    }

    #[test]
    fn finds_whole_lines_only() {
        let mut bytes = Entries::encode(&[key(1), key(2)]);
        assert!(lists(&bytes, &key(1)) && lists(&bytes, &key(2)));
        assert!(!lists(&bytes, &key(3)));
        bytes.extend_from_slice(format!("x{}\n{}", key(3).as_str(), key(4).as_str()).as_bytes());
        assert!(!lists(&bytes, &key(3)), "part of a line");
        assert!(lists(&bytes, &key(4)), "a last line without its newline");
    }

    #[test]
    fn index_names_hash_the_user_id() {
        let ada = UserId::new("ada@example.org").expect("user");
        let name = IndexName::of(&ada);
        assert_eq!(name.as_str().len(), 64);
        assert!(!name.as_str().contains("ada"));
        assert_eq!(name, IndexName::of(&ada));
        assert_ne!(name, IndexName::of(&UserId::new("bob").expect("user")));
        let hostile = UserId::new("../../etc/passwd").expect("user");
        assert!(
            IndexName::of(&hostile)
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        );
    }
}
