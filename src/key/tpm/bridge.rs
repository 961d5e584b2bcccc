//! swtpm's unix socket for libtss2 3.2, whose swtpm TCTI reaches swtpm over TCP
//! only: a loopback bridge owned by the TPM connection of one key.
//!
//! libtss2 3.2.1's `tcti-swtpm` knows `host=` and `port=` (`path=` came in 4.0).
//! Observed with strace, a connection to it goes:
//! - at initialisation, a connect-and-close to `port` (a sanity check), then one
//!   connection to the control channel at `port + 1` carrying
//!   `CMD_SET_LOCALITY 0`;
//! - then one connection to `port` per TPM command (command, response, close).
//!
//! [`Bridge::start`] listens on two adjacent ephemeral ports of 127.0.0.1 and
//! hands libtss2 `swtpm:host=127.0.0.1,port=P`. Each TPM-command connection is
//! relayed byte for byte to a fresh connection to swtpm's socket; control
//! connections go to `SOCKET.ctrl` (swtpm's `--ctrl type=unixio,path=…`, where
//! libtss2 4 looks for it) when that socket exists. Without one (the reference
//! helper's `TPM_DEVICE` never uses a control channel), the bridge answers the
//! one control command ESYS sends itself: locality 0, which a swtpm without a
//! control channel cannot leave. Any other control command is refused.
//!
//! Bounds: one connection is served at a time (libtss2 sends one command at a
//! time); a connection idle for [`IDLE_TIMEOUT`] is closed; the listeners close
//! when the bridge is dropped, after the TPM context that uses it. Loopback TCP
//! ports can be reached by every local user, so each accepted connection must
//! come from a socket of this very process (its inode, found in
//! `/proc/net/tcp`, among `/proc/self/fd`), or it is closed unread: no other
//! process, of this user or another, can reach swtpm through the bridge.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// How long a relayed connection may stay silent (both ways) before the bridge
/// closes it; as long as the helper's parent waits for a reply.
pub(crate) const IDLE_TIMEOUT: Duration = super::helper::REPLY_TIMEOUT;

/// swtpm's control command that sets the locality (swtpm `tpm_ioctl.h`).
const CMD_SET_LOCALITY: u32 = 0x05;
/// The control channel's failure code (`TPM_FAIL`).
const TPM_FAIL: u32 = 0x09;

/// A running bridge; dropping it stops its thread and closes its listeners.
#[derive(Debug)]
pub(crate) struct Bridge {
    port: u16,
    /// Closed (dropped) to stop the thread.
    stop: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Checks that swtpm answers at `socket`, then starts the bridge.
    pub(crate) fn start(socket: &Path) -> Result<Self, String> {
        UnixStream::connect(socket).map_err(|e| match e.kind() {
            ErrorKind::NotFound => format!("{} does not exist", socket.display()),
            _ => format!(
                "cannot connect to swtpm's unix socket {}: {e}",
                socket.display()
            ),
        })?;
        let (data, ctrl) = port_pair().map_err(|e| format!("cannot listen on loopback: {e}"))?;
        let port = data
            .local_addr()
            .map_err(|e| format!("cannot listen on loopback: {e}"))?
            .port();
        let mut ctrl_path = socket.as_os_str().to_os_string();
        ctrl_path.push(".ctrl");
        let ctrl_path = PathBuf::from(ctrl_path);
        let ctrl_path = is_socket(&ctrl_path).then_some(ctrl_path);
        let (stop, stopped) =
            UnixStream::pair().map_err(|e| format!("cannot start the bridge: {e}"))?;
        let target = Targets {
            socket: socket.to_path_buf(),
            ctrl: ctrl_path,
        };
        let thread = std::thread::Builder::new()
            .name("iamra-swtpm-bridge".into())
            .spawn(move || target.serve(&data, &ctrl, &stopped))
            .map_err(|e| format!("cannot start the bridge: {e}"))?;
        tracing::debug!(socket = %socket.display(), port, "swtpm unix socket bridged to loopback");
        Ok(Bridge {
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The TCTI libtss2 uses to reach the bridge.
    pub(crate) fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // The thread sees the end of `stop` and returns, whatever it waits for.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::debug!("the swtpm bridge thread panicked");
        }
    }
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Two listeners on adjacent loopback ports (libtss2 finds the control channel
/// at the TPM port + 1).
fn port_pair() -> std::io::Result<(TcpListener, TcpListener)> {
    let mut last = None;
    for _ in 0..32 {
        let data = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = data.local_addr()?.port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        match TcpListener::bind((Ipv4Addr::LOCALHOST, next)) {
            Ok(ctrl) => return Ok((data, ctrl)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no two adjacent free ports")))
}

/// Where the bridge relays to.
struct Targets {
    socket: PathBuf,
    ctrl: Option<PathBuf>,
}

impl Targets {
    /// Accepts and serves connections, one at a time, until `stopped` ends.
    fn serve(&self, data: &TcpListener, ctrl: &TcpListener, stopped: &UnixStream) {
        loop {
            let mut fds = [
                PollFd::new(data, PollFlags::IN),
                PollFd::new(ctrl, PollFlags::IN),
                PollFd::new(stopped, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "the swtpm bridge cannot wait; stopping");
                    return;
                }
            }
            if !fds[2].revents().is_empty() {
                return;
            }
            let (data_ready, ctrl_ready) =
                (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
            if data_ready && let Some(client) = accept(data) {
                match UnixStream::connect(&self.socket) {
                    Ok(tpm) => relay(client, tpm, stopped),
                    // libtss2 sees the connection close and reports an I/O error.
                    Err(e) => tracing::debug!(error = %e, "cannot reach swtpm's unix socket"),
                }
            }
            if ctrl_ready && let Some(client) = accept(ctrl) {
                match &self.ctrl {
                    Some(path) => match UnixStream::connect(path) {
                        Ok(tpm) => relay(client, tpm, stopped),
                        Err(e) => {
                            tracing::debug!(error = %e, "cannot reach swtpm's control socket");
                        }
                    },
                    None => answer_control(client),
                }
            }
        }
    }
}

/// Accepts one connection if it comes from a socket this process holds open.
fn accept(listener: &TcpListener) -> Option<TcpStream> {
    let (stream, peer) = match listener.accept() {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "the swtpm bridge cannot accept");
            return None;
        }
    };
    let local = stream.local_addr().ok()?;
    if from_this_process(peer, local) {
        Some(stream)
    } else {
        // Another process, or a connection of libtss2 already closed again (its
        // sanity check at initialisation): closed unread either way.
        tracing::debug!(%peer, "closed a swtpm bridge connection from no socket of this process");
        None
    }
}

/// Whether the TCP connection `peer` → `local` was opened by a socket of this
/// process.
fn from_this_process(peer: SocketAddr, local: SocketAddr) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let Some(inode) = socket_inode(&table, peer, local) else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())
    })
}

/// The inode of the socket whose local address is `from` and remote address
/// `to`, in the format of `/proc/net/tcp`.
fn socket_inode(table: &str, from: SocketAddr, to: SocketAddr) -> Option<u64> {
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        return None;
    };
    // The kernel prints the address as the native-endian value of its bytes.
    let hex = |a: std::net::SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        )
    };
    let (from, to) = (hex(from), hex(to));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, local, remote, _, _, _, _, _, _, inode, ..] if *local == from && *remote == to => {
                inode.parse().ok()
            }
            _ => None,
        }
    })
}

/// Copies bytes both ways between `client` and `tpm` until either side closes,
/// the bridge stops, or nothing moves for [`IDLE_TIMEOUT`].
fn relay(mut client: TcpStream, mut tpm: UnixStream, stopped: &UnixStream) {
    let mut buf = [0u8; 4096];
    let timeout = Timespec {
        tv_sec: IDLE_TIMEOUT.as_secs() as _,
        tv_nsec: 0,
    };
    loop {
        let mut fds = [
            PollFd::new(&client, PollFlags::IN),
            PollFd::new(&tpm, PollFlags::IN),
            PollFd::new(stopped, PollFlags::IN),
        ];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => {
                tracing::debug!("a swtpm bridge connection was idle too long; closing it");
                return;
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        if !fds[2].revents().is_empty() {
            return;
        }
        let (from_client, from_tpm) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        if from_client && !copy_once(&mut client, &mut tpm, &mut buf) {
            return;
        }
        if from_tpm && !copy_once(&mut tpm, &mut client, &mut buf) {
            return;
        }
    }
}

/// Moves what `from` has to `to`; false at the end of `from` or on an error.
fn copy_once(from: &mut impl Read, to: &mut impl Write, buf: &mut [u8]) -> bool {
    match from.read(buf) {
        Ok(0) => false,
        Ok(n) => to.write_all(&buf[..n]).is_ok(),
        Err(e) => e.kind() == ErrorKind::Interrupted,
    }
}

/// Answers a control connection when swtpm has no control socket: `CMD_SET_LOCALITY`
/// to locality 0 (which such a swtpm is always in) succeeds, anything else fails.
fn answer_control(mut client: TcpStream) {
    let mut request = [0u8; 5];
    let read = client
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .and_then(|()| client.read_exact(&mut request));
    if read.is_err() {
        return;
    }
    let command = u32::from_be_bytes([request[0], request[1], request[2], request[3]]);
    let code = if command == CMD_SET_LOCALITY && request[4] == 0 {
        0
    } else {
        tracing::debug!(
            command,
            "swtpm has no control socket: refusing a control command"
        );
        TPM_FAIL
    };
    let _ = client.write_all(&code.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_socket_is_found_in_the_proc_table() {
        // A /proc/net/tcp excerpt (x86, little-endian): 127.0.0.1:40000 -> 127.0.0.1:2321.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0911 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:9C40 0100007F:0911 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1\n";
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:2321".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(socket_inode(table, peer, local), Some(222));
            assert_eq!(socket_inode(table, local, peer), None);
        }
        let other: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(socket_inode(table, other, local), None);
    }

    #[test]
    fn only_this_process_reaches_the_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mine = TcpStream::connect(addr).unwrap();
        let accepted = accept(&listener).expect("a connection of this process is accepted");
        assert_eq!(accepted.peer_addr().unwrap(), mine.local_addr().unwrap());
        // A connection from another process (a shell's /dev/tcp) is closed unread.
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "exec 3<>/dev/tcp/127.0.0.1/{}; sleep 0.2",
                addr.port()
            ))
            .spawn();
        let Ok(mut child) = status else { return };
        assert!(accept(&listener).is_none(), "another process is refused");
        let _ = child.wait();
    }
}
