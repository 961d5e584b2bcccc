//! Verifier tests: every request vector in `tests/vectors/` byte for byte, and
//! one or more rejections per rule, built by mutating (and where needed
//! re-signing) vector requests or by signing requests with certificates made
//! here (a minimal DER writer below).

use crate::canonical::{self, CanonicalInput};
use crate::cert::{self, ChainError};
use crate::crypto::{Hash, PublicKey, Scheme};
use crate::error::ApiError;
use crate::verify::{Algorithm, RequestParts, VerifyConfig, parse_authorization, verify};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self as rsig, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::macros::format_description;

/// The shared vectors directory.
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
/// Trust anchor of the vectors.
const TRUST_ANCHOR_PEM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/trust-anchor.pem"
);

/// Configured trust anchor ARN.
const TA_ARN: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0";
/// Configured profile ARN.
const PROFILE_ARN: &str =
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";
/// The role the vectors ask for.
const VECTOR_ROLE: &str = "arn:aws:iam::123456789012:role/oracle-test-role";

// ---------------------------------------------------------------------------
// Vector loading
// ---------------------------------------------------------------------------

/// One request vector.
struct Vector {
    /// Folder name.
    name: String,
    /// Folder path.
    dir: PathBuf,
    /// The request as sent, Authorization included.
    req: RequestParts,
    /// `X-Amz-Date`.
    date: String,
    /// `X-Amz-Date` as a time (the clock of the test).
    now: OffsetDateTime,
    /// `expected.json`.
    expected: Value,
}

/// Reads a text file (panics in tests only).
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The DER certificates of a PEM file.
fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|c| c.expect("pem").as_ref().to_vec())
        .collect()
}

/// Parses an `X-Amz-Date` value.
fn parse_amz_date(s: &str) -> OffsetDateTime {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &fmt)
        .expect("date")
        .assume_utc()
}

/// Loads a request vector folder.
fn load_vector(dir: &Path) -> Vector {
    let request: Value =
        serde_json::from_str(&read(&dir.join("request.json"))).expect("request.json");
    let expected: Value =
        serde_json::from_str(&read(&dir.join("expected.json"))).expect("expected.json");
    let s = |k: &str| {
        request[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}"))
            .to_string()
    };
    let mut headers: Vec<(String, String)> = request["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| {
            (
                h[0].as_str().expect("name").to_string(),
                h[1].as_str().expect("value").to_string(),
            )
        })
        .collect();
    headers.push((
        "Authorization".to_string(),
        read(&dir.join("authorization.txt")),
    ));
    let date = s("date");
    Vector {
        name: dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned(),
        dir: dir.to_path_buf(),
        now: parse_amz_date(&date),
        date,
        req: RequestParts {
            method: s("method"),
            path: s("path"),
            query: s("query"),
            headers,
            body: s("body").into_bytes(),
        },
        expected,
    }
}

/// Every request vector folder, sorted.
fn all_vectors() -> Vec<Vector> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(VECTORS)
        .expect("vectors dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("request.json").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load_vector(d)).collect()
}

/// One request vector by folder name.
fn vector(name: &str) -> Vector {
    load_vector(&Path::new(VECTORS).join(name))
}

/// DER of the vectors' trust anchor.
fn anchor_ders() -> Vec<Vec<u8>> {
    pem_certs(Path::new(TRUST_ANCHOR_PEM))
}

/// The endpoint configuration the vectors were made for.
fn config() -> VerifyConfig {
    VerifyConfig {
        region: "us-east-1".into(),
        trust_anchor_arn: TA_ARN.into(),
        profile_arn: PROFILE_ARN.into(),
        role_arns: vec![VECTOR_ROLE.into()],
        max_duration: 43200,
        allow_role_session_name: true,
        clock_skew_seconds: 300,
        trust_anchors: anchor_ders(),
    }
}

// ---------------------------------------------------------------------------
// Request mutation helpers
// ---------------------------------------------------------------------------

/// The first value of a header.
fn header<'a>(req: &'a RequestParts, name: &str) -> &'a str {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no header {name}"))
}

/// Replaces every value of a header with one value.
fn set_header(req: &mut RequestParts, name: &str, value: &str) {
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    req.headers.push((name.to_string(), value.to_string()));
}

/// Removes a header.
fn remove_header(req: &mut RequestParts, name: &str) {
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}

/// The Authorization value.
fn auth_of(req: &RequestParts) -> String {
    header(req, "authorization").to_string()
}

/// Replaces text in the Authorization header.
fn edit_auth(req: &mut RequestParts, from: &str, to: &str) {
    let a = auth_of(req);
    assert!(a.contains(from), "{a} lacks {from}");
    set_header(req, "Authorization", &a.replacen(from, to, 1));
}

/// A signer over the string to sign.
enum Signer {
    /// RSA PKCS#1 v1.5.
    Rsa(RsaKeyPair),
    /// ECDSA (P-256 or P-384).
    Ec(EcdsaKeyPair),
}

/// Signing and naming.
impl Signer {
    /// Signs `msg` (SHA-256).
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&rsig::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .expect("rsa sign");
                sig
            }
            Signer::Ec(k) => k.sign(&rng, msg).expect("ec sign").as_ref().to_vec(),
        }
    }

    /// The request algorithm of this key.
    fn algorithm(&self) -> Algorithm {
        match self {
            Signer::Rsa(_) => Algorithm::Rsa,
            Signer::Ec(_) => Algorithm::Ecdsa,
        }
    }
}

/// The signer of a vector's `key.pem` (RSA or P-256).
fn vector_signer(v: &Vector) -> Signer {
    let key = PrivateKeyDer::from_pem_file(v.dir.join("key.pem")).expect("key.pem");
    let der = key.secret_der();
    if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
        return Signer::Rsa(k);
    }
    Signer::Ec(
        EcdsaKeyPair::from_pkcs8(
            &rsig::ECDSA_P256_SHA256_ASN1_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .expect("p256 key"),
    )
}

/// Signs `req` again after a mutation, keeping its Credential and SignedHeaders
/// (or using `signed`/`serial`/`date_scope` when given).
fn sign_request(req: &mut RequestParts, signer: &Signer, serial: &str, signed: &[&str]) {
    let date = header(req, "x-amz-date").to_string();
    let scope = format!("{}/us-east-1/rolesanywhere/aws4_request", &date[..8]);
    let canonical = canonical::canonical_request(&CanonicalInput {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &req.headers,
        signed_headers: signed,
        body: &req.body,
    });
    let alg = signer.algorithm().name();
    let sts = canonical::string_to_sign(alg, &date, &scope, &canonical);
    let sig = hex::encode(signer.sign(sts.as_bytes()));
    set_header(
        req,
        "Authorization",
        &format!(
            "{alg} Credential={serial}/{scope}, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        ),
    );
}

/// Re-signs a vector request after a mutation, with its own key and SignedHeaders.
fn resign(v: &mut Vector) {
    let auth = auth_of(&v.req);
    let parsed = parse_authorization(&auth).expect("authorization");
    let serial = parsed.serial.to_string();
    let signed: Vec<String> = parsed.signed_headers.split(';').map(String::from).collect();
    let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
    let signer = vector_signer(v);
    sign_request(&mut v.req, &signer, &serial, &signed);
}

/// Asserts a rejection with exactly this status, code and message.
fn expect_err(
    result: Result<crate::verify::Verified, ApiError>,
    status: u16,
    code: &str,
    message: &str,
) {
    match result {
        Ok(_) => panic!("accepted, expected {status} {code} {message:?}"),
        Err(e) => {
            assert_eq!(
                (e.status, e.code, e.message.as_str()),
                (status, code, message),
                "got {e}"
            );
        }
    }
}

/// Asserts a 403 AccessDeniedException with `message`.
fn denied(result: Result<crate::verify::Verified, ApiError>, message: &str) {
    expect_err(result, 403, "AccessDeniedException", message);
}

/// Asserts a 400 ValidationException with `message`.
fn invalid(result: Result<crate::verify::Verified, ApiError>, message: &str) {
    expect_err(result, 400, "ValidationException", message);
}

/// The go-rsa2048-int-chain vector (chain, ARNs in the query).
fn base() -> Vector {
    vector("go-rsa2048-int-chain")
}

/// Verifies a vector at its own date with the default configuration.
fn check(v: &Vector) -> Result<crate::verify::Verified, ApiError> {
    let mut config = config();
    config.trust_anchors = vector_anchor_ders(v);
    verify(&v.req, v.now, &config)
}

/// DER of a vector's trust anchor: its own `trust-anchor.pem` (the ML-DSA
/// folders' PKI) or the shared one.
fn vector_anchor_ders(v: &Vector) -> Vec<Vec<u8>> {
    let own = v.dir.join("trust-anchor.pem");
    if own.exists() {
        pem_certs(&own)
    } else {
        anchor_ders()
    }
}

// ---------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------

#[test]
fn every_request_vector_canonicalises_and_verifies_byte_for_byte() {
    let vectors = all_vectors();
    assert!(vectors.len() >= 9, "only {} vectors found", vectors.len());
    for v in &vectors {
        let ok = check(v).unwrap_or_else(|e| panic!("{}: rejected: {e}", v.name));
        assert_eq!(
            ok.canonical_request,
            read(&v.dir.join("canonical-request.txt")),
            "{}: canonical request",
            v.name
        );
        assert_eq!(
            ok.string_to_sign,
            read(&v.dir.join("string-to-sign.txt")),
            "{}: string to sign",
            v.name
        );
        assert_eq!(
            Some(ok.serial_decimal.as_str()),
            v.expected["serial_decimal"].as_str(),
            "{}: serial",
            v.name
        );
        assert_eq!(
            Some(ok.algorithm.name()),
            v.expected["algorithm"].as_str(),
            "{}",
            v.name
        );
        assert_eq!(
            Some(ok.signed_headers.as_str()),
            v.expected["signed_headers"].as_str(),
            "{}",
            v.name
        );
        assert_eq!(ok.role_arn, VECTOR_ROLE);
        let leaf = pem_certs(&v.dir.join("cert.pem"));
        assert_eq!(
            header(&v.req, "x-amz-x509"),
            STANDARD.encode(&leaf[0]),
            "{}",
            v.name
        );
        let subject = v.expected["certificate_subject"].as_str().expect("subject");
        assert_eq!(
            Some(ok.source_identity.as_str()),
            subject.split(',').next(),
            "{}",
            v.name
        );
    }
}

#[test]
fn vector_sessions_take_duration_and_name_from_the_body() {
    let ok = check(&vector("go-rsa4096-int-chain-duration900-session-name")).expect("vector");
    assert_eq!(ok.duration_seconds, 900);
    assert_eq!(ok.session_name, "vector-session");
    let ok = check(&base()).expect("vector");
    assert_eq!(ok.duration_seconds, 3600);
    assert_eq!(ok.session_name, ok.serial_hex);
    assert_eq!(ok.serial_hex, "50c7eb506fc50a8106b46072b40d33e0076218bb");
    let huge = check(&vector("go-serial-huge-20byte-highbit")).expect("vector");
    assert_eq!(
        huge.serial_decimal,
        "875332261925107244631632098514980984248356899447"
    );
    assert!(huge.serial_hex.starts_with("9953"), "{}", huge.serial_hex);
}

#[test]
fn every_vector_signature_is_rejected_once_a_byte_changes() {
    for v in all_vectors() {
        let auth = auth_of(&v.req);
        let (head, sig) = auth.split_once("Signature=").expect("signature");
        for pos in [0, sig.len() / 2, sig.len() - 1] {
            let mut bytes = sig.as_bytes().to_vec();
            bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
            let mut m = load_vector(&v.dir);
            set_header(
                &mut m.req,
                "Authorization",
                &format!("{head}Signature={}", String::from_utf8(bytes).expect("hex")),
            );
            denied(check(&m), "Signature validation failed");
        }
    }
}

#[test]
fn every_vector_signature_fails_on_a_changed_string_to_sign() {
    for v in all_vectors() {
        let sts = read(&v.dir.join("string-to-sign.txt"));
        let leaf_der = &pem_certs(&v.dir.join("cert.pem"))[0];
        let leaf = cert::parse_der(leaf_der).expect("leaf");
        let key = PublicKey::from_spki(leaf.public_key()).expect("key");
        let scheme = if key.is_rsa() {
            Scheme::RsaPkcs1(Hash::Sha256)
        } else if let Some(set) = key.mldsa_set() {
            Scheme::MlDsa(set)
        } else {
            Scheme::Ecdsa(Hash::Sha256)
        };
        let auth = auth_of(&v.req);
        let sig = hex::decode(auth.split_once("Signature=").expect("sig").1).expect("hex");
        assert!(key.verify(scheme, sts.as_bytes(), &sig), "{}", v.name);
        for pos in [0, sts.len() / 2, sts.len() - 1] {
            let mut changed = sts.clone().into_bytes();
            changed[pos] ^= 0x01;
            assert!(!key.verify(scheme, &changed, &sig), "{} pos {pos}", v.name);
        }
    }
}

#[test]
fn every_vector_is_rejected_when_a_signed_part_of_the_request_changes() {
    for v in all_vectors() {
        // Body.
        let mut m = load_vector(&v.dir);
        m.req.body.push(b' ');
        denied(check(&m), "Signature validation failed");
        // Date, one second later (still inside the clock skew).
        let mut m = load_vector(&v.dir);
        let later = m.now + time::Duration::seconds(1);
        let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
        set_header(&mut m.req, "X-Amz-Date", &later.format(&fmt).expect("fmt"));
        denied(check(&m), "Signature validation failed");
        // Path.
        let mut m = load_vector(&v.dir);
        m.req.path = "/sessionz".into();
        denied(check(&m), "Signature validation failed");
        // Host.
        let mut m = load_vector(&v.dir);
        set_header(&mut m.req, "Host", "127.0.0.1:1");
        denied(check(&m), "Signature validation failed");
    }
}

#[test]
fn every_vector_chain_verifies_to_the_trust_anchor_at_its_date() {
    for v in all_vectors() {
        let anchors_der = vector_anchor_ders(&v);
        let anchors: Vec<_> = anchors_der
            .iter()
            .map(|d| cert::parse_der(d).expect("anchor"))
            .collect();
        let leaf_der = pem_certs(&v.dir.join("cert.pem"));
        let leaf = cert::parse_der(&leaf_der[0]).expect("leaf");
        let chain_path = v.dir.join("chain.pem");
        let chain_der = if chain_path.exists() {
            pem_certs(&chain_path)
        } else {
            Vec::new()
        };
        let chain: Vec<_> = chain_der
            .iter()
            .map(|d| cert::parse_der(d).expect("chain"))
            .collect();
        let now = v.now.unix_timestamp();
        assert_eq!(
            cert::verify_chain(&leaf, &chain, &anchors, now),
            Ok(()),
            "{}",
            v.name
        );
        if !chain.is_empty() {
            // Without the intermediate there is no path.
            assert_eq!(
                cert::verify_chain(&leaf, &[], &anchors, now),
                Err(ChainError::Untrusted),
                "{}",
                v.name
            );
            // Leaf and root inside the chain are tolerated.
            let mut extended = vec![cert::parse_der(&leaf_der[0]).expect("leaf")];
            extended.extend(chain.iter().cloned());
            extended.extend(anchors.iter().cloned());
            assert_eq!(
                cert::verify_chain(&leaf, &extended, &anchors, now),
                Ok(()),
                "{}",
                v.name
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Rule 1: Authorization
// ---------------------------------------------------------------------------

#[test]
fn missing_or_malformed_authorization_is_refused() {
    let mut v = base();
    remove_header(&mut v.req, "authorization");
    denied(check(&v), "Invalid Authorization header");

    let good = auth_of(&base().req);
    let edits: Vec<String> = vec![
        good.replacen("AWS4-X509-RSA-SHA256", "AWS4-HMAC-SHA256", 1),
        good.replacen("AWS4-X509-RSA-SHA256 ", "AWS4-X509-RSA-SHA256  ", 1),
        good.replacen("Credential=", "Credentials=", 1),
        good.replacen(", SignedHeaders=", ",SignedHeaders=", 1),
        good.replacen(", Signature=", " Signature=", 1),
        good.replacen("aws4_request", "aws4_requests", 1),
        good.replacen("/20261122/", "/2026112/", 1),
        good.replacen("Credential=4", "Credential=x4", 1),
        good.replacen("Signature=a45a", "Signature=A45A", 1),
        good.replacen("Signature=a45a", "Signature=a45", 1),
        format!("{good}, Extra=1"),
        good.replacen("SignedHeaders=", "SignedHeaders=;", 1),
        String::new(),
    ];
    for bad in edits {
        let mut v = base();
        set_header(&mut v.req, "Authorization", &bad);
        denied(check(&v), "Invalid Authorization header");
    }
    // Two Authorization headers.
    let mut v = base();
    v.req.headers.push(("Authorization".into(), good));
    denied(check(&v), "Invalid Authorization header");
}

#[test]
fn algorithm_that_does_not_fit_the_key_fails_the_signature() {
    let mut v = base();
    edit_auth(&mut v.req, "AWS4-X509-RSA-SHA256", "AWS4-X509-ECDSA-SHA256");
    denied(check(&v), "Signature validation failed");
    let mut v = vector("go-ec-p256-int-chain");
    edit_auth(&mut v.req, "AWS4-X509-ECDSA-SHA256", "AWS4-X509-RSA-SHA256");
    denied(check(&v), "Signature validation failed");
}

// ---------------------------------------------------------------------------
// Rule 2: SignedHeaders
// ---------------------------------------------------------------------------

#[test]
fn signed_headers_must_be_sorted_lower_case_and_complete() {
    let mut v = base();
    edit_auth(&mut v.req, "content-type;host", "host;content-type");
    denied(
        check(&v),
        "Invalid SignedHeaders: names must be lower case, sorted and unique",
    );
    let mut v = base();
    edit_auth(&mut v.req, "content-type;host", "Content-Type;host");
    denied(
        check(&v),
        "Invalid SignedHeaders: names must be lower case, sorted and unique",
    );
    let mut v = base();
    edit_auth(
        &mut v.req,
        "content-type;host",
        "content-type;content-type;host",
    );
    denied(
        check(&v),
        "Invalid SignedHeaders: names must be lower case, sorted and unique",
    );

    for (from, to, missing) in [
        (";host;", ";", "host"),
        (";x-amz-date;", ";", "x-amz-date"),
        (";x-amz-x509;", ";", "x-amz-x509"),
        (";x-amz-x509-chain", "", "x-amz-x509-chain"),
    ] {
        let mut v = base();
        edit_auth(&mut v.req, from, to);
        denied(check(&v), &format!("SignedHeaders must include {missing}"));
    }

    let mut v = base();
    edit_auth(
        &mut v.req,
        "amz-sdk-request;",
        "amz-sdk-request;authorization;",
    );
    denied(check(&v), "SignedHeaders must not include authorization");

    let mut v = base();
    edit_auth(&mut v.req, "content-type;", "content-type;FOO;");
    denied(
        check(&v),
        "Invalid SignedHeaders: names must be lower case, sorted and unique",
    );

    let mut v = base();
    remove_header(&mut v.req, "amz-sdk-request");
    denied(
        check(&v),
        "Signed header amz-sdk-request is missing from the request",
    );
}

#[test]
fn unsigned_headers_may_be_added_or_removed() {
    let mut v = base();
    remove_header(&mut v.req, "user-agent");
    v.req.headers.push(("X-Extra".into(), "1".into()));
    assert!(check(&v).is_ok());
}

#[test]
fn minimal_signed_header_set_is_accepted() {
    let mut v = base();
    let serial = v.expected["serial_decimal"]
        .as_str()
        .expect("serial")
        .to_string();
    let signer = vector_signer(&v);
    sign_request(
        &mut v.req,
        &signer,
        &serial,
        &["host", "x-amz-date", "x-amz-x509", "x-amz-x509-chain"],
    );
    assert!(check(&v).is_ok());
}

// ---------------------------------------------------------------------------
// Rule 3: date and scope
// ---------------------------------------------------------------------------

#[test]
fn dates_outside_the_clock_skew_are_refused() {
    let v = base();
    let cfg = config();
    assert!(verify(&v.req, v.now + time::Duration::seconds(300), &cfg).is_ok());
    assert!(verify(&v.req, v.now - time::Duration::seconds(300), &cfg).is_ok());
    denied(
        verify(&v.req, v.now + time::Duration::seconds(301), &cfg),
        "Signature expired",
    );
    denied(
        verify(&v.req, v.now - time::Duration::seconds(301), &cfg),
        "Signature not yet current",
    );
    let mut wide = config();
    wide.clock_skew_seconds = 3600;
    assert!(verify(&v.req, v.now + time::Duration::seconds(3000), &wide).is_ok());
}

#[test]
fn malformed_x_amz_date_is_refused() {
    for bad in [
        "2026-11-22T04:37:20Z",
        "20261122T043720",
        "20261122T256020Z",
        "20261122T043720Z ",
    ] {
        let mut v = base();
        set_header(&mut v.req, "X-Amz-Date", bad);
        let r = check(&v);
        if bad.ends_with(' ') {
            // Trailing space is trimmed by canonicalisation: the date is fine, the signature too.
            assert!(r.is_ok(), "{bad}");
        } else {
            denied(r, "Invalid X-Amz-Date header");
        }
    }
    let mut v = base();
    v.req.headers.push(("X-Amz-Date".into(), v.date.clone()));
    denied(check(&v), "Invalid X-Amz-Date header");
}

#[test]
fn scope_must_match_date_region_and_service() {
    let mut v = base();
    edit_auth(&mut v.req, "/20261122/", "/20261121/");
    denied(check(&v), "Credential should be scoped to a valid date");
    let mut v = base();
    edit_auth(&mut v.req, "/us-east-1/", "/us-west-2/");
    denied(check(&v), "Credential should be scoped to a valid region");
    let mut v = base();
    edit_auth(&mut v.req, "/rolesanywhere/", "/sts/");
    denied(
        check(&v),
        "Credential should be scoped to correct service: 'rolesanywhere'",
    );
    // An endpoint in another region refuses the us-east-1 scope.
    let v = base();
    let mut cfg = config();
    cfg.region = "eu-west-1".into();
    denied(
        verify(&v.req, v.now, &cfg),
        "Credential should be scoped to a valid region",
    );
}

// ---------------------------------------------------------------------------
// Rule 4: leaf certificate and serial
// ---------------------------------------------------------------------------

#[test]
fn credential_serial_must_be_the_leaf_serial() {
    let mut v = base();
    let serial = v.expected["serial_decimal"]
        .as_str()
        .expect("serial")
        .to_string();
    let mut other = serial.clone().into_bytes();
    let last = other.len() - 1;
    other[last] = if other[last] == b'1' { b'2' } else { b'1' };
    edit_auth(
        &mut v.req,
        &serial,
        &String::from_utf8(other).expect("digits"),
    );
    denied(
        check(&v),
        "Credential does not match the certificate serial number",
    );
    // Leading zero: not the canonical decimal.
    let mut v = base();
    edit_auth(&mut v.req, &serial, &format!("0{serial}"));
    denied(
        check(&v),
        "Credential does not match the certificate serial number",
    );
    // The signed reading of the 21-octet serial is refused.
    let mut v = vector("go-serial-huge-20byte-highbit");
    let serial = v.expected["serial_decimal"]
        .as_str()
        .expect("serial")
        .to_string();
    edit_auth(&mut v.req, &serial, "1");
    denied(
        check(&v),
        "Credential does not match the certificate serial number",
    );
}

#[test]
fn x_amz_x509_must_be_padded_base64_der() {
    let v0 = base();
    let leaf_b64 = header(&v0.req, "x-amz-x509").to_string();
    for bad in [
        "AAAA".to_string(),
        "not base64!".to_string(),
        leaf_b64.trim_end_matches('=').to_string(),
        STANDARD.encode(b"0\x03\x02\x01\x00"),
        format!("{leaf_b64}AAAA"),
    ] {
        let mut v = base();
        set_header(&mut v.req, "X-Amz-X509", &bad);
        denied(check(&v), "Invalid X-Amz-X509 header");
    }
}

// ---------------------------------------------------------------------------
// Rule 6: chain
// ---------------------------------------------------------------------------

#[test]
fn untrusted_chain_is_refused() {
    // Another certificate as the only trust anchor.
    for name in [
        "go-rsa2048-int-chain",
        "go-rsa3072-root",
        "pypi-ec-p256-root",
    ] {
        let v = vector(name);
        let mut cfg = config();
        cfg.trust_anchors = pem_certs(&Path::new(VECTORS).join("go-ec-p256-int-chain/chain.pem"));
        if name == "go-rsa2048-int-chain" {
            // That intermediate issued this leaf: the intermediate alone is a valid anchor.
            assert!(verify(&v.req, v.now, &cfg).is_ok());
            cfg.trust_anchors = pem_certs(&Path::new(VECTORS).join("go-rsa3072-root/cert.pem"));
        }
        denied(verify(&v.req, v.now, &cfg), "Untrusted Signing Certificate");
    }
    // Intermediate-issued leaf sent without its chain (re-signed without the header).
    let mut v = base();
    remove_header(&mut v.req, "x-amz-x509-chain");
    let serial = v.expected["serial_decimal"]
        .as_str()
        .expect("serial")
        .to_string();
    let signer = vector_signer(&v);
    sign_request(
        &mut v.req,
        &signer,
        &serial,
        &["content-type", "host", "x-amz-date", "x-amz-x509"],
    );
    denied(check(&v), "Untrusted Signing Certificate");
}

#[test]
fn bad_chain_header_is_refused() {
    for bad in ["AAAA", "@@@", ",", "MIIB,"] {
        let mut v = base();
        set_header(&mut v.req, "X-Amz-X509-Chain", bad);
        resign(&mut v);
        denied(check(&v), "Invalid X-Amz-X509-Chain header");
    }
    let mut v = base();
    let one = header(&v.req, "x-amz-x509-chain").to_string();
    set_header(&mut v.req, "X-Amz-X509-Chain", &vec![one; 11].join(","));
    resign(&mut v);
    denied(check(&v), "Invalid X-Amz-X509-Chain header");
}

#[test]
fn chain_with_leaf_and_root_and_spaces_is_accepted() {
    let mut v = base();
    let leaf = header(&v.req, "x-amz-x509").to_string();
    let chain = header(&v.req, "x-amz-x509-chain").to_string();
    let root = STANDARD.encode(&anchor_ders()[0]);
    set_header(
        &mut v.req,
        "X-Amz-X509-Chain",
        &format!("{root}, {leaf},{chain}"),
    );
    resign(&mut v);
    assert!(check(&v).is_ok());
}

#[test]
fn certificates_outside_their_validity_are_refused() {
    let v = base();
    let mut cfg = config();
    cfg.clock_skew_seconds = 400 * 24 * 3600;
    // Leaves expire 2027-11-22T04:31:45Z.
    let after = OffsetDateTime::from_unix_timestamp(1_827_000_000).expect("time"); // 2027-11-23
    denied(verify(&v.req, after, &cfg), "Certificate is expired");
    // Leaves start 2026-11-22T03:31:45Z.
    let before = v.now - time::Duration::hours(2);
    denied(verify(&v.req, before, &cfg), "Certificate is not yet valid");
    // The anchor starts 2026-11-21T04:31:45Z: the root vector fails the same way a day earlier.
    let r = vector("go-rsa3072-root");
    denied(
        verify(&r.req, r.now - time::Duration::days(2), &cfg),
        "Certificate is not yet valid",
    );
}

// ---------------------------------------------------------------------------
// Rules 7 and 8: content type, body, ARNs, duration, session name
// ---------------------------------------------------------------------------

/// The Go helper's query string for three ARNs.
fn query_of(ta: &str, profile: &str, role: &str) -> String {
    let e = |s: &str| url_encode(s);
    format!(
        "profileArn={}&roleArn={}&trustAnchorArn={}",
        e(profile),
        e(role),
        e(ta)
    )
}

/// RFC 3986 percent-encoding.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The base vector with a new query and/or body, re-signed.
fn with(query: Option<String>, body: Option<&str>) -> Vector {
    let mut v = base();
    if let Some(q) = query {
        v.req.query = q;
    }
    if let Some(b) = body {
        v.req.body = b.as_bytes().to_vec();
    }
    resign(&mut v);
    v
}

#[test]
fn resigned_unmodified_request_is_accepted() {
    assert!(check(&with(None, None)).is_ok());
    assert!(
        check(&with(
            Some(query_of(TA_ARN, PROFILE_ARN, VECTOR_ROLE)),
            None
        ))
        .is_ok()
    );
}

#[test]
fn path_prefix_is_accepted_and_signed_as_sent() {
    let mut v = base();
    v.req.path = "/prefix/sessions".into();
    resign(&mut v);
    let ok = check(&v).expect("accepted");
    assert!(ok.canonical_request.starts_with("POST\n/prefix/sessions\n"));
}

#[test]
fn content_type_must_be_json() {
    let mut v = base();
    set_header(&mut v.req, "Content-Type", "text/plain");
    resign(&mut v);
    invalid(check(&v), "Unsupported Content-Type");
    let mut v = base();
    set_header(
        &mut v.req,
        "Content-Type",
        "application/json; charset=utf-8",
    );
    resign(&mut v);
    assert!(check(&v).is_ok());
}

#[test]
fn body_must_be_a_json_object() {
    for bad in ["not json", "[1]", "\"x\"", "{\"durationSeconds\":"] {
        expect_err(
            check(&with(None, Some(bad))),
            400,
            "SerializationException",
            "Request body must be a JSON object",
        );
    }
    // Empty body: defaults.
    let ok = check(&with(None, Some(""))).expect("empty body");
    assert_eq!(ok.duration_seconds, 3600);
}

#[test]
fn missing_arns_are_validation_errors_naming_the_parameter() {
    for (drop, name) in [
        ("trustAnchorArn", "trustAnchorArn"),
        ("profileArn", "profileArn"),
        ("roleArn", "roleArn"),
    ] {
        let q: Vec<String> = base()
            .req
            .query
            .split('&')
            .filter(|p| !p.starts_with(&format!("{drop}=")))
            .map(String::from)
            .collect();
        invalid(
            check(&with(Some(q.join("&")), None)),
            &format!("Missing required parameter {name}"),
        );
    }
}

#[test]
fn malformed_arns_are_validation_errors() {
    let bad_ta = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/nope";
    invalid(
        check(&with(
            Some(query_of(bad_ta, PROFILE_ARN, VECTOR_ROLE)),
            None,
        )),
        "Invalid trustAnchorArn: must be arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/UUID",
    );
    invalid(
        check(&with(Some(query_of(TA_ARN, TA_ARN, VECTOR_ROLE)), None)),
        "Invalid profileArn: must be arn:PARTITION:rolesanywhere:REGION:ACCOUNT:profile/UUID",
    );
    invalid(
        check(&with(
            Some(query_of(TA_ARN, PROFILE_ARN, "arn:aws:iam::123:role/x")),
            None,
        )),
        "Invalid roleArn: must be arn:PARTITION:iam::ACCOUNT:role/NAME",
    );
    let west = TA_ARN.replace("us-east-1", "us-west-2");
    invalid(
        check(&with(Some(query_of(&west, PROFILE_ARN, VECTOR_ROLE)), None)),
        "Invalid trustAnchorArn: region must be us-east-1",
    );
    let west = PROFILE_ARN.replace("us-east-1", "us-west-2");
    invalid(
        check(&with(Some(query_of(TA_ARN, &west, VECTOR_ROLE)), None)),
        "Invalid profileArn: region must be us-east-1",
    );
    // Given twice in the query.
    let q = format!("{}&roleArn={}", base().req.query, url_encode(VECTOR_ROLE));
    invalid(
        check(&with(Some(q), None)),
        "Invalid roleArn: given more than once",
    );
    // Not a string in the body.
    invalid(
        check(&with(
            Some(String::new()),
            Some(&format!(
                "{{\"profileArn\":\"{PROFILE_ARN}\",\"roleArn\":\"{VECTOR_ROLE}\",\"trustAnchorArn\":5}}"
            )),
        )),
        "Invalid trustAnchorArn: must be a string",
    );
    // Query and body disagree.
    invalid(
        check(&with(
            None,
            Some(&format!(
                "{{\"roleArn\":\"{}\"}}",
                VECTOR_ROLE.replace("oracle", "other")
            )),
        )),
        "Invalid roleArn: query string and body disagree",
    );
}

#[test]
fn unknown_resources_are_not_found_and_unknown_roles_denied() {
    let other_ta = TA_ARN.replace("0f1e2d3c", "00000000");
    expect_err(
        check(&with(
            Some(query_of(&other_ta, PROFILE_ARN, VECTOR_ROLE)),
            None,
        )),
        404,
        "ResourceNotFoundException",
        "Trust anchor not found",
    );
    let other_profile = PROFILE_ARN.replace("1a2b3c4d", "00000000");
    expect_err(
        check(&with(
            Some(query_of(TA_ARN, &other_profile, VECTOR_ROLE)),
            None,
        )),
        404,
        "ResourceNotFoundException",
        "Profile not found",
    );
    let other_role = "arn:aws:iam::123456789012:role/path/other-role";
    denied(
        check(&with(Some(query_of(TA_ARN, PROFILE_ARN, other_role)), None)),
        "Profile does not allow the role",
    );
    // A second configured role is accepted, with a path.
    let v = with(Some(query_of(TA_ARN, PROFILE_ARN, other_role)), None);
    let mut cfg = config();
    cfg.role_arns.push(other_role.into());
    let ok = verify(&v.req, v.now, &cfg).expect("second role");
    assert_eq!(ok.role.name, "other-role");
}

#[test]
fn arns_in_the_body_are_accepted() {
    let body = format!(
        "{{\"durationSeconds\":1200,\"profileArn\":\"{PROFILE_ARN}\",\"roleArn\":\"{VECTOR_ROLE}\",\"trustAnchorArn\":\"{TA_ARN}\"}}"
    );
    let ok = check(&with(Some(String::new()), Some(&body))).expect("body arns");
    assert_eq!(ok.duration_seconds, 1200);
    // Same values in both places are fine.
    let ok = check(&with(None, Some(&body))).expect("both");
    assert_eq!(ok.role_arn, VECTOR_ROLE);
}

#[test]
fn duration_must_be_an_integer_in_range() {
    for d in ["900", "43200", "3600"] {
        let ok = check(&with(None, Some(&format!("{{\"durationSeconds\":{d}}}")))).expect(d);
        assert_eq!(ok.duration_seconds.to_string(), d);
    }
    for d in ["899", "43201", "0", "-1", "99999999999999999999"] {
        invalid(
            check(&with(None, Some(&format!("{{\"durationSeconds\":{d}}}")))),
            "Invalid durationSeconds: must be between 900 and 43200",
        );
    }
    for d in ["\"3600\"", "3600.5", "true", "[3600]"] {
        invalid(
            check(&with(None, Some(&format!("{{\"durationSeconds\":{d}}}")))),
            "Invalid durationSeconds: must be an integer",
        );
    }
    let v = with(None, Some("{\"durationSeconds\":7200}"));
    let mut cfg = config();
    cfg.max_duration = 3600;
    invalid(
        verify(&v.req, v.now, &cfg),
        "Invalid durationSeconds: must be between 900 and 3600",
    );
    // The default is lowered to a smaller maximum.
    let v = with(None, Some("{}"));
    cfg.max_duration = 1800;
    assert_eq!(
        verify(&v.req, v.now, &cfg)
            .expect("default")
            .duration_seconds,
        1800
    );
}

#[test]
fn role_session_name_is_checked_and_can_be_forbidden() {
    for ok_name in ["ab", "x+=,.@-_9", &"n".repeat(64)] {
        let body = format!("{{\"durationSeconds\":3600,\"roleSessionName\":\"{ok_name}\"}}");
        let ok = check(&with(None, Some(&body))).expect(ok_name);
        assert_eq!(ok.session_name, ok_name);
    }
    for bad in [
        "\"a\"",
        &format!("\"{}\"", "n".repeat(65)),
        "\"bad name\"",
        "\"é\"",
        "5",
        "\"a/b\"",
    ] {
        let body = format!("{{\"durationSeconds\":3600,\"roleSessionName\":{bad}}}");
        invalid(
            check(&with(None, Some(&body))),
            "Invalid roleSessionName: must match [\\w+=,.@-]{2,64}",
        );
    }
    let v = vector("go-rsa4096-int-chain-duration900-session-name");
    let mut cfg = config();
    cfg.allow_role_session_name = false;
    denied(
        verify(&v.req, v.now, &cfg),
        "Not authorized to set roleSessionName",
    );
    // Without a name the forbidding profile still accepts.
    let b = base();
    assert!(verify(&b.req, b.now, &cfg).is_ok());
}

#[test]
fn checks_run_in_the_documented_order() {
    // Bad signature and bad ARN: the signature wins (rule 5 before rule 7).
    let mut v = with(Some(query_of(TA_ARN, PROFILE_ARN, "bad")), None);
    v.req.body.push(b' ');
    denied(check(&v), "Signature validation failed");
    // Wrong serial and expired date: the date wins (rule 3 before rule 4).
    let mut v = base();
    let serial = v.expected["serial_decimal"]
        .as_str()
        .expect("serial")
        .to_string();
    edit_auth(&mut v.req, &serial, "1");
    denied(
        verify(&v.req, v.now + time::Duration::hours(1), &config()),
        "Signature expired",
    );
}

// ---------------------------------------------------------------------------
// A small PKI made here (CA leaf, pathLen, keyUsage, algorithms)
// ---------------------------------------------------------------------------

/// Minimal DER writer.
mod der {
    /// Tag, definite length, content.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }
    /// SEQUENCE.
    pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }
    /// SET.
    pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x31, &parts.concat())
    }
    /// OBJECT IDENTIFIER.
    pub fn oid(arcs: &[u64]) -> Vec<u8> {
        let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
        for &arc in &arcs[2..] {
            let mut chunk = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                chunk.push(0x80 | (rest & 0x7f) as u8);
                rest >>= 7;
            }
            chunk.reverse();
            body.extend(chunk);
        }
        tlv(0x06, &body)
    }
    /// Non-negative INTEGER from big-endian bytes.
    pub fn uint(bytes: &[u8]) -> Vec<u8> {
        let mut body = bytes.to_vec();
        if body.first().is_some_and(|b| b & 0x80 != 0) {
            body.insert(0, 0);
        }
        tlv(0x02, &body)
    }
    /// BOOLEAN.
    pub fn boolean(v: bool) -> Vec<u8> {
        tlv(0x01, &[if v { 0xff } else { 0 }])
    }
    /// OCTET STRING.
    pub fn octets(v: &[u8]) -> Vec<u8> {
        tlv(0x04, v)
    }
    /// BIT STRING with no unused bits.
    pub fn bits(v: &[u8]) -> Vec<u8> {
        let mut body = vec![0];
        body.extend_from_slice(v);
        tlv(0x03, &body)
    }
    /// UTF8String.
    pub fn utf8(s: &str) -> Vec<u8> {
        tlv(0x0c, s.as_bytes())
    }
    /// UTCTime.
    pub fn utc_time(s: &str) -> Vec<u8> {
        tlv(0x17, s.as_bytes())
    }
    /// Context-specific constructed tag `[n]`.
    pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
        tlv(0xa0 | n, content)
    }
    /// NULL.
    pub fn null() -> Vec<u8> {
        vec![0x05, 0x00]
    }
    /// A Name with one CN.
    pub fn name(cn: &str) -> Vec<u8> {
        seq(&[set(&[seq(&[oid(&[2, 5, 4, 3]), utf8(cn)])])])
    }
}

/// ecdsa-with-SHA256.
const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
/// ecdsa-with-SHA384.
const OID_ECDSA_SHA384: &[u64] = &[1, 2, 840, 10045, 4, 3, 3];
/// sha384WithRSAEncryption.
const OID_RSA_SHA384: &[u64] = &[1, 2, 840, 113549, 1, 1, 12];
/// sha512WithRSAEncryption.
const OID_RSA_SHA512: &[u64] = &[1, 2, 840, 113549, 1, 1, 13];
/// keyUsage bits (first octet): digitalSignature, keyCertSign.
const KU_DIGITAL_SIGNATURE: u8 = 0x80;
/// keyUsage keyCertSign bit.
const KU_KEY_CERT_SIGN: u8 = 0x04;

/// A key that can sign certificates and requests.
struct TestKey {
    /// The private key.
    signer: Signer,
    /// SubjectPublicKeyInfo DER.
    spki: Vec<u8>,
    /// signatureAlgorithm OID of certificates it signs.
    sig_alg: &'static [u64],
    /// Whether the key is RSA.
    rsa: bool,
    /// RSA certificate-signature padding and digest.
    rsa_padding: &'static dyn rsig::RsaEncoding,
}

/// Key constructors and certificate signing.
impl TestKey {
    /// A fresh P-256 key signing with ecdsa-with-SHA256.
    fn p256() -> Self {
        Self::ec(
            &rsig::ECDSA_P256_SHA256_ASN1_SIGNING,
            &[1, 2, 840, 10045, 3, 1, 7],
            OID_ECDSA_SHA256,
        )
    }

    /// A fresh P-384 key signing with ecdsa-with-SHA384.
    fn p384_sha384() -> Self {
        Self::ec(
            &rsig::ECDSA_P384_SHA384_ASN1_SIGNING,
            &[1, 3, 132, 0, 34],
            OID_ECDSA_SHA384,
        )
    }

    /// A fresh EC key.
    fn ec(
        alg: &'static rsig::EcdsaSigningAlgorithm,
        curve: &[u64],
        sig_alg: &'static [u64],
    ) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key");
        let spki = der::seq(&[
            der::seq(&[der::oid(&[1, 2, 840, 10045, 2, 1]), der::oid(curve)]),
            der::bits(key.public_key().as_ref()),
        ]);
        Self {
            signer: Signer::Ec(key),
            spki,
            sig_alg,
            rsa: false,
            rsa_padding: &rsig::RSA_PKCS1_SHA256,
        }
    }

    /// The RSA key of a vector, signing certificates with `sig_alg`.
    fn rsa_from_vector(
        name: &str,
        sig_alg: &'static [u64],
        padding: &'static dyn rsig::RsaEncoding,
    ) -> Self {
        let v = vector(name);
        let Signer::Rsa(key) = vector_signer(&v) else {
            panic!("{name} is not RSA");
        };
        let leaf = pem_certs(&v.dir.join("cert.pem"));
        let spki = cert::parse_der(&leaf[0])
            .expect("leaf")
            .public_key()
            .raw
            .to_vec();
        Self {
            signer: Signer::Rsa(key),
            spki,
            sig_alg,
            rsa: true,
            rsa_padding: padding,
        }
    }

    /// Signs a TBS certificate.
    fn sign_cert(&self, tbs: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ec(k) => k.sign(&rng, tbs).expect("sign").as_ref().to_vec(),
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(self.rsa_padding, &rng, tbs, &mut sig).expect("sign");
                sig
            }
        }
    }

    /// The signatureAlgorithm of certificates this key signs.
    fn alg_id(&self) -> Vec<u8> {
        if self.rsa {
            der::seq(&[der::oid(self.sig_alg), der::null()])
        } else {
            der::seq(&[der::oid(self.sig_alg)])
        }
    }
}

/// What a certificate made here says.
struct CertSpec<'a> {
    /// Serial INTEGER content.
    serial: &'a [u8],
    /// Subject CN.
    subject: &'a str,
    /// Issuer CN.
    issuer: &'a str,
    /// notBefore (UTCTime).
    not_before: &'a str,
    /// notAfter (UTCTime).
    not_after: &'a str,
    /// `None`: no basicConstraints; `Some((ca, path_len))`.
    basic: Option<(bool, Option<u8>)>,
    /// keyUsage first octet, if any.
    key_usage: Option<u8>,
}

/// A leaf-like default.
impl Default for CertSpec<'_> {
    /// Serial 1, `leaf` issued by `root`, valid 2026-11-01 to 2028-11-01.
    fn default() -> Self {
        Self {
            serial: &[0x01],
            subject: "leaf",
            issuer: "root",
            not_before: "261101000000Z",
            not_after: "281101000000Z",
            basic: None,
            key_usage: None,
        }
    }
}

/// Builds and signs a certificate.
fn make_cert(spec: &CertSpec<'_>, subject_key: &TestKey, issuer_key: &TestKey) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some((ca, path_len)) = spec.basic {
        let mut inner = Vec::new();
        if ca {
            inner.push(der::boolean(true));
        }
        if let Some(n) = path_len {
            inner.push(der::uint(&[n]));
        }
        exts.push(der::seq(&[
            der::oid(&[2, 5, 29, 19]),
            der::boolean(true),
            der::octets(&der::seq(&inner)),
        ]));
    }
    if let Some(ku) = spec.key_usage {
        let unused = ku.trailing_zeros().min(7) as u8;
        let ku_der = der::tlv(0x03, &[unused, ku]);
        exts.push(der::seq(&[
            der::oid(&[2, 5, 29, 15]),
            der::boolean(true),
            der::octets(&ku_der),
        ]));
    }
    let mut tbs_parts = vec![
        der::explicit(0, &der::uint(&[2])),
        der::uint(spec.serial),
        issuer_key.alg_id(),
        der::name(spec.issuer),
        der::seq(&[
            der::utc_time(spec.not_before),
            der::utc_time(spec.not_after),
        ]),
        der::name(spec.subject),
        subject_key.spki.clone(),
    ];
    if !exts.is_empty() {
        tbs_parts.push(der::explicit(3, &der::seq(&exts)));
    }
    let tbs = der::seq(&tbs_parts);
    let sig = issuer_key.sign_cert(&tbs);
    der::seq(&[tbs, issuer_key.alg_id(), der::bits(&sig)])
}

/// A CA certificate spec.
fn ca_spec<'a>(subject: &'a str, issuer: &'a str, path_len: Option<u8>) -> CertSpec<'a> {
    CertSpec {
        serial: &[0x10],
        subject,
        issuer,
        basic: Some((true, path_len)),
        key_usage: Some(KU_KEY_CERT_SIGN | 0x02),
        ..CertSpec::default()
    }
}

/// A leaf certificate spec.
fn leaf_spec<'a>(issuer: &'a str) -> CertSpec<'a> {
    CertSpec {
        serial: &[0x00, 0x8a, 0x01],
        subject: "made-leaf",
        issuer,
        basic: Some((false, None)),
        key_usage: Some(KU_DIGITAL_SIGNATURE),
        ..CertSpec::default()
    }
}

/// A request from `leaf_key`/`leaf` with `chain`, dated like the vectors.
fn made_request(leaf_key: &TestKey, leaf: &[u8], chain: &[&[u8]]) -> Vector {
    let mut v = base();
    set_header(&mut v.req, "X-Amz-X509", &STANDARD.encode(leaf));
    let mut signed = vec!["content-type", "host", "x-amz-date", "x-amz-x509"];
    if chain.is_empty() {
        remove_header(&mut v.req, "x-amz-x509-chain");
    } else {
        let joined: Vec<String> = chain.iter().map(|c| STANDARD.encode(c)).collect();
        set_header(&mut v.req, "X-Amz-X509-Chain", &joined.join(","));
        signed.push("x-amz-x509-chain");
    }
    let serial = cert::serial_decimal(cert::parse_der(leaf).expect("made leaf").raw_serial());
    sign_request(&mut v.req, &leaf_key.signer, &serial, &signed);
    v
}

/// Verifies a made request against `anchor` as the only trust anchor.
fn check_made(v: &Vector, anchor: &[u8]) -> Result<crate::verify::Verified, ApiError> {
    let mut cfg = config();
    cfg.trust_anchors = vec![anchor.to_vec()];
    verify(&v.req, v.now, &cfg)
}

/// Root, intermediate and leaf with their keys.
struct Pki {
    /// Root key.
    root_key: TestKey,
    /// Root certificate.
    root: Vec<u8>,
    /// Intermediate key.
    int_key: TestKey,
    /// Intermediate certificate.
    int: Vec<u8>,
    /// Leaf key.
    leaf_key: TestKey,
    /// Leaf certificate.
    leaf: Vec<u8>,
}

/// A root (pathLen `root_len`), an intermediate and a leaf.
fn pki(root_len: Option<u8>, int_spec: CertSpec<'_>, leaf_spec: CertSpec<'_>) -> Pki {
    let root_key = TestKey::p256();
    let root = make_cert(&ca_spec("root", "root", root_len), &root_key, &root_key);
    let int_key = TestKey::p256();
    let int = make_cert(&int_spec, &int_key, &root_key);
    let leaf_key = TestKey::p256();
    let leaf = make_cert(&leaf_spec, &leaf_key, &int_key);
    Pki {
        root_key,
        root,
        int_key,
        int,
        leaf_key,
        leaf,
    }
}

#[test]
fn made_pki_request_is_accepted() {
    let p = pki(Some(1), ca_spec("int", "root", Some(0)), leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    let ok = check_made(&v, &p.root).expect("made pki");
    assert_eq!(ok.source_identity, "CN=made-leaf");
    assert_eq!(ok.serial_hex, "8a01");
    assert_eq!(ok.serial_decimal, "35329");
    // The intermediate alone as anchor.
    let v = made_request(&p.leaf_key, &p.leaf, &[]);
    assert!(check_made(&v, &p.int).is_ok());
    // Without the chain, the root alone is not enough.
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
}

#[test]
fn ca_leaf_is_untrusted() {
    let spec = CertSpec {
        basic: Some((true, None)),
        key_usage: Some(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN),
        ..leaf_spec("int")
    };
    let p = pki(None, ca_spec("int", "root", None), spec);
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
}

#[test]
fn leaf_without_basic_constraints_is_accepted() {
    let spec = CertSpec {
        basic: None,
        ..leaf_spec("int")
    };
    let p = pki(None, ca_spec("int", "root", None), spec);
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    assert!(check_made(&v, &p.root).is_ok());
}

#[test]
fn issuer_must_be_a_ca_with_key_cert_sign() {
    // Intermediate without CA:TRUE.
    let int = CertSpec {
        basic: Some((false, None)),
        ..ca_spec("int", "root", None)
    };
    let p = pki(None, int, leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    // Intermediate without basicConstraints.
    let int = CertSpec {
        basic: None,
        ..ca_spec("int", "root", None)
    };
    let p = pki(None, int, leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    // Intermediate whose keyUsage lacks keyCertSign.
    let int = CertSpec {
        key_usage: Some(KU_DIGITAL_SIGNATURE),
        ..ca_spec("int", "root", None)
    };
    let p = pki(None, int, leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    // Intermediate with no keyUsage at all is fine.
    let int = CertSpec {
        key_usage: None,
        ..ca_spec("int", "root", None)
    };
    let p = pki(None, int, leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    assert!(check_made(&v, &p.root).is_ok());
}

#[test]
fn path_length_constraints_are_respected() {
    // Root pathLen 0 allows no intermediate.
    let p = pki(Some(0), ca_spec("int", "root", None), leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    // Intermediate pathLen 0 may issue the leaf directly.
    let p = pki(Some(1), ca_spec("int", "root", Some(0)), leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    assert!(check_made(&v, &p.root).is_ok());
    // Two intermediates under a root with pathLen 1: refused; with pathLen 2: accepted.
    for (root_len, accepted) in [(1u8, false), (2u8, true)] {
        let root_key = TestKey::p256();
        let root = make_cert(
            &ca_spec("root", "root", Some(root_len)),
            &root_key,
            &root_key,
        );
        let k1 = TestKey::p256();
        let i1 = make_cert(&ca_spec("int1", "root", None), &k1, &root_key);
        let k2 = TestKey::p256();
        let i2 = make_cert(&ca_spec("int2", "int1", None), &k2, &k1);
        let lk = TestKey::p256();
        let leaf = make_cert(&leaf_spec("int2"), &lk, &k2);
        // Chain order does not matter.
        let v = made_request(&lk, &leaf, &[&i1, &i2]);
        let r = check_made(&v, &root);
        if accepted {
            assert!(r.is_ok(), "{r:?}");
        } else {
            denied(r, "Untrusted Signing Certificate");
        }
    }
}

#[test]
fn wrong_issuer_signature_or_name_is_untrusted() {
    let p = pki(None, ca_spec("int", "root", None), leaf_spec("int"));
    // Same name, other key.
    let impostor_key = TestKey::p256();
    let impostor = make_cert(&ca_spec("int", "root", None), &impostor_key, &p.root_key);
    let v = made_request(&p.leaf_key, &p.leaf, &[&impostor]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    // Right key, other name.
    let renamed = make_cert(&ca_spec("int-x", "root", None), &p.int_key, &p.root_key);
    let v = made_request(&p.leaf_key, &p.leaf, &[&renamed]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    // A corrupted signature on the intermediate.
    let mut broken = p.int.clone();
    let last = broken.len() - 3;
    broken[last] ^= 0x55;
    let v = made_request(&p.leaf_key, &p.leaf, &[&broken]);
    let r = check_made(&v, &p.root);
    assert!(r.is_err());
    // The impostor next to the real intermediate: the real path is found.
    let v = made_request(&p.leaf_key, &p.leaf, &[&impostor, &p.int]);
    assert!(check_made(&v, &p.root).is_ok());
}

#[test]
fn expired_intermediate_or_anchor_is_refused() {
    let int = CertSpec {
        not_after: "261120000000Z",
        ..ca_spec("int", "root", None)
    };
    let p = pki(None, int, leaf_spec("int"));
    let v = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    denied(check_made(&v, &p.root), "Certificate is expired");

    let root_key = TestKey::p256();
    let root = make_cert(
        &CertSpec {
            not_before: "261201000000Z",
            ..ca_spec("root", "root", None)
        },
        &root_key,
        &root_key,
    );
    let lk = TestKey::p256();
    let leaf = make_cert(&leaf_spec("root"), &lk, &root_key);
    let v = made_request(&lk, &leaf, &[]);
    denied(check_made(&v, &root), "Certificate is not yet valid");
}

#[test]
fn sha384_and_sha512_certificate_signatures_verify() {
    // P-384 root signing with ecdsa-with-SHA384.
    let root_key = TestKey::p384_sha384();
    let root = make_cert(&ca_spec("root", "root", None), &root_key, &root_key);
    let lk = TestKey::p256();
    let leaf = make_cert(&leaf_spec("root"), &lk, &root_key);
    assert!(check_made(&made_request(&lk, &leaf, &[]), &root).is_ok());
    // RSA roots signing with sha384WithRSA and sha512WithRSA.
    for (oid, pad) in [
        (
            OID_RSA_SHA384,
            &rsig::RSA_PKCS1_SHA384 as &'static dyn rsig::RsaEncoding,
        ),
        (OID_RSA_SHA512, &rsig::RSA_PKCS1_SHA512),
    ] {
        let root_key = TestKey::rsa_from_vector("go-rsa3072-root", oid, pad);
        let root = make_cert(&ca_spec("rsa-root", "rsa-root", None), &root_key, &root_key);
        let lk = TestKey::p256();
        let leaf = make_cert(&leaf_spec("rsa-root"), &lk, &root_key);
        assert!(check_made(&made_request(&lk, &leaf, &[]), &root).is_ok());
    }
}

#[test]
fn non_v3_leaf_is_refused() {
    let p = pki(None, ca_spec("int", "root", None), leaf_spec("int"));
    // Rewrite the leaf as v1: build the TBS without the version and extensions.
    let tbs = der::seq(&[
        der::uint(&[0x05]),
        p.int_key.alg_id(),
        der::name("int"),
        der::seq(&[
            der::utc_time("261101000000Z"),
            der::utc_time("281101000000Z"),
        ]),
        der::name("v1-leaf"),
        p.leaf_key.spki.clone(),
    ]);
    let sig = p.int_key.sign_cert(&tbs);
    let v1 = der::seq(&[tbs, p.int_key.alg_id(), der::bits(&sig)]);
    let v = made_request(&p.leaf_key, &v1, &[&p.int]);
    denied(check_made(&v, &p.root), "Certificate must be X.509 v3");
}

#[test]
fn arbitrary_garbage_never_panics() {
    let v = base();
    let cfg = config();
    let mut seeds: Vec<Vec<u8>> = vec![Vec::new(), vec![0x30], vec![0x30, 0x82, 0xff, 0xff]];
    seeds.push(header(&v.req, "x-amz-x509").as_bytes().to_vec());
    for (i, seed) in seeds.iter().enumerate() {
        for cut in [0, seed.len() / 3, seed.len()] {
            let mut m = base();
            let piece = STANDARD.encode(&seed[..cut]);
            set_header(&mut m.req, "X-Amz-X509", &piece);
            set_header(&mut m.req, "X-Amz-X509-Chain", &format!("{piece},,{i}"));
            set_header(
                &mut m.req,
                "Authorization",
                &format!("AWS4-X509-RSA-SHA256 Credential=1/{i}"),
            );
            let _ = verify(&m.req, m.now, &cfg);
            let mut m = base();
            m.req.query = "%%%&=&==&%ff=%fe".into();
            m.req.body = vec![0xff, 0xfe, b'{'];
            let _ = verify(&m.req, m.now, &cfg);
        }
    }
    let _ = parse_authorization("AWS4-X509-RSA-SHA256 Credential=////, SignedHeaders=, Signature=");
    let _ = parse_authorization(
        "AWS4-X509-RSA-SHA256 Credential=1/20261122/r/s/aws4_request, SignedHeaders=a, Signature=0",
    );
}

#[test]
fn decoded_mldsa_keys_are_reused_only_for_the_exact_same_key() {
    let mut seen = 0;
    for v in all_vectors() {
        let sts = read(&v.dir.join("string-to-sign.txt"));
        let leaf_der = &pem_certs(&v.dir.join("cert.pem"))[0];
        let leaf = cert::parse_der(leaf_der).expect("leaf");
        let key = PublicKey::from_spki(leaf.public_key()).expect("key");
        let (Some(set), PublicKey::MlDsa(_, encoded)) = (key.mldsa_set(), &key) else {
            continue;
        };
        seen += 1;
        let auth = auth_of(&v.req);
        let sig = hex::decode(auth.split_once("Signature=").expect("sig").1).expect("hex");
        // Twice: decoded, then from the cache.
        for _ in 0..2 {
            assert!(
                key.verify(Scheme::MlDsa(set), sts.as_bytes(), &sig),
                "{}",
                v.name
            );
        }
        // One byte of rho, then one of t1, changed after the key is cached.
        for pos in [0, encoded.len() - 1] {
            let mut other = encoded.clone();
            other[pos] ^= 0x01;
            let other = PublicKey::MlDsa(set, other);
            assert!(
                !other.verify(Scheme::MlDsa(set), sts.as_bytes(), &sig),
                "{} pos {pos}",
                v.name
            );
        }
        let short = PublicKey::MlDsa(set, encoded[1..].to_vec());
        assert!(!short.verify(Scheme::MlDsa(set), sts.as_bytes(), &sig));
        assert!(key.verify(Scheme::MlDsa(set), sts.as_bytes(), &sig));
    }
    assert!(seen >= 3, "ML-DSA vectors: {seen}");
}

/// A P-256 or P-384 SubjectPublicKeyInfo for `point` (SEC1, either form).
fn ec_spki(curve: &[u64], point: &[u8]) -> Vec<u8> {
    der::seq(&[
        der::seq(&[der::oid(&[1, 2, 840, 10045, 2, 1]), der::oid(curve)]),
        der::bits(point),
    ])
}

#[test]
fn ecdsa_verifies_every_curve_and_digest_pair_and_refuses_a_flipped_byte() {
    use ecdsa::signature::hazmat::PrehashSigner;
    use x509_parser::prelude::FromDer;
    let msg = b"AWS4-X509-ECDSA-SHA256\n20261202T000000Z\nscope\nhash";
    // (curve OID, uncompressed point, compressed point, DER signature per digest)
    type Signed = (&'static [u64], Vec<u8>, Vec<u8>, Vec<(Hash, Vec<u8>)>);
    let hashes = [Hash::Sha256, Hash::Sha384, Hash::Sha512];
    let digest = |h: Hash| -> Vec<u8> {
        use sha2::Digest as _;
        match h {
            Hash::Sha256 => sha2::Sha256::digest(msg).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(msg).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(msg).to_vec(),
        }
    };
    let p256 = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("p256 key");
    let p384 = p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).expect("p384 key");
    let keys: Vec<Signed> = vec![
        (
            &[1, 2, 840, 10045, 3, 1, 7],
            p256.verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
            p256.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
            hashes
                .iter()
                .map(|&h| {
                    let s: p256::ecdsa::Signature = p256.sign_prehash(&digest(h)).expect("sign");
                    (h, s.to_der().as_bytes().to_vec())
                })
                .collect(),
        ),
        (
            &[1, 3, 132, 0, 34],
            p384.verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
            p384.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
            hashes
                .iter()
                .map(|&h| {
                    let s: p384::ecdsa::Signature = p384.sign_prehash(&digest(h)).expect("sign");
                    (h, s.to_der().as_bytes().to_vec())
                })
                .collect(),
        ),
    ];
    for (curve, uncompressed, compressed, sigs) in &keys {
        for point in [uncompressed, compressed] {
            let spki = ec_spki(curve, point);
            let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).expect("spki");
            let key = PublicKey::from_spki(&info).expect("EC key");
            assert!(key.is_ec());
            for (hash, sig) in sigs {
                let scheme = Scheme::Ecdsa(*hash);
                assert!(key.verify(scheme, msg, sig), "{curve:?} {hash:?}");
                let mut other = msg.to_vec();
                other[3] ^= 1;
                assert!(
                    !key.verify(scheme, &other, sig),
                    "{curve:?} {hash:?} message"
                );
                let mut bad = sig.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(
                    !key.verify(scheme, msg, &bad),
                    "{curve:?} {hash:?} signature"
                );
                // The same signature under another digest does not verify.
                for other_hash in hashes.iter().filter(|h| *h != hash) {
                    assert!(!key.verify(Scheme::Ecdsa(*other_hash), msg, sig));
                }
                assert!(!key.verify(Scheme::RsaPkcs1(*hash), msg, sig));
            }
        }
    }
}

#[test]
fn a_remembered_certificate_signature_never_vouches_for_other_bytes() {
    let p = pki(None, ca_spec("int", "root", None), leaf_spec("int"));
    let good = made_request(&p.leaf_key, &p.leaf, &[&p.int]);
    // Twice: the second time the CA signatures come from memory.
    assert!(check_made(&good, &p.root).is_ok());
    assert!(check_made(&good, &p.root).is_ok());
    // The leaf's signature with one byte changed, and the intermediate's: each is
    // checked afresh and refused, however often the good bytes verified.
    let last = p.leaf.len() - 1;
    let mut bad_leaf = p.leaf.clone();
    bad_leaf[last] ^= 1;
    let v = made_request(&p.leaf_key, &bad_leaf, &[&p.int]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    let last = p.int.len() - 1;
    let mut bad_int = p.int.clone();
    bad_int[last] ^= 1;
    let v = made_request(&p.leaf_key, &p.leaf, &[&bad_int]);
    denied(check_made(&v, &p.root), "Untrusted Signing Certificate");
    // The same leaf under another root with the same name: not the remembered key.
    let other = pki(None, ca_spec("int", "root", None), leaf_spec("int"));
    denied(
        check_made(&good, &other.root),
        "Untrusted Signing Certificate",
    );
    // And the good bytes still verify.
    assert!(check_made(&good, &p.root).is_ok());
}
