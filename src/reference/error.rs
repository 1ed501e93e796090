//! Why a reference was refused, in the words of the upstream package.

use std::fmt;

/// The class of a reference error; each maps to one upstream error value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The string does not match the grammar (`ErrReferenceInvalidFormat`).
    InvalidFormat,
    /// The repository part has upper case (normalization's check, names it).
    NotLowercase,
    /// The composed name only fails because of upper case
    /// (`ErrNameContainsUppercase`).
    ParseNotLowercase,
    /// The path is longer than 255 bytes (`ErrNameTooLong`).
    NameTooLong,
    /// 64 hex characters alone: an image ID, not a name.
    ImageId,
    /// `ALGO:<hex>` (`sha256:4f3c`, full or shortened): upstream reads it as
    /// `docker.io/library/ALGO` with a hex tag, but container runtimes
    /// resolve it as the ID of an image already on the node, with no pull.
    LocalImageId,
    /// The digest is malformed (`ErrDigestInvalidFormat`).
    DigestFormat,
    /// The digest algorithm is not sha256, sha384 or sha512.
    DigestUnsupported,
    /// The digest has the wrong length for its algorithm.
    DigestLength,
}

/// An image string that is not a valid reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseReferenceError {
    kind: ParseErrorKind,
    /// The offending text, already made safe to print.
    detail: Option<Box<str>>,
}

/// Echoed text is cut to this many characters: the input is hostile.
const MAX_DETAIL_CHARS: usize = 200;

impl ParseReferenceError {
    pub(super) fn new(kind: ParseErrorKind) -> Self {
        Self { kind, detail: None }
    }

    pub(super) fn with_detail(kind: ParseErrorKind, detail: &str) -> Self {
        let mut safe = String::with_capacity(detail.len().min(MAX_DETAIL_CHARS));
        for (n, c) in detail.chars().enumerate() {
            if n == MAX_DETAIL_CHARS {
                safe.push('…');
                break;
            }
            if c.is_control() {
                safe.extend(c.escape_default());
            } else {
                safe.push(c);
            }
        }
        Self {
            kind,
            detail: Some(safe.into_boxed_str()),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }
}

impl fmt::Display for ParseReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail.as_deref().unwrap_or_default();
        match self.kind {
            ParseErrorKind::InvalidFormat => f.write_str("invalid reference format"),
            ParseErrorKind::NotLowercase => write!(
                f,
                "invalid reference format: repository name ({detail}) must be lowercase"
            ),
            ParseErrorKind::ParseNotLowercase => f.write_str("repository name must be lowercase"),
            ParseErrorKind::NameTooLong => {
                f.write_str("repository name must not be more than 255 characters")
            }
            ParseErrorKind::ImageId => write!(
                f,
                "invalid repository name ({detail}), cannot specify 64-byte hexadecimal strings"
            ),
            ParseErrorKind::LocalImageId => write!(
                f,
                "{detail:?} has the shape of a local image ID (ALGO:hex): a container runtime would run an image already on the node by its ID, without pulling it; name the image by repository and digest instead"
            ),
            ParseErrorKind::DigestFormat => f.write_str("invalid checksum digest format"),
            ParseErrorKind::DigestUnsupported => f.write_str("unsupported digest algorithm"),
            ParseErrorKind::DigestLength => f.write_str("invalid checksum digest length"),
        }
    }
}

impl std::error::Error for ParseReferenceError {}
