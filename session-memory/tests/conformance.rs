//! The whole conformance suite against the memory store, bounded and unbounded.

use std::sync::Arc;

use session_memory::MemoryStore;
use session_testkit::{Fixture, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("memory", || async {
        Ok(Fixture::new(Arc::new(MemoryStore::new())))
    })
    .main()
}
