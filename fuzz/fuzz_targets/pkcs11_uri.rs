//! RFC 7512 `pkcs11:` URIs. Properties: the printed form (path attributes only)
//! parses back to itself, and never carries the PIN.
#![no_main]

use iamra::key::pkcs11::uri::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = Pkcs11Uri::parse(text) else {
        return;
    };
    let printed = uri.to_string();
    assert!(!printed.contains('?'), "{printed}");
    let again = Pkcs11Uri::parse(&printed).expect("the printed URI parses");
    assert_eq!(again.to_string(), printed);
    assert_eq!(again.token, uri.token);
    assert_eq!(again.id, uri.id);
    assert_eq!(again.object, uri.object);
    assert_eq!(again.object_type, uri.object_type);
    assert_eq!(again.slot_id, uri.slot_id);
    assert_eq!(again.serial, uri.serial);
    assert_eq!(again.library_version, uri.library_version);
    let _ = uri.pin_source_path();
    let _ = format!("{uri:?}");
});
