//! Successful `CreateSession` bodies (and the broken ones the faults send).
//!
//! Shape (compact JSON, members in this order):
//!
//! ```text
//! {"credentialSet":[{"assumedRoleUser":{"arn":"arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION",
//!   "assumedRoleId":"AROA…:SESSION"},"credentials":{"accessKeyId":"ASIA…","expiration":"…Z",
//!   "secretAccessKey":"…","sessionToken":"…"},"packedPolicySize":0,"roleArn":"…",
//!   "sourceIdentity":"CN=…"}],"subjectArn":"arn:aws:rolesanywhere:REGION:ACCOUNT:subject/UUID"}
//! ```
//!
//! Credentials are random for every request. The subject id is derived from the
//! SHA-256 of the leaf certificate, so one certificate always has one subject.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// Upper-case letters and digits (access key ids, role ids).
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Characters of secret access keys.
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// What a session response is made of.
#[derive(Debug, Clone)]
pub struct Session {
    /// Partition of the role ARN, e.g. `aws`.
    pub partition: String,
    /// Account of the role ARN.
    pub account: String,
    /// The role ARN.
    pub role_arn: String,
    /// The role name (last component of the role ARN).
    pub role_name: String,
    /// Session name.
    pub session_name: String,
    /// `CN=…` of the leaf.
    pub source_identity: String,
    /// Partition of the trust anchor (for the subject ARN).
    pub subject_partition: String,
    /// Account of the trust anchor (for the subject ARN).
    pub subject_account: String,
    /// Endpoint region.
    pub region: String,
    /// Subject id bytes (16 are used).
    pub subject_seed: [u8; 32],
    /// Granted duration.
    pub duration_seconds: i64,
}

/// `len` random characters from `set`.
fn random_string(set: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(set[rng.random_range(0..set.len())]))
        .collect()
}

/// RFC 3339 UTC with seconds precision and a `Z`, e.g. `2026-12-01T21:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// The subject UUID from the seed.
fn subject_id(seed: &[u8; 32]) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&seed[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The expiration instant of a session starting at `now`.
fn expiration(now: OffsetDateTime, duration: i64) -> OffsetDateTime {
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .saturating_add(time::Duration::seconds(duration))
}

/// The response as a JSON value (random credentials).
pub fn session_value(s: &Session, now: OffsetDateTime) -> Value {
    let mut token = vec![0u8; 225];
    rand::rng().fill(&mut token[..]);
    json!({
        "credentialSet": [{
            "assumedRoleUser": {
                "arn": format!(
                    "arn:{}:sts::{}:assumed-role/{}/{}",
                    s.partition, s.account, s.role_name, s.session_name
                ),
                "assumedRoleId": format!("AROA{}:{}", random_string(UPPER_ALNUM, 17), s.session_name),
            },
            "credentials": {
                "accessKeyId": format!("ASIA{}", random_string(UPPER_ALNUM, 16)),
                "expiration": rfc3339(expiration(now, s.duration_seconds)),
                "secretAccessKey": random_string(SECRET_CHARS, 40),
                "sessionToken": STANDARD.encode(&token),
            },
            "packedPolicySize": 0,
            "roleArn": s.role_arn,
            "sourceIdentity": s.source_identity,
        }],
        "subjectArn": format!(
            "arn:{}:rolesanywhere:{}:{}:subject/{}",
            s.subject_partition,
            s.region,
            s.subject_account,
            subject_id(&s.subject_seed)
        ),
    })
}

/// Compact JSON text of a value.
pub fn to_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The body for `missing-field`: no `sessionToken`.
pub fn without_session_token(mut v: Value) -> Value {
    if let Some(c) = v
        .pointer_mut("/credentialSet/0/credentials")
        .and_then(Value::as_object_mut)
    {
        c.remove("sessionToken");
    }
    v
}

/// The body for `empty-set`.
pub fn with_empty_set(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("credentialSet".to_string(), json!([]));
    }
    v
}

/// The body for `wrong-type`: `expiration` as Unix seconds.
pub fn with_numeric_expiration(mut v: Value, now: OffsetDateTime, duration: i64) -> Value {
    if let Some(c) = v
        .pointer_mut("/credentialSet/0/credentials")
        .and_then(Value::as_object_mut)
    {
        c.insert(
            "expiration".to_string(),
            json!(expiration(now, duration).unix_timestamp()),
        );
    }
    v
}

/// The body for `far-future` and `expired`: `expiration` replaced by `text`.
pub fn with_expiration_text(mut v: Value, text: &str) -> Value {
    if let Some(c) = v
        .pointer_mut("/credentialSet/0/credentials")
        .and_then(Value::as_object_mut)
    {
        c.insert("expiration".to_string(), json!(text));
    }
    v
}

/// The body for `huge`: a valid response with a ~10 MiB `padding` member.
pub fn padded(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("padding".to_string(), json!("A".repeat(10 * 1024 * 1024)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            partition: "aws".into(),
            account: "123456789012".into(),
            role_arn: "arn:aws:iam::123456789012:role/iamra-test-role".into(),
            role_name: "iamra-test-role".into(),
            session_name: "0a1b".into(),
            source_identity: "CN=leaf".into(),
            subject_partition: "aws".into(),
            subject_account: "123456789012".into(),
            region: "us-east-1".into(),
            subject_seed: [7; 32],
            duration_seconds: 3600,
        }
    }

    #[test]
    fn success_body_has_the_service_shape() {
        let now = OffsetDateTime::from_unix_timestamp(1_796_155_200).expect("time");
        let text = to_text(&session_value(&session(), now));
        let v: Value = serde_json::from_str(&text).expect("json");
        let set = &v["credentialSet"][0];
        let c = &set["credentials"];
        let key = c["accessKeyId"].as_str().expect("key id");
        assert!(key.starts_with("ASIA") && key.len() == 20);
        assert!(key[4..].bytes().all(|b| UPPER_ALNUM.contains(&b)));
        assert_eq!(c["secretAccessKey"].as_str().map(str::len), Some(40));
        assert_eq!(c["sessionToken"].as_str().map(str::len), Some(300));
        assert_eq!(c["expiration"], "2026-12-01T21:00:00Z");
        assert_eq!(
            set["assumedRoleUser"]["arn"],
            "arn:aws:sts::123456789012:assumed-role/iamra-test-role/0a1b"
        );
        assert!(
            set["assumedRoleUser"]["assumedRoleId"]
                .as_str()
                .is_some_and(|s| s.starts_with("AROA") && s.ends_with(":0a1b"))
        );
        assert_eq!(set["packedPolicySize"], 0);
        assert_eq!(set["sourceIdentity"], "CN=leaf");
        assert!(v["subjectArn"].as_str().is_some_and(|s| {
            s.starts_with("arn:aws:rolesanywhere:us-east-1:123456789012:subject/")
        }));
        let order = [
            "\"credentialSet\"",
            "\"assumedRoleUser\"",
            "\"arn\"",
            "\"assumedRoleId\"",
            "\"credentials\"",
            "\"accessKeyId\"",
            "\"expiration\"",
            "\"secretAccessKey\"",
            "\"sessionToken\"",
            "\"packedPolicySize\"",
            "\"roleArn\"",
            "\"sourceIdentity\"",
            "\"subjectArn\"",
        ];
        let positions: Vec<usize> = order.iter().filter_map(|k| text.find(k)).collect();
        assert_eq!(positions.len(), order.len());
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn credentials_differ_per_response() {
        let now = OffsetDateTime::now_utc();
        let a = session_value(&session(), now);
        let b = session_value(&session(), now);
        assert_ne!(
            a["credentialSet"][0]["credentials"]["accessKeyId"],
            b["credentialSet"][0]["credentials"]["accessKeyId"]
        );
        assert_eq!(a["subjectArn"], b["subjectArn"]);
    }

    #[test]
    fn broken_bodies_are_broken_as_specified() {
        let now = OffsetDateTime::now_utc();
        let v = session_value(&session(), now);
        let m = without_session_token(v.clone());
        assert!(
            m["credentialSet"][0]["credentials"]
                .get("sessionToken")
                .is_none()
        );
        assert_eq!(with_empty_set(v.clone())["credentialSet"], json!([]));
        assert!(with_numeric_expiration(v.clone(), now, 3600)["credentialSet"][0]["credentials"]["expiration"].is_i64());
        assert!(to_text(&padded(v)).len() > 10 * 1024 * 1024);
    }
}
