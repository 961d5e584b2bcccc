//! The TSS2 key file parser (`TSS2 PRIVATE KEY` DER), as a PEM block's contents and
//! through the PEM reader.
#![no_main]

use iamra::key::tpm::tss2;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = tss2::parse(data) {
        assert!(!key.public.is_empty() && !key.private.is_empty());
        assert_eq!(
            tss2::Parent::from_handle(key.parent.handle()),
            Ok(key.parent)
        );
        let _ = format!("{key:?}");
    }
});
