//! The one table of hints: a sentence that helps fix an error, for every error
//! the CLI prints and for `doctor`'s failed checks (which carry their error). The
//! hints name this CLI's flags and variables, so the table lives here, not in the
//! library.

use iamra::cert::CertError;
use iamra::identity::{IdentityError, SpecError};
use iamra::key::{self, KeyError, SignError};
use iamra::output::server::ServeError;
use iamra::session::SessionError;

use super::CliError;
use super::passwords::{PKCS8_ENV, PKCS11_PIN_ENV, PKCS12_ENV, TPM_ENV};

/// The hint for any error the CLI prints.
pub(super) fn for_cli_error(e: &CliError) -> Option<String> {
    match e {
        CliError::Serve(ServeError::Socket { source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            Some("another process listens there (an earlier iamra serve, or aws_signing_helper serve?): stop it or pick another --port".into())
        }
        CliError::AuthenticationStopped(_) => Some(
            "fix the PIN or password (or unlock the key), then restart iamra; it exits with status 77 and is not restarted by its systemd unit".into(),
        ),
        CliError::Identity(e) => for_identity(e),
        CliError::Session(e) => for_session(e),
        CliError::Exec(e) => e.hint(),
        _ => None,
    }
}

/// The hint for an identity that does not load.
pub(crate) fn for_identity(e: &IdentityError) -> Option<String> {
    use IdentityError as I;
    match e {
            I::Pkcs11(e) | I::Spec(SpecError::Pkcs11(e)) => pkcs11_hint(e),
            I::Key(KeyError::Tpm(e)) | I::Spec(SpecError::Tpm(e)) => tpm_hint(e),
            I::Key(KeyError::TpmUnsupported { .. }) => Some(TPM_BUILD_HINT.into()),
            I::Key(KeyError::PasswordRequired { .. }) => Some(format!(
                "set {PKCS8_ENV} (or {PKCS12_ENV} for a bundle), pass --pkcs8-password-file FILE, or run from a terminal to be prompted"
            )),
            I::Key(KeyError::NoKey { .. }) => {
                Some("pass the key file with --private-key".into())
            }
            I::Key(KeyError::Inconsistent { .. }) => Some(
                "the key file was altered or assembled from two keys: export it again from where the key was made".into(),
            ),
            I::Key(KeyError::Mismatch { .. }) => {
                Some("the key and certificate must be a pair; check you did not swap files between identities".into())
            }
            I::Cert(CertError::Expired { .. } | CertError::NotYetValid { .. }) => {
                Some("renew the certificate, or check the system clock".into())
            }
            I::Cert(CertError::CaAsLeaf { .. }) => Some(
                "--certificate takes the end-entity certificate issued to this machine; CA certificates go in --intermediates".into(),
            ),
            I::Cert(CertError::NoCertificate { .. }) => {
                Some("expected a PEM or DER certificate (or, for --certificate, a PKCS#12 bundle)".into())
            }
        _ => None,
    }
}

/// The hint for a failed session: parameters, endpoint, service, signing.
pub(crate) fn for_session(e: &SessionError) -> Option<String> {
    match e {
        SessionError::Sign(SignError::Tpm(e)) => tpm_hint(e),
        SessionError::Sign(SignError::Pkcs11(e)) => pkcs11_hint(e),
            SessionError::Service { error, .. } => service_hint(&error.code, &error.message),
            SessionError::Deadline { .. } => Some(
                "if the endpoint is only slow, raise --total-timeout (IAMRA_TOTAL_TIMEOUT); otherwise check --endpoint, the network, and HTTPS_PROXY/NO_PROXY".into(),
            ),
            SessionError::Untrusted { .. } => Some(
                "the endpoint's TLS certificate is not trusted: pass --ca-bundle FILE or set AWS_CA_BUNDLE".into(),
            ),
            SessionError::Network { .. } => {
                Some("check --endpoint, the network, and HTTPS_PROXY/NO_PROXY".into())
            }
        _ => None,
    }
}
const TPM_BUILD_HINT: &str = "this iamra was built without TPM 2.0 support: use a build with the `tpm` feature (cargo install iamra --features tpm)";

fn tpm_hint(e: &key::TpmError) -> Option<String> {
    use key::TpmError as T;
    let text = match e {
        T::Unreachable { .. } | T::Tcti(_) => {
            "choose the TPM with TPM2TOOLS_TCTI (device:/dev/tpmrm0, or for a simulator swtpm:path=SOCKET or swtpm:host=127.0.0.1,port=2321) or TPM_DEVICE".to_string()
        }
        T::PasswordRequired { .. } => format!(
            "set {TPM_ENV}, pass --tpm-key-password-file FILE, or run from a terminal to be prompted"
        ),
        T::HandlePasswordUnknown { .. } => format!(
            "pass --no-tpm-key-password if the key has no password; otherwise set {TPM_ENV}, pass --tpm-key-password-file FILE, or run from a terminal to be prompted"
        ),
        T::WrongPassword { .. } | T::PasswordNotRetried { .. } => format!(
            "check {TPM_ENV} or --tpm-key-password-file; iamra never retries, but every wrong password counts towards the TPM's lockout"
        ),
        T::Lockout { .. } => {
            "wait for the TPM to forget failures, or have its owner run tpm2_dictionarylockout --clear-lockout (with the lockout hierarchy's password); then restart iamra".to_string()
        }
        T::Unsupported { .. } => TPM_BUILD_HINT.to_string(),
        _ => return None,
    };
    Some(text)
}

fn pkcs11_hint(e: &key::pkcs11::Pkcs11Error) -> Option<String> {
    use key::pkcs11::Pkcs11Error as P;
    let text = match e {
        P::PinRequired { .. } => format!(
            "set {PKCS11_PIN_ENV}, pass --pkcs11-pin-file FILE, add pin-source=FILE to the URI, or run from a terminal to be prompted"
        ),
        P::KeyPinRequired { .. } => {
            "pass --reuse-pin to use the user PIN for this key, or run from a terminal to be prompted".into()
        }
        P::WrongPin { .. } => {
            "check the PIN before trying again: tokens lock the PIN after a few failures".into()
        }
        P::PinLocked { .. } => "the token's security officer must unlock the PIN (SO PIN)".into(),
        P::PinFinalTry { .. } => {
            "check the PIN, then log in once with the token's own tool (for example pkcs11-tool --login --test), which resets the counter when the PIN is right; or have the security officer reset the PIN".into()
        }
        P::PinNotRetried { .. } => {
            "check the PIN before restarting iamra: tokens lock the PIN after a few failures".into()
        }
        P::ModuleNotLoadable { .. } => {
            "pass --pkcs11-lib with the module's path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so, OpenSC: /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so) or add ?module-path=FILE to the URI".into()
        }
        P::SeveralTokens { .. } | P::SeveralCertificates { .. } | P::SeveralKeys { .. } => {
            "add token=, id= or object= to the URI so that it names one object; read-certificate-data --certificate 'pkcs11:…' lists the certificates".into()
        }
        P::NoToken { .. } | P::NoCertificate { .. } => {
            "read-certificate-data --certificate 'pkcs11:' lists the certificates on every token".into()
        }
        P::BadUri { .. } => {
            "RFC 7512 attributes: token, manufacturer, serial, model, slot-id, slot-description, slot-manufacturer, library-manufacturer, library-description, library-version, object, type, id; after '?': pin-value, pin-source, module-name, module-path".into()
        }
        _ => return None,
    };
    Some(text)
}

fn service_hint(code: &str, message: &str) -> Option<String> {
    let m = message.to_ascii_lowercase();
    if m.contains("untrusted") {
        return Some(
            "check that the certificate chains to the trust anchor's CA; is --intermediates missing?".into(),
        );
    }
    if m.contains("rolesessionname") {
        return Some("the profile does not accept role session names: drop --role-session-name or enable it on the profile".into());
    }
    if m.contains("signature expired") || m.contains("not yet current") {
        return Some("the system clock is off: synchronise it (NTP)".into());
    }
    match code {
        "ResourceNotFoundException" => Some("check --trust-anchor-arn, --profile-arn and the region".into()),
        "AccessDeniedException" => Some("check that the profile lists --role-arn and that the role trusts rolesanywhere.amazonaws.com".into()),
        _ => None,
    }
}
