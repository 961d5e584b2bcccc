//! Error rendering helpers shared by the library and the CLI.

use std::error::Error as StdError;

/// Joins an error and its sources with `": "`, dropping a source whose text the
/// previous message already contains.
pub fn chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The innermost source's message (the OS or TLS error behind an HTTP failure).
pub fn innermost(e: &dyn StdError) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// Most characters of a user's value quoted in a message.
pub const QUOTE_MAX_CHARS: usize = 100;

/// A user's value for a one-line message: Rust-quoted (`"…"`, control characters
/// escaped) when it has at most [`QUOTE_MAX_CHARS`] characters; otherwise its first
/// [`QUOTE_MAX_CHARS`] characters quoted, then `…` and the value's length, e.g.
/// `"arn:aws:rolesanywhere:…"… (10240 bytes)`. The AWS SDKs paste our stderr
/// into their own errors, so one pasted 10 KB flag must not become a 10 KB line.
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTE_MAX_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// [`quote`] for a path or OS string (lossy: only for display).
pub fn quote_os(value: &std::ffi::OsStr) -> String {
    quote(&value.to_string_lossy())
}

/// Like [`quote`] without the quotes, for text already set apart (a path after
/// "file", a reason): unchanged when it has at most [`QUOTE_MAX_CHARS`]
/// characters, else its first ones, `…` and the length.
pub fn shorten(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(QUOTE_MAX_CHARS) {
        None => std::borrow::Cow::Borrowed(value),
        Some((cut, _)) => {
            std::borrow::Cow::Owned(format!("{}… ({} bytes)", &value[..cut], value.len()))
        }
    }
}

/// [`shorten`] for a path (lossy: only for display).
pub fn shorten_path(path: &std::path::Path) -> String {
    shorten(&path.to_string_lossy()).into_owned()
}

/// A setting of the library's configuration, named in errors. The library names
/// settings by what they are ("private key", "session duration"); a front end that
/// takes them from flags registers its own names once with [`set_field_names`], so
/// that the same errors name its flags (`--private-key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The certificate (file, `pkcs11:` URI).
    Certificate,
    /// The private key (file, `pkcs11:` URI, TPM handle).
    PrivateKey,
    /// The intermediate certificates.
    Intermediates,
    /// The trust anchor ARN.
    TrustAnchorArn,
    /// The profile ARN.
    ProfileArn,
    /// The role ARN.
    RoleArn,
    /// The signing region.
    Region,
    /// The endpoint URL.
    Endpoint,
    /// The session duration.
    SessionDuration,
    /// The role session name.
    RoleSessionName,
    /// "The TPM key has no password".
    NoTpmKeyPassword,
    /// Allowing a plain `http://` endpoint on another host.
    AllowPlainHttp,
}

impl Field {
    /// The library's name of the setting.
    pub fn name(self) -> &'static str {
        match self {
            Field::Certificate => "certificate",
            Field::PrivateKey => "private key",
            Field::Intermediates => "intermediates",
            Field::TrustAnchorArn => "trust anchor ARN",
            Field::ProfileArn => "profile ARN",
            Field::RoleArn => "role ARN",
            Field::Region => "region",
            Field::Endpoint => "endpoint",
            Field::SessionDuration => "session duration",
            Field::RoleSessionName => "role session name",
            Field::NoTpmKeyPassword => "the no-TPM-key-password setting",
            Field::AllowPlainHttp => "the allow-plain-http setting",
        }
    }
}

static FIELD_NAMES: std::sync::OnceLock<fn(Field) -> &'static str> = std::sync::OnceLock::new();

/// Makes every error name settings with `names` (a front end's flags) instead of
/// [`Field::name`]. The first call wins; later ones are ignored.
pub fn set_field_names(names: fn(Field) -> &'static str) {
    let _ = FIELD_NAMES.set(names);
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match FIELD_NAMES.get() {
            Some(names) => names(*self),
            None => self.name(),
        };
        f.write_str(name)
    }
}

/// What kind of failure an error is: what a caller (and the refresh engine) should
/// do about it. Every error of the library says which it is, explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration or an input is wrong (a missing file, a bad ARN, an
    /// expired certificate): nothing changes until someone fixes it.
    Configuration,
    /// A PIN or password was refused, or a hardware key is locked: never retried,
    /// since every try counts towards a lockout.
    Authentication,
    /// Worth retrying soon: network, timeouts, 5xx, throttling, a malformed answer,
    /// a token or TPM that failed for a moment.
    Transient,
    /// The service refused the request for good (access denied, an untrusted
    /// certificate): retried only slowly.
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_to_100_characters_with_their_length() {
        assert_eq!(quote("eu-west-1"), "\"eu-west-1\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let exact = "x".repeat(100);
        assert_eq!(quote(&exact), format!("\"{exact}\""));
        let long = "é".repeat(5000);
        assert_eq!(
            quote(&long),
            format!("\"{}\"… (10000 bytes)", "é".repeat(100))
        );
        assert_eq!(shorten("/etc/x.pem"), "/etc/x.pem");
        assert_eq!(
            shorten(&"a".repeat(1024)),
            format!("{}… (1024 bytes)", "a".repeat(100))
        );
    }
}
