//! Session locks: one small lease file per locked session, apart from the session files.
//!
//! Layout, under the session folder:
//!
//! ```text
//! leases/<shard digits>/<store key, 64 hex digits>
//! ```
//!
//! sharded like the session files (`path_depth`). A lease file is three lines of text: a
//! header, the holder's token and the instant its lease lapses (wall-clock milliseconds
//! since the Unix epoch):
//!
//! ```text
//! session-file lease 1
//! 5e0c…(32 hex digits)
//! 1767225600000
//! ```
//!
//! - **Atomic across processes.** Every lease operation holds the session's lock stripe
//!   (the same fs4/`flock` lock file and in-process mutex its session writes take) while
//!   it reads the lease file, decides and writes: two processes asking for one lock at
//!   once see each other's lease, and exactly one is granted. Lease files are replaced
//!   like session files (a temporary file renamed over it), so a lease file is read whole
//!   or not at all.
//! - **Cheap.** A lease write is never fsynced, whatever [`FileStoreOptions::fsync`]
//!   says: leases last seconds, and a lease lost to a crash of the machine is harmless,
//!   since every process that held one died with it.
//! - **Apart from records.** Locking neither needs, creates nor changes a session file,
//!   and deleting a session leaves its lease. [`unlock`](crate::SessionStore::unlock) is a
//!   compare-and-delete under the stripe lock: it removes the file only if it names the
//!   caller's token.
//! - **Lapse.** A lease whose instant has passed is free for the next `lock`, which
//!   replaces the file. A lease file that cannot be parsed (empty, torn, foreign) counts as
//!   lapsed, never as an error or a panic. gc removes lapsed lease files and stray
//!   temporary files in the `leases` folder, and counts neither: its count is sessions.
//! - **One clock.** Lapse is judged by the host's wall clock, which every process sharing
//!   the folder reads: a clock stepped forward shortens leases (the holder then finds its
//!   next renewal refused and its changes fenced off), a clock stepped back lengthens them.
//!
//! [`FileStoreOptions::fsync`]: crate::FileStoreOptions::fsync

use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use session_core::{LockToken, Result, StoreKey, Timestamp};

use crate::{GcEntry, Inner, gc_entries, io_error};

/// The folder of lease files, inside the session folder.
pub(crate) const LEASE_DIR: &str = "leases";
/// The first line of every lease file.
const HEADER: &str = "session-file lease 1\n";
/// The longest lease file read: a header, a token, an instant, with room to spare. A larger
/// file is not a lease file (and is not read whole).
const MAX_LEN: u64 = 128;

/// One lease, as its file holds it.
#[derive(Debug, PartialEq, Eq)]
struct Lease {
    token: LockToken,
    expires_at: Timestamp,
}

impl Lease {
    /// The lease in `bytes`, or `None` if they are not a whole lease file.
    fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?.strip_prefix(HEADER)?;
        let mut lines = text.split_terminator('\n');
        let token = LockToken::parse(lines.next()?).ok()?;
        let millis = lines.next()?;
        if lines.next().is_some()
            || !text.ends_with('\n')
            || millis.is_empty()
            || !millis.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self {
            token,
            expires_at: Timestamp::from_millis(millis.parse().ok()?),
        })
    }

    fn encode(&self) -> Vec<u8> {
        format!(
            "{HEADER}{}\n{}\n",
            self.token.as_str(),
            self.expires_at.as_millis()
        )
        .into_bytes()
    }

    fn is_lapsed(&self, now: Timestamp) -> bool {
        self.expires_at.is_reached(now)
    }
}

/// What a lease file holds.
enum Found {
    /// No file: the lock is free.
    Nothing,
    /// A file that is not a lease (empty, torn, foreign): the lock is free, as if lapsed.
    Corrupt,
    /// A lease, lapsed or not.
    Lease(Lease),
}

impl Found {
    /// The unexpired lease, if any.
    fn unexpired(self, now: Timestamp) -> Option<Lease> {
        match self {
            Self::Lease(lease) if !lease.is_lapsed(now) => Some(lease),
            _ => None,
        }
    }
}

impl Inner {
    fn lease_dir(&self, key: &StoreKey) -> PathBuf {
        let mut dir = self.root.join(LEASE_DIR);
        for digit in key.as_str().chars().take(self.depth) {
            dir.push(digit.to_string());
        }
        dir
    }

    /// The lease file of `key` (whether or not it exists).
    pub(crate) fn lease_path(&self, key: &StoreKey) -> PathBuf {
        self.lease_dir(key).join(key.as_str())
    }

    /// Reads the lease file of `key`. Call it holding the key's stripe lock.
    fn read_lease(&self, key: &StoreKey) -> Result<Found> {
        read_lease_file(&self.lease_path(key)).map_err(|err| {
            io_error(
                format!("cannot read the lease file of session {}…", key.short()),
                err,
            )
        })
    }

    /// Writes `lease` as the lease file of `key`, without fsync: see the module docs.
    fn write_lease(&self, key: &StoreKey, lease: &Lease) -> Result<()> {
        let what = format!("the lease file of session {}…", key.short());
        self.replace_file_with(
            &self.lease_dir(key),
            key.as_str(),
            &lease.encode(),
            &what,
            false,
        )
    }

    /// [`SessionStore::lock`](crate::SessionStore::lock).
    pub(crate) fn lock_lease(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool> {
        self.locked(key, || {
            let now = Timestamp::now();
            if let Some(held) = self.read_lease(key)?.unexpired(now) {
                return Ok(held.token == *token);
            }
            let lease = Lease {
                token: token.clone(),
                expires_at: now + ttl,
            };
            self.write_lease(key, &lease)?;
            Ok(true)
        })
    }

    /// [`SessionStore::renew_lock`](crate::SessionStore::renew_lock).
    pub(crate) fn renew_lease(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool> {
        self.locked(key, || {
            let now = Timestamp::now();
            match self.read_lease(key)?.unexpired(now) {
                Some(mut lease) if lease.token == *token => {
                    lease.expires_at = now + ttl;
                    self.write_lease(key, &lease)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }

    /// [`SessionStore::unlock`](crate::SessionStore::unlock): removes the lease file if it
    /// names `token` (lapsed or not); says whether the lease was unexpired.
    pub(crate) fn unlock_lease(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.locked(key, || match self.read_lease(key)? {
            Found::Lease(lease) if lease.token == *token => {
                let held = !lease.is_lapsed(Timestamp::now());
                self.remove(&self.lease_path(key))?;
                Ok(held)
            }
            _ => Ok(false),
        })
    }

    /// Removes the lapsed and unparsable lease files, and the stray temporary files, of the
    /// `leases` folder. None of them is a session, so gc does not count them.
    pub(crate) fn gc_leases(&self, now: Timestamp) -> Result<()> {
        self.walk(&self.root.join(LEASE_DIR), 0, &mut |dir| {
            self.gc_lease_dir(dir, now)
        })
    }

    fn gc_lease_dir(&self, dir: &Path, now: Timestamp) -> Result<()> {
        for entry in gc_entries(dir)? {
            match entry? {
                // Lease files are only written under their stripe lock: holding it, no
                // writer is using a temporary file, so any left is debris from a crash.
                GcEntry::Temp(key, path) => self.locked(&key, || self.remove(&path).map(drop))?,
                GcEntry::Key(key, path) => self.locked(&key, || match read_lease_file(&path) {
                    Ok(Found::Lease(lease)) if !lease.is_lapsed(now) => Ok(()),
                    Ok(Found::Nothing) => Ok(()),
                    Ok(Found::Lease(_) | Found::Corrupt) => self.remove(&path).map(drop),
                    // Unreadable now (a permission, a passing failure): kept, since it may
                    // be a live lease; the next gc tries again.
                    Err(err) => {
                        tracing::debug!(session = key.short(), error = %format_args!("{err:#}"), "gc skipped an unreadable lease file");
                        Ok(())
                    }
                })?,
            }
        }
        Ok(())
    }
}

/// Reads the lease file at `path`, at most [`MAX_LEN`] bytes of it.
fn read_lease_file(path: &Path) -> io::Result<Found> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(file) => file.take(MAX_LEN + 1).read_to_end(&mut bytes)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(err) => return Err(err),
    };
    Ok(match Lease::parse(&bytes) {
        Some(lease) => Found::Lease(lease),
        None => Found::Corrupt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            token: LockToken::generate().expect("token"), // ok: test-only
            expires_at: Timestamp::from_millis(1_767_225_600_000),
        }
    }

    #[test]
    fn leases_round_trip() {
        let lease = lease();
        assert_eq!(Lease::parse(&lease.encode()), Some(lease));
    }

    #[test]
    fn anything_but_a_whole_lease_file_is_refused() {
        let whole = lease().encode();
        let text = String::from_utf8(whole.clone()).expect("utf-8"); // ok: test-only
        let mut bad: Vec<Vec<u8>> = (0..whole.len()).map(|n| whole[..n].to_vec()).collect();
        bad.extend(
            [
                text.replace("lease 1", "lease 2"),
                text.to_uppercase(),
                format!("{text}extra\n"),
                text.replace("1767225600000", "-1"),
                text.replace("1767225600000", "+1767225600000"),
                text.replace("1767225600000", "99999999999999999999999"),
                text.replace('\n', "\r\n"),
                "\u{feff}".to_owned() + &text,
            ]
            .map(String::into_bytes),
        );
        bad.push(vec![0xff; 64]);
        bad.push(vec![0; 64]);
        for bytes in bad {
            assert_eq!(
                Lease::parse(&bytes),
                None,
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
