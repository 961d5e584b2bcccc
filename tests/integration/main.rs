//! iamra's integration tests: one binary, one module per area.

mod common;
mod credential_process;
mod errors;
mod vectors;
