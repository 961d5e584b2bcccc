//! Plain HTTP/1.1 on loopback, written by hand (so a test controls every byte it
//! sends), and the IMDSv2 calls a client makes to `iamra serve`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use super::PATIENCE;

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` on a new connection and reads the whole answer.
pub fn http_raw(addr: &str, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(raw).unwrap();
    let mut data = Vec::new();
    let _ = s.read_to_end(&mut data);
    let text = String::from_utf8_lossy(&data).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `METHOD path` with `headers` (a `Host` is added unless given).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    http_raw(addr, req.as_bytes())
}

/// The IMDS path of the test role's credentials (the role of [`super::ROLE_ARN`]).
pub const IMDS_CREDENTIALS_PATH: &str =
    "/latest/meta-data/iam/security-credentials/iamra-test-role";

/// A fresh IMDS token.
#[track_caller]
pub fn imds_token(addr: &str) -> String {
    let r = http(
        addr,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "600")],
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

/// The IMDS credentials document.
#[track_caller]
pub fn imds_credentials(addr: &str, token: &str) -> serde_json::Value {
    let r = http(
        addr,
        "GET",
        IMDS_CREDENTIALS_PATH,
        &[("X-aws-ec2-metadata-token", token)],
    );
    assert_eq!(r.status, 200, "{r:?}");
    serde_json::from_str(&r.body).unwrap()
}
