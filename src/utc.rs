//! Times as text, in UTC with whole seconds: the two forms iamra writes.
//!
//! [`rfc3339`] (`2026-12-01T21:00:00Z`) is what the AWS SDKs parse in
//! `credential_process` output, IMDS and container-credentials answers, and what
//! messages show; [`amz_date`] (`20261201T210000Z`) is SigV4's `X-Amz-Date`.

use ::time::{OffsetDateTime, UtcOffset};

/// The UTC fields of `t`. Never panics: a time that has no UTC form inside years
/// ±9999 keeps its own offset's fields (callers refuse such times elsewhere).
fn fields(t: OffsetDateTime) -> (i32, u8, u8, u8, u8, u8) {
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    (
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let (y, mo, d, h, mi, s) = fields(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's `X-Amz-Date`, UTC, whole seconds).
pub fn amz_date(t: OffsetDateTime) -> String {
    let (y, mo, d, h, mi, s) = fields(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::datetime;

    #[test]
    fn both_forms_are_utc_whole_seconds() {
        let t = datetime!(2026-12-01 23:04:05.9 +02:00);
        assert_eq!(rfc3339(t), "2026-12-01T21:04:05Z");
        assert_eq!(amz_date(t), "20261201T210405Z");
    }

    #[test]
    fn a_time_without_a_utc_form_does_not_panic() {
        let t = datetime!(-9999-01-01 00:00:00 +05:00);
        assert_eq!(rfc3339(t), "-9999-01-01T00:00:00Z");
    }
}
