//! Rejections: the error responses the emulator answers a request with, shaped as the service
//! sends them (not to be confused with the [injected faults](crate::fault))

use http::{Response, StatusCode};
use serde_json::json;

use crate::body::{RespBody, full};

/// Why a request was refused: an error response sent instead of a stream, before any
/// stream byte
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) reason: Option<&'static str>,
    pub(crate) retry_after: Option<u64>,
}

impl Rejection {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
            retry_after: None,
        }
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterValueException", message)
    }

    pub(crate) fn not_found(arn: &str) -> Self {
        Self::new(
            404,
            "ResourceNotFoundException",
            format!("Function not found: {arn}"),
        )
    }

    pub(crate) fn throttled(reason: &'static str) -> Self {
        Self {
            reason: Some(reason),
            retry_after: Some(1),
            ..Self::new(429, "TooManyRequestsException", "Rate Exceeded.")
        }
    }

    /// The error as an HTTP response
    pub(crate) fn response(&self, request_id: &str) -> Response<RespBody> {
        // The model spells the message member `Message` on some shapes, `message` on others
        let capital = matches!(
            self.code,
            "ResourceNotFoundException" | "ServiceException" | "AccessDeniedException"
        );
        let mut body = serde_json::Map::new();
        body.insert(
            "Type".into(),
            json!(if self.status >= 500 {
                "Service"
            } else {
                "User"
            }),
        );
        body.insert(
            if capital { "Message" } else { "message" }.into(),
            json!(self.message),
        );
        if let Some(r) = self.reason {
            body.insert("Reason".into(), json!(r));
        }
        let mut resp = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/json")
            .header("x-amzn-RequestId", request_id)
            .header("x-amzn-ErrorType", self.code);
        if let Some(s) = self.retry_after {
            resp = resp.header("retry-after", s.to_string());
        }
        resp.body(full(serde_json::Value::Object(body).to_string()))
            .expect("static parts are valid")
    }
}
