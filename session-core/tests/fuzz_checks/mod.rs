//! The property checks of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (through
//! `#[path]`) and by the `fuzz_corpus` test, which replays the committed seed corpora.
//!
//! Each check takes arbitrary bytes and panics when a property fails: libFuzzer reports a
//! panic as a crash, the corpus test as a failed file. Only `session_core`'s public API,
//! `serde` and the standard library are used, so both crates can compile this file.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use session_core::secrecy::SecretString;
use session_core::{
    Capabilities, ChangeSet, Codec, ErrorKind, MAX_ID_LENGTH, MAX_VALUE_SIZE_LIMIT, MIN_ID_LENGTH,
    Record, Result, SessionConfig, SessionId, SessionManager, SessionStore, Signer, StoreKey,
    Timestamp, async_trait, wire,
};

/// A property check: panics when `input` breaks a property.
pub(crate) type Check = fn(input: &[u8]);

/// Every target, by the name of its fuzz target and corpus folder.
pub(crate) const TARGETS: [(&str, Check); 4] = [
    ("cookie", cookie),
    ("session_id", session_id),
    ("codec", codec),
    ("config", config),
];

/// The targets of the client-side types' token decoders, with their features on.
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
pub(crate) const CLIENT_TARGETS: [(&str, Check); 2] = [("sealed", sealed), ("jwt", jwt)];

/// The secret of the client-side checks' managers; the seed tokens were made with it.
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
const CLIENT_SECRET: &str = "the fuzz checks' client-side secret";

/// `type = "cookie"` tokens: arbitrary bytes as the cookie value, and a genuine token
/// damaged by the input. Nothing panics; a damaged token never opens; a token that opens
/// carries a session that survives being written and read again.
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
pub(crate) fn sealed(input: &[u8]) {
    let manager = client_manager("cookie", "cookie");
    let header = [COOKIE_NAME, b"=", input].concat();
    check_client_token(&manager, |_| vec![header.clone()]);
    let genuine = genuine_token(&manager);
    let damaged = damage(genuine.as_bytes(), input);
    if damaged != genuine.as_bytes() {
        let header = [COOKIE_NAME, b"=", &damaged].concat();
        let session = manager.session([header.as_slice()]);
        assert!(
            !block_on(session.exists()).expect("no store call"),
            "a damaged token opened"
        );
    }
}

/// `type = "jwt"` tokens: arbitrary bytes as the bearer token, and a genuine token damaged
/// by the input, with the same properties as [`sealed`].
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
pub(crate) fn jwt(input: &[u8]) {
    let manager = client_manager("jwt", "bearer");
    let bearer = [b"Bearer ", input].concat();
    check_client_token(&manager, |name| {
        if name == "authorization" {
            vec![bearer.clone()]
        } else {
            Vec::new()
        }
    });
    let genuine = genuine_token(&manager);
    let damaged = damage(genuine.as_bytes(), input);
    if damaged != genuine.as_bytes() {
        let bearer = [b"Bearer ", damaged.as_slice()].concat();
        let session = manager.session_from_headers(|name| {
            if name == "authorization" {
                vec![bearer.as_slice()]
            } else {
                Vec::new()
            }
        });
        assert!(
            !block_on(session.exists()).expect("no store call"),
            "a damaged token opened"
        );
    }
}

#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
fn client_manager(store_type: &str, transport: &str) -> SessionManager {
    let config = SessionConfig::from_json_str(&format!(
        r#"{{"type": "{store_type}", "secret": "{CLIENT_SECRET}", "transport": "{transport}",
            "timeout": "36500d"}}"#
    ))
    .expect("the check's configuration is valid");
    SessionManager::client_side(config).expect("the check's manager builds")
}

/// Opens the request whose headers `headers` gives; if it carries a session, that session
/// must be written and read back whole.
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
fn check_client_token(manager: &SessionManager, headers: impl Fn(&str) -> Vec<Vec<u8>>) {
    let values: Vec<(String, Vec<Vec<u8>>)> = ["cookie", "authorization"]
        .iter()
        .map(|name| ((*name).to_owned(), headers(name)))
        .collect();
    let session = manager.session_from_headers(|name| {
        values
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter().map(Vec::as_slice))
            .collect::<Vec<_>>()
    });
    if !block_on(session.exists()).expect("no store call") {
        return;
    }
    let mut keys = block_on(session.keys()).expect("keys");
    keys.sort();
    block_on(session.set("fuzz", &1u8)).expect("set");
    let token = block_on(session.flush())
        .expect("a session that opened can be written")
        .expect("a changed session sends a token");
    let next = reopen(manager, session.transport(), token.value());
    let mut again = block_on(next.keys()).expect("keys");
    again.retain(|key| key != "fuzz");
    again.sort();
    assert_eq!(
        again, keys,
        "the keys of a session that opened did not survive a write"
    );
}

/// A token of a fresh session holding one value, as the request's transport carries it.
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
fn genuine_token(manager: &SessionManager) -> String {
    let session = manager.session_from_headers(|_| Vec::<&[u8]>::new());
    block_on(session.set("user", "ada")).expect("set");
    let token = block_on(session.flush()).expect("flush").expect("a token");
    let value = token.value().to_owned();
    assert!(
        block_on(reopen(manager, session.transport(), &value).exists()).expect("no store call"),
        "a genuine token did not open"
    );
    value
}

/// The session of a request carrying `token` in `transport`.
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
fn reopen(
    manager: &SessionManager,
    transport: session_core::transport::Transport,
    token: &str,
) -> session_core::Session {
    let cookie = format!("thinkjs={token}");
    let bearer = format!("Bearer {token}");
    manager.session_from_headers(|name| match (name, transport) {
        ("cookie", session_core::transport::Transport::Cookie) => vec![cookie.as_bytes()],
        ("authorization", session_core::transport::Transport::Bearer) => vec![bearer.as_bytes()],
        _ => Vec::new(),
    })
}

/// `genuine` damaged by `input`: its bytes XORed with the input's, cut to a length the
/// first byte chooses when it is odd.
#[cfg(all(feature = "cookie-session", feature = "jwt-session"))]
fn damage(genuine: &[u8], input: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = genuine
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ input.get(i + 1).copied().unwrap_or(0))
        .collect();
    if let Some(first) = input.first()
        && first % 2 == 1
    {
        bytes.truncate(usize::from(*first) % bytes.len().max(1));
    }
    bytes
}

/// The cookie name of the managers the cookie check builds (ThinkJS's default).
const COOKIE_NAME: &[u8] = b"thinkjs";

/// The secret of the test vector in `signing.rs`, so the seed cookies verify.
const SECRET: &str = "s3cr3t-k3y";

/// A retired secret that still verifies (rotation); ThinkJS's "abc" vector uses it.
const OLD_SECRET: &str = "secret";

/// The one session the cookie check's store holds; the seeds carry it, signed and not.
const KNOWN_ID: &str = "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D";

/// The longest cookie value the manager looks at (`MAX_COOKIE_VALUE_LEN` in `manager.rs`,
/// private there). The model below must skip the same values for the comparison to hold;
/// if the manager's bound changes, change it here too.
const MAX_COOKIE_VALUE_LEN: usize = 512;

/// Cookie parsing and verification.
///
/// The input is one `Cookie` header value, given to a manager without a secret and to one
/// with two secrets, as is and behind `thinkjs=`. A small model of the cookie format
/// (pairs split on `;`, optional double quotes, percent-decoding, signature, id syntax)
/// says which id, if any, the request carries. The store must be asked for exactly that
/// id's key or, when there is none, not be asked at all, and at most once per request.
/// `Signer::verify` must only accept what `Signer::sign` produces.
pub(crate) fn cookie(input: &[u8]) {
    let signer = Signer::new([SecretString::from(SECRET), SecretString::from(OLD_SECRET)])
        .expect("the check's secrets are valid");
    let prefixed = [COOKIE_NAME, b"=", input].concat();
    for header in [input, prefixed.as_slice()] {
        check_cookie_header(header, None);
        check_cookie_header(header, Some(&signer));
    }

    let text = String::from_utf8_lossy(input);
    check_verify(&signer, &text);
    if let Some(value) = text.strip_prefix("thinkjs=") {
        check_verify(&signer, value);
    }
}

fn check_cookie_header(header: &[u8], signer: Option<&Signer>) {
    let store = Arc::new(MapStore::with_session(KNOWN_ID));
    let config = match signer {
        Some(_) => SessionConfig::from_json_str(&format!(
            r#"{{"type": "fuzz", "secret": ["{SECRET}", "{OLD_SECRET}"]}}"#
        )),
        None => SessionConfig::from_json_str(r#"{"type": "fuzz"}"#),
    }
    .expect("the check's config is valid");
    let manager = SessionManager::new(store.clone(), config).expect("the check's manager");

    let expected = expected_id(header, signer).map(|id| id.store_key());
    let session = manager.session([header]);
    let exists = block_on(session.exists()).expect("the map store never fails");
    // A second look must not read the store again: one load per request at most.
    let again = block_on(session.exists()).expect("the map store never fails");
    assert_eq!(exists, again);

    let loaded = store.loaded_keys();
    assert!(loaded.len() <= 1, "{} loads for one request", loaded.len());
    assert_eq!(
        loaded.first(),
        expected.as_ref(),
        "the store was asked for another key than the cookie's valid id (signed: {})",
        signer.is_some()
    );
    let known = SessionId::parse(KNOWN_ID).expect("valid").store_key();
    assert_eq!(exists, expected == Some(known));
}

/// The id a `Cookie` header carries, by the cookie format alone: the first pair named
/// `thinkjs` whose value, unquoted, percent-decoded and verified, is a valid id.
fn expected_id(header: &[u8], signer: Option<&Signer>) -> Option<SessionId> {
    header.split(|&b| b == b';').find_map(|pair| {
        let (name, value) = split_once(pair.trim_ascii(), b'=')?;
        if name != COOKIE_NAME || value.len() > MAX_COOKIE_VALUE_LEN {
            return None;
        }
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        };
        let decoded = String::from_utf8(percent_decode(value)).ok()?;
        let id = match signer {
            Some(signer) => {
                let id = signer.verify(&decoded)?;
                assert!(
                    signer.sign(id) == decoded || resign(OLD_SECRET, id) == decoded,
                    "verify accepted a value no secret signs this way"
                );
                id
            }
            None => &decoded,
        };
        let id = SessionId::parse(id).ok()?;
        Some(id)
    })
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// `%XX` becomes the byte `0xXX`; a `%` not followed by two hex digits stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if let [b'%', high, low, ..] = bytes[at..]
            && let (Some(high), Some(low)) = (hex(high), hex(low))
        {
            out.push(u8::try_from(high * 16 + low).expect("two hex digits make a byte"));
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    out
}

fn resign(secret: &str, value: &str) -> String {
    Signer::new([SecretString::from(secret)])
        .expect("valid secret")
        .sign(value)
}

/// Whatever `verify` accepts is exactly what one of the secrets signs for that value.
fn check_verify(signer: &Signer, text: &str) {
    if let Some(value) = signer.verify(text) {
        assert!(
            text.starts_with(value),
            "verify returned text that is not the value part"
        );
        assert!(
            signer.sign(value) == text || resign(OLD_SECRET, value) == text,
            "verify accepted {text:?}, which no secret signs as {value:?}"
        );
    }
    for secret in ["another secret", SECRET] {
        let single = Signer::new([SecretString::from(secret)]).expect("valid secret");
        if let Some(value) = single.verify(text) {
            assert_eq!(
                single.sign(value),
                text,
                "verify accepted a forged signature"
            );
        }
    }
}

/// Id and store-key parsing.
///
/// `SessionId::parse` accepts exactly 22 to 128 characters of `A-Z a-z 0-9 - _`, and
/// `StoreKey::parse` exactly 64 lowercase hex digits; whatever they accept reads back as
/// the same text, and refusals are `ErrorKind::InvalidId`.
pub(crate) fn session_id(input: &[u8]) {
    let lossy = String::from_utf8_lossy(input);
    let mut candidates = vec![lossy.as_ref()];
    // Also try the input's first line on its own, so one corpus file can hold both a
    // valid id and noise after it.
    if let Some((line, _)) = lossy.split_once('\n') {
        candidates.push(line);
    }
    for text in candidates {
        check_session_id(text);
        check_store_key(text);
    }
}

fn check_session_id(text: &str) {
    let well_formed = (MIN_ID_LENGTH..=MAX_ID_LENGTH).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match SessionId::parse(text) {
        Ok(id) => {
            assert!(well_formed, "accepted an ill-formed id {text:?}");
            assert_eq!(id.expose(), text);
            assert_eq!(SessionId::parse(id.expose()).expect("re-parse"), id);
            let key = id.store_key();
            assert_eq!(StoreKey::parse(key.as_str()).expect("own key parses"), key);
            assert!(
                !format!("{id:?}").contains(text),
                "Debug shows the whole id"
            );
        }
        Err(err) => {
            assert!(!well_formed, "refused a well-formed id {text:?}: {err}");
            assert_eq!(err.kind(), ErrorKind::InvalidId);
        }
    }
}

fn check_store_key(text: &str) {
    let well_formed = text.len() == StoreKey::HEX_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match StoreKey::parse(text) {
        Ok(key) => {
            assert!(well_formed, "accepted an ill-formed store key {text:?}");
            assert_eq!(key.as_str(), text);
            let digits: String = key.digest().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(digits, text);
            assert_eq!(key.short(), &text[..8]);
        }
        Err(err) => {
            assert!(
                !well_formed,
                "refused a well-formed store key {text:?}: {err}"
            );
            assert_eq!(err.kind(), ErrorKind::InvalidId);
        }
    }
}

/// The codecs compiled in: the fuzz crate turns on every feature, and so does
/// `cargo test --all-features`; a narrower test build checks what it has.
const CODECS: &[Codec] = &[
    #[cfg(feature = "bincode")]
    Codec::Bincode,
    Codec::Json,
];

/// A session value of the kind applications keep: nested, optional, with collections.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    initial: char,
    email: Option<String>,
    roles: Vec<Role>,
    address: Option<Address>,
    history: Vec<Address>,
    flags: BTreeMap<String, Option<i32>>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Address {
    street: String,
    zip: Option<u32>,
    bytes: Vec<u8>,
    visits: BTreeMap<u16, i64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Role {
    Admin,
    User(String),
    Guest { since: i64 },
}

/// Value and record decoding.
///
/// Every decoder sees every input: bincode and JSON for a string, a list of integers and a
/// nested struct, then the wire record layout. Refusals are `ErrorKind::Decode`; whatever
/// decodes encodes again, and that encoding decodes to the same value.
pub(crate) fn codec(input: &[u8]) {
    for &codec in CODECS {
        round_trip::<String>(codec, input);
        round_trip::<Vec<u64>>(codec, input);
        round_trip::<Profile>(codec, input);
    }

    match wire::decode_record(input) {
        Ok(record) => {
            let expiry = wire::decode_expiry(input).expect("a decodable record has an expiry");
            assert_eq!(expiry, record.expires_at);
            let bytes = wire::encode_record(&record);
            assert_eq!(wire::decode_record(&bytes).expect("re-decode"), record);
            assert_eq!(wire::decode_expiry(&bytes).expect("expiry"), expiry);
            // Duplicate keys collapse and an unbound record drops its owner byte, so the
            // encoding can only shrink.
            assert!(bytes.len() <= input.len());
        }
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
            if let Err(err) = wire::decode_expiry(input) {
                assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
            }
        }
    }
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(codec: Codec, bytes: &[u8]) {
    match codec.decode::<T>(bytes) {
        Ok(value) => {
            let encoded = codec
                .encode(&value, MAX_VALUE_SIZE_LIMIT)
                .expect("a decoded value encodes");
            let back: T = codec.decode(&encoded).expect("an encoded value decodes");
            assert_eq!(back, value, "{codec:?} round trip changed the value");
            let again = codec.encode(&back, MAX_VALUE_SIZE_LIMIT).expect("encodes");
            assert_eq!(again, encoded, "{codec:?} encoding is not deterministic");
        }
        Err(err) => assert_eq!(err.kind(), ErrorKind::Decode, "{codec:?}: {err}"),
    }
}

/// Configuration parsing.
///
/// The input, as UTF-8 text, is parsed as JSON and as TOML. A refusal is
/// `ErrorKind::Config`. A configuration that is accepted builds a manager, and a session
/// under it stores a value and hands out a `Set-Cookie` that parses back with the
/// configured attributes; with timeouts of 10 seconds or more, the cookie opens the session
/// again on the next request.
pub(crate) fn config(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let parsed = [
        ("JSON", SessionConfig::from_json_str(&text)),
        #[cfg(feature = "toml")]
        ("TOML", SessionConfig::from_toml_str(&text)),
    ];
    for (format, parsed) in parsed {
        match parsed {
            Ok(config) => check_config_works(config),
            Err(err) => assert_eq!(err.kind(), ErrorKind::Config, "{format}: {err}"),
        }
    }
}

fn check_config_works(config: SessionConfig) {
    config.validate().expect("a parsed configuration is valid");
    let store = Arc::new(MapStore::default());
    let manager = SessionManager::new(store.clone(), config.clone())
        .unwrap_or_else(|err| panic!("a valid configuration must build a manager: {err}"));

    let session = manager.session_from_cookie_header(None);
    block_on(session.set("n", &7u32)).expect("a one-byte value fits any max_value_size");
    let set_cookie = block_on(session.flush())
        .expect("the map store never fails")
        .expect("a new session with data gets a cookie");
    let header = set_cookie.to_string();
    let parsed = session_core::cookie::Cookie::parse(header.as_str())
        .unwrap_or_else(|err| panic!("unparsable Set-Cookie {header:?}: {err}"));
    assert_eq!(parsed.name(), config.name);
    assert_eq!(parsed.value(), set_cookie.value());
    assert_eq!(parsed.path(), Some(config.cookie.path.as_str()));
    // A parsed cookie says `None` for an attribute it does not carry.
    assert_eq!(parsed.http_only().unwrap_or(false), config.cookie.http_only);
    assert_eq!(parsed.secure().unwrap_or(false), config.cookie.secure);

    let lasting = Duration::from_secs(10);
    if config.timeout >= lasting && config.absolute_timeout.is_none_or(|t| t >= lasting) {
        let request = format!("{}={}", set_cookie.name(), set_cookie.value());
        let next = manager.session_from_cookie_header(Some(&request));
        let value: Option<u32> = block_on(next.get("n")).expect("the map store never fails");
        assert_eq!(value, Some(7), "the session's own cookie does not open it");
    }
}

/// A store in a `HashMap`, which counts its loads and keeps the keys it was asked for.
#[derive(Debug, Default)]
struct MapStore {
    records: Mutex<HashMap<StoreKey, Record>>,
    loads: Mutex<Vec<StoreKey>>,
    load_count: AtomicUsize,
}

impl MapStore {
    /// A store holding one live session under `id`.
    fn with_session(id: &str) -> Self {
        let store = Self::default();
        let record = Record {
            data: HashMap::from([("user".to_owned(), b"ada".to_vec())]),
            expires_at: Timestamp::now() + Duration::from_secs(3600),
            created_at: Timestamp::now(),
            revision: None,
            owner: None,
        };
        let key = SessionId::parse(id).expect("valid id").store_key();
        store.records().insert(key, record);
        store
    }

    fn records(&self) -> MutexGuard<'_, HashMap<StoreKey, Record>> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn loaded_keys(&self) -> Vec<StoreKey> {
        let keys = self
            .loads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        assert_eq!(keys.len(), self.load_count.load(Ordering::SeqCst));
        keys
    }
}

#[async_trait]
impl SessionStore for MapStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        self.load_count.fetch_add(1, Ordering::SeqCst);
        self.loads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(key.clone());
        let now = Timestamp::now();
        Ok(self
            .records()
            .get(key)
            .filter(|r| !r.is_expired(now))
            .cloned())
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let mut records = self.records();
        if records.contains_key(key) {
            return Ok(false);
        }
        records.insert(key.clone(), record.clone());
        Ok(true)
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        Ok(self
            .records()
            .get_mut(key)
            .map(|record| {
                changes.apply_to(&mut record.data);
                record.expires_at = changes.expires_at;
            })
            .is_some())
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        Ok(self
            .records()
            .get_mut(key)
            .map(|record| record.expires_at = expires_at)
            .is_some())
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.records().remove(key).is_some())
    }

    async fn gc(&self) -> Result<u64> {
        Ok(0)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
    }
}

/// Runs a future that never waits: the map store answers at once and the session's lock is
/// uncontended, so one poll completes it, without an async runtime in the fuzz loop.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a session future waited on the in-memory store"),
    }
}
