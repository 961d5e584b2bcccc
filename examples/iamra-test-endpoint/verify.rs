//! The `CreateSession` verifier: a pure function from the request, the time and
//! the endpoint configuration to either the verified session parameters or the
//! error the service answers with. Nothing here knows about HTTP transport.
//!
//! Checks, in order (the first failing one decides the answer):
//!
//! | # | rule | status / code | message |
//! |---|------|---------------|---------|
//! | 1 | `Authorization` present once, exactly `ALG Credential=SERIAL/YYYYMMDD/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex`, ALG `AWS4-X509-RSA-SHA256`, `AWS4-X509-ECDSA-SHA256` or `AWS4-X509-MLDSA`, SERIAL decimal digits, signature lower-case hex | 403 `AccessDeniedException` | `Invalid Authorization header` |
//! | 2 | SignedHeaders lower-case, sorted, no duplicates | 403 `AccessDeniedException` | `Invalid SignedHeaders: names must be lower case, sorted and unique` |
//! | 2 | SignedHeaders lists `authorization` | 403 `AccessDeniedException` | `SignedHeaders must not include authorization` |
//! | 2 | `host`, `x-amz-date`, `x-amz-x509` (and `x-amz-x509-chain` when sent) not listed | 403 `AccessDeniedException` | `SignedHeaders must include <name>` |
//! | 2 | a listed header is absent | 403 `AccessDeniedException` | `Signed header <name> is missing from the request` |
//! | 3 | `X-Amz-Date` not one `YYYYMMDDTHHMMSSZ` value | 403 `AccessDeniedException` | `Invalid X-Amz-Date header` |
//! | 3 | `X-Amz-Date` older than now − skew | 403 `AccessDeniedException` | `Signature expired` |
//! | 3 | `X-Amz-Date` later than now + skew | 403 `AccessDeniedException` | `Signature not yet current` |
//! | 3 | scope date ≠ date part of `X-Amz-Date` | 403 `AccessDeniedException` | `Credential should be scoped to a valid date` |
//! | 3 | scope region ≠ endpoint region | 403 `AccessDeniedException` | `Credential should be scoped to a valid region` |
//! | 3 | scope service ≠ `rolesanywhere` | 403 `AccessDeniedException` | `Credential should be scoped to correct service: 'rolesanywhere'` |
//! | 4 | `X-Amz-X509` not one padded standard base64 DER certificate | 403 `AccessDeniedException` | `Invalid X-Amz-X509 header` |
//! | 4 | leaf not X.509 v3 | 403 `AccessDeniedException` | `Certificate must be X.509 v3` |
//! | 4 | Credential SERIAL ≠ leaf serial (positive decimal) | 403 `AccessDeniedException` | `Credential does not match the certificate serial number` |
//! | 5 | signature does not verify, or the algorithm does not fit the key | 403 `AccessDeniedException` | `Signature validation failed` |
//! | 6 | `X-Amz-X509-Chain` item not base64 DER, or more than 10 items | 403 `AccessDeniedException` | `Invalid X-Amz-X509-Chain header` |
//! | 6 | leaf is a CA, or no path to a trust anchor | 403 `AccessDeniedException` | `Untrusted Signing Certificate` |
//! | 6 | a certificate on the path is past `notAfter` | 403 `AccessDeniedException` | `Certificate is expired` |
//! | 6 | a certificate on the path is before `notBefore` | 403 `AccessDeniedException` | `Certificate is not yet valid` |
//! | 7 | `Content-Type` not `application/json` / `application/x-amz-json-1.0` (may be absent only with an empty body) | 400 `ValidationException` | `Unsupported Content-Type` |
//! | 7 | body neither empty nor a JSON object | 400 `SerializationException` | `Request body must be a JSON object` |
//! | 7 | ARN parameter absent (query and body) | 400 `ValidationException` | `Missing required parameter <name>` |
//! | 7 | ARN parameter repeated in the query, not a string, or different in query and body | 400 `ValidationException` | `Invalid <name>: given more than once` / `Invalid <name>: must be a string` / `Invalid <name>: query string and body disagree` |
//! | 7 | ARN syntax wrong | 400 `ValidationException` | `Invalid trustAnchorArn: must be arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/UUID` (profile / role likewise) |
//! | 7 | trust anchor / profile region ≠ endpoint region | 400 `ValidationException` | `Invalid <name>: region must be <region>` |
//! | 7 | trust anchor not the configured one | 404 `ResourceNotFoundException` | `Trust anchor not found` |
//! | 7 | profile not the configured one | 404 `ResourceNotFoundException` | `Profile not found` |
//! | 7 | role not among the configured roles | 403 `AccessDeniedException` | `Profile does not allow the role` |
//! | 8 | `durationSeconds` present and not an integer | 400 `ValidationException` | `Invalid durationSeconds: must be an integer` |
//! | 8 | `durationSeconds` outside 900..=max | 400 `ValidationException` | `Invalid durationSeconds: must be between 900 and <max>` |
//! | 8 | `roleSessionName` not a string matching `[\w+=,.@-]{2,64}` | 400 `ValidationException` | `Invalid roleSessionName: must match [\w+=,.@-]{2,64}` |
//! | 8 | `roleSessionName` given while the profile forbids it | 403 `AccessDeniedException` | `Not authorized to set roleSessionName` |
//!
//! The ARNs are read from the query string or from the JSON body (same names);
//! `durationSeconds` (default 3600, lowered to the maximum when that is smaller)
//! and `roleSessionName` from the body. Unknown body members are ignored.

use crate::arn::{self, Arn, RaKind};
use crate::canonical::{self, CanonicalInput, canonical_header_value, decode_query, header_values};
use crate::cert::{self, ChainError};
use crate::crypto::{Hash, PublicKey, Scheme};
use crate::error::{ApiError, SERIALIZATION};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// Most certificates accepted in `X-Amz-X509-Chain`.
const MAX_CHAIN_CERTS: usize = 10;
/// Default `durationSeconds`.
const DEFAULT_DURATION: i64 = 3600;
/// Smallest `durationSeconds`.
const MIN_DURATION: i64 = 900;

/// A request as received: everything the signature covers.
#[derive(Debug, Clone, Default)]
pub struct RequestParts {
    /// HTTP method.
    pub method: String,
    /// Path exactly as sent (without the query).
    pub path: String,
    /// Raw query string after `?` (empty if none).
    pub query: String,
    /// Every header as received, in order, `Authorization` included.
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: Vec<u8>,
}

/// What the endpoint is configured to accept.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Endpoint region (the trust anchor ARN's region).
    pub region: String,
    /// The one trust anchor ARN that exists.
    pub trust_anchor_arn: String,
    /// The one profile ARN that exists.
    pub profile_arn: String,
    /// Roles the profile allows.
    pub role_arns: Vec<String>,
    /// Largest `durationSeconds` accepted.
    pub max_duration: i64,
    /// Whether `roleSessionName` may be set.
    pub allow_role_session_name: bool,
    /// Accepted distance between `X-Amz-Date` and the server clock, seconds.
    pub clock_skew_seconds: i64,
    /// DER of the trust anchor certificates.
    pub trust_anchors: Vec<Vec<u8>>,
}

/// The request signing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `AWS4-X509-RSA-SHA256`.
    Rsa,
    /// `AWS4-X509-ECDSA-SHA256`.
    Ecdsa,
    /// `AWS4-X509-MLDSA` (pure ML-DSA of the certificate's parameter set, empty
    /// context, over the string to sign itself).
    MlDsa,
}

impl Algorithm {
    /// The algorithm name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa => "AWS4-X509-RSA-SHA256",
            Algorithm::Ecdsa => "AWS4-X509-ECDSA-SHA256",
            Algorithm::MlDsa => "AWS4-X509-MLDSA",
        }
    }

    /// Reads a wire name.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "AWS4-X509-RSA-SHA256" => Some(Algorithm::Rsa),
            "AWS4-X509-ECDSA-SHA256" => Some(Algorithm::Ecdsa),
            "AWS4-X509-MLDSA" => Some(Algorithm::MlDsa),
            _ => None,
        }
    }
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// Signing algorithm.
    pub algorithm: Algorithm,
    /// Credential serial (decimal digits).
    pub serial: &'a str,
    /// Credential scope date `YYYYMMDD`.
    pub date: &'a str,
    /// Credential scope region.
    pub region: &'a str,
    /// Credential scope service.
    pub service: &'a str,
    /// The SignedHeaders value as sent.
    pub signed_headers: &'a str,
    /// Signature bytes.
    pub signature: Vec<u8>,
}

impl Authorization<'_> {
    /// `YYYYMMDD/REGION/SERVICE/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Parses the exact `Authorization` form; `None` when it is not that form.
pub fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let (alg, rest) = value.split_once(' ')?;
    let algorithm = Algorithm::from_name(alg)?;
    let rest = rest.strip_prefix("Credential=")?;
    let (credential, rest) = rest.split_once(", SignedHeaders=")?;
    let (signed_headers, signature) = rest.split_once(", Signature=")?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [serial, date, region, service, terminator] = parts.as_slice() else {
        return None;
    };
    let token_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b',' && b != b';')
    };
    let ok = !serial.is_empty()
        && serial.bytes().all(|b| b.is_ascii_digit())
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && token_ok(region)
        && token_ok(service)
        && *terminator == "aws4_request"
        && !signed_headers.is_empty()
        && signed_headers
            .split(';')
            .all(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        && !signature.is_empty()
        && signature.len() % 2 == 0
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        return None;
    }
    Some(Authorization {
        algorithm,
        serial,
        date,
        region,
        service,
        signed_headers,
        signature: hex::decode(signature).ok()?,
    })
}

/// A request that passed every check: what the response is built from.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "some fields are only read by the tests")
)]
pub struct Verified {
    /// Signing algorithm used.
    pub algorithm: Algorithm,
    /// Leaf serial, decimal.
    pub serial_decimal: String,
    /// Leaf serial, lower-case hex.
    pub serial_hex: String,
    /// SignedHeaders as sent.
    pub signed_headers: String,
    /// `CN=<leaf CN>` (or the whole subject when it has no CN).
    pub source_identity: String,
    /// SHA-256 of the leaf DER (stable subject id).
    pub leaf_sha256: [u8; 32],
    /// The trust anchor ARN, parsed.
    pub trust_anchor: Arn,
    /// The role ARN as given.
    pub role_arn: String,
    /// The role ARN, parsed.
    pub role: Arn,
    /// Granted duration in seconds.
    pub duration_seconds: i64,
    /// Session name: `roleSessionName`, or the leaf serial in hex.
    pub session_name: String,
    /// The canonical request rebuilt by the endpoint.
    pub canonical_request: String,
    /// The string to sign rebuilt by the endpoint.
    pub string_to_sign: String,
}

/// 403 AccessDeniedException shortcut.
fn denied(message: &str) -> ApiError {
    ApiError::access_denied(message)
}

/// The single value of a header, `None` when absent or repeated.
fn single_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    match header_values(headers, name).as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// Parses `YYYYMMDDTHHMMSSZ` to a Unix time.
fn parse_amz_date(value: &str) -> Option<i64> {
    if value.len() != 16 {
        return None;
    }
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(value, &fmt).ok()?;
    Some(dt.assume_utc().unix_timestamp())
}

/// Whether a header name is a lower-case HTTP token.
fn lower_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// Steps 1–6: authentication of the request (signature and certificate chain).
struct Authenticated {
    /// Signing algorithm.
    algorithm: Algorithm,
    /// Leaf serial, decimal.
    serial_decimal: String,
    /// Leaf serial, hex.
    serial_hex: String,
    /// SignedHeaders as sent.
    signed_headers: String,
    /// `CN=…` of the leaf.
    source_identity: String,
    /// SHA-256 of the leaf DER.
    leaf_sha256: [u8; 32],
    /// Rebuilt canonical request.
    canonical_request: String,
    /// Rebuilt string to sign.
    string_to_sign: String,
}

/// Runs checks 1 to 6.
fn authenticate(
    req: &RequestParts,
    now: i64,
    config: &VerifyConfig,
) -> Result<Authenticated, ApiError> {
    // 1. Authorization header.
    let auth_value = single_header(&req.headers, "authorization")
        .ok_or_else(|| denied("Invalid Authorization header"))?;
    let auth =
        parse_authorization(auth_value).ok_or_else(|| denied("Invalid Authorization header"))?;

    // 2. SignedHeaders.
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    let sorted_unique = signed.windows(2).all(|w| w[0] < w[1]);
    if !sorted_unique || !signed.iter().all(|h| lower_token(h)) {
        return Err(denied(
            "Invalid SignedHeaders: names must be lower case, sorted and unique",
        ));
    }
    if signed.contains(&"authorization") {
        return Err(denied("SignedHeaders must not include authorization"));
    }
    let chain_sent = !header_values(&req.headers, "x-amz-x509-chain").is_empty();
    let mut required = vec!["host", "x-amz-date", "x-amz-x509"];
    if chain_sent {
        required.push("x-amz-x509-chain");
    }
    for name in required {
        if !signed.contains(&name) {
            return Err(denied(&format!("SignedHeaders must include {name}")));
        }
    }
    for name in &signed {
        if header_values(&req.headers, name).is_empty() {
            return Err(denied(&format!(
                "Signed header {name} is missing from the request"
            )));
        }
    }

    // 3. Date, scope.
    let amz_date = single_header(&req.headers, "x-amz-date")
        .map(canonical::normalise_header_value)
        .ok_or_else(|| denied("Invalid X-Amz-Date header"))?;
    let date_ts = parse_amz_date(&amz_date).ok_or_else(|| denied("Invalid X-Amz-Date header"))?;
    let skew = config.clock_skew_seconds;
    if date_ts < now.saturating_sub(skew) {
        return Err(denied("Signature expired"));
    }
    if date_ts > now.saturating_add(skew) {
        return Err(denied("Signature not yet current"));
    }
    if auth.date != &amz_date[..8] {
        return Err(denied("Credential should be scoped to a valid date"));
    }
    if auth.region != config.region {
        return Err(denied("Credential should be scoped to a valid region"));
    }
    if auth.service != "rolesanywhere" {
        return Err(denied(
            "Credential should be scoped to correct service: 'rolesanywhere'",
        ));
    }

    // 4. Leaf certificate and serial.
    let leaf_der = single_header(&req.headers, "x-amz-x509")
        .map(canonical::normalise_header_value)
        .and_then(|v| STANDARD.decode(v).ok())
        .ok_or_else(|| denied("Invalid X-Amz-X509 header"))?;
    let leaf = cert::parse_der(&leaf_der).ok_or_else(|| denied("Invalid X-Amz-X509 header"))?;
    if leaf.version() != x509_parser::x509::X509Version::V3 {
        return Err(denied("Certificate must be X.509 v3"));
    }
    let raw_serial = leaf.raw_serial();
    let serial_decimal = cert::serial_decimal(raw_serial);
    if auth.serial != serial_decimal {
        return Err(denied(
            "Credential does not match the certificate serial number",
        ));
    }

    // 5. Canonical request, string to sign, signature.
    let canonical_request = canonical::canonical_request(&CanonicalInput {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &req.headers,
        signed_headers: &signed,
        body: &req.body,
    });
    let string_to_sign = canonical::string_to_sign(
        auth.algorithm.name(),
        &amz_date,
        &auth.scope(),
        &canonical_request,
    );
    let key = PublicKey::from_spki(leaf.public_key())
        .ok_or_else(|| denied("Signature validation failed"))?;
    let scheme = match auth.algorithm {
        Algorithm::Rsa if key.is_rsa() => Scheme::RsaPkcs1(Hash::Sha256),
        Algorithm::Ecdsa if key.is_ec() => Scheme::Ecdsa(Hash::Sha256),
        Algorithm::MlDsa => match key.mldsa_set() {
            Some(set) => Scheme::MlDsa(set),
            None => return Err(denied("Signature validation failed")),
        },
        _ => return Err(denied("Signature validation failed")),
    };
    if !key.verify(scheme, string_to_sign.as_bytes(), &auth.signature) {
        return Err(denied("Signature validation failed"));
    }

    // 6. Chain to a trust anchor.
    let chain_ders: Vec<Vec<u8>> = if chain_sent {
        let joined = canonical_header_value(&req.headers, "x-amz-x509-chain");
        let items: Vec<&str> = joined.split(',').map(str::trim).collect();
        if items.len() > MAX_CHAIN_CERTS {
            return Err(denied("Invalid X-Amz-X509-Chain header"));
        }
        items
            .iter()
            .map(|item| STANDARD.decode(item).ok())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| denied("Invalid X-Amz-X509-Chain header"))?
    } else {
        Vec::new()
    };
    let chain = chain_ders
        .iter()
        .map(|der| cert::parse_der(der))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| denied("Invalid X-Amz-X509-Chain header"))?;
    let anchors: Vec<_> = config
        .trust_anchors
        .iter()
        .filter_map(|der| cert::parse_der(der))
        .collect();
    cert::verify_chain(&leaf, &chain, &anchors, now).map_err(|e| match e {
        ChainError::Untrusted => denied("Untrusted Signing Certificate"),
        ChainError::Expired => denied("Certificate is expired"),
        ChainError::NotYetValid => denied("Certificate is not yet valid"),
    })?;

    let source_identity = match cert::common_name(&leaf) {
        Some(cn) => format!("CN={cn}"),
        None => leaf.subject().to_string(),
    };
    let leaf_sha256: [u8; 32] = Sha256::digest(&leaf_der).into();
    Ok(Authenticated {
        algorithm: auth.algorithm,
        serial_hex: cert::serial_hex(raw_serial),
        serial_decimal,
        signed_headers: auth.signed_headers.to_string(),
        source_identity,
        leaf_sha256,
        canonical_request,
        string_to_sign,
    })
}

/// The request parameters, gathered from the query string and the body.
struct Params {
    /// Decoded query pairs.
    query: Vec<(Vec<u8>, Vec<u8>)>,
    /// Members of the JSON body.
    body: serde_json::Map<String, serde_json::Value>,
}

impl Params {
    /// Reads the body (empty body = no members).
    fn new(req: &RequestParts) -> Result<Self, ApiError> {
        let body = if req.body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Map::new()
        } else {
            match serde_json::from_slice::<serde_json::Value>(&req.body) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    return Err(ApiError::new(
                        400,
                        SERIALIZATION,
                        "Request body must be a JSON object",
                    ));
                }
            }
        };
        Ok(Self {
            query: decode_query(&req.query),
            body,
        })
    }

    /// A string parameter from the query or the body.
    fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        let from_query: Vec<&Vec<u8>> = self
            .query
            .iter()
            .filter(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| v)
            .collect();
        let query_value =
            match from_query.as_slice() {
                [] => None,
                [one] => Some(String::from_utf8((*one).clone()).map_err(|_| {
                    ApiError::validation(format!("Invalid {name}: must be a string"))
                })?),
                _ => {
                    return Err(ApiError::validation(format!(
                        "Invalid {name}: given more than once"
                    )));
                }
            };
        let body_value = match self.body.get(name) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ApiError::validation(format!(
                    "Invalid {name}: must be a string"
                )));
            }
        };
        match (query_value, body_value) {
            (Some(q), Some(b)) if q != b => Err(ApiError::validation(format!(
                "Invalid {name}: query string and body disagree"
            ))),
            (Some(q), _) => Ok(Some(q)),
            (None, b) => Ok(b),
        }
    }

    /// A required string parameter.
    fn required(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?
            .ok_or_else(|| ApiError::validation(format!("Missing required parameter {name}")))
    }
}

/// Whether the `Content-Type` is one the service takes.
fn content_type_ok(req: &RequestParts) -> bool {
    let values = header_values(&req.headers, "content-type");
    match values.as_slice() {
        [] => req.body.is_empty(),
        [one] => {
            let media = one.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("application/json")
                || media.eq_ignore_ascii_case("application/x-amz-json-1.0")
        }
        _ => false,
    }
}

/// A JSON integer; integers beyond `i64` saturate (so that they fail the range check).
fn integer(v: &serde_json::Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return Some(i64::MAX);
    }
    // Without arbitrary precision, integers past u64 arrive as floats.
    let f = n.as_f64()?;
    (f.is_finite() && f.abs() >= 9.223_372_036_854_776e18).then_some(if f > 0.0 {
        i64::MAX
    } else {
        i64::MIN
    })
}

/// Verifies a `CreateSession` request at Unix-time `now` (see the module docs).
pub fn verify(
    req: &RequestParts,
    now: OffsetDateTime,
    config: &VerifyConfig,
) -> Result<Verified, ApiError> {
    let authed = authenticate(req, now.unix_timestamp(), config)?;

    // 7. Parameters and resources.
    if !content_type_ok(req) {
        return Err(ApiError::validation("Unsupported Content-Type"));
    }
    let params = Params::new(req)?;
    let ta_value = params.required("trustAnchorArn")?;
    let trust_anchor = arn::parse_rolesanywhere(&ta_value, RaKind::TrustAnchor).ok_or_else(|| {
        ApiError::validation(
            "Invalid trustAnchorArn: must be arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/UUID",
        )
    })?;
    let profile_value = params.required("profileArn")?;
    let profile = arn::parse_rolesanywhere(&profile_value, RaKind::Profile).ok_or_else(|| {
        ApiError::validation(
            "Invalid profileArn: must be arn:PARTITION:rolesanywhere:REGION:ACCOUNT:profile/UUID",
        )
    })?;
    let role_value = params.required("roleArn")?;
    let role = arn::parse_role(&role_value).ok_or_else(|| {
        ApiError::validation("Invalid roleArn: must be arn:PARTITION:iam::ACCOUNT:role/NAME")
    })?;
    if trust_anchor.region != config.region {
        return Err(ApiError::validation(format!(
            "Invalid trustAnchorArn: region must be {}",
            config.region
        )));
    }
    if profile.region != config.region {
        return Err(ApiError::validation(format!(
            "Invalid profileArn: region must be {}",
            config.region
        )));
    }
    if ta_value != config.trust_anchor_arn {
        return Err(ApiError::not_found("Trust anchor not found"));
    }
    if profile_value != config.profile_arn {
        return Err(ApiError::not_found("Profile not found"));
    }
    if !config.role_arns.contains(&role_value) {
        return Err(denied("Profile does not allow the role"));
    }

    // 8. Duration and session name.
    let duration_seconds = match params.body.get("durationSeconds") {
        None | Some(serde_json::Value::Null) => DEFAULT_DURATION.min(config.max_duration),
        Some(v) => {
            let d = integer(v).ok_or_else(|| {
                ApiError::validation("Invalid durationSeconds: must be an integer")
            })?;
            if !(MIN_DURATION..=config.max_duration).contains(&d) {
                return Err(ApiError::validation(format!(
                    "Invalid durationSeconds: must be between {MIN_DURATION} and {}",
                    config.max_duration
                )));
            }
            d
        }
    };
    let session_name_error =
        || ApiError::validation("Invalid roleSessionName: must match [\\w+=,.@-]{2,64}");
    let role_session_name = match params.body.get("roleSessionName") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            if !(2..=64).contains(&s.len()) || !s.bytes().all(arn::is_iam_name_byte) {
                return Err(session_name_error());
            }
            Some(s.clone())
        }
        Some(_) => return Err(session_name_error()),
    };
    if role_session_name.is_some() && !config.allow_role_session_name {
        return Err(denied("Not authorized to set roleSessionName"));
    }

    Ok(Verified {
        algorithm: authed.algorithm,
        session_name: role_session_name.unwrap_or_else(|| authed.serial_hex.clone()),
        serial_decimal: authed.serial_decimal,
        serial_hex: authed.serial_hex,
        signed_headers: authed.signed_headers,
        source_identity: authed.source_identity,
        leaf_sha256: authed.leaf_sha256,
        trust_anchor,
        role_arn: role_value,
        role,
        duration_seconds,
        canonical_request: authed.canonical_request,
        string_to_sign: authed.string_to_sign,
    })
}
