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
    let provider = iamra::RolesAnywhereProvider::builder()
        .certificate(td("rsa2048/combined.pem"))
        .intermediates(td("chain.pem"))
        .trust_anchor_arn(TRUST_ANCHOR_ARN)
        .profile_arn(PROFILE_ARN)
        .role_arn(ROLE_ARN)
        .endpoint(ep.url())
        .ca_bundle(td("tls/ca.pem"))
        .session_duration(900)
        .clock(clock.clone())
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(provider)
            .load()
            .await;
        let sdk_provider = config.credentials_provider().expect("provider set");
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
    let provider = iamra::RolesAnywhereProvider::builder()
        .certificate(td("mldsa65/cert.pem"))
        .private_key(td("mldsa65/key.expanded.pem"))
        .intermediates(td("mldsa-ca/chain.pem"))
        .trust_anchor_arn(TRUST_ANCHOR_ARN)
        .profile_arn(PROFILE_ARN)
        .role_arn(ROLE_ARN)
        .endpoint(ep.url())
        .ca_bundle(td("tls/ca.pem"))
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
