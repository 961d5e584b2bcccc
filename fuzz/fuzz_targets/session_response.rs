//! `CreateSession` answers: `parse_success` on the body of a 201, `parse_error` on
//! the body of an error status. Properties: a success has every field non-empty; an
//! error message never quotes a secret value from the body; the service's error
//! message is at most 300 characters without control characters.
#![no_main]

use iamra::session::response::{parse_error, parse_success};
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

fuzz_target!(|data: &[u8]| {
    match parse_success(data) {
        Ok(c) => {
            assert!(!c.access_key_id().is_empty());
            assert!(!c.secret_access_key().is_empty() && !c.session_token().is_empty());
            assert!(!c.expiration().is_empty());
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
