//! The store in the `SessionStore` docs claims to pass the whole conformance suite: this
//! runs the suite against it, session-level cases included, so `cargo test -p
//! session-core` also checks the session handle, the manager and the expiry policy end to
//! end.

use std::process::ExitCode;
use std::sync::Arc;

use session_testkit::{Fixture, Suite};

include!("../src/store_example.rs");

fn main() -> ExitCode {
    Suite::new("doc-example-map-store", || async {
        Ok(Fixture::new(Arc::new(MapStore::default())))
    })
    .main()
}
