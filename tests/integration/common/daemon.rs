//! Long-running `iamra` processes (`serve`, `update`, `exec`) and waiting: start one
//! and read its first stdout lines, poll until something holds, send signals, bound
//! a wait for a child's output.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Endpoint, credential_flags, iamra_command, td};

/// Generous limit for something that happens within seconds (a hang guard, not a
/// timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
pub fn poll_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it returns `Some`; fails the test after [`PATIENCE`], naming `what`.
#[track_caller]
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll_until(PATIENCE, f).unwrap_or_else(|| panic!("gave up waiting for {what}"))
}

/// Sends signal `name` (`TERM`, `INT`, `HUP`, `KILL`, or with a leading `-`) to
/// process `pid` directly (no `kill` program needed: a minimal system may lack
/// procps). Returns whether it was delivered.
pub fn send_signal(pid: u32, name: &str) -> bool {
    use rustix::process::{Pid, Signal, kill_process};
    let signal = match name.trim_start_matches('-') {
        "TERM" => Signal::TERM,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        "KILL" => Signal::KILL,
        other => panic!("send_signal: no signal {other:?} here"),
    };
    let pid = Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    kill_process(pid, signal).is_ok()
}

/// `child`'s `wait_with_output`, killing it after `limit`; with whether it
/// finished in time.
pub fn output_within(child: Child, limit: Duration) -> (Output, bool) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let guard =
        std::thread::spawn(move || rx.recv_timeout(limit).is_err() && send_signal(pid, "KILL"));
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    let killed = guard.join().unwrap();
    (out, !killed)
}

/// `child`'s `wait_with_output`; a child still running after [`PATIENCE`] is killed
/// and fails the test (a hang, not a stalled suite).
#[track_caller]
pub fn output_within_patience(child: Child) -> Output {
    let (out, in_time) = output_within(child, PATIENCE);
    assert!(in_time, "killed after {PATIENCE:?}: {out:?}");
    out
}

/// Runs `cmd` with `input` on its standard input (written from another thread,
/// then closed), capturing stdout and stderr, killing it after `limit`; with
/// whether it finished in time.
pub fn output_with_stdin_within(mut cmd: Command, input: &[u8], limit: Duration) -> (Output, bool) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A process that exits without reading its input closes the pipe: not an error here.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let done = output_within(child, limit);
    let _ = writer.join();
    done
}

/// [`output_with_stdin_within`] [`PATIENCE`]; a hang fails the test.
#[track_caller]
pub fn output_with_stdin(cmd: Command, input: &[u8]) -> Output {
    let (out, in_time) = output_with_stdin_within(cmd, input, PATIENCE);
    assert!(in_time, "killed after {PATIENCE:?}: {out:?}");
    out
}

/// A long-running `iamra` (serve, update), stopped with SIGTERM or killed on drop.
pub struct Daemon {
    child: Child,
    /// The first stdout lines (serve prints its endpoints).
    pub lines: Vec<String>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `iamra ARGS` (the clean command of [`iamra_command`]) and reads
    /// `lines` stdout lines; `Err(stderr)` when it exits before printing them.
    pub fn start(args: &[String], env: &[(&str, &str)], lines: usize) -> Result<Daemon, String> {
        Self::start_command(iamra_command(args, env), lines)
    }

    /// Starts `cmd` (a clean iamra command, perhaps through a wrapper) and reads
    /// `lines` stdout lines; `Err(stderr)` when it exits before printing them.
    pub fn start_command(mut cmd: Command, lines: usize) -> Result<Daemon, String> {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start iamra");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut read = Vec::new();
        for _ in 0..lines {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.wait();
                return Err(std::fs::read_to_string(&stderr).unwrap_or_default());
            }
            read.push(line.trim_end().to_string());
        }
        Ok(Daemon {
            child,
            lines: read,
            stderr,
            _dir: dir,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The IMDS address (`127.0.0.1:PORT`) that `serve` printed on its first line.
    #[track_caller]
    pub fn imds_addr(&self) -> String {
        let first = self.lines.first().map_or("", String::as_str);
        first
            .strip_prefix("export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim_end_matches('/')
            .to_string()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `signal` (TERM, INT) and waits for the exit.
    pub fn stop_with(mut self, signal: &str) -> (ExitStatus, String) {
        let ok = send_signal(self.child.id(), signal);
        assert!(ok, "kill -{signal}");
        let status = self.child.wait().unwrap();
        let stderr = self.stderr();
        (status, stderr)
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        poll_until(limit, || self.child.try_wait().unwrap())
    }

    /// SIGTERM, then the exit status and stderr.
    pub fn stop(self) -> (ExitStatus, String) {
        self.stop_with("TERM")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `serve` with its IMDS address.
pub struct Served {
    pub daemon: Daemon,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Served {
    /// Starts `serve --port 0 ARGS`, reading `lines` stdout lines (the first names
    /// the IMDS endpoint); fails the test when serve exits instead.
    pub fn start(args: &[String], env: &[(&str, &str)], lines: usize) -> Served {
        let args = [&["serve".to_string(), "--port".into(), "0".into()], args].concat();
        let daemon =
            Daemon::start(&args, env, lines).unwrap_or_else(|e| panic!("serve failed: {e}"));
        let addr = daemon.imds_addr();
        Served { daemon, addr }
    }
}

/// Starts `serve --port 0` against `ep` with the RSA test identity plus `extra`.
pub fn serve(ep: &Endpoint, extra: &[&str], env: &[(&str, &str)], lines: usize) -> Served {
    let mut args = credential_flags(ep, &td("rsa2048/combined.pem"), None);
    args.extend(extra.iter().map(|s| s.to_string()));
    Served::start(&args, env, lines)
}
