//! Integration tests of the `spatialsv` binary and of the committed fixtures, in one test
//! binary (each extra binary costs a link against DataFusion and burn).

mod it;
