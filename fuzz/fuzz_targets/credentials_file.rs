//! The credentials-file rewriter (`update`). Input: one length octet, that many
//! octets of profile name, then the original file. Properties, checked against a
//! small model of the INI dialect the module documents:
//!
//! - outside the target profile's sections, every line is kept, in order;
//! - inside them, every line but the three credential keys and iamra's expiration
//!   comment is kept, in order, and every credential key holds the new value;
//! - the result re-parses: the target profile is found with all three new values,
//!   and rewriting it again with the same credentials changes nothing.
#![no_main]

use iamra::credentials::TemporaryCredentials;
use iamra::output::credentials_file::{EXPIRATION_COMMENT, KEYS, rewrite};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fn trim(s: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t' || *b == b'\r';
    let start = s.iter().position(|b| !is_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// The section name of a header line.
fn header(line: &[u8]) -> Option<&[u8]> {
    let t = trim(line);
    if t.first() != Some(&b'[') {
        return None;
    }
    let close = t.iter().position(|&b| b == b']')?;
    let rest = trim(&t[close + 1..]);
    (rest.is_empty() || rest[0] == b'#' || rest[0] == b';').then(|| trim(&t[1..close]))
}

/// `(index into KEYS, value)` of a credential key line.
fn credential(line: &[u8]) -> Option<(usize, &[u8])> {
    let t = trim(line);
    if t.starts_with(b"#") || t.starts_with(b";") || header(line).is_some() {
        return None;
    }
    let eq = line.iter().position(|&b| b == b'=')?;
    let key = trim(&line[..eq]);
    let index = KEYS
        .iter()
        .position(|k| key.eq_ignore_ascii_case(k.as_bytes()))?;
    let value = &line[eq + 1..];
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    Some((index, &value[start..]))
}

/// Lines without their ends (`\n` or `\r\n`); a last line without `\n` keeps a
/// trailing `\r` as content, as the module reads it.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                let line = &rest[..nl];
                out.push(line.strip_suffix(b"\r").unwrap_or(line));
                rest = &rest[nl + 1..];
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

/// Lines kept verbatim (with whether they are in a target section), and the values
/// of the credential keys of the target sections.
struct View<'a> {
    kept: Vec<(bool, &'a [u8])>,
    values: Vec<(usize, &'a [u8])>,
    found: bool,
}

fn view<'a>(data: &'a [u8], profile: &[u8]) -> View<'a> {
    let mut v = View {
        kept: Vec::new(),
        values: Vec::new(),
        found: false,
    };
    let mut inside = false;
    for line in lines(data) {
        if let Some(name) = header(line) {
            inside = name == profile;
            v.found |= inside;
            v.kept.push((false, line));
            continue;
        }
        if inside {
            if let Some(kv) = credential(line) {
                v.values.push(kv);
                continue;
            }
            if trim(line).starts_with(EXPIRATION_COMMENT.as_bytes()) {
                continue;
            }
        }
        v.kept.push((inside, line));
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 24).min(rest.len());
    let (profile, original) = rest.split_at(n);
    let Ok(profile) = std::str::from_utf8(profile) else {
        return;
    };
    let creds = TemporaryCredentials::new(
        "ASIAFUZZ".into(),
        SecretString::from("fuzz-secret"),
        SecretString::from("fuzz-token"),
        "2026-12-01T21:00:00Z".into(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    let Ok(result) = rewrite(original, profile, &creds) else {
        return;
    };
    let before = view(original, profile.as_bytes());
    let after = view(&result, profile.as_bytes());
    // Blank lines may be added around an appended section; nothing else is. A bare
    // CR ending the last line becomes half of a CRLF when a line is appended after
    // it: the bytes are kept, so a line's trailing CRs are not significant here.
    let significant = |v: &View<'_>| -> Vec<(bool, Vec<u8>)> {
        v.kept
            .iter()
            .map(|(inside, l)| {
                let end = l.iter().rposition(|&b| b != b'\r').map_or(0, |e| e + 1);
                (*inside, &l[..end])
            })
            .filter(|(_, l)| !trim(l).is_empty())
            .map(|(inside, l)| (inside, l.to_vec()))
            .collect()
    };
    let mut expected = significant(&before);
    if !before.found {
        expected.push((false, format!("[{profile}]").into_bytes()));
    }
    assert_eq!(
        significant(&after),
        expected,
        "only credential lines change"
    );
    assert!(after.found, "the profile is there");
    let new: [&[u8]; 3] = [b"ASIAFUZZ", b"fuzz-secret", b"fuzz-token"];
    for (index, value) in &after.values {
        assert_eq!(
            *value, new[*index],
            "every credential key has the new value"
        );
    }
    for (index, key) in KEYS.iter().enumerate() {
        assert!(
            after.values.iter().any(|(i, _)| *i == index),
            "{key} is set"
        );
    }
    let again = rewrite(&result, profile, &creds).expect("the result rewrites");
    assert_eq!(&again[..], &result[..], "rewriting is idempotent");
});
