//! iamra: IAM Roles Anywhere credentials from X.509 certificates.
//!
//! The library loads an [`identity::Identity`] (key + certificate + chain), signs
//! `CreateSession` with SigV4-X509 ([`sigv4x509`]) and calls the service
//! ([`session::Client`]), returning [`credentials::TemporaryCredentials`]. The
//! `iamra` binary is a thin CLI on top; build the library alone with
//! `default-features = false` (no clap, rpassword or tracing-subscriber: the
//! default feature `cli` is the binaries'). Features: `tpm` (TPM 2.0 keys),
//! `aws-sdk` (the provider as an AWS SDK credentials provider).
//!
//! # The API, module by module
//!
//! - [`provider`]: [`RolesAnywhereProvider`], the entry point: a builder, then
//!   credentials on demand, refreshed before they expire.
//! - [`identity`]: where the key, certificate and chain come from, typed once
//!   ([`identity::IdentitySpec`]: files, stdin, variables, PKCS#11 URIs, TPM
//!   handles; printed without a URI's PIN), and the one function that loads and
//!   checks them ([`identity::IdentitySpec::load`]) for every command and the
//!   provider.
//! - [`key`]: the [`key::SigningKey`] trait (bring your own HSM), the key sources
//!   (files, PKCS#12, [`key::pkcs11`], [`key::tpm`]), [`key::PublicKey`], and
//!   [`key::PasswordSource`] for passwords and PINs (the library never prompts).
//! - [`cert`], [`chain`], [`pem`]: certificates, local path checks, PEM blocks.
//! - [`sigv4x509`]: the signature alone (request parts + time + key → headers),
//!   every intermediate kept; [`session`]: the HTTPS client
//!   ([`session::ClientOptions`], [`session::SessionParams`], retries, errors).
//! - [`refresh`]: the refresh engine ([`refresh::Refresher`] with a
//!   [`refresh::RefreshPolicy`]) that `update`, `serve` and `exec` share; readers
//!   get snapshots through tokio's `watch` channel, re-exported as
//!   [`refresh::watch`].
//! - [`output`]: what the commands print, write or serve, each module with its wire
//!   contract: `credential_process` JSON, the shared credentials file, the
//!   IMDSv2/ECS server ([`output::server::ServerConfig`]).
//! - [`cache`]: the credential cache of `credential-process`; [`doctor`]: the
//!   checklist behind `iamra doctor`.
//! - [`credentials`], [`clock`] (the injected time source), [`utc`] (time
//!   formats), [`input`] (reading named inputs), [`error`] (rendering error
//!   chains, every error's [`error::ErrorKind`], and the settings errors name,
//!   [`error::Field`], which a front end maps to its own flags).
//!
//! Configuration structs ([`session::ClientOptions`], [`refresh::RefreshPolicy`],
//! [`output::server::ServerConfig`], [`output::server::Limits`]) and error enums are
//! `#[non_exhaustive]`: start from `Default` or `new` and chain the `with_*`
//! methods. No `ring`, `x509-parser` or `hyper` type appears in the API; tokio's
//! `watch` and the `url` crate's [`session::Url`] are re-exported where they do.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

/// `with_FIELD(value) -> Self` methods for the public fields of a
/// `#[non_exhaustive]` configuration struct, which other crates cannot build with a
/// struct literal: they start from its constructor or `Default` and chain these.
macro_rules! with_setters {
    ($ty:ty { $($method:ident => $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                #[must_use]
                pub fn $method(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

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
