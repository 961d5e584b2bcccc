//! An AWS SDK program whose credentials come from a key on a PKCS#11 token (an HSM,
//! a smart card, SoftHSM2), through `iamra::RolesAnywhereProvider` in the SDK's
//! `SdkConfig`.
//!
//! ```sh
//! IAMRA_PKCS11_PIN=1234 cargo run --features aws-sdk --example pkcs11_provider -- \
//!     'pkcs11:token=my-token;object=my-cert' /usr/lib/softhsm/libsofthsm2.so \
//!     TRUST_ANCHOR_ARN PROFILE_ARN ROLE_ARN [ENDPOINT CA_BUNDLE]
//! ```
//!
//! The certificate URI is typed once (`CertificateSource::parse`); the key is the
//! private key with the certificate's `CKA_ID` on the same token. The PIN is read
//! from `IAMRA_PKCS11_PIN` (never from the command line) and handed to the library
//! as a password source; a wrong PIN is never retried.

use aws_credential_types::provider::ProvideCredentials as _;
use iamra::identity::{CertificateSource, IdentitySpec};
use iamra::key::pkcs11::Pkcs11Options;
use secrecy::SecretString;

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!(
            "usage: pkcs11_provider CERT_URI MODULE TRUST_ANCHOR_ARN PROFILE_ARN ROLE_ARN [ENDPOINT CA_BUNDLE]"
        );
        std::process::exit(2);
    }
    let certificate =
        CertificateSource::parse(&args[0]).unwrap_or_else(|e| fail(iamra::error::chain(&e)));
    let spec =
        IdentitySpec::new(certificate).with_pkcs11(Pkcs11Options::default().with_module(&args[1]));
    let mut builder = iamra::RolesAnywhereProvider::builder()
        .identity(spec)
        .trust_anchor_arn(&args[2])
        .profile_arn(&args[3])
        .role_arn(&args[4]);
    if let Ok(pin) = std::env::var("IAMRA_PKCS11_PIN") {
        builder = builder.password(SecretString::from(pin));
    }
    if let (Some(endpoint), Some(ca)) = (args.get(5), args.get(6)) {
        builder = builder.endpoint(endpoint).ca_bundle(ca);
    }
    let provider = builder
        .build()
        .unwrap_or_else(|e| fail(iamra::error::chain(&e)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("cannot start the async runtime: {e}")));
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(provider)
            .load()
            .await;
        let Some(sdk) = config.credentials_provider() else {
            fail("the SdkConfig has no credentials provider")
        };
        for round in 1..=2 {
            match sdk.provide_credentials().await {
                // The secret key and session token stay in memory: print only what
                // is not secret.
                Ok(c) => println!("round {round}: access key {}", c.access_key_id()),
                Err(e) => fail(iamra::error::chain(&e)),
            }
        }
    });
}
