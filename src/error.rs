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
