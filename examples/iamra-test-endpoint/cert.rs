//! Certificates: DER parsing, serial numbers, subject CN, and the chain check
//! (path building from the leaf through `X-Amz-X509-Chain` to a trust anchor).
//!
//! Path rules: the issuer's subject name equals the child's issuer name (DER
//! bytes compared), the child's signature verifies with the issuer's public key
//! (sha256/384/512WithRSAEncryption, ecdsa-with-SHA256/384/512 with P-256/P-384
//! issuer keys), the issuer has `basicConstraints CA:TRUE`, `keyCertSign` when it
//! has a `keyUsage` extension, and a `pathLenConstraint` not smaller than the
//! number of intermediates below it. The chain may contain the leaf itself and
//! the root; both are tolerated. Every certificate on the chosen path, anchor
//! included, must be inside its validity window at `now`.

use crate::crypto::{PublicKey, cert_signature_scheme};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// Longest path (leaf and intermediates, anchor excluded) tried.
const MAX_DEPTH: usize = 8;
/// Most signature checks one chain validation may do.
const MAX_SIGNATURE_CHECKS: usize = 64;

/// A certificate signature exactly as it was checked: the issuer's whole
/// SubjectPublicKeyInfo (algorithm and parameters included), the signed
/// `tbsCertificate` and the signature. The signature algorithm is inside the TBS.
#[derive(PartialEq, Eq, Hash)]
struct SignedBytes {
    issuer_key: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
}

/// Most remembered certificate signatures (forgotten all at once when full).
const MAX_REMEMBERED: usize = 256;

/// Certificate signatures that verified. Whether a signature verifies depends on
/// these bytes alone, so a client sending the same chain on every call (as every
/// client does) has its CA's signatures verified once, as a production service
/// keeps validated chains; everything else (names, constraints, key usage, dates,
/// the request's own signature) is checked on every request, and a changed byte
/// anywhere is a different entry, verified afresh. Failures are not remembered.
fn remembered() -> std::sync::MutexGuard<'static, std::collections::HashSet<SignedBytes>> {
    static VERIFIED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<SignedBytes>>> =
        std::sync::OnceLock::new();
    VERIFIED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether exactly these bytes verified before.
fn verified_before(signed: &SignedBytes) -> bool {
    remembered().contains(signed)
}

/// Remembers a signature that verified.
fn remember_verified(signed: SignedBytes) {
    let mut set = remembered();
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(signed);
}

/// Parses one DER certificate; `None` on any error or trailing bytes.
pub fn parse_der(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok((rest, cert)) => rest.is_empty().then_some(cert),
        Err(_) => None,
    }
}

/// The serial magnitude: the DER INTEGER content with leading zero octets removed.
fn serial_magnitude(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    &raw[start..]
}

/// The serial as a positive decimal number, reading the INTEGER octets as unsigned.
pub fn serial_decimal(raw: &[u8]) -> String {
    // Little-endian limbs in base 10^9.
    const BASE: u64 = 1_000_000_000;
    let mut limbs: Vec<u64> = Vec::new();
    for &byte in serial_magnitude(raw) {
        let mut carry = u64::from(byte);
        for limb in limbs.iter_mut() {
            let v = *limb * 256 + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    let Some((last, rest)) = limbs.split_last() else {
        return String::from("0");
    };
    let mut out = last.to_string();
    for limb in rest.iter().rev() {
        out.push_str(&format!("{limb:09}"));
    }
    out
}

/// The serial in lower-case hex, whole octets, leading zero octets removed (`00` for zero).
pub fn serial_hex(raw: &[u8]) -> String {
    let m = serial_magnitude(raw);
    if m.is_empty() {
        String::from("00")
    } else {
        hex::encode(m)
    }
}

/// The first common name of the subject, if any.
pub fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    let attr = cert.subject().iter_common_name().next()?;
    match attr.as_str() {
        Ok(s) => Some(s.to_string()),
        Err(_) => Some(String::from_utf8_lossy(attr.as_slice()).into_owned()),
    }
}

/// Whether the certificate says `basicConstraints CA:TRUE` (a malformed or
/// duplicated extension counts as CA, so that it is refused as a leaf).
pub fn is_ca(cert: &X509Certificate<'_>) -> bool {
    match cert.basic_constraints() {
        Ok(Some(bc)) => bc.value.ca,
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Why a chain was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// No path to a trust anchor, or the leaf is a CA.
    Untrusted,
    /// A certificate on the path is past its `notAfter`.
    Expired,
    /// A certificate on the path is before its `notBefore`.
    NotYetValid,
}

/// Chain-validation state: inputs and the work budget.
struct PathBuilder<'c, 'a> {
    /// Candidate intermediates (leaf copies removed).
    chain: &'c [X509Certificate<'a>],
    /// Trust anchors.
    anchors: &'c [X509Certificate<'a>],
    /// Validation time, Unix seconds.
    now: i64,
    /// Signature checks done so far.
    checks: usize,
    /// First validity failure met on an otherwise complete path.
    time_error: Option<ChainError>,
}

impl<'c, 'a> PathBuilder<'c, 'a> {
    /// Whether `issuer` issued `child` with `below` intermediates between `issuer` and the leaf.
    fn issued(
        &mut self,
        child: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
        below: usize,
    ) -> bool {
        if child.issuer().as_raw() != issuer.subject().as_raw() {
            return false;
        }
        let path_len = match issuer.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => bc.value.path_len_constraint,
            _ => return false,
        };
        if let Some(max) = path_len
            && u64::try_from(below).unwrap_or(u64::MAX) > u64::from(max)
        {
            return false;
        }
        match issuer.key_usage() {
            Ok(Some(ku)) if !ku.value.key_cert_sign() => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
        if child.signature_algorithm.algorithm != child.tbs_certificate.signature.algorithm {
            return false;
        }
        let Some(scheme) = cert_signature_scheme(&child.signature_algorithm) else {
            return false;
        };
        if self.checks >= MAX_SIGNATURE_CHECKS {
            return false;
        }
        self.checks += 1;
        let signed = SignedBytes {
            issuer_key: issuer.public_key().raw.to_vec(),
            tbs: child.tbs_certificate.as_ref().to_vec(),
            signature: child.signature_value.data.to_vec(),
        };
        if verified_before(&signed) {
            return true;
        }
        let Some(key) = PublicKey::from_spki(issuer.public_key()) else {
            return false;
        };
        let good = key.verify(scheme, &signed.tbs, &signed.signature);
        if good {
            remember_verified(signed);
        }
        good
    }

    /// Checks the validity windows of a complete path.
    fn times_ok(&self, path: &[&X509Certificate<'_>]) -> Result<(), ChainError> {
        for cert in path {
            let validity = cert.validity();
            if self.now < validity.not_before.timestamp() {
                return Err(ChainError::NotYetValid);
            }
            if self.now > validity.not_after.timestamp() {
                return Err(ChainError::Expired);
            }
        }
        Ok(())
    }

    /// Depth-first search extending `path` (leaf first) to an anchor.
    fn extend(&mut self, path: &mut Vec<&'c X509Certificate<'a>>) -> bool {
        let Some(&current) = path.last() else {
            return false;
        };
        let below = path.len() - 1;
        for anchor in self.anchors {
            if self.issued(current, anchor, below) {
                path.push(anchor);
                let result = self.times_ok(path);
                path.pop();
                match result {
                    Ok(()) => return true,
                    Err(e) => {
                        self.time_error.get_or_insert(e);
                    }
                }
            }
        }
        if path.len() >= MAX_DEPTH {
            return false;
        }
        for candidate in self.chain {
            if path.iter().any(|c| c.as_raw() == candidate.as_raw()) {
                continue;
            }
            if self.issued(current, candidate, below) {
                path.push(candidate);
                if self.extend(path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
}

/// Validates `leaf` through `chain` to one of `anchors` at Unix time `now`.
pub fn verify_chain(
    leaf: &X509Certificate<'_>,
    chain: &[X509Certificate<'_>],
    anchors: &[X509Certificate<'_>],
    now: i64,
) -> Result<(), ChainError> {
    if is_ca(leaf) {
        return Err(ChainError::Untrusted);
    }
    // Drop copies of the leaf from the chain.
    let chain: Vec<X509Certificate<'_>> = chain
        .iter()
        .filter(|c| c.as_raw() != leaf.as_raw())
        .cloned()
        .collect();
    let mut builder = PathBuilder {
        chain: &chain,
        anchors,
        now,
        checks: 0,
        time_error: None,
    };
    let mut path = vec![leaf];
    if builder.extend(&mut path) {
        Ok(())
    } else {
        Err(builder.time_error.unwrap_or(ChainError::Untrusted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_decimal_reads_magnitude_unsigned() {
        assert_eq!(serial_decimal(&[]), "0");
        assert_eq!(serial_decimal(&[0]), "0");
        assert_eq!(serial_decimal(&[0x15]), "21");
        assert_eq!(serial_decimal(&[0x80]), "128");
        assert_eq!(serial_decimal(&[0x00, 0xff, 0xff]), "65535");
        assert_eq!(serial_decimal(&[0x3b, 0x9a, 0xca, 0x00]), "1000000000");
        assert_eq!(
            serial_decimal(&[0xff; 16]),
            "340282366920938463463374607431768211455"
        );
    }

    #[test]
    fn serial_hex_strips_leading_zero_octets() {
        assert_eq!(serial_hex(&[0x00, 0x99, 0x53]), "9953");
        assert_eq!(serial_hex(&[0x0a]), "0a");
        assert_eq!(serial_hex(&[0x00]), "00");
    }
}
