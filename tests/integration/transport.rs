//! The way to the endpoint: straight (the connection opens while the request is
//! signed), through an HTTPS proxy when the proxy variables say so, and the
//! endpoint's TLS certificate checked on both.

use crate::common::*;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// An HTTP proxy on loopback that only does `CONNECT`, as corporate proxies for
/// HTTPS do: it records each `CONNECT` target and pumps bytes both ways.
struct ConnectProxy {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&targets);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || tunnel(client, &seen));
            }
        });
        Self { port, targets }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// One proxied connection: `CONNECT host:port`, then bytes both ways.
fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = (&client).write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    let target = target.to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
    }
    seen.lock().unwrap().push(target.clone());
    let Ok(server) = TcpStream::connect(&target) else {
        let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    (&client)
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    // Bytes the reader already buffered belong to the tunnel.
    let buffered = reader.buffer().to_vec();
    (&server).write_all(&buffered).unwrap();
    let (mut up_from, mut up_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_from, &mut up_to);
        let _ = up_to.shutdown(std::net::Shutdown::Write);
    });
    let (mut down_from, mut down_to) = (server, client);
    let _ = std::io::copy(&mut down_from, &mut down_to);
    let _ = down_to.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

fn credential_process(ep: &Endpoint, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    credential_process_with(identity_flags(ep), extra, env)
}

/// The RSA-2048 identity's flags against `ep` (its CA bundle last).
fn identity_flags(ep: &Endpoint) -> Vec<String> {
    credential_flags(ep, &td("rsa2048/combined.pem"), None)
}

fn credential_process_with(
    flags: Vec<String>,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec!["credential-process".to_string(), "--no-cache".into()];
    args.extend(flags);
    args.extend(extra.iter().map(|s| s.to_string()));
    iamra(&args, env)
}

#[test]
fn https_proxy_carries_the_call_unless_no_proxy_names_the_endpoint() {
    let ep = Endpoint::start();
    let proxy = ConnectProxy::start();
    let endpoint_host = ep.url().trim_start_matches("https://").to_string();

    // Straight to the endpoint: no proxy variable.
    assert_credentials(&credential_process(&ep, &[], &[]));
    assert!(proxy.targets().is_empty());

    // Through the proxy, in either spelling of the variable.
    for name in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
        let before = proxy.targets().len();
        assert_credentials(&credential_process(&ep, &[], &[(name, &proxy.url())]));
        assert_eq!(
            &proxy.targets()[before..],
            std::slice::from_ref(&endpoint_host),
            "{name}: one CONNECT to the endpoint"
        );
    }

    // NO_PROXY naming the endpoint's host: straight there again.
    let before = proxy.targets().len();
    assert_credentials(&credential_process(
        &ep,
        &[],
        &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")],
    ));
    assert_eq!(proxy.targets().len(), before, "NO_PROXY is honoured");

    // A proxy that is not there: the call fails rather than going around it.
    let out = credential_process(
        &ep,
        &["--max-attempts", "1"],
        &[("HTTPS_PROXY", "http://127.0.0.1:1")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "iamra: error: cannot reach {}/sessions after 1 attempt(s): ",
            ep.url()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(out.status.code(), Some(1));
    // Every call that reached the endpoint was verified and answered.
    assert_eq!(ep.requests().len(), 5);
}

#[test]
fn endpoint_certificate_from_another_ca_is_refused_at_once_on_both_routes() {
    let ep = Endpoint::start();
    let proxy = ConnectProxy::start();
    let expected_start = format!(
        "iamra: error: cannot reach {}/sessions after 1 attempt(s): invalid peer certificate: ",
        ep.url()
    );
    let hint = "iamra: hint: the endpoint's TLS certificate is not trusted: pass --ca-bundle FILE or set AWS_CA_BUNDLE\n";
    // The Roles Anywhere root as the CA bundle: it did not issue the TLS certificate.
    // Then no bundle at all: the system's trust store, which lacks the test CA.
    let other_ca = td("ca/root.pem").display().to_string();
    let bundles: [&[&str]; 2] = [&["--ca-bundle", &other_ca], &[]];
    for bundle in bundles {
        for env in [vec![], vec![("HTTPS_PROXY", proxy.url())]] {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // The endpoint's flags without its CA bundle.
            let mut flags = identity_flags(&ep);
            flags.truncate(flags.len() - 2);
            flags.extend(bundle.iter().map(|s| s.to_string()));
            let out = credential_process_with(flags, &["--max-attempts", "3"], &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.starts_with(&expected_start),
                "{bundle:?} {env:?}: {stderr}"
            );
            assert!(stderr.ends_with(hint), "{bundle:?} {env:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 2, "{stderr}");
            assert!(out.stdout.is_empty());
            assert_eq!(out.status.code(), Some(1));
        }
    }
    assert!(ep.requests().is_empty(), "no request was sent");
    assert_eq!(proxy.targets().len(), 2, "the proxied runs went through it");
}

#[test]
fn a_closed_port_is_a_network_error_naming_the_cause() {
    let ep = Endpoint::start();
    // A port nobody listens on: bind one, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let mut flags = identity_flags(&ep);
    let i = flags.iter().position(|f| f == "--endpoint").unwrap();
    flags[i + 1] = url.clone();
    let out = credential_process_with(flags, &["--max-attempts", "1"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "iamra: error: cannot reach {url}/sessions after 1 attempt(s): Connection refused (os error 111)\niamra: hint: check --endpoint, the network, and HTTPS_PROXY/NO_PROXY\n"
        )
    );
    assert!(out.stdout.is_empty());
}

/// A key whose signature never comes (a token that stopped answering): it waits
/// until the test ends.
#[derive(Debug)]
struct StuckKey(iamra::key::FileKey);

impl iamra::key::SigningKey for StuckKey {
    fn public_key(&self) -> iamra::key::PublicKey {
        self.0.public_key()
    }
    fn sign(
        &self,
        _message: &[u8],
        _digest: iamra::key::Digest,
    ) -> Result<Vec<u8>, iamra::key::SignError> {
        std::thread::sleep(std::time::Duration::from_secs(60));
        Err(iamra::key::SignError::Backend("too late".into()))
    }
}

#[test]
fn the_deadline_ends_a_call_whose_signature_never_comes() {
    use iamra::input::Input;
    use iamra::key::{NoPassword, load_key};
    use iamra::session::{Client, ClientOptions, SessionError, SessionParams};
    let ep = Endpoint::start();
    let key = load_key(&Input::file(td("ec-p256/key.pkcs8.pem")), &NoPassword).unwrap();
    let certificate = iamra::cert::load_certificate(&Input::file(td("ec-p256/cert.pem"))).unwrap();
    let chain = iamra::cert::load_chain(&Input::file(td("chain.pem"))).unwrap();
    let identity =
        iamra::identity::Identity::new(Box::new(StuckKey(key)), certificate, chain).unwrap();
    let params = SessionParams::new(
        TRUST_ANCHOR_ARN,
        PROFILE_ARN,
        ROLE_ARN,
        None,
        Some(&ep.url()),
        3600,
        None,
    )
    .unwrap();
    let client = Client::new(
        ClientOptions::default()
            .with_ca_bundle(Some(td("tls/ca.pem")))
            .with_deadline(Some(std::time::Duration::from_secs(1))),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    for first in [true, false] {
        let call = async {
            if first {
                let ahead = iamra::session::SignedAhead::start(
                    &params,
                    &identity,
                    &iamra::clock::SystemClock,
                );
                client
                    .create_session_signed_ahead(
                        &params,
                        &identity,
                        &iamra::clock::SystemClock,
                        ahead,
                    )
                    .await
            } else {
                client
                    .create_session(&params, &identity, &iamra::clock::SystemClock)
                    .await
            }
        };
        match runtime.block_on(call) {
            Err(SessionError::Deadline { stalled, .. }) => {
                assert_eq!(stalled, "signing the request")
            }
            other => panic!("expected the deadline, got {other:?}"),
        }
    }
    // A hang guard, not a timing assertion: two 1 s deadlines, not the key's 60 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(ep.requests().is_empty(), "nothing was sent unsigned");
}
