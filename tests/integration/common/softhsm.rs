//! SoftHSM2 tokens for the PKCS#11 tests (the commands of `shared/recipes/softhsm.sh`).
//!
//! One template is built per test process (keys generated on the token, keys
//! imported, certificates issued by the test PKI's intermediate, so the local
//! endpoint's trust anchor `certs-testdata/ca/root.pem` accepts them); every test
//! then gets its own copy of the token directory and its own `softhsm2.conf`, so
//! a test that locks a PIN or changes objects cannot disturb another.
//!
//! Objects on token `ra-test` (SO PIN 12345678, user PIN `hsm-pin-7f3e`):
//!
//! | id | key | label (key / certificate) | certificate |
//! |---|---|---|---|
//! | 01 | RSA-2048 generated on the token | `ra-rsa` / `ra-cert-01` | on the token and `cert01.pem` |
//! | 02 | P-256 generated on the token | `ra-ec` / `ra-cert-02` | on the token and `cert02.pem` |
//! | 03 | RSA-2048 imported (`softhsm2-util --import`) | `ra-imp-rsa` | on the token and `cert03.pem` |
//! | 04 | P-256 imported (`pkcs11-tool --write-object`, no public-key object) | `ra-imp-ec` | on the token and `cert04.pem` |
//! | 05 | RSA-2048 generated, `CKA_ALWAYS_AUTHENTICATE` | `ra-always` | on the token and `cert05.pem` |
//! | 07 | P-256 generated on the token | `ra-file-only` | only in the file `cert07.pem` |
//! | 10 | — | `iamra Test Intermediate CA` | the test PKI intermediate |
//! | 11 | — | `iamra Untrusted Root` | an unrelated root |
//! | 12 | — | `ra-private-cert` | `cert01.pem` again, as a private object (seen after login) |
//!
//! Token `ra-second` (same PINs) holds a P-256 key and certificate with id 01.
//!
//! Under CI (any `CI` value but empty, `false` or `0`) a missing tool fails the test; otherwise the test is skipped
//! with a note on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::{copy_dir, first_missing_tool, run_ok as run, td, tools_present};

/// The SoftHSM2 module (Debian's path).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of both tokens.
pub const PIN: &str = "hsm-pin-7f3e";
const SO_PIN: &str = "12345678";

struct Template {
    dir: PathBuf,
    serial: String,
    second_serial: String,
}

/// A private copy of the fixture tokens.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    template: &'static Template,
}

fn tool_missing() -> Option<&'static str> {
    first_missing_tool(&["softhsm2-util", "pkcs11-tool", "p11tool", "openssl"])
        .or_else(|| (!Path::new(MODULE).exists()).then_some(MODULE))
}

fn write_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    conf
}

fn p11(conf: &Path, token: &str) -> Command {
    let mut c = Command::new("pkcs11-tool");
    c.env("SOFTHSM2_CONF", conf).args([
        "--module",
        MODULE,
        "--token-label",
        token,
        "--login",
        "--pin",
        PIN,
    ]);
    c
}

const EE_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

/// Issues a certificate for `pub_pem` from the test intermediate.
fn issue(dir: &Path, pub_pem: &Path, cn: &str, out_pem: &Path) {
    run(Command::new("openssl")
        .args(["x509", "-new", "-subj"])
        .arg(format!("/CN={cn}"))
        .arg("-force_pubkey")
        .arg(pub_pem)
        .arg("-CA")
        .arg(td("ca/intermediate.pem"))
        .arg("-CAkey")
        .arg(td("ca/intermediate.key"))
        .args(["-days", "365", "-sha256", "-extfile"])
        .arg(dir.join("ee.ext"))
        .arg("-out")
        .arg(out_pem));
}

fn pem_to_der(pem: &Path, der: &Path) {
    run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(pem)
        .arg("-out")
        .arg(der));
}

/// Generates a key pair on `token`, issues its certificate, and (unless
/// `cert_on_token` is false) stores the certificate with the same id.
fn generated(dir: &Path, conf: &Path, token: &str, spec: &GenSpec) {
    let mut gen_cmd = p11(conf, token);
    gen_cmd.args([
        "--keypairgen",
        "--key-type",
        spec.key_type,
        "--id",
        spec.id,
        "--label",
        spec.label,
    ]);
    if spec.always_auth {
        gen_cmd.arg("--always-auth");
    }
    run(&mut gen_cmd);
    let pub_der = dir.join(format!("{}-{}.pub.der", token, spec.id));
    let pub_pem = dir.join(format!("{}-{}.pub.pem", token, spec.id));
    run(Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", conf)
        .args([
            "--module",
            MODULE,
            "--token-label",
            token,
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            spec.id,
            "-o",
        ])
        .arg(&pub_der));
    run(Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in"])
        .arg(&pub_der)
        .arg("-out")
        .arg(&pub_pem));
    let cert_pem = dir.join(spec.cert_file);
    issue(dir, &pub_pem, spec.cn, &cert_pem);
    if let Some(cert_label) = spec.cert_label {
        let der = cert_pem.with_extension("der");
        pem_to_der(&cert_pem, &der);
        run(p11(conf, token)
            .arg("--write-object")
            .arg(&der)
            .args(["--type", "cert", "--id", spec.id, "--label", cert_label]));
    }
}

struct GenSpec {
    key_type: &'static str,
    id: &'static str,
    label: &'static str,
    always_auth: bool,
    cn: &'static str,
    cert_file: &'static str,
    cert_label: Option<&'static str>,
}

fn token_serial(conf: &Path, label: &str) -> String {
    let out = run(Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .arg("--show-slots"));
    let text = String::from_utf8_lossy(&out.stdout);
    // "Serial number:" comes before "Label:" in each slot's block.
    let mut serial = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(s) = line.strip_prefix("Serial number:") {
            serial = Some(s.trim().to_string());
        }
        if let Some(l) = line.strip_prefix("Label:")
            && l.trim() == label
            && let Some(s) = serial.take()
        {
            return s;
        }
    }
    panic!("no serial for token {label} in:\n{text}");
}

fn build_template() -> Template {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // Remove templates left by earlier test processes.
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("softhsm-template-")
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("softhsm-template-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = write_conf(&dir);
    std::fs::write(dir.join("ee.ext"), EE_EXT).unwrap();
    for label in ["ra-test", "ra-second"] {
        run(Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ]));
    }
    let specs = [
        GenSpec {
            key_type: "rsa:2048",
            id: "01",
            label: "ra-rsa",
            always_auth: false,
            cn: "iamra-hsm-rsa-generated",
            cert_file: "cert01.pem",
            cert_label: Some("ra-cert-01"),
        },
        GenSpec {
            key_type: "EC:prime256v1",
            id: "02",
            label: "ra-ec",
            always_auth: false,
            cn: "iamra-hsm-ec-generated",
            cert_file: "cert02.pem",
            cert_label: Some("ra-cert-02"),
        },
        GenSpec {
            key_type: "rsa:2048",
            id: "05",
            label: "ra-always",
            always_auth: true,
            cn: "iamra-hsm-always-auth",
            cert_file: "cert05.pem",
            cert_label: Some("ra-always"),
        },
        GenSpec {
            key_type: "EC:prime256v1",
            id: "07",
            label: "ra-file-only",
            always_auth: false,
            cn: "iamra-hsm-file-cert",
            cert_file: "cert07.pem",
            cert_label: None,
        },
    ];
    for spec in &specs {
        generated(&dir, &conf, "ra-test", spec);
    }
    generated(
        &dir,
        &conf,
        "ra-second",
        &GenSpec {
            key_type: "EC:prime256v1",
            id: "01",
            label: "second-ec",
            always_auth: false,
            cn: "iamra-hsm-second-token",
            cert_file: "second01.pem",
            cert_label: Some("second-cert-01"),
        },
    );
    // Software keys imported into the token.
    for (kind, id, label, algorithm, option) in [
        ("rsa", "03", "ra-imp-rsa", "RSA", "rsa_keygen_bits:2048"),
        ("ec", "04", "ra-imp-ec", "EC", "ec_paramgen_curve:P-256"),
    ] {
        let key = dir.join(format!("imported-{kind}.key"));
        run(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                algorithm,
                "-pkeyopt",
                option,
                "-out",
            ])
            .arg(&key));
        let pub_pem = dir.join(format!("imported-{kind}.pub.pem"));
        run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&pub_pem));
        let cert = dir.join(format!("cert{id}.pem"));
        issue(&dir, &pub_pem, &format!("iamra-hsm-{kind}-imported"), &cert);
        let der = cert.with_extension("der");
        pem_to_der(&cert, &der);
        if kind == "rsa" {
            run(Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .arg("--import")
                .arg(&key)
                .args([
                    "--token", "ra-test", "--label", label, "--id", id, "--pin", PIN,
                ]));
        } else {
            run(p11(&conf, "ra-test")
                .arg("--write-object")
                .arg(&key)
                .args(["--type", "privkey", "--id", id, "--label", label]));
        }
        run(p11(&conf, "ra-test")
            .arg("--write-object")
            .arg(&der)
            .args(["--type", "cert", "--id", id, "--label", label]));
    }
    // CA certificates: only the intermediate is on the leaves' path.
    for (file, id, label) in [
        ("ca/intermediate.pem", "10", "iamra Test Intermediate CA"),
        ("ca/other-root.pem", "11", "iamra Untrusted Root"),
    ] {
        let der = dir.join(format!("ca{id}.der"));
        pem_to_der(&td(file), &der);
        run(p11(&conf, "ra-test")
            .arg("--write-object")
            .arg(&der)
            .args(["--type", "cert", "--id", id, "--label", label]));
    }
    // A private certificate object (CKA_PRIVATE), listed only after login. pkcs11-tool
    // ignores --private for certificates; p11tool (gnutls-bin) honours it.
    let serial = token_serial(&conf, "ra-test");
    run(Command::new("p11tool")
        .env("SOFTHSM2_CONF", &conf)
        .env("GNUTLS_PIN", PIN)
        .args(["--provider", MODULE, "--login", "--write", "--mark-private"])
        .args(["--label", "ra-private-cert", "--id", "12"])
        .arg("--load-certificate")
        .arg(dir.join("cert01.pem"))
        .arg(format!("pkcs11:token=ra-test;serial={serial}")));
    Template {
        serial,
        second_serial: token_serial(&conf, "ra-second"),
        dir,
    }
}

static TEMPLATE: OnceLock<Template> = OnceLock::new();

impl SoftHsm {
    /// A fresh copy of the fixture tokens, or `None` (with a note) when the tools
    /// are missing outside CI. Under CI missing tools fail the test.
    pub fn new() -> Option<Self> {
        if !tools_present(tool_missing(), "PKCS#11", "softhsm2 opensc gnutls-bin") {
            return None;
        }
        let template = TEMPLATE.get_or_init(build_template);
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&template.dir.join("tokens"), &dir.path().join("tokens"));
        write_conf(dir.path());
        Some(SoftHsm { dir, template })
    }

    /// This copy's `softhsm2.conf`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// A fixture file (certificates `certNN.pem`, `second01.pem`, imported keys).
    pub fn file(&self, name: &str) -> String {
        self.template.dir.join(name).display().to_string()
    }

    /// Serial number of token `ra-test`.
    pub fn serial(&self) -> &str {
        &self.template.serial
    }

    /// Serial number of token `ra-second`.
    pub fn second_serial(&self) -> &str {
        &self.template.second_serial
    }

    /// The URI prefix p11tool prints for token `ra-test`.
    pub fn token_uri(&self) -> String {
        format!(
            "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial={};token=ra-test",
            self.serial()
        )
    }

    /// The URI prefix of token `ra-second`.
    pub fn second_token_uri(&self) -> String {
        format!(
            "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial={};token=ra-second",
            self.second_serial()
        )
    }

    /// Sets `flags` (e.g. `CKF_USER_PIN_FINAL_TRY`, 0x20000) in the token flags
    /// this copy of token `label` reports, as a token with a PIN retry counter
    /// would after failures (SoftHSM2 itself only ever sets
    /// `CKF_USER_PIN_COUNT_LOW`). SoftHSM2 keeps the flags in the token's
    /// `token.object` as attribute `CKA_OS_TOKENFLAGS` (0x8000534B, a ulong).
    pub fn add_token_flags(&self, label: &str, flags: u64) {
        const HEADER: [u8; 16] = [0, 0, 0, 0, 0x80, 0, 0x53, 0x4b, 0, 0, 0, 0, 0, 0, 0, 2];
        let tokens = self.dir.path().join("tokens");
        for entry in std::fs::read_dir(&tokens).unwrap() {
            let file = entry.unwrap().path().join("token.object");
            let Ok(mut data) = std::fs::read(&file) else {
                continue;
            };
            if !data.windows(label.len()).any(|w| w == label.as_bytes()) {
                continue;
            }
            let at = data
                .windows(HEADER.len())
                .position(|w| w == HEADER)
                .expect("CKA_OS_TOKENFLAGS in token.object")
                + HEADER.len();
            let old = u64::from_be_bytes(data[at..at + 8].try_into().unwrap());
            data[at..at + 8].copy_from_slice(&(old | flags).to_be_bytes());
            std::fs::write(&file, data).unwrap();
            return;
        }
        panic!("no token {label} in {}", tokens.display());
    }

    /// Runs `iamra` like [`super::iamra`], with `SOFTHSM2_CONF` pointing at this
    /// copy and no PIN in the environment unless `env` sets one.
    pub fn iamra<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], env: &[(&str, &str)]) -> Output {
        self.run_iamra(super::clean_iamra_command(), args, env)
    }

    /// [`Self::iamra`] in a new session (`setsid`), so that no controlling terminal
    /// can be opened even when the tests run from one.
    pub fn iamra_without_tty<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        env: &[(&str, &str)],
    ) -> Output {
        self.run_iamra(
            super::clean_iamra_command_via("setsid", &["--wait"]),
            args,
            env,
        )
    }

    fn run_iamra<S: AsRef<std::ffi::OsStr>>(
        &self,
        cmd: Command,
        args: &[S],
        env: &[(&str, &str)],
    ) -> Output {
        let conf = self.conf().display().to_string();
        let env = [&[("SOFTHSM2_CONF", conf.as_str())], env].concat();
        super::with_iamra_args(cmd, args, &env)
            .output()
            .expect("run iamra")
    }
}
