//! Temporary credentials returned by `CreateSession`.

use ::time::OffsetDateTime;
use secrecy::{ExposeSecret as _, SecretString};

/// An access key, secret key and session token that expire.
///
/// The secret key and session token are zeroized on drop and never printed by
/// `Debug`; reach them with [`TemporaryCredentials::secret_access_key`] and
/// [`TemporaryCredentials::session_token`].
#[derive(Clone)]
pub struct TemporaryCredentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: SecretString,
    expiration: String,
    expires_at: OffsetDateTime,
}

impl TemporaryCredentials {
    /// Builds credentials; `expiration` is kept verbatim for output, `expires_at` is
    /// its parsed value.
    pub fn new(
        access_key_id: String,
        secret_access_key: SecretString,
        session_token: SecretString,
        expiration: String,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
            expires_at,
        }
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose_secret()
    }

    /// The session token.
    pub fn session_token(&self) -> &str {
        self.session_token.expose_secret()
    }

    /// The expiration exactly as the service sent it.
    pub fn expiration(&self) -> &str {
        &self.expiration
    }

    /// The expiration as a time.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

impl std::fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &self.expiration)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let c = TemporaryCredentials::new(
            "ASIAEXAMPLE".into(),
            SecretString::from("very-secret-key"),
            SecretString::from("very-secret-token"),
            "2026-01-01T00:00:00Z".into(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let dbg = format!("{c:?}");
        assert!(dbg.contains("ASIAEXAMPLE"));
        assert!(!dbg.contains("very-secret"));
        assert!(dbg.contains("** redacted **"));
    }
}
