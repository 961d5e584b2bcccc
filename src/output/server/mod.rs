//! `serve` output: a local credentials endpoint for programs that cannot run a
//! process per AWS call.
//!
//! Wire contract (HTTP/1.1 on `--bind`:`--port`, default `127.0.0.1:9911`):
//!
//! | method and path | answer |
//! |---|---|
//! | `PUT /latest/api/token` | an IMDSv2 session token (100 characters, `text/plain`) valid for `X-aws-ec2-metadata-token-ttl-seconds` (1–21600, default 21600), echoed in that header; 400 `invalid token TTL`; 400 with `X-Forwarded-For` or `Forwarded`; 405 for other methods |
//! | `GET /latest/meta-data/iam/security-credentials[/]` | the role name (last segment of `--role-arn`) |
//! | `GET /latest/meta-data/iam/security-credentials/<role>[/]` | `{"AccessKeyId","SecretAccessKey","Token","Code":"Success","Type":"AWS-HMAC","Expiration","LastUpdated"}` and a newline; 404 for another role name |
//! | `GET /latest/meta-data/iam/info[/]` | `{"Code":"Success","LastUpdated","InstanceProfileArn","InstanceProfileId"}` and a newline (synthesised from the role) |
//! | `GET /v1/credentials` with `Authorization: <token>` | ECS container credentials `{"RoleArn","AccessKeyId","SecretAccessKey","Token","Expiration","AccountId"}` (only when an ECS token is configured) |
//!
//! The IMDS rows answer only when [`ServerConfig::imds`] is on (`serve` turns it off
//! when an ECS token is configured, unless `--imds true`): IMDSv2 has no secret, any
//! local process can `PUT` for a token, so the ECS token restricts access only with
//! the IMDS routes off.
//!
//! Every IMDS `GET` needs a live token in `X-aws-ec2-metadata-token` (401 `no token
//! provided` / `invalid token provided`, the token's remaining lifetime echoed in
//! the TTL header); the ECS path needs the exact token (401 otherwise). Times are
//! `YYYY-MM-DDTHH:MM:SSZ` in UTC. Once the last good credentials have expired (every
//! refresh since has failed), both credential paths answer 503 with the reason, never
//! stale or empty credentials. Anything else is 404. A request with an `Origin`
//! header, or whose `Host` is not an IP address or `localhost`, is refused with 403
//! (a web page must not reach the endpoint through DNS rebinding).
//!
//! Limits: headers must arrive within 5 s (idle keep-alive connections are closed
//! after as long), at most 16 KiB of them; bodies (never needed) are read up to
//! 4 KiB within 5 s, else 413/408; at most 1024 connections at once (more wait in
//! the backlog). IMDS tokens are not stored at all (see [`imds::TokenIssuer`]), so
//! `PUT`s cannot fill memory or push out another client's token.
//! [`ServerConfig::imds`] off turns the IMDS routes off (404), for a server whose
//! credentials belong only to the holder of the ECS token (`serve` with a token,
//! `iamra exec`).
//! Every accepted connection gets IP TTL / IPv6 hop limit `--hop-limit` (default 1),
//! so that answers cannot leave the host; a non-loopback `--bind` needs
//! `--allow-non-loopback-bind` and hop limit 1. Tokens and credentials are never
//! logged. On shutdown the listener closes, keep-alive connections are told to
//! close, and requests in flight get up to 5 s.

pub mod ecs;
pub mod imds;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use secrecy::SecretString;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::refresh::Snapshot;
use crate::session::Arn;

/// The default `--port`.
pub const DEFAULT_PORT: u16 = 9911;

/// Request and connection limits: `Limits::default()` and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Time allowed for a request's headers (and for an idle keep-alive connection).
    pub header_timeout: Duration,
    /// Time allowed for a request's body.
    pub body_timeout: Duration,
    /// Largest request body read.
    pub max_body: usize,
    /// Largest request head (request line and headers).
    pub max_head: usize,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time given to requests in flight at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            max_body: 4096,
            max_head: 16 * 1024,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// What to serve and where: [`ServerConfig::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Allow an address other than loopback (then the hop limit must be 1).
    pub allow_non_loopback: bool,
    /// IP TTL / IPv6 hop limit of every connection (1–255).
    pub hop_limit: u8,
    /// The role whose credentials are served.
    pub role_arn: Arn,
    /// The ECS endpoint's `Authorization` token; `None` disables that endpoint.
    pub ecs_token: Option<SecretString>,
    /// Whether the IMDSv2 routes answer. IMDSv2 has no secret: any local process
    /// can get a session token with a `PUT`. With the IMDS routes off, only the ECS
    /// route answers (to holders of its token), and every IMDS path is 404.
    pub imds: bool,
    /// Limits.
    pub limits: Limits,
    /// Serving threads (at least one); see [`default_threads`].
    pub threads: usize,
}

with_setters!(Limits {
    with_header_timeout => header_timeout: Duration,
    with_body_timeout => body_timeout: Duration,
    with_max_body => max_body: usize,
    with_max_head => max_head: usize,
    with_max_connections => max_connections: usize,
    with_shutdown_grace => shutdown_grace: Duration,
});

impl ServerConfig {
    /// Serves `role_arn`'s credentials on `addr` (a loopback address), with the
    /// defaults of `iamra serve`: hop limit 1, IMDSv2 routes on, no ECS route,
    /// default [`Limits`], [`default_threads`] threads.
    pub fn new(addr: SocketAddr, role_arn: Arn) -> Self {
        Self {
            addr,
            allow_non_loopback: false,
            hop_limit: 1,
            role_arn,
            ecs_token: None,
            imds: true,
            limits: Limits::default(),
            threads: default_threads(),
        }
    }
}

with_setters!(ServerConfig {
    with_allow_non_loopback => allow_non_loopback: bool,
    with_hop_limit => hop_limit: u8,
    with_ecs_token => ecs_token: Option<SecretString>,
    with_imds => imds: bool,
    with_limits => limits: Limits,
    with_threads => threads: usize,
});

/// Half the cores (rounded up), at most four. The clients are on this machine too
/// (the hop limit sees to that) and need cores of their own; one thread answers
/// tens of thousands of requests a second from memory, and on a two-core machine
/// shared with its load generator it gave the better tail latency and CPU cost per
/// request (BENCHMARKS.md).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2).clamp(1, 4))
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A non-loopback address without the flag that allows it.
    #[error(
        "--bind {0} is not a loopback address: pass --allow-non-loopback-bind to listen there (with hop limit 1)"
    )]
    NotLoopback(std::net::IpAddr),
    /// A non-loopback address with a hop limit above 1.
    #[error("--hop-limit {0} cannot be used with the non-loopback --bind {1}: it must be 1 there")]
    HopLimitNotOne(u8, std::net::IpAddr),
    /// A hop limit of 0.
    #[error("--hop-limit 0 is invalid: use 1 to 255")]
    HopLimitZero,
    /// The role ARN has no role name.
    #[error("--role-arn {0} has no role name")]
    NoRoleName(String),
    /// The socket could not be set up.
    #[error("cannot {what} on {addr}")]
    Socket {
        /// What failed.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A serving thread could not start.
    #[error("cannot start a serving thread: {0}")]
    Thread(#[source] std::io::Error),
    /// Serving ended on its own.
    #[error("stopped serving: {0}")]
    Stopped(&'static str),
    /// Neither the IMDS nor the ECS routes are on.
    #[error(
        "nothing to serve: the IMDS routes are off (--imds false) and no ECS token is configured (--ecs-token-file)"
    )]
    NothingToServe,
    /// The ECS token file is unusable.
    #[error("ECS token file {} {reason}", path.display())]
    TokenFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The role facts the IMDS answers need.
#[derive(Debug, Clone)]
struct Role {
    name: String,
    arn: String,
    account: String,
    instance_profile_arn: String,
    instance_profile_id: String,
}

impl Role {
    fn of(arn: &Arn) -> Result<Self, ServeError> {
        let path = arn
            .resource()
            .strip_prefix("role/")
            .unwrap_or(arn.resource());
        let name = path.rsplit('/').next().unwrap_or_default();
        if name.is_empty() {
            return Err(ServeError::NoRoleName(arn.as_str().to_string()));
        }
        // There is no instance profile; name one after the role, with a stable id.
        let digest = ring::digest::digest(&ring::digest::SHA256, arn.as_str().as_bytes());
        const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let id: String = digest.as_ref()[..17]
            .iter()
            .map(|b| B32[usize::from(b % 32)] as char)
            .collect();
        Ok(Self {
            name: name.to_string(),
            arn: arn.as_str().to_string(),
            account: arn.account().to_string(),
            instance_profile_arn: format!(
                "arn:{}:iam::{}:instance-profile/{path}",
                arn.partition(),
                arn.account()
            ),
            instance_profile_id: format!("AIPA{id}"),
        })
    }
}

/// Shared by every connection.
struct State {
    role: Role,
    tokens: imds::TokenIssuer,
    /// Whether the IMDS routes answer.
    imds: bool,
    ecs: Option<ecs::Token>,
    creds: watch::Receiver<Snapshot>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    rendered: std::sync::RwLock<Option<Documents>>,
}

/// A response body that holds secrets: the buffer is zeroized when the last
/// reference to it (ours, or hyper's once it is sent) is dropped.
struct SecretBody(zeroize::Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for SecretBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn secret_body(mut text: zeroize::Zeroizing<String>) -> Bytes {
    Bytes::from_owner(SecretBody(zeroize::Zeroizing::new(
        std::mem::take(&mut *text).into_bytes(),
    )))
}

/// The credentials documents, rendered once per set of credentials.
#[derive(Clone)]
struct Documents {
    /// The credentials they were rendered from.
    of: Arc<crate::credentials::TemporaryCredentials>,
    imds: Bytes,
    ecs: Bytes,
}

impl State {
    /// The documents for `c` (obtained at `obtained_at`), from the cache when they
    /// were rendered for these very credentials.
    fn documents(
        &self,
        c: &Arc<crate::credentials::TemporaryCredentials>,
        obtained_at: Option<::time::OffsetDateTime>,
    ) -> Documents {
        if let Some(d) = self
            .rendered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|d| Arc::ptr_eq(&d.of, c))
        {
            return d.clone();
        }
        let d = Documents {
            of: c.clone(),
            imds: secret_body(imds::credentials_json(
                c,
                obtained_at.unwrap_or_else(|| self.clock.now()),
            )),
            ecs: secret_body(ecs::credentials_json(&self.role.arn, &self.role.account, c)),
        };
        *self.rendered.write().unwrap_or_else(|p| p.into_inner()) = Some(d.clone());
        d
    }
}

/// A bound, not yet serving, server.
#[derive(Debug)]
pub struct Server {
    listener: std::net::TcpListener,
    local: SocketAddr,
    config: ServerConfig,
}

fn socket_err(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> ServeError {
    move |source| ServeError::Socket { what, addr, source }
}

fn set_hop_limit(sock: socket2::SockRef<'_>, v6: bool, hops: u8) -> std::io::Result<()> {
    if v6 {
        sock.set_unicast_hops_v6(u32::from(hops))?;
        // A v4-mapped peer on a dual-stack socket uses the IPv4 TTL.
        let _ = sock.set_ttl_v4(u32::from(hops));
        Ok(())
    } else {
        sock.set_ttl_v4(u32::from(hops))
    }
}

fn check_config(config: &ServerConfig, ip: std::net::IpAddr) -> Result<(), ServeError> {
    if config.hop_limit == 0 {
        return Err(ServeError::HopLimitZero);
    }
    if !ip.is_loopback() {
        if !config.allow_non_loopback {
            return Err(ServeError::NotLoopback(ip));
        }
        if config.hop_limit != 1 {
            return Err(ServeError::HopLimitNotOne(config.hop_limit, ip));
        }
    }
    Role::of(&config.role_arn)?;
    if !config.imds && config.ecs_token.is_none() {
        return Err(ServeError::NothingToServe);
    }
    Ok(())
}

impl Server {
    /// Checks the configuration and binds the listening socket.
    pub fn bind(config: ServerConfig) -> Result<Self, ServeError> {
        let addr = config.addr;
        check_config(&config, addr.ip())?;
        let domain = socket2::Domain::for_address(addr);
        let sock =
            socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
                .map_err(socket_err("create a socket", addr))?;
        sock.set_reuse_address(true)
            .map_err(socket_err("set SO_REUSEADDR", addr))?;
        set_hop_limit(
            socket2::SockRef::from(&sock),
            addr.is_ipv6(),
            config.hop_limit,
        )
        .map_err(socket_err("set the hop limit", addr))?;
        sock.bind(&addr.into())
            .map_err(socket_err("listen", addr))?;
        sock.listen(1024).map_err(socket_err("listen", addr))?;
        Self::from_listener(sock.into(), config)
    }

    /// Serves on a socket that is already listening (systemd socket activation).
    /// The same address rules apply to its address.
    pub fn from_listener(
        listener: std::net::TcpListener,
        config: ServerConfig,
    ) -> Result<Self, ServeError> {
        let local = listener
            .local_addr()
            .map_err(socket_err("read the address", config.addr))?;
        check_config(&config, local.ip())?;
        // Accepted connections inherit the listener's TTL / hop limit (each one
        // also gets it set on its own).
        set_hop_limit(
            socket2::SockRef::from(&listener),
            local.is_ipv6(),
            config.hop_limit,
        )
        .map_err(socket_err("set the hop limit", local))?;
        listener
            .set_nonblocking(true)
            .map_err(socket_err("set non-blocking mode", local))?;
        Ok(Self {
            listener,
            local,
            config,
        })
    }

    /// The address actually bound (the port chosen for `--port 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The value for `AWS_EC2_METADATA_SERVICE_ENDPOINT`, when the IMDS routes are on.
    pub fn imds_endpoint(&self) -> Option<String> {
        self.config.imds.then(|| format!("http://{}/", self.local))
    }

    /// The value for `AWS_CONTAINER_CREDENTIALS_FULL_URI`, when the ECS endpoint is on.
    pub fn ecs_uri(&self) -> Option<String> {
        self.config
            .ecs_token
            .as_ref()
            .map(|_| format!("http://{}{}", self.local, ecs::PATH))
    }

    /// Serves `creds` until `shutdown` completes, then shuts down gracefully.
    ///
    /// Requests are answered on [`ServerConfig::threads`] serving threads, each with
    /// its own single-threaded runtime; the first one also accepts connections and
    /// hands each to the thread with the fewest open connections. A connection and
    /// all its requests stay on one thread, so that a request never waits for a
    /// wake-up from another thread (what a work-stealing runtime does on most
    /// requests). The caller's runtime only waits for `shutdown`: a refresh that
    /// blocks it (a slow HSM, say) cannot hold up accepting or answering.
    pub async fn run(
        self,
        creds: watch::Receiver<Snapshot>,
        clock: Arc<dyn Clock>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let local = self.local;
        let limits = self.config.limits.clone();
        let state = Arc::new(State {
            role: Role::of(&self.config.role_arn)?,
            tokens: imds::TokenIssuer::new(std::time::Instant::now()),
            imds: self.config.imds,
            ecs: self.config.ecs_token.map(ecs::Token::new),
            creds,
            clock,
            limits: limits.clone(),
            rendered: std::sync::RwLock::new(None),
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_head.max(8192))
            .keep_alive(true)
            // Answers are small: one write of one buffer costs less than a writev of
            // the head and the body (measured, BENCHMARKS.md).
            .writev(false);
        let http = Arc::new(http);
        let (stop_tx, stop_rx) = watch::channel(false);
        let threads = self.config.threads.max(1);
        let mut queues = Vec::with_capacity(threads);
        let mut incoming = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = mpsc::unbounded_channel();
            let open = Arc::new(AtomicUsize::new(0));
            queues.push(Target {
                queue: tx,
                open: open.clone(),
            });
            incoming.push((rx, open));
        }
        let acceptor = Acceptor {
            listener: self.listener,
            local,
            hop_limit: self.config.hop_limit,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            targets: queues,
            stop: stop_rx.clone(),
        };
        let (ready_tx, ready) = oneshot::channel();
        let mut acceptor = Some((acceptor, ready_tx));
        let mut done = Vec::with_capacity(threads);
        for (index, (rx, open)) in incoming.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ServeError::Thread)?;
            let (finished, finished_rx) = oneshot::channel::<()>();
            let job = ServingThread {
                incoming: rx,
                open,
                state: state.clone(),
                http: http.clone(),
                stop: stop_rx.clone(),
            };
            let accept = acceptor.take();
            std::thread::Builder::new()
                .name(format!("iamra-serve-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        match accept {
                            Some((a, ready)) => {
                                tokio::join!(a.run(ready), job.run());
                            }
                            None => job.run().await,
                        }
                    });
                    let _ = finished.send(());
                })
                .map_err(ServeError::Thread)?;
            done.push(finished_rx);
        }
        // The listener is registered on the first serving thread, or that failed.
        match ready.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = stop_tx.send(true);
                return Err(e);
            }
            Err(_) => {
                return Err(ServeError::Stopped("the accepting thread ended at start"));
            }
        }
        tracing::info!("serving credentials on http://{local}/");
        let first = done.remove(0);
        tokio::pin!(first);
        let failed = tokio::select! {
            () = shutdown => false,
            _ = &mut first => true,
        };
        let _ = stop_tx.send(true);
        let _ = first.await;
        for d in done {
            // A thread ends once its connections have (within the grace period).
            let _ = d.await;
        }
        if failed {
            return Err(ServeError::Stopped(
                "the accepting thread ended: every serving thread had stopped",
            ));
        }
        tracing::info!("stopped serving");
        Ok(())
    }
}

/// A connection handed to a serving thread, with its place among the connections
/// allowed at once.
type Handover = (std::net::TcpStream, OwnedSemaphorePermit);

/// A serving thread, as the acceptor sees it.
struct Target {
    /// Where its connections go.
    queue: mpsc::UnboundedSender<Handover>,
    /// How many connections it has open.
    open: Arc<AtomicUsize>,
}

/// Accepts connections and hands them to the serving threads.
struct Acceptor {
    listener: std::net::TcpListener,
    local: SocketAddr,
    hop_limit: u8,
    permits: Arc<Semaphore>,
    targets: Vec<Target>,
    stop: watch::Receiver<bool>,
}

impl Acceptor {
    /// Registers the listener (reporting the outcome on `ready`), then accepts until
    /// told to stop. Ends by dropping the queues, which lets the threads finish.
    async fn run(self, ready: oneshot::Sender<Result<(), ServeError>>) {
        let local = self.local;
        let listener = match tokio::net::TcpListener::from_std(self.listener) {
            Ok(l) => {
                let _ = ready.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready.send(Err(socket_err("register the socket", local)(e)));
                return;
            }
        };
        let mut stop = self.stop;
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        loop {
            let permit = tokio::select! {
                () = &mut stopped => break,
                p = self.permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            if let Err(e) = set_hop_limit(
                socket2::SockRef::from(&stream),
                local.is_ipv6(),
                self.hop_limit,
            ) {
                tracing::warn!(
                    "cannot set the hop limit on a connection from {peer}; closing it: {e}"
                );
                continue;
            }
            let _ = stream.set_nodelay(true);
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot hand over the connection from {peer}; closing it: {e}");
                    continue;
                }
            };
            let Some(target) = self
                .targets
                .iter()
                .filter(|t| !t.queue.is_closed())
                .min_by_key(|t| t.open.load(Ordering::Relaxed))
            else {
                tracing::error!("every serving thread has stopped; stopping");
                break;
            };
            target.open.fetch_add(1, Ordering::Relaxed);
            if target.queue.send((stream, permit)).is_err() {
                target.open.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!("a serving thread has stopped; closing the connection from {peer}");
            }
        }
    }
}

/// What a serving thread needs.
struct ServingThread {
    incoming: mpsc::UnboundedReceiver<Handover>,
    open: Arc<AtomicUsize>,
    state: Arc<State>,
    http: Arc<hyper::server::conn::http1::Builder>,
    stop: watch::Receiver<bool>,
}

impl ServingThread {
    /// Serves the connections it is handed until the acceptor stops, then gives
    /// those still open the grace period to finish.
    async fn run(self) {
        let Self {
            mut incoming,
            open,
            state,
            http,
            stop,
        } = self;
        let mut connections = tokio::task::JoinSet::new();
        while let Some((stream, permit)) = incoming.recv().await {
            while connections.try_join_next().is_some() {}
            let stream = match stream
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpStream::from_std(stream))
            {
                Ok(s) => s,
                Err(e) => {
                    open.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!("cannot serve a connection on this thread; closing it: {e}");
                    continue;
                }
            };
            let state = state.clone();
            let http = http.clone();
            let mut stop = stop.clone();
            let open = open.clone();
            connections.spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req).await) }
                });
                let conn = http.serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = async { let _ = stop.wait_for(|s| *s).await; } => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
        let grace = state.limits.shutdown_grace;
        if tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(
                "{} connection(s) still open after {} s; closing them",
                connections.len(),
                grace.as_secs()
            );
            connections.abort_all();
        }
    }
}

/// The response type.
type Resp = Response<Full<Bytes>>;

/// A response with a body and content type.
fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A `text/plain` response; `message` gets a newline.
fn text(status: StatusCode, message: &str) -> Resp {
    reply(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

/// Whether `Host` names this machine by address or as `localhost` (a DNS name
/// other than that is how a rebinding web page would come in).
fn host_is_literal(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.starts_with(':') => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Why the credentials cannot be served, for a 503.
fn unavailable_reason(snapshot: &Snapshot) -> String {
    let when = snapshot
        .next_refresh
        .map(|t| format!("; next attempt at {}", crate::utc::rfc3339(t)))
        .unwrap_or_default();
    let error = snapshot
        .last_error
        .as_deref()
        .unwrap_or("no refresh has succeeded");
    match &snapshot.credentials {
        Some(c) => format!(
            "no valid credentials: the last ones expired at {} and refreshing them failed: {error}{when}",
            crate::utc::rfc3339(c.expires_at())
        ),
        None => format!("no credentials yet: {error}{when}"),
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    if parts.headers.contains_key(header::ORIGIN) {
        return text(
            StatusCode::FORBIDDEN,
            "requests from web pages (with an Origin header) are refused",
        );
    }
    if let Some(host) = parts.headers.get(header::HOST)
        && !host_is_literal(host.as_bytes())
    {
        return text(
            StatusCode::FORBIDDEN,
            "the Host header must be an IP address or localhost",
        );
    }
    if !body.is_end_stream() {
        let too_large = body
            .size_hint()
            .upper()
            .is_some_and(|n| n > state.limits.max_body as u64);
        let read = async {
            if too_large {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            Limited::new(body, state.limits.max_body)
                .collect()
                .await
                .map(|_| ())
                .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)
        };
        let outcome = tokio::time::timeout(state.limits.body_timeout, read)
            .await
            .unwrap_or(Err(StatusCode::REQUEST_TIMEOUT));
        if let Err(status) = outcome {
            let mut r = text(
                status,
                if status == StatusCode::REQUEST_TIMEOUT {
                    "the request body did not arrive in time"
                } else {
                    "request body too large"
                },
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    }
    let path = parts.uri.path();
    let imds = if state.imds {
        imds::handle(state, &parts)
    } else {
        None
    };
    let response = if let Some(r) = imds {
        r
    } else if let Some(r) = ecs::handle(state, &parts) {
        r
    } else {
        text(StatusCode::NOT_FOUND, "not found")
    };
    tracing::debug!(method = %parts.method, path, status = response.status().as_u16(), "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_must_be_an_address_or_localhost() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9911",
            "[::1]:9911",
            "[::1]",
            "localhost:1",
            "10.0.0.5",
        ] {
            assert!(host_is_literal(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9911",
            "[::1",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!host_is_literal(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn role_facts_come_from_the_arn() {
        let arn = Arn::parse(
            crate::session::ArnKind::Role,
            "arn:aws:iam::123456789012:role/path/to/MyRole",
        )
        .unwrap();
        let r = Role::of(&arn).unwrap();
        assert_eq!(r.name, "MyRole");
        assert_eq!(
            r.instance_profile_arn,
            "arn:aws:iam::123456789012:instance-profile/path/to/MyRole"
        );
        assert_eq!(r.instance_profile_id.len(), 21);
        assert!(r.instance_profile_id.starts_with("AIPA"));
    }

    #[test]
    fn non_loopback_needs_the_flag_and_hop_limit_one() {
        let arn = Arn::parse(
            crate::session::ArnKind::Role,
            "arn:aws:iam::123456789012:role/r",
        )
        .unwrap();
        let mut c = ServerConfig {
            addr: "10.1.2.3:9911".parse().unwrap(),
            allow_non_loopback: false,
            hop_limit: 1,
            role_arn: arn,
            ecs_token: None,
            imds: true,
            limits: Limits::default(),
            threads: 1,
        };
        let ip = c.addr.ip();
        assert!(matches!(
            check_config(&c, ip),
            Err(ServeError::NotLoopback(_))
        ));
        c.allow_non_loopback = true;
        check_config(&c, ip).unwrap();
        c.hop_limit = 2;
        assert!(matches!(
            check_config(&c, ip),
            Err(ServeError::HopLimitNotOne(2, _))
        ));
        check_config(&c, "::1".parse().unwrap()).unwrap();
        c.hop_limit = 0;
        assert!(matches!(
            check_config(&c, "::1".parse().unwrap()),
            Err(ServeError::HopLimitZero)
        ));
    }
}
