//! What the tests of the long-running commands (`serve`, `update`, `exec`) check
//! refreshes with: the endpoint's request log read while it grows, a planned run
//! of faults, the certificate serials the endpoint saw, an identity rotated in
//! place, and the credentials `update` wrote.

use std::path::{Path, PathBuf};

use super::{Endpoint, iamra, td, wait_for};

/// The endpoint's request log, read while it may be appending (a line being
/// written is left for the next read).
pub fn log_entries(ep: &Endpoint) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&ep.log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// An endpoint for the refresh-fault tests: request 1 (the start) succeeds; the
/// first refresh meets `error` (a 5xx), 429 and a dropped connection (a client's
/// three attempts), the second a slow answer (past a 1 s `--timeout`); then it is
/// healthy again.
pub fn faulty_endpoint(error: &str) -> Endpoint {
    Endpoint::start_with(&[
        "--max-duration",
        "900",
        "--fault",
        "ok",
        "--fault",
        error,
        "--fault",
        "429",
        "--fault",
        "drop",
        "--fault",
        "delay:4000",
    ])
}

/// Asserts that the endpoint of [`faulty_endpoint`] met its plan: requests 1 to 4 as
/// planned, the slow one (5) logged only if the endpoint finished it before the
/// client hung up, and 6 a success.
pub fn assert_fault_plan_met(ep: &Endpoint, error: &str) {
    let log = log_entries(ep);
    let fault = |n: u64| {
        log.iter()
            .find(|v| v["n"] == n)
            .map(|v| v["fault"].as_str().unwrap_or("none").to_string())
    };
    let first_four: Vec<Option<String>> = (1..=4).map(fault).collect();
    assert_eq!(
        first_four,
        [
            Some("none".into()),
            Some(error.into()),
            Some("429".into()),
            Some("drop".into())
        ]
    );
    assert!(fault(5).is_none_or(|f| f == "delay:4000"));
    let sixth = log.iter().find(|v| v["n"] == 6).expect("request 6");
    assert_eq!(
        (sixth["status"].as_u64(), sixth["fault"].is_null()),
        (Some(201), true)
    );
}

/// The serials of the certificates the endpoint saw, in request order.
pub fn serials(ep: &Endpoint) -> Vec<String> {
    let mut r = log_entries(ep);
    r.sort_by_key(|v| v["n"].as_u64());
    r.iter()
        .map(|v| v["serial"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The decimal serial of a certificate file.
pub fn serial_of(cert: &Path) -> String {
    let out = iamra(
        &[
            "read-certificate-data",
            "--certificate",
            &cert.display().to_string(),
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["serialNumber"].to_string().trim_matches('"').to_string()
}

/// Copies `dir`'s certificate and key to `to` as cert.pem and key.pem, replacing
/// them atomically (new name, then rename), certificate first.
fn install_identity(dir: &str, to: &Path) {
    for (from, name) in [("cert.pem", "cert.pem"), ("key.pkcs8.pem", "key.pem")] {
        let tmp = to.join(format!(".{name}.new"));
        std::fs::copy(td(&format!("{dir}/{from}")), &tmp).unwrap();
        std::fs::rename(&tmp, to.join(name)).unwrap();
    }
}

/// The values of `profile` in a file we wrote: (access key, secret, token, expiry).
pub fn profile_values(text: &str, profile: &str) -> (String, String, String, String) {
    let section = text
        .split(&format!("[{profile}]\n"))
        .nth(1)
        .unwrap_or_default();
    let get = |prefix: &str| {
        section
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_default()
            .to_string()
    };
    (
        get("aws_access_key_id = "),
        get("aws_secret_access_key = "),
        get("aws_session_token = "),
        get(iamra::output::credentials_file::EXPIRATION_COMMENT),
    )
}

/// A certificate rotation under a running daemon: the RSA test identity installed
/// as `cert.pem` and `key.pem` in a folder of its own, later replaced in place by
/// the EC one.
pub struct Rotation {
    dir: tempfile::TempDir,
    /// The serial number of the first certificate.
    pub old: String,
    /// The serial number of the certificate installed by [`Rotation::rotate`].
    pub new: String,
}

impl Rotation {
    /// Installs the first identity.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        install_identity("rsa2048", dir.path());
        Rotation {
            dir,
            old: serial_of(&td("rsa2048/cert.pem")),
            new: serial_of(&td("ec-p256/cert.pem")),
        }
    }

    /// The folder holding the identity (free for the test's other files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The certificate file a daemon is given.
    pub fn cert(&self) -> PathBuf {
        self.dir().join("cert.pem")
    }

    /// The key file a daemon is given.
    pub fn key(&self) -> PathBuf {
        self.dir().join("key.pem")
    }

    /// Once `ep` has seen a request, installs the new identity and waits for a
    /// request signed with it; checks that every request before that one used the
    /// old certificate. Returns the serials seen and the index of the first new one.
    pub fn rotate(&self, ep: &Endpoint) -> (Vec<String>, usize) {
        wait_for("the first request", || {
            (!serials(ep).is_empty()).then_some(())
        });
        install_identity("ec-p256", self.dir());
        let seen = wait_for("a request signed with the new certificate", || {
            let s = serials(ep);
            s.contains(&self.new).then_some(s)
        });
        let switch = seen.iter().position(|s| *s == self.new).unwrap();
        assert!(seen[..switch].iter().all(|s| *s == self.old), "{seen:?}");
        (seen, switch)
    }
}
