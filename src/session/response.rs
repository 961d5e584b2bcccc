//! Parsing `CreateSession` answers: the credential set, or the service's error.

use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::credentials::TemporaryCredentials;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    credential_set: Vec<CredentialSetItem>,
}

#[derive(Deserialize)]
struct CredentialSetItem {
    credentials: Credentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: SecretString,
    expiration: String,
}

/// The latest expiration accepted: the longest session the service grants (12 h)
/// plus [`MAX_CLOCK_SKEW`].
pub const MAX_LIFETIME: ::time::Duration =
    ::time::Duration::seconds(super::MAX_DURATION as i64 + MAX_CLOCK_SKEW.whole_seconds());

/// How far the service's clock may be ahead of ours (SigV4 itself refuses requests
/// more than 5 minutes off).
pub const MAX_CLOCK_SKEW: ::time::Duration = ::time::Duration::minutes(15);

/// Parses a successful answer. Anything missing, mistyped or unparsable is an
/// error; a half-filled credential is never returned. The error text never quotes
/// the body (it may hold secrets). The expiration is checked against the clock by
/// [`check_expiration`] (the session client calls both).
pub fn parse_success(body: &[u8]) -> Result<TemporaryCredentials, String> {
    let parsed: Body = serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names the field and position, not the value.
        format!(
            "malformed CreateSession response ({})",
            describe_json_error(&e)
        )
    })?;
    let Some(item) = parsed.credential_set.into_iter().next() else {
        return Err("CreateSession response holds no credentials (empty credentialSet)".into());
    };
    let c = item.credentials;
    if c.access_key_id.is_empty() {
        return Err("CreateSession response has an empty accessKeyId".into());
    }
    {
        use secrecy::ExposeSecret as _;
        if c.secret_access_key.expose_secret().is_empty()
            || c.session_token.expose_secret().is_empty()
        {
            return Err(
                "CreateSession response has an empty secretAccessKey or sessionToken".into(),
            );
        }
    }
    let expires_at = ::time::OffsetDateTime::parse(
        &c.expiration,
        &::time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| {
        format!(
            "CreateSession response has an unparsable expiration {}",
            crate::error::quote(&c.expiration)
        )
    })?;
    Ok(TemporaryCredentials::new(
        c.access_key_id,
        c.secret_access_key,
        c.session_token,
        c.expiration,
        expires_at,
    ))
}

/// Refuses credentials received at `now` whose expiration is not after `now` or
/// more than [`MAX_LIFETIME`] ahead of it: they would be useless or kept far too
/// long, and far-future times overflow date arithmetic.
pub fn check_expiration(
    credentials: &TemporaryCredentials,
    now: ::time::OffsetDateTime,
) -> Result<(), String> {
    let text = credentials.expiration();
    let expires_at = credentials.expires_at();
    if expires_at <= now {
        return Err(format!(
            "CreateSession response has an expiration in the past ({}); is the system clock right?",
            crate::error::quote(text)
        ));
    }
    let latest = now.checked_add(MAX_LIFETIME);
    if latest.is_none_or(|latest| expires_at > latest) {
        return Err(format!(
            "CreateSession response has an expiration more than 12 hours and 15 minutes ahead ({}); is the system clock right?",
            crate::error::quote(text)
        ));
    }
    Ok(())
}

fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "truncated".into(),
        Category::Syntax => "not JSON".into(),
        Category::Data => {
            // "missing field `sessionToken` at line 1 column 80" / "invalid type: ..."
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            // `invalid type: string "abc"` would quote a value; drop it.
            match msg.split_once(':') {
                Some((head, _)) if head == "invalid type" => format!("{head} of a field"),
                _ => msg,
            }
        }
        Category::Io => "read error".into(),
    }
}

/// An error answer from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceError {
    /// HTTP status.
    pub status: u16,
    /// Error code (`AccessDeniedException`, ...), or empty.
    pub code: String,
    /// The message, or empty.
    pub message: String,
    /// `x-amzn-RequestId`, or empty.
    pub request_id: String,
}

/// Builds a [`ServiceError`] from the `x-amzn-ErrorType` header and the JSON body.
pub fn parse_error(
    status: u16,
    error_type: Option<&str>,
    request_id: Option<&str>,
    body: &[u8],
) -> ServiceError {
    #[derive(Deserialize, Default)]
    struct ErrBody {
        #[serde(alias = "Message")]
        message: Option<String>,
        #[serde(rename = "__type", alias = "code", alias = "Code")]
        code: Option<String>,
    }
    let body: ErrBody = serde_json::from_slice(&Zeroizing::new(body.to_vec())).unwrap_or_default();
    let clean = |s: &str| {
        let s = s.split(':').next().unwrap_or(s);
        s.rsplit('#').next().unwrap_or(s).trim().to_string()
    };
    let code = error_type
        .map(clean)
        .or_else(|| body.code.as_deref().map(clean))
        .unwrap_or_default();
    let mut message: String = body.message.unwrap_or_default().chars().take(300).collect();
    message.retain(|c| !c.is_control());
    ServiceError {
        status,
        code,
        message,
        request_id: request_id.unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_real_shape() {
        let body = br#"{"credentialSet":[{"assumedRoleUser":{"arn":"a","assumedRoleId":"b"},"credentials":{"accessKeyId":"ASIA1","expiration":"2026-12-01T21:00:00Z","secretAccessKey":"sk","sessionToken":"tok"},"packedPolicySize":0,"roleArn":"r","sourceIdentity":"CN=x"}],"subjectArn":"s"}"#;
        let c = parse_success(body).unwrap();
        assert_eq!(c.access_key_id(), "ASIA1");
        assert_eq!(c.expiration(), "2026-12-01T21:00:00Z");
    }

    #[test]
    fn rejects_partial_answers_without_quoting_secrets() {
        let missing = br#"{"credentialSet":[{"credentials":{"accessKeyId":"ASIA1","expiration":"2026-12-01T21:00:00Z","secretAccessKey":"TOPSECRET"}}]}"#;
        let e = parse_success(missing).unwrap_err();
        assert!(e.contains("sessionToken"), "{e}");
        assert!(!e.contains("TOPSECRET"));
        let wrong = br#"{"credentialSet":[{"credentials":{"accessKeyId":"ASIA1","expiration":5,"secretAccessKey":"TOPSECRET","sessionToken":"TOPSECRET"}}]}"#;
        let e = parse_success(wrong).unwrap_err();
        assert!(!e.contains("TOPSECRET"), "{e}");
        assert!(parse_success(br#"{"credentialSet":[]}"#).is_err());
        assert!(
            parse_success(br#"{"credentialSet":[{"cre"#)
                .unwrap_err()
                .contains("truncated")
        );
        assert!(parse_success(b"<html>").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn error_code_from_header_or_body() {
        let e = parse_error(
            403,
            Some(
                "AccessDeniedException:http://internal.amazon.com/coral/com.amazonaws.roles_anywhere/",
            ),
            Some("rid"),
            br#"{"message":"Untrusted Signing Certificate"}"#,
        );
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(e.message, "Untrusted Signing Certificate");
        let e = parse_error(
            400,
            None,
            None,
            br#"{"__type":"com.amazon#ValidationException","Message":"bad"}"#,
        );
        assert_eq!(e.code, "ValidationException");
        assert_eq!(e.message, "bad");
    }
}
