//! DER surgery for tests that need a certificate or key with one field changed.
//! Shared by the integration tests (`common::der`) and the library's unit tests
//! (`src/lib.rs` includes this file as `crate::test_der` under `cfg(test)`), so it
//! uses nothing but `std`.

/// DER TLV with a short or two-octet long length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// Splits one TLV off `der`: (contents, rest).
pub(crate) fn split(der: &[u8]) -> (&[u8], &[u8]) {
    let (len, at) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(der[2]), 3),
        _ => (usize::from(der[2]) << 8 | usize::from(der[3]), 4),
    };
    (&der[at..at + len], &der[at + len..])
}

/// `cert` (DER, with an explicit version) with the serial INTEGER's content octets
/// replaced; the signature is kept, so it no longer verifies.
pub(crate) fn with_serial(cert: &[u8], serial: &[u8]) -> Vec<u8> {
    let (body, _) = split(cert);
    let (tbs, signature) = split(body);
    let version_len = 2 + usize::from(tbs[1]);
    let (_, after_serial) = split(&tbs[version_len..]);
    let mut new_tbs = tbs[..version_len].to_vec();
    new_tbs.extend(tlv(0x02, serial));
    new_tbs.extend_from_slice(after_serial);
    let mut out = tlv(0x30, &new_tbs);
    out.extend_from_slice(signature);
    tlv(0x30, &out)
}

/// Encrypted PKCS#8 DER with the KDF's first INTEGER (scrypt N or PBKDF2
/// iterations, two octets in the fixtures) replaced by `value`; the 8-octet salt is
/// shortened to keep every length.
pub(crate) fn with_kdf_integer(der: &[u8], value: &[u8]) -> Vec<u8> {
    let salt = der.windows(2).position(|w| w == [0x04, 0x08]).unwrap();
    assert_eq!(der[salt + 10..salt + 12], [0x02, 0x02]);
    let shorter = value.len() - 2;
    let mut out = der[..salt].to_vec();
    out.extend([0x04, (8 - shorter) as u8]);
    out.extend_from_slice(&der[salt + 2..salt + 10 - shorter]);
    out.extend([0x02, value.len() as u8]);
    out.extend_from_slice(value);
    out.extend_from_slice(&der[salt + 14..]);
    out
}
