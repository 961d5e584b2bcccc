//! The library API: `RolesAnywhereProvider` inside an aws-config `SdkConfig`.
#![cfg(feature = "aws-sdk")]

use std::sync::{Arc, Mutex};

use aws_credential_types::provider::ProvideCredentials as _;
use iamra::clock::Clock;
use time::OffsetDateTime;

use crate::common::*;

/// A clock the test moves forward.
struct StepClock(Mutex<OffsetDateTime>);

impl Clock for StepClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

#[test]
fn sdk_config_gets_credentials_and_fresh_ones_near_expiry() {
    // The endpoint accepts signatures dated in the (test clock's) future.
    let ep = Endpoint::start_with(&["--clock-skew-seconds", "100000"]);
    let clock = Arc::new(StepClock(Mutex::new(OffsetDateTime::now_utc())));
    let provider = against(&ep)
        .certificate(td("rsa2048/combined.pem"))
        .intermediates(td("chain.pem"))
        .session_duration(900)
        .clock(clock.clone())
        .build()
        .unwrap();
    runtime().block_on(async {
        let sdk_provider = sdk_credentials(provider).await;
        let first = sdk_provider.provide_credentials().await.unwrap();
        assert!(first.access_key_id().starts_with("ASIA"));
        assert!(first.session_token().is_some());
        assert!(first.expiry().is_some());
        let again = sdk_provider.provide_credentials().await.unwrap();
        assert_eq!(
            first.access_key_id(),
            again.access_key_id(),
            "valid credentials are re-used"
        );
        assert_eq!(ep.requests().len(), 1);

        // Within the refresh margin (5 minutes) of expiry: a new CreateSession and
        // new credentials. (The endpoint dates them by its own clock: past their
        // expiry by the test clock they would be refused as expired.)
        *clock.0.lock().unwrap() += time::Duration::seconds(601);
        let fresh = sdk_provider.provide_credentials().await.unwrap();
        assert_ne!(first.access_key_id(), fresh.access_key_id());
        assert_eq!(ep.requests().len(), 2);
    });
}

#[test]
fn builder_reports_missing_settings_and_bad_files() {
    let e = iamra::RolesAnywhereProvider::builder()
        .certificate(td("rsa2048/combined.pem"))
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "trust_anchor_arn is required");
    let e = iamra::RolesAnywhereProvider::builder()
        .certificate(td("mismatch/cert.pem"))
        .private_key(td("mismatch/key.pkcs8.pem"))
        .trust_anchor_arn(TRUST_ANCHOR_ARN)
        .profile_arn(PROFILE_ARN)
        .role_arn(ROLE_ARN)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("does not match certificate"), "{e}");
}

#[test]
fn provider_gets_credentials_with_an_mldsa65_key() {
    let ep = Endpoint::start();
    let provider = against(&ep)
        .certificate(td("mldsa65/cert.pem"))
        .private_key(td("mldsa65/key.expanded.pem"))
        .intermediates(td("mldsa-ca/chain.pem"))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let creds = runtime.block_on(provider.credentials()).unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert_eq!(ep.requests().len(), 1);
    assert_eq!(ep.requests()[0]["status"], 201);
}

/// A builder for the test role against `ep`, trusting its TLS certificate.
fn against(ep: &Endpoint) -> iamra::provider::Builder {
    iamra::RolesAnywhereProvider::builder()
        .trust_anchor_arn(TRUST_ANCHOR_ARN)
        .profile_arn(PROFILE_ARN)
        .role_arn(ROLE_ARN)
        .endpoint(ep.url())
        .ca_bundle(td("tls/ca.pem"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The credentials provider of an aws-config `SdkConfig` built on `provider`.
async fn sdk_credentials(
    provider: iamra::RolesAnywhereProvider,
) -> aws_credential_types::provider::SharedCredentialsProvider {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(provider)
        .load()
        .await;
    config.credentials_provider().expect("provider set")
}

/// Gets credentials twice through an aws-config `SdkConfig` built on `provider`;
/// returns the access key ids.
fn through_sdk_config(provider: iamra::RolesAnywhereProvider) -> (String, String) {
    runtime().block_on(async {
        let sdk = sdk_credentials(provider).await;
        let first = sdk.provide_credentials().await.unwrap();
        let second = sdk.provide_credentials().await.unwrap();
        (
            first.access_key_id().to_string(),
            second.access_key_id().to_string(),
        )
    })
}

#[test]
fn refresh_failures_keep_the_still_valid_credentials_then_report_the_error() {
    // One good answer, then 503 for ever; signatures dated by the test clock.
    let ep = Endpoint::start_with(&[
        "--clock-skew-seconds",
        "100000",
        "--fault",
        "ok",
        "--fault",
        "always:503",
    ]);
    let clock = Arc::new(StepClock(Mutex::new(OffsetDateTime::now_utc())));
    let provider = against(&ep)
        .certificate(td("rsa2048/combined.pem"))
        .intermediates(td("chain.pem"))
        .session_duration(900)
        .clock(clock.clone())
        .build()
        .unwrap();
    runtime().block_on(async {
        let first = provider.credentials().await.unwrap();
        assert_eq!(ep.requests().len(), 1);
        // Inside the refresh margin: a refresh is tried at once and fails (503, with
        // the client's retries); the credentials, valid for 299 s more, are returned.
        *clock.0.lock().unwrap() += time::Duration::seconds(601);
        let kept = provider.credentials().await.unwrap();
        assert_eq!(kept.access_key_id(), first.access_key_id());
        let tried = ep.requests().len();
        assert!(tried >= 2, "a refresh was tried ({tried} requests)");
        assert!(ep.requests()[1..].iter().all(|r| r["status"] == 503));
        // A second call during the backoff does not hammer the endpoint.
        let again = provider.credentials().await.unwrap();
        assert_eq!(again.access_key_id(), first.access_key_id());
        assert_eq!(ep.requests().len(), tried);
        // Once they expired, the refresh error is returned, with its kind.
        *clock.0.lock().unwrap() += time::Duration::seconds(300);
        let e = provider.credentials().await.unwrap_err();
        assert_eq!(e.kind(), iamra::error::ErrorKind::Transient, "{e}");
        assert!(e.to_string().contains("503"), "{e}");
    });
}

/// A key of the caller's own: here a file key behind the library's `SigningKey`
/// trait, as an HSM of the caller's would be.
#[derive(Debug)]
struct OwnKey(iamra::key::FileKey);

impl iamra::key::SigningKey for OwnKey {
    fn public_key(&self) -> iamra::key::PublicKey {
        self.0.public_key()
    }
    fn sign(
        &self,
        message: &[u8],
        digest: iamra::key::Digest,
    ) -> Result<Vec<u8>, iamra::key::SignError> {
        self.0.sign(message, digest)
    }
}

#[test]
fn a_callers_own_signing_key_gets_credentials_and_must_match_the_certificate() {
    use iamra::input::Input;
    use iamra::key::{NoPassword, load_key};
    let ep = Endpoint::start();
    let key = load_key(&Input::file(td("ec-p256/key.pkcs8.pem")), &NoPassword).unwrap();
    let certificate = iamra::cert::load_certificate(&Input::file(td("ec-p256/cert.pem"))).unwrap();
    let chain = iamra::cert::load_chain(&Input::file(td("chain.pem"))).unwrap();
    let provider = against(&ep)
        .signing_key(Box::new(OwnKey(key)), certificate.clone(), chain)
        .build()
        .unwrap();
    let (first, second) = through_sdk_config(provider);
    assert!(first.starts_with("ASIA"));
    assert_eq!(first, second);
    assert_eq!(ep.requests().len(), 1);
    assert_eq!(ep.requests()[0]["status"], 201);

    // Another key with this certificate is refused when the provider is built.
    let other = load_key(&Input::file(td("rsa2048/key.pkcs8.pem")), &NoPassword).unwrap();
    let e = iamra::RolesAnywhereProvider::builder()
        .signing_key(Box::new(OwnKey(other)), certificate, Vec::new())
        .trust_anchor_arn(TRUST_ANCHOR_ARN)
        .profile_arn(PROFILE_ARN)
        .role_arn(ROLE_ARN)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("does not match certificate"), "{e}");
}

/// The example program `pkcs11_provider`, built by `cargo test` next to the test
/// binary.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test --all-features` (examples are built with the tests) or `cargo build --features aws-sdk --example {name}`",
        path.display()
    );
    path
}

#[test]
fn an_sdk_config_gets_credentials_from_a_softhsm2_key() {
    use crate::common::softhsm::{MODULE, PIN, SoftHsm};
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    let mut cmd = clean_iamra_command_for(example("pkcs11_provider").to_str().unwrap());
    let out = cmd
        .args(["pkcs11:token=ra-test;id=%02", MODULE])
        .args([TRUST_ANCHOR_ARN, PROFILE_ARN, ROLE_ARN])
        .arg(ep.url())
        .arg(td("tls/ca.pem"))
        .env("SOFTHSM2_CONF", hsm.conf())
        .env("IAMRA_PKCS11_PIN", PIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<&str> = stdout
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{stdout}");
    assert!(keys[0].starts_with("ASIA"), "{stdout}");
    assert_eq!(keys[0], keys[1], "valid credentials are re-used");
    assert_eq!(ep.requests().len(), 1);
    assert_eq!(ep.requests()[0]["status"], 201);
    assert!(!stdout.contains(PIN) && !String::from_utf8_lossy(&out.stderr).contains(PIN));
}

#[cfg(feature = "tpm")]
#[test]
fn an_sdk_config_gets_credentials_from_a_swtpm_key() {
    use crate::common::swtpm::{HANDLE_RSA, Swtpm};
    use iamra::identity::{CertificateSource, IdentitySpec, KeySource, TpmOptions};
    use iamra::key::tpm::tcti::TctiConfig;
    use iamra::key::tpm::{TpmBackend, set_backend};
    let Some(tpm) = Swtpm::start() else { return };
    // The test binary does not sit next to `iamra-tpm`: name it.
    let helper = TpmBackend::Helper(env!("CARGO_BIN_EXE_iamra-tpm").into());
    if let Err(other) = set_backend(helper.clone()) {
        assert_eq!(other, helper, "every test chooses the same backend");
    }
    let ep = Endpoint::start();
    let spec = IdentitySpec::new(CertificateSource::file(
        tpm.file(&format!("handle-{HANDLE_RSA:08x}.crt")),
    ))
    .with_private_key(KeySource::parse(format!("handle:{HANDLE_RSA:#010x}")).unwrap())
    .with_intermediates(iamra::input::Input::file(td("chain.pem")))
    .with_tpm(
        TpmOptions::default()
            .with_no_key_password(true)
            .with_tcti(TctiConfig::new(&tpm.tcti()).unwrap()),
    );
    let provider = against(&ep).identity(spec).build().unwrap();
    let (first, second) = through_sdk_config(provider);
    assert!(first.starts_with("ASIA"));
    assert_eq!(first, second);
    assert_eq!(ep.requests().len(), 1);
    assert_eq!(ep.requests()[0]["status"], 201);
}
