//! The credential cache of `credential-process`.
//!
//! The AWS CLI runs `credential_process` for every command, so without a cache every
//! `aws` call would make a new `CreateSession` (slow, and parallel jobs hit the
//! service's rate limit). Entries live in `$XDG_RUNTIME_DIR/iamra` (else
//! `$XDG_CACHE_HOME/iamra`, else `~/.cache/iamra`; `IAMRA_CACHE_DIR` overrides), a
//! folder of mode 0700 holding one 0600 JSON file per key. The key is a SHA-256 over
//! everything that determines the credentials: the ARNs, region, endpoint, duration,
//! session name, and the identity of the certificate, key and chain inputs (content
//! hash plus device, inode, size and times of each file, so a rotated or edited file
//! is a new key). Entries hold only the temporary credentials: never a private key,
//! PIN or password.
//!
//! Concurrency: a reader first looks without a lock; on a miss it takes an exclusive
//! advisory lock on the entry's `.lock` file, looks again (another process may have
//! just refreshed), and only then calls the service, so many processes started at
//! once make one `CreateSession`. A file that is not ours, is readable by others, is
//! a symlink, is too large or does not parse is ignored and replaced, never trusted.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use zeroize::Zeroizing;

use crate::atomic_file::{self, FileError, FileLock, Mode, PRIVATE_FILE_MODE};
use crate::credentials::TemporaryCredentials;

/// Largest cache file read.
const MAX_ENTRY: u64 = 64 * 1024;

/// The cache could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// No folder could be determined (no HOME, no XDG variables).
    #[error("no cache folder: set XDG_RUNTIME_DIR, XDG_CACHE_HOME or HOME, or pass --no-cache")]
    NoFolder,
    /// The folder is unsafe or unusable.
    #[error("cache folder {} {reason}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing an entry failed.
    #[error("cannot write cache entry {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process held the entry's lock for too long.
    #[error("cache entry {} stayed locked by another process for {}s", path.display(), waited.as_secs())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: std::time::Duration,
    },
}

/// The default cache folder.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("IAMRA_CACHE_DIR") {
        return Some(dir);
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        return Some(dir.join("iamra"));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(dir.join("iamra"));
    }
    var("HOME").map(|h| h.join(".cache").join("iamra"))
}

/// The effective user id, read without FFI: `/proc/self` belongs to it.
fn euid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// An opened, checked cache folder.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    uid: u32,
}

impl Cache {
    /// Opens (creating with mode 0700) the folder and checks that it is ours and
    /// not open to others.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        let folder = |reason: String| CacheError::Folder {
            path: dir.to_path_buf(),
            reason,
        };
        match std::fs::DirBuilder::new()
            .mode(atomic_file::PRIVATE_DIR_MODE)
            .recursive(true)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => return Err(folder(format!("cannot be created ({e})"))),
        }
        let meta =
            std::fs::symlink_metadata(dir).map_err(|e| folder(format!("cannot be read ({e})")))?;
        if !meta.is_dir() {
            return Err(folder("is not a folder".into()));
        }
        let uid = euid().unwrap_or(meta.uid());
        if meta.uid() != uid {
            return Err(folder("belongs to another user".into()));
        }
        if meta.mode() & 0o077 != 0 {
            // Ours but open to others: tighten it rather than trust it.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| folder(format!("is open to other users and cannot be fixed ({e})")))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            uid,
        })
    }

    /// The entry for `key`.
    pub fn entry(&self, key: &CacheKey) -> Entry<'_> {
        Entry {
            cache: self,
            path: self.dir.join(format!("{}.json", key.0)),
            lock_path: self.dir.join(format!("{}.lock", key.0)),
        }
    }
}

/// A cache key: hex SHA-256 of everything that determines the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(String);

/// Builds a [`CacheKey`] from labelled parts.
pub struct KeyBuilder(ring::digest::Context);

impl std::fmt::Debug for KeyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBuilder")
    }
}

impl Default for KeyBuilder {
    fn default() -> Self {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"iamra-cache-v1");
        Self(ctx)
    }
}

impl KeyBuilder {
    /// Adds a labelled value.
    pub fn part(mut self, label: &str, value: &[u8]) -> Self {
        for chunk in [label.as_bytes(), value] {
            self.0.update(&(chunk.len() as u64).to_be_bytes());
            self.0.update(chunk);
        }
        self
    }

    /// Adds an input (file, stdin or variable): its content hash and, for a
    /// file, its device, inode, size and times, so any change makes a new key.
    pub fn input(self, label: &str, value: Option<&crate::input::Input>) -> Self {
        let Some(input) = value else {
            return self.part(label, b"");
        };
        let mut id = input.label().into_os_string().into_encoded_bytes();
        if let Some(p) = input.as_file()
            && let Ok(m) = std::fs::metadata(p)
        {
            for n in [
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime() as u64,
                m.mtime_nsec() as u64,
                m.ctime() as u64,
                m.ctime_nsec() as u64,
            ] {
                id.extend_from_slice(&n.to_be_bytes());
            }
        }
        if let Ok(data) = input.read("input") {
            id.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, &data).as_ref());
        }
        self.part(label, &id)
    }

    /// Adds everything of an identity that decides which credentials it gets: each
    /// input's content (and file identity), a URI's module, token serials and
    /// certificate objects as they resolve now ([`crate::key::pkcs11::resolve`]),
    /// a TPM handle with the TPM it is on, and the options. A URI that does not
    /// resolve adds its error's text (the load fails the same way).
    pub fn identity(self, spec: &crate::identity::IdentitySpec) -> Self {
        use crate::identity::{CertificateSource, KeySource};
        let resolve = |uri: &crate::key::pkcs11::Pkcs11Uri| {
            let resolved = crate::key::pkcs11::resolve(uri, &spec.pkcs11)
                .unwrap_or_else(|e| format!("error={}", crate::error::chain(&e)));
            format!("{uri}|{resolved}")
        };
        let tpm = |what: &str| {
            let tcti = match &spec.tpm.tcti {
                Some(t) => t.conf.clone(),
                None => crate::key::tpm::tcti::from_env()
                    .map_or_else(|e| format!("error={e}"), |t| t.conf),
            };
            format!(
                "{what}|tcti={tcti}|no-password={}",
                spec.tpm.no_key_password
            )
        };
        let mut b = match &spec.certificate {
            CertificateSource::Input(i) => self.input("certificate", Some(i)),
            CertificateSource::Pkcs11(u) => self.part("certificate-pkcs11", resolve(u).as_bytes()),
        };
        b = match &spec.private_key {
            None => b.part("private-key", b""),
            Some(KeySource::Input(i)) => b.input("private-key", Some(i)),
            Some(KeySource::Pkcs11(u)) => b.part("private-key-pkcs11", resolve(u).as_bytes()),
            Some(KeySource::TpmHandle(h)) => {
                b.part("private-key-tpm", tpm(&h.to_string()).as_bytes())
            }
        };
        // A TSS2 key file's TPM matters as much as its content.
        if spec.inputs().next().is_some() {
            b = b.part("tpm", tpm("").as_bytes());
        }
        b.input("intermediates", spec.intermediates.as_ref())
            .part(
                "pkcs11-module",
                spec.pkcs11
                    .module
                    .as_ref()
                    .map(|m| m.as_os_str().as_encoded_bytes())
                    .unwrap_or_default(),
            )
            .part("pkcs11-reuse-pin", &[u8::from(spec.pkcs11.reuse_pin)])
    }

    /// Adds what decides which endpoint is trusted and how it is reached: the CA
    /// bundle's content (else the system store's variables), and the proxy
    /// variables. Credentials fetched without certificate verification are never
    /// cached (the caller checks [`crate::session::ClientOptions::insecure`]).
    pub fn transport(self, options: &crate::session::ClientOptions) -> Self {
        let bundle = options.ca_bundle.as_ref().map(crate::input::Input::parse);
        let mut b = self
            .input("ca-bundle", bundle.as_ref())
            .part("insecure", &[u8::from(options.insecure)]);
        for name in [
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            let value = std::env::var_os(name).unwrap_or_default();
            b = b.part(name, value.as_encoded_bytes());
        }
        b
    }

    /// The key.
    pub fn finish(self) -> CacheKey {
        CacheKey(hex::encode(self.0.finish()))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StoredRef<'a> {
    version: u32,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Stored {
    version: u32,
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: SecretString,
    expiration: String,
}

/// One cache entry.
#[derive(Debug)]
pub struct Entry<'a> {
    cache: &'a Cache,
    path: PathBuf,
    lock_path: PathBuf,
}

/// Holds the entry's exclusive lock until dropped.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code, reason = "held for its Drop")] FileLock);

impl Entry<'_> {
    /// The entry's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the stored credentials if they are ours, intact, and valid for more
    /// than `refresh_before` after `now`.
    pub fn read_fresh(
        &self,
        now: OffsetDateTime,
        refresh_before: std::time::Duration,
    ) -> Option<TemporaryCredentials> {
        let meta = std::fs::symlink_metadata(&self.path).ok()?;
        if !meta.is_file()
            || meta.uid() != self.cache.uid
            || meta.mode() & 0o077 != 0
            || meta.len() > MAX_ENTRY
        {
            tracing::debug!(path = %self.path.display(), "ignoring a cache entry that is not a private regular file of ours");
            return None;
        }
        let mut data = Zeroizing::new(Vec::new());
        File::open(&self.path)
            .ok()?
            .take(MAX_ENTRY)
            .read_to_end(&mut data)
            .ok()?;
        let stored: Stored = match serde_json::from_slice(&data) {
            Ok(s) => s,
            Err(_) => {
                tracing::debug!(path = %self.path.display(), "ignoring a corrupt cache entry");
                return None;
            }
        };
        if stored.version != 1 {
            return None;
        }
        let expires_at = OffsetDateTime::parse(
            &stored.expiration,
            &::time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        if expires_at - now <= refresh_before {
            return None;
        }
        Some(TemporaryCredentials::new(
            stored.access_key_id,
            stored.secret_access_key,
            stored.session_token,
            stored.expiration,
            expires_at,
        ))
    }

    /// Takes the entry's exclusive lock, waiting at most `limit` while another
    /// process holds it.
    pub fn lock_within(&self, limit: std::time::Duration) -> Result<Lock, CacheError> {
        let start = std::time::Instant::now();
        match FileLock::acquire_within(&self.lock_path, limit) {
            Ok(Some(lock)) => Ok(Lock(lock)),
            Ok(None) => Err(CacheError::LockTimeout {
                path: self.lock_path.clone(),
                waited: start.elapsed(),
            }),
            Err(e) => Err(write_error(e)),
        }
    }

    /// Takes the entry's exclusive lock (blocking while another process holds it).
    pub fn lock(&self) -> Result<Lock, CacheError> {
        FileLock::acquire(&self.lock_path)
            .map(Lock)
            .map_err(write_error)
    }

    /// Stores `creds` atomically (temporary file, fsync, rename), mode 0600.
    pub fn store(&self, creds: &TemporaryCredentials) -> Result<(), CacheError> {
        let err = |source| CacheError::Write {
            path: self.path.clone(),
            source,
        };
        let stored = StoredRef {
            version: 1,
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
            expiration: creds.expiration(),
        };
        // Security: the serialised entry holds the secret key and token; it goes only
        // to a 0600 file in a 0700 folder, and the buffer is zeroized.
        // Sized for the worst case of JSON escaping, so that serde_json never
        // reallocates (and so never leaves a copy of the secrets behind).
        let capacity = [
            creds.access_key_id(),
            creds.secret_access_key(),
            creds.session_token(),
            creds.expiration(),
        ]
        .iter()
        .map(|s| s.len() * 6 + 2)
        .sum::<usize>()
            + 256;
        let mut json = Zeroizing::new(Vec::with_capacity(capacity));
        serde_json::to_writer(&mut *json, &stored).map_err(|e| err(std::io::Error::other(e)))?;
        atomic_file::write_atomically(&self.path, &json, Mode::Exactly(PRIVATE_FILE_MODE))
            .map_err(|e| err(e.into_path_and_io().1))
    }
}

/// A lock or file error as [`CacheError::Write`], naming the file it concerns.
fn write_error(e: FileError) -> CacheError {
    let (path, source) = e.into_path_and_io();
    CacheError::Write { path, source }
}
