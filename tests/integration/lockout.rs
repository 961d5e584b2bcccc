//! Hardware keys never lock out: a refused PIN or TPM password is offered once and
//! never again, by `credential-process`, `update` and `serve` alike; the process
//! exits with status 77 (which the systemd units do not restart on) instead of
//! retrying into the token's or the TPM's lockout. Counted on the real thing: the
//! swtpm's `TPM2_PT_LOCKOUT_COUNTER`, and every `C_Login` SoftHSM2 receives through
//! OpenSC's PKCS#11 spy module.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::softhsm::{MODULE, PIN, SoftHsm};
use crate::common::*;

/// At least three refresh periods of `--refresh-before 897s` with 900 s sessions
/// (about 3 s each), and longer than the 1 + 2 + 4 s a transient retry would wait.
const THREE_PERIODS: Duration = Duration::from_secs(12);

/// OpenSC's PKCS#11 spy: logs every call, then forwards it to `PKCS11SPY`.
const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

/// `update` or `serve` arguments refreshing every ~3 s.
fn long_running(command: &str, flags: Vec<String>) -> Vec<String> {
    let mut args = vec![command.to_string()];
    if command == "serve" {
        args.extend(["--port".into(), "0".into()]);
    }
    args.extend(flags);
    args.extend(["--refresh-before".into(), "897s".into()]);
    args
}

/// The first stdout lines to wait for: serve prints its endpoint once it has
/// credentials; update prints nothing.
fn lines(command: &str) -> usize {
    usize::from(command == "serve")
}

/// Waits until the daemon exits by itself, at most `limit`.
fn exit_within(d: &mut Daemon, limit: Duration) -> Option<i32> {
    d.wait_exit(limit).map(|s| s.code().unwrap_or(-1))
}

// ---------------------------------------------------------------------------------
// PKCS#11 (SoftHSM2 behind the spy)

/// How many times the module received `C_Login`, from the spy's log.
fn logins(spy_log: &Path) -> usize {
    std::fs::read_to_string(spy_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("C_Login"))
        .count()
}

struct SpiedToken {
    hsm: SoftHsm,
    log: tempfile::TempDir,
}

impl SpiedToken {
    fn new() -> Option<Self> {
        let hsm = SoftHsm::new()?;
        assert!(
            Path::new(SPY).exists() || std::env::var_os("CI").is_none(),
            "{SPY} is missing (Debian package opensc-pkcs11)"
        );
        if !Path::new(SPY).exists() {
            eprintln!("note: {SPY} missing; PKCS#11 login counts skipped");
            return None;
        }
        Some(SpiedToken {
            hsm,
            log: tempfile::tempdir().unwrap(),
        })
    }

    fn log(&self) -> std::path::PathBuf {
        self.log.path().join("spy.log")
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SOFTHSM2_CONF", self.hsm.conf().display().to_string()),
            ("PKCS11SPY", MODULE.to_string()),
            ("PKCS11SPY_OUTPUT", self.log().display().to_string()),
        ]
    }

    fn flags(&self, ep: &Endpoint) -> Vec<String> {
        let mut f = credential_flags(ep, Path::new("pkcs11:token=ra-test;id=%02"), None);
        f.extend(["--pkcs11-lib".into(), SPY.into()]);
        f
    }
}

fn pkcs11_long_running_logs_in_once_and_a_wrong_pin_stops_it(command: &str) {
    let Some(token) = SpiedToken::new() else {
        return;
    };
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let creds_file = dir.path().join("credentials");
    let mut env = token.env();
    env.push((
        "AWS_SHARED_CREDENTIALS_FILE",
        creds_file.display().to_string(),
    ));
    let args = long_running(command, token.flags(&ep));

    // A wrong PIN: one C_Login, then exit 77 at once (no retry, no restart loop).
    let mut wrong = env.clone();
    wrong.push(("IAMRA_PKCS11_PIN", "0000".into()));
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = Instant::now();
    let mut d = Daemon::start(&args, &wrong, 0).unwrap();
    let code = exit_within(&mut d, THREE_PERIODS);
    let stderr = d.stderr();
    assert_eq!(code, Some(EXIT_AUTHENTICATION), "{command}: {stderr}");
    assert!(
        stderr.contains("wrong user PIN for token") && stderr.contains("CKF_USER_PIN_COUNT_LOW"),
        "{stderr}"
    );
    std::thread::sleep(THREE_PERIODS.saturating_sub(started.elapsed()));
    assert_eq!(logins(&token.log()), 1, "exactly one C_Login");
    assert_eq!(ep.requests().len(), 0, "nothing sent");

    // The right PIN: one C_Login for every refresh of three periods and more.
    std::fs::remove_file(token.log()).unwrap();
    let mut right = env.clone();
    right.push(("IAMRA_PKCS11_PIN", PIN.into()));
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut d = Daemon::start(&args, &right, lines(command))
        .unwrap_or_else(|e| panic!("{command} failed: {e}"));
    wait_for("four CreateSession calls", || {
        (ep.requests().len() >= 4).then_some(())
    });
    assert_eq!(exit_within(&mut d, Duration::ZERO), None, "{}", d.stderr());
    let (status, stderr) = d.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(logins(&token.log()), 1, "one C_Login for every refresh");
}

#[test]
fn update_logs_in_once_and_stops_for_good_on_a_wrong_pin() {
    pkcs11_long_running_logs_in_once_and_a_wrong_pin_stops_it("update");
}

#[test]
fn serve_logs_in_once_and_stops_for_good_on_a_wrong_pin() {
    pkcs11_long_running_logs_in_once_and_a_wrong_pin_stops_it("serve");
}

/// `CKF_USER_PIN_LOCKED` and `CKF_USER_PIN_FINAL_TRY` are read before `C_Login`:
/// no PIN is offered at all.
#[test]
fn a_locked_or_final_try_token_is_never_offered_a_pin() {
    for (flag, value, message, hint) in [
        (
            "CKF_USER_PIN_FINAL_TRY",
            0x2_0000,
            "reports CKF_USER_PIN_FINAL_TRY: one more wrong PIN locks it, so iamra does not try one",
            "check the PIN, then log in once with the token's own tool (for example pkcs11-tool --login --test), which resets the counter when the PIN is right; or have the security officer reset the PIN",
        ),
        (
            "CKF_USER_PIN_LOCKED",
            0x4_0000,
            "is locked (CKF_USER_PIN_LOCKED)",
            "the token's security officer must unlock the PIN (SO PIN)",
        ),
    ] {
        let Some(token) = SpiedToken::new() else {
            return;
        };
        token.hsm.add_token_flags("ra-test", value);
        let ep = Endpoint::start();
        let mut args = vec!["credential-process".to_string()];
        args.extend(token.flags(&ep));
        let mut env = token.env();
        env.push(("IAMRA_PKCS11_PIN", PIN.into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = iamra(&args, &env);
        let uri = token.hsm.token_uri();
        let what = if flag == "CKF_USER_PIN_LOCKED" {
            format!("the user PIN of token {uri} {message}")
        } else {
            format!("token {uri} {message}")
        };
        assert_refused_with(
            &out,
            &format!("iamra: error: {what}\niamra: hint: {hint}\n"),
        );
        assert_eq!(logins(&token.log()), 0, "{flag}: no C_Login");
        assert_eq!(ep.requests().len(), 0);
    }
}

// ---------------------------------------------------------------------------------
// TPM (swtpm)

#[cfg(feature = "tpm")]
mod tpm {
    use super::*;
    use crate::common::swtpm::{KEY_PASSWORD, Swtpm};

    /// `TPM2_PT_LOCKOUT_COUNTER` as `tpm2_getcap properties-variable` prints it.
    fn lockout_counter(tpm: &Swtpm) -> u32 {
        let text = tpm.tpm2("tpm2_getcap", &["properties-variable"]);
        let value = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("TPM2_PT_LOCKOUT_COUNTER:"))
            .unwrap_or_else(|| panic!("no lockout counter in {text}"))
            .trim();
        u32::from_str_radix(value.trim_start_matches("0x"), 16).unwrap()
    }

    /// Starts with the right password; then the key file is rotated while the
    /// password file now holds a wrong one. The TPM counts exactly one failure over
    /// three refresh periods and more, and the process exits with status 77.
    fn tpm_password_refused_mid_run_is_tried_once(command: &str) {
        let Some(tpm) = Swtpm::start() else { return };
        let ep = Endpoint::start_with(&["--max-duration", "900"]);
        let dir = tpm.scratch();
        let key = dir.join("key.tss2.pem");
        std::fs::copy(tpm.file("tools-ec-pw.tss2.pem"), &key).unwrap();
        let password = dir.join("password");
        std::fs::write(&password, KEY_PASSWORD).unwrap();
        let creds_file = dir.join("credentials");
        let mut flags = credential_flags(&ep, Path::new(&tpm.file("tools-ec-pw.crt")), Some(&key));
        flags.extend([
            "--tpm-key-password-file".into(),
            password.display().to_string(),
        ]);
        let args = long_running(command, flags);
        let tcti = tpm.tcti();
        let env = [
            ("TPM2TOOLS_TCTI", tcti.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds_file.to_str().unwrap()),
        ];
        let mut d = Daemon::start(&args, &env, lines(command))
            .unwrap_or_else(|e| panic!("{command} failed: {e}"));
        wait_for("the first credentials", || {
            (!ep.requests().is_empty()).then_some(())
        });
        let before = lockout_counter(&tpm);

        std::fs::write(&password, "not the password").unwrap();
        let rotated = dir.join("key.new");
        std::fs::copy(&key, &rotated).unwrap();
        std::fs::rename(&rotated, &key).unwrap();
        let changed = Instant::now();
        let code = exit_within(&mut d, THREE_PERIODS);
        std::thread::sleep(THREE_PERIODS.saturating_sub(changed.elapsed()));
        let stderr = d.stderr();
        assert_eq!(
            lockout_counter(&tpm),
            before + 1,
            "{command}: exactly one more failure: {stderr}"
        );
        assert_eq!(code, Some(EXIT_AUTHENTICATION), "{command}: {stderr}");
        assert!(
            stderr.contains("will not be retried") && stderr.contains("wrong password for TPM key"),
            "{stderr}"
        );
    }

    #[test]
    fn update_offers_a_refused_tpm_password_once_and_stops() {
        tpm_password_refused_mid_run_is_tried_once("update");
    }

    #[test]
    fn serve_offers_a_refused_tpm_password_once_and_stops() {
        tpm_password_refused_mid_run_is_tried_once("serve");
    }

    /// A wrong password at start: one failure, exit 77, not 1 (so systemd does not
    /// restart it into the lockout).
    #[test]
    fn a_wrong_tpm_password_at_start_exits_77_after_one_failure() {
        let Some(tpm) = Swtpm::start() else { return };
        let ep = Endpoint::start_with(&["--max-duration", "900"]);
        let key = tpm.file("tools-ec-pw.tss2.pem");
        let flags = credential_flags(
            &ep,
            Path::new(&tpm.file("tools-ec-pw.crt")),
            Some(Path::new(&key)),
        );
        let tcti = tpm.tcti();
        let dir = tempfile::tempdir().unwrap();
        let creds_file = dir.path().join("credentials");
        let env = [
            ("TPM2TOOLS_TCTI", tcti.as_str()),
            ("IAMRA_TPM_KEY_PASSWORD", "not the password"),
            ("AWS_SHARED_CREDENTIALS_FILE", creds_file.to_str().unwrap()),
        ];
        for command in ["update", "serve"] {
            let before = lockout_counter(&tpm);
            let mut d = Daemon::start(&long_running(command, flags.clone()), &env, 0).unwrap();
            let code = exit_within(&mut d, THREE_PERIODS);
            assert_eq!(
                lockout_counter(&tpm),
                before + 1,
                "{command}: {}",
                d.stderr()
            );
            assert_eq!(code, Some(EXIT_AUTHENTICATION), "{command}: {}", d.stderr());
        }
        assert!(!creds_file.exists());
    }
}
