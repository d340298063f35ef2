//! The whole conformance suite against the memory store under encryption at rest: the
//! wrapper keeps every rule of the store contract, since it only changes the bytes of
//! values on their way in and out.

use std::sync::Arc;

use session_core::at_rest::EncryptedStore;
use session_core::{EncryptAtRestConfig, Secrets};
use session_memory::MemoryStore;
use session_testkit::{Fixture, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("memory, encrypted at rest", || async {
        let mut options = EncryptAtRestConfig::default();
        options.keys = Secrets::new(["an at-rest key of thirty-two bytes".to_owned().into()]);
        let store = EncryptedStore::new(Arc::new(MemoryStore::new()), &options)
            .map_err(|err| session_testkit::Unavailable::new(format!("{err:#}")))?;
        Ok(Fixture::new(Arc::new(store)))
    })
    .main()
}
