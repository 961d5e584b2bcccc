//! The credential cache of credential-process: reuse, invalidation, safety, and one
//! CreateSession for many processes started at once.

use std::os::unix::fs::PermissionsExt as _;

use crate::common::*;

struct Setup {
    ep: Endpoint,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Setup {
            ep: Endpoint::start(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cache_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("cache")
    }

    fn run(&self, cert: &str, key: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "credential-process".to_string(),
            "--certificate".into(),
            cert.to_string(),
            "--private-key".into(),
            key.to_string(),
            "--intermediates".into(),
            td("chain.pem").display().to_string(),
        ];
        args.extend(self.ep.flags());
        args.extend(extra.iter().map(|s| s.to_string()));
        let dir = self.cache_dir().display().to_string();
        iamra(
            &args,
            &[("IAMRA_NO_CACHE", "false"), ("IAMRA_CACHE_DIR", &dir)],
        )
    }

    fn entries(&self) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        v.sort();
        v
    }
}

fn rsa() -> (String, String) {
    (
        td("rsa2048/cert.pem").display().to_string(),
        td("rsa2048/key.pkcs8.pem").display().to_string(),
    )
}

#[test]
fn a_second_call_reuses_the_cached_credentials() {
    let s = Setup::new();
    let (cert, key) = rsa();
    let first = s.run(&cert, &key, &[]);
    let second = s.run(&cert, &key, &[]);
    assert_credentials(&first);
    assert_eq!(
        first.stdout, second.stdout,
        "same credentials, byte for byte"
    );
    assert_eq!(s.ep.requests().len(), 1);
    // Folder 0700, entry 0600, and the entry holds no key material or password.
    let dir_mode = std::fs::metadata(s.cache_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let entries = s.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        std::fs::metadata(&entries[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let content = std::fs::read_to_string(&entries[0]).unwrap();
    assert!(!content.contains("PRIVATE KEY"));
    let key_body = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(!content.contains(&key_body));
}

#[test]
fn no_cache_and_a_short_remaining_life_call_the_service() {
    let s = Setup::new();
    let (cert, key) = rsa();
    assert_credentials(&s.run(&cert, &key, &[]));
    assert_credentials(&s.run(&cert, &key, &["--no-cache"]));
    assert_eq!(s.ep.requests().len(), 2);
    // Credentials valid for one hour, but wanted for more than that: refreshed.
    assert_credentials(&s.run(&cert, &key, &["--refresh-before", "2h"]));
    assert_eq!(s.ep.requests().len(), 3);
    // A different duration is a different entry.
    assert_credentials(&s.run(&cert, &key, &["--session-duration", "900"]));
    assert_eq!(s.ep.requests().len(), 4);
    assert_credentials(&s.run(&cert, &key, &["--session-duration", "900"]));
    assert_eq!(s.ep.requests().len(), 4);
}

#[test]
fn a_rotated_certificate_or_key_invalidates_the_entry() {
    let s = Setup::new();
    let work = tempfile::tempdir().unwrap();
    let cert = work.path().join("cert.pem");
    let key = work.path().join("key.pem");
    std::fs::copy(td("rsa2048/cert.pem"), &cert).unwrap();
    std::fs::copy(td("rsa2048/key.pkcs8.pem"), &key).unwrap();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    assert_credentials(&s.run(&c, &k, &[]));
    assert_credentials(&s.run(&c, &k, &[]));
    assert_eq!(s.ep.requests().len(), 1);
    // Rotation: new certificate and key (another identity) at the same paths.
    std::fs::copy(td("ec-p256/cert.pem"), &cert).unwrap();
    std::fs::copy(td("ec-p256/key.pkcs8.pem"), &key).unwrap();
    assert_credentials(&s.run(&c, &k, &[]));
    let r = s.ep.requests();
    assert_eq!(r.len(), 2);
    assert_ne!(
        r[0]["serial"], r[1]["serial"],
        "the new certificate was used"
    );
}

#[test]
fn corrupt_or_foreign_mode_entries_are_ignored_and_replaced() {
    let s = Setup::new();
    let (cert, key) = rsa();
    assert_credentials(&s.run(&cert, &key, &[]));
    let entry = s.entries().remove(0);
    for bad in [&b"{not json"[..], b"", b"{\"Version\":1}"] {
        std::fs::write(&entry, bad).unwrap();
        let out = s.run(&cert, &key, &[]);
        assert_credentials(&out);
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(s.ep.requests().len(), 4);
    // Readable by others: not trusted.
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_credentials(&s.run(&cert, &key, &[]));
    assert_eq!(s.ep.requests().len(), 5);
    assert_eq!(
        std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A symlink planted in place of the entry is not followed.
    let target = s.dir.path().join("elsewhere.json");
    std::fs::write(&target, b"x").unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&target, &entry).unwrap();
    assert_credentials(&s.run(&cert, &key, &[]));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"x",
        "the symlink target is untouched"
    );
}

#[test]
fn an_unusable_cache_folder_falls_back_to_a_direct_call_with_a_warning() {
    let s = Setup::new();
    std::fs::write(s.cache_dir(), b"a file, not a folder").unwrap();
    let (cert, key) = rsa();
    let out = s.run(&cert, &key, &[]);
    assert_credentials(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("iamra: warning: credential cache disabled: cache folder "),
        "{stderr}"
    );
}

#[test]
fn thirty_two_parallel_calls_make_one_create_session() {
    let s = Setup::new();
    let (cert, key) = rsa();
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|_| scope.spawn(|| s.run(&cert, &key, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outputs {
        assert_credentials(out);
        assert_eq!(out.stdout, outputs[0].stdout);
    }
    assert_eq!(s.ep.requests().len(), 1, "exactly one CreateSession");
}

/// A process that holds an entry's lock for too long does not stall the others:
/// they wait at most `--total-timeout`, then fetch on their own.
#[test]
fn a_lock_held_too_long_is_waited_for_a_bounded_time() {
    let s = Setup::new();
    let (cert, key) = rsa();
    // Learn the entry's lock file from a first call, then expire the entry.
    assert_credentials(&s.run(&cert, &key, &[]));
    for e in s.entries() {
        std::fs::remove_file(e).unwrap();
    }
    let lock = std::fs::read_dir(s.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "lock"))
        .expect("a lock file");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "120"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = s.run(&cert, &key, &["--total-timeout", "2"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_credentials(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("credential cache lock unavailable: cache entry")
            && stderr.contains("stayed locked by another process for 2s"),
        "{stderr}"
    );
}

/// The lock is not held while a password prompt waits for someone to type: other
/// processes for the same profile go on.
#[test]
fn the_cache_lock_is_released_while_a_password_prompt_waits() {
    let s = Setup::new();
    let cert = td("rsa2048/cert.pem").display().to_string();
    let key = td("rsa2048/key.enc-scrypt-aes256.pem")
        .display()
        .to_string();
    let mut args = vec![
        iamra_path().to_string(),
        "credential-process".into(),
        "--certificate".into(),
        cert,
        "--private-key".into(),
        key,
    ];
    args.extend(s.ep.flags());
    let command = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    // `script` gives iamra a terminal to prompt on; nobody answers.
    let mut child = clean_iamra_command_for("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("IAMRA_NO_CACHE", "false")
        .env("IAMRA_CACHE_DIR", s.cache_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let start = std::time::Instant::now();
    while !String::from_utf8_lossy(&seen).contains("Password for private key") {
        let mut buf = [0u8; 256];
        use std::io::Read as _;
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0 && start.elapsed().as_secs() < 60,
            "no prompt: {seen:?}"
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let lock = std::fs::read_dir(s.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "lock"))
        .expect("a lock file");
    let free = std::process::Command::new("flock")
        .args(["-n"])
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(free.success(), "the lock is held during the prompt");
}
