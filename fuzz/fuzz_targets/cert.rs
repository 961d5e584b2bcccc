//! PEM and certificate parsing: `pem::parse_all`, `cert::certificate_from_bytes`
//! (PEM or DER, the first CERTIFICATE block) and `Certificate::from_der` on every
//! block, as `--certificate` and `--intermediates` read them.
#![no_main]

use std::path::Path;

use iamra::cert::{Certificate, certificate_from_bytes};
use libfuzzer_sys::fuzz_target;

fn check(cert: &Certificate) {
    // The serial is what goes into `Credential=`: positive decimal digits only.
    let serial = cert.serial_decimal();
    assert!(!serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit()));
    assert!(serial == "0" || !serial.starts_with('0'));
    assert!(cert.serial_hex().len() <= 2 * iamra::cert::MAX_SERIAL_OCTETS);
    let _ = cert.to_base64();
    let _ = cert.public_key().describe();
    let _ = cert.check_leaf(time::OffsetDateTime::UNIX_EPOCH);
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.pem");
    if let Ok(cert) = certificate_from_bytes(data, path) {
        check(&cert);
    }
    if let Ok(blocks) = iamra::pem::parse_all(data) {
        for block in &blocks {
            if let Ok(cert) = Certificate::from_der(&block.der, path) {
                check(&cert);
            }
        }
    }
});
