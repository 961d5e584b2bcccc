//! iamra's integration tests: one binary, one module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test, with the value in the message"
)]
#![allow(
    unreachable_pub,
    reason = "a test binary exports nothing; helpers are shared by module"
)]

mod backends;
mod bad_inputs;
mod cache;
mod cache_key;
mod common;
mod credential_process;
mod diagnostics;
mod doctor;
mod errors;
mod exec;
mod faults;
mod lockout;
mod pkcs11;
mod provider;
mod redaction;
mod secrets;
mod serve;
mod tpm;
mod transport;
mod update;
mod vectors;
