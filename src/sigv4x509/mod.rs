//! SigV4-X509: the signature IAM Roles Anywhere's `CreateSession` requires.
//!
//! Identical to SigV4 except that the string to sign is signed with the
//! certificate's private key (`AWS4-X509-RSA-SHA256`: RSASSA-PKCS1-v1_5 with
//! SHA-256; `AWS4-X509-ECDSA-SHA256`: ECDSA over SHA-256 for every curve, DER) and
//! the credential is the certificate's decimal serial. This module knows nothing of
//! HTTP clients: it turns request parts, a time and a key into the `Authorization`
//! value, keeping every intermediate so tests can name the first stage that differs.
//! (aws-sigv4 cannot be used: its canonical request is crate-private and its signing
//! parameters only know HMAC and SigV4a.)

pub mod canonical_request;

use crate::key::{Digest, SignError, SigningKey};
/// `YYYYMMDDTHHMMSSZ` for `X-Amz-Date` (the formatter lives in [`crate::utc`]).
pub use crate::utc::amz_date;

/// The service name in the credential scope.
pub const SERVICE: &str = "rolesanywhere";

/// The parts of an HTTP request that are signed.
#[derive(Debug, Clone)]
pub struct SignableRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as sent (a path prefix of a custom endpoint stays).
    pub path: &'a str,
    /// Raw query string after `?`, `""` if none.
    pub query: &'a str,
    /// Headers as sent (name case kept).
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// The result of signing, with every intermediate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOutput {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The signed header names joined with `;`.
    pub signed_headers: String,
    /// The signature, lower-case hex.
    pub signature: String,
    /// The whole `Authorization` header value.
    pub authorization: String,
}

/// `DATE/REGION/rolesanywhere/aws4_request`.
pub fn credential_scope(amz_date: &str, region: &str) -> String {
    format!(
        "{}/{region}/{SERVICE}/aws4_request",
        &amz_date[..8.min(amz_date.len())]
    )
}

/// `ALG\nX-Amz-Date\nSCOPE\nhex(SHA-256(canonical request))`.
pub fn string_to_sign(
    algorithm: &str,
    amz_date: &str,
    scope: &str,
    canonical_request: &str,
) -> String {
    let hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical_request.as_bytes(),
    ));
    format!("{algorithm}\n{amz_date}\n{scope}\n{hash}")
}

/// Signs `request`.
///
/// `signed_headers` lists the header names to sign (any case); `None` signs every
/// header in the request. `amz_date` must equal the request's `X-Amz-Date`.
pub fn sign(
    request: &SignableRequest<'_>,
    signed_headers: Option<&[&str]>,
    region: &str,
    amz_date: &str,
    serial_decimal: &str,
    key: &dyn SigningKey,
) -> Result<SigningOutput, SignError> {
    let unsigned = prepare(
        request,
        signed_headers,
        region,
        amz_date,
        serial_decimal,
        key.algorithm(),
    );
    let signature = key.sign(unsigned.string_to_sign.as_bytes(), Digest::Sha256)?;
    Ok(unsigned.finish(&signature))
}

/// A request ready to sign: everything of [`sign`] but the signature itself, so
/// that the key can sign (on another thread, say) while something else runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsigned {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign: what the key signs ([`Digest::Sha256`]).
    pub string_to_sign: String,
    /// The signed header names joined with `;`.
    pub signed_headers: String,
    /// `ALGORITHM Credential=SERIAL/SCOPE`.
    credential: String,
}

/// The first half of [`sign`]: the canonical request and the string to sign for a
/// key of `algorithm`. Sign [`Unsigned::string_to_sign`] with
/// [`Digest::Sha256`] and pass the signature to [`Unsigned::finish`].
pub fn prepare(
    request: &SignableRequest<'_>,
    signed_headers: Option<&[&str]>,
    region: &str,
    amz_date: &str,
    serial_decimal: &str,
    algorithm: crate::key::KeyAlgorithm,
) -> Unsigned {
    let mut names: Vec<String> = match signed_headers {
        Some(list) => list.iter().map(|n| n.to_ascii_lowercase()).collect(),
        None => request
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect(),
    };
    names.sort();
    names.dedup();
    let canonical_request = canonical_request::canonical_request(
        request.method,
        request.path,
        request.query,
        request.headers,
        &names,
        request.body,
    );
    let algorithm = algorithm.sigv4_name();
    let scope = credential_scope(amz_date, region);
    let string_to_sign = string_to_sign(algorithm, amz_date, &scope, &canonical_request);
    Unsigned {
        canonical_request,
        string_to_sign,
        signed_headers: names.join(";"),
        credential: format!("{algorithm} Credential={serial_decimal}/{scope}"),
    }
}

impl Unsigned {
    /// The second half of [`sign`]: the `Authorization` value with `signature`
    /// (the key's bytes, hex-encoded here).
    pub fn finish(self, signature: &[u8]) -> SigningOutput {
        let signature = hex::encode(signature);
        let authorization = format!(
            "{}, SignedHeaders={}, Signature={signature}",
            self.credential, self.signed_headers
        );
        SigningOutput {
            canonical_request: self.canonical_request,
            string_to_sign: self.string_to_sign,
            signed_headers: self.signed_headers,
            signature,
            authorization,
        }
    }
}
