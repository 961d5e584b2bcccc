//! Reading the files a user names on the command line.
//!
//! Every read goes through [`read_file`] so that directories, FIFOs, empty and
//! oversized files are reported the same way, with the path and what the file was
//! meant to be, and so that file contents that may hold key material are zeroized.

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
    #[error("cannot read {what} {}", path.display())]
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
    #[error("{what} {} is not a regular file", path.display())]
    NotAFile {
        /// What the file was meant to hold.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("{what} {} is empty", path.display())]
    Empty {
        /// What the file was meant to hold.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_FILE_SIZE`].
    #[error("{what} {} is larger than 1 MiB", path.display())]
    TooLarge {
        /// What the file was meant to hold.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
}

/// Reads a whole regular file of at most [`MAX_FILE_SIZE`] bytes.
pub fn read_file(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ReadError> {
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
    let mut data = Zeroizing::new(Vec::with_capacity(meta.len().min(MAX_FILE_SIZE) as usize));
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
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
