//! The IMDSv2-compatible routes (see the table in the parent module): session tokens,
//! the role listing, the role's credentials and `iam/info`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use rand::RngCore as _;
use zeroize::Zeroizing;

use super::{Resp, State, reply, text, unavailable_reason};
use crate::credentials::TemporaryCredentials;
use crate::output::utc_seconds;

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

/// The live IMDS session tokens, kept as SHA-256 digests with their expiry; at
/// most `capacity` at once (the one expiring first is dropped for a new one).
#[derive(Debug)]
pub struct TokenStore {
    tokens: Mutex<HashMap<[u8; 32], Instant>>,
    capacity: usize,
}

fn digest(token: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl TokenStore {
    /// An empty store holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            tokens: Mutex::new(HashMap::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new random token valid for `ttl` from `now`.
    pub fn issue(&self, now: Instant, ttl: Duration) -> Zeroizing<String> {
        use base64::Engine as _;
        let mut raw = Zeroizing::new([0u8; TOKEN_LEN * 3 / 4]);
        rand::rng().fill_bytes(raw.as_mut());
        let token = Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw));
        let key = digest(token.as_bytes());
        let mut map = self.map();
        if map.len() >= self.capacity {
            map.retain(|_, expiry| *expiry > now);
        }
        if map.len() >= self.capacity
            && let Some(first) = map.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
        {
            map.remove(&first);
        }
        map.insert(key, now + ttl);
        token
    }

    /// The time `token` has left at `now`, if it is live.
    pub fn check(&self, now: Instant, token: &[u8]) -> Option<Duration> {
        let key = digest(token);
        let mut map = self.map();
        match map.get(&key) {
            Some(expiry) if *expiry > now => Some(*expiry - now),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// How many tokens are held (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        _ => match trimmed.strip_prefix(CREDENTIALS_PATH) {
            Some(rest) if rest.len() > 1 && !rest[1..].contains('/') && rest.starts_with('/') => {
                Route::Credentials(&rest[1..])
            }
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
    let q = |s: &str| Zeroizing::new(serde_json::Value::String(s.to_owned()).to_string());
    // Security: this document carries the secret key and token; it only goes to a
    // client that presented a live token.
    Zeroizing::new(format!(
        "{{\"AccessKeyId\":{},\"SecretAccessKey\":{},\"Token\":{},\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"Expiration\":\"{}\",\"LastUpdated\":\"{}\"}}\n",
        q(c.access_key_id()).as_str(),
        q(c.secret_access_key()).as_str(),
        q(c.session_token()).as_str(),
        utc_seconds(c.expires_at()),
        utc_seconds(last_updated),
    ))
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
                Some(c) => {
                    let doc = credentials_json(
                        c,
                        snapshot.obtained_at.unwrap_or_else(|| state.clock.now()),
                    );
                    reply(StatusCode::OK, "application/json", doc.as_bytes().to_vec())
                }
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
                    utc_seconds(updated),
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
    fn tokens_expire_and_the_store_is_bounded() {
        let store = TokenStore::new(3);
        let t0 = Instant::now();
        let a = store.issue(t0, Duration::from_secs(10));
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            store.check(t0 + Duration::from_secs(4), a.as_bytes()),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            store.check(t0 + Duration::from_secs(10), a.as_bytes()),
            None
        );
        assert_eq!(store.len(), 0, "an expired token is dropped when seen");
        let b = store.issue(t0, Duration::from_secs(5));
        let c = store.issue(t0, Duration::from_secs(50));
        let d = store.issue(t0, Duration::from_secs(60));
        let e = store.issue(t0, Duration::from_secs(70));
        assert_eq!(store.len(), 3);
        assert_eq!(
            store.check(t0, b.as_bytes()),
            None,
            "earliest expiring evicted"
        );
        for t in [&c, &d, &e] {
            assert!(store.check(t0, t.as_bytes()).is_some());
        }
        assert_eq!(store.check(t0, b"not a token"), None);
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
