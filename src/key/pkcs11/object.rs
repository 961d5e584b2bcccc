//! Certificate and private-key objects, and the public half of a key
//! (its own attributes, the public-key object, or the certificate with its `CKA_ID`).

#[allow(clippy::wildcard_imports, reason = "one module split into files")]
use super::*;

pub(super) fn find(
    ts: &TokenSession,
    template: &[Attribute],
) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
    ts.session
        .find_objects(template)
        .map_err(|e| Pkcs11Error::Token {
            uri: ts.token.uri_string(),
            function: "C_FindObjects",
            rv: rv_name(&e),
        })
}

pub(super) fn attributes(
    ts: &TokenSession,
    handle: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>, Pkcs11Error> {
    ts.session
        .get_attributes(handle, types)
        .map_err(|e| Pkcs11Error::Token {
            uri: ts.token.uri_string(),
            function: "C_GetAttributeValue",
            rv: rv_name(&e),
        })
}

pub(super) fn object_template(
    class: ObjectClass,
    id: Option<&[u8]>,
    label: Option<&str>,
) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if class == ObjectClass::CERTIFICATE {
        t.push(Attribute::CertificateType(CertificateType::X_509));
    }
    if let Some(id) = id {
        t.push(Attribute::Id(id.to_vec()));
    }
    if let Some(label) = label {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    t
}

/// A certificate object on a token.
pub(super) struct TokenCert {
    pub(super) certificate: Certificate,
    pub(super) id: Vec<u8>,
    pub(super) uri: String,
}

pub(super) fn read_certs(
    ts: &TokenSession,
    id: Option<&[u8]>,
    label: Option<&str>,
) -> Result<Vec<TokenCert>, Pkcs11Error> {
    let mut out = Vec::new();
    for handle in find(ts, &object_template(ObjectClass::CERTIFICATE, id, label))? {
        let mut value = None;
        let mut obj_id = Vec::new();
        let mut obj_label = String::new();
        for a in attributes(
            ts,
            handle,
            &[
                AttributeType::Value,
                AttributeType::Id,
                AttributeType::Label,
            ],
        )? {
            match a {
                Attribute::Value(v) => value = Some(v),
                Attribute::Id(v) => obj_id = v,
                Attribute::Label(v) => obj_label = String::from_utf8_lossy(&v).into_owned(),
                _ => {}
            }
        }
        let uri = ts.token.object_uri(&obj_id, &obj_label, ObjectType::Cert);
        let Some(der) = value else {
            continue;
        };
        match Certificate::from_der(&der, Path::new(&uri)) {
            Ok(certificate) => out.push(TokenCert {
                certificate,
                id: obj_id,
                uri,
            }),
            // A certificate iamra cannot use (another key type) is not a candidate.
            Err(e) => {
                tracing::debug!(certificate = %uri, error = %crate::error::chain(&e), "skipped")
            }
        }
    }
    Ok(out)
}

/// What the companion object is searched by: a `type` naming the other object is
/// not a filter (`--certificate 'pkcs11:…;type=private'` finds the certificate
/// with the same id and label).
pub(crate) fn check_type(uri: &Pkcs11Uri, field: crate::error::Field) -> Result<(), Pkcs11Error> {
    match uri.object_type {
        Some(ObjectType::SecretKey | ObjectType::Data) => Err(Pkcs11Error::BadUri {
            field: Some(field),
            source: UriError::BadValue {
                attribute: "type".into(),
                reason: "names neither a certificate nor a key (use cert, private or public)",
            },
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------
// Public keys

pub(super) const OID_P256_DER: &[u8] =
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const OID_P384_DER: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

pub(super) fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

pub(super) fn der_uint(magnitude: &[u8], out: &mut Vec<u8>) {
    let m: &[u8] = {
        let start = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len());
        &magnitude[start..]
    };
    let pad = m.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_len(m.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
}

/// PKCS#1 `RSAPublicKey` DER from the modulus and exponent.
pub(super) fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> PublicKey {
    let mut content = Vec::new();
    der_uint(modulus, &mut content);
    der_uint(exponent, &mut content);
    let mut pkcs1 = vec![0x30];
    der_len(content.len(), &mut pkcs1);
    pkcs1.extend(content);
    let m = modulus
        .iter()
        .skip_while(|b| **b == 0)
        .copied()
        .collect::<Vec<u8>>();
    let bits = m
        .first()
        .map_or(0, |b| m.len() * 8 - b.leading_zeros() as usize);
    PublicKey::Rsa { pkcs1, bits }
}

/// `CKA_EC_POINT`: a DER OCTET STRING holding the point, or (some tokens) the raw point.
pub(super) fn ec_point(value: &[u8], point_len: usize) -> Option<Vec<u8>> {
    if value.len() == point_len && value.first() == Some(&0x04) {
        return Some(value.to_vec());
    }
    let mut header = vec![0x04];
    der_len(point_len, &mut header);
    value
        .strip_prefix(header.as_slice())
        .filter(|p| p.len() == point_len && p.first() == Some(&0x04))
        .map(<[u8]>::to_vec)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
    Rsa,
    P256,
    P384,
}

/// A private-key object and what is known of its public half.
pub(super) struct KeyObject {
    pub(super) handle: ObjectHandle,
    pub(super) id: Vec<u8>,
    pub(super) uri: String,
    pub(super) kind: Result<KeyKind, String>,
    pub(super) public_key: Option<PublicKey>,
    pub(super) always_authenticate: bool,
}

pub(super) fn read_key(ts: &TokenSession, handle: ObjectHandle) -> Result<KeyObject, Pkcs11Error> {
    let mut id = Vec::new();
    let mut label = String::new();
    let mut key_type = None;
    let mut always_authenticate = false;
    let mut modulus = None;
    let mut exponent = None;
    let mut params = None;
    let mut point = None;
    let wanted = [
        AttributeType::Id,
        AttributeType::Label,
        AttributeType::KeyType,
        AttributeType::AlwaysAuthenticate,
        AttributeType::Modulus,
        AttributeType::PublicExponent,
        AttributeType::EcParams,
        AttributeType::EcPoint,
    ];
    for a in attributes(ts, handle, &wanted)? {
        match a {
            Attribute::Id(v) => id = v,
            Attribute::Label(v) => label = String::from_utf8_lossy(&v).into_owned(),
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::AlwaysAuthenticate(b) => always_authenticate = b,
            Attribute::Modulus(v) if !v.is_empty() => modulus = Some(v),
            Attribute::PublicExponent(v) if !v.is_empty() => exponent = Some(v),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) if !v.is_empty() => point = Some(v),
            _ => {}
        }
    }
    let uri = ts.token.object_uri(&id, &label, ObjectType::Private);
    let kind = match key_type {
        Some(KeyType::RSA) => Ok(KeyKind::Rsa),
        Some(KeyType::EC) => match params.as_deref() {
            Some(OID_P256_DER) => Ok(KeyKind::P256),
            Some(OID_P384_DER) => Ok(KeyKind::P384),
            Some(p) if p == [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23] => Err("EC P-521".into()),
            _ => Err("EC (curve not P-256 or P-384)".into()),
        },
        Some(KeyType::EC_EDWARDS) => Err("EdDSA".into()),
        Some(other) => Err(format!("{other}")),
        None => Err("unknown".into()),
    };
    let mut public_key = match (&kind, modulus, exponent, point) {
        (Ok(KeyKind::Rsa), Some(n), Some(e), _) => Some(rsa_public_key(&n, &e)),
        (Ok(KeyKind::P256), _, _, Some(p)) => ec_point(&p, 65).map(PublicKey::P256),
        (Ok(KeyKind::P384), _, _, Some(p)) => ec_point(&p, 97).map(PublicKey::P384),
        _ => None,
    };
    if public_key.is_none() && kind.is_ok() && !id.is_empty() {
        public_key = companion_public_key(ts, &id, kind.as_ref().ok().copied())?;
    }
    Ok(KeyObject {
        handle,
        id,
        uri,
        kind,
        public_key,
        always_authenticate,
    })
}

/// The public key of the private key with `id`, from the public-key object or the
/// certificate with the same `CKA_ID`.
pub(super) fn companion_public_key(
    ts: &TokenSession,
    id: &[u8],
    kind: Option<KeyKind>,
) -> Result<Option<PublicKey>, Pkcs11Error> {
    for handle in find(
        ts,
        &object_template(ObjectClass::PUBLIC_KEY, Some(id), None),
    )? {
        let mut modulus = None;
        let mut exponent = None;
        let mut point = None;
        let types = [
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcPoint,
        ];
        for a in attributes(ts, handle, &types)? {
            match a {
                Attribute::Modulus(v) if !v.is_empty() => modulus = Some(v),
                Attribute::PublicExponent(v) if !v.is_empty() => exponent = Some(v),
                Attribute::EcPoint(v) if !v.is_empty() => point = Some(v),
                _ => {}
            }
        }
        let pk = match (kind, modulus, exponent, point) {
            (Some(KeyKind::Rsa), Some(n), Some(e), _) => Some(rsa_public_key(&n, &e)),
            (Some(KeyKind::P256), _, _, Some(p)) => ec_point(&p, 65).map(PublicKey::P256),
            (Some(KeyKind::P384), _, _, Some(p)) => ec_point(&p, 97).map(PublicKey::P384),
            _ => None,
        };
        if pk.is_some() {
            return Ok(pk);
        }
    }
    let certs = read_certs(ts, Some(id), None)?;
    if let [only] = certs.as_slice() {
        return Ok(Some(only.certificate.public_key().clone()));
    }
    Ok(None)
}
