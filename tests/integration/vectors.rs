//! The shared conformance vectors (`tests/vectors/`, made by aws_signing_helper 1.8.0
//! and iam-rolesanywhere-session 3.0.0), reproduced stage by stage.

use std::path::{Path, PathBuf};

use iamra::cert;
use iamra::key::{self, Digest, FixedPassword, NoPassword, SigningKey};
use iamra::output::{certificate_data, sign_string};
use iamra::sigv4x509::{self, SignableRequest};
use serde_json::Value;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

const REQUEST_VECTORS: &[&str] = &[
    "go-rsa2048-int-chain",
    "go-rsa3072-root",
    "go-rsa4096-int-chain-duration900-session-name",
    "go-rsa2048-int-chain-key-formats",
    "go-ec-p256-int-chain",
    "go-ec-p384-int-chain",
    "go-serial-huge-20byte-highbit",
    "pypi-rsa2048-int-chain",
    "pypi-ec-p256-root",
    "go-mldsa44-root",
    "go-mldsa65-int-chain",
    "go-mldsa87-root",
];

/// Verifies a pure ML-DSA signature (empty context) with the `ml-dsa` crate.
fn mldsa_verifies(set: key::MlDsaParameterSet, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    fn inner<P: ml_dsa::MlDsaParams>(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let pk = ml_dsa::EncodedVerifyingKey::<P>::try_from(public_key).unwrap();
        let Ok(sig) = ml_dsa::EncodedSignature::<P>::try_from(sig) else {
            return false;
        };
        let Some(sig) = ml_dsa::Signature::<P>::decode(&sig) else {
            return false;
        };
        ml_dsa::VerifyingKey::<P>::decode(&pk).verify_with_context(msg, &[], &sig)
    }
    match set {
        key::MlDsaParameterSet::MlDsa44 => inner::<ml_dsa::MlDsa44>(public_key, msg, sig),
        key::MlDsaParameterSet::MlDsa65 => inner::<ml_dsa::MlDsa65>(public_key, msg, sig),
        key::MlDsaParameterSet::MlDsa87 => inner::<ml_dsa::MlDsa87>(public_key, msg, sig),
    }
}

fn verify(cert: &cert::Certificate, message: &[u8], signature: &[u8]) -> bool {
    use ecdsa::signature::hazmat::PrehashVerifier as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, message);
    match cert.public_key() {
        key::PublicKey::Rsa { pkcs1, .. } => ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            pkcs1,
        )
        .verify(message, signature)
        .is_ok(),
        key::PublicKey::P256(point) => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            let Ok(sig) = p256::ecdsa::DerSignature::from_bytes(signature) else {
                return false;
            };
            vk.verify_prehash(digest.as_ref(), &sig).is_ok()
        }
        key::PublicKey::P384(point) => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            let Ok(sig) = p384::ecdsa::DerSignature::from_bytes(signature) else {
                return false;
            };
            vk.verify_prehash(digest.as_ref(), &sig).is_ok()
        }
        key::PublicKey::MlDsa { set, key } => mldsa_verifies(*set, key, message, signature),
    }
}

fn load_vector_key(dir: &Path, key_file: &str, password: Option<&str>) -> Box<dyn SigningKey> {
    match password {
        Some(p) => Box::new(
            key::load_key(
                &iamra::input::Input::file(dir.join(key_file)),
                &FixedPassword(p.into()),
            )
            .unwrap(),
        ),
        None => Box::new(
            key::load_key(&iamra::input::Input::file(dir.join(key_file)), &NoPassword).unwrap(),
        ),
    }
}

fn check_request_vector(name: &str, key_file: &str, password: Option<&str>) {
    let dir = vectors().join(name);
    let key = load_vector_key(&dir, key_file, password);
    check_request_vector_with(name, key.as_ref(), &dir.join(key_file));
}

/// Signs `request` (a `request.json` value) with `key` and the folder's certificate.
fn sign_vector_request(
    dir: &Path,
    request: &Value,
    key: &dyn SigningKey,
) -> sigv4x509::SigningOutput {
    let certificate =
        cert::load_certificate(&iamra::input::Input::file(dir.join("cert.pem"))).unwrap();
    let headers = vector_headers(request);
    let signed_headers: Vec<&str> = request["signed_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    sigv4x509::sign(
        &SignableRequest {
            method: request["method"].as_str().unwrap(),
            path: request["path"].as_str().unwrap(),
            query: request["query"].as_str().unwrap(),
            headers: &headers,
            body: request["body"].as_str().unwrap().as_bytes(),
        },
        Some(&signed_headers),
        request["region"].as_str().unwrap(),
        request["date"].as_str().unwrap(),
        certificate.serial_decimal(),
        key,
    )
    .unwrap()
}

fn vector_headers(request: &Value) -> Vec<(String, String)> {
    request["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check_request_vector_with(name: &str, key: &dyn SigningKey, key_path: &Path) {
    let dir = vectors().join(name);
    let request: Value = serde_json::from_str(&read(&dir, "request.json")).unwrap();
    let expected: Value = serde_json::from_str(&read(&dir, "expected.json")).unwrap();
    let certificate =
        cert::load_certificate(&iamra::input::Input::file(dir.join("cert.pem"))).unwrap();
    key::check_matches(key, key_path, &certificate).unwrap();

    let headers = vector_headers(&request);
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    // The X.509 headers our code builds equal those sent.
    assert_eq!(
        header("X-Amz-X509").unwrap(),
        certificate.to_base64(),
        "{name}: X-Amz-X509"
    );
    if dir.join("chain.pem").exists() {
        let chain = cert::load_chain(&iamra::input::Input::file(dir.join("chain.pem"))).unwrap();
        let joined: Vec<String> = chain.iter().map(|c| c.to_base64()).collect();
        assert_eq!(
            header("X-Amz-X509-Chain").unwrap(),
            joined.join(","),
            "{name}: chain"
        );
    }
    assert_eq!(
        certificate.serial_decimal(),
        expected["serial_decimal"].as_str().unwrap(),
        "{name}: serial"
    );

    let out = sign_vector_request(&dir, &request, key);
    assert_eq!(
        out.authorization.split(' ').next().unwrap(),
        expected["algorithm"].as_str().unwrap_or_else(|| out
            .authorization
            .split(' ')
            .next()
            .unwrap()),
        "{name}: algorithm"
    );
    assert_eq!(
        out.canonical_request,
        read(&dir, "canonical-request.txt"),
        "{name}: canonical request"
    );
    assert_eq!(
        out.string_to_sign,
        read(&dir, "string-to-sign.txt"),
        "{name}: string to sign"
    );
    let authorization = read(&dir, "authorization.txt");
    if expected["deterministic"].as_bool().unwrap() {
        assert_eq!(out.authorization, authorization, "{name}: authorization");
        // And the verifier accepts it, and refuses a changed message or signature.
        let sig = hex::decode(&out.signature).unwrap();
        assert!(
            verify(&certificate, out.string_to_sign.as_bytes(), &sig),
            "{name}"
        );
        let mut tampered = out.string_to_sign.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(
            !verify(&certificate, &tampered, &sig),
            "{name}: message flip"
        );
        let mut flipped = sig.clone();
        flipped[sig.len() / 2] ^= 0x40;
        assert!(
            !verify(&certificate, out.string_to_sign.as_bytes(), &flipped),
            "{name}: signature flip"
        );
    } else {
        let prefix =
            &authorization[..authorization.find("Signature=").unwrap() + "Signature=".len()];
        assert!(
            out.authorization.starts_with(prefix),
            "{name}: authorization prefix"
        );
        let ours = hex::decode(&out.signature).unwrap();
        assert!(
            verify(&certificate, out.string_to_sign.as_bytes(), &ours),
            "{name}: our ECDSA signature verifies"
        );
        let theirs = hex::decode(expected["signature_hex"].as_str().unwrap()).unwrap();
        assert!(
            verify(&certificate, out.string_to_sign.as_bytes(), &theirs),
            "{name}: vector signature verifies"
        );
        let mut tampered = out.string_to_sign.clone().into_bytes();
        tampered[0] ^= 1;
        assert!(
            !verify(&certificate, &tampered, &theirs),
            "{name}: tampered message rejected"
        );
    }
}

#[test]
fn every_request_vector_is_reproduced() {
    for name in REQUEST_VECTORS {
        check_request_vector(name, "key.pem", None);
    }
}

#[test]
fn key_formats_vector_gives_identical_authorization_for_every_encoding() {
    let dir = vectors().join("go-rsa2048-int-chain-key-formats");
    let expected: Value = serde_json::from_str(&read(&dir, "expected.json")).unwrap();
    let password = expected["key_password"].as_str().unwrap();
    check_request_vector("go-rsa2048-int-chain-key-formats", "key.pkcs1.pem", None);
    check_request_vector(
        "go-rsa2048-int-chain-key-formats",
        "key.pkcs8.enc.pem",
        Some(password),
    );
    check_request_vector("go-rsa3072-root", "key.pkcs1.pem", None);
    check_request_vector("go-ec-p256-int-chain", "key.sec1.pem", None);
}

#[test]
fn sign_string_vectors_are_reproduced() {
    for (name, deterministic) in [
        ("rsa2048", true),
        ("ec-p256", false),
        ("mldsa44", true),
        ("mldsa65", true),
        ("mldsa87", true),
    ] {
        let dir = vectors().join("sign-string").join(name);
        let certificate =
            cert::load_certificate(&iamra::input::Input::file(dir.join("cert.pem"))).unwrap();
        let key =
            key::load_key(&iamra::input::Input::file(dir.join("key.pem")), &NoPassword).unwrap();
        let message = sign_string::test_message(&key.public_key());
        assert_eq!(
            message,
            std::fs::read(dir.join("message.bin")).unwrap(),
            "{name}: message"
        );
        for (digest, file) in [
            (Digest::Sha256, "SHA256.txt"),
            (Digest::Sha384, "SHA384.txt"),
            (Digest::Sha512, "SHA512.txt"),
        ] {
            let sig = key.sign(&message, digest).unwrap();
            let text =
                String::from_utf8(sign_string::render(&sig, sign_string::Format::Text)).unwrap();
            let theirs = read(&dir, file);
            if deterministic {
                assert_eq!(text, theirs, "{name} {file}");
            } else {
                // ECDSA: both signatures verify over the message with the digest named.
                use ecdsa::signature::hazmat::PrehashVerifier as _;
                let key::PublicKey::P256(point) = certificate.public_key() else {
                    panic!()
                };
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
                let h = digest.hash(&message);
                for s in [text.as_str(), theirs.as_str()] {
                    let sig =
                        p256::ecdsa::DerSignature::from_bytes(&hex::decode(s).unwrap()).unwrap();
                    vk.verify_prehash(h.as_ref(), &sig)
                        .unwrap_or_else(|e| panic!("{name} {file}: {e}"));
                }
            }
        }
    }
}

#[test]
fn read_certificate_data_vectors_are_reproduced() {
    for name in [
        "rsa2048",
        "ec-p256",
        "ec-p256-serial-huge-20byte-highbit",
        "mldsa44",
        "mldsa65",
        "mldsa87",
    ] {
        let dir = vectors().join("read-certificate-data").join(name);
        let certificate =
            cert::load_certificate(&iamra::input::Input::file(dir.join("cert.pem"))).unwrap();
        assert_eq!(
            certificate_data::render(&certificate),
            read(&dir, "output.json"),
            "{name}"
        );
    }
}

/// The `privateKey` octets of an unencrypted PKCS#8 PEM file.
fn pkcs8_private_key(pem_path: &Path) -> (String, Vec<u8>) {
    use pkcs8::der::Decode as _;
    let text = std::fs::read_to_string(pem_path).unwrap();
    let (_, der) = pkcs8::der::pem::decode_vec(text.as_bytes()).unwrap();
    let info = pkcs8::PrivateKeyInfoRef::from_der(&der).unwrap();
    (
        info.algorithm.oid.to_string(),
        info.private_key.as_bytes().to_vec(),
    )
}

/// DER of a length.
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..0x80 => vec![n as u8],
        0x80..0x100 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// `tag || length || value`.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    [vec![tag], der_len(value.len()), value.to_vec()].concat()
}

/// An unencrypted ML-DSA PKCS#8 `PrivateKeyInfo` with `private_key` as its key octets.
pub(crate) fn mldsa_pkcs8(oid_der: &[u8], private_key: &[u8]) -> Vec<u8> {
    let algorithm = tlv(0x30, &tlv(0x06, oid_der));
    tlv(
        0x30,
        &[vec![0x02, 0x01, 0x00], algorithm, tlv(0x04, private_key)].concat(),
    )
}

/// The seed and expanded halves of a `both` ML-DSA key.
pub(crate) fn mldsa_both_halves(both: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use pkcs8::der::{Decode as _, Reader as _};
    let mut r = pkcs8::der::SliceReader::new(both).unwrap();
    r.sequence(|r| {
        let seed = <&pkcs8::der::asn1::OctetStringRef>::decode(r)?
            .as_bytes()
            .to_vec();
        let expanded = <&pkcs8::der::asn1::OctetStringRef>::decode(r)?
            .as_bytes()
            .to_vec();
        Ok::<_, pkcs8::der::Error>((seed, expanded))
    })
    .unwrap()
}

/// The three RFC 9881 forms (`seed`, `expandedKey`, `both`) of one vector key as
/// PKCS#8 DER.
fn mldsa_key_forms(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let (oid, both) = pkcs8_private_key(&dir.join("key.pem"));
    let oid_der = pkcs8::ObjectIdentifier::new(&oid)
        .unwrap()
        .as_bytes()
        .to_vec();
    let (seed, expanded) = mldsa_both_halves(&both);
    assert_eq!(seed.len(), 32);
    vec![
        ("seed", mldsa_pkcs8(&oid_der, &tlv(0x80, &seed))),
        ("expanded", mldsa_pkcs8(&oid_der, &tlv(0x04, &expanded))),
        ("both", mldsa_pkcs8(&oid_der, &both)),
    ]
}

#[test]
fn mldsa_vectors_are_reproduced_from_every_private_key_form() {
    for name in ["go-mldsa44-root", "go-mldsa65-int-chain", "go-mldsa87-root"] {
        let dir = vectors().join(name);
        for (form, der) in mldsa_key_forms(&dir) {
            let path = dir.join(format!("key.{form}.der"));
            let key = key::load_key_bytes(&der, &path, &NoPassword)
                .unwrap_or_else(|e| panic!("{name} {form}: {e}"));
            check_request_vector_with(name, &key, &path);
        }
    }
}

#[test]
fn mldsa_key_format_equivalence_vector_gives_each_recorded_authorization() {
    let name = "go-mldsa65-int-chain";
    let dir = vectors().join(name);
    let eq: Value = serde_json::from_str(&read(&dir, "key-format-equivalence.json")).unwrap();
    let password = eq["key_password"].as_str().unwrap();
    let base: Value = serde_json::from_str(&read(&dir, "request.json")).unwrap();
    let requests = eq["requests"].as_object().unwrap();
    assert_eq!(requests.len(), 2);
    for (label, r) in requests {
        let file = r["key_file"].as_str().unwrap();
        let key = load_vector_key(&dir, file, file.contains(".enc.").then_some(password));
        // The recorded request with its own date and invocation id.
        let date = r["x_amz_date"].as_str().unwrap();
        let mut request = base.clone();
        request["date"] = Value::from(date);
        for h in request["headers"].as_array_mut().unwrap() {
            let value = match h[0].as_str().unwrap().to_ascii_lowercase().as_str() {
                "x-amz-date" => date,
                "amz-sdk-invocation-id" => r["amz_sdk_invocation_id"].as_str().unwrap(),
                _ => continue,
            };
            h[1] = Value::from(value);
        }
        let expected = r["authorization"].as_str().unwrap();
        // Every key file gives every recorded Authorization.
        for other in ["key.pem", "key.pkcs8.enc.pem"] {
            let key2 = load_vector_key(&dir, other, other.contains(".enc.").then_some(password));
            let out = sign_vector_request(&dir, &request, key2.as_ref());
            assert_eq!(out.authorization, expected, "{label} signed from {other}");
        }
        let out = sign_vector_request(&dir, &request, key.as_ref());
        assert_eq!(out.authorization, expected, "{label}");
    }
}

#[test]
fn sign_string_and_read_certificate_data_print_the_vector_bytes_for_mldsa() {
    for name in ["mldsa44", "mldsa65", "mldsa87"] {
        let dir = vectors().join("sign-string").join(name);
        let cert = dir.join("cert.pem").display().to_string();
        let key = dir.join("key.pem").display().to_string();
        for digest in ["SHA256", "SHA384", "SHA512"] {
            let out = crate::common::iamra(
                &[
                    "sign-string",
                    "--certificate",
                    &cert,
                    "--private-key",
                    &key,
                    "--format",
                    "text",
                    "--digest",
                    digest,
                ],
                &[],
            );
            assert!(out.status.success(), "{name} {digest}");
            assert!(out.stderr.is_empty(), "{name} {digest}");
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                read(&dir, &format!("{digest}.txt")),
                "{name} {digest}"
            );
        }
        let dir = vectors().join("read-certificate-data").join(name);
        let cert = dir.join("cert.pem").display().to_string();
        let out = crate::common::iamra(&["read-certificate-data", "--certificate", &cert], &[]);
        assert!(out.status.success(), "{name}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            read(&dir, "output.json"),
            "{name}"
        );
    }
}
