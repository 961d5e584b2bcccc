//! One test body, every key backend: `credential-process`, `update` and `serve`
//! get credentials for the same role from the local endpoint (which verifies each
//! signature) with a key in a file, in a PKCS#12 bundle, on a SoftHSM2 token and
//! in a swtpm TPM ([`KeyBackend`]). Only the backend changes between the tests
//! below; under CI a missing SoftHSM2 or swtpm fails its test instead of skipping it.

use crate::common::backend::KeyBackend;
use crate::common::*;

#[test]
fn every_command_gets_credentials_with_a_file_key() {
    every_command_gets_credentials(&KeyBackend::file());
}

#[test]
fn every_command_gets_credentials_with_a_pkcs12_bundle() {
    every_command_gets_credentials(&KeyBackend::pkcs12());
}

#[test]
fn every_command_gets_credentials_with_a_softhsm2_key() {
    let Some(backend) = KeyBackend::softhsm2() else {
        return;
    };
    every_command_gets_credentials(&backend);
}

#[cfg(feature = "tpm")]
#[test]
fn every_command_gets_credentials_with_a_swtpm_key() {
    let Some(backend) = KeyBackend::swtpm() else {
        return;
    };
    every_command_gets_credentials(&backend);
}

/// The body: each command in turn against one endpoint, each checked against what
/// the endpoint issued and which certificate it saw.
fn every_command_gets_credentials(backend: &KeyBackend) {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let env = backend.env();
    let mut identity = backend.identity_flags();
    identity.extend(["--session-duration".into(), "900".into()]);
    identity.extend(ep.flags());
    let run = Run {
        name: backend.name(),
        identity,
        env: env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        ep: &ep,
    };
    run.credential_process();
    run.update_refreshes_once();
    run.serve_answers_imdsv2();
    run.provider_in_an_sdk_config(backend);

    // Every CreateSession succeeded, signed with the backend's certificate.
    let serial = serial_of(&backend.certificate_file());
    let log = log_entries(&ep);
    assert_eq!(log.len(), 5, "{}: {log:?}", run.name);
    for entry in &log {
        assert_eq!(entry["status"], 201, "{}: {entry}", run.name);
        assert_eq!(entry["serial"], serial.as_str(), "{}: {entry}", run.name);
    }
}

/// One backend's identity flags and environment against one endpoint.
struct Run<'a> {
    name: &'static str,
    identity: Vec<String>,
    env: Vec<(&'a str, &'a str)>,
    ep: &'a Endpoint,
}

impl Run<'_> {
    /// `iamra COMMAND` with the identity: the arguments.
    fn args(&self, command: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.extend(self.identity.iter().cloned());
        args
    }

    /// The access key id of request `n` (from 1) in the endpoint's log.
    fn issued(&self, n: usize) -> String {
        let log = log_entries(self.ep);
        log.iter()
            .find(|v| v["n"] == n)
            .and_then(|v| v["access_key_id"].as_str())
            .unwrap_or_else(|| panic!("{}: no request {n} in {log:?}", self.name))
            .to_string()
    }

    /// `credential-process` prints the credentials the endpoint issued, and nothing
    /// on stderr.
    fn credential_process(&self) {
        let name = self.name;
        let before = log_entries(self.ep).len();
        let out = iamra(&self.args(&["credential-process"]), &self.env);
        let printed = assert_credentials(&out);
        assert!(
            out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(printed["AccessKeyId"], self.issued(before + 1), "{name}");
    }

    /// `update` writes the first credentials, then refreshes them once (900 s
    /// sessions refreshed 897 s before expiry): the file holds exactly the profile
    /// the endpoint issued for the refresh, and SIGTERM stops it cleanly.
    fn update_refreshes_once(&self) {
        let name = self.name;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        let mut env = self.env.clone();
        env.push(("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()));
        let before = log_entries(self.ep).len();
        let args = self.args(&["update", "--refresh-before", "897s"]);
        let d = Daemon::start(&args, &env, 0).unwrap();
        let read = || std::fs::read_to_string(&file).unwrap_or_default();
        let first = wait_for("update's first write", || {
            let v = profile_values(&read(), "default");
            (!v.0.is_empty()).then_some(v.0)
        });
        let (text, (ak, sk, token, expiry)) = wait_for("update's first refresh", || {
            let text = read();
            let v = profile_values(&text, "default");
            (v.0 != first).then_some((text, v))
        });
        let (status, stderr) = d.stop();
        assert_eq!(status.code(), Some(0), "{name}: {stderr}");
        assert_eq!(first, self.issued(before + 1), "{name}");
        assert_eq!(ak, self.issued(before + 2), "{name}");
        assert!(!sk.is_empty() && !token.is_empty(), "{name}: {text}");
        assert_eq!(
            text,
            format!(
                "[default]\n{}{expiry}\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\naws_session_token = {token}\n",
                iamra::output::credentials_file::EXPIRATION_COMMENT
            ),
            "{name}"
        );
        assert!(!stderr.contains(&sk) && !stderr.contains(&token), "{name}");
    }

    /// `serve` answers an IMDSv2 client (a token, then the role's credentials) with
    /// the credentials the endpoint issued when it started.
    fn serve_answers_imdsv2(&self) {
        let name = self.name;
        let before = log_entries(self.ep).len();
        let served = Served::start(&self.identity, &self.env, 1);
        let token = imds_token(&served.addr);
        let doc = imds_credentials(&served.addr, &token);
        let (status, stderr) = served.daemon.stop();
        assert_eq!(status.code(), Some(0), "{name}: {stderr}");
        assert_eq!(doc["Code"], "Success", "{name}: {doc}");
        assert_eq!(doc["Type"], "AWS-HMAC", "{name}: {doc}");
        assert_eq!(doc["AccessKeyId"], self.issued(before + 1), "{name}");
        let secret = doc["SecretAccessKey"].as_str().unwrap_or_default();
        let session = doc["Token"].as_str().unwrap_or_default();
        assert!(!secret.is_empty() && !session.is_empty(), "{name}: {doc}");
        assert!(!stderr.contains(secret), "{name}");
    }
}

impl Run<'_> {
    /// The library: a `RolesAnywhereProvider` built from the backend's values typed
    /// by the library's parsers, inside an aws-config `SdkConfig` (with the
    /// `aws-sdk` feature; on its own without), in a process of
    /// its own (the backend's variables, such as `SOFTHSM2_CONF`, belong to the
    /// process). It gets the credentials the endpoint issued.
    fn provider_in_an_sdk_config(&self, backend: &KeyBackend) {
        let name = self.name;
        let before = log_entries(self.ep).len();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("access-key-id");
        let mut env: Vec<(String, String)> = backend.env();
        let mut set = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                env.push((format!("IAMRA_TEST_PROVIDER_{k}"), v));
            }
        };
        set("CERTIFICATE", Some(backend.certificate()));
        set("PRIVATE_KEY", backend.private_key());
        set(
            "INTERMEDIATES",
            backend.intermediates().map(|p| p.display().to_string()),
        );
        set("MODULE", backend.pkcs11_module().map(String::from));
        set(
            "PASSWORD",
            backend
                .pkcs11_pin()
                .or(backend.pkcs12_password())
                .map(String::from),
        );
        set("ENDPOINT", Some(self.ep.url()));
        set("OUT", Some(out.display().to_string()));
        run_child_test("backends::provider_in_its_own_process", env);
        let key = std::fs::read_to_string(&out).unwrap();
        assert_eq!(key, self.issued(before + 1), "{name}");
    }
}

/// The provider half of [`Run::provider_in_an_sdk_config`], run in a child
/// process by it (ignored on its own).
#[test]
#[ignore = "run by Run::provider_in_an_sdk_config in a process of its own"]
fn provider_in_its_own_process() {
    use iamra::identity::{CertificateSource, IdentitySpec, KeySource};
    use iamra::key::pkcs11::Pkcs11Options;
    let var = |k: &str| std::env::var(format!("IAMRA_TEST_PROVIDER_{k}")).ok();
    #[cfg(feature = "tpm")]
    {
        use iamra::key::tpm::{TpmBackend, set_backend};
        let _ = set_backend(TpmBackend::Helper(env!("CARGO_BIN_EXE_iamra-tpm").into()));
    }
    let mut spec =
        IdentitySpec::new(CertificateSource::parse(var("CERTIFICATE").unwrap()).unwrap());
    if let Some(key) = var("PRIVATE_KEY") {
        spec = spec.with_private_key(KeySource::parse(key).unwrap());
    }
    if let Some(chain) = var("INTERMEDIATES") {
        spec = spec.with_intermediates(iamra::input::Input::file(chain));
    }
    if let Some(module) = var("MODULE") {
        spec = spec.with_pkcs11(Pkcs11Options::default().with_module(module));
    }
    let mut builder = iamra::RolesAnywhereProvider::builder()
        .identity(spec)
        .trust_anchor_arn(TRUST_ANCHOR_ARN)
        .profile_arn(PROFILE_ARN)
        .role_arn(ROLE_ARN)
        .endpoint(var("ENDPOINT").unwrap())
        .ca_bundle(td("tls/ca.pem"))
        .session_duration(900);
    if let Some(password) = var("PASSWORD") {
        builder = builder.password(password.into());
    }
    let provider = builder.build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Without the `aws-sdk` feature the provider is used on its own.
    #[cfg(not(feature = "aws-sdk"))]
    let key = runtime.block_on(async {
        let first = provider.credentials().await.unwrap();
        let again = provider.credentials().await.unwrap();
        assert_eq!(first.access_key_id(), again.access_key_id(), "re-used");
        first.access_key_id().to_string()
    });
    #[cfg(feature = "aws-sdk")]
    let key = runtime.block_on(async {
        use aws_credential_types::provider::ProvideCredentials as _;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(provider)
            .load()
            .await;
        let sdk = config.credentials_provider().unwrap();
        let first = sdk.provide_credentials().await.unwrap();
        let again = sdk.provide_credentials().await.unwrap();
        assert_eq!(first.access_key_id(), again.access_key_id(), "re-used");
        first.access_key_id().to_string()
    });
    std::fs::write(var("OUT").unwrap(), key).unwrap();
}
