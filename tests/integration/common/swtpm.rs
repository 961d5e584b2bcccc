//! swtpm TPMs for the TPM tests (the commands of `shared/recipes/tpm.sh`).
//!
//! A template TPM is built once per test process: a persistent ECC P-256 storage
//! key at 0x81000001, TSS2 key files made by the tpm2 OpenSSL provider (parent
//! 0x40000001, the SRK re-created on every load) and by tpm2-tools +
//! `tpm2_encodeobject` (parent 0x81000001), persistent signing keys made with
//! `tpm2_evictcontrol`, and a certificate for each key issued by the test PKI's
//! intermediate (so the local endpoint, trusting `certs-testdata/ca/root.pem`,
//! accepts them). Every test then starts its own swtpm on a copy of the template's
//! state (same seeds, same persistent objects, its own dictionary-attack counters),
//! killed on drop.
//!
//! swtpm runs in TCP mode on loopback ([`Transport::Tcp`]), or on a unix socket
//! ([`Swtpm::start_on`]) as the reference helper's users run it. tpm2-tools over
//! libtss2 3.2 reach a unix-socket swtpm through [`Relay`], the test's own
//! loopback forwarder (independent of iamra's bridge, which the tests check).
//! tpm2-tools 5.4 (Debian 12) inverts `emptyAuth` in
//! `tpm2_encodeobject` (tpm2-tools#3458); the fixture checks the flag it got with
//! iamra's own TSS2 parser and re-encodes when needed, so it works with fixed
//! versions too.
//!
//! Under CI (any `CI` value but empty, `false` or `0`) a missing tool fails the test; otherwise the test is skipped
//! with a note on stderr.
#![cfg(feature = "tpm")]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{copy_dir, first_missing_tool, run_ok as run, td, tools_present};

/// The password of every fixture key that has one.
pub const KEY_PASSWORD: &str = "tpm-key-pw-4c1d";

/// Persistent signing key without a password (RSA-2048).
pub const HANDLE_RSA: u32 = 0x8100_0101;
/// Persistent signing key with [`KEY_PASSWORD`] (EC P-256).
pub const HANDLE_EC_PASSWORD: u32 = 0x8100_0102;
/// Persistent signing key without a password (EC P-384, ECDSA-SHA384 scheme).
pub const HANDLE_EC384: u32 = 0x8100_0103;

/// A key of the template: `(name, producer, algorithm, password)`.
///
/// Key files are `NAME.tss2.pem`, certificates `NAME.crt`, public keys
/// `NAME.pub.pem`.
pub const KEY_FILES: &[(&str, Producer, &str, bool)] = &[
    ("prov-rsa", Producer::Provider, "rsa2048", false),
    ("prov-ec", Producer::Provider, "P-256", false),
    ("prov-ec384", Producer::Provider, "P-384", false),
    ("prov-ec-pw", Producer::Provider, "P-256", true),
    ("prov-rsa-pw", Producer::Provider, "rsa2048", true),
    ("tools-rsa", Producer::Tools, "rsa2048:rsassa-sha256", false),
    ("tools-ec", Producer::Tools, "ecc256:ecdsa-sha256", false),
    ("tools-ec384", Producer::Tools, "ecc384:ecdsa-sha384", false),
    (
        "tools-rsa-pw",
        Producer::Tools,
        "rsa2048:rsassa-sha256",
        true,
    ),
    ("tools-ec-pw", Producer::Tools, "ecc256:ecdsa-sha256", true),
    // A restricted signing key: it signs only digests the TPM hashed itself.
    (
        "tools-ec-restricted",
        Producer::Tools,
        "ecc256:ecdsa-sha256:null",
        false,
    ),
];

/// Who made a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Producer {
    /// `openssl genpkey -provider tpm2` (parent 0x40000001).
    Provider,
    /// `tpm2_create` + `tpm2_encodeobject` (parent 0x81000001).
    Tools,
}

const SIGN_ATTRS: &str = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign";

struct Template {
    dir: PathBuf,
}

static TEMPLATE: OnceLock<Template> = OnceLock::new();

/// How iamra reaches a test's swtpm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP on loopback: `swtpm:host=127.0.0.1,port=P`, the control channel at P + 1.
    Tcp,
    /// A unix socket `swtpm.sock` (`swtpm:path=…`), its control channel at
    /// `swtpm.sock.ctrl`, where libtss2 4 and iamra look for it.
    UnixSocket,
    /// A unix socket `swtpm.sock` with no control socket beside it (the control
    /// channel, which only the test's tools use, is `control.sock`): the
    /// reference helper's `TPM_DEVICE` needs none.
    UnixSocketOnly,
}

/// A running swtpm on a private copy of the template state, killed on drop.
pub struct Swtpm {
    child: Child,
    dir: tempfile::TempDir,
    transport: Transport,
    /// The TCP port (its relay's, for a unix socket).
    port: u16,
    relay: Option<Relay>,
    template: &'static Template,
}

fn tool_missing() -> Option<&'static str> {
    if let Some(tool) = first_missing_tool(&[
        "swtpm",
        "tpm2_createprimary",
        "tpm2_create",
        "tpm2_encodeobject",
        "tpm2_evictcontrol",
        "tpm2_readpublic",
        "tpm2_flushcontext",
        "tpm2_shutdown",
        "tpm2_getcap",
        "swtpm_ioctl",
        "openssl",
    ]) {
        return Some(tool);
    }
    // The provider itself needs a TPM to load: look for its module file.
    let provider = Command::new("openssl")
        .args(["version", "-m"])
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let dir = text.split('"').nth(1)?.to_string();
            Some(Path::new(&dir).join("tpm2.so").exists())
        })
        .unwrap_or(false);
    if !provider {
        return Some("the tpm2 OpenSSL provider (tpm2-openssl)");
    }
    None
}

/// Listeners on two consecutive free loopback ports (swtpm's TCTI finds the
/// control port at the server port + 1).
fn listener_pair() -> (TcpListener, TcpListener) {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX
            && let Ok(b) = TcpListener::bind(("127.0.0.1", port + 1))
        {
            return (a, b);
        }
    }
}

/// Two consecutive free loopback ports.
fn free_port_pair() -> u16 {
    listener_pair().0.local_addr().unwrap().port()
}

/// The test's loopback forwarder for tpm2-tools to a unix-socket swtpm: the TPM
/// channel at `port`, the control channel at `port + 1`, each connection relayed
/// to a fresh unix connection. Stops when dropped.
struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(socket: PathBuf, control: PathBuf) -> Self {
        let (tpm, ctrl) = listener_pair();
        let port = tpm.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        for (listener, target) in [(tpm, socket), (ctrl, control)] {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let (Ok(client), Ok(server)) = (client, UnixStream::connect(&target)) {
                        pipe(client, server);
                    }
                }
            });
        }
        Relay { port, stop }
    }
}

/// Copies both ways until the client closes, then closes the server side.
fn pipe(client: TcpStream, server: UnixStream) {
    let (mut client_in, mut server_out) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut &server, &mut &client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.join();
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake both accept loops.
        for port in [self.port, self.port + 1] {
            let _ = TcpStream::connect(("127.0.0.1", port));
        }
    }
}

/// swtpm on `state` serving `socket` (and its control channel at `control`),
/// logging to `log`.
fn spawn_unix(state: &Path, log: &Path, socket: &Path, control: &Path) -> Child {
    let mut child = swtpm_serving(
        state,
        log,
        &format!("type=unixio,path={}", socket.display()),
        &format!("type=unixio,path={}", control.display()),
    )
    .spawn()
    .expect("start swtpm");
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(control).is_err() || UnixStream::connect(socket).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("swtpm exited: {status}");
        }
        if Instant::now() >= deadline {
            drop(KillOnDrop(child));
            panic!("swtpm did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// swtpm on `state` in TCP mode: the TPM at loopback `port`, its control channel at
/// `port + 1`, logging to `log`.
fn swtpm_command(state: &Path, log: &Path, port: u16) -> Command {
    swtpm_serving(
        state,
        log,
        &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
        &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
    )
}

/// swtpm on `state` with the `--server` and `--ctrl` given, logging to `log`.
fn swtpm_serving(state: &Path, log: &Path, server: &str, ctrl: &str) -> Command {
    let mut cmd = Command::new("swtpm");
    cmd.arg("socket")
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .args(["--server", server, "--ctrl", ctrl])
        .args(["--flags", "not-need-init,startup-clear"])
        .arg("--log")
        .arg(format!("file={},level=1", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Starts swtpm on `state` in TCP mode; retries with other ports if it loses a
/// race for them.
fn spawn(state: &Path, log: &Path) -> (Child, u16) {
    for _ in 0..10 {
        let port = free_port_pair();
        let mut child = swtpm_command(state, log, port)
            .spawn()
            .expect("start swtpm");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break; // lost the ports: try others
            }
            if TcpStream::connect(("127.0.0.1", port + 1)).is_ok() {
                return (child, port);
            }
            if Instant::now() >= deadline {
                drop(KillOnDrop(child));
                panic!("swtpm did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("swtpm did not start on any port pair");
}

/// Runs tpm2-tools and tpm2 provider commands against one swtpm.
struct Tools<'a> {
    tcti: String,
    dir: &'a Path,
}

impl Tools<'_> {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir)
            .env("TPM2TOOLS_TCTI", &self.tcti)
            .env("TPM2OPENSSL_TCTI", &self.tcti)
            .env("TSS2_LOG", "all+none");
        c
    }

    /// A tpm2-tools command, then a flush: without a resource manager transient
    /// objects and sessions would pile up (TPM_RC_OBJECT_MEMORY).
    #[track_caller]
    fn tpm2(&self, program: &str, args: &[&str]) -> Output {
        let out = run(self.cmd(program).args(args));
        for what in ["-t", "-s", "-l"] {
            run(self.cmd("tpm2_flushcontext").arg(what));
        }
        out
    }

    /// `tpm2_encodeobject` of a key under 0x81000001 into the TSS2 key file `file`,
    /// `emptyAuth` set unless the key has a password. tpm2-tools 5.4 writes the flag
    /// inverted (`-p` for a key without a password, tpm2-tools#3458): the result is
    /// checked with iamra's own parser and encoded the other way when needed, so
    /// fixed versions work too.
    #[track_caller]
    fn encode(&self, public: &str, private: &str, file: &str, password: bool) {
        let encode = |flag: bool| {
            let mut args = vec!["-C", "0x81000001", "-u", public, "-r", private];
            if flag {
                args.push("-p");
            }
            args.extend(["-o", file]);
            self.tpm2("tpm2_encodeobject", &args);
        };
        let path = self.dir.join(file);
        encode(!password);
        if empty_auth_of(&path) == password {
            encode(password);
        }
        assert_eq!(empty_auth_of(&path), !password, "{file}: emptyAuth");
    }

    #[track_caller]
    fn openssl(&self, args: &[&str]) -> Output {
        run(self.cmd("openssl").args(args))
    }

    /// A certificate for `NAME.pub.pem` from the test PKI's intermediate.
    fn certify(&self, name: &str) {
        let ca = td("ca/intermediate.pem").display().to_string();
        let ca_key = td("ca/intermediate.key").display().to_string();
        self.openssl(&[
            "x509",
            "-new",
            "-subj",
            &format!("/CN=iamra tpm {name}"),
            "-force_pubkey",
            &format!("{name}.pub.pem"),
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-days",
            "30",
            "-extfile",
            "ee.ext",
            "-out",
            &format!("{name}.crt"),
        ]);
    }
}

fn empty_auth_of(path: &Path) -> bool {
    let pem = std::fs::read(path).unwrap();
    let blocks = iamra::pem::parse_all(&pem).unwrap();
    iamra::key::tpm::tss2::parse(&blocks[0].der)
        .unwrap()
        .empty_auth
}

fn build_template() -> Template {
    let dir = tempfile::Builder::new()
        .prefix("iamra-swtpm-template")
        .tempdir()
        .unwrap()
        .keep();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        dir.join("ee.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let (child, port) = spawn(&state, &dir.join("swtpm.log"));
    // Killed on drop, so a failing fixture command (a panic) leaves no swtpm behind.
    let mut child = KillOnDrop(child);
    let t = Tools {
        tcti: format!("swtpm:host=127.0.0.1,port={port}"),
        dir: &dir,
    };
    // The persistent storage key (the standard ECC P-256 template).
    t.tpm2(
        "tpm2_createprimary",
        &[
            "-C",
            "o",
            "-g",
            "sha256",
            "-G",
            "ecc256:aes128cfb",
            "-c",
            "srk.ctx",
        ],
    );
    t.tpm2(
        "tpm2_evictcontrol",
        &["-C", "o", "-c", "srk.ctx", "0x81000001"],
    );
    let passin = format!("pass:{KEY_PASSWORD}");
    for (name, producer, alg, password) in KEY_FILES {
        let file = format!("{name}.tss2.pem");
        match producer {
            Producer::Provider => {
                let mut args = vec!["genpkey", "-provider", "tpm2", "-provider", "default"];
                let pkeyopt;
                if let Some(bits) = alg.strip_prefix("rsa") {
                    pkeyopt = format!("bits:{bits}");
                    args.extend(["-algorithm", "RSA", "-pkeyopt", &pkeyopt]);
                } else {
                    pkeyopt = format!("group:{alg}");
                    args.extend(["-algorithm", "EC", "-pkeyopt", &pkeyopt]);
                }
                let auth = format!("user-auth:{KEY_PASSWORD}");
                if *password {
                    args.extend(["-pkeyopt", &auth]);
                }
                args.extend(["-out", &file]);
                t.openssl(&args);
            }
            Producer::Tools => {
                let (public, private) = (format!("{name}.pub"), format!("{name}.priv"));
                let attrs = if name.ends_with("-restricted") {
                    format!("{SIGN_ATTRS}|restricted")
                } else {
                    SIGN_ATTRS.to_string()
                };
                let mut args = vec![
                    "-C",
                    "0x81000001",
                    "-G",
                    alg,
                    "-a",
                    &attrs,
                    "-u",
                    &public,
                    "-r",
                    &private,
                ];
                if *password {
                    args.extend(["-p", KEY_PASSWORD]);
                }
                t.tpm2("tpm2_create", &args);
                t.encode(&public, &private, &file, *password);
            }
        }
        let mut args = vec![
            "pkey",
            "-provider",
            "tpm2",
            "-provider",
            "default",
            "-in",
            &file,
            "-pubout",
            "-out",
        ];
        let public = format!("{name}.pub.pem");
        args.push(&public);
        if *password {
            args.extend(["-passin", &passin]);
        }
        t.openssl(&args);
        t.certify(name);
    }
    // Keys that must be refused: decrypt-only, and usable only with a policy.
    for (name, attrs, extra) in [
        (
            "decrypt-only",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt",
            &[][..],
        ),
        (
            "policy-only",
            "fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|sign",
            &["-L", "policy.digest"][..],
        ),
    ] {
        if name == "policy-only" {
            // Any 32-byte digest will do: the key is refused before it is used.
            std::fs::write(dir.join("policy.digest"), [0x5a; 32]).unwrap();
        }
        let (public, private) = (format!("{name}.pub"), format!("{name}.priv"));
        let file = format!("{name}.tss2.pem");
        let mut args = vec![
            "-C",
            "0x81000001",
            "-G",
            "rsa2048",
            "-a",
            attrs,
            "-u",
            &public,
            "-r",
            &private,
        ];
        args.extend(extra);
        t.tpm2("tpm2_create", &args);
        t.encode(&public, &private, &file, false);
    }
    // Persistent signing keys.
    for (handle, alg, password) in [
        (HANDLE_RSA, "rsa2048:rsassa-sha256", false),
        (HANDLE_EC_PASSWORD, "ecc256:ecdsa-sha256", true),
        (HANDLE_EC384, "ecc384:ecdsa-sha384", false),
    ] {
        let name = format!("handle-{handle:08x}");
        let (public, private, ctx) = (
            format!("{name}.pub"),
            format!("{name}.priv"),
            format!("{name}.ctx"),
        );
        let mut args = vec![
            "-C",
            "0x81000001",
            "-G",
            alg,
            "-a",
            SIGN_ATTRS,
            "-u",
            &public,
            "-r",
            &private,
        ];
        if password {
            args.extend(["-p", KEY_PASSWORD]);
        }
        t.tpm2("tpm2_create", &args);
        t.tpm2(
            "tpm2_load",
            &[
                "-C",
                "0x81000001",
                "-u",
                &public,
                "-r",
                &private,
                "-c",
                &ctx,
            ],
        );
        let h = format!("{handle:#010x}");
        t.tpm2("tpm2_evictcontrol", &["-C", "o", "-c", &ctx, &h]);
        let public_pem = format!("{name}.pub.pem");
        t.tpm2(
            "tpm2_readpublic",
            &["-c", &h, "-f", "pem", "-o", &public_pem],
        );
        t.certify(&name);
    }
    // Shut down cleanly: TPM2_Shutdown first, or the next start-up counts the
    // unorderly power loss as a dictionary-attack failure; then stop swtpm so
    // the state on disk is complete.
    t.tpm2("tpm2_shutdown", &[]);
    let _ = Command::new("swtpm_ioctl")
        .args(["--tcp", &format!("127.0.0.1:{}", port + 1), "-s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child);
    Template { dir }
}

/// A child process killed (and reaped) when dropped, panics included.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Swtpm {
    /// A fresh swtpm on a copy of the fixture state, over TCP, or `None` (with a
    /// note) when the tools are missing outside CI. Under CI missing tools fail.
    pub fn start() -> Option<Self> {
        Self::start_on(Transport::Tcp)
    }

    /// [`Swtpm::start`] over `transport`.
    pub fn start_on(transport: Transport) -> Option<Self> {
        if !tools_present(
            tool_missing(),
            "TPM",
            "swtpm swtpm-tools tpm2-tools tpm2-openssl",
        ) {
            return None;
        }
        let template = TEMPLATE.get_or_init(build_template);
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&template.dir.join("state"), &dir.path().join("state"));
        let (state, log) = (dir.path().join("state"), dir.path().join("swtpm.log"));
        let (child, port, relay) = match transport {
            Transport::Tcp => {
                let (child, port) = spawn(&state, &log);
                (child, port, None)
            }
            Transport::UnixSocket | Transport::UnixSocketOnly => {
                let socket = dir.path().join("swtpm.sock");
                let control = dir.path().join(if transport == Transport::UnixSocket {
                    "swtpm.sock.ctrl"
                } else {
                    "control.sock"
                });
                let child = spawn_unix(&state, &log, &socket, &control);
                let relay = Relay::start(socket, control);
                (child, relay.port, Some(relay))
            }
        };
        Some(Swtpm {
            child,
            dir,
            transport,
            port,
            relay,
            template,
        })
    }

    /// The TCTI string with which iamra reaches this TPM.
    pub fn tcti(&self) -> String {
        match self.transport {
            Transport::Tcp => self.tools_tcti(),
            Transport::UnixSocket | Transport::UnixSocketOnly => {
                format!("swtpm:path={}", self.socket().display())
            }
        }
    }

    /// swtpm's unix socket (for a unix-socket transport).
    pub fn socket(&self) -> PathBuf {
        assert_ne!(self.transport, Transport::Tcp, "a TCP swtpm has no socket");
        self.dir.path().join("swtpm.sock")
    }

    /// The TCTI with which the test's tools reach this TPM (over TCP, through the
    /// test's relay for a unix socket).
    fn tools_tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// A fixture file of the template (`NAME.tss2.pem`, `NAME.crt`, `NAME.pub.pem`).
    pub fn file(&self, name: &str) -> String {
        self.template.dir.join(name).display().to_string()
    }

    /// A scratch folder of this test.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a tpm2-tools command against this TPM (then flushes), returning stdout.
    pub fn tpm2(&self, program: &str, args: &[&str]) -> String {
        let t = Tools {
            tcti: self.tools_tcti(),
            dir: self.dir.path(),
        };
        String::from_utf8_lossy(&t.tpm2(program, args).stdout).into_owned()
    }

    /// The handles of one kind the TPM holds (`transient`, `loaded-session`,
    /// `saved-session`, `persistent`), as `tpm2_getcap handles-KIND` prints them.
    pub fn handles(&self, kind: &str) -> Vec<String> {
        let out = run(Command::new("tpm2_getcap")
            .arg(format!("handles-{kind}"))
            .env("TPM2TOOLS_TCTI", self.tools_tcti())
            .env("TSS2_LOG", "all+none"));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_start_matches("- ").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Kills swtpm and starts it again on the same state and ports (a TPM reset:
    /// every transient object and session is gone).
    pub fn restart(&mut self) {
        assert_eq!(self.transport, Transport::Tcp, "restart is for TCP swtpms");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let state = self.dir.path().join("state");
        let log = self.dir.path().join("swtpm.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = swtpm_command(&state, &log, self.port)
                .spawn()
                .expect("restart swtpm");
            loop {
                if TcpStream::connect(("127.0.0.1", self.port + 1)).is_ok() {
                    self.child = child;
                    return;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // ports still in TIME_WAIT: try again
                }
                if Instant::now() >= deadline {
                    drop(KillOnDrop(child));
                    panic!("swtpm did not restart");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(Instant::now() < deadline, "swtpm did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.relay.take());
    }
}
