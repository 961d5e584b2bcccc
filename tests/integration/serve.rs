//! `iamra serve`: the IMDSv2 and ECS routes over real HTTP, errors, limits, faults
//! during refresh, certificate rotation, shutdown, secret hygiene, and boto3 as a
//! real client.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

// ---------------------------------------------------------------------------------
// Routes and errors

#[test]
fn serve_answers_the_imds_routes_exactly() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let s = serve(&ep, &[], &[], 1);
    let a = s.addr.as_str();

    let r = http(
        a,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 100);
    assert_eq!(r.header("x-aws-ec2-metadata-token-ttl-seconds"), Some("60"));
    let token = r.body;
    let r = http(a, "PUT", "/latest/api/token", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );

    let listing = http(
        a,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(
        (listing.status, listing.body.as_str()),
        (200, "iamra-test-role")
    );
    let ttl: u64 = listing
        .header("x-aws-ec2-metadata-token-ttl-seconds")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&ttl));
    for path in [
        "/latest/meta-data/iam/security-credentials",
        "/latest/meta-data/iam/security-credentials/",
    ] {
        let r = http(a, "GET", path, &[("X-aws-ec2-metadata-token", &token)]);
        assert_eq!(r.body, "iamra-test-role");
    }

    for path in [
        "/latest/meta-data/iam/security-credentials/iamra-test-role",
        "/latest/meta-data/iam/security-credentials/iamra-test-role/",
    ] {
        let r = http(a, "GET", path, &[("X-aws-ec2-metadata-token", &token)]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.body.ends_with("}\n"));
        let keys: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&r.body)
                .unwrap()
                .keys()
                .cloned()
                .collect();
        let mut in_order = keys.clone();
        in_order.sort_by_key(|k| r.body.find(&format!("\"{k}\"")));
        assert_eq!(
            in_order,
            [
                "AccessKeyId",
                "SecretAccessKey",
                "Token",
                "Code",
                "Type",
                "Expiration",
                "LastUpdated"
            ]
        );
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["Code"], "Success");
        assert_eq!(v["Type"], "AWS-HMAC");
        assert!(v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
        for k in ["Expiration", "LastUpdated"] {
            let t = v[k].as_str().unwrap();
            assert_eq!(t.len(), 20, "{k} {t}");
            assert!(t.ends_with('Z'));
        }
    }

    let info = http(
        a,
        "GET",
        "/latest/meta-data/iam/info",
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(info.status, 200);
    let v: serde_json::Value = serde_json::from_str(&info.body).unwrap();
    assert_eq!(v["Code"], "Success");
    assert_eq!(
        v["InstanceProfileArn"],
        "arn:aws:iam::123456789012:instance-profile/iamra-test-role"
    );
    assert!(v["InstanceProfileId"].as_str().unwrap().starts_with("AIPA"));

    // Many requests, one CreateSession.
    for _ in 0..50 {
        imds_credentials(a, &token);
    }
    assert_eq!(log_entries(&ep).len(), 1);
    let (status, _) = s.daemon.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_refuses_bad_imds_requests_with_clear_answers() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let s = serve(&ep, &[], &[], 1);
    let a = s.addr.as_str();
    let token = imds_token(a);
    let creds = "/latest/meta-data/iam/security-credentials/iamra-test-role";
    let cases: Vec<(Reply, u16, &str)> = vec![
        (
            http(
                a,
                "PUT",
                "/latest/api/token",
                &[("X-aws-ec2-metadata-token-ttl-seconds", "0")],
            ),
            400,
            "invalid token TTL\n",
        ),
        (
            http(
                a,
                "PUT",
                "/latest/api/token",
                &[("X-aws-ec2-metadata-token-ttl-seconds", "21601")],
            ),
            400,
            "invalid token TTL\n",
        ),
        (
            http(
                a,
                "PUT",
                "/latest/api/token",
                &[("X-aws-ec2-metadata-token-ttl-seconds", "ten")],
            ),
            400,
            "invalid token TTL\n",
        ),
        (
            http(
                a,
                "PUT",
                "/latest/api/token",
                &[("X-Forwarded-For", "203.0.113.7")],
            ),
            400,
            "unable to process requests with X-Forwarded-For header\n",
        ),
        (
            http(
                a,
                "PUT",
                "/latest/api/token",
                &[("Forwarded", "for=203.0.113.7;proto=http")],
            ),
            400,
            "unable to process requests with Forwarded header\n",
        ),
        (
            http(a, "GET", "/latest/api/token", &[]),
            405,
            "method not allowed\n",
        ),
        (http(a, "GET", creds, &[]), 401, "no token provided\n"),
        (
            http(a, "GET", creds, &[("X-aws-ec2-metadata-token", "nope")]),
            401,
            "invalid token provided\n",
        ),
        (
            http(a, "GET", "/latest/meta-data/iam/info", &[]),
            401,
            "no token provided\n",
        ),
        (
            http(a, "POST", creds, &[("X-aws-ec2-metadata-token", &token)]),
            405,
            "method not allowed\n",
        ),
        (
            http(
                a,
                "GET",
                "/latest/meta-data/iam/security-credentials/other-role",
                &[("X-aws-ec2-metadata-token", &token)],
            ),
            404,
            "not found\n",
        ),
        (
            http(
                a,
                "GET",
                "/latest/meta-data/ami-id",
                &[("X-aws-ec2-metadata-token", &token)],
            ),
            404,
            "not found\n",
        ),
        (http(a, "GET", "/", &[]), 404, "not found\n"),
        // The ECS endpoint is off without a token.
        (
            http(a, "GET", "/v1/credentials", &[("Authorization", "x")]),
            404,
            "not found\n",
        ),
        (
            http(
                a,
                "GET",
                creds,
                &[
                    ("X-aws-ec2-metadata-token", &token),
                    ("Host", "rebind.example:9911"),
                ],
            ),
            403,
            "the Host header must be an IP address or localhost\n",
        ),
        (
            http(
                a,
                "PUT",
                "/latest/api/token",
                &[("Origin", "http://rebind.example")],
            ),
            403,
            "requests from web pages (with an Origin header) are refused\n",
        ),
        (
            http_raw(
                a,
                format!(
                    "PUT /latest/api/token HTTP/1.1\r\nHost: {a}\r\nContent-Length: 100000\r\n\r\n"
                )
                .as_bytes(),
            ),
            413,
            "request body too large\n",
        ),
    ];
    for (i, (r, status, body)) in cases.iter().enumerate() {
        assert_eq!(
            (r.status, r.body.as_str()),
            (*status, *body),
            "case {i}: {r:?}"
        );
        assert!(
            !r.body.contains("ASIA"),
            "case {i}: no credentials in errors"
        );
    }
    assert_eq!(cases[5].0.header("allow"), Some("PUT"));
    assert_eq!(cases[9].0.header("allow"), Some("GET"));
    // Huge headers are refused by the HTTP layer.
    let big = "x".repeat(20_000);
    let r = http(
        a,
        "GET",
        creds,
        &[("X-aws-ec2-metadata-token", &token), ("X-Big", &big)],
    );
    assert_eq!(r.status, 431, "{r:?}");
    // Still serving afterwards.
    imds_credentials(a, &token);
}

#[test]
fn serve_ecs_endpoint_needs_the_token_from_the_file() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("run/iamra/token");
    let s = serve(
        &ep,
        &["--ecs-token-file", token_file.to_str().unwrap(), "--imds"],
        &[],
        3,
    );
    let a = s.addr.as_str();
    assert_eq!(
        s.daemon.lines[1..],
        [
            format!("export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://{a}/v1/credentials"),
            format!(
                "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}",
                token_file.display()
            ),
        ]
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(mode(token_file.parent().unwrap()), 0o700);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.len(), 43);
    assert!(!token.contains('\n'));

    let r = http(a, "GET", "/v1/credentials", &[]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            401,
            "{\"code\":\"Unauthorized\",\"message\":\"no Authorization header\"}\n"
        )
    );
    let r = http(
        a,
        "GET",
        "/v1/credentials",
        &[("Authorization", "wrong-token-of-some-length")],
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            401,
            "{\"code\":\"Unauthorized\",\"message\":\"invalid Authorization token\"}\n"
        )
    );
    let r = http(a, "POST", "/v1/credentials", &[("Authorization", &token)]);
    assert_eq!(r.status, 405);
    let r = http(a, "GET", "/v1/credentials", &[("Authorization", &token)]);
    assert_eq!(r.status, 200, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["RoleArn"], ROLE_ARN);
    assert_eq!(v["AccountId"], "123456789012");
    let imds = imds_credentials(a, &imds_token(a));
    for k in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
        assert_eq!(
            v[k], imds[k],
            "{k}: both endpoints serve the same credentials"
        );
    }
    drop(s);

    // A token supplied by the operator.
    std::fs::write(
        dir.path().join("given"),
        "operator-chosen-token-0123456789\n",
    )
    .unwrap();
    let s = serve(
        &ep,
        &[
            "--ecs-token-from-file",
            dir.path().join("given").to_str().unwrap(),
            "--imds",
        ],
        &[],
        3,
    );
    let r = http(
        &s.addr,
        "GET",
        "/v1/credentials",
        &[("Authorization", "operator-chosen-token-0123456789")],
    );
    assert_eq!(r.status, 200);
}

/// With an ECS token the IMDS routes are off: a local process without the token
/// gets no credentials by any path, and the token file is 0600, or 0640 owned by
/// the group given with --ecs-token-file-group.
#[test]
fn serve_with_an_ecs_token_gives_nothing_to_a_client_without_it() {
    use std::os::unix::fs::MetadataExt as _;
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let group = String::from_utf8(Command::new("id").arg("-G").output().unwrap().stdout)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    for (extra, mode, gid) in [
        (vec![], 0o600, None),
        (
            vec!["--ecs-token-file-group".to_string(), group.clone()],
            0o640,
            Some(group.parse::<u32>().unwrap()),
        ),
    ] {
        let mut args = vec!["serve".to_string(), "--port".into(), "0".into()];
        args.extend(credential_flags(&ep, &td("rsa2048/combined.pem"), None));
        args.extend(["--ecs-token-file".into(), token_file.display().to_string()]);
        args.extend(extra);
        let d = Daemon::start(&args, &[], 2).unwrap_or_else(|e| panic!("serve failed: {e}"));
        let uri = d.lines[0]
            .strip_prefix("export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://")
            .unwrap_or_else(|| panic!("no IMDS endpoint line expected: {:?}", d.lines));
        let a = uri.strip_suffix("/v1/credentials").unwrap().to_string();
        let meta = std::fs::metadata(&token_file).unwrap();
        assert_eq!(meta.mode() & 0o777, mode);
        if let Some(gid) = gid {
            assert_eq!(meta.gid(), gid);
        }
        // Without the token: no IMDS token, no credentials, on any path.
        let put = http(
            &a,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "600")],
        );
        assert_eq!(put.status, 404, "{put:?}");
        for path in [
            "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/iam/security-credentials/iamra-test-role",
            "/latest/meta-data/iam/info",
            "/v1/credentials",
        ] {
            let r = http(&a, "GET", path, &[("X-aws-ec2-metadata-token", &put.body)]);
            assert!(matches!(r.status, 401 | 404), "{path}: {r:?}");
            assert!(!r.body.contains("SecretAccessKey"), "{path}: {r:?}");
        }
        let token = std::fs::read_to_string(&token_file).unwrap();
        let r = http(&a, "GET", "/v1/credentials", &[("Authorization", &token)]);
        assert_eq!(r.status, 200, "{r:?}");
        let (status, stderr) = d.stop();
        assert!(status.success(), "{stderr}");
    }
}

#[test]
fn serve_refuses_unsafe_or_impossible_configurations() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let run = |extra: &[&str]| {
        let mut args = vec!["serve".to_string()];
        args.extend(credential_flags(&ep, &td("rsa2048/combined.pem"), None));
        args.extend(extra.iter().map(|s| s.to_string()));
        iamra(&args, &[])
    };
    assert_fails_with(
        &run(&["--bind", "192.0.2.10"]),
        "iamra: error: --bind 192.0.2.10 is not a loopback address: pass --allow-non-loopback-bind to listen there (with hop limit 1)\n",
    );
    assert_fails_with(
        &run(&[
            "--bind",
            "0.0.0.0",
            "--allow-non-loopback-bind",
            "--hop-limit",
            "2",
        ]),
        "iamra: error: --hop-limit 2 cannot be used with the non-loopback --bind 0.0.0.0: it must be 1 there\n",
    );
    let out = run(&["--threads", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "iamra: error: invalid value '0' for '--threads <N>': 0 is not in 1..=256\n"
        ),
        "{out:?}"
    );
    assert_fails_with(
        &run(&["--refresh-before", "15m"]),
        "iamra: error: --refresh-before 900s must be shorter than --session-duration 900\n",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t"), "short").unwrap();
    let t = dir.path().join("t").display().to_string();
    assert_fails_with(
        &run(&["--port", "0", "--ecs-token-from-file", &t]),
        &format!("iamra: error: ECS token file {t} must hold a token of 16 to 4096 characters\n"),
    );
    assert_fails_with(
        &run(&["--port", "0", "--imds=false"]),
        "iamra: error: nothing to serve: the IMDS routes are off (--imds false) and no ECS token is configured (--ecs-token-file)\n",
    );
    assert_fails_with(
        &run(&[
            "--port",
            "0",
            "--ecs-token-file",
            &t,
            "--ecs-token-file-group",
            "no-such-group-here",
        ]),
        "iamra: error: --ecs-token-file-group \"no-such-group-here\": no such group in /etc/group (a group id works too)\n",
    );
    // A port in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = run(&["--port", &port]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "iamra: error: cannot listen on 127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
    assert!(stderr.ends_with("iamra: hint: another process listens there (an earlier iamra serve, or aws_signing_helper serve?): stop it or pick another --port\n"), "{stderr}");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        log_entries(&ep).is_empty(),
        "nothing was sent for a local error"
    );
}

#[test]
fn serve_answers_many_clients_at_once_on_the_threads_asked_for() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let s = serve(&ep, &["--threads", "3"], &[], 1);
    let task_names = || -> Vec<String> {
        let dir = format!("/proc/{}/task", s.daemon.pid());
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim_end().to_string())
            .filter(|n| n.starts_with("iamra-serve-"))
            .collect();
        names.sort();
        names
    };
    // The serving threads start right after the endpoint lines are printed.
    let names = poll_until(Duration::from_secs(5), || {
        let names = task_names();
        (names.len() >= 3).then_some(names)
    })
    .unwrap_or_else(task_names);
    assert_eq!(names, ["iamra-serve-0", "iamra-serve-1", "iamra-serve-2"]);
    // Twelve clients at once, each on its own keep-alive connection: a token PUT and
    // then GETs, all answered, all with the same credentials.
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut conn = connect(&addr);
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut exchange = |req: String| -> String {
                    conn.write_all(req.as_bytes()).unwrap();
                    let answer = Reply::parse(&read_answer(&mut reader));
                    assert_eq!(answer.status, 200, "{answer:?}");
                    answer.body
                };
                let token = exchange(format!(
                    "PUT /latest/api/token HTTP/1.1\r\nHost: {addr}\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n"
                ));
                (0..50)
                    .map(|_| {
                        exchange(format!(
                            "GET /latest/meta-data/iam/security-credentials/iamra-test-role HTTP/1.1\r\nHost: {addr}\r\nX-aws-ec2-metadata-token: {token}\r\n\r\n"
                        ))
                    })
                    .collect::<std::collections::BTreeSet<String>>()
            })
        })
        .collect();
    let mut documents = std::collections::BTreeSet::new();
    for c in clients {
        documents.extend(c.join().unwrap());
    }
    assert_eq!(
        documents.len(),
        1,
        "every answer carries the same credentials"
    );
    let doc: serde_json::Value = serde_json::from_str(documents.first().unwrap()).unwrap();
    assert_eq!(doc["Code"], "Success");
    assert_eq!(
        log_entries(&ep).len(),
        1,
        "one CreateSession for all of them"
    );
    let (status, stderr) = s.daemon.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn serve_fails_fast_when_the_first_credentials_cannot_be_had() {
    let ep = Endpoint::start_with(&["--max-duration", "900", "--fault", "always:access-denied"]);
    let mut args = vec!["serve".to_string(), "--port".into(), "0".into()];
    args.extend(credential_flags(&ep, &td("rsa2048/combined.pem"), None));
    let err = Daemon::start(&args, &[], 1)
        .err()
        .expect("serve must not start");
    let err = err.replace(char::is_numeric, "#");
    assert!(
        err.starts_with("iamra: error: CreateSession failed: AccessDeniedException: Untrusted Signing Certificate (HTTP ###, request id "),
        "{err}"
    );
    assert_eq!(log_entries(&ep).len(), 1);
}

#[test]
fn serve_listens_on_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    }
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let s = serve(&ep, &["--bind", "::1"], &[], 1);
    assert!(s.addr.starts_with("[::1]:"), "{}", s.addr);
    let token = imds_token(&s.addr);
    imds_credentials(&s.addr, &token);
}

#[test]
fn serve_stops_cleanly_on_sigterm_and_sigint() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    for signal in ["TERM", "INT"] {
        let s = serve(&ep, &[], &[], 1);
        // An idle keep-alive connection does not hold the shutdown up.
        let mut idle = connect(&s.addr);
        idle.write_all(
            format!("PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes(),
        )
        .unwrap();
        let answer = read_answer(&mut std::io::BufReader::new(&idle));
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        let (status, stderr) = s.daemon.stop_with(signal);
        assert_eq!(status.code(), Some(0), "{signal}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------
// The server as a library: expiry, limits

mod library {
    use super::*;
    use iamra::credentials::TemporaryCredentials;
    use iamra::output::server::{Limits, Server, ServerConfig};
    use iamra::refresh::Snapshot;
    use iamra::session::{Arn, ArnKind};
    use secrecy::SecretString;
    use tokio::sync::watch;

    fn creds(expires_in: i64) -> Arc<TemporaryCredentials> {
        let at = ::time::OffsetDateTime::now_utc() + ::time::Duration::seconds(expires_in);
        Arc::new(TemporaryCredentials::new(
            "ASIALIBRARYTEST".into(),
            SecretString::from("library-secret"),
            SecretString::from("library-token"),
            String::new(),
            at,
        ))
    }

    /// Runs a server on 127.0.0.1:0 over `rx` for the duration of `body`.
    fn with_server(rx: watch::Receiver<Snapshot>, limits: Limits, body: impl FnOnce(&str)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(async {
            Server::bind(
                ServerConfig::new(
                    "127.0.0.1:0".parse().unwrap(),
                    Arn::parse(ArnKind::Role, ROLE_ARN).unwrap(),
                )
                .with_ecs_token(Some(SecretString::from("library-ecs-token-0123456789")))
                .with_limits(limits)
                .with_threads(2),
            )
            .unwrap()
        });
        let addr = server.local_addr().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(server.run(rx, Arc::new(iamra::clock::SystemClock), async {
            let _ = stopped.await;
        }));
        body(&addr);
        let _ = stop.send(());
        rt.block_on(task).unwrap().unwrap();
    }

    /// The caller's runtime also runs the refresh, which may block in a slow HSM or
    /// TPM: accepting and answering go on without it.
    #[test]
    fn requests_are_answered_while_the_callers_runtime_is_blocked() {
        let (_tx, rx) = watch::channel(Snapshot {
            credentials: Some(creds(600)),
            ..Snapshot::default()
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = Server::bind(
                ServerConfig::new(
                    "127.0.0.1:0".parse().unwrap(),
                    Arn::parse(ArnKind::Role, ROLE_ARN).unwrap(),
                )
                .with_threads(1),
            )
            .unwrap();
            let addr = server.local_addr().to_string();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let run = tokio::spawn(server.run(rx, Arc::new(iamra::clock::SystemClock), async {
                let _ = stopped.await;
            }));
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Block the runtime's only thread while a client connects and asks.
            let client = std::thread::spawn(move || {
                let token = imds_token(&addr);
                imds_credentials(&addr, &token)
            });
            let doc = client.join().unwrap();
            assert_eq!(doc["SecretAccessKey"], "library-secret");
            let _ = stop.send(());
            run.await.unwrap().unwrap();
        });
    }

    #[test]
    fn expired_credentials_are_a_503_with_the_reason_never_a_success() {
        let snapshot = Snapshot {
            credentials: Some(creds(-5)),
            obtained_at: Some(::time::OffsetDateTime::now_utc()),
            generation: 1,
            last_error: Some(
                "cannot reach https://ra.example/sessions after 3 attempt(s): connection refused"
                    .into(),
            ),
            next_refresh: Some(::time::macros::datetime!(2030-01-01 00:00:00 UTC)),
            ..Snapshot::default()
        };
        let (tx, rx) = watch::channel(snapshot);
        with_server(rx, Limits::default(), |a| {
            let token = imds_token(a);
            let path = "/latest/meta-data/iam/security-credentials/iamra-test-role";
            let r = http(a, "GET", path, &[("X-aws-ec2-metadata-token", &token)]);
            assert_eq!(r.status, 503);
            assert!(
                r.body
                    .starts_with("no valid credentials: the last ones expired at "),
                "{}",
                r.body
            );
            assert!(r.body.ends_with(" and refreshing them failed: cannot reach https://ra.example/sessions after 3 attempt(s): connection refused; next attempt at 2030-01-01T00:00:00Z\n"), "{}", r.body);
            assert!(!r.body.contains("library-secret") && !r.body.contains("Success"));
            let e = http(
                a,
                "GET",
                "/v1/credentials",
                &[("Authorization", "library-ecs-token-0123456789")],
            );
            assert_eq!(e.status, 503);
            let v: serde_json::Value = serde_json::from_str(&e.body).unwrap();
            assert_eq!(v["code"], "CredentialsUnavailable");
            // A refresh succeeds: served again at once.
            tx.send_modify(|s| {
                s.credentials = Some(creds(600));
                s.last_error = None;
            });
            let r = http(a, "GET", path, &[("X-aws-ec2-metadata-token", &token)]);
            assert_eq!(r.status, 200);
            assert!(r.body.contains("\"SecretAccessKey\":\"library-secret\""));
            // No credentials at all (never the case for the CLI, which fails fast).
            tx.send_modify(|s| s.credentials = None);
            let r = http(a, "GET", path, &[("X-aws-ec2-metadata-token", &token)]);
            assert_eq!(r.status, 503);
            assert!(r.body.starts_with("no credentials yet: "), "{}", r.body);
        });
    }

    #[test]
    fn slow_requests_are_cut_off() {
        let (_tx, rx) = watch::channel(Snapshot {
            credentials: Some(creds(600)),
            ..Snapshot::default()
        });
        let limits = Limits::default()
            .with_header_timeout(Duration::from_millis(300))
            .with_body_timeout(Duration::from_millis(300));
        with_server(rx, limits, |a| {
            // Headers that never finish: the connection is closed.
            let mut s = connect(a);
            s.write_all(b"GET /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            let text = read_all(&mut s);
            assert!(
                text.is_empty() || text.starts_with("HTTP/1.1 408"),
                "{text}"
            );
            // A body that never arrives: 408.
            let mut s = connect(a);
            s.write_all(b"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nab")
                .unwrap();
            let text = read_all(&mut s);
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            // A chunked body over the limit: 413.
            let mut req = b"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..3 {
                req.extend_from_slice(format!("800\r\n{}\r\n", "x".repeat(0x800)).as_bytes());
            }
            req.extend_from_slice(b"0\r\n\r\n");
            let r = http_raw(a, &req);
            assert_eq!(r.status, 413);
        });
    }
}

// ---------------------------------------------------------------------------------
// Refresh under faults, rotation

#[test]
fn serve_keeps_the_last_good_credentials_through_faults_and_recovers() {
    let ep = faulty_endpoint("500");
    let s = serve(
        &ep,
        &[
            "--refresh-before",
            "897s",
            "--timeout",
            "1",
            "--max-attempts",
            "3",
        ],
        &[],
        1,
    );
    let a = s.addr.as_str();
    let token = imds_token(a);
    let first = imds_credentials(a, &token);
    let mut gets = 0;
    let recovered = wait_for("a refresh to succeed after the faults", || {
        let c = imds_credentials(a, &token);
        gets += 1;
        (c["AccessKeyId"] != first["AccessKeyId"]).then_some(c)
    });
    assert_ne!(recovered["SecretAccessKey"], first["SecretAccessKey"]);
    assert_fault_plan_met(&ep, "500");
    let log = log_entries(&ep);
    assert!(
        log.len() < gets / 2,
        "{} CreateSession requests for {gets} client requests: one per refresh attempt, not per client request",
        log.len()
    );
    let (status, stderr) = s.daemon.stop();
    assert!(status.success());
    assert!(
        stderr.contains("iamra: warning: refresh failed (attempt 1); the credentials valid until "),
        "{stderr}"
    );
    assert!(stderr.contains("retrying in "), "{stderr}");
}

#[test]
fn serve_retries_a_permanent_failure_slowly_and_keeps_serving() {
    let ep = Endpoint::start_with(&[
        "--max-duration",
        "900",
        "--fault",
        "ok",
        "--fault",
        "always:access-denied",
    ]);
    let s = serve(&ep, &["--refresh-before", "898s"], &[], 1);
    let a = s.addr.as_str();
    let token = imds_token(a);
    let first = imds_credentials(a, &token);
    wait_for("the refresh to fail", || {
        (log_entries(&ep).len() >= 2).then_some(())
    });
    let stderr = wait_for("the error to be logged", || {
        let e = s.daemon.stderr();
        e.contains("iamra: error: refresh failed").then_some(e)
    });
    assert!(stderr.contains("iamra: error: refresh failed (attempt 1), and retrying will not help until the configuration, the certificate or the role is fixed; the credentials valid until "), "{stderr}");
    assert!(stderr.contains(": CreateSession failed: AccessDeniedException: Untrusted Signing Certificate (HTTP 403, request id "), "{stderr}");
    // Still the first credentials, and no fast retry loop.
    for _ in 0..20 {
        assert_eq!(
            imds_credentials(a, &token)["AccessKeyId"],
            first["AccessKeyId"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(log_entries(&ep).len(), 2);
}

#[test]
fn serve_uses_the_rotated_certificate_at_the_next_refresh() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let rotation = Rotation::new();
    let mut args = vec![
        "serve".to_string(),
        "--port".into(),
        "0".into(),
        "--refresh-before".into(),
        "897s".into(),
        "--log-level".into(),
        "info".into(),
    ];
    args.extend(credential_flags(
        &ep,
        &rotation.cert(),
        Some(&rotation.key()),
    ));
    let d = Daemon::start(&args, &[], 1).unwrap();
    let (old, new) = (&rotation.old, &rotation.new);
    assert_eq!(serials(&ep), std::slice::from_ref(old));
    let (seen, switch) = rotation.rotate(&ep);
    assert!(seen[switch..].iter().all(|s| s == new), "{seen:?}");
    let (status, stderr) = d.stop();
    assert!(status.success());
    assert!(
        stderr.contains(&format!(
            "the certificate or key files changed: now using certificate serial {new} (was {old})"
        )),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------
// Secrets

#[test]
fn serve_never_logs_credentials_or_tokens_even_at_trace_level() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let s = serve(
        &ep,
        &[
            "--ecs-token-file",
            token_file.to_str().unwrap(),
            "--imds=true",
            "--refresh-before",
            "897s",
        ],
        &[("IAMRA_LOG", "trace")],
        3,
    );
    let a = s.addr.clone();
    let imds = imds_token(&a);
    let ecs = std::fs::read_to_string(&token_file).unwrap();
    let mut secrets = vec![imds.clone(), ecs.clone()];
    let first = imds_credentials(&a, &imds);
    // Through a refresh too.
    let second = wait_for("a refresh", || {
        let c = imds_credentials(&a, &imds);
        (c["AccessKeyId"] != first["AccessKeyId"]).then_some(c)
    });
    let r = http(&a, "GET", "/v1/credentials", &[("Authorization", &ecs)]);
    assert_eq!(r.status, 200);
    for c in [&first, &second] {
        secrets.push(c["SecretAccessKey"].as_str().unwrap().to_string());
        secrets.push(c["Token"].as_str().unwrap().to_string());
    }
    let (status, stderr) = s.daemon.stop();
    assert!(status.success());
    assert!(stderr.contains("iamra: trace: "), "trace logging is on");
    assert!(
        stderr.contains("iamra: info: obtained credentials"),
        "{stderr}"
    );
    for secret in &secrets {
        assert!(!stderr.contains(secret.as_str()), "a secret reached stderr");
    }
}

// ---------------------------------------------------------------------------------
// boto3

#[test]
fn boto3_gets_our_credentials_from_the_imds_endpoint() {
    let Some(python) = boto3_python() else { return };
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let s = serve(&ep, &[], &[], 1);
    let home = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{}/", s.addr);
    let got = boto3_credentials(
        &python,
        home.path(),
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint)],
    );
    assert_eq!(got["method"], "iam-role");
    let ours = imds_credentials(&s.addr, &imds_token(&s.addr));
    assert_eq!(got["access_key"], ours["AccessKeyId"]);
    assert_eq!(got["secret_key"], ours["SecretAccessKey"]);
    assert_eq!(got["token"], ours["Token"]);
    assert_eq!(
        log_entries(&ep).len(),
        1,
        "the credentials the endpoint issued at start"
    );
}

#[test]
fn boto3_gets_our_credentials_from_the_ecs_endpoint() {
    let Some(python) = boto3_python() else { return };
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("ecs-token");
    let s = serve(
        &ep,
        &["--ecs-token-file", token_file.to_str().unwrap(), "--imds"],
        &[],
        3,
    );
    let uri = s.daemon.lines[1]
        .strip_prefix("export AWS_CONTAINER_CREDENTIALS_FULL_URI=")
        .unwrap()
        .to_string();
    let got = boto3_credentials(
        &python,
        home.path(),
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
        ],
    );
    assert_eq!(got["method"], "container-role");
    let ours = imds_credentials(&s.addr, &imds_token(&s.addr));
    assert_eq!(got["access_key"], ours["AccessKeyId"]);
    assert_eq!(got["secret_key"], ours["SecretAccessKey"]);
    assert_eq!(got["token"], ours["Token"]);
    assert_eq!(log_entries(&ep).len(), 1);
}

// ---------------------------------------------------------------------------------
// systemd socket activation

/// Binds 127.0.0.1:0, puts the socket on fd 3 and execs the command with
/// `LISTEN_PID` (its own pid, kept by exec) and `LISTEN_FDS=1`, as systemd does.
const ACTIVATE: &str = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execve(sys.argv[1], sys.argv[1:], env)
"#;

#[test]
fn serve_takes_its_socket_from_systemd() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let mut args = vec![
        "serve".to_string(),
        "--port".into(),
        "1".into(), // ignored: the passed socket is used
    ];
    args.extend(credential_flags(&ep, &td("rsa2048/combined.pem"), None));
    let python = clean_iamra_command_via("python3", &["-c", ACTIVATE]);
    let d = Daemon::start_command(with_iamra_args(python, &args, &[]), 1)
        .unwrap_or_else(|e| panic!("serve failed: {e}"));
    let addr = d.imds_addr();
    assert!(!addr.ends_with(":1"), "{addr}");
    let token = imds_token(&addr);
    imds_credentials(&addr, &token);
    // The adopted descriptor is close-on-exec (O_CLOEXEC, octal 02000000).
    let fdinfo = std::fs::read_to_string(format!("/proc/{}/fdinfo/3", d.pid())).unwrap();
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    assert_ne!(flags & 0o2000000, 0, "fd 3 is not close-on-exec: {fdinfo}");
    let (status, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

/// `LISTEN_FDS=1` naming this process but no socket passed: descriptor 3 is
/// checked before a TPM connection (or a PKCS#11 module) can take that number, so
/// the TPM's socket is never mistaken for the listener.
#[cfg(feature = "tpm")]
#[test]
fn a_stray_listen_fds_never_adopts_a_tpm_connection() {
    use crate::common::swtpm::Swtpm;
    let Some(tpm) = Swtpm::start() else { return };
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let stray = r#"
import os, sys
env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execve(sys.argv[1], sys.argv[1:], env)
"#;
    let mut args = vec!["serve".to_string(), "--port".into(), "0".into()];
    let key = tpm.file("prov-ec.tss2.pem");
    args.extend(credential_flags(
        &ep,
        Path::new(&tpm.file("prov-ec.crt")),
        Some(Path::new(&key)),
    ));
    let out = with_iamra_args(
        clean_iamra_command_via("python3", &["-c", stray]),
        &args,
        &[("TPM2TOOLS_TCTI", &tpm.tcti())],
    )
    .output()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "iamra: error: LISTEN_FDS=1 but file descriptor 3 is not a socket\n"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(out.status.code(), Some(1));
}
