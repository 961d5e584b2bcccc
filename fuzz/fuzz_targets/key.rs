//! Private key parsing, every encoding `--private-key` accepts (PKCS#1, SEC 1, PKCS#8,
//! encrypted PKCS#8, TSS2, in PEM or DER) through `key::load_key_bytes`. A key that
//! loads must also sign.
#![no_main]

use std::path::Path;

use iamra::key::{Digest, NoPassword, SigningKey as _, load_key_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = load_key_bytes(data, Path::new("fuzz.key"), &NoPassword) {
        let _ = key.public_key();
        key.sign(b"iamra fuzz", Digest::Sha256)
            .expect("a key that loads signs");
        let _ = format!("{key:?}");
    }
});
