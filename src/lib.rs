//! iamra: IAM Roles Anywhere credentials from X.509 certificates.
//!
//! The library loads an [`identity::Identity`] (key + certificate + chain) from
//! files, signs `CreateSession` with SigV4-X509 ([`sigv4x509`]) and calls the
//! service ([`session::Client`]), returning [`credentials::TemporaryCredentials`].
//! The `iamra` binary is a thin CLI on top.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod atomic_file;
pub mod cache;
pub mod cert;
pub mod chain;
pub mod clock;
pub mod credentials;
pub mod doctor;
pub mod error;
pub mod identity;
pub mod input;
pub mod key;
pub mod output;
pub mod pem;
pub mod provider;
mod public_key;
pub mod refresh;
pub mod session;
pub mod sigv4x509;
pub mod utc;

/// DER surgery for unit tests, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/integration/common/der.rs"]
mod test_der;

pub use provider::RolesAnywhereProvider;
