//! The IMDSv2-compatible routes (see the table in the parent module): session tokens,
//! the role listing, the role's credentials and `iam/info`.

use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use rand::RngCore as _;
use zeroize::Zeroizing;

use super::{Resp, State, reply, text, unavailable_reason};
use crate::credentials::TemporaryCredentials;
use crate::utc::rfc3339;

/// The token route.
pub const TOKEN_PATH: &str = "/latest/api/token";
/// The role listing; `<this>/<role>` serves the credentials.
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials";
/// The instance-profile document.
pub const INFO_PATH: &str = "/latest/meta-data/iam/info";
/// Request header of `PUT` (wanted lifetime) and response header (lifetime left).
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// Request header carrying the token on `GET`s.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Longest (and default) token lifetime, in seconds.
pub const MAX_TTL: u64 = 21600;
/// Length of a token.
pub const TOKEN_LEN: usize = 100;

/// IMDS session tokens, issued and checked without being stored: a token is 75
/// bytes, base64url-encoded to 100 characters: its expiry (milliseconds since the
/// issuer was made, 8 bytes), 35 random bytes, and an HMAC-SHA256 of those 43 bytes
/// under a key drawn at start. No number of `PUT`s can fill memory or push out
/// another client's token; a restart invalidates every token.
pub struct TokenIssuer {
    key: ring::hmac::Key,
    start: Instant,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer(** redacted **)")
    }
}

const BODY_LEN: usize = 8 + 35;
const RAW_LEN: usize = BODY_LEN + 32;

impl TokenIssuer {
    /// An issuer with a fresh random key; token times count from `start`.
    pub fn new(start: Instant) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(secret.as_mut());
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_ref()),
            start,
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// A new token valid for `ttl` from `now`.
    pub fn issue(&self, now: Instant, ttl: Duration) -> Zeroizing<String> {
        use base64::Engine as _;
        let expiry = self
            .millis(now)
            .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut raw = Zeroizing::new([0u8; RAW_LEN]);
        raw[..8].copy_from_slice(&expiry.to_be_bytes());
        rand::rng().fill_bytes(&mut raw[8..BODY_LEN]);
        let tag = ring::hmac::sign(&self.key, &raw[..BODY_LEN]);
        raw[BODY_LEN..].copy_from_slice(tag.as_ref());
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw))
    }

    /// The time `token` has left at `now`, if it is one of ours and live.
    pub fn check(&self, now: Instant, token: &[u8]) -> Option<Duration> {
        use base64::Engine as _;
        if token.len() != TOKEN_LEN {
            return None;
        }
        let mut raw = Zeroizing::new([0u8; RAW_LEN]);
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_slice(token, raw.as_mut())
            .ok()?;
        if n != RAW_LEN {
            return None;
        }
        ring::hmac::verify(&self.key, &raw[..BODY_LEN], &raw[BODY_LEN..]).ok()?;
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&raw[..8]);
        let left = u64::from_be_bytes(expiry).checked_sub(self.millis(now))?;
        (left > 0).then(|| Duration::from_millis(left))
    }
}

/// What a path under `/latest/` asks for.
enum Route<'a> {
    Token,
    List,
    Credentials(&'a str),
    Info,
    Unknown,
}

fn route(path: &str) -> Option<Route<'_>> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    Some(match trimmed {
        TOKEN_PATH => Route::Token,
        CREDENTIALS_PATH => Route::List,
        INFO_PATH => Route::Info,
        _ => match trimmed
            .strip_prefix(CREDENTIALS_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            Some(role) if !role.is_empty() && !role.contains('/') => Route::Credentials(role),
            _ if path.starts_with("/latest/") => Route::Unknown,
            _ => return None,
        },
    })
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn with_ttl(mut r: Resp, seconds: u64) -> Resp {
    r.headers_mut()
        .insert(TTL_HEADER, HeaderValue::from(seconds));
    r
}

/// The credentials document, in the reference helper's field order.
pub fn credentials_json(
    c: &TemporaryCredentials,
    last_updated: ::time::OffsetDateTime,
) -> Zeroizing<String> {
    use crate::output::Part::{Json, Raw};
    let expiration = rfc3339(c.expires_at());
    let updated = rfc3339(last_updated);
    // Security: this document carries the secret key and token; it only goes to a
    // client that presented a live token.
    crate::output::secret_document(&[
        Raw("{\"AccessKeyId\":"),
        Json(c.access_key_id()),
        Raw(",\"SecretAccessKey\":"),
        Json(c.secret_access_key()),
        Raw(",\"Token\":"),
        Json(c.session_token()),
        Raw(",\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"Expiration\":"),
        Json(&expiration),
        Raw(",\"LastUpdated\":"),
        Json(&updated),
        Raw("}\n"),
    ])
}

fn put_token(state: &State, parts: &Parts) -> Resp {
    if parts.method != Method::PUT {
        return method_not_allowed("PUT");
    }
    if parts.headers.contains_key("x-forwarded-for") {
        return text(
            StatusCode::BAD_REQUEST,
            "unable to process requests with X-Forwarded-For header",
        );
    }
    // RFC 7239's standard form of the same thing: a proxy forwarded the request.
    if parts.headers.contains_key(hyper::header::FORWARDED) {
        return text(
            StatusCode::BAD_REQUEST,
            "unable to process requests with Forwarded header",
        );
    }
    let ttl = match parts.headers.get(TTL_HEADER) {
        None => MAX_TTL,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(t) if (1..=MAX_TTL).contains(&t) => t,
            _ => return text(StatusCode::BAD_REQUEST, "invalid token TTL"),
        },
    };
    let token = state.tokens.issue(Instant::now(), Duration::from_secs(ttl));
    // Security: the token goes to the client that asked for it, nowhere else.
    let r = reply(StatusCode::OK, "text/plain", token.as_bytes().to_vec());
    with_ttl(r, ttl)
}

/// Serves an IMDS path; `None` when the path is not one.
pub(super) fn handle(state: &State, parts: &Parts) -> Option<Resp> {
    let route = route(parts.uri.path())?;
    let route = match route {
        Route::Token => return Some(put_token(state, parts)),
        Route::Unknown => return Some(text(StatusCode::NOT_FOUND, "not found")),
        other => other,
    };
    if parts.method != Method::GET {
        return Some(method_not_allowed("GET"));
    }
    let Some(token) = parts.headers.get(TOKEN_HEADER) else {
        return Some(text(StatusCode::UNAUTHORIZED, "no token provided"));
    };
    let Some(left) = state.tokens.check(Instant::now(), token.as_bytes()) else {
        return Some(text(StatusCode::UNAUTHORIZED, "invalid token provided"));
    };
    let left = left.as_secs().max(1);
    let r = match route {
        Route::List => reply(StatusCode::OK, "text/plain", state.role.name.clone()),
        Route::Credentials(name) if name == state.role.name => {
            let snapshot = state.creds.borrow();
            match snapshot.valid_at(state.clock.now()) {
                Some(c) => reply(
                    StatusCode::OK,
                    "application/json",
                    state.documents(c, snapshot.obtained_at).imds,
                ),
                None => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &unavailable_reason(&snapshot),
                ),
            }
        }
        Route::Credentials(_) => text(StatusCode::NOT_FOUND, "not found"),
        Route::Info => {
            let updated = state
                .creds
                .borrow()
                .obtained_at
                .unwrap_or_else(|| state.clock.now());
            let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
            reply(
                StatusCode::OK,
                "application/json",
                format!(
                    "{{\"Code\":\"Success\",\"LastUpdated\":\"{}\",\"InstanceProfileArn\":{},\"InstanceProfileId\":{}}}\n",
                    rfc3339(updated),
                    q(&state.role.instance_profile_arn),
                    q(&state.role.instance_profile_id),
                ),
            )
        }
        Route::Token | Route::Unknown => text(StatusCode::NOT_FOUND, "not found"),
    };
    Some(with_ttl(r, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_without_a_store() {
        let t0 = Instant::now();
        let issuer = TokenIssuer::new(t0);
        let a = issuer.issue(t0, Duration::from_secs(10));
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            issuer.check(t0 + Duration::from_secs(4), a.as_bytes()),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            issuer.check(t0 + Duration::from_secs(10), a.as_bytes()),
            None
        );
        // Many tokens: every one stays valid (nothing is evicted).
        let many: Vec<_> = (0..10_000)
            .map(|_| issuer.issue(t0, Duration::from_secs(60)))
            .collect();
        assert!(
            many.iter()
                .all(|t| issuer.check(t0, t.as_bytes()).is_some())
        );
        // Tampered, foreign, truncated tokens fail.
        let mut bad = a.as_bytes().to_vec();
        bad[0] = if bad[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(issuer.check(t0, &bad), None);
        assert_eq!(TokenIssuer::new(t0).check(t0, a.as_bytes()), None);
        assert_eq!(issuer.check(t0, &a.as_bytes()[..99]), None);
        assert_eq!(issuer.check(t0, b"not a token"), None);
        assert_eq!(issuer.check(t0, &[b'!'; TOKEN_LEN]), None);
    }

    #[test]
    fn routes_follow_the_reference() {
        assert!(matches!(route("/latest/api/token"), Some(Route::Token)));
        assert!(matches!(route(CREDENTIALS_PATH), Some(Route::List)));
        assert!(matches!(
            route("/latest/meta-data/iam/security-credentials/"),
            Some(Route::List)
        ));
        assert!(matches!(
            route("/latest/meta-data/iam/security-credentials/r/"),
            Some(Route::Credentials("r"))
        ));
        assert!(matches!(
            route("/latest/meta-data/iam/security-credentials/r/x"),
            Some(Route::Unknown)
        ));
        assert!(matches!(
            route("/latest/meta-data/iam/info"),
            Some(Route::Info)
        ));
        assert!(matches!(
            route("/latest/meta-data/ami-id"),
            Some(Route::Unknown)
        ));
        assert!(route("/v1/credentials").is_none());
    }

    #[test]
    fn non_ascii_after_a_route_prefix_is_an_unknown_route_not_a_panic() {
        // Found by the `serve` fuzz target: a multi-byte character right after the
        // credentials path was sliced at its second byte.
        for path in [
            "/latest/meta-data/iam/security-credentials\u{459}uzz",
            "/latest/meta-data/iam/security-credentials\u{459}",
            "/latest/meta-data/iam/security-credentials\u{1F600}/r",
            "/latest/meta-data/iam/security-credentials/\u{459}/",
        ] {
            let _ = route(path);
        }
        assert!(matches!(
            route("/latest/meta-data/iam/security-credentials\u{459}uzz"),
            Some(Route::Unknown)
        ));
        assert!(matches!(
            route("/latest/meta-data/iam/security-credentials/\u{459}/"),
            Some(Route::Credentials("\u{459}"))
        ));
    }

    #[test]
    fn credentials_document_has_the_reference_shape() {
        let c = TemporaryCredentials::new(
            "ASIA1".into(),
            secrecy::SecretString::from("s\"k"),
            secrecy::SecretString::from("tok"),
            "2026-12-01T21:00:00Z".into(),
            ::time::macros::datetime!(2026-12-01 21:00:00 UTC),
        );
        assert_eq!(
            credentials_json(&c, ::time::macros::datetime!(2026-12-01 20:00:00.5 UTC)).as_str(),
            "{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\\\"k\",\"Token\":\"tok\",\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"Expiration\":\"2026-12-01T21:00:00Z\",\"LastUpdated\":\"2026-12-01T20:00:00Z\"}\n"
        );
    }
}
