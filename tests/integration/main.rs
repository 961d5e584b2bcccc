//! iamra's integration tests: one binary, one module per area.

mod cache;
mod common;
mod credential_process;
mod diagnostics;
mod errors;
mod faults;
mod vectors;
