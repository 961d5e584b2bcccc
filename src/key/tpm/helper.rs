//! The helper process `iamra-tpm`: TPM commands run there, so that only a TPM key
//! pays for libtss2.
//!
//! The parent starts one helper per loaded key and talks to it over two pipes
//! (the helper's stdin and stdout). Requests are binary frames: a 4-byte
//! big-endian length, a tag byte, then fields (byte strings with a 4-byte length,
//! `u32`s, single bytes); the buffers holding a password are zeroized. Replies
//! are frames holding JSON ([`Reply`]), errors as the [`TpmError`] the helper
//! met, so the parent reports exactly what an in-process key would.
//!
//! - `F` tcti-json path der: open a TSS2 key file. Reply: `Opened` or `Failed`.
//! - `H` tcti-json handle reference: open a persistent key. Same replies.
//! - `A` password: set the key's password (empty: none). Reply: `Done` or `Failed`.
//! - `S` digest message: sign. Reply: `Signature` or `Failed`.
//!
//! The helper ends when its stdin closes (the key was dropped, or the parent
//! died), flushing every TPM object it created. Every wait of the parent is
//! bounded ([`REPLY_TIMEOUT`]).

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::TpmError;
use super::backend::contract::{Backend, KeyRef};
use super::tcti::TctiConfig;
use crate::key::{Digest, PublicKey};

/// The helper's file name.
pub const HELPER_NAME: &str = "iamra-tpm";

/// The directory searched after the running executable's own, fixed at build time
/// (`IAMRA_TPM_HELPER_DIR`); the packages install the helper there.
pub const HELPER_DIR: &str = match option_env!("IAMRA_TPM_HELPER_DIR") {
    Some(dir) => dir,
    None => "/usr/libexec/iamra",
};

/// How long the parent waits for one reply. A hardware TPM can take seconds to
/// create a primary key; no TPM command takes minutes.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a dropped key waits for its helper to flush and exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames larger than this are refused (a key file, a message to sign and a
/// signature are a few KiB).
const MAX_FRAME: usize = 1 << 20;

/// A reply of the helper.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Reply {
    /// The key is open; its public key.
    Opened(WirePublic),
    /// The password was set.
    Done,
    /// A signature, in Roles Anywhere's encoding.
    Signature(Vec<u8>),
    /// The request failed.
    Failed(TpmError),
}

/// A TPM key's public key on the wire.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum WirePublic {
    /// RSA: `RSAPublicKey` DER and modulus bits.
    Rsa(Vec<u8>, usize),
    /// EC P-256 point.
    P256(Vec<u8>),
    /// EC P-384 point.
    P384(Vec<u8>),
}

impl WirePublic {
    fn from_key(pk: &PublicKey) -> Option<Self> {
        match pk {
            PublicKey::Rsa { pkcs1, bits } => Some(WirePublic::Rsa(pkcs1.clone(), *bits)),
            PublicKey::P256(p) => Some(WirePublic::P256(p.clone())),
            PublicKey::P384(p) => Some(WirePublic::P384(p.clone())),
            #[allow(unreachable_patterns, reason = "other key kinds may be added")]
            _ => None,
        }
    }

    fn into_key(self) -> PublicKey {
        match self {
            WirePublic::Rsa(pkcs1, bits) => PublicKey::Rsa { pkcs1, bits },
            WirePublic::P256(p) => PublicKey::P256(p),
            WirePublic::P384(p) => PublicKey::P384(p),
        }
    }
}

/// Where the helper is looked for when no [`super::TpmBackend`] was chosen: next
/// to the running executable (`cargo install`, a build tree), then [`HELPER_DIR`].
pub fn default_path(label: &str) -> Result<PathBuf, TpmError> {
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        tried.push(dir.join(HELPER_NAME));
    }
    tried.push(Path::new(HELPER_DIR).join(HELPER_NAME));
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let looked = tried
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    Err(TpmError::Helper {
        key: label.to_string(),
        reason: format!(
            "its helper program {HELPER_NAME} is not installed (looked for {looked}); reinstall iamra with the tpm feature"
        ),
    })
}

// ---- frames ----

/// Builds one request frame in a buffer of exactly the right size, so that no
/// reallocation leaves a copy of a secret behind.
struct Frame(Zeroizing<Vec<u8>>);

impl Frame {
    fn new(tag: u8, fields: &[Field<'_>]) -> Self {
        let body: usize = 1 + fields.iter().map(Field::len).sum::<usize>();
        let mut buf = Zeroizing::new(Vec::with_capacity(4 + body));
        buf.extend_from_slice(&(body as u32).to_be_bytes());
        buf.push(tag);
        for f in fields {
            match f {
                Field::Bytes(b) => {
                    buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
                    buf.extend_from_slice(b);
                }
                Field::U32(v) => buf.extend_from_slice(&v.to_be_bytes()),
                Field::U8(v) => buf.push(*v),
            }
        }
        Frame(buf)
    }
}

enum Field<'a> {
    Bytes(&'a [u8]),
    U32(u32),
    U8(u8),
}

impl Field<'_> {
    fn len(&self) -> usize {
        match self {
            Field::Bytes(b) => 4 + b.len(),
            Field::U32(_) => 4,
            Field::U8(_) => 1,
        }
    }
}

/// Reads the fields of a received frame.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated request".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn digest_byte(d: Digest) -> u8 {
    match d {
        Digest::Sha256 => 1,
        Digest::Sha384 => 2,
        Digest::Sha512 => 3,
    }
}

fn byte_digest(b: u8) -> Result<Digest, String> {
    match b {
        1 => Ok(Digest::Sha256),
        2 => Ok(Digest::Sha384),
        3 => Ok(Digest::Sha512),
        _ => Err(format!("unknown digest {b}")),
    }
}

/// Reads one frame into a zeroized buffer of its exact size; `None` at a clean
/// end of input.
fn read_frame(mut input: impl Read) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes"),
        ));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

// ---- the helper's side ----

/// Runs the helper on `input` and `output` (its stdin and stdout) until `input`
/// ends. Returns the process exit code: 0 at a clean end, 2 on a broken request
/// (which only a caller other than iamra can send).
pub fn serve(mut input: impl Read, mut output: impl Write) -> i32 {
    let mut key: Option<super::esys::TpmKey> = None;
    loop {
        let frame = match read_frame(&mut input) {
            Ok(Some(f)) => f,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("{HELPER_NAME}: error: cannot read a request: {e}");
                return 2;
            }
        };
        let reply = match handle(&frame, &mut key) {
            Ok(reply) => reply,
            Err(e) => {
                eprintln!("{HELPER_NAME}: error: {e}");
                return 2;
            }
        };
        let failed_open = key.is_none() && matches!(reply, Reply::Failed(_));
        let json = match serde_json::to_vec(&reply) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("{HELPER_NAME}: error: cannot encode a reply: {e}");
                return 2;
            }
        };
        let written = output
            .write_all(&(json.len() as u32).to_be_bytes())
            .and_then(|()| output.write_all(&json))
            .and_then(|()| output.flush());
        if written.is_err() || failed_open {
            // The parent is gone, or it has its answer and nothing is open.
            return 0;
        }
    }
}

fn handle(frame: &[u8], key: &mut Option<super::esys::TpmKey>) -> Result<Reply, String> {
    let mut f = Fields(frame);
    let tag = f.u8()?;
    match (tag, key.as_mut()) {
        (b'F' | b'H', None) => {
            let tcti: TctiConfig =
                serde_json::from_slice(f.bytes()?).map_err(|e| format!("bad TCTI: {e}"))?;
            let opened = if tag == b'F' {
                let path = Path::new(std::ffi::OsStr::from_bytes(f.bytes()?));
                let der = f.bytes()?;
                match super::tss2::parse(der) {
                    Ok(parsed) => super::esys::TpmKey::load_file(tcti, &parsed, path),
                    Err(reason) => Err(TpmError::KeyFile {
                        path: path.to_path_buf(),
                        reason,
                    }),
                }
            } else {
                let handle = f.u32()?;
                let reference = String::from_utf8_lossy(f.bytes()?).into_owned();
                super::esys::TpmKey::load_handle(tcti, handle, &reference)
            };
            match opened {
                Ok(k) => {
                    let public = WirePublic::from_key(&k.public_key()).ok_or("unknown key kind")?;
                    *key = Some(k);
                    Ok(Reply::Opened(public))
                }
                Err(e) => Ok(Reply::Failed(e)),
            }
        }
        (b'A', Some(k)) => {
            let password = f.bytes()?;
            k.set_auth((!password.is_empty()).then(|| Zeroizing::new(password.to_vec())));
            Ok(Reply::Done)
        }
        (b'S', Some(k)) => {
            let digest = byte_digest(f.u8()?)?;
            let message = f.bytes()?;
            Ok(match k.sign_digest(message, digest) {
                Ok(sig) => Reply::Signature(sig),
                Err(e) => Reply::Failed(e),
            })
        }
        (tag, _) => Err(format!("unexpected request {:?}", char::from(tag))),
    }
}

// ---- the parent's side ----

/// Starts a helper at `path` and opens `key` in it.
pub(crate) fn open(
    path: &Path,
    tcti: &TctiConfig,
    key: &KeyRef<'_>,
    label: &str,
) -> Result<(PublicKey, Box<dyn Backend>), TpmError> {
    let helper_error = |reason: String| TpmError::Helper {
        key: label.to_string(),
        reason,
    };
    let tcti_json = serde_json::to_vec(tcti)
        .map_err(|e| helper_error(format!("cannot encode the TCTI: {e}")))?;
    let open_frame = match key {
        KeyRef::File { der, path, .. } => Frame::new(
            b'F',
            &[
                Field::Bytes(&tcti_json),
                Field::Bytes(path.as_os_str().as_bytes()),
                Field::Bytes(der),
            ],
        ),
        KeyRef::Handle { handle, reference } => Frame::new(
            b'H',
            &[
                Field::Bytes(&tcti_json),
                Field::U32(*handle),
                Field::Bytes(reference.as_bytes()),
            ],
        ),
    };
    let mut key = HelperKey {
        path: path.to_path_buf(),
        label: label.to_string(),
        open_frame,
        auth_frame: None,
        running: Mutex::new(None),
    };
    let (running, public) = key.start()?;
    key.running = Mutex::new(Some(running));
    Ok((public, Box::new(key)))
}

/// A key open in a helper process.
struct HelperKey {
    path: PathBuf,
    label: String,
    /// Kept to start a new helper if this one dies.
    open_frame: Frame,
    /// Kept likewise (zeroized on drop).
    auth_frame: Option<Frame>,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for HelperKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: the password frame is never printed.
        f.debug_struct("HelperKey")
            .field("helper", &self.path)
            .field(
                "password",
                &self.auth_frame.as_ref().map(|_| "** redacted **"),
            )
            .finish_non_exhaustive()
    }
}

/// A running helper and its pipes.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

impl HelperKey {
    fn error(&self, reason: String) -> TpmError {
        TpmError::Helper {
            key: self.label.clone(),
            reason,
        }
    }

    /// Starts a helper and opens the key (and sets its password) in it.
    fn start(&self) -> Result<(Running, PublicKey), TpmError> {
        let mut command = Command::new(&self.path);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // libtss2 prints its own warnings on stderr, which would break the
        // one-line error contract (the AWS SDKs paste our stderr into their
        // errors); iamra reports TPM failures itself. TSS2_LOG set by the user wins.
        if std::env::var_os("TSS2_LOG").is_none() {
            command.env("TSS2_LOG", "all+none");
        }
        if let Some(filter) = log_filter() {
            command.arg("--log-level").arg(filter);
        }
        let mut child = command.spawn().map_err(|e| {
            self.error(format!(
                "cannot start its helper program {}: {e}",
                self.path.display()
            ))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(self.error("the helper program has no pipes".into()));
        };
        let mut running = Running {
            child,
            stdin: Some(stdin),
            stdout,
        };
        let public = match running.call(&self.open_frame, self)? {
            Reply::Opened(public) => public.into_key(),
            Reply::Failed(e) => {
                running.finish();
                return Err(e);
            }
            other => return Err(running.unexpected(&other, self)),
        };
        if let Some(auth) = &self.auth_frame {
            match running.call(auth, self)? {
                Reply::Done => {}
                Reply::Failed(e) => return Err(e),
                other => return Err(running.unexpected(&other, self)),
            }
        }
        Ok((running, public))
    }
}

impl Backend for HelperKey {
    fn set_auth(&mut self, auth: Option<Zeroizing<Vec<u8>>>) -> Result<(), TpmError> {
        let password: &[u8] = auth.as_deref().map_or(&[], |a| a.as_slice());
        let frame = Frame::new(b'A', &[Field::Bytes(password)]);
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = running.as_mut() {
            match r.call(&frame, self)? {
                Reply::Done => {}
                Reply::Failed(e) => return Err(e),
                other => return Err(r.unexpected(&other, self)),
            }
        }
        drop(running);
        self.auth_frame = Some(frame);
        Ok(())
    }

    fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, TpmError> {
        let frame = Frame::new(
            b'S',
            &[Field::U8(digest_byte(digest)), Field::Bytes(message)],
        );
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut retried = false;
        loop {
            let (mut r, kept) = match running.take() {
                Some(r) => (r, true),
                None => (self.start()?.0, false),
            };
            match r.call(&frame, self) {
                Ok(Reply::Signature(sig)) => {
                    *running = Some(r);
                    return Ok(sig);
                }
                Ok(Reply::Failed(e)) => {
                    // The helper already re-opened the TPM once where that helps.
                    *running = Some(r);
                    return Err(e);
                }
                Ok(other) => return Err(r.unexpected(&other, self)),
                Err(e) => {
                    // The helper died (killed, out of memory): start one more,
                    // once. A refused password never gets here (it is a reply).
                    drop(r);
                    if kept && !retried {
                        tracing::debug!(key = %self.label, error = %e, "the TPM helper failed; starting it again");
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }
}

impl Running {
    /// Sends one request and reads its reply, waiting at most [`REPLY_TIMEOUT`].
    /// On failure the helper is stopped.
    fn call(&mut self, frame: &Frame, key: &HelperKey) -> Result<Reply, TpmError> {
        match self.exchange(frame) {
            Ok(reply) => Ok(reply),
            Err(reason) => {
                self.kill();
                let status = self
                    .child
                    .wait()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                Err(key.error(format!(
                    "its helper program {HELPER_NAME} failed{status}: {reason}"
                )))
            }
        }
    }

    fn exchange(&mut self, frame: &Frame) -> Result<Reply, String> {
        let stdin = self.stdin.as_mut().ok_or("its input is closed")?;
        stdin
            .write_all(&frame.0)
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot send it a request: {e}"))?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut len = [0u8; 4];
        read_until(&mut self.stdout, &mut len, deadline)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(format!("it sent a reply of {len} bytes"));
        }
        let mut body = vec![0u8; len];
        read_until(&mut self.stdout, &mut body, deadline)?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("it sent a reply that does not parse: {e}"))
    }

    fn unexpected(&mut self, reply: &Reply, key: &HelperKey) -> TpmError {
        self.kill();
        let _ = self.child.wait();
        key.error(format!(
            "its helper program {HELPER_NAME} sent an unexpected reply ({})",
            match reply {
                Reply::Opened(_) => "Opened",
                Reply::Done => "Done",
                Reply::Signature(_) => "Signature",
                Reply::Failed(_) => "Failed",
            }
        ))
    }

    fn kill(&mut self) {
        self.stdin = None;
        if let Err(e) = self.child.kill() {
            tracing::debug!(error = %e, "could not stop the TPM helper");
        }
    }

    /// Closes the helper's input and waits (bounded) for it to flush the TPM
    /// objects and exit.
    fn finish(&mut self) {
        self.stdin = None;
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let mut rest = [0u8; 64];
        // The helper's stdout closes when it exits.
        loop {
            match read_some(&mut self.stdout, &mut rest, deadline) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "the TPM helper did not exit; stopping it");
                    self.kill();
                    break;
                }
            }
        }
        if let Err(e) = self.child.wait() {
            tracing::debug!(error = %e, "could not reap the TPM helper");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.finish();
        }
    }
}

/// The parent's log filter, passed on so the helper logs at the same level.
fn log_filter() -> Option<&'static str> {
    if tracing::enabled!(target: "iamra", tracing::Level::TRACE) {
        Some("iamra=trace,warn")
    } else if tracing::enabled!(target: "iamra", tracing::Level::DEBUG) {
        Some("iamra=debug,warn")
    } else {
        None
    }
}

/// Waits until `fd` is readable or `deadline` passes.
fn wait_readable(fd: &impl std::os::fd::AsFd, deadline: Instant) -> Result<(), String> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no reply within {} s", REPLY_TIMEOUT.as_secs()));
        }
        let timeout = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("cannot wait for its reply: {e}")),
        }
    }
}

fn read_some(out: &mut ChildStdout, buf: &mut [u8], deadline: Instant) -> Result<usize, String> {
    wait_readable(out, deadline)?;
    loop {
        match out.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read its reply: {e}")),
        }
    }
}

fn read_until(out: &mut ChildStdout, mut buf: &mut [u8], deadline: Instant) -> Result<(), String> {
    while !buf.is_empty() {
        match read_some(out, buf, deadline)? {
            0 => return Err("it exited before replying".into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridged_connection_waits_as_long_as_a_reply() {
        assert_eq!(REPLY_TIMEOUT, super::super::bridge::IDLE_TIMEOUT);
    }

    #[test]
    fn frames_carry_their_fields_and_nothing_more() {
        let f = Frame::new(b'S', &[Field::U8(2), Field::Bytes(b"msg"), Field::U32(7)]);
        assert_eq!(
            f.0.capacity(),
            f.0.len(),
            "sized exactly: no reallocated copy"
        );
        let body = read_frame(&f.0[..]).unwrap().unwrap();
        let mut fields = Fields(&body);
        assert_eq!(fields.u8().unwrap(), b'S');
        assert_eq!(fields.u8().unwrap(), 2);
        assert_eq!(fields.bytes().unwrap(), b"msg");
        assert_eq!(fields.u32().unwrap(), 7);
        assert!(fields.u8().is_err(), "nothing left");
        assert!(read_frame(&[][..]).unwrap().is_none(), "clean end");
        assert!(read_frame(&[0, 0, 0, 5, 1][..]).is_err(), "truncated body");
        assert!(read_frame(&[0xff, 0, 0, 0][..]).is_err(), "oversized");
    }

    #[test]
    fn a_broken_request_ends_the_helper() {
        let mut out = Vec::new();
        let request = Frame::new(b'S', &[Field::U8(1), Field::Bytes(b"m")]);
        assert_eq!(serve(&request.0[..], &mut out), 2, "sign before open");
        assert!(out.is_empty());
        assert_eq!(serve(&[][..], &mut out), 0, "no request at all");
    }
}
