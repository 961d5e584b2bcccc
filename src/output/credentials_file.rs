//! `update` output: one profile of the shared credentials file.
//!
//! Wire contract (what the AWS CLI and SDKs read from `~/.aws/credentials`): in the
//! first section whose header is `[<profile>]` (spaces inside the brackets and a
//! trailing comment allowed), the lines
//!
//! ```ini
//! # iamra: credentials expire at 2026-12-01T21:00:00Z
//! aws_access_key_id = ASIA…
//! aws_secret_access_key = …
//! aws_session_token = …
//! ```
//!
//! Only those four lines of that profile change; every other byte stays as it was:
//! comments, blank lines, other profiles, the order and spelling of keys, the spacing
//! around `=`, CRLF or LF line ends, a missing final newline. A key that is already
//! there keeps its line (and its spelling and spacing up to the value); a key that is
//! missing goes after the profile's last credential key, else after its last
//! setting, so that comments which introduce the next section stay with it. A
//! duplicate `[<profile>]` section later in the file (which some parsers merge) has
//! its credential keys updated too, so that no reader sees stale values. A profile
//! that is absent is appended at the end. The comment line is ignored by every
//! parser; it tells a human when the file goes stale.
//!
//! The file is replaced atomically: the new content is written to a temporary file
//! in the same folder, synced, renamed over the old one, and the folder is synced, so
//! a reader sees the old file or the new one, never a mix. A new file gets mode
//! 0600; an existing file keeps its mode (and, where the process may, its owner). A
//! missing folder is created with mode 0700. A symlinked credentials file is
//! followed: its target is replaced and the link stays. Writers serialise on an
//! advisory lock (`flock`) of the sibling file `<name>.lock`, held across
//! read–rewrite–rename, so two iamra processes (or two profiles) never lose each
//! other's writes.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::atomic_file::{self, FileError, FileLock, Mode, PRIVATE_FILE_MODE};
use crate::credentials::TemporaryCredentials;

/// The three keys iamra manages, in the order they are written.
pub const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The start of iamra's own expiration comment line.
pub const EXPIRATION_COMMENT: &str = "# iamra: credentials expire at ";

/// Largest credentials file iamra rewrites.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Writing the credentials file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsFileError {
    /// The profile name cannot be a section name.
    #[error("--profile {} is not a usable profile name: {}", crate::error::quote(.0), .1)]
    InvalidProfile(String, &'static str),
    /// Neither `AWS_SHARED_CREDENTIALS_FILE` nor `HOME` is set.
    #[error("no credentials file: set AWS_SHARED_CREDENTIALS_FILE or HOME")]
    NoPath,
    /// An operation on a file or folder failed.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// What was being done ("read the credentials file", ...).
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The existing file is not a regular file.
    #[error("credentials file {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The existing file is too large to be a credentials file.
    #[error("credentials file {} is larger than 16 MiB; refusing to rewrite it", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
    },
    /// A value from the service would break the file's syntax.
    #[error("the credentials contain a line break or control character; refusing to write them")]
    UnsafeValue,
}

/// The credentials file the AWS SDKs read: `AWS_SHARED_CREDENTIALS_FILE` (a leading
/// `~/` is the home folder, as in the SDKs), else `<home>/.aws/credentials`.
pub fn path_from(
    shared_credentials_file: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, CredentialsFileError> {
    let home = home.filter(|h| !h.is_empty()).map(PathBuf::from);
    if let Some(file) = shared_credentials_file.filter(|f| !f.is_empty()) {
        let file = PathBuf::from(file);
        if let (Ok(rest), Some(home)) = (file.strip_prefix("~"), &home) {
            return Ok(home.join(rest));
        }
        return Ok(file);
    }
    home.map(|h| h.join(".aws").join("credentials"))
        .ok_or(CredentialsFileError::NoPath)
}

/// [`path_from`] with the process environment.
pub fn default_path() -> Result<PathBuf, CredentialsFileError> {
    path_from(
        std::env::var_os("AWS_SHARED_CREDENTIALS_FILE"),
        std::env::var_os("HOME"),
    )
}

/// Checks, before anything is fetched, that `path` can be a credentials file: it
/// does not exist yet, or it is (a symlink to) a regular file.
pub fn check_path(path: &Path) -> Result<(), CredentialsFileError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(CredentialsFileError::NotAFile {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Checks that `profile` can be written as `[profile]` and found again.
pub fn check_profile(profile: &str) -> Result<(), CredentialsFileError> {
    let bad = |why| {
        Err(CredentialsFileError::InvalidProfile(
            profile.to_string(),
            why,
        ))
    };
    if profile.is_empty() {
        return bad("it is empty");
    }
    if profile.trim() != profile {
        return bad("it starts or ends with white space");
    }
    if profile.contains(['[', ']']) {
        return bad("it contains a bracket");
    }
    if profile.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    if profile.starts_with(['#', ';']) {
        return bad("it starts with a comment character");
    }
    Ok(())
}

/// What one line of the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    /// `[name]`; `name` trimmed.
    Header(&'a [u8]),
    /// One of [`KEYS`] (index); the value starts at byte `value_at`.
    Key { index: usize, value_at: usize },
    /// iamra's expiration comment.
    Expiration,
    /// Empty or white space only.
    Blank,
    /// A `#` or `;` comment.
    Comment,
    /// Any other setting or text.
    Other,
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims spaces, tabs and stray CRs (a bare CR ending the last line is not part of
/// a header or key, as in the SDKs' parsers).
fn trim(s: &[u8]) -> &[u8] {
    let blank = |b: u8| is_space(b) || b == b'\r';
    let start = s.iter().position(|&b| !blank(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !blank(b)).map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn classify(line: &[u8]) -> Kind<'_> {
    let t = trim(line);
    if t.is_empty() {
        return Kind::Blank;
    }
    if t.starts_with(EXPIRATION_COMMENT.as_bytes()) {
        return Kind::Expiration;
    }
    if t[0] == b'#' || t[0] == b';' {
        return Kind::Comment;
    }
    if t[0] == b'['
        && let Some(close) = t.iter().position(|&b| b == b']')
    {
        let rest = trim(&t[close + 1..]);
        if rest.is_empty() || rest[0] == b'#' || rest[0] == b';' {
            return Kind::Header(trim(&t[1..close]));
        }
    }
    if let Some(eq) = line.iter().position(|&b| b == b'=') {
        let key = trim(&line[..eq]);
        if let Some(index) = KEYS
            .iter()
            .position(|k| key.eq_ignore_ascii_case(k.as_bytes()))
        {
            let mut value_at = eq + 1;
            while value_at < line.len() && is_space(line[value_at]) {
                value_at += 1;
            }
            return Kind::Key { index, value_at };
        }
    }
    Kind::Other
}

/// Splits into `(content, line end)` pairs; the line end is `\n`, `\r\n` or empty
/// (the last line of a file without a final newline).
fn split_lines(data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut lines = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                let (line, eol) = if nl > 0 && rest[nl - 1] == b'\r' {
                    (&rest[..nl - 1], &rest[nl - 1..=nl])
                } else {
                    (&rest[..nl], &rest[nl..=nl])
                };
                lines.push((line, eol));
                rest = &rest[nl + 1..];
            }
            None => {
                lines.push((rest, &rest[rest.len()..]));
                rest = &[];
            }
        }
    }
    lines
}

/// The content of an output line: a slice of the input, or new text.
enum Piece<'a> {
    Orig(&'a [u8]),
    /// A prefix of an input line followed by new text at `news[index]`.
    Replaced(&'a [u8], usize),
}

/// Rewrites a credentials file so that `profile` holds `creds` (see the module docs
/// for exactly what changes). `original` may be empty (a new file). The result holds
/// secrets and is zeroized on drop.
pub fn rewrite(
    original: &[u8],
    profile: &str,
    creds: &TemporaryCredentials,
) -> Result<Zeroizing<Vec<u8>>, CredentialsFileError> {
    check_profile(profile)?;
    let values = [
        creds.access_key_id(),
        creds.secret_access_key(),
        creds.session_token(),
    ];
    if values
        .iter()
        .any(|v| v.is_empty() || v.chars().any(char::is_control))
    {
        return Err(CredentialsFileError::UnsafeValue);
    }
    // news[0..3]: the values; news[3]: the comment; news[4..7]: whole key lines.
    let mut news: Vec<Zeroizing<Vec<u8>>> = values
        .iter()
        .map(|v| Zeroizing::new(v.as_bytes().to_vec()))
        .collect();
    news.push(Zeroizing::new(
        format!(
            "{EXPIRATION_COMMENT}{}",
            crate::utc::rfc3339(creds.expires_at())
        )
        .into_bytes(),
    ));
    for (key, value) in KEYS.iter().zip(values) {
        // Security: the line holds a secret; it only goes to the credentials file. The
        // buffer is sized once, so no reallocation leaves a copy behind.
        let mut line = Zeroizing::new(Vec::with_capacity(key.len() + 3 + value.len()));
        line.extend_from_slice(key.as_bytes());
        line.extend_from_slice(b" = ");
        line.extend_from_slice(value.as_bytes());
        news.push(line);
    }
    const COMMENT: usize = 3;
    const LINE: usize = 4;

    let lines = split_lines(original);
    let style: &[u8] = lines
        .iter()
        .map(|(_, eol)| *eol)
        .find(|eol| !eol.is_empty())
        .unwrap_or(b"\n");
    let kinds: Vec<Kind<'_>> = lines.iter().map(|(l, _)| classify(l)).collect();

    // Which lines belong to a target section, and the first such section's range.
    let mut in_target = vec![false; lines.len()];
    let mut first: Option<(usize, usize)> = None;
    let mut current = false;
    for (i, kind) in kinds.iter().enumerate() {
        if let Kind::Header(name) = kind {
            current = *name == profile.as_bytes();
            if current && first.is_none() {
                first = Some((i, lines.len()));
            } else if let Some((start, end)) = first
                && end == lines.len()
                && start != i
            {
                first = Some((start, i));
            }
        }
        in_target[i] = current && !matches!(kind, Kind::Header(_));
    }

    let mut out: Vec<(Piece<'_>, &[u8])> = Vec::with_capacity(lines.len() + 8);
    for (i, ((line, eol), kind)) in lines.iter().zip(&kinds).enumerate() {
        let piece = match (in_target[i], kind) {
            (true, Kind::Key { index, value_at }) => Piece::Replaced(&line[..*value_at], *index),
            (true, Kind::Expiration) => Piece::Replaced(&[], COMMENT),
            _ => Piece::Orig(line),
        };
        out.push((piece, eol));
    }

    // What has to be inserted, and where (an index into `out`).
    let mut inserts: Vec<(usize, Vec<usize>)> = Vec::new();
    let ends_with_newline = lines.last().is_none_or(|(_, eol)| !eol.is_empty());
    match first {
        Some((start, end)) => {
            let section = start + 1..end;
            let key_lines: Vec<(usize, usize)> = section
                .clone()
                .filter_map(|i| match kinds[i] {
                    Kind::Key { index, .. } => Some((i, index)),
                    _ => None,
                })
                .collect();
            let has_comment = section.clone().any(|i| kinds[i] == Kind::Expiration);
            let missing: Vec<usize> = (0..KEYS.len())
                .filter(|k| !key_lines.iter().any(|(_, index)| index == k))
                .map(|k| LINE + k)
                .collect();
            let mut block = Vec::new();
            match key_lines.first() {
                Some(&(at, _)) if !has_comment => inserts.push((at, vec![COMMENT])),
                None if !has_comment => block.push(COMMENT),
                _ => {}
            }
            block.extend(missing);
            if !block.is_empty() {
                let after = key_lines.last().map(|&(i, _)| i).unwrap_or_else(|| {
                    section
                        .clone()
                        .rev()
                        .find(|&i| !matches!(kinds[i], Kind::Blank | Kind::Comment))
                        .unwrap_or(start)
                });
                inserts.push((after + 1, block));
            }
        }
        None => {
            let mut block = Vec::new();
            if !out.is_empty() && !matches!(kinds.last(), Some(Kind::Blank)) {
                block.push(usize::MAX); // a blank separator line
            }
            block.push(usize::MAX - 1); // the header
            block.push(COMMENT);
            block.extend(LINE..LINE + KEYS.len());
            inserts.push((out.len(), block));
        }
    }

    let header = format!("[{profile}]").into_bytes();
    // Sized for the worst case (every new line inserted, with a header, separators
    // and line ends), so that the buffer holding the secrets is never reallocated.
    let new_bytes: usize = news.iter().map(|n| n.len()).sum();
    let mut result = Zeroizing::new(Vec::with_capacity(
        original.len() + new_bytes + header.len() + 256,
    ));
    let mut pending = inserts.into_iter().peekable();
    let emit_block = |result: &mut Zeroizing<Vec<u8>>, block: &[usize], last_eol: &[u8]| {
        for (n, &item) in block.iter().enumerate() {
            match item {
                usize::MAX => {}
                i if i == usize::MAX - 1 => result.extend_from_slice(&header),
                i => result.extend_from_slice(&news[i]),
            }
            result.extend_from_slice(if n + 1 == block.len() {
                last_eol
            } else {
                style
            });
        }
    };
    for (i, (piece, eol)) in out.iter().enumerate() {
        while let Some((at, block)) = pending.next_if(|(at, _)| *at == i) {
            debug_assert_eq!(at, i);
            emit_block(&mut result, &block, style);
        }
        match piece {
            Piece::Orig(line) => result.extend_from_slice(line),
            Piece::Replaced(prefix, index) => {
                result.extend_from_slice(prefix);
                result.extend_from_slice(&news[*index]);
            }
        }
        let is_last = i + 1 == out.len();
        if is_last && eol.is_empty() && pending.peek().is_some() {
            // The old last line had no newline: it gets one, and the new last line
            // goes without, so the file still ends the way it did.
            result.extend_from_slice(style);
        } else {
            result.extend_from_slice(eol);
        }
    }
    for (_, block) in pending {
        let last_eol: &[u8] = if ends_with_newline { style } else { b"" };
        emit_block(&mut result, &block, last_eol);
    }
    Ok(result)
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CredentialsFileError {
    let path = path.to_path_buf();
    move |source| CredentialsFileError::Io { what, path, source }
}

impl From<FileError> for CredentialsFileError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Io { what, path, source } => Self::Io { what, path, source },
            FileError::NotAFile { path } => Self::NotAFile { path },
        }
    }
}

/// The file a write should replace: `path`, or the target of a symlink at `path`.
fn resolve(path: &Path) -> Result<PathBuf, CredentialsFileError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(io("follow the symlink", path))
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// Reads the credentials file (empty when it does not exist yet).
fn read_existing(path: &Path) -> Result<Zeroizing<Vec<u8>>, CredentialsFileError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Zeroizing::new(vec![])),
        Err(e) => return Err(io("read the credentials file", path)(e)),
    };
    let meta = file
        .metadata()
        .map_err(io("read the credentials file", path))?;
    if !meta.is_file() {
        return Err(CredentialsFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut data = Zeroizing::new(Vec::with_capacity(meta.len().min(MAX_FILE_SIZE) as usize));
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io("read the credentials file", path))?;
    if data.len() as u64 > MAX_FILE_SIZE {
        return Err(CredentialsFileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

/// Writes `creds` into `profile` of the credentials file at `path`: creates the
/// folder if needed, takes the lock, reads, rewrites and replaces the file.
/// Blocking; from async code call it through `spawn_blocking`.
pub fn write_profile(
    path: &Path,
    profile: &str,
    creds: &TemporaryCredentials,
) -> Result<(), CredentialsFileError> {
    check_profile(profile)?;
    atomic_file::create_folder(path)?;
    let target = resolve(path)?;
    let _lock = FileLock::acquire(&atomic_file::lock_path_of(&target))?;
    let original = read_existing(&target)?;
    let updated = rewrite(&original, profile, creds)?;
    // The file now holds a secret key: whatever its mode was, it becomes 0600 (as
    // the AWS CLI writes it), keeping its owner.
    let loose = std::fs::metadata(&target)
        .ok()
        .map(|m| m.mode() & 0o7777)
        .filter(|m| m & 0o077 != 0);
    atomic_file::write_atomically(&target, &updated, Mode::KeepOwner(PRIVATE_FILE_MODE))?;
    if let Some(old) = loose {
        tracing::warn!(
            "credentials file {} was mode {old:04o}, readable by other users; it is now 0600",
            target.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn creds(n: u32) -> TemporaryCredentials {
        TemporaryCredentials::new(
            format!("ASIA{n}"),
            SecretString::from(format!("secret{n}")),
            SecretString::from(format!("token{n}")),
            "2026-12-01T21:00:00Z".into(),
            ::time::macros::datetime!(2026-12-01 21:00:00 UTC),
        )
    }

    fn run(input: &str, profile: &str) -> String {
        String::from_utf8(
            rewrite(input.as_bytes(), profile, &creds(1))
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    const BLOCK: &str = "# iamra: credentials expire at 2026-12-01T21:00:00Z\naws_access_key_id = ASIA1\naws_secret_access_key = secret1\naws_session_token = token1\n";

    #[test]
    fn new_file_gets_one_section() {
        assert_eq!(run("", "default"), format!("[default]\n{BLOCK}"));
    }

    #[test]
    fn replaces_values_in_place_keeping_spacing_and_spelling() {
        let input = "[default]\nregion=eu-west-1\n  AWS_Access_Key_ID=OLD ; not a comment\naws_secret_access_key   =\told\naws_session_token = x\n";
        assert_eq!(
            run(input, "default"),
            "[default]\nregion=eu-west-1\n# iamra: credentials expire at 2026-12-01T21:00:00Z\n  AWS_Access_Key_ID=ASIA1\naws_secret_access_key   =\tsecret1\naws_session_token = token1\n"
        );
    }

    #[test]
    fn header_on_the_last_line_without_newline() {
        assert_eq!(
            run("[a]\nx = 1\n[default]", "default"),
            format!("[a]\nx = 1\n[default]\n{}", BLOCK.trim_end_matches('\n'))
        );
    }

    /// Found by the `credentials_file` fuzz target: a header ending in a bare CR
    /// (no final LF) was not recognised, so the profile was appended a second time,
    /// and the next rewrite filled the first copy: not idempotent.
    #[test]
    fn header_ending_in_a_bare_cr_is_the_profile() {
        let once = run("[default]\r", "default");
        assert_eq!(
            once,
            format!("[default]\r\n{}", BLOCK.trim_end_matches('\n'))
        );
        assert_eq!(run(&once, "default"), once);
    }

    #[test]
    fn crlf_is_kept_for_inserted_lines() {
        let out = run("[default]\r\nregion = x\r\n", "default");
        assert_eq!(
            out,
            format!("[default]\r\nregion = x\r\n{}", BLOCK.replace('\n', "\r\n"))
        );
    }

    #[test]
    fn rejects_values_and_profiles_that_would_break_the_syntax() {
        let bad = TemporaryCredentials::new(
            "ASIA\n[x]".into(),
            SecretString::from("s"),
            SecretString::from("t"),
            "2026-12-01T21:00:00Z".into(),
            ::time::OffsetDateTime::UNIX_EPOCH,
        );
        assert!(matches!(
            rewrite(b"", "default", &bad),
            Err(CredentialsFileError::UnsafeValue)
        ));
        for p in ["", " a", "a]", "[a", "a\nb", "#a"] {
            assert!(check_profile(p).is_err(), "{p:?}");
        }
        check_profile("profile work").unwrap();
    }

    #[test]
    fn path_follows_the_sdk_rules() {
        assert_eq!(
            path_from(None, Some("/home/u".into())).unwrap(),
            Path::new("/home/u/.aws/credentials")
        );
        assert_eq!(
            path_from(Some("~/c".into()), Some("/home/u".into())).unwrap(),
            Path::new("/home/u/c")
        );
        assert_eq!(
            path_from(Some("/etc/c".into()), None).unwrap(),
            Path::new("/etc/c")
        );
        assert!(path_from(Some("".into()), None).is_err());
    }
}
