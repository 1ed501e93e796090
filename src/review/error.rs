//! [`DecodeError`]: why a request body is not a review we can answer.
//!
//! Every error carries a [`DecodeErrorKind`] from a closed set (the metric
//! label) and a message the server returns as `400 {"error": "..."}`. Values
//! echoed from the request are truncated and escaped, so a hostile body
//! cannot make the message large or inject control characters.

use std::fmt;

/// What is wrong with a request body, as a closed set (metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// The body is not valid JSON (syntax, invalid UTF-8, empty).
    NotJson,
    /// The body nests objects or arrays deeper than the limit.
    TooDeep,
    /// `apiVersion` is not one this endpoint answers.
    WrongApiVersion,
    /// `kind` is not the review kind this endpoint answers.
    WrongKind,
    /// A field the review needs is absent or `null`.
    MissingField,
    /// A field has the wrong JSON type (a number where a string belongs...).
    WrongType,
    /// An object names the same key twice.
    DuplicateField,
}

impl DecodeErrorKind {
    /// Every kind, in a stable order.
    pub const ALL: &'static [DecodeErrorKind] = &[
        DecodeErrorKind::NotJson,
        DecodeErrorKind::TooDeep,
        DecodeErrorKind::WrongApiVersion,
        DecodeErrorKind::WrongKind,
        DecodeErrorKind::MissingField,
        DecodeErrorKind::WrongType,
        DecodeErrorKind::DuplicateField,
    ];

    /// The label value: `not_json`, `too_deep`, `wrong_api_version`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::NotJson => "not_json",
            DecodeErrorKind::TooDeep => "too_deep",
            DecodeErrorKind::WrongApiVersion => "wrong_api_version",
            DecodeErrorKind::WrongKind => "wrong_kind",
            DecodeErrorKind::MissingField => "missing_field",
            DecodeErrorKind::WrongType => "wrong_type",
            DecodeErrorKind::DuplicateField => "duplicate_field",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request body that is not a review this endpoint can answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    kind: DecodeErrorKind,
    message: String,
}

/// Longest message kept; the tail of a longer one is cut at a char boundary.
const MAX_MESSAGE: usize = 300;
/// Longest request value echoed inside a message.
const MAX_ECHO: usize = 64;

impl DecodeError {
    /// The class of the problem, for metrics and tests.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    pub(crate) fn new(kind: DecodeErrorKind, message: impl fmt::Display) -> DecodeError {
        let mut message = message.to_string();
        if message.len() > MAX_MESSAGE {
            let cut = floor_char_boundary(&message, MAX_MESSAGE);
            message.truncate(cut);
            message.push('…');
        }
        DecodeError { kind, message }
    }

    pub(crate) fn missing(path: &str) -> DecodeError {
        DecodeError::new(
            DecodeErrorKind::MissingField,
            format_args!("missing field {path}"),
        )
    }

    pub(crate) fn wrong_api_version(got: &str, expected: &str) -> DecodeError {
        DecodeError::new(
            DecodeErrorKind::WrongApiVersion,
            format_args!(
                "unsupported apiVersion {:?}: expected {expected}",
                Echo(got)
            ),
        )
    }

    pub(crate) fn wrong_kind(got: &str, expected: &str) -> DecodeError {
        DecodeError::new(
            DecodeErrorKind::WrongKind,
            format_args!("unsupported kind {:?}: expected {expected}", Echo(got)),
        )
    }
}

/// A request value shown in a message: quoted and escaped (Rust debug
/// syntax), cut after [`MAX_ECHO`] characters.
pub(crate) struct Echo<'a>(pub(crate) &'a str);

impl fmt::Debug for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = floor_char_boundary(self.0, MAX_ECHO);
        if cut < self.0.len() {
            write!(f, "{:?}…", &self.0[..cut])
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// The largest char boundary of `s` not above `at`.
pub(crate) fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut cut = at;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}
