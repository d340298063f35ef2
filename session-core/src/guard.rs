//! The store as the manager and its sessions call it: every call bounded in time, in a
//! `tracing` span, and (feature `metrics`) counted and timed.
//!
//! [`SessionManager::new`](crate::SessionManager::new) puts a [`GuardedStore`] around the
//! application's store, so the bound holds for every store, not only those that bound
//! their own calls. Its futures are boxed like any store's (the trait is `async_trait`),
//! so the timer lives in the wrapper's allocation and the sessions' own futures do not
//! grow.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;

use crate::telemetry::{Metrics, Op, Started};
use crate::{
    Capabilities, ChangeSet, Error, ErrorKind, IndexedSession, LockToken, Record, Result, Revision,
    SessionConfig, SessionStore, StoreKey, Timestamp, UserId,
};

/// The name of every store call's span.
pub(crate) const SPAN_NAME: &str = "session_store";

/// A store whose calls are bounded: by `store_timeout`, except `gc`, which is bounded by
/// `gc.interval` (a sweep of a large store may take long, and the next run is due then
/// anyway).
pub(crate) struct GuardedStore {
    inner: Arc<dyn SessionStore>,
    /// The configured store type, for spans, metrics and timeout errors.
    store_type: Box<str>,
    timeout: Duration,
    gc_timeout: Duration,
    metrics: Metrics,
}

impl GuardedStore {
    /// `inner`, bounded and observed as `config` says, recording on `metrics`.
    pub(crate) fn new(
        inner: Arc<dyn SessionStore>,
        config: &SessionConfig,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner,
            store_type: config.store_type.as_str().into(),
            timeout: config.store_timeout,
            gc_timeout: config.gc.interval,
            metrics,
        }
    }

    /// The store call `op` (the future `call`), bounded by `store_timeout`, in its span,
    /// timed.
    fn call<F>(&self, op: Op, call: F) -> Bounded<'_, F> {
        self.bounded(op, self.timeout, "store_timeout", call)
    }

    /// The store call `op` bounded by `limit` (the value of the configuration's
    /// `setting`), in its span, timed.
    fn bounded<F>(
        &self,
        op: Op,
        limit: Duration,
        setting: &'static str,
        call: F,
    ) -> Bounded<'_, F> {
        Bounded {
            span: tracing::debug_span!(SPAN_NAME, store = &*self.store_type, op = op.name()),
            started: self.metrics.start(),
            guard: self,
            op,
            limit,
            setting,
            call,
            deadline: Deadline::Unarmed,
        }
    }

    fn timed_out(&self, op: Op, limit: Duration, setting: &str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "the `{}` store did not answer `{}` within {} (`{setting}`)",
                self.store_type,
                op.name(),
                humantime::format_duration(limit)
            ),
        )
    }
}

/// One store call: the store's future, polled inside the call's span, failed with a
/// timeout error once its deadline passes, and timed when it ends.
///
/// A plain future rather than an `async` block: every store call of every request goes
/// through it, and it costs one poll of the store's future per wake-up and nothing more
/// when the store answers at once.
pub(crate) struct Bounded<'a, F> {
    guard: &'a GuardedStore,
    op: Op,
    limit: Duration,
    setting: &'static str,
    call: F,
    span: tracing::Span,
    started: Started,
    deadline: Deadline,
}

/// The timer of a store call that did not answer at its first poll.
enum Deadline {
    /// The call has not been waited for yet: most calls of in-process stores never are.
    Unarmed,
    /// Boxed, so that calls that never wait carry no room for it.
    Armed(Pin<Box<tokio::time::Sleep>>),
    /// Outside a tokio runtime there is no timer to arm: the call is awaited unbounded.
    Unbounded,
}

impl<F, T> Future for Bounded<'_, F>
where
    F: Future<Output = Result<T>> + Unpin,
{
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        let outcome = match Pin::new(&mut this.call).poll(cx) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                if matches!(this.deadline, Deadline::Unarmed) {
                    this.deadline = if tokio::runtime::Handle::try_current().is_ok() {
                        Deadline::Armed(Box::pin(tokio::time::sleep(this.limit)))
                    } else {
                        Deadline::Unbounded
                    };
                }
                let Deadline::Armed(deadline) = &mut this.deadline else {
                    return Poll::Pending;
                };
                if deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Err(this.guard.timed_out(this.op, this.limit, this.setting))
            }
        };
        this.guard.metrics.finish(this.op, this.started, &outcome);
        Poll::Ready(outcome)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStore for GuardedStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let loaded = self.call(Op::Load, self.inner.load(key)).await?;
        self.metrics.loaded(loaded.is_some());
        Ok(loaded)
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let created = self
            .call(Op::Create, self.inner.create(key, record))
            .await?;
        self.metrics.created(created);
        Ok(created)
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        let updated = self
            .call(Op::Update, self.inner.update(key, changes))
            .await?;
        self.metrics.updated(updated);
        Ok(updated)
    }

    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        let written = self
            .call(
                Op::UpdateIfUnchanged,
                self.inner.update_if_unchanged(key, revision, record),
            )
            .await?;
        self.metrics.written_if_unchanged(written.is_some());
        Ok(written)
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let touched = self
            .call(Op::Touch, self.inner.touch(key, expires_at))
            .await?;
        self.metrics.touched(touched);
        Ok(touched)
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        self.call(Op::Delete, self.inner.delete(key)).await
    }

    async fn gc(&self) -> Result<u64> {
        let removed = self
            .bounded(Op::Gc, self.gc_timeout, "gc.interval", self.inner.gc())
            .await?;
        self.metrics.gc_removed(removed);
        Ok(removed)
    }

    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        self.call(Op::DeleteMany, self.inner.delete_many(keys))
            .await
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        self.call(Op::SessionsOf, self.inner.sessions_of(user))
            .await
    }

    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        self.call(Op::UserIndexLen, self.inner.user_index_len(user))
            .await
    }

    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.call(Op::Lock, self.inner.lock(key, token, ttl)).await
    }

    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        let granted = self
            .call(Op::LockAndLoad, self.inner.lock_and_load(key, token, ttl))
            .await?;
        if let Some(loaded) = &granted {
            self.metrics.loaded(loaded.is_some());
        }
        Ok(granted)
    }

    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> Result<bool> {
        let updated = self
            .call(
                Op::UpdateAndUnlock,
                self.inner.update_and_unlock(key, changes, token),
            )
            .await?;
        self.metrics.updated(updated);
        Ok(updated)
    }

    async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
        token: &LockToken,
    ) -> Result<Option<Revision>> {
        let written = self
            .call(
                Op::UpdateIfUnchangedAndUnlock,
                self.inner
                    .update_if_unchanged_and_unlock(key, revision, record, token),
            )
            .await?;
        self.metrics.written_if_unchanged(written.is_some());
        Ok(written)
    }

    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.call(Op::RenewLock, self.inner.renew_lock(key, token, ttl))
            .await
    }

    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.call(Op::Unlock, self.inner.unlock(key, token)).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

/// The wrapped store's own `Debug`, with the bound: what the manager's `Debug` shows.
impl std::fmt::Debug for GuardedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStore")
            .field("store", &self.inner)
            .field("store_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The bound, the error that names the operation, and the spans, on a store that never
    //! answers (tokio's clock is paused, so the limits pass at once and exactly).

    use super::*;
    use crate::{Data, SessionId, SessionManager};

    /// A store that never answers, except `gc`, which answers `Ok(7)` after `gc_takes`
    /// if set.
    #[derive(Debug, Default)]
    struct Hung {
        gc_takes: Option<Duration>,
    }

    async fn never<T>() -> Result<T> {
        std::future::pending().await
    }

    #[async_trait]
    impl SessionStore for Hung {
        async fn load(&self, _: &StoreKey) -> Result<Option<Record>> {
            never().await
        }
        async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> {
            never().await
        }
        async fn update(&self, _: &StoreKey, _: &ChangeSet) -> Result<bool> {
            never().await
        }
        async fn update_if_unchanged(
            &self,
            _: &StoreKey,
            _: Revision,
            _: &Record,
        ) -> Result<Option<Revision>> {
            never().await
        }
        async fn touch(&self, _: &StoreKey, _: Timestamp) -> Result<bool> {
            never().await
        }
        async fn delete(&self, _: &StoreKey) -> Result<bool> {
            never().await
        }
        async fn gc(&self) -> Result<u64> {
            match self.gc_takes {
                Some(takes) => {
                    tokio::time::sleep(takes).await;
                    Ok(7)
                }
                None => never().await,
            }
        }
        async fn delete_many(&self, _: &[StoreKey]) -> Result<u64> {
            never().await
        }
        async fn sessions_of(&self, _: &UserId) -> Result<Vec<IndexedSession>> {
            never().await
        }
        async fn user_index_len(&self, _: &UserId) -> Result<u64> {
            never().await
        }
        async fn lock(&self, _: &StoreKey, _: &LockToken, _: Duration) -> Result<bool> {
            never().await
        }
        async fn lock_and_load(
            &self,
            _: &StoreKey,
            _: &LockToken,
            _: Duration,
        ) -> Result<Option<Option<Record>>> {
            never().await
        }
        async fn update_and_unlock(
            &self,
            _: &StoreKey,
            _: &ChangeSet,
            _: &LockToken,
        ) -> Result<bool> {
            never().await
        }
        async fn update_if_unchanged_and_unlock(
            &self,
            _: &StoreKey,
            _: Revision,
            _: &Record,
            _: &LockToken,
        ) -> Result<Option<Revision>> {
            never().await
        }
        async fn renew_lock(&self, _: &StoreKey, _: &LockToken, _: Duration) -> Result<bool> {
            never().await
        }
        async fn unlock(&self, _: &StoreKey, _: &LockToken) -> Result<bool> {
            never().await
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::new().with_lock(true).with_user_index(true)
        }
    }

    fn hung_manager(json: &str, store: Hung) -> SessionManager {
        let config = SessionConfig::from_json_str(json).expect("config");
        SessionManager::new(Arc::new(store), config).expect("manager")
    }

    fn key() -> StoreKey {
        SessionId::generate(32).expect("id").store_key()
    }

    fn record() -> Record {
        Record::new(
            Data::new(),
            Timestamp::now() + Duration::from_secs(60),
            Timestamp::now(),
        )
    }

    /// Every method of the store, called through `store`, each with how it failed and
    /// how long it took.
    async fn every_call(store: &Arc<dyn SessionStore>) -> Vec<(Op, Error, Duration)> {
        let (key, record, token) = (key(), record(), LockToken::generate().expect("token"));
        let user = UserId::new("ada").expect("user");
        let ttl = Duration::from_secs(10);
        let revision = Revision::new(1);
        let mut failures = Vec::new();
        macro_rules! call {
            ($op:expr, $call:expr) => {{
                let started = tokio::time::Instant::now();
                let outcome = $call.await;
                let err = outcome
                    .map(|_| ())
                    .expect_err(concat!(stringify!($call), " failed"));
                failures.push(($op, err, started.elapsed()));
            }};
        }
        call!(Op::Load, store.load(&key));
        call!(Op::Create, store.create(&key, &record));
        call!(Op::Update, store.update(&key, &ChangeSet::default()));
        call!(
            Op::UpdateIfUnchanged,
            store.update_if_unchanged(&key, revision, &record)
        );
        call!(Op::Touch, store.touch(&key, Timestamp::now()));
        call!(Op::Delete, store.delete(&key));
        call!(Op::Gc, store.gc());
        call!(
            Op::DeleteMany,
            store.delete_many(std::slice::from_ref(&key))
        );
        call!(Op::SessionsOf, store.sessions_of(&user));
        call!(Op::UserIndexLen, store.user_index_len(&user));
        call!(Op::Lock, store.lock(&key, &token, ttl));
        call!(Op::LockAndLoad, store.lock_and_load(&key, &token, ttl));
        call!(
            Op::UpdateAndUnlock,
            store.update_and_unlock(&key, &ChangeSet::default(), &token)
        );
        call!(
            Op::UpdateIfUnchangedAndUnlock,
            store.update_if_unchanged_and_unlock(&key, revision, &record, &token)
        );
        call!(Op::RenewLock, store.renew_lock(&key, &token, ttl));
        call!(Op::Unlock, store.unlock(&key, &token));
        failures
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_fails_at_the_bound_naming_its_operation() {
        let manager = hung_manager(r#"{"type": "hung"}"#, Hung::default());
        let failures = every_call(manager.store()).await;
        let ops: Vec<Op> = failures.iter().map(|(op, ..)| *op).collect();
        assert_eq!(ops, Op::ALL, "every method is bounded");
        for (op, err, took) in failures {
            assert_eq!(err.kind(), ErrorKind::Timeout, "{op:?}: {err}");
            let (limit, message) = if op == Op::Gc {
                (
                    Duration::from_secs(3600),
                    "the `hung` store did not answer `gc` within 1h (`gc.interval`)".to_owned(),
                )
            } else {
                (
                    Duration::from_secs(5),
                    format!(
                        "the `hung` store did not answer `{}` within 5s (`store_timeout`)",
                        op.name()
                    ),
                )
            };
            assert_eq!(err.message(), message);
            assert_eq!(
                err.to_string(),
                format!("store timeout: {message}"),
                "the kind leads"
            );
            assert_eq!(
                took, limit,
                "{op:?} failed at its bound, not before or after"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_on_a_hung_store_fails_within_store_timeout() {
        let manager = hung_manager(
            r#"{"type": "hung", "store_timeout": "250ms"}"#,
            Hung::default(),
        );
        let id = SessionId::generate(32).expect("id");
        let session = manager.session_from_cookie_header(Some(&format!("thinkjs={}", id.expose())));
        let started = tokio::time::Instant::now();
        let err = session
            .get::<String>("user")
            .await
            .expect_err("a hung load");
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(
            err.message(),
            "the `hung` store did not answer `load` within 250ms (`store_timeout`)"
        );
        let kept = session
            .store_error()
            .await
            .expect("the request's store error");
        assert_eq!(kept.kind(), ErrorKind::Timeout);

        // A new session's first write is bounded the same way.
        let fresh = manager.session_from_cookie_header(None);
        fresh.set("user", "ada").await.expect("no store call yet");
        let err = fresh.flush().await.expect_err("a hung create");
        assert!(err.message().contains("`create` within 250ms"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn gc_is_bounded_by_its_interval_not_by_store_timeout() {
        let store = Hung {
            gc_takes: Some(Duration::from_secs(60)),
        };
        let manager = hung_manager(
            r#"{"type": "hung", "store_timeout": "1s", "gc": {"interval": "10min"}}"#,
            store,
        );
        assert_eq!(manager.store().gc().await.expect("a long sweep"), 7);
        let store = Hung {
            gc_takes: Some(Duration::from_secs(601)),
        };
        let manager = hung_manager(
            r#"{"type": "hung", "store_timeout": "1s", "gc": {"interval": "10min"}}"#,
            store,
        );
        let err = manager
            .store()
            .gc()
            .await
            .expect_err("a sweep past the interval");
        assert_eq!(
            err.message(),
            "the `hung` store did not answer `gc` within 10m (`gc.interval`)"
        );
    }
}
