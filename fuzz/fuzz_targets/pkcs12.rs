//! PKCS#12 bundles (`--certificate bundle.p12`): first as the CLI tries them without
//! a password (the empty password), then with the test PKI's password.
#![no_main]

use std::path::Path;

use iamra::key::pkcs12::pkcs12_from_bytes;
use iamra::key::{FixedPassword, NoPassword, SigningKey as _};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.p12");
    let password = FixedPassword(secrecy::SecretString::from("correct horse battery staple"));
    let results = [
        pkcs12_from_bytes(data, path, &NoPassword),
        pkcs12_from_bytes(data, path, &password),
    ];
    for identity in results.into_iter().flatten() {
        // The leaf is the certificate of the bundle's key.
        assert_eq!(
            &identity.key.public_key(),
            identity.certificate.public_key()
        );
    }
});
