//! The ECS container-credentials route (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN`).
//!
//! `GET /v1/credentials` with `Authorization: <token>` answers
//! `{"RoleArn","AccessKeyId","SecretAccessKey","Token","Expiration","AccountId"}`;
//! errors are `{"code":…,"message":…}` (401 without the right token, 405 for other
//! methods, 503 once the last good credentials have expired). The token is 43
//! URL-safe base64 characters generated at start and written (no newline, mode 0600)
//! to `--ecs-token-file`, or one line read from `--ecs-token-from-file`; only its
//! SHA-256 is kept in memory after start, and requests are compared in constant time.

use std::path::Path;

use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use super::{Resp, ServeError, State, reply, unavailable_reason};
use crate::atomic_file::{self, FileError, Mode, PRIVATE_FILE_MODE};
use crate::credentials::TemporaryCredentials;
use crate::utc::rfc3339;

/// The route.
pub const PATH: &str = "/v1/credentials";
/// Shortest token accepted from a file.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest token accepted from a file.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The expected `Authorization` value, kept as a digest.
pub struct Token([u8; 32]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(** redacted **)")
    }
}

fn digest(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Token {
    /// Keeps the digest of `secret`.
    pub fn new(secret: SecretString) -> Self {
        Self(digest(secret.expose_secret().as_bytes()))
    }

    /// Whether `presented` is the token (constant time).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let d = digest(presented);
        d.iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// A new random token.
pub fn generate() -> SecretString {
    use base64::Engine as _;
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(raw.as_mut());
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw))
}

/// Writes `token` to `path` (no newline, atomically; the folder is made with mode
/// 0700 if missing): mode 0600, or with `group` (a group id) mode 0640 owned by
/// that group, so that the clients of a service account can read it.
pub fn write_token_file(
    path: &Path,
    token: &SecretString,
    group: Option<u32>,
) -> Result<(), ServeError> {
    let err = |e: FileError| ServeError::TokenFile {
        path: path.to_path_buf(),
        reason: format!("cannot be written: {}", crate::error::chain(&e)),
    };
    atomic_file::create_folder(path).map_err(err)?;
    let mode = match group {
        Some(gid) => Mode::ExactlyWithGroup(0o640, gid),
        None => Mode::Exactly(PRIVATE_FILE_MODE),
    };
    atomic_file::write_atomically(path, token.expose_secret().as_bytes(), mode).map_err(err)
}

/// Reads a token from `path` (`-` for stdin, `env:NAME`): one line of printable
/// ASCII, 16 to 4096 characters; one final newline is ignored.
pub fn read_token_file(path: &Path) -> Result<SecretString, ServeError> {
    let bad = |reason: String| ServeError::TokenFile {
        path: path.to_path_buf(),
        reason,
    };
    let data = crate::input::read_file("ECS token file", path)
        .map_err(|e| bad(format!("cannot be read: {}", crate::error::chain(&e))))?;
    let mut text: &[u8] = &data;
    if let Some(t) = text.strip_suffix(b"\n") {
        text = t.strip_suffix(b"\r").unwrap_or(t);
    }
    if !text.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(bad(
            "must hold one line of printable ASCII characters without spaces".into(),
        ));
    }
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&text.len()) {
        return Err(bad(format!(
            "must hold a token of {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters"
        )));
    }
    if let Some(p) = crate::input::Input::parse(path).as_file()
        && let Ok(m) = std::fs::metadata(p)
    {
        use std::os::unix::fs::PermissionsExt as _;
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "ECS token file {} can be read by other users; make it mode 0600",
                path.display()
            );
        }
    }
    let text = std::str::from_utf8(text).map_err(|_| bad("is not ASCII".into()))?;
    Ok(SecretString::from(text))
}

fn error(status: StatusCode, code: &str, message: &str) -> Resp {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    reply(
        status,
        "application/json",
        format!("{{\"code\":{},\"message\":{}}}\n", q(code), q(message)),
    )
}

/// Serves the ECS path; `None` when the path is not it or the endpoint is off.
pub(super) fn handle(state: &State, parts: &Parts) -> Option<Resp> {
    let token = state.ecs.as_ref()?;
    if parts.uri.path() != PATH {
        return None;
    }
    if parts.method != Method::GET {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "use GET",
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET"),
        );
        return Some(r);
    }
    let Some(presented) = parts.headers.get(hyper::header::AUTHORIZATION) else {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "no Authorization header",
        ));
    };
    if !token.matches(presented.as_bytes()) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid Authorization token",
        ));
    }
    let snapshot = state.creds.borrow();
    let Some(c) = snapshot.valid_at(state.clock.now()) else {
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CredentialsUnavailable",
            &unavailable_reason(&snapshot),
        ));
    };
    Some(reply(
        StatusCode::OK,
        "application/json",
        state.documents(c, snapshot.obtained_at).ecs,
    ))
}

/// The credentials document.
pub fn credentials_json(
    role_arn: &str,
    account: &str,
    c: &TemporaryCredentials,
) -> Zeroizing<String> {
    use crate::output::Part::{Json, Raw};
    let expiration = rfc3339(c.expires_at());
    // Security: the document carries the secret key and token; it only goes to a
    // client that presented the token.
    crate::output::secret_document(&[
        Raw("{\"RoleArn\":"),
        Json(role_arn),
        Raw(",\"AccessKeyId\":"),
        Json(c.access_key_id()),
        Raw(",\"SecretAccessKey\":"),
        Json(c.secret_access_key()),
        Raw(",\"Token\":"),
        Json(c.session_token()),
        Raw(",\"Expiration\":"),
        Json(&expiration),
        Raw(",\"AccountId\":"),
        Json(account),
        Raw("}\n"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        let secret = generate();
        assert_eq!(secret.expose_secret().len(), 43);
        let t = Token::new(secret.clone());
        assert!(t.matches(secret.expose_secret().as_bytes()));
        assert!(!t.matches(b""));
        assert!(!t.matches(format!("{} ", secret.expose_secret()).as_bytes()));
        assert_eq!(format!("{t:?}"), "Token(** redacted **)");
    }

    #[test]
    fn token_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "abcdefghijklmnopqrstuvwxyz\n").unwrap();
        assert_eq!(
            read_token_file(&p).unwrap().expose_secret(),
            "abcdefghijklmnopqrstuvwxyz"
        );
        for bad in [
            "short",
            "two words here and more",
            "line\nline\nline and more",
        ] {
            std::fs::write(&p, bad).unwrap();
            assert!(read_token_file(&p).is_err(), "{bad:?}");
        }
        let out = dir.path().join("sub/token");
        let secret = generate();
        write_token_file(&out, &secret, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            secret.expose_secret()
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(dir.path().join("sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
    }
}
