//! The MongoDB store: one document per session in `<prefix>session`, single keys updated
//! in place with `$set` / `$unset`, expiry left to a TTL index.

use std::fmt;
use std::time::Duration;

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::error::{ErrorKind as MongoErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use session_core::secrecy::ExposeSecret;
use session_core::{
    Capabilities, ChangeSet, Data, Error, ErrorKind, IndexedSession, LockToken, Owner, Record,
    Result, SessionStore, StoreKey, Timestamp, UserId, async_trait, check_label,
};

use crate::options::validate_prefix;
use crate::{DEFAULT_PREFIX, DbOptions};

/// The MongoDB database used when neither the options nor the URL name one.
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub const DEFAULT_DATABASE: &str = "thinkjs";

/// The sub-document holding the session's values.
const DATA: &str = "d";
/// The field naming the user a session is bound to; absent for an unbound session.
const USER: &str = "user";
/// The field holding the session's label; absent for an unbound session.
const LABEL: &str = "label";
/// Keys per `delete_many` command: far below the 16 MiB a command may take.
const DELETE_BATCH: usize = 10_000;
/// The field of a lease document holding its holder's token.
const TOKEN: &str = "token";
/// The field of a lease document holding its expiry.
const EXPIRES_AT: &str = "expires_at";
/// How long after a lease lapsed the TTL index of the lease collection removes it: long
/// enough that the server's clock, which the TTL monitor goes by, never decides a lease's
/// fate (the store judges leases by the application's clock); short enough that the leases
/// of keys nobody locks again do not pile up (the manager runs no gc on a store with
/// native TTL).
const LAPSED_LEASE_KEPT: Duration = Duration::from_secs(3600);

/// Sessions in a MongoDB collection, `<prefix>session` (`think_session` by default).
///
/// One document per session:
///
/// ```text
/// { _id: "<store key: 64 hex digits>",
///   d: { "<escaped key>": BinData(0, <encoded value>), ... },
///   expire: ISODate(...),      // TTL index, expireAfterSeconds: 0
///   created: ISODate(...),
///   user: "<user id>",         // only when bound; index `user` (partial: bound only)
///   label: "<label>" }         // only when bound
/// ```
///
/// Keys are escaped so that `.` and `$` (MongoDB path syntax) and NUL are safe in field
/// names: `%` → `%25`, `.` → `%2E`, `$` → `%24`, NUL → `%00`, and the empty key is `%`.
/// A change set is one `update_one` with `$set` / `$unset` on single keys (a cleared
/// session replaces `d` whole), filtered on `expire > now`, so it is atomic, merges with
/// concurrent change sets to other keys, and never revives a deleted or expired session.
/// Only `create` upserts.
///
/// The user index is the `user` field and its index, partial on `user` existing, so that
/// unbound sessions have no entry: `create` writes the owner with the document, a change
/// set with an owner sets both fields in the same `update_one`, and
/// [`sessions_of`](SessionStore::sessions_of) is one `find` on `user` and `expire > now`.
/// A collection an earlier version created needs no change beyond the index, which
/// [`migrate`](Self::migrate) creates; its documents read as unbound.
///
/// MongoDB's TTL monitor removes expired documents about once a minute; reads filter on
/// `expire` so an expired session is never returned in between, and [`gc`](Self::gc)
/// removes them on demand.
///
/// Session locks are leases in a collection of their own, `<prefix>session_locks`, one
/// document per locked key, apart from the session documents:
///
/// ```text
/// { _id: "<store key>", token: "<lock token>", expires_at: ISODate(...) }
/// ```
///
/// - [`lock`](SessionStore::lock) is one `update_one` with `upsert`, filtered on `_id` and
///   on the lease having lapsed or being this token's. A free key is inserted; a lapsed or
///   own lease matches and is taken over; another token's unexpired lease does not match,
///   so the upsert's insert hits the unique `_id` (E11000): refused. The unique `_id`
///   makes concurrent attempts admit exactly one.
/// - [`renew_lock`](SessionStore::renew_lock) is one `update_one` filtered on `_id`, the
///   token and `expires_at > now`; [`unlock`](SessionStore::unlock) one
///   `find_one_and_delete` on `_id` and the token, which returns the expiry to tell
///   whether the lease was still good.
/// - Leases are judged by the application's clock, as sessions are. A TTL index removes a
///   lapsed lease an hour after it lapsed (so that the server's clock never decides a
///   live one), and [`gc`](Self::gc) removes lapsed leases at once (not counted).
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub struct MongoStore {
    collection: Collection<Document>,
    locks: Collection<Document>,
}

impl MongoStore {
    /// A store on `database` with the default prefix (`think_session`). Call
    /// [`migrate`](Self::migrate) to create the TTL index.
    pub fn new(database: &Database) -> Self {
        Self::on(database, DEFAULT_PREFIX)
    }

    /// The store on `database` with collections named with `prefix` (validated).
    fn on(database: &Database, prefix: &str) -> Self {
        Self {
            collection: database.collection(&format!("{prefix}session")),
            locks: database.collection(&format!("{prefix}session_locks")),
        }
    }

    /// Uses collection `<prefix>session` instead.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] if `prefix` is not an identifier (see [`DbOptions::prefix`]).
    pub fn with_prefix(self, prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        let database = self
            .collection
            .client()
            .database(self.collection.namespace().db.as_str());
        Ok(Self::on(&database, prefix))
    }

    /// Connects as `options` say (the pool size, and `acquire_timeout` as the server
    /// selection and connect timeout), and creates the TTL index if `options.migrate`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a bad URL or prefix; backend errors if the index cannot be
    /// created.
    pub async fn connect(options: &DbOptions) -> Result<Self> {
        validate_prefix(&options.prefix)?;
        let mut client_options = ClientOptions::parse(options.url.expose_secret())
            .await
            .map_err(|err| Error::config("adapter.db.url", err))?;
        client_options.max_pool_size = Some(options.max_connections.max(1));
        client_options.min_pool_size = Some(options.min_connections);
        client_options.server_selection_timeout = Some(options.acquire_timeout);
        client_options.connect_timeout = Some(options.acquire_timeout);
        let database = options
            .database
            .clone()
            .or_else(|| client_options.default_database.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let client = Client::with_options(client_options)
            .map_err(|err| Error::config("adapter.db.url", err))?;
        let store = Self::new(&client.database(&database)).with_prefix(&options.prefix)?;
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates the TTL index on `expire` (`expireAfterSeconds: 0`), the partial index on
    /// `user`, and the TTL index of the lease collection (`expires_at`, an hour after a
    /// lease lapsed) if they are missing; safe to run again and from several processes.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn migrate(&self) -> Result<()> {
        let ttl = IndexModel::builder()
            .keys(doc! { "expire": 1 })
            .options(
                IndexOptions::builder()
                    .name("expire_ttl".to_owned())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build();
        let users = IndexModel::builder()
            .keys(doc! { USER: 1 })
            .options(
                IndexOptions::builder()
                    .name("user".to_owned())
                    .partial_filter_expression(doc! { USER: { "$exists": true } })
                    .build(),
            )
            .build();
        self.collection
            .create_indexes([ttl, users])
            .await
            .map_err(|err| mongo_error("migrate", err))?;
        let lapsed = IndexModel::builder()
            .keys(doc! { EXPIRES_AT: 1 })
            .options(
                IndexOptions::builder()
                    .name("expires_at_ttl".to_owned())
                    .expire_after(LAPSED_LEASE_KEPT)
                    .build(),
            )
            .build();
        self.locks
            .create_index(lapsed)
            .await
            .map_err(|err| mongo_error("migrate", err))?;
        Ok(())
    }

    /// The collection the store uses.
    pub fn collection(&self) -> &Collection<Document> {
        &self.collection
    }

    /// The collection of the session locks' leases, `<prefix>session_locks`.
    pub fn lock_collection(&self) -> &Collection<Document> {
        &self.locks
    }
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("namespace", &self.collection.namespace().to_string())
            .field("locks", &self.locks.namespace().to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for MongoStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        // Documents whose expiry is missing or not a date are fetched too, so they can be
        // reported as corrupt instead of silently ignored.
        let filter = at_key_where_expire(key, doc! { "$gt": date(Timestamp::now()) });
        let found = self
            .collection
            .find_one(filter)
            .await
            .map_err(|err| mongo_error("load", err))?;
        let Some(document) = found else {
            return Ok(None);
        };
        match decode_document(&document) {
            Ok(record) => Ok(Some(record)),
            Err(err) => {
                tracing::warn!(
                    session = key.short(),
                    backend = "mongodb",
                    error = %format_args!("{err:#}"),
                    "corrupt session document; treated as no session"
                );
                Err(err)
            }
        }
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        // Replace a dead (or corrupt-expiry) document, or insert when there is none. A live
        // document does not match the filter, so the upsert's insert hits the unique `_id`:
        // "taken".
        let filter = at_key_where_expire(key, doc! { "$lte": date(Timestamp::now()) });
        let mut data = Document::new();
        for (name, value) in &record.data {
            data.insert(escape_key(name), binary(value));
        }
        let mut replacement = doc! {
            "_id": key.as_str(),
            DATA: data,
            "expire": date(record.expires_at),
            "created": date(record.created_at),
        };
        if let Some(owner) = &record.owner {
            set_owner(&mut replacement, owner);
        }
        match self
            .collection
            .replace_one(filter, replacement)
            .upsert(true)
            .await
        {
            Ok(result) => Ok(result.matched_count == 1 || result.upserted_id.is_some()),
            Err(err) if is_duplicate_key(&err) => Ok(false),
            Err(err) => Err(mongo_error("create", err)),
        }
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        let filter = doc! { "_id": key.as_str(), "expire": { "$gt": date(Timestamp::now()) } };
        let mut set = doc! { "expire": date(changes.expires_at) };
        if let Some(owner) = &changes.owner {
            set_owner(&mut set, owner);
        }
        let mut unset = Document::new();
        if changes.cleared {
            let mut data = Document::new();
            for (name, value) in &changes.set {
                data.insert(escape_key(name), binary(value));
            }
            set.insert(DATA, data);
        } else {
            for (name, value) in &changes.set {
                set.insert(format!("{DATA}.{}", escape_key(name)), binary(value));
            }
            for name in &changes.removed {
                unset.insert(format!("{DATA}.{}", escape_key(name)), "");
            }
        }
        let mut update = doc! { "$set": set };
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        let result = self
            .collection
            .update_one(filter, update)
            .await
            .map_err(|err| mongo_error("update", err))?;
        Ok(result.matched_count == 1)
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let filter = doc! { "_id": key.as_str(), "expire": { "$gt": date(Timestamp::now()) } };
        let result = self
            .collection
            .update_one(filter, doc! { "$set": { "expire": date(expires_at) } })
            .await
            .map_err(|err| mongo_error("touch", err))?;
        Ok(result.matched_count == 1)
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let now = Timestamp::now();
        let removed = self
            .collection
            .find_one_and_delete(doc! { "_id": key.as_str() })
            .projection(doc! { "expire": 1 })
            .await
            .map_err(|err| mongo_error("delete", err))?;
        Ok(removed
            .and_then(|document| match document.get("expire") {
                Some(Bson::DateTime(expire)) => Some(expire.timestamp_millis()),
                _ => None,
            })
            .is_some_and(|expire| expire > now.as_millis()))
    }

    async fn gc(&self) -> Result<u64> {
        // The TTL index does this about once a minute; gc does it now, in one server-side
        // pass that yields between documents.
        let result = self
            .collection
            .delete_many(doc! { "expire": { "$lte": date(Timestamp::now()) } })
            .await
            .map_err(|err| mongo_error("gc", err))?;
        // Lapsed leases go too (the TTL index would take an hour); they are no sessions,
        // so they are not counted.
        self.locks
            .delete_many(doc! { EXPIRES_AT: { "$lte": date(Timestamp::now()) } })
            .await
            .map_err(|err| mongo_error("gc", err))?;
        Ok(result.deleted_count)
    }

    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        let now = date(Timestamp::now());
        let mut removed = 0;
        for batch in keys.chunks(DELETE_BATCH) {
            let ids: Vec<&str> = batch.iter().map(StoreKey::as_str).collect();
            let result = self
                .collection
                .delete_many(doc! { "_id": { "$in": ids }, "expire": { "$gt": now } })
                .await
                .map_err(|err| mongo_error("delete_many", err))?;
            removed += result.deleted_count;
        }
        Ok(removed)
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let filter = doc! { USER: user.as_str(), "expire": { "$gt": date(Timestamp::now()) } };
        let mut cursor = self
            .collection
            .find(filter)
            .projection(doc! { "_id": 1, "expire": 1, "created": 1, LABEL: 1 })
            .await
            .map_err(|err| mongo_error("sessions_of", err))?;
        let mut sessions = Vec::new();
        while cursor
            .advance()
            .await
            .map_err(|err| mongo_error("sessions_of", err))?
        {
            let document = cursor
                .deserialize_current()
                .map_err(|err| mongo_error("sessions_of", err))?;
            match indexed_session(&document) {
                Ok(session) => sessions.push(session),
                // One foreign document must not hide a user's other sessions.
                Err(err) => tracing::warn!(
                    backend = "mongodb",
                    error = %format_args!("{err:#}"),
                    "unreadable session document in a user's listing; left out"
                ),
            }
        }
        Ok(sessions)
    }

    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        self.collection
            .count_documents(doc! { USER: user.as_str() })
            .await
            .map_err(|err| mongo_error("user_index_len", err))
    }

    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let now = Timestamp::now();
        // A lease that lapsed, or whose expiry is missing or not a date (only a foreign
        // document has such a one), is taken over; so is this token's own.
        let filter = doc! {
            "_id": key.as_str(),
            "$or": [
                { EXPIRES_AT: { "$lte": date(now) } },
                { EXPIRES_AT: { "$not": { "$type": "date" } } },
                { TOKEN: token.as_str() },
            ],
        };
        let update = doc! { "$set": { TOKEN: token.as_str(), EXPIRES_AT: date(now + ttl) } };
        match self.locks.update_one(filter, update).upsert(true).await {
            // Matched: taken over (or asked again by the holder, which may change
            // nothing). Upserted: the key was free.
            Ok(result) => Ok(result.matched_count == 1 || result.upserted_id.is_some()),
            // Another token's unexpired lease holds the `_id` the upsert would insert.
            Err(err) if is_duplicate_key(&err) => Ok(false),
            Err(err) => Err(mongo_error("lock", err)),
        }
    }

    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let now = Timestamp::now();
        let filter = doc! {
            "_id": key.as_str(),
            TOKEN: token.as_str(),
            EXPIRES_AT: { "$gt": date(now) },
        };
        let result = self
            .locks
            .update_one(filter, doc! { "$set": { EXPIRES_AT: date(now + ttl) } })
            .await
            .map_err(|err| mongo_error("renew_lock", err))?;
        Ok(result.matched_count == 1)
    }

    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        let now = Timestamp::now();
        let removed = self
            .locks
            .find_one_and_delete(doc! { "_id": key.as_str(), TOKEN: token.as_str() })
            .projection(doc! { EXPIRES_AT: 1 })
            .await
            .map_err(|err| mongo_error("unlock", err))?;
        Ok(removed
            .and_then(|document| match document.get(EXPIRES_AT) {
                Some(Bson::DateTime(until)) => Some(until.timestamp_millis()),
                _ => None,
            })
            .is_some_and(|until| until > now.as_millis()))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_native_ttl(true)
            .with_shared(true)
            .with_persistent(true)
            .with_user_index(true)
            .with_lock(true)
    }
}

/// Writes the owner fields into `document` (a replacement or a `$set`).
fn set_owner(document: &mut Document, owner: &Owner) {
    document.insert(USER, owner.user.as_str());
    document.insert(LABEL, owner.label.as_str());
}

/// The document at `key` whose `expire` meets `condition`, or whose `expire` is missing or
/// not a date (only a corrupt or foreign document has such an expiry).
fn at_key_where_expire(key: &StoreKey, condition: Document) -> Document {
    doc! {
        "_id": key.as_str(),
        "$or": [
            { "expire": condition },
            { "expire": { "$not": { "$type": "date" } } },
        ],
    }
}

fn date(timestamp: Timestamp) -> DateTime {
    DateTime::from_millis(timestamp.as_millis())
}

fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

fn mongo_error(operation: &'static str, err: mongodb::error::Error) -> Error {
    let kind = match err.kind.as_ref() {
        MongoErrorKind::ServerSelection { .. } => ErrorKind::Timeout,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("mongodb: {operation} failed")).with_source(err)
}

fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match err.kind.as_ref() {
        MongoErrorKind::Write(WriteFailure::WriteError(write)) => write.code == DUPLICATE_KEY,
        MongoErrorKind::Command(command) => command.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// A session key as a field name: `%`, `.`, `$` and NUL percent-escaped; the empty key,
/// which no escape produces, as `%`.
pub(crate) fn escape_key(key: &str) -> String {
    if key.is_empty() {
        return "%".to_owned();
    }
    let mut escaped = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '.' => escaped.push_str("%2E"),
            '$' => escaped.push_str("%24"),
            '\0' => escaped.push_str("%00"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The inverse of [`escape_key`].
///
/// # Errors
/// [`ErrorKind::Decode`] for an escape this crate does not write.
pub(crate) fn unescape_key(field: &str) -> Result<String> {
    if field == "%" {
        return Ok(String::new());
    }
    let mut key = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('%') {
        key.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        key.push(match code {
            Some("25") => '%',
            Some("2E") => '.',
            Some("24") => '$',
            Some("00") => '\0',
            _ => return Err(Error::decode("session field name with an unknown escape")),
        });
        rest = &rest[at + 3..];
    }
    key.push_str(rest);
    Ok(key)
}

/// The date in `field` of a session document.
fn instant(document: &Document, field: &str) -> Result<Timestamp> {
    match document.get(field) {
        Some(Bson::DateTime(at)) => Ok(Timestamp::from_millis(at.timestamp_millis())),
        _ => Err(Error::decode(format!(
            "session document field `{field}` is missing or not a date"
        ))),
    }
}

/// The label of a bound session document: absent reads as empty.
fn label(document: &Document) -> Result<String> {
    let label = match document.get(LABEL) {
        None => String::new(),
        Some(Bson::String(label)) => label.clone(),
        Some(_) => return Err(Error::decode("session document field `label` is not text")),
    };
    check_label(&label)
        .map_err(|err| Error::decode("session document label is not valid").with_source(err))?;
    Ok(label)
}

/// The owner a session document names, if any.
fn owner(document: &Document) -> Result<Option<Owner>> {
    let user = match document.get(USER) {
        None => return Ok(None),
        Some(Bson::String(user)) => UserId::new(user.as_str()).map_err(|err| {
            Error::decode("session document user is not a valid user id").with_source(err)
        })?,
        Some(_) => return Err(Error::decode("session document field `user` is not text")),
    };
    Ok(Some(Owner {
        user,
        label: label(document)?,
    }))
}

/// A listed document (`_id`, `expire`, `created`, `label`) as an index entry.
fn indexed_session(document: &Document) -> Result<IndexedSession> {
    let key = match document.get("_id") {
        Some(Bson::String(id)) => StoreKey::parse(id)?,
        _ => return Err(Error::decode("session document `_id` is not a store key")),
    };
    Ok(IndexedSession {
        key,
        created_at: instant(document, "created")?,
        expires_at: instant(document, "expire")?,
        label: label(document)?,
    })
}

/// A session document as a record.
fn decode_document(document: &Document) -> Result<Record> {
    let expires_at = instant(document, "expire")?;
    let created_at = instant(document, "created")?;
    let Some(Bson::Document(fields)) = document.get(DATA) else {
        return Err(Error::decode(
            "session document field `d` is missing or not a document",
        ));
    };
    let mut data = Data::with_capacity(fields.len());
    for (field, value) in fields {
        let Bson::Binary(binary) = value else {
            return Err(Error::decode("session value is not binary"));
        };
        data.insert(unescape_key(field)?, binary.bytes.clone());
    }
    Ok(Record {
        data,
        expires_at,
        created_at,
        revision: None,
        owner: owner(document)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_escape_and_unescape() {
        for key in [
            "", "a.b.c", "$where", "$", "%", "%2E", "%%", "a\0b", "ключ", "😀", "plain",
        ] {
            let escaped = escape_key(key);
            assert!(!escaped.contains('.') && !escaped.contains('$') && !escaped.contains('\0'));
            assert!(!escaped.is_empty());
            assert_eq!(unescape_key(&escaped).expect("unescape"), key);
        }
        for bad in ["%", "%2", "%zz", "a%"] {
            if bad == "%" {
                continue;
            }
            assert_eq!(unescape_key(bad).expect_err(bad).kind(), ErrorKind::Decode);
        }
    }

    #[test]
    fn corrupt_documents_are_decode_errors() {
        let now = DateTime::from_millis(1);
        for document in [
            doc! { "_id": "x" },
            doc! { "_id": "x", "d": {}, "expire": "soon", "created": now },
            doc! { "_id": "x", "d": 5, "expire": now, "created": now },
            doc! { "_id": "x", "d": { "a": "text" }, "expire": now, "created": now },
            doc! { "_id": "x", "d": { "a%zz": binary(b"1") }, "expire": now, "created": now },
        ] {
            assert_eq!(
                decode_document(&document).expect_err("corrupt").kind(),
                ErrorKind::Decode
            );
        }
        let good = doc! {
            "_id": "x", "d": { "a%2Eb": binary(b"1"), "%": binary(b"") },
            "expire": DateTime::from_millis(7), "created": DateTime::from_millis(3),
        };
        let record = decode_document(&good).expect("valid");
        assert_eq!(record.expires_at, Timestamp::from_millis(7));
        assert_eq!(record.data.get("a.b"), Some(&b"1".to_vec()));
        assert_eq!(record.data.get(""), Some(&Vec::new()));
        assert_eq!(record.owner, None, "a document without `user` is unbound");
    }

    #[test]
    fn owners_round_trip_through_documents() {
        let owner = Owner::new(UserId::new("ada@example.org").expect("valid"))
            .with_label("Firefox on Linux")
            .expect("valid");
        let key = session_core::SessionId::generate(32)
            .expect("id")
            .store_key();
        let mut document = doc! {
            "_id": key.as_str(), "d": {},
            "expire": DateTime::from_millis(9), "created": DateTime::from_millis(3),
        };
        set_owner(&mut document, &owner);
        assert_eq!(
            decode_document(&document).expect("valid").owner,
            Some(owner.clone())
        );
        let listed = indexed_session(&document).expect("listed");
        assert_eq!(listed.key, key);
        assert_eq!(listed.created_at, Timestamp::from_millis(3));
        assert_eq!(listed.expires_at, Timestamp::from_millis(9));
        assert_eq!(listed.label, owner.label);

        document.remove(LABEL);
        assert_eq!(
            decode_document(&document).expect("valid").owner,
            Some(Owner::new(owner.user.clone())),
            "a bound document without a label has an empty one"
        );
        for (field, bad) in [
            (USER, Bson::Int32(5)),
            (USER, Bson::String(String::new())),
            (USER, Bson::String("a\nb".to_owned())),
            (LABEL, Bson::Int32(5)),
        ] {
            let mut corrupt = document.clone();
            corrupt.insert(field, bad);
            assert_eq!(
                decode_document(&corrupt).expect_err("corrupt").kind(),
                ErrorKind::Decode
            );
        }
        document.insert("_id", "not a key");
        assert!(indexed_session(&document).is_err());
    }
}
