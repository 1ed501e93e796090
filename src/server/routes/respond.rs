//! Response builders and the log-line formatting of review outcomes.
//! Echoed strings are cleaned and lists bounded.

use std::fmt;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::policy::Reason;
use crate::review::{self, AdmittedBy};

use super::super::limits::BodyError;
use super::{JSON, MAX_LOGGED_IMAGES, TEXT};

/// The answer to a body that could not be read.
pub(super) fn body_error(e: &BodyError) -> Response<Full<Bytes>> {
    let status = match e {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        BodyError::Read(_) => StatusCode::BAD_REQUEST,
        BodyError::Busy { .. } => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    error(status, &e.to_string())
}

/// `application/json`, with or without parameters, in any letter case.
pub(super) fn is_json(value: &HeaderValue) -> bool {
    // What the apiserver sends, at the cost of one comparison.
    if value.as_bytes() == JSON.as_bytes() {
        return true;
    }
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(JSON)
}

pub(super) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT));
    response
}

/// `{"error": "..."}` with the given status.
pub(super) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .unwrap_or_else(|_| b"{\"error\":\"internal error\"}".to_vec());
    response(status, JSON, review::body_bytes(body))
}

pub(super) fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Displays request-supplied text with control characters escaped, so a
/// hostile namespace or image cannot forge log lines.
pub(super) struct Clean<'a>(pub(super) &'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// `"image" (reason), ...`, at most [`MAX_LOGGED_IMAGES`] of them.
pub(super) struct Denied<'a>(pub(super) &'a [(String, Reason)]);

impl fmt::Display for Denied<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (image, reason)) in self.0.iter().take(MAX_LOGGED_IMAGES).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({})", Clean(image), reason.as_str())?;
        }
        if self.0.len() > MAX_LOGGED_IMAGES {
            write!(f, ", and {} more", self.0.len() - MAX_LOGGED_IMAGES)?;
        }
        Ok(())
    }
}

/// The images one kind of admission let through, with the reason each was
/// denied for, capped like [`Denied`].
pub(super) struct Admitted<'a>(pub(super) &'a [review::Admitted], pub(super) AdmittedBy);

impl fmt::Display for Admitted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = self.0.iter().filter(|a| a.by == self.1);
        let total = pairs.clone().count();
        for (i, a) in pairs.take(MAX_LOGGED_IMAGES).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({})", Clean(&a.image), a.reason.as_str())?;
        }
        if total > MAX_LOGGED_IMAGES {
            write!(f, ", and {} more", total - MAX_LOGGED_IMAGES)?;
        }
        Ok(())
    }
}
