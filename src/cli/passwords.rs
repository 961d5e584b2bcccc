//! Where the CLI finds passwords: flag (compatibility, warned about), environment,
//! file, or a prompt on the controlling terminal — never a prompt without one.

use std::path::Path;

use secrecy::SecretString;
use zeroize::Zeroizing;

use iamra::key::{KeyError, PasswordSource, SecretKind};

/// Environment variable holding the PKCS#8 key password.
pub const PKCS8_ENV: &str = "IAMRA_PKCS8_PASSWORD";
/// Environment variable holding the PKCS#12 bundle password.
pub const PKCS12_ENV: &str = "IAMRA_PKCS12_PASSWORD";
/// Environment variable holding the PKCS#11 user PIN.
pub const PKCS11_PIN_ENV: &str = "IAMRA_PKCS11_PIN";
/// Environment variable holding the TPM key password.
pub const TPM_ENV: &str = "IAMRA_TPM_KEY_PASSWORD";

/// What the password variables held at start (`Err`: not UTF-8).
type Taken = Vec<(&'static str, Result<SecretString, ()>)>;

static TAKEN: std::sync::OnceLock<Taken> = std::sync::OnceLock::new();

/// Reads the password and PIN variables once and removes them from this process's
/// environment, so that they do not stay readable in it (nor reach a process
/// started later). Must be called first thing in `main`, while the process has a
/// single thread.
pub fn take_from_environment() {
    let mut taken = Vec::new();
    for name in [PKCS8_ENV, PKCS12_ENV, PKCS11_PIN_ENV, TPM_ENV] {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        super::remove_env_var_single_threaded(name);
        let secret = value
            .into_string()
            .map(|v| SecretString::from(Zeroizing::new(v).as_str()))
            .map_err(|_| ());
        taken.push((name, secret));
    }
    let _ = TAKEN.set(taken);
}

/// The value variable `name` held at start.
fn taken(name: &str) -> Option<&'static Result<SecretString, ()>> {
    TAKEN
        .get()?
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// One password's configured sources.
#[derive(Default)]
pub struct Sources {
    /// From the command line.
    pub flag: Option<SecretString>,
    /// From a file (or stdin, or a variable).
    pub file: Option<iamra::input::Input>,
    /// Name of the environment variable.
    pub env: &'static str,
}

impl Sources {
    fn configured(&self) -> bool {
        self.flag.is_some() || self.file.is_some() || taken(self.env).is_some()
    }

    fn get(&self) -> Result<Option<SecretString>, String> {
        if let Some(v) = &self.flag {
            return Ok(Some(v.clone()));
        }
        if let Some(input) = &self.file {
            let data = match input {
                iamra::input::Input::Stdin => read_stdin_secret()?,
                other => other
                    .read("password file")
                    .map_err(|e| iamra::error::chain(&e))?,
            };
            let mut text = Zeroizing::new(
                String::from_utf8(data.to_vec())
                    .map_err(|_| format!("password file {input} is not UTF-8"))?,
            );
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            return Ok(Some(SecretString::from(text.as_str())));
        }
        match taken(self.env) {
            Some(Ok(v)) => Ok(Some(v.clone())),
            None => Ok(None),
            Some(Err(())) => Err(format!("{} is not valid UTF-8", self.env)),
        }
    }
}

/// Reads one secret from stdin (`--…-file -`), at most 64 KiB.
fn read_stdin_secret() -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read as _;
    let mut data = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(64 * 1024)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot read the secret from stdin: {e}"))?;
    Ok(data)
}

/// The CLI's [`PasswordSource`].
pub struct CliPasswords {
    /// PKCS#8 key password.
    pub pkcs8: Sources,
    /// PKCS#12 bundle password (falls back to the PKCS#8 sources, as the reference
    /// accepts `--pkcs8-password` for bundles).
    pub pkcs12: Sources,
    /// PKCS#11 user PIN.
    pub pkcs11_pin: Sources,
    /// TPM key password.
    pub tpm: Sources,
    /// Whether prompting on a terminal is allowed at all.
    pub allow_prompt: bool,
    /// Called just before a prompt is shown (`credential-process` releases the
    /// cache lock there, so that no other process waits on someone's typing).
    pub before_prompt: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

fn prompt(
    kind: SecretKind,
    path: &Path,
    before: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<Option<SecretString>, String> {
    // Only prompt when there is a controlling terminal: cron, systemd and SDK
    // subprocesses without one get a clear error instead of a hang.
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
    {
        return Ok(None);
    }
    if let Some(before) = before {
        before();
    }
    let what = match kind {
        SecretKind::Pkcs8Password => "private key",
        SecretKind::Pkcs12Password => "PKCS#12 bundle",
        SecretKind::Pkcs11Pin => "the user PIN of",
        SecretKind::TpmKeyPassword => "TPM key",
    };
    let label = if kind == SecretKind::Pkcs11Pin {
        "PIN"
    } else {
        "Password"
    };
    let text = rpassword::prompt_password(format!("{label} for {what} {}: ", path.display()))
        .map_err(|e| e.to_string())?;
    Ok(Some(SecretString::from(text)))
}

impl PasswordSource for CliPasswords {
    fn password(&self, kind: SecretKind, path: &Path) -> Result<Option<SecretString>, KeyError> {
        let err = |reason| KeyError::PasswordSource {
            path: path.to_path_buf(),
            reason,
        };
        let found = match kind {
            SecretKind::Pkcs8Password => self.pkcs8.get().map_err(err)?,
            SecretKind::Pkcs12Password => match self.pkcs12.get().map_err(err)? {
                Some(p) => Some(p),
                None => self.pkcs8.get().map_err(err)?,
            },
            SecretKind::Pkcs11Pin => self.pkcs11_pin.get().map_err(err)?,
            SecretKind::TpmKeyPassword => self.tpm.get().map_err(err)?,
        };
        match found {
            Some(p) => Ok(Some(p)),
            None if self.allow_prompt => {
                prompt(kind, path, self.before_prompt.as_deref()).map_err(err)
            }
            None => Ok(None),
        }
    }

    fn is_configured(&self, kind: SecretKind) -> bool {
        match kind {
            SecretKind::Pkcs8Password => self.pkcs8.configured(),
            SecretKind::Pkcs12Password => self.pkcs12.configured() || self.pkcs8.configured(),
            SecretKind::Pkcs11Pin => self.pkcs11_pin.configured(),
            SecretKind::TpmKeyPassword => self.tpm.configured(),
        }
    }
}
