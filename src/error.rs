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
