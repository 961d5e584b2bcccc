//! `CreateSession` answers: `parse_success` on the body of a 201, `parse_error` on
//! the body of an error status. Properties: a success has every field non-empty; an
//! error message never quotes a secret value from the body; the service's error
//! message is at most 300 characters without control characters.
//!
//! A parsed success then goes where credentials go, with "now" both fixed and just
//! before its expiration: the expiration check, the refresh schedule, and the
//! credential_process, credentials-file, IMDS and ECS renderings. None may panic
//! (an expiration past year 9999 in UTC used to abort `serve` and `update`); the
//! schedule stays within a day of now; accepted credentials render as JSON that
//! reads back to the same values.
#![no_main]

use iamra::credentials::TemporaryCredentials;
use iamra::output::server::{ecs, imds};
use iamra::output::{credentials_file, process};
use iamra::utc::rfc3339 as utc_seconds;
use iamra::refresh::RefreshPolicy;
use iamra::session::response::{check_expiration, parse_error, parse_success};
use libfuzzer_sys::fuzz_target;

/// Every string under `secretAccessKey` or `sessionToken`, anywhere in the body.
fn secrets(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if let ("secretAccessKey" | "sessionToken", serde_json::Value::String(s)) =
                    (k.as_str(), v)
                {
                    out.push(s.clone());
                }
                secrets(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| secrets(i, out)),
        _ => {}
    }
}

/// What happens to credentials received at `now`.
fn downstream(c: &TemporaryCredentials, now: time::OffsetDateTime, u: f64) {
    let _ = utc_seconds(c.expires_at());
    let policy = RefreshPolicy::default();
    let next = policy.refresh_at(now, c.expires_at(), u);
    assert!(next >= now && next - now <= time::Duration::DAY, "{next} from {now}");
    let _ = policy.retry_delay(u32::MAX, false, u);
    if check_expiration(c, now).is_err() {
        return;
    }
    let read = |doc: &str| serde_json::from_str::<serde_json::Value>(doc).expect(doc);
    let v = read(&process::render(c));
    assert_eq!(v["AccessKeyId"], c.access_key_id());
    assert_eq!(v["SecretAccessKey"], c.secret_access_key());
    assert_eq!(v["SessionToken"], c.session_token());
    let v = read(&imds::credentials_json(c, now));
    assert_eq!(v["Token"], c.session_token());
    assert_eq!(v["Expiration"], utc_seconds(c.expires_at()));
    let v = read(&ecs::credentials_json(
        "arn:aws:iam::123456789012:role/r",
        "123456789012",
        c,
    ));
    assert_eq!(v["SecretAccessKey"], c.secret_access_key());
    // The credentials file takes them too (or refuses them with an error).
    let _ = credentials_file::rewrite(b"[default]\nregion = eu-west-1\n", "default", c);
}

fuzz_target!(|data: &[u8]| {
    match parse_success(data) {
        Ok(c) => {
            assert!(!c.access_key_id().is_empty());
            assert!(!c.secret_access_key().is_empty() && !c.session_token().is_empty());
            assert!(!c.expiration().is_empty());
            let u = f64::from(data.first().copied().unwrap_or(0)) / 255.0;
            // 2026-12-01T12:00:00Z.
            if let Ok(fixed) = time::OffsetDateTime::from_unix_timestamp(1_796_126_400) {
                downstream(&c, fixed, u);
            }
            // Now shortly before the expiration, so that most answers are accepted.
            let back = time::Duration::seconds((data.len() as i64 * 97) % 50_000);
            if let Some(now) = c.expires_at().checked_sub(back) {
                downstream(&c, now, u);
            }
        }
        Err(message) => {
            let mut found = Vec::new();
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
                secrets(&v, &mut found);
            }
            for s in found.iter().filter(|s| s.len() >= 4) {
                assert!(!message.contains(s.as_str()), "{message}");
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let e = parse_error(400, Some(&text), Some("rid"), data);
    assert!(e.message.chars().count() <= 300);
    assert!(!e.message.chars().any(char::is_control));
});
