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

/// Where an input (certificate, key, bundle, password file) comes from: typed once,
/// where the user's value enters ([`Input::parse`]), never re-read from a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Input {
    /// A file.
    File(PathBuf),
    /// Standard input (`-`): read once per process, whoever asks first.
    Stdin,
    /// An environment variable (`env:NAME`).
    Env(String),
}

impl Input {
    /// Types a user's value: `-` is standard input, `env:NAME` (with a name) the
    /// variable `NAME`, anything else a file path (`./env:x` reaches a file named
    /// `env:x`).
    pub fn parse(value: impl AsRef<std::ffi::OsStr>) -> Self {
        let value = value.as_ref();
        match value.to_str() {
            Some("-") => Input::Stdin,
            Some(s) if s.starts_with("env:") && s.len() > 4 => Input::Env(s[4..].to_string()),
            _ => Input::File(PathBuf::from(value)),
        }
    }

    /// A file input.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Input::File(path.into())
    }

    /// The file, for a file input.
    pub fn as_file(&self) -> Option<&Path> {
        match self {
            Input::File(p) => Some(p),
            Input::Stdin | Input::Env(_) => None,
        }
    }

    /// The value as the user would write it (`-`, `env:NAME` or the path), naming
    /// the input in messages.
    pub fn label(&self) -> PathBuf {
        match self {
            Input::File(p) => p.clone(),
            Input::Stdin => PathBuf::from("-"),
            Input::Env(name) => PathBuf::from(format!("env:{name}")),
        }
    }

    /// Reads the whole input: a regular file of at most [`MAX_FILE_SIZE`] bytes,
    /// standard input, or the variable's value. `what` says what it was meant to
    /// hold ("certificate file") in errors.
    pub fn read(&self, what: &'static str) -> Result<Zeroizing<Vec<u8>>, ReadError> {
        let label = self.label();
        let data = match self {
            Input::File(path) => read_regular(what, path)?,
            Input::Stdin => {
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
                    Err(kind) => {
                        return Err(ReadError::Io {
                            what,
                            path: label,
                            source: std::io::Error::from(*kind),
                        });
                    }
                }
            }
            // The bytes as they are: a value that is not UTF-8 is still set, and the
            // parser that reads it says what is wrong with it.
            Input::Env(name) => match std::env::var_os(name) {
                Some(v) => Zeroizing::new(std::os::unix::ffi::OsStringExt::into_vec(v)),
                None => {
                    return Err(ReadError::EnvMissing {
                        what,
                        path: label,
                        name: name.clone(),
                    });
                }
            },
        };
        if data.len() as u64 > MAX_FILE_SIZE {
            return Err(ReadError::TooLarge { what, path: label });
        }
        if data.is_empty() {
            return Err(ReadError::Empty { what, path: label });
        }
        Ok(data)
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::error::shorten_path(&self.label()))
    }
}

/// Reads what a user named with a path-like flag value (a file, `-` or `env:NAME`;
/// see [`Input::parse`]), for the flags that are not part of an identity.
pub fn read_file(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    Input::parse(path).read(what)
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
