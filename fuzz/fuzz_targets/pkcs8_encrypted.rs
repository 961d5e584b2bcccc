//! Encrypted PKCS#8 (PBES2 with PBKDF2 or scrypt) with a fixed password, through
//! `key::load_key_bytes` as `--private-key key.enc.pem` with IAMRA_PKCS8_PASSWORD.
#![no_main]

use std::path::Path;

use iamra::key::{Digest, FixedPassword, SigningKey as _, load_key_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let password = FixedPassword(secrecy::SecretString::from("correct horse battery staple"));
    if let Ok(key) = load_key_bytes(data, Path::new("fuzz.key"), &password) {
        key.sign(b"iamra fuzz", Digest::Sha256)
            .expect("a key that loads signs");
    }
});
