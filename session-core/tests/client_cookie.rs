//! The conformance suite's session cases on `type = "cookie"`: sessions kept whole in an
//! encrypted cookie, with no store. The store cases, and the session cases that cannot hold
//! without a store, are reported as skipped with their reasons.

use session_testkit::{Fixture, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("client-side cookie", || async {
        Ok(Fixture::client_side("cookie"))
    })
    .main()
}
