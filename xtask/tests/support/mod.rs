//! Helpers shared by the test binaries of the workspace's own tools.

pub(crate) mod cli;
