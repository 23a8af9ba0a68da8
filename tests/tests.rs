//! Integration tests of the `spatialsv` binary and of the committed fixtures, in one test
//! binary (each extra binary costs a link against DataFusion and burn).

// Test code may unwrap: a failure is a test failure, with its message.
#![allow(clippy::unwrap_used)]

mod it;
