//! `credential-process` output.
//!
//! Wire contract (the AWS CLI/SDK `credential_process` protocol, byte-compatible
//! with aws_signing_helper): exactly
//! `{"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"SessionToken":…,"Expiration":…}`,
//! compact, in that field order, no trailing newline, and nothing else on stdout.

use zeroize::Zeroizing;

use crate::credentials::TemporaryCredentials;

/// Renders the JSON document. The result holds secrets and is zeroized on drop.
pub fn render(creds: &TemporaryCredentials) -> Zeroizing<String> {
    use super::Part::{Json, Raw};
    // Security: this string carries the secret key and token; it goes to stdout only.
    super::secret_document(&[
        Raw("{\"Version\":1,\"AccessKeyId\":"),
        Json(creds.access_key_id()),
        Raw(",\"SecretAccessKey\":"),
        Json(creds.secret_access_key()),
        Raw(",\"SessionToken\":"),
        Json(creds.session_token()),
        Raw(",\"Expiration\":"),
        Json(creds.expiration()),
        Raw("}"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn renders_fields_in_reference_order_without_newline() {
        let c = TemporaryCredentials::new(
            "ASIA1".into(),
            SecretString::from("s/k+"),
            SecretString::from("tok\"en"),
            "2026-12-01T21:00:00Z".into(),
            ::time::OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(
            render(&c).as_str(),
            r#"{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"s/k+","SessionToken":"tok\"en","Expiration":"2026-12-01T21:00:00Z"}"#
        );
    }
}
