//! Output sinks: what iamra prints or serves. Each module documents its wire contract.

pub mod certificate_data;
pub mod credentials_file;
pub mod matching_identities;
pub mod process;
pub mod server;
pub mod sign_string;

/// Formats a time as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds): the form every AWS
/// SDK parses in IMDS and container-credentials answers.
pub fn utc_seconds(t: ::time::OffsetDateTime) -> String {
    let t = t.to_offset(::time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
