//! Session locks: one lease key per locked session, `<prefix>lock:<store key hex>`, a
//! string holding the holder's token, whose TTL is the lease's.
//!
//! Each call is one `EVALSHA` of a script over that one key, so it works unchanged on a
//! Redis Cluster (any slot will do: no script joins the lease with the record):
//! - `lock_and_load`, the call behind every lock a request takes, is `lock` and the
//!   session's `HGETALL` in one script on a single server (two on a cluster, where the lease
//!   and the session live in different slots);
//! - `update_and_unlock`, a locked request's write, is the update script with the release
//!   at its end on a single server (the update then `unlock` on a cluster);
//! - `lock` is `SET lease token NX PX ttl`, and when the key is taken, a `GET` that tells
//!   the holder asking again (granted) from another token (refused), in one round trip;
//! - `renew_lock` moves the TTL (`PEXPIRE`) only if the key still holds the caller's token;
//! - `unlock` deletes the key only if it still holds the caller's token (compare and
//!   delete), so a holder whose lease lapsed never frees its successor's.
//!
//! Redis expires a lapsed lease itself (a lapsed key no longer exists for `SET NX`, `GET`
//! or `DEL`), so gc has nothing to sweep, and a lease is never kept past its TTL, however
//! long its holder stalls. The lease key is apart from the record: deleting the session
//! keeps its lease, and locking a key creates no record.

use std::io::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Cmd, RedisWrite, Script, Value};
use session_core::{
    ChangeSet, Error, LockToken, Record, Result, SessionStore, StoreKey, Timestamp,
};

use crate::layout::{self, IndexWrites};
use crate::{RedisStore, run_script};

/// What comes between the prefix and the store key in a lease key.
const LOCK_MARK: &str = "lock:";

/// The longest lease Redis is asked for, in milliseconds: far beyond any real `lock_ttl`,
/// and far enough below `i64::MAX` that Redis can add it to its clock.
const MAX_LEASE_MS: u64 = 1 << 50;

/// Grants the lease `KEYS[1]` to the token `ARGV[1]` for `ARGV[2]` milliseconds if the key
/// is free; replies 1 when the token holds it (granted now, or held already: the holder
/// asking again keeps its lease as it was), 0 when another token does.
static LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
",
    )
});

/// [`LOCK`] on the lease `KEYS[1]`, then, if granted, the session hash `KEYS[2]` in the
/// same call: replies 0 when refused, `{1, fields...}` when granted (`HGETALL`, empty for
/// no session), and `{1}` alone when the key holds something other than a hash. Two keys
/// in two slots: on a single server only.
static LOCK_AND_LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
end
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'hash' and kind ~= 'none' then return {1} end
return {1, redis.call('HGETALL', KEYS[2])}
",
    )
});

/// Extends the lease `KEYS[1]` to `ARGV[2]` milliseconds from now if it holds the token
/// `ARGV[1]`; replies 1 if it did, 0 otherwise (another token's lease, or none).
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// Deletes the lease `KEYS[1]` if it holds the token `ARGV[1]`; replies 1 if it did, 0
/// otherwise.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

impl RedisStore {
    /// The Redis key of the lease on the session at `key`: `<prefix>lock:<64 hex digits>`
    /// (see [Locks](crate#locks)). For operators and tests; the store never logs it.
    pub fn lock_key(&self, key: &StoreKey) -> String {
        let mut lock_key = String::with_capacity(self.lock_key_len());
        lock_key.push_str(self.prefix());
        lock_key.push_str(LOCK_MARK);
        lock_key.push_str(key.as_str());
        lock_key
    }

    /// [`SessionStore::lock`](session_core::SessionStore::lock): one script.
    pub(crate) async fn take_lease(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool> {
        self.run_lease("lock", &LOCK, key, token, Some(ttl)).await
    }

    /// [`SessionStore::lock_and_load`](session_core::SessionStore::lock_and_load): one
    /// script on a single server; on a cluster (the lease and the session in two slots),
    /// `lock` then `load`.
    pub(crate) async fn take_lease_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        if self.index_writes() == IndexWrites::Deferred {
            if !self.take_lease(key, token, ttl).await? {
                return Ok(None);
            }
            return self.load(key).await.map(Some);
        }
        let script = &*LOCK_AND_LOAD;
        let hash = script.get_hash();
        let mut command = Cmd::with_capacity(
            7,
            "EVALSHA".len()
                + hash.len()
                + 1
                + self.lock_key_len()
                + self.lock_key_len()
                + token.as_str().len()
                + 20,
        );
        command.arg("EVALSHA").arg(hash).arg(2);
        self.write_lock_key(&mut command, key);
        self.write_redis_key(&mut command, key);
        command.arg(token.as_str()).arg(lease_millis(ttl));
        let mut connection = self.connection.get();
        let reply: Value = self
            .call(
                "lock_and_load",
                key,
                run_script(&mut connection, script, &command),
            )
            .await?;
        let Value::Array(mut parts) = reply else {
            // 0: another token holds the lease.
            return Ok(None);
        };
        match (parts.len(), parts.pop()) {
            (2, Some(fields)) => {
                layout::decode_load(fields, Timestamp::now(), |user| self.index_key(user)).map(Some)
            }
            _ => Err(Error::decode(
                "the session key holds something other than a hash",
            )),
        }
    }

    /// [`SessionStore::update_and_unlock`](session_core::SessionStore::update_and_unlock):
    /// the update script with the release in it on a single server; on a cluster (the
    /// lease in another slot), `update` then `unlock`.
    pub(crate) async fn update_releasing(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> Result<bool> {
        if self.index_writes() == IndexWrites::Deferred || changes.owner.is_some() {
            // A binding (a log-in, rare) takes the usual path, whose index writes the
            // update script handles on its own.
            let applied = self.update(key, changes).await?;
            if applied {
                self.release_lease(key, token).await?;
            }
            return Ok(applied);
        }
        let script = layout::update_and_unlock_script();
        let (arguments, bytes) = layout::update_args_size(changes, None);
        let hash = script.get_hash();
        let mut command = Cmd::with_capacity(
            6 + arguments,
            "EVALSHA".len()
                + hash.len()
                + 1
                + 2 * self.lock_key_len()
                + bytes
                + token.as_str().len(),
        );
        command.arg("EVALSHA").arg(hash).arg(2);
        self.write_redis_key(&mut command, key);
        self.write_lock_key(&mut command, key);
        layout::write_update_args(&mut command, changes, None);
        command.arg(token.as_str());
        let mut connection = self.connection.get();
        let reply: Value = self
            .call(
                "update_and_unlock",
                key,
                run_script(&mut connection, script, &command),
            )
            .await?;
        match reply {
            Value::Int(0) => Ok(false),
            Value::Int(_) => Ok(true),
            other => Err(Error::decode(format!(
                "a session script replied with {}",
                layout::shape(&other)
            ))),
        }
    }

    /// [`SessionStore::renew_lock`](session_core::SessionStore::renew_lock): one script.
    pub(crate) async fn renew_lease(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool> {
        self.run_lease("renew_lock", &RENEW, key, token, Some(ttl))
            .await
    }

    /// [`SessionStore::unlock`](session_core::SessionStore::unlock): one script.
    pub(crate) async fn release_lease(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.run_lease("unlock", &UNLOCK, key, token, None).await
    }

    /// Runs one of the lease scripts on the lease of `key`, with the token and, for those
    /// that set a TTL, the lease's length; bounded by the response timeout like every
    /// other call.
    async fn run_lease(
        &self,
        operation: &'static str,
        script: &Script,
        key: &StoreKey,
        token: &LockToken,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let hash = script.get_hash();
        let mut command = Cmd::with_capacity(
            6,
            "EVALSHA".len() + hash.len() + 1 + self.lock_key_len() + token.as_str().len() + 20,
        );
        command.arg("EVALSHA").arg(hash).arg(1);
        self.write_lock_key(&mut command, key);
        command.arg(token.as_str());
        if let Some(ttl) = ttl {
            command.arg(lease_millis(ttl));
        }
        let mut connection = self.connection.get();
        let held: i64 = self
            .call(
                operation,
                key,
                run_script(&mut connection, script, &command),
            )
            .await?;
        Ok(held == 1)
    }

    /// Writes [`RedisStore::lock_key`] straight into the command, without a String.
    fn write_lock_key(&self, command: &mut Cmd, key: &StoreKey) {
        let mut arg = command.writer_for_next_arg();
        // Writing to a command's buffer cannot fail.
        let _ = arg.write_all(self.prefix().as_bytes());
        let _ = arg.write_all(LOCK_MARK.as_bytes());
        let _ = arg.write_all(key.as_str().as_bytes());
    }

    fn lock_key_len(&self) -> usize {
        self.prefix().len() + LOCK_MARK.len() + StoreKey::HEX_LEN
    }
}

/// `ttl` in whole milliseconds for `PX`/`PEXPIRE`, rounded up (Redis counts from when it
/// runs the script, later than the manager's clock starts: rounding up keeps the lease in
/// Redis at least as long as the holder believes it is), at least 1 (Redis refuses 0) and
/// at most [`MAX_LEASE_MS`].
fn lease_millis(ttl: Duration) -> u64 {
    let millis = ttl.as_micros().div_ceil(1000);
    u64::try_from(millis)
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LEASE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_lengths_round_up_and_stay_in_range() {
        let cases = [
            (Duration::ZERO, 1),
            (Duration::from_micros(1), 1),
            (Duration::from_micros(1_001), 2),
            (Duration::from_millis(300), 300),
            (Duration::from_secs(10), 10_000),
            (Duration::MAX, MAX_LEASE_MS),
        ];
        for (ttl, expected) in cases {
            assert_eq!(lease_millis(ttl), expected, "{ttl:?}");
        }
    }

    #[tokio::test]
    async fn lease_keys_sit_next_to_the_session_key() {
        let config = crate::RedisConfig::new("redis://127.0.0.1:1").with_prefix("app:");
        let store = RedisStore::connect_lazy(&config).expect("lazy"); // ok: test
        let key = session_core::SessionId::generate(32)
            .expect("id") // ok: test
            .store_key();
        let lock_key = store.lock_key(&key);
        assert_eq!(lock_key, format!("app:lock:{}", key.as_str()));
        assert_eq!(lock_key.len(), store.lock_key_len());
        // Never a session key (64 hex digits after the prefix) nor an index key.
        assert_ne!(lock_key, store.redis_key(&key));
        assert!(!lock_key.starts_with("app:user:{"));
    }
}
