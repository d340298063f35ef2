//! How a record is laid out in Redis, and the Lua scripts that read and write it atomically.
//!
//! One key per session, `<prefix><store key hex>`, holding a hash:
//!
//! | field        | value |
//! |--------------|-------|
//! | `m:created`  | `created_at`, milliseconds since the Unix epoch, in decimal |
//! | `d:<key>`    | the encoded value of session key `<key>` (any bytes) |
//!
//! Data fields carry a prefix so that no session key (not even `m:created` or the empty
//! string) can collide with the metadata. The expiry is the key's own: every write sets
//! it with `PEXPIREAT` inside the same script, so no key ever lives without a TTL, and a
//! record written with an expiry already past is deleted by Redis at once.

use std::borrow::Cow;
use std::sync::LazyLock;

use redis::{Script, Value};
use session_core::{ChangeSet, Data, Error, Record, Result, Timestamp};

/// The metadata field holding `created_at`.
pub(crate) const CREATED_FIELD: &[u8] = b"m:created";

/// The prefix of data fields.
const DATA_PREFIX: &[u8] = b"d:";

/// Redis fields per `HSET`/`HDEL` call inside a script: Lua's `unpack` has a stack limit,
/// so long argument lists are applied in slices.
const LUA_SLICE: &str = "1000";

/// Reads a record in one step: its fields and its absolute expiry.
///
/// Replies `nil` when the key does not exist, the key's type when it is not a hash (left
/// to the decoder to report), or `{pexpiretime, {field, value, ...}}`.
/// `PEXPIRETIME` needs Redis 7.0.
pub(crate) static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
local kind = redis.call('TYPE', key).ok
if kind == 'none' then return false end
if kind ~= 'hash' then return kind end
return {redis.call('PEXPIRETIME', key), redis.call('HGETALL', key)}
",
    )
});

/// Lua helper shared by the write scripts: applies `command` to `ARGV[first..last]` in
/// slices that `unpack` can handle. The slice length is even, so `HSET` pairs stay whole.
fn with_slices(body: &str) -> String {
    format!(
        r"
local function sliced(command, first, last)
  while first <= last do
    local stop = math.min(first + {LUA_SLICE} - 1, last)
    redis.call(command, KEYS[1], unpack(ARGV, first, stop))
    first = stop + 1
  end
end
{body}"
    )
}

/// Creates a record only where there is none.
///
/// `ARGV[1]` is the expiry in milliseconds, then field/value pairs (`m:created` first).
/// A live session hash (one with `m:created`) is left alone and the reply is 0; anything
/// else at the key (a foreign type, a hash without metadata) counts as corrupt and is
/// replaced. An expired key does not exist for Redis, so it is replaced too. The reply is
/// 1 when the record was written; with an expiry already past, `PEXPIREAT` deletes it at
/// once, which is what an already-expired record must be: absent.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_slices(
        r"
local key = KEYS[1]
local kind = redis.call('TYPE', key).ok
if kind ~= 'none' then
  if kind == 'hash' and redis.call('HEXISTS', key, 'm:created') == 1 then return 0 end
  redis.call('DEL', key)
end
sliced('HSET', 2, #ARGV)
redis.call('PEXPIREAT', key, ARGV[1])
return 1
",
    ))
});

/// Applies a change set to an existing record only.
///
/// `ARGV[1]` is the new expiry in milliseconds, `ARGV[2]` is `1` to clear every data field
/// first, `ARGV[3]` the number `n` of fields to remove, `ARGV[4..4+n]` those fields, and
/// the rest field/value pairs to set. Replies 0 without writing anything when there is no
/// session hash at the key (deleted by a logout, or expired): a change set never brings a
/// session back.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_slices(
        r"
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
if ARGV[2] == '1' then
  local created = redis.call('HGET', key, 'm:created')
  redis.call('DEL', key)
  if created then redis.call('HSET', key, 'm:created', created) end
end
local removed = tonumber(ARGV[3])
sliced('HDEL', 4, 3 + removed)
sliced('HSET', 4 + removed, #ARGV)
redis.call('PEXPIREAT', key, ARGV[1])
return 1
",
    ))
});

/// The hash field of session key `key`.
pub(crate) fn data_field(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(DATA_PREFIX.len() + key.len());
    field.extend_from_slice(DATA_PREFIX);
    field.extend_from_slice(key.as_bytes());
    field
}

/// The arguments of [`CREATE`] for `record`.
pub(crate) fn create_args(record: &Record) -> Vec<Cow<'_, [u8]>> {
    let mut args = Vec::with_capacity(3 + 2 * record.data.len());
    args.push(millis(record.expires_at));
    args.push(Cow::Borrowed(CREATED_FIELD));
    args.push(millis(record.created_at));
    for (key, value) in &record.data {
        args.push(Cow::Owned(data_field(key)));
        args.push(Cow::Borrowed(value.as_slice()));
    }
    args
}

/// The arguments of [`UPDATE`] for `changes`.
pub(crate) fn update_args(changes: &ChangeSet) -> Vec<Cow<'_, [u8]>> {
    let mut args = Vec::with_capacity(3 + changes.removed.len() + 2 * changes.set.len());
    args.push(millis(changes.expires_at));
    args.push(Cow::Borrowed(if changes.cleared { b"1" } else { b"0" }));
    args.push(Cow::Owned(changes.removed.len().to_string().into_bytes()));
    for key in &changes.removed {
        args.push(Cow::Owned(data_field(key)));
    }
    for (key, value) in &changes.set {
        args.push(Cow::Owned(data_field(key)));
        args.push(Cow::Borrowed(value.as_slice()));
    }
    args
}

fn millis(timestamp: Timestamp) -> Cow<'static, [u8]> {
    Cow::Owned(timestamp.as_millis().to_string().into_bytes())
}

/// Turns the reply of [`LOAD`] into a record; `None` when there is none or it has expired
/// by `now`. Anything that does not follow the layout is a decode error, never a panic.
pub(crate) fn decode_load(reply: Value, now: Timestamp) -> Result<Option<Record>> {
    let items = match reply {
        Value::Nil => return Ok(None),
        Value::Array(items) => items,
        Value::BulkString(kind) => {
            return Err(Error::decode(format!(
                "the session key holds a {}, not a hash",
                String::from_utf8_lossy(&kind)
            )));
        }
        Value::SimpleString(kind) => {
            return Err(Error::decode(format!(
                "the session key holds a {kind}, not a hash"
            )));
        }
        other => return Err(unexpected("load reply", &other)),
    };
    let [expiry, fields] = <[Value; 2]>::try_from(items)
        .map_err(|items| Error::decode(format!("load reply has {} items, not 2", items.len())))?;
    let expires_at = match expiry {
        Value::Int(millis) if millis >= 0 => Timestamp::from_millis(millis),
        // The key vanished between the two reads; a script runs atomically, so this only
        // guards against a future change of the script.
        Value::Int(-2) => return Ok(None),
        Value::Int(-1) => {
            return Err(Error::decode("the session key has no expiry"));
        }
        other => return Err(unexpected("expiry", &other)),
    };
    if expires_at.is_reached(now) {
        // Redis and this host may disagree on the time by a little: the application's clock
        // decides, so a record is never handed out past its expiry.
        return Ok(None);
    }
    let pairs = match fields {
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
    let mut data = Data::with_capacity(pairs.len().saturating_sub(1));
    let mut created_at = None;
    for (field, value) in pairs {
        let field = bytes(field, "field name")?;
        let value = bytes(value, "field value")?;
        if let Some(key) = field.strip_prefix(DATA_PREFIX) {
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| Error::decode("a session key stored in Redis is not UTF-8"))?;
            data.insert(key, value);
        } else if field == CREATED_FIELD {
            let millis = std::str::from_utf8(&value)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| Error::decode("the `m:created` field is not an integer"))?;
            created_at = Some(Timestamp::from_millis(millis));
        } else {
            return Err(Error::decode(format!(
                "unexpected field {:?} in a session hash",
                String::from_utf8_lossy(&field)
            )));
        }
    }
    let created_at =
        created_at.ok_or_else(|| Error::decode("the session hash has no `m:created` field"))?;
    Ok(Some(Record {
        data,
        expires_at,
        created_at,
        revision: None,
    }))
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
    let shape = match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) | Value::Set(_) => "an array",
        Value::Map(_) => "a map",
        Value::ServerError(_) => "an error",
        _ => "an unexpected value",
    };
    Error::decode(format!("{what}: Redis replied with {shape}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use session_core::ErrorKind;

    use super::*;

    fn bulk(bytes: &[u8]) -> Value {
        Value::BulkString(bytes.to_vec())
    }

    fn reply(expiry: i64, fields: &[(&[u8], &[u8])]) -> Value {
        Value::Array(vec![
            Value::Int(expiry),
            Value::Array(
                fields
                    .iter()
                    .flat_map(|(f, v)| [bulk(f), bulk(v)])
                    .collect(),
            ),
        ])
    }

    const LATER: i64 = 4_000_000_000_000;

    #[test]
    fn decodes_the_layout() {
        let record = decode_load(
            reply(
                LATER,
                &[
                    (b"m:created", b"1234"),
                    (b"d:a", b"\0\xff"),
                    (b"d:", b""),
                    (b"d:m:created", b"x"),
                ],
            ),
            Timestamp::now(),
        )
        .expect("valid")
        .expect("live");
        assert_eq!(record.created_at, Timestamp::from_millis(1234));
        assert_eq!(record.expires_at, Timestamp::from_millis(LATER));
        assert_eq!(
            record.data,
            Data::from([
                ("a".to_owned(), vec![0, 255]),
                (String::new(), vec![]),
                ("m:created".to_owned(), b"x".to_vec()),
            ])
        );
        assert_eq!(
            decode_load(Value::Nil, Timestamp::now()).expect("nil"),
            None
        );
        assert_eq!(
            decode_load(reply(-2, &[]), Timestamp::now()).expect("gone"),
            None
        );
    }

    #[test]
    fn an_expired_record_is_absent_by_the_local_clock() {
        let now = Timestamp::now();
        let past = reply(now.as_millis() - 1, &[(b"m:created", b"1")]);
        assert_eq!(decode_load(past, now).expect("valid"), None);
    }

    #[test]
    fn corrupt_replies_are_decode_errors() {
        let now = Timestamp::now();
        let cases = [
            reply(LATER, &[(b"d:a", b"1")]),
            reply(LATER, &[(b"m:created", b"soon"), (b"d:a", b"1")]),
            reply(LATER, &[(b"m:created", b"1"), (b"junk", b"1")]),
            reply(LATER, &[(b"m:created", b"1"), (b"d:\xff", b"1")]),
            reply(-1, &[(b"m:created", b"1")]),
            Value::Array(vec![Value::Int(LATER)]),
            Value::Array(vec![
                Value::Int(LATER),
                Value::Array(vec![bulk(b"m:created")]),
            ]),
            Value::Array(vec![bulk(b"x"), Value::Array(vec![])]),
            Value::Array(vec![
                Value::Int(LATER),
                Value::Array(vec![bulk(b"m:created"), Value::Int(1)]),
            ]),
            bulk(b"string"),
            Value::SimpleString("list".into()),
            Value::Int(3),
        ];
        for case in cases {
            let err = decode_load(case.clone(), now).expect_err("corrupt");
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
        };
        assert_eq!(
            create_args(&record),
            [&b"20"[..], b"m:created", b"10", b"d:k", b"v"].map(Cow::Borrowed)
        );
        let changes = ChangeSet {
            cleared: true,
            set: Data::from([("s".to_owned(), b"1".to_vec())]),
            removed: HashSet::from(["r".to_owned()]),
            expires_at: Timestamp::from_millis(30),
        };
        assert_eq!(
            update_args(&changes),
            [&b"30"[..], b"1", b"1", b"d:r", b"d:s", b"1"].map(Cow::Borrowed)
        );
    }
}
