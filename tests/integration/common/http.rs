//! Plain HTTP/1.1 on loopback, written by hand (so a test controls every byte it
//! sends), and the IMDSv2 calls a client makes to `iamra serve`.

use std::io::{BufRead, Read as _, Write as _};
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
    /// Splits a raw answer into status (0 when there is no status line), headers
    /// and body.
    pub fn parse(text: &str) -> Reply {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP/1."))
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

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A connection to `addr` whose reads give up after [`PATIENCE`].
pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Everything the server sends until it closes the connection (or a read fails).
pub fn read_all(s: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let _ = s.read_to_end(&mut data);
    String::from_utf8_lossy(&data).into_owned()
}

/// One answer from a connection that may stay open: the head, then a
/// `Content-Length` body; what arrived when the connection closes (or a read fails)
/// first.
pub fn read_answer(reader: &mut impl BufRead) -> String {
    let mut data = Vec::new();
    let mut length = 0;
    loop {
        let start = data.len();
        match reader.read_until(b'\n', &mut data) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&data).into_owned(),
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&data[start..]).to_ascii_lowercase();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let _ = reader.take(length).read_to_end(&mut data);
    String::from_utf8_lossy(&data).into_owned()
}

/// Sends `raw` on a new connection and reads the whole answer.
pub fn http_raw(addr: &str, raw: &[u8]) -> Reply {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    Reply::parse(&read_all(&mut s))
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
