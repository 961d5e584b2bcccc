//! Serde support for the TPM error types, which cross the pipe to the helper
//! process ([`super::helper`]).

use std::sync::{Mutex, PoisonError};

use serde::Deserialize as _;

/// A `&'static str` field of an error type. Named so that serde's derive does not
/// take it for a string borrowed from the input (which would tie every
/// deserialised error to a `'static` input).
pub(crate) type StaticStr = &'static str;

/// At most this many distinct strings are ever kept: the helper sends command and
/// hash names from a short fixed list, so the bound is never reached in practice.
const MAX_INTERNED: usize = 64;

/// Deserialises a `&'static str` field (a TPM command name, a hash name...).
///
/// Each distinct value is leaked once and then shared, so the memory kept is
/// bounded by [`MAX_INTERNED`] short strings; past that bound an unknown value
/// reads as `"unknown"`.
pub(crate) fn static_str<'de, D>(deserializer: D) -> Result<&'static str, D::Error>
where
    D: serde::Deserializer<'de>,
{
    static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let value = String::deserialize(deserializer)?;
    let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = interned.iter().find(|s| **s == value) {
        return Ok(found);
    }
    if interned.len() >= MAX_INTERNED || value.len() > 64 {
        return Ok("unknown");
    }
    let leaked: &'static str = Box::leak(value.into_boxed_str());
    interned.push(leaked);
    Ok(leaked)
}

#[cfg(test)]
mod tests {
    use super::super::TpmError;

    #[test]
    fn tpm_errors_survive_the_round_trip_with_their_text() {
        let errors = [
            TpmError::Command {
                key: "k.pem".into(),
                command: "Sign",
                reason: "why".into(),
            },
            TpmError::DigestNotAllowed {
                key: "k.pem".into(),
                allowed: "SHA-256",
                requested: "SHA-384",
            },
            TpmError::WrongPassword {
                key: "k.pem".into(),
                da: super::super::DaReport::Exempt,
            },
        ];
        for e in errors {
            let json = serde_json::to_string(&e).unwrap();
            let back: TpmError = serde_json::from_str(&json).unwrap();
            assert_eq!(back.to_string(), e.to_string());
        }
    }
}
