//! The credential cache's key comes from the typed configuration: everything that
//! changes which credentials are valid or trusted makes a new entry, and
//! credentials fetched without TLS verification are never cached nor served from
//! the cache.

use std::process::Output;

use crate::common::softhsm::{MODULE, PIN, SoftHsm};
use crate::common::*;

struct Cache {
    ep: Endpoint,
    dir: tempfile::TempDir,
}

impl Cache {
    fn new() -> Self {
        Cache {
            ep: Endpoint::start(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn env(&self) -> [(&'static str, String); 2] {
        [
            ("IAMRA_NO_CACHE", "false".into()),
            (
                "IAMRA_CACHE_DIR",
                self.dir.path().join("cache").display().to_string(),
            ),
        ]
    }

    /// credential-process with `identity` flags, the endpoint's flags (its CA
    /// bundle unless `extra` or `env` bring one) and `extra`, with the cache on.
    fn run(&self, identity: &[String], extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = vec!["credential-process".to_string()];
        args.extend(identity.iter().cloned());
        let flags = self.ep.flags();
        let mut i = 0;
        while i < flags.len() {
            // A --ca-bundle in `extra` (or AWS_CA_BUNDLE) replaces the endpoint's.
            let own_bundle =
                extra.contains(&"--ca-bundle") || env.iter().any(|(k, _)| *k == "AWS_CA_BUNDLE");
            if flags[i] == "--ca-bundle" && own_bundle {
                i += 2;
                continue;
            }
            args.push(flags[i].clone());
            i += 1;
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let owned = self.env();
        let mut all: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(env);
        iamra(&args, &all)
    }

    fn entries(&self) -> usize {
        match std::fs::read_dir(self.dir.path().join("cache")) {
            Ok(d) => d
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "json")
                })
                .count(),
            Err(_) => 0,
        }
    }

    fn requests(&self) -> usize {
        self.ep.requests().len()
    }
}

fn file_identity() -> Vec<String> {
    [
        "--certificate",
        &td("rsa2048/cert.pem").display().to_string(),
        "--private-key",
        &td("rsa2048/key.pkcs8.pem").display().to_string(),
        "--intermediates",
        &td("chain.pem").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn unverified_tls_runs_are_never_cached_nor_served_from_the_cache() {
    let c = Cache::new();
    let id = file_identity();
    // An unverified run on an empty cache leaves nothing behind.
    let unverified = c.run(&id, &["--no-verify-ssl"], &[]);
    assert_credentials(&unverified);
    assert_eq!((c.requests(), c.entries()), (1, 0));
    // A verified run is cached...
    let verified = c.run(&id, &[], &[]);
    assert_credentials(&verified);
    assert_eq!((c.requests(), c.entries()), (2, 1));
    // ...but an unverified one does not read it (it asks the endpoint)...
    let again = c.run(&id, &["--no-verify-ssl"], &[]);
    assert_ne!(again.stdout, verified.stdout);
    assert_eq!((c.requests(), c.entries()), (3, 1));
    // ...and the verified entry is still the one served.
    assert_eq!(c.run(&id, &[], &[]).stdout, verified.stdout);
    assert_eq!(c.requests(), 3);
}

#[test]
fn the_ca_bundle_content_is_part_of_the_key() {
    let c = Cache::new();
    let id = file_identity();
    let bundle = c.dir.path().join("ca.pem");
    let ca = std::fs::read(td("tls/ca.pem")).unwrap();
    std::fs::write(&bundle, &ca).unwrap();
    let bundle_s = bundle.display().to_string();
    let flags = ["--ca-bundle", bundle_s.as_str()];
    let first = c.run(&id, &flags, &[]);
    assert_credentials(&first);
    assert_eq!(c.run(&id, &flags, &[]).stdout, first.stdout);
    assert_eq!(c.requests(), 1);
    // Another trust store (here: the same CA and one more certificate) is another key.
    let mut more = ca.clone();
    more.extend_from_slice(&std::fs::read(td("ca/root.pem")).unwrap());
    std::fs::write(&bundle, &more).unwrap();
    let second = c.run(&id, &flags, &[]);
    assert_credentials(&second);
    assert_ne!(second.stdout, first.stdout);
    assert_eq!(c.requests(), 2);
    // The same file through AWS_CA_BUNDLE is the same trust: the same entry.
    let via_env = c.run(&id, &[], &[("AWS_CA_BUNDLE", bundle_s.as_str())]);
    assert_eq!(via_env.stdout, second.stdout);
    assert_eq!(c.requests(), 2);
}

#[test]
fn proxy_settings_are_part_of_the_key() {
    let c = Cache::new();
    let id = file_identity();
    let first = c.run(&id, &[], &[]);
    assert_credentials(&first);
    // NO_PROXY changes how the endpoint is reached (here it is reached directly
    // either way): another key.
    let no_proxy = [("NO_PROXY", "127.0.0.1,localhost")];
    let second = c.run(&id, &[], &no_proxy);
    assert_credentials(&second);
    assert_ne!(second.stdout, first.stdout);
    assert_eq!(c.run(&id, &[], &no_proxy).stdout, second.stdout);
    assert_eq!(c.requests(), 2);
}

#[test]
fn the_pkcs11_module_and_what_the_uri_resolves_to_are_part_of_the_key() {
    let Some(hsm) = SoftHsm::new() else { return };
    let c = Cache::new();
    let conf = hsm.conf().display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("IAMRA_PKCS11_PIN", PIN)];
    let identity = |module: &str| -> Vec<String> {
        [
            "--certificate",
            "pkcs11:token=ra-test;id=%02",
            "--pkcs11-lib",
            module,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let first = c.run(&identity(MODULE), &[], &env);
    assert_credentials(&first);
    assert_eq!(c.run(&identity(MODULE), &[], &env).stdout, first.stdout);
    assert_eq!(c.requests(), 1);
    // The same module file by another path is another module setting.
    let link = c.dir.path().join("softhsm2-link.so");
    std::os::unix::fs::symlink(MODULE, &link).unwrap();
    let other = c.run(&identity(&link.display().to_string()), &[], &env);
    assert_credentials(&other);
    assert_eq!(c.requests(), 2);
    // The certificate object the URI named is gone from the token: the URI resolves
    // to something else, so the cached credentials are not served (the old key,
    // made from the URI's text, would have served them until they expired).
    let deleted = std::process::Command::new("pkcs11-tool")
        .args(["--module", MODULE, "--login", "--pin", PIN])
        .args([
            "--token-label",
            "ra-test",
            "--delete-object",
            "--type",
            "cert",
        ])
        .args(["--id", "02"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let after = c.run(&identity(MODULE), &[], &env);
    assert!(!after.status.success(), "served from the cache");
    assert!(after.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("no certificate"),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    assert_eq!(c.requests(), 2);
}

/// The cache key resolves a PKCS#11 URI (module, token, certificate objects) and a
/// miss then loads the key: the module is loaded and initialised once for both.
#[test]
fn a_pkcs11_cache_miss_initialises_the_module_once() {
    let Some(hsm) = SoftHsm::new() else { return };
    let c = Cache::new();
    let conf = hsm.conf().display().to_string();
    let env = [
        ("SOFTHSM2_CONF", conf.as_str()),
        ("IAMRA_PKCS11_PIN", PIN),
        ("IAMRA_LOG", "iamra=debug"),
    ];
    let identity: Vec<String> = [
        "--certificate",
        "pkcs11:token=ra-test;id=%02",
        "--pkcs11-lib",
        MODULE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let initialised = |out: &Output| {
        String::from_utf8_lossy(&out.stderr)
            .matches("PKCS#11 module initialised")
            .count()
    };
    let miss = c.run(&identity, &[], &env);
    assert_credentials(&miss);
    assert_eq!(c.requests(), 1);
    assert_eq!(
        initialised(&miss),
        1,
        "{}",
        String::from_utf8_lossy(&miss.stderr)
    );
    // A hit resolves the URI only.
    let hit = c.run(&identity, &[], &env);
    assert_eq!(hit.stdout, miss.stdout);
    assert_eq!(c.requests(), 1);
    assert_eq!(
        initialised(&hit),
        1,
        "{}",
        String::from_utf8_lossy(&hit.stderr)
    );
    // Without the cache, the key load alone.
    let uncached = c.run(&identity, &["--no-cache"], &env);
    assert_credentials(&uncached);
    assert_eq!(c.requests(), 2);
    assert_eq!(initialised(&uncached), 1);
}

#[cfg(feature = "tpm")]
#[test]
fn the_tpm_and_the_key_handle_are_part_of_the_key() {
    use crate::common::swtpm::{HANDLE_RSA, Swtpm};
    let Some(tpm) = Swtpm::start() else { return };
    let c = Cache::new();
    let identity = vec![
        "--certificate".to_string(),
        tpm.file(&format!("handle-{HANDLE_RSA:08x}.crt")),
        "--private-key".into(),
        format!("handle:{HANDLE_RSA:#010x}"),
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
        "--no-tpm-key-password".into(),
    ];
    let tcti = tpm.tcti();
    let first = c.run(&identity, &[], &[("TPM2TOOLS_TCTI", tcti.as_str())]);
    assert_credentials(&first);
    assert_eq!(
        c.run(&identity, &[], &[("TPM2TOOLS_TCTI", tcti.as_str())])
            .stdout,
        first.stdout
    );
    assert_eq!(c.requests(), 1);
    // The same simulator named another way is another TPM setting: the cache does
    // not assume two TPM names are one TPM.
    let other = tcti.replace("127.0.0.1", "localhost");
    assert_ne!(other, tcti);
    let second = c.run(&identity, &[], &[("TPM2TOOLS_TCTI", other.as_str())]);
    assert_credentials(&second);
    assert_eq!(c.requests(), 2);
}
