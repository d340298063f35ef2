//! The user index: for each user, a sorted set of their sessions' store keys scored by
//! expiry, and the calls that read it (`sessions_of`, `user_index_len`) or clean it up
//! (`delete_many`).
//!
//! # Keys
//!
//! A user's index lives at `<prefix>user:{<32 hex digits>}`, the digits being the first
//! 128 bits of the SHA-256 of the user id. The hash keeps user ids (email addresses, say)
//! out of key names, gives every index key the same short length whatever the id, and,
//! inside the braces, is the key's Redis Cluster hash tag: every key kept for one user
//! hashes to the same slot, so a script over one user's index is always single-slot. A
//! session key (`<prefix><64 hex digits>`) can never look like an index key.
//!
//! Members are the sessions' 64-digit store keys; scores their expiry in milliseconds
//! since the Unix epoch. The set's own TTL is the expiry of its newest member, moved with
//! it, so an index never outlives the sessions it lists and never lives without a TTL.
//!
//! # Who writes it
//!
//! The session hash carries its owner (`m:user`, `m:label`) and the name of the owner's
//! index (`m:index`), so that a touch or a change set, which name only the session, can
//! find the index entry to move:
//! - On a single server, the session scripts file, move and drop entries themselves, in
//!   the same round trip (see [`crate::layout`]).
//! - In a cluster, the session key and the index key live in different slots, which no
//!   script may join: the session script reports what changed, and the store sends the
//!   index its update next. Only bound sessions whose expiry or owner changed pay that
//!   extra round trip. The follow-up only ever raises a score, so an entry is never
//!   scored below its session's expiry once the follow-up has landed, whatever order two
//!   racing requests' follow-ups arrive in. What a cluster cannot promise: between the
//!   two round trips (and for good, if the process dies between them, or if two requests
//!   rebind one session to and fro at the same moment) the entry may lag behind or be
//!   missing. A listing raises a lagging score to the session's expiry, and the session's
//!   next expiry move files it again (the follow-up adds a missing entry).
//!
//! A plain `delete` stays one `DEL` (it is on the path of every log-in that cycles the
//! id): a deleted bound session leaves its entry behind until the next listing of its
//! user prunes it, or the index expires. `delete_many` removes entries along with the
//! sessions.
//!
//! # Listing
//!
//! The records stay the truth. A listing reads the set (`ZRANGE`), then every listed
//! session's owner and expiry (`HMGET`, all in one pipeline on a single server, one
//! request per slot, all at once, in a cluster), and lists only the sessions that are
//! alive and still bound to the user, with the expiry the record has. Entries of deleted,
//! expired or rebound sessions are pruned by one more script, only if there are any:
//! on a single server it checks each session again, atomically, before dropping its entry
//! (a session rebound to the user meanwhile keeps it); in a cluster, where it cannot read
//! the sessions, it drops an entry only if its score is still the one the listing saw.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::LazyLock;

use futures_util::future::try_join_all;
use redis::{Cmd, RedisResult, Script, Value};
use session_core::{Error, IndexedSession, Result, StoreKey, Timestamp, UserId};
use sha2::{Digest, Sha256};

use crate::connection::Connection;
use crate::layout::{self, IndexWrites};
use crate::{RedisStore, run_script};

/// What comes between the prefix and the hash tag in an index key.
const INDEX_MARK: &str = "user:{";

/// Sessions per `delete_many` script: enough that 1,000 sessions take a handful of
/// scripts in one pipeline, few enough that one script never blocks Redis for long.
const DELETE_CHUNK: usize = 500;

/// The session fields a listing reads, in this order.
const LISTED_FIELDS: [&[u8]; 5] = [
    layout::CREATED_FIELD,
    layout::EXPIRES_FIELD,
    layout::USER_FIELD,
    layout::LABEL_FIELD,
    layout::INDEX_FIELD,
];

/// Lua helpers for the scripts that write an index: `fit` gives the index the TTL of its
/// newest member (deleting it if that expiry is past), `file` sets a member's expiry
/// exactly, `unfile` removes a member.
pub(crate) const LUA_INDEX: &str = r"
local function fit(index)
  local newest = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if newest[2] then redis.call('PEXPIREAT', index, newest[2]) end
end
local function file(index, member, expires)
  redis.call('ZADD', index, expires, member)
  fit(index)
end
local function unfile(index, member)
  if redis.call('ZREM', index, member) == 1 then fit(index) end
end
";

/// The Redis key of `user`'s index under `prefix`: `<prefix>user:{<32 hex digits>}`.
pub(crate) fn index_key(prefix: &str, user: &UserId) -> String {
    let digest = Sha256::digest(user.as_str().as_bytes());
    let mut key = String::with_capacity(prefix.len() + INDEX_MARK.len() + 33);
    key.push_str(prefix);
    key.push_str(INDEX_MARK);
    for byte in &digest[..16] {
        // Writing to a String cannot fail.
        let _ = write!(key, "{byte:02x}");
    }
    key.push('}');
    key
}

/// Cluster follow-up: raises the score of `ARGV[1]` in the index `KEYS[1]` to `ARGV[2]`
/// (adding the member if it is missing), never lowering it, and fits the index's TTL.
static RAISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LUA_INDEX}
local index = KEYS[1]
local score = redis.call('ZSCORE', index, ARGV[1])
if not score or tonumber(score) < tonumber(ARGV[2]) then
  redis.call('ZADD', index, ARGV[2], ARGV[1])
end
fit(index)
return 1
"
    ))
});

/// Cluster follow-up: removes the members `ARGV` from the index `KEYS[1]` and fits its TTL.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LUA_INDEX}
local index = KEYS[1]
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('ZREM', index, ARGV[i])
end
if removed > 0 then fit(index) end
return removed
"
    ))
});

/// Prunes and repairs the index `KEYS[1]` after a listing. `ARGV[1]` is the listing's
/// clock (ms), then triples `op, member, value`:
/// - `x`: the member is not a store key; drop it.
/// - `d`: the listing found the session dead, gone or bound elsewhere. On a single
///   server `value` is the position in `KEYS` of the session key, which is checked again
///   here, atomically: the entry goes only if the session is still not a live one of this
///   index. In a cluster `value` is the score the listing saw: the entry goes only if it
///   still has that score (a write that filed it again meanwhile keeps it).
/// - `r`: the session is live with the expiry `value`, above the entry's score (a
///   follow-up that never landed): raise the score, if the entry is still there.
fn prune_script(writes: IndexWrites) -> &'static Script {
    const BODY: &str = r"
local index = KEYS[1]
local now = tonumber(ARGV[1])
local changed = false
for i = 2, #ARGV, 3 do
  local op, member, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local score = redis.call('ZSCORE', index, member)
  if score then
    local drop = op == 'x'
    if op == 'd' then
      if {inline} then
        local meta = redis.pcall('HMGET', KEYS[tonumber(value)], 'm:expires', 'm:index')
        local expires = meta[1] and tonumber(meta[1])
        drop = not (expires and expires > now and meta[2] == index)
      else
        drop = tonumber(score) == tonumber(value)
      end
    end
    if drop then
      redis.call('ZREM', index, member)
      changed = true
    elseif op == 'r' and tonumber(score) < tonumber(value) then
      redis.call('ZADD', index, value, member)
      changed = true
    end
  end
end
if changed then fit(index) end
return 1
";
    static INLINE: LazyLock<Script> = LazyLock::new(|| index_variant(BODY, IndexWrites::Inline));
    static DEFERRED: LazyLock<Script> =
        LazyLock::new(|| index_variant(BODY, IndexWrites::Deferred));
    match writes {
        IndexWrites::Inline => &INLINE,
        IndexWrites::Deferred => &DEFERRED,
    }
}

/// Deletes the sessions `KEYS` (all in one slot in a cluster) and their index entries.
/// On a single server the script removes the entries itself and replies with the number
/// of sessions removed; in a cluster it replies `{removed, index, member, …}`, the entries
/// for the store to remove.
fn delete_many_script(writes: IndexWrites) -> &'static Script {
    const BODY: &str = r"
local removed = 0
local entries = {}
local touched, seen = {}, {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local index = redis.pcall('HGET', key, 'm:index')
  removed = removed + redis.call('DEL', key)
  if type(index) == 'string' then
    local member = string.sub(key, -64)
    if {inline} then
      redis.call('ZREM', index, member)
      if not seen[index] then
        seen[index] = true
        touched[#touched + 1] = index
      end
    else
      entries[#entries + 1] = index
      entries[#entries + 1] = member
    end
  end
end
if {inline} then
  for i = 1, #touched do fit(touched[i]) end
  return removed
end
table.insert(entries, 1, removed)
return entries
";
    static INLINE: LazyLock<Script> = LazyLock::new(|| index_variant(BODY, IndexWrites::Inline));
    static DEFERRED: LazyLock<Script> =
        LazyLock::new(|| index_variant(BODY, IndexWrites::Deferred));
    match writes {
        IndexWrites::Inline => &INLINE,
        IndexWrites::Deferred => &DEFERRED,
    }
}

fn index_variant(body: &str, writes: IndexWrites) -> Script {
    let inline = if writes == IndexWrites::Inline {
        "true"
    } else {
        "false"
    };
    Script::new(&format!("{LUA_INDEX}{}", body.replace("{inline}", inline)))
}

/// A change to an index that a cluster store makes after the session script.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IndexMove {
    /// File the session `member` in `index` with at least the expiry `expires`.
    Raise {
        /// The index key.
        index: String,
        /// The session's store key.
        member: String,
        /// The session's expiry, ms since the epoch.
        expires: i64,
    },
    /// Remove the sessions `members` from `index`.
    Remove {
        /// The index key.
        index: String,
        /// The sessions' store keys.
        members: Vec<String>,
    },
}

/// One entry of an index, as a listing read it.
struct Entry {
    member: String,
    /// The score as Redis wrote it, sent back as is when the entry is pruned.
    score_text: String,
    score: f64,
}

/// Sends the pipeline of `commands` (all EVALSHAs of `script`), loading the script and
/// sending once more the commands that found it missing. Server errors other than a
/// missing script fail the whole call.
async fn script_pipeline(
    connection: &mut Connection,
    script: &Script,
    commands: &[Cmd],
) -> RedisResult<Vec<Value>> {
    let mut replies = pipeline(connection, commands.iter()).await?;
    let missing: Vec<usize> = replies
        .iter()
        .enumerate()
        .filter(|(_, reply)| {
            matches!(reply, Value::ServerError(err)
                if err.kind() == Some(redis::ServerErrorKind::NoScript))
        })
        .map(|(at, _)| at)
        .collect();
    if !missing.is_empty() {
        script.prepare_invoke().load_async(connection).await?;
        let again = pipeline(connection, missing.iter().map(|&at| &commands[at])).await?;
        for (at, reply) in missing.into_iter().zip(again) {
            replies[at] = reply;
        }
    }
    if let Some(Value::ServerError(err)) = replies
        .iter()
        .find(|reply| matches!(reply, Value::ServerError(_)))
    {
        return Err(err.clone().into());
    }
    Ok(replies)
}

/// One pipeline of `commands`, with each command's reply (a server error included).
async fn pipeline<'a>(
    connection: &mut Connection,
    commands: impl Iterator<Item = &'a Cmd>,
) -> RedisResult<Vec<Value>> {
    let mut pipe = redis::pipe();
    for command in commands {
        pipe.add_command(command.clone());
    }
    pipe.ignore_errors();
    pipe.query_async(connection).await
}

/// Runs the futures at once; the first error fails them all.
async fn all<T>(
    calls: impl IntoIterator<Item = impl Future<Output = RedisResult<T>>>,
) -> RedisResult<Vec<T>> {
    try_join_all(calls).await
}

impl RedisStore {
    /// Where the index writes happen on this store's connection.
    pub(crate) fn index_writes(&self) -> IndexWrites {
        if self.connection.is_cluster() {
            IndexWrites::Deferred
        } else {
            IndexWrites::Inline
        }
    }

    /// The Redis key of `user`'s index.
    pub(crate) fn index_key(&self, user: &UserId) -> String {
        index_key(&self.prefix, user)
    }

    /// An index key a session hash named, checked to be one of this store's: a corrupt
    /// hash must not make the store write elsewhere.
    pub(crate) fn checked_index(&self, value: Value) -> Result<Option<String>> {
        let name = match value {
            Value::Nil => return Ok(None),
            Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
            Value::SimpleString(text) => Some(text),
            _ => None,
        };
        name.filter(|name| {
            name.strip_prefix(&*self.prefix)
                .and_then(|rest| rest.strip_prefix(INDEX_MARK))
                .is_some_and(|tag| tag.len() == 33 && tag.ends_with('}'))
        })
        .map(Some)
        .ok_or_else(|| Error::decode("a session names an index key that is not this store's"))
    }

    /// Applies cluster follow-ups, each index at once.
    pub(crate) async fn move_entries(&self, moves: Vec<IndexMove>) -> RedisResult<()> {
        all(moves.into_iter().map(|change| {
            let mut connection = self.connection.get();
            async move {
                let mut command = Cmd::new();
                let script = match &change {
                    IndexMove::Raise {
                        index,
                        member,
                        expires,
                    } => {
                        command
                            .arg("EVALSHA")
                            .arg(RAISE.get_hash())
                            .arg(1)
                            .arg(index)
                            .arg(member)
                            .arg(*expires);
                        &*RAISE
                    }
                    IndexMove::Remove { index, members } => {
                        command
                            .arg("EVALSHA")
                            .arg(REMOVE.get_hash())
                            .arg(1)
                            .arg(index)
                            .arg(members);
                        &*REMOVE
                    }
                };
                run_script::<Value>(&mut connection, script, &command)
                    .await
                    .map(drop)
            }
        }))
        .await
        .map(drop)
    }

    /// The positions in `keys` grouped so that each group is one pipeline: everything on
    /// a single server, one group per slot in a cluster (whose client refuses pipelines
    /// across slots).
    fn slot_groups(&self, keys: &[String]) -> Vec<Vec<usize>> {
        #[cfg(feature = "cluster")]
        if self.connection.is_cluster() {
            let mut groups: HashMap<redis::cluster_routing::Slot, Vec<usize>> = HashMap::new();
            for (at, key) in keys.iter().enumerate() {
                groups
                    .entry(redis::cluster_routing::Slot::for_key(key))
                    .or_default()
                    .push(at);
            }
            return groups.into_values().collect();
        }
        vec![(0..keys.len()).collect()]
    }

    /// `HMGET` of the listed fields of every key in `keys`, in constant round trips; the
    /// replies in the order of `keys` (a server error for a key that is not a hash).
    async fn read_sessions(&self, keys: &[String]) -> RedisResult<Vec<Value>> {
        if keys.is_empty() {
            // Redis refuses an empty pipeline.
            return Ok(Vec::new());
        }
        let groups = self.slot_groups(keys);
        let replies = all(groups.iter().map(|group| {
            let mut connection = self.connection.get();
            let mut pipe = redis::pipe();
            for &at in group {
                pipe.cmd("HMGET").arg(&keys[at]).arg(&LISTED_FIELDS[..]);
            }
            pipe.ignore_errors();
            async move { pipe.query_async::<Vec<Value>>(&mut connection).await }
        }))
        .await?;
        let mut ordered = vec![Value::Nil; keys.len()];
        for (group, replies) in groups.iter().zip(replies) {
            for (&at, reply) in group.iter().zip(replies) {
                ordered[at] = reply;
            }
        }
        Ok(ordered)
    }

    /// [`SessionStore::sessions_of`](session_core::SessionStore::sessions_of).
    pub(crate) async fn list_user(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let index = self.index_key(user);
        let writes = self.index_writes();
        let now = Timestamp::now();
        self.bounded("sessions_of", None, async {
            let mut connection = self.connection.get();
            let reply: Value = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut connection)
                .await
                .map_err(|err| self.failure("sessions_of", None, err))?;
            let entries = decode_entries(reply)?;
            // Operations for the prune script: (op, member, value).
            let mut prune: Vec<(&str, String, String)> = Vec::new();
            let mut candidates = Vec::with_capacity(entries.len());
            for entry in entries {
                match StoreKey::parse(&entry.member) {
                    Ok(key) => candidates.push((key, entry)),
                    Err(_) => prune.push(("x", entry.member, String::new())),
                }
            }
            let keys: Vec<String> = candidates
                .iter()
                .map(|(key, _)| self.redis_key(key))
                .collect();
            let replies = self
                .read_sessions(&keys)
                .await
                .map_err(|err| self.failure("sessions_of", None, err))?;
            let mut sessions = Vec::with_capacity(candidates.len());
            // On a single server the prune script rechecks these sessions: its KEYS.
            let mut recheck = Vec::new();
            for ((key, entry), (redis_key, reply)) in
                candidates.into_iter().zip(keys.into_iter().zip(replies))
            {
                match owned_session(reply, user, &index, now) {
                    Some((created_at, expires_at, label)) => {
                        let expires = expires_at.as_millis();
                        // A follow-up that never landed: the record is the truth.
                        if (expires as f64) > entry.score {
                            prune.push(("r", entry.member, expires.to_string()));
                        }
                        sessions.push(IndexedSession {
                            key,
                            created_at,
                            expires_at,
                            label,
                        });
                    }
                    None => {
                        let value = match writes {
                            IndexWrites::Inline => {
                                recheck.push(redis_key);
                                (recheck.len() + 1).to_string()
                            }
                            IndexWrites::Deferred => entry.score_text,
                        };
                        prune.push(("d", entry.member, value));
                    }
                }
            }
            if !prune.is_empty() {
                let script = prune_script(writes);
                let mut command = redis::cmd("EVALSHA");
                command
                    .arg(script.get_hash())
                    .arg(1 + recheck.len())
                    .arg(&index)
                    .arg(&recheck)
                    .arg(now.as_millis());
                for (op, member, value) in &prune {
                    command.arg(*op).arg(member).arg(value);
                }
                run_script::<Value>(&mut connection, script, &command)
                    .await
                    .map_err(|err| self.failure("sessions_of", None, err))?;
                tracing::debug!(
                    pruned = prune.iter().filter(|(op, ..)| *op != "r").count(),
                    "stale user index entries pruned"
                );
            }
            Ok(sessions)
        })
        .await
    }

    /// [`SessionStore::user_index_len`](session_core::SessionStore::user_index_len).
    pub(crate) async fn index_len(&self, user: &UserId) -> Result<u64> {
        let index = self.index_key(user);
        self.bounded("user_index_len", None, async {
            let mut connection = self.connection.get();
            redis::cmd("ZCARD")
                .arg(&index)
                .query_async(&mut connection)
                .await
                .map_err(|err| self.failure("user_index_len", None, err))
        })
        .await
    }

    /// [`SessionStore::delete_many`](session_core::SessionStore::delete_many): one
    /// pipeline of scripts on a single server; in a cluster one per slot, all at once,
    /// then the index entries, each index at once.
    pub(crate) async fn delete_keys(&self, keys: &[StoreKey]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let writes = self.index_writes();
        let script = delete_many_script(writes);
        let redis_keys: Vec<String> = keys.iter().map(|key| self.redis_key(key)).collect();
        self.bounded("delete_many", None, async {
            let groups = self.slot_groups(&redis_keys);
            let replies = all(groups.iter().map(|group| {
                let mut connection = self.connection.get();
                let commands: Vec<Cmd> = group
                    .chunks(DELETE_CHUNK)
                    .map(|chunk| {
                        let mut command = redis::cmd("EVALSHA");
                        command.arg(script.get_hash()).arg(chunk.len());
                        for &at in chunk {
                            command.arg(&redis_keys[at]);
                        }
                        command
                    })
                    .collect();
                async move { script_pipeline(&mut connection, script, &commands).await }
            }))
            .await
            .map_err(|err| self.failure("delete_many", None, err))?;
            let mut removed = 0u64;
            let mut entries: HashMap<String, Vec<String>> = HashMap::new();
            for reply in replies.into_iter().flatten() {
                match reply {
                    Value::Int(count) => removed += u64::try_from(count).unwrap_or(0),
                    Value::Array(items) => {
                        let mut items = items.into_iter();
                        if let Some(Value::Int(count)) = items.next() {
                            removed += u64::try_from(count).unwrap_or(0);
                        }
                        while let (Some(index), Some(member)) = (items.next(), items.next()) {
                            let Some(index) = self.checked_index(index)? else {
                                continue;
                            };
                            if let Value::BulkString(member) = member
                                && let Ok(member) = String::from_utf8(member)
                            {
                                entries.entry(index).or_default().push(member);
                            }
                        }
                    }
                    other => {
                        return Err(Error::decode(format!(
                            "delete_many: Redis replied with {}",
                            layout::shape(&other)
                        )));
                    }
                }
            }
            if !entries.is_empty() {
                let moves = entries
                    .into_iter()
                    .map(|(index, members)| IndexMove::Remove { index, members })
                    .collect();
                self.move_entries(moves)
                    .await
                    .map_err(|err| self.failure("delete_many", None, err))?;
            }
            Ok(removed)
        })
        .await
    }
}

/// The entries of a `ZRANGE … WITHSCORES` reply: a flat array of members and scores
/// (RESP2) or an array of pairs (RESP3).
fn decode_entries(reply: Value) -> Result<Vec<Entry>> {
    let Value::Array(items) = reply else {
        return Err(Error::decode(format!(
            "user index: Redis replied with {}",
            layout::shape(&reply)
        )));
    };
    let mut entries = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter().peekable();
    while let Some(item) = items.next() {
        let (member, score) = match item {
            Value::Array(pair) => {
                let mut pair = pair.into_iter();
                (pair.next(), pair.next())
            }
            member => (Some(member), items.next()),
        };
        let member = match member {
            Some(Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Some(Value::SimpleString(text)) => text,
            _ => return Err(Error::decode("user index: a member is not a string")),
        };
        let score_text = match score {
            Some(Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Some(Value::SimpleString(text)) => text,
            Some(Value::Double(score)) => score.to_string(),
            Some(Value::Int(score)) => score.to_string(),
            _ => return Err(Error::decode("user index: a score is missing")),
        };
        let score = score_text.parse().unwrap_or(f64::NAN);
        entries.push(Entry {
            member,
            score_text,
            score,
        });
    }
    Ok(entries)
}

/// The creation time, expiry and label of a session from the reply of its listing
/// `HMGET`, if it is alive at `now` and bound to `user` in `index`.
fn owned_session(
    reply: Value,
    user: &UserId,
    index: &str,
    now: Timestamp,
) -> Option<(Timestamp, Timestamp, String)> {
    let Value::Array(fields) = reply else {
        return None;
    };
    let mut fields = fields.into_iter().map(|field| match field {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    });
    let mut next = || fields.next().flatten();
    let (created, expires, owner, label, named) = (next()?, next()?, next()?, next()?, next()?);
    let millis = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()?
            .parse::<i64>()
            .ok()
            .map(Timestamp::from_millis)
    };
    let expires_at = millis(&expires)?;
    if expires_at.is_reached(now) || owner != user.as_str().as_bytes() || named != index.as_bytes()
    {
        return None;
    }
    Some((
        millis(&created)?,
        expires_at,
        String::from_utf8(label).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_hash_the_user_inside_a_hash_tag() {
        let ada = UserId::new("ada@example.org").expect("valid");
        let key = index_key("think_session:", &ada);
        assert!(key.starts_with("think_session:user:{"), "{key}");
        assert!(key.ends_with('}'));
        assert_eq!(key.len(), "think_session:user:{".len() + 33);
        assert!(!key.contains("ada"), "the user id stays out of the key");
        assert_eq!(key, index_key("think_session:", &ada), "stable");
        let curly = UserId::new("{b}ob").expect("valid");
        let other = index_key("think_session:", &curly);
        assert_ne!(key, other);
        assert_eq!(
            other.matches('{').count(),
            1,
            "a user's braces never reach the key"
        );
    }

    #[test]
    fn entries_decode_from_resp2_and_resp3() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let resp2 = Value::Array(vec![bulk("a"), bulk("1700000000000"), bulk("b"), bulk("5")]);
        let entries = decode_entries(resp2).expect("resp2");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].member, "a");
        assert_eq!(entries[0].score, 1_700_000_000_000.0);
        assert_eq!(entries[1].score_text, "5");
        let resp3 = Value::Array(vec![Value::Array(vec![
            bulk("a"),
            Value::Double(1_700_000_000_000.0),
        ])]);
        let entries = decode_entries(resp3).expect("resp3");
        assert_eq!(entries[0].score_text, "1700000000000");
        assert!(decode_entries(Value::Array(vec![bulk("lonely")])).is_err());
        assert!(decode_entries(Value::Int(3)).is_err());
    }

    #[test]
    fn a_listing_keeps_only_live_sessions_of_the_user() {
        let ada = UserId::new("ada").expect("valid");
        let index = index_key("p:", &ada);
        let now = Timestamp::from_millis(1_000);
        let reply = |expires: &str, user: &str, named: &str| {
            Value::Array(
                ["10", expires, user, "laptop", named]
                    .iter()
                    .map(|field| Value::BulkString(field.as_bytes().to_vec()))
                    .collect(),
            )
        };
        assert_eq!(
            owned_session(reply("2000", "ada", &index), &ada, &index, now),
            Some((
                Timestamp::from_millis(10),
                Timestamp::from_millis(2000),
                "laptop".to_owned()
            ))
        );
        assert_eq!(
            owned_session(reply("1000", "ada", &index), &ada, &index, now),
            None
        );
        assert_eq!(
            owned_session(reply("2000", "bob", &index), &ada, &index, now),
            None
        );
        assert_eq!(
            owned_session(reply("2000", "ada", "p:x"), &ada, &index, now),
            None
        );
        assert_eq!(
            owned_session(reply("soon", "ada", &index), &ada, &index, now),
            None
        );
        let unbound = Value::Array(vec![
            Value::BulkString(b"10".to_vec()),
            Value::BulkString(b"2000".to_vec()),
            Value::Nil,
            Value::Nil,
            Value::Nil,
        ]);
        assert_eq!(owned_session(unbound, &ada, &index, now), None);
        assert_eq!(owned_session(Value::Nil, &ada, &index, now), None);
    }
}
