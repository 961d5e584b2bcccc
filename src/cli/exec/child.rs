//! Running the command: descriptors it must not inherit, spawning or replacing the
//! process, forwarding signals, and its exit status.

use std::ffi::{OsStr, OsString};
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::ExitStatus;

use rustix::io::FdFlags;
use rustix::process::{Pid, Signal};
use tokio::signal::unix::{SignalKind, signal};

use super::ExecError;
use super::env::ChildEnv;

/// The descriptors above 2 open at this moment, by number.
fn open_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2)
        .collect()
}

/// Runs `f` on descriptor `fd` if it is open.
fn with_fd<T>(fd: RawFd, f: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
    // SAFETY: the descriptor is only used for the duration of `f`, by fcntl calls
    // that cannot harm any descriptor: if it was closed since it was listed, they
    // fail with EBADF; if its number was reused meanwhile, they read or set the
    // close-on-exec flag of the new one, which everything in iamra sets anyway.
    #[allow(unsafe_code, reason = "fcntl on descriptors listed in /proc/self/fd")]
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    f(fd)
}

/// The descriptors (above 2) that iamra was started with and that a child would
/// inherit: the caller meant them for the command (`iamra exec -- cmd 3<file`).
pub(super) fn inherited_fds() -> Vec<RawFd> {
    open_fds()
        .into_iter()
        .filter(|fd| {
            with_fd(*fd, |b| {
                rustix::io::fcntl_getfd(b).is_ok_and(|f| !f.contains(FdFlags::CLOEXEC))
            })
        })
        .collect()
}

/// Marks close-on-exec every descriptor except stdio and `keep`, so that the
/// command cannot inherit what iamra opened itself: a PKCS#11 module's or the TPM's
/// connection (libraries do not always set the flag), the endpoint's socket.
pub(super) fn close_on_exec_except(keep: &[RawFd]) {
    for fd in open_fds().into_iter().filter(|fd| !keep.contains(fd)) {
        with_fd(fd, |b| {
            if let Ok(flags) = rustix::io::fcntl_getfd(b)
                && !flags.contains(FdFlags::CLOEXEC)
                && let Err(e) = rustix::io::fcntl_setfd(b, flags | FdFlags::CLOEXEC)
            {
                tracing::warn!("cannot keep descriptor {fd} from the command: {e}");
            }
        });
    }
}

/// Checks, before anything is fetched, that `program` names an executable file
/// (found in `path`, the `PATH` value, when it has no `/`), so that a mistyped job
/// fails at once with 127 or 126. Starting it can still fail (a `noexec` mount, an
/// ACL); that is reported the same way.
pub(super) fn check_runnable(program: &OsStr, path: Option<&OsStr>) -> Result<(), ExecError> {
    use std::os::unix::fs::PermissionsExt as _;
    let not_found = || std::io::Error::from(rustix::io::Errno::NOENT);
    let candidates: Vec<PathBuf> = if program.as_bytes().contains(&b'/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::split_paths(path.unwrap_or_default())
            .map(|dir| dir.join(program))
            .collect()
    };
    let mut error = not_found();
    for candidate in candidates {
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return Ok(()),
            Ok(_) => error = std::io::Error::from(rustix::io::Errno::ACCESS),
            Err(_) => {}
        }
    }
    Err(ExecError::spawn(program, error))
}

/// The command to run, with exactly the environment `env`.
fn command(argv: &[OsString], env: &ChildEnv) -> std::process::Command {
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_clear().envs(&env.vars);
    cmd
}

/// Replaces iamra with the command (`--env`: nothing is left to do once the
/// variables are set). Returns only on failure.
pub(super) fn replace_process(argv: &[OsString], env: &ChildEnv) -> ExecError {
    use std::os::unix::process::CommandExt as _;
    let e = command(argv, env).exec();
    ExecError::spawn(&argv[0], e)
}

/// The exit status iamra passes on: the command's, or 128 + N when signal N ended it.
pub(super) fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// The signals passed on to the command, watched from before it starts so that
/// none is lost.
pub(super) struct Forwarder {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Forwarder {
    /// Starts watching SIGINT, SIGTERM and SIGHUP (inside the runtime).
    pub(super) fn new() -> Result<Self, ExecError> {
        let watch = |kind| signal(kind).map_err(ExecError::Signals);
        Ok(Self {
            int: watch(SignalKind::interrupt())?,
            term: watch(SignalKind::terminate())?,
            hup: watch(SignalKind::hangup())?,
        })
    }

    /// Starts `argv` and waits for it to end, passing on every signal iamra
    /// receives meanwhile; returns its exit status (the child is reaped).
    pub(super) async fn run(
        mut self,
        argv: &[OsString],
        env: ChildEnv,
    ) -> Result<ExitStatus, ExecError> {
        let mut child = tokio::process::Command::from(command(argv, &env))
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| ExecError::spawn(&argv[0], e))?;
        drop(env);
        let pid = child
            .id()
            .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?));
        loop {
            let (sig, name) = tokio::select! {
                status = child.wait() => return status.map_err(ExecError::Wait),
                _ = self.int.recv() => (Signal::INT, "SIGINT"),
                _ = self.term.recv() => (Signal::TERM, "SIGTERM"),
                _ = self.hup.recv() => (Signal::HUP, "SIGHUP"),
            };
            // The child is not reaped before `wait` returns, so the pid is still its.
            if let Some(pid) = pid {
                tracing::debug!("passing {name} on to the command (pid {pid:?})");
                if let Err(e) = rustix::process::kill_process(pid, sig) {
                    tracing::warn!("cannot pass {name} on to the command: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_looked_up_as_the_shell_does() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), dir.path()]).unwrap();
        let code = |p: &str, path: &OsStr| match check_runnable(OsStr::new(p), Some(path)) {
            Ok(()) => 0,
            Err(e) => e.exit_code(),
        };
        assert_eq!(code("job", &path), 126, "not executable");
        assert_eq!(code(script.to_str().unwrap(), &path), 126);
        assert_eq!(code("nosuchjob", &path), 127);
        assert_eq!(code("/nonexistent/job", &path), 127);
        assert_eq!(code(dir.path().to_str().unwrap(), &path), 126, "a folder");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(code("job", &path), 0);
        assert_eq!(code("job", OsStr::new("")), 127, "empty PATH");
    }

    #[test]
    fn exit_status_is_the_commands_or_128_plus_the_signal() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
