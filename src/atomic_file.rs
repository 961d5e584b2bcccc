//! Private files written safely: atomic replace, advisory locks, no-follow opens.
//!
//! One implementation for every file iamra writes: the shared credentials file
//! (`update`), the ECS token file (`serve`) and the credential cache.
//!
//! - [`write_atomically`] writes a temporary file in the same folder (created
//!   exclusively with mode 0600, never through a symlink), syncs it, sets its mode
//!   (and owner or group), renames it over the target and syncs the folder, so a
//!   reader sees the old file or the new one, never a mix. On failure the temporary
//!   file is removed.
//! - [`FileLock`] is an exclusive advisory lock (`flock`) on a lock file opened
//!   with `O_NOFOLLOW`, so a symlink planted as the lock file never makes iamra
//!   create or lock another file.
//! - [`create_folder`] makes a missing folder with mode 0700.
//!
//! Errors name the operation and the path ([`FileError`]).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::os::unix::fs::{PermissionsExt as _, fchown};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Mode of a private file iamra creates.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of a folder iamra creates.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// An operation on a file or folder failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    /// The operation failed.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// What was being done ("lock", "create the folder", ...).
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file to replace exists and is not a regular file.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
}

impl FileError {
    /// The path and an I/O error, for callers whose errors have that shape.
    pub(crate) fn into_path_and_io(self) -> (PathBuf, std::io::Error) {
        match self {
            Self::Io { path, source, .. } => (path, source),
            Self::NotAFile { path } => (
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ),
        }
    }
}

/// A closure turning an I/O error into a [`FileError`] naming `what` and `path`.
pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError::Io { what, path, source }
}

/// How [`write_atomically`] sets the mode of the file it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Always this mode.
    Exactly(u32),
    /// Keep an existing file's owner, but always this mode.
    KeepOwner(u32),
    /// Always this mode, and this group (the file is given to the group before it
    /// appears under its name).
    ExactlyWithGroup(u32, u32),
}

/// Opens `path` for writing without following a symlink at it: created with mode
/// 0600 when missing, never truncated.
pub(crate) fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// The lock file of `file`: `<name>.lock` next to it.
pub(crate) fn lock_path_of(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    file.with_file_name(name)
}

/// An exclusive advisory lock on a lock file, released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the lock of `lock_path` (created 0600 if missing, never through a
    /// symlink), blocking while another process holds it.
    pub(crate) fn acquire(lock_path: &Path) -> Result<Self, FileError> {
        let file = open_no_follow(lock_path).map_err(io("open the lock file", lock_path))?;
        file.lock().map_err(io("lock", lock_path))?;
        Ok(Self { _file: file })
    }

    /// Takes the lock of `lock_path`, waiting at most `limit` while another process
    /// holds it; `Ok(None)` when the wait ran out.
    pub(crate) fn acquire_within(
        lock_path: &Path,
        limit: Duration,
    ) -> Result<Option<Self>, FileError> {
        let file = open_no_follow(lock_path).map_err(io("open the lock file", lock_path))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(Self { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", lock_path)(e)),
            }
            let waited = start.elapsed();
            if waited >= limit {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(25).min(limit - waited));
        }
    }
}

/// Creates the folder of `file` (mode 0700) when it is missing.
pub(crate) fn create_folder(file: &Path) -> Result<(), FileError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(dir)
            .map_err(io("create the folder", dir)),
        _ => Ok(()),
    }
}

/// Replaces `path` with `data` atomically (temporary file in the same folder, fsync,
/// rename, fsync of the folder). The caller holds the lock if it needs one.
pub(crate) fn write_atomically(path: &Path, data: &[u8], mode: Mode) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(FileError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("inspect", path)(e)),
    };
    let (Mode::Exactly(final_mode)
    | Mode::ExactlyWithGroup(final_mode, _)
    | Mode::KeepOwner(final_mode)) = mode;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let (tmp_path, mut tmp) = loop {
        let candidate = dir.join(format!(
            ".{name}.iamra-{}-{:016x}.tmp",
            std::process::id(),
            rand::random::<u64>()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&candidate)
        {
            Ok(f) => break (candidate, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("create a temporary file in", &dir)(e)),
        }
    };
    let result = (|| {
        tmp.write_all(data).map_err(io("write", &tmp_path))?;
        if let Mode::ExactlyWithGroup(_, gid) = mode {
            fchown(&tmp, None, Some(gid)).map_err(io("give the group to", &tmp_path))?;
        }
        tmp.set_permissions(std::fs::Permissions::from_mode(final_mode))
            .map_err(io("set the mode of", &tmp_path))?;
        if let (Mode::KeepOwner(_), Some(m)) = (mode, &existing) {
            let ours = tmp.metadata().map_err(io("inspect", &tmp_path))?;
            if (ours.uid(), ours.gid()) != (m.uid(), m.gid())
                && let Err(e) = fchown(&tmp, Some(m.uid()), Some(m.gid()))
            {
                tracing::warn!(
                    "cannot give {} its previous owner {}:{} back ({e}); it is now owned by this process",
                    path.display(),
                    m.uid(),
                    m.gid()
                );
            }
        }
        tmp.sync_all().map_err(io("sync", &tmp_path))?;
        std::fs::rename(&tmp_path, path).map_err(io("replace", path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the folder", &dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_with_mode_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, b"new", Mode::Exactly(0o600)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }

    #[test]
    fn refuses_to_replace_a_folder_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomically(dir.path(), b"x", Mode::Exactly(0o600)).unwrap_err();
        assert!(matches!(&e, FileError::NotAFile { path } if path == dir.path()));
        assert!(e.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn a_symlink_planted_as_the_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        let lock = dir.path().join("f.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let e = FileLock::acquire(&lock).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot open the lock file"),
            "{e}"
        );
        assert!(!victim.exists());
    }

    #[test]
    fn a_held_lock_times_out_and_is_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_path_of(&dir.path().join("entry.json"));
        assert_eq!(lock.file_name().unwrap(), "entry.json.lock");
        let held = FileLock::acquire(&lock).unwrap();
        let mode = std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            FileLock::acquire_within(&lock, Duration::from_millis(60))
                .unwrap()
                .is_none()
        );
        drop(held);
        assert!(
            FileLock::acquire_within(&lock, Duration::from_millis(60))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn creates_a_missing_folder_with_mode_0700() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/f");
        create_folder(&file).unwrap();
        let mode = std::fs::metadata(dir.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }
}
