//! Reading the files a user names on the command line.
//!
//! Every read goes through [`read_file`] so that directories, FIFOs, empty and
//! oversized files are reported the same way, with the path and what the file was
//! meant to be, and so that file contents that may hold key material are zeroized.
//!
//! Besides a path, a user may write `-` (read standard input, once per process: a
//! certificate and key given both as `-` share one combined PEM) or `env:NAME` (the
//! contents of environment variable `NAME`), for CI systems that hold secrets in
//! variables. A file really named `env:x` is reached as `./env:x`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Largest file iamra reads: certificates, keys and bundles are a few KiB.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// A file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The operating system refused the read.
    #[error("cannot read {what} {}", crate::error::shorten_path(path))]
    Io {
        /// What the file was meant to hold ("certificate file", ...).
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The path names a directory, FIFO, socket or device.
    #[error("{what} {} is not a regular file", crate::error::shorten_path(path))]
    NotAFile {
        /// What the file was meant to hold.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("{what} {} is empty", crate::error::shorten_path(path))]
    Empty {
        /// What the file was meant to hold.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// `env:NAME` names an unset variable.
    #[error(
        "{what} {}: environment variable {name} is not set",
        crate::error::shorten_path(path)
    )]
    EnvMissing {
        /// What the input was meant to hold.
        what: &'static str,
        /// The value as given (`env:NAME`).
        path: PathBuf,
        /// The variable.
        name: String,
    },
    /// The file is larger than [`MAX_FILE_SIZE`].
    #[error("{what} {} is larger than 1 MiB", crate::error::shorten_path(path))]
    TooLarge {
        /// What the file was meant to hold.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
}

static STDIN: std::sync::OnceLock<Result<Zeroizing<Vec<u8>>, std::io::ErrorKind>> =
    std::sync::OnceLock::new();

/// Where an input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A file.
    File(&'a Path),
    /// Standard input (`-`).
    Stdin,
    /// An environment variable (`env:NAME`).
    Env(&'a str),
}

impl<'a> Source<'a> {
    /// Classifies a flag value.
    pub fn of(path: &'a Path) -> Self {
        match path.to_str() {
            Some("-") => Source::Stdin,
            Some(s) if s.starts_with("env:") && s.len() > 4 => Source::Env(&s[4..]),
            _ => Source::File(path),
        }
    }
}

/// Reads a whole regular file of at most [`MAX_FILE_SIZE`] bytes (or stdin / an
/// environment variable, see the module docs).
pub fn read_file(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let io = |source| ReadError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let data = match Source::of(path) {
        Source::File(_) => read_regular(what, path)?,
        Source::Stdin => {
            let read = STDIN.get_or_init(|| {
                let mut data = Zeroizing::new(Vec::new());
                std::io::stdin()
                    .lock()
                    .take(MAX_FILE_SIZE + 1)
                    .read_to_end(&mut data)
                    .map(|_| data)
                    .map_err(|e| e.kind())
            });
            match read {
                Ok(d) => d.clone(),
                Err(kind) => return Err(io(std::io::Error::from(*kind))),
            }
        }
        // The bytes as they are: a value that is not UTF-8 is still set, and the
        // parser that reads it says what is wrong with it.
        Source::Env(name) => match std::env::var_os(name) {
            Some(v) => Zeroizing::new(std::os::unix::ffi::OsStringExt::into_vec(v)),
            None => {
                return Err(ReadError::EnvMissing {
                    what,
                    path: path.to_path_buf(),
                    name: name.to_string(),
                });
            }
        },
    };
    if data.len() as u64 > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge {
            what,
            path: path.to_path_buf(),
        });
    }
    if data.is_empty() {
        return Err(ReadError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

/// Reads at most `MAX_FILE_SIZE + 1` bytes of a regular file; the caller checks the size.
fn read_regular(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let io = |source| ReadError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            what,
            path: path.to_path_buf(),
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut data = Zeroizing::new(Vec::with_capacity(
        meta.len().min(MAX_FILE_SIZE + 1) as usize
    ));
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    Ok(data)
}
