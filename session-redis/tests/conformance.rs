//! The whole conformance suite against the Redis store, on the Redis at
//! `SESSION_TEST_REDIS_URL` (`redis://127.0.0.1:6379` by default). Each case runs under a
//! random key prefix whose keys are removed afterwards.

mod support;

use std::sync::Arc;
use std::time::Duration;

use session_redis::{RedisConfig, RedisStore};
use session_testkit::{Fixture, Suite, Unavailable};

fn main() -> std::process::ExitCode {
    Suite::new("redis", || async {
        let url = support::redis_url();
        let prefix = support::random_prefix("conformance");
        // Generous: the heaviest cases send thousands of calls at once on a small machine.
        let timeout = Duration::from_secs(10);
        let store = support::open_store(&url, &prefix, timeout)
            .await
            .map_err(Unavailable::new)?;
        let second = support::open_store(&url, &prefix, timeout)
            .await
            .map_err(Unavailable::new)?;
        let down = RedisConfig::new(format!("redis://127.0.0.1:{}", support::free_port()))
            .with_prefix(&prefix)
            .with_connect_timeout(Duration::from_millis(300))
            .with_response_timeout(Duration::from_millis(500));
        let down = RedisStore::connect_lazy(&down).map_err(|err| {
            Unavailable::new(
                format!("cannot open the unreachable store: {err:#}").replace('\n', "; "),
            )
        })?;
        Ok(Fixture::new(Arc::new(store))
            .with_second_handle(Arc::new(second))
            .with_unreachable(Arc::new(down))
            .with_cleanup(async move { support::delete_prefix(&url, &prefix).await }))
    })
    .main()
}
