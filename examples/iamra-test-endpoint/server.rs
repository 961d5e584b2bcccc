//! The HTTP layer: TLS (1.2 and 1.3) on loopback, HTTP/1.1 with keep-alive,
//! one task per connection, routing, the 64 KiB body limit, faults and the
//! request log. Verification itself is [`crate::verify::verify`].
//!
//! Routes: `POST <anything>/sessions` is `CreateSession`; every other method or
//! path gets `404 {"message":"Not Found"}` (`UnknownOperationException`) and is
//! neither counted nor logged. A body over 64 KiB gets
//! `413 PayloadTooLargeException` `{"message":"Request body too large"}`.
//!
//! Request log (`--request-log`): one JSON line per `/sessions` request, written
//! and flushed before the response is sent:
//! `{"n":1,"status":201,"error":null,"message":null,"fault":null,"signed_headers":"…","serial":"…"}`
//! (`status` 0 for `drop`; `signed_headers` / `serial` are read from the
//! `Authorization` header when it parses, else null), and for a verified request
//! `"access_key_id"` and `"expiration"` of the credentials issued. Secret keys and
//! session tokens are never logged.

use crate::error::{
    self, ApiError, INTERNAL_SERVER, PAYLOAD_TOO_LARGE, SERVICE_UNAVAILABLE, THROTTLING,
    UNKNOWN_OPERATION,
};
use crate::faults::{Fault, FaultPlan};
use crate::response::{self, Session};
use crate::verify::{self, RequestParts, Verified, VerifyConfig};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the request handler needs.
pub struct State {
    /// Verification configuration.
    pub config: VerifyConfig,
    /// Faults to inject.
    pub faults: FaultPlan,
    /// `/sessions` requests seen so far.
    pub counter: AtomicU64,
    /// The request log, when enabled.
    pub log: Option<Mutex<std::fs::File>>,
    /// `--session-lifetime`: sessions expire this many seconds after issue.
    pub session_lifetime: Option<i64>,
}

/// A response body: a whole body, or the partial one of the `truncated` fault.
pub enum RespBody {
    /// The whole body (taken when sent).
    Full(Option<Bytes>),
    /// Part of a body, then an error that makes hyper close the connection.
    Truncated {
        /// The part sent.
        data: Option<Bytes>,
        /// Pause before the error, so that the part is flushed first.
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            RespBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            RespBody::Truncated { data, pause } => {
                if let Some(d) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                match pause {
                    Some(p) => match p.as_mut().poll(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(()) => {
                            *pause = None;
                            Poll::Ready(Some(Err(std::io::Error::other("truncated"))))
                        }
                    },
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, RespBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            RespBody::Full(None) => SizeHint::with_exact(0),
            RespBody::Truncated { .. } => SizeHint::default(),
        }
    }
}

/// A response with the given status and headers (request id always added).
fn response(status: u16, headers: &[(&str, String)], body: RespBody) -> Response<RespBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-requestid", v);
    }
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    }
    resp
}

/// A whole-body response.
fn full(status: u16, headers: &[(&str, String)], body: String) -> Response<RespBody> {
    response(status, headers, RespBody::Full(Some(Bytes::from(body))))
}

/// The error response for `e`.
fn error_response(e: &ApiError, extra: &[(&str, String)]) -> Response<RespBody> {
    let mut headers = vec![("x-amzn-errortype", e.error_type_header())];
    headers.extend(extra.iter().cloned());
    full(e.status, &headers, e.body())
}

/// One request-log line.
#[derive(Serialize)]
struct LogLine {
    /// 1-based index of the `/sessions` request.
    n: u64,
    /// HTTP status sent (0: dropped).
    status: u16,
    /// Error code sent, if any.
    error: Option<String>,
    /// Error message sent, if any.
    message: Option<String>,
    /// Fault applied, if any.
    fault: Option<String>,
    /// SignedHeaders from the Authorization header.
    signed_headers: Option<String>,
    /// Credential serial from the Authorization header.
    serial: Option<String>,
    /// The access key id issued (verified requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    /// The expiration issued (verified requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<String>,
}

/// What was decided for a request: the reply and the log fields.
struct Outcome {
    /// The response, `None` to drop the connection.
    reply: Option<Response<RespBody>>,
    /// Status for the log (0 when dropped).
    status: u16,
    /// The error answered, if any.
    error: Option<ApiError>,
    /// The access key id and expiration issued, if any.
    issued: Option<(String, String)>,
}

impl Outcome {
    /// An error reply.
    fn error(e: ApiError, extra: &[(&str, String)]) -> Self {
        Self {
            reply: Some(error_response(&e, extra)),
            status: e.status,
            error: Some(e),
            issued: None,
        }
    }

    /// A 201 reply with `body`.
    fn created(body: RespBody) -> Self {
        Self {
            reply: Some(response(201, &[], body)),
            status: 201,
            error: None,
            issued: None,
        }
    }
}

/// The session used for fault bodies (no verification happened).
fn fault_session(config: &VerifyConfig) -> Session {
    let role_arn = config.role_arns.first().cloned().unwrap_or_default();
    let role = crate::arn::parse_role(&role_arn);
    let ta =
        crate::arn::parse_rolesanywhere(&config.trust_anchor_arn, crate::arn::RaKind::TrustAnchor);
    Session {
        partition: role
            .as_ref()
            .map_or_else(|| "aws".into(), |r| r.partition.clone()),
        account: role
            .as_ref()
            .map_or_else(String::new, |r| r.account.clone()),
        role_name: role.as_ref().map_or_else(String::new, |r| r.name.clone()),
        role_arn,
        session_name: "iamra-test-session".into(),
        source_identity: "CN=iamra-test-endpoint".into(),
        subject_partition: ta
            .as_ref()
            .map_or_else(|| "aws".into(), |a| a.partition.clone()),
        subject_account: ta.as_ref().map_or_else(String::new, |a| a.account.clone()),
        region: config.region.clone(),
        subject_seed: rand::random(),
        duration_seconds: 3600,
    }
}

/// The session of a verified request.
fn verified_session(v: &Verified, config: &VerifyConfig, lifetime: Option<i64>) -> Session {
    Session {
        partition: v.role.partition.clone(),
        account: v.role.account.clone(),
        role_arn: v.role_arn.clone(),
        role_name: v.role.name.clone(),
        session_name: v.session_name.clone(),
        source_identity: v.source_identity.clone(),
        subject_partition: v.trust_anchor.partition.clone(),
        subject_account: v.trust_anchor.account.clone(),
        region: config.region.clone(),
        subject_seed: v.leaf_sha256,
        duration_seconds: lifetime.unwrap_or(v.duration_seconds),
    }
}

/// A 201 whose `Content-Length` is the full body's: half the body is sent, then,
/// after `pause`, the connection is closed.
fn half_body(session: &serde_json::Value, pause: Duration) -> Outcome {
    let text = response::to_text(session);
    let half = text.len() / 2;
    let mut outcome = Outcome::created(RespBody::Truncated {
        data: Some(Bytes::from(text.into_bytes()).slice(..half)),
        pause: Some(Box::pin(tokio::time::sleep(pause))),
    });
    if let Some(reply) = outcome.reply.as_mut() {
        let declared = (half * 2 + 64).to_string();
        if let Ok(v) = HeaderValue::from_str(&declared) {
            reply.headers_mut().insert(CONTENT_LENGTH, v);
        }
    }
    outcome
}

/// The answer to a faulted request (fault other than `ok` / `delay:`).
fn fault_outcome(fault: Fault, config: &VerifyConfig) -> Outcome {
    let now = OffsetDateTime::now_utc();
    let session = || response::session_value(&fault_session(config), now);
    let created = |v: serde_json::Value| {
        Outcome::created(RespBody::Full(Some(Bytes::from(response::to_text(&v)))))
    };
    match fault {
        Fault::Internal => Outcome::error(
            ApiError::new(500, INTERNAL_SERVER, "Internal server error"),
            &[],
        ),
        Fault::Unavailable => Outcome::error(
            ApiError::new(503, SERVICE_UNAVAILABLE, "Service unavailable"),
            &[],
        ),
        Fault::Throttle => Outcome::error(
            ApiError::new(429, THROTTLING, "Rate exceeded"),
            &[("retry-after", "1".to_string())],
        ),
        Fault::AccessDenied => Outcome::error(
            ApiError::access_denied("Untrusted Signing Certificate"),
            &[],
        ),
        Fault::Malformed => Outcome::created(RespBody::Full(Some(Bytes::from_static(
            b"<html><body>this is not JSON</body></html>",
        )))),
        // Half the body, then the connection closes (truncated) or goes silent (stall).
        Fault::Truncated => half_body(&session(), Duration::from_millis(50)),
        Fault::Stall => half_body(&session(), Duration::from_secs(3600)),
        Fault::FarFuture => created(response::with_expiration_text(
            session(),
            "9999-12-31T23:59:59-01:00",
        )),
        Fault::Expired => created(response::with_expiration_text(
            session(),
            &response::rfc3339(now - Duration::from_secs(3600)),
        )),
        Fault::MissingField => created(response::without_session_token(session())),
        Fault::EmptySet => created(response::with_empty_set(session())),
        Fault::WrongType => created(response::with_numeric_expiration(session(), now, 3600)),
        Fault::Huge => created(response::padded(session())),
        Fault::Drop | Fault::Hang => Outcome {
            reply: None,
            status: 0,
            error: None,
            issued: None,
        },
        // Not reached: these verify normally.
        Fault::Ok | Fault::Delay(_) => Outcome::error(
            ApiError::new(500, INTERNAL_SERVER, "Internal server error"),
            &[],
        ),
    }
}

/// Verifies a request and builds its answer.
fn normal_outcome(parts: &RequestParts, config: &VerifyConfig, lifetime: Option<i64>) -> Outcome {
    let now = OffsetDateTime::now_utc();
    match verify::verify(parts, now, config) {
        Ok(v) => {
            let value = response::session_value(&verified_session(&v, config, lifetime), now);
            let c = &value["credentialSet"][0]["credentials"];
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            let issued = Some((text("accessKeyId"), text("expiration")));
            let body = response::to_text(&value);
            Outcome {
                issued,
                ..Outcome::created(RespBody::Full(Some(Bytes::from(body))))
            }
        }
        Err(e) => Outcome::error(e, &[]),
    }
}

/// Appends a line to the request log (errors are reported on stderr only).
fn write_log(state: &State, line: &LogLine) {
    let Some(log) = &state.log else {
        return;
    };
    let Ok(mut text) = serde_json::to_string(line) else {
        return;
    };
    text.push('\n');
    let mut file = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
        eprintln!("iamra-test-endpoint: request log: {e}");
    }
}

/// Handles one HTTP request. `kill` closes the connection (fault `drop`).
async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    kill: Arc<Notify>,
) -> Result<Response<RespBody>, Infallible> {
    let is_sessions = req.method() == Method::POST && req.uri().path().ends_with("/sessions");
    if !is_sessions {
        let e = ApiError::new(404, UNKNOWN_OPERATION, "Not Found");
        return Ok(error_response(&e, &[]));
    }
    let n = state.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let fault = state.faults.for_request(n);

    let (head, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY).collect().await;
    let headers: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let auth = crate::canonical::header_values(&headers, "authorization")
        .first()
        .and_then(|v| verify::parse_authorization(v))
        .map(|a| (a.signed_headers.to_string(), a.serial.to_string()));

    if let Fault::Delay(ms) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let outcome = if !fault.verifies() {
        fault_outcome(fault, &state.config)
    } else {
        match body {
            Ok(collected) => {
                let parts = RequestParts {
                    method: head.method.as_str().to_string(),
                    path: head.uri.path().to_string(),
                    query: head.uri.query().unwrap_or("").to_string(),
                    headers,
                    body: collected.to_bytes().to_vec(),
                };
                normal_outcome(&parts, &state.config, state.session_lifetime)
            }
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Outcome::error(
                ApiError::new(413, PAYLOAD_TOO_LARGE, "Request body too large"),
                &[],
            ),
            Err(_) => Outcome::error(
                ApiError::new(400, error::SERIALIZATION, "Could not read the request body"),
                &[],
            ),
        }
    };

    let (signed_headers, serial) = auth.unzip();
    let (access_key_id, expiration) = outcome.issued.clone().unzip();
    write_log(
        &state,
        &LogLine {
            n,
            status: outcome.status,
            error: outcome.error.as_ref().map(|e| e.code.to_string()),
            message: outcome.error.as_ref().map(|e| e.message.clone()),
            fault: fault.label(),
            signed_headers,
            serial,
            access_key_id,
            expiration,
        },
    );
    match outcome.reply {
        Some(reply) => Ok(reply),
        None => {
            if fault != Fault::Hang {
                kill.notify_one();
            }
            std::future::pending::<()>().await;
            Ok(Response::new(RespBody::Full(None)))
        }
    }
}

/// Serves one accepted TCP connection.
async fn serve_connection(state: Arc<State>, acceptor: TlsAcceptor, tcp: tokio::net::TcpStream) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        _ => return,
    };
    let kill = Arc::new(Notify::new());
    let kill_for_service = Arc::clone(&kill);
    let service = hyper::service::service_fn(move |req| {
        handle(Arc::clone(&state), req, Arc::clone(&kill_for_service))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No header-read timer: it would also close idle keep-alive connections,
    // racing clients that reuse them.
    builder.keep_alive(true).header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        _ = conn => {}
        () = kill.notified() => {}
    }
}

/// Accepts connections until `shutdown` completes.
pub async fn serve(
    state: Arc<State>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(serve_connection(Arc::clone(&state), acceptor.clone(), tcp));
                }
                Err(e) => {
                    eprintln!("iamra-test-endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}
