//! `read-certificate-data` for a certificate file.
//!
//! Wire contract (aws_signing_helper 1.8.0): one compact JSON object, no trailing
//! newline, fields in this order: `keyType` (`"RSA"`/`"EC"`, or the ML-DSA
//! parameter set such as `"ML-DSA-65"`), `certificateData` (padded base64 of the
//! DER), `serialNumber` (decimal), `supportedAlgorithms` (`["RSASHA256",…]`,
//! `["ECSHA256",…]`, or the ML-DSA parameter set alone: `["ML-DSA-65"]`).

use crate::cert::Certificate;
use crate::key::PublicKey;

/// Renders the JSON for `cert`.
pub fn render(cert: &Certificate) -> String {
    let key_type = cert.public_key().type_name();
    let algorithms = match cert.public_key() {
        PublicKey::Rsa { .. } => "\"RSASHA256\",\"RSASHA384\",\"RSASHA512\"".to_string(),
        PublicKey::P256(_) | PublicKey::P384(_) => {
            "\"ECSHA256\",\"ECSHA384\",\"ECSHA512\"".to_string()
        }
        PublicKey::MlDsa { set, .. } => format!("\"{}\"", set.name()),
    };
    format!(
        "{{\"keyType\":\"{key_type}\",\"certificateData\":\"{}\",\"serialNumber\":\"{}\",\"supportedAlgorithms\":[{algorithms}]}}",
        cert.to_base64(),
        cert.serial_decimal()
    )
}
