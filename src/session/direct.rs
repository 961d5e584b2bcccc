//! The connection of one `CreateSession` attempt, opened while its request is
//! signed.
//!
//! reqwest opens its connection inside `send()`, once the request, and so its
//! signature, exists. A call from a fresh process spends about as long signing (an
//! RSA or ML-DSA key, a token) as opening TCP and TLS, and the two need nothing of
//! each other: so when no proxy applies ([`Route`]), the attempt opens the
//! connection here while another thread signs, then sends the request over it with
//! hyper's HTTP/1.1 client. The parts are the ones reqwest is made of: hyper-util's
//! TCP connector (resolution, happy eyeballs, `TCP_NODELAY`), tokio-rustls with the
//! same rustls configuration, and hyper-util's proxy rules, so that whether a
//! request goes through a proxy is decided exactly as reqwest decides it. Proxied
//! and unverified (`--no-verify-ssl`) requests still go through reqwest.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tower_service::Service as _;

/// An error of the connection, with its sources (a rustls error among them when the
/// endpoint's certificate was refused).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which way requests to a URL go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Straight to the endpoint: the connection opens while the request is signed.
    Direct,
    /// Through reqwest: a proxy applies, or verification is off.
    Reqwest,
}

/// Decides the [`Route`] from the proxy variables read once (`HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` and their lower-case forms), by the rules
/// reqwest applies (it reads them through the same matcher).
pub(crate) struct Router {
    proxies: Matcher,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The matcher may hold a proxy's user and password.
        f.write_str("Router { .. }")
    }
}

impl Router {
    /// The rules of this process's environment.
    pub(crate) fn from_env() -> Self {
        Self {
            proxies: Matcher::from_system(),
        }
    }

    /// The route of `url`.
    pub(crate) fn route(&self, url: &reqwest::Url) -> Route {
        match url.as_str().parse::<hyper::Uri>() {
            Ok(uri) if self.proxies.intercept(&uri).is_none() => Route::Direct,
            _ => Route::Reqwest,
        }
    }
}

/// Opens connections for [`Route::Direct`].
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An open HTTP/1.1 connection, ready for one request.
pub(crate) struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connector {
    /// TLS with `tls` (the configuration reqwest is given too); TCP and TLS set up
    /// within `timeout`.
    pub(crate) fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        Self {
            tcp,
            tls: tokio_rustls::TlsConnector::from(tls),
            timeout,
        }
    }

    /// Opens a connection to `url`'s host and port: TCP, then TLS for `https`.
    pub(crate) async fn connect(&self, url: &reqwest::Url) -> Result<Connection, BoxError> {
        match tokio::time::timeout(self.timeout, self.open(url)).await {
            Ok(result) => result,
            Err(_) => Err(timed_out()),
        }
    }

    async fn open(&self, url: &reqwest::Url) -> Result<Connection, BoxError> {
        let uri: hyper::Uri = url.as_str().parse()?;
        let tcp = self.tcp.clone().call(uri).await?.into_inner();
        let sender = if url.scheme() == "https" {
            let tls = self.tls.connect(server_name(url)?, tcp).await?;
            handshake(TokioIo::new(tls)).await?
        } else {
            handshake(TokioIo::new(tcp)).await?
        };
        Ok(Connection { sender })
    }
}

/// Starts HTTP/1.1 on `io`; the connection is driven by a task of its own until
/// the request is answered and the sender dropped.
async fn handshake<T>(
    io: T,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, BoxError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "CreateSession connection closed");
        }
    });
    Ok(sender)
}

/// The name TLS verifies: the host of `url`, a DNS name or an IP address.
fn server_name(url: &reqwest::Url) -> Result<ServerName<'static>, BoxError> {
    Ok(match url.host() {
        Some(url::Host::Domain(name)) => ServerName::try_from(name.to_string())?,
        Some(url::Host::Ipv4(ip)) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
        Some(url::Host::Ipv6(ip)) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
        None => return Err(format!("{url} has no host").into()),
    })
}

/// The error of a connection or exchange that ran out of time (worded as reqwest's).
pub(crate) fn timed_out() -> BoxError {
    Box::new(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "operation timed out",
    ))
}

/// What came back: status, headers and the whole body.
pub(crate) struct Reply {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The headers.
    pub(crate) headers: hyper::HeaderMap,
    /// The body, wiped when dropped (it holds the credentials).
    pub(crate) body: zeroize::Zeroizing<Vec<u8>>,
}

/// Why no [`Reply`] came back.
pub(crate) enum Failure {
    /// The request could not be sent, or its answer not read, for `.0`.
    Network(BoxError),
    /// The answer's body was cut off, for `.0`.
    CutOff(BoxError),
    /// The body is longer than the limit.
    TooLarge,
}

impl Connection {
    /// Sends `request` and reads the whole answer, at most `limit` bytes of body.
    pub(crate) async fn exchange(
        mut self,
        request: hyper::Request<Full<Bytes>>,
        limit: usize,
        progress: &super::Progress,
    ) -> Result<Reply, Failure> {
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Network(e.into()))?;
        progress.set(super::STAGE_BODY);
        let (head, mut incoming) = response.into_parts();
        let mut body = reserved(
            head.headers
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok()),
            limit,
        );
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| Failure::CutOff(e.into()))?;
            if let Ok(chunk) = frame.into_data() {
                append(&mut body, &chunk, limit)?;
            }
        }
        Ok(Reply {
            status: head.status.as_u16(),
            headers: head.headers,
            body,
        })
    }
}

/// A body buffer reserved at the announced length (bounded by `limit`), so that the
/// buffer holding the credentials does not grow, leaving unwiped copies behind, as
/// chunks arrive.
pub(crate) fn reserved(announced: Option<u64>, limit: usize) -> zeroize::Zeroizing<Vec<u8>> {
    let capacity = announced.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    zeroize::Zeroizing::new(Vec::with_capacity(capacity))
}

/// Appends `chunk` to `body` unless that makes it longer than `limit`.
pub(crate) fn append(body: &mut Vec<u8>, chunk: &[u8], limit: usize) -> Result<(), Failure> {
    if body.len() + chunk.len() > limit {
        return Err(Failure::TooLarge);
    }
    body.extend_from_slice(chunk);
    Ok(())
}
