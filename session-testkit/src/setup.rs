//! Checks of the errors stores give for set-up mistakes: the cause is named, and a hint of
//! what to do ends the message.

use session_core::{Error, SetupProblem};

use crate::{TestError, TestResult};

/// Checks that `opened` failed, that the message a person sees (the error's alternate
/// form: the cause chain, then the hint) names every one of `causes`, and that it ends
/// with a hint for `problem` whose text names every one of `advice`.
///
/// ```
/// use session_core::{Error, ErrorKind, Hint, SetupProblem};
/// let opened: Result<(), Error> = Err(Error::new(ErrorKind::Backend, "connect failed: refused")
///     .with_hint(Hint::new(SetupProblem::Unreachable, "start the server")));
/// let checked = session_testkit::expect_setup_error(
///     opened,
///     SetupProblem::Unreachable,
///     &["refused"],
///     &["start"],
/// );
/// assert!(checked.is_ok(), "{checked:?}");
/// ```
///
/// # Errors
/// [`TestError::Fail`] saying which check failed, with the message.
pub fn expect_setup_error<T>(
    opened: Result<T, Error>,
    problem: SetupProblem,
    causes: &[&str],
    advice: &[&str],
) -> TestResult {
    let Err(err) = opened else {
        return Err(TestError::fail("the store opened"));
    };
    let shown = format!("{err:#}");
    println!("shown: {shown}");
    for cause in causes {
        if !shown.contains(cause) {
            return Err(TestError::fail(format!(
                "the message does not name {cause:?}: {shown}"
            )));
        }
    }
    let Some(hint) = err.hint() else {
        return Err(TestError::fail(format!("no hint: {shown}")));
    };
    if hint.problem() != problem {
        return Err(TestError::fail(format!(
            "the hint is for {:?}, not {problem:?}: {shown}",
            hint.problem()
        )));
    }
    if !shown.ends_with(&format!("\nhint: {hint}")) {
        return Err(TestError::fail(format!(
            "the hint does not end the message: {shown}"
        )));
    }
    for word in advice {
        if !hint.text().contains(word) {
            return Err(TestError::fail(format!(
                "the hint does not say {word:?}: {hint}"
            )));
        }
    }
    Ok(())
}
