//! How a record is laid out in Redis, and the Lua scripts that write it atomically.
//!
//! One key per session, `<prefix><store key hex>`, holding a hash:
//!
//! | field        | value |
//! |--------------|-------|
//! | `m:created`  | `created_at`, milliseconds since the Unix epoch, in decimal |
//! | `m:expires`  | `expires_at`, milliseconds since the Unix epoch, in decimal |
//! | `m:user`     | bound sessions only: the owner's user id |
//! | `m:label`    | bound sessions only: the session's label (may be empty) |
//! | `m:index`    | bound sessions only: the Redis key of the owner's index (see [`crate::users`]) |
//! | `d:<key>`    | the encoded value of session key `<key>` (any bytes) |
//!
//! Data fields carry a prefix so that no session key (not even `m:created` or the empty
//! string) can collide with the metadata. The expiry is kept twice, written by the same
//! command or script: as the `m:expires` field, so that a load is one plain `HGETALL` (no
//! script, one command for Redis to run), and as the key's own expiry (`RESTORE … ABSTTL`
//! or `PEXPIREAT`), so that no key ever lives without a TTL and a record written with an
//! expiry already past is deleted by Redis at once.
//!
//! The owner fields are what lets a touch or a change set, which name only the session,
//! keep the owner's index in step: the scripts read `m:index` and `m:expires` with the one
//! `HMGET` that also tells them whether the session exists, so a session without an owner
//! costs Redis the same commands as before the index existed. On a single server the
//! scripts move the index entry themselves (a key they read from the hash rather than
//! declare, which a single server allows); in a cluster the index lives in another slot,
//! so the script reports what moved and the store follows up on the index key.

use std::io::Write as _;
use std::sync::LazyLock;

use redis::{RedisWrite, Script, Value};
use session_core::{ChangeSet, Data, Error, Owner, Record, Result, Timestamp, UserId};

use crate::users;

/// The metadata field holding `created_at`.
pub(crate) const CREATED_FIELD: &[u8] = b"m:created";

/// The metadata field holding `expires_at`.
pub(crate) const EXPIRES_FIELD: &[u8] = b"m:expires";

/// The metadata field holding the owner's user id.
pub(crate) const USER_FIELD: &[u8] = b"m:user";

/// The metadata field holding the session's label.
pub(crate) const LABEL_FIELD: &[u8] = b"m:label";

/// The metadata field holding the Redis key of the owner's index.
pub(crate) const INDEX_FIELD: &[u8] = b"m:index";

/// The prefix of data fields.
const DATA_PREFIX: &[u8] = b"d:";

/// Redis fields per `HSET`/`HDEL` call inside a script: Lua's `unpack` has a stack limit,
/// so long argument lists are applied in slices.
const LUA_SLICE: &str = "1000";

/// A session's binding as the scripts write it: the owner and the Redis key of their index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Binding<'a> {
    /// Who the session belongs to.
    pub(crate) owner: &'a Owner,
    /// `<prefix>user:{…}`, the owner's index.
    pub(crate) index: &'a str,
}

/// Whether a script moves index entries itself (a single server) or reports them for the
/// store to move (a cluster, where the index key lives in another slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexWrites {
    /// The script writes the index key it finds in the session hash.
    Inline,
    /// The script replies with the index keys to write; the store writes them next.
    Deferred,
}

/// Lua helpers shared by the write scripts: `sliced` applies `command` to
/// `ARGV[first..last]` in slices that `unpack` can handle (the slice length is even, so
/// `HSET` pairs stay whole), and the index helpers of [`users::LUA_INDEX`].
fn with_helpers(body: &str) -> String {
    format!(
        r"
local function sliced(command, first, last)
  while first <= last do
    local stop = math.min(first + {LUA_SLICE} - 1, last)
    redis.call(command, KEYS[1], unpack(ARGV, first, stop))
    first = stop + 1
  end
end
{index}
{body}",
        index = users::LUA_INDEX,
    )
}

/// The script text for `writes`: `{{inline}}` becomes the Lua boolean the body tests.
fn variant(body: &str, writes: IndexWrites) -> Script {
    let inline = if writes == IndexWrites::Inline {
        "true"
    } else {
        "false"
    };
    Script::new(&with_helpers(&body.replace("{inline}", inline)))
}

/// Creates a record only where there is none: what a create falls back to when
/// `RESTORE` finds something at the key, or the server refuses `RESTORE`, and what a
/// bound session is created with on a single server.
///
/// `KEYS[2]`, when given, is the owner's index, which the new session joins in the same
/// step. `ARGV[1]` is the expiry in milliseconds, then field/value pairs (`m:created` and
/// `m:expires` first). A live session hash (one with `m:created`) is left alone and the
/// reply is 0; anything else at the key (a foreign type, a hash without metadata) counts
/// as corrupt and is replaced. An expired key does not exist for Redis, so it is replaced
/// too. The reply is 1 when the record was written; with an expiry already past,
/// `PEXPIREAT` deletes it at once, which is what an already-expired record must be: absent.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_helpers(
        r"
local key = KEYS[1]
local kind = redis.call('TYPE', key).ok
if kind ~= 'none' then
  if kind == 'hash' and redis.call('HEXISTS', key, 'm:created') == 1 then return 0 end
  redis.call('DEL', key)
end
sliced('HSET', 2, #ARGV)
redis.call('PEXPIREAT', key, ARGV[1])
if KEYS[2] then file(KEYS[2], string.sub(key, -64), ARGV[1]) end
return 1
",
    ))
});

/// Applies a change set to an existing record only.
///
/// `ARGV[1]` is the new expiry in milliseconds, `ARGV[2]` is `1` to clear every data field
/// first (the metadata, owner included, stays), `ARGV[3]` the owner's index key when the
/// change set binds the session (empty otherwise), `ARGV[4]` the number `n` of fields to
/// remove, `ARGV[5..5+n]` those fields, and the rest field/value pairs to set (`m:expires`
/// first, then the owner fields of a binding). Replies 0 without writing anything when
/// there is no session hash at the key (deleted by a logout, or expired): a change set
/// never brings a session back.
///
/// A bound session whose expiry or owner changed moves its index entries: on a single
/// server in the script (the reply is 1); in a cluster the reply is `{1, old, new}`, the
/// index to leave (or nil) and the index to file the session in at its new expiry (or nil).
pub(crate) fn update_script(writes: IndexWrites) -> &'static Script {
    static INLINE: LazyLock<Script> = LazyLock::new(|| variant(UPDATE_BODY, IndexWrites::Inline));
    static DEFERRED: LazyLock<Script> =
        LazyLock::new(|| variant(UPDATE_BODY, IndexWrites::Deferred));
    match writes {
        IndexWrites::Inline => &INLINE,
        IndexWrites::Deferred => &DEFERRED,
    }
}

/// [`update_script`] on a single server, then the release of a locked request's lease:
/// `KEYS[2]` is the lease key and the last argument the holder's token (the update's own
/// arguments end one before it). The lease is deleted only if the update applied and the
/// lease still holds the token. Replies as the update does.
pub(crate) fn update_and_unlock_script() -> &'static Script {
    static SCRIPT: LazyLock<Script> = LazyLock::new(|| {
        let body = format!(
            "local function apply()\n{}\nend\n\
             local result = apply()\n\
             if result ~= 0 and redis.call('GET', KEYS[2]) == ARGV[#ARGV] then\n\
             \x20 redis.call('DEL', KEYS[2])\n\
             end\n\
             return result\n",
            UPDATE_BODY.replace("#ARGV)", "#ARGV - 1)")
        );
        variant(&body, IndexWrites::Inline)
    });
    &SCRIPT
}

const UPDATE_BODY: &str = r"
local key = KEYS[1]
local meta = redis.pcall('HMGET', key, 'm:expires', 'm:index')
if not meta[1] then return 0 end
if ARGV[2] == '1' then
  local names = {'m:created', 'm:user', 'm:label', 'm:index'}
  local kept = redis.call('HMGET', key, unpack(names))
  redis.call('DEL', key)
  local restore = {}
  for i = 1, #names do
    if kept[i] then
      restore[#restore + 1] = names[i]
      restore[#restore + 1] = kept[i]
    end
  end
  if #restore > 0 then redis.call('HSET', key, unpack(restore)) end
end
local removed = tonumber(ARGV[4])
sliced('HDEL', 5, 4 + removed)
sliced('HSET', 5 + removed, #ARGV)
redis.call('PEXPIREAT', key, ARGV[1])
local old = meta[2]
local new = old
if ARGV[3] ~= '' then new = ARGV[3] end
local leave = old and old ~= new and old
local join = new and (new ~= old or meta[1] ~= ARGV[1]) and new
if {inline} then
  local member = string.sub(key, -64)
  if leave then unfile(leave, member) end
  if join then file(join, member, ARGV[1]) end
elseif leave or join then
  return {1, leave, join}
end
return 1
";

/// Moves the expiry of an existing record only: `ARGV[1]` is the new expiry in
/// milliseconds. Replies 0 without writing anything when there is no session hash at the
/// key, 1 when both the field and the key's TTL were moved. A bound session's index entry
/// follows: in the script on a single server, and in a cluster through the reply
/// `{1, index}`, the index for the store to update.
pub(crate) fn touch_script(writes: IndexWrites) -> &'static Script {
    static INLINE: LazyLock<Script> = LazyLock::new(|| variant(TOUCH_BODY, IndexWrites::Inline));
    static DEFERRED: LazyLock<Script> =
        LazyLock::new(|| variant(TOUCH_BODY, IndexWrites::Deferred));
    match writes {
        IndexWrites::Inline => &INLINE,
        IndexWrites::Deferred => &DEFERRED,
    }
}

const TOUCH_BODY: &str = r"
local key = KEYS[1]
local meta = redis.pcall('HMGET', key, 'm:expires', 'm:index')
if not meta[1] then return 0 end
redis.call('HSET', key, 'm:expires', ARGV[1])
redis.call('PEXPIREAT', key, ARGV[1])
if meta[2] and meta[1] ~= ARGV[1] then
  if {inline} then
    file(meta[2], string.sub(key, -64), ARGV[1])
  else
    return {1, meta[2]}
  end
end
return 1
";

/// The serialized-value format of `DUMP` and `RESTORE`: the object type `hash` (4 in the
/// RDB format since its first version: a length, then field and value strings).
const RDB_TYPE_HASH: u8 = 4;

/// The RDB version the `RESTORE` payload declares: 6 (Redis 2.6), which every server since
/// reads; the plain hash encoding has not changed since.
const RDB_VERSION: u16 = 6;

/// The checksum that ends a `DUMP` payload.
const DUMP_CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// A `RESTORE` payload holding `record` as a session hash, in the layout [`CREATE`] writes.
///
/// `RESTORE key <expiry> <payload> ABSTTL` writes the hash and its expiry in one command
/// that fails with `BUSYKEY` if anything is at the key: the create-only-where-there-is-none
/// rule without a script. The payload is `DUMP`'s format: the object type, the object in
/// RDB encoding, the RDB version (2 bytes, little-endian) and a CRC-64 of all the
/// preceding bytes (8 bytes, little-endian).
pub(crate) fn restore_payload(record: &Record, binding: Option<Binding<'_>>) -> Vec<u8> {
    let created = record.created_at.as_millis().to_string();
    let expires = record.expires_at.as_millis().to_string();
    let size = 32
        + created.len()
        + expires.len()
        + 10 * record.data.len()
        + data_size(&record.data)
        + binding_size(binding);
    let mut out = Vec::with_capacity(size);
    out.push(RDB_TYPE_HASH);
    let owner_fields = if binding.is_some() { 3 } else { 0 };
    rdb_length(&mut out, 2 + owner_fields + record.data.len());
    rdb_string(&mut out, &[CREATED_FIELD]);
    rdb_string(&mut out, &[created.as_bytes()]);
    rdb_string(&mut out, &[EXPIRES_FIELD]);
    rdb_string(&mut out, &[expires.as_bytes()]);
    if let Some(binding) = binding {
        for (field, value) in owner_fields_of(binding) {
            rdb_string(&mut out, &[field]);
            rdb_string(&mut out, &[value]);
        }
    }
    for (key, value) in &record.data {
        rdb_string(&mut out, &[DATA_PREFIX, key.as_bytes()]);
        rdb_string(&mut out, &[value]);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let checksum = DUMP_CRC.checksum(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// The owner fields of a bound session, as field/value pairs.
fn owner_fields_of(binding: Binding<'_>) -> [(&'static [u8], &[u8]); 3] {
    [
        (USER_FIELD, binding.owner.user.as_str().as_bytes()),
        (LABEL_FIELD, binding.owner.label.as_bytes()),
        (INDEX_FIELD, binding.index.as_bytes()),
    ]
}

/// About how many bytes the owner fields of `binding` take.
fn binding_size(binding: Option<Binding<'_>>) -> usize {
    binding.map_or(0, |binding| {
        32 + binding.owner.user.as_str().len() + binding.owner.label.len() + binding.index.len()
    })
}

/// An RDB length: 6 bits, 14 bits (big-endian), or a marker byte and 32 or 64 bits
/// (big-endian).
fn rdb_length(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A plain RDB string (its length, then its bytes) made of `parts`.
fn rdb_string(out: &mut Vec<u8>, parts: &[&[u8]]) {
    rdb_length(out, parts.iter().map(|part| part.len()).sum());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Writes the hash field of session key `key` (`d:<key>`) as one argument.
fn write_data_field(out: &mut impl RedisWrite, key: &str) {
    let mut field = out.writer_for_next_arg();
    // Writing to a command's buffer cannot fail.
    let _ = field.write_all(DATA_PREFIX);
    let _ = field.write_all(key.as_bytes());
}

/// How many arguments, and about how many bytes, [`write_create_args`] writes for
/// `record`: lets a command reserve its buffers once.
pub(crate) fn create_args_size(record: &Record, binding: Option<Binding<'_>>) -> (usize, usize) {
    let owner_args = if binding.is_some() { 6 } else { 0 };
    (
        5 + owner_args + 2 * record.data.len(),
        64 + data_size(&record.data) + binding_size(binding),
    )
}

/// How many arguments, and about how many bytes, [`write_update_args`] writes.
pub(crate) fn update_args_size(
    changes: &ChangeSet,
    binding: Option<Binding<'_>>,
) -> (usize, usize) {
    let removed: usize = changes
        .removed
        .iter()
        .map(|key| DATA_PREFIX.len() + key.len())
        .sum();
    let owner_args = if binding.is_some() { 6 } else { 0 };
    (
        6 + owner_args + changes.removed.len() + 2 * changes.set.len(),
        64 + removed + data_size(&changes.set) + 2 * binding_size(binding),
    )
}

fn data_size(data: &Data) -> usize {
    data.iter()
        .map(|(key, value)| DATA_PREFIX.len() + key.len() + value.len())
        .sum()
}

/// Writes the arguments of [`CREATE`] for `record`, bound as `binding` says.
pub(crate) fn write_create_args(
    out: &mut impl RedisWrite,
    record: &Record,
    binding: Option<Binding<'_>>,
) {
    let expires = record.expires_at.as_millis();
    out.write_arg_fmt(expires);
    out.write_arg(CREATED_FIELD);
    out.write_arg_fmt(record.created_at.as_millis());
    out.write_arg(EXPIRES_FIELD);
    out.write_arg_fmt(expires);
    if let Some(binding) = binding {
        for (field, value) in owner_fields_of(binding) {
            out.write_arg(field);
            out.write_arg(value);
        }
    }
    for (key, value) in &record.data {
        write_data_field(out, key);
        out.write_arg(value);
    }
}

/// Writes the arguments of [`update_script`] for `changes`; `binding` is the binding the
/// change set makes, if it makes one.
pub(crate) fn write_update_args(
    out: &mut impl RedisWrite,
    changes: &ChangeSet,
    binding: Option<Binding<'_>>,
) {
    let expires = changes.expires_at.as_millis();
    out.write_arg_fmt(expires);
    out.write_arg(if changes.cleared { b"1" } else { b"0" });
    out.write_arg(binding.map_or(&b""[..], |binding| binding.index.as_bytes()));
    out.write_arg_fmt(changes.removed.len());
    for key in &changes.removed {
        write_data_field(out, key);
    }
    out.write_arg(EXPIRES_FIELD);
    out.write_arg_fmt(expires);
    if let Some(binding) = binding {
        for (field, value) in owner_fields_of(binding) {
            out.write_arg(field);
            out.write_arg(value);
        }
    }
    for (key, value) in &changes.set {
        write_data_field(out, key);
        out.write_arg(value);
    }
}

/// Turns the reply of `HGETALL` into a record; `None` when there is none or it has expired
/// by `now`. Anything that does not follow the layout is a decode error, never a panic:
/// among others, an owner whose index field is not `index_of(user)`, the key this store
/// keeps the owner's index at.
pub(crate) fn decode_load(
    reply: Value,
    now: Timestamp,
    index_of: impl FnOnce(&UserId) -> String,
) -> Result<Option<Record>> {
    let pairs = match reply {
        // RESP2 replies with a flat array of fields and values, RESP3 with a map.
        Value::Array(flat) => {
            if flat.len() % 2 != 0 {
                return Err(Error::decode("session hash reply has an odd length"));
            }
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(field), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((field, value));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        other => return Err(unexpected("session hash", &other)),
    };
    if pairs.is_empty() {
        // Redis has no empty hashes: the key does not exist.
        return Ok(None);
    }
    let mut data = Data::with_capacity(pairs.len().saturating_sub(2));
    let mut created_at = None;
    let mut expires_at = None;
    let (mut user, mut label, mut index) = (None, None, None);
    for (field, value) in pairs {
        let mut field = bytes(field, "field name")?;
        let value = bytes(value, "field value")?;
        if field.starts_with(DATA_PREFIX) {
            // The reply's own buffer becomes the key: no copy.
            field.drain(..DATA_PREFIX.len());
            let key = String::from_utf8(field)
                .map_err(|_| Error::decode("a session key stored in Redis is not UTF-8"))?;
            data.insert(key, value);
        } else if field == CREATED_FIELD {
            created_at = Some(timestamp(&value, "m:created")?);
        } else if field == EXPIRES_FIELD {
            expires_at = Some(timestamp(&value, "m:expires")?);
        } else if field == USER_FIELD {
            user = Some(value);
        } else if field == LABEL_FIELD {
            label = Some(value);
        } else if field == INDEX_FIELD {
            index = Some(value);
        } else {
            return Err(Error::decode(format!(
                "unexpected field {:?} in a session hash",
                String::from_utf8_lossy(&field)
            )));
        }
    }
    let created_at =
        created_at.ok_or_else(|| Error::decode("the session hash has no `m:created` field"))?;
    let expires_at =
        expires_at.ok_or_else(|| Error::decode("the session hash has no `m:expires` field"))?;
    if expires_at.is_reached(now) {
        // Redis and this host may disagree on the time by a little: the application's clock
        // decides, so a record is never handed out past its expiry.
        return Ok(None);
    }
    let owner = decode_owner(user, label, index, index_of)?;
    Ok(Some(Record {
        data,
        expires_at,
        created_at,
        revision: None,
        owner,
    }))
}

/// The owner of a session hash from its three owner fields: all present (bound) or none
/// (unbound); anything else, or an index field naming another key, is corrupt.
fn decode_owner(
    user: Option<Vec<u8>>,
    label: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    index_of: impl FnOnce(&UserId) -> String,
) -> Result<Option<Owner>> {
    let (user, label, index) = match (user, label, index) {
        (None, None, None) => return Ok(None),
        (Some(user), Some(label), Some(index)) => (user, label, index),
        _ => {
            return Err(Error::decode(
                "the session hash has some of its owner fields but not all",
            ));
        }
    };
    let user = String::from_utf8(user)
        .ok()
        .and_then(|user| UserId::new(user).ok())
        .ok_or_else(|| Error::decode("the `m:user` field is not a valid user id"))?;
    if index != index_of(&user).as_bytes() {
        return Err(Error::decode(
            "the `m:index` field does not name the owner's index",
        ));
    }
    let label =
        String::from_utf8(label).map_err(|_| Error::decode("the `m:label` field is not UTF-8"))?;
    Owner::new(user)
        .with_label(label)
        .map(Some)
        .map_err(|err| Error::decode("the `m:label` field is not a valid label").with_source(err))
}

/// A metadata timestamp: milliseconds since the Unix epoch, in decimal.
fn timestamp(value: &[u8], field: &str) -> Result<Timestamp> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .map(Timestamp::from_millis)
        .ok_or_else(|| Error::decode(format!("the `{field}` field is not an integer")))
}

/// The bytes of a string reply.
fn bytes(value: Value, what: &str) -> Result<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.into_bytes()),
        other => Err(unexpected(what, &other)),
    }
}

fn unexpected(what: &str, value: &Value) -> Error {
    Error::decode(format!("{what}: Redis replied with {}", shape(value)))
}

/// What kind of reply `value` is, for error messages (never its content).
pub(crate) fn shape(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) | Value::Set(_) => "an array",
        Value::Map(_) => "a map",
        Value::ServerError(_) => "an error",
        _ => "an unexpected value",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use session_core::ErrorKind;

    use super::*;

    fn bulk(bytes: &[u8]) -> Value {
        Value::BulkString(bytes.to_vec())
    }

    fn reply(fields: &[(&[u8], &[u8])]) -> Value {
        Value::Array(
            fields
                .iter()
                .flat_map(|(f, v)| [bulk(f), bulk(v)])
                .collect(),
        )
    }

    const LATER: &[u8] = b"4000000000000";

    /// A decode of an unbound record never asks for an index key.
    fn no_index(_: &UserId) -> String {
        unreachable!("an unbound record names no index")
    }

    fn index_of(user: &UserId) -> String {
        users::index_key("p:", user)
    }

    fn ada() -> Owner {
        Owner::new(UserId::new("ada").expect("valid"))
            .with_label("laptop")
            .expect("valid")
    }

    #[test]
    fn decodes_the_owner_fields() {
        let owner = ada();
        let index = index_of(&owner.user);
        let bound = |user: &[u8], label: &[u8], named: &[u8]| {
            reply(&[
                (b"m:created", b"1"),
                (b"m:expires", LATER),
                (b"m:user", user),
                (b"m:label", label),
                (b"m:index", named),
            ])
        };
        let record = decode_load(
            bound(b"ada", b"laptop", index.as_bytes()),
            Timestamp::now(),
            index_of,
        )
        .expect("valid")
        .expect("live");
        assert_eq!(record.owner, Some(owner));
        let corrupt = [
            bound(b"ada", b"laptop", b"p:user:{elsewhere}"),
            bound(b"", b"laptop", index.as_bytes()),
            bound(b"a\nb", b"laptop", index.as_bytes()),
            bound(b"ada", b"\xff", index.as_bytes()),
            bound(b"ada", b"\x07", index.as_bytes()),
            reply(&[
                (b"m:created", b"1"),
                (b"m:expires", LATER),
                (b"m:user", b"ada"),
            ]),
            reply(&[
                (b"m:created", b"1"),
                (b"m:expires", LATER),
                (b"m:index", index.as_bytes()),
            ]),
        ];
        for case in corrupt {
            let err = decode_load(case.clone(), Timestamp::now(), index_of).expect_err("corrupt");
            assert_eq!(err.kind(), ErrorKind::Decode, "{case:?}: {err}");
        }
    }

    #[test]
    fn a_binding_writes_the_owner_fields() {
        let owner = ada();
        let index = index_of(&owner.user);
        let binding = Some(Binding {
            owner: &owner,
            index: &index,
        });
        let record = Record::new(
            Data::new(),
            Timestamp::from_millis(20),
            Timestamp::from_millis(10),
        );
        let mut args: Vec<Vec<u8>> = Vec::new();
        write_create_args(&mut args, &record, binding);
        let expected: Vec<Vec<u8>> = [
            &b"20"[..],
            b"m:created",
            b"10",
            b"m:expires",
            b"20",
            b"m:user",
            b"ada",
            b"m:label",
            b"laptop",
            b"m:index",
            index.as_bytes(),
        ]
        .map(<[u8]>::to_vec)
        .to_vec();
        assert_eq!(args, expected);
        assert_fits(&args, create_args_size(&record, binding));

        let changes = ChangeSet {
            expires_at: Timestamp::from_millis(30),
            owner: Some(owner.clone()),
            ..ChangeSet::default()
        };
        let mut args: Vec<Vec<u8>> = Vec::new();
        write_update_args(&mut args, &changes, binding);
        assert_eq!(args[2], index.as_bytes(), "the index to join");
        assert_eq!(&args[5..7], [b"30".to_vec(), b"m:user".to_vec()]);
        assert_fits(&args, update_args_size(&changes, binding));

        // The RESTORE payload holds the same hash.
        let payload = restore_payload(&record, binding);
        let mut expected = vec![RDB_TYPE_HASH, 5];
        for part in &args_after_expiry(&args_of_create(&record, binding)) {
            expected.push(part.len() as u8);
            expected.extend_from_slice(part);
        }
        expected.extend_from_slice(&[6, 0]);
        assert_eq!(&payload[..payload.len() - 8], expected);
    }

    fn args_of_create(record: &Record, binding: Option<Binding<'_>>) -> Vec<Vec<u8>> {
        let mut args: Vec<Vec<u8>> = Vec::new();
        write_create_args(&mut args, record, binding);
        args
    }

    fn args_after_expiry(args: &[Vec<u8>]) -> Vec<Vec<u8>> {
        args[1..].to_vec()
    }

    #[test]
    fn decodes_the_layout() {
        let record = decode_load(
            reply(&[
                (b"m:created", b"1234"),
                (b"d:a", b"\0\xff"),
                (b"m:expires", LATER),
                (b"d:", b""),
                (b"d:m:created", b"x"),
            ]),
            Timestamp::now(),
            no_index,
        )
        .expect("valid")
        .expect("live");
        assert_eq!(record.created_at, Timestamp::from_millis(1234));
        assert_eq!(record.expires_at, Timestamp::from_millis(4_000_000_000_000));
        assert_eq!(
            record.data,
            Data::from([
                ("a".to_owned(), vec![0, 255]),
                (String::new(), vec![]),
                ("m:created".to_owned(), b"x".to_vec()),
            ])
        );
        // RESP3 answers with a map.
        let map = Value::Map(vec![
            (bulk(b"m:created"), bulk(b"1")),
            (bulk(b"m:expires"), bulk(LATER)),
        ]);
        assert!(
            decode_load(map, Timestamp::now(), no_index)
                .expect("map")
                .is_some()
        );
        assert_eq!(
            decode_load(reply(&[]), Timestamp::now(), no_index).expect("none"),
            None
        );
        assert_eq!(
            decode_load(Value::Map(Vec::new()), Timestamp::now(), no_index).expect("none"),
            None
        );
    }

    #[test]
    fn an_expired_record_is_absent_by_the_local_clock() {
        let now = Timestamp::now();
        let past = (now.as_millis() - 1).to_string();
        let past = reply(&[(b"m:created", b"1"), (b"m:expires", past.as_bytes())]);
        assert_eq!(decode_load(past, now, no_index).expect("valid"), None);
    }

    #[test]
    fn corrupt_replies_are_decode_errors() {
        let now = Timestamp::now();
        let cases = [
            reply(&[(b"d:a", b"1"), (b"m:expires", LATER)]),
            reply(&[(b"m:created", b"1"), (b"d:a", b"1")]),
            reply(&[(b"m:created", b"soon"), (b"m:expires", LATER)]),
            reply(&[(b"m:created", b"1"), (b"m:expires", b"")]),
            reply(&[(b"m:created", b"1"), (b"m:expires", LATER), (b"junk", b"1")]),
            reply(&[
                (b"m:created", b"1"),
                (b"m:expires", LATER),
                (b"d:\xff", b"1"),
            ]),
            Value::Array(vec![bulk(b"m:created")]),
            Value::Array(vec![bulk(b"m:created"), Value::Int(1)]),
            bulk(b"string"),
            Value::Int(3),
            Value::Nil,
        ];
        for case in cases {
            let err = decode_load(case.clone(), now, index_of).expect_err("corrupt");
            assert_eq!(err.kind(), ErrorKind::Decode, "{case:?}: {err}");
        }
    }

    #[test]
    fn arguments_follow_the_scripts() {
        let record = Record {
            data: Data::from([("k".to_owned(), b"v".to_vec())]),
            expires_at: Timestamp::from_millis(20),
            created_at: Timestamp::from_millis(10),
            revision: None,
            owner: None,
        };
        let mut args: Vec<Vec<u8>> = Vec::new();
        write_create_args(&mut args, &record, None);
        assert_eq!(
            args,
            [
                &b"20"[..],
                b"m:created",
                b"10",
                b"m:expires",
                b"20",
                b"d:k",
                b"v"
            ]
            .map(<[u8]>::to_vec)
        );
        assert_fits(&args, create_args_size(&record, None));
        let changes = ChangeSet {
            cleared: true,
            set: Data::from([("s".to_owned(), b"1".to_vec())]),
            removed: HashSet::from(["r".to_owned()]),
            expires_at: Timestamp::from_millis(30),
            owner: None,
        };
        let mut args: Vec<Vec<u8>> = Vec::new();
        write_update_args(&mut args, &changes, None);
        assert_eq!(
            args,
            [
                &b"30"[..],
                b"1",
                b"",
                b"1",
                b"d:r",
                b"m:expires",
                b"30",
                b"d:s",
                b"1"
            ]
            .map(<[u8]>::to_vec)
        );
        assert_fits(&args, update_args_size(&changes, None));
    }

    #[test]
    fn restore_payload_is_a_dump_of_a_plain_hash() {
        let record = Record {
            data: Data::from([("k".to_owned(), b"v".to_vec())]),
            expires_at: Timestamp::from_millis(20),
            created_at: Timestamp::from_millis(10),
            revision: None,
            owner: None,
        };
        let payload = restore_payload(&record, None);
        let mut expected = vec![RDB_TYPE_HASH, 3];
        for part in [&b"m:created"[..], b"10", b"m:expires", b"20", b"d:k", b"v"] {
            expected.push(part.len() as u8);
            expected.extend_from_slice(part);
        }
        expected.extend_from_slice(&[6, 0]);
        let (body, checksum) = payload.split_at(payload.len() - 8);
        assert_eq!(body, expected);
        assert_eq!(
            checksum,
            DUMP_CRC.checksum(&expected).to_le_bytes(),
            "CRC-64 (Jones) of the bytes before it, little-endian"
        );
    }

    #[test]
    fn rdb_lengths_take_their_shortest_form() {
        let cases: [(usize, &[u8]); 6] = [
            (0, &[0]),
            (63, &[63]),
            (64, &[0x40, 64]),
            (16_383, &[0x7f, 0xff]),
            (16_384, &[0x80, 0, 0, 0x40, 0]),
            (u32::MAX as usize + 1, &[0x81, 0, 0, 0, 1, 0, 0, 0, 0]),
        ];
        for (len, expected) in cases {
            let mut out = Vec::new();
            rdb_length(&mut out, len);
            assert_eq!(out, expected, "{len}");
        }
    }

    /// The size a command reserves is what the arguments need.
    fn assert_fits(args: &[Vec<u8>], (count, bytes): (usize, usize)) {
        assert_eq!(args.len(), count);
        assert!(args.iter().map(Vec::len).sum::<usize>() <= bytes);
    }
}
