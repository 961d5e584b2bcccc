//! The error a `CreateSession` request can be answered with.
//!
//! The wire shape is the one the real service uses (REST-JSON, "coral"):
//!
//! ```text
//! HTTP/1.1 403 Forbidden
//! Content-Type: application/json
//! x-amzn-ErrorType: AccessDeniedException:http://internal.amazon.com/coral/com.amazonaws.roles_anywhere/
//! x-amzn-RequestId: 5c4f7a2e-…
//!
//! {"message":"Signature validation failed"}
//! ```
//!
//! The table of codes and messages per rule is in the documentation of the
//! [`verify`](crate::verify) module.

use serde::Serialize;

/// Suffix the real service appends to the code in `x-amzn-ErrorType`.
pub const ERROR_TYPE_SUFFIX: &str =
    ":http://internal.amazon.com/coral/com.amazonaws.roles_anywhere/";

/// `403 AccessDeniedException`.
pub const ACCESS_DENIED: &str = "AccessDeniedException";
/// `400 ValidationException`.
pub const VALIDATION: &str = "ValidationException";
/// `400 SerializationException` (body that is not a JSON object).
pub const SERIALIZATION: &str = "SerializationException";
/// `404 ResourceNotFoundException`.
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
/// `413 PayloadTooLargeException` (body over the 64 KiB limit).
pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLargeException";
/// `500 InternalServerException` (fault `500`).
pub const INTERNAL_SERVER: &str = "InternalServerException";
/// `503 ServiceUnavailableException` (fault `503`).
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailableException";
/// `429 ThrottlingException` (fault `429`).
pub const THROTTLING: &str = "ThrottlingException";
/// `404 UnknownOperationException` (any route other than `POST …/sessions`).
pub const UNKNOWN_OPERATION: &str = "UnknownOperationException";

/// A rejected request: HTTP status, error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code sent.
    pub status: u16,
    /// Error code, e.g. `AccessDeniedException` (first part of `x-amzn-ErrorType`).
    pub code: &'static str,
    /// Human-readable message, the `message` member of the JSON body.
    pub message: String,
}

/// The JSON body of an error response.
#[derive(Serialize)]
struct ErrorBody<'a> {
    /// The message.
    message: &'a str,
}

impl ApiError {
    /// Builds an error from its parts.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// `403 AccessDeniedException` with `message`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(403, ACCESS_DENIED, message)
    }

    /// `400 ValidationException` with `message`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, VALIDATION, message)
    }

    /// `404 ResourceNotFoundException` with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, RESOURCE_NOT_FOUND, message)
    }

    /// The value of the `x-amzn-ErrorType` header.
    pub fn error_type_header(&self) -> String {
        format!("{}{}", self.code, ERROR_TYPE_SUFFIX)
    }

    /// The compact JSON body `{"message":"…"}`.
    pub fn body(&self) -> String {
        serde_json::to_string(&ErrorBody {
            message: &self.message,
        })
        .unwrap_or_else(|_| String::from("{\"message\":\"\"}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_and_header_have_the_service_shape() {
        let e = ApiError::access_denied("Signature \"validation\" failed");
        assert_eq!(e.status, 403);
        assert_eq!(
            e.error_type_header(),
            "AccessDeniedException:http://internal.amazon.com/coral/com.amazonaws.roles_anywhere/"
        );
        assert_eq!(e.body(), r#"{"message":"Signature \"validation\" failed"}"#);
    }
}
