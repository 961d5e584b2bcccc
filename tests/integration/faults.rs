//! Service errors and injected faults: what is retried, what is not, and that a
//! broken answer never becomes credentials.

use crate::common::*;

fn call(ep: &Endpoint, cert: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td(cert).display().to_string(),
    ];
    if !cert.ends_with(".p12") {
        args.extend([
            "--intermediates".into(),
            td("chain.pem").display().to_string(),
        ]);
    }
    args.extend(ep.flags());
    args.extend(extra.iter().map(|s| s.to_string()));
    iamra(&args, &[])
}

/// Replaces the random request id so messages can be pinned.
fn scrub(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).into_owned();
    match s.find("request id ") {
        Some(i) => format!(
            "{}request id <id>{}",
            &s[..i],
            &s[i + "request id ".len() + 36..]
        ),
        None => s,
    }
}

#[track_caller]
fn assert_failed(out: &std::process::Output, expected: &str) {
    assert_eq!(scrub(&out.stderr), expected);
    assert!(out.stdout.is_empty(), "no credentials on stdout");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn transient_failures_are_retried_then_succeed() {
    for fault in ["500", "503", "429", "drop", "truncated"] {
        let ep = Endpoint::start_with(&["--fault", fault]);
        let out = call(&ep, "rsa2048/combined.pem", &[]);
        assert_credentials(&out);
        let r = ep.requests();
        assert_eq!(r.len(), 2, "{fault}: one failure, one retry");
        assert_eq!(r[1]["status"], 201, "{fault}");
    }
}

#[test]
fn retry_after_is_honoured() {
    let ep = Endpoint::start_with(&["--fault", "429"]);
    let start = std::time::Instant::now();
    assert_credentials(&call(&ep, "ec-p256/combined.pem", &[]));
    // The endpoint sends Retry-After: 1; the retry waits for it.
    assert!(start.elapsed() >= std::time::Duration::from_millis(950));
}

#[test]
fn persistent_5xx_fails_after_the_attempt_budget() {
    let ep = Endpoint::start_with(&["--fault", "always:503"]);
    let out = call(&ep, "rsa2048/combined.pem", &["--max-attempts", "3"]);
    assert_eq!(ep.requests().len(), 3);
    let stderr = scrub(&out.stderr);
    assert!(
        stderr.starts_with("iamra: error: CreateSession failed: "),
        "{stderr}"
    );
    assert!(stderr.contains("(HTTP 503, request id <id>)"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn dropped_connections_every_time_fail_clearly() {
    let ep = Endpoint::start_with(&["--fault", "always:drop"]);
    let out = call(&ep, "rsa2048/combined.pem", &["--max-attempts", "2"]);
    assert_eq!(ep.requests().len(), 2);
    let stderr = scrub(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "iamra: error: cannot reach {}/sessions after 2 attempt(s): ",
            ep.url()
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("iamra: hint: check --endpoint, the network, and HTTPS_PROXY/NO_PROXY\n"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn broken_success_answers_are_errors_not_credentials() {
    let cases = [
        (
            "malformed",
            "iamra: error: malformed CreateSession response (not JSON)\n",
        ),
        (
            "missing-field",
            "iamra: error: malformed CreateSession response (missing field `sessionToken`)\n",
        ),
        (
            "empty-set",
            "iamra: error: CreateSession response holds no credentials (empty credentialSet)\n",
        ),
        (
            "wrong-type",
            "iamra: error: malformed CreateSession response (invalid type of a field)\n",
        ),
        (
            "huge",
            "iamra: error: CreateSession response is larger than 1 MiB\n",
        ),
    ];
    for (fault, expected) in cases {
        let ep = Endpoint::start_with(&["--fault", fault]);
        let out = call(&ep, "rsa2048/combined.pem", &[]);
        assert_failed(&out, expected);
        assert_eq!(ep.requests().len(), 1, "{fault}: not retried");
    }
}

#[test]
fn slow_answers_time_out() {
    let ep = Endpoint::start_with(&["--fault", "always:delay:5000"]);
    let out = call(
        &ep,
        "rsa2048/combined.pem",
        &["--timeout", "1", "--max-attempts", "1"],
    );
    let stderr = scrub(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "iamra: error: cannot reach {}/sessions after 1 attempt(s): ",
            ep.url()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // A short delay is just a slow answer.
    let ep = Endpoint::start_with(&["--fault", "delay:300"]);
    assert_credentials(&call(&ep, "rsa2048/combined.pem", &[]));
}

#[test]
fn service_rejections_are_not_retried_and_carry_a_hint() {
    let untrusted = "iamra: error: CreateSession failed: AccessDeniedException: Untrusted Signing Certificate (HTTP 403, request id <id>)\niamra: hint: check that the certificate chains to the trust anchor's CA; is --intermediates missing?\n";

    // A leaf from another CA.
    let ep = Endpoint::start();
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td("untrusted/cert.pem").display().to_string(),
        "--private-key".into(),
        td("untrusted/key.pkcs8.pem").display().to_string(),
    ];
    args.extend(ep.flags());
    assert_failed(&iamra(&args, &[]), untrusted);
    assert_eq!(ep.requests().len(), 1);

    // A good leaf whose intermediate was left out.
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td("rsa2048/combined.pem").display().to_string(),
    ];
    args.extend(ep.flags());
    assert_failed(&iamra(&args, &[]), untrusted);

    // Unknown trust anchor / profile, role not in the profile.
    let other_ta = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00000000-0000-0000-0000-000000000000";
    let other_profile =
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/00000000-0000-0000-0000-000000000000";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--trust-anchor-arn", other_ta],
            "iamra: error: CreateSession failed: ResourceNotFoundException: Trust anchor not found (HTTP 404, request id <id>)\niamra: hint: check --trust-anchor-arn, --profile-arn and the region\n",
        ),
        (
            &["--profile-arn", other_profile],
            "iamra: error: CreateSession failed: ResourceNotFoundException: Profile not found (HTTP 404, request id <id>)\niamra: hint: check --trust-anchor-arn, --profile-arn and the region\n",
        ),
        (
            &["--role-arn", "arn:aws:iam::123456789012:role/other"],
            "iamra: error: CreateSession failed: AccessDeniedException: Profile does not allow the role (HTTP 403, request id <id>)\niamra: hint: check that the profile lists --role-arn and that the role trusts rolesanywhere.amazonaws.com\n",
        ),
    ];
    for (over, expected) in cases {
        let mut flags = ep.flags();
        let i = flags.iter().position(|f| f == over[0]).unwrap();
        flags[i + 1] = over[1].to_string();
        let mut args = vec![
            "credential-process".to_string(),
            "--certificate".into(),
            td("rsa2048/combined.pem").display().to_string(),
            "--intermediates".into(),
            td("chain.pem").display().to_string(),
        ];
        args.extend(flags);
        assert_failed(&iamra(&args, &[]), expected);
    }
    // Not retried: 2 + 3 requests, one each.
    assert_eq!(ep.requests().len(), 5);
}

#[test]
fn role_session_name_refused_by_the_profile() {
    let ep = Endpoint::start_with(&["--no-role-session-name"]);
    let out = call(
        &ep,
        "rsa2048/combined.pem",
        &["--role-session-name", "ci-job"],
    );
    assert_failed(
        &out,
        "iamra: error: CreateSession failed: AccessDeniedException: Not authorized to set roleSessionName (HTTP 403, request id <id>)\niamra: hint: the profile does not accept role session names: drop --role-session-name or enable it on the profile\n",
    );
}

#[test]
fn durations_above_the_profile_limit_are_refused_by_the_service() {
    let ep = Endpoint::start_with(&["--max-duration", "3600"]);
    let out = call(&ep, "rsa2048/combined.pem", &["--session-duration", "7200"]);
    let stderr = scrub(&out.stderr);
    assert!(
        stderr.starts_with("iamra: error: CreateSession failed: ValidationException: "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// An expiration in the past, or past year 9999 in UTC (which used to abort
/// `serve` and `update` through an overflow), is a malformed answer: refused at
/// once, never retried, never cached, never printed.
#[test]
fn absurd_expirations_are_refused_and_never_cached() {
    for (fault, expected) in [
        (
            "far-future",
            "iamra: error: CreateSession response has an expiration more than 12 hours and 15 minutes ahead (\"9999-12-31T23:59:59-01:00\"); is the system clock right?\n",
        ),
        (
            "expired",
            "iamra: error: CreateSession response has an expiration in the past (",
        ),
    ] {
        let ep = Endpoint::start_with(&["--fault", &format!("always:{fault}")]);
        let cache = tempfile::tempdir().unwrap();
        let out = iamra(
            &{
                let mut a = vec![
                    "credential-process".to_string(),
                    "--certificate".into(),
                    td("rsa2048/combined.pem").display().to_string(),
                ];
                a.extend(ep.flags());
                a
            },
            &[
                ("IAMRA_NO_CACHE", "false"),
                ("IAMRA_CACHE_DIR", cache.path().to_str().unwrap()),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(expected), "{fault}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{fault}: {stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(out.status.code(), Some(1), "{fault}");
        assert_eq!(ep.requests().len(), 1, "{fault}: not retried");
        let cached: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .collect();
        assert!(cached.is_empty(), "{fault}: cached {cached:?}");
    }
}

/// A CreateSession call is bounded as a whole: an answer that stalls after its
/// headers, or a server that never answers, ends within `--total-timeout` (not
/// 20 s per attempt × 3 attempts + backoff), naming the endpoint and what stalled.
#[test]
fn stalled_answers_end_at_the_total_timeout_naming_what_stalled() {
    for (fault, stalled) in [
        ("stall", "reading the response body"),
        ("hang", "connecting or waiting for the response headers"),
    ] {
        let ep = Endpoint::start_with(&["--fault", &format!("always:{fault}")]);
        let start = std::time::Instant::now();
        let out = call(&ep, "rsa2048/combined.pem", &["--total-timeout", "3"]);
        let elapsed = start.elapsed();
        assert_failed(
            &out,
            &format!(
                "iamra: error: CreateSession at {}/sessions did not complete within 3s (attempt 1): stalled {stalled}\niamra: hint: if the endpoint is only slow, raise --total-timeout (IAMRA_TOTAL_TIMEOUT); otherwise check --endpoint, the network, and HTTPS_PROXY/NO_PROXY\n",
                ep.url()
            ),
        );
        // A hang guard, not a timing assertion: far below the 60 s it used to take.
        assert!(
            elapsed < std::time::Duration::from_secs(30),
            "{fault}: {elapsed:?}"
        );
    }
    // The variable works as the flag does.
    let ep = Endpoint::start_with(&["--fault", "always:hang"]);
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td("rsa2048/combined.pem").display().to_string(),
    ];
    args.extend(ep.flags());
    let out = iamra(&args, &[("IAMRA_TOTAL_TIMEOUT", "2")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not complete within 2s"), "{stderr}");
}
