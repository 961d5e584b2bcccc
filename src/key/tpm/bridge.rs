//! swtpm's unix socket for libtss2 3.2, whose swtpm TCTI reaches swtpm over TCP
//! only: a loopback bridge owned by the TPM connection of one key.
//!
//! libtss2 3.2.1's `tcti-swtpm` knows `host=` and `port=` (`path=` came in 4.0).
//! Observed with strace, a connection to it goes:
//! - at initialisation, a connect-and-close to `port` (a sanity check), then one
//!   connection to the control channel at `port + 1` carrying
//!   `CMD_SET_LOCALITY 0` (initialisation fails without it);
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
//! when the bridge is dropped, after the TPM context that uses it (which flushes
//! its objects through it). Loopback TCP ports can be reached by every local
//! user, so each accepted connection must come from a socket of this very
//! process (its owner and inode, asked of the kernel by sock_diag, the inode
//! among `/proc/self/fd`), or it is closed unread: no other process, of this user
//! or another, reaches swtpm through the bridge.
//!
//! # Why a bridge (the decision for issue 14, item 2)
//!
//! - `device:SOCKET` does not work: libtss2's device TCTI `open()`s the path, and
//!   a unix socket gives `ENXIO` (checked with `tpm2_getrandom`).
//! - libtss2's `cmd:` TCTI (a relay process on stdin/stdout) has no variant in
//!   tss-esapi 7.7's `TctiNameConf` (device, mssim, swtpm, tabrmd), and would
//!   exec a process per key; tabrmd needs its D-Bus daemon; a TCTI written in
//!   Rust and handed to `Esys_Initialize` needs `unsafe` FFI, which the crate
//!   denies; libtss2 4 (`swtpm:path=`) is not in Debian 12, and tss-esapi 7.7
//!   would drop the `path=` option anyway (rust-tss-esapi#661).
//! - A pure-Rust TPM 2.0 stack (issue 14, item 1 (b)) would speak to the socket
//!   directly, at the price of owning the whole TSS: too large for this change.
//!
//! The bridge costs about 320 lines of code, a thread per open key over a socket,
//! and little time: its figures are in BENCHMARKS.md. What could break it: no
//! IPv4 loopback or no two adjacent free ports (the key fails with "cannot
//! listen on loopback"); a kernel without sock_diag for TCP (the bridge falls
//! back to reading `/proc/net/tcp`, about 10 ms per TPM command); no `/proc`
//! (every connection is refused, and the key fails as unreachable). A libtss2
//! that keeps one connection open, or reconnects per command, works either way.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// How long a relayed connection may stay silent (both ways) before the bridge
/// closes it: as long as the helper's parent waits for a reply (a test in the
/// helper module keeps the two equal; the bridge imports nothing of the helper).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

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
/// process: its owner is this user and its inode is one of this process's
/// descriptors.
fn from_this_process(peer: SocketAddr, local: SocketAddr) -> bool {
    let Some(owner) = socket_owner(peer, local) else {
        return false;
    };
    if owner.uid != rustix::process::geteuid().as_raw() || owner.inode == 0 {
        return false;
    }
    let wanted = format!("socket:[{}]", owner.inode);
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())
    })
}

/// The owner and inode of a TCP socket.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    uid: u32,
    inode: u64,
}

/// Who holds the socket whose local address is `from` and remote address `to`:
/// asked of the kernel by sock_diag (one exact lookup), else read from
/// `/proc/net/tcp` (which the kernel builds by walking every TCP socket: about
/// 10 ms a read).
fn socket_owner(from: SocketAddr, to: SocketAddr) -> Option<Owner> {
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        return None;
    };
    match sock_diag(from, to) {
        Ok(owner) => owner,
        Err(e) => {
            tracing::debug!(error = %e, "sock_diag unavailable; reading /proc/net/tcp");
            let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
            proc_net_tcp_owner(&table, from, to)
        }
    }
}

/// Asks the kernel (netlink `SOCK_DIAG_BY_FAMILY`, an exact lookup) for the TCP
/// socket `from` → `to`. `Ok(None)`: there is none (it closed already).
fn sock_diag(from: SocketAddrV4, to: SocketAddrV4) -> std::io::Result<Option<Owner>> {
    use socket2::{Domain, Protocol, Socket, Type};
    const AF_NETLINK: i32 = 16;
    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    const AF_INET: u8 = 2;
    const IPPROTO_TCP: u8 = 6;
    let netlink = Socket::new(
        Domain::from(AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(NETLINK_SOCK_DIAG)),
    )?;
    netlink.set_read_timeout(Some(Duration::from_secs(1)))?;
    // struct nlmsghdr, then struct inet_diag_req_v2 (linux/inet_diag.h).
    let mut request = Vec::with_capacity(72);
    request.extend_from_slice(&72u32.to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    request.extend_from_slice(&[AF_INET, IPPROTO_TCP, 0, 0]);
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    request.extend_from_slice(&from.port().to_be_bytes());
    request.extend_from_slice(&to.port().to_be_bytes());
    for address in [from.ip(), to.ip()] {
        request.extend_from_slice(&address.octets());
        request.extend_from_slice(&[0; 12]);
    }
    request.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    request.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    netlink.send(&request)?;
    let mut reply = [0u8; 512];
    let n = (&netlink).read(&mut reply)?;
    let reply = &reply[..n];
    let u16_at = |at: usize| {
        reply
            .get(at..at + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        reply
            .get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    match u16_at(4) {
        // An error (ENOENT: no such socket).
        Some(NLMSG_ERROR) => Ok(None),
        // struct inet_diag_msg after the header: uid at 64, inode at 68.
        Some(SOCK_DIAG_BY_FAMILY) => {
            Ok(u32_at(16 + 64)
                .zip(u32_at(16 + 68))
                .map(|(uid, inode)| Owner {
                    uid,
                    inode: inode.into(),
                }))
        }
        _ => Err(std::io::Error::other("unexpected sock_diag reply")),
    }
}

/// The owner of the socket `from` → `to` in a `/proc/net/tcp` table.
fn proc_net_tcp_owner(table: &str, from: SocketAddrV4, to: SocketAddrV4) -> Option<Owner> {
    // The kernel prints the address as the native-endian value of its bytes.
    let hex = |a: SocketAddrV4| {
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
            [_, local, remote, _, _, _, _, uid, _, inode, ..]
                if *local == from && *remote == to =>
            {
                Some(Owner {
                    uid: uid.parse().ok()?,
                    inode: inode.parse().ok()?,
                })
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
        let peer: SocketAddrV4 = "127.0.0.1:40000".parse().unwrap();
        let local: SocketAddrV4 = "127.0.0.1:2321".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(
                proc_net_tcp_owner(table, peer, local),
                Some(Owner {
                    uid: 1000,
                    inode: 222
                })
            );
            assert_eq!(proc_net_tcp_owner(table, local, peer), None);
        }
        let other: SocketAddrV4 = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(proc_net_tcp_owner(table, other, local), None);
    }

    #[test]
    fn sock_diag_and_proc_net_tcp_agree_on_the_owner() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (SocketAddr::V4(from), SocketAddr::V4(to)) =
            (client.local_addr().unwrap(), client.peer_addr().unwrap())
        else {
            panic!("IPv4 loopback");
        };
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let from_proc = proc_net_tcp_owner(&table, from, to).expect("in /proc/net/tcp");
        assert_eq!(from_proc.uid, rustix::process::geteuid().as_raw());
        match sock_diag(from, to) {
            Ok(owner) => assert_eq!(owner, Some(from_proc)),
            // A kernel without inet_diag: the bridge falls back to /proc/net/tcp.
            Err(e) => eprintln!("sock_diag unavailable here: {e}"),
        }
        drop(client);
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
