//! iamra's integration tests: one binary, one module per area.

mod bad_inputs;
mod cache;
mod common;
mod credential_process;
mod diagnostics;
mod doctor;
mod errors;
mod faults;
mod lockout;
mod pkcs11;
mod provider;
mod secrets;
mod serve;
mod tpm;
mod update;
mod vectors;
