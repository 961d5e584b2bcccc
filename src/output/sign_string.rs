//! `sign-string`: sign the reference helper's fixed test message.
//!
//! Wire contract (aws_signing_helper 1.8.0): the message is
//! `"AWS Roles Anywhere Credential Helper Signing Test" || "1" || SHA-256("IAM RA" || public key bytes)`
//! (public key bytes: PKCS#1 `RSAPublicKey` DER, or the uncompressed EC point);
//! for ML-DSA keys nothing is appended (the 50 bytes are signed as they are, with
//! pure ML-DSA: `--digest` does not apply);
//! `--format json` prints a JSON string of lower-case hex, `text` the hex alone,
//! `bin` the raw signature; no trailing newline in any format.

use crate::key::PublicKey;

const TEST_STRING: &[u8] = b"AWS Roles Anywhere Credential Helper Signing Test";
const TEST_STRING_VERSION: &[u8] = b"1";

/// The message `sign-string` signs for `public_key`.
pub fn test_message(public_key: &PublicKey) -> Vec<u8> {
    if let PublicKey::MlDsa { .. } = public_key {
        return [TEST_STRING, TEST_STRING_VERSION].concat();
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"IAM RA");
    ctx.update(public_key.raw_bytes());
    let mut message = Vec::with_capacity(TEST_STRING.len() + 33);
    message.extend_from_slice(TEST_STRING);
    message.extend_from_slice(TEST_STRING_VERSION);
    message.extend_from_slice(ctx.finish().as_ref());
    message
}

/// Output format of `sign-string`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// A JSON string of lower-case hex.
    #[default]
    Json,
    /// Lower-case hex.
    Text,
    /// Raw bytes.
    Bin,
}

/// Renders a signature in `format`.
pub fn render(signature: &[u8], format: Format) -> Vec<u8> {
    match format {
        Format::Json => format!("\"{}\"", hex::encode(signature)).into_bytes(),
        Format::Text => hex::encode(signature).into_bytes(),
        Format::Bin => signature.to_vec(),
    }
}
