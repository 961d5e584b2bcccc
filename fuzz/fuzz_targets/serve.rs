//! `serve` request handling: the input is sent as raw bytes over loopback TCP to an
//! in-process [`iamra::output::server::Server`] (the handler takes hyper's
//! `Request<Incoming>`, which only a connection makes), so the HTTP/1 parser, the
//! limits and the IMDS and ECS routes are all exercised. Properties: no panic (the
//! fuzzer aborts on one in any thread), never a 5xx (the credentials are valid), and
//! the secret access key never reaches a client that presented no valid token (the
//! fuzzer cannot know the random IMDS token nor the ECS token).
#![no_main]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use iamra::credentials::TemporaryCredentials;
use iamra::output::server::{Limits, Server, ServerConfig};
use iamra::refresh::Snapshot;
use iamra::session::{Arn, ArnKind};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

const SECRET: &str = "fuzz-secret-access-key-0123456789";

fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let creds = Arc::new(TemporaryCredentials::new(
                    "ASIAFUZZ".into(),
                    SecretString::from(SECRET),
                    SecretString::from("fuzz-session-token"),
                    "2099-01-01T00:00:00Z".into(),
                    time::macros::datetime!(2099-01-01 00:00:00 UTC),
                ));
                let (_keep, watch) = tokio::sync::watch::channel(Snapshot {
                    credentials: Some(creds),
                    ..Snapshot::default()
                });
                let server = Server::bind(
                    ServerConfig::new(
                        "127.0.0.1:0".parse().unwrap(),
                        Arn::parse(ArnKind::Role, "arn:aws:iam::123456789012:role/fuzz").unwrap(),
                    )
                    .with_ecs_token(Some(SecretString::from("fuzz-ecs-token-not-guessable-0123")))
                    .with_limits(
                        Limits::default()
                            .with_header_timeout(Duration::from_millis(500))
                            .with_body_timeout(Duration::from_millis(500)),
                    )
                    .with_threads(1),
                )
                .unwrap();
                tx.send(server.local_addr()).unwrap();
                server
                    .run(
                        watch,
                        Arc::new(iamra::clock::SystemClock),
                        std::future::pending(),
                    )
                    .await
                    .unwrap();
                drop(_keep);
            });
        });
        rx.recv().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut s = TcpStream::connect(server()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer and close before everything is written.
    let _ = s.write_all(data);
    let _ = s.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains(SECRET),
        "credentials without a token: {text}"
    );
    for line in text.split("\r\n").filter(|l| l.starts_with("HTTP/1.")) {
        let status = line.split(' ').nth(1).unwrap_or("");
        assert!(!status.starts_with('5'), "{line}");
    }
});
