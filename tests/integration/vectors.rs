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
];

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
    }
}

fn check_request_vector(name: &str, key_file: &str, password: Option<&str>) {
    let dir = vectors().join(name);
    let request: Value = serde_json::from_str(&read(&dir, "request.json")).unwrap();
    let expected: Value = serde_json::from_str(&read(&dir, "expected.json")).unwrap();
    let certificate = cert::load_certificate(&dir.join("cert.pem")).unwrap();
    let key: Box<dyn SigningKey> = match password {
        Some(p) => Box::new(key::load_key(&dir.join(key_file), &FixedPassword(p.into())).unwrap()),
        None => Box::new(key::load_key(&dir.join(key_file), &NoPassword).unwrap()),
    };
    key::check_matches(key.as_ref(), &dir.join(key_file), &certificate).unwrap();

    let headers: Vec<(String, String)> = request["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
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
        let chain = cert::load_chain(&dir.join("chain.pem")).unwrap();
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

    let signed_headers: Vec<&str> = request["signed_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let body = request["body"].as_str().unwrap();
    let out = sigv4x509::sign(
        &SignableRequest {
            method: request["method"].as_str().unwrap(),
            path: request["path"].as_str().unwrap(),
            query: request["query"].as_str().unwrap(),
            headers: &headers,
            body: body.as_bytes(),
        },
        Some(&signed_headers),
        request["region"].as_str().unwrap(),
        request["date"].as_str().unwrap(),
        certificate.serial_decimal(),
        key.as_ref(),
    )
    .unwrap();
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
    for (name, deterministic) in [("rsa2048", true), ("ec-p256", false)] {
        let dir = vectors().join("sign-string").join(name);
        let certificate = cert::load_certificate(&dir.join("cert.pem")).unwrap();
        let key = key::load_key(&dir.join("key.pem"), &NoPassword).unwrap();
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
    for name in ["rsa2048", "ec-p256", "ec-p256-serial-huge-20byte-highbit"] {
        let dir = vectors().join("read-certificate-data").join(name);
        let certificate = cert::load_certificate(&dir.join("cert.pem")).unwrap();
        assert_eq!(
            certificate_data::render(&certificate),
            read(&dir, "output.json"),
            "{name}"
        );
    }
}
