//! `read-certificate-data` for a certificate file.
//!
//! Wire contract (aws_signing_helper 1.8.0): one compact JSON object, no trailing
//! newline, fields in this order: `keyType` (`"RSA"`/`"EC"`), `certificateData`
//! (padded base64 of the DER), `serialNumber` (decimal), `supportedAlgorithms`.

use crate::cert::Certificate;

/// Renders the JSON for `cert`.
pub fn render(cert: &Certificate) -> String {
    let key_type = cert.public_key().type_name();
    let prefix = match key_type {
        "RSA" => "RSA",
        _ => "EC",
    };
    format!(
        "{{\"keyType\":\"{key_type}\",\"certificateData\":\"{}\",\"serialNumber\":\"{}\",\"supportedAlgorithms\":[\"{prefix}SHA256\",\"{prefix}SHA384\",\"{prefix}SHA512\"]}}",
        cert.to_base64(),
        cert.serial_decimal()
    )
}
